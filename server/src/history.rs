//! A record's history as readers see it, whatever database keeps the changes: each change with
//! who made it and, once per key, the value it left (a change that only deleted the losing
//! values of a conflict shows the value kept). Backends give the changes and the author lookup.

use crate::storage::{Author, HistoryEntry, HistoryOp, StorageError, StorageResult};
use automerge::legacy::{Key, OpType};
use fieldsync_core::record::decode_change;
use fieldsync_core::RecordDoc;
use std::collections::BTreeMap;
use uuid::Uuid;

/// The history of a record from its changes (`(bytes, received_ms)`, oldest first), its
/// current document if it has one, and `author`, who is behind an actor (bytes).
pub fn history(
    doc: Option<&RecordDoc>,
    changes: Vec<(Vec<u8>, i64)>,
    mut author: impl FnMut(&[u8]) -> StorageResult<Author>,
) -> StorageResult<Vec<HistoryEntry>> {
    let mut cache: BTreeMap<Vec<u8>, Author> = BTreeMap::new();
    let mut out = Vec::with_capacity(changes.len());
    for (bytes, received_ms) in changes {
        let change = decode_change(&bytes)
            .map_err(|e| StorageError::Corrupt(format!("stored change: {e}")))?;
        let actor = change.actor_id().to_bytes().to_vec();
        let author = match cache.get(&actor) {
            Some(a) => a.clone(),
            None => {
                let a = author(&actor)?;
                cache.insert(actor, a.clone());
                a
            }
        };
        let hash = change.hash();
        let mut written: Vec<(String, bool)> = Vec::new();
        let mut puts: BTreeMap<String, Option<fieldsync_core::Value>> = BTreeMap::new();
        for op in change.decode().operations {
            let Key::Map(key) = op.key else { continue };
            let key = key.to_string();
            if !written.iter().any(|(k, _)| *k == key) {
                written.push((key.clone(), false));
            }
            if let OpType::Put(v) = op.action {
                puts.insert(key.clone(), fieldsync_core::record::from_scalar(&v));
                if let Some(entry) = written.iter_mut().find(|(k, _)| *k == key) {
                    entry.1 = true;
                }
            }
        }
        let ops = written
            .into_iter()
            .map(|(key, put)| {
                let value = if put {
                    puts.remove(&key).flatten()
                } else {
                    doc.and_then(|d| d.value_after(&key, hash))
                };
                // Keys are shown as readers know them: `village`, `members/<id>`, `$deleted`.
                let key = key
                    .strip_prefix("f/")
                    .or_else(|| key.strip_prefix("s/"))
                    .unwrap_or(&key)
                    .to_owned();
                HistoryOp { key, value }
            })
            .collect();
        out.push(HistoryEntry {
            received_ms,
            author,
            ops,
        });
    }
    Ok(out)
}

/// Authors of actors written as UUID strings (as conflicts show them).
pub fn authors(
    actors: &[String],
    mut author: impl FnMut(&[u8]) -> StorageResult<Author>,
) -> StorageResult<BTreeMap<String, Author>> {
    let mut out = BTreeMap::new();
    for actor in actors {
        let found = match Uuid::parse_str(actor) {
            Ok(id) => author(id.as_bytes())?,
            Err(_) => Author::default(),
        };
        out.insert(actor.clone(), found);
    }
    Ok(out)
}
