//! Raw connections for the attacks that never finish a request: TLS streams written by hand,
//! plain TCP connections, and a check of whether the server has closed them.

use fieldsync_tests::https::HttpsClient;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_rustls::client::TlsStream;

/// Connections opened at the same time, so that handshakes do not time out in a queue.
const OPENING_AT_ONCE: usize = 32;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a connection stands at the end of an attack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Nothing received, not closed: the server is still holding it.
    Open,
    /// The server closed or reset it.
    Closed,
    /// The server sent something (an error response, a TLS alert).
    Answered,
}

/// Whether the server has closed `stream`, answered on it, or still holds it open.
pub async fn state<S: AsyncRead + Unpin>(stream: &mut S) -> State {
    let mut buf = [0u8; 512];
    match tokio::time::timeout(Duration::from_millis(20), stream.read(&mut buf)).await {
        Err(_) => State::Open,
        Ok(Ok(0)) | Ok(Err(_)) => State::Closed,
        Ok(Ok(_)) => State::Answered,
    }
}

/// The states of many connections, checked all at once.
pub async fn tally<S: AsyncRead + Unpin + Send + 'static>(streams: Vec<S>) -> Tally {
    let mut checks = JoinSet::new();
    for mut stream in streams {
        checks.spawn(async move { state(&mut stream).await });
    }
    let mut tally = Tally::default();
    while let Some(result) = checks.join_next().await {
        if let Ok(s) = result {
            tally.add(s);
        }
    }
    tally
}

/// Counts of [`State`]s, for the notes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tally {
    pub open: usize,
    pub closed: usize,
    pub answered: usize,
}

impl Tally {
    pub fn add(&mut self, state: State) {
        match state {
            State::Open => self.open += 1,
            State::Closed => self.closed += 1,
            State::Answered => self.answered += 1,
        }
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} still open, {} closed by the server, {} answered",
            self.open, self.closed, self.answered
        )
    }
}

/// Opens `n` TLS connections (handshake done), a few at a time; the failures are counted.
pub async fn open_tls(
    http: &HttpsClient,
    addr: SocketAddr,
    n: usize,
) -> (Vec<TlsStream<TcpStream>>, usize) {
    let http = http.clone().with_timeout(CONNECT_TIMEOUT);
    let gate = Arc::new(Semaphore::new(OPENING_AT_ONCE));
    let mut tasks = JoinSet::new();
    for _ in 0..n {
        let (http, gate) = (http.clone(), gate.clone());
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await.ok()?;
            http.open_tls(addr).await.ok()
        });
    }
    collect(tasks, n).await
}

/// Opens `n` plain TCP connections from `source` that will never start a TLS handshake.
pub async fn open_tcp(
    addr: SocketAddr,
    source: Option<std::net::IpAddr>,
    n: usize,
) -> (Vec<TcpStream>, usize) {
    let gate = Arc::new(Semaphore::new(OPENING_AT_ONCE));
    let mut tasks = JoinSet::new();
    for _ in 0..n {
        let gate = gate.clone();
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await.ok()?;
            tokio::time::timeout(
                CONNECT_TIMEOUT,
                fieldsync_tests::https::connect_from(addr, source),
            )
            .await
            .ok()?
            .ok()
        });
    }
    collect(tasks, n).await
}

async fn collect<T: 'static>(mut tasks: JoinSet<Option<T>>, n: usize) -> (Vec<T>, usize) {
    let mut opened = Vec::with_capacity(n);
    while let Some(result) = tasks.join_next().await {
        if let Ok(Some(stream)) = result {
            opened.push(stream);
        }
    }
    let failed = n - opened.len();
    (opened, failed)
}
