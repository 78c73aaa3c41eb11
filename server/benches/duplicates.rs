//! Duplicate detection benchmark: stores 20,000 generated persons (and their households) the
//! way syncs do, then prints the time detection adds to that ingest, the time to rebuild
//! detection over every record at once, and the time to list the queue.
//! Run: `cargo bench -p fieldsync-server --bench duplicates`; FIELDSYNC_BENCH_PERSONS changes
//! the number of persons.

use fieldsync_core::generator::{generate, GenConfig};
use fieldsync_core::{RecordDoc, RecordType};
use fieldsync_server::scope::Scope;
use fieldsync_server::storage::prelude::*;
use fieldsync_server::storage::sqlite::SqliteStorage;
use fieldsync_server::storage::{DuplicateQuery, StorageError};
use std::time::Instant;
use uuid::Uuid;

const WRITER: Uuid = Uuid::from_u128(0xbe7c);

fn main() -> Result<(), StorageError> {
    let persons: usize = std::env::var("FIELDSYNC_BENCH_PERSONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    // About 3.5 persons per generated household.
    let records = generate(&GenConfig {
        seed: 20,
        households: persons * 2 / 7,
        groups_per_100_households: 0,
        activities_per_group: 0,
        cases_per_100_households: 0,
        ..GenConfig::default()
    });
    let n_persons = records
        .iter()
        .filter(|r| r.record_type == RecordType::Person)
        .count();
    let changes: Vec<(Uuid, Vec<u8>)> = records
        .iter()
        .map(|r| {
            let (_, change) = RecordDoc::create(r.id, r.record_type, &r.fields, WRITER)?;
            Ok((r.id, change.bytes))
        })
        .collect::<Result<_, fieldsync_core::CoreError>>()?;
    let dir = tempfile::tempdir().map_err(|e| StorageError::Io(e.to_string()))?;
    let storage = SqliteStorage::open(dir.path().join("bench.sqlite"))?;

    let started = Instant::now();
    for batch in changes.chunks(500) {
        storage.ingest_trusted(WRITER, batch)?;
    }
    let ingest = started.elapsed();

    let started = Instant::now();
    let open = storage.rebuild_duplicates()?;
    let rebuild = started.elapsed();

    let started = Instant::now();
    let page = storage.list_duplicates(
        &Scope::everything(),
        &DuplicateQuery {
            limit: 20,
            ..Default::default()
        },
    )?;
    let list = started.elapsed();

    println!(
        "records:           {} ({} persons, {} households) in {} communes",
        records.len(),
        n_persons,
        records.len() - n_persons,
        records
            .iter()
            .map(|r| r.commune())
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    );
    println!(
        "ingest:            {:.2} s with detection kept up to date ({:.0} µs per record)",
        ingest.as_secs_f64(),
        ingest.as_micros() as f64 / records.len() as f64
    );
    println!(
        "detection rebuild: {:.0} ms over every record ({} open candidate pairs)",
        rebuild.as_secs_f64() * 1000.0,
        open
    );
    println!(
        "queue first page:  {:.1} ms ({} pairs in all)",
        list.as_secs_f64() * 1000.0,
        page.total
    );
    Ok(())
}
