//! Plan progress ("Tiến độ") on the supervisors' page in a real browser: headless Chromium
//! against a real `serve --dev` server with Kon Tum's plan, fed by a collector's phone over
//! HTTPS. A province supervisor reads the progress table (only approved records, bars against
//! the plan's targets), goes back to the end of a plan year, previews all submitted records,
//! opens an indicator's communes and drills down to the records counted; victim figures are
//! absent without sensitive access. A district supervisor with sensitive access sees her
//! communes only, and no victim figure for her district (published only beside every other
//! district with five or more); a province supervisor with sensitive access sees the six
//! victims as "5–9" with the day they are counted at, the years as bands, and no group, commune
//! or list of cases. Screenshots: `target/screenshots/progress-<step>.png`
//! (`docs/images/progress-table.png`, `-communes.png` and `-victims.png` are 01, 03 and 06).
//!
//! Needs Debian's chromium and chromium-driver: `scripts/install-browser`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod browser_support;
mod common;

use browser_support::*;
use common::*;
use fantoccini::Locator;
use fieldsync_core::model::{Areas, RecordType};
use fieldsync_tests::phone::{call_json, enrol};
use serde_json::json;
use uuid::Uuid;

const PROVINCE: &str = "62";
const DISTRICT: &str = "62.610";
const XOP: &str = "62.610.03";

/// The console statuses the test expects: the page asks for its session (401) before login.
const EXPECTED: &[u16] = &[401];

/// A row of the progress table: its result and target cells' texts, and its bar's width.
struct Row {
    value: String,
    target: String,
    bar: Option<String>,
}

async fn row(b: &Browser, indicator: &str) -> Option<Row> {
    // Any error (the table redrawn under the reads) gives None, and the caller's poll retries.
    let css = format!("{}[data-indicator=\"{indicator}\"]", sel("progress-row"));
    let tr = b.client.find(Locator::Css(&css)).await.ok()?;
    let value = tr.find(Locator::Css(&sel("progress-value"))).await.ok()?;
    let target = tr.find(Locator::Css(&sel("progress-target"))).await.ok()?;
    let bar = match tr.find(Locator::Css("[role=progressbar]")).await {
        Ok(e) => e.attr("aria-valuenow").await.ok()?,
        Err(_) => None,
    };
    Some(Row {
        value: value.text().await.ok()?,
        target: target.text().await.ok()?,
        bar,
    })
}

/// Waits until an indicator's row shows `value` as its result.
async fn wait_value(b: &Browser, indicator: &str, value: &str) -> Row {
    b.until(&format!("{indicator} to read {value}"), || async {
        let r = row(b, indicator).await?;
        (r.value == value).then_some(r)
    })
    .await
}

async fn approve(env: &Env, token: &str, ids: &[Uuid]) {
    for id in ids {
        call_json(
            &env.http,
            env.addr(),
            "POST",
            &format!("/v1/records/{id}/edits"),
            Some(token),
            &json!({"edit": "review", "state": "approved"}),
        )
        .await
        .unwrap();
    }
}

fn team(commune: &str, name: &str, established: &str) -> Vec<(&'static str, String)> {
    vec![
        ("commune", commune.to_owned()),
        ("kind", "communication_team".to_owned()),
        ("name", name.to_owned()),
        ("established", established.to_owned()),
    ]
}

fn make(phone: &mut fieldsync_tests::phone::Phone, t: RecordType, f: &[(&str, String)]) -> Uuid {
    let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
    create(phone, t, &pairs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_table_years_preview_drill_down_and_victim_figures() {
    let env = Env::start().await;
    supervisor(&env, "gs_tiendo", &[PROVINCE], false).await;
    supervisor(&env, "gs_baove", &[DISTRICT], true).await;
    supervisor(&env, "gs_tinh", &[PROVINCE], true).await;
    let mut thu = collector_phone(&env, "thu_hang", &[DISTRICT], true).await;

    // Three communication teams approved (Ngọc Linh 2022 and 2024, Xốp 2023), one still
    // pending; six women of Ngọc Linh supported as victims (three by the end of 2023, five by
    // the end of 2024).
    let approved_teams = [
        make(
            &mut thu,
            RecordType::Group,
            &team(NGOC_LINH, "Nhóm truyền thông Làng Mới", "2022-05-10"),
        ),
        make(
            &mut thu,
            RecordType::Group,
            &team(NGOC_LINH, "Nhóm truyền thông Đăk Ka", "2024-03-01"),
        ),
        make(
            &mut thu,
            RecordType::Group,
            &team(XOP, "Nhóm truyền thông Xốp Dì", "2023-07-15"),
        ),
    ];
    let pending = make(
        &mut thu,
        RecordType::Group,
        &team(XOP, "Nhóm truyền thông Đăk Wất", "2024-08-20"),
    );
    let home = make(
        &mut thu,
        RecordType::Household,
        &[
            ("commune", NGOC_LINH.to_owned()),
            ("village", "Làng Mới".to_owned()),
            ("head_name", "A Blưp".to_owned()),
            ("ethnicity", "12".to_owned()),
            ("poverty", "poor".to_owned()),
        ],
    );
    let mut cases = Vec::new();
    for (name, opened) in [
        ("Y Hạnh", "2023-02-01"),
        ("Y Liên", "2024-06-05"),
        ("Y Mai", "2023-04-10"),
        ("Y Nga", "2023-09-09"),
        ("Y Oanh", "2024-01-20"),
        ("Y Phương", "2025-02-02"),
    ] {
        let woman = make(
            &mut thu,
            RecordType::Person,
            &[
                ("commune", NGOC_LINH.to_owned()),
                ("household_id", home.to_string()),
                ("full_name", name.to_owned()),
                ("sex", "female".to_owned()),
                ("birth", "1995".to_owned()),
                ("ethnicity", "12".to_owned()),
            ],
        );
        cases.push(woman);
        cases.push(make(
            &mut thu,
            RecordType::SupportCase,
            &[
                ("commune", NGOC_LINH.to_owned()),
                ("person_id", woman.to_string()),
                ("case_kind", "domestic_violence".to_owned()),
                ("opened", opened.to_owned()),
                ("status", "supported".to_owned()),
            ],
        ));
    }
    sync(&env, &mut thu).await;
    let protector = enrol(&env.http, env.addr(), "gs_baove", PASSWORD)
        .await
        .unwrap();
    approve(&env, &protector, &approved_teams).await;
    approve(&env, &protector, &cases).await;

    let b = Browser::start(&env, "progress").await;
    b.open("").await;
    b.log_in("gs_tiendo", PASSWORD).await;
    let nav = b.text("nav-progress").await;
    assert_eq!(nav, "Tiến độ");
    b.click("nav-progress").await;
    b.wait("progress-table").await;

    // Approved records only, against Kon Tum's province targets.
    let teams = wait_value(&b, "communication_groups", "3").await;
    assert_eq!(teams.target, "274");
    assert_eq!(teams.bar.as_deref(), Some("1"), "3 of 274 is about 1%");
    let dialogues = row(&b, "policy_dialogues").await.unwrap();
    assert_eq!(
        (dialogues.value.as_str(), dialogues.target.as_str()),
        ("0", "134")
    );
    assert!(
        row(&b, "victims_supported").await.is_none(),
        "victim figures need sensitive access"
    );
    assert!(!b.source().await.contains("Nạn nhân"));
    // Communes are those of today (the 2025 merger), records under old codes rolled up.
    let now = |code: &str| Areas::bundled().current(code).to_owned();
    let areas = b.options("progress-area").await;
    assert!(
        [NGOC_LINH, XOP, MO_RAI]
            .iter()
            .all(|c| areas.contains(&now(c))),
        "{areas:?}"
    );
    b.screenshot("01-table").await;

    // At the end of 2022 one team existed.
    b.until("the 2022 button", || async {
        for e in b
            .client
            .find_all(Locator::Css(&sel("progress-year")))
            .await
            .ok()?
        {
            if e.text().await.ok()?.ends_with("2022") {
                return Some(e);
            }
        }
        None
    })
    .await
    .click()
    .await
    .unwrap();
    wait_value(&b, "communication_groups", "1").await;
    let as_of = b.wait("progress-as-of").await.prop("value").await.unwrap();
    assert_eq!(as_of.as_deref(), Some("2022-12-31"));

    // Back to today, then a preview of everything submitted: the pending team counts too.
    b.open("#/progress").await;
    wait_value(&b, "communication_groups", "3").await;
    b.click("progress-mode-all").await;
    wait_value(&b, "communication_groups", "4").await;
    b.wait("progress-preview").await;
    b.screenshot("02-preview").await;
    b.click("progress-mode-approved").await;
    wait_value(&b, "communication_groups", "3").await;
    b.wait_gone("progress-preview").await;

    // The indicator's details: a row per commune of the district.
    let details = format!(
        "{}[data-indicator=\"communication_groups\"] {}",
        sel("progress-row"),
        sel("progress-details")
    );
    b.client
        .find(Locator::Css(&details))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let communes = b
        .until("the communes of the district", || async {
            let t = b
                .client
                .find(Locator::Css(&sel("progress-communes")))
                .await
                .ok()?;
            let text = t.text().await.ok()?;
            (text.contains("Ngọc Linh") && text.contains("Xốp")).then_some(text)
        })
        .await;
    let line = |name: &str| {
        communes
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} in {communes}"))
            .to_owned()
    };
    assert!(line("Ngọc Linh").contains(" 2"), "{communes}");
    assert!(line("Xốp").contains(" 1"), "{communes}");
    b.scroll_to("progress-communes").await;
    b.screenshot("03-communes").await;

    // Down to the records counted: the three approved teams, not the pending one.
    b.click("progress-records").await;
    b.until("three counted records", || async {
        let rows = b.texts("progress-record").await;
        (rows.len() == 3).then_some(())
    })
    .await;
    let listed = b.source().await;
    for name in ["Làng Mới", "Đăk Ka", "Xốp Dì"] {
        assert!(listed.contains(name), "{name} is counted");
    }
    assert!(
        !listed.contains("Đăk Wất"),
        "the pending team {pending} is not"
    );
    b.screenshot("04-records").await;
    b.click("progress-back").await;
    wait_value(&b, "communication_groups", "3").await;

    // In English too.
    b.click("lang-en").await;
    b.wait_text("nav-progress", "English", |t| t == "Progress")
        .await;
    b.until("the English indicator name", || async {
        let text = b
            .client
            .find(Locator::Css(&sel("progress-table")))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.contains("Community communication groups")
            .then_some(())
    })
    .await;
    b.screenshot("04b-english").await;
    b.click("lang-vi").await;
    b.assert_no_console_errors(EXPECTED).await;

    // A district supervisor with sensitive access: her district's communes only, the plan's
    // province targets not hers; her district's victims are not published, since other
    // districts have fewer than five.
    b.log_out().await;
    b.log_in("gs_baove", PASSWORD).await;
    b.open("#/progress").await;
    let teams = wait_value(&b, "communication_groups", "3").await;
    assert_eq!((teams.target.as_str(), teams.bar), ("—", None));
    let areas = b.options("progress-area").await;
    assert!(areas.contains(&now(XOP)), "{areas:?}");
    assert!(
        !areas.contains(&now(MO_RAI)),
        "only the supervisor's own areas: {areas:?}"
    );
    let victims = wait_value(&b, "victims_supported", "—").await;
    assert_eq!(victims.target, "—", "the plan sets no target for victims");
    let why = b
        .client
        .find(Locator::Css(&format!(
            "{}[data-indicator=\"victims_supported\"] {}",
            sel("progress-row"),
            sel("withheld")
        )))
        .await
        .unwrap()
        .attr("title")
        .await
        .unwrap()
        .unwrap();
    assert!(why.contains("dưới 5 người"), "{why}");
    assert!(
        victim_link(&b).await.is_none(),
        "a figure not published is not a link to its cases"
    );
    let hint = b.text("progress-victims-as-of").await;
    assert!(
        hint.contains("31/12/2025") && hint.contains("đã duyệt"),
        "{hint}"
    );
    center_victims(&b).await;
    b.screenshot("05-victims-district").await;

    // The province's supervisor with sensitive access: six victims as a band, the years as
    // bands at their ends, no group (all six are women of one age group and one ethnic group),
    // no commune, no list.
    b.log_out().await;
    b.log_in("gs_tinh", PASSWORD).await;
    b.open("#/progress").await;
    wait_value(&b, "victims_supported", "5–9").await;
    assert!(
        victim_link(&b).await.is_none(),
        "Ngọc Linh's own figure is not published"
    );
    // The preview switch does not apply to victims.
    b.click("progress-mode-all").await;
    b.wait("progress-preview").await;
    wait_value(&b, "victims_supported", "5–9").await;
    b.click("progress-mode-approved").await;
    b.wait_gone("progress-preview").await;
    let details = format!(
        "{}[data-indicator=\"victims_supported\"] {}",
        sel("progress-row"),
        sel("progress-details")
    );
    b.client
        .find(Locator::Css(&details))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let text = b
        .until("the victims' details", || async {
            let t = b
                .client
                .find(Locator::Css(&format!(
                    "{}[data-indicator=\"victims_supported\"] + tr",
                    sel("progress-row")
                )))
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            t.contains("Theo xã").then_some(t)
        })
        .await;
    for (year, band) in [
        ("2022", "<5"),
        ("2023", "<5"),
        ("2024", "5–9"),
        ("2025", "5–9"),
    ] {
        assert!(text.contains(&format!("{year}\n{band}")), "{year}: {text}");
    }
    // No man and no Kinh victim: each breakdown has a group under five and is not published.
    for group in ["Nữ", "16–30 tuổi", "Dân tộc thiểu số"] {
        assert!(text.contains(&format!("{group}\n—")), "{group}: {text}");
    }
    assert!(!text.contains("Xem hồ sơ được tính"), "{text}");
    let communes = b.text("progress-communes").await;
    let line = communes
        .lines()
        .find(|l| l.starts_with("Ngọc Linh"))
        .unwrap_or_else(|| panic!("{communes}"));
    assert!(line.contains("—"), "{line}");
    center_victims(&b).await;
    b.screenshot("06-victims-province").await;
    b.assert_no_console_errors(EXPECTED).await;
    b.close().await;
}

/// The victims row's link to its cases, if any.
async fn victim_link(b: &Browser) -> Option<fantoccini::elements::Element> {
    b.client
        .find(Locator::Css(&format!(
            "{}[data-indicator=\"victims_supported\"] a",
            sel("progress-row")
        )))
        .await
        .ok()
}

async fn center_victims(b: &Browser) {
    b.client
        .execute(
            "document.querySelector('[data-indicator=victims_supported]').scrollIntoView({block: 'start'})",
            vec![],
        )
        .await
        .unwrap();
}
