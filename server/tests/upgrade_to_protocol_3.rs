//! Upgrading to protocol 3 (signed changes): a phone's store from protocol 2, with edits it has
//! not sent yet, gets its key, enrols again naming its old actor, and its old edits are taken as
//! its own; a server database from before signed changes gives every stored change a receipt,
//! and phones pull from it and give its changes back as before.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod common;

use common::*;
use fieldsync_core::model::RecordType;
use fieldsync_core::protocol::{ClientOptions, SyncClient};
use fieldsync_core::record::actor_for_key;
use fieldsync_core::{RecordDoc, Store};
use fieldsync_server::accounts;
use fieldsync_server::storage::prelude::*;
use fieldsync_server::storage::sqlite::SqliteStorage;
use fieldsync_server::storage::DeviceKeys;
use rusqlite::params;
use uuid::Uuid;

/// The secret a protocol 2 store kept (its actor was derived from it).
const V2_SECRET: [u8; 32] = [0x2a; 32];

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A store file as protocol 2 left it (schema 3): its actor derived from a secret, and a
/// household it created and never sent.
fn protocol_2_store(path: &std::path::Path) -> (Uuid, Uuid) {
    drop(Store::open(path).unwrap());
    let old_actor = actor_for_key(&V2_SECRET);
    let id = Uuid::now_v7();
    let (_, creation) = RecordDoc::create(
        id,
        RecordType::Household,
        &household(NGOC_LINH, "Y Cũ"),
        old_actor,
    )
    .unwrap();
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(&format!(
        "DROP TABLE receipts; DROP TABLE relay;
         DELETE FROM meta WHERE key = 'signing_key';
         INSERT INTO meta (key, value) VALUES ('actor_key', '{}');
         UPDATE meta SET value = '{old_actor}' WHERE key = 'device_id';
         PRAGMA user_version = 3;",
        hex(&V2_SECRET)
    ))
    .unwrap();
    conn.execute("INSERT INTO records (id) VALUES (?1)", [id.as_bytes()])
        .unwrap();
    conn.execute(
        "INSERT INTO changes (record_id, hash, bytes, local) VALUES (?1, ?2, ?3, 1)",
        params![id.as_bytes(), &creation.hash.0[..], creation.bytes],
    )
    .unwrap();
    (id, old_actor)
}

#[test]
fn a_protocol_2_phone_keeps_its_unsent_edits_its_own() {
    let world = World::new();
    world.user("lan", &[NGOC_LINH], false);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phone.sqlite");
    let (id, old_actor) = protocol_2_store(&path);

    let store = Store::open(&path).unwrap();
    assert_ne!(
        store.device_id(),
        old_actor,
        "a new actor, from the new key"
    );
    assert!(store.own_actors().contains(&old_actor));
    assert_eq!(store.unacked_count().unwrap(), 1);
    let shown = store.enrolment("lan");
    assert_eq!(shown.legacy_actor_keys, vec![V2_SECRET]);
    // Opening again changes nothing: the same key.
    let key = store.public_key();
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.public_key(), key);

    let keys = DeviceKeys::verified(&store.enrolment("lan"), "lan").unwrap();
    let (_, token, _) =
        accounts::enrol(&world.storage, "lan", "mật khẩu dài", "phone", Some(&keys)).unwrap();
    let caller = accounts::authorise(&world.storage, &token)
        .unwrap()
        .unwrap();
    let mut phone = Phone {
        store,
        caller,
        client: SyncClient::new(ClientOptions::default()),
        round_trips: 0,
    };
    phone
        .store
        .set_field(id, "village", &"Làng Mới".into())
        .unwrap();
    let outcomes = world.sync(&mut phone);
    assert_eq!(outcomes.iter().map(|o| o.acked).sum::<usize>(), 2);
    assert!(outcomes.iter().all(|o| o.rejected.is_empty()));
    assert_eq!(phone.store.unacked_count().unwrap(), 0);
    let merged = world.storage.merged_record(id).unwrap().unwrap();
    assert_eq!(merged.view["fields"]["village"], "Làng Mới");
}

#[test]
fn a_database_from_before_signed_changes_receipts_every_change() {
    let world = World::new();
    world.user("lan", &[NGOC_LINH], false);
    world.user("hoa", &[NGOC_LINH], false);
    let mut lan = world.phone("lan");
    let h = lan.household(NGOC_LINH, "Y Blơ");
    world.sync(&mut lan);
    let path = world.dir.path().join("server.sqlite");
    let conn = rusqlite::Connection::open(&path).unwrap();
    // What version 6 had: no receipts, no signing key.
    conn.execute_batch(
        "DROP TABLE expired;
         ALTER TABLE actors DROP COLUMN public_key; ALTER TABLE changes DROP COLUMN receipt;
         ALTER TABLE changes DROP COLUMN author_signature; ALTER TABLE held DROP COLUMN signature;
         ALTER TABLE held DROP COLUMN vouched; DELETE FROM meta WHERE key = 'signing_key';
         ALTER TABLE users DROP COLUMN full_name; ALTER TABLE users DROP COLUMN phone;
         ALTER TABLE merged DROP COLUMN village;
         ALTER TABLE devices DROP COLUMN enrolled_ms; ALTER TABLE devices DROP COLUMN last_sync_ms;
         ALTER TABLE devices DROP COLUMN changes_sent; DROP TABLE record_origin;
         DROP INDEX dup_pairs_by_score; ALTER TABLE dup_pairs DROP COLUMN score;
         PRAGMA user_version = 6;",
    )
    .unwrap();
    drop(conn);
    let upgraded = SqliteStorage::open(&path).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let unreceipted: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM changes WHERE length(receipt) IS NOT 64",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(unreceipted, 0);
    drop(upgraded);
    // Phones enrolled before the upgrade have no keys in it: they enrol again; a new phone pulls
    // the old change with its receipt.
    let world = World {
        dir: world.dir,
        storage: TestStorage::new(SqliteStorage::open(&path).unwrap()),
    };
    let mut hoa = world.phone("hoa");
    world.sync(&mut hoa);
    let change = hoa.store.doc(h).unwrap().changes().remove(0).hash().0;
    assert!(hoa.store.receipt(&change).unwrap().is_some());
}
