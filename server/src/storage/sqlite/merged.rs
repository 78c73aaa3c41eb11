//! The merged view: one row per record with its current values, validation problems and field
//! conflicts, refreshed on every ingest, for supervisors.

use super::uuid_col;
use crate::scope::Scope;
use crate::storage::{MergedRecord, StorageError, StorageResult};
use fieldsync_core::model::validate_record;
use fieldsync_core::search::query_terms;
use fieldsync_core::{RecordType, RecordView};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use uuid::Uuid;

/// Rewrites a record's row; `sensitive` is whether the record was ever a sensitive type.
pub fn refresh(tx: &Transaction<'_>, view: &RecordView, sensitive: bool) -> StorageResult<()> {
    let problems = validate_record(view.record_type, &view.fields);
    tx.execute(
        "INSERT INTO merged (id, record_type, commune, status, title, search_text, view, problems, conflicts, n_problems, n_conflicts, sensitive)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         ON CONFLICT(id) DO UPDATE SET record_type = excluded.record_type, commune = excluded.commune,
           status = excluded.status, title = excluded.title, search_text = excluded.search_text,
           view = excluded.view, problems = excluded.problems, conflicts = excluded.conflicts,
           n_problems = excluded.n_problems, n_conflicts = excluded.n_conflicts, sensitive = excluded.sensitive",
        params![
            view.id.as_bytes(),
            view.record_type.as_str(),
            view.commune(),
            view.status().as_str(),
            view.title(),
            view.search_text(),
            serde_json::to_string(view).unwrap_or_default(),
            serde_json::to_string(&problems).unwrap_or_default(),
            serde_json::to_string(&view.conflicts).unwrap_or_default(),
            problems.len() as i64,
            view.conflicts.len() as i64,
            sensitive,
        ],
    )?;
    Ok(())
}

const COLUMNS: &str =
    "id, record_type, commune, status, title, view, problems, conflicts, sensitive";

/// (id, type, commune, status, title, view JSON, problems JSON, conflicts JSON, sensitive).
type Row = (
    Vec<u8>,
    String,
    Option<String>,
    String,
    String,
    String,
    String,
    String,
    bool,
);

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
    ))
}

fn to_record(row: Row) -> StorageResult<Option<MergedRecord>> {
    let (id, record_type, commune, status, title, view, problems, conflicts, sensitive) = row;
    let Some(record_type) = RecordType::parse(&record_type) else {
        return Ok(None);
    };
    let json = |s: &str| -> StorageResult<serde_json::Value> {
        serde_json::from_str(s).map_err(|e| StorageError::Corrupt(format!("merged row: {e}")))
    };
    Ok(Some(MergedRecord {
        id: uuid_col(id)?,
        record_type,
        commune,
        status,
        title,
        view: json(&view)?,
        problems: json(&problems)?,
        conflicts: json(&conflicts)?,
        sensitive: sensitive || record_type.is_sensitive(),
    }))
}

pub fn get(conn: &Connection, id: Uuid) -> StorageResult<Option<MergedRecord>> {
    let row = conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM merged WHERE id = ?1"),
            [id.as_bytes()],
            from_row,
        )
        .optional()?;
    match row {
        Some(row) => to_record(row),
        None => Ok(None),
    }
}

pub fn list(
    conn: &Connection,
    scope: &Scope,
    record_type: Option<RecordType>,
    search: Option<&str>,
    limit: u32,
) -> StorageResult<Vec<MergedRecord>> {
    let mut sql = format!("SELECT {COLUMNS}, commune FROM merged WHERE 1 = 1");
    let mut args: Vec<String> = Vec::new();
    if let Some(t) = record_type {
        args.push(t.as_str().to_owned());
        sql.push_str(&format!(" AND record_type = ?{}", args.len()));
    }
    if !scope.sensitive {
        sql.push_str(" AND record_type != 'support_case' AND sensitive = 0");
    }
    for term in search.map(query_terms).unwrap_or_default() {
        args.push(format!("%{term}%"));
        sql.push_str(&format!(" AND search_text LIKE ?{}", args.len()));
    }
    sql.push_str(" ORDER BY n_conflicts DESC, n_problems DESC, title");
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), |r| {
        Ok((from_row(r)?, r.get::<_, Option<String>>(9)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (row, commune) = row?;
        let in_scope = scope.all || commune.as_ref().is_some_and(|c| scope.communes.contains(c));
        if !in_scope {
            continue;
        }
        if let Some(rec) = to_record(row)? {
            out.push(rec);
        }
        if out.len() >= limit as usize {
            break;
        }
    }
    Ok(out)
}
