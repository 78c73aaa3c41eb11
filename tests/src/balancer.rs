//! A TCP load balancer for tests on several server instances: each new connection goes to an
//! instance picked at random among the live ones, so a client that opens a connection per
//! request (as [`crate::https::HttpsClient`] does) sends each request to a random instance.
//!
//! It runs on a thread of its own, so it keeps forwarding while a test blocks its runtime.
//! It connects to the instance from the client's own loopback address (127.0.0.2 stays
//! 127.0.0.2), so the servers' per-address limits see the real peers.
//! An instance that refuses the connection (killed, restarting) is passed over for another,
//! as a balancer's health check would; a connection whose instance dies mid-request is cut.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::net::{TcpListener, TcpStream};

use tokio::sync::oneshot;

/// A running balancer on 127.0.0.1; it stops (and cuts its connections) when dropped.
pub struct Balancer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Shared {
    /// Where new connections may go.
    upstreams: Mutex<Vec<SocketAddr>>,
    rng: Mutex<u64>,
    /// Per instance: connections open now, and forwarded so far.
    open: Mutex<HashMap<SocketAddr, usize>>,
    forwarded: Mutex<HashMap<SocketAddr, u64>>,
}

/// A poisoned lock only means a connection task panicked; the data is still usable.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// The live instances in a random order: the first is the pick, the rest the fallbacks.
    fn shuffled(&self) -> Vec<SocketAddr> {
        let mut list = lock(&self.upstreams).clone();
        let mut rng = lock(&self.rng);
        for i in (1..list.len()).rev() {
            // SplitMix64: small, and good enough to spread connections.
            *rng = rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = *rng;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            list.swap(i, (z % (i as u64 + 1)) as usize);
        }
        list
    }

    fn opened(&self, upstream: SocketAddr) {
        *lock(&self.open).entry(upstream).or_default() += 1;
        *lock(&self.forwarded).entry(upstream).or_default() += 1;
    }

    fn closed(&self, upstream: SocketAddr) {
        if let Some(n) = lock(&self.open).get_mut(&upstream) {
            *n = n.saturating_sub(1);
        }
    }
}

impl Balancer {
    /// Binds 127.0.0.1 on an ephemeral port and spreads connections over `upstreams`;
    /// `seed` makes the choices reproducible.
    pub fn start(upstreams: &[SocketAddr], seed: u64) -> io::Result<Balancer> {
        let std_listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstreams: Mutex::new(upstreams.to_vec()),
            rng: Mutex::new(seed),
            ..Default::default()
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (stop, stopped) = oneshot::channel();
        let task_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("balancer".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = TcpListener::from_std(std_listener) else {
                        return;
                    };
                    tokio::select! {
                        _ = accept_loop(listener, task_shared) => {}
                        _ = stopped => {}
                    }
                });
                // Dropping the runtime here ends every forwarding task: their sockets close.
            })?;
        Ok(Balancer {
            addr,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The one address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops sending new connections to `upstream` (open ones go on until they end).
    pub fn remove(&self, upstream: SocketAddr) {
        lock(&self.shared.upstreams).retain(|a| *a != upstream);
    }

    /// Sends new connections to `upstream` too.
    pub fn add(&self, upstream: SocketAddr) {
        let mut list = lock(&self.shared.upstreams);
        if !list.contains(&upstream) {
            list.push(upstream);
        }
    }

    /// Connections to `upstream` open right now (a request on its way or being answered).
    pub fn open_connections(&self, upstream: SocketAddr) -> usize {
        lock(&self.shared.open).get(&upstream).copied().unwrap_or(0)
    }

    /// Connections forwarded to `upstream` so far.
    pub fn forwarded(&self, upstream: SocketAddr) -> u64 {
        lock(&self.shared.forwarded)
            .get(&upstream)
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((client, peer)) = listener.accept().await else {
            // Out of file descriptors, most likely: wait for connections to end.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            for upstream in shared.shuffled() {
                let Ok(server) = crate::https::connect_from(upstream, Some(peer.ip())).await else {
                    continue;
                };
                forward(client, server, upstream, &shared).await;
                return;
            }
            // No instance answered: the client sees its connection closed.
        });
    }
}

async fn forward(mut client: TcpStream, mut server: TcpStream, upstream: SocketAddr, s: &Shared) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    s.opened(upstream);
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
    s.closed(upstream);
}
