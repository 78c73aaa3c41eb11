//! A record's history as readers see it, whatever database keeps the changes: each change with
//! who made it, what kind of change it was, and for each key it wrote the value before and the
//! value it left, both read from the record's own document at that change (a change that only
//! deleted the losing values of a conflict shows the value kept). Backends give the changes and
//! the author lookup.

use crate::storage::{Author, ChangeKind, HistoryEntry, HistoryOp, StorageError, StorageResult};
use automerge::legacy::{Key, OpType};
use fieldsync_core::record::decode_change;
use fieldsync_core::RecordDoc;
use std::collections::BTreeMap;
use uuid::Uuid;

/// The history of a record from its changes (`(bytes, received_ms)`, oldest first), its
/// current document if it has one, and `author`, who is behind an actor (bytes).
pub fn history(
    doc: Option<&RecordDoc>,
    changes: Vec<(Vec<u8>, i64)>,
    mut author: impl FnMut(&[u8]) -> StorageResult<Author>,
) -> StorageResult<Vec<HistoryEntry>> {
    let mut cache: BTreeMap<Vec<u8>, Author> = BTreeMap::new();
    let mut out = Vec::with_capacity(changes.len());
    // While the changes form one chain (each depending on the one before, as one phone's edits
    // do), the values before each change are those the chain has left so far: no need to ask
    // the document, which costs a walk of the change graph per question. After the first
    // change that is not (concurrent edits), every value is read from the document.
    let mut chain: Option<(
        Option<automerge::ChangeHash>,
        BTreeMap<String, fieldsync_core::Value>,
    )> = Some((None, BTreeMap::new()));
    for (bytes, received_ms) in changes {
        let change = decode_change(&bytes)
            .map_err(|e| StorageError::Corrupt(format!("stored change: {e}")))?;
        let actor = change.actor_id().to_bytes().to_vec();
        let author = match cache.get(&actor) {
            Some(a) => a.clone(),
            None => {
                let a = author(&actor)?;
                cache.insert(actor, a.clone());
                a
            }
        };
        let hash = change.hash();
        let deps = change.deps().to_vec();
        let linear = match &chain {
            Some((None, _)) => deps.is_empty(),
            Some((Some(last), _)) => deps == [*last],
            None => false,
        };
        if !linear {
            chain = None;
        }
        let mut written: Vec<(String, bool)> = Vec::new();
        let mut puts: BTreeMap<String, Option<fieldsync_core::Value>> = BTreeMap::new();
        for op in change.decode().operations {
            let Key::Map(key) = op.key else { continue };
            let key = key.to_string();
            if !written.iter().any(|(k, _)| *k == key) {
                written.push((key.clone(), false));
            }
            if let OpType::Put(v) = op.action {
                puts.insert(key.clone(), fieldsync_core::record::from_scalar(&v));
                if let Some(entry) = written.iter_mut().find(|(k, _)| *k == key) {
                    entry.1 = true;
                }
            }
        }
        let ops: Vec<HistoryOp> = written
            .into_iter()
            .map(|(key, put)| {
                let (value, old) = match chain.as_mut() {
                    Some((_, values)) => {
                        // In a chain a delete leaves nothing: no concurrent value survives it.
                        let value = if put {
                            puts.remove(&key).flatten()
                        } else {
                            None
                        };
                        let old = match &value {
                            Some(v) => values.insert(key.clone(), v.clone()),
                            None => values.remove(&key),
                        };
                        (value, old)
                    }
                    None => {
                        let value = if put {
                            puts.remove(&key).flatten()
                        } else {
                            doc.and_then(|d| d.value_after(&key, hash))
                        };
                        (value, doc.and_then(|d| d.value_at(&key, &deps)))
                    }
                };
                // Keys are shown as readers know them: `village`, `members/<id>`, `$deleted`.
                let key = key
                    .strip_prefix("f/")
                    .or_else(|| key.strip_prefix("s/"))
                    .unwrap_or(&key)
                    .to_owned();
                HistoryOp { key, value, old }
            })
            .collect();
        if let Some((last, _)) = chain.as_mut() {
            *last = Some(hash);
        }
        out.push(HistoryEntry {
            received_ms,
            device_time_s: change.timestamp(),
            kind: kind(&ops, &author),
            author,
            ops,
        });
    }
    Ok(out)
}

/// What a change did, from the keys it wrote: creating the record, a merge mark on either side
/// (set: merge; deleted: its undo), a review, or field changes, which are a correction when a
/// supervisor's or admin's device made them (on the records page or taking over an edit) and
/// an edit otherwise.
pub fn kind(ops: &[HistoryOp], author: &Author) -> ChangeKind {
    let has = |key: &str| ops.iter().find(|o| o.key == key);
    if has("$type").is_some() {
        return ChangeKind::Create;
    }
    if let Some(op) = has("$merged_into") {
        return if op.value.is_some() {
            ChangeKind::Merge
        } else {
            ChangeKind::Unmerge
        };
    }
    if let Some(op) = ops.iter().find(|o| o.key.starts_with("$absorbed/")) {
        return if op.value.is_some() {
            ChangeKind::Absorb
        } else {
            ChangeKind::Release
        };
    }
    if has("$review").is_some() || has("$review_comment").is_some() {
        return ChangeKind::Review;
    }
    match author.role.as_deref() {
        Some("supervisor" | "admin") => ChangeKind::Correction,
        _ => ChangeKind::Edit,
    }
}

/// Authors of actors written as UUID strings (as conflicts show them).
pub fn authors(
    actors: &[String],
    mut author: impl FnMut(&[u8]) -> StorageResult<Author>,
) -> StorageResult<BTreeMap<String, Author>> {
    let mut out = BTreeMap::new();
    for actor in actors {
        let found = match Uuid::parse_str(actor) {
            Ok(id) => author(id.as_bytes())?,
            Err(_) => Author::default(),
        };
        out.insert(actor.clone(), found);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fieldsync_core::generator::minimal_household;
    use fieldsync_core::model::RecordType;
    use fieldsync_core::record::ReviewState;

    fn supervisor() -> Author {
        Author {
            username: Some("giamsat".into()),
            role: Some("supervisor".into()),
            ..Author::default()
        }
    }

    #[test]
    fn each_change_reads_old_and_new_values_and_says_what_it_was() {
        let (mut doc, created) = RecordDoc::create(
            Uuid::now_v7(),
            RecordType::Household,
            &minimal_household("62.610.01", "Y Blơ"),
            Uuid::new_v4(),
        )
        .unwrap();
        let set = doc
            .set_field("village", &"Làng Le".into())
            .unwrap()
            .unwrap();
        let fixed = doc.set_field("village", &"Thôn 2".into()).unwrap().unwrap();
        let cleared = doc.clear_field("village").unwrap().unwrap();
        let approved = doc
            .set_review(ReviewState::Approved, None)
            .unwrap()
            .unwrap();
        let kept = Uuid::now_v7();
        let merged = doc.merge_into(kept).unwrap().unwrap();
        let undone = doc.unmerge().unwrap().unwrap();
        let changes = [created, set, fixed, cleared, approved, merged, undone]
            .into_iter()
            .enumerate()
            .map(|(i, c)| (c.bytes, i as i64))
            .collect();
        let authors = [Author::default(), Author::default(), supervisor()];
        let mut n = 0;
        let entries = history(Some(&doc), changes, |_| {
            n += 1;
            Ok(authors[n.min(2)].clone())
        })
        .unwrap();
        // One author lookup per actor: all these changes are one actor's, so all read as the
        // first lookup's author.
        assert_eq!(n, 1);
        let kinds: Vec<ChangeKind> = entries.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                ChangeKind::Create,
                ChangeKind::Edit,
                ChangeKind::Edit,
                ChangeKind::Edit,
                ChangeKind::Review,
                ChangeKind::Merge,
                ChangeKind::Unmerge
            ]
        );
        let village = |i: usize| entries[i].ops.iter().find(|o| o.key == "village").cloned();
        assert_eq!(
            village(2).unwrap(),
            HistoryOp {
                key: "village".into(),
                value: Some("Thôn 2".into()),
                old: Some("Làng Le".into()),
            }
        );
        assert_eq!(village(1).unwrap().old, None, "unset before");
        assert_eq!(village(3).unwrap().value, None, "cleared");
        assert_eq!(village(3).unwrap().old, Some("Thôn 2".into()));
        assert!(entries.iter().all(|e| e.device_time_s > 1_600_000_000));
        assert_eq!(kind(&entries[2].ops, &supervisor()), ChangeKind::Correction);
    }

    #[test]
    fn concurrent_changes_read_the_values_each_one_knew() {
        let (mut doc, created) = RecordDoc::create(
            Uuid::now_v7(),
            RecordType::Household,
            &minimal_household("62.610.01", "Y Blơ"),
            Uuid::new_v4(),
        )
        .unwrap();
        let mut phone = RecordDoc::empty(doc.id(), Uuid::new_v4());
        phone.apply(doc.changes()).unwrap();
        let here = doc
            .set_field("village", &"Làng Le".into())
            .unwrap()
            .unwrap();
        let there = phone
            .set_field("village", &"Thôn 2".into())
            .unwrap()
            .unwrap();
        doc.apply(phone.changes()).unwrap();
        let after = doc.set_field("village", &"Thôn 3".into()).unwrap().unwrap();
        let changes = [created, here, there, after]
            .into_iter()
            .map(|c| (c.bytes, 0))
            .collect();
        let entries = history(Some(&doc), changes, |_| Ok(Author::default())).unwrap();
        let village = |i: usize| {
            let op = entries[i].ops.iter().find(|o| o.key == "village").unwrap();
            (op.old.clone(), op.value.clone())
        };
        assert_eq!(village(1), (None, Some("Làng Le".into())));
        assert_eq!(
            village(2),
            (None, Some("Thôn 2".into())),
            "it had not seen Làng Le"
        );
        let (old, new) = village(3);
        assert_eq!(new, Some("Thôn 3".into()));
        assert!(old.is_some(), "one of the two it had seen");
    }
}
