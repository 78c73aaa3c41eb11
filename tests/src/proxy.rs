//! Fault-injecting TCP proxy for loopback tests: adds latency, caps bandwidth and cuts
//! connections part-way through their exchange, reproducibly for a given seed.
//!
//! # Cuts
//!
//! When a connection is accepted, the proxy decides from the profile's seed whether it will
//! be cut (with probability [`FaultProfile::cut_probability`]), in which direction, and at
//! which fraction `f` of that direction's exchange. A connection's *exchange* in one direction
//! is every byte it carries that way except a last chunk of at most 64 bytes, which is taken
//! to be the closing handshake (a TLS `close_notify` alert is 24 bytes): by then the client has
//! its response and a cut would change nothing. A chunk is what one read from the socket
//! returns. Cutting means dropping both directions at once, without a FIN.
//!
//! The proxy cannot see inside TLS, so it cannot know how many bytes a connection will carry
//! before it has carried them. It learns sizes from the traffic instead: it remembers the
//! exchange sizes of the last [`REMEMBERED_EXCHANGES`] connections that ended without a cut,
//! and a planned cut is placed at `f × n`, where `n` is one of those sizes drawn at random
//! (8 KiB until a connection has finished). So cut points are spread over the whole of an
//! exchange of the usual sizes, early and late, in the handshake, the request, between the
//! request and the response, or in the response.
//!
//! A connection that ends before its planned cut point (it was smaller than the size it was
//! measured against) owes a cut: the next connection that was not going to be cut is cut in
//! its place. So the share of connections actually cut stays the profile's probability (up to
//! chance), rather than shrinking for short exchanges, at the price of cutting a
//! connection a little more often when it follows a short one.

use std::collections::VecDeque;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// Exchange size a cut is measured against before any connection has finished.
const DEFAULT_EXCHANGE_BYTES: u64 = 8192;
/// How many finished connections' exchange sizes are remembered, per direction.
pub const REMEMBERED_EXCHANGES: usize = 32;
/// A connection's last chunk at most this long is its closing handshake, not its exchange.
const CLOSING_CHUNK_BYTES: u64 = 64;
/// At most this many cuts owed by connections that ended too soon are kept.
const MAX_OWED_CUTS: u32 = 64;
const CHUNK_SIZE: usize = 16 * 1024;

/// What the proxy does to the traffic passing through it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultProfile {
    /// One-way latency added to every chunk, in each direction.
    pub delay: Duration,
    /// Bandwidth cap per direction; `None` (or 0) means unlimited.
    pub bytes_per_sec: Option<u64>,
    /// Share of connections cut part-way through their exchange (see the module doc). Whether
    /// a connection is to be cut is drawn when it is accepted.
    pub cut_probability: f64,
    /// Seed for the cut decisions: the n-th connection's draws (cut or not, direction,
    /// fraction) depend only on the seed; the size they are applied to, and whether a cut owed
    /// by an earlier connection falls to it, depend on the traffic before it.
    pub seed: u64,
}

impl FaultProfile {
    /// Passes everything through untouched.
    pub fn clean() -> Self {
        Self {
            delay: Duration::ZERO,
            bytes_per_sec: None,
            cut_probability: 0.0,
            seed: 0,
        }
    }

    /// Unreliable but fast: 20 ms one-way delay, no bandwidth cap, 30% of connections cut at a
    /// random point of their exchange.
    pub fn flaky(seed: u64) -> Self {
        Self {
            delay: Duration::from_millis(20),
            bytes_per_sec: None,
            cut_probability: 0.3,
            seed,
        }
    }

    /// 2G-like link: 64 kbit/s (8000 bytes/s), 200 ms one-way (400 ms round trip), 10% of
    /// connections cut at a random point of their exchange.
    pub fn two_g(seed: u64) -> Self {
        Self {
            delay: Duration::from_millis(200),
            bytes_per_sec: Some(8000),
            cut_probability: 0.1,
            seed,
        }
    }

    /// How long to hold a chunk of `len` bytes before forwarding it.
    fn hold_time(&self, len: usize) -> Duration {
        let transfer = match self.bytes_per_sec {
            Some(rate) if rate > 0 => Duration::from_secs_f64(len as f64 / rate as f64),
            _ => Duration::ZERO,
        };
        self.delay + transfer
    }
}

impl Default for FaultProfile {
    fn default() -> Self {
        Self::clean()
    }
}

/// Snapshot of a proxy's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProxyStats {
    /// Connections accepted.
    pub connections: u64,
    /// Connections actually cut (a cut planned for a connection that ended before its cut
    /// point is not counted here: it is carried over to a later connection).
    pub cut_connections: u64,
    /// Bytes forwarded client → upstream.
    pub bytes_up: u64,
    /// Bytes forwarded upstream → client.
    pub bytes_down: u64,
}

/// One cut, as it happened.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CutRecord {
    /// The direction that was cut.
    pub direction: Direction,
    /// Bytes forwarded in that direction before the cut.
    pub offset: u64,
    /// The exchange size the cut point was drawn against.
    pub measured_against: u64,
    /// `offset / measured_against`, drawn uniformly in [0, 1).
    pub fraction: f64,
}

#[derive(Debug, Default)]
struct Counters {
    connections: AtomicU64,
    cut_connections: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
    cuts: Mutex<Vec<CutRecord>>,
}

/// A running proxy on 127.0.0.1; it stops (and cuts its open connections) when dropped.
#[derive(Debug)]
pub struct FaultyProxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    counters: Arc<Counters>,
    accept_task: JoinHandle<()>,
}

impl FaultyProxy {
    /// Binds 127.0.0.1 on an ephemeral port and forwards every accepted connection to
    /// `upstream`, which must be a loopback address.
    pub async fn start(upstream: SocketAddr, profile: FaultProfile) -> io::Result<FaultyProxy> {
        if !upstream.ip().is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("FaultyProxy only forwards to loopback addresses, not {upstream}"),
            ));
        }
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let counters = Arc::new(Counters::default());
        let accept_task = tokio::spawn(accept_loop(
            listener,
            upstream,
            profile,
            Arc::clone(&counters),
        ));
        Ok(FaultyProxy {
            addr,
            upstream,
            counters,
            accept_task,
        })
    }

    /// The address clients should connect to instead of the upstream.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address every connection is forwarded to.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// Every cut so far, in the order they happened.
    pub fn cuts(&self) -> Vec<CutRecord> {
        lock(&self.counters.cuts).clone()
    }

    /// Current counter values.
    pub fn stats(&self) -> ProxyStats {
        ProxyStats {
            connections: self.counters.connections.load(Ordering::Relaxed),
            cut_connections: self.counters.cut_connections.load(Ordering::Relaxed),
            bytes_up: self.counters.bytes_up.load(Ordering::Relaxed),
            bytes_down: self.counters.bytes_down.load(Ordering::Relaxed),
        }
    }
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        // The connection tasks live in a JoinSet owned by the accept task, so aborting it
        // closes the listener and every proxied connection too.
        self.accept_task.abort();
    }
}

/// A direction of a proxied connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client → upstream.
    Up,
    /// Upstream → client.
    Down,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct CutPlan {
    direction: Direction,
    /// Bytes forwarded in `direction` before the connection is dropped.
    offset: u64,
    measured_against: u64,
    fraction: f64,
}

/// A poisoned lock only means another connection task panicked; the data is still usable.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Draws the fate of each new connection from the profile's seed, learns exchange sizes
/// from the connections that finish, and carries over the cuts they escaped.
#[derive(Debug)]
struct CutPlanner {
    rng: SplitMix64,
    probability: f64,
    /// Exchange sizes of recent uncut connections: up, down.
    sizes: [VecDeque<u64>; 2],
    /// Cuts planned for connections that ended before their cut point.
    owed: u32,
}

impl CutPlanner {
    fn new(profile: &FaultProfile) -> Self {
        Self {
            rng: SplitMix64::new(profile.seed),
            probability: profile.cut_probability,
            sizes: [VecDeque::new(), VecDeque::new()],
            owed: 0,
        }
    }

    fn next_plan(&mut self) -> Option<CutPlan> {
        // Always draw all four values so the n-th connection's draws depend only on the seed.
        let roll = self.rng.next_f64();
        let fraction = self.rng.next_f64();
        let pick = self.rng.next_u64();
        let direction = if self.rng.next_u64() & 1 == 0 {
            Direction::Up
        } else {
            Direction::Down
        };
        if roll >= self.probability {
            if self.owed == 0 {
                return None;
            }
            self.owed -= 1;
        }
        let sizes = &self.sizes[direction as usize];
        let measured_against = if sizes.is_empty() {
            DEFAULT_EXCHANGE_BYTES
        } else {
            sizes[(pick % sizes.len() as u64) as usize]
        };
        Some(CutPlan {
            direction,
            offset: (fraction * measured_against as f64) as u64,
            measured_against,
            fraction,
        })
    }

    /// A connection ended without being cut, with these exchange sizes up and down.
    fn learn(&mut self, up: u64, down: u64) {
        for (sizes, n) in self.sizes.iter_mut().zip([up, down]) {
            if sizes.len() == REMEMBERED_EXCHANGES {
                sizes.pop_front();
            }
            sizes.push_back(n);
        }
    }

    /// A connection planned to be cut ended before its cut point.
    fn escaped(&mut self) {
        self.owed = (self.owed + 1).min(MAX_OWED_CUTS);
    }
}

/// SplitMix64 (Steele, Lea & Flood 2014): tiny, seedable, good enough for fault injection.
#[derive(Debug, Clone)]
struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    profile: FaultProfile,
    counters: Arc<Counters>,
) {
    let planner = Arc::new(Mutex::new(CutPlanner::new(&profile)));
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let (client, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(_) => {
                // Typically fd exhaustion; back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        counters.connections.fetch_add(1, Ordering::Relaxed);
        let plan = lock(&planner).next_plan();
        connections.spawn(proxy_connection(
            client,
            peer,
            upstream,
            profile,
            plan,
            Arc::clone(&counters),
            Arc::clone(&planner),
        ));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PumpEnd {
    /// The source closed; the close was passed on.
    Eof,
    /// The planned cut offset was reached.
    Cut,
    /// A socket error ended this direction.
    Failed,
}

/// How one direction of a connection ended and what it carried.
#[derive(Debug, Clone, Copy)]
struct Pumped {
    end: PumpEnd,
    forwarded: u64,
    last_chunk: u64,
}

impl Pumped {
    /// The bytes of the exchange: all but a last chunk short enough to be the closing
    /// handshake.
    fn exchange_bytes(&self) -> u64 {
        if self.last_chunk <= CLOSING_CHUNK_BYTES {
            self.forwarded - self.last_chunk
        } else {
            self.forwarded
        }
    }
}

async fn proxy_connection(
    client: TcpStream,
    peer: SocketAddr,
    upstream: SocketAddr,
    profile: FaultProfile,
    plan: Option<CutPlan>,
    counters: Arc<Counters>,
    planner: Arc<Mutex<CutPlanner>>,
) {
    // A client on its own loopback address (a simulated phone of its own network) reaches the
    // server from that address, as it would through a real network, so that the server's
    // per-address limits see phones, not the proxy.
    let source = (peer.ip().is_loopback() && upstream.ip().is_loopback()).then_some(peer.ip());
    let Ok(server) = crate::https::connect_from(upstream, source).await else {
        return;
    };
    // Without this, Nagle's algorithm would add its own delays on top of the profile.
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let budget_for = |direction| plan.filter(|p| p.direction == direction).map(|p| p.offset);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let up = pump(
        client_read,
        server_write,
        profile,
        budget_for(Direction::Up),
        &counters.bytes_up,
    );
    let down = pump(
        server_read,
        client_write,
        profile,
        budget_for(Direction::Down),
        &counters.bytes_down,
    );
    tokio::pin!(up, down);
    let (mut up_end, mut down_end) = (None, None);
    while up_end.is_none() || down_end.is_none() {
        let end = tokio::select! {
            end = &mut up, if up_end.is_none() => { up_end = Some(end); end }
            end = &mut down, if down_end.is_none() => { down_end = Some(end); end }
        };
        match end.end {
            PumpEnd::Eof => {}
            PumpEnd::Cut => {
                counters.cut_connections.fetch_add(1, Ordering::Relaxed);
                if let Some(p) = plan {
                    lock(&counters.cuts).push(CutRecord {
                        direction: p.direction,
                        offset: p.offset,
                        measured_against: p.measured_against,
                        fraction: p.fraction,
                    });
                }
                // Returning drops all four socket halves at once: the abrupt cut.
                return;
            }
            PumpEnd::Failed => return,
        }
    }
    // Both directions reached EOF: the connection finished whole.
    if let (Some(up), Some(down)) = (up_end, down_end) {
        let mut planner = lock(&planner);
        if plan.is_some() {
            planner.escaped();
        }
        planner.learn(up.exchange_bytes(), down.exchange_bytes());
    }
}

/// Forwards one direction chunk by chunk, holding each chunk for the profile's delay plus
/// its transfer time, until EOF, an error, or `budget` bytes have been forwarded.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    profile: FaultProfile,
    mut budget: Option<u64>,
    forwarded: &AtomicU64,
) -> Pumped {
    let mut buf = vec![0u8; CHUNK_SIZE];
    let mut pumped = Pumped {
        end: PumpEnd::Eof,
        forwarded: 0,
        last_chunk: 0,
    };
    loop {
        let read = match from.read(&mut buf).await {
            Ok(0) => {
                let _ = to.shutdown().await;
                return pumped;
            }
            Ok(n) => n,
            Err(_) => {
                pumped.end = PumpEnd::Failed;
                return pumped;
            }
        };
        let take = match budget {
            Some(left) => read.min(usize::try_from(left).unwrap_or(usize::MAX)),
            None => read,
        };
        if take > 0 {
            let hold = profile.hold_time(take);
            if !hold.is_zero() {
                tokio::time::sleep(hold).await;
            }
            if to.write_all(&buf[..take]).await.is_err() {
                pumped.end = PumpEnd::Failed;
                return pumped;
            }
            forwarded.fetch_add(take as u64, Ordering::Relaxed);
            pumped.forwarded += take as u64;
            pumped.last_chunk = take as u64;
        }
        if let Some(left) = budget.as_mut() {
            *left -= take as u64;
            if *left == 0 {
                pumped.end = PumpEnd::Cut;
                return pumped;
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// Echo server on loopback; returns its address. Runs until the test's runtime ends.
    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let (mut r, mut w) = socket.into_split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                    let _ = w.shutdown().await;
                });
            }
        });
        addr
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    /// Sends `payload` through a fresh connection, half-closes, and returns whatever comes
    /// back before EOF or a reset. Write errors are expected when the proxy cuts.
    async fn echo_exchange(addr: SocketAddr, payload: Vec<u8>) -> Vec<u8> {
        let socket = TcpStream::connect(addr).await.unwrap();
        let (mut r, mut w) = socket.into_split();
        let writer = tokio::spawn(async move {
            if w.write_all(&payload).await.is_ok() {
                let _ = w.shutdown().await;
            }
        });
        let mut received = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
        writer.await.unwrap();
        received
    }

    #[tokio::test]
    async fn clean_profile_forwards_echo_byte_exact() {
        let upstream = echo_server().await;
        let proxy = FaultyProxy::start(upstream, FaultProfile::clean())
            .await
            .unwrap();
        assert!(proxy.addr().ip().is_loopback());
        assert_eq!(proxy.upstream(), upstream);

        let payload = pattern(200_000);
        let received = echo_exchange(proxy.addr(), payload.clone()).await;
        assert_eq!(received.len(), payload.len());
        assert!(received == payload, "echo differs from what was sent");

        let stats = proxy.stats();
        assert_eq!(
            stats,
            ProxyStats {
                connections: 1,
                cut_connections: 0,
                bytes_up: 200_000,
                bytes_down: 200_000,
            }
        );
    }

    #[tokio::test]
    async fn stats_count_every_connection() {
        let upstream = echo_server().await;
        let proxy = FaultyProxy::start(upstream, FaultProfile::clean())
            .await
            .unwrap();
        for i in 0..5 {
            let payload = pattern(100 + i);
            assert_eq!(echo_exchange(proxy.addr(), payload.clone()).await, payload);
        }
        let stats = proxy.stats();
        assert_eq!(stats.connections, 5);
        assert_eq!(stats.cut_connections, 0);
        let total: u64 = (0..5).map(|i| 100 + i).sum();
        assert_eq!(stats.bytes_up, total);
        assert_eq!(stats.bytes_down, total);
    }

    #[tokio::test]
    async fn certain_cut_cuts_every_connection_short() {
        let upstream = echo_server().await;
        let profile = FaultProfile {
            cut_probability: 1.0,
            seed: 42,
            ..FaultProfile::clean()
        };
        let proxy = FaultyProxy::start(upstream, profile).await.unwrap();
        // Larger than the default exchange size that cuts are measured against while no
        // connection has finished whole (none does here), so every cut point is reached.
        let sent = 32 * 1024;
        for _ in 0..10 {
            let received = echo_exchange(proxy.addr(), pattern(sent)).await;
            assert!(
                received.len() < sent,
                "received {} of {sent} bytes through a cut connection",
                received.len()
            );
            assert!(received.len() as u64 <= DEFAULT_EXCHANGE_BYTES);
            assert_eq!(received, pattern(sent)[..received.len()]);
        }
        let stats = proxy.stats();
        assert_eq!(stats.connections, 10);
        assert_eq!(stats.cut_connections, 10);
        assert!(stats.bytes_up < 10 * sent as u64);
        assert!(stats.bytes_down < 10 * DEFAULT_EXCHANGE_BYTES);
        assert_eq!(proxy.cuts().len(), 10);
    }

    #[tokio::test]
    async fn delay_and_bandwidth_slow_the_exchange() {
        let upstream = echo_server().await;
        let profile = FaultProfile {
            delay: Duration::from_millis(50),
            bytes_per_sec: Some(20_000),
            ..FaultProfile::clean()
        };
        let proxy = FaultyProxy::start(upstream, profile).await.unwrap();
        let started = Instant::now();
        let payload = pattern(2000);
        assert_eq!(echo_exchange(proxy.addr(), payload.clone()).await, payload);
        // Each way: 50 ms delay + 2000 B / 20 kB/s = 100 ms.
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(300), "took {elapsed:?}");
        assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    }

    #[tokio::test]
    async fn dropping_the_proxy_stops_it() {
        let upstream = echo_server().await;
        let proxy = FaultyProxy::start(upstream, FaultProfile::clean())
            .await
            .unwrap();
        let addr = proxy.addr();
        let open = TcpStream::connect(addr).await.unwrap();
        drop(proxy);

        // Abort takes effect when the runtime next polls the task.
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            if TcpStream::connect(addr).await.is_err() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "proxy still accepting after drop"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut open = open;
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_secs(2), open.read(&mut buf))
            .await
            .expect("open connection should be closed by the drop");
        assert!(matches!(read, Ok(0) | Err(_)), "got {read:?}");
    }

    #[tokio::test]
    async fn refuses_non_loopback_upstream() {
        let err = FaultyProxy::start("192.0.2.1:443".parse().unwrap(), FaultProfile::clean())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn splitmix64_matches_reference_output() {
        let mut rng = SplitMix64::new(0);
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(rng.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(rng.next_u64(), 0x06C4_5D18_8009_454F);
    }

    #[test]
    fn cut_plans_are_deterministic_per_seed_and_follow_probability() {
        let plans = |seed| {
            let mut planner = CutPlanner::new(&FaultProfile::flaky(seed));
            (0..2000).map(|_| planner.next_plan()).collect::<Vec<_>>()
        };
        let a = plans(7);
        assert_eq!(a, plans(7));
        assert_ne!(a, plans(8));

        let cuts: Vec<CutPlan> = a.iter().flatten().copied().collect();
        let fraction = cuts.len() as f64 / a.len() as f64;
        assert!((0.25..0.35).contains(&fraction), "cut fraction {fraction}");
        assert!(cuts
            .iter()
            .all(|c| c.measured_against == DEFAULT_EXCHANGE_BYTES
                && c.offset < DEFAULT_EXCHANGE_BYTES
                && (0.0..1.0).contains(&c.fraction)));
        assert!(cuts.iter().any(|c| c.direction == Direction::Up));
        assert!(cuts.iter().any(|c| c.direction == Direction::Down));

        let mut never = CutPlanner::new(&FaultProfile::clean());
        assert!((0..1000).all(|_| never.next_plan().is_none()));
        let mut always = CutPlanner::new(&FaultProfile {
            cut_probability: 1.0,
            ..FaultProfile::clean()
        });
        assert!((0..1000).all(|_| always.next_plan().is_some()));
    }

    #[test]
    fn cut_points_are_fractions_of_recently_seen_exchange_sizes() {
        let mut planner = CutPlanner::new(&FaultProfile {
            cut_probability: 1.0,
            ..FaultProfile::clean()
        });
        for _ in 0..REMEMBERED_EXCHANGES {
            planner.learn(1, 1);
        }
        // The oldest sizes are forgotten.
        planner.learn(1000, 3000);
        for _ in 1..REMEMBERED_EXCHANGES {
            planner.learn(2000, 4000);
        }
        let plans: Vec<CutPlan> = (0..2000).filter_map(|_| planner.next_plan()).collect();
        for plan in &plans {
            let seen: [u64; 2] = match plan.direction {
                Direction::Up => [1000, 2000],
                Direction::Down => [3000, 4000],
            };
            assert!(seen.contains(&plan.measured_against), "{plan:?}");
            assert_eq!(
                plan.offset,
                (plan.fraction * plan.measured_against as f64) as u64
            );
        }
        assert!(plans.iter().any(|p| p.measured_against == 1000));
        assert!(plans.iter().any(|p| p.fraction < 0.1));
        assert!(plans.iter().any(|p| p.fraction > 0.9));
    }

    #[test]
    fn cuts_escaped_by_short_connections_are_carried_over() {
        let mut planner = CutPlanner::new(&FaultProfile::clean());
        assert!(planner.next_plan().is_none());
        planner.escaped();
        planner.escaped();
        assert!(planner.next_plan().is_some());
        assert!(planner.next_plan().is_some());
        assert!(planner.next_plan().is_none());
    }

    #[test]
    fn a_short_last_chunk_is_the_closing_handshake() {
        let pumped = |forwarded, last_chunk| Pumped {
            end: PumpEnd::Eof,
            forwarded,
            last_chunk,
        };
        // A TLS close_notify alert after the exchange.
        assert_eq!(pumped(1500, 24).exchange_bytes(), 1476);
        // Data to the very end (an echo, a plain HTTP response before the FIN).
        assert_eq!(pumped(1500, 600).exchange_bytes(), 1500);
        assert_eq!(pumped(0, 0).exchange_bytes(), 0);
    }

    #[tokio::test]
    async fn short_connections_are_cut_as_often_as_planned() {
        // 300-byte echoes against the 8 KiB default: the first planned cuts are escaped and
        // carried over, then the sizes learnt from whole connections catch every cut.
        let upstream = echo_server().await;
        let profile = FaultProfile {
            cut_probability: 0.5,
            seed: 3,
            ..FaultProfile::clean()
        };
        let proxy = FaultyProxy::start(upstream, profile).await.unwrap();
        let mut planner = CutPlanner::new(&profile);
        let planned = (0..200).filter(|_| planner.next_plan().is_some()).count() as u64;
        for _ in 0..200 {
            echo_exchange(proxy.addr(), pattern(300)).await;
        }
        let stats = proxy.stats();
        assert_eq!(stats.connections, 200);
        assert!(
            stats.cut_connections + 3 >= planned && stats.cut_connections <= planned,
            "{} cut, {planned} planned",
            stats.cut_connections
        );
    }

    #[test]
    fn profiles_match_their_descriptions() {
        let flaky = FaultProfile::flaky(3);
        assert_eq!(flaky.delay, Duration::from_millis(20));
        assert_eq!(flaky.bytes_per_sec, None);
        assert_eq!(flaky.cut_probability, 0.3);
        assert_eq!(flaky.seed, 3);

        let two_g = FaultProfile::two_g(4);
        assert_eq!(two_g.delay, Duration::from_millis(200));
        assert_eq!(two_g.bytes_per_sec, Some(8000));
        assert_eq!(two_g.cut_probability, 0.1);
        assert_eq!(two_g.hold_time(8000), Duration::from_millis(1200));

        assert_eq!(FaultProfile::clean().hold_time(1 << 20), Duration::ZERO);
        assert_eq!(FaultProfile::default(), FaultProfile::clean());
    }
}
