//! Where a record stands in the supervisors' review, decided by causality, never by clocks: an
//! approval covers exactly the changes in its causal past. Changes that are not (made after
//! it, or concurrently by someone who had not seen the approval) move the record to "changed
//! since approval" when they leave a field, set or the deleted flag different from what was
//! approved; changes that leave every value as approved (a merge and its undo, an edit put
//! back) do not.

use super::{RecordDoc, ReviewState, KEY_REVIEW};
use crate::error::Result;
use crate::model::Value;
use automerge::{ChangeHash, ObjId, ReadDoc, ROOT};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The review as supervisors see it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewPhase {
    #[default]
    Pending,
    Approved,
    Returned,
    /// Approved, then changed by an edit the approval did not see.
    Changed,
}

impl ReviewPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewPhase::Pending => "pending",
            ReviewPhase::Approved => "approved",
            ReviewPhase::Returned => "returned",
            ReviewPhase::Changed => "changed",
        }
    }

    pub fn parse(s: &str) -> Option<ReviewPhase> {
        [
            ReviewPhase::Pending,
            ReviewPhase::Approved,
            ReviewPhase::Returned,
            ReviewPhase::Changed,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }
}

/// A field whose value differs from the approved one (`None`: not set).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangedField {
    pub field: String,
    pub approved: Option<Value>,
    pub now: Option<Value>,
}

/// The review of a record: its phase, the comment, and what changed since an approval.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    pub state: ReviewPhase,
    pub comment: Option<String>,
    pub changed_fields: Vec<ChangedField>,
}

impl RecordDoc {
    /// The review of this record, with "changed since approval" decided by causality.
    pub fn review(&mut self) -> Result<Review> {
        let view = self.view()?;
        let state = match view.review {
            ReviewState::Pending => ReviewPhase::Pending,
            ReviewState::Returned => ReviewPhase::Returned,
            ReviewState::Approved => ReviewPhase::Approved,
        };
        let mut review = Review {
            state,
            comment: view.review_comment.clone(),
            changed_fields: Vec::new(),
        };
        if state != ReviewPhase::Approved {
            return Ok(review);
        }
        let Some(approval) = self.change_writing(KEY_REVIEW)? else {
            return Ok(review);
        };
        if let Some(changed) = self.changed_since(approval)?.filter(|c| !c.is_empty()) {
            review.state = ReviewPhase::Changed;
            review.changed_fields = changed;
        }
        Ok(review)
    }

    /// What changes outside the causal past of `at` did to the record's fields, sets and
    /// deleted flag (the fields that now differ from what `at` saw); `None` when every change
    /// is in its past.
    pub(crate) fn changed_since(&mut self, at: ChangeHash) -> Result<Option<Vec<ChangedField>>> {
        if self.doc.get_changes(&[at]).is_empty() {
            return Ok(None);
        }
        let view = self.view()?;
        let seen = RecordDoc {
            id: self.id,
            doc: self.doc.fork_at(&[at])?,
            clock: self.clock,
        };
        let then = seen.view()?;
        let mut fields: BTreeMap<String, (Option<Value>, Option<Value>)> = BTreeMap::new();
        for (name, value) in &then.fields {
            fields.entry(name.clone()).or_default().0 = Some(value.clone());
        }
        for (name, value) in &view.fields {
            fields.entry(name.clone()).or_default().1 = Some(value.clone());
        }
        let sets = |v: &crate::RecordView| -> BTreeMap<String, Value> {
            v.sets
                .iter()
                .map(|(name, members)| {
                    let list: Vec<&str> = members.iter().map(String::as_str).collect();
                    (name.clone(), Value::Text(list.join(", ")))
                })
                .collect()
        };
        for (name, value) in sets(&then) {
            fields.entry(name).or_default().0 = Some(value);
        }
        for (name, value) in sets(&view) {
            fields.entry(name).or_default().1 = Some(value);
        }
        if then.deleted != view.deleted {
            fields.insert(
                "$deleted".into(),
                (
                    Some(Value::Bool(then.deleted)),
                    Some(Value::Bool(view.deleted)),
                ),
            );
        }
        Ok(Some(
            fields
                .into_iter()
                .filter(|(_, (a, b))| a != b)
                .map(|(field, (approved, now))| ChangedField {
                    field,
                    approved,
                    now,
                })
                .collect(),
        ))
    }

    /// The change that wrote the value `key` currently shows.
    pub(crate) fn change_writing(&mut self, key: &str) -> Result<Option<ChangeHash>> {
        let Some((_, ObjId::Id(counter, actor, _))) = self.doc.get(ROOT, key)? else {
            return Ok(None);
        };
        Ok(self
            .doc
            .get_changes(&[])
            .into_iter()
            .find(|c| {
                let start = c.start_op().get();
                c.actor_id() == &actor && (start..start + c.len() as u64).contains(&counter)
            })
            .map(|c| c.hash()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::minimal_household;
    use crate::model::RecordType;
    use uuid::Uuid;

    fn household() -> RecordDoc {
        RecordDoc::create(
            Uuid::now_v7(),
            RecordType::Household,
            &minimal_household("62.610.01", "Y Blơ"),
            Uuid::new_v4(),
        )
        .unwrap()
        .0
    }

    fn other_device(doc: &mut RecordDoc) -> RecordDoc {
        let mut other = RecordDoc::empty(doc.id(), Uuid::new_v4());
        other.apply(doc.changes()).unwrap();
        other
    }

    #[test]
    fn an_approval_covers_what_it_saw_and_later_edits_reopen_it() {
        let mut doc = household();
        doc.set_field("village", &"Làng Le".into()).unwrap();
        assert_eq!(doc.review().unwrap().state, ReviewPhase::Pending);
        doc.set_review(ReviewState::Approved, None).unwrap();
        assert_eq!(doc.review().unwrap().state, ReviewPhase::Approved);

        let mut phone = other_device(&mut doc);
        phone.set_field("village", &"Thôn 2".into()).unwrap();
        doc.apply(phone.changes()).unwrap();
        let review = doc.review().unwrap();
        assert_eq!(review.state, ReviewPhase::Changed);
        assert_eq!(
            review.changed_fields,
            vec![ChangedField {
                field: "village".into(),
                approved: Some("Làng Le".into()),
                now: Some("Thôn 2".into()),
            }]
        );
        // Approving again covers the edit.
        doc.set_review(ReviewState::Approved, None).unwrap();
        assert_eq!(doc.review().unwrap().state, ReviewPhase::Approved);
    }

    #[test]
    fn an_edit_concurrent_with_the_approval_also_counts_whatever_the_clocks() {
        let mut doc = household();
        let mut phone = other_device(&mut doc);
        // The phone edits offline; the supervisor approves without having seen it.
        phone.set_field("poverty", &"near_poor".into()).unwrap();
        doc.set_review(ReviewState::Approved, None).unwrap();
        doc.apply(phone.changes()).unwrap();
        let review = doc.review().unwrap();
        assert_eq!(review.state, ReviewPhase::Changed);
        assert_eq!(review.changed_fields[0].field, "poverty");
    }

    #[test]
    fn a_merge_and_its_undo_leave_an_approved_record_approved() {
        let mut dup = household();
        dup.set_review(ReviewState::Approved, None).unwrap();
        let mut kept = household();
        kept.set_review(ReviewState::Approved, None).unwrap();
        let taken: BTreeMap<String, Value> = [("village".to_owned(), "Làng Le".into())].into();
        dup.merge_into(kept.id()).unwrap();
        kept.absorb(dup.id(), &taken).unwrap();
        assert_eq!(kept.review().unwrap().state, ReviewPhase::Changed);
        dup.unmerge().unwrap();
        kept.release(dup.id()).unwrap();
        assert_eq!(dup.review().unwrap().state, ReviewPhase::Approved);
        assert_eq!(kept.review().unwrap().state, ReviewPhase::Approved);
        // A real edit after that still counts.
        dup.set_field("village", &"Thôn 2".into()).unwrap();
        assert_eq!(dup.review().unwrap().state, ReviewPhase::Changed);
    }

    #[test]
    fn returned_records_carry_their_comment() {
        let mut doc = household();
        doc.set_review(ReviewState::Returned, Some("Thiếu số CCCD"))
            .unwrap();
        let review = doc.review().unwrap();
        assert_eq!(review.state, ReviewPhase::Returned);
        assert_eq!(review.comment.as_deref(), Some("Thiếu số CCCD"));
    }
}
