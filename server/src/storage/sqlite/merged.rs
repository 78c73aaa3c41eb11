//! The merged view: one row per record with its current values, review state, validation
//! problems and field conflicts, refreshed on every ingest, for supervisors; and the filtered,
//! counted, paged lists they read from it.

use super::uuid_col;
use crate::scope::Scope;
use crate::storage::{
    FilterCounts, MergedRecord, PersonName, RecordPage, RecordQuery, RecordSummary, Stats,
    StorageError, StorageResult,
};
use fieldsync_core::model::validate_record;
use fieldsync_core::record::{EditAfterMerge, Review, ReviewPhase};
use fieldsync_core::search::query_terms;
use fieldsync_core::{RecordType, RecordView};
use rusqlite::types::ToSql;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use std::collections::BTreeMap;
use uuid::Uuid;

/// Rewrites a record's row and its duplicate-detection keys; `sensitive` is whether the record
/// was ever a sensitive type, `merge_edits` what it received after a merge the edits did not
/// see.
pub fn refresh(
    tx: &Transaction<'_>,
    view: &RecordView,
    review: &Review,
    merge_edits: &[EditAfterMerge],
    sensitive: bool,
    now_ms: i64,
) -> StorageResult<()> {
    let problems = validate_record(view.record_type, &view.fields);
    tx.prepare_cached(
        "INSERT INTO merged (id, record_type, commune, status, title, search_text, view, problems, conflicts,
                             n_problems, n_conflicts, sensitive, review, updated_ms, merged_into, merge_edits,
                             village)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
         ON CONFLICT(id) DO UPDATE SET record_type = excluded.record_type, commune = excluded.commune,
           status = excluded.status, title = excluded.title, search_text = excluded.search_text,
           view = excluded.view, problems = excluded.problems, conflicts = excluded.conflicts,
           n_problems = excluded.n_problems, n_conflicts = excluded.n_conflicts,
           sensitive = excluded.sensitive, review = excluded.review, updated_ms = excluded.updated_ms,
           merged_into = excluded.merged_into, merge_edits = excluded.merge_edits,
           village = excluded.village",
    )?
    .execute(
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
            review.state.as_str(),
            now_ms,
            view.merged_into.as_ref().map(|m| m.as_bytes().to_vec()),
            serde_json::to_string(merge_edits).unwrap_or_else(|_| "[]".into()),
            view.fields.get("village").and_then(|v| v.as_text()),
        ],
    )?;
    super::duplicates::reindex(tx, view, now_ms)
}

const COLUMNS: &str =
    "id, record_type, commune, status, title, view, problems, conflicts, sensitive, review, updated_ms";

fn json(s: &str) -> StorageResult<serde_json::Value> {
    serde_json::from_str(s).map_err(|e| StorageError::Corrupt(format!("merged row: {e}")))
}

fn record_type(name: &str) -> StorageResult<RecordType> {
    RecordType::parse(name)
        .ok_or_else(|| StorageError::Corrupt(format!("merged row of unknown type {name}")))
}

fn review(name: &str) -> ReviewPhase {
    ReviewPhase::parse(name).unwrap_or_default()
}

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MergedRow> {
    Ok(MergedRow {
        id: r.get(0)?,
        record_type: r.get(1)?,
        commune: r.get(2)?,
        status: r.get(3)?,
        title: r.get(4)?,
        view: r.get(5)?,
        problems: r.get(6)?,
        conflicts: r.get(7)?,
        sensitive: r.get(8)?,
        review: r.get(9)?,
        updated_ms: r.get(10)?,
    })
}

struct MergedRow {
    id: Vec<u8>,
    record_type: String,
    commune: Option<String>,
    status: String,
    title: String,
    view: String,
    problems: String,
    conflicts: String,
    sensitive: bool,
    review: String,
    updated_ms: i64,
}

impl MergedRow {
    fn into_record(self) -> StorageResult<MergedRecord> {
        let record_type = record_type(&self.record_type)?;
        Ok(MergedRecord {
            id: uuid_col(self.id)?,
            record_type,
            commune: self.commune,
            status: self.status,
            title: self.title,
            view: json(&self.view)?,
            problems: json(&self.problems)?,
            conflicts: json(&self.conflicts)?,
            sensitive: self.sensitive || record_type.is_sensitive(),
            review: review(&self.review),
            updated_ms: self.updated_ms,
        })
    }
}

pub fn get(conn: &Connection, id: Uuid) -> StorageResult<Option<MergedRecord>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM merged WHERE id = ?1"),
        [id.as_bytes()],
        from_row,
    )
    .optional()?
    .map(MergedRow::into_record)
    .transpose()
}

/// The columns of a list row, in the order [`SummaryRow::read`] takes them, and where they
/// are read from (the collector's account beside the record).
const SUMMARY_COLUMNS: &str =
    "merged.id, merged.record_type, merged.commune, merged.status, merged.review,
     merged.title, merged.n_conflicts, merged.n_problems, merged.updated_ms, merged.village,
     u.username, u.full_name";
/// A record's collector: the account of the device its first change came from (kept in
/// `record_origin` as changes arrive).
const SUMMARY_FROM: &str = "merged LEFT JOIN record_origin o ON o.record_id = merged.id
     LEFT JOIN devices od ON od.id = o.device_id LEFT JOIN users u ON u.id = od.user_id";

/// A list row as stored; checked into a [`RecordSummary`] outside the row callback.
struct SummaryRow {
    id: Vec<u8>,
    record_type: String,
    commune: Option<String>,
    status: String,
    review: String,
    title: String,
    n_conflicts: u32,
    n_problems: u32,
    updated_ms: i64,
    village: Option<String>,
    collector: Option<String>,
    collector_name: Option<String>,
}

impl SummaryRow {
    fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<SummaryRow> {
        Ok(SummaryRow {
            id: r.get(0)?,
            record_type: r.get(1)?,
            commune: r.get(2)?,
            status: r.get(3)?,
            review: r.get(4)?,
            title: r.get(5)?,
            n_conflicts: r.get(6)?,
            n_problems: r.get(7)?,
            updated_ms: r.get(8)?,
            village: r.get(9)?,
            collector: r.get(10)?,
            collector_name: r.get(11)?,
        })
    }

    fn into_summary(self) -> StorageResult<RecordSummary> {
        Ok(RecordSummary {
            id: uuid_col(self.id)?,
            record_type: record_type(&self.record_type)?,
            commune: self.commune,
            status: self.status,
            review: review(&self.review),
            title: self.title,
            n_conflicts: self.n_conflicts,
            n_problems: self.n_problems,
            updated_ms: self.updated_ms,
            village: self.village,
            collector: self.collector.map(|username| PersonName {
                username,
                full_name: self.collector_name,
            }),
        })
    }
}

/// The list rows of records by id, in the order given; ids without a record are left out.
pub fn summaries(conn: &Connection, ids: &[Uuid]) -> StorageResult<Vec<RecordSummary>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {SUMMARY_COLUMNS} FROM {SUMMARY_FROM} WHERE merged.id = ?1"
    ))?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(row) = stmt
            .query_row([id.as_bytes()], SummaryRow::read)
            .optional()?
        {
            out.push(row.into_summary()?);
        }
    }
    Ok(out)
}

/// SQL conditions and their parameters.
#[derive(Default)]
struct Conditions {
    clauses: Vec<String>,
    args: Vec<Box<dyn ToSql>>,
}

impl Conditions {
    fn push(&mut self, clause: impl Into<String>) {
        self.clauses.push(clause.into());
    }

    fn arg(&mut self, value: impl ToSql + 'static) -> String {
        self.args.push(Box::new(value));
        format!("?{}", self.args.len())
    }

    fn communes(&mut self, communes: &std::collections::BTreeSet<String>) {
        let clause = self.commune_in("merged", communes);
        self.push(clause);
    }

    fn commune_in(&mut self, table: &str, communes: &std::collections::BTreeSet<String>) -> String {
        if communes.is_empty() {
            return "0".into();
        }
        let list: Vec<String> = communes.iter().map(|c| self.arg(c.clone())).collect();
        format!("{table}.commune IN ({})", list.join(", "))
    }

    /// What `scope` may see of the rows of `table` (a name or alias of `merged`): the SQL form
    /// of [`crate::storage::visible`], so that every list and count agrees with a record's page.
    fn in_scope(&mut self, scope: &Scope, table: &str) -> Vec<String> {
        let mut out = vec![format!("{table}.commune IS NOT NULL")];
        if !scope.all {
            out.push(self.commune_in(table, &scope.communes));
        }
        if !scope.sensitive {
            out.push(format!(
                "{table}.sensitive = 0 AND {table}.record_type != 'support_case'"
            ));
        }
        out
    }

    fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clauses.join(" AND "))
        }
    }

    fn params(&self) -> Vec<&dyn ToSql> {
        self.args.iter().map(|a| a.as_ref()).collect()
    }
}

/// Which filters to apply: all of the query's, or all but one (for that filter's counts).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Leave {
    Nothing,
    Type,
    Review,
    Conflicts,
    Problems,
    Deleted,
}

fn conditions(scope: &Scope, query: &RecordQuery, leave: Leave) -> Conditions {
    let mut c = Conditions::default();
    let visible = c.in_scope(scope, "merged");
    c.clauses.extend(visible);
    if let Some(communes) = &query.communes {
        c.communes(communes);
    }
    if let (Some(t), false) = (query.record_type, leave == Leave::Type) {
        let p = c.arg(t.as_str());
        c.push(format!("record_type = {p}"));
    }
    if let (Some(r), false) = (query.review, leave == Leave::Review) {
        let p = c.arg(r.as_str());
        c.push(format!("review = {p}"));
    }
    if let (Some(with), false) = (query.conflicts, leave == Leave::Conflicts) {
        c.push(if with {
            "n_conflicts > 0"
        } else {
            "n_conflicts = 0"
        });
    }
    if let (Some(with), false) = (query.problems, leave == Leave::Problems) {
        c.push(if with {
            "n_problems > 0"
        } else {
            "n_problems = 0"
        });
    }
    if leave != Leave::Deleted {
        c.push(if query.deleted {
            "status != 'active'"
        } else {
            "status = 'active'"
        });
    }
    if let Some(since) = query.changed_since_ms {
        let p = c.arg(since);
        c.push(format!("updated_ms >= {p}"));
    }
    let terms = query.search.as_deref().map(query_terms).unwrap_or_default();
    if !terms.is_empty() {
        let (mut own, mut absorbed) = (Vec::new(), Vec::new());
        for term in terms {
            // Folded text holds only letters, digits and spaces, so LIKE needs no escaping.
            let p = c.arg(format!("%{term}%"));
            own.push(format!("merged.search_text LIKE {p}"));
            absorbed.push(format!("d.search_text LIKE {p}"));
        }
        // A kept record is found by the name of a duplicate merged into it, too: of one the
        // caller may see, or the search would tell whom an unseen record is named after.
        absorbed.extend(c.in_scope(scope, "d"));
        c.push(format!(
            "(({}) OR EXISTS (SELECT 1 FROM merged d WHERE d.merged_into = merged.id AND {}))",
            own.join(" AND "),
            absorbed.join(" AND ")
        ));
    }
    c
}

fn count(conn: &Connection, c: &Conditions, extra: &str) -> StorageResult<u64> {
    let mut sql = format!("SELECT COUNT(*) FROM merged{}", c.sql());
    if !extra.is_empty() {
        sql.push_str(if c.clauses.is_empty() {
            " WHERE "
        } else {
            " AND "
        });
        sql.push_str(extra);
    }
    Ok(conn.query_row(&sql, c.params().as_slice(), |r| r.get(0))?)
}

fn grouped(
    conn: &Connection,
    c: &Conditions,
    column: &str,
) -> StorageResult<BTreeMap<String, u64>> {
    let sql = format!(
        "SELECT {column}, COUNT(*) FROM merged{} GROUP BY {column}",
        c.sql()
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(c.params().as_slice(), |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, u64>(1)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One page of the records `scope` may see that match `query`, with the total and, for each
/// filter, how many records each of its values would give with the other filters kept.
pub fn list(conn: &Connection, scope: &Scope, query: &RecordQuery) -> StorageResult<RecordPage> {
    let all = conditions(scope, query, Leave::Nothing);
    let total = count(conn, &all, "")?;
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS} FROM {SUMMARY_FROM}{} ORDER BY {} LIMIT {} OFFSET {}",
        all.sql(),
        crate::storage::list_order(query.sort, query.descending, ""),
        query.limit,
        query.offset
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(all.params().as_slice(), SummaryRow::read)?;
    let mut records = Vec::new();
    for row in rows {
        records.push(row?.into_summary()?);
    }
    let counts = FilterCounts {
        record_type: grouped(conn, &conditions(scope, query, Leave::Type), "record_type")?,
        review: grouped(conn, &conditions(scope, query, Leave::Review), "review")?,
        conflicts: count(
            conn,
            &conditions(scope, query, Leave::Conflicts),
            "n_conflicts > 0",
        )?,
        problems: count(
            conn,
            &conditions(scope, query, Leave::Problems),
            "n_problems > 0",
        )?,
        deleted: count(
            conn,
            &conditions(scope, query, Leave::Deleted),
            "status != 'active'",
        )?,
    };
    Ok(RecordPage {
        total,
        records,
        counts,
    })
}

/// The operator's counts over what `scope` may see: its records (any state), their changes and
/// held changes, and the log entries of the streams it pulls.
pub fn stats(conn: &Connection, scope: &Scope) -> StorageResult<Stats> {
    let mut c = Conditions::default();
    let visible = c.in_scope(scope, "m");
    c.clauses.extend(visible);
    let count = |from: &str| -> StorageResult<u64> {
        Ok(conn.query_row(
            &format!("SELECT COUNT(*) FROM {from}{}", c.sql()),
            c.params().as_slice(),
            |r| r.get(0),
        )?)
    };
    let log_entries = match scope.streams() {
        Some(streams) => {
            let mut stmt = conn.prepare_cached("SELECT COUNT(*) FROM log WHERE stream = ?1")?;
            let mut n = 0u64;
            for stream in streams {
                n += stmt.query_row([stream], |r| r.get::<_, u64>(0))?;
            }
            n
        }
        None => conn.query_row(
            "SELECT COUNT(*) FROM log WHERE ?1 OR stream NOT LIKE '%#sensitive'",
            [scope.sensitive],
            |r| r.get(0),
        )?,
    };
    Ok(Stats {
        records: count("merged m")?,
        changes: count("changes x JOIN merged m ON m.id = x.record_id")?,
        held: count("held x JOIN merged m ON m.id = x.record_id")?,
        log_entries,
    })
}

/// The list's filters for `query` as `scope` sees it: a `WHERE` clause and its parameters
/// (`?1`, `?2`, ...), so that the record exports select exactly what the list shows.
pub(super) fn filter(scope: &Scope, query: &RecordQuery) -> (String, Vec<Box<dyn ToSql>>) {
    let c = conditions(scope, query, Leave::Nothing);
    (c.sql(), c.args)
}
