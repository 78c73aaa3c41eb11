//! The HTTPS listener: TLS with rustls (tokio-rustls), HTTP/1.1 with hyper, the warp routes
//! as the service, and a graceful shutdown that stops accepting and lets requests in flight
//! finish (each sync request is one SQLite transaction, so nothing is ever half-written).
//!
//! Every connection is bounded: overall and per peer address, in the time its TLS handshake,
//! each request's headers (and an idle keep-alive) and each request may take. Connections that
//! have not yet shown a valid token are shed first when the server is at its cap (see
//! [`Connections`]), so a flood of them cannot keep phones out. Failing accepts (out of file
//! descriptors) back off instead of spinning, and repeated warnings are logged at most once a
//! second.

use crate::config::Timeouts;
use crate::http::{compress, error::ApiError, routes, AppState, Peer};
use hyper::service::Service as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;
use warp::Reply;

/// How long requests in flight get to finish after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);
/// Connections open at once, overall (lowered to half the open-file limit) and per peer
/// address (generous: many phones share a carrier's NAT address). A quarter of the overall cap
/// is kept for authenticated connections.
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

/// The key connections are counted under: an IPv4 address, or an IPv6 /64 prefix (what one
/// subscriber gets: counting single IPv6 addresses would give one attacker 2^64 of them).
fn peer_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

/// One open connection.
struct Open {
    peer: IpAddr,
    /// Closes it while it is pre-authentication; `None` once a request on it carried a valid
    /// token (then it is never shed).
    shed: Option<oneshot::Sender<()>>,
}

/// The connections of one peer.
#[derive(Default)]
struct PeerConnections {
    open: usize,
    /// Its pre-authentication connections, oldest (lowest id) first.
    pre_auth: BTreeSet<u64>,
}

/// Why a connection was not admitted.
#[derive(Debug, PartialEq, Eq)]
enum Refused {
    /// Its address holds its share, all of it authenticated.
    PeerFull,
    /// The server holds its cap, all of it authenticated.
    Full,
}

/// Every open connection, by peer, and which ones are still pre-authentication.
///
/// A connection is *pre-authentication* from its accept until a request on it carries a valid
/// token ([`ConnectionMark::authenticated`]). Pre-authentication connections may hold at most
/// three quarters of the cap; the rest is kept for authenticated ones. When a new connection
/// arrives and its peer is at its share, or the server at its cap or at the pre-authentication
/// limit, the server closes a pre-authentication connection instead of refusing the newcomer:
/// the peer's own oldest in the first case, otherwise the oldest of the peer holding the most
/// of them. So connections that never authenticate cannot keep a phone out: an attacker's
/// idle connections are the ones that go, and a phone's single connection is shed only when
/// every other address holds no more than it does.
struct Connections {
    max: usize,
    max_pre_auth: usize,
    next_id: u64,
    open: HashMap<u64, Open>,
    peers: HashMap<IpAddr, PeerConnections>,
    /// Peers holding pre-authentication connections in the order they are shed from: the most
    /// such connections first, then the one whose oldest is oldest.
    shed_order: BTreeSet<(Reverse<usize>, u64, IpAddr)>,
    pre_auth: usize,
    /// Pre-authentication connections closed to make room, in all.
    shed_total: u64,
}

fn shed_key(peer: IpAddr, connections: &PeerConnections) -> Option<(Reverse<usize>, u64, IpAddr)> {
    let oldest = *connections.pre_auth.first()?;
    Some((Reverse(connections.pre_auth.len()), oldest, peer))
}

impl Connections {
    fn new(max: usize) -> Connections {
        let max = max.max(16);
        Connections {
            max,
            max_pre_auth: max - max / 4,
            next_id: 0,
            open: HashMap::new(),
            peers: HashMap::new(),
            shed_order: BTreeSet::new(),
            pre_auth: 0,
            shed_total: 0,
        }
    }

    /// Changes a peer's entry, keeping the shedding order in step.
    fn update_peer(&mut self, peer: IpAddr, f: impl FnOnce(&mut PeerConnections)) {
        let entry = self.peers.entry(peer).or_default();
        if let Some(key) = shed_key(peer, entry) {
            self.shed_order.remove(&key);
        }
        f(entry);
        if let Some(key) = shed_key(peer, entry) {
            self.shed_order.insert(key);
        }
        if entry.open == 0 {
            self.peers.remove(&peer);
        }
    }

    /// Forgets a connection (closed, or shed); nothing if it is already gone.
    fn remove(&mut self, id: u64) -> Option<Open> {
        let open = self.open.remove(&id)?;
        let pre_auth = open.shed.is_some();
        if pre_auth {
            self.pre_auth -= 1;
        }
        self.update_peer(open.peer, |p| {
            p.open -= 1;
            p.pre_auth.remove(&id);
        });
        Some(open)
    }

    /// Closes pre-authentication connection `id` to make room.
    fn shed(&mut self, id: u64) {
        if let Some(Open {
            shed: Some(close), ..
        }) = self.remove(id)
        {
            self.shed_total += 1;
            // The connection may have ended meanwhile; then there is nothing to close.
            let _ = close.send(());
        }
    }

    /// Admits a connection from `ip`, shedding others if need be: its id, and what closes it
    /// while it is pre-authentication.
    fn admit(&mut self, ip: IpAddr) -> Result<(u64, oneshot::Receiver<()>), Refused> {
        let peer = peer_key(ip);
        if let Some(mine) = self.peers.get(&peer).filter(|p| p.open >= MAX_PER_PEER) {
            let oldest = *mine.pre_auth.first().ok_or(Refused::PeerFull)?;
            self.shed(oldest);
        }
        while self.open.len() >= self.max || self.pre_auth >= self.max_pre_auth {
            let &(_, oldest, _) = self.shed_order.first().ok_or(Refused::Full)?;
            self.shed(oldest);
        }
        let id = self.next_id;
        self.next_id += 1;
        let (close, closed) = oneshot::channel();
        self.open.insert(
            id,
            Open {
                peer,
                shed: Some(close),
            },
        );
        self.pre_auth += 1;
        self.update_peer(peer, |p| {
            p.open += 1;
            p.pre_auth.insert(id);
        });
        Ok((id, closed))
    }

    /// A request on connection `id` carried a valid token: it is never shed from now on.
    fn authenticate(&mut self, id: u64) {
        let Some(open) = self.open.get_mut(&id) else {
            return;
        };
        if open.shed.take().is_none() {
            return;
        }
        let peer = open.peer;
        self.pre_auth -= 1;
        self.update_peer(peer, |p| {
            p.pre_auth.remove(&id);
        });
    }
}

type Shared = Arc<Mutex<Connections>>;

fn lock(connections: &Shared) -> std::sync::MutexGuard<'_, Connections> {
    connections.lock().unwrap_or_else(|e| e.into_inner())
}

/// A connection's place, freed when dropped.
struct Slot {
    connections: Shared,
    id: u64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        lock(&self.connections).remove(self.id);
    }
}

/// Put into each request by the listener: the HTTP layer marks the connection authenticated
/// once a request on it carries a valid token, which keeps it from being shed.
#[derive(Clone)]
pub struct ConnectionMark {
    connections: Shared,
    id: u64,
    done: Arc<AtomicBool>,
}

impl ConnectionMark {
    pub fn authenticated(&self) {
        if !self.done.swap(true, Ordering::Relaxed) {
            lock(&self.connections).authenticate(self.id);
        }
    }
}

impl std::fmt::Debug for ConnectionMark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionMark")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Raises the process's open-file limit to its hard limit (at start, before anything opens
/// files) and returns the soft limit now in force.
pub fn raise_open_file_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if let Some(hard) = limit.maximum {
        limit.current = Some(hard);
        let _ = setrlimit(Resource::Nofile, limit);
    }
    getrlimit(Resource::Nofile).current
}

/// The connection cap an open-file limit allows: half of it (the rest is for the database,
/// logs and connections being closed), at most [`MAX_CONNECTIONS`].
pub fn connection_cap(open_file_limit: Option<u64>) -> usize {
    let limit = open_file_limit
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(1024);
    MAX_CONNECTIONS.min(limit / 2).max(16)
}

static ACCEPT_FAILED: RateLimitedLog = RateLimitedLog::new();
static REFUSED_PEER: RateLimitedLog = RateLimitedLog::new();
static SHEDDING: RateLimitedLog = RateLimitedLog::new();

/// Serves until `shutdown` completes, then drains. At most `max_connections` are open at once.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    state: AppState,
    timeouts: Timeouts,
    max_connections: usize,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    // The listener's own answer (a request that ran out of time) carries the same headers as
    // the routes' answers.
    let hsts = state.hsts;
    let service = warp::service(routes(state));
    let graceful = GracefulShutdown::new();
    let connections: Shared = Arc::new(Mutex::new(Connections::new(max_connections)));
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
                let admitted = {
                    let mut c = lock(&connections);
                    let shed_before = c.shed_total;
                    let admitted = c.admit(peer.ip());
                    if c.shed_total > shed_before {
                        let (open, pre_auth, shed) = (c.open.len(), c.pre_auth, c.shed_total);
                        drop(c);
                        SHEDDING.warn(|suppressed| {
                            tracing::warn!(open, pre_auth, shed, suppressed,
                                "at the connection cap: closing unauthenticated connections");
                        });
                    }
                    admitted
                };
                let (id, shed) = match admitted {
                    Ok(admitted) => admitted,
                    Err(why) => {
                        REFUSED_PEER.warn(|suppressed| {
                            tracing::warn!(%peer, ?why, suppressed, "connection refused: too many open");
                        });
                        drop(tcp);
                        continue;
                    }
                };
                let slot = Slot { connections: connections.clone(), id };
                let mark = ConnectionMark {
                    connections: connections.clone(),
                    id,
                    done: Arc::new(AtomicBool::new(false)),
                };
                let acceptor = acceptor.clone();
                let inner = TowerToHyperService::new(service.clone());
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let _slot = slot;
                    let serve = async move {
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
                            request.extensions_mut().insert(mark.clone());
                            let gzip = compress::accepts_gzip(request.headers());
                            let call = inner.call(request);
                            async move {
                                match tokio::time::timeout(timeouts.request(), call).await {
                                    Ok(Ok(answer)) => Ok(compress::gzip_json(gzip, answer).await),
                                    Ok(Err(never)) => Err(never),
                                    Err(_) => Ok(crate::http::headers::secure(
                                        ApiError::Timeout.into_response(),
                                        hsts,
                                    )),
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
                    };
                    tokio::select! {
                        () = serve => {}
                        Ok(()) = shed => tracing::debug!(%peer, "connection shed"),
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

    fn ip(last: u8) -> IpAddr {
        [10, 0, 0, last].into()
    }

    fn admit(c: &mut Connections, peer: IpAddr) -> (u64, oneshot::Receiver<()>) {
        c.admit(peer).unwrap()
    }

    fn was_shed(closed: &mut oneshot::Receiver<()>) -> bool {
        closed.try_recv().is_ok()
    }

    #[test]
    fn a_peer_at_its_share_sheds_its_own_oldest_unauthenticated_connection() {
        let mut c = Connections::new(10_000);
        let mut held: Vec<_> = (0..MAX_PER_PEER).map(|_| admit(&mut c, ip(1))).collect();
        let newest = admit(&mut c, ip(1));
        assert!(was_shed(&mut held[0].1), "the oldest made room");
        assert!(held[1..].iter_mut().all(|(_, r)| !was_shed(r)));
        assert_eq!(c.peers[&ip(1)].open, MAX_PER_PEER);
        // All of them authenticated: nothing to shed, the newcomer is refused.
        for (id, _) in held.iter().skip(1).chain([&newest]) {
            c.authenticate(*id);
        }
        assert_eq!(c.admit(ip(1)).unwrap_err(), Refused::PeerFull);
        assert!(c.admit(ip(2)).is_ok(), "other addresses are not affected");
        // Places come back when connections close.
        c.remove(newest.0);
        assert!(c.admit(ip(1)).is_ok());
    }

    #[test]
    fn at_the_cap_the_heaviest_peer_loses_its_oldest_and_phones_keep_theirs() {
        let mut c = Connections::new(100);
        assert_eq!(c.max_pre_auth, 75);
        let mut phone = admit(&mut c, ip(200));
        let mut attacker: Vec<_> = Vec::new();
        for round in 0..1_000 {
            let peer = ip(1 + (round % 20) as u8);
            attacker.push(admit(&mut c, peer));
            assert!(c.pre_auth <= c.max_pre_auth && c.open.len() <= c.max);
        }
        assert!(!was_shed(&mut phone.1), "the phone's one connection stays");
        let shed: Vec<bool> = attacker.iter_mut().map(|(_, r)| was_shed(r)).collect();
        assert_eq!(shed.iter().filter(|s| **s).count(), 1_000 - 74);
        assert_eq!(c.shed_total, 1_000 - 74);
        // The survivors are the newest: each address keeps its latest few.
        assert!(shed[..900].iter().all(|s| *s));
        for peer in 1..=20 {
            let held = c.peers[&ip(peer)].pre_auth.len();
            assert!((3..=4).contains(&held), "address {peer} holds {held}");
        }
    }

    #[test]
    fn authenticated_connections_keep_their_reserved_share() {
        let mut c = Connections::new(100);
        let authed: Vec<_> = (0..25).map(|i| admit(&mut c, ip(i))).collect();
        for (id, _) in &authed {
            c.authenticate(*id);
        }
        // Unauthenticated ones fill the rest and then shed one another, never the 25.
        for round in 0..500 {
            admit(&mut c, ip(100 + (round % 7) as u8));
        }
        assert_eq!(c.open.len(), 100);
        assert_eq!(c.pre_auth, 75);
        assert!(authed.iter().all(|(id, _)| c.open.contains_key(id)));
        // More authenticated connections may take places from unauthenticated ones...
        let (id, _) = admit(&mut c, ip(50));
        c.authenticate(id);
        assert_eq!((c.open.len(), c.pre_auth), (100, 74));
        // ...up to the whole cap; then a newcomer is refused.
        let mut c = Connections::new(16);
        for i in 0..16 {
            let (id, _) = admit(&mut c, ip(i));
            c.authenticate(id);
        }
        assert_eq!(c.admit(ip(99)).unwrap_err(), Refused::Full);
    }

    #[test]
    fn a_closed_or_shed_connection_is_forgotten_once() {
        let mut c = Connections::new(16);
        let (a, _ra) = admit(&mut c, ip(1));
        let (b, _rb) = admit(&mut c, ip(1));
        c.shed(a);
        assert!(c.remove(a).is_none(), "already gone");
        c.authenticate(a);
        c.authenticate(b);
        c.authenticate(b);
        assert_eq!((c.open.len(), c.pre_auth), (1, 0));
        c.remove(b);
        assert!(c.peers.is_empty() && c.shed_order.is_empty());
    }

    #[test]
    fn ipv6_peers_count_by_their_64_prefix() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(peer_key(a), peer_key(b));
        assert_ne!(peer_key(a), peer_key(other));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(peer_key(mapped), ip(1));
    }

    #[test]
    fn the_cap_is_half_the_open_file_limit() {
        assert_eq!(connection_cap(Some(1024)), 512);
        assert_eq!(connection_cap(Some(1 << 20)), MAX_CONNECTIONS);
        assert_eq!(connection_cap(Some(10)), 16);
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
