//! The record exports' reads: the records the list's filters select, one type at a time, in
//! pages that follow the id (keyset), so that each page costs the same however far the export
//! has gone and no connection is held between pages.

use super::uuid_col;
use crate::scope::Scope;
use crate::storage::{ExportRow, RecordQuery, StorageError, StorageResult};
use fieldsync_core::record::ReviewPhase;
use fieldsync_core::RecordType;
use rusqlite::types::ToSql;
use rusqlite::Connection;
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
    conn: &Connection,
    scope: &Scope,
    query: &RecordQuery,
    record_type: RecordType,
    after: Option<Uuid>,
    limit: u32,
) -> StorageResult<Vec<ExportRow>> {
    let (mut sql, mut args) = super::merged::filter(scope, query);
    args.push(Box::new(record_type.as_str()));
    sql = and(&sql, &format!("merged.record_type = ?{}", args.len()));
    if let Some(after) = after {
        args.push(Box::new(after.as_bytes().to_vec()));
        sql = and(&sql, &format!("merged.id > ?{}", args.len()));
    }
    // By the primary key's index: SQLite would otherwise take the list's commune index and sort
    // every remaining record of the type for each page (an export of 120,000 people took a
    // minute instead of seconds). A page then reads at most the rows up to its last record.
    let sql = format!(
        "SELECT id, commune, status, review, view, n_conflicts, n_problems, updated_ms
         FROM merged INDEXED BY sqlite_autoindex_merged_1{sql} ORDER BY merged.id LIMIT {limit}"
    );
    let params: Vec<&dyn ToSql> = args.iter().map(|a| a.as_ref()).collect();
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(params.as_slice(), |r| {
        Ok((
            r.get::<_, Vec<u8>>(0)?,
            r.get::<_, Option<String>>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, u32>(5)?,
            r.get::<_, u32>(6)?,
            r.get::<_, i64>(7)?,
        ))
    })?;
    let mut out = Vec::with_capacity(limit as usize);
    for row in rows {
        let (id, commune, status, review, view, n_conflicts, n_problems, updated_ms) = row?;
        out.push(ExportRow {
            id: uuid_col(id)?,
            commune,
            status,
            review: ReviewPhase::parse(&review).unwrap_or_default(),
            view: serde_json::from_str(&view)
                .map_err(|e| StorageError::Corrupt(format!("merged row: {e}")))?,
            n_conflicts,
            n_problems,
            updated_ms,
        });
    }
    Ok(out)
}

pub fn sensitive_count(
    conn: &Connection,
    scope: &Scope,
    query: &RecordQuery,
) -> StorageResult<u64> {
    let (sql, args) = super::merged::filter(scope, query);
    let sql = format!(
        "SELECT COUNT(*) FROM merged{}",
        and(
            &sql,
            "(merged.sensitive != 0 OR merged.record_type = 'support_case')"
        )
    );
    let params: Vec<&dyn ToSql> = args.iter().map(|a| a.as_ref()).collect();
    Ok(conn.query_row(&sql, params.as_slice(), |r| r.get(0))?)
}
