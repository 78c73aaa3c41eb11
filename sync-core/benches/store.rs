//! Store benchmark: prints changes applied per second, bytes per record on disk, and the time
//! to open a 20,000-record store and list one commune. Run: `cargo bench -p fieldsync-core`.
//! Set FIELDSYNC_BENCH_RECORDS to change the store size.

use fieldsync_core::generator::{generate, load_into, GenConfig};
use fieldsync_core::store::ListFilter;
use fieldsync_core::{RecordType, Result, Store};
use std::time::Instant;

/// Peak resident memory of this process in KiB (Linux), for the phone-memory figure.
fn peak_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Child mode: what a phone does with an existing store (open, list a commune, search, open a
/// few records), measured in a fresh process so the figure is the store's alone.
fn phone_session(path: &str, commune: &str) -> Result<()> {
    let baseline = peak_kib().unwrap_or(0);
    let store = Store::open(path)?;
    let rows = store.list(&ListFilter {
        commune: Some(commune.to_owned()),
        ..Default::default()
    })?;
    store.list(&ListFilter {
        search: Some("nguyen thi".into()),
        ..Default::default()
    })?;
    for row in rows.iter().take(50) {
        store.get(row.id)?;
    }
    println!(
        "phone memory:     peak {:.1} MiB resident opening the store, listing {} records of a commune, searching, opening 50 records (process baseline {:.1} MiB)",
        peak_kib().unwrap_or(0) as f64 / 1024.0,
        rows.len(),
        baseline as f64 / 1024.0
    );
    Ok(())
}

fn main() -> Result<()> {
    if let (Ok(path), Ok(commune)) = (
        std::env::var("FIELDSYNC_BENCH_OPEN"),
        std::env::var("FIELDSYNC_BENCH_COMMUNE"),
    ) {
        return phone_session(&path, &commune);
    }
    let target: usize = std::env::var("FIELDSYNC_BENCH_RECORDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let dir =
        tempfile::tempdir().map_err(|e| fieldsync_core::CoreError::BadChange(e.to_string()))?;

    // Roughly 4.8 records per household (members, groups, activities, cases).
    let records = generate(&GenConfig {
        households: target * 10 / 48,
        ..GenConfig::default()
    });
    let path = dir.path().join("bench.sqlite");
    let mut store = Store::open(&path)?;
    let started = Instant::now();
    load_into(&mut store, &records, 500)?;
    let load_secs = started.elapsed().as_secs_f64();
    let local_changes = store.unacked_count()?;
    println!(
        "local edits:      {} records, {} changes in {:.2} s = {:.0} changes/s",
        records.len(),
        local_changes,
        load_secs,
        local_changes as f64 / load_secs
    );

    // Apply the same changes as received ones into a fresh store (what a sync pull does).
    let ids: Vec<_> = records.iter().map(|r| r.id).collect();
    let mut received = Vec::new();
    for id in &ids {
        let mut doc = store.doc(*id)?;
        for mut c in doc.changes() {
            received.push((*id, c.bytes().into_owned()));
        }
    }
    let mut peer = Store::open(dir.path().join("peer.sqlite"))?;
    let started = Instant::now();
    for page in received.chunks(500) {
        peer.apply_remote(page)?;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "remote apply:     {} changes in {:.2} s = {:.0} changes/s (pages of 500)",
        received.len(),
        secs,
        received.len() as f64 / secs
    );

    store.checkpoint()?;
    let file_bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "size on disk:     {} bytes for {} records = {:.0} bytes/record",
        file_bytes,
        records.len(),
        file_bytes as f64 / records.len() as f64
    );
    drop(store);

    let commune = records[0].commune().to_owned();
    let started = Instant::now();
    let store = Store::open(&path)?;
    let opened = started.elapsed();
    let rows = store.list(&ListFilter {
        commune: Some(commune.clone()),
        record_type: Some(RecordType::Person),
        ..Default::default()
    })?;
    let listed = started.elapsed();
    let found = store.list(&ListFilter {
        search: Some("nguyen thi hoa".into()),
        ..Default::default()
    })?;
    let searched = started.elapsed() - listed;
    println!(
        "open + list:      open {:.1} ms, list {} persons of commune {} {:.1} ms (total {:.1} ms)",
        opened.as_secs_f64() * 1e3,
        rows.len(),
        commune,
        (listed - opened).as_secs_f64() * 1e3,
        listed.as_secs_f64() * 1e3
    );
    println!(
        "search:           'nguyen thi hoa' over {} records: {} hits in {:.1} ms",
        records.len(),
        found.len(),
        searched.as_secs_f64() * 1e3
    );
    drop(store);
    if let Ok(exe) = std::env::current_exe() {
        let _ = std::process::Command::new(exe)
            .env("FIELDSYNC_BENCH_OPEN", &path)
            .env("FIELDSYNC_BENCH_COMMUNE", &commune)
            .status();
    }
    Ok(())
}
