//! Adversarial: writing under another phone's author. A collector forges changes under the
//! Automerge actor of a colleague's phone (with the colleague's next sequence number) and
//! tries to enrol claiming that actor; a tampered page served to a phone carries changes it
//! must not take. The victim's own edits must all arrive, exactly as made.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod adversarial_support;
mod common;

use adversarial_support::*;
use common::*;
use fieldsync_core::model::{RecordType, Value};
use fieldsync_core::protocol::{
    decode_request_body, decompress, ClientOptions, RejectCode, SyncClient, SyncResponse,
    MAX_BODY_BYTES,
};
use fieldsync_core::record::decode_change;
use fieldsync_core::RecordDoc;
use fieldsync_tests::phone::Phone;
use serde_json::Value as Json;
use std::collections::BTreeMap;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_forged_under_a_colleagues_author_is_refused_and_the_victims_edits_arrive() {
    let env = Env::start().await;
    for name in ["victim", "forger", "honest"] {
        env.user(name, &[NGOC_LINH], false).await;
    }
    let sup = supervisor(&env, "sup", &[NGOC_LINH], false).await;
    let mut victim = env.phone("victim", Default::default()).await;
    let mut forger = env.phone("forger", Default::default()).await;
    let mut honest = env.phone("honest", Default::default()).await;
    let victim_actor = victim.store.device_id();

    let id = victim
        .store
        .create(
            RecordType::Household,
            &minimal_household(NGOC_LINH, "Y Blơ"),
        )
        .unwrap();
    victim
        .store
        .set_field(id, "village", &"Làng Le".into())
        .unwrap();
    victim.sync(&env.http, env.addr(), 10).await.unwrap();
    forger.sync(&env.http, env.addr(), 10).await.unwrap();

    // The forger builds, from what it pulled, the victim's next change: same actor, next seq.
    let history = record_changes(&forger.store, id);
    assert_eq!(history.len(), 2);
    let forged = forge(id, victim_actor, &history, |d| {
        d.set_field("village", &"Làng Giả".into())
    });
    let change = decode_change(&forged).unwrap();
    assert_eq!(change.actor_id().to_bytes(), victim_actor.as_bytes());
    assert_eq!(change.seq(), 3, "the victim's next sequence number");
    // And a new record "by" the victim.
    let fake_id = Uuid::now_v7();
    let (_, fake_creation) = RecordDoc::create(
        fake_id,
        RecordType::Household,
        &minimal_household(NGOC_LINH, "Hộ Giả"),
        victim_actor,
    )
    .unwrap();

    let before = env.stats().await;
    for _ in 0..2 {
        let response = push(
            &env,
            &forger,
            vec![entry(id, &forged), entry(fake_id, &fake_creation.bytes)],
        )
        .await;
        assert!(response.acked.is_empty(), "nothing forged is acked");
        assert!(response.need.is_empty(), "nor asked for");
        assert_eq!(
            codes(&response),
            BTreeMap::from([
                (hash_of(&forged), RejectCode::NotAuthor),
                (hash_of(&fake_creation.bytes), RejectCode::NotAuthor),
            ])
        );
        assert_eq!(env.stats().await, before, "nothing stored or held");
    }

    // The victim's own next edits reuse the sequence number the forger tried: they sync.
    victim
        .store
        .set_field(id, "village", &"Thôn Đăk Mế".into())
        .unwrap();
    victim
        .store
        .set_field(id, "head_name", &"Y Blơ Niê".into())
        .unwrap();
    let report = victim.sync(&env.http, env.addr(), 10).await.unwrap();
    assert_eq!((report.acked, report.rejected), (2, 0));

    // An honest third phone receives exactly the victim's values and nothing forged.
    honest.sync(&env.http, env.addr(), 10).await.unwrap();
    let view = honest.store.get(id).unwrap();
    assert_eq!(view.fields["village"], Value::from("Thôn Đăk Mế"));
    assert_eq!(view.fields["head_name"], Value::from("Y Blơ Niê"));
    assert!(view.conflicts.is_empty(), "{:?}", view.conflicts);
    assert_eq!(honest.store.get(id).unwrap(), victim.store.get(id).unwrap());
    assert_eq!(honest.store.count(&Default::default()).unwrap(), 1);
    assert!(honest.store.get(fake_id).is_err(), "the forged record");
    assert!(honest.store.set_aside().unwrap().is_empty());
    let changes = honest.store.doc(id).unwrap().changes();
    assert_eq!(changes.len(), 4);
    for c in &changes {
        assert_eq!(c.actor_id().to_bytes(), victim_actor.as_bytes());
        assert_ne!(c.hash().0, hash_of(&forged));
    }
    // So does the supervisors' merged view, and the forger's own phone.
    let (status, merged) = merged_view(&env, &sup, id).await;
    assert_eq!(status, 200);
    assert_eq!(merged, phone_view(&honest, id));
    let (status, _) = merged_view(&env, &sup, fake_id).await;
    assert_eq!(status, 404);
    forger.sync(&env.http, env.addr(), 10).await.unwrap();
    assert_eq!(forger.store.get(id).unwrap(), honest.store.get(id).unwrap());

    // Enrolling while claiming the victim's actor (without its key, which never leaves the
    // victim's phone) is refused, and leaves no device behind.
    let devices_before = call(
        &env,
        "GET",
        "/v1/admin/devices",
        Some(&env.admin),
        &Json::Null,
    )
    .await
    .1;
    let (status, _) = enrol_claiming(&env, "forger", PASSWORD, victim_actor).await;
    assert_eq!(status, 400);
    let devices_after = call(
        &env,
        "GET",
        "/v1/admin/devices",
        Some(&env.admin),
        &Json::Null,
    )
    .await
    .1;
    assert_eq!(devices_after, devices_before);
    // The actor is still the victim's: the forger is still refused, the victim still syncs.
    let later = forge(id, victim_actor, &record_changes(&forger.store, id), |d| {
        d.set_field("poverty", &"none".into())
    });
    let response = push(&env, &forger, vec![entry(id, &later)]).await;
    assert_eq!(
        codes(&response),
        BTreeMap::from([(hash_of(&later), RejectCode::NotAuthor)])
    );
    victim
        .store
        .set_field(id, "poverty", &"near_poor".into())
        .unwrap();
    let report = victim.sync(&env.http, env.addr(), 10).await.unwrap();
    assert_eq!((report.acked, report.rejected), (1, 0));
    honest.sync(&env.http, env.addr(), 10).await.unwrap();
    assert_eq!(
        honest.store.get(id).unwrap().fields["poverty"],
        Value::from("near_poor")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_a_phone_cannot_take_are_set_aside_and_the_rest_of_the_page_applies() {
    let env = Env::start().await;
    env.user("victim", &[NGOC_LINH], false).await;
    env.user("other", &[NGOC_LINH], false).await;
    let mut victim = env.phone("victim", Default::default()).await;
    let mut other = env.phone("other", Default::default()).await;
    let victim_actor = victim.store.device_id();
    let h1 = victim
        .store
        .create(
            RecordType::Household,
            &minimal_household(NGOC_LINH, "Y Blơ"),
        )
        .unwrap();
    victim.sync(&env.http, env.addr(), 10).await.unwrap();
    other.sync(&env.http, env.addr(), 10).await.unwrap();
    other
        .store
        .set_field(h1, "village", &"Thôn 2".into())
        .unwrap();
    let h2 = other
        .store
        .create(
            RecordType::Household,
            &minimal_household(NGOC_LINH, "Đinh Thị Thúy"),
        )
        .unwrap();
    other.sync(&env.http, env.addr(), 10).await.unwrap();

    // The victim's next exchange, answered by the real server, then tampered with on the way.
    let client = SyncClient::new(ClientOptions::default());
    let request = client.request(&victim.store).unwrap();
    let answer = Phone::exchange(&env.http, env.addr(), &victim.token, request.body)
        .await
        .unwrap();
    assert_eq!(answer.status, 200);
    let mut page =
        SyncResponse::decode(&decompress(&answer.body, MAX_BODY_BYTES).unwrap()).unwrap();
    assert_eq!(page.pull.len(), 2, "the other phone's edit and creation");
    let genuine_edit = page
        .pull
        .iter()
        .find(|c| c.record_id == h1)
        .unwrap()
        .bytes
        .clone();

    // 1. A change under the victim's own actor with its next sequence number.
    let own_author = forge(h1, victim_actor, &record_changes(&victim.store, h1), |d| {
        d.set_field("village", &"Làng Giả".into())
    });
    // 2. The victim's own creation of h1, served as a change of another record.
    let ghost = Uuid::now_v7();
    let stolen = record_changes(&victim.store, h1).remove(0);
    // 3. The other phone's edit with a broken checksum.
    let mut broken = genuine_edit.clone();
    broken[5] ^= 0x55;
    // 4. The same edit with a key outside any record layout, and 5. retyping the record.
    let foreign_key = rewrite_key(&genuine_edit, "f/village", "x/evil", None);
    let retype = rewrite_key(
        &genuine_edit,
        "f/village",
        "$type",
        Some(serde_json::json!("support_case")),
    );
    let genuine: Vec<_> = page.pull.drain(..).collect();
    page.pull = vec![
        entry(h1, &own_author),
        entry(h1, &broken),
        entry(h1, &foreign_key),
    ];
    page.pull.extend(genuine);
    page.pull.push(entry(h1, &retype));
    page.pull.push(entry(ghost, &stolen));

    let outcome = client
        .handle_response(&mut victim.store, &page.encode())
        .unwrap();
    assert_eq!(outcome.pulled, 7);
    assert_eq!(outcome.set_aside, 5, "{:?}", victim.store.set_aside());
    let set_aside = victim.store.set_aside().unwrap();
    let reasons: Vec<&str> = set_aside.iter().map(|s| s.reason.as_str()).collect();
    assert!(
        reasons.iter().any(|r| r.contains("own author")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("checksum")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("another record")),
        "{reasons:?}"
    );
    assert!(reasons.iter().any(|r| r.contains("$type")), "{reasons:?}");
    // The rest of the page applied, and the cursor moved past it.
    let view = victim.store.get(h1).unwrap();
    assert_eq!(view.fields["village"], Value::from("Thôn 2"));
    assert_eq!(view.record_type, RecordType::Household);
    assert_eq!(victim.store.get(h2).unwrap(), other.store.get(h2).unwrap());
    assert!(victim.store.get(ghost).is_err());
    let next = decode_request_body(&client.request(&victim.store).unwrap().body).unwrap();
    assert_eq!(next.cursor, page.cursor);

    // The victim's next edit takes the sequence number of the forged change and syncs.
    victim
        .store
        .set_field(h1, "head_name", &"Y Blơ Niê".into())
        .unwrap();
    let report = victim.sync(&env.http, env.addr(), 10).await.unwrap();
    assert_eq!((report.acked, report.rejected), (1, 0));
    other.sync(&env.http, env.addr(), 10).await.unwrap();
    assert_eq!(other.store.get(h1).unwrap(), victim.store.get(h1).unwrap());
    assert_eq!(
        other.store.get(h1).unwrap().fields["head_name"],
        Value::from("Y Blơ Niê")
    );
}
