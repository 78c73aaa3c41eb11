//! Who wrote what: the person and device behind each Automerge actor, and a record's history
//! change by change, with what each change wrote and when the server received it.

use super::uuid_col;
use crate::storage::{Author, HistoryEntry, HistoryOp, StorageError, StorageResult};
use automerge::legacy::{Key, OpType};
use fieldsync_core::record::decode_change;
use rusqlite::{Connection, OptionalExtension};
use std::collections::BTreeMap;
use uuid::Uuid;

/// The person and device an actor (bytes) is bound to.
fn author(conn: &Connection, actor: &[u8]) -> StorageResult<Author> {
    let row: Option<(Vec<u8>, String, String)> = conn
        .query_row(
            "SELECT d.id, d.name, u.username FROM actors a
             JOIN devices d ON d.id = a.device_id JOIN users u ON u.id = d.user_id
             WHERE a.actor = ?1",
            [actor],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    Ok(match row {
        Some((device, name, username)) => Author {
            username: Some(username),
            device_name: Some(name),
            device_id: Some(uuid_col(device)?),
        },
        None => Author::default(),
    })
}

/// Authors of actors written as UUID strings (as conflicts show them).
pub fn authors(conn: &Connection, actors: &[String]) -> StorageResult<BTreeMap<String, Author>> {
    let mut out = BTreeMap::new();
    for actor in actors {
        let author = match Uuid::parse_str(actor) {
            Ok(id) => author(conn, id.as_bytes())?,
            Err(_) => Author::default(),
        };
        out.insert(actor.clone(), author);
    }
    Ok(out)
}

/// Every change of `record`, oldest first; each key a change wrote appears once, with the value
/// it left (a change that only deleted the losing values of a conflict shows the value kept).
pub fn history(conn: &Connection, record: Uuid) -> StorageResult<Vec<HistoryEntry>> {
    let doc = super::sync_store::read_doc(conn, record)?;
    let rows: Vec<(Vec<u8>, i64)> = {
        let mut stmt = conn
            .prepare("SELECT bytes, received_ms FROM changes WHERE record_id = ?1 ORDER BY seq")?;
        let rows = stmt.query_map([record.as_bytes()], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut cache: BTreeMap<Vec<u8>, Author> = BTreeMap::new();
    let mut out = Vec::with_capacity(rows.len());
    for (bytes, received_ms) in rows {
        let change = decode_change(&bytes)
            .map_err(|e| StorageError::Corrupt(format!("stored change: {e}")))?;
        let actor = change.actor_id().to_bytes().to_vec();
        let author = match cache.get(&actor) {
            Some(a) => a.clone(),
            None => {
                let a = author(conn, &actor)?;
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
                    doc.as_ref().and_then(|d| d.value_after(&key, hash))
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
