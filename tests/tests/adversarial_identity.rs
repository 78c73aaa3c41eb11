//! Adversarial: record identity. Two records created with identical fields are two different
//! changes (each creation names its record), so neither is lost or merged; and a change the
//! server stores for one record can never be made to count for another.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod adversarial_support;
mod common;

use adversarial_support::*;
use common::*;
use fieldsync_core::model::{RecordType, Value};
use fieldsync_core::protocol::{NeedEntry, RejectCode};
use serde_json::Value as Json;
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

async fn listed_ids(env: &Env, token: &str, record_type: &str) -> Vec<Uuid> {
    let (status, list) = call(
        env,
        "GET",
        &format!("/v1/records?type={record_type}&limit=500"),
        Some(token),
        &Json::Null,
    )
    .await;
    assert_eq!(status, 200, "{list}");
    list["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| Uuid::parse_str(r["id"].as_str().unwrap()).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_records_from_one_phone_stay_two_records_everywhere() {
    let env = Env::start().await;
    let (mut a, mut b, sup) = two_collectors_and_supervisor(&env).await;

    let household = minimal_household(NGOC_LINH, "Y Blơ");
    let activity = fields(&[
        ("commune", NGOC_LINH),
        ("kind", "meeting"),
        ("date", "2025-03-14"),
        ("topic", "Họp thôn về bình đẳng giới"),
    ]);
    let h1 = a.store.create(RecordType::Household, &household).unwrap();
    let h2 = a.store.create(RecordType::Household, &household).unwrap();
    let a1 = a.store.create(RecordType::Activity, &activity).unwrap();
    let a2 = a.store.create(RecordType::Activity, &activity).unwrap();
    let creations: BTreeSet<[u8; 32]> = [h1, h2, a1, a2]
        .iter()
        .map(|id| hash_of(&record_changes(&a.store, *id)[0]))
        .collect();
    assert_eq!(creations.len(), 4, "four different changes");

    let report = a.sync(&env.http, env.addr(), 10).await.unwrap();
    assert_eq!((report.acked, report.rejected), (4, 0));
    let stats = env.stats().await;
    assert_eq!(
        (stats["records"].as_u64(), stats["changes"].as_u64()),
        (Some(4), Some(4))
    );
    assert_eq!(stats["held"].as_u64(), Some(0));
    for (record_type, ids) in [("household", [h1, h2]), ("activity", [a1, a2])] {
        let mut listed = listed_ids(&env, &sup, record_type).await;
        listed.sort();
        let mut expected = ids.to_vec();
        expected.sort();
        assert_eq!(listed, expected, "{record_type}: each once");
    }

    b.sync(&env.http, env.addr(), 10).await.unwrap();
    assert_eq!(b.store.count(&Default::default()).unwrap(), 4);
    assert!(b.store.set_aside().unwrap().is_empty());
    for id in [h1, h2, a1, a2] {
        assert_eq!(b.store.get(id).unwrap(), a.store.get(id).unwrap());
        let (status, merged) = merged_view(&env, &sup, id).await;
        assert_eq!((status, merged), (200, phone_view(&a, id)));
    }

    // The same edit on both twins: two changes again, both kept.
    for id in [h1, h2] {
        a.store.set_field(id, "village", &"Làng Le".into()).unwrap();
    }
    let report = a.sync(&env.http, env.addr(), 10).await.unwrap();
    assert_eq!((report.acked, report.rejected), (2, 0));
    assert_eq!(env.stats().await["changes"].as_u64(), Some(6));
    b.sync(&env.http, env.addr(), 10).await.unwrap();
    for id in [h1, h2] {
        assert_eq!(
            b.store.get(id).unwrap().fields["village"],
            Value::from("Làng Le")
        );
    }
    let mut fresh = env.phone("b", Default::default()).await;
    fresh.sync(&env.http, env.addr(), 10).await.unwrap();
    assert_eq!(fresh.store.count(&Default::default()).unwrap(), 4);
    assert_eq!(all_hashes(&fresh.store), all_hashes(&a.store));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_change_pushed_under_another_record_is_refused_never_acked() {
    let env = Env::start().await;
    let (mut a, mut b, sup) = two_collectors_and_supervisor(&env).await;
    let h1 = household(&mut a, "Y Blơ");
    let h2 = household(&mut a, "Y Blơ");
    a.store.set_field(h1, "village", &"Làng Le".into()).unwrap();
    a.sync(&env.http, env.addr(), 10).await.unwrap();
    let c1 = record_changes(&a.store, h1);
    let ghost = Uuid::now_v7();
    let before = env.stats().await;

    let response = push(
        &env,
        &a,
        vec![
            entry(ghost, &c1[0]),
            entry(h2, &c1[0]),
            entry(h2, &c1[1]),
            entry(ghost, &c1[1]),
        ],
    )
    .await;
    assert!(
        response.acked.is_empty(),
        "never acked under another record"
    );
    assert!(response.need.is_empty());
    assert_eq!(response.rejected.len(), 4);
    for (r, expected) in response.rejected.iter().zip([ghost, h2, h2, ghost]) {
        assert_eq!((r.record_id, r.code), (expected, RejectCode::Invalid));
    }
    assert_eq!(env.stats().await, before, "nothing stored");
    assert_eq!(merged_view(&env, &sup, ghost).await.0, 404);
    // Another device of the commune gets the same answer with the same bytes.
    let response = push(&env, &b, vec![entry(ghost, &c1[0])]).await;
    assert_eq!(
        codes(&response),
        BTreeMap::from([(hash_of(&c1[0]), RejectCode::Invalid)])
    );
    assert!(response.acked.is_empty());
    // Under their own record the same bytes are still acknowledged: pushing is idempotent.
    let response = push(&env, &a, vec![entry(h1, &c1[0]), entry(h1, &c1[1])]).await;
    assert_eq!(response.acked, vec![hash_of(&c1[0]), hash_of(&c1[1])]);
    assert!(response.rejected.is_empty());
    assert_eq!(env.stats().await, before);

    // A held change (its creation not sent yet) cannot be claimed by another record either.
    let h3 = household(&mut a, "A Hyơk");
    a.store.set_field(h3, "village", &"Thôn 2".into()).unwrap();
    let c3 = record_changes(&a.store, h3);
    let response = push(&env, &a, vec![entry(h3, &c3[1])]).await;
    assert_eq!(
        response.need,
        vec![NeedEntry {
            record_id: h3,
            hash: hash_of(&c3[0])
        }]
    );
    assert_eq!(env.stats().await["held"].as_u64(), Some(1));
    let response = push(&env, &a, vec![entry(ghost, &c3[1])]).await;
    assert_eq!(
        codes(&response),
        BTreeMap::from([(hash_of(&c3[1]), RejectCode::Invalid)])
    );
    assert_eq!(env.stats().await["held"].as_u64(), Some(1));

    // The phone's own sync settles everything: three records, each change once.
    let report = a.sync(&env.http, env.addr(), 10).await.unwrap();
    assert_eq!(report.rejected, 0);
    assert_eq!(a.store.unacked_count().unwrap(), 0);
    let stats = env.stats().await;
    assert_eq!(
        (
            stats["records"].as_u64(),
            stats["changes"].as_u64(),
            stats["held"].as_u64()
        ),
        (Some(3), Some(5), Some(0))
    );
    b.sync(&env.http, env.addr(), 10).await.unwrap();
    assert_eq!(b.store.count(&Default::default()).unwrap(), 3);
    assert!(b.store.get(ghost).is_err());
    for id in [h1, h2, h3] {
        assert_eq!(b.store.get(id).unwrap(), a.store.get(id).unwrap());
    }
    assert_eq!(all_hashes(&b.store), all_hashes(&a.store));
}
