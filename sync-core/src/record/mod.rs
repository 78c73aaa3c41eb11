//! A record as one Automerge document: the edit operations an officer makes, and the reads that
//! show current values and the concurrent values of a field in conflict.
//!
//! Layout: the document's root map is flat. `$id`, `$type`, `$schema`, `$deleted`,
//! `$merged_into`, `$absorbed/<id>`, `$review` and `$review_comment` hold metadata;
//! `f/<field>` a scalar field; `s/<field>/<member>` = true one member of a set field.
//! Keeping everything at the root means two devices never create competing nested objects, so
//! concurrent additions to a set from several phones all survive. Each edit is committed as its
//! own change, stamped with the device's clock only as a label for readers ("when the officer
//! made it, as the phone says"): order comes from the causal graph, never from that time.
//! The creation change carries the record's own id, so two records created with the same
//! fields on one phone are still two different changes.

mod check;
mod merge;
mod review;
mod view;

pub use check::{
    check_layout, decode_change, Fields, LayoutError, Shape, MAX_CHANGE_BYTES, MAX_DOC_OPS,
    MAX_OPS_PER_CHANGE, MAX_REVIEW_COMMENT_CHARS, MAX_SET_MEMBERS,
};
pub use merge::{resolve, EditAfterMerge};
pub use review::{ChangedField, Review, ReviewPhase};
pub use view::{ConflictValue, FieldConflict, RecordView, ReviewState, Status};

use crate::error::{CoreError, Result};
use crate::model::{
    check_free_text, schema_of, validate_field, validate_new_record, validate_set_member, Problem,
    ProblemCode, RecordType, Value, SCHEMA_VERSION,
};
use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, AutoCommit, Change, ChangeHash, ReadDoc, ScalarValue, ROOT};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

pub(crate) const KEY_ID: &str = "$id";
pub(crate) const KEY_TYPE: &str = "$type";
pub(crate) const KEY_SCHEMA: &str = "$schema";
pub(crate) const KEY_DELETED: &str = "$deleted";
pub(crate) const KEY_MERGED_INTO: &str = "$merged_into";
pub(crate) const KEY_REVIEW: &str = "$review";
pub(crate) const KEY_REVIEW_COMMENT: &str = "$review_comment";
/// `$absorbed/<id>` = true on the record a duplicate was merged into, one key per duplicate.
pub(crate) const ABSORBED_PREFIX: &str = "$absorbed/";

pub(crate) fn absorbed_key(merged: Uuid) -> String {
    format!("{ABSORBED_PREFIX}{merged}")
}

pub(crate) fn field_key(field: &str) -> String {
    format!("f/{field}")
}

pub(crate) fn member_key(field: &str, member: &str) -> String {
    format!("s/{field}/{member}")
}

/// The Automerge actor a device writes under, derived from its secret key. A device proves it
/// owns an actor by showing the key (at enrolment); knowing the actor, which every change
/// shows, is not enough to claim it.
pub fn actor_for_key(key: &[u8; 32]) -> Uuid {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(b"fieldsync actor v1")
        .chain_update(key)
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// One change made locally or received: the unit of storage and of sync.
#[derive(Clone, Debug)]
pub struct RecordChange {
    pub record_id: Uuid,
    pub hash: ChangeHash,
    pub bytes: Vec<u8>,
}

/// A record's Automerge document with the edit operations of the record API.
pub struct RecordDoc {
    id: Uuid,
    doc: AutoCommit,
    clock: Clock,
}

/// Where a document's new changes get their `time` (seconds since 1970): a label for the
/// history only. [`device_clock`] unless fixed for a reproducible example.
pub type Clock = fn() -> i64;

impl RecordDoc {
    /// Creates a record from a complete set of fields; validation failures write nothing.
    pub fn create(
        id: Uuid,
        record_type: RecordType,
        fields: &BTreeMap<String, Value>,
        actor: Uuid,
    ) -> Result<(RecordDoc, RecordChange)> {
        RecordDoc::create_with_clock(id, record_type, fields, actor, device_clock)
    }

    /// [`RecordDoc::create`], its changes stamped by `clock`.
    pub fn create_with_clock(
        id: Uuid,
        record_type: RecordType,
        fields: &BTreeMap<String, Value>,
        actor: Uuid,
        clock: Clock,
    ) -> Result<(RecordDoc, RecordChange)> {
        let problems = validate_new_record(record_type, fields);
        if !problems.is_empty() {
            return Err(CoreError::Validation(problems));
        }
        let mut doc = AutoCommit::new().with_actor(ActorId::from(actor.as_bytes()));
        doc.put(ROOT, KEY_ID, id.to_string())?;
        doc.put(ROOT, KEY_TYPE, record_type.as_str())?;
        doc.put(ROOT, KEY_SCHEMA, SCHEMA_VERSION as i64)?;
        doc.put(ROOT, KEY_DELETED, false)?;
        for (name, value) in fields {
            doc.put(ROOT, field_key(name), to_scalar(value))?;
        }
        let mut record = RecordDoc { id, doc, clock };
        let change = record
            .commit()?
            .ok_or_else(|| CoreError::BadChange("creation produced no change".into()))?;
        Ok((record, change))
    }

    /// An empty document that will be filled by applying received changes.
    pub fn empty(id: Uuid, actor: Uuid) -> RecordDoc {
        RecordDoc {
            id,
            doc: AutoCommit::new().with_actor(ActorId::from(actor.as_bytes())),
            clock: device_clock,
        }
    }

    /// This document, its later changes stamped by `clock`.
    pub fn with_clock(mut self, clock: Clock) -> RecordDoc {
        self.clock = clock;
        self
    }

    /// Loads a saved document (as written by [`RecordDoc::save`]).
    pub fn load(id: Uuid, bytes: &[u8], actor: Uuid) -> Result<RecordDoc> {
        let doc = AutoCommit::load(bytes)
            .map_err(|e| CoreError::Corrupt {
                id,
                reason: e.to_string(),
            })?
            .with_actor(ActorId::from(actor.as_bytes()));
        Ok(RecordDoc {
            id,
            doc,
            clock: device_clock,
        })
    }

    pub fn id(&self) -> Uuid {
        self.id
    }

    /// The record's type, or `None` while the creating change has not arrived yet.
    pub fn record_type(&self) -> Option<RecordType> {
        match self.doc.get(ROOT, KEY_TYPE) {
            Ok(Some((automerge::Value::Scalar(s), _))) => match s.as_ref() {
                ScalarValue::Str(t) => RecordType::parse(t),
                _ => None,
            },
            _ => None,
        }
    }

    fn require_type(&self) -> Result<RecordType> {
        self.record_type().ok_or_else(|| CoreError::Corrupt {
            id: self.id,
            reason: "document has no record type".into(),
        })
    }

    /// Sets a scalar field, after checking it against the schema.
    pub fn set_field(&mut self, field: &str, value: &Value) -> Result<Option<RecordChange>> {
        let record_type = self.require_type()?;
        validate_field(record_type, field, value).map_err(|p| CoreError::Validation(vec![p]))?;
        self.doc.put(ROOT, field_key(field), to_scalar(value))?;
        self.commit()
    }

    /// Clears an optional field. Clearing a required field is a validation error.
    pub fn clear_field(&mut self, field: &str) -> Result<Option<RecordChange>> {
        let record_type = self.require_type()?;
        let spec = schema_of(record_type).field(field).ok_or_else(|| {
            CoreError::Validation(vec![Problem {
                field: field.into(),
                code: ProblemCode::UnknownField,
                message: format!("{record_type} has no field '{field}'"),
            }])
        })?;
        if spec.required {
            return Err(CoreError::Validation(vec![Problem {
                field: field.into(),
                code: ProblemCode::Required,
                message: "is required and cannot be cleared".into(),
            }]));
        }
        self.doc.delete(ROOT, field_key(field))?;
        self.commit()
    }

    /// Adds a member to a set field (group members, attendees, support given).
    pub fn add_member(&mut self, field: &str, member: &str) -> Result<Option<RecordChange>> {
        let record_type = self.require_type()?;
        validate_set_member(record_type, field, member)
            .map_err(|p| CoreError::Validation(vec![p]))?;
        self.doc.put(ROOT, member_key(field, member), true)?;
        self.commit()
    }

    /// Removes a member from a set field. A concurrent add of the same member wins.
    pub fn remove_member(&mut self, field: &str, member: &str) -> Result<Option<RecordChange>> {
        let record_type = self.require_type()?;
        validate_set_member(record_type, field, member)
            .map_err(|p| CoreError::Validation(vec![p]))?;
        self.doc.delete(ROOT, member_key(field, member))?;
        self.commit()
    }

    /// Marks the record deleted. Nothing is ever removed; [`RecordDoc::restore`] undoes it.
    pub fn soft_delete(&mut self) -> Result<Option<RecordChange>> {
        self.require_type()?;
        self.doc.put(ROOT, KEY_DELETED, true)?;
        self.commit()
    }

    pub fn restore(&mut self) -> Result<Option<RecordChange>> {
        self.require_type()?;
        self.doc.put(ROOT, KEY_DELETED, false)?;
        self.commit()
    }

    /// A supervisor's review: approve the record, or return it to the collector with a
    /// comment saying what to fix. A later review supersedes an earlier one.
    pub fn set_review(
        &mut self,
        state: ReviewState,
        comment: Option<&str>,
    ) -> Result<Option<RecordChange>> {
        self.require_type()?;
        let comment = comment.filter(|c| !c.trim().is_empty());
        if let Some(c) = comment {
            check_free_text("review_comment", MAX_REVIEW_COMMENT_CHARS, c)
                .map_err(|p| CoreError::Validation(vec![p]))?;
        }
        // Written anew even when the state is the same: an approval covers what its own change
        // has seen (see `Review`), so approving again after an edit must be a new change.
        if self.view()?.review == state {
            self.doc.delete(ROOT, KEY_REVIEW)?;
        }
        self.doc.put(ROOT, KEY_REVIEW, state.as_str())?;
        match comment {
            Some(c) => self.doc.put(ROOT, KEY_REVIEW_COMMENT, c)?,
            None => self.doc.delete(ROOT, KEY_REVIEW_COMMENT)?,
        }
        self.commit()
    }

    /// The value a root key (`f/<field>`, `$deleted`, ...) had right after `change`, as far as
    /// that change knew: what a change that only deleted a conflicting value left in place.
    pub fn value_after(&self, key: &str, change: ChangeHash) -> Option<Value> {
        match self.doc.get_at(ROOT, key, &[change]) {
            Ok(Some((automerge::Value::Scalar(s), _))) => from_scalar(&s),
            _ => None,
        }
    }

    /// The value a root key had just before `change`, as far as that change knew (its
    /// dependencies); `None` when unset then, or when the change is not in the document.
    pub fn value_before(&mut self, key: &str, change: ChangeHash) -> Option<Value> {
        let deps = self.doc.get_change_by_hash(&change)?.deps().to_vec();
        self.value_at(key, &deps)
    }

    /// The value a root key had at `heads` (no heads: before anything, so `None`).
    pub fn value_at(&self, key: &str, heads: &[ChangeHash]) -> Option<Value> {
        if heads.is_empty() {
            return None;
        }
        match self.doc.get_at(ROOT, key, heads) {
            Ok(Some((automerge::Value::Scalar(s), _))) => from_scalar(&s),
            _ => None,
        }
    }

    /// Current values, sets, flags and field conflicts.
    pub fn view(&self) -> Result<RecordView> {
        view::read(self)
    }

    /// Applies changes received from elsewhere. Changes whose dependencies are missing are
    /// held inside the document until those arrive.
    pub fn apply(&mut self, changes: impl IntoIterator<Item = Change>) -> Result<()> {
        let changes: Vec<Change> = changes.into_iter().collect();
        // A malformed change must be an error, never a crash of the server or the app, even
        // if it trips an assertion inside Automerge.
        let doc = &mut self.doc;
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            doc.apply_changes(changes)
        }))
        .map_err(|_| CoreError::BadChange("automerge could not apply the change".into()))??;
        Ok(())
    }

    /// Checks a received change against this record: its layout, its type rules, and the
    /// document limits it would reach. Nothing is applied.
    pub fn admit(&mut self, change: &Change, fields: Fields) -> Result<Shape, Refusal> {
        let shape = check_layout(change, self.id, self.record_type(), fields)?;
        let ops = self.doc.stats().num_ops + change.len() as u64;
        if ops > MAX_DOC_OPS {
            return Err(Refusal::TooLarge(format!(
                "the record would hold {ops} operations (at most {MAX_DOC_OPS})"
            )));
        }
        let new_members: Vec<&str> = shape
            .member_puts
            .iter()
            .filter(|key| !matches!(self.doc.get(ROOT, key.as_str()), Ok(Some(_))))
            .map(String::as_str)
            .collect();
        if !new_members.is_empty() {
            let mut per_set: BTreeMap<String, usize> = BTreeMap::new();
            for key in self
                .doc
                .keys(ROOT)
                .chain(new_members.iter().map(|k| k.to_string()))
            {
                if let Some((field, _)) = key.strip_prefix("s/").and_then(|r| r.split_once('/')) {
                    let n = per_set.entry(field.to_owned()).or_default();
                    *n += 1;
                    if *n > MAX_SET_MEMBERS {
                        return Err(Refusal::TooLarge(format!(
                            "{field} would hold more than {MAX_SET_MEMBERS} members"
                        )));
                    }
                }
            }
        }
        Ok(shape)
    }

    /// [`RecordDoc::admit`], then a copy of the document with the change applied; this
    /// document is untouched, so the caller can look at the result (scope, say) before
    /// keeping it.
    pub fn candidate(
        &mut self,
        change: &Change,
        fields: Fields,
    ) -> Result<(RecordDoc, Shape), Refusal> {
        let shape = self.admit(change, fields)?;
        let mut next = self.fork();
        next.apply([change.clone()])
            .map_err(|e| Refusal::Unapplicable(e.to_string()))?;
        if shape.creates.is_some() && next.record_type() != shape.creates {
            return Err(Refusal::Unapplicable(
                "creation does not set the record type".into(),
            ));
        }
        Ok((next, shape))
    }

    /// The document rebuilt from its changes without `dropped` and without every change that
    /// depends on one of them, with the hashes actually left out (causal order).
    pub fn without(
        &mut self,
        dropped: &BTreeSet<ChangeHash>,
    ) -> Result<(RecordDoc, Vec<ChangeHash>)> {
        let mut gone: BTreeSet<ChangeHash> = BTreeSet::new();
        let mut left_out = Vec::new();
        let mut kept = Vec::new();
        // get_changes is in causal order, so a change's dependencies are judged before it.
        for change in self.doc.get_changes(&[]) {
            let hash = change.hash();
            if dropped.contains(&hash) || change.deps().iter().any(|d| gone.contains(d)) {
                gone.insert(hash);
                left_out.push(hash);
            } else {
                kept.push(change);
            }
        }
        let mut rebuilt = RecordDoc::empty(self.id, self.actor());
        rebuilt.apply(kept)?;
        Ok((rebuilt, left_out))
    }

    fn actor(&self) -> Uuid {
        Uuid::from_slice(self.doc.get_actor().to_bytes()).unwrap_or_default()
    }

    /// An independent copy, to try changes on without touching this one.
    pub fn fork(&mut self) -> RecordDoc {
        RecordDoc {
            id: self.id,
            doc: self.doc.fork(),
            clock: self.clock,
        }
    }

    /// Whether the document contains the change with this hash.
    pub fn has_change(&mut self, hash: &ChangeHash) -> bool {
        self.doc.get_change_by_hash(hash).is_some()
    }

    /// Hashes the document needs before it can apply what it holds.
    pub fn missing_deps(&mut self) -> Vec<ChangeHash> {
        self.doc.get_missing_deps(&[])
    }

    pub fn heads(&mut self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    /// Every change of the document, in causal order.
    pub fn changes(&mut self) -> Vec<Change> {
        self.doc.get_changes(&[])
    }

    pub fn change_by_hash(&mut self, hash: &ChangeHash) -> Option<Change> {
        self.doc.get_change_by_hash(hash)
    }

    /// The whole document, compressed.
    pub fn save(&mut self) -> Vec<u8> {
        self.doc.save()
    }

    pub(crate) fn doc(&self) -> &AutoCommit {
        &self.doc
    }

    /// Commits pending operations as one change; `None` when the edit changed nothing (clearing
    /// an absent field, removing a non-member).
    fn commit(&mut self) -> Result<Option<RecordChange>> {
        // The time is a label for readers only: ordering is causal, and a phone's clock is
        // not to be trusted.
        let options = CommitOptions::default().with_time((self.clock)());
        let Some(hash) = self.doc.commit_with(options) else {
            return Ok(None);
        };
        let mut change = self
            .doc
            .get_change_by_hash(&hash)
            .ok_or_else(|| CoreError::BadChange("committed change not found".into()))?;
        Ok(Some(RecordChange {
            record_id: self.id,
            hash,
            bytes: change.bytes().into_owned(),
        }))
    }
}

/// This device's clock in seconds since 1970, written into each change as its `time`: what a
/// history shows as "made at, by the phone's clock". Nothing orders or merges by it.
pub fn device_clock() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(0))
        .unwrap_or(0)
}

fn to_scalar(value: &Value) -> ScalarValue {
    match value {
        Value::Bool(b) => ScalarValue::Boolean(*b),
        Value::Int(i) => ScalarValue::Int(*i),
        Value::Text(s) => ScalarValue::Str(s.as_str().into()),
    }
}

/// A stored scalar as a field value (`None` for kinds fieldsync never writes).
pub fn from_scalar(scalar: &ScalarValue) -> Option<Value> {
    match scalar {
        ScalarValue::Boolean(b) => Some(Value::Bool(*b)),
        ScalarValue::Int(i) => Some(Value::Int(*i)),
        ScalarValue::Uint(u) => i64::try_from(*u).ok().map(Value::Int),
        ScalarValue::Str(s) => Some(Value::Text(s.to_string())),
        _ => None,
    }
}

/// Why a received change is not taken into a record. Every variant is safe to show: it names
/// keys and limits, never values.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The change does not have the shape of a fieldsync record edit.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// The change would take the record past a size limit.
    #[error("{0}")]
    TooLarge(String),
    /// Automerge cannot apply it to this record (e.g. it reuses a sequence number).
    #[error("cannot be applied: {0}")]
    Unapplicable(String),
}
