//! Reading a record document: current values, set members, flags and field conflicts.

use super::{
    from_scalar, RecordDoc, ABSORBED_PREFIX, KEY_DELETED, KEY_MERGED_INTO, KEY_REVIEW,
    KEY_REVIEW_COMMENT, KEY_SCHEMA, KEY_TYPE,
};
use crate::error::{CoreError, Result};
use crate::model::{schema_of, RecordType, Value};
use crate::search::fold;
use automerge::{ObjId, ReadDoc, ROOT};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// One of the concurrent values of a field in conflict, with the device that wrote it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictValue {
    pub value: Value,
    /// The writing device's id (its Automerge actor).
    pub device: String,
}

/// A field written concurrently on several devices: every value stays until a resolution.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldConflict {
    pub field: String,
    pub values: Vec<ConflictValue>,
}

/// Where a record stands in the supervisors' review.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewState {
    /// Not reviewed yet.
    #[default]
    Pending,
    Approved,
    /// Sent back to the collector to correct; see the comment.
    Returned,
}

impl ReviewState {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewState::Pending => "pending",
            ReviewState::Approved => "approved",
            ReviewState::Returned => "returned",
        }
    }

    pub fn parse(s: &str) -> Option<ReviewState> {
        [
            ReviewState::Pending,
            ReviewState::Approved,
            ReviewState::Returned,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// Lifecycle state of a record as lists show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Active,
    /// Soft-deleted: hidden from lists by default, restorable.
    Deleted,
    /// A duplicate merged into another record: lists redirect to the survivor.
    Merged,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Deleted => "deleted",
            Status::Merged => "merged",
        }
    }

    pub fn parse(s: &str) -> Status {
        match s {
            "deleted" => Status::Deleted,
            "merged" => Status::Merged,
            _ => Status::Active,
        }
    }
}

/// Everything a reader sees of a record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordView {
    pub id: Uuid,
    pub record_type: RecordType,
    pub schema_version: i64,
    /// Current value of each scalar field; for a field in conflict, a deterministic pick (the same
    /// on every device) among [`RecordView::conflicts`].
    pub fields: BTreeMap<String, Value>,
    pub sets: BTreeMap<String, BTreeSet<String>>,
    pub deleted: bool,
    /// Set when a supervisor merged this record into another (it is a duplicate).
    pub merged_into: Option<Uuid>,
    /// Duplicates merged into this record. Readers honour one only while that record is still
    /// merged into this one (a concurrent merge elsewhere, or an undo, may say otherwise).
    #[serde(default)]
    pub absorbed: BTreeSet<Uuid>,
    pub review: ReviewState,
    pub review_comment: Option<String>,
    pub conflicts: Vec<FieldConflict>,
}

impl RecordView {
    pub fn status(&self) -> Status {
        if self.merged_into.is_some() {
            Status::Merged
        } else if self.deleted {
            Status::Deleted
        } else {
            Status::Active
        }
    }

    pub fn commune(&self) -> Option<&str> {
        self.fields.get("commune").and_then(Value::as_text)
    }

    /// The name lists show: head of household, person, group, activity topic. A support case
    /// shows only its kind, since its title is visible wherever lists are.
    pub fn title(&self) -> String {
        let field = match self.record_type {
            RecordType::Household => "head_name",
            RecordType::Person => "full_name",
            RecordType::Group => "name",
            RecordType::Activity => "topic",
            RecordType::SupportCase => "case_kind",
        };
        self.fields
            .get(field)
            .map(Value::to_string)
            .unwrap_or_default()
    }

    /// The searchable fields, folded for diacritic-insensitive matching.
    pub fn search_text(&self) -> String {
        schema_of(self.record_type)
            .fields
            .iter()
            .filter(|f| f.searchable)
            .filter_map(|f| self.fields.get(f.name))
            .map(|v| fold(&v.to_string()))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

pub(super) fn read(record: &RecordDoc) -> Result<RecordView> {
    let doc = record.doc();
    let record_type = record.record_type().ok_or_else(|| CoreError::Corrupt {
        id: record.id,
        reason: "document has no record type".into(),
    })?;
    let mut view = RecordView {
        id: record.id,
        record_type,
        schema_version: 0,
        fields: BTreeMap::new(),
        sets: BTreeMap::new(),
        deleted: false,
        merged_into: None,
        absorbed: BTreeSet::new(),
        review: ReviewState::Pending,
        review_comment: None,
        conflicts: Vec::new(),
    };
    for key in doc.keys(ROOT) {
        let values: Vec<(Value, String)> = doc
            .get_all(ROOT, key.as_str())?
            .into_iter()
            .filter_map(|(v, id)| match v {
                automerge::Value::Scalar(s) => from_scalar(&s).map(|v| (v, device_of(&id))),
                automerge::Value::Object(_) => None,
            })
            .collect();
        // The value automerge picks as winner is the same on every replica.
        let current = match doc.get(ROOT, key.as_str())? {
            Some((automerge::Value::Scalar(s), _)) => from_scalar(&s),
            _ => None,
        };
        let Some(current) = current else { continue };
        if let Some(field) = key.strip_prefix("f/") {
            if values.len() > 1 {
                view.conflicts.push(conflict(field, values));
            }
            view.fields.insert(field.to_owned(), current);
        } else if let Some(rest) = key.strip_prefix("s/") {
            if let (Some((field, member)), Value::Bool(true)) = (rest.split_once('/'), &current) {
                view.sets
                    .entry(field.to_owned())
                    .or_default()
                    .insert(member.to_owned());
            }
        } else {
            match (key.as_str(), &current) {
                (KEY_SCHEMA, Value::Int(v)) => view.schema_version = *v,
                (KEY_DELETED, Value::Bool(d)) => {
                    if values.len() > 1 {
                        view.conflicts.push(conflict("$deleted", values));
                    }
                    view.deleted = *d;
                }
                (KEY_MERGED_INTO, Value::Text(t)) => view.merged_into = Uuid::parse_str(t).ok(),
                (k, Value::Bool(true)) if k.starts_with(ABSORBED_PREFIX) => {
                    if let Ok(id) = Uuid::parse_str(&k[ABSORBED_PREFIX.len()..]) {
                        view.absorbed.insert(id);
                    }
                }
                (KEY_REVIEW, Value::Text(t)) => {
                    view.review = ReviewState::parse(t).unwrap_or_default();
                }
                (KEY_REVIEW_COMMENT, Value::Text(t)) => view.review_comment = Some(t.clone()),
                (KEY_TYPE, _) => {}
                _ => {}
            }
        }
    }
    Ok(view)
}

fn conflict(field: &str, mut values: Vec<(Value, String)>) -> FieldConflict {
    values.sort_by(|a, b| a.1.cmp(&b.1));
    FieldConflict {
        field: field.to_owned(),
        values: values
            .into_iter()
            .map(|(value, device)| ConflictValue { value, device })
            .collect(),
    }
}

/// The device behind an operation: actors are device ids (UUIDs) in fieldsync.
fn device_of(id: &ObjId) -> String {
    match id {
        ObjId::Id(_, actor, _) => Uuid::from_slice(actor.to_bytes())
            .map(|u| u.to_string())
            .unwrap_or_else(|_| actor.to_hex_string()),
        ObjId::Root => String::new(),
    }
}
