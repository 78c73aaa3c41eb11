//! The HTTPS listener: TLS with rustls (tokio-rustls), HTTP/1.1 with hyper, the warp routes
//! as the service, and a graceful shutdown that stops accepting and lets requests in flight
//! finish (each sync request is one SQLite transaction, so nothing is ever half-written).
//!
//! Every connection is bounded: overall and per peer address, in the time its TLS handshake,
//! each request's headers (and an idle keep-alive) and each request may take. Failing accepts
//! (out of file descriptors) back off instead of spinning, and repeated warnings are logged at
//! most once a second.

use crate::config::Timeouts;
use crate::http::{compress, error::ApiError, routes, AppState, Peer};
use hyper::service::Service as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;
use warp::Reply;

/// How long requests in flight get to finish after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);
/// Connections open at once, overall (lowered to half the open-file limit) and per peer
/// address (generous: many phones share a carrier's NAT address).
const MAX_CONNECTIONS: usize = 4_096;
const MAX_PER_PEER: usize = 256;

/// Logs a repeated warning at most once a second, with how many were left out.
pub struct RateLimitedLog {
    state: Mutex<(Option<Instant>, u64)>,
}

impl RateLimitedLog {
    pub const fn new() -> RateLimitedLog {
        RateLimitedLog {
            state: Mutex::new((None, 0)),
        }
    }

    /// Calls `log(suppressed)` unless it was called less than a second ago.
    pub fn warn(&self, log: impl FnOnce(u64)) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if state
            .0
            .is_some_and(|last| now - last < Duration::from_secs(1))
        {
            state.1 += 1;
            return;
        }
        let suppressed = std::mem::take(&mut state.1);
        state.0 = Some(now);
        drop(state);
        log(suppressed);
    }
}

impl Default for RateLimitedLog {
    fn default() -> Self {
        RateLimitedLog::new()
    }
}

/// Connections open per peer address, and overall.
#[derive(Default)]
struct Connections {
    per_peer: HashMap<IpAddr, usize>,
    total: usize,
}

/// A connection's place, freed when dropped.
struct Slot {
    connections: Arc<Mutex<Connections>>,
    peer: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_peer.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                c.per_peer.remove(&self.peer);
            }
        }
    }
}

fn take_slot(connections: &Arc<Mutex<Connections>>, peer: IpAddr, max: usize) -> Option<Slot> {
    let mut c = connections.lock().unwrap_or_else(|e| e.into_inner());
    let mine = c.per_peer.get(&peer).copied().unwrap_or(0);
    if c.total >= max || mine >= MAX_PER_PEER {
        return None;
    }
    c.total += 1;
    *c.per_peer.entry(peer).or_default() += 1;
    Some(Slot {
        connections: connections.clone(),
        peer,
    })
}

/// Raises the process's open-file limit to its hard limit and returns the connection cap it
/// allows (leaving room for the database and logs).
pub fn connection_cap() -> usize {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if let Some(hard) = limit.maximum {
        limit.current = Some(hard);
        let _ = setrlimit(Resource::Nofile, limit);
    }
    let soft = getrlimit(Resource::Nofile)
        .current
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(1024);
    MAX_CONNECTIONS.min(soft / 2).max(16)
}

static ACCEPT_FAILED: RateLimitedLog = RateLimitedLog::new();
static REFUSED_PEER: RateLimitedLog = RateLimitedLog::new();

/// Serves until `shutdown` completes, then drains.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    state: AppState,
    timeouts: Timeouts,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let service = warp::service(routes(state));
    let graceful = GracefulShutdown::new();
    let connections = Arc::new(Mutex::new(Connections::default()));
    let max_connections = connection_cap();
    let mut backoff = Duration::from_millis(5);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(pair) => {
                        backoff = Duration::from_millis(5);
                        pair
                    }
                    Err(e) => {
                        // Typically out of file descriptors: wait for some to close rather
                        // than spin, and do not fill the disk with the same line.
                        ACCEPT_FAILED.warn(|suppressed| {
                            tracing::warn!(error = %e, suppressed, "accept failed");
                        });
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(1));
                        continue;
                    }
                };
                let Some(slot) = take_slot(&connections, peer.ip(), max_connections) else {
                    REFUSED_PEER.warn(|suppressed| {
                        tracing::warn!(%peer, suppressed, "connection refused: too many open");
                    });
                    drop(tcp);
                    continue;
                };
                let acceptor = acceptor.clone();
                let inner = TowerToHyperService::new(service.clone());
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let _slot = slot;
                    let stream = match tokio::time::timeout(timeouts.header, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    let service = hyper::service::service_fn(move |mut request| {
                        request.extensions_mut().insert(Peer(peer.ip()));
                        let gzip = compress::accepts_gzip(request.headers());
                        let call = inner.call(request);
                        async move {
                            match tokio::time::timeout(timeouts.request(), call).await {
                                Ok(Ok(answer)) => Ok(compress::gzip_json(gzip, answer).await),
                                Ok(Err(never)) => Err(never),
                                Err(_) => Ok(ApiError::Timeout.into_response()),
                            }
                        }
                    });
                    let connection = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(timeouts.header)
                        .serve_connection(TokioIo::new(stream), service);
                    if let Err(e) = watcher.watch(connection).await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!("shutting down: draining requests in flight");
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(DRAIN_TIMEOUT) => tracing::warn!("drain timed out; closing remaining connections"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_gets_at_most_its_share_and_places_come_back() {
        let connections = Arc::new(Mutex::new(Connections::default()));
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let held: Vec<Slot> = (0..MAX_PER_PEER)
            .map(|_| take_slot(&connections, a, 10_000).unwrap())
            .collect();
        assert!(take_slot(&connections, a, 10_000).is_none());
        assert!(take_slot(&connections, b, 10_000).is_some());
        drop(held);
        assert!(take_slot(&connections, a, 10_000).is_some());
        assert!(
            take_slot(&connections, b, 1).is_some(),
            "the one above was freed"
        );
    }

    #[test]
    fn repeated_warnings_are_counted_not_logged() {
        let log = RateLimitedLog::new();
        let mut logged = Vec::new();
        for _ in 0..100 {
            log.warn(|suppressed| logged.push(suppressed));
        }
        assert_eq!(logged, vec![0]);
    }
}
