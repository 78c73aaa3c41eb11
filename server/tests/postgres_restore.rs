//! Restoring a PostgreSQL database from a `pg_dump` taken while the server ran: the restored
//! copy gets a new identity (`PostgresStorage::new_identity`, what `admin new-identity`
//! runs), so a phone that synced after the dump notices the restore and gives back the
//! changes the dump lacks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{World, NGOC_LINH};
use fieldsync_server::storage::postgres::{scratch_database, PostgresOptions, PostgresStorage};
use fieldsync_server::storage::prelude::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn tool(name: &str) -> PathBuf {
    match std::env::var("FIELDSYNC_PG_BIN") {
        Ok(dir) => Path::new(&dir).join(name),
        Err(_) => PathBuf::from(name),
    }
}

fn run(command: &mut Command) {
    let status = command.status().unwrap();
    assert!(status.success(), "{command:?} failed: {status}");
}

fn open(url: &str) -> PostgresStorage {
    PostgresStorage::open(&PostgresOptions::new(url)).unwrap()
}

#[test]
fn a_restored_dump_with_a_new_identity_gets_back_what_phones_synced_after_it() {
    let server = common::test_postgres();
    let url = scratch_database(&server).unwrap();
    let world = World::on(Box::new(open(&url)));
    world.user("a", &[NGOC_LINH], false);
    let mut a = world.phone("a");
    let h1 = a.household(NGOC_LINH, "Y Blơ");
    world.sync(&mut a);
    let at_dump = world.storage.stats().unwrap().changes;

    let dump = world.dir.path().join("fieldsync.dump");
    run(Command::new(tool("pg_dump"))
        .args(["--format=custom", "--file"])
        .arg(&dump)
        .arg(&url));

    // After the dump: an edit of an old record and a new record, both acknowledged.
    a.store.set_field(h1, "village", &"Làng Le".into()).unwrap();
    let h2 = a.household(NGOC_LINH, "A Hyơk");
    world.sync(&mut a);
    assert_eq!(a.store.unacked_count().unwrap(), 0);
    let before = world.storage.server_id();
    let changes_before = world.storage.stats().unwrap().changes;
    assert!(changes_before > at_dump);

    let restored = scratch_database(&server).unwrap();
    run(Command::new(tool("pg_restore"))
        .args(["--no-owner", "--exit-on-error", "--dbname"])
        .arg(&restored)
        .arg(&dump));
    assert_eq!(
        open(&restored).server_id(),
        uuid::Uuid::from_bytes(before),
        "a dump carries the identity"
    );
    open(&restored).new_identity().unwrap();
    let after = World::on(Box::new(open(&restored)));
    assert_ne!(after.storage.server_id(), before);
    assert_eq!(
        after.storage.stats().unwrap().changes,
        at_dump,
        "the dump's"
    );

    // The phone, enrolled before the dump, syncs with the restored server: it pulls again
    // and pushes back the two changes the dump lacks.
    after.sync(&mut a);
    assert_eq!(after.storage.stats().unwrap().changes, changes_before);
    for id in [h1, h2] {
        assert_eq!(
            after.storage.merged_record(id).unwrap().unwrap().view,
            world.storage.merged_record(id).unwrap().unwrap().view,
            "the restored server's record is the one before the restore"
        );
    }
}
