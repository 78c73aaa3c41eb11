//! TLS to PostgreSQL: rustls (as for HTTPS), trusting only the authority the operator names,
//! and checking the server's certificate and host name like `sslmode=verify-full`.

use crate::storage::{StorageError, StorageResult};
use std::path::Path;
use std::sync::Arc;
use tokio_postgres_rustls::MakeRustlsConnect;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// A connector trusting the certificates in the PEM file `ca`.
pub fn connector(ca: &Path) -> StorageResult<MakeRustlsConnect> {
    let invalid = |why: String| StorageError::Invalid(format!("{}: {why}", ca.display()));
    let pem = std::fs::read(ca).map_err(|e| invalid(e.to_string()))?;
    let mut roots = RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        let cert = cert.map_err(|e| invalid(e.to_string()))?;
        roots
            .add(cert)
            .map_err(|e| invalid(format!("not a usable certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(invalid("no PEM certificate in the file".into()));
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}
