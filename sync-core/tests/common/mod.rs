//! Helpers shared by sync-core's integration tests.
#![allow(dead_code)]

use fieldsync_core::model::Value;
use fieldsync_core::Store;
use std::collections::BTreeMap;
use tempfile::TempDir;
use uuid::Uuid;

pub const COMMUNE: &str = "62.610.01";

pub fn fields(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

pub fn household_fields(head: &str) -> BTreeMap<String, Value> {
    fieldsync_core::generator::minimal_household(COMMUNE, head)
}

pub fn person_fields(household: Uuid, name: &str) -> BTreeMap<String, Value> {
    fields(&[
        ("commune", COMMUNE.into()),
        ("household_id", household.to_string().into()),
        ("full_name", name.into()),
        ("sex", "female".into()),
        ("birth", "1990".into()),
        ("ethnicity", "14".into()),
    ])
}

/// A store in its own temporary directory (kept alive with it).
pub fn temp_store() -> (TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path().join("store.sqlite")).expect("open store");
    (dir, store)
}

/// Every change in `from` as (record id, bytes), for delivering to another store.
pub fn all_changes(from: &Store, ids: &[Uuid]) -> Vec<(Uuid, Vec<u8>)> {
    ids.iter()
        .flat_map(|id| {
            let mut doc = from.doc(*id).expect("doc");
            doc.changes()
                .into_iter()
                .map(move |mut c| (*id, c.bytes().into_owned()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Copies every change of `ids` from `from` into `to`.
pub fn deliver(from: &Store, to: &mut Store, ids: &[Uuid]) {
    let changes = all_changes(from, ids);
    to.apply_remote(&changes).expect("apply");
}
