//! Restoring a PostgreSQL database from a `pg_dump` taken while the server ran: the restored
//! copy gets a new identity (`PostgresStorage::new_identity`, what `admin new-identity`
//! runs), so a phone that synced after the dump notices the restore and gives back the
//! changes the dump lacks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{World, NGOC_LINH};
use fieldsync_server::storage::postgres::{scratch_database, PostgresOptions, PostgresStorage};
use fieldsync_server::storage::prelude::*;
use fieldsync_server::storage::AccountUpdate;
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

#[test]
fn what_keeps_people_out_is_kept_from_the_replaced_database() {
    let server = common::test_postgres();
    let url = scratch_database(&server).unwrap();
    let world = World::on(Box::new(open(&url)));
    for name in ["lan", "hoa", "mai"] {
        world.user(name, &[NGOC_LINH], false);
    }
    let lan = world.phone("lan");
    let hoa = world.phone("hoa");
    world.phone("mai");
    let dump = world.dir.path().join("fieldsync.dump");
    run(Command::new(tool("pg_dump"))
        .args(["--format=custom", "--file"])
        .arg(&dump)
        .arg(&url));

    // After the dump: Lan's phone is lost and revoked, Hoa changes her password (which ends
    // her phone's token), Mai leaves and her account is disabled.
    world.storage.revoke_device(lan.caller.device.id).unwrap();
    world.storage.set_password("hoa", "new-hash", None).unwrap();
    let disable = AccountUpdate {
        disabled: Some(true),
        ..AccountUpdate::default()
    };
    world.storage.update_user("mai", &disable).unwrap();

    let restored = scratch_database(&server).unwrap();
    run(Command::new(tool("pg_restore"))
        .args(["--no-owner", "--exit-on-error", "--dbname"])
        .arg(&restored)
        .arg(&dump));
    let replaced = open(&url).keep_out().unwrap();
    let (_, carried) = open(&restored).new_identity_keeping(&replaced).unwrap();
    assert_eq!(carried.passwords, 1);
    assert_eq!(carried.disabled_accounts, 1);
    // Lan's phone, and Mai's phone revoked with her account.
    assert_eq!(carried.revoked_devices, 2);
    assert!(carried.ended_tokens >= 1, "{carried:?}");

    let after = open(&restored);
    let revoked: Vec<_> = after
        .list_devices()
        .unwrap()
        .into_iter()
        .filter(|d| d.revoked)
        .map(|d| d.username)
        .collect();
    assert_eq!(revoked.len(), 2);
    assert!(revoked.contains(&"lan".to_owned()) && revoked.contains(&"mai".to_owned()));
    assert_eq!(after.user_by_name("hoa").unwrap().unwrap().1, "new-hash");
    assert!(after.user_by_name("mai").unwrap().unwrap().0.disabled);
    // Hoa's phone token ended with her password change, in the restored database too.
    let token_ended = after.keep_out().unwrap();
    let hoa_device = token_ended
        .devices
        .iter()
        .find(|d| d.id == hoa.caller.device.id.as_bytes())
        .unwrap();
    assert!(hoa_device.expires_ms.is_some());
}
