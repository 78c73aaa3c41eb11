//! Abuse: small inputs with large effects. A search of 5,000 words answers like one of its first
//! words; a supervisor edit writing a NUL byte is a 400 naming the field; and a device name
//! with line breaks cannot forge lines in the operator's device listing.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod abuse_support;
mod common;

use abuse_support::*;
use common::*;
use fieldsync_core::model::RecordType;
use fieldsync_tests::phone::{call_json, enrol};
use serde_json::{json, Value as Json};
use std::time::Duration;
use uuid::Uuid;

/// A request with a JSON body (or none) and a token: the status and the JSON answer.
async fn call(env: &Env, method: &str, path: &str, token: &str, body: &Json) -> (u16, Json) {
    let mut headers = vec![("authorization", format!("Bearer {token}"))];
    let body = if body.is_null() {
        Vec::new()
    } else {
        headers.push(("content-type", "application/json".to_owned()));
        body.to_string().into_bytes()
    };
    let r = env
        .http
        .clone()
        .with_timeout(Duration::from_secs(60))
        .request(env.addr(), method, path, &headers, body)
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    (
        r.status,
        serde_json::from_slice(&r.body).unwrap_or(Json::Null),
    )
}

/// The record ids of a list answer (a bare array, or a page with `records`).
fn ids(list: &Json) -> Vec<Uuid> {
    list.as_array()
        .or_else(|| list["records"].as_array())
        .unwrap_or_else(|| panic!("not a record list: {list}"))
        .iter()
        .map(|r| Uuid::parse_str(r["id"].as_str().unwrap()).unwrap())
        .collect()
}

async fn supervisor(env: &Env) -> String {
    account(env, "sup", "supervisor", &[NGOC_LINH], false).await;
    enrol(&env.http, env.addr(), "sup", PASSWORD).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_of_5000_words_answers_like_its_first_words() {
    let mut env = start_env(&[]).await;
    let mut bystanders = Bystanders::new(&env).await;
    let sup = supervisor(&env).await;
    let target = bystanders.made[0].0;
    let other = {
        let id = bystanders
            .writer
            .store
            .create(
                RecordType::Household,
                &minimal_household(NGOC_LINH, "A Hyơk"),
            )
            .unwrap();
        bystanders.made.push((id, "A Hyơk".to_owned()));
        bystanders.edit_and_sync(&env, "second").await;
        id
    };

    // Only the first words count: the head name, then 4,998 words that match everything.
    let words: Vec<String> = ["Blơ", "before"]
        .iter()
        .map(|w| (*w).to_owned())
        .chain((0..4_998).map(|i| ["y", "o", "e"][i % 3].to_owned()))
        .collect();
    assert_eq!(words.len(), 5_000);
    let path = format!("/v1/records?q={}", words.join("+"));
    assert!(path.len() > 10_000);
    let (status, found) = call(&env, "GET", &path, &sup, &Json::Null).await;
    assert_eq!(status, 200, "{found}");
    let found = ids(&found);
    assert!(found.contains(&target), "{found:?}");
    assert!(!found.contains(&other), "{found:?}");

    // 5,000 words that match nothing: an empty list, quickly enough to be asked twice.
    let path = format!("/v1/records?q={}", vec!["zzzq"; 5_000].join("+"));
    for _ in 0..2 {
        let (status, found) = call(&env, "GET", &path, &sup, &Json::Null).await;
        assert_eq!(status, 200);
        assert!(ids(&found).is_empty(), "{found}");
    }
    bystanders.edit_and_sync(&env, "after").await;
    assert_up(&mut env).await;
    bystanders.verify(&env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_edit_with_a_nul_byte_is_a_400_naming_the_field() {
    let mut env = start_env(&[]).await;
    let mut bystanders = Bystanders::new(&env).await;
    let sup = supervisor(&env).await;
    let (id, _) = bystanders.made[0].clone();
    let before = stats(&env).await;
    for (field, value) in [
        ("village", "Thôn\u{0}Một"),
        ("head_name", "Y\u{0}"),
        ("village", "Thôn\u{1b}[31mđỏ"),
    ] {
        let (status, body) = call(
            &env,
            "POST",
            &format!("/v1/records/{id}/edits"),
            &sup,
            &json!({"edit": "set_field", "field": field, "value": value}),
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("bad_request")),
            "{field}: {body}"
        );
        assert!(
            body["message"].as_str().unwrap().contains(field),
            "the message names {field}: {body}"
        );
    }
    assert_eq!(stats(&env).await, before, "nothing written");
    // The same edit without the NUL is taken and reaches the phones.
    let (status, body) = call(
        &env,
        "POST",
        &format!("/v1/records/{id}/edits"),
        &sup,
        &json!({"edit": "set_field", "field": "village", "value": "Thôn Một"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    bystanders.edit_and_sync(&env, "after").await;
    bystanders.verify(&env).await;
    assert_eq!(
        bystanders.witness.store.get(id).unwrap().fields["village"],
        "Thôn Một".into()
    );
    assert_up(&mut env).await;
}

/// The review comment of a supervisor's edit is text like a field: a NUL byte (or a comment
/// over its 2,000-character cap) is a 400 that says what is wrong with the comment, not a
/// claim that the record would leave the supervisor's areas.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_comment_with_a_nul_byte_is_a_400_naming_the_comment() {
    let mut env = start_env(&[]).await;
    let mut bystanders = Bystanders::new(&env).await;
    let sup = supervisor(&env).await;
    let (id, _) = bystanders.made[0].clone();
    let before = stats(&env).await;
    let long = "x".repeat(2_001);
    for comment in ["Sửa lại\u{0}tên", long.as_str()] {
        let (status, body) = call(
            &env,
            "POST",
            &format!("/v1/records/{id}/edits"),
            &sup,
            &json!({"edit": "review", "state": "returned", "comment": comment}),
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("bad_request")),
            "{body}"
        );
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains("comment") && !message.contains("areas"),
            "the message names the comment: {message:?}"
        );
    }
    assert_eq!(stats(&env).await, before, "nothing written");
    bystanders.edit_and_sync(&env, "after").await;
    assert_up(&mut env).await;
    bystanders.verify(&env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_name_with_line_breaks_stays_on_its_line_in_the_listing() {
    let env = start_env(&[]).await;
    account(&env, "lan", "collector", &[NGOC_LINH], false).await;
    let forged = format!(
        "Lan's phone\n{}\tadmin\tforged\tactive\r\nsecond line\u{0}\u{1b}[2K",
        Uuid::new_v4()
    );
    let enrolled = call_json(
        &env.http,
        env.addr(),
        "POST",
        "/v1/enrol",
        None,
        &json!({"username": "lan", "password": PASSWORD, "device_name": forged}),
    )
    .await
    .unwrap();
    let device = enrolled["device_id"].as_str().unwrap().to_owned();
    // The admin's device, lan's device, and one more of lan with an ordinary name.
    let plain = call_json(
        &env.http,
        env.addr(),
        "POST",
        "/v1/enrol",
        None,
        &json!({"username": "lan", "password": PASSWORD, "device_name": "plain"}),
    )
    .await
    .unwrap();

    let output = std::process::Command::new(fieldsync_tests::server::binary().unwrap())
        .args(["admin", "devices"])
        .args(env.data_args())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "one line per device:\n{text}");
    assert!(!text.contains('\r') && !text.contains('\u{0}') && !text.contains('\u{1b}'));
    for line in &lines {
        let first = line.split('\t').next().unwrap();
        assert!(
            Uuid::parse_str(first).is_ok(),
            "a device id starts {line:?}"
        );
    }
    let line = lines
        .iter()
        .find(|l| l.starts_with(&device))
        .unwrap_or_else(|| panic!("lan's device is listed:\n{text}"));
    assert!(line.contains("Lan's phone"), "{line}");
    let plain_line = lines
        .iter()
        .find(|l| l.starts_with(plain["device_id"].as_str().unwrap()))
        .unwrap_or_else(|| panic!("the plain device is listed:\n{text}"));
    // No column forged either: every line has the plain device's columns.
    let columns = plain_line.split('\t').count();
    for line in &lines {
        assert_eq!(line.split('\t').count(), columns, "{line:?}");
    }
}

/// Unicode's own line breaks (U+2028, U+2029), which tools such as Python's `splitlines` and
/// JavaScript split on, are not control characters: they must not reach the listing raw
/// either, or a device name forges a line there too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_name_with_unicode_line_separators_stays_on_its_line() {
    let env = start_env(&[]).await;
    account(&env, "lan", "collector", &[NGOC_LINH], false).await;
    let forged = format!("Lan's phone\u{2028}{}\u{2029}forged", Uuid::new_v4());
    call_json(
        &env.http,
        env.addr(),
        "POST",
        "/v1/enrol",
        None,
        &json!({"username": "lan", "password": PASSWORD, "device_name": forged}),
    )
    .await
    .unwrap();
    let output = std::process::Command::new(fieldsync_tests::server::binary().unwrap())
        .args(["admin", "devices"])
        .args(env.data_args())
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("Lan's phone"), "{text}");
    assert!(
        !text.contains(['\u{2028}', '\u{2029}']),
        "a Unicode line separator in the listing:\n{text:?}"
    );
}
