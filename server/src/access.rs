//! The one access rule: which records a caller may see and write. Sync, the records API, the
//! supervisors' page, duplicates and indicators all ask here; a record outside it answers as
//! if it did not exist.

use crate::scope::{stream_key, Scope};
use fieldsync_core::{RecordType, RecordView};

/// Where a record stands, as far as access depends on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    pub record_type: RecordType,
    pub commune: Option<String>,
    /// Ever a sensitive type; types cannot change, but databases from before that rule may
    /// hold a record that was retyped.
    pub sensitive: bool,
}

impl Placement {
    pub fn new(record_type: RecordType, commune: Option<String>, sensitive: bool) -> Placement {
        Placement {
            record_type,
            commune,
            sensitive: sensitive || record_type.is_sensitive(),
        }
    }

    /// The placement after a change, given the one before: sensitivity is never lost.
    pub fn after(view: &RecordView, before: Option<&Placement>) -> Placement {
        Placement::new(
            view.record_type,
            view.commune().map(str::to_owned),
            before.is_some_and(|b| b.sensitive),
        )
    }

    /// The log stream devices pull the record from.
    pub fn stream(&self) -> Option<String> {
        Some(stream_key(self.commune.as_deref()?, self.sensitive))
    }

    pub fn visible_to(&self, scope: &Scope) -> bool {
        visible(
            scope,
            self.record_type,
            self.commune.as_deref(),
            self.sensitive,
        )
    }
}

/// Whether `scope` may see (and so write) a record of this type, commune and sensitivity.
pub fn visible(
    scope: &Scope,
    record_type: RecordType,
    commune: Option<&str>,
    sensitive: bool,
) -> bool {
    (scope.sensitive || !sensitive) && commune.is_some_and(|c| scope.allows(record_type, c))
}
