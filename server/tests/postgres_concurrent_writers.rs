//! Several writers on one PostgreSQL database, as several server instances would be: two
//! `PostgresStorage` values share a database, many threads push changes of different records
//! through both at once, and another thread pulls with a cursor all the while. The puller must
//! see every accepted change exactly once: an entry that commits after a later-numbered one was
//! pulled would be skipped for good if log numbers were not taken in commit order.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use fieldsync_core::generator::minimal_household;
use fieldsync_core::record::decode_change;
use fieldsync_core::{RecordDoc, RecordType};
use fieldsync_server::scope::{Cursor, Scope};
use fieldsync_server::storage::postgres::{scratch_database, PostgresOptions, PostgresStorage};
use fieldsync_server::storage::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use uuid::Uuid;

const WRITERS: usize = 6;
const RECORDS_PER_WRITER: usize = 12;
const EDITS_PER_RECORD: usize = 3;

#[test]
fn a_cursor_pulling_during_concurrent_writes_of_two_instances_sees_every_change_once() {
    let url = scratch_database(&common::test_postgres()).unwrap();
    let instances: Vec<Arc<PostgresStorage>> = (0..2)
        .map(|_| Arc::new(PostgresStorage::open(&PostgresOptions::new(&url)).unwrap()))
        .collect();
    assert_eq!(instances[0].server_id(), instances[1].server_id());

    let accepted: Arc<Mutex<BTreeSet<[u8; 32]>>> = Arc::default();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let storage = instances[1].clone();
        let done = done.clone();
        std::thread::spawn(move || {
            let mut cursor = Cursor::default();
            let mut seen: BTreeMap<[u8; 32], usize> = BTreeMap::new();
            let puller = Uuid::now_v7();
            loop {
                // Read `done` before pulling: a pull that starts after the writers finished
                // and finds nothing more means the log has been read to its end.
                let finished = done.load(Ordering::SeqCst);
                let page = fieldsync_server::sync::pull(
                    storage.as_ref(),
                    &Scope::everything(),
                    cursor.clone(),
                    puller,
                    1 << 20,
                )
                .unwrap();
                for change in &page.changes {
                    let hash = decode_change(&change.bytes).unwrap().hash().0;
                    *seen.entry(hash).or_default() += 1;
                }
                cursor = page.cursor;
                if finished && !page.more {
                    return seen;
                }
            }
        })
    };

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let instances = instances.clone();
            let accepted = accepted.clone();
            std::thread::spawn(move || {
                let device = Uuid::now_v7();
                for r in 0..RECORDS_PER_WRITER {
                    let storage = &instances[(w + r) % 2];
                    let id = Uuid::now_v7();
                    let fields = minimal_household("62.610.01", &format!("Hộ {w} {r}"));
                    let (mut doc, created) =
                        RecordDoc::create(id, RecordType::Household, &fields, Uuid::new_v4())
                            .unwrap();
                    storage
                        .ingest_trusted(device, &[(id, created.bytes.clone())])
                        .unwrap();
                    accepted.lock().unwrap().insert(created.hash.0);
                    for e in 0..EDITS_PER_RECORD {
                        let storage = &instances[(w + r + e + 1) % 2];
                        let edit = doc
                            .set_field("village", &format!("Thôn {e}").into())
                            .unwrap()
                            .unwrap();
                        storage
                            .ingest_trusted(device, &[(id, edit.bytes.clone())])
                            .unwrap();
                        accepted.lock().unwrap().insert(edit.hash.0);
                    }
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    done.store(true, Ordering::SeqCst);
    let seen = reader.join().unwrap();

    let accepted = accepted.lock().unwrap().clone();
    assert_eq!(
        accepted.len(),
        WRITERS * RECORDS_PER_WRITER * (1 + EDITS_PER_RECORD)
    );
    let missed = accepted.iter().filter(|h| !seen.contains_key(*h)).count();
    let doubled = seen.values().filter(|n| **n > 1).count();
    assert_eq!(
        (missed, doubled),
        (0, 0),
        "the puller missed {missed} accepted changes and saw {doubled} more than once"
    );
    assert_eq!(seen.len(), accepted.len(), "nothing but accepted changes");
    assert_eq!(instances[0].stats().unwrap().changes, accepted.len() as u64);
}
