//! Administration and the ranked duplicates queue in a real browser: headless Chromium against a
//! real `serve --dev` server with collectors' phones syncing over HTTPS. A district supervisor
//! sees her collectors (the silent one first, another district's not at all, registrations
//! counted), the queue ranked by score with a merge confirmation that tells the two apart, and a
//! record's open pairs on its page; the admin sees phones apart from browser sessions with what
//! each sent and when it last synced, filters the audit log (actions and details in words,
//! records by title), and gives an account its areas by name. Screenshots:
//! `target/screenshots/admin-<step>.png`.
//!
//! Needs Debian's chromium and chromium-driver: `scripts/install-browser`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod browser_support;
mod common;

use browser_support::*;
use common::*;
use fieldsync_core::model::RecordType;
use fieldsync_tests::phone::call_json;
use fieldsync_tests::server::ADMIN;
use serde_json::Value as Json;
use uuid::Uuid;

const DISTRICT: &str = "62.610";
const XOP: &str = "62.610.03";

/// The console statuses the test expects: the page asks for its session (401) before login.
const EXPECTED: &[u16] = &[401];

fn woman(
    household: Uuid,
    name: &str,
    birth: &str,
    ethnicity: &str,
    cccd: Option<&str>,
) -> Vec<(String, String)> {
    let mut f = vec![
        ("commune", NGOC_LINH),
        ("household_id", &household.to_string()),
        ("full_name", name),
        ("sex", "female"),
        ("birth", birth),
        ("ethnicity", ethnicity),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect::<Vec<_>>();
    if let Some(c) = cccd {
        f.push(("national_id".into(), c.into()));
    }
    f
}

fn pairs(f: &[(String, String)]) -> Vec<(&str, &str)> {
    f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collectors_ranked_duplicates_devices_audit_and_areas_by_name() {
    let env = Env::start().await;
    supervisor(&env, "gs_huyen", &[DISTRICT], false).await;
    let mut lan = collector_phone(&env, "thu_lan", &[NGOC_LINH], false).await;
    let _im = collector_phone(&env, "thu_im", &[XOP], false).await;
    let mut rai = collector_phone(&env, "thu_rai", &[MO_RAI], false).await;
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
    // Registered twice alike (score 100); twice with another ethnic group (20); twice with CCCD
    // numbers far apart (two women: no pair).
    let hnui = create(
        &mut lan,
        RecordType::Person,
        &pairs(&woman(
            home,
            "Y Hnui",
            "1990-01-02",
            "12",
            Some("062190000001"),
        )),
    );
    let hnui2 = create(
        &mut lan,
        RecordType::Person,
        &pairs(&woman(
            home,
            "Y Hnui",
            "1990-01-02",
            "12",
            Some("062190000001"),
        )),
    );
    create(
        &mut lan,
        RecordType::Person,
        &pairs(&woman(home, "H Ben", "1988", "12", None)),
    );
    create(
        &mut lan,
        RecordType::Person,
        &pairs(&woman(home, "H Ben", "1988", "01", None)),
    );
    create(
        &mut lan,
        RecordType::Person,
        &pairs(&woman(
            home,
            "Hà Thị Mai",
            "1985",
            "12",
            Some("062185000111"),
        )),
    );
    create(
        &mut lan,
        RecordType::Person,
        &pairs(&woman(
            home,
            "Hà Thị Mai",
            "1985",
            "12",
            Some("062185999222"),
        )),
    );
    sync(&env, &mut lan).await;
    create(
        &mut rai,
        RecordType::Household,
        &[
            ("commune", MO_RAI),
            ("head_name", "A Rai"),
            ("ethnicity", "12"),
            ("poverty", "poor"),
        ],
    );
    sync(&env, &mut rai).await;

    let b = Browser::start(&env, "admin").await;
    b.open("").await;
    b.log_in("gs_huyen", PASSWORD).await;

    // Collectors: the one who never synced first, another district's not at all, Lan's seven.
    b.open("#/collectors").await;
    b.wait("collector-row").await;
    let rows = b.texts("collector-row").await;
    let at = |name: &str| rows.iter().position(|r| r.starts_with(name));
    assert!(
        at("thu_rai").is_none(),
        "another district's collector: {rows:#?}"
    );
    let (im, lan_at) = (at("thu_im").unwrap(), at("thu_lan").unwrap());
    assert!(im < lan_at, "the silent one first: {rows:#?}");
    assert!(rows[im].contains("Chưa đồng bộ lần nào"), "{rows:#?}");
    assert!(
        rows[lan_at].ends_with(" 7 7"),
        "Lan's seven this week: {rows:#?}"
    );
    assert!(!b.text("collectors-silent").await.is_empty());
    b.screenshot("01-collectors").await;

    // The queue, most alike first, with the score; the confirmation tells the two apart.
    b.open("#/duplicates").await;
    b.wait("pair-score").await;
    let scores = b.texts("pair-score").await;
    assert_eq!(scores, vec!["Độ giống 100/100", "Độ giống 20/100"]);
    b.click("merge").await;
    let ask = b.text("ask").await;
    assert!(
        ask.contains("sinh năm 1990")
            && ask.contains("CCCD 062190000001")
            && ask.contains("Làng Mới")
            && ask.contains("xã Ngọc Linh"),
        "{ask}"
    );
    b.screenshot("02-merge-confirmation").await;
    b.click("merge-cancel").await;

    // A record in an open pair says so on its page, and leads to its pair.
    b.open(&format!("#/records/{hnui}")).await;
    b.wait("record-duplicates").await;
    let listed = b.texts("record-duplicate").await;
    assert_eq!(listed.len(), 1, "{listed:#?}");
    assert!(
        listed[0].contains("Y Hnui") && listed[0].contains("100/100"),
        "{listed:#?}"
    );
    b.screenshot("03-record-pairs").await;
    b.click("record-duplicates-all").await;
    b.wait("dup-one-record").await;
    b.wait_text("dup-total", "one pair", |t| t == "1 cặp").await;
    // Merged from the queue, for the audit log below.
    b.click("merge").await;
    b.click("merge-confirm").await;
    b.wait("dup-empty").await;
    b.log_out().await;

    // The admin: phones and sessions apart.
    b.log_in(ADMIN.0, ADMIN.1).await;
    b.open("#/devices").await;
    b.wait("device-row").await;
    let kinds = attrs(&b, "device-row", "data-kind").await;
    assert!(kinds.iter().all(|k| k == "phone"), "{kinds:?}");
    let rows = b.texts("device-row").await;
    let lan_row = rows
        .iter()
        .find(|r| r.starts_with("thu_lan"))
        .expect("Lan's phone");
    assert!(!lan_row.contains("Chưa bao giờ"), "Lan synced: {lan_row}");
    let im_row = rows
        .iter()
        .find(|r| r.starts_with("thu_im"))
        .expect("Im's phone");
    assert!(im_row.contains("Chưa bao giờ"), "{im_row}");
    let sent = b.texts("device-sent").await;
    assert!(
        sent.contains(&"7".to_owned()),
        "Lan's seven registrations: {sent:?}"
    );
    b.screenshot("04-phones").await;
    b.click("device-tab-browser").await;
    b.wait_text("devices-total", "sessions", |t| t.ends_with("thiết bị"))
        .await;
    let kinds = attrs(&b, "device-row", "data-kind").await;
    assert!(
        !kinds.is_empty() && kinds.iter().all(|k| k == "browser"),
        "{kinds:?}"
    );
    let states = attrs(&b, "device-state", "data-state").await;
    assert!(
        states.iter().all(|s| s == "active"),
        "ended sessions apart: {states:?}"
    );
    b.screenshot("05-sessions").await;
    b.select("devices-state", "revoked").await;
    b.until("the supervisor's ended session", || async {
        let rows = b.texts("device-row").await;
        rows.iter().any(|r| r.starts_with("gs_huyen")).then_some(())
    })
    .await;

    // The audit log, filtered: one account, then one action; records by their titles.
    b.open("#/audit").await;
    b.wait("audit-row").await;
    b.type_into("audit-user", "gs_huyen").await;
    b.click("audit-apply").await;
    b.until("only gs_huyen's entries", || async {
        let rows = b.texts("audit-row").await;
        (!rows.is_empty() && rows.iter().all(|r| r.contains("gs_huyen"))).then_some(rows)
    })
    .await;
    b.select("audit-action", "merge").await;
    b.click("audit-apply").await;
    let merge = b
        .until("the merge alone", || async {
            let rows = b.texts("audit-row").await;
            (rows.len() == 1 && rows[0].contains("Gộp hồ sơ")).then(|| rows[0].clone())
        })
        .await;
    assert!(merge.contains("Gộp vào Y Hnui"), "{merge}");
    assert_eq!(b.text("audit-record").await, "Y Hnui");
    assert!(
        !merge.contains(&hnui.to_string()) && !merge.contains(&hnui2.to_string()),
        "{merge}"
    );
    b.screenshot("06-audit-filtered").await;

    // Areas by name: "Xop" finds Xốp, an old commune's name finds the commune it became.
    b.open("#/users").await;
    b.type_into("new-areas", "Xop").await;
    b.wait_text("area-option", "Xốp", |t| t.starts_with("Xốp"))
        .await;
    b.click("area-option").await;
    b.type_into("new-areas", "Muong Hoong").await;
    let option = b
        .wait_text("area-option", "Ngọc Linh", |t| t.starts_with("Ngọc Linh"))
        .await;
    assert!(option.contains("Mường Hoong"), "{option}");
    b.screenshot("07-area-picker").await;
    b.click("area-option").await;
    let chips = attrs(&b, "area-chip", "data-code").await;
    assert_eq!(chips, vec!["51.103", "51.102"]);
    b.type_into("new-username", "thu_moi").await;
    b.type_into("new-password", "mật khẩu đủ dài").await;
    b.click("new-submit").await;
    b.wait_text("notice", "created", |t| t.contains("thu_moi"))
        .await;
    let users = call_json(
        &env.http,
        env.addr(),
        "GET",
        "/v1/admin/users",
        Some(&env.admin),
        &Json::Null,
    )
    .await
    .unwrap();
    let moi = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "thu_moi")
        .unwrap();
    assert_eq!(moi["areas"], serde_json::json!(["51.102", "51.103"]));
    b.assert_no_console_errors(EXPECTED).await;
    b.close().await;
}

async fn attrs(b: &Browser, test: &str, attr: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in b
        .client
        .find_all(fantoccini::Locator::Css(&sel(test)))
        .await
        .unwrap()
    {
        out.push(e.attr(attr).await.unwrap().unwrap_or_default());
    }
    out
}
