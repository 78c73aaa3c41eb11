//! The Project 8 record model: record types, their versioned schemas, field values and
//! validation, and the reference code lists (areas, ethnic groups) that fields point into.

mod areas;
mod ethnicity;
pub(crate) mod schema;
mod validate;
mod value;

pub use areas::{Area, AreaLevel, Areas};
pub use ethnicity::{ethnic_group, ethnic_groups, EthnicGroup};
pub use schema::{schema_of, FieldKind, FieldSpec, RecordSchema, MAX_TEXT_CHARS, SCHEMA_VERSION};
pub(crate) use validate::check_free_text;
pub use validate::{
    validate_field, validate_new_record, validate_record, validate_set_member, Problem, ProblemCode,
};
pub use value::Value;

use serde::{Deserialize, Serialize};

/// The kinds of record an officer can create. The names are the stable wire and database
/// spelling; never rename one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordType {
    /// Hộ gia đình.
    Household,
    /// A beneficiary (người thụ hưởng), linked to a household.
    Person,
    /// One of the plan's models: communication team, savings group, trusted address, club ...
    Group,
    /// A meeting, policy dialogue, training or counselling session.
    Activity,
    /// Support given to a victim. Sensitive: synced only to roles allowed to see it.
    SupportCase,
}

impl RecordType {
    pub const ALL: [RecordType; 5] = [
        RecordType::Household,
        RecordType::Person,
        RecordType::Group,
        RecordType::Activity,
        RecordType::SupportCase,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::Household => "household",
            RecordType::Person => "person",
            RecordType::Group => "group",
            RecordType::Activity => "activity",
            RecordType::SupportCase => "support_case",
        }
    }

    pub fn parse(s: &str) -> Option<RecordType> {
        RecordType::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Sensitive records reach only devices and people whose role allows them.
    pub fn is_sensitive(self) -> bool {
        matches!(self, RecordType::SupportCase)
    }
}

impl std::fmt::Display for RecordType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
