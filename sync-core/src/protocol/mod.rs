//! The sans-IO sync protocol (see docs/sync-protocol.md).

/// A sync message could not be decoded or speaks another protocol version.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("malformed message: {0}")]
    Malformed(String),
}
