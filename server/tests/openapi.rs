//! The OpenAPI document and the server agree: every documented route and method is answered,
//! every other method on a documented path answers 405 with the path's methods in `Allow`,
//! paths next to them answer 404; and every status a route answers, to good and bad inputs
//! from every kind of caller, is one its operation documents. Requests go through the real
//! routes in process (warp's test client).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod common;

use common::{World, MO_RAI, NGOC_LINH};
use fieldsync_core::protocol::{
    compress, SyncRequest, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION, VERSION_HEADER,
};
use fieldsync_server::accounts::{self, Authority};
use fieldsync_server::config::Timeouts;
use fieldsync_server::http::{routes, AppState};
use fieldsync_server::storage::{NewUser, Role, Storage};
use serde_json::{json, Value as Json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Every method a client may send; HEAD and OPTIONS are served nowhere.
const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
const PASSWORD: &str = "Quả-bưởi-Năm-Roi-2025";

fn document() -> Json {
    let doc: Json = serde_json::from_str(include_str!("../src/http/openapi.json")).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    doc
}

/// One documented operation.
#[derive(Debug)]
struct Operation {
    template: String,
    method: String,
    /// The statuses its responses list.
    statuses: BTreeSet<u16>,
    /// Its query parameters, and whether each is required.
    query: Vec<(String, bool)>,
    body: bool,
}

impl Operation {
    fn name(&self) -> String {
        format!("{} {}", self.method, self.template)
    }
}

fn operations(doc: &Json) -> Vec<Operation> {
    let mut out = Vec::new();
    for (template, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let statuses = op["responses"]
                .as_object()
                .unwrap()
                .keys()
                .map(|s| s.parse().unwrap())
                .collect();
            let query = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "query")
                .map(|p| {
                    (
                        p["name"].as_str().unwrap().to_owned(),
                        p["required"] == true,
                    )
                })
                .collect();
            out.push(Operation {
                template: template.clone(),
                method: method.to_uppercase(),
                statuses,
                query,
                body: op.get("requestBody").is_some(),
            });
        }
    }
    out
}

/// The documented methods of each path.
fn methods_by_path(doc: &Json) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for op in operations(doc) {
        out.entry(op.template).or_default().insert(op.method);
    }
    out
}

/// A server with accounts of every role, one record, and fresh credentials on demand.
struct Server {
    _dir: tempfile::TempDir,
    storage: Arc<dyn Storage>,
    state: AppState,
    record: String,
}

/// Request headers, names and values.
type Headers = Vec<(String, String)>;

/// Who is asking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Nobody,
    BadToken,
    Collector,
    Supervisor,
    OtherSupervisor,
    Admin,
    /// The supervisor's page session by cookie, without its CSRF token.
    CookieWithoutCsrf,
    /// The supervisor's page session by cookie, with its CSRF token.
    Cookie,
}

const EVERYONE: [Who; 8] = [
    Who::Nobody,
    Who::BadToken,
    Who::Collector,
    Who::Supervisor,
    Who::OtherSupervisor,
    Who::Admin,
    Who::CookieWithoutCsrf,
    Who::Cookie,
];

fn create_user(storage: &dyn Storage, name: &str, role: Role, areas: &[&str], grant: bool) {
    accounts::create_user(
        storage,
        Authority::Operator,
        &NewUser {
            username: name.into(),
            password: PASSWORD.into(),
            role,
            sensitive_access: grant,
            areas: areas.iter().map(|a| a.to_string()).collect(),
            can_grant_sensitive: grant,
            full_name: None,
            phone: None,
        },
    )
    .unwrap();
}

impl Server {
    fn start() -> Server {
        let world = World::new();
        world.user("thuthap", &[NGOC_LINH], false);
        let mut phone = world.phone("thuthap");
        let record = phone.household(NGOC_LINH, "Y Blơng").to_string();
        world.sync(&mut phone);
        let World { dir, storage } = world;
        let storage: Arc<dyn Storage> = storage.into_inner().into();
        create_user(&*storage, "quantri", Role::Admin, &["*"], true);
        create_user(&*storage, "giamsat", Role::Supervisor, &[NGOC_LINH], true);
        create_user(
            &*storage,
            "giamsat-morai",
            Role::Supervisor,
            &[MO_RAI],
            false,
        );
        // The account the admin's changes land on, so that no caller's own account changes.
        create_user(&*storage, "bi-doi", Role::Supervisor, &[NGOC_LINH], false);
        let state = AppState::new(storage.clone(), None, Timeouts::default()).unwrap();
        Server {
            _dir: dir,
            storage,
            state,
            record,
        }
    }

    /// A new session of `user`: its token and CSRF token.
    fn session(&self, user: &str) -> (String, String) {
        let (found, _) = self.storage.user_by_name(user).unwrap().unwrap();
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let (token, hash) = accounts::new_token();
        let (csrf, _) = accounts::new_token();
        self.storage
            .create_session(found.id, &hash, &csrf, now_ms + 3_600_000)
            .unwrap();
        (token, csrf)
    }

    fn credentials(&self, who: Who) -> Headers {
        let bearer = |user| {
            let (token, _) = self.session(user);
            vec![("authorization".to_owned(), format!("Bearer {token}"))]
        };
        match who {
            Who::Nobody => vec![],
            Who::BadToken => vec![("authorization".into(), format!("Bearer {}", "0".repeat(64)))],
            Who::Collector => bearer("thuthap"),
            Who::Supervisor => bearer("giamsat"),
            Who::OtherSupervisor => bearer("giamsat-morai"),
            Who::Admin => bearer("quantri"),
            Who::CookieWithoutCsrf | Who::Cookie => {
                let (token, csrf) = self.session("giamsat");
                let mut headers = vec![("cookie".to_owned(), format!("fieldsync_session={token}"))];
                if who == Who::Cookie {
                    headers.push(("x-csrf-token".into(), csrf));
                }
                headers
            }
        }
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: Option<&[u8]>,
    ) -> warp::http::Response<bytes::Bytes> {
        let mut request = warp::test::request().method(method).path(path);
        for (name, value) in headers {
            request = request.header(name.as_str(), value.as_str());
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        request.reply(&routes(self.state.clone())).await
    }
}

/// Checks what every answer carries: the headers, and for an error the JSON error body.
fn check_answer(what: &str, path: &str, response: &warp::http::Response<bytes::Bytes>) {
    let headers = response.headers();
    assert_eq!(headers["x-content-type-options"], "nosniff", "{what}");
    assert!(
        headers["strict-transport-security"]
            .to_str()
            .unwrap()
            .starts_with("max-age="),
        "{what}"
    );
    let static_file = !path.starts_with("/v1/") || path.starts_with("/v1/openapi.json");
    let cache = headers["cache-control"].to_str().unwrap();
    if static_file && response.status().as_u16() < 400 {
        assert_eq!(cache, "no-cache", "{what}");
    } else if path.split('?').next() == Some("/v1/schema") && response.status().as_u16() < 400 {
        // No personal data, only the caller's scope: this browser keeps it, revalidated.
        assert_eq!(cache, "private, no-cache", "{what}");
    } else {
        assert_eq!(cache, "no-store", "{what}");
    }
    if response.status().is_client_error() || response.status().is_server_error() {
        let body: Json = serde_json::from_slice(response.body())
            .unwrap_or_else(|_| panic!("{what}: an error body that is not JSON"));
        assert!(
            body["error"].is_string() && body["message"].is_string(),
            "{what}: {body}"
        );
    }
}

/// A concrete path for a documented template.
fn concrete(template: &str, server: &Server) -> String {
    template
        .replace("{id}", &server.record)
        .replace("{username}", "bi-doi")
        .replace("{indicator}", "communication_groups")
}

#[tokio::test]
async fn every_documented_route_exists_and_other_methods_answer_405() {
    let doc = document();
    let server = Server::start();
    let paths = methods_by_path(&doc);
    assert!(paths.len() >= 30, "{} paths documented", paths.len());
    let admin = server.credentials(Who::Admin);
    for (template, methods) in &paths {
        let path = concrete(template, &server);
        let allow: Vec<&str> = METHODS
            .iter()
            .copied()
            .filter(|m| methods.contains(*m))
            .collect();
        for method in METHODS {
            let response = server.send(method, &path, &admin, Some(b"{}")).await;
            let what = format!("{method} {template}");
            check_answer(&what, &path, &response);
            let body: Json = serde_json::from_slice(response.body()).unwrap_or_default();
            if methods.contains(method) {
                assert_ne!(response.status(), 405, "{what} is documented but refused");
                let no_route = response.status() == 404
                    && body["message"]
                        .as_str()
                        .is_some_and(|m| m.starts_with("route"));
                assert!(!no_route, "{what} is documented but not served");
            } else {
                assert_eq!(response.status(), 405, "{what} is not documented: {body}");
                assert_eq!(body["error"], "method_not_allowed", "{what}");
                let header = response.headers()["allow"].to_str().unwrap();
                assert_eq!(header.split(", ").collect::<Vec<_>>(), allow, "{what}");
            }
        }
    }
    // Paths next to the documented ones are no routes, whatever the method.
    let neighbours = [
        "/v1",
        "/v1/admin",
        "/v1/records/01960000-0000-7000-8000-000000000001/edits/x",
        "/v1/records/01960000-0000-7000-8000-000000000001/other",
        "/v1/records//history",
        "/v1/admin/users/someone/other",
        "/v1/admin/devices/x",
        "/v1/sessions",
        "/v1/indicators/export",
        "/v1/indicators/communication_groups",
        "/v1/indicators/communication_groups/records/x",
        "/v2/sync",
        "/index.html",
        "/app.js.map",
        "/v1/openapi.json/x",
    ];
    for path in neighbours {
        for method in METHODS {
            let response = server.send(method, path, &admin, Some(b"{}")).await;
            check_answer(&format!("{method} {path}"), path, &response);
            let body: Json = serde_json::from_slice(response.body()).unwrap();
            assert_eq!(response.status(), 404, "{method} {path}: {body}");
            assert!(body["message"].as_str().unwrap().starts_with("route"));
        }
    }
}

/// Values tried for every query parameter: blank, wrong types, out of range, valid ones.
const QUERY_VALUES: [&str; 16] = [
    "",
    "%20",
    "x",
    "-1",
    "0",
    "1",
    "501",
    "4294967296",
    "99999999999999999999",
    "true",
    "2025-02-30",
    "2025-12-31",
    "view",
    "%FF",
    "a%00b",
    "62.610.01",
];

/// A value each query parameter takes when the others are being varied.
fn good_value(name: &str) -> &'static str {
    match name {
        "area" => "62",
        "commune" => NGOC_LINH,
        "as_of" => "2025-12-31",
        "changed_since" => "2025-01-01",
        "type" => "household",
        "review" => "pending",
        "state" => "open",
        "part" => "value",
        "include" => "view",
        "all_submitted" | "conflicts" | "problems" | "deleted" => "true",
        "before" => "1000",
        "q" => "Blơng",
        _ => "1",
    }
}

fn query_string(pairs: &[(String, String)]) -> String {
    if pairs.is_empty() {
        String::new()
    } else {
        let joined: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("?{}", joined.join("&"))
    }
}

/// The query strings tried on an operation.
fn queries(op: &Operation) -> Vec<String> {
    let base: Vec<(String, String)> = op
        .query
        .iter()
        .filter(|(_, required)| *required)
        .map(|(name, _)| (name.clone(), good_value(name).to_owned()))
        .collect();
    let mut out = vec![query_string(&base)];
    if !base.is_empty() {
        out.push(String::new());
    }
    let mut unknown = base.clone();
    unknown.push(("zzz".into(), "1".into()));
    out.push(query_string(&unknown));
    let all: Vec<(String, String)> = op
        .query
        .iter()
        .map(|(name, _)| (name.clone(), good_value(name).to_owned()))
        .collect();
    out.push(query_string(&all));
    for (name, _) in &op.query {
        for value in QUERY_VALUES {
            let mut pairs: Vec<(String, String)> =
                base.iter().filter(|(n, _)| n != name).cloned().collect();
            pairs.push((name.clone(), value.to_owned()));
            out.push(query_string(&pairs));
        }
    }
    out
}

/// The path parameter values tried.
fn path_values(template: &str, server: &Server) -> Vec<String> {
    let values: Vec<String> = if template.contains("{id}") {
        vec![
            server.record.clone(),
            "01960000-0000-7000-8000-000000000001".into(),
            "not-a-uuid".into(),
            "0".repeat(300),
            "%00".into(),
        ]
    } else if template.contains("{username}") {
        vec![
            "bi-doi".into(),
            "nobody".into(),
            "x".repeat(300),
            "%C3%A1".into(),
        ]
    } else if template.contains("{indicator}") {
        vec![
            "communication_groups".into(),
            "victim_models_pilot".into(),
            "nope".into(),
        ]
    } else {
        return vec![template.to_owned()];
    };
    values
        .into_iter()
        .map(|v| {
            template
                .replace("{id}", &v)
                .replace("{username}", &v)
                .replace("{indicator}", &v)
        })
        .collect()
}

/// The JSON bodies tried on an operation: malformed ones for all, and ones that reach deeper
/// checks for each.
fn bodies(op: &Operation, server: &Server) -> Vec<Option<Vec<u8>>> {
    let big = json!({ "username": "x".repeat(70 * 1024) }).to_string();
    let mut out: Vec<Option<Vec<u8>>> = [
        "",
        "{}",
        "null",
        "[]",
        "nonsense",
        "{\"a\":",
        "{\"unknown\": 1}",
        big.as_str(),
    ]
    .iter()
    .map(|b| Some(b.as_bytes().to_vec()))
    .collect();
    out.push(None);
    let record = &server.record;
    let unknown = "01960000-0000-7000-8000-000000000001";
    let specific: Vec<Json> = match (op.method.as_str(), op.template.as_str()) {
        ("POST", "/v1/enrol") | ("POST", "/v1/session") => vec![
            json!({ "username": "quantri", "password": "wrong password 1" }),
            json!({ "username": "nobody", "password": PASSWORD }),
            json!({ "username": "thuthap", "password": "mật khẩu dài" }),
            json!({ "username": "giamsat", "password": PASSWORD }),
            json!({ "username": "x".repeat(5000), "password": PASSWORD }),
            json!({ "username": "giamsat", "password": PASSWORD, "device_name": "x".repeat(500) }),
            json!({ "username": 1, "password": PASSWORD }),
        ],
        ("POST", "/v1/records/{id}/edits") => vec![
            json!({ "edit": "review", "state": "approved" }),
            json!({ "edit": "review", "state": "returned", "comment": "x".repeat(3000) }),
            json!({ "edit": "review", "state": "nope" }),
            json!({ "edit": "set_field", "field": "nope", "value": "x" }),
            json!({ "edit": "set_field", "field": "head_name", "value": 12 }),
            json!({ "edit": "set_field", "field": "commune", "value": MO_RAI }),
            json!({ "edit": "clear_field", "field": "head_name" }),
            json!({ "edit": "delete" }),
        ],
        ("POST", "/v1/admin/users") => vec![
            json!({ "username": "moi-1", "password": "short", "role": "collector" }),
            json!({ "username": "moi-2", "password": PASSWORD, "role": "supervisor", "areas": ["zz"] }),
            json!({ "username": "moi-3", "password": PASSWORD, "role": "supervisor", "areas": [NGOC_LINH] }),
            json!({ "username": "moi-3", "password": PASSWORD, "role": "supervisor", "areas": [NGOC_LINH] }),
            json!({ "username": "moi-4", "password": PASSWORD, "role": "king" }),
            json!({ "username": "", "password": PASSWORD, "role": "collector", "areas": [NGOC_LINH] }),
            json!({ "username": "moi-5", "password": PASSWORD, "role": "admin", "areas": ["*"], "sensitive_access": true }),
        ],
        ("PATCH", _) => vec![
            json!({ "disabled": true }),
            json!({ "disabled": false }),
            json!({ "areas": ["zz"] }),
            json!({ "areas": [MO_RAI] }),
            json!({ "sensitive_access": true }),
            json!({ "can_grant_sensitive": "yes" }),
        ],
        ("PUT", _) => vec![
            json!({ "areas": [NGOC_LINH] }),
            json!({ "areas": ["zz"] }),
            json!({ "areas": [] }),
            json!({ "areas": "x" }),
        ],
        ("POST", "/v1/admin/users/{username}/password") => vec![
            json!({ "password": "short" }),
            json!({ "password": "aaaaaaaaaaaaaaaa" }),
            json!({ "password": "Hai-con-chim-non-2025" }),
        ],
        ("POST", "/v1/account/password") => vec![
            json!({ "old_password": "wrong password 1", "new_password": "Hai-con-chim-non-2025" }),
            json!({ "old_password": PASSWORD, "new_password": "short" }),
        ],
        ("POST", "/v1/duplicates/dismiss") => vec![
            json!({ "a": record, "b": unknown }),
            json!({ "a": record, "b": record }),
            json!({ "a": "x", "b": "y" }),
        ],
        ("POST", "/v1/duplicates/merge") => vec![
            json!({ "keep": record, "duplicate": record }),
            json!({ "keep": record, "duplicate": unknown }),
            json!({ "keep": record, "duplicate": unknown, "take": vec!["x"; 40] }),
        ],
        _ => vec![],
    };
    out.extend(
        specific
            .into_iter()
            .map(|j| Some(j.to_string().into_bytes())),
    );
    out
}

/// The sync requests tried: headers and body.
fn sync_requests() -> Vec<(Headers, Vec<u8>)> {
    let version = |v: &str| vec![(VERSION_HEADER.to_owned(), v.to_owned())];
    let current = PROTOCOL_VERSION.to_string();
    let empty = SyncRequest {
        cursor: vec![],
        max_pull_bytes: 65536,
        push: vec![],
    };
    vec![
        (vec![], vec![]),
        (version("1"), vec![]),
        (version("99"), vec![]),
        (version("x"), vec![]),
        (version(&current), vec![]),
        (version(&current), b"nonsense".to_vec()),
        (version(&current), compress(b"nonsense")),
        (version(&current), compress(&[0u8; 64])),
        (version(&current), compress(&empty.encode())),
        (version(&current), vec![0u8; 1024 * 1024 + 1]),
    ]
}

#[tokio::test]
async fn every_status_a_route_answers_is_documented() {
    let doc = document();
    let server = Server::start();
    let mut seen: BTreeMap<String, BTreeSet<u16>> = BTreeMap::new();
    let mut requests = 0usize;
    let mut check = |op: &Operation, who: Who, path: &str, response: &warp::http::Response<_>| {
        requests += 1;
        let status = response.status().as_u16();
        let what = format!("{} {path} as {who:?}", op.method);
        check_answer(&what, path, response);
        assert!(
            op.statuses.contains(&status),
            "{what} answered {status}, which {} does not document ({:?}): {}",
            op.name(),
            op.statuses,
            String::from_utf8_lossy(response.body())
        );
        seen.entry(op.name()).or_default().insert(status);
    };
    let login = [("x-requested-with".to_owned(), "fieldsync".to_owned())];
    for op in operations(&doc) {
        let with_body = op.body || op.method != "GET";
        let plain_body: Option<&[u8]> = with_body.then_some(b"{}");
        // Everyone, with the first (valid) path and query and a plain body.
        let path = path_values(&op.template, &server)[0].clone();
        let query = queries(&op)[0].clone();
        for who in EVERYONE {
            let mut headers = server.credentials(who);
            headers.extend(login.iter().cloned());
            headers.push((VERSION_HEADER.into(), PROTOCOL_VERSION.to_string()));
            let url = format!("{path}{query}");
            let response = server.send(&op.method, &url, &headers, plain_body).await;
            check(&op, who, &url, &response);
            if let Some(etag) = response.headers().get("etag") {
                headers.push(("if-none-match".into(), etag.to_str().unwrap().to_owned()));
                let response = server.send(&op.method, &url, &headers, plain_body).await;
                check(&op, who, &url, &response);
            }
        }
        // The callers who may use it, with every path, query and body tried.
        for who in [Who::Admin, Who::Supervisor, Who::Cookie] {
            for path in path_values(&op.template, &server) {
                for query in queries(&op) {
                    let mut headers = server.credentials(who);
                    headers.extend(login.iter().cloned());
                    let url = format!("{path}{query}");
                    let response = server.send(&op.method, &url, &headers, plain_body).await;
                    check(&op, who, &url, &response);
                }
                if op.body {
                    for body in bodies(&op, &server) {
                        let mut headers = server.credentials(who);
                        headers.extend(login.iter().cloned());
                        let response = server
                            .send(&op.method, &path, &headers, body.as_deref())
                            .await;
                        check(&op, who, &path, &response);
                    }
                    // Without the page's X-Requested-With, which logging in needs.
                    let headers = server.credentials(who);
                    let response = server.send(&op.method, &path, &headers, Some(b"{}")).await;
                    check(&op, who, &path, &response);
                }
                if op.template == "/v1/sync" {
                    for (extra, body) in sync_requests() {
                        let mut headers = server.credentials(who);
                        headers.extend(extra);
                        let response = server.send("POST", &path, &headers, Some(&body)).await;
                        check(&op, who, &path, &response);
                    }
                }
            }
        }
    }
    // The inputs reached the routes' own checks, not only the authentication.
    let all: BTreeSet<u16> = seen.values().flatten().copied().collect();
    for status in [200, 304, 400, 401, 403, 404, 409, 413, 426] {
        assert!(
            all.contains(&status),
            "no route answered {status}: {seen:?}"
        );
    }
    for (op, statuses) in &seen {
        if op.contains("/v1/") && !op.contains("health") && !op.contains("openapi") {
            assert!(statuses.len() >= 2, "{op} answered only {statuses:?}");
        }
    }
    assert!(requests > 2000, "{requests} requests");
}

#[tokio::test]
async fn development_answers_carry_no_hsts() {
    let server = Server::start();
    let dev = server.state.clone().with_hsts(false);
    for path in ["/", "/v1/health", "/v1/records", "/v1/nothing"] {
        let response = warp::test::request()
            .path(path)
            .reply(&routes(dev.clone()))
            .await;
        assert!(
            !response.headers().contains_key("strict-transport-security"),
            "{path}"
        );
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    }
}

#[tokio::test]
async fn the_document_is_served_and_parses() {
    let server = Server::start();
    let response = server.send("GET", "/v1/openapi.json", &[], None).await;
    assert_eq!(response.status(), 200);
    let doc: Json = serde_json::from_slice(response.body()).unwrap();
    assert!(doc["components"]["schemas"]["Record"].is_object());
    assert_eq!(doc, document());
}

#[test]
fn the_sync_version_range_is_the_servers() {
    let doc = document();
    let parameters = doc["paths"]["/v1/sync"]["post"]["parameters"]
        .as_array()
        .unwrap();
    let header = parameters
        .iter()
        .find(|p| p["name"] == VERSION_HEADER && p["in"] == "header")
        .unwrap();
    assert_eq!(header["required"], true);
    let versions: Vec<String> = (MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION)
        .map(|v| v.to_string())
        .collect();
    assert_eq!(
        header["schema"],
        json!({"type": "string", "enum": versions})
    );
}

#[test]
fn the_documented_area_codes_are_the_area_list() {
    let doc = document();
    let documented: BTreeSet<&str> = doc["components"]["schemas"]["AreaCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let areas = fieldsync_core::model::Areas::bundled();
    let listed: BTreeSet<&str> = areas.all().map(|a| a.code.as_str()).collect();
    assert_eq!(documented, listed);
}

#[tokio::test]
async fn the_version_header_has_one_spelling() {
    let server = Server::start();
    let mut headers = server.credentials(Who::Collector);
    let idle = compress(
        &SyncRequest {
            cursor: vec![],
            max_pull_bytes: 65536,
            push: vec![],
        }
        .encode(),
    );
    for (version, status) in [("3", 200), ("03", 426), ("+3", 426), ("2", 426), ("4", 426)] {
        headers.retain(|(name, _)| name != VERSION_HEADER);
        headers.push((VERSION_HEADER.to_owned(), version.to_owned()));
        let response = server.send("POST", "/v1/sync", &headers, Some(&idle)).await;
        assert_eq!(response.status(), status, "version {version}");
    }
}
