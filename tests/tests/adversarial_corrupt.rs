//! Adversarial: stored rows corrupted under a running server (a disk fault, a bad manual fix).
//! A request that needs the broken row answers 500 `{"error":"internal"}` (never 400, which
//! would tell a phone its own data is wrong), and everything else still syncs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod adversarial_support;
mod common;

use adversarial_support::*;
use common::*;
use fieldsync_core::model::Value;
use fieldsync_tests::deployment::skip_unless_sqlite;
use fieldsync_tests::phone::PhoneError;
use serde_json::{json, Value as Json};
use uuid::Uuid;

/// Why this file runs on SQLite only.
const SQLITE_FILE: &str = "it writes into the SQLite database file of the one server";

/// Overwrites one column of one row in the running server's database.
fn corrupt(env: &Env, sql: &str, id: Uuid, garbage: &dyn rusqlite::ToSql) {
    let conn = rusqlite::Connection::open(env.server.database_path()).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .unwrap();
    let n = conn
        .execute(sql, rusqlite::params![garbage, id.as_bytes()])
        .unwrap();
    assert_eq!(n, 1, "{sql}");
}

fn assert_internal(status: u16, body: &str, what: &str) {
    assert_eq!(status, 500, "{what}: {body}");
    let json: Json = serde_json::from_str(body).unwrap_or_else(|_| panic!("{what}: {body}"));
    assert_eq!(json["error"], "internal", "{what}: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_record_answers_500_internal_and_other_records_still_sync() {
    if skip_unless_sqlite(SQLITE_FILE) {
        return;
    }
    let env = Env::start().await;
    let (mut a, mut b, sup) = two_collectors_and_supervisor(&env).await;
    let broken = household(&mut a, "Y Blơ");
    let sound = household(&mut a, "A Hyơk");
    a.sync(&env.http, env.addr(), 10).await.unwrap();
    b.sync(&env.http, env.addr(), 10).await.unwrap();

    corrupt(
        &env,
        "UPDATE records SET snapshot = ?1 WHERE id = ?2",
        broken,
        &b"\x85\x6f\x4a\x83garbage, not a document".to_vec(),
    );

    // The phone's edit of the broken record: 500 internal, nothing stored, retried later.
    a.store
        .set_field(broken, "village", &"Làng Le".into())
        .unwrap();
    let before = env.stats().await;
    let err = a.sync(&env.http, env.addr(), 3).await.unwrap_err();
    match err {
        PhoneError::Status { status, body } => assert_internal(status, &body, "sync"),
        other => panic!("expected a 500, got {other}"),
    }
    assert_eq!(env.stats().await, before);
    assert_eq!(a.store.unacked_count().unwrap(), 1, "kept to retry");

    // A supervisor's edit of it: the same.
    let (status, body) = call_text(
        &env,
        "POST",
        &format!("/v1/records/{broken}/edits"),
        Some(&sup),
        &json!({"edit": "set_field", "field": "village", "value": "Thôn 2"}),
    )
    .await;
    assert_internal(status, &body, "supervisor edit");

    // Other records still sync: another phone edits and pulls, supervisors read and edit.
    b.store
        .set_field(sound, "village", &"Thôn Đăk Mế".into())
        .unwrap();
    let report = b.sync(&env.http, env.addr(), 10).await.unwrap();
    assert_eq!((report.acked, report.rejected), (1, 0));
    let (status, body) = call_text(
        &env,
        "POST",
        &format!("/v1/records/{sound}/edits"),
        Some(&sup),
        &json!({"edit": "review", "state": "approved", "comment": null}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let mut fresh = env.phone("b", Default::default()).await;
    fresh.sync(&env.http, env.addr(), 10).await.unwrap();
    assert_eq!(fresh.store.count(&Default::default()).unwrap(), 2);
    assert_eq!(
        fresh.store.get(sound).unwrap().fields["village"],
        Value::from("Thôn Đăk Mế")
    );
    let (status, merged) = merged_view(&env, &sup, sound).await;
    assert_eq!((status, merged), (200, phone_view(&fresh, sound)));
    let (status, _) = merged_view(&env, &sup, broken).await;
    assert_eq!(
        status, 200,
        "the merged view of the broken record is still readable"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_merged_row_or_change_answers_500_or_is_set_aside() {
    if skip_unless_sqlite(SQLITE_FILE) {
        return;
    }
    let env = Env::start().await;
    env.user("a", &[NGOC_LINH], false).await;
    let sup = supervisor(&env, "sup", &[NGOC_LINH], false).await;
    let mut a = env.phone("a", Default::default()).await;
    let one = household(&mut a, "Y Blơ");
    let two = household(&mut a, "A Hyơk");
    a.store.set_field(two, "village", &"Thôn 2".into()).unwrap();
    a.sync(&env.http, env.addr(), 10).await.unwrap();

    // The supervisors' view of one record no longer parses.
    corrupt(
        &env,
        "UPDATE merged SET view = ?1 WHERE id = ?2",
        one,
        &"{not json",
    );
    let (status, body) = call_text(
        &env,
        "GET",
        &format!("/v1/records/{one}"),
        Some(&sup),
        &Json::Null,
    )
    .await;
    assert_internal(status, &body, "read");
    // The list reads only the summary columns, which are intact: it still answers.
    let (status, body) = call_text(&env, "GET", "/v1/records", Some(&sup), &Json::Null).await;
    assert_eq!(status, 200, "list: {body}");
    let (status, merged) = merged_view(&env, &sup, two).await;
    assert_eq!((status, merged), (200, phone_view(&a, two)));

    // A stored change's bytes are garbage: a phone pulling it sets it aside and takes the rest.
    let edit_hash = hash_of(&record_changes(&a.store, two)[1]);
    let conn = rusqlite::Connection::open(env.server.database_path()).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .unwrap();
    let n = conn
        .execute(
            "UPDATE changes SET bytes = ?1 WHERE hash = ?2",
            rusqlite::params![b"not an automerge change".to_vec(), &edit_hash[..]],
        )
        .unwrap();
    assert_eq!(n, 1);
    env.user("b", &[NGOC_LINH], false).await;
    let mut b = env.phone("b", Default::default()).await;
    b.sync(&env.http, env.addr(), 10).await.unwrap();
    assert_eq!(b.store.set_aside().unwrap().len(), 1);
    assert_eq!(b.store.count(&Default::default()).unwrap(), 2);
    assert_eq!(b.store.get(one).unwrap(), a.store.get(one).unwrap());
}
