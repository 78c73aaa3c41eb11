//! In a real browser: the record list tells two households of one name apart (village,
//! collector's full name), sorts by its headings, filters by an old commune, and approves
//! selected records at once, naming those it skipped and why; the users page shows full names
//! and phone numbers. Screenshots in `target/screenshots/record_list-*.png`.
//!
//! Needs Debian's chromium and chromium-driver: `scripts/install-browser`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod browser_support;
mod common;

use browser_support::*;
use common::*;
use fieldsync_core::model::{RecordType, Value};
use fieldsync_tests::phone::call_json;
use fieldsync_tests::server::ADMIN;
use serde_json::json;
use uuid::Uuid;

const DISTRICT: &str = "62.610";
const MUONG_HOONG: &str = "62.610.02";
/// The page asks for its session (401) before login.
const EXPECTED: &[u16] = &[401];

async fn named_account(env: &Env, name: &str, role: &str, full_name: &str, phone: &str) {
    call_json(
        &env.http,
        env.addr(),
        "POST",
        "/v1/admin/users",
        Some(&env.admin),
        &json!({ "username": name, "password": PASSWORD, "role": role, "areas": [DISTRICT],
                 "full_name": full_name, "phone": phone }),
    )
    .await
    .unwrap();
}

fn household(commune: &str, head: &str, village: &str) -> Vec<(String, String)> {
    [
        ("commune", commune),
        ("head_name", head),
        ("village", village),
        ("ethnicity", "14"),
        ("poverty", "poor"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

fn create_household(
    phone: &mut fieldsync_tests::phone::Phone,
    commune: &str,
    head: &str,
    village: &str,
) -> Uuid {
    let pairs = household(commune, head, village);
    let pairs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    create(phone, RecordType::Household, &pairs)
}

/// Waits until the list's rows read `want`, top to bottom, by title.
async fn titles_in_order(b: &Browser, want: &[&str]) {
    let css = format!("{} .rtitle", sel("record-row"));
    b.until(&format!("the rows to read {want:?}"), || async {
        let mut titles = Vec::new();
        for link in b
            .client
            .find_all(fantoccini::Locator::Css(&css))
            .await
            .ok()?
        {
            titles.push(link.text().await.ok()?);
        }
        (titles == want).then_some(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sort_filter_by_an_old_commune_and_approve_in_bulk() {
    let env = Env::start().await;
    named_account(
        &env,
        "gs_dakglei",
        "supervisor",
        "Nguyễn Thị Hương",
        "0912345678",
    )
    .await;
    named_account(&env, "thu_hlen", "collector", "Y Thị Hlen", "+84987654321").await;
    env.user("thu_minh", &[NGOC_LINH], false).await;
    let mut a = env.phone("thu_hlen", Default::default()).await;
    let mut m = env.phone("thu_minh", Default::default()).await;
    let in_muong_hoong = create_household(&mut a, MUONG_HOONG, "Y Hnui", "Làng Le");
    let in_ngoc_linh = create_household(&mut a, NGOC_LINH, "Y Hnui", "Thôn 2");
    let blun = create_household(&mut a, NGOC_LINH, "A Blưn", "Thôn 1");
    let contested = create_household(&mut a, NGOC_LINH, "Y Bình", "Thôn 1");
    sync(&env, &mut a).await;
    sync(&env, &mut m).await;
    a.store
        .set_field(contested, "head_name", &Value::from("Y Bình"))
        .unwrap();
    a.store
        .set_field(contested, "village", &Value::from("Thôn 2"))
        .unwrap();
    m.store
        .set_field(contested, "village", &Value::from("Thôn 3"))
        .unwrap();
    sync(&env, &mut a).await;
    sync(&env, &mut m).await;
    let all = [in_muong_hoong, in_ngoc_linh, blun, contested];

    let b = Browser::start(&env, "record_list").await;
    b.open("").await;
    b.log_in("gs_dakglei", PASSWORD).await;
    b.wait_list(&all, "4 hồ sơ").await;
    // The top bar names the supervisor by full name.
    let who = b.text("user").await;
    assert!(who.contains("Nguyễn Thị Hương"), "{who}");
    // Two "Y Hnui": told apart by commune and village; the collector by full name.
    let rows = b.texts("record-row").await;
    let hnui: Vec<&String> = rows.iter().filter(|r| r.starts_with("Y Hnui")).collect();
    assert_eq!(hnui.len(), 2, "{rows:?}");
    assert!(
        hnui.iter()
            .any(|r| r.contains("Mường Hoong") && r.contains("Làng Le")),
        "{rows:?}"
    );
    assert!(
        hnui.iter()
            .any(|r| r.contains("Ngọc Linh") && r.contains("Thôn 2")),
        "{rows:?}"
    );
    assert!(rows.iter().all(|r| r.contains("Y Thị Hlen")), "{rows:?}");
    b.screenshot("01-list-village-collector").await;

    // Sorting by title, then the other way.
    b.click("sort-title").await;
    titles_in_order(&b, &["A Blưn", "Y Bình", "Y Hnui", "Y Hnui"]).await;
    let heading = b.wait("sort-title").await;
    let th = heading
        .find(fantoccini::Locator::XPath(".."))
        .await
        .unwrap();
    assert_eq!(
        th.attr("aria-sort").await.unwrap().as_deref(),
        Some("ascending")
    );
    b.click("sort-title").await;
    titles_in_order(&b, &["Y Hnui", "Y Hnui", "Y Bình", "A Blưn"]).await;
    b.screenshot("02-sorted-by-title-desc").await;
    // The order stays in the address, so it survives reloading the page.
    let url = b.client.current_url().await.unwrap();
    assert!(
        url.as_str().contains("sort=title") && url.as_str().contains("order=desc"),
        "{url}"
    );

    // "Mường Hoong → Ngọc Linh": only the household registered in Mường Hoong.
    b.select("filter-commune", MUONG_HOONG).await;
    b.wait_list(&[in_muong_hoong], "1 hồ sơ").await;
    b.screenshot("03-old-commune-muong-hoong").await;
    b.select("filter-commune", "51.102").await;
    b.wait_list(&all, "4 hồ sơ").await;
    b.click("clear-filters").await;
    b.wait_list(&all, "4 hồ sơ").await;

    // Bulk approval: every record on the page; the one in conflict is skipped and named.
    b.click("select-all").await;
    let count = b.text("bulk-count").await;
    assert_eq!(count, "Đã chọn 4 hồ sơ");
    b.click("bulk-approve").await;
    let question = b.text("bulk-question").await;
    assert_eq!(question, "Duyệt 4 hồ sơ đã chọn?");
    b.screenshot("04-bulk-confirm").await;
    b.click("bulk-confirm").await;
    let done = b.text("bulk-approved").await;
    assert_eq!(done, "Đã duyệt 3 hồ sơ.");
    let skipped = b.text("bulk-skipped").await;
    assert!(
        skipped.contains("Y Bình") && skipped.contains("còn xung đột cần xử lý"),
        "{skipped}"
    );
    let skipped_id = b
        .wait("bulk-skipped")
        .await
        .attr("data-id")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(skipped_id, contested.to_string());
    b.until("the list to show three approved", || async {
        let rows = b.texts("record-row").await;
        let approved = rows.iter().filter(|r| r.contains("Đã duyệt")).count();
        (approved == 3).then_some(())
    })
    .await;
    b.wait_gone("bulk-bar").await;
    b.screenshot("05-bulk-approved").await;
    b.assert_no_console_errors(EXPECTED).await;
    b.log_out().await;

    // The users page: full names with usernames beside them, and phone numbers.
    b.log_in(ADMIN.0, ADMIN.1).await;
    b.open("#/users").await;
    b.until("the supervisor's row", || async {
        let rows = b.texts("user-row").await;
        rows.into_iter().find(|r| {
            r.contains("Nguyễn Thị Hương") && r.contains("gs_dakglei") && r.contains("0912345678")
        })
    })
    .await;
    let rows = b.texts("user-row").await;
    assert!(
        rows.iter()
            .any(|r| r.contains("Y Thị Hlen") && r.contains("+84987654321")),
        "{rows:?}"
    );
    b.screenshot("06-users-full-names").await;
    b.assert_no_console_errors(EXPECTED).await;
    b.close().await;
}
