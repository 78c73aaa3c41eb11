//! What the collectors view reads on PostgreSQL (the SQLite backend's `activity.rs`): records
//! registered per account and week, and each account's last sync from a phone.

use super::db::Db;
use crate::storage::{Activity, Registrations, StorageResult};
use fieldsync_core::RecordType;

pub fn activity(db: &Db<'_>, since_ms: i64, week_ms: i64) -> StorageResult<Activity> {
    let mut out = Activity::default();
    let rows = db.query(
        "SELECT d.user_id, m.record_type, m.commune, m.sensitive, (o.at_ms - $1) / $2, COUNT(*)
         FROM record_origin o JOIN devices d ON d.id = o.device_id JOIN merged m ON m.id = o.record_id
         WHERE o.at_ms >= $1
         GROUP BY 1, 2, 3, 4, 5",
        &[&since_ms, &week_ms.max(1)],
    )?;
    for r in &rows {
        let t: String = r.try_get(1)?;
        let Some(record_type) = RecordType::parse(&t) else {
            continue;
        };
        let count: i64 = r.try_get(5)?;
        out.registrations.push(Registrations {
            user_id: r.try_get(0)?,
            record_type,
            commune: r.try_get(2)?,
            sensitive: r.try_get(3)?,
            week: r.try_get(4)?,
            count: count.max(0) as u64,
        });
    }
    let rows = db.query(
        "SELECT user_id, MAX(last_sync_ms) FROM devices
         WHERE kind = 'phone' AND last_sync_ms IS NOT NULL GROUP BY user_id",
        &[],
    )?;
    for r in &rows {
        out.last_sync.insert(r.try_get(0)?, r.try_get(1)?);
    }
    Ok(out)
}
