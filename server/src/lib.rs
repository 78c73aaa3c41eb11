//! fieldsync's server: enrols devices, authorises and scopes every sync, ingests and serves
//! changes over HTTPS, and keeps a merged view of every record for supervisors.
//!
//! Layers, outside in: [`listener`] (TLS + HTTP/1.1), [`http`] (routes and error mapping),
//! [`accounts`] and [`scope`] (who may do what), [`storage`] (the narrow interface to the
//! database, with the embedded SQLite backend and a PostgreSQL one for several instances). The sync logic of records comes from
//! `fieldsync-core`.

pub mod access;
pub mod accounts;
pub mod cli;
pub mod config;
pub mod dates;
pub mod duplicates;
pub mod history;
pub mod http;
pub mod indicators;
pub mod keep_out;
pub mod listener;
pub mod passwords;
pub mod restore;
pub mod scope;
pub mod seed;
pub mod storage;
pub mod sync;
pub mod throttle;
pub mod tls;
pub mod workers;
