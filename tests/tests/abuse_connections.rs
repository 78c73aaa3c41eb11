//! Abuse: connections that never finish. A sync announcing a 1 MiB body without a token is
//! answered 401 without the body being waited for; an authenticated body that never comes ends
//! in 408 (or a closed connection) and frees the device's sync; idle TLS connections, idle
//! kept-alive ones and TCP connections that never handshake are closed after the header
//! timeout; one address holding 300 connections gets 256 of them, its oldest closed at once to
//! make room, while phones elsewhere sync undisturbed; a connection that showed a valid token is
//! never shed; and a flood from 24 addresses against a server under a 1,024 open-file limit
//! leaves a phone's syncs working.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod abuse_support;
mod common;

use abuse_support::*;
use common::*;
use fieldsync_core::model::RecordType;
use fieldsync_tests::deployment::skip_unless_sqlite;
use fieldsync_tests::https::connect_from;
use fieldsync_tests::server::ServerProcess;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

/// Why this file runs on SQLite only.
const ONE_PROCESS: &str =
    "connection caps, timeouts and shedding are a server process's own; a balancer in front \
     would hold the connections itself";
/// The server's header (and TLS handshake) timeout and body timeout in this file's first test.
const SHORT: Duration = Duration::from_secs(2);
/// The longest any of those connections may stay open: the short timeout and ample slack.
const CLOSE_WITHIN: Duration = Duration::from_secs(12);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_connections_are_answered_or_closed_within_the_timeouts() {
    if skip_unless_sqlite(ONE_PROCESS) {
        return;
    }
    let mut env = start_env(&["--header-timeout-secs", "2", "--body-timeout-secs", "2"]).await;
    let mut bystanders = Bystanders::new(&env).await;
    let attacker = Attacker::enrol(&env, "attacker", &[NGOC_LINH]).await;
    let http = attacker.http.clone();

    // 1. No token, a 1 MiB body announced and never sent: 401, not 408. The server answered
    //    without waiting for the body (which would have ended in 408 after 2 s).
    let mut stream = http.open_tls(env.addr()).await.unwrap();
    let head = sync_head(env.addr(), None, 1 << 20);
    write_all(&mut stream, head.as_bytes()).await;
    match read_reply(&mut stream, CLOSE_WITHIN).await {
        Reply::Answer(status, text) => {
            assert_eq!(status, 401, "{text}");
            assert!(text.contains("unauthorized"), "{text}");
        }
        other => panic!("no answer to an unauthenticated sync: {other:?}"),
    }

    // 2. A valid token, 1,000 bytes announced, 10 sent, then nothing: 408 or a close, within
    //    the body timeout (plus slack), never a hang.
    let started = Instant::now();
    let mut stream = http.open_tls(env.addr()).await.unwrap();
    let head = sync_head(env.addr(), Some(&attacker.token), 1_000);
    write_all(&mut stream, head.as_bytes()).await;
    write_all(&mut stream, &[0x1f; 10]).await;
    match read_reply(&mut stream, CLOSE_WITHIN).await {
        Reply::Answer(status, text) => {
            assert_eq!(status, 408, "{text}");
            assert!(text.contains("request_timeout"), "{text}");
        }
        Reply::Closed => {}
        Reply::Silent => panic!("the server held a body that never came"),
    }
    assert!(started.elapsed() >= SHORT, "not before the body timeout");
    // The device's sync slot was given back.
    let answer = attacker.push_ok(&env, Vec::new()).await;
    assert!(answer.rejected.is_empty());

    // 3. Headers that trickle in, a byte every 300 ms, never ending: the header timeout
    //    counts the whole head, so the connection is closed all the same.
    let stream = http.open_tls(env.addr()).await.unwrap();
    let (mut reader, mut writer) = tokio::io::split(stream);
    let trickle = tokio::spawn(async move {
        let head = b"POST /v1/sync HTTP/1.1\r\nx-padding: ";
        if writer.write_all(head).await.is_err() {
            return;
        }
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if writer.write_all(b"a").await.is_err() || writer.flush().await.is_err() {
                return;
            }
        }
    });
    match read_reply(&mut reader, CLOSE_WITHIN).await {
        Reply::Closed | Reply::Answer(408, _) => {}
        other => panic!("trickling headers were not cut off: {other:?}"),
    }
    trickle.abort();

    // 4. Idle connections: 20 TLS connections that never send a request, 20 TCP connections
    //    that never start a handshake, and one kept alive after a request. All closed.
    let mut checks = JoinSet::new();
    for _ in 0..20 {
        let mut tls = http.open_tls(env.addr()).await.unwrap();
        checks.spawn(async move { ("idle TLS", read_reply(&mut tls, CLOSE_WITHIN).await) });
        let mut tcp = connect_from(env.addr(), Some(ATTACKER)).await.unwrap();
        checks.spawn(async move { ("idle TCP", read_reply(&mut tcp, CLOSE_WITHIN).await) });
    }
    let mut kept = http.open_tls(env.addr()).await.unwrap();
    let health = format!(
        "GET /v1/health HTTP/1.1\r\nhost: localhost:{}\r\n\r\n",
        env.addr().port()
    );
    write_all(&mut kept, health.as_bytes()).await;
    assert!(matches!(
        read_reply(&mut kept, CLOSE_WITHIN).await,
        Reply::Answer(200, _)
    ));
    checks.spawn(async move { ("kept alive", read_reply(&mut kept, CLOSE_WITHIN).await) });
    // Meanwhile, the honest phones are served.
    bystanders
        .edit_and_sync(&env, "during idle connections")
        .await;
    let mut closed = 0;
    while let Some(result) = checks.join_next().await {
        let (what, reply) = result.unwrap();
        match reply {
            Reply::Closed => closed += 1,
            // hyper may say why before closing.
            Reply::Answer(408, _) => closed += 1,
            other => panic!("{what}: still held after {CLOSE_WITHIN:?}: {other:?}"),
        }
    }
    assert_eq!(closed, 41);

    bystanders.edit_and_sync(&env, "after").await;
    assert_up(&mut env).await;
    bystanders.verify(&env).await;
}

/// A client that goes away in the middle of its body frees its device's sync at once, not
/// after the 120 s body timeout: the device's next sync is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_away_mid_body_frees_its_sync_at_once() {
    if skip_unless_sqlite(ONE_PROCESS) {
        return;
    }
    let mut env = start_env(&[]).await;
    let mut bystanders = Bystanders::new(&env).await;
    let attacker = Attacker::enrol(&env, "attacker", &[NGOC_LINH]).await;
    for round in 0..3 {
        let body = sync_body(
            &[],
            creations(attacker.actor, NGOC_LINH, &format!("cut {round}"), 5),
        );
        let (stream, refused) = hold_sync(&env, &attacker.http, &attacker.token, &body).await;
        assert_refused(&refused, 429, "too_many_requests");
        let idle = sync_body(&[], Vec::new());
        drop(stream);
        // Bounded wait (10 s, far below the 120 s body timeout) for the slot to come back.
        let deadline = Instant::now() + Duration::from_secs(10);
        let answer = loop {
            let r = attacker.post(&env, idle.clone()).await;
            if r.status != 429 {
                break r;
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: the slot was not freed"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let answer = decoded(&answer);
        assert!(
            answer.acked.is_empty(),
            "nothing of the cut request was stored"
        );
    }
    bystanders.edit_and_sync(&env, "after").await;
    assert_up(&mut env).await;
    bystanders.verify(&env).await;
}

/// 300 connections from one address: it holds 256 at most, and each one beyond makes room by
/// closing the address's own oldest unauthenticated connection at once (long before the 15 s
/// handshake timeout), so that an attacker sharing a carrier's address with phones cannot keep
/// them out either; nobody else is affected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_holds_256_connections_and_its_oldest_idle_ones_make_room() {
    if skip_unless_sqlite(ONE_PROCESS) {
        return;
    }
    let mut env = start_env(&[]).await;
    let mut bystanders = Bystanders::new(&env).await;
    let (stop, _) = tokio::sync::watch::channel(false);
    let closed = Arc::new(Mutex::new(Vec::new()));
    let mut holders = JoinSet::new();
    for i in 0..300 {
        let mut tcp = connect_from(env.addr(), Some(ATTACKER)).await.unwrap();
        let (mut stop, closed) = (stop.subscribe(), closed.clone());
        holders.spawn(async move {
            let mut buf = [0u8; 64];
            tokio::select! {
                _ = tcp.read(&mut buf) => closed.lock().unwrap().push(i),
                _ = stop.changed() => {}
            }
        });
    }
    let count = |closed: &Arc<Mutex<Vec<usize>>>| closed.lock().unwrap().len();
    // Bounded wait for the server to close the ones beyond the share (it accepts in order).
    let deadline = Instant::now() + Duration::from_secs(8);
    while count(&closed) < 44 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut first: Vec<usize> = closed.lock().unwrap().clone();
    first.sort_unstable();
    assert_eq!(first, (0..44).collect::<Vec<_>>(), "the 44 oldest, at once");

    // At its share, the address is still served: a new connection of it closes another of its
    // idle ones. Another address is served, and the phones sync.
    let from_attacker = env
        .http
        .clone()
        .with_source(ATTACKER)
        .with_timeout(Duration::from_secs(10));
    let r = from_attacker
        .request(env.addr(), "GET", "/v1/health", &[], Vec::new())
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let deadline = Instant::now() + Duration::from_secs(8);
    while count(&closed) < 45 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(count(&closed), 45, "one more of its idle ones made room");
    let other = env.http.clone().with_source(USER_SOURCE);
    let r = other
        .request(env.addr(), "GET", "/v1/health", &[], Vec::new())
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    bystanders.edit_and_sync(&env, "during").await;
    bystanders.verify(&env).await;
    assert_eq!(count(&closed), 45, "the 255 newest are still held");

    stop.send(true).unwrap();
    while holders.join_next().await.is_some() {}
    bystanders.edit_and_sync(&env, "after").await;
    assert_up(&mut env).await;
    bystanders.verify(&env).await;
}

/// A connection on which a request carried a valid token is never shed: when its address then
/// opens 300 more, the address's unauthenticated connections make room (the oldest first),
/// while the authenticated one, kept alive, still answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authenticated_connection_is_not_shed() {
    if skip_unless_sqlite(ONE_PROCESS) {
        return;
    }
    let mut env = start_env(&[]).await;
    let attacker = Attacker::enrol(&env, "attacker", &[NGOC_LINH]).await;
    let http = attacker.http.clone();
    let health = format!(
        "GET /v1/health HTTP/1.1\r\nhost: localhost:{}\r\n\r\n",
        env.addr().port()
    );
    // Two kept-alive connections of the address: one after an authenticated sync, one after
    // a request without a token.
    let idle = sync_body(&[], Vec::new());
    let mut authenticated = http.open_tls(env.addr()).await.unwrap();
    let head = sync_head(env.addr(), Some(&attacker.token), idle.len() as u64);
    write_all(&mut authenticated, head.as_bytes()).await;
    write_all(&mut authenticated, &idle).await;
    assert!(matches!(
        read_reply(&mut authenticated, CLOSE_WITHIN).await,
        Reply::Answer(200, _)
    ));
    let mut anonymous = http.open_tls(env.addr()).await.unwrap();
    write_all(&mut anonymous, health.as_bytes()).await;
    assert!(matches!(
        read_reply(&mut anonymous, CLOSE_WITHIN).await,
        Reply::Answer(200, _)
    ));

    // 300 more from the same address: 2 + 300 is 46 over its share of 256.
    let closed = Arc::new(AtomicUsize::new(0));
    let (stop, _) = tokio::sync::watch::channel(false);
    let mut holders = JoinSet::new();
    for _ in 0..300 {
        let mut tcp = connect_from(env.addr(), Some(ATTACKER)).await.unwrap();
        let (mut stop, closed) = (stop.subscribe(), closed.clone());
        holders.spawn(async move {
            let mut buf = [0u8; 64];
            tokio::select! {
                _ = tcp.read(&mut buf) => {
                    closed.fetch_add(1, Ordering::SeqCst);
                }
                _ = stop.changed() => {}
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(8);
    while closed.load(Ordering::SeqCst) < 45 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(closed.load(Ordering::SeqCst), 45);
    assert_eq!(
        state(&mut anonymous).await,
        State::Closed,
        "the oldest unauthenticated connection made room first"
    );
    write_all(&mut authenticated, health.as_bytes()).await;
    assert!(
        matches!(
            read_reply(&mut authenticated, CLOSE_WITHIN).await,
            Reply::Answer(200, _)
        ),
        "the authenticated connection is still open and served"
    );
    stop.send(true).unwrap();
    while holders.join_next().await.is_some() {}
    assert_up(&mut env).await;
}

/// Addresses of the flood below, and connections from each: more than the review's 20 × 256.
const FLOOD_ADDRESSES: u8 = 24;
const FLOOD_PER_ADDRESS: usize = 256;
/// Syncs the phone makes during the flood; at least 95% of them must succeed.
const FLOOD_SYNCS: usize = 40;
/// The server's open-file limit in the flood test: it holds half as many connections.
const FLOOD_SERVER_FILES: u64 = 1024;

/// Raises this process's open-file limit to hold `needed` files, as far as the hard limit goes.
fn raise_own_open_file_limit(needed: u64) {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current.is_some_and(|n| n < needed) {
        limit.current = limit.maximum.map(|hard| hard.min(needed.max(65_536)));
        let _ = setrlimit(Resource::Nofile, limit);
    }
    let now = getrlimit(Resource::Nofile).current;
    assert!(
        now.is_none_or(|n| n >= needed),
        "this test needs {needed} open files; the limit is {now:?}"
    );
}

/// One attacking connection at a time from `source` that never starts a handshake: opened,
/// held until the server closes it, and opened again at once, until `stop`.
async fn hold_and_reopen(
    addr: std::net::SocketAddr,
    source: std::net::IpAddr,
    mut stop: tokio::sync::watch::Receiver<bool>,
    closed: Arc<AtomicUsize>,
) {
    loop {
        let connect =
            tokio::time::timeout(Duration::from_secs(5), connect_from(addr, Some(source)));
        let opened = tokio::select! {
            r = connect => r,
            _ = stop.changed() => return,
        };
        match opened {
            Ok(Ok(mut tcp)) => {
                let mut buf = [0u8; 64];
                let until_closed = async {
                    while let Ok(n) = tcp.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                    }
                };
                tokio::select! {
                    () = until_closed => {
                        closed.fetch_add(1, Ordering::SeqCst);
                    }
                    _ = stop.changed() => return,
                }
            }
            _ => tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
                _ = stop.changed() => return,
            },
        }
    }
}

/// The review's connection exhaustion: 24 addresses × 256 plain TCP connections that never
/// handshake, each reopened as soon as the server closes it, against a server under a 1,024
/// open-file limit (512 connections). The connections that never authenticate are the ones
/// shed, and at least 95% of a phone's syncs during the flood succeed without a single request
/// cut (before, 3 such addresses made every sync fail).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_from_24_addresses_does_not_keep_a_phone_out() {
    if skip_unless_sqlite(ONE_PROCESS) {
        return;
    }
    let attacking = usize::from(FLOOD_ADDRESSES) * FLOOD_PER_ADDRESS;
    raise_own_open_file_limit(attacking as u64 + 2048);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server");
    std::fs::create_dir_all(&data).unwrap();
    let server = ServerProcess::start_limited(
        &data,
        "127.0.0.1:0",
        &["--demo-households", "0"],
        FLOOD_SERVER_FILES,
    )
    .unwrap();
    let mut env = Env::around(dir, server, None).await;
    let mut bystanders = Bystanders::new(&env).await;

    let (stop, _) = tokio::sync::watch::channel(false);
    let closed = Arc::new(AtomicUsize::new(0));
    let mut holders = JoinSet::new();
    for a in 0..FLOOD_ADDRESSES {
        let source = std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 10 + a));
        for _ in 0..FLOOD_PER_ADDRESS {
            holders.spawn(hold_and_reopen(
                env.addr(),
                source,
                stop.subscribe(),
                closed.clone(),
            ));
        }
    }
    // The flood is at full strength once the server has closed more than it can hold
    // (bounded wait).
    let beyond = attacking - (FLOOD_SERVER_FILES / 2) as usize;
    let deadline = Instant::now() + Duration::from_secs(60);
    while closed.load(Ordering::SeqCst) < beyond && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before = closed.load(Ordering::SeqCst);
    assert!(
        before >= beyond,
        "the flood never filled the server: {before} closed"
    );

    let mut succeeded = 0;
    let mut failures = Vec::new();
    for round in 0..FLOOD_SYNCS {
        let name = format!("Y Blơ flood {round}");
        let id = bystanders
            .writer
            .store
            .create(RecordType::Household, &minimal_household(NGOC_LINH, &name))
            .unwrap();
        bystanders.made.push((id, name));
        match bystanders.writer.sync(&env.http, env.addr(), 20).await {
            Ok(report) if report.cut == 0 && report.rejected == 0 => succeeded += 1,
            Ok(report) => failures.push(format!("{report:?}")),
            Err(e) => failures.push(e.to_string()),
        }
    }
    let during = closed.load(Ordering::SeqCst) - before;
    stop.send(true).unwrap();
    while holders.join_next().await.is_some() {}
    println!(
        "{succeeded} of {FLOOD_SYNCS} syncs succeeded; {during} attacking connections shed meanwhile"
    );
    assert!(during > 0, "the flood went on during the syncs");
    assert!(
        succeeded * 100 >= FLOOD_SYNCS * 95,
        "{succeeded} of {FLOOD_SYNCS} syncs succeeded during the flood: {failures:?}"
    );
    // Whatever was cut arrives now; nothing was lost.
    bystanders.edit_and_sync(&env, "after").await;
    assert_up(&mut env).await;
    bystanders.verify(&env).await;
}
