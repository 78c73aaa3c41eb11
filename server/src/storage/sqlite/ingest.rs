//! Ingesting pushed changes inside one transaction. For each change, in order: deduplicate by
//! hash (a known hash under another record is refused, never acknowledged); answer a change the
//! server refused before the same way; refuse a change whose author (Automerge actor) is not
//! the pushing device's; treat a record the caller may not see exactly like an unknown one;
//! hold a change whose dependencies are missing (bounded per device, expiring); otherwise check
//! its shape, its limits and its scope before and after, store it, log it into its stream at
//! most once, and apply held changes it completes.

use super::{merged, uuid_col};
use crate::scope::{stream_key, Scope};
use crate::storage::{PushOutcome, StorageError, StorageResult};
use automerge::{Change, ChangeHash};
use fieldsync_core::model::Areas;
use fieldsync_core::protocol::{NeedEntry, RejectCode, Rejection};
use fieldsync_core::record::{check_layout, decode_change, Fields, Refusal};
use fieldsync_core::{RecordDoc, RecordType, RecordView};
use rusqlite::{params, OptionalExtension, Transaction};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// The server never writes through these documents; its actor id only has to exist.
const SERVER_ACTOR: Uuid = Uuid::nil();
/// Held changes one account may have waiting at once (all its devices together), and their
/// bytes. A phone pushes its own changes oldest first, so it has next to nothing held; these
/// caps only stop a flood.
pub const MAX_HELD_PER_ACCOUNT: i64 = 1_000;
pub const MAX_HELD_BYTES_PER_ACCOUNT: i64 = 4 * 1024 * 1024;

static HELD_CAP: crate::listener::RateLimitedLog = crate::listener::RateLimitedLog::new();

/// Whose changes a batch may carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Authors {
    /// Only changes under an actor bound to the pushing device (a phone's sync).
    Device,
    /// Changes made on the server itself (demo seed, supervisor edits); their actor is bound
    /// to the writing device so that nobody else can ever push under it.
    Server,
}

struct Loaded {
    doc: RecordDoc,
    /// Type, commune and sensitivity as of `doc`, so that each change costs one view of the
    /// document (the state after it) rather than three.
    state: Option<State>,
    dirty: bool,
}

/// What scope and streams depend on.
#[derive(Clone, Debug, PartialEq, Eq)]
struct State {
    record_type: RecordType,
    commune: Option<String>,
    /// Ever a sensitive type; types cannot change, but databases from before that rule may
    /// hold a record that was retyped.
    sensitive: bool,
}

impl State {
    fn after(view: &RecordView, before: Option<&State>) -> State {
        State {
            record_type: view.record_type,
            commune: view.commune().map(str::to_owned),
            sensitive: view.record_type.is_sensitive() || before.is_some_and(|b| b.sensitive),
        }
    }

    fn stream(&self) -> Option<String> {
        Some(stream_key(self.commune.as_deref()?, self.sensitive))
    }

    fn visible_to(&self, scope: &Scope) -> bool {
        (!self.sensitive || scope.sensitive)
            && self
                .commune
                .as_deref()
                .is_some_and(|c| scope.allows(self.record_type, c))
    }
}

pub struct Ingest<'a> {
    tx: &'a Transaction<'a>,
    device: Uuid,
    scope: &'a Scope,
    authors: Authors,
    now_ms: i64,
    docs: BTreeMap<Uuid, Loaded>,
    outcome: PushOutcome,
    need: BTreeSet<(Uuid, [u8; 32])>,
}

impl<'a> Ingest<'a> {
    pub fn new(
        tx: &'a Transaction<'a>,
        device: Uuid,
        scope: &'a Scope,
        authors: Authors,
        now_ms: i64,
    ) -> Ingest<'a> {
        Ingest {
            tx,
            device,
            scope,
            authors,
            now_ms,
            docs: BTreeMap::new(),
            outcome: PushOutcome::default(),
            need: BTreeSet::new(),
        }
    }

    pub fn push(&mut self, record_id: Uuid, change: Change, bytes: &[u8]) -> StorageResult<()> {
        let hash = change.hash();
        match self.owner_of(&hash, "changes")? {
            Some(owner) if owner == record_id => {
                self.outcome.acked.push(hash.0);
                return Ok(());
            }
            // The same bytes under another record: two records never share a change.
            Some(_) => return self.refuse(record_id, hash, RejectCode::Invalid, false),
            None => {}
        }
        if self
            .owner_of(&hash, "held")?
            .is_some_and(|owner| owner != record_id)
        {
            return self.refuse(record_id, hash, RejectCode::Invalid, false);
        }
        if let Some(code) = self.refused_before(&hash)? {
            return self.refuse(record_id, hash, code, false);
        }
        if !self.author_allowed(&change)? {
            return self.refuse(record_id, hash, RejectCode::NotAuthor, false);
        }
        self.load(record_id)?;
        let missing = self.missing_deps(record_id, &change);
        let hidden = self.docs[&record_id]
            .state
            .as_ref()
            .is_some_and(|s| !s.visible_to(self.scope));
        if hidden {
            // A record the caller may not see answers exactly like one the server does not
            // know: missing dependencies are asked for (and nothing is stored), anything else
            // is out of scope. So a support case's id gives away nothing.
            if missing.is_empty() {
                return self.refuse(record_id, hash, RejectCode::OutOfScope, true);
            }
            for dep in missing {
                self.need.insert((record_id, dep.0));
            }
            return Ok(());
        }
        if let Some(code) = self.refused_dependency(&missing)? {
            return self.refuse(record_id, hash, code, true);
        }
        if !missing.is_empty() {
            return self.hold(record_id, &change, bytes, &missing);
        }
        if self.apply(record_id, change, bytes, self.device)? {
            self.release_held(record_id)?;
        }
        Ok(())
    }

    pub fn finish(mut self) -> StorageResult<PushOutcome> {
        for (id, loaded) in &mut self.docs {
            if !loaded.dirty {
                continue;
            }
            let view = loaded.doc.view().ok();
            let review = loaded.doc.review().unwrap_or_default();
            let merge_edits = match &view {
                Some(v) if v.merged_into.is_some() => {
                    loaded.doc.edits_after_merge().unwrap_or_default()
                }
                _ => Vec::new(),
            };
            let state = loaded.state.as_ref();
            self.tx.execute(
                "INSERT INTO records (id, record_type, commune, snapshot, sensitive) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(id) DO UPDATE SET record_type = excluded.record_type,
                   commune = excluded.commune, snapshot = excluded.snapshot, sensitive = excluded.sensitive",
                params![
                    id.as_bytes(),
                    state.map(|s| s.record_type.as_str()),
                    state.and_then(|s| s.commune.as_deref()),
                    loaded.doc.save(),
                    state.is_some_and(|s| s.sensitive)
                ],
            )?;
            if let Some(view) = &view {
                let sensitive = state.is_some_and(|s| s.sensitive);
                merged::refresh(self.tx, view, &review, &merge_edits, sensitive, self.now_ms)?;
                let fact = crate::indicators::Fact::from_view(view, review.state, sensitive);
                super::facts::refresh(self.tx, &fact)?;
            }
        }
        self.outcome.need = self
            .need
            .into_iter()
            .map(|(record_id, hash)| NeedEntry { record_id, hash })
            .collect();
        Ok(self.outcome)
    }

    /// The record a change stored in `table` (`changes` or `held`) belongs to.
    fn owner_of(&self, hash: &ChangeHash, table: &str) -> StorageResult<Option<Uuid>> {
        let owner: Option<Vec<u8>> = self
            .tx
            .query_row(
                &format!("SELECT record_id FROM {table} WHERE hash = ?1"),
                [&hash.0[..]],
                |r| r.get(0),
            )
            .optional()?;
        owner.map(uuid_col).transpose()
    }

    fn refused_before(&self, hash: &ChangeHash) -> StorageResult<Option<RejectCode>> {
        let code: Option<u8> = self
            .tx
            .query_row(
                "SELECT code FROM refused WHERE hash = ?1",
                [&hash.0[..]],
                |r| r.get(0),
            )
            .optional()?;
        Ok(code.and_then(|c| RejectCode::from_u8(c).ok()))
    }

    /// A missing dependency refused before (now or in an earlier request): the change can
    /// never be applied, so it is refused rather than held.
    fn refused_dependency(&self, missing: &[ChangeHash]) -> StorageResult<Option<RejectCode>> {
        for dep in missing {
            if self.outcome.rejected.iter().any(|r| r.hash == dep.0)
                || self.refused_before(dep)?.is_some()
            {
                return Ok(Some(RejectCode::MissingDependency));
            }
        }
        Ok(None)
    }

    /// Whether the change's actor may be written by this device: the actor it proved at
    /// enrolment. A device enrolled before actors were proved takes the actors it pushes
    /// under, if no other device has them.
    fn author_allowed(&self, change: &Change) -> StorageResult<bool> {
        let actor = change.actor_id().to_bytes();
        let bound_to: Option<Vec<u8>> = self
            .tx
            .query_row(
                "SELECT device_id FROM actors WHERE actor = ?1",
                [actor],
                |r| r.get(0),
            )
            .optional()?;
        match (bound_to, self.authors) {
            (Some(device), _) => Ok(device.as_slice() == self.device.as_bytes()),
            (None, Authors::Server) => {
                self.bind(actor)?;
                Ok(true)
            }
            (None, Authors::Device) => {
                let legacy = self
                    .tx
                    .query_row(
                        "SELECT legacy FROM devices WHERE id = ?1",
                        [self.device.as_bytes()],
                        |r| r.get::<_, bool>(0),
                    )
                    .optional()?
                    .unwrap_or(false);
                if legacy {
                    self.bind(actor)?;
                }
                Ok(legacy)
            }
        }
    }

    fn bind(&self, actor: &[u8]) -> StorageResult<()> {
        self.tx.execute(
            "INSERT OR IGNORE INTO actors (actor, device_id) VALUES (?1, ?2)",
            params![actor, self.device.as_bytes()],
        )?;
        Ok(())
    }

    /// Refuses a change this device pushed; `remember` keeps the answer for later pushes of
    /// it and of changes built on it.
    fn refuse(
        &mut self,
        record_id: Uuid,
        hash: ChangeHash,
        code: RejectCode,
        remember: bool,
    ) -> StorageResult<()> {
        if remember {
            self.remember_refusal(record_id, hash, code)?;
        }
        self.outcome.rejected.push(Rejection {
            hash: hash.0,
            record_id,
            code,
        });
        Ok(())
    }

    fn remember_refusal(
        &self,
        record_id: Uuid,
        hash: ChangeHash,
        code: RejectCode,
    ) -> StorageResult<()> {
        self.tx.execute(
            "INSERT OR IGNORE INTO refused (hash, record_id, code) VALUES (?1, ?2, ?3)",
            params![&hash.0[..], record_id.as_bytes(), code as u8],
        )?;
        Ok(())
    }

    fn load(&mut self, record_id: Uuid) -> StorageResult<()> {
        if self.docs.contains_key(&record_id) {
            return Ok(());
        }
        type Row = (Vec<u8>, Option<String>, Option<String>, bool);
        let row: Option<Row> = self
            .tx
            .query_row(
                "SELECT snapshot, record_type, commune, sensitive FROM records WHERE id = ?1",
                [record_id.as_bytes()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        let (doc, state) = match row {
            Some((bytes, record_type, commune, sensitive)) => {
                let doc = RecordDoc::load(record_id, &bytes, SERVER_ACTOR)?;
                let state = record_type
                    .as_deref()
                    .and_then(RecordType::parse)
                    .map(|record_type| State {
                        record_type,
                        commune,
                        sensitive: sensitive || record_type.is_sensitive(),
                    });
                (doc, state)
            }
            None => (RecordDoc::empty(record_id, SERVER_ACTOR), None),
        };
        self.docs.insert(
            record_id,
            Loaded {
                doc,
                state,
                dirty: false,
            },
        );
        Ok(())
    }

    fn missing_deps(&mut self, record_id: Uuid, change: &Change) -> Vec<ChangeHash> {
        let Some(loaded) = self.docs.get_mut(&record_id) else {
            return change.deps().to_vec();
        };
        change
            .deps()
            .iter()
            .filter(|d| !loaded.doc.has_change(d))
            .copied()
            .collect()
    }

    fn hold(
        &mut self,
        record_id: Uuid,
        change: &Change,
        bytes: &[u8],
        missing: &[ChangeHash],
    ) -> StorageResult<()> {
        let hash = change.hash();
        let known_type = self.docs[&record_id].state.as_ref().map(|s| s.record_type);
        if check_layout(change, record_id, known_type, Fields::Schema).is_err() {
            return self.refuse(record_id, hash, RejectCode::Invalid, true);
        }
        // All the account's devices together: enrolling more phones does not raise the cap.
        let (rows, held_bytes): (i64, i64) = self.tx.query_row(
            "SELECT COUNT(*), COALESCE(SUM(length(h.bytes)), 0) FROM held h
             WHERE h.origin_device = ?1 OR h.origin_device IN (SELECT id FROM devices
                 WHERE user_id = (SELECT user_id FROM devices WHERE id = ?1))",
            [self.device.as_bytes()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if rows >= MAX_HELD_PER_ACCOUNT
            || held_bytes + bytes.len() as i64 > MAX_HELD_BYTES_PER_ACCOUNT
        {
            HELD_CAP.warn(|suppressed| {
                tracing::warn!(device = %self.device, rows, held_bytes, suppressed, "held-change cap reached");
            });
            return self.refuse(record_id, hash, RejectCode::TooLarge, false);
        }
        let missing_bytes: Vec<u8> = missing.iter().flat_map(|h| h.0).collect();
        self.tx.execute(
            "INSERT OR IGNORE INTO held (hash, record_id, bytes, origin_device, missing, received_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![&hash.0[..], record_id.as_bytes(), bytes, self.device.as_bytes(), missing_bytes, self.now_ms],
        )?;
        for dep in missing {
            // A dependency that is itself held is not what the phone must send: its own
            // missing dependencies are.
            let held = self
                .tx
                .query_row("SELECT 1 FROM held WHERE hash = ?1", [&dep.0[..]], |_| {
                    Ok(())
                })
                .optional()?
                .is_some();
            if !held {
                self.need.insert((record_id, dep.0));
            }
        }
        Ok(())
    }

    /// The scope a change is judged by: its sender's. A held change released now was sent by
    /// another device, whose user's scope applies.
    fn scope_of(&self, origin: Uuid) -> StorageResult<Scope> {
        if origin == self.device {
            return Ok(self.scope.clone());
        }
        Ok(super::accounts::user_of_device(self.tx, origin)?
            .map(|u| Scope::for_user(&u))
            .unwrap_or_default())
    }

    /// Applies one change whose dependencies are present. Returns whether it was accepted.
    fn apply(
        &mut self,
        record_id: Uuid,
        change: Change,
        bytes: &[u8],
        origin: Uuid,
    ) -> StorageResult<bool> {
        let hash = change.hash();
        let scope = self.scope_of(origin)?;
        let Some(loaded) = self.docs.get_mut(&record_id) else {
            return Ok(false);
        };
        let before = loaded.state.clone();
        let verdict = judge(&mut loaded.doc, &change, before.as_ref(), &scope);
        let (candidate, after) = match verdict {
            Ok(accepted) => accepted,
            Err(code) => {
                self.remember_refusal(record_id, hash, code)?;
                // Only the sender can act on a refusal; another device's held change that
                // fails is refused to its sender when it pushes it again.
                if origin == self.device {
                    self.outcome.rejected.push(Rejection {
                        hash: hash.0,
                        record_id,
                        code,
                    });
                }
                return Ok(false);
            }
        };
        loaded.doc = candidate;
        loaded.dirty = true;
        let stream = after.stream();
        loaded.state = Some(after);
        self.tx.execute(
            "INSERT INTO changes (hash, record_id, bytes, origin_device, received_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![&hash.0[..], record_id.as_bytes(), bytes, origin.as_bytes(), self.now_ms],
        )?;
        if let Some(stream) = stream {
            log_new_history(self.tx, record_id, &stream)?;
        }
        if origin == self.device {
            self.outcome.acked.push(hash.0);
        }
        Ok(true)
    }

    /// Applies held changes of this record whose dependencies have now all arrived.
    fn release_held(&mut self, record_id: Uuid) -> StorageResult<()> {
        loop {
            let held: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> = {
                let mut stmt = self.tx.prepare_cached(
                    "SELECT hash, bytes, origin_device FROM held WHERE record_id = ?1",
                )?;
                let rows = stmt.query_map([record_id.as_bytes()], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?;
                rows.collect::<Result<_, _>>()?
            };
            let mut progress = false;
            for (hash, bytes, origin) in held {
                let change = decode_change(&bytes)
                    .map_err(|e| StorageError::Corrupt(format!("held change: {e}")))?;
                if !self.missing_deps(record_id, &change).is_empty() {
                    continue;
                }
                self.tx
                    .execute("DELETE FROM held WHERE hash = ?1", [&hash])?;
                let origin = uuid_col(origin)?;
                if self.apply(record_id, change, &bytes, origin)? {
                    progress = true;
                }
            }
            if !progress {
                return Ok(());
            }
        }
    }
}

/// Whether `change` may be taken into `doc`: its shape and limits, a commune from the area
/// list, and the sender's scope before and after. On success, the new document and state.
fn judge(
    doc: &mut RecordDoc,
    change: &Change,
    before: Option<&State>,
    scope: &Scope,
) -> Result<(RecordDoc, State), RejectCode> {
    let (candidate, shape) = doc.candidate(change, Fields::Schema).map_err(|r| match r {
        Refusal::TooLarge(_) => RejectCode::TooLarge,
        Refusal::Layout(_) | Refusal::Unapplicable(_) => RejectCode::Invalid,
    })?;
    // A collector's phone may not approve its own records, nor merge or hide any.
    if shape.supervisory && !scope.reviews {
        return Err(RejectCode::NotPermitted);
    }
    let view = candidate.view().map_err(|_| RejectCode::Invalid)?;
    let after = State::after(&view, before);
    // A record's commune must exist: a record moved to an invented code would hide from every
    // supervisor of its real area.
    if !after
        .commune
        .as_deref()
        .is_some_and(|c| Areas::bundled().is_commune(c))
    {
        return Err(RejectCode::Invalid);
    }
    if let Some(before) = before {
        check_scope(scope, before)?;
    }
    check_scope(scope, &after)?;
    Ok((candidate, after))
}

fn check_scope(scope: &Scope, state: &State) -> Result<(), RejectCode> {
    if state.sensitive && !scope.sensitive {
        return Err(RejectCode::NotPermitted);
    }
    match &state.commune {
        Some(c) if scope.allows(state.record_type, c) => Ok(()),
        _ => Err(RejectCode::OutOfScope),
    }
}

/// Logs into `stream` every change of the record it has not had yet: the newest change when
/// the record stays where it is, its whole history the first time it enters the stream, and
/// only what happened meanwhile when it comes back. A record's history is logged into a stream
/// at most once, however often it moves.
fn log_new_history(tx: &Transaction<'_>, record_id: Uuid, stream: &str) -> StorageResult<()> {
    let upto: i64 = tx
        .query_row(
            "SELECT upto FROM record_streams WHERE record_id = ?1 AND stream = ?2",
            params![record_id.as_bytes(), stream],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0);
    tx.execute(
        "INSERT INTO log (stream, record_id, hash, origin_device)
         SELECT ?1, record_id, hash, origin_device FROM changes
         WHERE record_id = ?2 AND seq > ?3 ORDER BY seq",
        params![stream, record_id.as_bytes(), upto],
    )?;
    tx.execute(
        "INSERT INTO record_streams (record_id, stream, upto)
         SELECT ?1, ?2, MAX(seq) FROM changes WHERE record_id = ?1
         ON CONFLICT(record_id, stream) DO UPDATE SET upto = excluded.upto",
        params![record_id.as_bytes(), stream],
    )?;
    Ok(())
}
