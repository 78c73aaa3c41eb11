//! Bad input gets a clear error naming the field and changes nothing; a corrupt record fails
//! alone while the rest of the store keeps working.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod common;

use common::*;
use fieldsync_core::model::{ProblemCode, RecordType, Value};
use fieldsync_core::{CoreError, Store};

fn problems(err: CoreError) -> Vec<(String, ProblemCode)> {
    match err {
        CoreError::Validation(p) => p.into_iter().map(|p| (p.field, p.code)).collect(),
        other => panic!("expected a validation error, got {other}"),
    }
}

#[test]
fn invalid_edits_name_the_field_and_write_nothing() {
    let (_dir, mut store) = temp_store();
    let id = store
        .create(RecordType::Household, &household_fields("Y Bơ"))
        .unwrap();
    let before = store.get(id).unwrap();
    let changes_before = store.unacked_count().unwrap();

    let cases: Vec<(&str, Value, ProblemCode)> = vec![
        ("favourite_colour", "red".into(), ProblemCode::UnknownField),
        (
            "especially_difficult_village",
            "yes".into(),
            ProblemCode::WrongType,
        ),
        ("poverty", "rich".into(), ProblemCode::NotAllowed),
        ("ethnicity", "99".into(), ProblemCode::NotAllowed),
        ("commune", "62.999.99".into(), ProblemCode::NotAllowed),
        ("head_name", Value::Int(7), ProblemCode::WrongType),
    ];
    for (field, value, code) in cases {
        let err = store.set_field(id, field, &value).unwrap_err();
        assert!(
            err.to_string().contains(field),
            "message names {field}: {err}"
        );
        assert_eq!(problems(err), vec![(field.to_owned(), code)]);
    }
    assert_eq!(store.get(id).unwrap(), before);
    assert_eq!(
        store.unacked_count().unwrap(),
        changes_before,
        "no change was stored"
    );
}

#[test]
fn an_invalid_new_record_reports_every_problem_and_is_not_created() {
    let (_dir, mut store) = temp_store();
    let mut f = household_fields("Y Bơ");
    f.insert("poverty".into(), "very".into());
    f.insert("nickname".into(), "Bơ".into());
    f.remove("ethnicity");
    let mut got = problems(store.create(RecordType::Household, &f).unwrap_err());
    got.sort();
    assert_eq!(
        got,
        vec![
            ("ethnicity".to_owned(), ProblemCode::Required),
            ("nickname".to_owned(), ProblemCode::UnknownField),
            ("poverty".to_owned(), ProblemCode::NotAllowed),
        ]
    );
    assert_eq!(store.count(&Default::default()).unwrap(), 0);
    assert_eq!(store.unacked_count().unwrap(), 0);
}

#[test]
fn errors_never_carry_the_values_entered() {
    let (_dir, mut store) = temp_store();
    let id = store
        .create(RecordType::Household, &household_fields("Y Bơ"))
        .unwrap();
    let err = store
        .set_field(id, "head_name", &"x".repeat(500).into())
        .unwrap_err();
    assert!(!err.to_string().contains("xxxx"), "{err}");
}

#[test]
fn a_corrupt_record_fails_alone_and_the_others_still_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite");
    let mut store = Store::open(&path).unwrap();
    let good = store
        .create(RecordType::Household, &household_fields("Y Nhiên"))
        .unwrap();
    let bad = store
        .create(RecordType::Household, &household_fields("Y Rin"))
        .unwrap();
    drop(store);

    let conn = rusqlite_conn(&path);
    conn.execute(
        "UPDATE changes SET bytes = x'856f4a83deadbeef' WHERE record_id = ?1",
        [bad.as_bytes()],
    )
    .unwrap();
    drop(conn);

    let mut store = Store::open(&path).unwrap();
    assert!(matches!(store.get(bad), Err(CoreError::Corrupt { id, .. }) if id == bad));
    assert_eq!(
        store.get(good).unwrap().fields.get("head_name"),
        Some(&"Y Nhiên".into())
    );
    assert_eq!(
        store.list(&Default::default()).unwrap().len(),
        2,
        "lists still work"
    );
    store.set_field(good, "village", &"Thôn 1".into()).unwrap();
    assert!(store.set_field(bad, "village", &"Thôn 1".into()).is_err());
}

#[test]
fn garbage_received_changes_are_set_aside_and_the_rest_of_the_page_applies() {
    let (_dir, mut store) = temp_store();
    let (_dir2, mut other) = temp_store();
    let good = other
        .create(RecordType::Household, &household_fields("Y Nhiên"))
        .unwrap();
    let mut page = vec![(uuid::Uuid::now_v7(), vec![1, 2, 3, 4])];
    page.extend(all_changes(&other, &[good]));
    let garbage = page[0].0;
    let report = store.apply_remote(&page).unwrap();
    assert_eq!((report.applied, report.set_aside), (1, 1));
    assert!(matches!(store.get(garbage), Err(CoreError::NotFound(_))));
    assert_eq!(
        store.get(good).unwrap().fields["head_name"],
        "Y Nhiên".into()
    );
    let aside = store.set_aside().unwrap();
    assert_eq!(aside.len(), 1);
    assert_eq!(aside[0].record_id, garbage);
    assert!(
        aside[0].reason.contains("not an Automerge change"),
        "{:?}",
        aside[0]
    );
}

fn rusqlite_conn(path: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

#[test]
fn a_corrupt_snapshot_fails_its_record_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite");
    let mut store = Store::open(&path).unwrap();
    let good = store
        .create(RecordType::Household, &household_fields("Y Nhiên"))
        .unwrap();
    let bad = store
        .create(RecordType::Household, &household_fields("Y Rin"))
        .unwrap();
    // Enough edits that the record is compacted into a snapshot.
    for i in 0..40 {
        store
            .set_field(bad, "village", &format!("Thôn {i}").into())
            .unwrap();
    }
    drop(store);
    let conn = rusqlite_conn(&path);
    let snapshots: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM records WHERE snapshot IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(snapshots, 1);
    conn.execute(
        "UPDATE records SET snapshot = x'00010203' WHERE id = ?1",
        [bad.as_bytes()],
    )
    .unwrap();
    drop(conn);
    let store = Store::open(&path).unwrap();
    assert!(matches!(store.get(bad), Err(CoreError::Corrupt { id, .. }) if id == bad));
    assert!(store.get(good).is_ok());
}
