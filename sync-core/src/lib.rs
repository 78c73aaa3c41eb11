//! fieldsync's shared core, used unchanged by the server and by the phone.
//!
//! - [`model`]: Project 8 record types, their versioned schemas and validation, areas and
//!   ethnic groups;
//! - [`record`]: each record as one Automerge document (edits, current values, conflicts);
//! - [`store`]: the local SQLite store (documents saved change by change, a projection for
//!   lists and search);
//! - [`search`]: Vietnamese diacritic-insensitive folding;
//! - [`protocol`]: the sans-IO sync protocol (messages, codec, client and server steps);
//! - [`generator`]: realistic seeded demo and test data;
//! - [`sqlite_setup`]: opening and upgrading fieldsync's SQLite files, phone and server alike.
//!
//! sync-core does no IO of its own beyond its SQLite file: no sockets, no async runtime. The
//! clock is read only for the time part of new UUIDv7 record ids; nothing is ordered by it.
//! Drivers (the server, the phone bindings, tests) move bytes.

pub mod dedup;
pub mod error;
pub mod generator;
pub mod model;
pub mod protocol;
pub mod record;
pub mod search;
pub mod signing;
pub mod sqlite_setup;
pub mod store;

pub use error::{CoreError, Result};
pub use model::{RecordType, Value};
pub use record::{RecordDoc, RecordView};
pub use store::Store;
