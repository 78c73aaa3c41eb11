//! The errors Kotlin sees: a small hierarchy the app can act on. Messages name fields and codes,
//! never names, ID numbers or victim status.

use fieldsync_core::protocol::ProtocolError;
use fieldsync_core::CoreError;

/// Thrown to Kotlin as `FieldsyncException.<Variant>`.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum FieldsyncError {
    /// The server could not be reached or the connection broke: retry later; nothing is lost.
    #[error("network: {reason}")]
    Network { reason: String },
    /// The device token is unknown or revoked, or the password is wrong: enrol again.
    #[error("unauthorised: {reason}")]
    Unauthorized { reason: String },
    /// The input breaks the record schema; nothing was written. `fields` names each field.
    #[error("validation failed: {reason}")]
    Validation { fields: Vec<String>, reason: String },
    /// The app and the server speak different protocol versions: update the app.
    #[error("upgrade needed: {reason}")]
    UpgradeNeeded { reason: String },
    /// Anything else (store failure, unexpected server answer, record not found).
    #[error("{reason}")]
    Other { reason: String },
}

impl From<CoreError> for FieldsyncError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Validation(problems) => FieldsyncError::Validation {
                fields: problems.iter().map(|p| p.field.clone()).collect(),
                reason: CoreError::Validation(problems).to_string(),
            },
            CoreError::Protocol(ProtocolError::UpgradeNeeded { .. }) => {
                FieldsyncError::UpgradeNeeded {
                    reason: e.to_string(),
                }
            }
            other => FieldsyncError::Other {
                reason: other.to_string(),
            },
        }
    }
}

/// What the app's HTTP transport reports when a request could not complete.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum TransportError {
    /// No answer: connection refused or cut, timeout, TLS failure.
    #[error("{reason}")]
    Failed { reason: String },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for TransportError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        TransportError::Failed { reason: e.reason }
    }
}
