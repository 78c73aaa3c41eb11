//! Who wrote what on PostgreSQL: the person and device behind each Automerge actor, and the
//! changes of a record's history (told by `crate::history`).

use super::db::Db;
use super::{id_bytes, uuid_col};
use crate::storage::{Author, HistoryEntry, StorageResult};
use fieldsync_core::RecordDoc;
use uuid::Uuid;

/// The person and device an actor (bytes) is bound to.
pub fn author(db: &Db<'_>, actor: &[u8]) -> StorageResult<Author> {
    let Some(r) = db.opt(
        "SELECT d.id, d.name, u.username, u.role, d.kind, u.full_name FROM actors a
         JOIN devices d ON d.id = a.device_id JOIN users u ON u.id = d.user_id
         WHERE a.actor = $1",
        &[&actor],
    )?
    else {
        return Ok(Author::default());
    };
    Ok(Author {
        username: Some(r.try_get(2)?),
        full_name: r.try_get(5)?,
        device_name: Some(r.try_get(1)?),
        device_id: Some(uuid_col(r.try_get(0)?)?),
        role: Some(r.try_get(3)?),
        device_kind: Some(r.try_get(4)?),
    })
}

pub fn history(db: &Db<'_>, record: Uuid) -> StorageResult<Vec<HistoryEntry>> {
    let id = id_bytes(record);
    let doc = match db.opt("SELECT snapshot FROM records WHERE id = $1", &[&id])? {
        Some(r) => {
            let bytes: Vec<u8> = r.try_get(0)?;
            Some(RecordDoc::load(record, &bytes, Uuid::nil())?)
        }
        None => None,
    };
    let rows = db
        .query(
            "SELECT bytes, received_ms FROM changes WHERE record_id = $1 ORDER BY seq",
            &[&id],
        )?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<StorageResult<Vec<(Vec<u8>, i64)>>>()?;
    crate::history::history(doc.as_ref(), rows, |actor| author(db, actor))
}
