//! Every route, with every kind of caller: a collector, supervisors in and out of the record's
//! area with and without sensitive access, admins of the area, of every area and of another
//! area, and nobody. One table says what each must get; the requests go through the real
//! routes in process.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

use fieldsync_core::generator::minimal_household;
use fieldsync_core::model::{RecordType, Value};
use fieldsync_core::protocol::{compress, SyncRequest, PROTOCOL_VERSION};
use fieldsync_core::RecordDoc;
use fieldsync_server::accounts::{self, Authority};
use fieldsync_server::config::Timeouts;
use fieldsync_server::http::{routes, AppState};
use fieldsync_server::storage::prelude::*;
use fieldsync_server::storage::sqlite::SqliteStorage;
use fieldsync_server::storage::{NewUser, Role};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use uuid::Uuid;

const PASSWORD: &str = "mật khẩu dài đủ";
const SEED: Uuid = Uuid::from_u128(0x5eed);

/// The callers, in the order of each row's expected statuses.
const CALLERS: [&str; 8] = [
    "anonymous",
    "collector",
    "sup_in",
    "sup_in_sensitive",
    "sup_out",
    "admin_in",
    "admin_all",
    "admin_out",
];

struct World {
    _dir: tempfile::TempDir,
    state: AppState,
    tokens: BTreeMap<&'static str, String>,
    household: Uuid,
    case: Uuid,
    twins: [Uuid; 2],
    victim_device: Uuid,
}

fn user(storage: &dyn Storage, name: &str, role: Role, areas: &[&str], sensitive: bool) {
    accounts::create_user(
        storage,
        Authority::Operator,
        &NewUser {
            username: name.into(),
            password: PASSWORD.into(),
            role,
            sensitive_access: sensitive,
            areas: areas.iter().map(|a| a.to_string()).collect(),
            // Only the admin of every area may give sensitive access.
            can_grant_sensitive: areas == ["*"],
            full_name: None,
            phone: None,
        },
    )
    .unwrap();
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(SqliteStorage::open(dir.path().join("server.sqlite")).unwrap());
    let s = storage.as_ref();
    user(s, "collector", Role::Collector, &["62.610.01"], false);
    user(s, "sup_in", Role::Supervisor, &["62.610"], false);
    user(s, "sup_in_sensitive", Role::Supervisor, &["62.610"], true);
    user(s, "sup_out", Role::Supervisor, &["62.616"], true);
    user(s, "admin_in", Role::Admin, &["62.610"], false);
    user(s, "admin_all", Role::Admin, &["*"], false);
    user(s, "admin_out", Role::Admin, &["62.616"], false);
    user(s, "victim", Role::Collector, &["62.610.01"], false);
    let mut tokens = BTreeMap::new();
    for name in CALLERS.iter().skip(1) {
        let (_, token, _) = accounts::enrol(s, name, PASSWORD, "test", None).unwrap();
        tokens.insert(*name, token);
    }
    let (victim_device, _, _) = accounts::enrol(s, "victim", PASSWORD, "lost phone", None).unwrap();
    let household = Uuid::now_v7();
    let case = Uuid::now_v7();
    let (_, h) = RecordDoc::create(
        household,
        RecordType::Household,
        &minimal_household("62.610.01", "Y Blơ"),
        SEED,
    )
    .unwrap();
    let case_fields: BTreeMap<String, Value> = [
        ("commune", "62.610.01"),
        ("person_id", "0190a000-0000-7000-8000-000000000001"),
        ("case_kind", "trafficking"),
        ("opened", "2025-03-01"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), Value::from(v)))
    .collect();
    let (_, c) = RecordDoc::create(case, RecordType::SupportCase, &case_fields, SEED).unwrap();
    // Two registrations of one household: a candidate pair of duplicates.
    let twins = [Uuid::now_v7(), Uuid::now_v7()];
    let mut twin_fields = minimal_household("62.610.01", "Y Đôi");
    twin_fields.insert("village".into(), "Làng Le".into());
    let twin_changes = twins.map(|id| {
        let (_, change) = RecordDoc::create(id, RecordType::Household, &twin_fields, SEED).unwrap();
        (id, change.bytes)
    });
    storage
        .ingest_trusted(
            SEED,
            &[
                (household, h.bytes),
                (case, c.bytes),
                twin_changes[0].clone(),
                twin_changes[1].clone(),
            ],
        )
        .unwrap();
    World {
        _dir: dir,
        state: AppState::new(storage, None, Timeouts::default()).unwrap(),
        tokens,
        household,
        case,
        twins,
        victim_device: victim_device.id,
    }
}

struct Row {
    method: &'static str,
    path: String,
    body: serde_json::Value,
    /// One status per caller of [`CALLERS`].
    expect: [u16; 8],
}

fn row(method: &'static str, path: String, body: serde_json::Value, expect: [u16; 8]) -> Row {
    Row {
        method,
        path,
        body,
        expect,
    }
}

async fn send(world: &World, caller: &str, row: &Row) -> (u16, String) {
    let mut request = warp::test::request().method(row.method).path(&row.path);
    if let Some(token) = world.tokens.get(caller) {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let body = if row.path == "/v1/sync" {
        request = request.header("x-fieldsync-protocol", PROTOCOL_VERSION.to_string());
        compress(&SyncRequest::default().encode())
    } else {
        if row.path == "/v1/session" {
            request = request.header("x-requested-with", "fieldsync");
        }
        row.body.to_string().into_bytes()
    };
    let response = request
        .header("content-length", body.len().to_string())
        .body(body)
        .reply(&routes(world.state.clone()))
        .await;
    (
        response.status().as_u16(),
        String::from_utf8_lossy(response.body()).into_owned(),
    )
}

#[tokio::test]
async fn every_route_answers_every_role_as_the_table_says() {
    let world = world();
    let (h, c) = (world.household, world.case);
    let [t1, t2] = world.twins;
    let pair = json!({"a": t1, "b": t2});
    let merge = json!({"keep": t1, "duplicate": t2});
    let approve = json!({"edit": "review", "state": "approved"});
    let mut n = 0;
    let rows = vec![
        //                                                       anon col  s_in s_in+ s_out a_in a_all a_out
        row(
            "GET",
            "/v1/health".into(),
            json!(null),
            [200, 200, 200, 200, 200, 200, 200, 200],
        ),
        row("GET", "/v1/openapi.json".into(), json!(null), [200; 8]),
        row("GET", "/".into(), json!(null), [200; 8]),
        row(
            "GET",
            "/v1/areas".into(),
            json!(null),
            [401, 200, 200, 200, 200, 200, 200, 200],
        ),
        row(
            "POST",
            "/v1/sync".into(),
            json!(null),
            [401, 200, 200, 200, 200, 200, 200, 200],
        ),
        row(
            "GET",
            "/v1/records".into(),
            json!(null),
            [401, 403, 200, 200, 200, 200, 200, 200],
        ),
        row(
            "GET",
            format!("/v1/records/{h}"),
            json!(null),
            [401, 403, 200, 200, 404, 200, 200, 404],
        ),
        row(
            "GET",
            format!("/v1/records/{c}"),
            json!(null),
            [401, 403, 404, 200, 404, 404, 404, 404],
        ),
        row(
            "GET",
            format!("/v1/records/{h}/history"),
            json!(null),
            [401, 403, 200, 200, 404, 200, 200, 404],
        ),
        row(
            "GET",
            format!("/v1/records/{c}/history"),
            json!(null),
            [401, 403, 404, 200, 404, 404, 404, 404],
        ),
        row(
            "POST",
            format!("/v1/records/{h}/edits"),
            approve.clone(),
            [401, 403, 200, 200, 404, 403, 403, 403],
        ),
        row(
            "POST",
            format!("/v1/records/{c}/edits"),
            approve,
            [401, 403, 404, 200, 404, 403, 403, 403],
        ),
        row(
            "GET",
            "/v1/duplicates".into(),
            json!(null),
            [401, 403, 200, 200, 200, 403, 403, 403],
        ),
        // The first supervisor dismisses, the second finds it dismissed already.
        row(
            "POST",
            "/v1/duplicates/dismiss".into(),
            pair,
            [401, 403, 200, 200, 404, 403, 403, 403],
        ),
        // The first supervisor merges; the second finds the duplicate merged already.
        row(
            "POST",
            "/v1/duplicates/merge".into(),
            merge,
            [401, 403, 200, 409, 404, 403, 403, 403],
        ),
        row(
            "POST",
            format!("/v1/records/{t2}/unmerge"),
            json!(null),
            [401, 403, 200, 409, 404, 403, 403, 403],
        ),
        row(
            "GET",
            "/v1/admin/users".into(),
            json!(null),
            [401, 403, 403, 403, 403, 200, 200, 200],
        ),
        row(
            "PATCH",
            "/v1/admin/users/victim".into(),
            json!({"areas": ["62.610.01"]}),
            [401, 403, 403, 403, 403, 200, 200, 403],
        ),
        row(
            "PUT",
            "/v1/admin/users/victim/areas".into(),
            json!({"areas": ["62.610.01"]}),
            [401, 403, 403, 403, 403, 200, 200, 403],
        ),
        row(
            "POST",
            "/v1/admin/users/victim/password".into(),
            json!({"password": "một mật khẩu mới"}),
            [401, 403, 403, 403, 403, 200, 200, 403],
        ),
        row(
            "PATCH",
            "/v1/admin/users/victim".into(),
            json!({"sensitive_access": true}),
            [401, 403, 403, 403, 403, 403, 200, 403],
        ),
        row(
            "GET",
            "/v1/admin/devices".into(),
            json!(null),
            [401, 403, 403, 403, 403, 200, 200, 200],
        ),
        row(
            "POST",
            format!("/v1/admin/devices/{}/revoke", world.victim_device),
            json!(null),
            [401, 403, 403, 403, 403, 200, 200, 404],
        ),
        row(
            "GET",
            "/v1/admin/stats".into(),
            json!(null),
            [401, 403, 403, 403, 403, 200, 200, 200],
        ),
        row(
            "GET",
            "/v1/audit".into(),
            json!(null),
            [401, 403, 403, 403, 403, 200, 200, 200],
        ),
        // The devices support cases reached: admins with sensitive access only (none here).
        row(
            "GET",
            "/v1/audit/sensitive-devices".into(),
            json!(null),
            [401, 403, 403, 403, 403, 403, 403, 403],
        ),
        // Plan progress: supervisors and admins, each for their own areas; victim figures
        // only with sensitive access.
        row(
            "GET",
            "/v1/indicators".into(),
            json!(null),
            [401, 403, 200, 200, 200, 200, 200, 200],
        ),
        row(
            "GET",
            "/v1/indicators/export.csv".into(),
            json!(null),
            [401, 403, 200, 200, 200, 200, 200, 200],
        ),
        row(
            "GET",
            "/v1/indicators/export.xlsx?as_of=2024-12-31".into(),
            json!(null),
            [401, 403, 200, 200, 200, 200, 200, 200],
        ),
        row(
            "GET",
            "/v1/indicators/communication_groups/records?area=51.102".into(),
            json!(null),
            [401, 403, 200, 200, 404, 200, 200, 404],
        ),
        // Victims' cases: only with sensitive access, and only where the figure and its
        // communes' are published (docs/indicators.md §3), which this world's few are not.
        row(
            "GET",
            "/v1/indicators/victims_supported/records?area=51.102&all_submitted=true".into(),
            json!(null),
            [401, 403, 403, 403, 404, 403, 403, 403],
        ),
        row(
            "GET",
            "/v1/indicators/nothing/records?area=51.102".into(),
            json!(null),
            [401, 403, 404, 404, 404, 404, 404, 404],
        ),
        // A wrong old password: every role may try, and is told it is wrong.
        row(
            "POST",
            "/v1/account/password".into(),
            json!({"old_password": "sai mật khẩu", "new_password": "mật khẩu mới dài"}),
            [401; 8],
        ),
        // The page's session works with its cookie only, not a device token.
        row("GET", "/v1/session".into(), json!(null), [401; 8]),
        row("DELETE", "/v1/session".into(), json!(null), [401; 8]),
    ];
    for row in &rows {
        for (i, caller) in CALLERS.iter().enumerate() {
            let (status, body) = send(&world, caller, row).await;
            assert_eq!(
                status, row.expect[i],
                "{} {} as {caller}: {body}",
                row.method, row.path
            );
            n += 1;
        }
    }
    // Creating accounts: within the admin's areas only; each try a new name.
    for (i, caller) in CALLERS.iter().enumerate() {
        let create = row(
            "POST",
            "/v1/admin/users".into(),
            json!({"username": format!("new{i}"), "password": PASSWORD, "role": "collector",
                   "areas": ["62.610.01"]}),
            [401, 403, 403, 403, 403, 200, 200, 403],
        );
        let (status, body) = send(&world, caller, &create).await;
        assert_eq!(status, create.expect[i], "create as {caller}: {body}");
        n += 1;
    }
    // Logging in to the page: supervisors and admins, never collectors.
    for name in CALLERS.iter().skip(1) {
        let login = row(
            "POST",
            "/v1/session".into(),
            json!({"username": name, "password": PASSWORD}),
            [0; 8],
        );
        let (status, body) = send(&world, "anonymous", &login).await;
        let want = if *name == "collector" { 403 } else { 200 };
        assert_eq!(status, want, "login of {name}: {body}");
        n += 1;
    }
    assert!(n > 200, "{n} requests");
}
