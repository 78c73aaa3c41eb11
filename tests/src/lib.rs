//! End-to-end test support for fieldsync: an HTTPS client pinned to the server's
//! self-signed certificate and a fault-injecting TCP proxy for loopback tests.

pub mod https;
pub mod proxy;
