//! Bad input over HTTPS: every malformed request gets a 4xx with a JSON error, the server keeps
//! running, and its data is unchanged.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod common;

use common::*;
use fieldsync_core::generator::Rng;
use fieldsync_core::model::RecordType;
use fieldsync_core::protocol::{compress, ChangeEntry, SyncRequest, PROTOCOL_VERSION, SYNC_PATH};
use fieldsync_tests::phone::Phone;

async fn post(env: &Env, token: &str, version: &str, body: Vec<u8>) -> (u16, serde_json::Value) {
    let headers = [
        ("authorization", format!("Bearer {token}")),
        ("x-fieldsync-protocol", version.to_owned()),
    ];
    let response = env
        .http
        .request(env.addr(), "POST", SYNC_PATH, &headers, body)
        .await
        .unwrap();
    let json = serde_json::from_slice(&response.body).unwrap_or(serde_json::Value::Null);
    (response.status, json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_json_4xx_and_change_nothing() {
    let env = Env::start().await;
    env.user("a", &[NGOC_LINH], false).await;
    let mut phone: Phone = env.phone("a", Default::default()).await;
    let fields = minimal_household(NGOC_LINH, "Y Blơ");
    phone.store.create(RecordType::Household, &fields).unwrap();
    phone.sync(&env.http, env.addr(), 10).await.unwrap();
    let before = env.stats().await;
    let token = phone.token.clone();
    let v = PROTOCOL_VERSION.to_string();

    let valid = SyncRequest {
        cursor: vec![],
        max_pull_bytes: 65536,
        push: vec![],
    }
    .encode();
    let garbage_change = SyncRequest {
        cursor: vec![],
        max_pull_bytes: 65536,
        push: vec![ChangeEntry {
            record_id: uuid::Uuid::now_v7(),
            bytes: vec![0x85, 0x6f, 0x4a, 0x83, 9, 9, 9, 9],
            signature: [0; 64],
        }],
    }
    .encode();
    let mut cases: Vec<(&str, String, Vec<u8>, u16)> = vec![
        ("empty body", v.clone(), vec![], 400),
        ("not gzip", v.clone(), b"hello".to_vec(), 400),
        (
            "truncated gzip",
            v.clone(),
            compress(&valid)[..10].to_vec(),
            400,
        ),
        (
            "truncated message",
            v.clone(),
            compress(&valid[..valid.len() - 3]),
            400,
        ),
        (
            "trailing bytes",
            v.clone(),
            compress(&[valid.clone(), vec![0]].concat()),
            400,
        ),
        (
            "garbage automerge bytes",
            v.clone(),
            compress(&garbage_change),
            400,
        ),
        (
            "bad cursor",
            v.clone(),
            compress(
                &SyncRequest {
                    cursor: vec![200, 1],
                    max_pull_bytes: 1,
                    push: vec![],
                }
                .encode(),
            ),
            400,
        ),
        (
            "unknown protocol header",
            "99".into(),
            compress(&valid),
            426,
        ),
        (
            "missing protocol header",
            String::new(),
            compress(&valid),
            400,
        ),
        (
            "gzip bomb",
            v.clone(),
            compress(&vec![0u8; 40 * 1024 * 1024]),
            413,
        ),
    ];
    let mut other_version = valid.clone();
    other_version[4] = PROTOCOL_VERSION + 1;
    cases.push((
        "newer message version in body",
        v.clone(),
        compress(&other_version),
        426,
    ));
    let mut rng = Rng::new(7);
    for i in 0..20 {
        let len = rng.below(300);
        let random: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        let body = if i % 2 == 0 {
            random
        } else {
            compress(&random)
        };
        cases.push(("random bytes", v.clone(), body, 400));
    }
    for (name, version, body, expected) in cases {
        let (status, json) = if version.is_empty() {
            let headers = [("authorization", format!("Bearer {token}"))];
            let r = env
                .http
                .request(env.addr(), "POST", SYNC_PATH, &headers, body)
                .await
                .unwrap();
            (
                r.status,
                serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null),
            )
        } else {
            post(&env, &token, &version, body).await
        };
        assert_eq!(status, expected, "{name}: {json}");
        assert!(
            json["error"].is_string() && json["message"].is_string(),
            "{name}: JSON error body, got {json}"
        );
    }
    // An oversized body is refused from its Content-Length, before it is sent (as a client
    // that sends `Expect: 100-continue` sees it).
    let headers = [
        ("authorization", format!("Bearer {token}")),
        ("x-fieldsync-protocol", v.clone()),
        ("content-length", (5 * 1024 * 1024).to_string()),
        ("expect", "100-continue".to_owned()),
    ];
    let r = env
        .http
        .request(env.addr(), "POST", SYNC_PATH, &headers, Vec::new())
        .await
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
    assert_eq!(
        (r.status, json["error"].as_str()),
        (413, Some("payload_too_large")),
        "{json}"
    );

    let (status, json) = post(&env, "not-a-token", &v, compress(&valid)).await;
    assert_eq!(
        (status, json["error"].as_str()),
        (401, Some("unauthorized"))
    );

    assert_eq!(env.stats().await, before, "nothing changed");
    phone.sync(&env.http, env.addr(), 10).await.unwrap();
    assert_eq!(
        phone.store.count(&Default::default()).unwrap(),
        1,
        "the server still serves"
    );
}
