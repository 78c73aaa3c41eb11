//! Minimal HTTPS client for the end-to-end tests and the load simulator: one fresh
//! TLS connection per request, pinned to the server's self-signed certificate.

use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderName, HeaderValue, CONTENT_LENGTH, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

/// Timeout applied to a whole request unless [`HttpsClient::with_timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a request (or building the client) failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server certificate PEM could not be used as a trust root.
    #[error("unusable server certificate: {0}")]
    Cert(String),
    /// The TCP connection could not be opened.
    #[error("could not connect to {addr}: {cause}")]
    Connect { addr: SocketAddr, cause: io::Error },
    /// The TLS handshake failed (bad certificate, connection cut during the handshake, ...).
    #[error("TLS handshake with {addr} failed: {cause}")]
    Tls { addr: SocketAddr, cause: io::Error },
    /// The request was invalid, or the HTTP exchange failed after the handshake
    /// (for example because the connection was cut mid-response).
    #[error("HTTP exchange with {addr} failed: {message}")]
    Http { addr: SocketAddr, message: String },
    /// The whole request did not complete within the client's timeout.
    #[error("request to {addr} timed out after {after:?}")]
    Timeout { addr: SocketAddr, after: Duration },
}

/// A complete HTTP response plus what it cost on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Raw TCP bytes written for this request (TLS handshake, records, HTTP headers).
    pub wire_bytes_sent: u64,
    /// Raw TCP bytes read for this request (TLS handshake, records, HTTP headers).
    pub wire_bytes_received: u64,
}

impl HttpResponse {
    /// The first header with this name, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// HTTPS client that trusts exactly one self-signed certificate, issued for "localhost".
#[derive(Clone)]
pub struct HttpsClient {
    connector: TlsConnector,
    server_name: ServerName<'static>,
    timeout: Duration,
    /// The local address connections come from (another 127.x address on loopback, to act
    /// as a different peer); the system's choice if `None`.
    source: Option<std::net::IpAddr>,
}

/// Opens a TCP connection to `addr`, from `source` if given.
pub async fn connect_from(
    addr: SocketAddr,
    source: Option<std::net::IpAddr>,
) -> io::Result<TcpStream> {
    let Some(source) = source else {
        return TcpStream::connect(addr).await;
    };
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.bind(SocketAddr::new(source, 0))?;
    socket.connect(addr).await
}

impl std::fmt::Debug for HttpsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpsClient")
            .field("server_name", &self.server_name)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl HttpsClient {
    /// Builds a client whose only trust root is the certificate(s) in `server_cert_pem`.
    pub fn new(server_cert_pem: &[u8]) -> Result<Self, ClientError> {
        let mut reader = server_cert_pem;
        let certs = rustls_pemfile::certs(&mut reader)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ClientError::Cert(format!("cannot parse PEM: {e}")))?;
        if certs.is_empty() {
            return Err(ClientError::Cert(
                "no CERTIFICATE block found in the PEM data".to_owned(),
            ));
        }
        let mut roots = RootCertStore::empty();
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| ClientError::Cert(format!("cannot use certificate as root: {e}")))?;
        }
        Self::with_roots(roots)
    }

    fn with_roots(roots: RootCertStore) -> Result<Self, ClientError> {
        // Explicit provider: relying on the process default panics if another crate in the
        // build also enables aws-lc-rs.
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ClientError::Cert(format!("cannot configure TLS: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let server_name = ServerName::try_from("localhost")
            .map_err(|e| ClientError::Cert(format!("invalid server name: {e}")))?;
        Ok(Self {
            connector: TlsConnector::from(Arc::new(config)),
            server_name,
            timeout: DEFAULT_TIMEOUT,
            source: None,
        })
    }

    /// Connects from `source` (e.g. `127.0.0.2`) instead of the system's choice.
    #[must_use]
    pub fn with_source(mut self, source: std::net::IpAddr) -> Self {
        self.source = Some(source);
        self
    }

    /// The local address connections come from, if set.
    pub fn source(&self) -> Option<std::net::IpAddr> {
        self.source
    }

    /// Replaces the whole-request timeout (connect, handshake, request and response body).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The whole-request timeout in effect.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends one request over a new TCP + TLS connection to `addr` and reads the full response.
    ///
    /// `Host` and `Content-Length` are filled in unless `headers` already has them.
    pub async fn request(
        &self,
        addr: SocketAddr,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<HttpResponse, ClientError> {
        let request = build_request(addr, method, path, headers, body)?;
        match tokio::time::timeout(self.timeout, self.exchange(addr, request)).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Timeout {
                addr,
                after: self.timeout,
            }),
        }
    }

    /// Opens a TCP connection to `addr` and completes the TLS handshake, within the client's
    /// timeout, and hands over the stream: for callers that write raw HTTP themselves (the
    /// abuse bench's slow and idle connections).
    pub async fn open_tls(
        &self,
        addr: SocketAddr,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ClientError> {
        let open = async {
            let tcp = connect_from(addr, self.source)
                .await
                .map_err(|cause| ClientError::Connect { addr, cause })?;
            tcp.set_nodelay(true)
                .map_err(|cause| ClientError::Connect { addr, cause })?;
            self.connector
                .connect(self.server_name.clone(), tcp)
                .await
                .map_err(|cause| ClientError::Tls { addr, cause })
        };
        match tokio::time::timeout(self.timeout, open).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Timeout {
                addr,
                after: self.timeout,
            }),
        }
    }

    async fn exchange(
        &self,
        addr: SocketAddr,
        request: Request<Full<Bytes>>,
    ) -> Result<HttpResponse, ClientError> {
        let tcp = connect_from(addr, self.source)
            .await
            .map_err(|cause| ClientError::Connect { addr, cause })?;
        // Requests are small and latency-bound; Nagle would only add delay.
        tcp.set_nodelay(true)
            .map_err(|cause| ClientError::Connect { addr, cause })?;
        let counters = WireCounters::default();
        let stream = CountingStream {
            inner: tcp,
            counters: counters.clone(),
        };
        let tls = self
            .connector
            .connect(self.server_name.clone(), stream)
            .await
            .map_err(|cause| ClientError::Tls { addr, cause })?;

        let (mut sender, connection) =
            hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(tls))
                .await
                .map_err(|e| http_error(addr, &e))?;
        let exchange = async move {
            let response = sender.send_request(request).await?;
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .map(|(name, value)| {
                    (
                        name.as_str().to_owned(),
                        String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    )
                })
                .collect::<Vec<_>>();
            let body = response.into_body().collect().await?.to_bytes();
            // Dropping the sender lets the connection future finish (TLS close_notify and
            // shutdown) so the byte counts cover the whole connection.
            drop(sender);
            Ok::<_, hyper::Error>((status, headers, body))
        };
        // Driving the connection here instead of spawning it means a timeout drops
        // everything at once and nothing outlives the request.
        let (_connection_result, exchange_result) = tokio::join!(connection, exchange);
        // A connection error after a complete response (e.g. the peer closed first) does not
        // invalidate the response, so only the exchange result matters.
        let (status, headers, body) = exchange_result.map_err(|e| http_error(addr, &e))?;
        Ok(HttpResponse {
            status,
            headers,
            body: body.to_vec(),
            wire_bytes_sent: counters.sent.load(Ordering::Relaxed),
            wire_bytes_received: counters.received.load(Ordering::Relaxed),
        })
    }
}

fn build_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> Result<Request<Full<Bytes>>, ClientError> {
    let invalid = |message: String| ClientError::Http { addr, message };
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|e| invalid(format!("invalid method {method:?}: {e}")))?;
    let body_len = body.len();
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| invalid(format!("invalid request for path {path:?}: {e}")))?;
    let map = request.headers_mut();
    for (name, value) in headers {
        let header_name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| invalid(format!("invalid header name {name:?}: {e}")))?;
        let header_value = HeaderValue::from_str(value)
            .map_err(|e| invalid(format!("invalid value for header {name}: {e}")))?;
        map.append(header_name, header_value);
    }
    if !map.contains_key(HOST) {
        let host = HeaderValue::from_str(&format!("localhost:{}", addr.port()))
            .map_err(|e| invalid(format!("invalid Host header: {e}")))?;
        map.insert(HOST, host);
    }
    if !map.contains_key(CONTENT_LENGTH) {
        map.insert(CONTENT_LENGTH, HeaderValue::from(body_len));
    }
    Ok(request)
}

/// hyper's top-level messages are terse ("connection closed before message completed");
/// the underlying cause is further down the source chain.
fn http_error(addr: SocketAddr, error: &hyper::Error) -> ClientError {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let _ = write!(message, ": {cause}");
        source = cause.source();
    }
    ClientError::Http { addr, message }
}

#[derive(Clone, Default)]
struct WireCounters {
    sent: Arc<AtomicU64>,
    received: Arc<AtomicU64>,
}

/// Counts the raw bytes that pass through a TCP stream, below TLS.
struct CountingStream<S> {
    inner: S,
    counters: WireCounters,
}

impl<S: AsyncRead + Unpin> AsyncRead for CountingStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = result {
            let read = buf.filled().len().saturating_sub(before);
            self.counters
                .received
                .fetch_add(read as u64, Ordering::Relaxed);
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for CountingStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(written)) = result {
            self.counters
                .sent
                .fetch_add(written as u64, Ordering::Relaxed);
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(written)) = result {
            self.counters
                .sent
                .fetch_add(written as u64, Ordering::Relaxed);
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    // None of these tests get as far as certificate verification, so no root is needed.
    fn client() -> HttpsClient {
        HttpsClient::with_roots(RootCertStore::empty()).unwrap()
    }

    fn closed_port_addr() -> SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        addr
    }

    #[test]
    fn rejects_pem_without_certificate() {
        let err = HttpsClient::new(b"not a pem file").unwrap_err();
        assert!(matches!(err, ClientError::Cert(_)), "got {err:?}");
        assert!(err.to_string().contains("no CERTIFICATE"));
    }

    #[test]
    fn rejects_certificate_that_is_not_der() {
        let pem = b"-----BEGIN CERTIFICATE-----\nAAAAAAAA\n-----END CERTIFICATE-----\n";
        let err = HttpsClient::new(pem).unwrap_err();
        assert!(matches!(err, ClientError::Cert(_)), "got {err:?}");
    }

    #[test]
    fn default_timeout_is_thirty_seconds_and_can_be_changed() {
        let c = client();
        assert_eq!(c.timeout(), Duration::from_secs(30));
        let c = c.with_timeout(Duration::from_millis(250));
        assert_eq!(c.timeout(), Duration::from_millis(250));
    }

    #[tokio::test]
    async fn closed_port_is_a_connect_error() {
        let addr = closed_port_addr();
        let err = client()
            .request(addr, "GET", "/health", &[], Vec::new())
            .await
            .unwrap_err();
        match &err {
            ClientError::Connect { addr: a, .. } => assert_eq!(*a, addr),
            other => panic!("expected Connect, got {other:?}"),
        }
        assert!(err
            .to_string()
            .starts_with("could not connect to 127.0.0.1:"));
    }

    #[tokio::test]
    async fn peer_closing_during_handshake_is_a_tls_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            // Read the ClientHello so the close is a clean FIN, then hang up.
            let mut buf = [0u8; 4096];
            let n = socket.read(&mut buf).await.unwrap();
            assert!(n > 0, "client should send a ClientHello");
            assert_eq!(buf[0], 0x16, "first record should be a TLS handshake");
        });
        let err = client()
            .request(addr, "GET", "/", &[], Vec::new())
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Tls { .. }), "got {err:?}");
        server.await.unwrap();
    }

    #[tokio::test]
    async fn silent_server_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(socket);
        });
        let started = std::time::Instant::now();
        let err = client()
            .with_timeout(Duration::from_millis(200))
            .request(addr, "POST", "/sync", &[], b"{}".to_vec())
            .await
            .unwrap_err();
        assert!(
            matches!(err, ClientError::Timeout { after, .. } if after == Duration::from_millis(200)),
            "got {err:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        server.abort();
    }

    #[test]
    fn invalid_header_is_rejected_before_connecting() {
        let addr = closed_port_addr();
        let err =
            build_request(addr, "GET", "/", &[("bad header", "x".into())], Vec::new()).unwrap_err();
        assert!(matches!(err, ClientError::Http { .. }), "got {err:?}");
    }

    #[test]
    fn request_gets_host_and_content_length() {
        let addr: SocketAddr = "127.0.0.1:8443".parse().unwrap();
        let req = build_request(
            addr,
            "POST",
            "/v1/sync",
            &[("Authorization", "Bearer t".into())],
            vec![0; 5],
        )
        .unwrap();
        assert_eq!(req.headers()[HOST], "localhost:8443");
        assert_eq!(req.headers()[CONTENT_LENGTH], "5");
        assert_eq!(req.headers()["authorization"], "Bearer t");
        assert_eq!(req.uri().path(), "/v1/sync");
    }

    #[test]
    fn header_lookup_is_case_insensitive() {
        let resp = HttpResponse {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: Vec::new(),
            wire_bytes_sent: 0,
            wire_bytes_received: 0,
        };
        assert_eq!(resp.header("Content-Type"), Some("application/json"));
        assert_eq!(resp.header("x-missing"), None);
    }
}
