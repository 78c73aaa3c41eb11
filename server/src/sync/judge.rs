//! Whether one change may be taken into its record: its shape and limits, a real commune, and
//! the sender's scope before and after. Pure: no storage.

use crate::access::Placement;
use crate::scope::Scope;
use automerge::Change;
use fieldsync_core::model::Areas;
use fieldsync_core::protocol::RejectCode;
use fieldsync_core::record::{Fields, Refusal};
use fieldsync_core::RecordDoc;

/// On success, the record's new document and placement.
pub fn judge(
    doc: &mut RecordDoc,
    change: &Change,
    before: Option<&Placement>,
    scope: &Scope,
    may_review: bool,
) -> Result<(RecordDoc, Placement), RejectCode> {
    let (candidate, shape) = doc.candidate(change, Fields::Schema).map_err(|r| match r {
        Refusal::TooLarge(_) => RejectCode::TooLarge,
        Refusal::Layout(_) | Refusal::Unapplicable(_) => RejectCode::Invalid,
    })?;
    // A collector's phone may not approve its own records, nor merge or hide any.
    if shape.supervisory && !may_review {
        return Err(RejectCode::NotPermitted);
    }
    let view = candidate.view().map_err(|_| RejectCode::Invalid)?;
    let after = Placement::after(&view, before);
    // A record's commune must exist: a record moved to an invented code would hide from every
    // supervisor of its real area.
    if !after
        .commune
        .as_deref()
        .is_some_and(|c| Areas::bundled().is_commune(c))
    {
        return Err(RejectCode::Invalid);
    }
    if let Some(before) = before {
        check_scope(scope, before)?;
    }
    check_scope(scope, &after)?;
    Ok((candidate, after))
}

/// The code a write outside the sender's rights gets: sensitive records without sensitive
/// access are `NotPermitted`, another area's `OutOfScope`.
fn check_scope(scope: &Scope, placement: &Placement) -> Result<(), RejectCode> {
    if placement.sensitive && !scope.sensitive {
        return Err(RejectCode::NotPermitted);
    }
    match placement.visible_to(scope) {
        true => Ok(()),
        false => Err(RejectCode::OutOfScope),
    }
}
