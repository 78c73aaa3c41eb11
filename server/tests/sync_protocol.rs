//! The sync protocol between sync-core phones and the server's storage, without sockets: each
//! exchange is the same bytes the HTTP layer would carry, handed over in memory.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod common;

use common::*;
use fieldsync_core::model::{RecordType, Value};
use fieldsync_core::protocol::{ClientOptions, RejectCode, SyncClient};
use fieldsync_core::record::ReviewState;
use fieldsync_server::scope::Scope;
use fieldsync_server::storage::prelude::*;
use fieldsync_server::storage::RecordEdit;
use std::collections::BTreeMap;
use uuid::Uuid;
#[test]
fn two_phones_converge_through_the_server_in_one_round_trip_each() {
    let world = World::new();
    world.user("a", &[NGOC_LINH], false);
    world.user("b", &[NGOC_LINH], false);
    let mut a = world.phone("a");
    let mut b = world.phone("b");

    let id = a.household(NGOC_LINH, "Y Blơ");
    assert_eq!(
        world.sync(&mut a).len(),
        1,
        "a small push is one round trip"
    );
    assert_eq!(a.store.unacked_count().unwrap(), 0, "acknowledged");
    assert_eq!(
        world.sync(&mut b).len(),
        1,
        "a small pull is one round trip"
    );
    assert_eq!(
        b.store.get(id).unwrap().fields["head_name"],
        Value::from("Y Blơ")
    );

    // Offline edits on both, then both sync: different fields merge, same field conflicts.
    a.store.set_field(id, "village", &"Làng Le".into()).unwrap();
    a.store
        .set_field(id, "head_name", &"Y Blơ Nhiên".into())
        .unwrap();
    b.store
        .set_field(id, "poverty", &"near_poor".into())
        .unwrap();
    b.store.set_field(id, "head_name", &"Y Blờ".into()).unwrap();
    world.sync(&mut a);
    world.sync(&mut b);
    world.sync(&mut a);
    let va = a.store.get(id).unwrap();
    let vb = b.store.get(id).unwrap();
    assert_eq!(va, vb);
    assert_eq!(va.fields["village"], Value::from("Làng Le"));
    assert_eq!(va.fields["poverty"], Value::from("near_poor"));
    assert_eq!(va.conflicts.len(), 1);
    assert_eq!(va.conflicts[0].field, "head_name");

    // The server's merged view shows the same conflict.
    let merged = world.storage.merged_record(id).unwrap().unwrap();
    assert_eq!(merged.conflicts.as_array().map(Vec::len), Some(1));

    // An idle check is exactly one round trip and moves nothing.
    let idle = world.sync(&mut a);
    assert_eq!(idle.len(), 1);
    assert_eq!((idle[0].acked, idle[0].pulled), (0, 0));
}

#[test]
fn resending_a_batch_whose_response_was_lost_stores_nothing_twice() {
    let world = World::new();
    world.user("a", &[NGOC_LINH], false);
    world.user("b", &[NGOC_LINH], false);
    let mut a = world.phone("a");
    let mut b = world.phone("b");
    for i in 0..5 {
        a.store
            .create(
                RecordType::Household,
                &household(NGOC_LINH, &format!("Y Hơ {i}")),
            )
            .unwrap();
    }
    // The request reaches the server but the response is lost on the way back.
    let request = a.client.request(&a.store).unwrap();
    let _lost = world.exchange(&a, &request.body);
    assert_eq!(
        a.store.unacked_count().unwrap(),
        5,
        "nothing acknowledged yet on the phone"
    );
    let log_before = world.storage.stats().unwrap();
    world.sync(&mut a);
    let log_after = world.storage.stats().unwrap();
    assert_eq!(a.store.unacked_count().unwrap(), 0);
    assert_eq!(
        log_before.changes, log_after.changes,
        "the resend stored nothing new"
    );
    assert_eq!(log_before.log_entries, log_after.log_entries);

    // Likewise a pull page lost on the way: the cursor did not move, the page comes again.
    let request = b.client.request(&b.store).unwrap();
    let _lost = world.exchange(&b, &request.body);
    world.sync(&mut b);
    assert_eq!(titles(&b.store).len(), 5);
}

#[test]
fn pulls_are_paged_and_resume_from_the_cursor() {
    let world = World::new();
    world.user("a", &[NGOC_LINH], false);
    world.user("b", &[NGOC_LINH], false);
    let mut a = world.phone("a");
    let mut b = world.phone("b");
    for i in 0..200 {
        a.store
            .create(
                RecordType::Household,
                &household(NGOC_LINH, &format!("Y Hnui {i}")),
            )
            .unwrap();
    }
    a.client = SyncClient::new(ClientOptions {
        max_push_bytes: 4096,
        max_pull_bytes: 4096,
        ..ClientOptions::default()
    });
    world.sync(&mut a);
    assert_eq!(a.store.unacked_count().unwrap(), 0);
    assert!(
        a.round_trips > 1,
        "4 KiB push batches need several round trips"
    );

    b.client = SyncClient::new(ClientOptions {
        max_push_bytes: 4096,
        max_pull_bytes: 4096,
        ..ClientOptions::default()
    });
    // Apply two pages, then "lose" the phone (drop it) and carry on from its file.
    for _ in 0..2 {
        let request = b.client.request(&b.store).unwrap();
        let response = world.exchange(&b, &request.body);
        b.client.handle_response(&mut b.store, &response).unwrap();
    }
    let after_two = b.store.count(&Default::default()).unwrap();
    assert!(after_two > 0 && after_two < 200, "got {after_two}");
    let outcomes = world.sync(&mut b);
    let pulled: usize = outcomes.iter().map(|o| o.pulled).sum();
    assert_eq!(b.store.count(&Default::default()).unwrap(), 200);
    assert_eq!(
        pulled as u64,
        200 - after_two,
        "nothing already applied is downloaded again"
    );
}

#[test]
fn scope_limits_pulls_and_rejects_pushes_per_change() {
    let world = World::new();
    world.user("ngoclinh", &[NGOC_LINH], false);
    world.user("morai", &[MO_RAI], false);
    let mut nl = world.phone("ngoclinh");
    let mut mr = world.phone("morai");
    nl.household(NGOC_LINH, "Y Blơ");
    world.sync(&mut nl);

    // Mô Rai's phone makes one record of its own and one in Ngọc Linh (outside its scope).
    let own = mr.household(MO_RAI, "Y Rin");
    let foreign = mr.household(NGOC_LINH, "Y Lêm");
    let outcomes = world.sync(&mut mr);
    let rejected: Vec<_> = outcomes.iter().flat_map(|o| o.rejected.clone()).collect();
    assert_eq!(rejected.len(), 1);
    assert_eq!(
        (rejected[0].record_id, rejected[0].code),
        (foreign, RejectCode::OutOfScope)
    );
    assert!(
        world.storage.merged_record(own).unwrap().is_some(),
        "the rest of the batch applied"
    );
    assert!(world.storage.merged_record(foreign).unwrap().is_none());
    assert_eq!(
        mr.store.unacked_count().unwrap(),
        0,
        "a refused change is not resent forever"
    );
    assert_eq!(
        titles(&mr.store),
        vec!["Y Rin"],
        "never received Ngọc Linh's records; the refused one left the phone's lists"
    );
    let refused = mr.store.refused_edits(Some(foreign)).unwrap();
    assert_eq!(refused[0].code, "out_of_scope");
    assert_eq!(
        refused[0].fields.get("head_name"),
        Some(&Some(Value::from("Y Lêm"))),
        "what the collector typed is kept for them to see"
    );
    world.sync(&mut nl);
    assert_eq!(titles(&nl.store), vec!["Y Blơ"]);
}

#[test]
fn sensitive_records_only_reach_allowed_roles() {
    let world = World::new();
    world.user("caseworker", &[NGOC_LINH], true);
    world.user("collector", &[NGOC_LINH], false);
    let mut cw = world.phone("caseworker");
    let mut co = world.phone("collector");
    let person = Uuid::now_v7().to_string();
    let case: BTreeMap<String, Value> = [
        ("commune", NGOC_LINH),
        ("person_id", person.as_str()),
        ("case_kind", "domestic_violence"),
        ("opened", "2025-03-01"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), Value::from(v)))
    .collect();
    cw.store.create(RecordType::SupportCase, &case).unwrap();
    cw.household(NGOC_LINH, "Y Khuyên");
    world.sync(&mut cw);
    world.sync(&mut co);
    assert_eq!(
        titles(&co.store),
        vec!["Y Khuyên"],
        "the collector got no support case"
    );

    co.store.create(RecordType::SupportCase, &case).unwrap();
    let rejected: Vec<_> = world
        .sync(&mut co)
        .iter()
        .flat_map(|o| o.rejected.clone())
        .collect();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].code, RejectCode::NotPermitted);
}

#[test]
fn assigning_a_commune_backfills_it_and_removing_it_stops_pulls() {
    let world = World::new();
    world.user("ngoclinh", &[NGOC_LINH], false);
    world.user("morai", &[MO_RAI], false);
    let mut nl = world.phone("ngoclinh");
    let mut mr = world.phone("morai");
    for i in 0..3 {
        mr.store
            .create(
                RecordType::Household,
                &household(MO_RAI, &format!("Y Rin {i}")),
            )
            .unwrap();
    }
    world.sync(&mut mr);
    nl.household(NGOC_LINH, "Y Blơ");
    world.sync(&mut nl);
    assert_eq!(titles(&nl.store).len(), 1);

    world.set_areas("ngoclinh", &[NGOC_LINH, MO_RAI]);
    world.sync(&mut nl);
    assert_eq!(
        titles(&nl.store).len(),
        4,
        "Mô Rai's earlier records were backfilled"
    );

    world.set_areas("ngoclinh", &[NGOC_LINH]);
    mr.household(MO_RAI, "Y Rin mới");
    world.sync(&mut mr);
    world.sync(&mut nl);
    assert_eq!(
        titles(&nl.store).len(),
        4,
        "no new Mô Rai records after removal"
    );
}

#[test]
fn a_change_pushed_before_its_dependency_is_held_and_the_sender_told_what_to_send() {
    let world = World::new();
    world.user("a", &[NGOC_LINH], false);
    world.user("b", &[NGOC_LINH], false);
    let a = world.phone("a");
    let mut b = world.phone("b");
    let mut store = a.store;
    let id = store
        .create(RecordType::Household, &household(NGOC_LINH, "Y Hơ"))
        .unwrap();
    store.set_field(id, "village", &"Thôn 1".into()).unwrap();
    let changes = store.unacked(1 << 20).unwrap();
    // Push only the second change: the server holds it and names the missing first one.
    let request = push_only(&store, id, &changes[1].bytes);
    let response =
        fieldsync_server::sync::exchange_as(&world.storage, &a.caller, &request).unwrap();
    assert!(response.acked.is_empty());
    assert_eq!(response.need.len(), 1);
    assert_eq!(response.need[0].hash, changes[0].hash.0);
    assert_eq!(world.storage.stats().unwrap().held, 1);
    // Sending the missing one releases the held one.
    let request = push_only(&store, id, &changes[0].bytes);
    fieldsync_server::sync::exchange_as(&world.storage, &a.caller, &request).unwrap();
    assert_eq!(world.storage.stats().unwrap().held, 0);
    world.sync(&mut b);
    assert_eq!(
        b.store.get(id).unwrap().fields["village"],
        Value::from("Thôn 1")
    );
}

#[test]
fn a_supervisor_resolution_and_review_reach_every_phone() {
    let world = World::new();
    world.user("a", &[NGOC_LINH], false);
    world.user("b", &[NGOC_LINH], false);
    let mut a = world.phone("a");
    let mut b = world.phone("b");
    let id = a.household(NGOC_LINH, "Y Blơ");
    world.sync(&mut a);
    world.sync(&mut b);
    a.store
        .set_field(id, "head_name", &"Y Blơ A".into())
        .unwrap();
    b.store
        .set_field(id, "head_name", &"Y Blơ B".into())
        .unwrap();
    world.sync(&mut a);
    world.sync(&mut b);
    assert_eq!(
        world
            .storage
            .merged_record(id)
            .unwrap()
            .unwrap()
            .conflicts
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    let supervisor = Uuid::now_v7();
    world
        .storage
        .edit_record(
            supervisor,
            &ngoc_linh_scope(),
            id,
            &RecordEdit::SetField {
                field: "head_name".into(),
                value: "Y Blơ".into(),
            },
        )
        .unwrap();
    world
        .storage
        .edit_record(
            supervisor,
            &ngoc_linh_scope(),
            id,
            &RecordEdit::Review {
                state: ReviewState::Returned,
                comment: Some("Thiếu số CCCD".into()),
            },
        )
        .unwrap();
    let moved_away = RecordEdit::SetField {
        field: "commune".into(),
        value: MO_RAI.into(),
    };
    assert!(
        world
            .storage
            .edit_record(supervisor, &ngoc_linh_scope(), id, &moved_away)
            .is_err(),
        "not out of the supervisor's areas"
    );
    world.sync(&mut a);
    world.sync(&mut b);
    for phone in [&a, &b] {
        let view = phone.store.get(id).unwrap();
        assert_eq!(view.fields["commune"], Value::from(NGOC_LINH));
        assert!(view.conflicts.is_empty());
        assert_eq!(view.fields["head_name"], Value::from("Y Blơ"));
        assert_eq!(view.review, ReviewState::Returned);
        assert_eq!(view.review_comment.as_deref(), Some("Thiếu số CCCD"));
    }
}

#[test]
fn an_all_areas_account_without_sensitive_access_never_pulls_support_cases() {
    let world = World::new();
    world.user("caseworker", &[NGOC_LINH], true);
    world.user("everywhere", &["*"], false);
    let mut cw = world.phone("caseworker");
    let mut all = world.phone("everywhere");
    let case: BTreeMap<String, Value> = [
        ("commune", NGOC_LINH),
        ("person_id", "0190a000-0000-7000-8000-000000000001"),
        ("case_kind", "trafficking"),
        ("opened", "2025-03-01"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), Value::from(v)))
    .collect();
    cw.store.create(RecordType::SupportCase, &case).unwrap();
    cw.household(NGOC_LINH, "Y Khuyên");
    world.sync(&mut cw);
    world.sync(&mut all);
    assert_eq!(titles(&all.store), vec!["Y Khuyên"]);
}

#[test]
fn changes_made_on_top_of_a_refused_change_are_not_sent_again_and_again() {
    let world = World::new();
    world.user("morai", &[MO_RAI], false);
    let mut mr = world.phone("morai");
    let foreign = mr.household(NGOC_LINH, "Y Lêm");
    mr.store
        .set_field(foreign, "village", &"Thôn 1".into())
        .unwrap();
    mr.store
        .set_field(foreign, "poverty", &"none".into())
        .unwrap();
    let outcomes = world.sync(&mut mr);
    assert_eq!(
        mr.store.unacked_count().unwrap(),
        0,
        "the refused record's later edits are settled too"
    );
    assert_eq!(
        world.storage.stats().unwrap().held,
        0,
        "nothing left waiting on the server"
    );
    assert!(
        outcomes.len() <= 2,
        "settles in at most two round trips, took {}",
        outcomes.len()
    );
    let idle = world.sync(&mut mr);
    assert_eq!(idle.len(), 1);
}

/// A supervisor's scope over Ngọc Linh.
fn ngoc_linh_scope() -> Scope {
    Scope {
        all: false,
        communes: [NGOC_LINH.to_owned()].into(),
        sensitive: false,
        reviews: true,
    }
}

#[test]
fn a_device_cannot_push_changes_under_another_devices_author() {
    let world = World::new();
    world.user("ngoclinh", &[NGOC_LINH], false);
    world.user("morai", &[MO_RAI, NGOC_LINH], false);
    let mut nl = world.phone("ngoclinh");
    let mr = world.phone("morai");
    let id = nl.household(NGOC_LINH, "Y Blơ");
    nl.store.set_field(id, "village", &"Thôn 1".into()).unwrap();
    let changes = nl.store.unacked(1 << 20).unwrap();
    // Mô Rai's device pushes Ngọc Linh's changes as if they were its own.
    for change in &changes {
        let response = fieldsync_server::sync::exchange_as(
            &world.storage,
            &mr.caller,
            &push_only(&mr.store, id, &change.bytes),
        )
        .unwrap();
        assert_eq!(response.rejected.len(), 1);
        assert_eq!(response.rejected[0].code, RejectCode::NotAuthor);
    }
    let stats = world.storage.stats().unwrap();
    assert_eq!(
        (stats.changes, stats.held),
        (0, 0),
        "nothing stored or held"
    );
    // The real author's pushes are then accepted, as if nothing had happened.
    world.sync(&mut nl);
    assert_eq!(nl.store.unacked_count().unwrap(), 0);
    assert_eq!(world.storage.stats().unwrap().changes, 2);
}
