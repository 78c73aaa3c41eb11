//! The record exports' reads on PostgreSQL (the SQLite backend's `export.rs`): the records the
//! list's filters select, one type at a time, in pages that follow the id (keyset).

use super::db::Db;
use super::{id_bytes, uuid_col};
use crate::scope::Scope;
use crate::storage::{ExportRow, RecordQuery, StorageError, StorageResult};
use fieldsync_core::record::ReviewPhase;
use fieldsync_core::RecordType;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

/// `clause` added to the list's `WHERE` clause `sql`.
fn and(sql: &str, clause: &str) -> String {
    if sql.is_empty() {
        format!(" WHERE {clause}")
    } else {
        format!("{sql} AND {clause}")
    }
}

pub fn page(
    db: &Db<'_>,
    scope: &Scope,
    query: &RecordQuery,
    record_type: RecordType,
    after: Option<Uuid>,
    limit: u32,
) -> StorageResult<Vec<ExportRow>> {
    let (mut sql, mut args) = super::merged::filter(scope, query);
    args.push(Box::new(record_type.as_str()));
    sql = and(&sql, &format!("merged.record_type = ${}", args.len()));
    if let Some(after) = after {
        args.push(Box::new(id_bytes(after)));
        sql = and(&sql, &format!("merged.id > ${}", args.len()));
    }
    let sql = format!(
        "SELECT id, commune, status, review, view, n_conflicts, n_problems, updated_ms
         FROM merged{sql} ORDER BY merged.id LIMIT {limit}"
    );
    let params: Vec<&(dyn ToSql + Sync)> = args
        .iter()
        .map(|a| a.as_ref() as &(dyn ToSql + Sync))
        .collect();
    let mut out = Vec::with_capacity(limit as usize);
    for r in db.query_once(&sql, &params)? {
        let view: String = r.try_get(4)?;
        let review: String = r.try_get(3)?;
        let n_conflicts: i64 = r.try_get(5)?;
        let n_problems: i64 = r.try_get(6)?;
        out.push(ExportRow {
            id: uuid_col(r.try_get(0)?)?,
            commune: r.try_get(1)?,
            status: r.try_get(2)?,
            review: ReviewPhase::parse(&review).unwrap_or_default(),
            view: serde_json::from_str(&view)
                .map_err(|e| StorageError::Corrupt(format!("merged row: {e}")))?,
            n_conflicts: u32::try_from(n_conflicts).unwrap_or(u32::MAX),
            n_problems: u32::try_from(n_problems).unwrap_or(u32::MAX),
            updated_ms: r.try_get(7)?,
        });
    }
    Ok(out)
}

pub fn sensitive_count(db: &Db<'_>, scope: &Scope, query: &RecordQuery) -> StorageResult<u64> {
    let (sql, args) = super::merged::filter(scope, query);
    let sql = format!(
        "SELECT COUNT(*) FROM merged{}",
        and(
            &sql,
            "(merged.sensitive OR merged.record_type = 'support_case')"
        )
    );
    let params: Vec<&(dyn ToSql + Sync)> = args
        .iter()
        .map(|a| a.as_ref() as &(dyn ToSql + Sync))
        .collect();
    let n: i64 = db
        .query_once(&sql, &params)?
        .first()
        .map(|r| r.try_get(0))
        .transpose()?
        .unwrap_or(0);
    Ok(u64::try_from(n).unwrap_or(0))
}
