//! End to end on PostgreSQL: two real `fieldsync-server serve` processes on one database, as
//! behind a load balancer. Phones send each request to either instance at random; one
//! instance is killed (SIGKILL) while phones are pushing, and started again. Afterwards every
//! phone has every change, the server has every change any phone holds (nothing acknowledged
//! was lost), and none twice.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod adversarial_support;
mod common;

use adversarial_support::all_hashes;
use common::{minimal_household, NGOC_LINH, PASSWORD};
use fieldsync_core::RecordType;
use fieldsync_server::storage::postgres::{scratch_database, PostgresOptions, PostgresStorage};
use fieldsync_server::storage::prelude::*;
use fieldsync_tests::https::HttpsClient;
use fieldsync_tests::phone::{call_json, enrol, Phone, PhoneError};
use fieldsync_tests::server::{ServerProcess, ADMIN};
use serde_json::json;
use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

const ROUNDS: usize = 6;

fn test_postgres() -> String {
    std::env::var("FIELDSYNC_TEST_POSTGRES").unwrap_or_else(|_| {
        panic!(
            "this test needs PostgreSQL: run it as `scripts/with-postgres cargo test ...`, \
             or set FIELDSYNC_TEST_POSTGRES=postgres://user@host:port/db"
        )
    })
}

fn start(data: &Path, url: &str) -> ServerProcess {
    ServerProcess::start_with(
        data,
        "127.0.0.1:0",
        &["--demo-households", "0", "--database", url],
    )
    .unwrap()
}

/// The instances' addresses, and a small deterministic generator to pick among them.
struct Balancer {
    addrs: RefCell<Vec<SocketAddr>>,
    state: Cell<u64>,
    /// Rounds the phones have synced so far.
    rounds: Cell<usize>,
    /// Requests cut by the kill (sent again elsewhere).
    cut: Cell<usize>,
    /// Where requests are on their way now.
    in_flight: RefCell<Vec<SocketAddr>>,
}

impl Balancer {
    fn pick(&self) -> SocketAddr {
        let s = self
            .state
            .get()
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.state.set(s);
        let addrs = self.addrs.borrow();
        addrs[(s >> 33) as usize % addrs.len()]
    }
}

/// Syncs until the phone has nothing more to do, each request to an instance picked anew; a
/// request that finds its instance gone is sent again elsewhere.
async fn sync(phone: &mut Phone, http: &HttpsClient, balancer: &Balancer) {
    for _ in 0..500 {
        let addr = balancer.pick();
        balancer.in_flight.borrow_mut().push(addr);
        let result = phone.sync(http, addr, 1).await;
        {
            let mut in_flight = balancer.in_flight.borrow_mut();
            if let Some(i) = in_flight.iter().position(|a| *a == addr) {
                in_flight.swap_remove(i);
            }
        }
        match result {
            Ok(_) => return,
            Err(PhoneError::GaveUp(_)) => {
                balancer.cut.set(balancer.cut.get() + 1);
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("sync failed: {e}"),
        }
    }
    panic!("the phone did not settle");
}

/// A phone's work: rounds of new records and edits, each round synced.
async fn work(phone: &mut Phone, name: &str, http: &HttpsClient, balancer: &Balancer) {
    for round in 0..ROUNDS {
        for i in 0..15 {
            let id = phone
                .store
                .create(
                    RecordType::Household,
                    &minimal_household(NGOC_LINH, &format!("{name} {round} {i}")),
                )
                .unwrap();
            phone
                .store
                .set_field(id, "village", &format!("Thôn {i}").into())
                .unwrap();
        }
        sync(phone, http, balancer).await;
        balancer.rounds.set(balancer.rounds.get() + 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phones_converge_over_two_instances_when_one_is_killed_mid_ingest() {
    let url = scratch_database(&test_postgres()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server");
    std::fs::create_dir_all(&data).unwrap();
    // One after the other: the first creates the schema and the demo accounts. Both use the
    // data directory's development certificate.
    let first = start(&data, &url);
    let second = start(&data, &url);
    let http = HttpsClient::new(&first.cert_pem).unwrap();
    let balancer = Balancer {
        addrs: RefCell::new(vec![first.addr, second.addr]),
        state: Cell::new(7),
        rounds: Cell::new(0),
        cut: Cell::new(0),
        in_flight: RefCell::new(Vec::new()),
    };
    let admin = enrol(&http, first.addr, ADMIN.0, ADMIN.1).await.unwrap();
    let names = ["c0", "c1", "c2"];
    for name in names {
        // Created through one instance, logged in at the other.
        call_json(
            &http,
            second.addr,
            "POST",
            "/v1/admin/users",
            Some(&admin),
            &json!({ "username": name, "password": PASSWORD, "role": "collector",
                     "areas": [NGOC_LINH], "sensitive_access": false }),
        )
        .await
        .unwrap();
    }
    let mut phones = Vec::new();
    for name in names {
        let path = dir.path().join(format!("{name}.sqlite"));
        let phone = Phone::enrol(
            &http,
            balancer.pick(),
            &path,
            name,
            PASSWORD,
            Default::default(),
        )
        .await
        .unwrap();
        phones.push(phone);
    }

    let victim = RefCell::new(second);
    let killer = async {
        // Kill in the middle of the phones' work, while a request is on its way to it.
        let dead = victim.borrow().addr;
        while balancer.rounds.get() < 4 || !balancer.in_flight.borrow().contains(&dead) {
            if balancer.rounds.get() == names.len() * ROUNDS {
                break; // all done: the assertion on cut requests below tells
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // Phones keep going against the survivor while the victim is down.
        balancer.addrs.borrow_mut().retain(|a| *a != dead);
        victim.borrow_mut().kill();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let restarted = start(&data, &url);
        balancer.addrs.borrow_mut().push(restarted.addr);
        *victim.borrow_mut() = restarted;
    };
    {
        let [p0, p1, p2] = &mut phones[..] else {
            unreachable!()
        };
        tokio::join!(
            work(p0, names[0], &http, &balancer),
            work(p1, names[1], &http, &balancer),
            work(p2, names[2], &http, &balancer),
            killer,
        );
    }
    assert!(balancer.cut.get() > 0, "the kill cut a request");
    // Everyone syncs twice more: what one phone pushed last reaches the others.
    for _ in 0..2 {
        for phone in phones.iter_mut() {
            sync(phone, &http, &balancer).await;
        }
    }

    let held: Vec<BTreeSet<[u8; 32]>> = phones.iter().map(|p| all_hashes(&p.store)).collect();
    let union: BTreeSet<[u8; 32]> = held.iter().flatten().copied().collect();
    for (phone, hashes) in phones.iter().zip(&held) {
        assert_eq!(
            phone.store.unacked_count().unwrap(),
            0,
            "everything acknowledged"
        );
        assert_eq!(hashes, &union, "every phone has every change");
    }
    assert_eq!(union.len(), names.len() * ROUNDS * 15 * 2);
    let storage = PostgresStorage::open(&PostgresOptions::new(&url)).unwrap();
    let stats = storage.stats().unwrap();
    assert_eq!(
        stats.changes,
        union.len() as u64,
        "the server has every change, once"
    );
    assert_eq!(stats.held, 0);
    assert_eq!(stats.records, (names.len() * ROUNDS * 15) as u64);
}
