//! Adversarial: what every answer tells caches and browsers, on a real server over HTTPS. Every
//! route and method of the server's own OpenAPI document is asked, as nobody, an admin and a
//! supervisor: every answer is `nosniff`; every API answer (errors, exports and sync answers
//! included) is `no-store`, only the page's files may be kept (`no-cache`, revalidated); HSTS
//! is absent under `--dev` and on every answer of the same server started without it; and
//! every method a path does not list answers 405 with `Allow` naming the ones it does.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod adversarial_support;
mod common;

use adversarial_support::*;
use common::*;
use fieldsync_core::protocol::{compress, SyncRequest, PROTOCOL_VERSION, VERSION_HEADER};
use fieldsync_tests::deployment::skip_unless_sqlite;
use fieldsync_tests::https::HttpResponse;
use fieldsync_tests::server::ServerProcess;
use serde_json::{json, Value as Json};
use std::collections::{BTreeMap, BTreeSet};

/// Every method a client may send, in the order `Allow` lists them.
const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
const HSTS: &str = "max-age=31536000";

/// What the walk needs: a record, a supervisor who sees it, and a collector's phone token.
struct Site {
    record: String,
    supervisor: String,
    collector: String,
}

async fn site(env: &Env) -> Site {
    env.user("thuthap", &[NGOC_LINH], false).await;
    let mut phone = env.phone("thuthap", Default::default()).await;
    let record = household(&mut phone, "Y Blơng").to_string();
    phone.sync(&env.http, env.addr(), 20).await.unwrap();
    let supervisor = supervisor(env, "giamsat", &[NGOC_LINH], true).await;
    Site {
        record,
        supervisor,
        collector: phone.token,
    }
}

/// A request: method, path, token, extra headers, body.
type Request<'a> = (
    &'a str,
    &'a str,
    Option<&'a str>,
    Vec<(&'a str, String)>,
    Vec<u8>,
);

/// The documented methods of each path, from the document the server serves.
async fn documented(env: &Env) -> BTreeMap<String, BTreeSet<String>> {
    let (status, doc) = call(env, "GET", "/v1/openapi.json", None, &Json::Null).await;
    assert_eq!(status, 200);
    doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(path, item)| {
            let methods = item
                .as_object()
                .unwrap()
                .keys()
                .filter(|k| *k != "parameters")
                .map(|m| m.to_uppercase())
                .collect();
            (path.clone(), methods)
        })
        .collect()
}

/// A concrete path of a template, one that reaches the route's own answer.
fn concrete(template: &str, site: &Site) -> String {
    let id = if template.starts_with("/v1/admin/devices") {
        // Revoking is asked of a device that does not exist, so the walk revokes nothing.
        "01960000-0000-7000-8000-000000000001"
    } else {
        site.record.as_str()
    };
    template
        .replace("{id}", id)
        .replace("{username}", "giamsat")
        .replace("{indicator}", "communication_groups")
}

async fn send(
    env: &Env,
    method: &str,
    path: &str,
    token: Option<&str>,
    extra: &[(&str, String)],
    body: Vec<u8>,
) -> HttpResponse {
    let mut headers = vec![("content-type", "application/json".to_owned())];
    if let Some(t) = token {
        headers.push(("authorization", format!("Bearer {t}")));
    }
    headers.extend(extra.iter().cloned());
    env.http
        .request(env.addr(), method, path, &headers, body)
        .await
        .unwrap()
}

/// Checks the headers every answer carries, and that an error is the JSON error body.
fn check(what: &str, method: &str, path: &str, response: &HttpResponse, hsts: bool) {
    assert_eq!(
        response.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    let page_file = !path.starts_with("/v1/") || path.starts_with("/v1/openapi.json");
    // The schema holds no personal data, only the caller's scope: this browser keeps it.
    let expected = if page_file && response.status < 400 {
        "no-cache"
    } else if path == "/v1/schema" && response.status < 400 {
        "private, no-cache"
    } else {
        "no-store"
    };
    assert_eq!(response.header("cache-control"), Some(expected), "{what}");
    let sent = response.header("strict-transport-security");
    assert_eq!(sent, hsts.then_some(HSTS), "{what}");
    if response.status >= 400 && method != "HEAD" {
        let body: Json = serde_json::from_slice(&response.body)
            .unwrap_or_else(|_| panic!("{what}: error body is not JSON"));
        assert!(
            body["error"].is_string() && body["message"].is_string(),
            "{what}"
        );
    }
}

/// Asks every documented route as nobody, the admin and the supervisor, and the answers that
/// carry the most personal data (a record, the exports, a sync, a login); checks each answer.
/// Returns the operations that answered 200.
async fn walk(env: &Env, site: &Site, hsts: bool) -> BTreeSet<String> {
    let paths = documented(env).await;
    assert!(paths.len() >= 30, "{} paths", paths.len());
    let mut ok = BTreeSet::new();
    for (template, methods) in &paths {
        let path = concrete(template, site);
        for method in methods {
            let body = if method == "GET" {
                Vec::new()
            } else {
                b"{}".to_vec()
            };
            for token in [None, Some(env.admin.as_str()), Some(&site.supervisor)] {
                let response = send(env, method, &path, token, &[], body.clone()).await;
                let what = format!("{method} {path} ({})", response.status);
                check(&what, method, &path, &response, hsts);
                if response.status == 200 {
                    ok.insert(format!("{method} {template}"));
                }
            }
        }
    }
    // The answers made of personal data, each a 200.
    let sup = Some(site.supervisor.as_str());
    let version = (VERSION_HEADER, PROTOCOL_VERSION.to_string());
    let sync = compress(
        &SyncRequest {
            cursor: vec![],
            max_pull_bytes: 64 * 1024,
            push: vec![],
        }
        .encode(),
    );
    let login = json!({ "username": "giamsat", "password": PASSWORD }).to_string();
    let record = format!("/v1/records/{}?include=view", site.record);
    let personal: Vec<Request> = vec![
        ("GET", "/v1/records?limit=500", sup, vec![], vec![]),
        ("GET", &record, sup, vec![], vec![]),
        ("GET", "/v1/indicators/export.csv", sup, vec![], vec![]),
        ("GET", "/v1/indicators/export.xlsx", sup, vec![], vec![]),
        ("GET", "/v1/audit", Some(env.admin.as_str()), vec![], vec![]),
        (
            "POST",
            "/v1/sync",
            Some(site.collector.as_str()),
            vec![version],
            sync,
        ),
        (
            "POST",
            "/v1/session",
            None,
            vec![("x-requested-with", "fieldsync".to_owned())],
            login.into_bytes(),
        ),
    ];
    for (method, path, token, extra, body) in personal {
        let response = send(env, method, path, token, &extra, body).await;
        let what = format!("{method} {path} ({})", response.status);
        assert_eq!(response.status, 200, "{what}");
        check(&what, method, path, &response, hsts);
    }
    ok
}

/// Every method a documented path does not list answers 405, `Allow` naming those it does.
async fn undeclared_methods(env: &Env, site: &Site, hsts: bool) -> usize {
    let mut asked = 0;
    for (template, methods) in documented(env).await {
        let path = concrete(&template, site);
        let allow: Vec<&str> = METHODS
            .iter()
            .copied()
            .filter(|m| methods.contains(*m))
            .collect();
        for method in METHODS.iter().filter(|m| !methods.contains(**m)) {
            let response = send(env, method, &path, Some(&env.admin), &[], b"{}".to_vec()).await;
            let what = format!("{method} {template}");
            assert_eq!(response.status, 405, "{what}");
            check(&what, method, &path, &response, hsts);
            let listed: Vec<&str> = response.header("allow").unwrap().split(", ").collect();
            assert_eq!(listed, allow, "{what}");
            if *method != "HEAD" {
                let body: Json = serde_json::from_slice(&response.body).unwrap();
                assert_eq!(body["error"], "method_not_allowed", "{what}");
            }
            asked += 1;
        }
    }
    // Unknown paths stay 404, with the same headers.
    for path in ["/v1/nothing", "/v1/records/x/y/z", "/index.html"] {
        for method in ["GET", "POST", "DELETE"] {
            let response = send(env, method, path, Some(&env.admin), &[], vec![]).await;
            assert_eq!(response.status, 404, "{method} {path}");
            check(&format!("{method} {path}"), method, path, &response, hsts);
        }
    }
    asked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_says_how_it_may_be_kept_and_hsts_only_outside_dev() {
    if skip_unless_sqlite("it restarts the one server in production mode on its SQLite file; the headers do not depend on the storage") {
        return;
    }
    let mut env = Env::start().await;
    let site = site(&env).await;

    let ok = walk(&env, &site, false).await;
    // The walk reached the routes' own answers, not only their refusals.
    for op in [
        "GET /v1/records",
        "GET /v1/records/{id}",
        "GET /v1/records/{id}/history",
        "GET /v1/admin/users",
        "GET /v1/indicators/export.csv",
        "PATCH /v1/admin/users/{username}",
        "GET /",
    ] {
        assert!(ok.contains(op), "{op} never answered 200: {ok:?}");
    }
    let asked = undeclared_methods(&env, &site, false).await;
    assert!(asked >= 150, "{asked} undeclared methods asked");

    // The same server and data, as in production: a certificate and key, no --dev.
    let data = env.server.data_dir.clone();
    env.server.kill();
    env.server = ServerProcess::start_production(&data, "127.0.0.1:0").unwrap();
    let ok = walk(&env, &site, true).await;
    assert!(ok.contains("GET /v1/records/{id}"), "{ok:?}");
    undeclared_methods(&env, &site, true).await;
}
