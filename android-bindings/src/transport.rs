//! The HTTP transport the app supplies from Kotlin (its own client, certificate pinning,
//! proxies). fieldsync builds each request body and reads each response; it never opens a
//! socket itself.

use crate::error::TransportError;
use crate::types::{Header, HttpResponse};

/// Implemented in Kotlin: POST `body` to `url` with `headers` and return the status and body.
/// Throw `TransportException.Failed` when no answer came (no network, cut, timeout, TLS).
#[uniffi::export(with_foreign)]
pub trait HttpTransport: Send + Sync {
    fn post(
        &self,
        url: String,
        headers: Vec<Header>,
        body: Vec<u8>,
    ) -> Result<HttpResponse, TransportError>;
}
