//! A record as one Automerge document: the edit operations an officer makes, and the reads that
//! show current values and the concurrent values of a field in conflict.
//!
//! Layout: the document's root map is flat. `$type`, `$schema`, `$deleted`, `$merged_into`,
//! `$review` and `$review_comment` hold metadata; `f/<field>` a scalar field; `s/<field>/<member>` = true one member of a set field.
//! Keeping everything at the root means two devices never create competing nested objects, so
//! concurrent additions to a set from several phones all survive. Each edit is committed as its
//! own change with no timestamp: order comes from the causal graph, never a phone's clock.

mod view;

pub use view::{ConflictValue, FieldConflict, RecordView, ReviewState, Status};

use crate::error::{CoreError, Result};
use crate::model::{
    schema_of, validate_field, validate_new_record, validate_set_member, Problem, ProblemCode,
    RecordType, Value, SCHEMA_VERSION,
};
use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, AutoCommit, Change, ChangeHash, ReadDoc, ScalarValue, ROOT};
use std::collections::BTreeMap;
use uuid::Uuid;

pub(crate) const KEY_TYPE: &str = "$type";
pub(crate) const KEY_SCHEMA: &str = "$schema";
pub(crate) const KEY_DELETED: &str = "$deleted";
pub(crate) const KEY_MERGED_INTO: &str = "$merged_into";
pub(crate) const KEY_REVIEW: &str = "$review";
pub(crate) const KEY_REVIEW_COMMENT: &str = "$review_comment";

pub(crate) fn field_key(field: &str) -> String {
    format!("f/{field}")
}

pub(crate) fn member_key(field: &str, member: &str) -> String {
    format!("s/{field}/{member}")
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
}

impl RecordDoc {
    /// Creates a record from a complete set of fields; validation failures write nothing.
    pub fn create(
        id: Uuid,
        record_type: RecordType,
        fields: &BTreeMap<String, Value>,
        actor: Uuid,
    ) -> Result<(RecordDoc, RecordChange)> {
        let problems = validate_new_record(record_type, fields);
        if !problems.is_empty() {
            return Err(CoreError::Validation(problems));
        }
        let mut doc = AutoCommit::new().with_actor(ActorId::from(actor.as_bytes()));
        doc.put(ROOT, KEY_TYPE, record_type.as_str())?;
        doc.put(ROOT, KEY_SCHEMA, SCHEMA_VERSION as i64)?;
        doc.put(ROOT, KEY_DELETED, false)?;
        for (name, value) in fields {
            doc.put(ROOT, field_key(name), to_scalar(value))?;
        }
        let mut record = RecordDoc { id, doc };
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
        }
    }

    /// Loads a saved document (as written by [`RecordDoc::save`]).
    pub fn load(id: Uuid, bytes: &[u8], actor: Uuid) -> Result<RecordDoc> {
        let doc = AutoCommit::load(bytes)
            .map_err(|e| CoreError::Corrupt {
                id,
                reason: e.to_string(),
            })?
            .with_actor(ActorId::from(actor.as_bytes()));
        Ok(RecordDoc { id, doc })
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

    /// Marks this record a duplicate of `survivor`: readers are redirected, nothing is dropped.
    pub fn merge_into(&mut self, survivor: Uuid) -> Result<Option<RecordChange>> {
        self.require_type()?;
        self.doc.put(ROOT, KEY_MERGED_INTO, survivor.to_string())?;
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
        self.doc.put(ROOT, KEY_REVIEW, state.as_str())?;
        match comment {
            Some(c) => self.doc.put(ROOT, KEY_REVIEW_COMMENT, c)?,
            None => self.doc.delete(ROOT, KEY_REVIEW_COMMENT)?,
        }
        self.commit()
    }

    /// Current values, sets, flags and field conflicts.
    pub fn view(&self) -> Result<RecordView> {
        view::read(self)
    }

    /// Applies changes received from elsewhere. Changes whose dependencies are missing are
    /// held inside the document until those arrive.
    pub fn apply(&mut self, changes: impl IntoIterator<Item = Change>) -> Result<()> {
        let changes: Vec<Change> = changes.into_iter().collect();
        self.doc.apply_changes(changes)?;
        Ok(())
    }

    /// An independent copy, to try changes on without touching this one.
    pub fn fork(&mut self) -> RecordDoc {
        RecordDoc {
            id: self.id,
            doc: self.doc.fork(),
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
        // No time: ordering is causal, and a phone's clock is not to be trusted.
        let Some(hash) = self.doc.commit_with(CommitOptions::default()) else {
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

fn to_scalar(value: &Value) -> ScalarValue {
    match value {
        Value::Bool(b) => ScalarValue::Boolean(*b),
        Value::Int(i) => ScalarValue::Int(*i),
        Value::Text(s) => ScalarValue::Str(s.as_str().into()),
    }
}

pub(crate) fn from_scalar(scalar: &ScalarValue) -> Option<Value> {
    match scalar {
        ScalarValue::Boolean(b) => Some(Value::Bool(*b)),
        ScalarValue::Int(i) => Some(Value::Int(*i)),
        ScalarValue::Uint(u) => i64::try_from(*u).ok().map(Value::Int),
        ScalarValue::Str(s) => Some(Value::Text(s.to_string())),
        _ => None,
    }
}

/// Decodes one change from bytes received over the network or read from disk.
pub fn decode_change(bytes: &[u8]) -> Result<Change> {
    Change::from_bytes(bytes.to_vec()).map_err(|e| CoreError::BadChange(e.to_string()))
}
