//! End to end in a real browser: the supervisors' page (`server/web/`) in headless Chromium
//! against a real `serve --dev` server, with simulated phones syncing over HTTPS. Each test
//! starts its own server and browser, asserts what the page shows at every step, and saves
//! screenshots to `target/screenshots/<test>-<step>.png`.
//!
//! Needs Debian's chromium and chromium-driver: `scripts/install-browser`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod browser_support;
mod common;

use browser_support::*;
use common::*;
use fieldsync_core::model::{RecordType, Value};
use fieldsync_core::record::ReviewState;
use fieldsync_tests::phone::call_json;
use uuid::Uuid;

const XOP: &str = "62.610.03";
const DISTRICT: &str = "62.610";

/// The console statuses every test expects: the page asks for its session (401) before login.
const EXPECTED: &[u16] = &[401];

/// Log in in Vietnamese (the default), switch the language both ways, then filter the list
/// by an old commune, by the old district, by type, and search without diacritics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_in_in_vietnamese_and_filter_the_list() {
    let env = Env::start().await;
    supervisor(&env, "gs_dakglei", &[DISTRICT], false).await;
    let mut a = collector_phone(&env, "thu_a", &[DISTRICT], false).await;
    let mut far = collector_phone(&env, "thu_morai", &[MO_RAI], false).await;
    let hoa = create(
        &mut a,
        RecordType::Household,
        &hh(NGOC_LINH, "Nguyễn Thị Hoà"),
    );
    let lam = create(&mut a, RecordType::Household, &hh(NGOC_LINH, "A Lâm"));
    let doan = create(&mut a, RecordType::Household, &hh(XOP, "Y Đoán"));
    let person = create(
        &mut a,
        RecordType::Person,
        &[
            ("commune", XOP),
            ("household_id", &doan.to_string()),
            ("full_name", "Y Hiền"),
            ("sex", "female"),
            ("birth", "1990"),
            ("ethnicity", "14"),
        ],
    );
    // The same name outside the supervisor's district: never listed.
    let elsewhere = create(
        &mut far,
        RecordType::Household,
        &hh(MO_RAI, "Nguyễn Thị Hoà"),
    );
    sync(&env, &mut a).await;
    sync(&env, &mut far).await;
    // The server has all five; the supervisor's district holds four of them.
    let everything = call_json(
        &env.http,
        env.addr(),
        "GET",
        "/v1/records",
        Some(&env.admin),
        &serde_json::Value::Null,
    )
    .await
    .unwrap();
    assert_eq!(everything["total"], 5, "{everything}");

    let b = Browser::start(&env, "login_filter").await;
    b.open("").await;
    // The login page, in Vietnamese before anyone chooses.
    b.wait("login-form").await;
    assert_eq!(b.text("login-submit").await, "Đăng nhập");
    let form = b.text("login-form").await;
    assert!(form.contains("Tên đăng nhập"), "{form}");
    assert!(form.contains("Mật khẩu"), "{form}");
    b.screenshot("01-login-vi").await;
    // The console check below reads what the page logs: a probe error shows up in it.
    b.client
        .execute("console.error('console-probe')", vec![])
        .await
        .unwrap();
    let console = b.console().await;
    assert!(
        console.iter().any(|m| m.contains("console-probe")),
        "{console:?}"
    );

    b.log_in("gs_dakglei", PASSWORD).await;
    let all = [hoa, lam, doan, person];
    b.wait_list(&all, "4 hồ sơ").await;
    let who = b.text("user").await;
    assert!(
        who.contains("gs_dakglei") && who.contains("Giám sát"),
        "{who}"
    );
    b.screenshot("02-list-vi").await;

    // English, and back.
    b.click("lang-en").await;
    b.wait_list(&all, "4 records").await;
    assert_eq!(b.text("logout").await, "Log out");
    b.screenshot("03-list-en").await;
    b.click("lang-vi").await;
    b.wait_list(&all, "4 hồ sơ").await;
    assert_eq!(b.text("logout").await, "Đăng xuất");

    // An old commune (before the 2025 merger), then the old district as a whole.
    b.select("filter-commune", NGOC_LINH).await;
    b.wait_list(&[hoa, lam], "2 hồ sơ").await;
    let chosen = b.wait("filter-commune").await.prop("value").await.unwrap();
    assert_eq!(chosen.as_deref(), Some(NGOC_LINH));
    let rows = b.texts("record-row").await;
    assert!(rows.iter().all(|r| r.contains("Ngọc Linh")), "{rows:?}");
    b.screenshot("04-filter-old-commune").await;
    b.select("filter-commune", DISTRICT).await;
    b.wait_list(&all, "4 hồ sơ").await;

    // By type, within the district.
    b.select("filter-type", "person").await;
    b.wait_list(&[person], "1 hồ sơ").await;
    let row = b.text("record-row").await;
    assert!(row.contains("Y Hiền") && row.contains("Nhân khẩu"), "{row}");
    b.screenshot("05-filter-type-person").await;

    // Search without diacritics, from a clean list.
    b.click("clear-filters").await;
    b.wait_list(&all, "4 hồ sơ").await;
    b.type_into("filter-q", "nguyen thi hoa").await;
    b.click("search-submit").await;
    b.wait_list(&[hoa], "1 hồ sơ").await;
    assert!(b.text("record-row").await.contains("Nguyễn Thị Hoà"));
    b.screenshot("06-search-no-accents").await;
    let source = b.source().await;
    assert!(!source.contains(&elsewhere.to_string()));

    b.assert_no_console_errors(EXPECTED).await;
    b.close().await;
}

const LAN: &str = "Y Bình Lan";
const MINH: &str = "Y Bính Minh";

/// The other of the two conflicting names.
fn other(name: &str) -> &'static str {
    if name == LAN {
        MINH
    } else {
        LAN
    }
}

/// Two collectors' phones write different head names offline; the record page shows both
/// values with their authors; the supervisor picks one; both phones converge on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_a_conflict_between_two_phones() {
    let env = Env::start().await;
    supervisor(&env, "gs_xung_dot", &[DISTRICT], false).await;
    let mut a = collector_phone(&env, "thu_lan", &[NGOC_LINH], false).await;
    let mut c = collector_phone(&env, "thu_minh", &[NGOC_LINH], false).await;
    let id = create(&mut a, RecordType::Household, &hh(NGOC_LINH, "Y Bình"));
    sync(&env, &mut a).await;
    sync(&env, &mut c).await;
    assert!(c.store.get(id).is_ok(), "the second phone has the record");
    // Offline on both phones, then both sync.
    let (lan, minh) = (LAN, MINH);
    a.store
        .set_field(id, "head_name", &Value::from(lan))
        .unwrap();
    c.store
        .set_field(id, "head_name", &Value::from(minh))
        .unwrap();
    sync(&env, &mut a).await;
    sync(&env, &mut c).await;

    let b = Browser::start(&env, "conflict").await;
    b.open("").await;
    b.log_in("gs_xung_dot", PASSWORD).await;
    b.wait_list(&[id], "1 hồ sơ").await;
    let flags = b.text("row-conflicts").await;
    assert_eq!(flags, "1 xung đột");
    b.screenshot("01-list-with-conflict").await;

    b.click("record-row").await;
    let conflict = b.text("conflict-head_name").await;
    for expected in [lan, minh, "thu_lan", "thu_minh"] {
        assert!(conflict.contains(expected), "{expected} in {conflict}");
    }
    // Each value with its own author.
    let candidates = b.texts("candidate-head_name").await;
    assert_eq!(candidates.len(), 2, "{candidates:?}");
    for (value, author) in [(lan, "thu_lan"), (minh, "thu_minh")] {
        assert!(
            candidates
                .iter()
                .any(|c| c.contains(value) && c.contains(author) && !c.contains(other(value))),
            "{value} by {author} in {candidates:?}"
        );
    }
    b.screenshot("02-record-conflict").await;

    // The page shows one of the two (the same pick as every device makes) and tags it; pick
    // the other, so that the value shown changes. (Picking the tagged one writes a change that
    // only deletes the other value, which the history misreports: see the report.)
    let index = candidates
        .iter()
        .position(|c| !c.contains("đang hiển thị"))
        .unwrap();
    let picked = if candidates[index].contains(lan) {
        lan
    } else {
        minh
    };
    let shown = other(picked);
    assert!(candidates[1 - index].contains("đang hiển thị"));
    b.wait_text("field-head_name", shown, |t| t == shown).await;
    let pick = b
        .client
        .find(fantoccini::Locator::Css(&format!(
            "{}[data-index=\"{index}\"]",
            sel("pick-head_name")
        )))
        .await
        .unwrap();
    pick.click().await.unwrap();
    b.wait_gone("conflict-head_name").await;
    b.wait_gone("conflicts").await;
    b.wait_text("field-head_name", picked, |t| t == picked)
        .await;
    b.wait_text("notice", "saved", |t| t == "Đã lưu.").await;
    // The history (reloaded after the save), newest first, names the supervisor's pick.
    b.wait_text("history-row", "the supervisor's pick first", |t| {
        t.contains("gs_xung_dot") && t.contains(picked)
    })
    .await;
    b.screenshot("03-conflict-resolved").await;

    // Both phones converge on the picked value, without a conflict.
    sync(&env, &mut a).await;
    sync(&env, &mut c).await;
    sync(&env, &mut a).await;
    for phone in [&a, &c] {
        let view = phone.store.get(id).unwrap();
        assert_eq!(view.fields["head_name"], Value::from(picked));
        assert!(view.conflicts.is_empty(), "{:?}", view.conflicts);
    }
    // And the page, reloaded, agrees.
    b.client.refresh().await.unwrap();
    b.wait_text("field-head_name", picked, |t| t == picked)
        .await;
    assert!(b.texts("conflict-head_name").await.is_empty());

    b.assert_no_console_errors(EXPECTED).await;
    b.close().await;
}

/// Returning needs a comment, and the comment reaches the phone; an approved record that a
/// phone then edits shows as changed since approval, with the changed field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn return_with_a_comment_and_approve_then_change() {
    let env = Env::start().await;
    supervisor(&env, "gs_duyet", &[DISTRICT], false).await;
    let mut a = collector_phone(&env, "thu_hoa", &[DISTRICT], false).await;
    let returned = create(&mut a, RecordType::Household, &hh(NGOC_LINH, "Y Thu"));
    let approved = create(&mut a, RecordType::Household, &hh(XOP, "A Khang"));
    sync(&env, &mut a).await;

    let b = Browser::start(&env, "review").await;
    b.open("").await;
    b.log_in("gs_duyet", PASSWORD).await;
    b.wait_list(&[returned, approved], "2 hồ sơ").await;

    // Return: without a comment the page refuses and says why.
    b.open(&format!("#/records/{returned}")).await;
    b.wait_text("record-title", "Y Thu", |t| t == "Y Thu").await;
    assert_state(&b, "pending").await;
    b.click("return").await;
    let why = b.text("review-error").await;
    assert_eq!(why, "Hãy ghi nhận xét để cán bộ biết cần sửa gì.");
    assert_state(&b, "pending").await;
    b.screenshot("01-return-needs-comment").await;
    let comment = "Thiếu thôn/làng: hãy hỏi lại hộ Y Thu.";
    b.type_into("review-comment", comment).await;
    b.click("return").await;
    b.wait_text("notice", "returned", |t| {
        t == "Đã trả lại hồ sơ cho cán bộ thu thập."
    })
    .await;
    assert_state(&b, "returned").await;
    assert_eq!(b.text("review-comment-text").await, comment);
    b.screenshot("02-returned").await;
    sync(&env, &mut a).await;
    let view = a.store.get(returned).unwrap();
    assert_eq!(view.review, ReviewState::Returned);
    assert_eq!(view.review_comment.as_deref(), Some(comment));

    // Approve; then the phone edits the record and syncs.
    b.open(&format!("#/records/{approved}")).await;
    b.wait_text("record-title", "A Khang", |t| t == "A Khang")
        .await;
    b.click("approve").await;
    b.wait_text("notice", "approved", |t| t == "Đã duyệt hồ sơ.")
        .await;
    assert_state(&b, "approved").await;
    b.screenshot("03-approved").await;
    sync(&env, &mut a).await;
    assert_eq!(a.store.get(approved).unwrap().review, ReviewState::Approved);
    a.store
        .set_field(approved, "head_name", &Value::from("A Khang Mới"))
        .unwrap();
    sync(&env, &mut a).await;
    b.client.refresh().await.unwrap();
    b.wait_text("field-head_name", "the new name", |t| t == "A Khang Mới")
        .await;
    assert_state(&b, "changed").await;
    assert_eq!(b.text("review-state").await, "Đã thay đổi sau khi duyệt");
    let changed = b.text("changed-fields").await;
    assert!(
        changed.contains("Họ tên chủ hộ") && changed.contains("A Khang → A Khang Mới"),
        "{changed}"
    );
    let field = b
        .client
        .find(fantoccini::Locator::Css(&format!(
            "{} li[data-field=\"head_name\"]",
            sel("changed-fields")
        )))
        .await;
    assert!(field.is_ok(), "head_name is listed as changed");
    b.screenshot("04-changed-since-approval").await;

    b.assert_no_console_errors(EXPECTED).await;
    b.close().await;
}

/// A supervisor without sensitive access never sees a support case, by list, filter, page
/// source or its address; one with access does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn support_cases_stay_hidden_without_sensitive_access() {
    let env = Env::start().await;
    supervisor(&env, "gs_thuong", &[DISTRICT], false).await;
    supervisor(&env, "gs_nhay_cam", &[DISTRICT], true).await;
    let mut a = collector_phone(&env, "thu_cam", &[DISTRICT], true).await;
    let household = create(&mut a, RecordType::Household, &hh(NGOC_LINH, "Hộ Kín"));
    let marker = format!("GHI-CHU-MAT-{}", Uuid::new_v4().simple());
    let case = create(
        &mut a,
        RecordType::SupportCase,
        &[
            ("commune", NGOC_LINH),
            ("person_id", &Uuid::new_v4().to_string()),
            ("case_kind", "trafficking"),
            ("opened", "2025-03-01"),
            ("case_notes", &marker),
        ],
    );
    sync(&env, &mut a).await;
    let case_id = case.to_string();

    let b = Browser::start(&env, "sensitive").await;
    b.open("").await;
    b.log_in("gs_thuong", PASSWORD).await;
    // The list, all types: only the household.
    b.wait_list(&[household], "1 hồ sơ").await;
    let source = b.source().await;
    assert!(!source.contains(&marker) && !source.contains(&case_id));
    assert!(!source.contains("Mua bán người"), "the case's kind shows");
    let types = b.options("filter-type").await;
    assert!(types.contains(&"household".to_owned()), "{types:?}");
    assert!(
        !types.contains(&"support_case".to_owned()),
        "the type filter offers support cases: {types:?}"
    );
    b.screenshot("01-list-without-access").await;
    // The type asked for by address anyway: nothing.
    b.open("#/records?type=support_case").await;
    b.wait_text("total", "no records", |t| t == "0 hồ sơ").await;
    assert!(b.texts("record-row").await.is_empty());
    b.wait("empty").await;
    let source = b.source().await;
    assert!(!source.contains(&marker) && !source.contains(&case_id));
    b.screenshot("02-type-by-address").await;

    // Its address answers exactly as an id that does not exist.
    b.open(&format!("#/records/{case}")).await;
    let for_case = b.text("error").await;
    assert!(
        for_case.contains("Không tìm thấy dữ liệu, hoặc bạn không có quyền xem."),
        "{for_case}"
    );
    let page_case = b.client.find(fantoccini::Locator::Css("main")).await;
    let page_case = page_case.unwrap().text().await.unwrap();
    let source = b.source().await;
    assert!(!source.contains(&marker));
    b.screenshot("03-case-address-not-found").await;
    // Back to the list first, so that the next error shown is the next page's own.
    b.open("#/records").await;
    b.wait_list(&[household], "1 hồ sơ").await;
    let unknown = Uuid::new_v4();
    b.open(&format!("#/records/{unknown}")).await;
    let for_unknown = b.text("error").await;
    let page_unknown = b.client.find(fantoccini::Locator::Css("main")).await;
    let page_unknown = page_unknown.unwrap().text().await.unwrap();
    assert_eq!(
        for_case, for_unknown,
        "a case's id answers as an unknown id"
    );
    assert_eq!(page_case, page_unknown);
    b.screenshot("04-unknown-address-not-found").await;
    // Both answered 404 on the wire too (Chromium logs each failed load).
    let console = b.console().await;
    for id in [case, unknown] {
        assert!(
            console
                .iter()
                .any(|m| m.contains(&format!("/v1/records/{id} ")) && m.contains("status of 404")),
            "{id} answered 404: {console:#?}"
        );
    }
    let errors = page_errors(&console, &[401, 404]);
    assert!(errors.is_empty(), "console errors: {errors:#?}");

    // A supervisor with access sees it (the control).
    b.open("#/records").await;
    b.log_out().await;
    b.log_in("gs_nhay_cam", PASSWORD).await;
    b.wait_list(&[household, case], "2 hồ sơ").await;
    assert!(b
        .options("filter-type")
        .await
        .contains(&"support_case".to_owned()));
    b.select("filter-type", "support_case").await;
    b.wait_list(&[case], "1 hồ sơ").await;
    assert!(b.text("record-row").await.contains("Mua bán người"));
    b.screenshot("05-list-with-access").await;
    b.click("record-row").await;
    b.wait_text("field-case_notes", "the marker", |t| t == marker)
        .await;
    b.wait("sensitive").await;
    assert_eq!(b.text("record-id").await, case_id);
    b.screenshot("06-case-with-access").await;

    // 404: the page looks up the case's person to name the link, and the test made none.
    b.assert_no_console_errors(&[401, 404]).await;
    b.close().await;
}

/// The audit page ("Nhật ký"): an admin without sensitive access sees no entry about a support
/// case (the look, the return, the sync that delivered it), no comment, and no tab of devices;
/// an admin with access sees those entries, marked, without the comment (it stays with the
/// case), and the devices that hold cases, each leading to its own entries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_page_shows_case_entries_and_devices_only_with_sensitive_access() {
    let env = Env::start().await;
    supervisor(&env, "gs_nhay_cam", &[DISTRICT], true).await;
    account(&env, "qt_nhay_cam", "admin", &["*"], true).await;
    let mut writer = collector_phone(&env, "thu_cam", &[DISTRICT], true).await;
    let mut reader = collector_phone(&env, "thu_cam_hai", &[DISTRICT], true).await;
    let marker = format!("GHI-CHU-MAT-{}", Uuid::new_v4().simple());
    let case = create(
        &mut writer,
        RecordType::SupportCase,
        &[
            ("commune", NGOC_LINH),
            ("person_id", &Uuid::new_v4().to_string()),
            ("case_kind", "domestic_violence"),
            ("opened", "2025-03-01"),
            ("case_notes", &marker),
        ],
    );
    sync(&env, &mut writer).await;
    // The second phone receives the case: a delivery, audited.
    sync(&env, &mut reader).await;
    let case_id = case.to_string();
    let comment = format!("TRA-LAI-{}: chị đã về nhà mẹ đẻ", Uuid::new_v4().simple());

    // The supervisor with access opens the case and returns it with a comment.
    let b = Browser::start(&env, "audit").await;
    b.open("").await;
    b.log_in("gs_nhay_cam", PASSWORD).await;
    b.open(&format!("#/records/{case}")).await;
    b.wait_text("field-case_notes", "the marker", |t| t == marker)
        .await;
    b.type_into("review-comment", &comment).await;
    b.click("return").await;
    b.wait_text("notice", "returned", |t| {
        t == "Đã trả lại hồ sơ cho cán bộ thu thập."
    })
    .await;
    b.log_out().await;

    // The admin of every area without sensitive access: the supervisor's logins, nothing of
    // the case.
    b.log_in(
        fieldsync_tests::server::ADMIN.0,
        fieldsync_tests::server::ADMIN.1,
    )
    .await;
    b.open("#/audit").await;
    b.wait("audit-row").await;
    let rows = b.texts("audit-row").await;
    assert!(
        rows.iter()
            .any(|r| r.contains("gs_nhay_cam") && r.contains("Đăng nhập")),
        "{rows:#?}"
    );
    for row in &rows {
        for hidden in [
            "Xem vụ việc nhạy cảm",
            "Thiết bị nhận vụ việc",
            "Xét duyệt hồ sơ",
            "Nhạy cảm",
        ] {
            assert!(!row.contains(hidden), "{hidden}: {row}");
        }
    }
    let source = b.source().await;
    for secret in [&case_id, &comment, &marker] {
        assert!(!source.contains(secret.as_str()), "the page shows {secret}");
    }
    let tabs = b
        .client
        .find(fantoccini::Locator::Css(&sel("audit-tabs")))
        .await;
    assert!(tabs.is_err(), "no devices tab without sensitive access");
    b.screenshot("01-without-sensitive-access").await;
    // Its address asked for anyway: the log, not the devices.
    b.open("#/audit?view=devices").await;
    b.wait("audit-row").await;
    assert!(b
        .client
        .find(fantoccini::Locator::Css(&sel("sensitive-device")))
        .await
        .is_err());
    b.log_out().await;

    // The admin with sensitive access: the look, the return (no comment), the delivery.
    b.log_in("qt_nhay_cam", PASSWORD).await;
    b.open("#/audit").await;
    b.wait("audit-row").await;
    let rows = b.texts("audit-row").await;
    let find = |what: &str| rows.iter().find(|r| r.contains(what)).cloned();
    let look = find("Xem vụ việc nhạy cảm").expect("the look is listed");
    // The case by its title (its kind), linked, not by its id.
    assert!(
        !look.contains(&case_id) && look.contains("Nhạy cảm"),
        "{look}"
    );
    assert!(
        b.source().await.contains(&format!("#/records/{case_id}")),
        "the look links to the case"
    );
    let returned = find("Xét duyệt hồ sơ").expect("the return is listed");
    assert!(returned.contains("kèm nhận xét"), "{returned}");
    let delivery = find("Thiết bị nhận vụ việc nhạy cảm").expect("the delivery is listed");
    assert!(
        delivery.contains("thu_cam_hai") && delivery.contains("1 vụ việc"),
        "{delivery}"
    );
    assert!(
        !b.source().await.contains(&comment),
        "the comment stays with the case"
    );
    let main = b.client.find(fantoccini::Locator::Css("main")).await;
    let main = main.unwrap().text().await.unwrap();
    assert!(!main.lines().any(|l| l.trim() == "null"), "{main}");
    b.screenshot("02-with-sensitive-access").await;

    // The devices holding cases: the phone that wrote it and the one it was delivered to.
    b.click("audit-tab-devices").await;
    b.wait("sensitive-device").await;
    let devices = b.texts("sensitive-device").await;
    assert_eq!(devices.len(), 2, "{devices:#?}");
    assert!(
        devices[0].starts_with("thu_cam_hai"),
        "the latest delivery first: {devices:#?}"
    );
    assert!(
        devices[1].starts_with("thu_cam") && devices[1].ends_with('1'),
        "{devices:#?}"
    );
    b.screenshot("03-devices-holding-cases").await;
    // One device's entries.
    b.click("device-entries").await;
    b.wait("audit-device").await;
    b.wait("audit-row").await;
    let rows = b.texts("audit-row").await;
    assert!(
        !rows.is_empty() && rows.iter().all(|r| r.contains("thu_cam_hai")),
        "{rows:#?}"
    );
    b.screenshot("04-one-device").await;
    // In English.
    b.open("#/audit?view=devices").await;
    b.click("lang-en").await;
    b.wait_text("audit-tab-devices", "the English tab", |t| {
        t == "Devices holding support cases"
    })
    .await;
    b.wait("sensitive-device").await;
    b.screenshot("05-devices-en").await;

    // 404: the page looks up the case's person to name the link, and the test made none.
    b.assert_no_console_errors(&[401, 404]).await;
    b.close().await;
}

/// A minimal household's fields as pairs.
fn hh<'a>(commune: &'a str, head: &'a str) -> [(&'a str, &'a str); 4] {
    [
        ("commune", commune),
        ("head_name", head),
        ("ethnicity", "14"),
        ("poverty", "poor"),
    ]
}

/// Asserts the review badge's state (waits for it).
async fn assert_state(b: &Browser, state: &str) {
    let c = &b.client;
    let css = sel("review-state");
    b.until(&format!("review state {state}"), || async {
        let e = c.find(fantoccini::Locator::Css(&css)).await.ok()?;
        (e.attr("data-state").await.ok()?.as_deref() == Some(state)).then_some(())
    })
    .await;
}
