//! End to end on PostgreSQL: two real `fieldsync-server serve` processes on one database behind
//! the test balancer, which sends each connection (each request: the test client opens one per
//! request) to either instance at random. One instance is SIGKILLed while phones push, and
//! again and again in the middle of ingesting one large push; phones push to both instances at
//! once while another phone pulls page by page. Afterwards every phone has every change, the
//! server has every change any phone holds (nothing acknowledged was lost), and none twice.
//!
//! Needs a cluster in `FIELDSYNC_TEST_POSTGRES` (`scripts/with-postgres`), whatever
//! `FIELDSYNC_TEST_BACKEND` says.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod adversarial_support;
mod common;

use adversarial_support::all_hashes;
use common::{minimal_household, NGOC_LINH, PASSWORD};
use fieldsync_core::protocol::ClientOptions;
use fieldsync_core::RecordType;
use fieldsync_tests::deployment::{Backend, Cluster, Deployment};
use fieldsync_tests::https::HttpsClient;
use fieldsync_tests::phone::{call_json, enrol, Phone, SyncReport};
use fieldsync_tests::server::ADMIN;
use serde_json::json;
use std::cell::Cell;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tempfile::TempDir;

fn test_postgres() -> String {
    std::env::var("FIELDSYNC_TEST_POSTGRES").unwrap_or_else(|_| {
        panic!(
            "this test needs PostgreSQL: run it as `scripts/with-postgres cargo test ...`, \
             or set FIELDSYNC_TEST_POSTGRES=postgres://user@host:port/db"
        )
    })
}

/// Two instances on a fresh database behind the balancer, and collectors of Ngọc Linh.
struct Setup {
    dir: TempDir,
    deployment: Deployment,
    http: HttpsClient,
    /// The balancer: where every request goes.
    addr: SocketAddr,
}

impl Setup {
    async fn start(collectors: &[&str]) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("server");
        std::fs::create_dir_all(&data).unwrap();
        let backend = Backend::Postgres(test_postgres());
        let deployment =
            Deployment::start_on(&backend, &data, &["--demo-households", "0"]).unwrap();
        let http = HttpsClient::new(&deployment.server.cert_pem).unwrap();
        let addr = deployment.addr();
        let admin = enrol(&http, addr, ADMIN.0, ADMIN.1).await.unwrap();
        for name in collectors {
            call_json(
                &http,
                addr,
                "POST",
                "/v1/admin/users",
                Some(&admin),
                &json!({ "username": name, "password": PASSWORD, "role": "collector",
                         "areas": [NGOC_LINH], "sensitive_access": false }),
            )
            .await
            .unwrap();
        }
        Setup {
            dir,
            deployment,
            http,
            addr,
        }
    }

    async fn phone(&self, name: &str, options: ClientOptions) -> Phone {
        let path = self.dir.path().join(format!("{name}.sqlite"));
        Phone::enrol(&self.http, self.addr, &path, name, PASSWORD, options)
            .await
            .unwrap()
    }

    fn cluster(&mut self) -> &mut Cluster {
        self.deployment.cluster.as_mut().unwrap()
    }

    /// Changes stored on the server.
    fn changes(&self) -> i64 {
        let cluster = self.deployment.cluster.as_ref().unwrap();
        cluster.sql_numbers("SELECT COUNT(*) FROM changes")[0]
    }

    /// Records, changes and held changes stored on the server.
    fn stats(&self) -> [i64; 3] {
        let cluster = self.deployment.cluster.as_ref().unwrap();
        let n = cluster.sql_numbers(
            "SELECT (SELECT COUNT(*) FROM records), (SELECT COUNT(*) FROM changes), \
             (SELECT COUNT(*) FROM held)",
        );
        [n[0], n[1], n[2]]
    }
}

/// Syncs until the phone has nothing more to do; requests cut by a kill are sent again and
/// the balancer sends them to an instance that is up.
async fn sync(phone: &mut Phone, http: &HttpsClient, addr: SocketAddr) -> SyncReport {
    phone.sync(http, addr, 500).await.unwrap()
}

/// Creates `n` households on a phone, each with an edit: `2 n` changes.
fn create(phone: &mut Phone, name: &str, n: usize) {
    for i in 0..n {
        let id = phone
            .store
            .create(
                RecordType::Household,
                &minimal_household(NGOC_LINH, &format!("{name} {i}")),
            )
            .unwrap();
        phone
            .store
            .set_field(id, "village", &format!("Thôn {i}").into())
            .unwrap();
    }
}

/// Every phone has every change, has nothing unacknowledged, and the server holds exactly
/// those changes (nothing acknowledged lost, nothing stored twice): the number of changes.
fn assert_converged(setup: &Setup, phones: &[&Phone]) -> usize {
    let held: Vec<BTreeSet<[u8; 32]>> = phones.iter().map(|p| all_hashes(&p.store)).collect();
    let union: BTreeSet<[u8; 32]> = held.iter().flatten().copied().collect();
    for (phone, hashes) in phones.iter().zip(&held) {
        assert_eq!(
            phone.store.unacked_count().unwrap(),
            0,
            "everything acknowledged"
        );
        assert_eq!(hashes.len(), union.len(), "every phone has every change");
    }
    let [records, changes, held] = setup.stats();
    assert_eq!(
        changes as usize,
        union.len(),
        "the server has every change, once"
    );
    assert_eq!(held, 0);
    assert_eq!(records as usize, union.len() / 2, "one creation, one edit");
    union.len()
}

const ROUNDS: usize = 6;

/// A phone's work: rounds of new records and edits, each round synced.
async fn work(phone: &mut Phone, name: &str, setup: &Setup, rounds: &Cell<usize>) -> usize {
    let mut cut = 0;
    for round in 0..ROUNDS {
        create(phone, &format!("{name} {round}"), 15);
        cut += sync(phone, &setup.http, setup.addr).await.cut;
        rounds.set(rounds.get() + 1);
    }
    cut
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phones_converge_over_two_instances_when_one_is_killed_while_they_push() {
    let names = ["c0", "c1", "c2"];
    let mut setup = Setup::start(&names).await;
    let mut phones = Vec::new();
    for name in names {
        phones.push(setup.phone(name, Default::default()).await);
    }
    let rounds = Cell::new(0);
    let mut cluster = setup.deployment.cluster.take().unwrap();
    let killer = async {
        // Kill in the middle of the phones' work, while a request is on its way to it.
        let victim = cluster.second.addr;
        while rounds.get() < 4 || cluster.balancer.open_connections(victim) == 0 {
            if rounds.get() == names.len() * ROUNDS {
                break; // all done: the assertion on cut requests below tells
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        cluster.kill_second();
        // Phones keep going against the survivor while the victim is down.
        tokio::time::sleep(Duration::from_millis(300)).await;
        cluster.start_second().unwrap();
    };
    let cut = {
        let [p0, p1, p2] = &mut phones[..] else {
            unreachable!()
        };
        let (c0, c1, c2, ()) = tokio::join!(
            work(p0, names[0], &setup, &rounds),
            work(p1, names[1], &setup, &rounds),
            work(p2, names[2], &setup, &rounds),
            killer,
        );
        c0 + c1 + c2
    };
    setup.deployment.cluster = Some(cluster);
    assert!(cut > 0, "the kill cut a request");
    // Everyone syncs twice more: what one phone pushed last reaches the others.
    for _ in 0..2 {
        for phone in phones.iter_mut() {
            sync(phone, &setup.http, setup.addr).await;
        }
    }
    let all: Vec<&Phone> = phones.iter().collect();
    assert_eq!(
        assert_converged(&setup, &all),
        names.len() * ROUNDS * 15 * 2
    );
}

/// Households per large push: 1,000 changes, the most one request may carry.
const LARGE_PUSH: usize = 500;
/// Large pushes at most, each from a phone of its own (an account may push 2,000 changes at
/// once, then 600 a minute, per instance).
const LARGE_ATTEMPTS: usize = 8;

/// A phone pushes 1,000 changes in one batch to the second instance (which takes what it can
/// ingest in its budget per request: the push runs over several requests), and the instance is
/// SIGKILLed at a random moment while a request is open (every other time once its ingest
/// transaction has begun): in that transaction, or after the commit but before the answer got
/// out. Nothing the phone had acknowledged is lost; the phone sends the rest again (to the
/// survivor) and everything is stored once. Repeated with new phones until kills have cut
/// three pushes, one of them in its ingest transaction (which holds the sync writers' advisory
/// lock until it commits); the restarted instance then serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_push_cut_by_a_sigkill_mid_ingest_is_stored_once() {
    let names: Vec<String> = (0..=LARGE_ATTEMPTS).map(|i| format!("big{i}")).collect();
    let mut accounts: Vec<&str> = names.iter().map(String::as_str).collect();
    accounts.push("reader");
    let mut setup = Setup::start(&accounts).await;
    let big_options = ClientOptions {
        max_push_bytes: 8 * 1024 * 1024,
        max_push_changes: 1000,
        ..Default::default()
    };
    let mut reader = setup.phone("reader", Default::default()).await;
    let first = setup.deployment.server.addr;

    // An uncut large push first: how long the request takes, to spread the kills over it.
    let mut warm = setup.phone(&names[0], big_options.clone()).await;
    create(&mut warm, "warm-up", LARGE_PUSH);
    let started = Instant::now();
    sync(&mut warm, &setup.http, setup.addr).await;
    let took = started.elapsed();
    eprintln!("a push of {} changes took {took:?}", 2 * LARGE_PUSH);
    let mut phones = vec![warm];

    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut outcomes: Vec<&str> = Vec::new();
    for (attempt, name) in names[1..].iter().enumerate() {
        // Every other kill waits for the ingest transaction to have begun; the others come at
        // any moment of the sync.
        let targeted = attempt % 2 == 1;
        let cut = outcomes.iter().filter(|o| o.starts_with("cut")).count();
        if cut >= 3 && outcomes.contains(&"cut in the ingest transaction") {
            break;
        }
        let mut big = setup.phone(name, big_options.clone()).await;
        create(&mut big, name, LARGE_PUSH);
        let before = setup.changes();
        // Only the second instance takes new connections, so the push goes to it.
        setup.cluster().balancer.remove(first);
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = took.mul_f64((seed % 1000) as f64 / 1000.0);
        let done = Cell::new(false);
        let http = setup.http.clone();
        let addr = setup.addr;
        let big_path = big.path.clone();
        let cluster = setup.deployment.cluster.as_mut().unwrap();
        let push = async {
            let report = sync(&mut big, &http, addr).await;
            done.set(true);
            report
        };
        let killer = async {
            let victim = cluster.second.addr;
            while cluster.balancer.open_connections(victim) == 0 && !done.get() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            if targeted {
                while !done.get() && !ingesting(cluster) {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                tokio::time::sleep(delay / 50).await;
            } else {
                tokio::time::sleep(delay).await;
            }
            let in_flight = !done.get() && cluster.balancer.open_connections(victim) > 0;
            let in_ingest = ingesting(cluster);
            cluster.kill_second();
            if done.get() {
                cluster.balancer.add(first);
                return None;
            }
            // No instance takes connections now: the database holds still, and so does a
            // phone whose request was cut, until the survivor is back.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let stored = cluster.sql_numbers("SELECT COUNT(*) FROM changes")[0] - before;
            let acked = (2 * LARGE_PUSH) as i64 - unacked(&big_path);
            assert!(
                stored >= acked,
                "nothing acknowledged is lost: {stored} stored, {acked} acknowledged"
            );
            cluster.balancer.add(first);
            Some((in_flight, in_ingest, stored == acked))
        };
        let (report, killed) = tokio::join!(push, killer);
        let outcome = match killed {
            // The kill came after the last answer had reached the phone.
            _ if report.cut == 0 => "answered",
            None => panic!("only the kill cuts requests: {report:?}"),
            Some((false, _, _)) => "killed between requests",
            // The ingest transaction was open and rolled back: the kill landed mid-ingest.
            Some((true, true, true)) => "cut in the ingest transaction",
            Some((true, false, true)) => "cut before the commit",
            // It committed, but its answer never got out: the phone sends those again.
            Some((true, _, false)) => "cut after the commit",
        };
        outcomes.push(outcome);
        // The phone sent the rest again, to the survivor; the victim comes back.
        setup.cluster().balancer.add(first);
        assert_eq!(
            setup.changes() - before,
            2 * LARGE_PUSH as i64,
            "stored once"
        );
        setup.cluster().start_second().unwrap();
        phones.push(big);
    }
    eprintln!("kill delays within {took:?}: {outcomes:?}");
    assert!(
        outcomes.contains(&"cut in the ingest transaction"),
        "a kill landed in the middle of an ingest transaction"
    );

    // The restarted instance serves: only it takes connections now.
    setup.cluster().balancer.remove(first);
    sync(&mut reader, &setup.http, setup.addr).await;
    setup.cluster().balancer.add(first);
    for phone in phones.iter_mut() {
        sync(phone, &setup.http, setup.addr).await;
    }
    phones.push(reader);
    let all: Vec<&Phone> = phones.iter().collect();
    assert_eq!(
        assert_converged(&setup, &all),
        2 * LARGE_PUSH * (phones.len() - 1)
    );
}

/// Whether a sync write transaction is open on the test's database: it holds the advisory lock
/// from its start to its commit.
fn ingesting(cluster: &Cluster) -> bool {
    cluster.sql_numbers(
        "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )[0] > 0
}

/// A phone's changes not acknowledged yet, read from its store's file while it syncs.
fn unacked(path: &std::path::Path) -> i64 {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    conn.query_row(
        "SELECT COUNT(*) FROM changes WHERE local = 1 AND acked = 0",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

/// Rounds of new records, each pushed in small batches; then one writer fewer.
async fn write(phone: &mut Phone, name: &str, setup: &Setup, writing: &Cell<usize>) {
    for round in 0..8 {
        create(phone, &format!("{name} {round}"), 10);
        sync(phone, &setup.http, setup.addr).await;
    }
    writing.set(writing.get() - 1);
}

/// Four phones push small batches at once through the balancer, so both instances write the
/// log concurrently, while a fifth pulls page by page with its cursor the whole time. A log
/// entry that became visible after a later one (a gap the cursor passed) would be missing from
/// the puller for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_pulling_while_others_push_to_both_instances_misses_nothing() {
    let names = ["w0", "w1", "w2", "w3"];
    let mut all = names.to_vec();
    all.push("puller");
    let setup = Setup::start(&all).await;
    let small = ClientOptions {
        max_push_changes: 4,
        ..Default::default()
    };
    let mut writers = Vec::new();
    for name in names {
        writers.push(setup.phone(name, small.clone()).await);
    }
    let mut puller = setup
        .phone(
            "puller",
            ClientOptions {
                max_pull_bytes: 2048,
                ..Default::default()
            },
        )
        .await;
    let writing = Cell::new(names.len());
    let pull = async {
        let mut pulls = 0;
        while writing.get() > 0 {
            pulls += sync(&mut puller, &setup.http, setup.addr).await.round_trips;
        }
        pulls
    };
    let pulls = {
        let [a, b, c, d] = &mut writers[..] else {
            unreachable!()
        };
        let ((), (), (), (), pulls) = tokio::join!(
            write(a, names[0], &setup, &writing),
            write(b, names[1], &setup, &writing),
            write(c, names[2], &setup, &writing),
            write(d, names[3], &setup, &writing),
            pull
        );
        pulls
    };
    eprintln!("the puller made {pulls} requests while the others pushed");
    // Once more for everyone, after the last push.
    sync(&mut puller, &setup.http, setup.addr).await;
    for phone in writers.iter_mut() {
        sync(phone, &setup.http, setup.addr).await;
    }
    let cluster = setup.deployment.cluster.as_ref().unwrap();
    for instance in [setup.deployment.server.addr, cluster.second.addr] {
        assert!(
            cluster.balancer.forwarded(instance) > 50,
            "both instances took requests"
        );
    }
    let mut phones: Vec<&Phone> = writers.iter().collect();
    phones.push(&puller);
    assert_eq!(assert_converged(&setup, &phones), names.len() * 8 * 10 * 2);
}
