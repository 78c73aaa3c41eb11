//! Merging duplicates without losing anything, and undoing it. The duplicate is marked
//! `$merged_into` = the record kept (never deleted); the kept record gets `$absorbed/<id>` and,
//! in the same change, the duplicate's values the supervisor chose to keep (for fields the kept
//! record lacks or holds differently). Undoing clears both marks and gives back, for exactly the
//! fields that merge change wrote and nobody has changed since, the value the kept record had
//! before it, so edits made in between stay. Readers follow `$merged_into` with [`resolve`].

use super::{absorbed_key, field_key, RecordChange, RecordDoc, KEY_MERGED_INTO};
use crate::error::Result;
use crate::model::{validate_field, Value};
use crate::CoreError;
use automerge::transaction::Transactable;
use automerge::ROOT;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

impl RecordDoc {
    /// Marks this record a duplicate of `survivor`: readers are redirected, nothing is dropped.
    pub fn merge_into(&mut self, survivor: Uuid) -> Result<Option<RecordChange>> {
        self.require_type()?;
        self.doc.put(ROOT, KEY_MERGED_INTO, survivor.to_string())?;
        self.commit()
    }

    /// Takes a duplicate into this record: marks it absorbed and sets `taken` (the duplicate's
    /// values chosen over this record's, or for fields it lacks), all in one change.
    pub fn absorb(
        &mut self,
        merged: Uuid,
        taken: &BTreeMap<String, Value>,
    ) -> Result<Option<RecordChange>> {
        let record_type = self.require_type()?;
        for (field, value) in taken {
            validate_field(record_type, field, value)
                .map_err(|p| CoreError::Validation(vec![p]))?;
        }
        self.doc.put(ROOT, absorbed_key(merged), true)?;
        for (field, value) in taken {
            self.doc
                .put(ROOT, field_key(field), super::to_scalar(value))?;
        }
        self.commit()
    }

    /// Undoes [`RecordDoc::merge_into`]: this record stands on its own again.
    pub fn unmerge(&mut self) -> Result<Option<RecordChange>> {
        self.require_type()?;
        self.doc.delete(ROOT, KEY_MERGED_INTO)?;
        self.commit()
    }

    /// Undoes [`RecordDoc::absorb`]: the mark goes, and each value the absorbing change set
    /// goes back to what this record held before it (nothing, or its own value), unless
    /// someone has written it since.
    pub fn release(&mut self, merged: Uuid) -> Result<Option<RecordChange>> {
        let record_type = self.require_type()?;
        let mark = absorbed_key(merged);
        let Some(absorbing) = self.change_writing(&mark)? else {
            return Ok(None);
        };
        let fields: Vec<&str> = crate::model::schema_of(record_type)
            .fields
            .iter()
            .filter(|f| !f.kind.is_set())
            .map(|f| f.name)
            .collect();
        let mut taken_back = Vec::new();
        for field in fields {
            if self.change_writing(&field_key(field))? == Some(absorbing) {
                taken_back.push(field);
            }
        }
        let before: Vec<(&str, Option<Value>)> = taken_back
            .into_iter()
            .map(|field| (field, self.value_before(&field_key(field), absorbing)))
            .collect();
        self.doc.delete(ROOT, mark)?;
        for (field, value) in before {
            match value {
                Some(v) => self.doc.put(ROOT, field_key(field), super::to_scalar(&v))?,
                None => self.doc.delete(ROOT, field_key(field))?,
            }
        }
        self.commit()
    }
}

/// A field of a merged record that an edit the merge had not seen changed: the collector's
/// phone was offline with the old record. Supervisors see it on the kept record and may take
/// the value over.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EditAfterMerge {
    pub field: String,
    pub at_merge: Option<Value>,
    pub now: Option<Value>,
}

impl RecordDoc {
    /// The edits this merged record received that its merge did not see (made offline on a
    /// phone that had not synced the merge, or afterwards); empty when it is not merged.
    pub fn edits_after_merge(&mut self) -> Result<Vec<EditAfterMerge>> {
        if self.view()?.merged_into.is_none() {
            return Ok(Vec::new());
        }
        let Some(merge) = self.change_writing(KEY_MERGED_INTO)? else {
            return Ok(Vec::new());
        };
        Ok(self
            .changed_since(merge)?
            .unwrap_or_default()
            .into_iter()
            .map(|c| EditAfterMerge {
                field: c.field,
                at_merge: c.approved,
                now: c.now,
            })
            .collect())
    }
}

/// The record readers should show for `id`: `id` itself, or the record it was merged into,
/// following merges of merges. `merged_into` looks a record's mark up. A cycle (two records
/// merged into each other concurrently) resolves to the smallest id in it, the same on every
/// device.
pub fn resolve(id: Uuid, mut merged_into: impl FnMut(Uuid) -> Option<Uuid>) -> Uuid {
    let mut path = vec![id];
    let mut current = id;
    // A chain is never longer than the records it visits; 64 merges of merges is plenty.
    for _ in 0..64 {
        let Some(next) = merged_into(current) else {
            return current;
        };
        if let Some(start) = path.iter().position(|p| *p == next) {
            return path[start..].iter().copied().min().unwrap_or(next);
        }
        path.push(next);
        current = next;
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::minimal_household;
    use crate::model::RecordType;

    fn household(name: &str) -> RecordDoc {
        RecordDoc::create(
            Uuid::now_v7(),
            RecordType::Household,
            &minimal_household("62.610.01", name),
            Uuid::new_v4(),
        )
        .unwrap()
        .0
    }

    #[test]
    fn absorbing_then_releasing_gives_back_only_untouched_values() {
        let mut kept = household("Y Blơ");
        let taken: BTreeMap<String, Value> = [
            ("village".to_owned(), Value::from("Làng Le")),
            ("address".to_owned(), Value::from("Thôn 1")),
        ]
        .into();
        kept.absorb(Uuid::now_v7(), &taken).unwrap();
        let merged = kept.view().unwrap().absorbed.first().copied().unwrap();
        assert_eq!(kept.view().unwrap().fields["village"], "Làng Le".into());
        // An edit in between: the address now belongs to the kept record's own history.
        kept.set_field("address", &"Thôn 2".into()).unwrap();
        kept.release(merged).unwrap();
        let view = kept.view().unwrap();
        assert!(view.absorbed.is_empty());
        assert!(!view.fields.contains_key("village"), "taken back");
        assert_eq!(
            view.fields["address"],
            "Thôn 2".into(),
            "the later edit stays"
        );
    }

    #[test]
    fn a_value_chosen_over_the_kept_records_own_is_given_back_on_undo() {
        let mut kept = household("Y Blơ");
        kept.set_field("village", &"Làng Le".into()).unwrap();
        let dup = Uuid::now_v7();
        let taken: BTreeMap<String, Value> = [("village".to_owned(), Value::from("Thôn 3"))].into();
        kept.absorb(dup, &taken).unwrap();
        assert_eq!(kept.view().unwrap().fields["village"], "Thôn 3".into());
        kept.release(dup).unwrap();
        assert_eq!(
            kept.view().unwrap().fields["village"],
            "Làng Le".into(),
            "the kept record's own value is back"
        );
    }

    #[test]
    fn resolve_follows_chains_and_breaks_cycles_the_same_way_everywhere() {
        let [a, b, c] = [Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3)];
        let chain = |id| match id {
            x if x == c => Some(b),
            x if x == b => Some(a),
            _ => None,
        };
        assert_eq!(resolve(c, chain), a);
        let cycle = |id| if id == a { Some(b) } else { Some(a) };
        assert_eq!(resolve(a, cycle), a);
        assert_eq!(resolve(b, cycle), a);
    }

    #[test]
    fn an_offline_edit_of_a_merged_record_is_reported_and_the_merges_own_view_is_not() {
        let mut dup = household("Y Blơ");
        let mut phone = RecordDoc::empty(dup.id(), Uuid::new_v4());
        phone.apply(dup.changes()).unwrap();
        dup.merge_into(Uuid::now_v7()).unwrap();
        assert!(dup.edits_after_merge().unwrap().is_empty());
        // The phone had not seen the merge.
        phone.set_field("village", &"Làng Le".into()).unwrap();
        dup.apply(phone.changes()).unwrap();
        assert_eq!(
            dup.edits_after_merge().unwrap(),
            vec![EditAfterMerge {
                field: "village".into(),
                at_merge: None,
                now: Some("Làng Le".into()),
            }]
        );
        dup.unmerge().unwrap();
        assert!(
            dup.edits_after_merge().unwrap().is_empty(),
            "not merged any more"
        );
    }

    #[test]
    fn concurrent_merges_of_one_record_converge_and_resolve_alike() {
        let mut first = household("Y Blơ");
        let mut second = RecordDoc::empty(first.id(), Uuid::new_v4());
        second.apply(first.changes()).unwrap();
        let (k1, k2) = (Uuid::now_v7(), Uuid::now_v7());
        first.merge_into(k1).unwrap();
        second.merge_into(k2).unwrap();
        first.apply(second.changes()).unwrap();
        second.apply(first.changes()).unwrap();
        let (a, b) = (first.view().unwrap(), second.view().unwrap());
        assert_eq!(a, b, "both documents agree");
        let winner = a.merged_into.unwrap();
        assert!(winner == k1 || winner == k2);
        assert_eq!(
            a.conflicts.len(),
            0,
            "marks are not fields: no field conflict"
        );
    }
}
