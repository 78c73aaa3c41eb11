//! Validation against the schemas: every problem is reported, each naming its field.

use super::schema::{schema_of, FieldKind};
use super::{ethnic_group, Areas, RecordType, Value};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Why a field is wrong. Stable codes for clients; the message is for people.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemCode {
    UnknownField,
    WrongType,
    NotAllowed,
    InvalidFormat,
    OutOfRange,
    TooLong,
    Required,
    NotASet,
    NotAScalar,
}

/// One validation problem. Messages name the field and the rule, never the value, so a
/// problem can be logged without leaking personal data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub field: String,
    pub code: ProblemCode,
    pub message: String,
}

impl Problem {
    fn new(field: &str, code: ProblemCode, message: impl Into<String>) -> Problem {
        Problem {
            field: field.to_owned(),
            code,
            message: message.into(),
        }
    }
}

/// Checks one scalar value for a field of `record_type`.
pub fn validate_field(record_type: RecordType, field: &str, value: &Value) -> Result<(), Problem> {
    let schema = schema_of(record_type);
    let Some(spec) = schema.field(field) else {
        return Err(Problem::new(
            field,
            ProblemCode::UnknownField,
            format!("{record_type} has no field '{field}'"),
        ));
    };
    if spec.kind.is_set() {
        return Err(Problem::new(
            field,
            ProblemCode::NotAScalar,
            "is a set: add or remove members instead",
        ));
    }
    check_scalar(field, spec.kind, value)
}

/// Checks one member added to or removed from a set field.
pub fn validate_set_member(
    record_type: RecordType,
    field: &str,
    member: &str,
) -> Result<(), Problem> {
    let spec = schema_of(record_type).field(field).ok_or_else(|| {
        Problem::new(
            field,
            ProblemCode::UnknownField,
            format!("{record_type} has no field '{field}'"),
        )
    })?;
    match spec.kind {
        FieldKind::RefSet(_) => check_uuid(field, member),
        FieldKind::EnumSet(allowed) => check_enum(field, allowed, member),
        _ => Err(Problem::new(field, ProblemCode::NotASet, "is not a set")),
    }
}

/// Checks a complete set of fields for a new record: each value, and every required field.
pub fn validate_new_record(
    record_type: RecordType,
    fields: &BTreeMap<String, Value>,
) -> Vec<Problem> {
    let mut problems: Vec<Problem> = fields
        .iter()
        .filter_map(|(name, value)| validate_field(record_type, name, value).err())
        .collect();
    problems.extend(missing_required(record_type, fields));
    problems
}

/// Checks a record as it stands (after a merge, say): required fields and each value.
/// Fields in conflict are checked on the value currently shown.
pub fn validate_record(record_type: RecordType, fields: &BTreeMap<String, Value>) -> Vec<Problem> {
    validate_new_record(record_type, fields)
}

fn missing_required<'a>(
    record_type: RecordType,
    fields: &'a BTreeMap<String, Value>,
) -> impl Iterator<Item = Problem> + 'a {
    schema_of(record_type)
        .fields
        .iter()
        .filter(|f| f.required && !f.kind.is_set() && !fields.contains_key(f.name))
        .map(|f| Problem::new(f.name, ProblemCode::Required, "is required"))
}

fn check_scalar(field: &str, kind: FieldKind, value: &Value) -> Result<(), Problem> {
    let wrong_type = || {
        Problem::new(
            field,
            ProblemCode::WrongType,
            format!("expects {}, got {}", kind.describe(), value.type_name()),
        )
    };
    match kind {
        FieldKind::Bool => match value {
            Value::Bool(_) => Ok(()),
            _ => Err(wrong_type()),
        },
        FieldKind::Int { min, max } => match value {
            Value::Int(i) if (min..=max).contains(i) => Ok(()),
            Value::Int(_) => Err(Problem::new(
                field,
                ProblemCode::OutOfRange,
                format!("must be between {min} and {max}"),
            )),
            _ => Err(wrong_type()),
        },
        _ => {
            let text = value.as_text().ok_or_else(wrong_type)?;
            check_text(field, kind, text)
        }
    }
}

/// Checks free text that is not a schema field (a review comment) by the rules of text fields.
pub(crate) fn check_free_text(field: &str, max_chars: usize, text: &str) -> Result<(), Problem> {
    check_text(field, FieldKind::Text { max_chars }, text)
}

fn check_text(field: &str, kind: FieldKind, text: &str) -> Result<(), Problem> {
    let bad_format = |what: &str| Problem::new(field, ProblemCode::InvalidFormat, what.to_owned());
    match kind {
        FieldKind::Text { max_chars } => {
            if text.chars().count() > max_chars {
                Err(Problem::new(
                    field,
                    ProblemCode::TooLong,
                    format!("is longer than {max_chars} characters"),
                ))
            } else if text.trim().is_empty() {
                Err(bad_format("must not be blank"))
            } else if text
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t')
            {
                Err(bad_format(
                    "must not contain control characters (only line breaks and tabs)",
                ))
            } else {
                Ok(())
            }
        }
        FieldKind::Date => is_date(text)
            .then_some(())
            .ok_or_else(|| bad_format("must be a date YYYY-MM-DD")),
        FieldKind::DateOrYear => (is_date(text) || is_year(text))
            .then_some(())
            .ok_or_else(|| bad_format("must be a date YYYY-MM-DD or a year YYYY")),
        FieldKind::Enum(allowed) => check_enum(field, allowed, text),
        FieldKind::Commune => Areas::bundled()
            .is_commune(text)
            .then_some(())
            .ok_or_else(|| Problem::new(field, ProblemCode::NotAllowed, "is not a commune code")),
        FieldKind::Ethnicity => ethnic_group(text).map(|_| ()).ok_or_else(|| {
            Problem::new(
                field,
                ProblemCode::NotAllowed,
                "is not one of the 54 ethnic-group codes",
            )
        }),
        FieldKind::Ref(_) => check_uuid(field, text),
        FieldKind::NationalId => (text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit()))
            .then_some(())
            .ok_or_else(|| bad_format("must be 12 digits")),
        FieldKind::Phone => {
            let digits = text.strip_prefix('+').unwrap_or(text);
            (digits.bytes().all(|b| b.is_ascii_digit()) && (8..=15).contains(&digits.len()))
                .then_some(())
                .ok_or_else(|| bad_format("must be 8 to 15 digits, optionally after +"))
        }
        FieldKind::Bool | FieldKind::Int { .. } | FieldKind::RefSet(_) | FieldKind::EnumSet(_) => {
            Err(Problem::new(
                field,
                ProblemCode::WrongType,
                format!("expects {}", kind.describe()),
            ))
        }
    }
}

fn check_enum(field: &str, allowed: &[&str], text: &str) -> Result<(), Problem> {
    if allowed.contains(&text) {
        Ok(())
    } else {
        Err(Problem::new(
            field,
            ProblemCode::NotAllowed,
            format!("must be one of: {}", allowed.join(", ")),
        ))
    }
}

fn check_uuid(field: &str, text: &str) -> Result<(), Problem> {
    uuid::Uuid::parse_str(text).map(|_| ()).map_err(|_| {
        Problem::new(
            field,
            ProblemCode::InvalidFormat,
            "must be a record id (UUID)",
        )
    })
}

fn is_year(s: &str) -> bool {
    s.len() == 4 && s.bytes().all(|b| b.is_ascii_digit()) && ("1900"..="2100").contains(&s)
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' || !is_year(&s[..4]) {
        return false;
    }
    let (Ok(y), Ok(m), Ok(d)) = (
        s[..4].parse::<u32>(),
        s[5..7].parse::<u32>(),
        s[8..].parse::<u32>(),
    ) else {
        return false;
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn every_problem_is_reported_with_its_field() {
        let problems = validate_new_record(
            RecordType::Person,
            &fields(&[
                ("full_name", "Y Hoa".into()),
                ("sex", "other".into()),
                ("birth", Value::Int(1990)),
                ("favourite_colour", "blue".into()),
                ("national_id", "12ab".into()),
            ]),
        );
        let by_field: BTreeMap<_, _> = problems
            .iter()
            .map(|p| (p.field.as_str(), p.code))
            .collect();
        assert_eq!(by_field.get("sex"), Some(&ProblemCode::NotAllowed));
        assert_eq!(by_field.get("birth"), Some(&ProblemCode::WrongType));
        assert_eq!(
            by_field.get("favourite_colour"),
            Some(&ProblemCode::UnknownField)
        );
        assert_eq!(
            by_field.get("national_id"),
            Some(&ProblemCode::InvalidFormat)
        );
        assert_eq!(by_field.get("commune"), Some(&ProblemCode::Required));
        assert_eq!(by_field.get("household_id"), Some(&ProblemCode::Required));
        assert_eq!(by_field.get("ethnicity"), Some(&ProblemCode::Required));
        assert!(!by_field.contains_key("full_name"));
    }

    #[test]
    fn control_characters_are_refused_in_text() {
        let nul = validate_field(RecordType::Household, "head_name", &"Y\0Blơ".into());
        assert_eq!(nul.map_err(|p| p.code), Err(ProblemCode::InvalidFormat));
        assert!(validate_field(RecordType::SupportCase, "case_notes", &"a\nb\tc".into()).is_ok());
    }

    #[test]
    fn dates_are_real_calendar_dates() {
        assert!(is_date("2024-02-29"));
        assert!(!is_date("2023-02-29"));
        assert!(!is_date("2023-13-01"));
        assert!(!is_date("23-1-1"));
        assert!(is_year("1987"));
    }

    #[test]
    fn set_members_are_checked_against_their_kind() {
        assert!(validate_set_member(RecordType::SupportCase, "support", "medical").is_ok());
        assert!(validate_set_member(RecordType::SupportCase, "support", "cash").is_err());
        assert!(validate_set_member(RecordType::Group, "members", "not-a-uuid").is_err());
        assert!(validate_set_member(RecordType::Group, "name", "x").is_err());
    }
}
