//! The audit log on PostgreSQL: appended to, read by admins, changed by nobody (a trigger in
//! the schema refuses updates and deletes); and which devices support cases reached.

use super::db::Db;
use super::{id_bytes, uuid_col};
use crate::storage::{AuditEntry, AuditFilter, SensitiveDevice, StorageResult, SYNC_CASES};
use std::collections::BTreeMap;

pub fn append(db: &Db<'_>, entry: &AuditEntry) -> StorageResult<()> {
    db.exec(
        "INSERT INTO audit (at_ms, user_id, username, device_id, action, target, detail, peer,
                            sensitive)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[
            &entry.at_ms,
            &entry.user_id,
            &entry.username,
            &entry.device_id.map(id_bytes),
            &entry.action,
            &entry.target,
            &entry.detail,
            &entry.peer,
            &entry.sensitive,
        ],
    )?;
    Ok(())
}

/// The entries `f` asks for, newest first: a range of the log's numbers, read backwards.
pub fn list(db: &Db<'_>, f: &AuditFilter, limit: u32) -> StorageResult<Vec<AuditEntry>> {
    let rows = db.query(
        "SELECT seq, at_ms, user_id, username, device_id, action, target, detail, peer, sensitive
         FROM audit
         WHERE seq < $1 AND seq >= $2 AND ($3::BYTEA IS NULL OR device_id = $3)
           AND ($4 OR NOT sensitive)
           AND ($5::TEXT IS NULL OR username = $5 OR (username IS NULL AND target = $5))
           AND ($6::TEXT IS NULL OR action = $6)
           AND ($7::TEXT IS NULL OR target = $7 OR strpos(detail, $7) > 0)
           AND ($8::BIGINT IS NULL OR at_ms >= $8) AND ($9::BIGINT IS NULL OR at_ms < $9)
         ORDER BY seq DESC LIMIT $10",
        &[
            &f.before,
            &f.floor,
            &f.device.map(id_bytes),
            &f.with_sensitive,
            &f.username,
            &f.action,
            &f.record.map(|r| r.to_string()),
            &f.from_ms,
            &f.to_ms,
            &(limit as i64),
        ],
    )?;
    rows.iter()
        .map(|r| {
            let device: Option<Vec<u8>> = r.try_get(4)?;
            Ok(AuditEntry {
                seq: r.try_get(0)?,
                at_ms: r.try_get(1)?,
                user_id: r.try_get(2)?,
                username: r.try_get(3)?,
                device_id: device.map(uuid_col).transpose()?,
                action: r.try_get(5)?,
                target: r.try_get(6)?,
                detail: r.try_get(7)?,
                peer: r.try_get(8)?,
                sensitive: r.try_get(9)?,
            })
        })
        .collect()
}

/// One past the newest entry's number.
pub fn end(db: &Db<'_>) -> StorageResult<i64> {
    Ok(db
        .one("SELECT COALESCE(MAX(seq), 0) + 1 FROM audit", &[])?
        .try_get(0)?)
}

/// How cases reached one device.
#[derive(Default)]
struct Reach {
    deliveries: u64,
    first_ms: Option<i64>,
    last_ms: Option<i64>,
    cases_written: u64,
}

/// Every device that support cases reached (see the SQLite backend's `audit.rs`).
pub fn sensitive_devices(db: &Db<'_>) -> StorageResult<Vec<SensitiveDevice>> {
    let mut reached: BTreeMap<Vec<u8>, Reach> = BTreeMap::new();
    for r in db.query(
        "SELECT device_id, COUNT(*), MIN(at_ms), MAX(at_ms) FROM audit
         WHERE action = $1 AND device_id IS NOT NULL GROUP BY device_id",
        &[&SYNC_CASES],
    )? {
        let deliveries: i64 = r.try_get(1)?;
        reached.insert(
            r.try_get(0)?,
            Reach {
                deliveries: deliveries as u64,
                first_ms: r.try_get(2)?,
                last_ms: r.try_get(3)?,
                cases_written: 0,
            },
        );
    }
    for r in db.query(
        "SELECT c.origin_device, COUNT(DISTINCT c.record_id) FROM records r
         JOIN changes c ON c.record_id = r.id
         WHERE r.sensitive OR r.record_type = 'support_case'
         GROUP BY c.origin_device",
        &[],
    )? {
        let cases: i64 = r.try_get(1)?;
        reached.entry(r.try_get(0)?).or_default().cases_written = cases as u64;
    }
    let mut out = Vec::new();
    for (device, reach) in reached {
        // Changes of the demo seed and of restored databases may name devices not enrolled here.
        let Some(r) = db.opt(
            "SELECT d.name, u.username, d.kind, d.revoked FROM devices d
             JOIN users u ON u.id = d.user_id WHERE d.id = $1",
            &[&device],
        )?
        else {
            continue;
        };
        let kind: String = r.try_get(2)?;
        // A page session that edited a case holds nothing; one served cases by a sync does.
        if kind == "browser" && reach.deliveries == 0 {
            continue;
        }
        out.push(SensitiveDevice {
            device_id: uuid_col(device)?,
            device_name: r.try_get(0)?,
            username: r.try_get(1)?,
            kind,
            revoked: r.try_get(3)?,
            deliveries: reach.deliveries,
            first_delivery_ms: reach.first_ms,
            last_delivery_ms: reach.last_ms,
            cases_written: reach.cases_written,
        });
    }
    out.sort_by_key(|d| std::cmp::Reverse((d.last_delivery_ms, d.cases_written)));
    Ok(out)
}
