//! The administration API against a real server over HTTPS: the collectors view for
//! supervisors and admins only, bounded and scoped; devices filtered by kind and state with
//! what each sent; the audit log's filters refusing what is not a date; one record's pairs
//! from the duplicates queue, ranked by score.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod adversarial_support;
mod common;

use adversarial_support::*;
use common::*;
use fieldsync_core::model::RecordType;
use serde_json::Value as Json;

async fn status(env: &Env, token: &str, path: &str) -> (u16, Json) {
    call(env, "GET", path, Some(token), &Json::Null).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collectors_devices_audit_filters_and_one_records_pairs() {
    let env = Env::start().await;
    let sup = supervisor(&env, "gs_api", &["62.610"], false).await;
    env.user("thu_api", &[NGOC_LINH], false).await;
    env.set_full_name("thu_api", "Y Thu Niê").await;
    let mut phone = env.phone("thu_api", Default::default()).await;
    let a = phone
        .store
        .create(RecordType::Person, &woman("062190000777"))
        .unwrap();
    let b = phone
        .store
        .create(RecordType::Person, &woman("062190000777"))
        .unwrap();
    phone.sync(&env.http, env.addr(), 10).await.unwrap();

    // Collectors: supervisors and admins; a collector's own token is refused; weeks bounded.
    let (s, body) = status(&env, &sup, "/v1/collectors?weeks=2").await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["weeks"].as_array().unwrap().len(), 2);
    let me = body["collectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["username"] == "thu_api")
        .expect("the collector of her district");
    assert_eq!(me["registered"][1], 2);
    assert_eq!(me["full_name"], "Y Thu Niê");
    assert_eq!(me["silent"], false);
    assert_eq!(status(&env, &phone.token, "/v1/collectors").await.0, 403);
    for bad in ["weeks=0", "weeks=13", "weeks=x", "other=1"] {
        assert_eq!(
            status(&env, &sup, &format!("/v1/collectors?{bad}")).await.0,
            400,
            "{bad}"
        );
    }

    // Devices: the phone with its two changes; bad filters are 400s.
    let (s, devices) = status(
        &env,
        &env.admin,
        "/v1/admin/devices?kind=phone&user=thu_api",
    )
    .await;
    assert_eq!(s, 200, "{devices}");
    assert_eq!(devices[0]["changes_sent"], 2);
    assert_eq!(devices[0]["state"], "active");
    assert!(devices[0]["last_sync_at"].is_string() && devices[0]["enrolled_at"].is_string());
    for bad in ["kind=tablet", "state=lost"] {
        assert_eq!(
            status(&env, &env.admin, &format!("/v1/admin/devices?{bad}"))
                .await
                .0,
            400,
            "{bad}"
        );
    }
    assert_eq!(status(&env, &sup, "/v1/admin/devices").await.0, 403);

    // The audit log: dates must be dates; a page says where the next one starts.
    let (s, page) = status(
        &env,
        &env.admin,
        "/v1/audit?from=2025-01-01&to=2099-12-31&limit=1",
    )
    .await;
    assert_eq!(s, 200, "{page}");
    assert!(page["next_before"].is_i64(), "{page}");
    assert_eq!(
        status(&env, &env.admin, "/v1/audit?from=2025-02-30")
            .await
            .0,
        400
    );

    // One record's pairs, with a score.
    let (s, pairs) = status(&env, &sup, &format!("/v1/duplicates?record={a}")).await;
    assert_eq!(s, 200, "{pairs}");
    assert_eq!(pairs["total"], 1);
    assert_eq!(pairs["pairs"][0]["score"], 100);
    let ids = [&pairs["pairs"][0]["a"]["id"], &pairs["pairs"][0]["b"]["id"]];
    assert!(ids.contains(&&Json::from(b.to_string())));
}

fn woman(cccd: &str) -> std::collections::BTreeMap<String, fieldsync_core::model::Value> {
    [
        ("commune", NGOC_LINH),
        ("household_id", "0190a000-0000-7000-8000-000000000001"),
        ("full_name", "Y Hnui"),
        ("sex", "female"),
        ("birth", "1990-01-02"),
        ("ethnicity", "12"),
        ("national_id", cccd),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.into()))
    .collect()
}
