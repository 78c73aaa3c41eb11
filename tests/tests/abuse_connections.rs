//! Abuse: connections that never finish. A sync announcing a 1 MiB body without a token is
//! answered 401 without the body being waited for; an authenticated body that never comes ends
//! in 408 (or a closed connection) and frees the device's sync; idle TLS connections, idle
//! kept-alive ones and TCP connections that never handshake are closed after the header
//! timeout; and one address holding 300 connections gets 256 of them, the rest closed at once,
//! while phones elsewhere sync undisturbed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod abuse_support;
mod common;

use abuse_support::*;
use common::*;
use fieldsync_tests::https::connect_from;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

/// The server's header (and TLS handshake) timeout and body timeout in this file's first test.
const SHORT: Duration = Duration::from_secs(2);
/// The longest any of those connections may stay open: the short timeout and ample slack.
const CLOSE_WITHIN: Duration = Duration::from_secs(12);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_connections_are_answered_or_closed_within_the_timeouts() {
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

/// 300 connections from one address: 256 are held, the 44 beyond the per-address cap are
/// closed at once (long before the 15 s handshake timeout), new connections from that address
/// are refused while it holds its share, and nobody else is affected; once they close, the
/// address is served again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_gets_256_connections_and_others_are_not_affected() {
    let mut env = start_env(&[]).await;
    let mut bystanders = Bystanders::new(&env).await;
    let (stop, _) = tokio::sync::watch::channel(false);
    let closed = Arc::new(AtomicUsize::new(0));
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
    // Bounded wait for the server to close the ones beyond its cap (it accepts in order).
    let deadline = Instant::now() + Duration::from_secs(8);
    while closed.load(Ordering::SeqCst) < 44 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(closed.load(Ordering::SeqCst), 44, "closed at once");

    // The address is at its cap: a new request from it is refused, from another one served.
    let from_attacker = env
        .http
        .clone()
        .with_source(ATTACKER)
        .with_timeout(Duration::from_secs(10));
    let refused = from_attacker
        .request(env.addr(), "GET", "/v1/health", &[], Vec::new())
        .await;
    assert!(refused.is_err(), "over the cap: {refused:?}");
    let other = env.http.clone().with_source(USER_SOURCE);
    let r = other
        .request(env.addr(), "GET", "/v1/health", &[], Vec::new())
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    bystanders.edit_and_sync(&env, "during").await;
    bystanders.verify(&env).await;
    assert_eq!(
        closed.load(Ordering::SeqCst),
        44,
        "the 256 within the cap are still held"
    );

    // The attacker lets go: its places come back.
    stop.send(true).unwrap();
    while holders.join_next().await.is_some() {}
    let mut served = false;
    for _ in 0..100 {
        match from_attacker
            .request(env.addr(), "GET", "/v1/health", &[], Vec::new())
            .await
        {
            Ok(r) if r.status == 200 => {
                served = true;
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    assert!(
        served,
        "the address is served again once its connections closed"
    );
    bystanders.edit_and_sync(&env, "after").await;
    assert_up(&mut env).await;
    bystanders.verify(&env).await;
}
