//! Abuse: hostile payloads from an enrolled collector. A DEFLATE bomb inside a change, a change
//! over 64 KiB inflated and a request of 1,001 changes are refused with 413 and store nothing;
//! a body over 1 MiB gets a readable 413 (the server drains it); a gzip body with bytes after
//! its stream is a 400; creations with an unknown key, a nested object or a NUL byte are
//! refused `Invalid`; and pull pages stay within the phone's limits however large the changes
//! waiting for it. After each attack the server answers its health check and an honest
//! phone's edits reach a second honest phone.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod abuse_support;
mod common;

use abuse_support::*;
use common::*;
use fieldsync_core::protocol::{
    compress, decompress, ChangeEntry, ClientOptions, RejectCode, SyncResponse, MAX_BODY_BYTES,
};
use fieldsync_core::record::MAX_CHANGE_BYTES;
use fieldsync_server::http::{MAX_REQUEST_BYTES, MAX_REQUEST_MESSAGE_BYTES};
use uuid::Uuid;

/// A change whose compressed chunk inflates to gigabytes: refused 413 on the change's cap,
/// nothing stored, and the server goes on serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deflate_bomb_change_is_refused_413_and_stores_nothing() {
    let mut env = start_env(&[]).await;
    let mut bystanders = Bystanders::new(&env).await;
    let attacker = Attacker::enrol(&env, "attacker", &[NGOC_LINH]).await;
    let before = stats(&env).await;

    // 8 MiB of zeros deflate to ~8 KiB; repeat the piece as far as the 4 MiB message allows.
    let piece_zeros = 8 << 20;
    let piece = zero_bomb(piece_zeros, 1).len();
    let pieces = (MAX_REQUEST_MESSAGE_BYTES - 4096) / piece;
    let inflated = (pieces * piece_zeros) as u64;
    assert!(inflated > 2 << 30, "the bomb inflates to {inflated} bytes");
    let chunk = compressed_change_chunk(&zero_bomb(piece_zeros, pieces));
    let body = sync_body(
        &[],
        vec![ChangeEntry {
            record_id: Uuid::now_v7(),
            bytes: chunk,
            signature: [0; 64],
        }],
    );
    assert!(
        (body.len() as u64) < MAX_REQUEST_BYTES,
        "{} bytes",
        body.len()
    );

    for round in 0..3 {
        let r = attacker.post(&env, body.clone()).await;
        let json = assert_refused(&r, 413, "payload_too_large");
        assert!(
            json["message"]
                .as_str()
                .unwrap()
                .contains(&MAX_CHANGE_BYTES.to_string()),
            "refused on the change's 64 KiB cap, not the body's: {json}"
        );
        bystanders
            .edit_and_sync(&env, &format!("bomb {round}"))
            .await;
    }
    assert_up(&mut env).await;
    let after = stats(&env).await;
    assert_eq!(
        after["changes"].as_u64().unwrap(),
        before["changes"].as_u64().unwrap() + 3,
        "only the bystander's three households were stored"
    );
    assert_eq!(after["held"], before["held"]);
    bystanders.verify(&env).await;
}

/// One change over 64 KiB inflated, compressed or not, and a request of 1,001 changes: 413 for
/// the whole request, nothing stored, also of the valid changes beside them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_changes_and_too_many_changes_are_refused_413() {
    let mut env = start_env(&[]).await;
    let mut bystanders = Bystanders::new(&env).await;
    let attacker = Attacker::enrol(&env, "attacker", &[NGOC_LINH]).await;
    let before = stats(&env).await;

    let long = "a".repeat(MAX_CHANGE_BYTES + 1024);
    let mut compressed = RawRecord::household(attacker.actor, NGOC_LINH, &long);
    let compressed_bytes = compressed.commit();
    assert_eq!(compressed_bytes[8], 2, "a compressed chunk");
    assert!(compressed_bytes.len() < 4096, "small on the wire");
    let mut plain = RawRecord::household(attacker.actor, NGOC_LINH, &long);
    let plain_bytes = plain.commit_uncompressed();
    assert_eq!(plain_bytes[8], 1, "an uncompressed chunk");
    let valid = creations(attacker.actor, NGOC_LINH, "valid", 1).remove(0);

    for (what, push) in [
        (
            "compressed",
            vec![valid.clone(), compressed.entry(compressed_bytes)],
        ),
        (
            "uncompressed",
            vec![valid.clone(), plain.entry(plain_bytes)],
        ),
    ] {
        let r = attacker.push(&env, push).await;
        let json = assert_refused(&r, 413, "payload_too_large");
        assert!(
            json["message"]
                .as_str()
                .unwrap()
                .contains(&MAX_CHANGE_BYTES.to_string()),
            "{what}: {json}"
        );
    }

    let too_many = creations(attacker.actor, NGOC_LINH, "many", 1_001);
    let r = attacker.push(&env, too_many.clone()).await;
    let json = assert_refused(&r, 413, "payload_too_large");
    assert!(json["message"].as_str().unwrap().contains("1000"), "{json}");
    assert_eq!(stats(&env).await, before, "nothing was stored");

    // The same changes, 1,000 at most per request, are taken (a phone sends 500).
    let mut pending = too_many;
    let mut exchanges = 0;
    while !pending.is_empty() {
        exchanges += 1;
        assert!(exchanges <= 200, "the pushes never finished");
        let batch: Vec<ChangeEntry> = pending.iter().take(1_000).cloned().collect();
        let answer = attacker.push_ok(&env, batch).await;
        assert!(answer.rejected.is_empty(), "{:?}", answer.rejected);
        pending.retain(|e| !answer.acked.contains(&hash_of(&e.bytes)));
    }
    bystanders.edit_and_sync(&env, "after").await;
    assert_up(&mut env).await;
    bystanders.verify(&env).await;
    assert_eq!(
        stats(&env).await["records"].as_u64().unwrap(),
        before["records"].as_u64().unwrap() + 1_001 + 1
    );
}

/// A body over 1 MiB with a valid token: the server reads and discards it and answers a 413
/// the client can read, instead of cutting the connection while the client is still sending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_one_mib_is_drained_and_answered_413() {
    let mut env = start_env(&[]).await;
    let mut bystanders = Bystanders::new(&env).await;
    let attacker = Attacker::enrol(&env, "attacker", &[NGOC_LINH]).await;
    let before = stats(&env).await;
    for size in [MAX_REQUEST_BYTES as usize + 1, 3 << 20] {
        let body = noisy_text(size as u64, size).into_bytes();
        let r = attacker.post(&env, body).await;
        let json = assert_refused(&r, 413, "payload_too_large");
        assert!(
            json["message"].as_str().unwrap().contains("1 MiB"),
            "{json}"
        );
        bystanders
            .edit_and_sync(&env, &format!("{size} bytes"))
            .await;
    }
    // The device's sync slot was given back: its next request is served.
    let answer = attacker.push_ok(&env, Vec::new()).await;
    assert!(answer.acked.is_empty());
    assert_up(&mut env).await;
    assert_eq!(
        stats(&env).await["changes"].as_u64().unwrap(),
        before["changes"].as_u64().unwrap() + 2
    );
    bystanders.verify(&env).await;
}

/// A gzip body with bytes after its stream (garbage, or a second gzip member pushing more) is a
/// bad request, and the change in the first member is not stored either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_after_the_gzip_stream_are_a_bad_request() {
    let mut env = start_env(&[]).await;
    let mut bystanders = Bystanders::new(&env).await;
    let attacker = Attacker::enrol(&env, "attacker", &[NGOC_LINH]).await;
    let before = stats(&env).await;
    let first = creations(attacker.actor, NGOC_LINH, "first", 1);
    let second = creations(attacker.actor, NGOC_LINH, "second", 1);
    let body = sync_body(&[], first.clone());
    let small_tail = [body.clone(), vec![0]].concat();
    let garbage_tail = [body.clone(), noisy_text(1, 70_000).into_bytes()].concat();
    let second_member = [body.clone(), sync_body(&[], second)].concat();
    for (what, body) in [
        ("one byte", small_tail),
        ("70 kB of garbage", garbage_tail),
        ("a second gzip member", second_member),
    ] {
        let r = attacker.post(&env, body).await;
        let json = assert_refused(&r, 400, "bad_request");
        assert!(
            json["message"].as_str().unwrap().contains("after"),
            "{what}: {json}"
        );
    }
    assert_eq!(stats(&env).await, before, "nothing was stored");
    // The same request without the tail is served.
    let answer = attacker.push_ok(&env, first).await;
    assert_eq!(answer.acked.len(), 1);
    bystanders.edit_and_sync(&env, "after").await;
    assert_up(&mut env).await;
    bystanders.verify(&env).await;
}

/// Creations with a key outside the record layout, a nested object or a NUL byte, and an edit
/// writing a NUL into an accepted record, are refused `Invalid`; the valid change beside them is
/// stored, and no honest phone ever receives the refused ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creations_outside_the_record_layout_are_refused_invalid() {
    let mut env = start_env(&[]).await;
    let mut bystanders = Bystanders::new(&env).await;
    let attacker = Attacker::enrol(&env, "attacker", &[NGOC_LINH]).await;
    let before = stats(&env).await;

    let mut valid = RawRecord::household(attacker.actor, NGOC_LINH, "Y Hợp Lệ");
    let valid_creation = valid.commit();
    let mut bad = Vec::new();
    let mut unknown = RawRecord::household(attacker.actor, NGOC_LINH, "Y Lạ");
    unknown.put("x/evil", "payload");
    bad.push(("unknown key", unknown.id, unknown.commit()));
    let mut unknown_field = RawRecord::household(attacker.actor, NGOC_LINH, "Y Lạ Hai");
    unknown_field.put("f/not_a_field", "payload");
    bad.push(("unknown field", unknown_field.id, unknown_field.commit()));
    let mut nested = RawRecord::household(attacker.actor, NGOC_LINH, "Y Lồng");
    nested.put_nested("f/village");
    bad.push(("nested object", nested.id, nested.commit()));
    let mut nul = RawRecord::household(attacker.actor, NGOC_LINH, "Y\0Nul");
    bad.push(("NUL byte", nul.id, nul.commit()));

    let mut push = vec![valid.entry(valid_creation.clone())];
    push.extend(bad.iter().map(|(_, id, bytes)| ChangeEntry {
        record_id: *id,
        bytes: bytes.clone(),
        signature: sign_as(attacker.actor, *id, bytes),
    }));
    let answer = attacker.push_ok(&env, push).await;
    assert_eq!(answer.acked, vec![hash_of(&valid_creation)]);
    for (what, id, bytes) in &bad {
        let refusal = answer
            .rejected
            .iter()
            .find(|r| r.hash == hash_of(bytes))
            .unwrap_or_else(|| panic!("{what}: not refused"));
        assert_eq!(
            (refusal.record_id, refusal.code),
            (*id, RejectCode::Invalid),
            "{what}"
        );
    }
    assert_eq!(answer.rejected.len(), bad.len());

    // On the accepted record: an edit with a NUL byte, one with a nested object.
    valid.put("f/village", "Làng\0Độc");
    let nul_edit = valid.commit();
    let answer = attacker
        .push_ok(&env, vec![valid.entry(nul_edit.clone())])
        .await;
    assert_eq!(answer.rejected.len(), 1);
    assert_eq!(answer.rejected[0].code, RejectCode::Invalid);
    assert!(answer.acked.is_empty());

    let after = stats(&env).await;
    assert_eq!(
        after["changes"].as_u64().unwrap(),
        before["changes"].as_u64().unwrap() + 1,
        "only the valid creation"
    );
    assert_eq!(
        after["records"].as_u64().unwrap(),
        before["records"].as_u64().unwrap() + 1
    );
    bystanders.edit_and_sync(&env, "after").await;
    assert_up(&mut env).await;
    bystanders.verify(&env).await;
    let witness = &bystanders.witness.store;
    let view = witness.get(valid.id).unwrap();
    assert_eq!(view.fields["head_name"], "Y Hợp Lệ".into());
    assert!(
        !view.fields.contains_key("village"),
        "the NUL edit never arrived"
    );
    for (what, id, _) in &bad {
        assert!(witness.get(*id).is_err(), "{what}: never served");
    }
}

/// However many changes of the largest valid size a commune holds, every pull page fits the phone's
/// limits: honest phones with the default options and with the largest pull budget pull all
/// of them without error and set nothing aside.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_pages_of_the_largest_changes_always_fit() {
    let mut env = start_env(&[]).await;
    let mut bystanders = Bystanders::new(&env).await;
    let attacker = Attacker::enrol(&env, "attacker", &[NGOC_LINH]).await;
    env.user("greedy", &[NGOC_LINH], false).await;
    let mut greedy = env
        .phone(
            "greedy",
            ClientOptions {
                max_pull_bytes: 64 << 20,
                ..ClientOptions::default()
            },
        )
        .await;

    // 460 groups whose creation is one uncompressed chunk of 240 member ids (the largest
    // change a valid record allows): about 5 MiB, more than the largest page (4 MiB).
    let mut made = Vec::new();
    let mut push = Vec::new();
    let mut stored_bytes = 0;
    for i in 0..460u64 {
        let mut r = RawRecord::group(attacker.actor, NGOC_LINH, &noisy_text(i, 120), 240);
        let bytes = r.commit_uncompressed();
        assert!(bytes.len() <= MAX_CHANGE_BYTES, "{} bytes", bytes.len());
        stored_bytes += bytes.len();
        made.push(r.id);
        push.push(r.entry(bytes));
    }
    assert!(stored_bytes > 5 << 20, "{stored_bytes}");
    let mut pending = push;
    let mut exchanges = 0;
    while !pending.is_empty() {
        exchanges += 1;
        assert!(exchanges < 100, "the pushes never finished");
        // As many as fit one body, like a phone's push budget.
        let batch: Vec<ChangeEntry> = pending.iter().take(60).cloned().collect();
        let answer = attacker.push_ok(&env, batch).await;
        assert!(answer.rejected.is_empty(), "{:?}", answer.rejected);
        pending.retain(|e| !answer.acked.contains(&hash_of(&e.bytes)));
    }

    // A raw pull at the largest budget: the page stops at 4 MiB plus one change.
    let token = greedy.token.clone();
    let body = compress(
        &fieldsync_core::protocol::SyncRequest {
            cursor: Vec::new(),
            max_pull_bytes: u64::MAX,
            push: Vec::new(),
        }
        .encode(),
    );
    let r = post_sync(&env.http, env.addr(), &token, body).await;
    assert_eq!(r.status, 200);
    let message = decompress(&r.body, MAX_BODY_BYTES).expect("within the phone's 16 MiB cap");
    let page = SyncResponse::decode(&message).unwrap();
    let page_bytes: usize = page.pull.iter().map(|c| c.bytes.len()).sum();
    assert!(page.more, "more than one page waits");
    assert!(
        page_bytes <= (4 << 20) + MAX_CHANGE_BYTES,
        "page of {page_bytes} bytes"
    );

    // The honest phones pull everything.
    bystanders.edit_and_sync(&env, "after").await;
    bystanders.verify(&env).await;
    let report = greedy.sync(&env.http, env.addr(), 100).await.unwrap();
    assert!(report.round_trips >= 2, "{report:?}");
    for store in [&bystanders.witness.store, &greedy.store] {
        for id in &made {
            let view = store.get(*id).unwrap();
            assert_eq!(view.sets["members"].len(), 240);
        }
        assert!(store.set_aside().unwrap().is_empty());
    }
    assert_up(&mut env).await;
}
