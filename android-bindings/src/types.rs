//! The plain data crossing into Kotlin: records, values, filters, conflicts, sync results.

use fieldsync_core::model::{RecordType, Value};
use fieldsync_core::record::{RecordView, ReviewState};
use fieldsync_core::store::{RecordSummary, Status};

/// The kinds of record (Kotlin: `RecordKind.HOUSEHOLD` ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum RecordKind {
    Household,
    Person,
    Group,
    Activity,
    SupportCase,
}

impl From<RecordKind> for RecordType {
    fn from(k: RecordKind) -> Self {
        match k {
            RecordKind::Household => RecordType::Household,
            RecordKind::Person => RecordType::Person,
            RecordKind::Group => RecordType::Group,
            RecordKind::Activity => RecordType::Activity,
            RecordKind::SupportCase => RecordType::SupportCase,
        }
    }
}

impl From<RecordType> for RecordKind {
    fn from(t: RecordType) -> Self {
        match t {
            RecordType::Household => RecordKind::Household,
            RecordType::Person => RecordKind::Person,
            RecordType::Group => RecordKind::Group,
            RecordType::Activity => RecordKind::Activity,
            RecordType::SupportCase => RecordKind::SupportCase,
        }
    }
}

/// A field value.
#[derive(Clone, Debug, PartialEq, uniffi::Enum)]
pub enum FieldValue {
    Text { value: String },
    Int { value: i64 },
    Bool { value: bool },
}

impl From<FieldValue> for Value {
    fn from(v: FieldValue) -> Self {
        match v {
            FieldValue::Text { value } => Value::Text(value),
            FieldValue::Int { value } => Value::Int(value),
            FieldValue::Bool { value } => Value::Bool(value),
        }
    }
}

impl From<Value> for FieldValue {
    fn from(v: Value) -> Self {
        match v {
            Value::Text(value) => FieldValue::Text { value },
            Value::Int(value) => FieldValue::Int { value },
            Value::Bool(value) => FieldValue::Bool { value },
        }
    }
}

/// One named field value.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Field {
    pub name: String,
    pub value: FieldValue,
}

/// A set field's members.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct SetField {
    pub name: String,
    pub members: Vec<String>,
}

/// One concurrent value of a field in conflict, and the device that wrote it.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct ConflictValue {
    pub value: FieldValue,
    pub device: String,
}

/// A field edited concurrently on several devices; stays until someone writes a resolution.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct FieldConflict {
    pub field: String,
    pub values: Vec<ConflictValue>,
}

/// Where the supervisors' review stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum Review {
    Pending,
    Approved,
    Returned,
}

impl From<ReviewState> for Review {
    fn from(r: ReviewState) -> Self {
        match r {
            ReviewState::Pending => Review::Pending,
            ReviewState::Approved => Review::Approved,
            ReviewState::Returned => Review::Returned,
        }
    }
}

/// A whole record as the app shows it.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Record {
    pub id: String,
    pub kind: RecordKind,
    pub fields: Vec<Field>,
    pub sets: Vec<SetField>,
    pub deleted: bool,
    pub merged_into: Option<String>,
    pub review: Review,
    pub review_comment: Option<String>,
    pub conflicts: Vec<FieldConflict>,
}

impl From<RecordView> for Record {
    fn from(v: RecordView) -> Self {
        Record {
            id: v.id.to_string(),
            kind: v.record_type.into(),
            fields: v
                .fields
                .into_iter()
                .map(|(name, value)| Field {
                    name,
                    value: value.into(),
                })
                .collect(),
            sets: v
                .sets
                .into_iter()
                .map(|(name, members)| SetField {
                    name,
                    members: members.into_iter().collect(),
                })
                .collect(),
            deleted: v.deleted,
            merged_into: v.merged_into.map(|u| u.to_string()),
            review: v.review.into(),
            review_comment: v.review_comment,
            conflicts: v
                .conflicts
                .into_iter()
                .map(|c| FieldConflict {
                    field: c.field,
                    values: c
                        .values
                        .into_iter()
                        .map(|cv| ConflictValue {
                            value: cv.value.into(),
                            device: cv.device,
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

/// One row of a list.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct RecordRow {
    pub id: String,
    pub kind: RecordKind,
    pub commune: Option<String>,
    pub title: String,
    pub deleted: bool,
    pub conflicts: u32,
}

impl From<RecordSummary> for RecordRow {
    fn from(s: RecordSummary) -> Self {
        RecordRow {
            id: s.id.to_string(),
            kind: s.record_type.into(),
            commune: s.commune,
            title: s.title,
            deleted: s.status != Status::Active,
            conflicts: s.conflicts,
        }
    }
}

/// What to list; empty fields match everything.
#[derive(Clone, Debug, Default, uniffi::Record)]
pub struct RecordFilter {
    #[uniffi(default = None)]
    pub kind: Option<RecordKind>,
    #[uniffi(default = None)]
    pub commune: Option<String>,
    /// Case- and diacritic-insensitive: "nguyen thi hoa" finds "Nguyễn Thị Hoà".
    #[uniffi(default = None)]
    pub search: Option<String>,
    #[uniffi(default = false)]
    pub include_deleted: bool,
    #[uniffi(default = None)]
    pub limit: Option<u32>,
}

/// The enrolled account.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Enrolment {
    pub device_id: String,
    pub username: String,
    pub role: String,
    pub areas: Vec<String>,
}

/// What a sync did.
#[derive(Clone, Debug, Default, PartialEq, uniffi::Record)]
pub struct SyncSummary {
    pub round_trips: u32,
    pub pushed_acked: u32,
    /// Changes the server refused (outside the device's scope or role): their records went
    /// back to what the server has, and `refusedEdits` lists what they carried.
    pub rejected: u32,
    pub pulled: u32,
    /// Received changes this phone could not take; kept aside, the rest applied.
    pub set_aside: u32,
    pub pending: u64,
}

/// One value a refused edit had set: `value` is `None` where it had cleared the field. Set
/// members appear as `field/member`.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct RefusedValue {
    pub name: String,
    pub value: Option<FieldValue>,
}

/// Edits the server did not take, with its reason, for the collector to see and enter again.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct RefusedEdit {
    pub record_id: String,
    /// `out_of_scope`, `not_permitted`, `invalid`, `not_author`, `too_large` or
    /// `missing_dependency`.
    pub reason: String,
    pub edits_left_out: u32,
    pub values: Vec<RefusedValue>,
}

impl From<fieldsync_core::store::RefusedEdit> for RefusedEdit {
    fn from(r: fieldsync_core::store::RefusedEdit) -> Self {
        RefusedEdit {
            record_id: r.record_id.to_string(),
            reason: r.code,
            edits_left_out: r.edits_left_out,
            values: r
                .fields
                .into_iter()
                .map(|(name, value)| RefusedValue {
                    name,
                    value: value.map(Into::into),
                })
                .collect(),
        }
    }
}

/// An HTTP header.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Header {
    pub name: String,
    pub value: String,
}

/// The answer the app's transport got.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct HttpResponse {
    pub status: u16,
    pub body: Vec<u8>,
}
