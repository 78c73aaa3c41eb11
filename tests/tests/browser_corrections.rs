//! Corrections and merges with choices on the supervisors' page, in a real browser (headless
//! Chromium against a real `serve --dev` server, a collector's phone syncing over HTTPS): a
//! supervisor corrects a woman's birth date on her record's page (an impossible date is refused
//! with the problem named in Vietnamese), the history reads the correction as old → new with
//! the phone's time, the phone pulls it; then she merges the woman's second registration into
//! the first, keeping the second's ethnic group, and the history says so in words.
//! Screenshots: `target/screenshots/corrections-<step>.png`.
//!
//! Needs Debian's chromium and chromium-driver: `scripts/install-browser`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod browser_support;
mod common;

use browser_support::*;
use common::*;
use fantoccini::elements::Element;
use fantoccini::Locator;
use fieldsync_core::model::RecordType;
use fieldsync_tests::phone::call_json;
use serde_json::Value as Json;
use uuid::Uuid;

/// The console statuses the test expects: the page asks for its session (401) before login,
/// and the impossible date is refused (400).
const EXPECTED: &[u16] = &[400, 401];

async fn record(env: &Env, token: &str, id: Uuid) -> Json {
    call_json(
        &env.http,
        env.addr(),
        "GET",
        &format!("/v1/records/{id}"),
        Some(token),
        &Json::Null,
    )
    .await
    .unwrap()
}

/// The history row of the first change of `kind`, once the page shows it.
async fn history_row(b: &Browser, kind: &str) -> String {
    let css = format!("{}[data-kind=\"{kind}\"]", sel("history-row"));
    let c = &b.client;
    b.until(&format!("a {kind} in the history"), || async {
        c.find(Locator::Css(&css)).await.ok()?.text().await.ok()
    })
    .await
}

async fn inner(e: &Element, css: &str) -> Element {
    e.find(Locator::Css(css)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn correct_a_field_on_the_page_and_merge_with_a_choice_per_field() {
    let env = Env::start().await;
    supervisor(&env, "gs_hoa", &["62.610"], false).await;
    let sup = fieldsync_tests::phone::enrol(&env.http, env.addr(), "gs_hoa", PASSWORD)
        .await
        .unwrap();
    let mut lan = collector_phone(&env, "thu_lan", &[NGOC_LINH], false).await;
    let home = create(
        &mut lan,
        RecordType::Household,
        &[
            ("commune", NGOC_LINH),
            ("village", "Làng Mới"),
            ("head_name", "A Blưp"),
            ("ethnicity", "12"),
            ("poverty", "poor"),
        ],
    );
    let woman = |name: &'static str, ethnicity: &'static str| {
        [
            ("commune", NGOC_LINH),
            ("full_name", name),
            ("sex", "female"),
            ("birth", "1990-02-01"),
            ("ethnicity", ethnicity),
            ("national_id", "062190000123"),
        ]
    };
    let home_id = home.to_string();
    let mut hoa_fields = woman("Nguyễn Thị Hoà", "14").to_vec();
    hoa_fields.push(("household_id", &home_id));
    let hoa = create(&mut lan, RecordType::Person, &hoa_fields);
    let mut nie_fields = woman("Y Hoà Niê", "30").to_vec();
    nie_fields.push(("household_id", &home_id));
    let nie = create(&mut lan, RecordType::Person, &nie_fields);
    sync(&env, &mut lan).await;

    let b = Browser::start(&env, "corrections").await;
    b.open("").await;
    b.log_in("gs_hoa", PASSWORD).await;
    b.open(&format!("#/records/{hoa}")).await;
    b.wait_text("field-birth", "the birth date", |t| t == "01/02/1990")
        .await;

    // An impossible date: refused, the problem named, nothing written.
    b.click("correct-birth").await;
    b.type_into("fix-input-birth", "31/02/1991").await;
    b.click("fix-save-birth").await;
    let said = b
        .wait_text("fix-error", "the problem", |t| t.contains("Sai định dạng"))
        .await;
    assert!(said.contains("Ngày/năm sinh"), "{said}");
    b.screenshot("01-invalid-value").await;
    assert_eq!(
        record(&env, &sup, hoa).await["fields"]["birth"],
        "1990-02-01"
    );

    // The right one.
    b.type_into("fix-input-birth", "1991-02-01").await;
    b.click("fix-save-birth").await;
    b.wait_text("field-birth", "the corrected date", |t| t == "01/02/1991")
        .await;
    let row = history_row(&b, "correction").await;
    assert!(
        row.contains("Sửa: Ngày/năm sinh 01/02/1990 → 01/02/1991"),
        "{row}"
    );
    assert!(row.contains("gs_hoa"), "{row}");
    assert!(
        !row.contains("theo giờ điện thoại"),
        "made on the page, at the server's time: {row}"
    );
    let created = history_row(&b, "create").await;
    assert!(created.contains("theo giờ điện thoại"), "{created}");
    assert!(created.contains("thu_lan"), "{created}");
    b.scroll_to("history").await;
    b.screenshot("02-history-old-new").await;

    // The phone pulls the correction.
    sync(&env, &mut lan).await;
    assert_eq!(
        lan.store.get(hoa).unwrap().fields["birth"],
        "1991-02-01".into()
    );

    // Merge Niê into Hoà from the queue, keeping Niê's ethnic group.
    b.open("#/duplicates").await;
    let card_css = format!("{}[data-a=\"{hoa}\"]", sel("pair"));
    let card = b
        .until("the pair", || async {
            b.client.find(Locator::Css(&card_css)).await.ok()
        })
        .await;
    let kept_radio = inner(
        &card,
        &format!("{}[data-id=\"{hoa}\"]", sel("choose-ethnicity")),
    )
    .await;
    assert!(
        kept_radio.is_selected().await.unwrap(),
        "the kept value by default"
    );
    inner(
        &card,
        &format!("{}[data-id=\"{nie}\"]", sel("choose-ethnicity")),
    )
    .await
    .click()
    .await
    .unwrap();
    let card = b
        .until("the pair", || async {
            b.client.find(Locator::Css(&card_css)).await.ok()
        })
        .await;
    let plan = inner(&card, &sel("merge-plan")).await.text().await.unwrap();
    assert!(
        plan.contains("Thay bằng giá trị của “Y Hoà Niê”: Dân tộc"),
        "{plan}"
    );
    b.scroll_to("merge-plan").await;
    b.screenshot("03-merge-choice").await;
    inner(&card, &sel("merge")).await.click().await.unwrap();
    b.click("merge-confirm").await;
    b.until("the merge", || async {
        (record(&env, &sup, nie).await["status"] == "merged").then_some(())
    })
    .await;
    let kept = record(&env, &sup, hoa).await;
    assert_eq!(kept["fields"]["ethnicity"], "30", "Niê's ethnic group");
    assert_eq!(kept["fields"]["full_name"], "Nguyễn Thị Hoà");

    b.open(&format!("#/records/{hoa}")).await;
    let row = history_row(&b, "absorb").await;
    assert!(
        row.contains("Gộp hồ sơ") && row.contains("vào hồ sơ này"),
        "{row}"
    );
    assert!(row.contains("Lấy từ hồ sơ trùng: Dân tộc"), "{row}");
    b.scroll_to("history").await;
    b.screenshot("04-history-merge").await;
    b.assert_no_console_errors(EXPECTED).await;
    b.close().await;
}
