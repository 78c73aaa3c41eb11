//! Duplicate detection: the keys under which two records of the same woman or household meet.
//!
//! Two persons are candidates when they share a national ID number, or when their names fold
//! alike (case, diacritics, Unicode form and tone-mark placement ignored), their birth years are
//! at most one apart and they live in the same commune (a pre-merger commune counts as the one
//! it became). Two households are candidates when their heads' names and villages fold alike in
//! the same commune. Each record stores its own keys and looks up its probes: a probe that
//! finds another record's key makes a pair, for the reason the probe carries.

use crate::model::{Areas, RecordType, Value};
use crate::search::fold;
use crate::RecordView;
use serde::{Deserialize, Serialize};

/// Why two records may be the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchReason {
    /// The same national ID (CCCD) number.
    NationalId,
    /// The same folded name, birth years at most one apart, the same commune.
    NameBirthCommune,
    /// The same folded head-of-household name and village, the same commune.
    HeadVillage,
}

impl MatchReason {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchReason::NationalId => "national_id",
            MatchReason::NameBirthCommune => "name_birth_commune",
            MatchReason::HeadVillage => "head_village",
        }
    }

    pub fn parse(s: &str) -> Option<MatchReason> {
        [
            MatchReason::NationalId,
            MatchReason::NameBirthCommune,
            MatchReason::HeadVillage,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// A record's detection keys: what it is found under, and what it looks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DupKeys {
    pub own: Vec<String>,
    pub probes: Vec<(String, MatchReason)>,
}

/// The keys of `view`; none for a record that is deleted or merged (it is nobody's duplicate
/// any more) or of a type that is not deduplicated.
pub fn dup_keys(view: &RecordView) -> DupKeys {
    let mut keys = DupKeys::default();
    if view.deleted || view.merged_into.is_some() {
        return keys;
    }
    let text = |field: &str| view.fields.get(field).and_then(Value::as_text);
    let commune = view
        .commune()
        .map(|c| Areas::bundled().current(c).to_owned());
    match view.record_type {
        RecordType::Person => {
            if let Some(id) = text("national_id").map(str::trim).filter(|s| !s.is_empty()) {
                let key = format!("nid|{id}");
                keys.own.push(key.clone());
                keys.probes.push((key, MatchReason::NationalId));
            }
            let name = text("full_name").map(fold).filter(|n| !n.is_empty());
            let year = text("birth").and_then(birth_year);
            if let (Some(name), Some(year), Some(commune)) = (name, year, &commune) {
                let key = |y: i32| format!("pn|{commune}|{name}|{y}");
                keys.own.push(key(year));
                for y in year - 1..=year + 1 {
                    keys.probes.push((key(y), MatchReason::NameBirthCommune));
                }
            }
        }
        RecordType::Household => {
            let head = text("head_name").map(fold).filter(|n| !n.is_empty());
            let village = text("village").map(fold).filter(|v| !v.is_empty());
            if let (Some(head), Some(village), Some(commune)) = (head, village, &commune) {
                let key = format!("hh|{commune}|{head}|{village}");
                keys.own.push(key.clone());
                keys.probes.push((key, MatchReason::HeadVillage));
            }
        }
        RecordType::Group | RecordType::Activity | RecordType::SupportCase => {}
    }
    keys
}

/// The year of a `YYYY` or `YYYY-MM-DD` birth.
fn birth_year(birth: &str) -> Option<i32> {
    birth.get(..4)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};
    use uuid::Uuid;

    fn person(name: &str, birth: &str, commune: &str, nid: Option<&str>) -> RecordView {
        let mut fields: BTreeMap<String, Value> = [
            ("full_name", name),
            ("birth", birth),
            ("commune", commune),
            ("sex", "female"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Value::from(v)))
        .collect();
        if let Some(nid) = nid {
            fields.insert("national_id".into(), nid.into());
        }
        RecordView {
            id: Uuid::now_v7(),
            record_type: RecordType::Person,
            schema_version: 1,
            fields,
            sets: BTreeMap::new(),
            deleted: false,
            merged_into: None,
            absorbed: BTreeSet::new(),
            review: Default::default(),
            review_comment: None,
            conflicts: Vec::new(),
        }
    }

    fn meet(a: &RecordView, b: &RecordView) -> BTreeSet<MatchReason> {
        let (a, b) = (dup_keys(a), dup_keys(b));
        a.probes
            .iter()
            .filter(|(k, _)| b.own.contains(k))
            .map(|(_, r)| *r)
            .collect()
    }

    #[test]
    fn names_meet_across_forms_tones_case_and_the_merger() {
        // Precomposed and decomposed, old and new tone placement, upper case; Đắk Glei's old
        // commune Ngọc Linh (62.610.01) is today's 51.102.
        let a = person("Nguyễn Thị Hoà", "1990", "62.610.01", None);
        let b = person(
            "NGUYE\u{0302}\u{0303}N THI\u{0323} HÒA",
            "1991-05-02",
            "51.102",
            None,
        );
        assert_eq!(meet(&a, &b), [MatchReason::NameBirthCommune].into());
        assert_eq!(meet(&b, &a), [MatchReason::NameBirthCommune].into());
        let c = person("Nguyễn Thị Hoà", "1992", "51.102", None);
        assert!(meet(&a, &c).is_empty(), "two years apart");
        let d = person("Nguyễn Thị Hoa", "1990", "51.111", None);
        assert!(meet(&a, &d).is_empty(), "another commune");
    }

    #[test]
    fn a_national_id_meets_anywhere_and_deleted_or_merged_records_meet_nothing() {
        let a = person("Y Blơ", "1980", "51.102", Some("062190000123"));
        let mut b = person("Y Blo Niê", "1970", "51.111", Some("062190000123"));
        assert_eq!(meet(&a, &b), [MatchReason::NationalId].into());
        b.deleted = true;
        assert!(meet(&a, &b).is_empty());
        b.deleted = false;
        b.merged_into = Some(a.id);
        assert!(meet(&a, &b).is_empty());
    }
}
