//! The phone API as the app uses it, on the host, against the server's real storage and sync
//! logic through an in-process transport (the Kotlin tests do the same over real HTTPS).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

use fieldsync_android::*;
use fieldsync_core::protocol::{compress, decode_request_body};
use fieldsync_server::accounts;
use fieldsync_server::storage::prelude::*;
use fieldsync_server::storage::sqlite::SqliteStorage;
use fieldsync_server::storage::{NewUser, Role};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const COMMUNE: &str = "62.610.01";

/// Routes requests to the server's storage the way the HTTP layer does.
struct InProcess {
    storage: Arc<SqliteStorage>,
    calls: AtomicUsize,
    /// Called with the call number before answering; returning false drops the answer, as a
    /// connection cut (or the app being killed) after the server did its work.
    on_call: Mutex<Box<dyn FnMut(usize) -> bool + Send>>,
}

impl InProcess {
    fn new(storage: Arc<SqliteStorage>) -> Arc<InProcess> {
        Arc::new(InProcess {
            storage,
            calls: AtomicUsize::new(0),
            on_call: Mutex::new(Box::new(|_| true)),
        })
    }
}

impl HttpTransport for InProcess {
    fn post(
        &self,
        url: String,
        headers: Vec<Header>,
        body: Vec<u8>,
    ) -> Result<HttpResponse, TransportError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        let answer = if url.ends_with("/v1/enrol") {
            let req: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let hex = |field: &str| -> Vec<u8> {
                let text = req[field].as_str().unwrap();
                (0..text.len() / 2)
                    .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap())
                    .collect()
            };
            let username = req["username"].as_str().unwrap();
            let shown = fieldsync_core::protocol::Enrolment {
                public_key: hex("public_key").try_into().unwrap(),
                proof: hex("proof").try_into().unwrap(),
                legacy_actor_keys: Vec::new(),
                legacy_actors: Vec::new(),
            };
            let keys = fieldsync_server::storage::DeviceKeys::verified(&shown, username).unwrap();
            match accounts::enrol(self.storage.as_ref(), username, req["password"].as_str().unwrap(), "test", Some(&keys)) {
                Ok((device, token, user)) => HttpResponse {
                    status: 200,
                    body: serde_json::json!({"device_id": device.id.to_string(), "token": token, "username": user.username, "role": "collector", "areas": user.areas}).to_string().into_bytes(),
                },
                Err(_) => HttpResponse { status: 401, body: br#"{"error":"bad_credentials","message":"wrong username or password"}"#.to_vec() },
            }
        } else {
            let token = headers
                .iter()
                .find(|h| h.name == "authorization")
                .unwrap()
                .value
                .trim_start_matches("Bearer ")
                .to_owned();
            match accounts::authorise(self.storage.as_ref(), &token).unwrap() {
                None => HttpResponse {
                    status: 401,
                    body: br#"{"error":"unauthorized","message":"revoked"}"#.to_vec(),
                },
                Some(caller) => {
                    let request = decode_request_body(&body).unwrap();
                    HttpResponse {
                        status: 200,
                        body: compress(
                            &fieldsync_server::sync::exchange_as(&*self.storage, &caller, &request)
                                .unwrap()
                                .encode(),
                        ),
                    }
                }
            }
        };
        if (self.on_call.lock().unwrap())(n) {
            Ok(answer)
        } else {
            Err(TransportError::Failed {
                reason: "connection lost".into(),
            })
        }
    }
}

fn server() -> (tempfile::TempDir, Arc<SqliteStorage>) {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(SqliteStorage::open(dir.path().join("server.sqlite")).unwrap());
    for name in ["lan", "hoa"] {
        accounts::create_user(
            storage.as_ref(),
            accounts::Authority::Operator,
            &NewUser {
                username: name.into(),
                password: "mật khẩu thử 123".into(),
                role: Role::Collector,
                sensitive_access: false,
                areas: vec![COMMUNE.into()],
                can_grant_sensitive: false,
                full_name: None,
                phone: None,
            },
        )
        .unwrap();
    }
    (dir, storage)
}

fn text(name: &str, value: &str) -> Field {
    Field {
        name: name.into(),
        value: FieldValue::Text {
            value: value.into(),
        },
    }
}

fn household() -> Vec<Field> {
    vec![
        text("commune", COMMUNE),
        text("head_name", "Y Blơ"),
        text("ethnicity", "14"),
        text("poverty", "poor"),
    ]
}

#[test]
fn two_devices_edit_offline_and_see_the_merge_and_the_conflict() {
    let (dir, storage) = server();
    let transport = InProcess::new(storage.clone());
    let a = FieldStore::open(dir.path().join("a.sqlite").display().to_string()).unwrap();
    let b = FieldStore::open(dir.path().join("b.sqlite").display().to_string()).unwrap();
    a.enrol(
        transport.clone(),
        "https://x".into(),
        "lan".into(),
        "mật khẩu thử 123".into(),
        "A".into(),
    )
    .unwrap();
    b.enrol(
        transport.clone(),
        "https://x".into(),
        "hoa".into(),
        "mật khẩu thử 123".into(),
        "B".into(),
    )
    .unwrap();

    let h = a.create_record(RecordKind::Household, household()).unwrap();
    let p = a
        .create_record(
            RecordKind::Person,
            vec![
                text("commune", COMMUNE),
                text("household_id", &h),
                text("full_name", "Y Hơ"),
                text("sex", "female"),
                text("birth", "1990"),
                text("ethnicity", "14"),
            ],
        )
        .unwrap();
    a.sync(transport.clone()).unwrap();
    b.sync(transport.clone()).unwrap();
    a.set_field(p.clone(), text("full_name", "Y Hơ Nhiên"))
        .unwrap();
    a.set_field(p.clone(), text("phone", "0912345678")).unwrap();
    b.set_field(p.clone(), text("full_name", "Y Hờ")).unwrap();
    a.sync(transport.clone()).unwrap();
    b.sync(transport.clone()).unwrap();
    a.sync(transport.clone()).unwrap();
    let (ra, rb) = (
        a.get_record(p.clone()).unwrap(),
        b.get_record(p.clone()).unwrap(),
    );
    assert_eq!(ra, rb);
    assert!(ra.fields.contains(&text("phone", "0912345678")));
    assert_eq!(a.conflicts(p.clone()).unwrap().len(), 1);
    assert_eq!(ra.conflicts[0].field, "full_name");
    assert_eq!(ra.review, Review::Pending);
    let found = b
        .list_records(RecordFilter {
            search: Some("y ho".into()),
            ..Default::default()
        })
        .unwrap();
    assert!(found.iter().any(|r| r.id == p));
}

#[test]
fn errors_reach_the_app_as_the_right_kind() {
    let (dir, storage) = server();
    let transport = InProcess::new(storage.clone());
    let a = FieldStore::open(dir.path().join("a.sqlite").display().to_string()).unwrap();
    assert!(
        matches!(
            a.sync(transport.clone()),
            Err(FieldsyncError::Unauthorized { .. })
        ),
        "not enrolled"
    );
    assert!(matches!(
        a.enrol(
            transport.clone(),
            "https://x".into(),
            "lan".into(),
            "sai".into(),
            "A".into()
        ),
        Err(FieldsyncError::Unauthorized { .. })
    ));
    a.enrol(
        transport.clone(),
        "https://x".into(),
        "lan".into(),
        "mật khẩu thử 123".into(),
        "A".into(),
    )
    .unwrap();
    let mut bad = household();
    bad[3] = text("poverty", "rich");
    bad.push(text("colour", "đỏ"));
    match a.create_record(RecordKind::Household, bad) {
        Err(FieldsyncError::Validation { mut fields, reason }) => {
            fields.sort();
            assert_eq!(fields, vec!["colour", "poverty"]);
            assert!(
                !reason.contains("đỏ"),
                "no entered values in messages: {reason}"
            );
        }
        other => panic!("expected validation, got {other:?}"),
    }
    for d in storage.list_devices().unwrap() {
        storage.revoke_device(d.id).unwrap();
    }
    a.create_record(RecordKind::Household, household()).unwrap();
    assert!(matches!(
        a.sync(transport.clone()),
        Err(FieldsyncError::Unauthorized { .. })
    ));
    assert_eq!(
        a.pending_changes().unwrap(),
        1,
        "kept for when the device is enrolled again"
    );
}

#[test]
fn an_app_killed_mid_sync_resumes_with_nothing_lost() {
    let (dir, storage) = server();
    let transport = InProcess::new(storage.clone());
    let path = dir.path().join("a.sqlite").display().to_string();
    let a = FieldStore::open(path.clone()).unwrap();
    a.enrol(
        transport.clone(),
        "https://x".into(),
        "lan".into(),
        "mật khẩu thử 123".into(),
        "A".into(),
    )
    .unwrap();
    for i in 0..1500 {
        let mut f = household();
        f[1] = text("head_name", &format!("Y Blơ {i}"));
        a.create_record(RecordKind::Household, f).unwrap();
    }
    // The third exchange reaches the server, then the app dies before reading the answer.
    let a = Arc::new(a);
    let dying = a.clone();
    *transport.on_call.lock().unwrap() = Box::new(move |n| {
        if n == 3 {
            dying.close_store();
            return false;
        }
        true
    });
    assert!(a.sync(transport.clone()).is_err());
    assert!(
        matches!(a.pending_changes(), Err(FieldsyncError::Other { .. })),
        "closed"
    );
    let stored_at_kill = storage.stats().unwrap().changes;
    assert!(
        stored_at_kill > 0 && stored_at_kill < 1500,
        "killed part way: {stored_at_kill}"
    );

    *transport.on_call.lock().unwrap() = Box::new(|_| true);
    let reopened = FieldStore::open(path).unwrap();
    assert!(reopened.pending_changes().unwrap() > 0);
    let summary = reopened.sync(transport.clone()).unwrap();
    assert_eq!(summary.pending, 0);
    let stats = storage.stats().unwrap();
    assert_eq!(
        (stats.changes, stats.records),
        (1500, 1500),
        "every change stored exactly once"
    );
}
