//! The crate's error type: one enum, with a variant for each way a caller acts differently.
//!
//! Messages never carry personal data (names, ID numbers, victim status): they name fields,
//! record ids and codes only, so they are safe to log and to show.

use crate::model::Problem;
use uuid::Uuid;

/// Everything sync-core can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The input breaks the record schema; nothing was written. Every problem names its field.
    #[error("validation failed: {}", describe(.0))]
    Validation(Vec<Problem>),
    /// No record with this id exists in the store.
    #[error("record {0} not found")]
    NotFound(Uuid),
    /// A stored document (or a change for it) could not be decoded.
    #[error("record {id} is corrupt: {reason}")]
    Corrupt { id: Uuid, reason: String },
    /// Automerge refused an operation or bytes.
    #[error("automerge: {0}")]
    Automerge(#[from] automerge::AutomergeError),
    /// Bytes that should be an Automerge change are not (or their checksum does not match).
    #[error("invalid change bytes: {0}")]
    BadChange(String),
    /// A change larger than fieldsync accepts, inflated.
    #[error("a change is larger than {limit} bytes inflated")]
    ChangeTooLarge { limit: usize },
    /// A change with more operations than fieldsync accepts.
    #[error("a change has more than {limit} operations")]
    ChangeTooManyOps { limit: usize },
    /// The local SQLite store failed.
    #[error("store: {0}")]
    Store(#[from] rusqlite::Error),
    /// The store file could not be created.
    #[error("store file: {0}")]
    StoreFile(std::io::Error),
    /// The store file was written by a newer fieldsync than this one.
    #[error("store schema version {found} is newer than this build supports ({supported})")]
    StoreTooNew { found: i64, supported: i64 },
    /// A sync message could not be decoded or has the wrong protocol version.
    #[error(transparent)]
    Protocol(#[from] crate::protocol::ProtocolError),
}

fn describe(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("{}: {}", p.field, p.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Result alias used throughout sync-core.
pub type Result<T, E = CoreError> = std::result::Result<T, E>;
