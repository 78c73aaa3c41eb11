//! The supervisors' workspace behind the page, in process: logging in with a cookie and the
//! CSRF rule, the record list's filters (the commune filter across the 2025 merger), counts
//! and paging, who wrote each conflicting value, "changed since approval" after a phone's edit,
//! the history, and an audit log that nothing can change.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod common;

use common::*;
use fieldsync_core::model::{RecordType, Value};
use fieldsync_server::accounts::{self, Authority};
use fieldsync_server::config::Timeouts;
use fieldsync_server::http::{routes, AppState};
use fieldsync_server::storage::prelude::*;
use fieldsync_server::storage::sqlite::SqliteStorage;
use fieldsync_server::storage::{AuditFilter, NewUser, Role};
use serde_json::{json, Value as Json};
use std::sync::Arc;

const SUPERVISOR: &str = "giamsat";
const SUP_PASSWORD: &str = "mật khẩu của trang";

fn supervisor(storage: &dyn Storage, areas: &[&str]) {
    accounts::create_user(
        storage,
        Authority::Operator,
        &NewUser {
            username: SUPERVISOR.into(),
            password: SUP_PASSWORD.into(),
            role: Role::Supervisor,
            sensitive_access: false,
            areas: areas.iter().map(|a| a.to_string()).collect(),
            can_grant_sensitive: false,
            full_name: None,
            phone: None,
        },
    )
    .unwrap();
}

/// The page's view of the server: a cookie session with its CSRF token.
struct Page {
    state: AppState,
    cookie: String,
    csrf: String,
}

impl Page {
    async fn login(state: &AppState) -> Page {
        let response = warp::test::request()
            .method("POST")
            .path("/v1/session")
            .header("x-requested-with", "fieldsync")
            .json(&json!({"username": SUPERVISOR, "password": SUP_PASSWORD}))
            .reply(&routes(state.clone()))
            .await;
        assert_eq!(response.status(), 200, "{:?}", response.body());
        let set_cookie = response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .to_owned();
        for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
            assert!(set_cookie.contains(attribute), "{set_cookie}");
        }
        let cookie = set_cookie.split(';').next().unwrap().to_owned();
        let body: Json = serde_json::from_slice(response.body()).unwrap();
        Page {
            state: state.clone(),
            cookie,
            csrf: body["csrf_token"].as_str().unwrap().to_owned(),
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Json>, csrf: bool) -> (u16, Json) {
        let mut request = warp::test::request()
            .method(method)
            .path(path)
            .header("cookie", &self.cookie);
        if csrf {
            request = request.header("x-csrf-token", &self.csrf);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.reply(&routes(self.state.clone())).await;
        (
            response.status().as_u16(),
            serde_json::from_slice(response.body()).unwrap_or(Json::Null),
        )
    }

    async fn get(&self, path: &str) -> Json {
        let (status, body) = self.call("GET", path, None, false).await;
        assert_eq!(status, 200, "{path}: {body}");
        body
    }
}

fn state_of(storage: SqliteStorage) -> AppState {
    AppState::new(Arc::new(storage), None, Timeouts::default()).unwrap()
}

#[tokio::test]
async fn a_session_needs_its_cookie_and_its_csrf_token_and_ends_at_logout() {
    let world = World::new();
    supervisor(&world.storage, &["62.610"]);
    let state = state_of(SqliteStorage::open(world.dir.path().join("server.sqlite")).unwrap());
    // A login without the page's header (a form posted by another site) is refused.
    let response = warp::test::request()
        .method("POST")
        .path("/v1/session")
        .json(&json!({"username": SUPERVISOR, "password": SUP_PASSWORD}))
        .reply(&routes(state.clone()))
        .await;
    assert_eq!(response.status(), 403);
    let page = Page::login(&state).await;
    let session = page.get("/v1/session").await;
    assert_eq!(session["user"]["username"], SUPERVISOR);
    assert!(session["expires_at"].as_str().is_some());
    // Reads need only the cookie; anything that changes something needs the CSRF token too.
    page.get("/v1/records").await;
    let id = Uuid::now_v7();
    let (status, body) = page
        .call(
            "POST",
            &format!("/v1/records/{id}/edits"),
            Some(json!({"edit": "review", "state": "approved"})),
            false,
        )
        .await;
    assert_eq!((status, body["error"].as_str()), (403, Some("forbidden")));
    let (status, _) = page.call("DELETE", "/v1/session", None, false).await;
    assert_eq!(status, 403, "logging out is a change too");
    let (status, _) = page.call("DELETE", "/v1/session", None, true).await;
    assert_eq!(status, 200);
    let (status, _) = page.call("GET", "/v1/records", None, false).await;
    assert_eq!(status, 401, "the session is over");
}

use uuid::Uuid;

#[tokio::test]
async fn the_list_filters_counts_and_pages_and_a_commune_covers_its_merger() {
    let world = World::new();
    world.user("a", &["62.610"], false);
    let mut a = world.phone("a");
    // Ngọc Linh and Mường Hoong merged into 51.102 Ngọc Linh; Xốp into 51.103.
    for (commune, n) in [
        ("62.610.01", 3),
        ("62.610.02", 2),
        ("51.102", 1),
        ("62.610.03", 4),
    ] {
        for i in 0..n {
            a.store
                .create(
                    RecordType::Household,
                    &household(commune, &format!("Y Hơ {commune} {i}")),
                )
                .unwrap();
        }
    }
    let conflicted = a
        .store
        .create(
            RecordType::Household,
            &household("62.610.01", "Nguyễn Thị Hoà"),
        )
        .unwrap();
    world.sync(&mut a);
    supervisor(&world.storage, &["62.610"]);
    let state = state_of(SqliteStorage::open(world.dir.path().join("server.sqlite")).unwrap());
    let page = Page::login(&state).await;

    let all = page.get("/v1/records").await;
    assert_eq!(all["total"], 11);
    let merged = page.get("/v1/records?commune=51.102").await;
    assert_eq!(
        merged["total"], 7,
        "the new commune covers its old ones: {merged}"
    );
    let old = page.get("/v1/records?commune=62.610.02").await;
    // An old commune lists what was registered in it, not the rest of the unit it became
    // (data-model.md §4).
    assert_eq!(
        old["total"], 2,
        "an old commune lists its own records: {old}"
    );
    let xop = page.get("/v1/records?commune=62.610.03").await;
    assert_eq!(xop["total"], 4);
    let found = page.get("/v1/records?q=nguyen%20thi%20hoa").await;
    assert_eq!(found["total"], 1, "search ignores diacritics and case");
    assert_eq!(found["records"][0]["commune_name"], "Ngọc Linh");

    // Paging: three pages of four.
    let mut seen = std::collections::BTreeSet::new();
    for offset in [0, 4, 8] {
        let p = page
            .get(&format!("/v1/records?limit=4&offset={offset}"))
            .await;
        for r in p["records"].as_array().unwrap() {
            seen.insert(r["id"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(seen.len(), 11);

    // A conflict between two phones: the counts and the conflicts filter see it, and the record
    // names the person and the device behind each value.
    world.user("b", &["62.610"], false);
    let mut b = world.phone("b");
    world.sync(&mut b);
    a.store
        .set_field(conflicted, "head_name", &"Nguyễn Thị Hòa".into())
        .unwrap();
    b.store
        .set_field(conflicted, "head_name", &"Nguyễn T. Hoà".into())
        .unwrap();
    world.sync(&mut a);
    world.sync(&mut b);
    let with = page.get("/v1/records?conflicts=true").await;
    assert_eq!(with["total"], 1);
    assert_eq!(all_counts(&page).await["conflicts"], 1);
    let record = page.get(&format!("/v1/records/{conflicted}")).await;
    let values = record["conflicts"][0]["values"].as_array().unwrap();
    let authors: std::collections::BTreeSet<&str> = values
        .iter()
        .map(|v| v["author"]["username"].as_str().unwrap())
        .collect();
    assert_eq!(authors, ["a", "b"].into());
    assert!(values.iter().all(|v| v["author"]["device_name"] == "phone"));

    // Unknown filters are refused, not ignored.
    let (status, _) = page
        .call("GET", "/v1/records?comune=51.102", None, false)
        .await;
    assert_eq!(status, 400);
    let (status, _) = page
        .call("GET", "/v1/records?commune=99.999", None, false)
        .await;
    assert_eq!(status, 400);
}

async fn all_counts(page: &Page) -> Json {
    page.get("/v1/records").await["counts"].clone()
}

#[tokio::test]
async fn an_edit_the_approval_did_not_see_reopens_the_record_and_the_history_tells_who() {
    let world = World::new();
    world.user("a", &[NGOC_LINH], false);
    let mut a = world.phone("a");
    let id = a.household(NGOC_LINH, "Y Blơ");
    world.sync(&mut a);
    supervisor(&world.storage, &["62.610"]);
    let state = state_of(SqliteStorage::open(world.dir.path().join("server.sqlite")).unwrap());
    let page = Page::login(&state).await;
    let (status, approved) = page
        .call(
            "POST",
            &format!("/v1/records/{id}/edits"),
            Some(json!({"edit": "review", "state": "approved"})),
            true,
        )
        .await;
    assert_eq!(status, 200, "{approved}");
    assert_eq!(approved["review"]["state"], "approved");
    assert_eq!(page.get("/v1/records?review=approved").await["total"], 1);

    // The phone, offline, had not seen the approval; its edit arrives afterwards.
    a.store.set_field(id, "village", &"Làng Le".into()).unwrap();
    world.sync(&mut a);
    let record = page.get(&format!("/v1/records/{id}")).await;
    assert_eq!(record["review"]["state"], "changed");
    assert_eq!(record["review"]["changed_fields"][0]["field"], "village");
    assert_eq!(record["review"]["changed_fields"][0]["now"], "Làng Le");
    assert_eq!(page.get("/v1/records?review=changed").await["total"], 1);
    assert_eq!(
        a.store.get(id).unwrap().review,
        fieldsync_core::record::ReviewState::Approved,
        "the phone got the approval"
    );

    let history = page.get(&format!("/v1/records/{id}/history")).await;
    let changes = history["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 3);
    assert_eq!(changes[0]["author"]["username"], "a");
    assert_eq!(changes[1]["author"]["username"], SUPERVISOR);
    assert_eq!(changes[1]["author"]["device_name"], "Trình duyệt");
    assert!(changes[2]["ops"]
        .as_array()
        .unwrap()
        .iter()
        .any(|op| op["key"] == "village" && op["value"] == Value::from("Làng Le").to_string()));
    assert!(changes[2]["received_at"].as_str().unwrap().ends_with('Z'));
}

/// Picking the conflicting value that is already shown writes a change that only removes the
/// other value; the history still says which value the supervisor kept.
#[tokio::test]
async fn the_history_of_a_conflict_resolved_to_the_shown_value_names_that_value() {
    let world = World::new();
    world.user("a", &[NGOC_LINH], false);
    world.user("b", &[NGOC_LINH], false);
    let (mut a, mut b) = (world.phone("a"), world.phone("b"));
    let id = a.household(NGOC_LINH, "Y Blơ");
    world.sync(&mut a);
    world.sync(&mut b);
    a.store
        .set_field(id, "head_name", &"Y Blơ A".into())
        .unwrap();
    b.store
        .set_field(id, "head_name", &"Y Blơ B".into())
        .unwrap();
    world.sync(&mut a);
    world.sync(&mut b);
    supervisor(&world.storage, &["62.610"]);
    let state = state_of(SqliteStorage::open(world.dir.path().join("server.sqlite")).unwrap());
    let page = Page::login(&state).await;
    let record = page.get(&format!("/v1/records/{id}")).await;
    let shown = record["fields"]["head_name"].as_str().unwrap().to_owned();
    let (status, body) = page
        .call(
            "POST",
            &format!("/v1/records/{id}/edits"),
            Some(json!({"edit": "set_field", "field": "head_name", "value": shown})),
            true,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["conflicts"].as_array().unwrap().is_empty(), "{body}");
    let history = page.get(&format!("/v1/records/{id}/history")).await;
    let last = history["changes"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["author"]["username"], SUPERVISOR);
    assert_eq!(
        last["ops"],
        json!([{"key": "head_name", "old": shown, "value": shown}]),
        "{history}"
    );
    assert_eq!(last["kind"], "correction");
    assert_eq!(
        last["made_at"],
        Json::Null,
        "made on the page: the server's time"
    );
}

#[tokio::test]
async fn the_audit_log_keeps_what_was_done_and_nothing_can_change_it() {
    let world = World::new();
    supervisor(&world.storage, &["62.610"]);
    let state = state_of(SqliteStorage::open(world.dir.path().join("server.sqlite")).unwrap());
    let page = Page::login(&state).await;
    let (status, _) = page.call("DELETE", "/v1/session", None, true).await;
    assert_eq!(status, 200);
    let entries = world
        .storage
        .list_audit(
            &AuditFilter {
                before: i64::MAX,
                with_sensitive: true,
                ..Default::default()
            },
            10,
        )
        .unwrap();
    let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, vec!["logout", "login"]);
    assert_eq!(entries[1].username.as_deref(), Some(SUPERVISOR));
    let conn = rusqlite::Connection::open(world.dir.path().join("server.sqlite")).unwrap();
    assert!(conn.execute("UPDATE audit SET action = 'x'", []).is_err());
    assert!(conn.execute("DELETE FROM audit", []).is_err());
    assert_eq!(
        world
            .storage
            .list_audit(
                &AuditFilter {
                    before: i64::MAX,
                    with_sensitive: true,
                    ..Default::default()
                },
                10
            )
            .unwrap()
            .len(),
        2
    );
}
