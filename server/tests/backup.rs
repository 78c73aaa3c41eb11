//! An online backup is a complete, openable copy of the server database.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

use fieldsync_core::generator::{generate, GenConfig};
use fieldsync_core::RecordDoc;
use fieldsync_server::seed::SEED_DEVICE;
use fieldsync_server::storage::prelude::*;
use fieldsync_server::storage::sqlite::SqliteStorage;

#[test]
fn backup_copies_every_record_and_change() {
    let dir = tempfile::tempdir().unwrap();
    let storage = SqliteStorage::open(dir.path().join("live.sqlite")).unwrap();
    let records = generate(&GenConfig {
        households: 10,
        ..Default::default()
    });
    let changes: Vec<_> = records
        .iter()
        .map(|r| {
            (
                r.id,
                RecordDoc::create(r.id, r.record_type, &r.fields, SEED_DEVICE)
                    .unwrap()
                    .1
                    .bytes,
            )
        })
        .collect();
    storage.ingest_trusted(SEED_DEVICE, &changes).unwrap();

    let copy_path = dir.path().join("backup.sqlite");
    storage.backup(&copy_path).unwrap();
    let copy = SqliteStorage::open(&copy_path).unwrap();
    let (live, backed_up) = (storage.stats().unwrap(), copy.stats().unwrap());
    assert_eq!(backed_up.records, records.len() as u64);
    assert_eq!(
        (live.records, live.changes, live.log_entries),
        (backed_up.records, backed_up.changes, backed_up.log_entries)
    );
    let sample = records[3].id;
    assert_eq!(
        copy.merged_record(sample).unwrap().map(|r| r.view),
        storage.merged_record(sample).unwrap().map(|r| r.view)
    );
}
