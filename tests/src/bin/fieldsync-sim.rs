//! `fieldsync-sim`: N simulated collectors syncing against a fieldsync server on loopback
//! through a network profile. Prints syncs per second, p50/p99 sync latency, round trips per
//! sync, bytes on the wire per single-field edit, and the server's peak memory.
//!
//! `cargo run --release -p fieldsync-tests --bin fieldsync-sim -- --collectors 200 --edits 50 --profile 2g`
//!
//! With `--database postgres://…` the server stores in PostgreSQL; `--instances 2` starts two
//! server processes on that database and each collector's syncs alternate between them, as
//! behind a load balancer.

use clap::{Parser, ValueEnum};
use fieldsync_core::generator::minimal_household as household;
use fieldsync_core::generator::Rng;
use fieldsync_core::model::{Areas, RecordType};
use fieldsync_core::protocol::ClientOptions;
use fieldsync_tests::https::HttpsClient;
use fieldsync_tests::phone::{call_json, enrol, Phone, SyncReport};
use fieldsync_tests::proxy::{FaultProfile, FaultyProxy};
use fieldsync_tests::server::{ServerProcess, ADMIN};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Profile {
    /// Straight to the server, no proxy.
    Loopback,
    /// 64 kbit/s, 400 ms round trip, 10% of connections cut part-way through.
    #[value(name = "2g")]
    TwoG,
    /// 20 ms delay, 30% of connections cut part-way through.
    Flaky,
}

#[derive(Parser)]
#[command(
    about = "Load simulator: N collectors syncing to a fieldsync server over a network profile"
)]
struct Args {
    #[arg(long, default_value_t = 200)]
    collectors: usize,
    /// Edits per collector (the first few create households, the rest edit one field each).
    #[arg(long, default_value_t = 50)]
    edits: usize,
    /// A collector syncs after this many edits.
    #[arg(long, default_value_t = 10)]
    sync_every: usize,
    #[arg(long, value_enum, default_value_t = Profile::Loopback)]
    profile: Profile,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Store in this PostgreSQL database instead of the server's SQLite file.
    #[arg(long)]
    database: Option<String>,
    /// Server processes on the database (more than one needs `--database`).
    #[arg(long, default_value_t = 1)]
    instances: usize,
}

#[derive(Default)]
struct Totals {
    latencies: Vec<Duration>,
    round_trips: usize,
    cut: usize,
    syncs: usize,
}

async fn timed_sync(
    phone: &mut Phone,
    http: &HttpsClient,
    addr: SocketAddr,
    totals: &mut Totals,
) -> Result<SyncReport, String> {
    let started = Instant::now();
    let report = phone
        .sync(http, addr, 1000)
        .await
        .map_err(|e| e.to_string())?;
    totals.latencies.push(started.elapsed());
    totals.round_trips += report.round_trips;
    totals.cut += report.cut;
    totals.syncs += 1;
    Ok(report)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), String> {
    let args = Args::parse();
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let data = dir.path().join("server");
    std::fs::create_dir_all(&data).map_err(|e| e.to_string())?;
    if args.instances > 1 && args.database.is_none() {
        return Err("several instances need --database postgres://...".into());
    }
    let mut extra = vec!["--demo-households", "0"];
    if let Some(url) = &args.database {
        extra.extend(["--database", url.as_str()]);
    }
    // One after the other: the first creates the schema and the demo accounts; all use the data
    // directory's development certificate.
    let mut servers = Vec::new();
    for _ in 0..args.instances.max(1) {
        servers.push(
            ServerProcess::start_with(&data, "127.0.0.1:0", &extra).map_err(|e| e.to_string())?,
        );
    }
    let server = &servers[0];
    let http = HttpsClient::new(&server.cert_pem)
        .map_err(|e| e.to_string())?
        .with_timeout(Duration::from_secs(120));
    let admin = enrol(&http, server.addr, ADMIN.0, ADMIN.1)
        .await
        .map_err(|e| e.to_string())?;
    let profile = match args.profile {
        Profile::Loopback => None,
        Profile::TwoG => Some(FaultProfile::two_g(args.seed)),
        Profile::Flaky => Some(FaultProfile::flaky(args.seed)),
    };
    let mut proxies = Vec::new();
    if let Some(p) = profile {
        for s in &servers {
            proxies.push(
                FaultyProxy::start(s.addr, p)
                    .await
                    .map_err(|e| e.to_string())?,
            );
        }
    }
    let targets: Arc<Vec<SocketAddr>> = Arc::new(match proxies.is_empty() {
        true => servers.iter().map(|s| s.addr).collect(),
        false => proxies.iter().map(FaultyProxy::addr).collect(),
    });
    let addr = targets[0];
    let communes: Vec<String> = Areas::bundled()
        .communes_on("2024-01-01")
        .map(|a| a.code.clone())
        .collect();

    println!(
        "fieldsync-sim: {} collectors x {} edits, profile {:?}, {} on {}",
        args.collectors,
        args.edits,
        args.profile,
        match args.instances {
            1 => "one server".to_owned(),
            n => format!("{n} servers"),
        },
        if args.database.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
    );
    for i in 0..args.collectors {
        call_json(
            &http,
            server.addr,
            "POST",
            "/v1/admin/users",
            Some(&admin),
            &json!({"username": format!("sim{i}"), "password": "sim-password", "role": "collector",
                    "areas": [communes[i % communes.len()]]}),
        )
        .await
        .map_err(|e| e.to_string())?;
    }

    let http = Arc::new(http);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..args.collectors {
        // Each phone from an address of its own (127.0.x.y), as phones on their own networks:
        // the server limits what one address may do.
        let http = Arc::new((*http).clone().with_source(phone_address(i)));
        let commune = communes[i % communes.len()].clone();
        let path = dir.path().join(format!("phone{i}.sqlite"));
        let (edits, every, seed) = (args.edits, args.sync_every.max(1), args.seed);
        let targets = targets.clone();
        // Each sync to the next instance in turn.
        let target = move |n: usize| targets[(i + n) % targets.len()];
        tasks.push(tokio::spawn(async move {
            // Through the network profile: a cut enrolment is tried again, like a sync.
            let name = format!("sim{i}");
            let mut phone = Phone::enrol(
                &http,
                addr,
                &path,
                &name,
                "sim-password",
                ClientOptions::default(),
            )
            .await
            .map_err(|e| e.to_string())?;
            let mut totals = Totals::default();
            let mut rng = Rng::new(seed * 1000 + i as u64);
            timed_sync(&mut phone, &http, target(0), &mut totals).await?;
            let mut households = Vec::new();
            for e in 0..edits {
                if households.len() < 5.min(edits) {
                    let id = phone
                        .store
                        .create(
                            RecordType::Household,
                            &household(&commune, &format!("Y Hơ {i}-{e}")),
                        )
                        .map_err(|e| e.to_string())?;
                    households.push(id);
                } else {
                    let village = format!("Thôn {}", rng.below(20));
                    phone
                        .store
                        .set_field(*rng.pick(&households), "village", &village.into())
                        .map_err(|e| e.to_string())?;
                }
                if (e + 1) % every == 0 || e + 1 == edits {
                    timed_sync(&mut phone, &http, target(e / every + 1), &mut totals).await?;
                }
            }
            Ok::<(Phone, Totals, Vec<uuid::Uuid>, String), String>((
                phone, totals, households, commune,
            ))
        }));
    }
    let mut totals = Totals::default();
    let mut phones = Vec::new();
    let mut failures = 0;
    for task in tasks {
        match task.await {
            Ok(Ok((phone, t, households, commune))) => {
                totals.latencies.extend(t.latencies);
                totals.round_trips += t.round_trips;
                totals.cut += t.cut;
                totals.syncs += t.syncs;
                phones.push((phone, households, commune));
            }
            Ok(Err(e)) => {
                failures += 1;
                eprintln!("collector failed: {e}");
            }
            Err(e) => {
                failures += 1;
                eprintln!("collector panicked: {e}");
            }
        }
    }
    let elapsed = started.elapsed();
    // Quiesce (everyone pulls what the others pushed), then measure a single-field edit.
    let mut quiesce = Vec::new();
    for (mut phone, households, commune) in phones {
        let http = http.clone();
        quiesce.push(tokio::spawn(async move {
            let _ = phone.sync(&http, addr, 1000).await;
            (phone, households, commune)
        }));
    }
    let mut phones = Vec::new();
    for task in quiesce {
        phones.push(task.await.map_err(|e| e.to_string())?);
    }
    // One collector per commune, one at a time, so that each sync carries exactly one edit.
    let mut single = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (phone, households, commune) in phones.iter_mut() {
        if !seen.insert(commune.clone()) || households.is_empty() {
            continue;
        }
        phone
            .store
            .set_field(households[0], "village", &"Làng Le".into())
            .map_err(|e| e.to_string())?;
        let report = phone
            .sync(&http, addr, 1000)
            .await
            .map_err(|e| e.to_string())?;
        if report.cut == 0 && report.round_trips == 1 {
            single.push(report);
        }
    }
    let peaks: Vec<u64> = servers
        .iter()
        .filter_map(ServerProcess::peak_memory_kib)
        .collect();

    totals.latencies.sort();
    let pct = |p: f64| {
        let n = totals.latencies.len();
        if n == 0 {
            return 0.0;
        }
        totals.latencies[((n as f64 * p).ceil() as usize).clamp(1, n) - 1].as_secs_f64() * 1e3
    };
    let mean = |f: &dyn Fn(&SyncReport) -> u64| {
        single.iter().map(f).sum::<u64>() as f64 / single.len().max(1) as f64
    };
    println!("collectors ok/failed:     {}/{}", phones.len(), failures);
    println!(
        "syncs:                    {} in {:.1} s = {:.1} syncs/s",
        totals.syncs,
        elapsed.as_secs_f64(),
        totals.syncs as f64 / elapsed.as_secs_f64()
    );
    println!(
        "sync latency:             p50 {:.0} ms, p99 {:.0} ms",
        pct(0.50),
        pct(0.99)
    );
    println!(
        "round trips per sync:     {:.2} completed (+{:.2} cut and retried)",
        totals.round_trips as f64 / totals.syncs.max(1) as f64,
        totals.cut as f64 / totals.syncs.max(1) as f64
    );
    println!("single-field edit sync:   {:.0} bytes on the wire (TLS handshake + HTTP + body, both ways), {:.0} bytes of compressed sync bodies; {} samples",
        mean(&|r| r.wire_bytes_sent + r.wire_bytes_received), mean(&|r| r.body_bytes), single.len());
    for p in proxies.iter().map(FaultyProxy::stats) {
        println!(
            "network:                  {} connections, {} cut",
            p.connections, p.cut_connections
        );
    }
    match peaks.is_empty() {
        false => println!(
            "server peak memory:       {} MiB (VmHWM, per instance)",
            peaks
                .iter()
                .map(|kib| format!("{:.1}", *kib as f64 / 1024.0))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        true => println!("server peak memory:       unavailable"),
    }
    if failures > 0 {
        return Err(format!("{failures} collectors failed"));
    }
    Ok(())
}

/// The loopback address phone `i` connects from: 127.0.0.2 onwards, skipping the server's.
fn phone_address(i: usize) -> std::net::IpAddr {
    let n = i + 2;
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(
        127,
        (n >> 16) as u8,
        (n >> 8) as u8,
        n as u8,
    ))
}
