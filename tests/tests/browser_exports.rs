//! In a real browser: the record list's "Tải Excel" and "Tải CSV" carry the list's filters, and
//! what they download with the page's own session is the records the list shows: a CSV with a
//! byte-order mark, Vietnamese headers and names intact, only the chosen type; a workbook.
//! Screenshot in `target/screenshots/exports-*.png`.
//!
//! Needs Debian's chromium and chromium-driver: `scripts/install-browser`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod browser_support;
mod common;

use browser_support::*;
use common::*;
use fieldsync_core::model::RecordType;
use serde_json::Value as Json;

/// The page asks for its session (401) before login.
const EXPECTED: &[u16] = &[401];

/// Downloads `href` with the page's session cookie, as the link does: status, content type
/// and the body as text.
async fn download(b: &Browser, href: &str) -> (u64, String, String) {
    let answer: Json = b
        .client
        .execute_async(
            "const [href, done] = arguments;
             fetch(href, { credentials: 'same-origin' })
               .then(async r => done([r.status, r.headers.get('content-type') || '',
                 // ignoreBOM keeps the byte-order mark, which the test looks for.
                 new TextDecoder('utf-8', { ignoreBOM: true }).decode(await r.arrayBuffer())]))
               .catch(e => done([0, '', String(e)]));",
            vec![Json::from(href)],
        )
        .await
        .unwrap();
    (
        answer[0].as_u64().unwrap(),
        answer[1].as_str().unwrap().to_owned(),
        answer[2].as_str().unwrap().to_owned(),
    )
}

async fn href(b: &Browser, test: &str) -> Option<String> {
    b.wait(test).await.attr("href").await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_exports_what_it_shows() {
    let env = Env::start().await;
    supervisor(&env, "gs_xuat", &["62.610"], false).await;
    let mut thu = collector_phone(&env, "thu_xuat", &[NGOC_LINH], false).await;
    for head in ["Y Hnui", "A Blưn Đinh"] {
        create(
            &mut thu,
            RecordType::Household,
            &[
                ("commune", NGOC_LINH),
                ("head_name", head),
                ("village", "Làng Le"),
                ("ethnicity", "14"),
                ("poverty", "poor"),
            ],
        );
    }
    sync(&env, &mut thu).await;

    let b = Browser::start(&env, "exports").await;
    b.open("").await;
    b.log_in("gs_xuat", PASSWORD).await;
    b.wait("record-row").await;
    // Without a type the CSV is not offered (one type per CSV file); the workbook is.
    assert_eq!(href(&b, "export-records-csv").await, None);
    let xlsx = href(&b, "export-records-xlsx")
        .await
        .expect("the workbook link");
    assert!(xlsx.contains("/v1/records/export.xlsx?"), "{xlsx}");

    b.select("filter-type", "household").await;
    let csv = b
        .until("the CSV link with the type", || async {
            href(&b, "export-records-csv")
                .await
                .filter(|h| h.contains("type=household"))
        })
        .await;
    assert!(csv.contains("lang=vi"), "{csv}");
    b.screenshot("01-list-with-exports").await;

    let (status, kind, text) = download(&b, &csv).await;
    assert_eq!(status, 200, "{text}");
    assert!(kind.starts_with("text/csv"), "{kind}");
    assert!(text.starts_with('\u{feff}'), "a byte-order mark for Excel");
    let header = text.lines().next().unwrap();
    assert!(
        header.contains("Họ tên chủ hộ"),
        "Vietnamese headers: {header}"
    );
    assert!(text.contains("\"A Blưn Đinh\""), "names round-trip: {text}");
    assert!(text.contains("\"Y Hnui\""), "{text}");
    // The header and the two households the list shows.
    assert_eq!(text.lines().count(), 3, "{text}");

    let xlsx = href(&b, "export-records-xlsx").await.unwrap();
    assert!(xlsx.contains("type=household"), "{xlsx}");
    let (status, kind, _) = download(&b, &xlsx).await;
    assert_eq!(status, 200);
    assert_eq!(
        kind,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    b.assert_no_console_errors(EXPECTED).await;
    b.close().await;
}
