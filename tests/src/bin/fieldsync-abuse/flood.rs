//! The flood attacks: connections from many addresses that never authenticate, the same
//! large pull asked for again and again (with an empty cursor, or one claiming another
//! database), and one account pushing as fast as it can from two devices.

use crate::attacks::{mib, Ctx, Outcomes, Session};
use crate::harness::{Env, Notes, COMMUNE};
use crate::payloads::{attacker_key, sync_body, RawRecord};
use crate::BenchResult;
use fieldsync_core::protocol::{compress, decompress, SyncRequest, SyncResponse, MAX_BODY_BYTES};
use fieldsync_tests::https::connect_from;
use fieldsync_tests::phone::Phone;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::task::JoinSet;

/// Source addresses of the connection flood (127.0.0.10 and up) and connections each.
pub const FLOOD_ADDRESSES: u8 = 24;
pub const FLOOD_PER_ADDRESS: usize = 256;
/// Members of each seeded group: about the largest valid change (some 12 KiB).
const SEED_MEMBERS: usize = 240;
/// Change bytes seeded into the commune for the pull attacks: the review's 3.16 MB answer.
const SEED_BYTES: usize = 3_160_000;
const SEED_BATCH: usize = 40;
/// The page the pull attacks ask for: the most the server serves.
const BIG_PAGE: u64 = 4 * 1024 * 1024;
/// Syncs the pull attacker keeps in flight: its account's limit.
const PULL_LOOPS: usize = 2;
/// Requests of 1,000 creations each device of the write flood has ready: more than an
/// unlimited server takes in a 30 s window.
const WRITE_REQUESTS: usize = 80;
const WRITE_BATCH: usize = 1_000;

// ---------------------------------------------------------------------------------------
// connection-flood

#[derive(Default)]
struct FloodCounts {
    opened: AtomicU64,
    closed_by_server: AtomicU64,
    failed: AtomicU64,
}

/// One attacking connection at a time from `source`: opened, held until the server closes it,
/// and opened again at once, until the deadline.
async fn holder(ctx: Ctx, source: IpAddr, counts: Arc<FloodCounts>) {
    while ctx.running() {
        let connect =
            tokio::time::timeout(Duration::from_secs(5), connect_from(ctx.addr, Some(source)));
        match ctx.until_deadline(connect).await {
            None => return,
            Some(Ok(Ok(mut tcp))) => {
                counts.opened.fetch_add(1, Ordering::Relaxed);
                let mut buf = [0u8; 256];
                let read = async {
                    // Whatever comes (a TLS alert, nothing), wait for the close.
                    while let Ok(n) = tcp.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                    }
                };
                if ctx.until_deadline(read).await.is_none() {
                    return;
                }
                counts.closed_by_server.fetch_add(1, Ordering::Relaxed);
            }
            Some(_) => {
                counts.failed.fetch_add(1, Ordering::Relaxed);
                ctx.until_deadline(tokio::time::sleep(Duration::from_millis(50)))
                    .await;
            }
        }
    }
}

pub async fn run_connection_flood(ctx: &Ctx) {
    let counts = Arc::new(FloodCounts::default());
    let started = Instant::now();
    let mut holders = JoinSet::new();
    for a in 0..FLOOD_ADDRESSES {
        let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10 + a));
        for _ in 0..FLOOD_PER_ADDRESS {
            holders.spawn(holder(ctx.clone(), source, counts.clone()));
        }
    }
    while holders.join_next().await.is_some() {}
    let secs = started.elapsed().as_secs_f64().max(1.0);
    let opened = counts.opened.load(Ordering::Relaxed);
    ctx.notes.add(format!(
        "{FLOOD_ADDRESSES} addresses × {FLOOD_PER_ADDRESS} plain TCP connections, each reopened when closed: {opened} opened ({:.0}/s), {} closed by the server, {} connects failed",
        opened as f64 / secs,
        counts.closed_by_server.load(Ordering::Relaxed),
        counts.failed.load(Ordering::Relaxed)
    ));
}

// ---------------------------------------------------------------------------------------
// pull-amplification, foreign-cursor

/// Fills the commune with about [`SEED_BYTES`] of change bytes from another account's device
/// (the attacker's own changes would be left out of its pulls).
pub async fn seed_commune(env: &Env, notes: &Notes) -> BenchResult<()> {
    env.add_user("seeder", "collector", &[COMMUNE]).await?;
    let token = env.enrol("seeder").await?;
    let actor = fieldsync_core::record::actor_for_key(&attacker_key("seeder"));
    let started = Instant::now();
    let (mut sent, mut groups) = (0usize, 0usize);
    while sent < SEED_BYTES {
        let mut push = Vec::with_capacity(SEED_BATCH);
        for _ in 0..SEED_BATCH {
            let mut group =
                RawRecord::group(actor, COMMUNE, &format!("Tổ {groups}"), SEED_MEMBERS)?;
            let bytes = group.commit()?;
            sent += bytes.len();
            groups += 1;
            push.push(group.entry(bytes));
        }
        let response = Phone::exchange(&env.http, env.addr(), &token, sync_body(&[], push))
            .await
            .map_err(|e| format!("seeding: {e}"))?;
        if response.status != 200 {
            return Err(format!("seeding answered {}", response.status));
        }
    }
    notes.add(format!(
        "seeded {groups} groups, {} of changes, in {:.1} s",
        mib(sent),
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// What the pulling loops got.
#[derive(Default)]
struct Pulled {
    outcomes: Outcomes,
    change_bytes: u64,
    body_bytes: u64,
}

/// The same request, the biggest page from `cursor`, again and again until the deadline,
/// without waiting for any `Retry-After`.
async fn pull_loop(ctx: Ctx, cursor: Vec<u8>) -> Pulled {
    let body = compress(
        &SyncRequest {
            cursor,
            max_pull_bytes: BIG_PAGE,
            push: Vec::new(),
        }
        .encode(),
    );
    let mut session = Session::new(&ctx);
    let mut pulled = Pulled::default();
    while ctx.running() {
        match session.post_raw(body.clone()).await {
            Ok(response) => {
                pulled.outcomes.add(response.status.to_string());
                if response.status == 200 {
                    pulled.body_bytes += response.body.len() as u64;
                    let decoded = decompress(&response.body, MAX_BODY_BYTES)
                        .ok()
                        .and_then(|m| SyncResponse::decode(&m).ok());
                    if let Some(r) = decoded {
                        pulled.change_bytes +=
                            r.pull.iter().map(|c| c.bytes.len() as u64).sum::<u64>();
                    }
                }
            }
            Err(e) => {
                pulled.outcomes.add(e);
                ctx.until_deadline(tokio::time::sleep(Duration::from_millis(100)))
                    .await;
            }
        }
    }
    pulled
}

/// A cursor a database with another identity could have made: another 16-byte identity and no
/// positions.
pub fn foreign_cursor() -> Vec<u8> {
    let mut cursor = vec![0xee; 16];
    cursor.push(0);
    cursor
}

pub async fn run_pulls(ctx: &Ctx, cursor: Vec<u8>) {
    let started = Instant::now();
    let mut loops = JoinSet::new();
    for _ in 0..PULL_LOOPS {
        loops.spawn(pull_loop(ctx.clone(), cursor.clone()));
    }
    let mut all = Pulled::default();
    while let Some(Ok(p)) = loops.join_next().await {
        all.outcomes.merge(p.outcomes);
        all.change_bytes += p.change_bytes;
        all.body_bytes += p.body_bytes;
    }
    let minutes = started.elapsed().as_secs_f64() / 60.0;
    let per_minute = |bytes: u64| bytes as f64 / (1024.0 * 1024.0) / minutes.max(1e-6);
    ctx.notes.add(format!(
        "{} requests in {PULL_LOOPS} loops ({}): served {} of changes ({:.1} MiB/min), {} of gzip bodies ({:.1} MiB/min)",
        all.outcomes.total(),
        all.outcomes,
        mib(all.change_bytes as usize),
        per_minute(all.change_bytes),
        mib(all.body_bytes as usize),
        per_minute(all.body_bytes)
    ));
}

// ---------------------------------------------------------------------------------------
// write-flood

/// Request bodies of [`WRITE_BATCH`] new households each, for the device whose actor key is
/// `attacker_key(key_name)`.
pub fn write_bodies(key_name: &str, tag: &str) -> BenchResult<Vec<Vec<u8>>> {
    let actor = fieldsync_core::record::actor_for_key(&attacker_key(key_name));
    (0..WRITE_REQUESTS)
        .map(|batch| {
            let push = (0..WRITE_BATCH)
                .map(|i| {
                    let mut record =
                        RawRecord::household(actor, COMMUNE, &format!("Y {tag} {batch}-{i}"))?;
                    let change = record.commit()?;
                    Ok(record.entry(change))
                })
                .collect::<BenchResult<Vec<_>>>()?;
            Ok(sync_body(&[], push))
        })
        .collect()
}

/// One device pushing its bodies one after another, each new records only (what a request
/// leaves unanswered is not sent again); a refused one is sent again at once (an attacker does
/// not wait).
async fn write_loop(ctx: Ctx, bodies: Vec<Vec<u8>>) -> (Outcomes, usize) {
    let mut session = Session::new(&ctx);
    let mut outcomes = Outcomes::default();
    let mut acked = 0;
    let mut bodies = bodies.into_iter();
    let Some(mut body) = bodies.next() else {
        return (outcomes, 0);
    };
    while ctx.running() {
        match session.post(body.clone()).await {
            Ok(answer) => {
                outcomes.add(answer.status.to_string());
                if answer.status == 200 {
                    acked += answer.response.map_or(0, |r| r.acked.len());
                    match bodies.next() {
                        Some(next) => body = next,
                        None => {
                            outcomes.add("out of new records");
                            break;
                        }
                    }
                }
            }
            Err(e) => outcomes.add(e),
        }
    }
    (outcomes, acked)
}

pub async fn run_write_flood(ctx: &Ctx, devices: Vec<(String, Vec<Vec<u8>>)>) {
    let started = Instant::now();
    let n = devices.len();
    let mut loops = JoinSet::new();
    for (token, bodies) in devices {
        let ctx = Ctx {
            token,
            ..ctx.clone()
        };
        loops.spawn(write_loop(ctx, bodies));
    }
    let mut outcomes = Outcomes::default();
    let mut acked = 0;
    while let Some(Ok((o, a))) = loops.join_next().await {
        outcomes.merge(o);
        acked += a;
    }
    let minutes = started.elapsed().as_secs_f64() / 60.0;
    ctx.notes.add(format!(
        "{n} devices of one account, {WRITE_BATCH} creations a request: {} requests ({outcomes}); {acked} changes accepted, {:.0} a minute",
        outcomes.total(),
        acked as f64 / minutes.max(1e-6)
    ));
}
