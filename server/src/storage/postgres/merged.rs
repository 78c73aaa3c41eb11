//! The merged view and the indicator facts on PostgreSQL: one row each per record, rewritten on
//! every ingest, and the filtered, counted, paged lists supervisors read (the SQLite backend's
//! `merged.rs` and `facts.rs`). Search matches the stored folded text, so it ignores
//! diacritics and case as the SQLite backend's does.

use super::db::Db;
use super::{id_bytes, uuid_col};
use crate::indicators::facts::{Detail, Fact};
use crate::scope::Scope;
use crate::storage::{
    FilterCounts, MergedRecord, PersonName, RecordPage, RecordQuery, RecordSummary, Stats,
    StorageError, StorageResult,
};
use fieldsync_core::model::validate_record;
use fieldsync_core::record::{EditAfterMerge, Review, ReviewPhase, Status};
use fieldsync_core::search::query_terms;
use fieldsync_core::{RecordType, RecordView};
use std::collections::BTreeMap;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;
use uuid::Uuid;

/// Rewrites a record's row and its duplicate-detection keys.
pub fn refresh(
    db: &Db<'_>,
    view: &RecordView,
    review: &Review,
    merge_edits: &[EditAfterMerge],
    sensitive: bool,
    now_ms: i64,
) -> StorageResult<()> {
    let problems = validate_record(view.record_type, &view.fields);
    db.exec(
        "INSERT INTO merged (id, record_type, commune, status, title, search_text, view, problems,
                             conflicts, n_problems, n_conflicts, sensitive, review, updated_ms,
                             merged_into, merge_edits, village)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
         ON CONFLICT (id) DO UPDATE SET record_type = excluded.record_type,
           commune = excluded.commune, status = excluded.status, title = excluded.title,
           search_text = excluded.search_text, view = excluded.view,
           problems = excluded.problems, conflicts = excluded.conflicts,
           n_problems = excluded.n_problems, n_conflicts = excluded.n_conflicts,
           sensitive = excluded.sensitive, review = excluded.review,
           updated_ms = excluded.updated_ms, merged_into = excluded.merged_into,
           merge_edits = excluded.merge_edits, village = excluded.village",
        &[
            &id_bytes(view.id),
            &view.record_type.as_str(),
            &view.commune(),
            &view.status().as_str(),
            &view.title(),
            &view.search_text(),
            &serde_json::to_string(view).unwrap_or_default(),
            &serde_json::to_string(&problems).unwrap_or_default(),
            &serde_json::to_string(&view.conflicts).unwrap_or_default(),
            &(problems.len() as i64),
            &(view.conflicts.len() as i64),
            &sensitive,
            &review.state.as_str(),
            &now_ms,
            &view.merged_into.map(id_bytes),
            &serde_json::to_string(merge_edits).unwrap_or_else(|_| "[]".into()),
            &view.fields.get("village").and_then(|v| v.as_text()),
        ],
    )?;
    super::duplicates::reindex(db, view, now_ms)
}

const COLUMNS: &str = "id, record_type, commune, status, title, view, problems, conflicts, \
                       sensitive, review, updated_ms";

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

fn record_from_row(r: &Row) -> StorageResult<MergedRecord> {
    let record_type = record_type(r.try_get(1)?)?;
    let sensitive: bool = r.try_get(8)?;
    Ok(MergedRecord {
        id: uuid_col(r.try_get(0)?)?,
        record_type,
        commune: r.try_get(2)?,
        status: r.try_get(3)?,
        title: r.try_get(4)?,
        view: json(r.try_get(5)?)?,
        problems: json(r.try_get(6)?)?,
        conflicts: json(r.try_get(7)?)?,
        sensitive: sensitive || record_type.is_sensitive(),
        review: review(r.try_get(9)?),
        updated_ms: r.try_get(10)?,
    })
}

pub fn get(db: &Db<'_>, id: Uuid) -> StorageResult<Option<MergedRecord>> {
    db.opt(
        &format!("SELECT {COLUMNS} FROM merged WHERE id = $1"),
        &[&id_bytes(id)],
    )?
    .as_ref()
    .map(record_from_row)
    .transpose()
}

/// The columns of a list row and where they are read from (the collector's account beside
/// the record).
const SUMMARY_COLUMNS: &str =
    "merged.id, merged.record_type, merged.commune, merged.status, merged.review,
     merged.title, merged.n_conflicts, merged.n_problems, merged.updated_ms, merged.village,
     u.username, u.full_name";
/// A record's collector: the account of the device its first change came from (kept in
/// `record_origin` as changes arrive).
const SUMMARY_FROM: &str = "merged LEFT JOIN record_origin o ON o.record_id = merged.id
     LEFT JOIN devices od ON od.id = o.device_id LEFT JOIN users u ON u.id = od.user_id";

fn summary_from_row(r: &Row) -> StorageResult<RecordSummary> {
    let n_conflicts: i64 = r.try_get(6)?;
    let n_problems: i64 = r.try_get(7)?;
    Ok(RecordSummary {
        id: uuid_col(r.try_get(0)?)?,
        record_type: record_type(r.try_get(1)?)?,
        commune: r.try_get(2)?,
        status: r.try_get(3)?,
        review: review(r.try_get(4)?),
        title: r.try_get(5)?,
        n_conflicts: n_conflicts as u32,
        n_problems: n_problems as u32,
        updated_ms: r.try_get(8)?,
        village: r.try_get(9)?,
        collector: r
            .try_get::<_, Option<String>>(10)?
            .map(|username| -> StorageResult<PersonName> {
                Ok(PersonName {
                    username,
                    full_name: r.try_get(11)?,
                })
            })
            .transpose()?,
    })
}

pub fn summaries(db: &Db<'_>, ids: &[Uuid]) -> StorageResult<Vec<RecordSummary>> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(row) = db.opt(
            &format!("SELECT {SUMMARY_COLUMNS} FROM {SUMMARY_FROM} WHERE merged.id = $1"),
            &[&id_bytes(*id)],
        )? {
            out.push(summary_from_row(&row)?);
        }
    }
    Ok(out)
}

/// SQL conditions and their parameters.
#[derive(Default)]
struct Conditions {
    clauses: Vec<String>,
    args: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Conditions {
    fn push(&mut self, clause: impl Into<String>) {
        self.clauses.push(clause.into());
    }

    fn arg(&mut self, value: impl ToSql + Sync + Send + 'static) -> String {
        self.args.push(Box::new(value));
        format!("${}", self.args.len())
    }

    fn commune_in(&mut self, table: &str, communes: &std::collections::BTreeSet<String>) -> String {
        if communes.is_empty() {
            return "FALSE".into();
        }
        let list: Vec<String> = communes.iter().cloned().collect();
        let p = self.arg(list);
        format!("{table}.commune = ANY({p}::TEXT[])")
    }

    /// What `scope` may see of the rows of `table` (a name or alias of `merged`): the SQL form
    /// of [`crate::storage::visible`].
    fn in_scope(&mut self, scope: &Scope, table: &str) -> Vec<String> {
        let mut out = vec![format!("{table}.commune IS NOT NULL")];
        if !scope.all {
            out.push(self.commune_in(table, &scope.communes));
        }
        if !scope.sensitive {
            out.push(format!(
                "NOT {table}.sensitive AND {table}.record_type != 'support_case'"
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

    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.args
            .iter()
            .map(|a| a.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}

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
        let clause = c.commune_in("merged", communes);
        c.push(clause);
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
        // A kept record is found by the name of a duplicate merged into it the caller may see.
        absorbed.extend(c.in_scope(scope, "d"));
        c.push(format!(
            "(({}) OR EXISTS (SELECT 1 FROM merged d WHERE d.merged_into = merged.id AND {}))",
            own.join(" AND "),
            absorbed.join(" AND ")
        ));
    }
    c
}

fn count(db: &Db<'_>, c: &Conditions, extra: &str) -> StorageResult<u64> {
    let mut sql = format!("SELECT COUNT(*) FROM merged{}", c.sql());
    if !extra.is_empty() {
        sql.push_str(if c.clauses.is_empty() {
            " WHERE "
        } else {
            " AND "
        });
        sql.push_str(extra);
    }
    let n: i64 = db
        .query_once(&sql, &c.params())?
        .first()
        .map(|r| r.try_get(0))
        .transpose()?
        .unwrap_or(0);
    Ok(n as u64)
}

fn grouped(db: &Db<'_>, c: &Conditions, column: &str) -> StorageResult<BTreeMap<String, u64>> {
    let sql = format!(
        "SELECT {column}, COUNT(*) FROM merged{} GROUP BY {column}",
        c.sql()
    );
    db.query_once(&sql, &c.params())?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get::<_, i64>(1)? as u64)))
        .collect()
}

/// One page of the records `scope` may see that match `query`, with the total and the counts
/// of each filter's values.
pub fn list(db: &Db<'_>, scope: &Scope, query: &RecordQuery) -> StorageResult<RecordPage> {
    let all = conditions(scope, query, Leave::Nothing);
    let total = count(db, &all, "")?;
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS} FROM {SUMMARY_FROM}{} ORDER BY {} LIMIT {} OFFSET {}",
        all.sql(),
        crate::storage::list_order(query.sort, query.descending, " COLLATE \"C\""),
        query.limit,
        query.offset
    );
    let records = db
        .query_once(&sql, &all.params())?
        .iter()
        .map(summary_from_row)
        .collect::<StorageResult<_>>()?;
    let counts = FilterCounts {
        record_type: grouped(db, &conditions(scope, query, Leave::Type), "record_type")?,
        review: grouped(db, &conditions(scope, query, Leave::Review), "review")?,
        conflicts: count(
            db,
            &conditions(scope, query, Leave::Conflicts),
            "n_conflicts > 0",
        )?,
        problems: count(
            db,
            &conditions(scope, query, Leave::Problems),
            "n_problems > 0",
        )?,
        deleted: count(
            db,
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

/// The operator's counts over what `scope` may see.
pub fn stats(db: &Db<'_>, scope: &Scope) -> StorageResult<Stats> {
    let mut c = Conditions::default();
    let visible = c.in_scope(scope, "m");
    c.clauses.extend(visible);
    let count = |from: &str| -> StorageResult<u64> {
        let n: i64 = db
            .query_once(
                &format!("SELECT COUNT(*) FROM {from}{}", c.sql()),
                &c.params(),
            )?
            .first()
            .map(|r| r.try_get(0))
            .transpose()?
            .unwrap_or(0);
        Ok(n as u64)
    };
    let log_entries: i64 = match scope.streams() {
        Some(streams) => {
            let streams: Vec<String> = streams.into_iter().collect();
            db.one(
                "SELECT COUNT(*) FROM log WHERE stream = ANY($1::TEXT[])",
                &[&streams],
            )?
            .try_get(0)?
        }
        None => db
            .one(
                "SELECT COUNT(*) FROM log WHERE $1 OR stream NOT LIKE '%#sensitive'",
                &[&scope.sensitive],
            )?
            .try_get(0)?,
    };
    Ok(Stats {
        records: count("merged m")?,
        changes: count("changes x JOIN merged m ON m.id = x.record_id")?,
        held: count("held x JOIN merged m ON m.id = x.record_id")?,
        log_entries: log_entries as u64,
    })
}

/// Writes a record's indicator facts.
pub fn refresh_facts(db: &Db<'_>, fact: &Fact) -> StorageResult<()> {
    db.exec(
        "INSERT INTO indicator_facts
           (id, record_type, commune, status, merged_into, review, sensitive, kind, date, detail,
            people)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (id) DO UPDATE SET record_type = excluded.record_type,
           commune = excluded.commune, status = excluded.status,
           merged_into = excluded.merged_into, review = excluded.review,
           sensitive = excluded.sensitive, kind = excluded.kind, date = excluded.date,
           detail = excluded.detail, people = excluded.people",
        &[
            &id_bytes(fact.id),
            &fact.record_type.as_str(),
            &fact.commune,
            &fact.status.as_str(),
            &fact.merged_into.map(id_bytes),
            &fact.review.as_str(),
            &fact.sensitive,
            &fact.kind,
            &fact.date,
            &serde_json::to_string(&fact.detail).unwrap_or_else(|_| "{}".into()),
            &fact.people_bytes(),
        ],
    )?;
    Ok(())
}

/// Every record's indicator facts.
pub fn load_facts(db: &Db<'_>) -> StorageResult<Vec<Fact>> {
    let rows = db.query(
        "SELECT id, record_type, commune, status, merged_into, review, sensitive, kind, date,
                detail, people FROM indicator_facts",
        &[],
    )?;
    rows.iter()
        .map(|r| {
            let record_type: String = r.try_get(1)?;
            let record_type = RecordType::parse(&record_type).ok_or_else(|| {
                StorageError::Corrupt(format!("facts of unknown type {record_type}"))
            })?;
            let detail: String = r.try_get(9)?;
            let detail: Detail = serde_json::from_str(&detail)
                .map_err(|e| StorageError::Corrupt(format!("indicator facts: {e}")))?;
            let status: String = r.try_get(3)?;
            let review: String = r.try_get(5)?;
            let people: Vec<u8> = r.try_get(10)?;
            let merged_into: Option<Vec<u8>> = r.try_get(4)?;
            Ok(Fact {
                id: uuid_col(r.try_get(0)?)?,
                record_type,
                commune: r.try_get(2)?,
                status: Status::parse(&status),
                merged_into: merged_into.map(uuid_col).transpose()?,
                review: ReviewPhase::parse(&review).unwrap_or_default(),
                sensitive: r.try_get(6)?,
                kind: r.try_get(7)?,
                date: r.try_get(8)?,
                detail,
                people: Fact::people_from_bytes(&people),
            })
        })
        .collect()
}

/// The list's filters for `query` as `scope` sees it: a `WHERE` clause and its parameters
/// (`$1`, `$2`, ...), so that the record exports select exactly what the list shows.
pub(super) fn filter(
    scope: &Scope,
    query: &RecordQuery,
) -> (String, Vec<Box<dyn ToSql + Sync + Send>>) {
    let c = conditions(scope, query, Leave::Nothing);
    (c.sql(), c.args)
}
