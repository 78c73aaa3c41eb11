//! What a client written from docs/sync-protocol.md alone may rely on, beyond what the reference
//! client happens to do: a creation's operations in any order, `$id` required in a creation, and
//! a change made after a refusal taking the refused change's sequence number.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod common;

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ROOT};
use common::{push_only, World, MO_RAI, NGOC_LINH};
use fieldsync_core::protocol::RejectCode;
use fieldsync_core::record::decode_change;
use fieldsync_core::Value;
use fieldsync_server::storage::prelude::*;
use uuid::Uuid;

/// A household's creation as another client may write it: the fields first, then the record's
/// keys, `$id` only if asked.
fn creation(actor: Uuid, id: Uuid, with_id: bool) -> Vec<u8> {
    let mut doc = AutoCommit::new().with_actor(ActorId::from(actor.as_bytes()));
    for (field, value) in [
        ("f/commune", NGOC_LINH),
        ("f/head_name", "H' Linh"),
        ("f/ethnicity", "14"),
        ("f/poverty", "poor"),
    ] {
        doc.put(ROOT, field, value).unwrap();
    }
    doc.put(ROOT, "$deleted", false).unwrap();
    doc.put(ROOT, "$schema", 1i64).unwrap();
    if with_id {
        doc.put(ROOT, "$id", id.to_string()).unwrap();
    }
    doc.put(ROOT, "$type", "household").unwrap();
    doc.get_last_local_change().unwrap().raw_bytes().to_vec()
}

#[test]
fn a_creation_is_taken_in_any_order_of_its_operations_but_not_without_its_id() {
    let world = World::new();
    world.user("lan", &[NGOC_LINH], false);
    let phone = world.phone("lan");
    let actor = phone.store.device_id();

    let named = Uuid::now_v7();
    let bytes = creation(actor, named, true);
    let response = fieldsync_server::sync::exchange_as(
        &world.storage,
        &phone.caller,
        &push_only(&phone.store, named, &bytes),
    )
    .unwrap();
    assert_eq!(
        response.acked,
        vec![decode_change(&bytes).unwrap().hash().0]
    );
    assert!(response.rejected.is_empty());

    let unnamed = Uuid::now_v7();
    let bytes = creation(actor, unnamed, false);
    let response = fieldsync_server::sync::exchange_as(
        &world.storage,
        &phone.caller,
        &push_only(&phone.store, unnamed, &bytes),
    )
    .unwrap();
    assert!(response.acked.is_empty());
    assert_eq!(response.rejected.len(), 1);
    assert_eq!(response.rejected[0].code, RejectCode::Invalid);
    assert!(world.storage.merged_record(unnamed).unwrap().is_none());
    assert!(world.storage.merged_record(named).unwrap().is_some());
}

#[test]
fn a_change_after_a_refusal_takes_the_refused_changes_sequence_number() {
    let world = World::new();
    world.user("lan", &[NGOC_LINH], false);
    let mut phone = world.phone("lan");
    let id = phone.household(NGOC_LINH, "Y Blơ");
    world.sync(&mut phone);
    let seq_of_unacked = |phone: &common::Phone| {
        let unacked = phone.store.unacked(1 << 20).unwrap();
        assert_eq!(unacked.len(), 1);
        decode_change(&unacked[0].bytes).unwrap().seq()
    };

    // A move out of the collector's communes is refused; the record returns to the server's.
    phone
        .store
        .set_field(id, "commune", &Value::from(MO_RAI))
        .unwrap();
    let refused_seq = seq_of_unacked(&phone);
    let outcomes = world.sync(&mut phone);
    assert_eq!(outcomes[0].rejected.len(), 1);
    assert_eq!(outcomes[0].rejected[0].code, RejectCode::OutOfScope);

    // The next edit of the record has the same actor and sequence number, and is taken.
    phone
        .store
        .set_field(id, "head_name", &Value::from("Y Blơ Niê"))
        .unwrap();
    assert_eq!(seq_of_unacked(&phone), refused_seq);
    let outcomes = world.sync(&mut phone);
    assert_eq!((outcomes[0].acked, outcomes[0].rejected.len()), (1, 0));
    let merged = world.storage.merged_record(id).unwrap().unwrap();
    assert_eq!(merged.view["fields"]["head_name"], "Y Blơ Niê");
    assert_eq!(merged.view["fields"]["commune"], NGOC_LINH);
}
