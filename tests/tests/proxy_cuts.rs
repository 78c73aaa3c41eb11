//! The fault-injecting proxy cuts the share of real HTTPS exchanges it is set to, and at
//! points spread over the whole exchange, early and late, both ways.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod common;

use common::*;
use fieldsync_core::generator::Rng;
use fieldsync_core::protocol::{PROTOCOL_VERSION, SYNC_PATH, VERSION_HEADER};
use fieldsync_tests::proxy::{Direction, FaultProfile, FaultyProxy};
use std::time::Duration;

const EXCHANGES: usize = 200;
const CUT_PROBABILITY: f64 = 0.3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_cuts_its_share_of_small_https_exchanges_anywhere_in_them() {
    let env = Env::start().await;
    let profile = FaultProfile {
        cut_probability: CUT_PROBABILITY,
        seed: 11,
        ..FaultProfile::clean()
    };
    let proxy = FaultyProxy::start(env.addr(), profile).await.unwrap();
    let http = env.http.clone().with_timeout(Duration::from_secs(10));
    let headers = [
        ("authorization", "Bearer not-a-device-token".to_owned()),
        (VERSION_HEADER, PROTOCOL_VERSION.to_string()),
    ];
    // Sync-sized exchanges: a TLS handshake, a request of 0-1.5 KB of body, a short answer
    // (401: the server reads the whole body before it looks at the token).
    let mut rng = Rng::new(5);
    let mut failed = 0u64;
    for _ in 0..EXCHANGES {
        let body: Vec<u8> = (0..rng.below(1500)).map(|_| rng.next_u64() as u8).collect();
        match http
            .request(proxy.addr(), "POST", SYNC_PATH, &headers, body)
            .await
        {
            Ok(response) => assert_eq!(response.status, 401),
            Err(_) => failed += 1,
        }
    }

    let stats = proxy.stats();
    assert_eq!(stats.connections, EXCHANGES as u64);
    let share = stats.cut_connections as f64 / EXCHANGES as f64;
    println!(
        "cut {} of {EXCHANGES} connections ({share:.3}); the client saw {failed} fail",
        stats.cut_connections
    );
    assert!(
        (share - CUT_PROBABILITY).abs() <= 0.08,
        "cut share {share}, set to {CUT_PROBABILITY}"
    );
    // What the proxy counts as cut is what the client saw fail.
    assert!(
        failed.abs_diff(stats.cut_connections) <= EXCHANGES as u64 / 40,
        "{failed} failed, {} cut",
        stats.cut_connections
    );

    let cuts = proxy.cuts();
    assert_eq!(cuts.len() as u64, stats.cut_connections);
    for direction in [Direction::Up, Direction::Down] {
        let fractions: Vec<f64> = cuts
            .iter()
            .filter(|c| c.direction == direction)
            .map(|c| c.fraction)
            .collect();
        println!("{direction:?} cuts at fractions {fractions:.2?}");
        assert!(
            fractions.iter().any(|&f| f < 0.25),
            "{direction:?}: no early cut"
        );
        assert!(
            fractions.iter().any(|&f| f > 0.75),
            "{direction:?}: no late cut"
        );
    }
    // Upward, the handshake is the first few hundred bytes (ClientHello, Finished): late cuts
    // land well inside the request.
    assert!(
        cuts.iter()
            .any(|c| c.direction == Direction::Up && c.offset > 1000),
        "{cuts:?}"
    );
}
