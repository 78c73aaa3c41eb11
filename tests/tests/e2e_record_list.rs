//! End to end over HTTPS: accounts' full names and phone numbers (who sees the phone), the
//! record list's columns, order and its refusals, and bulk approval with what it skips and
//! why, against a real `serve --dev` server.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod common;

use common::*;
use fieldsync_core::model::{RecordType, Value};
use fieldsync_core::protocol::ClientOptions;
use fieldsync_tests::phone::{call_json, enrol, PhoneError};
use serde_json::{json, Value as Json};
use uuid::Uuid;

const MUONG_HOONG: &str = "62.610.02";

async fn call(env: &Env, method: &str, path: &str, token: &str, body: &Json) -> (u16, Json) {
    match call_json(&env.http, env.addr(), method, path, Some(token), body).await {
        Ok(json) => (200, json),
        Err(PhoneError::Status { status, body }) => {
            (status, serde_json::from_str(&body).unwrap_or(Json::Null))
        }
        Err(e) => panic!("{method} {path}: {e}"),
    }
}

fn household(
    commune: &str,
    head: &str,
    village: &str,
) -> std::collections::BTreeMap<String, Value> {
    let mut fields = minimal_household(commune, head);
    fields.insert("village".into(), Value::from(village));
    fields
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_carry_a_full_name_and_only_admins_see_the_phone() {
    let env = Env::start().await;
    let made = call(
        &env,
        "POST",
        "/v1/admin/users",
        &env.admin,
        &json!({"username": "giamsat.dakglei", "password": PASSWORD, "role": "supervisor",
                "areas": ["62.610"], "full_name": "Nguyễn Thị Hoà", "phone": "+84912345678"}),
    )
    .await;
    assert_eq!(made.0, 200, "{made:?}");
    assert_eq!(made.1["full_name"], "Nguyễn Thị Hoà");
    assert_eq!(made.1["phone"], "+84912345678");
    // Bad values are refused and change nothing.
    for body in [
        json!({"phone": "0912-345-678"}),
        json!({"phone": "12345"}),
        json!({"full_name": "x".repeat(121)}),
    ] {
        let (status, answer) = call(
            &env,
            "PATCH",
            "/v1/admin/users/giamsat.dakglei",
            &env.admin,
            &body,
        )
        .await;
        assert_eq!(status, 400, "{body}: {answer}");
    }
    let changed = call(
        &env,
        "PATCH",
        "/v1/admin/users/giamsat.dakglei",
        &env.admin,
        &json!({"full_name": "Đinh Thị Hoà Bình", "phone": "0912345678"}),
    )
    .await;
    assert_eq!(changed.0, 200, "{changed:?}");
    let users = call(&env, "GET", "/v1/admin/users", &env.admin, &Json::Null).await;
    let listed = users
        .1
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "giamsat.dakglei")
        .cloned()
        .unwrap();
    assert_eq!(listed["full_name"], "Đinh Thị Hoà Bình");
    assert_eq!(listed["phone"], "0912345678");

    // The supervisor's own session names them but carries no phone.
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
            json!({"username": "giamsat.dakglei", "password": PASSWORD})
                .to_string()
                .into_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    let session: Json = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(session["user"]["full_name"], "Đinh Thị Hoà Bình");
    assert!(session["user"].get("phone").is_none(), "{session}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_names_village_and_collector_sorts_and_refuses_unknown_orders() {
    let env = Env::start().await;
    call(
        &env,
        "POST",
        "/v1/admin/users",
        &env.admin,
        &json!({"username": "canbo.a", "password": PASSWORD, "role": "collector",
                "areas": ["62.610"], "full_name": "Y Thị Hlen"}),
    )
    .await;
    let mut a = env.phone("canbo.a", ClientOptions::default()).await;
    let first = a
        .store
        .create(
            RecordType::Household,
            &household(MUONG_HOONG, "Y Hnui", "Làng Le"),
        )
        .unwrap();
    let second = a
        .store
        .create(
            RecordType::Household,
            &household(NGOC_LINH, "Y Hnui", "Thôn 2"),
        )
        .unwrap();
    let third = a
        .store
        .create(
            RecordType::Household,
            &household(NGOC_LINH, "A Blưn", "Thôn 1"),
        )
        .unwrap();
    a.sync(&env.http, env.addr(), 10).await.unwrap();

    let ids = |page: &Json| -> Vec<Uuid> {
        page["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().parse().unwrap())
            .collect()
    };
    let (status, page) = call(
        &env,
        "GET",
        "/v1/records?sort=title",
        &env.admin,
        &Json::Null,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let row = &page["records"][0];
    assert_eq!(row["title"], "A Blưn");
    assert_eq!(row["village"], "Thôn 1");
    assert_eq!(
        row["collector"],
        json!({"username": "canbo.a", "full_name": "Y Thị Hlen"})
    );
    let mut hnui = ids(&page)[1..].to_vec();
    hnui.sort();
    let mut want = vec![first, second];
    want.sort();
    assert_eq!(hnui, want, "ties go to the id");
    let (_, desc) = call(
        &env,
        "GET",
        "/v1/records?sort=title&order=desc",
        &env.admin,
        &Json::Null,
    )
    .await;
    assert_eq!(*ids(&desc).last().unwrap(), third);
    let (_, place) = call(
        &env,
        "GET",
        "/v1/records?sort=place",
        &env.admin,
        &Json::Null,
    )
    .await;
    assert_eq!(ids(&place), [third, second, first]);

    // The old commune lists what was registered in it only; the new commune all three.
    let (_, old) = call(
        &env,
        "GET",
        &format!("/v1/records?commune={MUONG_HOONG}"),
        &env.admin,
        &Json::Null,
    )
    .await;
    assert_eq!(ids(&old), [first]);
    let (_, new) = call(
        &env,
        "GET",
        "/v1/records?commune=51.102",
        &env.admin,
        &Json::Null,
    )
    .await;
    assert_eq!(new["total"], 3);

    for bad in [
        "/v1/records?sort=commune",
        "/v1/records?sort=title%20desc",
        "/v1/records?order=up",
        "/v1/records?sort=title;DROP",
    ] {
        let (status, answer) = call(&env, "GET", bad, &env.admin, &Json::Null).await;
        assert_eq!(status, 400, "{bad}: {answer}");
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with("sort:") || message.starts_with("order:"),
            "{bad}: {answer}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_approval_approves_what_it_may_and_names_what_it_skips() {
    let env = Env::start().await;
    call(
        &env,
        "POST",
        "/v1/admin/users",
        &env.admin,
        &json!({"username": "giamsat", "password": PASSWORD, "role": "supervisor",
                "areas": ["62.610"], "full_name": "Nguyễn Thị Hương"}),
    )
    .await;
    env.user("canbo.a", &["62.610"], true).await;
    env.user("canbo.b", &[NGOC_LINH], false).await;
    env.user("canbo.mr", &[MO_RAI], false).await;
    let mut a = env.phone("canbo.a", ClientOptions::default()).await;
    let mut b = env.phone("canbo.b", ClientOptions::default()).await;
    let mut far = env.phone("canbo.mr", ClientOptions::default()).await;
    let ok = a
        .store
        .create(
            RecordType::Household,
            &minimal_household(NGOC_LINH, "Y Hnui"),
        )
        .unwrap();
    let ok2 = a
        .store
        .create(
            RecordType::Household,
            &minimal_household(MUONG_HOONG, "A Blưn"),
        )
        .unwrap();
    let contested = a
        .store
        .create(
            RecordType::Household,
            &minimal_household(NGOC_LINH, "Y Bình"),
        )
        .unwrap();
    let case = a
        .store
        .create(
            RecordType::SupportCase,
            &[
                ("commune", NGOC_LINH),
                ("person_id", Uuid::now_v7().to_string().as_str()),
                ("case_kind", "domestic_violence"),
                ("opened", "2025-03-01"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Value::from(v)))
            .collect(),
        )
        .unwrap();
    let outside = far
        .store
        .create(RecordType::Household, &minimal_household(MO_RAI, "Y Hnui"))
        .unwrap();
    a.sync(&env.http, env.addr(), 10).await.unwrap();
    far.sync(&env.http, env.addr(), 10).await.unwrap();
    b.sync(&env.http, env.addr(), 10).await.unwrap();
    // A conflict: both phones rename the head offline.
    a.store
        .set_field(contested, "head_name", &Value::from("Y Bình A"))
        .unwrap();
    b.store
        .set_field(contested, "head_name", &Value::from("Y Bình B"))
        .unwrap();
    a.sync(&env.http, env.addr(), 10).await.unwrap();
    b.sync(&env.http, env.addr(), 10).await.unwrap();

    let giamsat = enrol(&env.http, env.addr(), "giamsat", PASSWORD)
        .await
        .unwrap();
    let unknown = Uuid::now_v7();
    let asked = vec![ok, ok2, contested, outside, unknown, ok, case];
    let (status, answer) = call(
        &env,
        "POST",
        "/v1/records/review",
        &giamsat,
        &json!({"ids": asked, "state": "approved"}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["approved"], json!([ok, ok2]), "{answer}");
    let skipped: Vec<(String, String)> = answer["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_owned(),
                s["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut want = vec![
        (contested.to_string(), "conflicts".to_owned()),
        // Outside the supervisor's area and never existing: told apart by nothing.
        (outside.to_string(), "not_found".to_owned()),
        (unknown.to_string(), "not_found".to_owned()),
    ];
    // A support case, to a supervisor without sensitive access: the same as unknown.
    want.push((case.to_string(), "not_found".to_owned()));
    assert_eq!(skipped, want);
    for id in [ok, ok2] {
        let (_, record) = call(
            &env,
            "GET",
            &format!("/v1/records/{id}"),
            &giamsat,
            &Json::Null,
        )
        .await;
        assert_eq!(record["review"]["state"], "approved", "{record}");
    }
    let (_, record) = call(
        &env,
        "GET",
        &format!("/v1/records/{contested}"),
        &giamsat,
        &Json::Null,
    )
    .await;
    assert_eq!(record["review"]["state"], "pending", "{record}");

    // Each approval is audited like a single one.
    let (_, audit) = call(&env, "GET", "/v1/audit?limit=500", &env.admin, &Json::Null).await;
    let mut reviewed: Vec<String> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "review" && e["username"] == "giamsat")
        .map(|e| {
            assert_eq!(e["detail"], "approved", "{e}");
            e["target"].as_str().unwrap().to_owned()
        })
        .collect();
    reviewed.sort();
    let mut want = vec![ok.to_string(), ok2.to_string()];
    want.sort();
    assert_eq!(reviewed, want);

    // Again: both are approved already.
    let (_, again) = call(
        &env,
        "POST",
        "/v1/records/review",
        &giamsat,
        &json!({"ids": [ok, ok2], "state": "approved"}),
    )
    .await;
    assert_eq!(again["approved"], json!([]));
    assert_eq!(again["skipped"][0]["reason"], "already_approved");

    // Refusals: no ids, too many, another state, a malformed id; an admin only reads.
    let many: Vec<Uuid> = (0..201).map(|_| Uuid::now_v7()).collect();
    for body in [
        json!({"ids": [], "state": "approved"}),
        json!({"ids": many, "state": "approved"}),
        json!({"ids": [ok], "state": "returned"}),
        json!({"ids": ["not-a-uuid"], "state": "approved"}),
        json!({"ids": [ok]}),
    ] {
        let (status, answer) = call(&env, "POST", "/v1/records/review", &giamsat, &body).await;
        assert_eq!(status, 400, "{body}: {answer}");
    }
    let (status, _) = call(
        &env,
        "POST",
        "/v1/records/review",
        &env.admin,
        &json!({"ids": [ok], "state": "approved"}),
    )
    .await;
    assert_eq!(status, 403);
}
