//! Adversarial: restores in a hard life. Phones sync through a network that cuts connections
//! while the server is SIGKILLed again and again; a supervisor edits on the server; the database
//! is restored from one backup, from the same backup again, and then from another. Every restore
//! puts a fresh identity in place, read back from the restored file; at the end the server holds
//! every change any phone ever saw acknowledged or received, nothing is held or left unsent, and
//! every phone agrees with the server.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod adversarial_support;
mod common;

use adversarial_support::*;
use common::*;
use fieldsync_tests::deployment::skip_unless_sqlite;
use fieldsync_tests::phone::Phone;
use fieldsync_tests::proxy::{FaultProfile, FaultyProxy};
use fieldsync_tests::server::ServerProcess;
use serde_json::json;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use uuid::Uuid;

/// Why this file runs on SQLite only.
const SQLITE_BACKUP: &str = "it backs up and restores the SQLite file (`admin backup`, \
     `admin restore`) under the one server; PostgreSQL's backups (pg_dump) are tested in \
     server/tests/postgres_restore.rs";

/// The identity a database file holds.
fn identity(file: &Path) -> Uuid {
    let conn =
        rusqlite::Connection::open_with_flags(file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let id: String = conn
        .query_row("SELECT value FROM meta WHERE key = 'server_id'", [], |r| {
            r.get(0)
        })
        .unwrap();
    Uuid::parse_str(&id).unwrap()
}

/// A small deterministic generator, so that a failing run can be replayed.
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// A phone's own work for one phase: a new household now and then, edits of records it holds.
fn work(phone: &mut Phone, dice: &mut Dice, phase: usize, name: &str) {
    let ids: Vec<Uuid> = phone
        .store
        .list(&Default::default())
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    if ids.is_empty() || dice.below(3) == 0 {
        household(phone, &format!("Y {name} {phase}"));
    }
    for i in 0..3 {
        let ids: Vec<Uuid> = phone
            .store
            .list(&Default::default())
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        let id = ids[dice.below(ids.len() as u64) as usize];
        let village = format!("Thôn {name} {phase}.{i}");
        phone
            .store
            .set_field(id, "village", &village.into())
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restoring_one_backup_twice_and_then_another_loses_nothing_any_phone_saw() {
    if skip_unless_sqlite(SQLITE_BACKUP) {
        return;
    }
    let mut env = Env::start().await;
    let addr: SocketAddr = env.addr();
    let data_dir = env.server.data_dir.clone();
    let names = ["a", "b", "c"];
    for name in names {
        env.user(name, &[NGOC_LINH], false).await;
    }
    let sup = supervisor(&env, "sup", &[NGOC_LINH], false).await;
    let mut phones = Vec::new();
    for name in names {
        phones.push(Some(env.phone(name, Default::default()).await));
    }
    let proxy = FaultyProxy::start(addr, FaultProfile::flaky(51))
        .await
        .unwrap();
    let mut dice = Dice(7);
    let mut seen: BTreeSet<[u8; 32]> = BTreeSet::new();
    let mut identities = BTreeSet::from([identity(&env.server.database_path())]);
    let mut backups = Vec::new();
    let (mut kills, mut restores) = (0, 0);

    for phase in 0..12 {
        // What happens between phases: backups, restores (the server stopped for them).
        match phase {
            2 | 5 => {
                let file = env.dir.path().join(format!("backup-{phase}.sqlite"));
                admin_command(&["backup"], &data_dir, "--to", &file);
                identities.insert(identity(&file));
                backups.push(file);
            }
            7 | 9 | 11 => {
                let file = if phase == 11 {
                    &backups[1]
                } else {
                    &backups[0]
                };
                env.server.kill();
                let printed = admin_command(&["restore"], &data_dir, "--from", file);
                let fresh = identity(&data_dir.join("fieldsync.sqlite"));
                assert!(
                    printed.contains(&format!("server identity is now {fresh}")),
                    "{printed}"
                );
                assert!(identities.insert(fresh), "a fresh identity: {fresh}");
                restores += 1;
                env.server = ServerProcess::start(&data_dir, &addr.to_string()).unwrap();
            }
            _ => {}
        }
        // A supervisor's edit on the server, which phones pull and may build on.
        let records: Vec<Uuid> = phones[0]
            .as_ref()
            .unwrap()
            .store
            .list(&Default::default())
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        if let Some(id) = records.get(dice.below(records.len().max(1) as u64) as usize) {
            let edit = json!({"edit": "set_field", "field": "head_name",
                              "value": format!("Giám sát {phase}")});
            let (status, body) = call(
                &env,
                "POST",
                &format!("/v1/records/{id}/edits"),
                Some(&sup),
                &edit,
            )
            .await;
            // A record a restore lost is back only once a phone has given it back.
            assert!(status == 200 || status == 404, "{status} {body}");
        }
        // The phones work and sync through the cutting proxy, all at once; the server is
        // killed in the middle of it and started again.
        let mut tasks = Vec::new();
        for (slot, name) in phones.iter_mut().zip(names) {
            let mut phone = slot.take().unwrap();
            work(&mut phone, &mut dice, phase, name);
            let http = env.http.clone();
            let to = proxy.addr();
            tasks.push(tokio::spawn(async move {
                let result = phone.sync(&http, to, 3_000).await;
                (phone, result)
            }));
        }
        tokio::time::sleep(Duration::from_millis(20 + dice.below(300))).await;
        env.server.kill();
        kills += 1;
        env.server = ServerProcess::start(&data_dir, &addr.to_string()).unwrap();
        for (slot, task) in phones.iter_mut().zip(tasks) {
            let (phone, result) = task.await.unwrap();
            result.unwrap_or_else(|e| panic!("phase {phase}: {e}"));
            // What the server acknowledged to this phone, or sent it.
            seen.extend(all_hashes(&phone.store));
            *slot = Some(phone);
        }
    }

    // Quiet at last: everyone syncs until nothing moves, without faults.
    let mut phones: Vec<Phone> = phones.into_iter().map(Option::unwrap).collect();
    for _round in 0..3 {
        for phone in &mut phones {
            phone.sync(&env.http, addr, 200).await.unwrap();
        }
    }
    let server: BTreeSet<[u8; 32]> = {
        let conn = rusqlite::Connection::open_with_flags(
            env.server.database_path(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        let mut stmt = conn.prepare("SELECT hash FROM changes").unwrap();
        stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))
            .unwrap()
            .map(|h| h.unwrap().try_into().unwrap())
            .collect()
    };
    let missing: Vec<_> = seen.difference(&server).collect();
    assert!(
        missing.is_empty(),
        "{} changes seen by phones are gone",
        missing.len()
    );
    assert_eq!(env.stats().await["held"].as_u64(), Some(0));
    for phone in &phones {
        assert_eq!(phone.store.unacked_count().unwrap(), 0);
        assert_eq!(phone.store.relay_pending().unwrap(), 0);
        assert!(phone.store.refused_edits(None).unwrap().is_empty());
        assert!(phone.store.set_aside().unwrap().is_empty());
        assert_eq!(
            all_hashes(&phone.store),
            server,
            "every phone agrees with the server"
        );
    }
    // The same values everywhere, the supervisors' view included.
    for id in phones[0]
        .store
        .list(&Default::default())
        .unwrap()
        .into_iter()
        .map(|r| r.id)
    {
        let view = phone_view(&phones[0], id);
        for phone in &phones[1..] {
            assert_eq!(phone_view(phone, id), view);
        }
        assert_eq!(merged_view(&env, &sup, id).await, (200, view));
    }
    println!(
        "{kills} kills, {restores} restores, {} changes kept, proxy {:?}",
        server.len(),
        proxy.stats()
    );
    assert_eq!(restores, 3);
}
