//! Duplicate detection and merging as rules, whatever database keeps the pairs: which records a
//! record's probes pair it with, what a new detection does to the pairs already stored, what a
//! merge needs and which fields it takes over. Each backend stores what these decide.

use crate::scope::Scope;
use crate::storage::{MergedRecord, PairState, StorageError, StorageResult};
use fieldsync_core::dedup::{DupKeys, MatchReason};
use fieldsync_core::model::Areas;
use fieldsync_core::{RecordView, Value};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// Most records one probe pairs a record with. A hundred identical registrations (a test, an
/// attack) must not make ten thousand pairs; past twenty, the queue already says enough.
pub const MAX_MATCHES_PER_KEY: i64 = 20;

/// A pair's two ids as stored: the smaller first.
pub fn ordered(x: Uuid, y: Uuid) -> (Uuid, Uuid) {
    if x < y {
        (x, y)
    } else {
        (y, x)
    }
}

/// A pair's reasons as stored (a JSON array of names).
pub fn reasons_json(reasons: &BTreeSet<MatchReason>) -> String {
    let names: Vec<&str> = reasons.iter().map(|r| r.as_str()).collect();
    serde_json::to_string(&names).unwrap_or_else(|_| "[]".into())
}

/// The reasons of a stored pair.
pub fn parse_reasons(json: &str) -> StorageResult<Vec<MatchReason>> {
    let names: Vec<String> = serde_json::from_str(json)
        .map_err(|e| StorageError::Corrupt(format!("pair reasons: {e}")))?;
    Ok(names.iter().filter_map(|r| MatchReason::parse(r)).collect())
}

/// The records `id`'s probes find, with why: `lookup` gives the records (other than `id`)
/// holding a key, at most [`MAX_MATCHES_PER_KEY`] of them.
pub fn matches(
    keys: &DupKeys,
    mut lookup: impl FnMut(&str) -> StorageResult<Vec<Uuid>>,
) -> StorageResult<BTreeMap<Uuid, BTreeSet<MatchReason>>> {
    let mut found: BTreeMap<Uuid, BTreeSet<MatchReason>> = BTreeMap::new();
    for (probe, reason) in &keys.probes {
        for other in lookup(probe)? {
            found.entry(other).or_default().insert(*reason);
        }
    }
    Ok(found)
}

/// How alike two records of a candidate pair are, from 0 to 100, or `None` when they cannot be
/// one person or household (docs/data-model.md, "Duplicates"): the reasons they matched set the
/// start (the same CCCD number 90, a name or head-of-household match 60, each further reason
/// +10); for persons an identical birth date adds 10 and birth years one apart take 10 off;
/// different ethnic groups take 40 off; different CCCD numbers exclude the pair unless they are
/// one slip apart (one digit, or two neighbours swapped), which takes 50 off.
pub fn score(reasons: &BTreeSet<MatchReason>, a: &RecordView, b: &RecordView) -> Option<i64> {
    let text = |v: &RecordView, f: &str| {
        v.fields
            .get(f)
            .and_then(Value::as_text)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let mut score = if reasons.contains(&MatchReason::NationalId) {
        90
    } else {
        60
    };
    score += 10 * (reasons.len() as i64).saturating_sub(1);
    if let (Some(x), Some(y)) = (text(a, "national_id"), text(b, "national_id")) {
        if x != y {
            if !one_slip_apart(&x, &y) {
                return None;
            }
            score -= 50;
        }
    }
    if let (Some(x), Some(y)) = (text(a, "ethnicity"), text(b, "ethnicity")) {
        if x != y {
            score -= 40;
        }
    }
    if let (Some(x), Some(y)) = (text(a, "birth"), text(b, "birth")) {
        if x == y && x.len() > 4 {
            score += 10;
        } else if x.get(..4) != y.get(..4) {
            score -= 10;
        }
    }
    Some(score.clamp(0, 100))
}

/// Whether two numbers of one length differ in one digit or by two neighbours swapped: what a
/// slip of the thumb makes of one number.
fn one_slip_apart(x: &str, y: &str) -> bool {
    let (x, y) = (x.as_bytes(), y.as_bytes());
    if x.len() != y.len() {
        return false;
    }
    let differ: Vec<usize> = (0..x.len()).filter(|&i| x[i] != y[i]).collect();
    match differ[..] {
        [_] => true,
        [i, j] => j == i + 1 && x[i] == y[j] && x[j] == y[i],
        _ => false,
    }
}

/// The matches of `view` that may be one record, with their score (`score`); `other` reads the
/// other record's view (`None`: unreadable, scored on the reasons alone).
pub fn scored(
    view: &RecordView,
    found: BTreeMap<Uuid, BTreeSet<MatchReason>>,
    mut other: impl FnMut(Uuid) -> StorageResult<Option<RecordView>>,
) -> StorageResult<BTreeMap<Uuid, (BTreeSet<MatchReason>, i64)>> {
    let mut out = BTreeMap::new();
    for (id, reasons) in found {
        let s = match other(id)? {
            Some(o) => score(&reasons, view, &o),
            None => score(&reasons, view, view),
        };
        if let Some(s) = s {
            out.insert(id, (reasons, s));
        }
    }
    Ok(out)
}

/// What a new detection of `id` does to the stored pairs: new matches become open pairs (or
/// update the reasons of the pair there is), open pairs that no longer match go, and a pair a
/// supervisor dismissed or merged stays as it was decided.
pub struct Reindex {
    /// Pairs (ordered) to delete.
    pub drop: Vec<(Uuid, Uuid)>,
    /// Pairs (ordered) to insert as open or whose reasons and score to update.
    pub upsert: Vec<(Uuid, Uuid, String, i64)>,
}

pub fn reindex(
    id: Uuid,
    found: &BTreeMap<Uuid, (BTreeSet<MatchReason>, i64)>,
    existing: &[(Uuid, Uuid, String)],
) -> Reindex {
    let drop = existing
        .iter()
        .filter(|(a, b, state)| {
            let other = if *a == id { *b } else { *a };
            state == PairState::Open.as_str() && !found.contains_key(&other)
        })
        .map(|(a, b, _)| (*a, *b))
        .collect();
    let upsert = found
        .iter()
        .map(|(other, (reasons, score))| {
            let (a, b) = ordered(id, *other);
            (a, b, reasons_json(reasons), *score)
        })
        .collect();
    Reindex { drop, upsert }
}

/// What a merge needs beyond both records being visible (`visible` answers for each): one
/// type, and for support cases an account with sensitive access and one commune, a pre-2025
/// commune counting as the one it became. A case merged with another commune's would carry that
/// commune's victim into a record its supervisors see under "absorbed", and into its counts.
pub fn may_merge(scope: &Scope, kept: &MergedRecord, dup: &MergedRecord) -> StorageResult<()> {
    if kept.record_type != dup.record_type {
        return Err(StorageError::Invalid(
            "only records of the same type can be merged".into(),
        ));
    }
    if kept.sensitive || dup.sensitive {
        if !scope.sensitive {
            // Unreachable through `visible`; kept so that the rule stands on its own.
            return Err(StorageError::NotFound("record".into()));
        }
        let areas = Areas::bundled();
        let unit = |r: &MergedRecord| r.commune.as_deref().map(|c| areas.current(c).to_owned());
        if unit(kept).is_none() || unit(kept) != unit(dup) {
            return Err(StorageError::Invalid(
                "support cases can be merged only within one commune".into(),
            ));
        }
    }
    for (record, what) in [(kept, "the kept record"), (dup, "the duplicate")] {
        if record.status != "active" {
            return Err(StorageError::Conflict(format!(
                "{what} is {} already",
                record.status
            )));
        }
    }
    Ok(())
}

/// The values a merge takes over from the duplicate: `take` names fields the duplicate has,
/// whose values the kept record gets (in place of its own where it has a different one). A
/// field where both hold the same value takes nothing; a field not named keeps the kept
/// record's value (or stays empty).
pub fn fields_to_take(
    kept: &RecordView,
    dup: &RecordView,
    take: &[String],
) -> StorageResult<BTreeMap<String, Value>> {
    let mut taken = BTreeMap::new();
    for field in take {
        let value = dup
            .fields
            .get(field)
            .ok_or_else(|| StorageError::Invalid(format!("{field}: the duplicate has no value")))?;
        if kept.fields.get(field) != Some(value) {
            taken.insert(field.clone(), value.clone());
        }
    }
    Ok(taken)
}
