//! Abuse: making the server repeat itself. A record moved back and forth between two communes
//! of the mover's scope costs a bounded number of log entries per move (a record's history is
//! logged into a stream at most once), not its whole history again at every move, and a phone
//! of only one of the communes receives each change at most once. And what a collector sends
//! may not multiply into storage: changes of highly compressible text (small on the wire,
//! within the 64 KiB inflated cap) must not cost the server or the commune's phones a thousand
//! times their size. A small request asking for everything again and again is served up to its
//! account's pull budget (16 MiB at once, then 8 MiB a minute) and then told to wait; a cursor
//! claiming another database identity starts a device over once (again only after a wait, as
//! when its answer was lost, and never once the device has synced with this database).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod abuse_support;
mod common;

use abuse_support::*;
use common::*;
use fieldsync_core::model::{RecordType, Value};
use fieldsync_core::protocol::{compress, RejectCode, Rejection, SyncRequest};
use fieldsync_tests::deployment::skip_unless_sqlite;
use fieldsync_tests::phone::enrol_as;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Why some tests here run on SQLite only.
const PER_INSTANCE: &str = "the throttles and budgets it measures live in each server \
     instance's memory, so two instances behind a balancer allow up to twice as much \
     (docs/operating.md, limits with several instances)";

const MOVES: u64 = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_a_record_back_and_forth_does_not_repeat_its_history() {
    let mut env = start_env(&[]).await;
    let mut bystanders = Bystanders::new(&env).await;
    // The mover works in both communes; the observer only in Mô Rai.
    env.user("mover", &[NGOC_LINH, MO_RAI], false).await;
    env.user("observer", &[MO_RAI], false).await;
    let mut mover = env.phone("mover", Default::default()).await;
    let mut observer = env.phone("observer", Default::default()).await;

    // A household with a history of 30 changes, in Ngọc Linh.
    let id = mover
        .store
        .create(
            RecordType::Household,
            &minimal_household(NGOC_LINH, "Y Di Chuyển"),
        )
        .unwrap();
    for n in 0..29 {
        mover
            .store
            .set_field(id, "village", &Value::from(format!("Thôn {n}")))
            .unwrap();
    }
    mover.sync(&env.http, env.addr(), 10).await.unwrap();
    let history = mover.store.doc(id).unwrap().changes().len() as u64;

    assert_eq!(history, 30);
    let before = stats(&env).await["log_entries"].as_u64().unwrap();

    // 50 moves, each synced; the observer syncs after each one, and every change it is sent
    // is counted.
    let mut received = Vec::new();
    let mut pulled_total = 0;
    for m in 1..=MOVES {
        let commune = if m % 2 == 1 { MO_RAI } else { NGOC_LINH };
        mover
            .store
            .set_field(id, "commune", &Value::from(commune))
            .unwrap();
        let report = mover.sync(&env.http, env.addr(), 10).await.unwrap();
        assert_eq!((report.acked, report.rejected), (1, 0), "move {m}");
        let report = observer.sync(&env.http, env.addr(), 10).await.unwrap();
        pulled_total += report.pulled;
        received.push(report.pulled);
    }
    let after = stats(&env).await["log_entries"].as_u64().unwrap();
    let added = after - before;
    println!("{added} log entries for {MOVES} moves of a record of {history} changes");
    // Entering Mô Rai the first time logs the history and the move (31); every later move logs
    // the record's changes since it last left its destination: the move away and the move back.
    assert!(
        added <= history + 2 * MOVES,
        "{added} log entries for {MOVES} moves of a record of {history} changes"
    );
    assert!(added < MOVES * history / 4, "not the history at every move");

    // The observer got each change exactly once: what it holds is what it was sent.
    let changes = observer.store.doc(id).unwrap().changes();
    let held: BTreeSet<[u8; 32]> = changes.iter().map(|c| c.hash().0).collect();
    assert_eq!(held.len(), changes.len());
    assert_eq!(
        pulled_total,
        held.len(),
        "each change received at most once (per sync: {received:?})"
    );
    // It holds the history up to the last move into Mô Rai (move 49), and not the move out.
    assert_eq!(held.len() as u64, history + MOVES - 1);
    assert_eq!(
        observer.store.get(id).unwrap().fields["commune"],
        Value::from(MO_RAI)
    );
    // The mover's view and the server's agree; the bystanders were not disturbed.
    assert_eq!(
        mover.store.get(id).unwrap().fields["commune"],
        Value::from(NGOC_LINH)
    );
    bystanders.edit_and_sync(&env, "after").await;
    assert_up(&mut env).await;
    bystanders.verify(&env).await;
    assert_eq!(
        bystanders.witness.store.get(id).unwrap(),
        mover.store.get(id).unwrap(),
        "a phone of Ngọc Linh has the record as it is"
    );
}

/// Total size of the server's database (files, or the PostgreSQL database).
fn database_bytes(env: &Env) -> u64 {
    env.database_bytes()
}

/// Storage any accepted record may cost beyond its share of what was sent: indexes, the
/// snapshot, the log and the supervisors' view of an ordinary household come to about 2 KiB.
const PER_RECORD: u64 = 8 * 1024;
/// Storage per byte received: an ordinary batch costs the server about 45 bytes per byte of
/// its gzip body (records of one commune compress well together), a phone about 16.
const PER_BYTE: u64 = 64;

/// Pushes `n` household creations whose head name is `text(i)` until each is acked or
/// refused; the gzip bytes sent and the refusals.
async fn push_households(
    env: &Env,
    attacker: &Attacker,
    n: usize,
    text: impl Fn(usize) -> String,
) -> (u64, Vec<Rejection>) {
    let mut pending: Vec<_> = (0..n)
        .map(|i| {
            let mut r = RawRecord::household(attacker.actor, NGOC_LINH, &text(i));
            let bytes = r.commit();
            r.entry(bytes)
        })
        .collect();
    let (mut sent, mut refused) = (0, Vec::new());
    for _ in 0..100 {
        if pending.is_empty() {
            return (sent, refused);
        }
        let body = sync_body(&[], pending.clone());
        sent += body.len() as u64;
        let answer = decoded(&attacker.post(env, body).await);
        pending.retain(|e| {
            let hash = hash_of(&e.bytes);
            !answer.acked.contains(&hash) && !answer.rejected.iter().any(|r| r.hash == hash)
        });
        refused.extend(answer.rejected);
    }
    panic!("the pushes never finished");
}

/// What a push of `n` households with head names `text(i)` costs the server and an honest
/// phone of the commune: (bytes sent, server growth, phone growth, refusals).
async fn storage_cost(n: usize, text: impl Fn(usize) -> String) -> (u64, u64, u64, Vec<Rejection>) {
    let mut env = start_env(&[]).await;
    let mut bystanders = Bystanders::new(&env).await;
    let attacker = Attacker::enrol(&env, "attacker", &[NGOC_LINH]).await;
    let (server_before, phone_before) = (
        database_bytes(&env),
        bystanders.witness.store.size_bytes().unwrap(),
    );
    let (sent, refused) = push_households(&env, &attacker, n, text).await;
    let server = database_bytes(&env) - server_before;
    bystanders.verify(&env).await;
    let phone = bystanders.witness.store.size_bytes().unwrap() - phone_before;
    assert_up(&mut env).await;
    println!("{n} households: {sent} bytes sent; the server grew {server} bytes, a phone {phone}");
    (sent, server, phone, refused)
}

/// Ordinary households stay well within the bounds the next test holds an attacker to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordinary_records_cost_storage_in_proportion_to_what_was_sent() {
    let n = 100;
    let (sent, server, phone, refused) = storage_cost(n, |i| format!("Y Blơ Niê {i}")).await;
    assert!(refused.is_empty(), "{refused:?}");
    let allowed = PER_BYTE * sent + PER_RECORD * n as u64;
    assert!(server <= allowed, "server: {server} > {allowed}");
    assert!(phone <= allowed, "phone: {phone} > {allowed}");
}

/// A collector's changes of highly compressible text (a 63 KiB head name of one letter, about
/// 300 bytes on the wire, within the 64 KiB inflated cap) may not multiply into storage on the
/// server or on the commune's phones: a few kilobytes sent must not cost megabytes. A head
/// name holds at most 120 characters, so each such change is refused as invalid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressible_changes_do_not_multiply_into_storage() {
    let n = 100;
    let text = "a".repeat(fieldsync_core::record::MAX_CHANGE_BYTES - 2_000);
    let (sent, server, phone, refused) = storage_cost(n, |i| format!("{i} {text}")).await;
    assert_eq!(refused.len(), n, "every oversized name is refused");
    assert!(
        refused.iter().all(|r| r.code == RejectCode::Invalid),
        "{refused:?}"
    );
    let allowed = PER_BYTE * sent + PER_RECORD * n as u64;
    assert!(
        server <= allowed && phone <= allowed,
        "{sent} bytes sent grew the server's database by {server} bytes ({}x) and a \
         bystander's phone by {phone} bytes ({}x); at most {allowed} each",
        server / sent.max(1),
        phone / sent.max(1)
    );
}

/// An account's pull budget, as documented: 16 MiB of change bytes at once, then 8 MiB a minute.
const MIB: f64 = 1024.0 * 1024.0;
const PULL_BURST: f64 = 16.0 * MIB;
const PULL_PER_SEC: f64 = 8.0 * MIB / 60.0;
/// The largest page the server serves, and the largest change (a page ends after the change
/// that crosses its budget).
const BIG_PAGE: u64 = 4 * 1024 * 1024;
const LARGEST_CHANGE: f64 = 64.0 * 1024.0;

/// Fills Ngọc Linh with 200 groups of 240 members (some 12 KiB of change each, about 2.4 MiB in
/// all) from another account's device; returns their change bytes.
async fn seed_groups(env: &Env) -> usize {
    let seeder = Attacker::enrol(env, "seeder", &[NGOC_LINH]).await;
    let mut total = 0;
    let mut pending: Vec<_> = (0..200)
        .map(|i| {
            let mut group = RawRecord::group(seeder.actor, NGOC_LINH, &format!("Tổ {i}"), 240);
            let bytes = group.commit();
            total += bytes.len();
            group.entry(bytes)
        })
        .collect();
    for _ in 0..100 {
        if pending.is_empty() {
            return total;
        }
        let batch: Vec<_> = pending.iter().take(40).cloned().collect();
        let answer = seeder.push_ok(env, batch).await;
        assert!(answer.rejected.is_empty(), "{:?}", answer.rejected);
        pending.retain(|e| !answer.acked.contains(&hash_of(&e.bytes)));
    }
    panic!("seeding never finished");
}

/// A request of a few dozen bytes asking for everything (empty cursor, a 4 MiB page).
fn everything() -> Vec<u8> {
    compress(
        &SyncRequest {
            cursor: Vec::new(),
            max_pull_bytes: BIG_PAGE,
            push: Vec::new(),
        }
        .encode(),
    )
}

/// The review's amplification: a small request for the whole commune (here 2.4 MiB), again
/// and again. The account is served its burst (a request needs 1 MiB of it left), and then
/// gets 429 with `Retry-After` (from its other device too) without the server reading
/// anything; other accounts sync normally, and after the wait the account is served again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asking_for_everything_again_and_again_is_served_up_to_the_pull_budget() {
    if skip_unless_sqlite(PER_INSTANCE) {
        return;
    }
    let mut env = start_env(&[]).await;
    let mut bystanders = Bystanders::new(&env).await;
    let seeded = seed_groups(&env).await;
    let attacker = Attacker::enrol(&env, "attacker", &[NGOC_LINH]).await;
    let second = enrol_as(&env.http, env.addr(), "attacker", PASSWORD, None)
        .await
        .unwrap();
    assert!(everything().len() < 64, "a small request");

    let started = Instant::now();
    let (mut served, mut requests) = (0usize, 0);
    let refused = loop {
        requests += 1;
        assert!(requests <= 100, "never refused: {served} bytes served");
        let r = attacker.post(&env, everything()).await;
        if r.status == 429 {
            break r;
        }
        let answer = decoded(&r);
        served += answer.pull.iter().map(|c| c.bytes.len()).sum::<usize>();
    };
    let earned = PULL_PER_SEC * started.elapsed().as_secs_f64();
    println!(
        "{requests} requests for the {seeded} bytes seeded: {served} bytes served before the 429"
    );
    // A request is admitted while 1 MiB is left.
    assert!(served as f64 >= PULL_BURST - MIB, "the burst: {served}");
    assert!(
        served as f64 <= PULL_BURST + earned + LARGEST_CHANGE,
        "{served} bytes served, more than the budget"
    );
    assert_refused(&refused, 429, "too_many_requests");
    let wait = retry_after(&refused);
    assert!((1..=120).contains(&wait), "Retry-After: {wait}");

    // Per account: its other device is refused too. Other accounts are served.
    let other_device = post_sync(&attacker.http, env.addr(), &second, everything()).await;
    assert_refused(&other_device, 429, "too_many_requests");
    bystanders.edit_and_sync(&env, "during").await;
    bystanders.verify(&env).await;

    tokio::time::sleep(Duration::from_secs(wait)).await;
    let again = decoded(&attacker.post(&env, everything()).await);
    assert!(!again.pull.is_empty(), "served again after the wait");
    assert_up(&mut env).await;
}

/// A cursor claiming another database identity (as a phone's last cursor before a restore)
/// starts the device over from the beginning once. The same again at once (as when that first
/// answer was lost) is told to wait, and served after the wait; once the device has sent a
/// cursor of this database, a foreign one is refused with 400. Other devices are not affected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_of_another_database_starts_a_device_over_once() {
    if skip_unless_sqlite(PER_INSTANCE) {
        return;
    }
    let mut env = start_env(&[]).await;
    let mut bystanders = Bystanders::new(&env).await;
    let attacker = Attacker::enrol(&env, "attacker", &[NGOC_LINH]).await;
    let mut foreign = vec![0xee; 16];
    foreign.push(0);

    let first = decoded(&attacker.post(&env, sync_body(&foreign, Vec::new())).await);
    assert!(!first.pull.is_empty(), "from the beginning");
    assert_eq!(
        first.cursor[..16],
        first.server_id,
        "a cursor of this database"
    );

    let again = attacker.post(&env, sync_body(&foreign, Vec::new())).await;
    assert_refused(&again, 429, "too_many_requests");
    let wait = retry_after(&again);
    assert!((1..=10).contains(&wait), "Retry-After: {wait}");
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let retried = decoded(&attacker.post(&env, sync_body(&foreign, Vec::new())).await);
    assert_eq!(retried.pull, first.pull, "the same first page again");

    // The device syncs on with this database's cursor; a foreign one is refused from then on.
    decoded(
        &attacker
            .post(&env, sync_body(&retried.cursor, Vec::new()))
            .await,
    );
    let refused = attacker.post(&env, sync_body(&foreign, Vec::new())).await;
    let body = assert_refused(&refused, 400, "bad_request");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("another database"),
        "{body}"
    );
    bystanders.edit_and_sync(&env, "after").await;
    assert_up(&mut env).await;
    bystanders.verify(&env).await;
}
