//! Ingesting pushed changes inside one transaction. For each change, in order: deduplicate by
//! hash (a known hash under another record is refused, never acknowledged); answer a change the
//! server refused before the same way; take a change only with its author's signature from its
//! author's device, or with this server's receipt from any device (a change a restore lost,
//! given back by a phone that received it); treat a record the caller may not see exactly like
//! an unknown one; hold a change whose dependencies are missing (bounded per account,
//! expiring); otherwise check its shape, its limits and its scope before and after, store it
//! with a receipt, log it into its stream at most once, and apply held changes it completes.
//! Only refusals of a sender's own changes are remembered: what one device relays never decides
//! for another's change.

use super::{merged, uuid_col};
use crate::scope::{stream_key, Scope};
use crate::storage::{PushOutcome, StorageError, StorageResult};
use automerge::{Change, ChangeHash};
use fieldsync_core::model::Areas;
use fieldsync_core::protocol::{NeedEntry, RejectCode, Rejection};
use fieldsync_core::record::{check_layout, decode_change, Fields, Refusal};
use fieldsync_core::signing::{actor_for_public_key, verify_change, DeviceKey, SIGNATURE_BYTES};
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
    /// A device's sync: its own changes with its signature, others' with this server's receipt.
    Device,
    /// Changes made on the server itself (demo seed, supervisor edits); their actor is bound
    /// to the writing device so that nobody else can ever push under it.
    Server,
}

/// How a pushed change showed where it comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Proof {
    /// Made by the sender: a device's change with its signature, or the server's own.
    Own,
    /// Carries this server's receipt: accepted here before (and lost by a restore since), so
    /// its author's rights were checked then.
    Receipt,
}

type Signature = [u8; SIGNATURE_BYTES];

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
    /// Signs a receipt for every change taken in (read from the database when first needed).
    key: std::cell::OnceCell<DeviceKey>,
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
            key: std::cell::OnceCell::new(),
            now_ms,
            docs: BTreeMap::new(),
            outcome: PushOutcome::default(),
            need: BTreeSet::new(),
        }
    }

    /// Judges one pushed change. `signature` is the one it came with (none for the server's
    /// own changes, which the server signs itself).
    pub fn push(
        &mut self,
        record_id: Uuid,
        change: Change,
        bytes: &[u8],
        signature: Option<&Signature>,
    ) -> StorageResult<()> {
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
        let (proof, signature) = match self.authenticate(record_id, &change, signature)? {
            Ok(found) => found,
            Err(code) => return self.refuse(record_id, hash, code, false),
        };
        // Only the sender's own refusals are kept: a change relayed on another's behalf that
        // fails here may still come from its author, and must not be refused to it.
        let remember = proof == Proof::Own;
        if remember && self.unnamed_creation(record_id, &change)? {
            return self.refuse(record_id, hash, RejectCode::Invalid, true);
        }
        self.load(record_id)?;
        // A record the caller may not see answers exactly like one the server does not know:
        // every dependency missing, a creation judged as the first of its record. So neither
        // the codes nor the held-change cap tell a hidden id from an unknown one.
        let hidden = self.docs[&record_id]
            .state
            .as_ref()
            .is_some_and(|s| !s.visible_to(self.scope));
        let missing = if hidden {
            change.deps().to_vec()
        } else {
            self.missing_deps(record_id, &change)
        };
        if let Some(code) = self.refused_dependency(&missing)? {
            return self.refuse(record_id, hash, code, remember);
        }
        if !missing.is_empty() {
            if self.expired(&hash)? {
                return self.refuse(record_id, hash, RejectCode::MissingDependency, false);
            }
            let known_type = match hidden {
                true => None,
                false => self.docs[&record_id].state.as_ref().map(|s| s.record_type),
            };
            return self.hold(
                record_id, &change, bytes, known_type, &missing, &signature, proof,
            );
        }
        if hidden {
            // A creation under the id of a record that exists: refused as it would be for a
            // record the caller can see, with the code an unknown id would get if it fails.
            let mut empty = RecordDoc::empty(record_id, SERVER_ACTOR);
            let may_review = self.may_review(proof, self.scope);
            let code = judge(&mut empty, &change, None, self.scope, may_review)
                .err()
                .unwrap_or(RejectCode::Invalid);
            return self.refuse(record_id, hash, code, remember);
        }
        if self.apply(record_id, change, bytes, self.device, proof, &signature)? {
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

    /// A missing dependency refused for good (its author's own change, remembered, now or in
    /// an earlier request): the change can never be applied, so it is refused rather than
    /// held. A dependency refused only as relayed may still arrive from its author.
    fn refused_dependency(&self, missing: &[ChangeHash]) -> StorageResult<Option<RejectCode>> {
        for dep in missing {
            if self.refused_before(dep)?.is_some() {
                return Ok(Some(RejectCode::MissingDependency));
            }
        }
        Ok(None)
    }

    /// Whether this change waited for its dependencies longer than the hold allows when this
    /// device sent it before; the device hears of it once, and nothing is kept against it.
    fn expired(&self, hash: &ChangeHash) -> StorageResult<bool> {
        let n = self.tx.execute(
            "DELETE FROM expired WHERE hash = ?1 AND origin_device = ?2",
            params![&hash.0[..], self.device.as_bytes()],
        )?;
        Ok(n > 0)
    }

    fn key(&self) -> StorageResult<&DeviceKey> {
        if let Some(key) = self.key.get() {
            return Ok(key);
        }
        let key = super::signing_key(self.tx)?;
        Ok(self.key.get_or_init(|| key))
    }

    /// Where a change comes from, shown by its signature: the sender's own change signed with
    /// the key its actor is bound to, or a change carrying this server's receipt. Anything
    /// else is refused: `BadSignature` for the sender's own change without its signature,
    /// `NotAuthor` for another's change (or an unknown author's) without a receipt.
    fn authenticate(
        &self,
        record_id: Uuid,
        change: &Change,
        signature: Option<&Signature>,
    ) -> StorageResult<Result<(Proof, Option<Signature>), RejectCode>> {
        let hash = change.hash();
        let actor = change.actor_id().to_bytes();
        let bound: Option<(Vec<u8>, Option<Vec<u8>>)> = self
            .tx
            .query_row(
                "SELECT device_id, public_key FROM actors WHERE actor = ?1",
                [actor],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if self.authors == Authors::Server {
            return Ok(match bound {
                Some((device, _)) if device.as_slice() != self.device.as_bytes() => {
                    Err(RejectCode::NotAuthor)
                }
                Some(_) => Ok((Proof::Own, None)),
                None => {
                    self.tx.execute(
                        "INSERT INTO actors (actor, device_id) VALUES (?1, ?2)",
                        params![actor, self.device.as_bytes()],
                    )?;
                    Ok((Proof::Own, None))
                }
            });
        }
        let Some(signature) = signature else {
            return Ok(Err(RejectCode::BadSignature));
        };
        let from_sender = bound
            .as_ref()
            .is_some_and(|(device, _)| device.as_slice() == self.device.as_bytes());
        let author_key = bound
            .as_ref()
            .and_then(|(_, key)| <[u8; 32]>::try_from(key.as_deref()?).ok());
        if from_sender
            && author_key.is_some_and(|k| verify_change(&k, record_id, &hash.0, signature))
        {
            return Ok(Ok((Proof::Own, Some(*signature))));
        }
        if verify_change(&self.key()?.public_key(), record_id, &hash.0, signature) {
            return Ok(Ok((Proof::Receipt, Some(*signature))));
        }
        Ok(Err(if from_sender {
            RejectCode::BadSignature
        } else {
            RejectCode::NotAuthor
        }))
    }

    /// A device's own creation that does not name its record (`$id`). Every creation since
    /// protocol 2 does, which keeps two records created alike from sharing one change; only a
    /// store from before protocol 2 has unsent creations without it, under an older actor
    /// (not the one its key derives), and those are taken.
    fn unnamed_creation(&self, record_id: Uuid, change: &Change) -> StorageResult<bool> {
        if !change.deps().is_empty() || self.authors == Authors::Server {
            return Ok(false);
        }
        let Ok(shape) = check_layout(change, record_id, None, Fields::Schema) else {
            return Ok(false); // refused on its shape later, like any other change
        };
        if shape.names_id {
            return Ok(false);
        }
        let actor = change.actor_id().to_bytes();
        let key: Option<Vec<u8>> = self
            .tx
            .query_row(
                "SELECT public_key FROM actors WHERE actor = ?1",
                [actor],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        Ok(key
            .and_then(|k| <[u8; 32]>::try_from(k.as_slice()).ok())
            .is_some_and(|k| actor_for_public_key(&k).as_bytes() == actor))
    }

    /// May this change write review and merge keys: a receipt's were judged when the server
    /// first took it; otherwise the sender's role decides.
    fn may_review(&self, proof: Proof, scope: &Scope) -> bool {
        proof == Proof::Receipt || scope.reviews
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

    #[allow(clippy::too_many_arguments)]
    fn hold(
        &mut self,
        record_id: Uuid,
        change: &Change,
        bytes: &[u8],
        known_type: Option<RecordType>,
        missing: &[ChangeHash],
        signature: &Option<Signature>,
        proof: Proof,
    ) -> StorageResult<()> {
        let hash = change.hash();
        if check_layout(change, record_id, known_type, Fields::Schema).is_err() {
            return self.refuse(record_id, hash, RejectCode::Invalid, proof == Proof::Own);
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
            "INSERT OR IGNORE INTO held (hash, record_id, bytes, origin_device, missing, received_ms, signature, vouched)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![&hash.0[..], record_id.as_bytes(), bytes, self.device.as_bytes(), missing_bytes,
                    self.now_ms, signature.as_ref().map(|s| &s[..]), proof == Proof::Receipt],
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
        proof: Proof,
        author_signature: &Option<Signature>,
    ) -> StorageResult<bool> {
        let hash = change.hash();
        let scope = self.scope_of(origin)?;
        let may_review = self.may_review(proof, &scope);
        let Some(loaded) = self.docs.get_mut(&record_id) else {
            return Ok(false);
        };
        let before = loaded.state.clone();
        let verdict = judge(
            &mut loaded.doc,
            &change,
            before.as_ref(),
            &scope,
            may_review,
        );
        let (candidate, after) = match verdict {
            Ok(accepted) => accepted,
            Err(code) => {
                if proof == Proof::Own {
                    self.remember_refusal(record_id, hash, code)?;
                }
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
        let receipt = self.key()?.sign_change(record_id, &hash.0);
        let author_signature = author_signature.as_ref().filter(|_| proof == Proof::Own);
        self.tx.execute(
            "INSERT INTO changes (hash, record_id, bytes, origin_device, received_ms, receipt, author_signature)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![&hash.0[..], record_id.as_bytes(), bytes, origin.as_bytes(), self.now_ms,
                    &receipt[..], author_signature.as_ref().map(|s| &s[..])],
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
        type HeldRow = (Vec<u8>, Vec<u8>, Vec<u8>, Option<Vec<u8>>, bool);
        loop {
            let held: Vec<HeldRow> = {
                let mut stmt = self.tx.prepare_cached(
                    "SELECT hash, bytes, origin_device, signature, vouched FROM held WHERE record_id = ?1",
                )?;
                let rows = stmt.query_map([record_id.as_bytes()], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?;
                rows.collect::<Result<_, _>>()?
            };
            let mut progress = false;
            for (hash, bytes, origin, signature, vouched) in held {
                let change = decode_change(&bytes)
                    .map_err(|e| StorageError::Corrupt(format!("held change: {e}")))?;
                if !self.missing_deps(record_id, &change).is_empty() {
                    continue;
                }
                self.tx
                    .execute("DELETE FROM held WHERE hash = ?1", [&hash])?;
                let origin = uuid_col(origin)?;
                let proof = if vouched { Proof::Receipt } else { Proof::Own };
                let signature = signature.and_then(|s| Signature::try_from(s.as_slice()).ok());
                if self.apply(record_id, change, &bytes, origin, proof, &signature)? {
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
    may_review: bool,
) -> Result<(RecordDoc, State), RejectCode> {
    let (candidate, shape) = doc.candidate(change, Fields::Schema).map_err(|r| match r {
        Refusal::TooLarge(_) => RejectCode::TooLarge,
        Refusal::Layout(_) | Refusal::Unapplicable(_) => RejectCode::Invalid,
    })?;
    // A collector's phone may not approve its own records, nor merge or hide any.
    if shape.supervisory && !may_review {
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
