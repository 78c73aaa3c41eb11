//! Candidate duplicates, kept up to date as changes arrive, and what supervisors do with them:
//! dismiss a pair, merge one record into the other (two CRDT changes, synced like any edit),
//! and undo a merge. Nothing is ever removed: a merged record stays, redirected.

use super::SqliteSyncTx;
use super::{merged, uuid_col};
use crate::scope::Scope;
use crate::storage::{
    visible as visible_to, Absorbed, DuplicatePage, DuplicatePair, DuplicateQuery, MergedRecord,
    PairState, StorageError, StorageResult,
};
use crate::sync;
use fieldsync_core::dedup::dup_keys;
use fieldsync_core::record::{resolve, RecordChange};
use fieldsync_core::{RecordDoc, RecordView};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use std::collections::BTreeMap;
use uuid::Uuid;

use crate::duplicates::{fields_to_take, may_merge, ordered, MAX_MATCHES_PER_KEY};

/// Rewrites a record's detection keys and its candidate pairs: new matches become open pairs,
/// open pairs that no longer match go, and a pair a supervisor dismissed or merged stays as
/// it was decided.
pub fn reindex(tx: &Transaction<'_>, view: &RecordView, now_ms: i64) -> StorageResult<()> {
    let id = view.id;
    tx.execute("DELETE FROM dup_keys WHERE record_id = ?1", [id.as_bytes()])?;
    let keys = dup_keys(view);
    for key in &keys.own {
        tx.prepare_cached("INSERT OR IGNORE INTO dup_keys (key, record_id) VALUES (?1, ?2)")?
            .execute(params![key, id.as_bytes()])?;
    }
    let found = {
        let mut stmt = tx.prepare_cached(
            "SELECT record_id FROM dup_keys WHERE key = ?1 AND record_id != ?2
             ORDER BY record_id LIMIT ?3",
        )?;
        crate::duplicates::matches(&keys, |probe| {
            let rows = stmt.query_map(params![probe, id.as_bytes(), MAX_MATCHES_PER_KEY], |r| {
                r.get::<_, Vec<u8>>(0)
            })?;
            rows.map(|other| uuid_col(other?)).collect()
        })?
    };
    let found = crate::duplicates::scored(view, found, |other| {
        let json: Option<String> = tx
            .prepare_cached("SELECT view FROM merged WHERE id = ?1")?
            .query_row([other.as_bytes()], |r| r.get(0))
            .optional()?;
        Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
    })?;
    let existing: Vec<(Uuid, Uuid, String)> = {
        let mut stmt = tx.prepare_cached(
            "SELECT a, b, state FROM dup_pairs WHERE a = ?1
             UNION ALL SELECT a, b, state FROM dup_pairs WHERE b = ?1",
        )?;
        let rows = stmt.query_map([id.as_bytes()], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?, r.get(2)?))
        })?;
        rows.map(|row| {
            let (a, b, state) = row?;
            Ok((uuid_col(a)?, uuid_col(b)?, state))
        })
        .collect::<StorageResult<_>>()?
    };
    let plan = crate::duplicates::reindex(id, &found, &existing);
    for (a, b) in plan.drop {
        tx.execute(
            "DELETE FROM dup_pairs WHERE a = ?1 AND b = ?2",
            params![a.as_bytes(), b.as_bytes()],
        )?;
    }
    for (a, b, reasons, score) in plan.upsert {
        tx.prepare_cached(
            "INSERT INTO dup_pairs (a, b, record_type, reasons, state, found_ms, score)
             VALUES (?1, ?2, ?3, ?4, 'open', ?5, ?6)
             ON CONFLICT(a, b) DO UPDATE SET reasons = excluded.reasons, score = excluded.score",
        )?
        .execute(params![
            a.as_bytes(),
            b.as_bytes(),
            view.record_type.as_str(),
            reasons,
            now_ms,
            score
        ])?;
    }
    Ok(())
}

/// Indexes every record of a database from before duplicate detection.
pub fn index_all(tx: &Transaction<'_>, now_ms: i64) -> StorageResult<()> {
    let views: Vec<String> = {
        let mut stmt = tx.prepare(
            "SELECT view FROM merged WHERE record_type IN ('person', 'household') ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    for view in views {
        // A row that does not parse is left out of detection rather than failing the upgrade.
        if let Ok(view) = serde_json::from_str::<RecordView>(&view) {
            reindex(tx, &view, now_ms)?;
        }
    }
    Ok(())
}

/// The candidate pairs `scope` may see (both records visible), most alike first, then newest.
pub fn list(
    conn: &Connection,
    scope: &Scope,
    query: &DuplicateQuery,
) -> StorageResult<DuplicatePage> {
    let mut sql = String::from(
        "SELECT p.a, p.b, p.record_type, ma.commune, ma.sensitive, mb.commune, mb.sensitive
         FROM dup_pairs p JOIN merged ma ON ma.id = p.a JOIN merged mb ON mb.id = p.b
         WHERE p.state = ?1",
    );
    let type_name = query.record_type.map(|t| t.as_str()).unwrap_or_default();
    if query.record_type.is_some() {
        sql.push_str(" AND p.record_type = ?2");
    } else {
        sql.push_str(" AND ?2 = ''");
    }
    sql.push_str(" AND (?3 IS NULL OR p.a = ?3 OR p.b = ?3)");
    sql.push_str(" ORDER BY p.score DESC, p.found_ms DESC, p.a, p.b");
    let mut stmt = conn.prepare(&sql)?;
    let record = query.record.map(|r| r.as_bytes().to_vec());
    let rows = stmt.query_map(params![query.state.as_str(), type_name, record], |r| {
        Ok((
            r.get::<_, Vec<u8>>(0)?,
            r.get::<_, Vec<u8>>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, Option<String>>(3)?,
            r.get::<_, bool>(4)?,
            r.get::<_, Option<String>>(5)?,
            r.get::<_, bool>(6)?,
        ))
    })?;
    let mut visible = Vec::new();
    for row in rows {
        let (a, b, t, ca, sa, cb, sb) = row?;
        let Some(record_type) = fieldsync_core::RecordType::parse(&t) else {
            continue;
        };
        let sees = |commune: &Option<String>, sensitive: bool| {
            visible_to(scope, record_type, commune.as_deref(), sensitive)
        };
        let wanted = |commune: &Option<String>| match (&query.communes, commune) {
            (None, _) => true,
            (Some(set), Some(c)) => set.contains(c),
            (Some(_), None) => false,
        };
        if sees(&ca, sa) && sees(&cb, sb) && (wanted(&ca) || wanted(&cb)) {
            visible.push((a, b));
        }
    }
    let total = visible.len() as u64;
    let mut pairs = Vec::new();
    for (a, b) in visible
        .into_iter()
        .skip(query.offset as usize)
        .take(query.limit as usize)
    {
        let (a, b) = (uuid_col(a)?, uuid_col(b)?);
        if let Some(pair) = pair(conn, a, b)? {
            pairs.push(pair);
        }
    }
    Ok(DuplicatePage { total, pairs })
}

/// One pair with both records.
pub fn pair(conn: &Connection, a: Uuid, b: Uuid) -> StorageResult<Option<DuplicatePair>> {
    let (a, b) = ordered(a, b);
    let row = conn
        .query_row(
            "SELECT reasons, state, decided_by, decided_ms, found_ms, score FROM dup_pairs
             WHERE a = ?1 AND b = ?2",
            params![a.as_bytes(), b.as_bytes()],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                ))
            },
        )
        .optional()?;
    let Some((reasons, state, decided_by, decided_ms, found_ms, score)) = row else {
        return Ok(None);
    };
    let (Some(ra), Some(rb)) = (merged::get(conn, a)?, merged::get(conn, b)?) else {
        return Ok(None);
    };
    Ok(Some(DuplicatePair {
        a: ra,
        b: rb,
        reasons: crate::duplicates::parse_reasons(&reasons)?,
        score,
        state: PairState::parse(&state).unwrap_or(PairState::Open),
        decided_by,
        decided_ms,
        found_ms,
    }))
}

/// Marks a pair "not a duplicate": it stays so whatever changes later.
pub fn dismiss(
    conn: &mut Connection,
    scope: &Scope,
    a: Uuid,
    b: Uuid,
    by: &str,
    now_ms: i64,
) -> StorageResult<()> {
    let tx = conn.transaction()?;
    let pair = pair(&tx, a, b)?
        .filter(|p| p.a.visible_to(scope) && p.b.visible_to(scope))
        .ok_or_else(|| StorageError::NotFound("duplicate pair".into()))?;
    if pair.state == PairState::Merged {
        return Err(StorageError::Conflict(
            "the pair was merged; undo the merge instead".into(),
        ));
    }
    let (a, b) = ordered(a, b);
    tx.execute(
        "UPDATE dup_pairs SET state = 'dismissed', decided_by = ?3, decided_ms = ?4
         WHERE a = ?1 AND b = ?2",
        params![a.as_bytes(), b.as_bytes(), by, now_ms],
    )?;
    tx.commit()?;
    Ok(())
}

/// A record the caller may see, or `NotFound` as for an unknown one.
fn visible(tx: &Transaction<'_>, scope: &Scope, id: Uuid) -> StorageResult<MergedRecord> {
    merged::get(tx, id)?
        .filter(|r| r.visible_to(scope))
        .ok_or_else(|| StorageError::NotFound(format!("record {id}")))
}

/// Stores changes a supervisor's device wrote, as that device; none may be refused.
fn ingest(
    tx: &Transaction<'_>,
    device: Uuid,
    scope: &Scope,
    now_ms: i64,
    changes: impl IntoIterator<Item = Option<RecordChange>>,
) -> StorageResult<()> {
    let changes: Vec<RecordChange> = changes.into_iter().flatten().collect();
    let changes: Vec<(Uuid, &[u8])> = changes
        .iter()
        .map(|c| (c.record_id, &c.bytes[..]))
        .collect();
    match sync::push_own(&mut SqliteSyncTx::new(tx), device, scope, &changes, now_ms)? {
        Some(r) => Err(StorageError::Invalid(format!(
            "record {} refused the change ({:?})",
            r.record_id, r.code
        ))),
        None => Ok(()),
    }
}

/// A record's document to write a supervisor's change into.
fn doc_for_writing(tx: &Transaction<'_>, id: Uuid, device: Uuid) -> StorageResult<RecordDoc> {
    let server_id = super::stored_server_id(tx)?;
    sync::doc_for_writing(&mut SqliteSyncTx::new(tx), server_id.as_bytes(), id, device)
}

/// Merges `duplicate` into `keep`: the duplicate is marked merged (never deleted) and the
/// kept record marks it absorbed, taking over `take`, fields it lacks, from the duplicate.
#[allow(clippy::too_many_arguments)] // one call site, each argument named there
pub fn merge(
    conn: &mut Connection,
    device: Uuid,
    scope: &Scope,
    keep: Uuid,
    duplicate: Uuid,
    take: &[String],
    by: &str,
    now_ms: i64,
) -> StorageResult<()> {
    if keep == duplicate {
        return Err(StorageError::Invalid(
            "a record cannot be merged into itself".into(),
        ));
    }
    let tx = conn.transaction()?;
    let (kept, dup) = (visible(&tx, scope, keep)?, visible(&tx, scope, duplicate)?);
    may_merge(scope, &kept, &dup)?;
    let mut kept_doc = doc_for_writing(&tx, keep, device)?;
    let mut dup_doc = doc_for_writing(&tx, duplicate, device)?;
    let (kept_view, dup_view) = (kept_doc.view()?, dup_doc.view()?);
    let taken = fields_to_take(&kept_view, &dup_view, take)?;
    let (a, b) = ordered(keep, duplicate);
    let reasons: String = tx
        .query_row(
            "SELECT reasons FROM dup_pairs WHERE a = ?1 AND b = ?2",
            params![a.as_bytes(), b.as_bytes()],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or_else(|| "[]".into());
    let marked = dup_doc.merge_into(keep)?;
    let absorbed = kept_doc.absorb(duplicate, &taken)?;
    ingest(&tx, device, scope, now_ms, [marked, absorbed])?;
    tx.execute(
        "INSERT INTO dup_pairs (a, b, record_type, reasons, state, decided_by, decided_ms, found_ms)
         VALUES (?1, ?2, ?3, ?4, 'merged', ?5, ?6, ?6)
         ON CONFLICT(a, b) DO UPDATE SET state = 'merged', decided_by = excluded.decided_by,
           decided_ms = excluded.decided_ms",
        params![
            a.as_bytes(),
            b.as_bytes(),
            kept.record_type.as_str(),
            reasons,
            by,
            now_ms
        ],
    )?;
    tx.commit()?;
    Ok(())
}

/// Undoes the merge of `duplicate`: both records stand on their own again, the values the
/// merge took over leave the kept record unless edited since, and edits made in between
/// (on either record) stay. The pair goes back to the queue if it still matches.
pub fn unmerge(
    conn: &mut Connection,
    device: Uuid,
    scope: &Scope,
    duplicate: Uuid,
    now_ms: i64,
) -> StorageResult<Uuid> {
    let tx = conn.transaction()?;
    visible(&tx, scope, duplicate)?;
    let mut dup_doc = doc_for_writing(&tx, duplicate, device)?;
    let keep = dup_doc
        .view()?
        .merged_into
        .ok_or_else(|| StorageError::Conflict("the record is not merged".into()))?;
    // Both must be visible, as for a merge; one commune is not asked for: an undo only
    // separates two records, which shows nobody anything, and either may have moved since.
    visible(&tx, scope, keep)?;
    let mut kept_doc = doc_for_writing(&tx, keep, device)?;
    let (a, b) = ordered(keep, duplicate);
    tx.execute(
        "DELETE FROM dup_pairs WHERE a = ?1 AND b = ?2",
        params![a.as_bytes(), b.as_bytes()],
    )?;
    let unmarked = dup_doc.unmerge()?;
    let released = kept_doc.release(duplicate)?;
    ingest(&tx, device, scope, now_ms, [unmarked, released])?;
    tx.commit()?;
    Ok(keep)
}

/// The duplicates merged into `keep` that `scope` may see, with the edits each received after
/// its merge. One the caller may not see (merged by a supervisor of wider areas) is left out:
/// its name and id would be another area's person.
pub fn absorbed(conn: &Connection, keep: Uuid, scope: &Scope) -> StorageResult<Vec<Absorbed>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, title, merge_edits, record_type, commune, sensitive FROM merged
         WHERE merged_into = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map([keep.as_bytes()], |r| {
        Ok((
            r.get::<_, Vec<u8>>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, Option<String>>(4)?,
            r.get::<_, bool>(5)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, title, edits, record_type, commune, sensitive) = row?;
        let Some(record_type) = fieldsync_core::RecordType::parse(&record_type) else {
            continue;
        };
        let sensitive = sensitive || record_type.is_sensitive();
        if !visible_to(scope, record_type, commune.as_deref(), sensitive) {
            continue;
        }
        out.push(Absorbed {
            id: uuid_col(id)?,
            title,
            edits_after_merge: serde_json::from_str(&edits)
                .map_err(|e| StorageError::Corrupt(format!("merge edits: {e}")))?,
        });
    }
    Ok(out)
}

/// Where each of `ids` leads after merges (only those that lead elsewhere).
pub fn resolve_all(conn: &Connection, ids: &[Uuid]) -> StorageResult<BTreeMap<Uuid, Uuid>> {
    let mut stmt = conn.prepare_cached("SELECT merged_into FROM merged WHERE id = ?1")?;
    let mut failure = None;
    let mut out = BTreeMap::new();
    for id in ids {
        let to = resolve(*id, |x| {
            match stmt
                .query_row([x.as_bytes()], |r| r.get::<_, Option<Vec<u8>>>(0))
                .optional()
            {
                Ok(m) => m.flatten().and_then(|b| Uuid::from_slice(&b).ok()),
                Err(e) => {
                    failure = Some(e);
                    None
                }
            }
        });
        if let Some(e) = failure.take() {
            return Err(e.into());
        }
        if to != *id {
            out.insert(*id, to);
        }
    }
    Ok(out)
}
