//! The push step: judging pushed changes inside one write transaction. For each change, in
//! order: deduplicate by hash (a known hash under another record is refused, never
//! acknowledged); answer a change the server refused before the same way; take a change only
//! with its author's signature from its author's device, or with this server's receipt from
//! any device (a change a restore lost, given back by a phone that received it); treat a
//! record the caller may not see exactly like an unknown one; hold a change whose dependencies
//! are missing (bounded per account, expiring); otherwise judge it (`judge.rs`), store it with
//! a receipt, log it into its stream at most once, and apply held changes it completes. Only
//! refusals of a sender's own changes are remembered: what one device relays never decides
//! for another's change.

use super::judge::judge;
use super::store::{HeldChange, NewChange, RecordUpdate, Signature, StoredRecord, SyncWrite};
use crate::access::Placement;
use crate::listener::RateLimitedLog;
use crate::scope::Scope;
use crate::storage::{PushOutcome, Pushed, StorageError, StorageResult};
use automerge::{Change, ChangeHash};
use fieldsync_core::protocol::{NeedEntry, RejectCode, Rejection};
use fieldsync_core::record::{check_layout, decode_change, Fields};
use fieldsync_core::signing::{actor_for_public_key, verify_change, DeviceKey};
use fieldsync_core::RecordDoc;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The server never writes through these documents; its actor id only has to exist.
const SERVER_ACTOR: Uuid = Uuid::nil();
/// Held changes one account may have waiting at once (all its devices together), and their
/// bytes. A phone pushes its own changes oldest first, so it has next to nothing held; these
/// caps only stop a flood.
pub const MAX_HELD_PER_ACCOUNT: i64 = 1_000;
pub const MAX_HELD_BYTES_PER_ACCOUNT: i64 = 4 * 1024 * 1024;
/// How long a change waits for missing dependencies before it is refused
/// (`MissingDependency`); the server's clock is used only for this housekeeping.
pub const HELD_TTL_MS: i64 = 7 * 24 * 3600 * 1000;
/// Most changes one request may push (more is `413`); the reference client sends at most
/// `ClientOptions::max_push_changes`.
pub const MAX_PUSH_CHANGES: usize = 1_000;
/// How long one request may spend ingesting its pushed changes. The changes it did not reach
/// stay unacknowledged; the phone sends them again in its next exchange, so a heavy pusher is
/// split into several requests instead of stalling everyone.
pub const INGEST_BUDGET: Duration = Duration::from_millis(150);

static HELD_CAP: RateLimitedLog = RateLimitedLog::new();

/// A device's push: its own changes with its signature, others' with this server's receipt.
/// Stops taking changes once `budget` has passed (the rest stay unanswered).
pub fn push(
    tx: &mut dyn SyncWrite,
    sender: Uuid,
    scope: &Scope,
    changes: &[Pushed],
    now_ms: i64,
    budget: Duration,
) -> StorageResult<PushOutcome> {
    if changes.len() > MAX_PUSH_CHANGES {
        return Err(StorageError::TooLarge(format!(
            "at most {MAX_PUSH_CHANGES} changes per request"
        )));
    }
    let started = Instant::now();
    // Housekeeping is not worth failing a push for (on a full disk, say).
    if let Err(e) = tx.expire_held(now_ms - HELD_TTL_MS) {
        tracing::warn!(error = %e, "expiring held changes failed");
    }
    let mut ingest = Ingest::new(tx, sender, scope, Authors::Device, now_ms);
    for (i, pushed) in changes.iter().enumerate() {
        if i > 0 && started.elapsed() > budget {
            break;
        }
        ingest.push(
            pushed.record_id,
            pushed.change.clone(),
            &pushed.bytes,
            Some(&pushed.signature),
        )?;
    }
    ingest.finish()
}

/// Changes made on the server itself (demo seed, supervisors' edits and merges), written by
/// `device`: their actors are bound to it so that nobody else can ever push under them. The
/// first refusal is returned (and the caller rolls back).
pub fn push_own(
    tx: &mut dyn SyncWrite,
    device: Uuid,
    scope: &Scope,
    changes: &[(Uuid, &[u8])],
    now_ms: i64,
) -> StorageResult<Option<Rejection>> {
    let mut ingest = Ingest::new(tx, device, scope, Authors::Server, now_ms);
    for (record_id, bytes) in changes {
        ingest.push(*record_id, decode_change(bytes)?, bytes, None)?;
    }
    Ok(ingest.finish()?.rejected.into_iter().next())
}

/// Whose changes a batch may carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Authors {
    Device,
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

/// How a change proved its origin, the signature it came with and, for a device's own change,
/// the key that verified it.
type Authenticated = (Proof, Option<Signature>, Option<[u8; 32]>);

struct Loaded {
    doc: RecordDoc,
    /// As of `doc`, so that each change costs one view of the document (the state after it).
    placement: Option<Placement>,
    dirty: bool,
}

struct Ingest<'a> {
    tx: &'a mut dyn SyncWrite,
    device: Uuid,
    scope: &'a Scope,
    authors: Authors,
    /// Signs a receipt for every change taken in (read from storage when first needed).
    key: Option<DeviceKey>,
    now_ms: i64,
    docs: BTreeMap<Uuid, Loaded>,
    outcome: PushOutcome,
    need: BTreeSet<(Uuid, [u8; 32])>,
}

impl<'a> Ingest<'a> {
    fn new(
        tx: &'a mut dyn SyncWrite,
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
            key: None,
            now_ms,
            docs: BTreeMap::new(),
            outcome: PushOutcome::default(),
            need: BTreeSet::new(),
        }
    }

    /// Judges one pushed change. `signature` is the one it came with (none for the server's
    /// own changes, which the server signs itself).
    fn push(
        &mut self,
        record_id: Uuid,
        change: Change,
        bytes: &[u8],
        signature: Option<&Signature>,
    ) -> StorageResult<()> {
        let hash = change.hash();
        match self.tx.change_owner(&hash.0)? {
            Some(owner) if owner == record_id => {
                self.outcome.acked.push(hash.0);
                return Ok(());
            }
            // The same bytes under another record: two records never share a change.
            Some(_) => return self.refuse(record_id, hash, RejectCode::Invalid, false),
            None => {}
        }
        if self
            .tx
            .held_owner(&hash.0)?
            .is_some_and(|owner| owner != record_id)
        {
            return self.refuse(record_id, hash, RejectCode::Invalid, false);
        }
        if let Some(code) = self.tx.refusal(&hash.0)? {
            return self.refuse(record_id, hash, code, false);
        }
        let (proof, signature, key) = match self.authenticate(record_id, &change, signature)? {
            Ok(found) => found,
            Err(code) => return self.refuse(record_id, hash, code, false),
        };
        // Only the sender's own refusals are kept: a change relayed on another's behalf that
        // fails here may still come from its author, and must not be refused to it.
        let remember = proof == Proof::Own;
        if key.is_some_and(|k| unnamed_creation(record_id, &change, &k)) {
            return self.refuse(record_id, hash, RejectCode::Invalid, true);
        }
        self.load(record_id)?;
        // A record the caller may not see answers exactly like one the server does not know:
        // every dependency missing, a creation judged as the first of its record. So neither
        // the codes nor the held-change cap tell a hidden id from an unknown one.
        let hidden = self.docs[&record_id]
            .placement
            .as_ref()
            .is_some_and(|p| !p.visible_to(self.scope));
        let missing = if hidden {
            change.deps().to_vec()
        } else {
            self.missing_deps(record_id, &change)
        };
        if self.refused_dependency(&missing)? {
            return self.refuse(record_id, hash, RejectCode::MissingDependency, remember);
        }
        if !missing.is_empty() {
            if self.tx.take_expired(&hash.0, self.device)? {
                return self.refuse(record_id, hash, RejectCode::MissingDependency, false);
            }
            let known_type = match hidden {
                true => None,
                false => self.docs[&record_id]
                    .placement
                    .as_ref()
                    .map(|p| p.record_type),
            };
            let held = HeldChange {
                hash: hash.0,
                record_id,
                bytes: bytes.to_vec(),
                origin: self.device,
                missing: missing.iter().map(|h| h.0).collect(),
                received_ms: self.now_ms,
                signature,
                vouched: proof == Proof::Receipt,
            };
            return self.hold(&change, held, known_type);
        }
        if hidden {
            // A creation under the id of a record that exists: refused as it would be for a
            // record the caller can see, with the code an unknown id would get if it fails.
            let mut empty = RecordDoc::empty(record_id, SERVER_ACTOR);
            let may_review = may_review(proof, self.scope);
            let code = judge(&mut empty, &change, None, self.scope, may_review)
                .err()
                .unwrap_or(RejectCode::Invalid);
            return self.refuse(record_id, hash, code, remember);
        }
        if self.apply(record_id, change, bytes, self.device, proof, signature)? {
            self.release_held(record_id)?;
        }
        Ok(())
    }

    fn finish(mut self) -> StorageResult<PushOutcome> {
        for (id, loaded) in &mut self.docs {
            if !loaded.dirty {
                continue;
            }
            let placement = loaded.placement.as_ref();
            let sensitive = placement.is_some_and(|p| p.sensitive);
            self.tx.save_record(
                *id,
                &StoredRecord {
                    snapshot: loaded.doc.save(),
                    record_type: placement.map(|p| p.record_type),
                    commune: placement.and_then(|p| p.commune.clone()),
                    sensitive,
                },
            )?;
            if let Ok(view) = loaded.doc.view() {
                let review = loaded.doc.review().unwrap_or_default();
                let merge_edits = match view.merged_into {
                    Some(_) => loaded.doc.edits_after_merge().unwrap_or_default(),
                    None => Vec::new(),
                };
                self.tx.refresh_views(&RecordUpdate {
                    view: &view,
                    review: &review,
                    merge_edits: &merge_edits,
                    sensitive,
                    now_ms: self.now_ms,
                })?;
            }
        }
        self.outcome.need = self
            .need
            .into_iter()
            .map(|(record_id, hash)| NeedEntry { record_id, hash })
            .collect();
        Ok(self.outcome)
    }

    /// A missing dependency refused for good (its author's own change, remembered, now or in
    /// an earlier request): the change can never be applied, so it is refused rather than
    /// held. A dependency refused only as relayed may still arrive from its author.
    fn refused_dependency(&mut self, missing: &[ChangeHash]) -> StorageResult<bool> {
        for dep in missing {
            if self.tx.refusal(&dep.0)?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn key(&mut self) -> StorageResult<&DeviceKey> {
        if self.key.is_none() {
            self.key = Some(self.tx.server_key()?);
        }
        self.key
            .as_ref()
            .ok_or_else(|| StorageError::Corrupt("no signing key".into()))
    }

    /// Where a change comes from, shown by its signature: the sender's own change signed with
    /// the key its actor is bound to, or a change carrying this server's receipt. Anything
    /// else is refused: `BadSignature` for the sender's own change without its signature,
    /// `NotAuthor` for another's change (or an unknown author's) without a receipt. With the
    /// proof, the signature it came with and, for a device's own change, the key it verified.
    fn authenticate(
        &mut self,
        record_id: Uuid,
        change: &Change,
        signature: Option<&Signature>,
    ) -> StorageResult<Result<Authenticated, RejectCode>> {
        let hash = change.hash();
        let actor = change.actor_id().to_bytes();
        let bound = self.tx.actor_binding(actor)?;
        if self.authors == Authors::Server {
            return Ok(match bound {
                Some(b) if b.device != self.device => Err(RejectCode::NotAuthor),
                Some(_) => Ok((Proof::Own, None, None)),
                None => {
                    self.tx.bind_actor(actor, self.device)?;
                    Ok((Proof::Own, None, None))
                }
            });
        }
        let Some(signature) = signature else {
            return Ok(Err(RejectCode::BadSignature));
        };
        let from_sender = bound.as_ref().is_some_and(|b| b.device == self.device);
        let author_key = bound.as_ref().and_then(|b| b.public_key);
        if from_sender
            && author_key.is_some_and(|k| verify_change(&k, record_id, &hash.0, signature))
        {
            return Ok(Ok((Proof::Own, Some(*signature), author_key)));
        }
        if verify_change(&self.key()?.public_key(), record_id, &hash.0, signature) {
            return Ok(Ok((Proof::Receipt, Some(*signature), None)));
        }
        Ok(Err(if from_sender {
            RejectCode::BadSignature
        } else {
            RejectCode::NotAuthor
        }))
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
            self.tx.remember_refusal(record_id, &hash.0, code)?;
        }
        self.outcome.rejected.push(Rejection {
            hash: hash.0,
            record_id,
            code,
        });
        Ok(())
    }

    fn load(&mut self, record_id: Uuid) -> StorageResult<()> {
        if self.docs.contains_key(&record_id) {
            return Ok(());
        }
        let loaded = match self.tx.load_record(record_id)? {
            Some(stored) => Loaded {
                doc: RecordDoc::load(record_id, &stored.snapshot, SERVER_ACTOR)?,
                placement: stored
                    .record_type
                    .map(|t| Placement::new(t, stored.commune, stored.sensitive)),
                dirty: false,
            },
            None => Loaded {
                doc: RecordDoc::empty(record_id, SERVER_ACTOR),
                placement: None,
                dirty: false,
            },
        };
        self.docs.insert(record_id, loaded);
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
        change: &Change,
        held: HeldChange,
        known_type: Option<fieldsync_core::RecordType>,
    ) -> StorageResult<()> {
        let hash = change.hash();
        let own = !held.vouched;
        if check_layout(change, held.record_id, known_type, Fields::Schema).is_err() {
            return self.refuse(held.record_id, hash, RejectCode::Invalid, own);
        }
        // All the account's devices together: enrolling more phones does not raise the cap.
        let (rows, held_bytes) = self.tx.held_of_account(self.device)?;
        if rows >= MAX_HELD_PER_ACCOUNT
            || held_bytes + held.bytes.len() as i64 > MAX_HELD_BYTES_PER_ACCOUNT
        {
            let device = self.device;
            HELD_CAP.warn(|suppressed| {
                tracing::warn!(%device, rows, held_bytes, suppressed, "held-change cap reached");
            });
            return self.refuse(held.record_id, hash, RejectCode::TooLarge, false);
        }
        self.tx.hold(&held)?;
        for dep in &held.missing {
            // A dependency that is itself held is not what the phone must send: its own
            // missing dependencies are.
            if !self.tx.is_held(dep)? {
                self.need.insert((held.record_id, *dep));
            }
        }
        Ok(())
    }

    /// The scope a change is judged by: its sender's. A held change released now was sent by
    /// another device, whose user's scope applies.
    fn scope_of(&mut self, origin: Uuid) -> StorageResult<Scope> {
        if origin == self.device {
            return Ok(self.scope.clone());
        }
        self.tx.scope_of_device(origin)
    }

    /// Applies one change whose dependencies are present. Returns whether it was accepted.
    fn apply(
        &mut self,
        record_id: Uuid,
        change: Change,
        bytes: &[u8],
        origin: Uuid,
        proof: Proof,
        author_signature: Option<Signature>,
    ) -> StorageResult<bool> {
        let hash = change.hash();
        let scope = self.scope_of(origin)?;
        let may_review = may_review(proof, &scope);
        let Some(loaded) = self.docs.get_mut(&record_id) else {
            return Ok(false);
        };
        let before = loaded.placement.clone();
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
                    self.tx.remember_refusal(record_id, &hash.0, code)?;
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
        loaded.placement = Some(after);
        let receipt = self.key()?.sign_change(record_id, &hash.0);
        self.tx.insert_change(&NewChange {
            hash: hash.0,
            record_id,
            bytes,
            origin,
            received_ms: self.now_ms,
            receipt,
            author_signature: author_signature.filter(|_| proof == Proof::Own),
        })?;
        if let Some(stream) = stream {
            self.tx.log_new_history(record_id, &stream)?;
        }
        if origin == self.device {
            self.outcome.acked.push(hash.0);
        }
        Ok(true)
    }

    /// Applies held changes of this record whose dependencies have now all arrived.
    fn release_held(&mut self, record_id: Uuid) -> StorageResult<()> {
        loop {
            let mut progress = false;
            for held in self.tx.held_of_record(record_id)? {
                let change = decode_change(&held.bytes)
                    .map_err(|e| StorageError::Corrupt(format!("held change: {e}")))?;
                if !self.missing_deps(record_id, &change).is_empty() {
                    continue;
                }
                self.tx.unhold(&held.hash)?;
                let proof = if held.vouched {
                    Proof::Receipt
                } else {
                    Proof::Own
                };
                if self.apply(
                    record_id,
                    change,
                    &held.bytes,
                    held.origin,
                    proof,
                    held.signature,
                )? {
                    progress = true;
                }
            }
            if !progress {
                return Ok(());
            }
        }
    }
}

/// A device's own creation, signed with `author_key`, that does not name its record (`$id`).
/// Every creation since protocol 2 does, which keeps two records created alike from sharing one
/// change; only a store from before protocol 2 has unsent creations without it, under an older
/// actor (not the one its key derives), and those are taken.
fn unnamed_creation(record_id: Uuid, change: &Change, author_key: &[u8; 32]) -> bool {
    if !change.deps().is_empty() {
        return false;
    }
    // A creation of another shape is refused on it later, like any other change.
    check_layout(change, record_id, None, Fields::Schema).is_ok_and(|shape| !shape.names_id)
        && actor_for_public_key(author_key).as_bytes() == change.actor_id().to_bytes()
}

/// May this change write review and merge keys: a receipt's were judged when the server first
/// took it; otherwise the sender's role decides.
fn may_review(proof: Proof, scope: &Scope) -> bool {
    proof == Proof::Receipt || scope.reviews
}
