//! What indicators read of a record, taken from its merged view whenever the record changes and
//! kept in a small table beside the merged view: its state (deleted, merged into whom, review),
//! commune, kind and own date, the few fields indicators look at, and the people it names
//! (members, attendees, the person a case supports). A report reads these rows only, never a
//! record's document or full view.

use fieldsync_core::record::ReviewPhase;
use fieldsync_core::record::Status;
use fieldsync_core::{RecordType, RecordView, Value};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The fields indicators read, besides kind and date; absent ones are `None` (and not stored).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Detail {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sex: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ethnicity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub birth: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub formal_finance_linked: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub livelihood_supported: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cadre: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gals: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gals_since: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub women_led: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uses_digital_technology: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub technology_since: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trusted_address_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_phase: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counselling_topic: Option<String>,
}

/// One record as indicators see it.
#[derive(Clone, Debug, PartialEq)]
pub struct Fact {
    pub id: Uuid,
    pub record_type: RecordType,
    pub commune: Option<String>,
    pub status: Status,
    pub merged_into: Option<Uuid>,
    pub review: ReviewPhase,
    /// Ever a sensitive type (see the merged view): never counted as anything but a case.
    pub sensitive: bool,
    /// Group kind, activity kind or case kind.
    pub kind: Option<String>,
    /// The record's own date: a group's founding, an activity's day, a case's opening.
    pub date: Option<String>,
    pub detail: Detail,
    /// Group members, activity attendees, or the person a support case supports.
    pub people: Vec<Uuid>,
}

fn text(view: &RecordView, field: &str) -> Option<String> {
    match view.fields.get(field) {
        Some(Value::Text(t)) => Some(t.clone()),
        _ => None,
    }
}

fn flag(view: &RecordView, field: &str) -> Option<bool> {
    match view.fields.get(field) {
        Some(Value::Bool(b)) => Some(*b),
        _ => None,
    }
}

fn members(view: &RecordView, field: &str) -> Vec<Uuid> {
    view.sets
        .get(field)
        .into_iter()
        .flatten()
        .filter_map(|m| Uuid::parse_str(m).ok())
        .collect()
}

impl Fact {
    /// The facts of a record as it stands now.
    pub fn from_view(view: &RecordView, review: ReviewPhase, sensitive: bool) -> Fact {
        let t = |f: &str| text(view, f);
        let mut detail = Detail::default();
        let (kind, date, people) = match view.record_type {
            RecordType::Household => (None, None, Vec::new()),
            RecordType::Person => {
                detail.sex = t("sex");
                detail.ethnicity = t("ethnicity");
                detail.birth = t("birth");
                detail.formal_finance_linked = t("formal_finance_linked");
                detail.livelihood_supported = t("livelihood_supported");
                detail.cadre = t("cadre");
                (None, None, Vec::new())
            }
            RecordType::Group => {
                detail.gals = flag(view, "gals");
                detail.gals_since = t("gals_since");
                detail.women_led = flag(view, "women_led");
                detail.uses_digital_technology = flag(view, "uses_digital_technology");
                detail.technology_since = t("technology_since");
                detail.trusted_address_status = t("trusted_address_status");
                detail.model_phase = t("model_phase");
                (t("kind"), t("established"), members(view, "members"))
            }
            RecordType::Activity => {
                detail.counselling_topic = t("counselling_topic");
                (t("kind"), t("date"), members(view, "attendees"))
            }
            RecordType::SupportCase => {
                let person = t("person_id").and_then(|p| Uuid::parse_str(&p).ok());
                (t("case_kind"), t("opened"), person.into_iter().collect())
            }
        };
        Fact {
            id: view.id,
            record_type: view.record_type,
            commune: view.commune().map(str::to_owned),
            status: view.status(),
            merged_into: view.merged_into,
            review,
            sensitive: sensitive || view.record_type.is_sensitive(),
            kind,
            date,
            detail,
            people,
        }
    }

    /// The people column: 16 bytes per id.
    pub fn people_bytes(&self) -> Vec<u8> {
        self.people.iter().flat_map(|p| *p.as_bytes()).collect()
    }

    pub fn people_from_bytes(bytes: &[u8]) -> Vec<Uuid> {
        bytes
            .chunks_exact(16)
            .filter_map(|c| Uuid::from_slice(c).ok())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fieldsync_core::RecordDoc;
    use std::collections::BTreeMap;

    #[test]
    fn a_group_keeps_its_kind_date_flags_and_members() {
        let fields: BTreeMap<String, Value> = [
            ("commune", Value::from("62.610.01")),
            ("kind", Value::from("savings_loan_group")),
            ("name", Value::from("Tổ tiết kiệm Làng Le")),
            ("established", Value::from("2023-04-01")),
            ("gals", Value::Bool(true)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let (mut doc, _) =
            RecordDoc::create(Uuid::now_v7(), RecordType::Group, &fields, Uuid::new_v4()).unwrap();
        let member = Uuid::now_v7();
        doc.add_member("members", &member.to_string()).unwrap();
        let fact = Fact::from_view(&doc.view().unwrap(), ReviewPhase::Approved, false);
        assert_eq!(fact.kind.as_deref(), Some("savings_loan_group"));
        assert_eq!(fact.date.as_deref(), Some("2023-04-01"));
        assert_eq!(fact.detail.gals, Some(true));
        assert_eq!(fact.people, vec![member]);
        assert_eq!(Fact::people_from_bytes(&fact.people_bytes()), vec![member]);
        let json = serde_json::to_string(&fact.detail).unwrap();
        assert_eq!(json, r#"{"gals":true}"#, "absent fields are not stored");
    }
}
