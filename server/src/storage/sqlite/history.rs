//! Who wrote what on SQLite: the person and device behind each Automerge actor, and the
//! changes of a record's history (told by `crate::history`).

use super::uuid_col;
use crate::storage::{Author, HistoryEntry, StorageResult};
use rusqlite::{Connection, OptionalExtension};
use std::collections::BTreeMap;
use uuid::Uuid;

/// The person and device an actor (bytes) is bound to.
fn author(conn: &Connection, actor: &[u8]) -> StorageResult<Author> {
    type Row = (Vec<u8>, String, String, String, String, Option<String>);
    let row: Option<Row> = conn
        .query_row(
            "SELECT d.id, d.name, u.username, u.role, d.kind, u.full_name FROM actors a
             JOIN devices d ON d.id = a.device_id JOIN users u ON u.id = d.user_id
             WHERE a.actor = ?1",
            [actor],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            },
        )
        .optional()?;
    Ok(match row {
        Some((device, name, username, role, kind, full_name)) => Author {
            username: Some(username),
            full_name,
            device_name: Some(name),
            device_id: Some(uuid_col(device)?),
            role: Some(role),
            device_kind: Some(kind),
        },
        None => Author::default(),
    })
}

/// Authors of actors written as UUID strings (as conflicts show them).
pub fn authors(conn: &Connection, actors: &[String]) -> StorageResult<BTreeMap<String, Author>> {
    crate::history::authors(actors, |actor| author(conn, actor))
}

/// Every change of `record`, oldest first, as [`crate::history::history`] tells them.
pub fn history(conn: &Connection, record: Uuid) -> StorageResult<Vec<HistoryEntry>> {
    let doc = super::sync_store::read_doc(conn, record)?;
    let rows: Vec<(Vec<u8>, i64)> = {
        let mut stmt = conn
            .prepare("SELECT bytes, received_ms FROM changes WHERE record_id = ?1 ORDER BY seq")?;
        let rows = stmt.query_map([record.as_bytes()], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    crate::history::history(doc.as_ref(), rows, |actor| author(conn, actor))
}
