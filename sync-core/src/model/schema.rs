//! The versioned field schemas of each record type: names, kinds, required-ness, allowed values.
//!
//! Field names are the stable keys inside each record's Automerge document and on the wire.
//! Adding an optional field or an allowed value is a minor change; renaming or retyping a field
//! needs a new [`SCHEMA_VERSION`] and a migration. Version 2 added the optional fields the plan's
//! progress indicators count from (docs/indicators.md); records made at version 1 are valid
//! version 2 records, so nothing is migrated.

use super::RecordType;

/// Version of the schemas below; stored in every record document at creation. 1: the first
/// schemas; 2: the indicator fields (persons: `formal_finance_linked`, `livelihood_supported`,
/// `cadre`; groups: `women_led`, `gals_since`, `technology_since`; activity kind
/// `leadership_training`).
pub const SCHEMA_VERSION: u32 = 2;

/// What a field holds and how its values are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    /// Free text up to `max_chars` characters, stored exactly as entered.
    Text {
        max_chars: usize,
    },
    Int {
        min: i64,
        max: i64,
    },
    Bool,
    /// An ISO date `YYYY-MM-DD`.
    Date,
    /// A full ISO date or a year alone `YYYY`, as many people know only their birth year.
    DateOrYear,
    /// One of a fixed list of codes.
    Enum(&'static [&'static str]),
    /// A commune code from the area list.
    Commune,
    /// A two-digit ethnic-group code.
    Ethnicity,
    /// The id (UUID) of a record of this type.
    Ref(RecordType),
    /// A citizen identity card (CCCD) number: 12 digits.
    NationalId,
    /// A phone number: digits, optionally a leading +, 8 to 15 digits.
    Phone,
    /// A set of record ids (members, attendees): added and removed one by one, merged as a set.
    RefSet(RecordType),
    /// A set of codes from a fixed list.
    EnumSet(&'static [&'static str]),
}

/// The longest text any field holds (a note).
pub const MAX_TEXT_CHARS: usize = 4000;

/// The longest value a field that is not free text holds (a record id is 36 characters).
const MAX_CODE_CHARS: usize = 64;

impl FieldKind {
    /// The most characters a value of this kind can have, so that a change carrying more is
    /// refused before it is stored, even on a server that does not run the full validation.
    pub fn max_chars(self) -> usize {
        match self {
            FieldKind::Text { max_chars } => max_chars,
            _ => MAX_CODE_CHARS,
        }
    }

    pub fn is_set(self) -> bool {
        matches!(self, FieldKind::RefSet(_) | FieldKind::EnumSet(_))
    }

    /// A short name for error messages and the data-model doc.
    pub fn describe(self) -> &'static str {
        match self {
            FieldKind::Text { .. } => "text",
            FieldKind::Int { .. } => "integer",
            FieldKind::Bool => "boolean",
            FieldKind::Date => "date",
            FieldKind::DateOrYear => "date or year",
            FieldKind::Enum(_) => "code",
            FieldKind::Commune => "commune code",
            FieldKind::Ethnicity => "ethnicity code",
            FieldKind::Ref(_) => "record id",
            FieldKind::NationalId => "CCCD number",
            FieldKind::Phone => "phone number",
            FieldKind::RefSet(_) => "set of record ids",
            FieldKind::EnumSet(_) => "set of codes",
        }
    }
}

/// One field of a record type.
#[derive(Clone, Copy, Debug)]
pub struct FieldSpec {
    pub name: &'static str,
    pub kind: FieldKind,
    pub required: bool,
    /// Included in the folded search text of the record.
    pub searchable: bool,
}

/// The schema of one record type.
#[derive(Debug)]
pub struct RecordSchema {
    pub record_type: RecordType,
    pub version: u32,
    pub fields: &'static [FieldSpec],
}

impl RecordSchema {
    pub fn field(&self, name: &str) -> Option<&'static FieldSpec> {
        self.fields.iter().find(|f| f.name == name)
    }
}

const fn req(name: &'static str, kind: FieldKind) -> FieldSpec {
    FieldSpec {
        name,
        kind,
        required: true,
        searchable: false,
    }
}
const fn opt(name: &'static str, kind: FieldKind) -> FieldSpec {
    FieldSpec {
        name,
        kind,
        required: false,
        searchable: false,
    }
}
const fn search(mut spec: FieldSpec) -> FieldSpec {
    spec.searchable = true;
    spec
}

const NAME: FieldKind = FieldKind::Text { max_chars: 120 };
const NOTE: FieldKind = FieldKind::Text {
    max_chars: MAX_TEXT_CHARS,
};
const PLACE: FieldKind = FieldKind::Text { max_chars: 200 };

/// Poverty status: hộ nghèo, hộ cận nghèo, neither.
pub const POVERTY: &[&str] = &["poor", "near_poor", "none"];
pub const SEX: &[&str] = &["female", "male"];
pub const DISABILITY: &[&str] = &["none", "mild", "severe", "especially_severe"];
/// Female cadres the plan trains for leadership: in the leadership succession plan (quy
/// hoạch), newly appointed, or newly elected for the first time.
pub const CADRE: &[&str] = &["in_leadership_plan", "newly_appointed", "newly_elected"];
pub const GROUP_KINDS: &[&str] = &[
    "communication_team",
    "savings_loan_group",
    "livelihood_group",
    "cooperative",
    "trusted_address",
    "children_club",
    "victim_livelihood_model",
];
pub const TRUSTED_ADDRESS_STATUS: &[&str] = &["existing", "new"];
pub const MODEL_PHASE: &[&str] = &["pilot", "replicated"];
pub const ACTIVITY_KINDS: &[&str] = &[
    "meeting",
    "policy_dialogue",
    "training",
    "counselling",
    "leadership_training",
];
pub const COUNSELLING_TOPICS: &[&str] = &[
    "antenatal",
    "safe_delivery",
    "postnatal",
    "child_health",
    "gender_equality",
    "violence_prevention",
    "other",
];
pub const CASE_KINDS: &[&str] = &["domestic_violence", "trafficking", "sexual_abuse"];
pub const SUPPORT_KINDS: &[&str] = &[
    "essentials_travel",
    "medical",
    "psychological",
    "legal_aid",
    "schooling_vocational",
    "hardship_allowance",
    "loan",
    "referral",
    "temporary_shelter",
];
pub const CASE_STATUS: &[&str] = &["open", "supported", "closed"];

static HOUSEHOLD: RecordSchema = RecordSchema {
    record_type: RecordType::Household,
    version: SCHEMA_VERSION,
    fields: &[
        req("commune", FieldKind::Commune),
        search(opt("village", PLACE)),
        search(req("head_name", NAME)),
        opt("head_person_id", FieldKind::Ref(RecordType::Person)),
        req("ethnicity", FieldKind::Ethnicity),
        req("poverty", FieldKind::Enum(POVERTY)),
        opt("especially_difficult_village", FieldKind::Bool),
        search(opt("address", PLACE)),
    ],
};

static PERSON: RecordSchema = RecordSchema {
    record_type: RecordType::Person,
    version: SCHEMA_VERSION,
    fields: &[
        req("commune", FieldKind::Commune),
        req("household_id", FieldKind::Ref(RecordType::Household)),
        search(req("full_name", NAME)),
        req("sex", FieldKind::Enum(SEX)),
        req("birth", FieldKind::DateOrYear),
        req("ethnicity", FieldKind::Ethnicity),
        search(opt("national_id", FieldKind::NationalId)),
        opt("disability", FieldKind::Enum(DISABILITY)),
        search(opt("phone", FieldKind::Phone)),
        // Schema 2, for the indicators: a savings-group member introduced to formal finance
        // (bank, Social Policy Bank, e-wallet) and one given livelihood support, each with the
        // date it happened; and a female cadre's standing, for leadership training.
        opt("formal_finance_linked", FieldKind::Date),
        opt("livelihood_supported", FieldKind::Date),
        opt("cadre", FieldKind::Enum(CADRE)),
    ],
};

static GROUP: RecordSchema = RecordSchema {
    record_type: RecordType::Group,
    version: SCHEMA_VERSION,
    fields: &[
        req("commune", FieldKind::Commune),
        search(opt("village", PLACE)),
        req("kind", FieldKind::Enum(GROUP_KINDS)),
        search(req("name", NAME)),
        opt("established", FieldKind::Date),
        // Savings groups only: runs gender action learning (GALS).
        opt("gals", FieldKind::Bool),
        // Savings groups only: linked to a bank, the Social Policy Bank or an e-wallet.
        opt("formal_finance_link", FieldKind::Bool),
        // Trusted addresses only: consolidated existing address or newly set up.
        opt(
            "trusted_address_status",
            FieldKind::Enum(TRUSTED_ADDRESS_STATUS),
        ),
        // Livelihood models for victims only.
        opt("model_phase", FieldKind::Enum(MODEL_PHASE)),
        // Livelihood groups and cooperatives: applies 4.0 technology (QR codes, e-commerce).
        opt("uses_digital_technology", FieldKind::Bool),
        opt("members", FieldKind::RefSet(RecordType::Person)),
        // Schema 2, for the indicators: led or co-led by women (do phụ nữ làm chủ, đồng làm
        // chủ), and when GALS and 4.0 technology started where that was after the founding.
        opt("women_led", FieldKind::Bool),
        opt("gals_since", FieldKind::Date),
        opt("technology_since", FieldKind::Date),
    ],
};

static ACTIVITY: RecordSchema = RecordSchema {
    record_type: RecordType::Activity,
    version: SCHEMA_VERSION,
    fields: &[
        req("commune", FieldKind::Commune),
        req("kind", FieldKind::Enum(ACTIVITY_KINDS)),
        req("date", FieldKind::Date),
        search(opt("place", PLACE)),
        opt("group_id", FieldKind::Ref(RecordType::Group)),
        search(req("topic", PLACE)),
        opt("counselling_topic", FieldKind::Enum(COUNSELLING_TOPICS)),
        opt("attendees", FieldKind::RefSet(RecordType::Person)),
        // Policy dialogues report participants and opinions raised and answered.
        opt(
            "participants",
            FieldKind::Int {
                min: 0,
                max: 10_000,
            },
        ),
        opt(
            "opinions_raised",
            FieldKind::Int {
                min: 0,
                max: 10_000,
            },
        ),
        opt(
            "opinions_answered",
            FieldKind::Int {
                min: 0,
                max: 10_000,
            },
        ),
    ],
};

static SUPPORT_CASE: RecordSchema = RecordSchema {
    record_type: RecordType::SupportCase,
    version: SCHEMA_VERSION,
    fields: &[
        req("commune", FieldKind::Commune),
        req("person_id", FieldKind::Ref(RecordType::Person)),
        req("case_kind", FieldKind::Enum(CASE_KINDS)),
        req("opened", FieldKind::Date),
        opt("status", FieldKind::Enum(CASE_STATUS)),
        opt("support", FieldKind::EnumSet(SUPPORT_KINDS)),
        opt("trusted_address_id", FieldKind::Ref(RecordType::Group)),
        opt("case_notes", NOTE),
    ],
};

/// The current schema of a record type.
pub fn schema_of(record_type: RecordType) -> &'static RecordSchema {
    match record_type {
        RecordType::Household => &HOUSEHOLD,
        RecordType::Person => &PERSON,
        RecordType::Group => &GROUP,
        RecordType::Activity => &ACTIVITY,
        RecordType::SupportCase => &SUPPORT_CASE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_is_scoped_by_a_required_commune() {
        for t in RecordType::ALL {
            let f = schema_of(t).field("commune");
            assert!(
                f.is_some_and(|f| f.required && f.kind == FieldKind::Commune),
                "{t}"
            );
        }
    }

    #[test]
    fn fields_added_after_version_1_are_optional() {
        // A record made at version 1 must stay valid: a new field may never be required.
        let added = [
            (RecordType::Person, "formal_finance_linked"),
            (RecordType::Person, "livelihood_supported"),
            (RecordType::Person, "cadre"),
            (RecordType::Group, "women_led"),
            (RecordType::Group, "gals_since"),
            (RecordType::Group, "technology_since"),
        ];
        for (t, name) in added {
            assert!(
                schema_of(t).field(name).is_some_and(|f| !f.required),
                "{t}.{name}"
            );
        }
    }
}
