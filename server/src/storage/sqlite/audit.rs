//! The audit log: appended to by the server, read by admins, changed by nobody (triggers in
//! the schema refuse updates and deletes).

use super::uuid_col;
use crate::storage::{AuditEntry, StorageResult};
use rusqlite::{params, Connection};

pub fn append(conn: &Connection, entry: &AuditEntry) -> StorageResult<()> {
    conn.execute(
        "INSERT INTO audit (at_ms, user_id, username, device_id, action, target, detail, peer)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            entry.at_ms,
            entry.user_id,
            entry.username,
            entry.device_id.map(|d| d.as_bytes().to_vec()),
            entry.action,
            entry.target,
            entry.detail,
            entry.peer,
        ],
    )?;
    Ok(())
}

pub fn list(conn: &Connection, before: Option<i64>, limit: u32) -> StorageResult<Vec<AuditEntry>> {
    let mut stmt = conn.prepare(
        "SELECT seq, at_ms, user_id, username, device_id, action, target, detail, peer FROM audit
         WHERE ?1 IS NULL OR seq < ?1 ORDER BY seq DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![before, limit], |r| {
        Ok((
            AuditEntry {
                seq: r.get(0)?,
                at_ms: r.get(1)?,
                user_id: r.get(2)?,
                username: r.get(3)?,
                device_id: None,
                action: r.get(5)?,
                target: r.get(6)?,
                detail: r.get(7)?,
                peer: r.get(8)?,
            },
            r.get::<_, Option<Vec<u8>>>(4)?,
        ))
    })?;
    rows.map(|row| {
        let (mut entry, device) = row?;
        entry.device_id = device.map(uuid_col).transpose()?;
        Ok(entry)
    })
    .collect()
}
