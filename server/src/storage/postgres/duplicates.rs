//! Candidate duplicates on PostgreSQL: detection keys and pairs kept up to date as changes
//! arrive, and what supervisors do with them. The rules are `crate::duplicates`'; merges and
//! undos are sync writes (they store changes), run under the sync writes' lock.

use super::db::Db;
use super::sync_store::PgSyncTx;
use super::{id_bytes, merged, uuid_col};
use crate::duplicates::{
    fields_to_take, matches, may_merge, ordered, parse_reasons, MAX_MATCHES_PER_KEY,
};
use crate::scope::Scope;
use crate::storage::{
    visible as visible_to, Absorbed, DuplicatePage, DuplicatePair, DuplicateQuery, MergedRecord,
    PairState, StorageError, StorageResult,
};
use crate::sync;
use fieldsync_core::dedup::dup_keys;
use fieldsync_core::record::{resolve, RecordChange};
use fieldsync_core::{RecordDoc, RecordView};
use std::collections::BTreeMap;
use uuid::Uuid;

/// Rewrites a record's detection keys and its candidate pairs (`crate::duplicates::reindex`).
pub fn reindex(db: &Db<'_>, view: &RecordView, now_ms: i64) -> StorageResult<()> {
    let id = id_bytes(view.id);
    db.exec("DELETE FROM dup_keys WHERE record_id = $1", &[&id])?;
    let keys = dup_keys(view);
    for key in &keys.own {
        db.exec(
            "INSERT INTO dup_keys (key, record_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[key, &id],
        )?;
    }
    let found = matches(&keys, |probe| {
        db.query(
            "SELECT record_id FROM dup_keys WHERE key = $1 AND record_id != $2
             ORDER BY record_id LIMIT $3",
            &[&probe, &id, &MAX_MATCHES_PER_KEY],
        )?
        .into_iter()
        .map(|r| uuid_col(r.try_get(0)?))
        .collect()
    })?;
    let found = crate::duplicates::scored(view, found, |other| {
        let json: Option<String> = db
            .opt("SELECT view FROM merged WHERE id = $1", &[&id_bytes(other)])?
            .map(|r| r.try_get(0))
            .transpose()?;
        Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
    })?;
    let existing = db
        .query(
            "SELECT a, b, state FROM dup_pairs WHERE a = $1
             UNION ALL SELECT a, b, state FROM dup_pairs WHERE b = $1",
            &[&id],
        )?
        .into_iter()
        .map(|r| {
            Ok((
                uuid_col(r.try_get(0)?)?,
                uuid_col(r.try_get(1)?)?,
                r.try_get(2)?,
            ))
        })
        .collect::<StorageResult<Vec<(Uuid, Uuid, String)>>>()?;
    let plan = crate::duplicates::reindex(view.id, &found, &existing);
    for (a, b) in plan.drop {
        db.exec(
            "DELETE FROM dup_pairs WHERE a = $1 AND b = $2",
            &[&id_bytes(a), &id_bytes(b)],
        )?;
    }
    for (a, b, reasons, score) in plan.upsert {
        db.exec(
            "INSERT INTO dup_pairs (a, b, record_type, reasons, state, found_ms, score)
             VALUES ($1, $2, $3, $4, 'open', $5, $6)
             ON CONFLICT (a, b) DO UPDATE SET reasons = excluded.reasons, score = excluded.score",
            &[
                &id_bytes(a),
                &id_bytes(b),
                &view.record_type.as_str(),
                &reasons,
                &now_ms,
                &score,
            ],
        )?;
    }
    Ok(())
}

/// Indexes every record again (after the keys and open pairs were cleared).
pub fn index_all(db: &Db<'_>, now_ms: i64) -> StorageResult<()> {
    let views: Vec<String> = db
        .query(
            "SELECT view FROM merged WHERE record_type IN ('person', 'household') ORDER BY id",
            &[],
        )?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    for view in views {
        // A row that does not parse is left out of detection.
        if let Ok(view) = serde_json::from_str::<RecordView>(&view) {
            reindex(db, &view, now_ms)?;
        }
    }
    Ok(())
}

/// The candidate pairs `scope` may see (both records visible), most alike first, then newest.
pub fn list(db: &Db<'_>, scope: &Scope, query: &DuplicateQuery) -> StorageResult<DuplicatePage> {
    let type_name = query.record_type.map(|t| t.as_str()).unwrap_or_default();
    let record = query.record.map(id_bytes);
    let rows = db.query(
        "SELECT p.a, p.b, p.record_type, ma.commune, ma.sensitive, mb.commune, mb.sensitive
         FROM dup_pairs p JOIN merged ma ON ma.id = p.a JOIN merged mb ON mb.id = p.b
         WHERE p.state = $1 AND ($2 = '' OR p.record_type = $2)
           AND ($3::BYTEA IS NULL OR p.a = $3 OR p.b = $3)
         ORDER BY p.score DESC, p.found_ms DESC, p.a, p.b",
        &[&query.state.as_str(), &type_name, &record],
    )?;
    let mut visible = Vec::new();
    for r in rows {
        let t: String = r.try_get(2)?;
        let Some(record_type) = fieldsync_core::RecordType::parse(&t) else {
            continue;
        };
        let (ca, sa): (Option<String>, bool) = (r.try_get(3)?, r.try_get(4)?);
        let (cb, sb): (Option<String>, bool) = (r.try_get(5)?, r.try_get(6)?);
        let sees = |commune: &Option<String>, sensitive: bool| {
            visible_to(scope, record_type, commune.as_deref(), sensitive)
        };
        let wanted = |commune: &Option<String>| match (&query.communes, commune) {
            (None, _) => true,
            (Some(set), Some(c)) => set.contains(c),
            (Some(_), None) => false,
        };
        if sees(&ca, sa) && sees(&cb, sb) && (wanted(&ca) || wanted(&cb)) {
            visible.push((r.try_get::<_, Vec<u8>>(0)?, r.try_get::<_, Vec<u8>>(1)?));
        }
    }
    let total = visible.len() as u64;
    let mut pairs = Vec::new();
    for (a, b) in visible
        .into_iter()
        .skip(query.offset as usize)
        .take(query.limit as usize)
    {
        if let Some(pair) = pair(db, uuid_col(a)?, uuid_col(b)?)? {
            pairs.push(pair);
        }
    }
    Ok(DuplicatePage { total, pairs })
}

/// One pair with both records.
pub fn pair(db: &Db<'_>, a: Uuid, b: Uuid) -> StorageResult<Option<DuplicatePair>> {
    let (a, b) = ordered(a, b);
    let Some(r) = db.opt(
        "SELECT reasons, state, decided_by, decided_ms, found_ms, score FROM dup_pairs
         WHERE a = $1 AND b = $2",
        &[&id_bytes(a), &id_bytes(b)],
    )?
    else {
        return Ok(None);
    };
    let (Some(ra), Some(rb)) = (merged::get(db, a)?, merged::get(db, b)?) else {
        return Ok(None);
    };
    let state: String = r.try_get(1)?;
    Ok(Some(DuplicatePair {
        a: ra,
        b: rb,
        reasons: parse_reasons(r.try_get(0)?)?,
        score: r.try_get(5)?,
        state: PairState::parse(&state).unwrap_or(PairState::Open),
        decided_by: r.try_get(2)?,
        decided_ms: r.try_get(3)?,
        found_ms: r.try_get(4)?,
    }))
}

/// Marks a pair "not a duplicate": it stays so whatever changes later.
pub fn dismiss(
    db: &Db<'_>,
    scope: &Scope,
    a: Uuid,
    b: Uuid,
    by: &str,
    now_ms: i64,
) -> StorageResult<()> {
    let pair = pair(db, a, b)?
        .filter(|p| p.a.visible_to(scope) && p.b.visible_to(scope))
        .ok_or_else(|| StorageError::NotFound("duplicate pair".into()))?;
    if pair.state == PairState::Merged {
        return Err(StorageError::Conflict(
            "the pair was merged; undo the merge instead".into(),
        ));
    }
    let (a, b) = ordered(a, b);
    db.exec(
        "UPDATE dup_pairs SET state = 'dismissed', decided_by = $3, decided_ms = $4
         WHERE a = $1 AND b = $2",
        &[&id_bytes(a), &id_bytes(b), &by, &now_ms],
    )?;
    Ok(())
}

/// A record the caller may see, or `NotFound` as for an unknown one.
fn visible(db: &Db<'_>, scope: &Scope, id: Uuid) -> StorageResult<MergedRecord> {
    merged::get(db, id)?
        .filter(|r| r.visible_to(scope))
        .ok_or_else(|| StorageError::NotFound(format!("record {id}")))
}

/// Stores changes a supervisor's device wrote, as that device; none may be refused.
fn ingest(
    db: &Db<'_>,
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
    match sync::push_own(&mut PgSyncTx::new(db), device, scope, &changes, now_ms)? {
        Some(r) => Err(StorageError::Invalid(format!(
            "record {} refused the change ({:?})",
            r.record_id, r.code
        ))),
        None => Ok(()),
    }
}

fn doc_for_writing(
    db: &Db<'_>,
    server_id: &[u8; 16],
    id: Uuid,
    device: Uuid,
) -> StorageResult<RecordDoc> {
    sync::doc_for_writing(&mut PgSyncTx::new(db), server_id, id, device)
}

/// Merges `duplicate` into `keep` (see the SQLite backend's `duplicates::merge`).
#[allow(clippy::too_many_arguments)] // one call site, each argument named there
pub fn merge(
    db: &Db<'_>,
    server_id: &[u8; 16],
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
    let (kept, dup) = (visible(db, scope, keep)?, visible(db, scope, duplicate)?);
    may_merge(scope, &kept, &dup)?;
    let mut kept_doc = doc_for_writing(db, server_id, keep, device)?;
    let mut dup_doc = doc_for_writing(db, server_id, duplicate, device)?;
    let taken = fields_to_take(&kept_doc.view()?, &dup_doc.view()?, take)?;
    let (a, b) = ordered(keep, duplicate);
    let reasons: String = match db.opt(
        "SELECT reasons FROM dup_pairs WHERE a = $1 AND b = $2",
        &[&id_bytes(a), &id_bytes(b)],
    )? {
        Some(r) => r.try_get(0)?,
        None => "[]".into(),
    };
    let marked = dup_doc.merge_into(keep)?;
    let absorbed = kept_doc.absorb(duplicate, &taken)?;
    ingest(db, device, scope, now_ms, [marked, absorbed])?;
    db.exec(
        "INSERT INTO dup_pairs (a, b, record_type, reasons, state, decided_by, decided_ms,
                                found_ms)
         VALUES ($1, $2, $3, $4, 'merged', $5, $6, $6)
         ON CONFLICT (a, b) DO UPDATE SET state = 'merged', decided_by = excluded.decided_by,
           decided_ms = excluded.decided_ms",
        &[
            &id_bytes(a),
            &id_bytes(b),
            &kept.record_type.as_str(),
            &reasons,
            &by,
            &now_ms,
        ],
    )?;
    Ok(())
}

/// Undoes the merge of `duplicate` (see the SQLite backend's `duplicates::unmerge`).
pub fn unmerge(
    db: &Db<'_>,
    server_id: &[u8; 16],
    device: Uuid,
    scope: &Scope,
    duplicate: Uuid,
    now_ms: i64,
) -> StorageResult<Uuid> {
    visible(db, scope, duplicate)?;
    let mut dup_doc = doc_for_writing(db, server_id, duplicate, device)?;
    let keep = dup_doc
        .view()?
        .merged_into
        .ok_or_else(|| StorageError::Conflict("the record is not merged".into()))?;
    visible(db, scope, keep)?;
    let mut kept_doc = doc_for_writing(db, server_id, keep, device)?;
    let (a, b) = ordered(keep, duplicate);
    db.exec(
        "DELETE FROM dup_pairs WHERE a = $1 AND b = $2",
        &[&id_bytes(a), &id_bytes(b)],
    )?;
    let unmarked = dup_doc.unmerge()?;
    let released = kept_doc.release(duplicate)?;
    ingest(db, device, scope, now_ms, [unmarked, released])?;
    Ok(keep)
}

/// The duplicates merged into `keep` that `scope` may see, with their edits after the merge.
pub fn absorbed(db: &Db<'_>, keep: Uuid, scope: &Scope) -> StorageResult<Vec<Absorbed>> {
    let rows = db.query(
        "SELECT id, title, merge_edits, record_type, commune, sensitive FROM merged
         WHERE merged_into = $1 ORDER BY id",
        &[&id_bytes(keep)],
    )?;
    let mut out = Vec::new();
    for r in rows {
        let record_type: String = r.try_get(3)?;
        let Some(record_type) = fieldsync_core::RecordType::parse(&record_type) else {
            continue;
        };
        let commune: Option<String> = r.try_get(4)?;
        let sensitive = r.try_get::<_, bool>(5)? || record_type.is_sensitive();
        if !visible_to(scope, record_type, commune.as_deref(), sensitive) {
            continue;
        }
        let edits: String = r.try_get(2)?;
        out.push(Absorbed {
            id: uuid_col(r.try_get(0)?)?,
            title: r.try_get(1)?,
            edits_after_merge: serde_json::from_str(&edits)
                .map_err(|e| StorageError::Corrupt(format!("merge edits: {e}")))?,
        });
    }
    Ok(out)
}

/// Where each of `ids` leads after merges (only those that lead elsewhere).
pub fn resolve_all(db: &Db<'_>, ids: &[Uuid]) -> StorageResult<BTreeMap<Uuid, Uuid>> {
    let mut failure = None;
    let mut out = BTreeMap::new();
    for id in ids {
        let to = resolve(*id, |x| {
            match db.opt(
                "SELECT merged_into FROM merged WHERE id = $1",
                &[&id_bytes(x)],
            ) {
                Ok(row) => row
                    .and_then(|r| r.try_get::<_, Option<Vec<u8>>>(0).ok().flatten())
                    .and_then(|b| Uuid::from_slice(&b).ok()),
                Err(e) => {
                    failure = Some(e);
                    None
                }
            }
        });
        if let Some(e) = failure.take() {
            return Err(e);
        }
        if to != *id {
            out.insert(*id, to);
        }
    }
    Ok(out)
}
