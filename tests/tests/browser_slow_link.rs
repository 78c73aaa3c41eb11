//! Figures, not a pass/fail test: the supervisors' page's weight on first load and the times of
//! its main actions over a slow link (256 kbit/s each way, 300 ms more per request: Chromium's
//! network emulation), in real Chromium against a real `serve --dev` server with a district's
//! worth of records. Ignored by default; run it with
//!
//!     cargo test -p fieldsync-tests --test browser_slow_link -- --ignored --nocapture
//!
//! Times depend on the machine; they are printed, never asserted.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a measurement fails loudly on any error

mod browser_support;
mod common;

use browser_support::*;
use common::*;
use fieldsync_core::model::RecordType;
use std::time::{Duration, Instant};

const DISTRICT: &str = "62.610";
const XOP: &str = "62.610.03";
/// The link of the review: 256 kbit/s, 300 ms latency.
const LINK: (u32, u32) = (256, 300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "prints figures; run with --ignored --nocapture"]
async fn page_weight_and_action_times_at_256_kbit_s() {
    let env = Env::start().await;
    supervisor(&env, "gs_cham", &[DISTRICT], false).await;
    let mut phone = collector_phone(&env, "thu_cham", &[DISTRICT], false).await;
    // Two pages of households and a few people: a district's morning.
    let mut first = None;
    for i in 0..80 {
        let commune = if i % 2 == 0 { NGOC_LINH } else { XOP };
        let id = create(
            &mut phone,
            RecordType::Household,
            &[
                ("commune", commune),
                ("village", "Làng Kon Tuông"),
                ("head_name", &format!("Y Hnui {i}")),
                ("ethnicity", "14"),
                ("poverty", "poor"),
            ],
        );
        first.get_or_insert(id);
    }
    let home = first.unwrap().to_string();
    for i in 0..20 {
        create(
            &mut phone,
            RecordType::Person,
            &[
                ("commune", NGOC_LINH),
                ("household_id", &home),
                ("full_name", &format!("Nguyễn Thị Hoà {i}")),
                ("sex", "female"),
                ("birth", "1990"),
                ("ethnicity", "14"),
            ],
        );
    }
    sync(&env, &mut phone).await;

    let b = Browser::start(&env, "slow_link").await;
    b.throttle(Some(LINK)).await;
    let mut rows: Vec<(String, Duration)> = Vec::new();

    // A first visit: nothing cached.
    let t = Instant::now();
    b.open("").await;
    b.wait("login-submit").await;
    rows.push(("first load to a usable login".into(), t.elapsed()));
    let weight = b
        .client
        .execute(
            "const n = performance.getEntriesByType('navigation')[0], \
                   r = performance.getEntriesByType('resource'); \
             return [n, ...r].map(e => [e.name.replace(location.origin, ''), e.transferSize, e.encodedBodySize, e.decodedBodySize])",
            vec![],
        )
        .await
        .unwrap();

    let t = Instant::now();
    b.type_into("login-username", "gs_cham").await;
    b.type_into("login-password", PASSWORD).await;
    let typed = t.elapsed();
    let t = Instant::now();
    b.click("login-submit").await;
    b.wait_text("total", "100 records", |t| t == "100 hồ sơ")
        .await;
    b.wait("record-row").await;
    rows.push((
        "log in to the record list (schema, areas, 50 rows)".into(),
        t.elapsed(),
    ));

    let t = Instant::now();
    b.select("filter-type", "person").await;
    b.wait_text("total", "20 persons", |t| t == "20 hồ sơ")
        .await;
    rows.push(("filter the list by type".into(), t.elapsed()));

    let t = Instant::now();
    b.type_into("filter-q", "nguyen thi hoa 13").await;
    b.click("search-submit").await;
    b.wait_text("total", "one person", |t| t == "1 hồ sơ").await;
    rows.push(("search without diacritics".into(), t.elapsed()));

    let t = Instant::now();
    b.click("record-row").await;
    b.wait("approve").await;
    b.wait("history-row").await;
    rows.push(("open a record (fields, history)".into(), t.elapsed()));

    let t = Instant::now();
    b.click("approve").await;
    b.wait_text("notice", "approved", |t| t == "Đã duyệt hồ sơ.")
        .await;
    rows.push(("approve it".into(), t.elapsed()));

    let t = Instant::now();
    b.click("back").await;
    b.wait_text("total", "the list again", is_total).await;
    b.wait("record-row").await;
    rows.push(("back to the list".into(), t.elapsed()));

    let t = Instant::now();
    b.click("nav-duplicates").await;
    b.wait("dup-states").await;
    b.until("the queue to load", || async {
        let text = b.source().await;
        (!text.contains("Đang tải…")).then_some(())
    })
    .await;
    rows.push(("open the duplicates queue".into(), t.elapsed()));

    let t = Instant::now();
    b.click("nav-progress").await;
    b.wait("progress-table").await;
    b.until("the indicators to load", || async {
        let text = b.source().await;
        (!text.contains("Đang tải…")).then_some(())
    })
    .await;
    rows.push(("open plan progress (15 indicators)".into(), t.elapsed()));

    // A later visit: the page's files revalidated by ETag (304), the session still open.
    let t = Instant::now();
    b.open("#/records").await;
    b.client.refresh().await.unwrap();
    b.wait_text("total", "the list", is_total).await;
    b.wait("record-row").await;
    rows.push((
        "reload the list (files cached, revalidated)".into(),
        t.elapsed(),
    ));
    b.throttle(None).await;
    b.close().await;

    println!(
        "\nFirst load of the page, as Chromium received it (bytes; gzip where the server compresses):"
    );
    println!(
        "{:<28} {:>10} {:>10} {:>10}",
        "file", "on wire", "body", "unzipped"
    );
    let (mut wire, mut body, mut plain) = (0, 0, 0);
    for e in weight.as_array().unwrap() {
        let n = |i: usize| e[i].as_f64().unwrap_or(0.0) as u64;
        println!(
            "{:<28} {:>10} {:>10} {:>10}",
            e[0].as_str().unwrap_or("?"),
            n(1),
            n(2),
            n(3)
        );
        wire += n(1);
        body += n(2);
        plain += n(3);
    }
    println!("{:<28} {wire:>10} {body:>10} {plain:>10}", "total");
    println!(
        "\nTimes at {} kbit/s and {} ms latency (typing the login took {:.1} s, not counted):",
        LINK.0,
        LINK.1,
        typed.as_secs_f64()
    );
    for (what, d) in rows {
        println!("{:<52} {:>6.2} s", what, d.as_secs_f64());
    }
}
