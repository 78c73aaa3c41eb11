//! Duplicates on the server, without sockets: detection on generated data with planted
//! duplicates finds exactly the pairs the rules describe (checked against an independent
//! brute-force comparison), and merge, "not a duplicate" and undo keep everything.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod common;

use common::*;
use fieldsync_core::generator::{generate, GenConfig, GenRecord};
use fieldsync_core::model::{Areas, RecordType, Value};
use fieldsync_core::RecordDoc;
use fieldsync_server::scope::Scope;
use fieldsync_server::storage::prelude::*;
use fieldsync_server::storage::{DuplicateQuery, PairState, RecordQuery, StorageError};
use std::collections::{BTreeMap, BTreeSet};
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;
use uuid::Uuid;

const WRITER: Uuid = Uuid::from_u128(0xd0b1e);
const SUPERVISOR: Uuid = Uuid::from_u128(0x5afe);

fn text(fields: &BTreeMap<String, Value>, name: &str) -> Option<String> {
    fields.get(name).and_then(Value::as_text).map(str::to_owned)
}

/// The test's own folding, written from the rule rather than from the code: decompose, drop
/// the marks, đ as d, lower case, anything else than letters and digits as one space.
fn fold(s: &str) -> String {
    let letters: String = s
        .nfd()
        .filter(|c| !is_combining_mark(*c))
        .map(|c| match c {
            'đ' | 'Đ' => 'd',
            c => c,
        })
        .flat_map(char::to_lowercase)
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect();
    letters.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Today's commune of a code, from the area list's crosswalk.
fn now_commune(code: &str) -> String {
    let mut code = code.to_owned();
    while let Some(next) = Areas::bundled()
        .get(&code)
        .and_then(|a| a.successor.clone())
    {
        code = next;
    }
    code
}

fn year(birth: &str) -> Option<i32> {
    birth.get(..4)?.parse().ok()
}

/// What the rules compare, worked out once per record.
struct Compared {
    id: Uuid,
    record_type: RecordType,
    name: Option<String>,
    village: Option<String>,
    year: Option<i32>,
    national_id: Option<String>,
    commune: String,
}

fn compared(r: &GenRecord) -> Compared {
    let folded = |name: &str| {
        text(&r.fields, name)
            .map(|t| fold(&t))
            .filter(|t| !t.is_empty())
    };
    Compared {
        id: r.id,
        record_type: r.record_type,
        name: folded(match r.record_type {
            RecordType::Household => "head_name",
            _ => "full_name",
        }),
        village: folded("village"),
        year: text(&r.fields, "birth").and_then(|b| year(&b)),
        national_id: text(&r.fields, "national_id"),
        commune: now_commune(r.commune()),
    }
}

/// Every pair the rules make, comparing every two records.
fn expected_pairs(records: &[GenRecord]) -> BTreeSet<(Uuid, Uuid)> {
    let all: Vec<Compared> = records.iter().map(compared).collect();
    let mut pairs = BTreeSet::new();
    for (i, x) in all.iter().enumerate() {
        for y in &all[i + 1..] {
            if x.record_type != y.record_type {
                continue;
            }
            let same = |a: &Option<String>, b: &Option<String>| a.is_some() && a == b;
            let matched = match x.record_type {
                RecordType::Person => {
                    let born = matches!((x.year, y.year), (Some(a), Some(b)) if (a - b).abs() <= 1);
                    same(&x.national_id, &y.national_id)
                        || (same(&x.name, &y.name) && born && x.commune == y.commune)
                }
                RecordType::Household => {
                    same(&x.name, &y.name) && same(&x.village, &y.village) && x.commune == y.commune
                }
                _ => false,
            };
            // Two CCCD numbers more than a slip apart are two people (docs/data-model.md).
            let excluded = match (&x.national_id, &y.national_id) {
                (Some(a), Some(b)) => a != b && !slip(a, b),
                _ => false,
            };
            if matched && !excluded {
                pairs.insert(if x.id < y.id {
                    (x.id, y.id)
                } else {
                    (y.id, x.id)
                });
            }
        }
    }
    pairs
}

/// Same length, and one digit different or two neighbours swapped.
fn slip(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.len() != b.len() {
        return false;
    }
    let at: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
    at.len() == 1
        || (at.len() == 2 && at[1] == at[0] + 1 && a[at[0]] == b[at[1]] && a[at[1]] == b[at[0]])
}

fn person(commune: &str, name: &str, birth: &str, nid: Option<&str>) -> GenRecord {
    let mut fields: BTreeMap<String, Value> = [
        ("commune", commune),
        ("household_id", "0190a000-0000-7000-8000-000000000001"),
        ("full_name", name),
        ("sex", "female"),
        ("birth", birth),
        ("ethnicity", "14"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), Value::from(v)))
    .collect();
    if let Some(nid) = nid {
        fields.insert("national_id".into(), nid.into());
    }
    GenRecord {
        id: Uuid::now_v7(),
        record_type: RecordType::Person,
        fields,
        sets: vec![],
    }
}

fn household_with_village(commune: &str, head: &str, village: &str) -> GenRecord {
    let mut fields = household(commune, head);
    fields.insert("village".into(), village.into());
    GenRecord {
        id: Uuid::now_v7(),
        record_type: RecordType::Household,
        fields,
        sets: vec![],
    }
}

/// Indexes of two planted records.
type Planted = Vec<(usize, usize)>;

/// Planted pairs: those the rules must find, and near misses they must not.
fn planted() -> (Vec<GenRecord>, Planted, Planted) {
    let hoa_nfd: String = "Nguyễn Thị Hoà".nfd().collect();
    let records = vec![
        // 0, 1: the same CCCD, different names, communes and years.
        person("62.610.01", "Y Blơ Niê", "1980", Some("062190000777")),
        person("62.616.01", "Blơ Niê Y", "1975", Some("062190000777")),
        // 2, 3: precomposed and decomposed, old and new tone placement, upper case.
        person("62.610.01", "Nguyễn Thị Hoà", "1990-04-01", None),
        person(
            "62.610.01",
            &hoa_nfd.replace("oa\u{300}", "o\u{300}a").to_uppercase(),
            "1990",
            None,
        ),
        // 4: one year apart, and across the merger (62.610.01 is today's 51.102).
        person("51.102", "nguyen thi hoa", "1991", None),
        // 5: two or three years from 2, 3 and 4.
        person("51.102", "Nguyễn Thị Hoà", "1993", None),
        // 6: another commune today (Mô Rai).
        person("62.616.01", "Nguyễn Thị Hoà", "1990", None),
        // 7: one letter different.
        person("62.610.01", "Nguyễn Thị Hoàn", "1990", None),
        // 8, 9: households, head in another case and form, the same village.
        household_with_village("62.610.02", "A Khang", "Làng Le"),
        household_with_village("51.102", "a KHANG", "làng le"),
        // 10: the same head in another village.
        household_with_village("62.610.02", "A Khang", "Đăk Wất"),
        // 11, 12: one name, year and commune, CCCD numbers far apart: two women.
        person("62.610.01", "Hà Thị Mai", "1985", Some("062185000111")),
        person("62.610.01", "Hà Thị Mai", "1985", Some("062185999222")),
        // 13, 14: CCCD numbers one swap apart: a slip, still proposed.
        person("62.610.01", "Lò Thị Xuân", "1987", Some("062187000123")),
        person("62.610.01", "Lò Thị Xuân", "1987", Some("062187000213")),
    ];
    let found = vec![(0, 1), (2, 3), (2, 4), (3, 4), (8, 9), (13, 14)];
    let missed = vec![
        (2, 5),
        (3, 5),
        (4, 5),
        (2, 6),
        (2, 7),
        (8, 10),
        (9, 10),
        (4, 6),
        (11, 12),
    ];
    (records, found, missed)
}

fn ingest(world: &World, records: &[GenRecord]) {
    for chunk in records.chunks(500) {
        let changes: Vec<(Uuid, Vec<u8>)> = chunk
            .iter()
            .map(|r| {
                let (_, change) =
                    RecordDoc::create(r.id, r.record_type, &r.fields, WRITER).unwrap();
                (r.id, change.bytes)
            })
            .collect();
        world.storage.ingest_trusted(WRITER, &changes).unwrap();
    }
}

fn pairs(world: &World, state: PairState) -> BTreeSet<(Uuid, Uuid)> {
    let page = world
        .storage
        .list_duplicates(
            &Scope::everything(),
            &DuplicateQuery {
                state,
                limit: 1_000_000,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(page.total as usize, page.pairs.len());
    page.pairs.iter().map(|p| (p.a.id, p.b.id)).collect()
}

fn key(records: &[GenRecord], (i, j): (usize, usize)) -> (Uuid, Uuid) {
    let (a, b) = (records[i].id, records[j].id);
    if a < b {
        (a, b)
    } else {
        (b, a)
    }
}

#[test]
fn detection_finds_every_planted_pair_and_nothing_the_rules_exclude() {
    let world = World::new();
    let mut records: Vec<GenRecord> = generate(&GenConfig {
        seed: 10,
        communes: vec!["62.610.01".into(), "62.610.02".into(), "62.616.01".into()],
        households: 400,
        groups_per_100_households: 0,
        activities_per_group: 0,
        cases_per_100_households: 0,
    });
    let (planted, found, missed) = planted();
    records.extend(planted.iter().cloned());
    let expected = expected_pairs(&records);
    for pair in &found {
        assert!(
            expected.contains(&key(&planted, *pair)),
            "rule check {pair:?}"
        );
    }
    ingest(&world, &records);
    let detected = pairs(&world, PairState::Open);
    assert_eq!(
        detected.difference(&expected).count() + expected.difference(&detected).count(),
        0,
        "{} expected, {} detected; missing {:?}, extra {:?}",
        expected.len(),
        detected.len(),
        expected.difference(&detected).collect::<Vec<_>>(),
        detected.difference(&expected).collect::<Vec<_>>()
    );
    let planted_pairs = found.len();
    for pair in found {
        assert!(detected.contains(&key(&planted, pair)), "planted {pair:?}");
    }
    for pair in missed {
        assert!(
            !detected.contains(&key(&planted, pair)),
            "near miss {pair:?}"
        );
    }
    println!(
        "{} records, {} pairs detected ({planted_pairs} planted)",
        records.len(),
        detected.len(),
    );

    // Reasons name the rule: the CCCD pair matched by number only.
    let pair = world
        .storage
        .duplicate_pair(planted[0].id, planted[1].id)
        .unwrap()
        .unwrap();
    assert_eq!(
        pair.reasons,
        vec![fieldsync_core::dedup::MatchReason::NationalId]
    );
}

fn with(mut r: GenRecord, field: &str, value: &str) -> GenRecord {
    r.fields.insert(field.into(), value.into());
    r
}

#[test]
fn the_queue_ranks_pairs_by_score_and_a_record_lists_its_own_pairs() {
    let world = World::new();
    let c = "62.610.01";
    let records = vec![
        // 0, 1: the same CCCD, name, birth date and ethnic group: 90 + 10 + 10, at most 100.
        person(c, "Y Hnui", "1990-01-02", Some("062190000001")),
        person(c, "Y Hnui", "1990-01-02", Some("062190000001")),
        // 2, 3: name, year and commune, another ethnic group: 60 - 40.
        person(c, "H Ben", "1988", None),
        with(person(c, "H Ben", "1988", None), "ethnicity", "01"),
        // 4, 5: name and commune, one year apart: 60 - 10.
        person(c, "Y Bhi", "1970", None),
        person(c, "Y Bhi", "1971", None),
        // 6, 7: a CCCD slip: 60 - 50.
        person(c, "H Nga", "1975", Some("062175000123")),
        person(c, "H Nga", "1975", Some("062175000124")),
        // 8, 9: households with the same head and village: 60.
        household_with_village(c, "A Khang", "Làng Le"),
        household_with_village(c, "A Khang", "Làng Le"),
    ];
    ingest(&world, &records);
    let page = world
        .storage
        .list_duplicates(
            &Scope::everything(),
            &DuplicateQuery {
                limit: 100,
                ..Default::default()
            },
        )
        .unwrap();
    let got: Vec<((Uuid, Uuid), i64)> = page
        .pairs
        .iter()
        .map(|p| ((p.a.id, p.b.id), p.score))
        .collect();
    let want = vec![
        (key(&records, (0, 1)), 100),
        (key(&records, (8, 9)), 60),
        (key(&records, (4, 5)), 50),
        (key(&records, (2, 3)), 20),
        (key(&records, (6, 7)), 10),
    ];
    assert_eq!(got, want);
    // One record's pairs alone.
    let mine = world
        .storage
        .list_duplicates(
            &Scope::everything(),
            &DuplicateQuery {
                record: Some(records[3].id),
                limit: 100,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(mine.total, 1);
    assert_eq!(
        (mine.pairs[0].a.id, mine.pairs[0].b.id),
        key(&records, (2, 3))
    );
    // A correction that removes the disagreement raises the score.
    world
        .storage
        .edit_record(
            SUPERVISOR,
            &Scope::everything(),
            records[3].id,
            &fieldsync_server::storage::RecordEdit::SetField {
                field: "ethnicity".into(),
                value: "14".into(),
            },
        )
        .unwrap();
    let again = world
        .storage
        .list_duplicates(
            &Scope::everything(),
            &DuplicateQuery {
                record: Some(records[3].id),
                limit: 100,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(again.pairs[0].score, 60);
}

#[test]
fn a_dismissed_pair_stays_dismissed_and_an_edit_that_breaks_a_match_closes_its_pair() {
    let world = World::new();
    let (records, _, _) = planted();
    ingest(&world, &records);
    let scope = Scope::everything();
    let (a, b) = (records[2].id, records[3].id);
    world
        .storage
        .dismiss_duplicate(&scope, a, b, "giamsat")
        .unwrap();
    assert!(pairs(&world, PairState::Dismissed).contains(&key(&records, (2, 3))));
    assert!(!pairs(&world, PairState::Open).contains(&key(&records, (2, 3))));
    // An edit of one of them finds the match again; the decision stands.
    world
        .storage
        .edit_record(
            SUPERVISOR,
            &scope,
            a,
            &fieldsync_server::storage::RecordEdit::SetField {
                field: "phone".into(),
                value: "0912345678".into(),
            },
        )
        .unwrap();
    let dismissed = world.storage.duplicate_pair(a, b).unwrap().unwrap();
    assert_eq!(dismissed.state, PairState::Dismissed);
    assert_eq!(dismissed.decided_by.as_deref(), Some("giamsat"));
    // Renaming the other one ends the open pair it had with record 4.
    let (c, d) = (records[3].id, records[4].id);
    assert!(pairs(&world, PairState::Open).contains(&key(&records, (3, 4))));
    world
        .storage
        .edit_record(
            SUPERVISOR,
            &scope,
            c,
            &fieldsync_server::storage::RecordEdit::SetField {
                field: "full_name".into(),
                value: "Hà Thị Lan".into(),
            },
        )
        .unwrap();
    assert!(world.storage.duplicate_pair(c, d).unwrap().is_none());
}

fn status(world: &World, id: Uuid) -> String {
    world.storage.merged_record(id).unwrap().unwrap().status
}

fn field(world: &World, id: Uuid, name: &str) -> serde_json::Value {
    world.storage.merged_record(id).unwrap().unwrap().view["fields"][name].clone()
}

#[test]
fn a_merge_redirects_takes_the_chosen_values_and_undoes_exactly() {
    let world = World::new();
    let kept = person("62.610.01", "Nguyễn Thị Hoà", "1990", None);
    let mut dup = person("62.610.01", "Nguyen Thi Hoa", "1990", Some("062190000123"));
    dup.fields.insert("phone".into(), "0987654321".into());
    let mut home = household_with_village("62.610.01", "Nguyễn Thị Hoà", "Làng Le");
    home.fields
        .insert("head_person_id".into(), dup.id.to_string().into());
    ingest(&world, &[kept.clone(), dup.clone(), home.clone()]);
    let scope = Scope::everything();

    // Taking a field the duplicate lacks is refused, and nothing changes.
    let refused = world.storage.merge_records(
        SUPERVISOR,
        &scope,
        kept.id,
        dup.id,
        &["phone".into(), "disability".into()],
        "giamsat",
    );
    assert!(
        matches!(refused, Err(StorageError::Invalid(_))),
        "{refused:?}"
    );
    assert_eq!(status(&world, dup.id), "active");

    world
        .storage
        .merge_records(
            SUPERVISOR,
            &scope,
            kept.id,
            dup.id,
            &[
                "national_id".into(),
                "phone".into(),
                "full_name".into(),
                "ethnicity".into(),
            ],
            "giamsat",
        )
        .unwrap();
    assert_eq!(status(&world, dup.id), "merged");
    assert_eq!(status(&world, kept.id), "active");
    assert_eq!(field(&world, kept.id, "national_id"), "062190000123");
    assert_eq!(
        field(&world, kept.id, "full_name"),
        "Nguyen Thi Hoa",
        "the duplicate's differing value, chosen over the kept record's"
    );
    assert_eq!(
        field(&world, dup.id, "phone"),
        "0987654321",
        "nothing dropped"
    );
    let pair = world
        .storage
        .duplicate_pair(kept.id, dup.id)
        .unwrap()
        .unwrap();
    assert_eq!(pair.state, PairState::Merged);
    assert_eq!(
        world.storage.resolve_records(&[dup.id, home.id]).unwrap(),
        BTreeMap::from([(dup.id, kept.id)]),
        "references to the duplicate lead to the kept record"
    );
    let absorbed = world.storage.absorbed_into(kept.id, &scope).unwrap();
    assert_eq!(absorbed.len(), 1);
    assert_eq!(absorbed[0].id, dup.id);
    // The list finds the kept record by the duplicate's name, and lists the duplicate no more.
    let found = world
        .storage
        .list_records(
            &scope,
            &RecordQuery {
                search: Some("nguyen thi hoa".into()),
                record_type: Some(RecordType::Person),
                limit: 50,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        found.records.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![kept.id]
    );
    // A second merge of the same duplicate is a conflict.
    let again = world
        .storage
        .merge_records(SUPERVISOR, &scope, kept.id, dup.id, &[], "giamsat");
    assert!(matches!(again, Err(StorageError::Conflict(_))), "{again:?}");

    // In between, the kept record's phone number is corrected; the undo keeps that.
    world
        .storage
        .edit_record(
            SUPERVISOR,
            &scope,
            kept.id,
            &fieldsync_server::storage::RecordEdit::SetField {
                field: "phone".into(),
                value: "0911111111".into(),
            },
        )
        .unwrap();
    let was = world
        .storage
        .unmerge_record(SUPERVISOR, &scope, dup.id)
        .unwrap();
    assert_eq!(was, kept.id);
    assert_eq!(status(&world, dup.id), "active");
    assert_eq!(
        field(&world, kept.id, "national_id"),
        serde_json::Value::Null
    );
    assert_eq!(field(&world, kept.id, "phone"), "0911111111");
    assert_eq!(
        field(&world, kept.id, "full_name"),
        "Nguyễn Thị Hoà",
        "the kept record's own value is back"
    );
    // Its history tells the undo, with the value given back.
    let release = world
        .storage
        .record_history(kept.id)
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(release.kind, fieldsync_server::storage::ChangeKind::Release);
    assert!(
        release.ops.contains(&fieldsync_server::storage::HistoryOp {
            key: "full_name".into(),
            value: Some("Nguyễn Thị Hoà".into()),
            old: Some("Nguyen Thi Hoa".into()),
        }),
        "{:?}",
        release.ops
    );
    assert!(world
        .storage
        .absorbed_into(kept.id, &scope)
        .unwrap()
        .is_empty());
    assert!(world.storage.resolve_records(&[dup.id]).unwrap().is_empty());
    let pair = world
        .storage
        .duplicate_pair(kept.id, dup.id)
        .unwrap()
        .unwrap();
    assert_eq!(pair.state, PairState::Open, "back in the queue");
}
