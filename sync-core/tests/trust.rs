//! The store's side of "nothing silently lost": identical creations stay two records, a
//! refusal returns the record to what the server took and keeps the refused values, a change
//! this phone cannot take is set aside without stopping the rest, and a restored server gets
//! this phone's own changes offered again.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod common;

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ROOT};
use common::*;
use fieldsync_core::model::{RecordType, Value};
use fieldsync_core::record::decode_change;
use fieldsync_core::store::ListFilter;

#[test]
fn two_records_created_with_identical_fields_stay_two() {
    let (_d, mut phone) = temp_store();
    let a = phone
        .create(RecordType::Household, &household_fields("Y Blơ"))
        .unwrap();
    let b = phone
        .create(RecordType::Household, &household_fields("Y Blơ"))
        .unwrap();
    assert_ne!(a, b);
    assert_eq!(phone.get(a).unwrap().fields, phone.get(b).unwrap().fields);
    let pending = phone.unacked(1 << 20).unwrap();
    assert_eq!(pending.len(), 2, "both creations are kept");
    assert_ne!(pending[0].hash, pending[1].hash);

    let (_d2, mut other) = temp_store();
    let changes = all_changes(&phone, &[a, b]);
    let report = other.apply_remote(&changes).unwrap();
    assert_eq!((report.applied, report.set_aside), (2, 0));
    assert_eq!(other.count(&ListFilter::default()).unwrap(), 2);
}

#[test]
fn a_change_filed_under_another_record_is_set_aside() {
    let (_d, mut phone) = temp_store();
    let a = phone
        .create(RecordType::Household, &household_fields("Y Blơ"))
        .unwrap();
    let (_d2, mut other) = temp_store();
    let mut changes = all_changes(&phone, &[a]);
    let stolen_id = uuid::Uuid::now_v7();
    changes.push((stolen_id, changes[0].1.clone()));
    let report = other.apply_remote(&changes).unwrap();
    assert_eq!((report.applied, report.set_aside), (1, 1));
    assert!(other.get(stolen_id).is_err());
}

#[test]
fn a_refusal_returns_the_record_to_what_the_server_took_and_keeps_the_values() {
    let (_d, mut phone) = temp_store();
    let id = phone
        .create(RecordType::Household, &household_fields("Y Blơ"))
        .unwrap();
    // The server took the creation.
    let created = phone.unacked(1 << 20).unwrap();
    phone
        .ack(&created.iter().map(|c| c.hash.0).collect::<Vec<_>>())
        .unwrap();
    phone.set_field(id, "commune", &"62.616.01".into()).unwrap();
    phone.set_field(id, "village", &"Làng Le".into()).unwrap();
    let pending = phone.unacked(1 << 20).unwrap();
    assert_eq!(pending.len(), 2);
    // The move to another commune is refused: it and the edit made on top of it leave.
    phone
        .reject(&[(pending[0].hash.0, "out_of_scope")])
        .unwrap();
    let view = phone.get(id).unwrap();
    assert_eq!(view.fields["commune"], Value::from(COMMUNE));
    assert!(!view.fields.contains_key("village"));
    assert_eq!(
        phone.unacked_count().unwrap(),
        0,
        "refused edits are not sent again"
    );
    let refused = phone.refused_edits(Some(id)).unwrap();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].code, "out_of_scope");
    assert_eq!(refused[0].edits_left_out, 2);
    assert_eq!(
        refused[0].fields.get("commune"),
        Some(&Some(Value::from("62.616.01")))
    );
    assert_eq!(
        refused[0].fields.get("village"),
        Some(&Some(Value::from("Làng Le")))
    );
    // A refusal repeated after a lost response changes nothing more.
    phone
        .reject(&[(pending[0].hash.0, "out_of_scope")])
        .unwrap();
    assert_eq!(phone.refused_edits(None).unwrap().len(), 1);

    // The next edit is built on what the server has, so it can be accepted.
    phone.set_field(id, "village", &"Thôn 2".into()).unwrap();
    let next = phone.unacked(1 << 20).unwrap();
    assert_eq!(next.len(), 1);
    let change = decode_change(&next[0].bytes).unwrap();
    assert_eq!(change.deps(), &[created[0].hash]);
    // Survives reopening.
    assert_eq!(
        phone.get(id).unwrap().fields["village"],
        Value::from("Thôn 2")
    );
}

#[test]
fn a_refused_creation_leaves_no_record_but_keeps_its_values() {
    let (_d, mut phone) = temp_store();
    let id = phone
        .create(RecordType::Household, &household_fields("Y Blơ"))
        .unwrap();
    let pending = phone.unacked(1 << 20).unwrap();
    phone
        .reject(&[(pending[0].hash.0, "not_permitted")])
        .unwrap();
    assert!(phone.get(id).is_err());
    assert_eq!(phone.count(&ListFilter::default()).unwrap(), 0);
    let refused = phone.refused_edits(None).unwrap();
    assert_eq!(
        refused[0].fields.get("head_name"),
        Some(&Some(Value::from("Y Blơ")))
    );
}

#[test]
fn pulled_changes_that_retype_or_reuse_this_phones_author_are_set_aside() {
    let (_d, mut phone) = temp_store();
    let (_d2, mut other) = temp_store();
    let id = other
        .create(RecordType::Household, &household_fields("Y Blơ"))
        .unwrap();
    deliver(&other, &mut phone, &[id]);

    // A hostile change on top of the creation: it turns the household into a support case.
    let creation = all_changes(&other, &[id]).remove(0).1;
    let mut doc = AutoCommit::new();
    doc.apply_changes([decode_change(&creation).unwrap()])
        .unwrap();
    doc.put(ROOT, "$type", "support_case").unwrap();
    let hash = doc.commit().unwrap();
    let retype = doc.get_change_by_hash(&hash).unwrap();

    // A change written under this phone's own author, which it never made.
    let mut forged =
        AutoCommit::new().with_actor(automerge::ActorId::from(phone.device_id().as_bytes()));
    forged
        .apply_changes([decode_change(&creation).unwrap()])
        .unwrap();
    forged.put(ROOT, "f/village", "giả").unwrap();
    let hash = forged.commit().unwrap();
    let forged = forged.get_change_by_hash(&hash).unwrap();

    other.set_field(id, "village", &"Làng Le".into()).unwrap();
    let mut page = vec![
        (id, retype.raw_bytes().to_vec()),
        (id, forged.raw_bytes().to_vec()),
    ];
    page.extend(all_changes(&other, &[id]));
    let report = phone.apply_remote(&page).unwrap();
    assert_eq!((report.applied, report.set_aside), (1, 2));
    let view = phone.get(id).unwrap();
    assert_eq!(view.record_type, RecordType::Household);
    assert_eq!(view.fields["village"], Value::from("Làng Le"));
}

#[test]
fn meeting_a_restored_server_offers_every_own_change_again() {
    let (_d, mut phone) = temp_store();
    let id = phone
        .create(RecordType::Household, &household_fields("Y Blơ"))
        .unwrap();
    for i in 0..40 {
        phone
            .set_field(id, "village", &format!("Thôn {i}").into())
            .unwrap();
    }
    let all = phone.unacked(1 << 30).unwrap();
    phone
        .ack(&all.iter().map(|c| c.hash.0).collect::<Vec<_>>())
        .unwrap();
    assert_eq!(phone.unacked_count().unwrap(), 0);
    let queued = phone.reoffer_own_changes().unwrap();
    assert_eq!(queued, 41);
    assert_eq!(phone.unacked_count().unwrap(), 41);
    assert_eq!(phone.reoffer_own_changes().unwrap(), 0, "idempotent");
    assert_eq!(
        phone.get(id).unwrap().fields["village"],
        Value::from("Thôn 39")
    );
}
