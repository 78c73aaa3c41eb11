//! Recovery after the server refuses a change. The refused change and every later local edit of
//! the same record (each was made on top of it) leave the record, which returns to what the
//! server accepted; the values they carried and the server's reason are kept, so the collector
//! sees what was not taken and can enter it again. Later edits then sync normally.

use super::{load_doc, projection, uuid_from_row, Store};
use crate::error::Result;
use crate::model::Value;
use automerge::ChangeHash;
use rusqlite::{params, OptionalExtension, Transaction};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// What the server did not take, as the collector should see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RefusedEdit {
    pub record_id: Uuid,
    /// The server's reason (a rejection code such as `out_of_scope`).
    pub code: String,
    /// How many local edits left the record with it.
    pub edits_left_out: u32,
    /// The values those edits had set, by field (`$deleted` and set members included);
    /// `None` for a value they had cleared.
    pub fields: BTreeMap<String, Option<Value>>,
}

impl Store {
    /// Handles the server's refusals: `(hash, code)` of changes this phone pushed.
    pub fn reject(&mut self, refused: &[([u8; 32], &str)]) -> Result<()> {
        if refused.is_empty() {
            return Ok(());
        }
        let device_id = self.device_id;
        let tx = self.conn.transaction()?;
        for (hash, code) in refused {
            recover(&tx, device_id, hash, code)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Whether a change was refused by the server (directly or as a later edit of a refusal).
    pub fn is_rejected(&self, hash: &[u8; 32]) -> Result<bool> {
        Ok(self
            .conn
            .query_row(
                "SELECT acked = 2 FROM changes WHERE hash = ?1",
                [&hash[..]],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(false))
    }

    /// Refused edits, newest first; of one record, or of all.
    pub fn refused_edits(&self, record: Option<Uuid>) -> Result<Vec<RefusedEdit>> {
        let mut stmt = self.conn.prepare(
            "SELECT record_id, code, left_out, fields FROM refusals
             WHERE ?1 IS NULL OR record_id = ?1 ORDER BY seq DESC",
        )?;
        let rows = stmt.query_map([record.map(|r| r.as_bytes().to_vec())], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, u32>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        rows.map(|row| {
            let (id, code, edits_left_out, fields) = row?;
            Ok(RefusedEdit {
                record_id: uuid_from_row(id)?,
                code,
                edits_left_out,
                fields: serde_json::from_str(&fields).unwrap_or_default(),
            })
        })
        .collect()
    }
}

fn recover(tx: &Transaction<'_>, device_id: Uuid, hash: &[u8; 32], code: &str) -> Result<()> {
    let row: Option<(Vec<u8>, i64, i64)> = tx
        .query_row(
            "SELECT record_id, seq, acked FROM changes WHERE hash = ?1 AND local = 1",
            [&hash[..]],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    // Not ours, or already handled (a refusal repeated after a lost response).
    let Some((record, seq, acked)) = row else {
        return Ok(());
    };
    if acked == 2 {
        return Ok(());
    }
    let id = uuid_from_row(record.clone())?;
    tx.execute(
        "UPDATE changes SET acked = 2 WHERE local = 1 AND acked = 0 AND record_id = ?1 AND seq >= ?2",
        params![record, seq],
    )?;
    let refused: BTreeSet<ChangeHash> = {
        let mut stmt = tx.prepare("SELECT hash FROM changes WHERE record_id = ?1 AND acked = 2")?;
        let rows = stmt.query_map([&record], |r| r.get::<_, Vec<u8>>(0))?;
        rows.filter_map(|h| h.ok())
            .filter_map(|h| ChangeHash::try_from(h.as_slice()).ok())
            .collect()
    };
    let mut doc = load_doc(tx, id, device_id)?;
    let before = doc.view().ok();
    let (mut rebuilt, left_out) = doc.without(&refused)?;
    let after = rebuilt.view().ok();
    let fields = changed_values(before.as_ref(), after.as_ref());
    tx.execute(
        "INSERT OR IGNORE INTO refusals (hash, record_id, code, left_out, fields) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            &hash[..],
            record,
            code,
            left_out.len() as i64,
            serde_json::to_string(&fields).unwrap_or_default()
        ],
    )?;
    // The rebuilt document is now the whole record: rows already in it must not be applied
    // on top again, so the snapshot reaches the newest row of the table.
    let top: i64 = tx.query_row("SELECT COALESCE(MAX(seq), 0) FROM changes", [], |r| {
        r.get(0)
    })?;
    match after {
        Some(view) => {
            tx.execute(
                "UPDATE records SET snapshot = ?2, snapshot_seq = ?3 WHERE id = ?1",
                params![id.as_bytes(), rebuilt.save(), top],
            )?;
            projection::upsert(tx, &view, top)?;
        }
        None => {
            // The creation itself was refused: the server never had this record.
            tx.execute("DELETE FROM records WHERE id = ?1", [id.as_bytes()])?;
            projection::remove(tx, id)?;
        }
    }
    Ok(())
}

/// Each field, set member or flag whose value differs between the two views, with its value
/// in `before` (`None` where `before` had it cleared).
fn changed_values(
    before: Option<&crate::RecordView>,
    after: Option<&crate::RecordView>,
) -> BTreeMap<String, Option<Value>> {
    let mut out = BTreeMap::new();
    let Some(before) = before else {
        return out;
    };
    let empty = BTreeMap::new();
    let after_fields = after.map_or(&empty, |a| &a.fields);
    for (name, value) in &before.fields {
        if after_fields.get(name) != Some(value) {
            out.insert(name.clone(), Some(value.clone()));
        }
    }
    for name in after_fields.keys() {
        if !before.fields.contains_key(name) {
            out.insert(name.clone(), None);
        }
    }
    let no_sets = BTreeMap::new();
    let after_sets = after.map_or(&no_sets, |a| &a.sets);
    for (field, members) in &before.sets {
        for m in members {
            if !after_sets.get(field).is_some_and(|s| s.contains(m)) {
                out.insert(format!("{field}/{m}"), Some(Value::Bool(true)));
            }
        }
    }
    for (field, members) in after_sets {
        for m in members {
            if !before.sets.get(field).is_some_and(|s| s.contains(m)) {
                out.insert(format!("{field}/{m}"), None);
            }
        }
    }
    if after.is_none_or(|a| a.deleted != before.deleted) {
        out.insert("$deleted".into(), Some(Value::Bool(before.deleted)));
    }
    out
}
