//! Adversarial: accounts. A district admin manages only accounts and devices within its own
//! areas and cannot hand out sensitive access; weak passwords are refused; a disabled account
//! loses its phones at once; a user changes their own password only knowing the old one; and
//! the files that hold victims' data and the TLS key are the server user's alone.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod adversarial_support;
mod common;

use adversarial_support::*;
use common::*;
use fieldsync_core::model::RecordType;
use fieldsync_tests::phone::{enrol, PhoneError};
use fieldsync_tests::server::{binary, ServerProcess};
use serde_json::{json, Value as Json};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

const DISTRICT: &str = "62.610";
const OTHER_PASSWORD: &str = "một mật khẩu khác";

fn new_user(name: &str, areas: &[&str]) -> Json {
    json!({ "username": name, "password": PASSWORD, "role": "collector", "areas": areas })
}

async fn device_of(env: &Env, token: &str, username: &str) -> Option<String> {
    let (status, devices) = call(env, "GET", "/v1/admin/devices", Some(token), &Json::Null).await;
    assert_eq!(status, 200, "{devices}");
    devices
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["username"] == username)
        .map(|d| d["id"].as_str().unwrap().to_owned())
}

async fn user_entry(env: &Env, token: &str, username: &str) -> Option<Json> {
    let (status, users) = call(env, "GET", "/v1/admin/users", Some(token), &Json::Null).await;
    assert_eq!(status, 200, "{users}");
    users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == username)
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_district_admin_manages_only_its_own_areas_and_grants_no_sensitive_access() {
    let env = Env::start().await;
    let (status, body) = call(
        &env,
        "POST",
        "/v1/admin/users",
        Some(&env.admin),
        &json!({ "username": "qt.huyen", "password": PASSWORD, "role": "admin",
                 "areas": [DISTRICT], "can_grant_sensitive": false }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let district = enrol(&env.http, env.addr(), "qt.huyen", PASSWORD)
        .await
        .unwrap();
    env.user("inside", &[NGOC_LINH], false).await;
    env.user("outside", &[MO_RAI], false).await;
    let mut inside = env.phone("inside", Default::default()).await;
    let mut outside = env.phone("outside", Default::default()).await;
    let outside_before = user_entry(&env, &env.admin, "outside").await.unwrap();

    let forbidden = |status: u16, body: &Json, what: &str| {
        assert_eq!(status, 403, "{what}: {body}");
        assert_eq!(body["error"], "forbidden", "{what}: {body}");
    };
    // Outside its areas: create, update, move in, reset, disable.
    let attempts: Vec<(&str, String, Json)> = vec![
        (
            "POST",
            "/v1/admin/users".into(),
            new_user("new.outside", &[MO_RAI]),
        ),
        (
            "POST",
            "/v1/admin/users".into(),
            new_user("new.province", &["62"]),
        ),
        (
            "POST",
            "/v1/admin/users".into(),
            new_user("new.all", &["*"]),
        ),
        (
            "POST",
            "/v1/admin/users".into(),
            new_user("new.mixed", &[NGOC_LINH, MO_RAI]),
        ),
        (
            "PATCH",
            "/v1/admin/users/outside".into(),
            json!({"areas": [NGOC_LINH]}),
        ),
        (
            "PUT",
            "/v1/admin/users/outside/areas".into(),
            json!({"areas": [NGOC_LINH]}),
        ),
        (
            "PATCH",
            "/v1/admin/users/inside".into(),
            json!({"areas": [MO_RAI]}),
        ),
        (
            "POST",
            "/v1/admin/users/outside/password".into(),
            json!({"password": OTHER_PASSWORD}),
        ),
        (
            "PATCH",
            "/v1/admin/users/outside".into(),
            json!({"disabled": true}),
        ),
        (
            "PATCH",
            "/v1/admin/users/admin".into(),
            json!({"disabled": true}),
        ),
        (
            "POST",
            "/v1/admin/users/admin/password".into(),
            json!({"password": OTHER_PASSWORD}),
        ),
        // Sensitive access, without the permission to grant it.
        (
            "POST",
            "/v1/admin/users".into(),
            json!({ "username": "new.sensitive", "password": PASSWORD, "role": "collector",
                    "areas": [NGOC_LINH], "sensitive_access": true }),
        ),
        (
            "POST",
            "/v1/admin/users".into(),
            json!({ "username": "new.granter", "password": PASSWORD, "role": "admin",
                    "areas": [NGOC_LINH], "can_grant_sensitive": true }),
        ),
        (
            "PATCH",
            "/v1/admin/users/inside".into(),
            json!({"sensitive_access": true}),
        ),
        (
            "PATCH",
            "/v1/admin/users/qt.huyen".into(),
            json!({"can_grant_sensitive": true}),
        ),
    ];
    for (method, path, body) in &attempts {
        let (status, answer) = call(&env, method, path, Some(&district), body).await;
        forbidden(status, &answer, &format!("{method} {path} {body}"));
    }
    for name in [
        "new.outside",
        "new.province",
        "new.all",
        "new.mixed",
        "new.sensitive",
    ] {
        assert!(user_entry(&env, &env.admin, name).await.is_none(), "{name}");
    }
    assert_eq!(
        user_entry(&env, &env.admin, "outside").await.unwrap(),
        outside_before
    );
    let inside_entry = user_entry(&env, &env.admin, "inside").await.unwrap();
    assert_eq!(inside_entry["sensitive_access"], false);

    // It does not see the other district's accounts or devices, and cannot revoke them.
    assert!(user_entry(&env, &district, "outside").await.is_none());
    assert!(user_entry(&env, &district, "admin").await.is_none());
    assert!(device_of(&env, &district, "outside").await.is_none());
    let outside_device = device_of(&env, &env.admin, "outside").await.unwrap();
    let (status, body) = call(
        &env,
        "POST",
        &format!("/v1/admin/devices/{outside_device}/revoke"),
        Some(&district),
        &Json::Null,
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    outside.sync(&env.http, env.addr(), 10).await.unwrap();
    enrol(&env.http, env.addr(), "outside", PASSWORD)
        .await
        .expect("the outside password is unchanged");

    // Within its areas it does all of it.
    let (status, body) = call(
        &env,
        "POST",
        "/v1/admin/users",
        Some(&district),
        &new_user("new.inside", &[NGOC_LINH]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    for (method, path, body) in [
        (
            "PATCH",
            "/v1/admin/users/new.inside",
            json!({"areas": [NGOC_LINH]}),
        ),
        (
            "POST",
            "/v1/admin/users/new.inside/password",
            json!({"password": OTHER_PASSWORD}),
        ),
        (
            "PATCH",
            "/v1/admin/users/new.inside",
            json!({"sensitive_access": false}),
        ),
    ] {
        let (status, answer) = call(&env, method, path, Some(&district), &body).await;
        assert_eq!(status, 200, "{method} {path}: {answer}");
    }
    enrol(&env.http, env.addr(), "new.inside", OTHER_PASSWORD)
        .await
        .unwrap();
    assert!(user_entry(&env, &district, "inside").await.is_some());
    let inside_device = device_of(&env, &district, "inside").await.unwrap();
    let (status, body) = call(
        &env,
        "POST",
        &format!("/v1/admin/devices/{inside_device}/revoke"),
        Some(&district),
        &Json::Null,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let err = inside.sync(&env.http, env.addr(), 10).await.unwrap_err();
    assert!(
        matches!(err, PhoneError::Status { status: 401, .. }),
        "{err}"
    );
    let (status, body) = call(
        &env,
        "PATCH",
        "/v1/admin/users/inside",
        Some(&district),
        &json!({"disabled": true}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["disabled"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weak_passwords_are_refused_disabling_locks_out_and_own_password_needs_the_old_one() {
    let env = Env::start().await;
    for (name, password) in [
        ("lan", "short"),
        ("lan", "password123"),
        ("lan", "PASSWORD123"),
        ("lan", "1234567890"),
        ("lan.thi.nguyen", "lan.thi.nguyen"),
    ] {
        let (status, body) = call(
            &env,
            "POST",
            "/v1/admin/users",
            Some(&env.admin),
            &json!({ "username": name, "password": password, "role": "collector",
                     "areas": [NGOC_LINH] }),
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("bad_request")),
            "{password}: {body}"
        );
    }
    env.user("lan", &[NGOC_LINH], false).await;
    for password in ["short", "password123"] {
        let (status, body) = call(
            &env,
            "POST",
            "/v1/admin/users/lan/password",
            Some(&env.admin),
            &json!({ "password": password }),
        )
        .await;
        assert_eq!(status, 400, "{password}: {body}");
    }
    let mut phone = env.phone("lan", Default::default()).await;

    // Changing one's own password: the old one is required, the policy applies.
    for (old, new, expected) in [
        ("not the password", OTHER_PASSWORD, 401),
        (PASSWORD, "short", 400),
        (PASSWORD, "password123", 400),
    ] {
        let (status, body) = call(
            &env,
            "POST",
            "/v1/account/password",
            Some(&phone.token),
            &json!({ "old_password": old, "new_password": new }),
        )
        .await;
        assert_eq!(status, expected, "{old} -> {new}: {body}");
    }
    let (status, body) = call(
        &env,
        "POST",
        "/v1/account/password",
        None,
        &json!({ "old_password": PASSWORD, "new_password": OTHER_PASSWORD }),
    )
    .await;
    assert_eq!(status, 401, "no token: {body}");
    let (status, body) = call(
        &env,
        "POST",
        "/v1/account/password",
        Some(&phone.token),
        &json!({ "old_password": PASSWORD, "new_password": OTHER_PASSWORD }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let err = enrol(&env.http, env.addr(), "lan", PASSWORD)
        .await
        .unwrap_err();
    assert!(
        matches!(err, PhoneError::Status { status: 401, .. }),
        "{err}"
    );
    let second = enrol(&env.http, env.addr(), "lan", OTHER_PASSWORD)
        .await
        .unwrap();
    phone
        .store
        .create(
            RecordType::Household,
            &minimal_household(NGOC_LINH, "Y Blơ"),
        )
        .unwrap();
    phone.sync(&env.http, env.addr(), 10).await.unwrap();

    // Disabling: every device stops at once and no new one can be enrolled.
    let (status, body) = call(
        &env,
        "PATCH",
        "/v1/admin/users/lan",
        Some(&env.admin),
        &json!({ "disabled": true }),
    )
    .await;
    assert_eq!((status, &body["disabled"]), (200, &json!(true)), "{body}");
    phone
        .store
        .create(
            RecordType::Household,
            &minimal_household(NGOC_LINH, "A Hyơk"),
        )
        .unwrap();
    let before = env.stats().await;
    let err = phone.sync(&env.http, env.addr(), 10).await.unwrap_err();
    assert!(
        matches!(err, PhoneError::Status { status: 401, .. }),
        "{err}"
    );
    assert_eq!(env.stats().await, before);
    let (status, _) = call(&env, "GET", "/v1/records", Some(&second), &Json::Null).await;
    assert_eq!(status, 401);
    let err = enrol(&env.http, env.addr(), "lan", OTHER_PASSWORD)
        .await
        .unwrap_err();
    assert!(
        matches!(err, PhoneError::Status { status: 401, .. }),
        "{err}"
    );
    // An admin cannot disable itself.
    let (status, _) = call(
        &env,
        "PATCH",
        "/v1/admin/users/admin",
        Some(&env.admin),
        &json!({ "disabled": true }),
    )
    .await;
    assert_eq!(status, 400);

    // Enabled again, the old devices stay revoked; a new enrolment works.
    let (status, body) = call(
        &env,
        "PATCH",
        "/v1/admin/users/lan",
        Some(&env.admin),
        &json!({ "disabled": false }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let err = phone.sync(&env.http, env.addr(), 10).await.unwrap_err();
    assert!(
        matches!(err, PhoneError::Status { status: 401, .. }),
        "{err}"
    );
    phone.token = fieldsync_tests::phone::enrol_as(
        &env.http,
        env.addr(),
        "lan",
        OTHER_PASSWORD,
        Some(&phone.store),
    )
    .await
    .unwrap();
    let report = phone.sync(&env.http, env.addr(), 10).await.unwrap();
    assert_eq!((report.acked, report.rejected), (1, 0));
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn backup(data_dir: &Path, to: &Path) {
    let out = std::process::Command::new(binary().unwrap())
        .args(["admin", "backup", "--data-dir"])
        .arg(data_dir)
        .arg("--to")
        .arg(to)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "backup: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_directory_database_backups_and_key_are_private() {
    // A server creating its data directory itself.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("fresh").join("data");
    let server = ServerProcess::start(&data, "127.0.0.1:0").unwrap();
    assert_eq!(mode(&data), 0o700, "data dir");
    assert_eq!(mode(&server.database_path()), 0o600, "database");
    assert_eq!(mode(&data.join("dev-key.pem")), 0o600, "TLS key");
    for side in ["fieldsync.sqlite-wal", "fieldsync.sqlite-shm"] {
        if data.join(side).exists() {
            assert_eq!(mode(&data.join(side)), 0o600, "{side}");
        }
    }
    // Backups taken while it runs, in the data directory and elsewhere.
    let inside = data.join("backup.sqlite");
    backup(&data, &inside);
    assert_eq!(mode(&inside), 0o600, "backup in the data dir");
    let outside = dir.path().join("backup-elsewhere.sqlite");
    backup(&data, &outside);
    assert_eq!(mode(&outside), 0o600, "backup elsewhere");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_directory_made_before_the_server_started_is_made_private() {
    // The harness makes the directory (0755 under the usual umask) before starting the server,
    // as an operator or a package would.
    let env = Env::start().await;
    let data = env.server.data_dir.clone();
    assert_eq!(mode(&env.server.database_path()), 0o600, "database");
    assert_eq!(mode(&data.join("dev-key.pem")), 0o600, "TLS key");
    assert_eq!(
        mode(&data),
        0o700,
        "the server leaves an existing data directory readable by others"
    );
}

/// A stolen (not yet revoked) phone's token must not become a way to guess its user's
/// password without the throttling logins have: knowing it, the thief could enrol new devices
/// after the phone is revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_the_old_password_with_a_stolen_token_is_throttled() {
    let env = Env::start().await;
    env.user("lan", &[NGOC_LINH], false).await;
    let stolen = env.phone("lan", Default::default()).await;
    let mut statuses = Vec::new();
    for i in 0..8 {
        let (status, _) = call(
            &env,
            "POST",
            "/v1/account/password",
            Some(&stolen.token),
            &json!({ "old_password": format!("đoán sai lần {i}"), "new_password": OTHER_PASSWORD }),
        )
        .await;
        statuses.push(status);
    }
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&429),
        "eight wrong old passwords in a row, never slowed down: {statuses:?}"
    );
}
