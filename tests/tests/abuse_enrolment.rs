//! Abuse: logins. An overlong username is refused at once, before the throttle; a flood of
//! wrong passwords from one address is cut to its burst (then 429 with `Retry-After`) while the
//! real user enrols from elsewhere; failing the victim's password from one address does not
//! lock the victim out from another; a trickle of wrong passwords from many addresses cannot
//! keep the owner out (from a new address she gets a turn nobody else can take; from her
//! usual address or her own phone she gets in at once) while the guesses it gets stay within
//! the account's budget; concurrent attempts for one account from one address are checked one
//! at a time; and failed attempts write to the database only a bounded number of audit
//! entries.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod abuse_support;
mod common;

use abuse_support::*;
use common::*;
use fieldsync_tests::deployment::skip_unless_sqlite;
use fieldsync_tests::https::{HttpResponse, HttpsClient};
use serde_json::{json, Value as Json};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// Why some tests here run on SQLite only.
const PER_INSTANCE: &str = "the throttles and budgets it measures live in each server \
     instance's memory, so two instances behind a balancer allow up to twice as much \
     (docs/operating.md, limits with several instances)";

/// Per source address: attempts in a burst, then one every 3 s (operating.md).
const BURST: usize = 20;

fn from(source: IpAddr, env: &Env) -> HttpsClient {
    env.http
        .clone()
        .with_source(source)
        .with_timeout(Duration::from_secs(60))
}

/// One `POST /v1/enrol`; panics on a network failure (a hang is a timeout).
async fn attempt(http: &HttpsClient, env: &Env, username: &str, password: &str) -> HttpResponse {
    let body = json!({ "username": username, "password": password, "device_name": "abuse" });
    http.request(
        env.addr(),
        "POST",
        "/v1/enrol",
        &[("content-type", "application/json".to_owned())],
        body.to_string().into_bytes(),
    )
    .await
    .unwrap_or_else(|e| panic!("enrolment attempt failed: {e}"))
}

/// Asserts a throttled answer: 429 `too_many_requests` with a `Retry-After` of 1 s to 15 min
/// (the furthest a turn is reserved ahead).
fn assert_throttled(r: &HttpResponse) {
    assert_refused(r, 429, "too_many_requests");
    let wait = retry_after(r);
    assert!((1..=900).contains(&wait), "Retry-After {wait}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overlong_username_or_password_is_refused_at_once_and_not_counted() {
    let mut env = start_env(&[]).await;
    account(&env, "lan", "collector", &[NGOC_LINH], false).await;
    let attacker = from(ATTACKER, &env);
    let long_password = "p".repeat(1_025);
    // More than the address's burst: none of them reaches the throttle, so none is a 429.
    for i in 0..(BURST + 10) {
        let username = match i % 3 {
            0 => "n".repeat(65),
            1 => format!("{i}-{}", "nguyenvana".repeat(1_000)),
            _ => "lan".to_owned(),
        };
        let password = if i % 3 == 2 {
            long_password.as_str()
        } else {
            PASSWORD
        };
        let r = attempt(&attacker, &env, &username, password).await;
        assert_refused(&r, 401, "bad_credentials");
    }
    // The address's burst and lan's record are untouched: lan enrols from it at once.
    let r = attempt(&attacker, &env, "lan", PASSWORD).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_up(&mut env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_flood_is_cut_to_its_burst_while_the_real_user_enrols() {
    if skip_unless_sqlite(PER_INSTANCE) {
        return;
    }
    let mut env = start_env(&[]).await;
    account(&env, "lan", "collector", &[NGOC_LINH], false).await;
    let attacker = from(ATTACKER, &env);
    let started = Instant::now();
    let (mut checked, mut throttled) = (0, 0);
    for i in 0..(2 * BURST) {
        // Names of 60 bytes, each new, as a dictionary attack would try them.
        let username = format!("{i:04}-{}", "x".repeat(55));
        let r = attempt(&attacker, &env, &username, "wrong-password").await;
        match r.status {
            401 => {
                assert_refused(&r, 401, "bad_credentials");
                checked += 1;
            }
            _ => {
                assert_throttled(&r);
                throttled += 1;
            }
        }
    }
    println!(
        "flood: {checked} checked, {throttled} throttled in {:?}",
        started.elapsed()
    );
    // The burst, plus one attempt earned back every 3 s.
    let earned = (started.elapsed().as_secs() / 3) as usize + 1;
    assert!(checked >= BURST, "the burst is served: {checked}");
    assert!(
        checked <= BURST + earned,
        "{checked} checked in {:?}",
        started.elapsed()
    );
    assert!(throttled >= BURST - earned, "{throttled} throttled");

    // The real user, from their own address, is not affected, nor are phones.
    let user = from(USER_SOURCE, &env);
    let r = attempt(&user, &env, "lan", PASSWORD).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let mut bystanders = Bystanders::new(&env).await;
    // The flooding address is still throttled, whatever the account.
    let r = attempt(&attacker, &env, "lan", PASSWORD).await;
    assert_throttled(&r);
    bystanders.edit_and_sync(&env, "after the flood").await;
    assert_up(&mut env).await;
    bystanders.verify(&env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_the_victims_password_elsewhere_does_not_lock_the_victim_out() {
    if skip_unless_sqlite(PER_INSTANCE) {
        return;
    }
    let mut env = start_env(&[]).await;
    account(&env, "victim", "collector", &[NGOC_LINH], false).await;
    let attacker = from(ATTACKER, &env);
    let victim = from(USER_SOURCE, &env);
    let mut answers = Vec::new();
    for round in 0..10 {
        let r = attempt(&attacker, &env, "victim", "guess").await;
        if r.status == 401 {
            assert_refused(&r, 401, "bad_credentials");
        } else {
            assert_throttled(&r);
        }
        answers.push(r.status);
        // The victim enrols a phone from its own address meanwhile.
        if round % 3 == 2 {
            let r = attempt(&victim, &env, "victim", PASSWORD).await;
            assert_eq!(
                r.status,
                200,
                "round {round}: {}",
                String::from_utf8_lossy(&r.body)
            );
        }
    }
    println!("the attacker's attempts: {answers:?}");
    let failures = answers.iter().filter(|s| **s == 401).count();
    assert!(
        (3..=5).contains(&failures),
        "three free failures: {answers:?}"
    );
    assert!(answers[3..].contains(&429), "then locked: {answers:?}");
    // The victim's phone syncs.
    let mut phone = env.phone("victim", Default::default()).await;
    phone
        .store
        .create(
            fieldsync_core::model::RecordType::Household,
            &minimal_household(NGOC_LINH, "Y Nạn Nhân"),
        )
        .unwrap();
    let report = phone.sync(&env.http, env.addr(), 10).await.unwrap();
    assert_eq!(report.acked, 1);
    assert_up(&mut env).await;
}

/// Sends `n` enrolments for one account at the same moment, each on its own TLS connection
/// opened beforehand from `source`; their statuses and bodies.
async fn simultaneous(
    env: &Env,
    source: IpAddr,
    n: usize,
    username: &str,
    password: &str,
) -> Vec<(u16, String)> {
    let http = from(source, env);
    let body = json!({ "username": username, "password": password }).to_string();
    let request = format!(
        "POST /v1/enrol HTTP/1.1\r\nhost: localhost:{}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        env.addr().port(),
        body.len()
    );
    let mut streams = Vec::new();
    for _ in 0..n {
        streams.push(http.open_tls(env.addr()).await.unwrap());
    }
    let go = std::sync::Arc::new(tokio::sync::Barrier::new(n));
    let mut tasks = JoinSet::new();
    for mut stream in streams {
        let (go, request) = (go.clone(), request.clone());
        tasks.spawn(async move {
            go.wait().await;
            write_all(&mut stream, request.as_bytes()).await;
            read_reply(&mut stream, Duration::from_secs(60)).await
        });
    }
    let mut out = Vec::new();
    while let Some(reply) = tasks.join_next().await {
        match reply.unwrap() {
            Reply::Answer(status, text) => out.push((status, text)),
            other => panic!("no answer: {other:?}"),
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_attempts_for_one_account_and_address_are_checked_one_at_a_time() {
    let mut env = start_env(&[]).await;
    account(&env, "lan", "collector", &[NGOC_LINH], false).await;
    // At most as many as the password queue holds (twice the cores: 4 here), so that any 429
    // comes from the one-at-a-time rule and not from a full queue.
    let n = 4;
    let is_one_at_a_time = |text: &str| {
        text.contains("too_many_requests")
            && text.contains("login attempts")
            && text.to_ascii_lowercase().contains("retry-after: 1")
    };

    // Right password: were they all checked, all four would be enrolled.
    let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 4));
    let answers = simultaneous(&env, source, n, "lan", PASSWORD).await;
    println!(
        "right password: {:?}",
        answers.iter().map(|a| a.0).collect::<Vec<_>>()
    );
    let ok = answers.iter().filter(|(s, _)| *s == 200).count();
    assert!(ok >= 1, "{answers:?}");
    assert!(ok < n, "not all checked at once: {answers:?}");
    for (status, text) in &answers {
        assert!(*status == 200 || is_one_at_a_time(text), "{status}: {text}");
    }

    // Wrong password: were they all checked at once, all would fail past the three free
    // failures; one at a time, they cannot slip past the lock.
    let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 5));
    let answers = simultaneous(&env, source, n, "lan", "wrong").await;
    println!(
        "wrong password: {:?}",
        answers.iter().map(|a| a.0).collect::<Vec<_>>()
    );
    let failed = answers.iter().filter(|(s, _)| *s == 401).count();
    assert!((1..n).contains(&failed), "{answers:?}");
    for (status, text) in &answers {
        assert!(*status == 401 || is_one_at_a_time(text), "{status}: {text}");
    }
    // lan, from a third address, enrols.
    let r = attempt(&from(USER_SOURCE, &env), &env, "lan", PASSWORD).await;
    assert_eq!(r.status, 200);
    assert_up(&mut env).await;
}

/// Rows of every table of the database, by table, read without writing.
fn database_rows(env: &Env) -> Vec<(String, i64)> {
    let conn = rusqlite::Connection::open_with_flags(
        env.server.database_path(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    tables
        .into_iter()
        .map(|t| {
            let n = conn
                .query_row(&format!("SELECT COUNT(*) FROM \"{t}\""), [], |r| r.get(0))
                .unwrap();
            (t, n)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_attempts_add_only_a_bounded_number_of_audit_entries() {
    if skip_unless_sqlite(PER_INSTANCE) {
        return;
    }
    let env = start_env(&[]).await;
    account(&env, "lan", "collector", &[NGOC_LINH], false).await;
    let rows_before = database_rows(&env);
    let started = Instant::now();
    let env = std::sync::Arc::new(env);

    // 500 failures: 25 addresses, each its burst of 20, four addresses at a time; unknown
    // names of 60 bytes (checked) and of 1 kB (refused before any check), and lan's password.
    let mut loops = JoinSet::new();
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(4));
    for a in 0..25u8 {
        let (env, gate) = (env.clone(), gate.clone());
        loops.spawn(async move {
            let _turn = gate.acquire_owned().await.unwrap();
            let http = from(IpAddr::V4(Ipv4Addr::new(127, 0, 1, a + 1)), &env);
            let mut statuses = Vec::new();
            for i in 0..BURST {
                let username = match i {
                    0 => "lan".to_owned(),
                    i if i % 2 == 1 => format!("{a:02}-{i:02}-{}", "y".repeat(1_000)),
                    _ => format!("{a:02}-{i:02}-{}", "nguyen".repeat(9)),
                };
                let r = attempt(&http, &env, &username, "wrong-password").await;
                statuses.push((r.status, String::from_utf8_lossy(&r.body).into_owned()));
            }
            statuses
        });
    }
    let mut answers: Vec<(u16, String)> = Vec::new();
    while let Some(statuses) = loops.join_next().await {
        answers.extend(statuses.unwrap());
    }
    assert_eq!(answers.len(), 500);
    let failed = answers.iter().filter(|(s, _)| *s == 401).count();
    for (status, text) in &answers {
        // lan's account hands out its checks for new addresses ten at once, then in turns.
        assert!(
            *status == 401 || (*status == 429 && text.contains("too_many_requests")),
            "{status}: {text}"
        );
    }
    assert!(failed >= 480, "{failed} of 500 failed (the rest throttled)");
    // The audit entries of 500 failures (each a name of its own: nothing to coalesce) are
    // written in the background, at most 60 at once and then one every 10 s.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let elapsed = started.elapsed().as_secs() as i64;
    let rows_after = database_rows(&env);
    let audit = |rows: &[(String, i64)]| {
        rows.iter()
            .find(|(t, _)| t == "audit")
            .map_or(0, |(_, n)| *n)
    };
    let written = audit(&rows_after) - audit(&rows_before);
    println!("{failed} of 500 attempts failed, the rest throttled; {written} audit entries in {elapsed} s");
    assert!(written >= 1, "failed logins are audited");
    assert!(written <= 60 + elapsed / 10 + 1, "{written} audit entries");
    let others = |rows: Vec<(String, i64)>| {
        rows.into_iter()
            .filter(|(t, _)| t != "audit")
            .collect::<Vec<_>>()
    };
    assert_eq!(
        others(rows_after),
        others(rows_before),
        "nothing but the audit log"
    );
    let mut env = std::sync::Arc::into_inner(env).unwrap();
    // The real user is not locked out: another user enrols at once.
    account(&env, "hoa", "collector", &[NGOC_LINH], false).await;
    let r = attempt(&from(USER_SOURCE, &env), &env, "hoa", PASSWORD).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let stats: Json = stats(&env).await;
    assert_eq!(stats["records"], 0);
    assert_up(&mut env).await;
}

/// Attacking addresses of the trickle.
const TRICKLE_ADDRESSES: u8 = 10;

/// One attacking address: the owner's password, wrong, again and again, coming back when
/// `Retry-After` says (it may hold a turn) or after 300 ms; the statuses it got.
async fn trickler(
    env: Arc<Env>,
    host: u8,
    stop: Arc<AtomicBool>,
    tries: Arc<AtomicUsize>,
) -> Vec<u16> {
    let http = from(IpAddr::V4(Ipv4Addr::new(127, 0, 2, host)), &env);
    let mut statuses = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let r = attempt(&http, &env, "owner", "mật-khẩu-đoán-mò").await;
        statuses.push(r.status);
        tries.fetch_add(1, Ordering::SeqCst);
        let wait = match r.status {
            401 => Duration::ZERO,
            _ => {
                assert_throttled(&r);
                Duration::from_secs(retry_after(&r))
            }
        };
        let until = Instant::now() + wait.max(Duration::from_millis(300));
        while Instant::now() < until && !stop.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickle_of_wrong_passwords_from_many_addresses_cannot_keep_the_owner_out() {
    if skip_unless_sqlite(PER_INSTANCE) {
        return;
    }
    let env = start_env(&[]).await;
    account(&env, "owner", "collector", &[NGOC_LINH], false).await;
    // The owner's phone, enrolled from her usual address before the attack.
    let usual = from(USER_SOURCE, &env);
    let store = env.dir.path().join("owner.sqlite");
    let phone = fieldsync_tests::phone::Phone::enrol(
        &usual,
        env.addr(),
        &store,
        "owner",
        PASSWORD,
        Default::default(),
    )
    .await
    .unwrap();
    let env = Arc::new(env);
    let stop = Arc::new(AtomicBool::new(false));
    let tries = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut attack = JoinSet::new();
    for host in 1..=TRICKLE_ADDRESSES {
        attack.spawn(trickler(env.clone(), host, stop.clone(), tries.clone()));
    }
    // Until every attacking address has tried a few times.
    while tries.load(Ordering::SeqCst) < 3 * usize::from(TRICKLE_ADDRESSES) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the attack does not run"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A new phone, from an address new to the account: at most one wait, for a turn that is
    // hers, at most one turn (20 s) per address that was new to the account before her.
    let new_address = from(IpAddr::V4(Ipv4Addr::new(127, 0, 3, 1)), &env);
    let asked = Instant::now();
    let mut waits = Vec::new();
    loop {
        let r = attempt(&new_address, &env, "owner", PASSWORD).await;
        if r.status == 200 {
            break;
        }
        assert_throttled(&r);
        let wait = retry_after(&r);
        waits.push(wait);
        assert!(waits.len() <= 1, "her turn was taken: waits {waits:?}");
        assert!(
            wait <= 20 * (u64::from(TRICKLE_ADDRESSES) + 1),
            "a turn behind more than the new addresses before her: {wait} s"
        );
        tokio::time::sleep(Duration::from_secs(wait)).await;
    }
    let new_address_delay = asked.elapsed();
    // From her usual address, and her own phone from yet another address: at once.
    let r = attempt(&usual, &env, "owner", PASSWORD).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let elsewhere = from(IpAddr::V4(Ipv4Addr::new(127, 0, 3, 2)), &env);
    fieldsync_tests::phone::enrol_as(
        &elsewhere,
        env.addr(),
        "owner",
        PASSWORD,
        Some(&phone.store),
    )
    .await
    .expect("her own phone enrols again at once");

    stop.store(true, Ordering::SeqCst);
    let mut statuses = Vec::new();
    while let Some(s) = attack.join_next().await {
        statuses.extend(s.unwrap());
    }
    let elapsed = started.elapsed();
    let checked = statuses.iter().filter(|s| **s == 401).count() as u64;
    println!(
        "trickle: {} attempts from {TRICKLE_ADDRESSES} addresses in {:.0} s, {checked} checked; \
         the owner from a new address got in after {:.1} s (waits {waits:?})",
        statuses.len(),
        elapsed.as_secs_f64(),
        new_address_delay.as_secs_f64()
    );
    // The account's budget: one turn as a new address per attacking address, the burst of
    // ten for addresses that tried before, and one every two minutes.
    let bound = u64::from(TRICKLE_ADDRESSES) + 10 + elapsed.as_secs() / 120 + 1;
    assert!(
        checked <= bound,
        "{checked} guesses checked, more than {bound}"
    );
    assert!(
        checked >= u64::from(TRICKLE_ADDRESSES),
        "{checked}: the attack ran"
    );
    let mut env = Arc::into_inner(env).unwrap();
    assert_up(&mut env).await;
}
