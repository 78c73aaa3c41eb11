//! Plan progress at scale: 20,000 people and 50,000 activities (with groups, duplicates,
//! unapproved and deleted records and support cases) in a server database, then the time to
//! read the indicator facts and compute the whole report, to answer `GET /v1/indicators`, and
//! to write the XLSX and CSV exports. Prints figures; the target for the report is 200 ms.
//!
//! `cargo bench -p fieldsync-server --bench indicators`

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark fails loudly on any error

#[path = "../tests/indicator_data/mod.rs"]
mod indicator_data;

use fieldsync_server::indicators::{export, report, Day, Plan, Request};
use fieldsync_server::scope::Scope;
use fieldsync_server::storage::prelude::*;
use fieldsync_server::storage::sqlite::SqliteStorage;
use indicator_data::{plant, write, Size};
use std::time::{Duration, Instant};

const RUNS: usize = 15;

fn median(mut times: Vec<Duration>) -> (Duration, Duration) {
    times.sort();
    (times[times.len() / 2], times[0])
}

fn time<T>(mut f: impl FnMut() -> T) -> (Duration, Duration, T) {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..RUNS {
        let started = Instant::now();
        last = Some(f());
        times.push(started.elapsed());
    }
    let (median, best) = median(times);
    (median, best, last.unwrap())
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let storage = SqliteStorage::open(dir.path().join("server.sqlite")).unwrap();
    let size = Size {
        activities: 50_000,
        ..Size::test()
    };
    let started = Instant::now();
    let planted = plant(8, &size);
    write(&storage, &planted, 8, 2_000);
    let facts = storage.indicator_facts().unwrap();
    println!(
        "data: {} records ({} people incl. {} duplicates, {} groups, {} activities, {} cases), written in {:.1} s",
        facts.len(),
        planted.persons.len(),
        planted.persons.iter().filter(|p| p.duplicate_of.is_some()).count(),
        planted.groups.len(),
        planted.activities.len(),
        planted.cases.len(),
        started.elapsed().as_secs_f64()
    );
    let plan = Plan::bundled();
    let scope = Scope::everything();
    let request = Request {
        as_of: Day::parse("2025-12-31").unwrap(),
        all_submitted: false,
    };

    let (load, load_best, facts) = time(|| storage.indicator_facts().unwrap());
    let (compute, compute_best, built) = time(|| report::build(&facts, plan, &scope, &request));
    let (whole, whole_best, _) = time(|| {
        let facts = storage.indicator_facts().unwrap();
        report::build(&facts, plan, &scope, &request)
    });
    let (json, json_best, body) = time(|| serde_json::to_vec(&built).unwrap());
    let (xlsx, xlsx_best, file) = time(|| export::xlsx(&built).unwrap());
    let (csv, csv_best, text) = time(|| export::csv(&built));
    println!("median (best) of {RUNS} runs:");
    println!(
        "  read the indicator facts    {} ({})",
        ms(load),
        ms(load_best)
    );
    println!(
        "  compute the whole report    {} ({})",
        ms(compute),
        ms(compute_best)
    );
    println!(
        "  report from the database    {} ({})  <- target under 200 ms",
        ms(whole),
        ms(whole_best)
    );
    println!(
        "  report as JSON              {} ({}), {} KiB",
        ms(json),
        ms(json_best),
        body.len() / 1024
    );
    println!(
        "  XLSX export                 {} ({}), {} KiB",
        ms(xlsx),
        ms(xlsx_best),
        file.len() / 1024
    );
    println!(
        "  CSV export                  {} ({}), {} KiB",
        ms(csv),
        ms(csv_best),
        text.len() / 1024
    );
}
