//! The OpenAPI document and the server agree: every documented route and method is answered
//! (not "no such route"), and every other method on a documented path, and paths next to
//! them, are not. Requests go through the real routes in process (warp's test client).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

use fieldsync_server::config::Timeouts;
use fieldsync_server::http::{routes, AppState};
use fieldsync_server::storage::sqlite::SqliteStorage;
use std::collections::BTreeSet;
use std::sync::Arc;

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

fn state(dir: &tempfile::TempDir) -> AppState {
    let storage = SqliteStorage::open(dir.path().join("server.sqlite")).unwrap();
    AppState::new(Arc::new(storage), None, Timeouts::default()).unwrap()
}

/// A concrete path for a documented template.
fn concrete(template: &str) -> String {
    template
        .replace("{id}", "01960000-0000-7000-8000-000000000001")
        .replace("{username}", "someone")
        .replace("{indicator}", "communication_groups")
}

/// Whether the server answered "no such route" (as opposed to any answer of the route).
async fn no_route(state: &AppState, method: &str, path: &str) -> bool {
    let response = warp::test::request()
        .method(method)
        .path(path)
        .header("content-length", "2")
        .body("{}")
        .reply(&routes(state.clone()))
        .await;
    if response.status() != 404 {
        return false;
    }
    let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap_or_default();
    body["message"]
        .as_str()
        .is_some_and(|m| m.starts_with("route"))
}

fn documented() -> Vec<(String, BTreeSet<String>)> {
    let doc: serde_json::Value =
        serde_json::from_str(include_str!("../src/http/openapi.json")).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(path, ops)| {
            let methods = ops
                .as_object()
                .unwrap()
                .keys()
                .map(|m| m.to_uppercase())
                .collect();
            (path.clone(), methods)
        })
        .collect()
}

#[tokio::test]
async fn every_documented_route_exists_and_nothing_else_does() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(&dir);
    let paths = documented();
    assert!(paths.len() >= 20, "{} paths documented", paths.len());
    for (template, methods) in &paths {
        let path = concrete(template);
        for method in METHODS {
            let missing = no_route(&state, method, &path).await;
            if methods.contains(method) {
                assert!(!missing, "{method} {template} is documented but not served");
            } else {
                assert!(missing, "{method} {template} is served but not documented");
            }
        }
    }
    // Paths next to the documented ones are not routes either.
    let neighbours = [
        "/v1",
        "/v1/admin",
        "/v1/records/01960000-0000-7000-8000-000000000001/edits/x",
        "/v1/records/01960000-0000-7000-8000-000000000001/other",
        "/v1/admin/users/someone/other",
        "/v1/admin/devices/x",
        "/v1/sessions",
        "/v1/indicators/export",
        "/v1/indicators/communication_groups",
        "/v1/indicators/communication_groups/records/x",
        "/v2/sync",
        "/index.html",
        "/app.js.map",
    ];
    for path in neighbours {
        for method in METHODS {
            assert!(
                no_route(&state, method, path).await,
                "{method} {path} is served but not documented"
            );
        }
    }
}

#[tokio::test]
async fn the_document_is_served_and_parses() {
    let dir = tempfile::tempdir().unwrap();
    let response = warp::test::request()
        .path("/v1/openapi.json")
        .reply(&routes(state(&dir)))
        .await;
    assert_eq!(response.status(), 200);
    let doc: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
    assert!(doc["components"]["schemas"]["Record"].is_object());
}
