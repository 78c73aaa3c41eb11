//! Vietnamese names round-trip byte for byte and are found whatever the diacritics, case,
//! Unicode form or tone-mark placement of the query or of the stored text.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod common;

use common::*;
use fieldsync_core::model::RecordType;
use fieldsync_core::store::ListFilter;
use unicode_normalization::UnicodeNormalization;

fn search(store: &fieldsync_core::Store, q: &str) -> Vec<String> {
    let mut titles: Vec<String> = store
        .list(&ListFilter {
            search: Some(q.into()),
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .map(|r| r.title)
        .collect();
    titles.sort();
    titles
}

#[test]
fn names_round_trip_exactly_as_entered() {
    let (dir, mut store) = temp_store();
    let nfc: String = "Nguyễn Thị Hoà".nfc().collect();
    let nfd: String = "Rơ Châm H'Nhi Đăk".nfd().collect();
    let a = store
        .create(RecordType::Household, &household_fields(&nfc))
        .unwrap();
    let b = store
        .create(RecordType::Household, &household_fields(&nfd))
        .unwrap();
    let path = dir.path().join("store.sqlite");
    drop(store);
    let store = fieldsync_core::Store::open(path).unwrap();
    assert_eq!(
        store.get(a).unwrap().fields["head_name"]
            .to_string()
            .as_bytes(),
        nfc.as_bytes()
    );
    assert_eq!(
        store.get(b).unwrap().fields["head_name"]
            .to_string()
            .as_bytes(),
        nfd.as_bytes()
    );
}

#[test]
fn search_ignores_case_diacritics_form_and_tone_placement() {
    let (_dir, mut store) = temp_store();
    let hoa_nfd: String = "Nguyễn Thị Hoà".nfd().collect();
    store
        .create(RecordType::Household, &household_fields(&hoa_nfd))
        .unwrap();
    store
        .create(RecordType::Household, &household_fields("Đinh Thị Thúy"))
        .unwrap();
    store
        .create(RecordType::Household, &household_fields("Y Blơ"))
        .unwrap();

    for q in [
        "nguyen thi hoa",
        "NGUYỄN THỊ HÒA",
        "Hoà",
        "hòa",
        "nguyen hoa",
    ] {
        assert_eq!(search(&store, q), vec![hoa_nfd.clone()], "query {q}");
    }
    for q in ["dinh thi thuy", "ĐINH", "Thuý", "thúy"] {
        assert_eq!(
            search(&store, q),
            vec!["Đinh Thị Thúy".to_owned()],
            "query {q}"
        );
    }
    assert_eq!(search(&store, "blo"), vec!["Y Blơ".to_owned()]);
    assert_eq!(search(&store, "thi").len(), 2);
    assert!(search(&store, "tran").is_empty());
}

#[test]
fn lists_filter_by_commune_and_type() {
    let (_dir, mut store) = temp_store();
    let records = fieldsync_core::generator::generate(&fieldsync_core::generator::GenConfig {
        households: 40,
        ..Default::default()
    });
    fieldsync_core::generator::load_into(&mut store, &records, 100).unwrap();
    let commune = records[0].commune().to_owned();
    let expected = records
        .iter()
        .filter(|r| r.commune() == commune && r.record_type == RecordType::Person)
        .count();
    let listed = store
        .list(&ListFilter {
            commune: Some(commune.clone()),
            record_type: Some(RecordType::Person),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(listed.len(), expected);
    assert!(listed
        .iter()
        .all(|r| r.commune.as_deref() == Some(commune.as_str())));
}

/// After a supervisor merged a duplicate into the kept record, the phone lists the kept record
/// only, finds it by either name, and resolves the duplicate's id to it.
#[test]
fn a_kept_record_is_found_by_a_merged_duplicates_name() {
    let (_dir, mut store) = temp_store();
    let kept = store
        .create(RecordType::Household, &household_fields("Nguyễn Thị Hoà"))
        .unwrap();
    let dup = store
        .create(
            RecordType::Household,
            &household_fields("Nguyen Thi Hoa Bình"),
        )
        .unwrap();
    // The supervisor's merge, written elsewhere and received by sync.
    let supervisor = uuid::Uuid::new_v4();
    let copy = |id| {
        let mut doc = fieldsync_core::RecordDoc::empty(id, supervisor);
        doc.apply(store.doc(id).unwrap().changes()).unwrap();
        doc
    };
    let (mut dup_doc, mut kept_doc) = (copy(dup), copy(kept));
    let merge = dup_doc.merge_into(kept).unwrap().unwrap();
    let absorb = kept_doc.absorb(dup, &Default::default()).unwrap().unwrap();
    store
        .apply_remote(&[(dup, merge.bytes), (kept, absorb.bytes)])
        .unwrap();

    let all = store.list(&ListFilter::default()).unwrap();
    assert_eq!(all.iter().map(|r| r.id).collect::<Vec<_>>(), vec![kept]);
    let found = |q: &str| {
        store
            .list(&ListFilter {
                search: Some(q.into()),
                ..Default::default()
            })
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(found("hoa binh"), vec![kept], "by the duplicate's name");
    assert_eq!(found("Nguyễn Thị Hoà"), vec![kept], "by its own name");
    assert_eq!(store.resolve(dup).unwrap(), kept);
    assert_eq!(store.resolve(kept).unwrap(), kept);
}
