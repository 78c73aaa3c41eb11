//! End-to-end test support for fieldsync: an HTTPS client pinned to the server's
//! self-signed certificate, a fault-injecting TCP proxy for loopback tests, a real server
//! process, and simulated phones that sync through them.

pub mod https;
pub mod phone;
pub mod proxy;
pub mod server;
