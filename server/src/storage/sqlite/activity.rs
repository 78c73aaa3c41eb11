//! What the collectors view reads: records registered per account and week (by the device the
//! record's first change came from) and each account's last sync from a phone.

use crate::storage::{Activity, Registrations, StorageResult};
use fieldsync_core::RecordType;
use rusqlite::{params, Connection};

pub fn activity(conn: &Connection, since_ms: i64, week_ms: i64) -> StorageResult<Activity> {
    let mut out = Activity::default();
    let mut stmt = conn.prepare_cached(
        "SELECT d.user_id, m.record_type, m.commune, m.sensitive, (o.at_ms - ?1) / ?2, COUNT(*)
         FROM record_origin o JOIN devices d ON d.id = o.device_id JOIN merged m ON m.id = o.record_id
         WHERE o.at_ms >= ?1
         GROUP BY 1, 2, 3, 4, 5",
    )?;
    let rows = stmt.query_map(params![since_ms, week_ms.max(1)], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<String>>(2)?,
            r.get::<_, bool>(3)?,
            r.get::<_, i64>(4)?,
            r.get::<_, i64>(5)?,
        ))
    })?;
    for row in rows {
        let (user_id, t, commune, sensitive, week, count) = row?;
        let Some(record_type) = RecordType::parse(&t) else {
            continue;
        };
        out.registrations.push(Registrations {
            user_id,
            record_type,
            commune,
            sensitive,
            week,
            count: count.max(0) as u64,
        });
    }
    let mut stmt = conn.prepare_cached(
        "SELECT user_id, MAX(last_sync_ms) FROM devices
         WHERE kind = 'phone' AND last_sync_ms IS NOT NULL GROUP BY user_id",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?;
    for row in rows {
        let (user, at) = row?;
        out.last_sync.insert(user, at);
    }
    Ok(out)
}
