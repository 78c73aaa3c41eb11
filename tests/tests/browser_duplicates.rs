//! The duplicates queue of the supervisors' page in a real browser: headless Chromium against a
//! real `serve --dev` server, with two collectors' phones syncing over HTTPS. The same woman
//! registered on both phones is merged from the queue (taking over her phone number), a pair of
//! households is marked not duplicates, the phones follow the merge, an offline edit of the
//! duplicate is flagged on the kept record and taken over, and the merge is undone from the
//! page. Screenshots: `target/screenshots/duplicates-<step>.png`.
//!
//! Needs Debian's chromium and chromium-driver: `scripts/install-browser`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod browser_support;
mod common;

use browser_support::*;
use common::*;
use fantoccini::elements::Element;
use fantoccini::Locator;
use fieldsync_core::model::{RecordType, Value};
use fieldsync_core::store::ListFilter;
use fieldsync_tests::phone::{call_json, Phone};
use fieldsync_tests::server::ADMIN;
use serde_json::Value as Json;
use uuid::Uuid;

const DISTRICT: &str = "62.610";
const XOP: &str = "62.610.03";
const CCCD: &str = "062190000123";
const HOA: &str = "Nguyễn Thị Hoà";
const NIE: &str = "Y Hoà Niê";
const NIE_PHONE: &str = "0987654321";

/// The console statuses the test expects: the page asks for its session (401) before login.
const EXPECTED: &[u16] = &[401];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_from_the_queue_take_a_late_edit_and_undo() {
    let env = Env::start().await;
    supervisor(&env, "gs_trung", &[DISTRICT], false).await;
    let mut lan = collector_phone(&env, "thu_lan", &[NGOC_LINH], false).await;
    let mut mai = collector_phone(&env, "thu_mai", &[NGOC_LINH], false).await;
    // Lan registers a household and the woman; Mai, with the household on her phone too,
    // registers the same woman again under her Ê-đê name, with the same ID card and a phone.
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
    let hoa = create(
        &mut lan,
        RecordType::Person,
        &[
            ("commune", NGOC_LINH),
            ("household_id", &home.to_string()),
            ("full_name", HOA),
            ("sex", "female"),
            ("birth", "1990"),
            ("ethnicity", "12"),
            ("national_id", CCCD),
            ("disability", "none"),
        ],
    );
    // Two households with the same head in the same village: a pair, but two families.
    let luc_lan = create(&mut lan, RecordType::Household, &luc("poor", "Gần suối"));
    sync(&env, &mut lan).await;
    sync(&env, &mut mai).await;
    let nie = create(
        &mut mai,
        RecordType::Person,
        &[
            ("commune", NGOC_LINH),
            ("household_id", &home.to_string()),
            ("full_name", NIE),
            ("sex", "female"),
            ("birth", "1989-03-02"),
            ("ethnicity", "12"),
            ("national_id", CCCD),
            ("phone", NIE_PHONE),
        ],
    );
    // A household headed by the second registration: its reference leads to the kept record.
    let nie_home = create(
        &mut mai,
        RecordType::Household,
        &[
            ("commune", NGOC_LINH),
            ("village", "Làng Trên"),
            ("head_name", NIE),
            ("head_person_id", &nie.to_string()),
            ("ethnicity", "12"),
            ("poverty", "near_poor"),
        ],
    );
    let luc_mai = create(&mut mai, RecordType::Household, &luc("none", "Gần trường"));
    sync(&env, &mut mai).await;
    sync(&env, &mut lan).await;
    assert!(
        hoa < nie,
        "ids are time-ordered: the first registration is the pair's first"
    );

    // Another district's woman with the same ID card: pairs with both registrations that the
    // district's supervisor cannot see, so neither her menu count nor her queue counts them.
    let mut rai = collector_phone(&env, "thu_rai", &[MO_RAI], false).await;
    let rai_home = create(
        &mut rai,
        RecordType::Household,
        &[
            ("commune", MO_RAI),
            ("head_name", "A Rai"),
            ("ethnicity", "12"),
            ("poverty", "poor"),
        ],
    );
    create(
        &mut rai,
        RecordType::Person,
        &[
            ("commune", MO_RAI),
            ("household_id", &rai_home.to_string()),
            ("full_name", "Y Rai Hoà"),
            ("sex", "female"),
            ("birth", "1991"),
            ("ethnicity", "12"),
            ("national_id", CCCD),
        ],
    );
    sync(&env, &mut rai).await;

    let b = Browser::start(&env, "duplicates").await;
    b.open("").await;
    b.log_in("gs_trung", PASSWORD).await;
    // The menu entry counts the open pairs (of her areas).
    let nav = b.text("nav-duplicates").await;
    assert!(nav.starts_with("Trùng lặp"), "{nav}");
    b.wait_text("nav-count-duplicates", "two open pairs", |t| t == "2")
        .await;
    b.click("nav-duplicates").await;
    b.wait_text("dup-total", "two pairs", |t| t == "2 cặp")
        .await;

    // The woman's pair: its reason, her two records side by side, what differs highlighted.
    let card = pair(&b, hoa).await;
    assert_eq!(card.attr("data-a").await.unwrap(), Some(hoa.to_string()));
    assert_eq!(card.attr("data-b").await.unwrap(), Some(nie.to_string()));
    assert_eq!(texts_in(&card, &sel("reason")).await, ["Trùng số CCCD"]);
    let titles = texts_in(&card, &sel("pair-title")).await;
    assert_eq!(titles, [HOA, NIE]);
    let mut differ = attrs_in(&card, "tr.diff", "data-field").await;
    differ.sort();
    assert_eq!(differ, ["birth", "disability", "full_name", "phone"]);
    let same = row_text(&card, "national_id").await;
    assert!(
        same.contains("Số CCCD") && same.matches(CCCD).count() == 2,
        "{same}"
    );
    let phone_row = row_text(&card, "phone").await;
    assert!(
        phone_row.contains("Số điện thoại") && phone_row.contains("Chưa nhập"),
        "{phone_row}"
    );
    assert!(row_text(&card, "birth").await.contains("02/03/1989"));
    // The older record is kept unless chosen otherwise; it lacks the phone number, which is
    // offered (and ticked) for taking over; the disability only it has is not.
    assert_eq!(checked_keep(&card).await, hoa.to_string());
    let take = inner(&card, &sel("take-phone")).await.expect("take phone");
    assert!(take.is_selected().await.unwrap());
    assert!(inner(&card, &sel("take-disability")).await.is_none());
    let plan = text_in(&card, &sel("merge-plan")).await;
    assert!(plan.contains("Lấy sang: Số điện thoại."), "{plan}");
    b.screenshot("01-queue").await;
    // Keeping the other record offers the other way round.
    click_in(&card, &format!("{}[data-id=\"{nie}\"]", sel("keep"))).await;
    let card = pair(&b, hoa).await;
    assert!(inner(&card, &sel("take-phone")).await.is_none());
    assert!(inner(&card, &sel("take-disability")).await.is_some());
    let plan = text_in(&card, &sel("merge-plan")).await;
    assert!(plan.starts_with(&format!("Giữ “{NIE}”")), "{plan}");
    // Back with the keyboard: the arrow key moves the choice within the pair's radio group.
    let radio = inner(&card, &format!("{}[data-id=\"{nie}\"]", sel("keep"))).await;
    radio.unwrap().send_keys("\u{E012}").await.unwrap(); // ArrowLeft
    let card = pair(&b, hoa).await;
    assert_eq!(checked_keep(&card).await, hoa.to_string());
    assert!(inner(&card, &sel("take-phone")).await.is_some());
    assert!(inner(&card, &sel("take-disability")).await.is_none());

    // In English too.
    b.click("lang-en").await;
    b.wait_text("dup-total", "two pairs", |t| t == "2 pairs")
        .await;
    let card = pair(&b, hoa).await;
    assert_eq!(
        texts_in(&card, &sel("reason")).await,
        ["Same ID card number"]
    );
    assert!(text_in(&card, &sel("merge-plan"))
        .await
        .ends_with("Taking over: Phone."));
    b.screenshot("02-queue-en").await;
    b.click("lang-vi").await;
    b.wait_text("dup-total", "two pairs", |t| t == "2 cặp")
        .await;
    // The filters: another commune of the district has no pairs; households alone, one pair.
    b.select("dup-filter-commune", XOP).await;
    b.wait_text("dup-total", "none in Xốp", |t| t == "0 cặp")
        .await;
    b.select("dup-filter-commune", NGOC_LINH).await;
    b.wait_text("dup-total", "two in Ngọc Linh", |t| t == "2 cặp")
        .await;
    b.select("dup-filter-type", "household").await;
    b.wait_text("dup-total", "one of households", |t| t == "1 cặp")
        .await;
    pair(&b, luc_lan).await;
    assert_eq!(b.texts("pair").await.len(), 1);
    b.open("#/duplicates").await;
    b.wait_text("dup-total", "two pairs", |t| t == "2 cặp")
        .await;
    let card = pair(&b, hoa).await;

    // Merge, after the card asks.
    click_in(&card, &sel("merge")).await;
    let ask = text_in(&card, &sel("ask")).await;
    // Both named with what tells them apart: birth year, CCCD, village, commune.
    assert_eq!(
        ask,
        format!(
            "Gộp hồ sơ “{NIE}” (sinh năm 1989, CCCD {CCCD}, Làng Mới, xã Ngọc Linh) \
             vào hồ sơ “{HOA}” (sinh năm 1990, CCCD {CCCD}, Làng Mới, xã Ngọc Linh)?"
        )
    );
    // The whole card in the picture (docs/images/duplicates-queue.png).
    let arg = serde_json::to_value(&card).unwrap();
    b.client
        .execute("arguments[0].scrollIntoView({block: 'end'})", vec![arg])
        .await
        .unwrap();
    b.screenshot("03-merge-confirm").await;
    click_in(&card, &sel("merge-confirm")).await;
    b.wait_text("notice", "merged", |t| {
        t == format!("Đã gộp “{NIE}” vào “{HOA}”.")
    })
    .await;
    b.wait_text("dup-total", "one pair left", |t| t == "1 cặp")
        .await;
    b.wait_text("nav-count-duplicates", "one open pair", |t| t == "1")
        .await;
    let kept = record(&env, hoa).await;
    assert_eq!(kept["fields"]["phone"], NIE_PHONE, "taken over: {kept}");
    let gone = record(&env, nie).await;
    assert_eq!(
        (gone["status"].as_str(), gone["merged_into"].as_str()),
        (Some("merged"), Some(hoa.to_string().as_str()))
    );

    // The households: not duplicates.
    let card = pair(&b, luc_lan).await;
    assert_eq!(
        texts_in(&card, &sel("reason")).await,
        ["Trùng chủ hộ và thôn"]
    );
    let mut differ = attrs_in(&card, "tr.diff", "data-field").await;
    differ.sort();
    assert_eq!(differ, ["address", "poverty"]);
    click_in(&card, &sel("dismiss")).await;
    click_in(&card, &sel("dismiss-confirm")).await;
    b.wait_text("notice", "dismissed", |t| {
        t == "Đã đánh dấu hai hồ sơ là không trùng."
    })
    .await;
    b.wait_text("dup-empty", "an empty queue", |t| {
        t.starts_with("Không có cặp hồ sơ nào cần xem xét.")
    })
    .await;
    assert_eq!(b.text("dup-total").await, "0 cặp");
    b.wait_gone("nav-count-duplicates").await;
    b.screenshot("04-queue-empty").await;

    // The merged tab: who merged, and undo; the dismissed tab: who, and merge still possible.
    b.click("dup-state-merged").await;
    b.wait_text("dup-total", "one merged pair", |t| t == "1 cặp")
        .await;
    let card = pair(&b, hoa).await;
    assert_eq!(
        card.attr("data-state").await.unwrap().as_deref(),
        Some("merged")
    );
    let decided = text_in(&card, &sel("decided")).await;
    assert!(decided.starts_with("Gộp bởi gs_trung lúc "), "{decided}");
    let roles: Vec<String> = texts_in(&card, &sel("side-role"))
        .await
        .iter()
        .map(|r| r.to_lowercase())
        .collect();
    assert_eq!(roles, ["đã giữ lại", "đã gộp vào hồ sơ kia"]);
    assert!(inner(&card, &sel("unmerge")).await.is_some());
    assert!(inner(&card, &sel("merge")).await.is_none());
    b.screenshot("05-merged-tab").await;
    b.click("dup-state-dismissed").await;
    let card = pair(&b, luc_mai).await;
    assert_eq!(
        card.attr("data-state").await.unwrap().as_deref(),
        Some("dismissed")
    );
    assert!(text_in(&card, &sel("decided"))
        .await
        .starts_with("Đánh dấu không trùng bởi gs_trung"));
    assert!(inner(&card, &sel("dismiss")).await.is_none());
    // Dismissed by mistake: they can still be merged, and that merge undone from the queue.
    click_in(&card, &sel("merge")).await;
    click_in(&card, &sel("merge-confirm")).await;
    b.wait_text("dup-empty", "no dismissed pair", |t| {
        t.starts_with("Chưa có cặp nào được đánh dấu không trùng.")
    })
    .await;
    b.click("dup-state-merged").await;
    b.wait_text("dup-total", "two merged pairs", |t| t == "2 cặp")
        .await;
    let card = pair(&b, luc_mai).await;
    click_in(&card, &sel("unmerge")).await;
    b.wait_text("notice", "undone", |t| {
        t == "Đã hoàn tác gộp: hai hồ sơ lại đứng riêng."
    })
    .await;
    b.wait_text("dup-total", "one merged pair", |t| t == "1 cặp")
        .await;
    pair(&b, hoa).await;
    for id in [luc_lan, luc_mai] {
        assert_eq!(record(&env, id).await["status"], "active");
    }
    // Undone, the households match again: back in the queue, and in the menu's count.
    b.wait_text("nav-count-duplicates", "one open pair", |t| t == "1")
        .await;

    // The kept record lists the duplicate merged into it.
    b.open(&format!("#/records/{hoa}")).await;
    b.wait_text("field-phone", "the phone taken over", |t| t == NIE_PHONE)
        .await;
    let absorbed = b.text("absorbed").await;
    assert!(
        absorbed.contains("Hồ sơ trùng đã gộp vào đây") && absorbed.contains(NIE),
        "{absorbed}"
    );
    assert!(b.texts("edits-after-merge").await.is_empty());
    b.screenshot("06-kept-record").await;

    // Lan's phone: the kept record only, found by the duplicate's name too.
    sync(&env, &mut lan).await;
    assert_eq!(persons(&lan, None), [hoa]);
    assert_eq!(persons(&lan, Some("nie")), [hoa]);
    // Mai had not synced: she corrects the duplicate offline, then syncs.
    mai.store
        .set_field(nie, "disability", &Value::from("mild"))
        .unwrap();
    sync(&env, &mut mai).await;
    assert_eq!(persons(&mai, Some("nie")), [hoa]);

    // The kept record flags that edit; the supervisor takes the value over.
    b.client.refresh().await.unwrap();
    let late = b.text("late-disability").await;
    assert!(
        late.contains("Khuyết tật: Chưa nhập → Khuyết tật nhẹ") && late.contains("Lấy giá trị này"),
        "{late}"
    );
    assert_eq!(b.text("field-disability").await, "Không khuyết tật");
    b.screenshot("07-edit-after-merge").await;
    b.click("take-late-disability").await;
    b.wait_text("field-disability", "the value taken", |t| {
        t == "Khuyết tật nhẹ"
    })
    .await;
    b.wait_text("notice", "saved", |t| t == "Đã lưu.").await;
    assert_eq!(b.text("late-has").await, "Hồ sơ này đã có giá trị này");
    assert!(b.texts("take-late-disability").await.is_empty());
    assert_eq!(record(&env, hoa).await["fields"]["disability"], "mild");
    b.screenshot("08-late-edit-taken").await;

    // The household headed by the duplicate: its reference leads to the kept record.
    b.open(&format!("#/records/{nie_home}")).await;
    let head = b.wait("ref-merged").await;
    assert_eq!(head.attr("data-to").await.unwrap(), Some(hoa.to_string()));
    b.wait_text("ref-merged", "named", |t| {
        t == format!("{NIE} đã gộp vào {HOA}")
    })
    .await;
    let to = head
        .find(Locator::Css(&format!("a[href=\"#/records/{hoa}\"]")))
        .await;
    assert!(to.is_ok(), "links to the kept record");
    b.screenshot("09-reference-to-merged").await;

    // Undo from the duplicate's page: both records stand alone again.
    b.open(&format!("#/records/{nie}")).await;
    b.wait_text("record-merged", "merged into Hoà", |t| {
        t.starts_with("Hồ sơ này trùng và đã được gộp vào hồ sơ khác:") && t.contains(HOA)
    })
    .await;
    assert_eq!(b.text("unmerge").await, "Hoàn tác gộp");
    // It is reviewed as the kept record, not on its own.
    assert_eq!(
        b.text("review-merged").await,
        "Hồ sơ này đã được gộp: hãy xét duyệt hồ sơ được giữ lại."
    );
    assert!(b.texts("approve").await.is_empty());
    b.screenshot("10-merged-record").await;
    b.click("unmerge").await;
    b.wait_text("notice", "undone", |t| {
        t == "Đã hoàn tác gộp: hai hồ sơ lại đứng riêng."
    })
    .await;
    b.wait_gone("record-merged").await;
    b.wait("approve").await;
    for id in [hoa, nie] {
        let r = record(&env, id).await;
        assert_eq!(
            (r["status"].as_str(), &r["merged_into"]),
            (Some("active"), &Json::Null),
            "{r}"
        );
    }
    let kept = record(&env, hoa).await;
    assert!(
        kept["fields"].get("phone").is_none(),
        "the phone taken over leaves: {kept}"
    );
    assert_eq!(
        kept["fields"]["disability"], "mild",
        "an edit since the merge stays"
    );
    b.screenshot("11-unmerged").await;
    sync(&env, &mut lan).await;
    let mut both = persons(&lan, None);
    both.sort();
    assert_eq!(both, [hoa, nie]);
    // The pair is back in the queue, next to the households'.
    b.click("nav-duplicates").await;
    b.wait_text("dup-total", "both pairs back", |t| t == "2 cặp")
        .await;
    pair(&b, nie).await;
    pair(&b, luc_lan).await;
    b.wait_text("nav-count-duplicates", "two open pairs", |t| t == "2")
        .await;
    b.assert_no_console_errors(EXPECTED).await;

    // Administrators have no queue (the API is for supervisors).
    b.log_out().await;
    b.log_in(ADMIN.0, ADMIN.1).await;
    assert!(b.texts("nav-duplicates").await.is_empty());
    b.open("#/duplicates").await;
    let c = &b.client;
    b.until("the record list instead of the queue", || async {
        let url = c.current_url().await.ok()?;
        (url.fragment() == Some("/records")).then_some(())
    })
    .await;
    b.wait_text("total", "the record list", is_total).await;
    assert!(b.texts("pairs").await.is_empty());
    b.assert_no_console_errors(EXPECTED).await;
    b.close().await;
}

/// A household headed by Đinh Văn Lực in Làng Xốp.
fn luc<'a>(poverty: &'a str, address: &'a str) -> [(&'a str, &'a str); 6] {
    [
        ("commune", NGOC_LINH),
        ("village", "Làng Xốp"),
        ("head_name", "Đinh Văn Lực"),
        ("ethnicity", "14"),
        ("poverty", poverty),
        ("address", address),
    ]
}

/// A record as the server shows it (to the admin, who may read every record).
async fn record(env: &Env, id: Uuid) -> Json {
    call_json(
        &env.http,
        env.addr(),
        "GET",
        &format!("/v1/records/{id}"),
        Some(&env.admin),
        &Json::Null,
    )
    .await
    .unwrap()
}

/// The persons a phone lists (active only), or those a search finds.
fn persons(phone: &Phone, search: Option<&str>) -> Vec<Uuid> {
    phone
        .store
        .list(&ListFilter {
            record_type: Some(RecordType::Person),
            search: search.map(str::to_owned),
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect()
}

/// The queue's card of the pair holding `id`, once shown.
async fn pair(b: &Browser, id: Uuid) -> Element {
    let css = format!(
        "{s}[data-a=\"{id}\"], {s}[data-b=\"{id}\"]",
        s = sel("pair")
    );
    let c = &b.client;
    b.until(&format!("the pair of {id}"), || async {
        c.find(Locator::Css(&css)).await.ok()
    })
    .await
}

async fn inner(e: &Element, css: &str) -> Option<Element> {
    e.find(Locator::Css(css)).await.ok()
}

async fn click_in(e: &Element, css: &str) {
    inner(e, css)
        .await
        .unwrap_or_else(|| panic!("{css} in the card"))
        .click()
        .await
        .unwrap();
}

async fn text_in(e: &Element, css: &str) -> String {
    inner(e, css)
        .await
        .unwrap_or_else(|| panic!("{css} in the card"))
        .text()
        .await
        .unwrap()
}

async fn texts_in(e: &Element, css: &str) -> Vec<String> {
    let mut out = Vec::new();
    for x in e.find_all(Locator::Css(css)).await.unwrap() {
        out.push(x.text().await.unwrap());
    }
    out
}

async fn attrs_in(e: &Element, css: &str, attr: &str) -> Vec<String> {
    let mut out = Vec::new();
    for x in e.find_all(Locator::Css(css)).await.unwrap() {
        out.push(x.attr(attr).await.unwrap().unwrap_or_default());
    }
    out
}

/// The text of a field's row in a pair's table.
async fn row_text(card: &Element, field: &str) -> String {
    text_in(
        card,
        &format!("{}[data-field=\"{field}\"]", sel("pair-row")),
    )
    .await
}

/// The id of the record the card keeps (its ticked radio button).
async fn checked_keep(card: &Element) -> String {
    let radio = inner(card, &format!("{}:checked", sel("keep"))).await;
    radio.unwrap().attr("data-id").await.unwrap().unwrap()
}
