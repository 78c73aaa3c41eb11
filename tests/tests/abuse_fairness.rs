//! Abuse: one device pushing as much as it may. Requests of 1,000 changes back to back are all
//! served, split over several exchanges by the server's ingest budget, while an honest phone of
//! another account syncs normally; past its account's push budget (2,000 changes at once, then
//! 600 a minute) a device is told to wait with 429 and `Retry-After`, from any device of the
//! account; a second concurrent sync of the same device (or a third of the same account) gets
//! 429 with `Retry-After`; and token checks and enrolment keep answering while the big pushes
//! are ingested.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod abuse_support;
mod common;

use abuse_support::*;
use common::*;
use fieldsync_core::protocol::ChangeEntry;
use fieldsync_tests::deployment::skip_unless_sqlite;
use fieldsync_tests::phone::{call_json, enrol_as, enrol_with_key};
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Why some tests here run on SQLite only.
const PER_INSTANCE: &str = "the throttles and budgets it measures live in each server \
     instance's memory, so two instances behind a balancer allow up to twice as much \
     (docs/operating.md, limits with several instances)";

/// What the pushing device saw.
#[derive(Debug, Default)]
struct Pushes {
    requests: usize,
    /// Answers that acked fewer changes than the request pushed.
    split: usize,
    acked: usize,
}

/// Pushes `changes` as a phone would, the oldest unacked first, 1,000 per request, until every
/// one is acked; any refusal or non-200 fails.
async fn push_all(env: &Env, attacker: &Attacker, mut pending: Vec<ChangeEntry>) -> Pushes {
    let mut seen = Pushes::default();
    let mut cursor = Vec::new();
    while !pending.is_empty() {
        seen.requests += 1;
        assert!(seen.requests <= 500, "the pushes never finished: {seen:?}");
        let batch: Vec<ChangeEntry> = pending.iter().take(1_000).cloned().collect();
        let r = attacker.post(env, sync_body(&cursor, batch.clone())).await;
        if r.status == 429 {
            // Busy: the device waits as long as it is told.
            let wait = retry_after(&r);
            tokio::time::sleep(Duration::from_secs(wait)).await;
            continue;
        }
        let answer = decoded(&r);
        assert!(answer.rejected.is_empty(), "{:?}", answer.rejected);
        assert!(answer.need.is_empty());
        if answer.acked.len() < batch.len() {
            seen.split += 1;
        }
        assert!(!answer.acked.is_empty(), "every answer makes progress");
        seen.acked += answer.acked.len();
        let acked: std::collections::HashSet<[u8; 32]> = answer.acked.into_iter().collect();
        pending.retain(|e| !acked.contains(&hash_of(&e.bytes)));
        cursor = answer.cursor;
    }
    seen
}

/// 2,000 creations (an account's push burst) pushed 1,000 per request: all acked across
/// exchanges, some requests split, and an honest phone completes sync after sync meanwhile,
/// losing nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_to_back_full_pushes_are_served_and_split_while_a_bystander_syncs() {
    let env = start_env(&[]).await;
    let mut bystanders = Bystanders::new(&env).await;
    let attacker = Attacker::enrol(&env, "attacker", &[NGOC_LINH]).await;
    let before = stats(&env).await;
    let changes = creations(attacker.actor, NGOC_LINH, "flood", 2_000);

    let env = Arc::new(env);
    let running = Arc::new(AtomicBool::new(true));
    let pusher = {
        let (env, running) = (env.clone(), running.clone());
        tokio::spawn(async move {
            let seen = push_all(&env, &attacker, changes).await;
            running.store(false, Ordering::SeqCst);
            seen
        })
    };
    // The bystander edits and syncs, again and again, while the pushes go on.
    let mut during = 0;
    let mut busy = 0;
    for round in 0..200 {
        if !running.load(Ordering::SeqCst) {
            break;
        }
        let report = bystanders
            .edit_and_sync(&env, &format!("round {round}"))
            .await;
        busy += report.busy;
        if running.load(Ordering::SeqCst) {
            during += 1;
        }
    }
    let seen = pusher.await.unwrap();
    println!("pushes: {seen:?}; bystander syncs completed during them: {during}");
    let mut env = Arc::into_inner(env).unwrap();
    assert_eq!(seen.acked, 2_000, "{seen:?}");
    assert!(
        seen.split >= 1,
        "the ingest budget split a request: {seen:?}"
    );
    assert!(seen.requests >= 2, "{seen:?}");
    assert!(
        during >= 1,
        "the bystander completed a sync while the pushes ran ({seen:?})"
    );
    // One writer in line ahead of it at most: never told to come back later.
    assert_eq!(busy, 0, "the bystander was never turned away");
    assert_up(&mut env).await;
    bystanders.verify(&env).await;
    let after = stats(&env).await;
    assert_eq!(
        after["changes"].as_u64().unwrap(),
        before["changes"].as_u64().unwrap() + 2_000 + bystanders.made.len() as u64 - 1,
        "every change stored once (the first household was there before)"
    );
}

/// While a device's sync is in flight (its body still arriving), a second sync of the same
/// device gets 429 `Retry-After: 1` without being read; so does a third sync of the same
/// account from another device. Once the first ends, the device is served again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_concurrent_sync_of_a_device_gets_429_with_retry_after() {
    if skip_unless_sqlite(PER_INSTANCE) {
        return;
    }
    let mut env = start_env(&[]).await;
    let mut bystanders = Bystanders::new(&env).await;
    let attacker = Attacker::enrol(&env, "attacker", &[NGOC_LINH]).await;
    // Two more devices of the same account.
    let second = enrol_as(&env.http, env.addr(), "attacker", PASSWORD, None)
        .await
        .unwrap();
    let third = enrol_as(&env.http, env.addr(), "attacker", PASSWORD, None)
        .await
        .unwrap();

    // The first sync: headers sent, half its body, then nothing for now. A second sync of
    // the device meanwhile is refused without being read.
    let body = sync_body(&[], creations(attacker.actor, NGOC_LINH, "slow", 1));
    let (mut slow, refused) = hold_sync(&env, &attacker.http, &attacker.token, &body).await;
    assert_refused(&refused, 429, "too_many_requests");
    assert_eq!(retry_after(&refused), 1);
    // Again, announcing a body over the limit that never comes: refused at once, before the
    // length is looked at or a byte of body read.
    let mut again = attacker.http.open_tls(env.addr()).await.unwrap();
    let head = sync_head(env.addr(), Some(&attacker.token), 2 << 20);
    write_all(&mut again, head.as_bytes()).await;
    match read_reply(&mut again, Duration::from_secs(20)).await {
        Reply::Answer(status, text) => assert_eq!(status, 429, "{text}"),
        other => panic!("no answer: {other:?}"),
    }

    // A second device of the account is admitted (two per account); hold it the same way.
    // A third device of the account, with nothing in flight, is then refused.
    let idle = sync_body(&[], Vec::new());
    let (mut second_slow, _) = hold_sync(&env, &attacker.http, &second, &idle).await;
    let third_refused = post_sync(&attacker.http, env.addr(), &third, idle.clone()).await;
    assert_refused(&third_refused, 429, "too_many_requests");
    assert_eq!(retry_after(&third_refused), 1);

    // Another account is not affected.
    bystanders.edit_and_sync(&env, "during").await;

    // The first sync completes and is answered; the device is then served again.
    write_all(&mut slow, &body[body.len() / 2..]).await;
    match read_reply(&mut slow, Duration::from_secs(20)).await {
        Reply::Answer(status, text) => assert_eq!(status, 200, "{text}"),
        other => panic!("the first sync was not answered: {other:?}"),
    }
    write_all(&mut second_slow, &idle[idle.len() / 2..]).await;
    assert!(matches!(
        read_reply(&mut second_slow, Duration::from_secs(20)).await,
        Reply::Answer(200, _)
    ));
    let answer = attacker.push_ok(&env, Vec::new()).await;
    assert!(answer.rejected.is_empty());
    let r = post_sync(&attacker.http, env.addr(), &third, idle.clone()).await;
    assert_eq!(r.status, 200);
    assert_up(&mut env).await;
    bystanders.verify(&env).await;
}

/// While full pushes are being ingested one after another, an idle sync of another device
/// (a token check and a pull) and enrolments answer, and are never turned away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_checks_and_enrolment_answer_during_big_pushes() {
    let env = start_env(&[]).await;
    let mut bystanders = Bystanders::new(&env).await;
    let attacker = Attacker::enrol(&env, "attacker", &[NGOC_LINH]).await;
    account(&env, "newcomer", "collector", &[NGOC_LINH], false).await;
    let changes = creations(attacker.actor, NGOC_LINH, "load", 2_000);
    let idle_token = bystanders.witness.token.clone();

    let env = Arc::new(env);
    let running = Arc::new(AtomicBool::new(true));
    let pusher = {
        let (env, running) = (env.clone(), running.clone());
        tokio::spawn(async move {
            let seen = push_all(&env, &attacker, changes).await;
            running.store(false, Ordering::SeqCst);
            seen
        })
    };
    let mut idle_during = 0;
    let mut enrolled_during = 0;
    let idle = sync_body(&[], Vec::new());
    for i in 0..5_000 {
        if !running.load(Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        let r = post_sync(&env.http, env.addr(), &idle_token, idle.clone()).await;
        assert_eq!(
            r.status,
            200,
            "idle sync {i}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let still = running.load(Ordering::SeqCst);
        idle_during += usize::from(still);
        // Now and then, well within the per-address login throttle (a burst of 20).
        if i % 25 == 0 {
            let answer = call_json(
                &env.http,
                env.addr(),
                "POST",
                "/v1/enrol",
                None,
                &json!({"username": "newcomer", "password": PASSWORD, "device_name": format!("phone {i}")}),
            )
            .await
            .unwrap_or_else(|e| panic!("enrolment {i} during the pushes: {e}"));
            assert_eq!(answer["username"], "newcomer");
            enrolled_during += usize::from(still && running.load(Ordering::SeqCst));
        }
    }
    let seen = pusher.await.unwrap();
    println!(
        "pushes: {seen:?}; during them {idle_during} idle syncs, {enrolled_during} enrolments"
    );
    let mut env = Arc::into_inner(env).unwrap();
    assert_eq!(seen.acked, 2_000, "{seen:?}");
    assert!(idle_during >= 1, "an idle sync answered during the pushes");
    assert!(
        enrolled_during >= 1,
        "an enrolment answered during the pushes"
    );
    bystanders.edit_and_sync(&env, "after").await;
    assert_up(&mut env).await;
    bystanders.verify(&env).await;
}

/// An account's push budget, as documented: 2,000 changes at once, then 600 a minute.
const PUSH_BURST: f64 = 2_000.0;
const PUSHES_PER_SEC: f64 = 600.0 / 60.0;

/// A device pushing 1,000 new records per request, never waiting, is answered up to its
/// account's budget (the burst and what the rate earned meanwhile) and then gets 429 with
/// `Retry-After`, with nothing of that request stored. The account's other device is refused
/// as well, a request of the account that only pulls is still served, and other accounts are
/// not affected; after the wait the device is served again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_past_its_push_budget_is_told_to_wait() {
    if skip_unless_sqlite(PER_INSTANCE) {
        return;
    }
    let mut env = start_env(&[]).await;
    let mut bystanders = Bystanders::new(&env).await;
    let attacker = Attacker::enrol(&env, "attacker", &[NGOC_LINH]).await;
    let second_key = fieldsync_core::signing::DeviceKey::from_seed(&attacker_key("attacker 2"));
    let second = enrol_with_key(&env.http, env.addr(), "attacker", PASSWORD, &second_key)
        .await
        .unwrap();
    let mut pending = creations(attacker.actor, NGOC_LINH, "budget", 4_000);
    let started = std::time::Instant::now();
    let mut answered = 0usize;
    let refused = loop {
        assert!(!pending.is_empty(), "4,000 changes pushed without a 429");
        let batch: Vec<ChangeEntry> = pending.iter().take(1_000).cloned().collect();
        let r = attacker.post(&env, sync_body(&[], batch)).await;
        if r.status == 429 {
            break r;
        }
        let answer = decoded(&r);
        assert!(answer.rejected.is_empty(), "{:?}", answer.rejected);
        answered += answer.acked.len();
        let acked: std::collections::HashSet<[u8; 32]> = answer.acked.into_iter().collect();
        pending.retain(|e| !acked.contains(&hash_of(&e.bytes)));
    };
    let earned = PUSHES_PER_SEC * started.elapsed().as_secs_f64();
    println!("{answered} changes answered before the 429 ({earned:.0} earned meanwhile)");
    // A request that pushes is admitted while 100 changes are left.
    assert!(
        answered as f64 >= PUSH_BURST - 100.0,
        "the burst: {answered}"
    );
    assert!(
        answered as f64 <= PUSH_BURST + earned + 1.0,
        "{answered} answered, more than the budget"
    );
    assert_refused(&refused, 429, "too_many_requests");
    let wait = retry_after(&refused);
    assert!((1..=60).contains(&wait), "Retry-After: {wait}");
    let stored = stats(&env).await["changes"].as_u64().unwrap();

    // The account's other device is refused as well; pulls and other accounts go on.
    let other_device = post_sync(
        &attacker.http,
        env.addr(),
        &second,
        sync_body(&[], pending.iter().take(10).cloned().collect()),
    )
    .await;
    assert_refused(&other_device, 429, "too_many_requests");
    let pull_only = attacker.push_ok(&env, Vec::new()).await;
    assert!(pull_only.rejected.is_empty());
    bystanders.edit_and_sync(&env, "after the budget").await;
    assert_eq!(
        stats(&env).await["changes"].as_u64().unwrap(),
        stored + 1,
        "nothing of the refused pushes was stored (the bystander's edit was)"
    );

    // After the wait, the device is served again.
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let batch: Vec<ChangeEntry> = pending.iter().take(1_000).cloned().collect();
    let answer = attacker.push_ok(&env, batch).await;
    assert!(!answer.acked.is_empty(), "served again after Retry-After");
    assert_up(&mut env).await;
    bystanders.verify(&env).await;
}
