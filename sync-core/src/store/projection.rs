//! The projection table: one row per record with what lists, filters and searches need.

use super::uuid_from_row;
use crate::error::Result;
use crate::model::RecordType;
use crate::record::{RecordView, Status};
use crate::search::query_terms;
use rusqlite::types::ToSql;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A filter for [`super::Store::list`]; empty fields match everything.
#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    pub record_type: Option<RecordType>,
    pub commune: Option<String>,
    /// Diacritic- and case-insensitive; every word must appear.
    pub search: Option<String>,
    /// Include deleted and merged records.
    pub include_inactive: bool,
    pub only_conflicts: bool,
    pub limit: Option<u32>,
    pub offset: u32,
}

/// One row of a list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordSummary {
    pub id: Uuid,
    pub record_type: RecordType,
    pub commune: Option<String>,
    pub status: Status,
    /// The record's name as entered (head of household, person, group, topic); support cases
    /// show only their kind, as their title appears in lists.
    pub title: String,
    pub conflicts: u32,
    /// Position of the record's latest change in this store: causal arrival order, no clock.
    pub last_change_seq: i64,
}

pub(super) fn upsert(conn: &Connection, view: &RecordView, seq: i64) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO projection (id, record_type, commune, status, title, search_text, conflicts, last_change_seq,
                                 merged_into)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT(id) DO UPDATE SET record_type = excluded.record_type, commune = excluded.commune,
           status = excluded.status, title = excluded.title, search_text = excluded.search_text,
           conflicts = excluded.conflicts, last_change_seq = excluded.last_change_seq,
           merged_into = excluded.merged_into",
    )?
    .execute(params![
        view.id.as_bytes(),
        view.record_type.as_str(),
        view.commune(),
        view.status().as_str(),
        view.title(),
        view.search_text(),
        view.conflicts.len() as i64,
        seq,
        view.merged_into.as_ref().map(|m| m.as_bytes().to_vec()),
    ])?;
    Ok(())
}

pub(super) fn remove(conn: &Connection, id: Uuid) -> Result<()> {
    conn.execute("DELETE FROM projection WHERE id = ?1", [id.as_bytes()])?;
    Ok(())
}

fn where_clause(filter: &ListFilter) -> (String, Vec<Box<dyn ToSql>>) {
    let mut clauses: Vec<String> = Vec::new();
    let mut args: Vec<Box<dyn ToSql>> = Vec::new();
    if let Some(t) = filter.record_type {
        args.push(Box::new(t.as_str()));
        clauses.push(format!("record_type = ?{}", args.len()));
    }
    if let Some(c) = &filter.commune {
        args.push(Box::new(c.clone()));
        clauses.push(format!("commune = ?{}", args.len()));
    }
    if !filter.include_inactive {
        clauses.push("status = 'active'".into());
    }
    if filter.only_conflicts {
        clauses.push("conflicts > 0".into());
    }
    let terms = filter
        .search
        .as_deref()
        .map(query_terms)
        .unwrap_or_default();
    if !terms.is_empty() {
        let mut own = Vec::new();
        let mut merged = Vec::new();
        for term in terms {
            // Folded text holds only letters, digits and spaces, so LIKE needs no escaping.
            args.push(Box::new(format!("%{term}%")));
            own.push(format!("projection.search_text LIKE ?{}", args.len()));
            merged.push(format!("m.search_text LIKE ?{}", args.len()));
        }
        // A kept record is found by the name of a duplicate merged into it, too.
        clauses.push(format!(
            "(({}) OR EXISTS (SELECT 1 FROM projection m WHERE m.merged_into = projection.id AND {}))",
            own.join(" AND "),
            merged.join(" AND ")
        ));
    }
    let sql = if clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", clauses.join(" AND "))
    };
    (sql, args)
}

pub(super) fn list(conn: &Connection, filter: &ListFilter) -> Result<Vec<RecordSummary>> {
    let (clause, args) = where_clause(filter);
    let sql = format!(
        "SELECT id, record_type, commune, status, title, conflicts, last_change_seq FROM projection{clause}
         ORDER BY last_change_seq DESC LIMIT {} OFFSET {}",
        filter.limit.map(i64::from).unwrap_or(-1),
        filter.offset
    );
    let mut stmt = conn.prepare(&sql)?;
    let params: Vec<&dyn ToSql> = args.iter().map(|a| a.as_ref()).collect();
    let mut rows = stmt.query(params.as_slice())?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let type_name: String = row.get(1)?;
        let Some(record_type) = RecordType::parse(&type_name) else {
            continue;
        };
        out.push(RecordSummary {
            id: uuid_from_row(row.get(0)?)?,
            record_type,
            commune: row.get(2)?,
            status: Status::parse(&row.get::<_, String>(3)?),
            title: row.get(4)?,
            conflicts: row.get(5)?,
            last_change_seq: row.get(6)?,
        });
    }
    Ok(out)
}

pub(super) fn count(conn: &Connection, filter: &ListFilter) -> Result<u64> {
    let (clause, args) = where_clause(filter);
    let params: Vec<&dyn ToSql> = args.iter().map(|a| a.as_ref()).collect();
    Ok(conn.query_row(
        &format!("SELECT COUNT(*) FROM projection{clause}"),
        params.as_slice(),
        |r| r.get(0),
    )?)
}

/// The record a merged duplicate was merged into, as the projection knows it.
pub(super) fn merged_into(conn: &Connection, id: Uuid) -> Result<Option<Uuid>> {
    let bytes: Option<Option<Vec<u8>>> = conn
        .prepare_cached("SELECT merged_into FROM projection WHERE id = ?1")?
        .query_row([id.as_bytes()], |r| r.get(0))
        .optional()?;
    Ok(bytes.flatten().and_then(|b| Uuid::from_slice(&b).ok()))
}
