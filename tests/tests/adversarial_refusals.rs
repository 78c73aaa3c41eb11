//! Adversarial: changes the server refuses. A phone whose edit is refused returns the record to
//! what the server accepted, keeps the refused values for the collector, and syncs its later
//! edits normally; a change with a broken checksum is a bad request that stores nothing; a
//! commune that is not in the area list is refused even for an account of every area.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod adversarial_support;
mod common;

use adversarial_support::*;
use common::*;
use fieldsync_core::model::{RecordType, Value};
use fieldsync_core::protocol::RejectCode;
use fieldsync_core::RecordDoc;
use fieldsync_tests::phone::Phone;
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_move_and_the_edit_on_top_roll_back_and_later_edits_sync() {
    let env = Env::start().await;
    let (mut a, mut b, sup) = two_collectors_and_supervisor(&env).await;
    let h = household(&mut a, "Y Blơ");
    let other = household(&mut a, "A Hyơk");
    a.store.set_field(h, "village", &"Làng Le".into()).unwrap();
    a.sync(&env.http, env.addr(), 10).await.unwrap();
    b.sync(&env.http, env.addr(), 10).await.unwrap();
    let accepted = a.store.get(h).unwrap();

    // Offline: the household moves to a commune outside the collector's areas, another record
    // is edited, and the moved household is edited again on top of the move.
    a.store
        .set_field(h, "commune", &Value::from(MO_RAI))
        .unwrap();
    a.store
        .set_field(other, "poverty", &"near_poor".into())
        .unwrap();
    a.store.set_field(h, "village", &"Làng Mới".into()).unwrap();
    let report = a.sync(&env.http, env.addr(), 10).await.unwrap();
    assert_eq!(report.acked, 1, "the other record's edit");
    assert!(report.rejected >= 1);

    // The record is back to the server's version; the refused values are kept with the reason.
    assert_eq!(a.store.get(h).unwrap(), accepted);
    assert_eq!(a.store.unacked_count().unwrap(), 0, "nothing pending");
    let refused = a.store.refused_edits(Some(h)).unwrap();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].code, "out_of_scope");
    assert_eq!(refused[0].edits_left_out, 2);
    assert_eq!(
        refused[0].fields,
        BTreeMap::from([
            ("commune".to_owned(), Some(Value::from(MO_RAI))),
            ("village".to_owned(), Some(Value::from("Làng Mới"))),
        ])
    );
    assert!(a.store.refused_edits(Some(other)).unwrap().is_empty());
    let (status, merged) = merged_view(&env, &sup, h).await;
    assert_eq!((status, merged), (200, phone_view(&a, h)));

    // The next edit syncs and reaches the other phone; everyone agrees.
    a.store
        .set_field(h, "head_name", &"Y Blơ Niê".into())
        .unwrap();
    let report = a.sync(&env.http, env.addr(), 10).await.unwrap();
    assert_eq!((report.acked, report.rejected), (1, 0));
    b.sync(&env.http, env.addr(), 10).await.unwrap();
    for id in [h, other] {
        assert_eq!(b.store.get(id).unwrap(), a.store.get(id).unwrap());
        let (status, merged) = merged_view(&env, &sup, id).await;
        assert_eq!((status, merged), (200, phone_view(&a, id)));
    }
    let view = b.store.get(h).unwrap();
    assert_eq!(view.fields["head_name"], Value::from("Y Blơ Niê"));
    assert_eq!(view.fields["commune"], Value::from(NGOC_LINH));
    assert_eq!(view.fields["village"], Value::from("Làng Le"));
    assert_eq!(
        b.store.get(other).unwrap().fields["poverty"],
        Value::from("near_poor")
    );
    // The refused changes were never served to anyone.
    assert_eq!(all_hashes(&b.store), all_hashes(&a.store));
    let stats = env.stats().await;
    assert_eq!(
        stats["changes"].as_u64(),
        Some(all_hashes(&a.store).len() as u64)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_checksum_is_a_bad_request_and_nothing_is_stored() {
    let env = Env::start().await;
    env.user("a", &[NGOC_LINH], false).await;
    let sup = supervisor(&env, "sup", &[NGOC_LINH], false).await;
    let mut a = env.phone("a", Default::default()).await;
    let h = household(&mut a, "Y Blơ");
    a.sync(&env.http, env.addr(), 10).await.unwrap();
    a.store.set_field(h, "village", &"Làng Le".into()).unwrap();
    let fresh = household(&mut a, "A Hyơk");
    let pending = a.store.unacked(1 << 20).unwrap();
    assert_eq!(pending.len(), 2);
    let before = env.stats().await;

    for offset in 4..8 {
        for (i, change) in pending.iter().enumerate() {
            let mut broken = change.bytes.clone();
            broken[offset] ^= 0x01;
            // The broken change beside a valid one: the whole request is refused.
            let mut batch = vec![entry(change.record_id, &broken)];
            let valid = &pending[1 - i];
            batch.insert(i, entry(valid.record_id, &valid.bytes));
            let (status, response, text) = exchange(&env, &a.token, Vec::new(), batch).await;
            assert_eq!(status, 400, "offset {offset}: {text}");
            assert!(response.is_none());
            let body: Json = serde_json::from_str(&text).unwrap();
            assert_eq!(body["error"], "bad_request", "{body}");
            assert_eq!(env.stats().await, before, "nothing stored");
        }
    }
    assert_eq!(merged_view(&env, &sup, fresh).await.0, 404);

    // The intact changes then sync as usual.
    let report = a.sync(&env.http, env.addr(), 10).await.unwrap();
    assert_eq!((report.acked, report.rejected), (2, 0));
    let (status, merged) = merged_view(&env, &sup, h).await;
    assert_eq!((status, merged), (200, phone_view(&a, h)));
    assert_eq!(merged_view(&env, &sup, fresh).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invented_commune_is_refused_even_for_an_account_of_every_area() {
    let env = Env::start().await;
    env.user("everywhere", &["*"], false).await;
    let mut phone: Phone = env.phone("everywhere", Default::default()).await;
    let actor = phone.store.device_id();
    let h = phone
        .store
        .create(RecordType::Household, &minimal_household(MO_RAI, "Y Blơ"))
        .unwrap();
    phone.sync(&env.http, env.addr(), 10).await.unwrap();
    let history = record_changes(&phone.store, h);
    let before = env.stats().await;

    let mut attempts = Vec::new();
    // New records in an invented commune, a district, and no commune at all.
    for code in [json!("62.610.99"), json!("62.610"), json!(""), json!(62)] {
        let id = Uuid::now_v7();
        let (_, creation) = RecordDoc::create(
            id,
            RecordType::Household,
            &minimal_household(NGOC_LINH, "Hộ Ma"),
            actor,
        )
        .unwrap();
        attempts.push(entry(
            id,
            &rewrite_key(&creation.bytes, "f/commune", "f/commune", Some(code)),
        ));
    }
    // The existing household moved to an invented commune, or its commune deleted.
    let edit = forge(h, actor, &history, |d| {
        d.set_field("village", &"Làng Le".into())
    });
    attempts.push(entry(
        h,
        &rewrite_key(&edit, "f/village", "f/commune", Some(json!("99.999.99"))),
    ));
    attempts.push(entry(
        h,
        &rewrite(&edit, |change| {
            let commune_op = format!("5@{}", hex(actor.as_bytes()));
            change["ops"] = json!([
                {"action": "del", "obj": "_root", "key": "f/commune", "pred": [commune_op]}
            ]);
        }),
    ));
    let response = push(&env, &phone, attempts.clone()).await;
    assert!(response.acked.is_empty(), "{:?}", response.acked);
    let expected: BTreeMap<[u8; 32], RejectCode> = attempts
        .iter()
        .map(|a| (hash_of(&a.bytes), RejectCode::Invalid))
        .collect();
    assert_eq!(codes(&response), expected);
    assert_eq!(env.stats().await, before, "nothing stored");
    let (status, list) = call(
        &env,
        "GET",
        "/v1/records?limit=500",
        Some(&env.admin),
        &Json::Null,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(list["records"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["records"][0]["commune"], MO_RAI);

    // The phone's own edits (in real communes) still sync, anywhere.
    phone
        .store
        .set_field(h, "commune", &Value::from(NGOC_LINH))
        .unwrap();
    let report = phone.sync(&env.http, env.addr(), 10).await.unwrap();
    assert_eq!((report.acked, report.rejected), (1, 0));
    let (status, merged) = merged_view(&env, &env.admin, h).await;
    assert_eq!((status, merged), (200, phone_view(&phone, h)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_created_out_of_scope_leaves_the_phone_but_keeps_its_values() {
    let env = Env::start().await;
    env.user("a", &[NGOC_LINH], false).await;
    let mut a = env.phone("a", Default::default()).await;
    let kept = household(&mut a, "Y Blơ");
    let outside = a
        .store
        .create(RecordType::Household, &minimal_household(MO_RAI, "A Hyơk"))
        .unwrap();
    a.store
        .set_field(outside, "village", &"Làng Xa".into())
        .unwrap();
    let report = a.sync(&env.http, env.addr(), 10).await.unwrap();
    assert_eq!(report.acked, 1);
    assert!(a.store.get(outside).is_err(), "the server never had it");
    assert!(a.store.get(kept).is_ok());
    assert_eq!(a.store.unacked_count().unwrap(), 0);
    let refused = a.store.refused_edits(None).unwrap();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(
        (refused[0].record_id, refused[0].code.as_str()),
        (outside, "out_of_scope")
    );
    assert_eq!(refused[0].edits_left_out, 2);
    for (field, value) in [
        ("commune", MO_RAI),
        ("head_name", "A Hyơk"),
        ("village", "Làng Xa"),
    ] {
        assert_eq!(
            refused[0].fields[field],
            Some(Value::from(value)),
            "{field}"
        );
    }
    let stats = env.stats().await;
    assert_eq!(
        (stats["records"].as_u64(), stats["held"].as_u64()),
        (Some(1), Some(0))
    );
    // Later work syncs.
    a.store
        .set_field(kept, "village", &"Làng Le".into())
        .unwrap();
    let report = a.sync(&env.http, env.addr(), 10).await.unwrap();
    assert_eq!((report.acked, report.rejected), (1, 0));
}
