//! Records made under an older record schema stay valid: a version 1 person (made before the
//! indicator fields existed) passes the server's layout check, validates, and takes the new
//! optional fields in later edits, while new records carry the current version.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ROOT};
use fieldsync_core::model::{validate_record, RecordType, Value, SCHEMA_VERSION};
use fieldsync_core::record::{decode_change, Fields};
use fieldsync_core::RecordDoc;
use std::collections::BTreeMap;
use uuid::Uuid;

/// The creation change a version 1 phone made for a person.
fn version_1_person(id: Uuid, actor: Uuid) -> Vec<u8> {
    let mut doc = AutoCommit::new().with_actor(ActorId::from(actor.as_bytes()));
    doc.put(ROOT, "$id", id.to_string()).unwrap();
    doc.put(ROOT, "$type", "person").unwrap();
    doc.put(ROOT, "$schema", 1_i64).unwrap();
    doc.put(ROOT, "$deleted", false).unwrap();
    for (k, v) in [
        ("commune", "62.610.01"),
        ("household_id", "01960000-0000-7000-8000-000000000009"),
        ("full_name", "Y Blơ"),
        ("sex", "female"),
        ("birth", "1990"),
        ("ethnicity", "14"),
    ] {
        doc.put(ROOT, format!("f/{k}"), v).unwrap();
    }
    let hash = doc.commit().unwrap();
    doc.get_change_by_hash(&hash).unwrap().raw_bytes().to_vec()
}

#[test]
fn a_version_1_record_is_taken_validated_and_edited_with_version_2_fields() {
    assert_eq!(SCHEMA_VERSION, 2);
    let id = Uuid::now_v7();
    let bytes = version_1_person(id, Uuid::new_v4());
    let change = decode_change(&bytes).unwrap();
    // The server checks received changes against its own (newer) schema.
    let mut server = RecordDoc::empty(id, Uuid::new_v4());
    let (mut accepted, _) = server.candidate(&change, Fields::Schema).unwrap();
    let view = accepted.view().unwrap();
    assert_eq!(view.schema_version, 1);
    assert_eq!(validate_record(RecordType::Person, &view.fields), vec![]);

    // Version 2 fields can be added to it afterwards.
    accepted
        .set_field("formal_finance_linked", &Value::from("2024-03-05"))
        .unwrap()
        .unwrap();
    accepted
        .set_field("cadre", &Value::from("newly_elected"))
        .unwrap()
        .unwrap();
    let view = accepted.view().unwrap();
    assert_eq!(view.schema_version, 1, "the creation's version stays");
    assert_eq!(validate_record(RecordType::Person, &view.fields), vec![]);
    assert!(accepted
        .set_field("cadre", &Value::from("village_head"))
        .is_err());

    let fields: BTreeMap<String, Value> = [
        ("commune", "62.610.01"),
        ("kind", "leadership_training"),
        ("date", "2024-05-01"),
        ("topic", "Kỹ năng lãnh đạo"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), Value::from(v)))
    .collect();
    let (new, _) = RecordDoc::create(
        Uuid::now_v7(),
        RecordType::Activity,
        &fields,
        Uuid::new_v4(),
    )
    .unwrap();
    assert_eq!(new.view().unwrap().schema_version, 2);
}
