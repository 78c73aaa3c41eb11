//! Concurrent offline edits of one record on several devices: what survives and what conflicts.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod common;

use common::*;
use fieldsync_core::model::Value;

#[test]
fn concurrent_edits_of_different_fields_both_survive() {
    let (_a_dir, mut a) = temp_store();
    let (_b_dir, mut b) = temp_store();
    let id = a
        .create(
            fieldsync_core::RecordType::Household,
            &household_fields("Y Blơ"),
        )
        .unwrap();
    deliver(&a, &mut b, &[id]);

    a.set_field(id, "village", &"Làng Le".into()).unwrap();
    b.set_field(id, "poverty", &"near_poor".into()).unwrap();
    deliver(&a, &mut b, &[id]);
    deliver(&b, &mut a, &[id]);

    for store in [&a, &b] {
        let view = store.get(id).unwrap();
        assert_eq!(view.fields.get("village"), Some(&Value::from("Làng Le")));
        assert_eq!(view.fields.get("poverty"), Some(&Value::from("near_poor")));
        assert!(view.conflicts.is_empty());
    }
}

#[test]
fn same_field_conflict_stays_visible_until_resolved_then_resolution_wins_everywhere() {
    let (_a_dir, mut a) = temp_store();
    let (_b_dir, mut b) = temp_store();
    let (_c_dir, mut c) = temp_store();
    let id = a
        .create(
            fieldsync_core::RecordType::Household,
            &household_fields("Y Hơ"),
        )
        .unwrap();
    deliver(&a, &mut b, &[id]);
    deliver(&a, &mut c, &[id]);

    a.set_field(id, "head_name", &"Y Hơ Nhiên".into()).unwrap();
    b.set_field(id, "head_name", &"Y Hờ".into()).unwrap();
    deliver(&a, &mut b, &[id]);
    deliver(&b, &mut a, &[id]);
    deliver(&a, &mut c, &[id]);

    for store in [&a, &b, &c] {
        let view = store.get(id).unwrap();
        assert_eq!(view.conflicts.len(), 1);
        let conflict = &view.conflicts[0];
        assert_eq!(conflict.field, "head_name");
        let mut values: Vec<_> = conflict
            .values
            .iter()
            .map(|v| v.value.to_string())
            .collect();
        values.sort();
        assert_eq!(values, vec!["Y Hơ Nhiên", "Y Hờ"]);
        let mut devices: Vec<_> = conflict.values.iter().map(|v| v.device.clone()).collect();
        devices.sort();
        let mut expected = vec![a.device_id().to_string(), b.device_id().to_string()];
        expected.sort();
        assert_eq!(
            devices, expected,
            "each value names the device that wrote it"
        );
        assert_eq!(store.list(&Default::default()).unwrap()[0].conflicts, 1);
    }
    // Both stores pick the same value to show while the conflict lasts.
    assert_eq!(a.get(id).unwrap().fields, b.get(id).unwrap().fields);

    // A supervisor on c writes the resolution: it supersedes both values everywhere.
    c.set_field(id, "head_name", &"Y Hơ Nhiên".into()).unwrap();
    deliver(&c, &mut a, &[id]);
    deliver(&c, &mut b, &[id]);
    for store in [&a, &b, &c] {
        let view = store.get(id).unwrap();
        assert!(view.conflicts.is_empty(), "resolution clears the conflict");
        assert_eq!(
            view.fields.get("head_name"),
            Some(&Value::from("Y Hơ Nhiên"))
        );
    }
}

#[test]
fn set_members_added_on_two_devices_all_survive_and_removal_sticks() {
    let (_a_dir, mut a) = temp_store();
    let (_b_dir, mut b) = temp_store();
    let group = a
        .create(
            fieldsync_core::RecordType::Group,
            &fields(&[
                ("commune", COMMUNE.into()),
                ("kind", "savings_loan_group".into()),
                ("name", "Tổ tiết kiệm Làng Le".into()),
            ]),
        )
        .unwrap();
    let p1 = uuid::Uuid::now_v7().to_string();
    let p2 = uuid::Uuid::now_v7().to_string();
    let p3 = uuid::Uuid::now_v7().to_string();
    a.add_member(group, "members", &p1).unwrap();
    deliver(&a, &mut b, &[group]);
    a.add_member(group, "members", &p2).unwrap();
    b.add_member(group, "members", &p3).unwrap();
    b.remove_member(group, "members", &p1).unwrap();
    deliver(&a, &mut b, &[group]);
    deliver(&b, &mut a, &[group]);
    for store in [&a, &b] {
        let members = store
            .get(group)
            .unwrap()
            .sets
            .remove("members")
            .unwrap_or_default();
        assert_eq!(members, [p2.clone(), p3.clone()].into_iter().collect());
    }
}

#[test]
fn soft_delete_hides_from_lists_and_restore_brings_back() {
    let (_dir, mut store) = temp_store();
    let id = store
        .create(
            fieldsync_core::RecordType::Household,
            &household_fields("Y Khuyên"),
        )
        .unwrap();
    store.soft_delete(id).unwrap();
    assert!(store.list(&Default::default()).unwrap().is_empty());
    let all = fieldsync_core::store::ListFilter {
        include_inactive: true,
        ..Default::default()
    };
    assert_eq!(store.list(&all).unwrap().len(), 1);
    assert!(store.get(id).unwrap().deleted, "the record is still there");
    store.restore(id).unwrap();
    assert_eq!(store.list(&Default::default()).unwrap().len(), 1);
    assert!(!store.get(id).unwrap().deleted);
}

#[test]
fn clearing_an_optional_field_removes_it_and_a_required_one_is_refused() {
    let (_dir, mut store) = temp_store();
    let id = store
        .create(
            fieldsync_core::RecordType::Household,
            &household_fields("Y Mlơ"),
        )
        .unwrap();
    store.set_field(id, "village", &"Thôn 2".into()).unwrap();
    store.clear_field(id, "village").unwrap();
    assert!(!store.get(id).unwrap().fields.contains_key("village"));
    let err = store.clear_field(id, "head_name").unwrap_err();
    assert!(err.to_string().contains("head_name"), "{err}");
}
