//! End to end: a real server over TLS on 127.0.0.1, phones syncing through a proxy that cuts
//! connections at random byte offsets and adds delay.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod common;

use common::*;
use fieldsync_core::generator::Rng;
use fieldsync_core::model::{RecordType, Value};
use fieldsync_core::protocol::ClientOptions;
use fieldsync_tests::phone::{call_json, Phone};
use fieldsync_tests::proxy::{FaultProfile, FaultyProxy};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

fn fields(pairs: &[(&str, &str)]) -> BTreeMap<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
        .collect()
}

/// Small batches so that a sync takes many requests, each of which may be cut.
fn small_batches() -> ClientOptions {
    ClientOptions {
        max_push_bytes: 2048,
        max_pull_bytes: 2048,
        ..ClientOptions::default()
    }
}

/// Every change hash in a phone's store, read straight from its SQLite file.
fn change_hashes(phone: &Phone, ids: &[Uuid]) -> BTreeSet<[u8; 32]> {
    ids.iter()
        .flat_map(|id| {
            phone
                .store
                .doc(*id)
                .unwrap()
                .changes()
                .into_iter()
                .map(|c| c.hash().0)
        })
        .collect()
}

const NAMES: &[&str] = &[
    "Y Blơ",
    "Nguyễn Thị Hoà",
    "Ksor H'Nhi",
    "Đinh Thị Thúy",
    "A Hyơk",
];
const VILLAGES: &[&str] = &["Làng Le", "Thôn Đăk Mế", "Thôn 2", "Làng Kon Klor"];

fn random_edit(
    phone: &mut Phone,
    rng: &mut Rng,
    households: &[Uuid],
    persons: &[Uuid],
    group: Uuid,
) {
    let store = &mut phone.store;
    match rng.below(7) {
        0 => store.set_field(
            *rng.pick(households),
            "head_name",
            &(*rng.pick(NAMES)).into(),
        ),
        1 => store.set_field(
            *rng.pick(households),
            "village",
            &(*rng.pick(VILLAGES)).into(),
        ),
        2 => store.set_field(
            *rng.pick(households),
            "poverty",
            &(*rng.pick(&["poor", "near_poor", "none"])).into(),
        ),
        3 => store.set_field(*rng.pick(persons), "full_name", &(*rng.pick(NAMES)).into()),
        4 => store.set_field(
            *rng.pick(persons),
            "phone",
            &format!("09{:08}", rng.below(100_000_000)).into(),
        ),
        5 => store.add_member(group, "members", &rng.pick(persons).to_string()),
        _ => store.remove_member(group, "members", &rng.pick(persons).to_string()),
    }
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn phones_converge_through_a_faulty_network_and_scope_and_revocation_hold() {
    let env = Env::start().await;
    for name in ["a", "b", "c"] {
        env.user(name, &[NGOC_LINH], false).await;
    }
    env.user("morai", &[MO_RAI], false).await;
    let proxy = FaultyProxy::start(env.addr(), FaultProfile::flaky(8))
        .await
        .unwrap();
    let mut phones = vec![
        env.phone("a", small_batches()).await,
        env.phone("b", small_batches()).await,
        env.phone("c", small_batches()).await,
    ];
    let mut outsider = env.phone("morai", small_batches()).await;

    // Phone a registers households with members and a savings group.
    let mut households = Vec::new();
    let mut persons = Vec::new();
    for i in 0..4 {
        let h = phones[0]
            .store
            .create(
                RecordType::Household,
                &minimal_household(NGOC_LINH, NAMES[i]),
            )
            .unwrap();
        households.push(h);
        for j in 0..2 {
            let hid = h.to_string();
            let p = phones[0]
                .store
                .create(
                    RecordType::Person,
                    &fields(&[
                        ("commune", NGOC_LINH),
                        ("household_id", &hid),
                        ("full_name", NAMES[(i + j) % NAMES.len()]),
                        ("sex", "female"),
                        ("birth", "1994"),
                        ("ethnicity", "14"),
                    ]),
                )
                .unwrap();
            persons.push(p);
        }
    }
    let group = phones[0]
        .store
        .create(
            RecordType::Group,
            &fields(&[
                ("commune", NGOC_LINH),
                ("kind", "savings_loan_group"),
                ("name", "Tổ TKVV Làng Le"),
            ]),
        )
        .unwrap();
    let mut ids: Vec<Uuid> = households.iter().chain(persons.iter()).copied().collect();
    ids.push(group);

    let mut cut = 0;
    for phone in phones.iter_mut() {
        cut += phone.sync(&env.http, proxy.addr(), 500).await.unwrap().cut;
    }
    // Offline edits on every phone, then syncs in random order through the faulty network.
    let mut rng = Rng::new(2025);
    for _round in 0..4 {
        for phone in phones.iter_mut() {
            for _ in 0..6 {
                random_edit(phone, &mut rng, &households, &persons, group);
            }
        }
        let mut order = vec![0, 1, 2, 0, 1, 2];
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i + 1));
        }
        for i in order {
            cut += phones[i]
                .sync(&env.http, proxy.addr(), 500)
                .await
                .unwrap()
                .cut;
        }
    }
    // Settle: everyone syncs once more after everyone has pushed.
    for phone in phones.iter_mut() {
        phone.sync(&env.http, proxy.addr(), 500).await.unwrap();
    }
    assert!(
        cut > 0,
        "the proxy cut some requests (stats {:?})",
        proxy.stats()
    );

    // Zero lost, zero duplicated: every phone holds the union of every change made anywhere.
    let union: BTreeSet<[u8; 32]> = phones.iter().flat_map(|p| change_hashes(p, &ids)).collect();
    for phone in &phones {
        assert_eq!(change_hashes(phone, &ids), union);
        assert_eq!(phone.store.unacked_count().unwrap(), 0);
    }
    let stats = env.stats().await;
    assert_eq!(
        stats["changes"].as_u64(),
        Some(union.len() as u64),
        "the server stored each change once"
    );
    assert_eq!(
        stats["log_entries"].as_u64(),
        Some(union.len() as u64),
        "and logged each once"
    );
    assert_eq!(stats["held"].as_u64(), Some(0));

    // Identical records on every phone and in the server's merged view.
    let supervisor_token = {
        call_json(&env.http, env.addr(), "POST", "/v1/admin/users", Some(&env.admin),
            &serde_json::json!({"username": "sup", "password": PASSWORD, "role": "supervisor", "areas": [NGOC_LINH]}))
            .await
            .unwrap();
        fieldsync_tests::phone::enrol(&env.http, env.addr(), "sup", PASSWORD)
            .await
            .unwrap()
    };
    for id in &ids {
        let view = phones[0].store.get(*id).unwrap();
        for phone in &phones[1..] {
            assert_eq!(phone.store.get(*id).unwrap(), view);
        }
        let merged = call_json(
            &env.http,
            env.addr(),
            "GET",
            &format!("/v1/records/{id}?include=view"),
            Some(&supervisor_token),
            &serde_json::Value::Null,
        )
        .await
        .unwrap();
        assert_eq!(merged["view"], serde_json::to_value(&view).unwrap());
    }

    // The phone of another commune never receives these records.
    outsider.sync(&env.http, proxy.addr(), 500).await.unwrap();
    assert_eq!(outsider.store.count(&Default::default()).unwrap(), 0);

    // A revoked device gets 401 and nothing, and changes nothing.
    let devices = call_json(
        &env.http,
        env.addr(),
        "GET",
        "/v1/admin/devices",
        Some(&env.admin),
        &serde_json::Value::Null,
    )
    .await
    .unwrap();
    let c_device = devices
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["username"] == "c")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    call_json(
        &env.http,
        env.addr(),
        "POST",
        &format!("/v1/admin/devices/{c_device}/revoke"),
        Some(&env.admin),
        &serde_json::Value::Null,
    )
    .await
    .unwrap();
    phones[0]
        .store
        .set_field(households[0], "village", &"Thôn mới".into())
        .unwrap();
    phones[0].sync(&env.http, env.addr(), 50).await.unwrap();
    phones[2]
        .store
        .set_field(households[1], "village", &"Thôn của c".into())
        .unwrap();
    let before = env.stats().await;
    let err = phones[2].sync(&env.http, env.addr(), 50).await.unwrap_err();
    assert!(
        matches!(
            err,
            fieldsync_tests::phone::PhoneError::Status { status: 401, .. }
        ),
        "{err}"
    );
    assert_eq!(
        env.stats().await,
        before,
        "the revoked device changed nothing"
    );
    assert_ne!(
        phones[2].store.get(households[0]).unwrap().fields["village"],
        Value::from("Thôn mới"),
        "and received nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_server_mid_ingest_loses_no_acknowledged_change() {
    if fieldsync_tests::deployment::skip_unless_sqlite("it watches the SQLite file to kill the one server mid-ingest; on PostgreSQL, tests/tests/postgres_instances.rs kills an instance mid-ingest") {
        return;
    }
    let env = Env::start().await;
    env.user("a", &[NGOC_LINH], false).await;
    let mut phone = env
        .phone(
            "a",
            ClientOptions {
                max_push_bytes: 4096,
                max_pull_bytes: 4096,
                ..ClientOptions::default()
            },
        )
        .await;
    for i in 0..400 {
        phone
            .store
            .create(
                RecordType::Household,
                &minimal_household(NGOC_LINH, &format!("Y Hơ {i}")),
            )
            .unwrap();
    }
    let total = phone.store.unacked_count().unwrap();
    let addr = env.addr();
    let phone_db = phone.path.clone();
    let http = env.http.clone();
    let db = env.server.database_path();

    // Sync in the background; kill the server once some batches are stored.
    let sync = tokio::spawn(async move {
        let result = phone.sync(&http, addr, 10_000).await;
        (phone, result)
    });
    let mut env = env;
    let mut killed = false;
    for _ in 0..1000 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        let stored: i64 = rusqlite::Connection::open(&db)
            .and_then(|c| c.query_row("SELECT COUNT(*) FROM changes", [], |r| r.get(0)))
            .unwrap_or(0);
        if stored > 60 {
            env.server.kill();
            killed = true;
            break;
        }
    }
    assert!(killed, "the server was killed while ingesting");
    // What the phone holds as acknowledged right after the kill must all be on disk.
    let acked_at_kill = acked_hashes(&phone_db);
    let data_dir = env.server.data_dir.clone();
    let server = rusqlite::Connection::open(&db).unwrap();
    for hash in &acked_at_kill {
        let found: i64 = server
            .query_row(
                "SELECT COUNT(*) FROM changes WHERE hash = ?1",
                [hash],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(found, 1, "an acknowledged change survived SIGKILL");
    }
    drop(server);

    // Restart on the same port; the phone's retries carry on and finish.
    env.server =
        fieldsync_tests::server::ServerProcess::start(&data_dir, &addr.to_string()).unwrap();
    let (phone, result) = sync.await.unwrap();
    result.unwrap();
    assert_eq!(phone.store.unacked_count().unwrap(), 0);
    let acked = acked_hashes(&phone.path);
    assert_eq!(acked.len() as u64, total);
    let server = rusqlite::Connection::open(&db).unwrap();
    let stored: i64 = server
        .query_row("SELECT COUNT(*) FROM changes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored as u64, total, "every change stored exactly once");
}

fn acked_hashes(phone_db: &std::path::Path) -> Vec<Vec<u8>> {
    let conn = rusqlite::Connection::open(phone_db).unwrap();
    let mut stmt = conn
        .prepare("SELECT hash FROM changes WHERE local = 1 AND acked = 1")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}
