//! The sans-IO sync protocol: message types, their binary encoding, and the phone's side of a
//! sync as pure steps over a [`crate::Store`] with the one loop that drives them. The server's
//! side lives with the server's storage; both share these messages. The normative description
//! is `docs/sync-protocol.md`.
//!
//! A sync is a loop of request/response exchanges, each one HTTP round trip, run by
//! [`SyncDriver`] over the two steps of [`SyncClient`]:
//!
//! ```no_run
//! # use fieldsync_core::protocol::{SyncDriver, Transport};
//! struct Https; // the app's HTTP client
//! impl Transport for Https {
//!     type Error = std::io::Error;
//!     fn exchange(&mut self, request: Vec<u8>) -> std::io::Result<Vec<u8>> {
//!         unimplemented!("POST the request to /v1/sync, return the response body")
//!     }
//! }
//! # fn run(store: &mut fieldsync_core::Store) -> Result<(), Box<dyn std::error::Error>> {
//! let outcome = SyncDriver::default().run(store, &mut Https)?;
//! println!("{} rounds, {} pushed, {} pulled", outcome.rounds, outcome.pushed, outcome.pulled);
//! # Ok(()) }
//! ```

mod client;
mod codec;
mod driver;
mod enrolment;
mod messages;

pub use client::{ClientOptions, SyncClient, SyncOutcome, SyncRequestBody};
pub use codec::{compress, decompress, varint};
pub use driver::{DriveError, DriveOutcome, SyncDriver, Transport, DEFAULT_MAX_EXCHANGES};
pub use enrolment::Enrolment;
pub use messages::{
    decode_request_body, ChangeEntry, NeedEntry, RejectCode, Rejection, SyncRequest, SyncResponse,
    MAX_BODY_BYTES,
};

/// The protocol version this build speaks. Bump on any incompatible change to the messages.
/// Version 2: a server identity in every response, reject codes 4 to 6, actors bound at
/// enrolment, creation changes that name their record. Version 3: every change travels with
/// an Ed25519 signature (its author's, or the server's receipt), actors derive from public
/// keys, reject code 7.
pub const PROTOCOL_VERSION: u8 = 3;
/// Oldest version this build still accepts.
pub const MIN_PROTOCOL_VERSION: u8 = 3;

/// The HTTP path of the sync endpoint, for this protocol version.
pub const SYNC_PATH: &str = "/v1/sync";
/// Content type of request and response bodies.
pub const CONTENT_TYPE: &str = "application/vnd.fieldsync.sync";
/// Header carrying the protocol version, checked before the body is read.
pub const VERSION_HEADER: &str = "x-fieldsync-protocol";

/// A sync message could not be decoded or speaks another protocol version.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// The peer speaks a protocol version this build does not: one side must be upgraded.
    #[error("upgrade needed: peer speaks protocol {found}, this build speaks {min}..={max}")]
    UpgradeNeeded { found: u8, min: u8, max: u8 },
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("message larger than {limit} bytes")]
    TooLarge { limit: usize },
}
