//! End-to-end test support for fieldsync: an HTTPS client pinned to the server's
//! self-signed certificate, a fault-injecting TCP proxy for loopback tests, a real server
//! process (or two on PostgreSQL behind a load balancer), simulated phones that sync through
//! them, and the keys of hand-built attackers.

pub mod attacker;
pub mod balancer;
pub mod deployment;
pub mod https;
pub mod phone;
pub mod proxy;
pub mod server;
