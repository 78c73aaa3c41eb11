//! A record made under record schema 1 (before the indicator fields) still syncs: the server
//! takes a phone's version 1 creation, shows it without problems, a second phone pulls it, and
//! once approved it counts in the plan progress report like any other.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod common;

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ROOT};
use common::*;
use fieldsync_core::model::{RecordType, Value};
use fieldsync_core::record::ReviewState;
use fieldsync_server::indicators::{report, Day, Plan, Request};
use fieldsync_server::scope::Scope;
use fieldsync_server::storage::prelude::*;
use fieldsync_server::storage::RecordEdit;
use std::collections::BTreeMap;
use uuid::Uuid;

#[test]
fn a_version_1_person_syncs_and_counts() {
    let world = World::new();
    world.user("lan", &[NGOC_LINH], false);
    let mut phone = world.phone("lan");
    let home = phone.household(NGOC_LINH, "Y Hơ");
    // The creation a version 1 phone made, under this phone's actor.
    let id = Uuid::now_v7();
    let mut doc = AutoCommit::new().with_actor(ActorId::from(phone.store.device_id().as_bytes()));
    doc.put(ROOT, "$id", id.to_string()).unwrap();
    doc.put(ROOT, "$type", "person").unwrap();
    doc.put(ROOT, "$schema", 1_i64).unwrap();
    doc.put(ROOT, "$deleted", false).unwrap();
    for (k, v) in [
        ("commune", NGOC_LINH),
        ("household_id", home.to_string().as_str()),
        ("full_name", "Y Hơ"),
        ("sex", "female"),
        ("birth", "1995"),
        ("ethnicity", "13"),
    ] {
        doc.put(ROOT, format!("f/{k}"), v).unwrap();
    }
    let hash = doc.commit().unwrap();
    let bytes = doc.get_change_by_hash(&hash).unwrap().raw_bytes().to_vec();
    let response = fieldsync_server::sync::exchange_as(
        &world.storage,
        &phone.caller,
        &push_only(&phone.store, id, &bytes),
    )
    .unwrap();
    assert_eq!(response.acked, vec![hash.0], "{:?}", response.rejected);
    let merged = world.storage.merged_record(id).unwrap().unwrap();
    assert_eq!(merged.view["schema_version"], 1);
    assert_eq!(merged.problems, serde_json::json!([]));

    // A counselling on safe delivery she attended, made by the phone at schema 2.
    let fields: BTreeMap<String, Value> = [
        ("commune", NGOC_LINH),
        ("kind", "counselling"),
        ("date", "2024-03-08"),
        ("topic", "Làm mẹ an toàn"),
        ("counselling_topic", "safe_delivery"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), Value::from(v)))
    .collect();
    let counselling = phone.store.create(RecordType::Activity, &fields).unwrap();
    phone
        .store
        .add_member(counselling, "attendees", &id.to_string())
        .unwrap();
    world.sync(&mut phone);
    let mut other = world.phone("lan");
    world.sync(&mut other);
    assert_eq!(
        other.store.get(id).unwrap().fields["full_name"],
        Value::from("Y Hơ")
    );

    let request = Request {
        as_of: Day::parse("2025-12-31").unwrap(),
        all_submitted: false,
    };
    let counted = |storage: &dyn Storage| {
        let facts = storage.indicator_facts().unwrap();
        let r = report::build(&facts, Plan::bundled(), &Scope::everything(), &request);
        let row = r.areas.iter().find(|a| a.code == "51.102").unwrap();
        let cell = &row.results[&fieldsync_server::indicators::Indicator::SafeDeliveryCounselled];
        (cell.share.value.shown(), cell.share.denominator)
    };
    assert_eq!(
        counted(&world.storage),
        (Some(0), Some(0)),
        "not approved yet"
    );
    for record in [id, counselling] {
        world
            .storage
            .edit_record(
                Uuid::nil(),
                &Scope::everything(),
                record,
                &RecordEdit::Review {
                    state: ReviewState::Approved,
                    comment: None,
                },
            )
            .unwrap();
    }
    assert_eq!(counted(&world.storage), (Some(1), Some(1)));
}
