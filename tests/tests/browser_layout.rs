//! The supervisors' page at the sizes it is used at: a phone (390×844), a tablet (768×1024) and
//! an office PC (1366×768), in real Chromium against a real `serve --dev` server. Every view —
//! the login, each entry of the menu as the page itself lists it (so a view added later is
//! covered too), the tabs inside those views, a record, the list's filter drawer — at each size:
//! the page never scrolls sideways, every control shown lies within the screen or inside a box
//! that scrolls on its own, the record list fits without scrolling, and on a narrow screen a
//! record shows its fields before the review box. Screenshots:
//! `target/screenshots/<view>-<width>x<height>.png`.
//!
//! Needs Debian's chromium and chromium-driver: `scripts/install-browser`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod browser_support;
mod common;

use browser_support::*;
use common::*;
use fantoccini::Locator;
use fieldsync_core::model::{RecordType, Value};
use serde_json::Value as Json;
use std::collections::BTreeSet;
use uuid::Uuid;

const DISTRICT: &str = "62.610";
const XOP: &str = "62.610.03";

/// Phone, tablet, office PC.
const SIZES: [(u32, u32); 3] = [(390, 844), (768, 1024), (1366, 768)];

/// The console statuses the test expects: the page asks for its session (401) before login.
const EXPECTED: &[u16] = &[401];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_view_fits_a_phone_a_tablet_and_a_pc() {
    let env = Env::start().await;
    supervisor(&env, "gs_dien_thoai", &[DISTRICT], true).await;
    account(&env, "qt_may_tinh_bang", "admin", &["*"], true).await;
    let (conflicted, _pair) = records(&env).await;

    let b = Browser::start(&env, "layout").await;
    let mut seen = BTreeSet::new();
    b.open("").await;
    b.wait("login-form").await;
    view(&b, "login", "").await;

    // A supervisor: her menu, a record, the list's filters.
    b.log_in("gs_dien_thoai", PASSWORD).await;
    menu_views(&b, &mut seen).await;
    for key in ["records", "duplicates", "progress"] {
        assert!(
            seen.contains(key),
            "{key} in the supervisor's menu: {seen:?}"
        );
    }
    record_view(&b, conflicted).await;
    filter_drawer(&b).await;
    b.log_out().await;

    // An admin with sensitive access: the menu's other entries.
    b.log_in("qt_may_tinh_bang", PASSWORD).await;
    menu_views(&b, &mut seen).await;
    for key in ["users", "devices", "audit"] {
        assert!(seen.contains(key), "{key} in the admin's menu: {seen:?}");
    }
    b.viewport(1366, 768).await;
    b.assert_no_console_errors(EXPECTED).await;
    b.close().await;
}

/// Visits every entry of the menu the page shows now (and each tab inside it) that an earlier
/// account has not, at every size.
async fn menu_views(b: &Browser, seen: &mut BTreeSet<String>) {
    let links: Vec<String> = js(
        b,
        "return [...document.querySelectorAll('header nav a[href]')].map(a => a.getAttribute('href'))",
    )
    .await
    .as_array()
    .unwrap()
    .iter()
    .map(|l| l.as_str().unwrap().to_owned())
    .collect();
    assert!(links.len() >= 3, "the menu: {links:?}");
    for link in links {
        let key = link.trim_start_matches("#/").to_owned();
        if !seen.insert(key.clone()) {
            continue;
        }
        b.open(&link).await;
        view(b, &key, &link).await;
        // The view's tabs (duplicates' states, the audit log's devices), each as a view.
        let tabs = js(
            b,
            "return [...document.querySelectorAll('main nav.tabs a[href]')].map(a => a.getAttribute('href'))",
        )
        .await;
        for tab in tabs.as_array().unwrap() {
            let tab = tab.as_str().unwrap();
            let Some((_, query)) = tab.split_once('?') else {
                continue;
            };
            let name = format!(
                "{key}-{}",
                query
                    .split('&')
                    .filter_map(|kv| kv.split_once('=').map(|(_, v)| v))
                    .collect::<Vec<_>>()
                    .join("-")
            );
            b.open(tab).await;
            view(b, &name, tab).await;
        }
    }
}

/// A record with a conflict: at every size it fits; the review box's buttons lie within the
/// screen; on a narrow screen the fields come first and the review box after them.
async fn record_view(b: &Browser, id: Uuid) {
    let hash = format!("#/records/{id}");
    b.open(&hash).await;
    b.wait("conflicts").await;
    for (w, hgt) in SIZES {
        b.viewport(w, hgt).await;
        settle(b).await;
        let order = js(
            b,
            "const f = document.querySelector('[data-test=fields]').getBoundingClientRect(), \
                    r = document.querySelector('[data-test=review]').getBoundingClientRect(); \
             return { fields_bottom: f.bottom, fields_left: f.left, review_top: r.top, review_left: r.left }",
        )
        .await;
        let f = |k: &str| order[k].as_f64().unwrap();
        if w < 960 {
            assert!(
                f("review_top") >= f("fields_bottom"),
                "{w}×{hgt}: the review box comes after the fields: {order}"
            );
        } else {
            assert!(
                f("review_left") > f("fields_left") && f("review_top") < f("fields_bottom"),
                "{w}×{hgt}: the review box beside the fields: {order}"
            );
        }
        fits(b, &format!("record-{w}x{hgt}")).await;
        for control in ["approve", "return", "review-comment", "pick-head_name"] {
            b.scroll_to(control).await;
            within(b, control, w).await;
        }
        js(b, "window.scrollTo(0, 0); return null").await;
        b.screenshot_as(&format!("record-{w}x{hgt}")).await;
        // The review box itself, for the narrow screens where it is below the fold.
        if w < 960 {
            b.scroll_to("review").await;
            b.screenshot_as(&format!("record-review-{w}x{hgt}")).await;
        }
    }
}

/// On a phone and a tablet the list's filters are behind a button; the drawer it opens holds
/// them all within the screen, filters the list, and closes.
async fn filter_drawer(b: &Browser) {
    for (w, hgt) in SIZES {
        b.open("#/records").await;
        b.viewport(w, hgt).await;
        b.wait_text("total", "a total", is_total).await;
        if w >= 1000 {
            // The filters are in the page beside the list; no button.
            b.wait("filter-commune").await;
            assert!(!shown(b, "filters-open").await);
            continue;
        }
        assert!(!shown(b, "filter-commune").await, "{w}: filters closed");
        b.click("filters-open").await;
        settle(b).await;
        assert!(
            shown(b, "filters-scrim").await,
            "{w}: the list is dimmed behind the drawer"
        );
        for control in [
            "filter-commune",
            "filter-type",
            "filter-review",
            "filter-changed-since",
            "clear-filters",
            "filters-close",
        ] {
            b.wait(control).await;
            within(b, control, w).await;
        }
        fits(b, &format!("records-filters-{w}x{hgt}")).await;
        b.screenshot_as(&format!("records-filters-{w}x{hgt}")).await;
        // A filter applies while the drawer stays open; its count shows on the button.
        b.select("filter-type", "person").await;
        b.wait_text("total", "the persons", |t| t == "2 hồ sơ")
            .await;
        b.wait("filters-done").await;
        b.click("filters-done").await;
        b.wait_gone("filter-commune").await;
        assert_eq!(b.text("filters-count").await, "1");
        b.open("#/records").await;
        b.wait_text("total", "all", |t| t == "8 hồ sơ").await;
        // Escape closes it too.
        b.click("filters-open").await;
        b.wait("filter-commune").await;
        b.wait("filter-type")
            .await
            .send_keys("\u{e00c}")
            .await
            .unwrap();
        b.wait_gone("filter-commune").await;
    }
}

/// One view at every size: waits for it to load, checks it fits, saves its screenshot.
async fn view(b: &Browser, name: &str, hash: &str) {
    for (w, hgt) in SIZES {
        b.viewport(w, hgt).await;
        if !hash.is_empty() {
            b.open(hash).await;
        }
        settle(b).await;
        fits(b, &format!("{name}-{w}x{hgt}")).await;
        if name == "records" {
            // The list itself never scrolls sideways, and on a phone the first record shows
            // on the first screen.
            let list = js(
                b,
                "const t = document.querySelector('[data-test=records-table]'), w = t.closest('.tablewrap'), \
                        r = document.querySelector('[data-test=record-row]').getBoundingClientRect(); \
                 return { scroll: w.scrollWidth, client: w.clientWidth, first: r.top, height: innerHeight }",
            )
            .await;
            assert!(
                list["scroll"].as_f64() <= list["client"].as_f64(),
                "{w}×{hgt}: the list scrolls sideways: {list}"
            );
            assert!(
                list["first"].as_f64().unwrap() < list["height"].as_f64().unwrap() * 0.6,
                "{w}×{hgt}: the first record is far down: {list}"
            );
        }
        b.screenshot_as(&format!("{name}-{w}x{hgt}")).await;
    }
}

/// Waits until the view has drawn what it loads (no "Đang tải…" left, nothing busy).
async fn settle(b: &Browser) {
    b.until("the view to load", || async {
        let done = js(
            b,
            "const m = document.querySelector('#app main'); \
             return !!m && m.innerText.trim().length > 0 && !/Đang tải|Loading/.test(document.body.innerText) \
                    && !document.querySelector('.busy, [aria-busy=true]') && !document.getAnimations().length",
        )
        .await;
        done.as_bool().unwrap().then_some(())
    })
    .await;
}

/// Asserts the page does not scroll sideways and no control shown lies outside the screen
/// (a control inside a box that scrolls on its own, such as a wide table, may).
async fn fits(b: &Browser, what: &str) {
    let r = js(
        b,
        "const iw = innerWidth, out = []; \
         const scrolls = e => { for (let p = e.parentElement; p; p = p.parentElement) { \
           const s = getComputedStyle(p); \
           if (/auto|scroll/.test(s.overflowX) && p.scrollWidth > p.clientWidth) return true; } return false; }; \
         for (const e of document.querySelectorAll('a[href], button, input, select, textarea, h1, [data-test=total]')) { \
           const r = e.getBoundingClientRect(); \
           if (!r.width || !r.height || getComputedStyle(e).visibility === 'hidden') continue; \
           if ((r.left < -1 || r.right > iw + 1) && !scrolls(e)) \
             out.push((e.dataset.test || e.tagName) + ' ' + Math.round(r.left) + '..' + Math.round(r.right) + ' ' + e.textContent.slice(0, 30)); } \
         return { scroll: document.documentElement.scrollWidth, inner: iw, outside: out }",
    )
    .await;
    let (scroll, inner) = (r["scroll"].as_f64().unwrap(), r["inner"].as_f64().unwrap());
    if scroll > inner || !r["outside"].as_array().unwrap().is_empty() {
        b.screenshot_as(&format!("overflow-{what}")).await;
    }
    assert!(scroll <= inner, "{what}: the page scrolls sideways: {r}");
    assert!(
        r["outside"].as_array().unwrap().is_empty(),
        "{what}: controls outside the screen: {r}"
    );
}

/// Asserts the control `[data-test=<test>]` lies within the screen's width.
async fn within(b: &Browser, test: &str, width: u32) {
    let e = b.wait(test).await;
    let r = b
        .client
        .execute(
            "const r = arguments[0].getBoundingClientRect(); return [r.left, r.right, innerWidth]",
            vec![serde_json::to_value(e).unwrap()],
        )
        .await
        .unwrap();
    let (left, right, inner) = (
        r[0].as_f64().unwrap(),
        r[1].as_f64().unwrap(),
        r[2].as_f64().unwrap(),
    );
    assert!(
        left >= -1.0 && right <= inner + 1.0,
        "{width}: [data-test={test}] at {left}..{right} of {inner}"
    );
}

/// Whether a `[data-test=<test>]` is displayed now.
async fn shown(b: &Browser, test: &str) -> bool {
    match b.client.find(Locator::Css(&sel(test))).await {
        Ok(e) => e.is_displayed().await.unwrap_or(false),
        Err(_) => false,
    }
}

async fn js(b: &Browser, script: &str) -> Json {
    b.client.execute(script, vec![]).await.unwrap()
}

/// What a district's supervisor works with: households and people of two communes with long
/// names, a household whose head two phones wrote differently (a conflict), the same woman
/// registered twice with one CCCD number (a duplicate pair). Returns the conflicted household
/// and the pair.
async fn records(env: &Env) -> (Uuid, (Uuid, Uuid)) {
    let mut a = collector_phone(env, "thu_hoa", &[DISTRICT], false).await;
    let mut c = collector_phone(env, "thu_binh", &[DISTRICT], false).await;
    let heads = [
        (NGOC_LINH, "Nguyễn Thị Phương Thảo"),
        (NGOC_LINH, "A Lâm"),
        (XOP, "Y Đoán"),
        (XOP, "Hồ Thị Kim Thoa"),
        (NGOC_LINH, "A Ngọc Hưng"),
        (XOP, "Y Hnui Byă"),
    ];
    let mut homes = Vec::new();
    for (commune, head) in heads {
        homes.push(create(
            &mut a,
            RecordType::Household,
            &[
                ("commune", commune),
                ("village", "Làng Kon Tuông"),
                ("head_name", head),
                ("ethnicity", "14"),
                ("poverty", "poor"),
            ],
        ));
    }
    let home = homes[2].to_string();
    let woman = |name: &'static str| {
        [
            ("commune", XOP),
            ("household_id", home.as_str()),
            ("full_name", name),
            ("sex", "female"),
            ("birth", "1990"),
            ("ethnicity", "14"),
            ("national_id", "062190000777"),
        ]
    };
    let first = create(&mut a, RecordType::Person, &woman("Y Hiền"));
    sync(env, &mut a).await;
    sync(env, &mut c).await;
    let second = create(&mut c, RecordType::Person, &woman("Y Hiền Niê"));
    // Both phones change the first household's head offline: a conflict.
    let conflicted = homes[0];
    a.store
        .set_field(
            conflicted,
            "head_name",
            &Value::from("Nguyễn Thị Phương Thảo Vy"),
        )
        .unwrap();
    c.store
        .set_field(conflicted, "head_name", &Value::from("Nguyễn Phương Thảo"))
        .unwrap();
    sync(env, &mut a).await;
    sync(env, &mut c).await;
    sync(env, &mut a).await;
    (conflicted, (first, second))
}
