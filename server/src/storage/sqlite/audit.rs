//! The audit log: appended to by the server, read by admins, changed by nobody (triggers in
//! the schema refuse updates and deletes). Entries about support cases carry `sensitive`, and
//! only readers with sensitive access are given them; from the syncs' delivery entries and the
//! changes devices wrote, which devices support cases reached.

use super::uuid_col;
use crate::storage::{AuditEntry, AuditFilter, SensitiveDevice, StorageResult, SYNC_CASES};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::BTreeMap;
use uuid::Uuid;

pub fn append(conn: &Connection, entry: &AuditEntry) -> StorageResult<()> {
    conn.execute(
        "INSERT INTO audit (at_ms, user_id, username, device_id, action, target, detail, peer, sensitive)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            entry.at_ms,
            entry.user_id,
            entry.username,
            entry.device_id.map(|d| d.as_bytes().to_vec()),
            entry.action,
            entry.target,
            entry.detail,
            entry.peer,
            entry.sensitive,
        ],
    )?;
    Ok(())
}

/// The entries `f` asks for, newest first: a range of the log's numbers, read backwards.
pub fn list(conn: &Connection, f: &AuditFilter, limit: u32) -> StorageResult<Vec<AuditEntry>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, at_ms, user_id, username, device_id, action, target, detail, peer, sensitive
         FROM audit
         WHERE seq < ?1 AND seq >= ?2 AND (?3 IS NULL OR device_id = ?3) AND (?4 OR sensitive = 0)
           AND (?5 IS NULL OR username = ?5 OR (username IS NULL AND target = ?5))
           AND (?6 IS NULL OR action = ?6)
           AND (?7 IS NULL OR target = ?7 OR instr(detail, ?7) > 0)
           AND (?8 IS NULL OR at_ms >= ?8) AND (?9 IS NULL OR at_ms < ?9)
         ORDER BY seq DESC LIMIT ?10",
    )?;
    let device = f.device.map(|d| d.as_bytes().to_vec());
    let record = f.record.map(|r| r.to_string());
    let values = params![
        f.before,
        f.floor,
        device,
        f.with_sensitive,
        f.username,
        f.action,
        record,
        f.from_ms,
        f.to_ms,
        limit
    ];
    let rows = stmt.query_map(values, |r| {
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
                sensitive: r.get(9)?,
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

/// One past the newest entry's number.
pub fn end(conn: &Connection) -> StorageResult<i64> {
    Ok(
        conn.query_row("SELECT COALESCE(MAX(seq), 0) + 1 FROM audit", [], |r| {
            r.get(0)
        })?,
    )
}

/// How cases reached one device.
#[derive(Default)]
struct Reach {
    deliveries: u64,
    first_ms: Option<i64>,
    last_ms: Option<i64>,
    cases_written: u64,
}

/// Every device that support cases reached: by a sync that delivered changes of them (each
/// such sync is audited) or because it wrote changes of them itself. Most recent delivery
/// first, then devices that only wrote.
pub fn sensitive_devices(conn: &Connection) -> StorageResult<Vec<SensitiveDevice>> {
    let mut reached: BTreeMap<Vec<u8>, Reach> = BTreeMap::new();
    {
        let mut stmt = conn.prepare_cached(
            "SELECT device_id, COUNT(*), MIN(at_ms), MAX(at_ms) FROM audit
             WHERE action = ?1 AND device_id IS NOT NULL GROUP BY device_id",
        )?;
        let rows = stmt.query_map([SYNC_CASES], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                Reach {
                    deliveries: r.get(1)?,
                    first_ms: r.get(2)?,
                    last_ms: r.get(3)?,
                    cases_written: 0,
                },
            ))
        })?;
        for row in rows {
            let (device, reach) = row?;
            reached.insert(device, reach);
        }
    }
    {
        let mut stmt = conn.prepare_cached(
            "SELECT c.origin_device, COUNT(DISTINCT c.record_id) FROM records r
             JOIN changes c ON c.record_id = r.id
             WHERE r.sensitive = 1 OR r.record_type = 'support_case'
             GROUP BY c.origin_device",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, u64>(1)?)))?;
        for row in rows {
            let (device, cases) = row?;
            reached.entry(device).or_default().cases_written = cases;
        }
    }
    let mut stmt = conn.prepare_cached(
        "SELECT d.name, u.username, d.kind, d.revoked FROM devices d JOIN users u ON u.id = d.user_id
         WHERE d.id = ?1",
    )?;
    let mut out = Vec::new();
    for (device, reach) in reached {
        // Changes of the demo seed and of restored databases may name devices not enrolled here.
        let Some(known) = stmt
            .query_row([&device], |r| {
                Ok(SensitiveDevice {
                    device_id: Uuid::nil(),
                    device_name: r.get(0)?,
                    username: r.get(1)?,
                    kind: r.get(2)?,
                    revoked: r.get(3)?,
                    deliveries: reach.deliveries,
                    first_delivery_ms: reach.first_ms,
                    last_delivery_ms: reach.last_ms,
                    cases_written: reach.cases_written,
                })
            })
            .optional()?
        else {
            continue;
        };
        // A page session that edited a case holds nothing (its looks are audited one by one);
        // one that was served cases by a sync does.
        if known.kind == "browser" && known.deliveries == 0 {
            continue;
        }
        out.push(SensitiveDevice {
            device_id: uuid_col(device)?,
            ..known
        });
    }
    out.sort_by_key(|d| std::cmp::Reverse((d.last_delivery_ms, d.cases_written)));
    Ok(out)
}
