//! Adversarial: accounts. A district admin manages only accounts and devices within its own
//! areas and cannot hand out sensitive access; an admin changes only accounts whose rights it
//! could grant (the reset-and-read attack on a sensitive supervisor fails); weak passwords are
//! refused; a password change or reset ends every other session and device token; failed and
//! throttled logins are audited, coalesced and without passwords; a disabled account loses its
//! phones at once; a user changes their own password only knowing the old one; and the files
//! that hold victims' data and the TLS key are the server user's alone.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod adversarial_support;
mod common;

use adversarial_support::*;
use common::*;
use fieldsync_core::model::RecordType;
use fieldsync_tests::deployment::skip_unless_sqlite;
use fieldsync_tests::phone::{enrol, Phone, PhoneError};
use fieldsync_tests::server::{binary, ServerProcess};
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// Why some tests here run on SQLite only.
const PER_INSTANCE: &str = "the throttles and budgets it measures live in each server \
     instance's memory, so two instances behind a balancer allow up to twice as much \
     (docs/operating.md, limits with several instances)";

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
        ("lan", "          "),
        ("lan", "aaaaaaaaaaaa"),
        ("lan", "abcabcabcabc"),
        ("lan", "abcdefghij"),
        ("lan", "qwertyuiop"),
        ("lan", "matkhau123"),
        ("lan", "Mật khẩu 123"),
        ("lan", "anhyeuem2024"),
        ("lan", "iloveyou123"),
        ("lan.thi.nguyen", "Lan Thị Nguyễn 1990"),
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
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("password: ")),
            "the message says what is wrong with it: {body}"
        );
    }
    env.user("lan", &[NGOC_LINH], false).await;
    for password in [
        "short",
        "password123",
        "          ",
        "ĐĐĐĐĐĐĐĐĐĐ",
        "anhyeuem123",
    ] {
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
        (PASSWORD, "1111111111", 400),
        (PASSWORD, "matkhau2025", 400),
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
    if skip_unless_sqlite("it checks the modes of the SQLite database file and its backups") {
        return;
    }
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
    if skip_unless_sqlite("it checks the modes of the SQLite database file") {
        return;
    }
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
    if skip_unless_sqlite(PER_INSTANCE) {
        return;
    }
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

/// Creates an admin account through the demo admin and enrols it: its token.
async fn admin_account(env: &Env, name: &str, areas: &[&str], can_grant: bool) -> String {
    let (status, body) = call(
        env,
        "POST",
        "/v1/admin/users",
        Some(&env.admin),
        &json!({ "username": name, "password": PASSWORD, "role": "admin", "areas": areas,
                 "can_grant_sensitive": can_grant }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    enrol(&env.http, env.addr(), name, PASSWORD).await.unwrap()
}

/// The reproduced attack, then every admin against every kind of account: an account with
/// sensitive access, or the permission to grant it, is changed only by an admin holding that
/// permission; an account with no areas only by an admin of every area.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_changes_only_accounts_whose_rights_it_could_grant() {
    let env = Env::start().await;
    let district = admin_account(&env, "qt.huyen", &[DISTRICT], false).await;
    let granting = admin_account(&env, "qt.huyen.cap", &[DISTRICT], true).await;
    let province = admin_account(&env, "qt.tinh", &["*"], false).await;
    // A sensitive supervisor of the district's commune, with a support case she reads.
    account(&env, "gs.nhaycam", "supervisor", &[NGOC_LINH], true).await;
    account(&env, "cb.nhaycam", "collector", &[NGOC_LINH], true).await;
    let mut collector = env.phone("cb.nhaycam", Default::default()).await;
    let (_, case) = open_case(&mut collector, "ghi chú kín");
    collector.sync(&env.http, env.addr(), 10).await.unwrap();

    // The attack: the district admin, without the permission, sets her password to log in
    // as her and read the case.
    let stolen = "mật khẩu của kẻ gian";
    let (status, body) = call(
        &env,
        "POST",
        "/v1/admin/users/gs.nhaycam/password",
        Some(&district),
        &json!({ "password": stolen }),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    let err = enrol(&env.http, env.addr(), "gs.nhaycam", stolen)
        .await
        .unwrap_err();
    assert!(
        matches!(err, PhoneError::Status { status: 401, .. }),
        "{err}"
    );
    // Her password and her access are as they were.
    let her = enrol(&env.http, env.addr(), "gs.nhaycam", PASSWORD)
        .await
        .unwrap();
    let (status, view) = merged_view(&env, &her, case).await;
    assert_eq!(status, 200, "{view}");
    let (status, _) = merged_view(&env, &district, case).await;
    assert_eq!(status, 404, "the admin itself does not see the case");

    // The matrix: each admin tries every change on each kind of account.
    account(&env, "cb.thuong", "collector", &[NGOC_LINH], false).await;
    let (status, body) = call(
        &env,
        "POST",
        "/v1/admin/users",
        Some(&env.admin),
        &json!({ "username": "qt.xa.cap", "password": PASSWORD, "role": "admin",
                 "areas": [NGOC_LINH], "can_grant_sensitive": true }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    account(&env, "chua.phan.vung", "collector", &[], false).await;
    let admins = [
        ("qt.huyen", &district),
        ("qt.huyen.cap", &granting),
        ("qt.tinh", &province),
        ("admin", &env.admin),
    ];
    // Who may change whom: the district admin only the plain collector, the one with the
    // permission all but the account with no areas, the province admin without the
    // permission all but those with sensitive rights.
    let allowed: BTreeMap<(&str, &str), bool> = [
        ("qt.huyen", [false, true, false, false]),
        ("qt.huyen.cap", [true, true, true, false]),
        ("qt.tinh", [false, true, false, true]),
        ("admin", [true, true, true, true]),
    ]
    .into_iter()
    .flat_map(|(admin, row)| {
        ["gs.nhaycam", "cb.thuong", "qt.xa.cap", "chua.phan.vung"]
            .into_iter()
            .zip(row)
            .map(move |(target, ok)| ((admin, target), ok))
    })
    .collect();
    let mut passwords: BTreeMap<&str, String> = BTreeMap::new();
    let mut n = 0;
    for ((admin, target), ok) in &allowed {
        let token = admins.iter().find(|(a, _)| a == admin).unwrap().1;
        let before = user_entry(&env, &env.admin, target).await.unwrap();
        n += 1;
        let new_password = format!("mật khẩu mới số {n}");
        let path = format!("/v1/admin/users/{target}");
        // Each a change that leaves the account as it was, but for the last.
        let changes = [
            (
                "PATCH",
                path.clone(),
                json!({ "sensitive_access": before["sensitive_access"],
                        "can_grant_sensitive": before["can_grant_sensitive"] }),
            ),
            (
                "PUT",
                format!("{path}/areas"),
                json!({ "areas": before["areas"] }),
            ),
            ("PATCH", path.clone(), json!({ "areas": before["areas"] })),
            ("PATCH", path.clone(), json!({ "disabled": true })),
            ("PATCH", path.clone(), json!({ "disabled": false })),
            (
                "POST",
                format!("{path}/password"),
                json!({ "password": new_password }),
            ),
        ];
        for (method, path, body) in &changes {
            let (status, answer) = call(&env, method, path, Some(token), body).await;
            let what = format!("{admin}: {method} {path} {body}");
            if *ok {
                assert_eq!(status, 200, "{what}: {answer}");
            } else {
                assert_eq!(
                    (status, answer["error"].as_str()),
                    (403, Some("forbidden")),
                    "{what}: {answer}"
                );
            }
        }
        assert_eq!(
            user_entry(&env, &env.admin, target).await.unwrap(),
            before,
            "{admin} on {target}"
        );
        if *ok {
            passwords.insert(target, new_password);
        }
    }
    // Every password is the last one an allowed admin set.
    for target in ["gs.nhaycam", "cb.thuong", "qt.xa.cap", "chua.phan.vung"] {
        let password = passwords.get(target).unwrap();
        enrol(&env.http, env.addr(), target, password)
            .await
            .unwrap_or_else(|e| panic!("{target}: {e}"));
    }

    // The district admin lists what is within its areas, sensitive or not, and nothing else;
    // it cannot make an account with no areas either.
    assert!(user_entry(&env, &district, "gs.nhaycam").await.is_some());
    assert!(user_entry(&env, &district, "chua.phan.vung")
        .await
        .is_none());
    let (status, body) = call(
        &env,
        "POST",
        "/v1/admin/users",
        Some(&district),
        &new_user("cung.khong.vung", &[]),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = call(
        &env,
        "POST",
        "/v1/admin/users",
        Some(&province),
        &new_user("cung.khong.vung", &[]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

/// The page's session: its cookie and CSRF token, and the known-browser cookie it was given.
struct PageSession {
    cookie: String,
    csrf: String,
}

/// Logs in to the page as `username`: the status and, on 200, the session.
async fn page_login(env: &Env, username: &str, password: &str) -> (u16, Option<PageSession>) {
    let body = json!({ "username": username, "password": password }).to_string();
    let response = env
        .http
        .request(
            env.addr(),
            "POST",
            "/v1/session",
            &[
                ("content-type", "application/json".to_owned()),
                ("x-requested-with", "fieldsync".to_owned()),
            ],
            body.into_bytes(),
        )
        .await
        .unwrap();
    if response.status != 200 {
        return (response.status, None);
    }
    let cookie = response
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
        .find_map(|(_, v)| v.strip_prefix("fieldsync_session="))
        .and_then(|v| v.split(';').next())
        .unwrap()
        .to_owned();
    let json: Json = serde_json::from_slice(&response.body).unwrap();
    let csrf = json["csrf_token"].as_str().unwrap().to_owned();
    (200, Some(PageSession { cookie, csrf }))
}

/// A request of the page with its session cookie and CSRF token: the status and the answer.
async fn page_call(
    env: &Env,
    session: &PageSession,
    method: &str,
    path: &str,
    body: &Json,
) -> (u16, Json) {
    let body = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    let response = env
        .http
        .request(
            env.addr(),
            method,
            path,
            &[
                ("content-type", "application/json".to_owned()),
                ("cookie", format!("fieldsync_session={}", session.cookie)),
                ("x-csrf-token", session.csrf.clone()),
            ],
            body,
        )
        .await
        .unwrap();
    (
        response.status,
        serde_json::from_slice(&response.body).unwrap_or(Json::Null),
    )
}

async fn assert_ended(env: &Env, phone: &mut Phone, what: &str) {
    let err = phone.sync(&env.http, env.addr(), 10).await.unwrap_err();
    assert!(
        matches!(err, PhoneError::Status { status: 401, .. }),
        "{what}: {err}"
    );
}

/// Enrols `phone` again with its own key, as the app does after a 401.
async fn enrol_again(env: &Env, phone: &mut Phone, password: &str) {
    phone.token = fieldsync_tests::phone::enrol_as(
        &env.http,
        env.addr(),
        "lan",
        password,
        Some(&phone.store),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_or_reset_ends_every_other_session_and_device_token() {
    let env = Env::start().await;
    account(&env, "lan", "supervisor", &[NGOC_LINH], false).await;
    let mut phone = env.phone("lan", Default::default()).await;
    let mut other_phone = env.phone("lan", Default::default()).await;
    let api = enrol(&env.http, env.addr(), "lan", PASSWORD).await.unwrap();
    let (_, here) = page_login(&env, "lan", PASSWORD).await;
    let (_, elsewhere) = page_login(&env, "lan", PASSWORD).await;
    let (here, elsewhere) = (here.unwrap(), elsewhere.unwrap());

    // Her own change, from the page: that session goes on, nothing else does.
    let second = "mật khẩu thứ hai";
    let (status, body) = page_call(
        &env,
        &here,
        "POST",
        "/v1/account/password",
        &json!({ "old_password": PASSWORD, "new_password": second }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = page_call(&env, &here, "GET", "/v1/session", &Json::Null).await;
    assert_eq!(status, 200, "the session it was made from");
    let (status, _) = page_call(&env, &elsewhere, "GET", "/v1/records", &Json::Null).await;
    assert_eq!(status, 401, "another session");
    assert_ended(&env, &mut phone, "a phone").await;
    assert_ended(&env, &mut other_phone, "another phone").await;
    let (status, _) = call(&env, "GET", "/v1/records", Some(&api), &Json::Null).await;
    assert_eq!(status, 401, "an API token");
    let (status, _) = page_login(&env, "lan", PASSWORD).await;
    assert_eq!(status, 401, "the old password");

    // The phone enrols again with the new password; what it wrote meanwhile goes through.
    phone
        .store
        .create(
            RecordType::Household,
            &minimal_household(NGOC_LINH, "Y Mới"),
        )
        .unwrap();
    enrol_again(&env, &mut phone, second).await;
    let report = phone.sync(&env.http, env.addr(), 10).await.unwrap();
    assert_eq!((report.acked, report.rejected), (1, 0));

    // Her own change, from that phone: the phone goes on, the page's session ends.
    let third = "mật khẩu thứ ba";
    let (status, body) = call(
        &env,
        "POST",
        "/v1/account/password",
        Some(&phone.token),
        &json!({ "old_password": second, "new_password": third }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    phone.sync(&env.http, env.addr(), 10).await.unwrap();
    let (status, _) = page_call(&env, &here, "GET", "/v1/session", &Json::Null).await;
    assert_eq!(status, 401);

    // An admin's reset ends everything, the phone included.
    let fourth = "mật khẩu thứ tư";
    let (status, body) = call(
        &env,
        "POST",
        "/v1/admin/users/lan/password",
        Some(&env.admin),
        &json!({ "password": fourth }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_ended(&env, &mut phone, "after an admin's reset").await;
    enrol_again(&env, &mut phone, fourth).await;
    phone.sync(&env.http, env.addr(), 10).await.unwrap();

    // So does the operator's, on the server machine while the server runs.
    let fifth = "mật khẩu thứ năm";
    let out = std::process::Command::new(binary().unwrap())
        .args(["admin", "set-password"])
        .args(env.data_args())
        .args(["--username", "lan"])
        .env("FIELDSYNC_PASSWORD", fifth)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ended(&env, &mut phone, "after the operator's reset").await;
    enrol_again(&env, &mut phone, fifth).await;
    phone.sync(&env.http, env.addr(), 10).await.unwrap();
    // The ended devices are listed (phones and page sessions, ended ones under "expired"), not
    // revoked: nobody said they were lost.
    let mut lans: Vec<Json> = Vec::new();
    for query in [
        "kind=phone",
        "kind=browser",
        "kind=phone&state=expired",
        "kind=browser&state=expired",
    ] {
        let (status, devices) = call(
            &env,
            "GET",
            &format!("/v1/admin/devices?{query}"),
            Some(&env.admin),
            &Json::Null,
        )
        .await;
        assert_eq!(status, 200, "{devices}");
        for d in devices.as_array().unwrap() {
            if d["username"] == "lan" && !lans.iter().any(|x| x["id"] == d["id"]) {
                lans.push(d.clone());
            }
        }
    }
    assert!(lans.len() >= 8, "{lans:?}");
    assert!(lans.iter().all(|d| d["revoked"] == false), "{lans:?}");
}

/// The audit log as the demo admin reads it, once it holds an entry that `done` accepts.
async fn audit_until(env: &Env, done: impl Fn(&[Json]) -> bool) -> Vec<Json> {
    let started = Instant::now();
    loop {
        let (status, body) = call(
            env,
            "GET",
            "/v1/audit?limit=500",
            Some(&env.admin),
            &Json::Null,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let entries = body["entries"].as_array().unwrap().clone();
        if done(&entries) || started.elapsed() > Duration::from_secs(20) {
            return entries;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn logins<'a>(entries: &'a [Json], action: &str, peer: IpAddr) -> Vec<&'a Json> {
    entries
        .iter()
        .filter(|e| e["action"] == action && e["peer"] == peer.to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_and_throttled_logins_are_audited_coalesced_and_without_passwords() {
    if skip_unless_sqlite(PER_INSTANCE) {
        return;
    }
    let env = Env::start().await;
    env.user("lan", &[NGOC_LINH], false).await;
    let guesser = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 61));
    let stranger = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 62));
    let from = |ip| env.http.clone().with_source(ip);
    // Wrong passwords until the address waits two seconds or more for the next one.
    let mut guesses = Vec::new();
    let mut statuses = Vec::new();
    loop {
        let guess = format!("đoán-sai-số-{}", guesses.len() + 1);
        let r = from(guesser)
            .request(
                env.addr(),
                "POST",
                "/v1/enrol",
                &[("content-type", "application/json".to_owned())],
                json!({ "username": "lan", "password": guess })
                    .to_string()
                    .into_bytes(),
            )
            .await
            .unwrap();
        guesses.push(guess);
        statuses.push(r.status);
        let wait: u64 = r.header("retry-after").map_or(0, |v| v.parse().unwrap());
        match r.status {
            401 => {}
            429 if wait >= 2 => break,
            429 => tokio::time::sleep(Duration::from_secs(wait)).await,
            other => panic!("{other}"),
        }
        assert!(guesses.len() < 10, "never throttled: {statuses:?}");
    }
    let failures = statuses.iter().filter(|s| **s == 401).count();
    assert!(failures >= 4, "{statuses:?}");
    // The page's login from there is throttled too, and written down as such.
    let page = from(guesser)
        .request(
            env.addr(),
            "POST",
            "/v1/session",
            &[
                ("content-type", "application/json".to_owned()),
                ("x-requested-with", "fieldsync".to_owned()),
            ],
            json!({ "username": "lan", "password": "đoán-trên-trang" })
                .to_string()
                .into_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(page.status, 429);
    // A name that is no account (perhaps a password typed in the wrong box).
    let nobody = "không.phải.ai.cả";
    let err = enrol(&from(stranger), env.addr(), nobody, "mật khẩu gì đó")
        .await
        .unwrap_err();
    assert!(
        matches!(err, PhoneError::Status { status: 401, .. }),
        "{err}"
    );

    audit_until(&env, |entries| {
        logins(entries, "login_failed", guesser).len() == 1
            && logins(entries, "login_throttled", guesser).len() == 1
            && logins(entries, "login_failed", stranger).len() == 1
    })
    .await;
    // Coalesced: the failures and throttled enrolments from one address make one entry now
    // (the rest is counted, and written when its window ends).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let entries = audit_until(&env, |_| true).await;
    let failed = logins(&entries, "login_failed", guesser);
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["target"], "lan");
    let detail = failed[0]["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("phone enrolment: 1 failed since "),
        "{detail}"
    );
    let throttled = logins(&entries, "login_throttled", guesser);
    assert_eq!(throttled.len(), 1, "{throttled:?}");
    assert_eq!(throttled[0]["target"], "lan");
    assert!(throttled[0]["detail"]
        .as_str()
        .unwrap()
        .starts_with("page login: 1 throttled"));
    let unknown = logins(&entries, "login_failed", stranger);
    assert_eq!(unknown.len(), 1);
    assert_eq!(unknown[0]["target"], Json::Null, "{:?}", unknown[0]);
    assert!(unknown[0]["detail"]
        .as_str()
        .unwrap()
        .ends_with("unknown username"));
    // No password, and no name that is not an account, anywhere in the log.
    let text = serde_json::to_string(&entries).unwrap();
    for secret in
        guesses
            .iter()
            .map(String::as_str)
            .chain(["đoán-trên-trang", "mật khẩu gì đó", nobody])
    {
        assert!(!text.contains(secret), "{secret} is in the audit log");
    }
}
