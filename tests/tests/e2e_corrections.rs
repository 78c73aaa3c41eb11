//! Corrections and merges with choices end to end, over HTTPS with a collector's phone: a
//! supervisor corrects a field (an invalid value is refused with its problem named, nothing
//! written), the history reads it as old → new with who, the phone's time and the server's, the
//! audit log names the field and never the value, and the phone pulls it; a merge takes the
//! duplicate's differing ethnic group over the kept record's, its undo gives the kept record its
//! own value back, and both records are approved again, counting as they did in the
//! approved-only figures.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod common;

use common::*;
use fieldsync_core::model::{RecordType, Value};
use fieldsync_tests::phone::{call_json, enrol, Phone, PhoneError};
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;
use uuid::Uuid;

fn person(name: &str, birth: &str, ethnicity: &str, home: Uuid) -> BTreeMap<String, Value> {
    [
        ("commune", NGOC_LINH),
        ("household_id", &home.to_string()),
        ("full_name", name),
        ("sex", "female"),
        ("birth", birth),
        ("ethnicity", ethnicity),
        ("national_id", "062190000123"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), Value::from(v)))
    .collect()
}

async fn api(env: &Env, token: &str, method: &str, path: &str, body: Json) -> Json {
    call_json(&env.http, env.addr(), method, path, Some(token), &body)
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

async fn sync(env: &Env, phone: &mut Phone) {
    let report = phone.sync(&env.http, env.addr(), 20).await.unwrap();
    assert_eq!(report.rejected, 0, "{report:?}");
}

async fn approve(env: &Env, sup: &str, id: Uuid) {
    let r = api(
        env,
        sup,
        "POST",
        &format!("/v1/records/{id}/edits"),
        json!({"edit": "review", "state": "approved"}),
    )
    .await;
    assert_eq!(r["review"]["state"], "approved");
}

/// The approved-only figures of every area (the report's default), and how many persons the
/// list holds as approved.
async fn approved_figures(env: &Env, sup: &str) -> (Json, Json) {
    let report = api(env, sup, "GET", "/v1/indicators", Json::Null).await;
    assert_eq!(report["all_submitted"], false, "approved records only");
    let list = api(
        env,
        sup,
        "GET",
        "/v1/records?type=person&review=approved&limit=1",
        Json::Null,
    )
    .await;
    (report["areas"].clone(), list["total"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correction_reads_as_old_to_new_and_reaches_the_phone_and_an_undone_merge_restores_values_and_reviews(
) {
    let env = Env::start().await;
    env.user("lan", &[NGOC_LINH], false).await;
    env.set_full_name("lan", "Hồ Thị Lan").await;
    call_json(
        &env.http,
        env.addr(),
        "POST",
        "/v1/admin/users",
        Some(&env.admin),
        &json!({ "username": "gs_hoa", "password": PASSWORD, "role": "supervisor",
                 "areas": ["62.610"] }),
    )
    .await
    .unwrap();
    let sup = enrol(&env.http, env.addr(), "gs_hoa", PASSWORD)
        .await
        .unwrap();
    let mut lan = env.phone("lan", Default::default()).await;
    let home = lan
        .store
        .create(
            RecordType::Household,
            &minimal_household(NGOC_LINH, "A Blưp"),
        )
        .unwrap();
    let hoa = lan
        .store
        .create(
            RecordType::Person,
            &person("Nguyễn Thị Hoà", "1990-02-01", "14", home),
        )
        .unwrap();
    let nie = lan
        .store
        .create(
            RecordType::Person,
            &person("Y Hoà Niê", "1990-02-01", "30", home),
        )
        .unwrap();
    sync(&env, &mut lan).await;

    // An invalid value: refused with its problem, nothing written.
    let path = format!("/v1/records/{hoa}/edits");
    let refused = call_json(
        &env.http,
        env.addr(),
        "POST",
        &path,
        Some(&sup),
        &json!({"edit": "set_field", "field": "birth", "value": "31/02/1991"}),
    )
    .await;
    match refused {
        Err(PhoneError::Status { status: 400, body }) => {
            let body: Json = serde_json::from_str(&body).unwrap();
            assert_eq!(body["error"], "bad_request");
            assert_eq!(body["problems"][0]["field"], "birth", "{body}");
            assert_eq!(body["problems"][0]["code"], "invalid_format", "{body}");
        }
        other => panic!("400 with problems: {other:?}"),
    }
    let before = api(
        &env,
        &sup,
        "GET",
        &format!("/v1/records/{hoa}/history"),
        Json::Null,
    )
    .await;
    assert_eq!(
        before["changes"].as_array().unwrap().len(),
        1,
        "only the creation"
    );

    // The correction.
    let fixed = api(
        &env,
        &sup,
        "POST",
        &path,
        json!({"edit": "set_field", "field": "birth", "value": "1991-02-01"}),
    )
    .await;
    assert_eq!(fixed["fields"]["birth"], "1991-02-01");
    let history = api(
        &env,
        &sup,
        "GET",
        &format!("/v1/records/{hoa}/history"),
        Json::Null,
    )
    .await;
    let changes = history["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 2);
    assert_eq!(changes[0]["kind"], "create");
    assert_eq!(changes[0]["author"]["username"], "lan");
    assert_eq!(changes[0]["author"]["full_name"], "Hồ Thị Lan");
    assert!(
        changes[0]["made_at"].is_string(),
        "the phone's time: {history}"
    );
    let last = &changes[1];
    assert_eq!(last["kind"], "correction");
    assert_eq!(last["author"]["username"], "gs_hoa");
    assert!(last["received_at"].is_string() && last["made_at"].is_string());
    assert_eq!(
        last["ops"],
        json!([{"key": "birth", "old": "1990-02-01", "value": "1991-02-01"}])
    );
    // The audit log names the field, never the value.
    let audit = api(&env, &env.admin, "GET", "/v1/audit", Json::Null).await;
    let edit = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "edit" && e["target"] == json!(hoa))
        .unwrap_or_else(|| panic!("an edit entry: {audit}"));
    assert_eq!(edit["detail"], "set birth");
    assert!(!audit.to_string().contains("1991-02-01"));
    // The phone pulls it.
    sync(&env, &mut lan).await;
    assert_eq!(
        lan.store.get(hoa).unwrap().fields["birth"],
        "1991-02-01".into()
    );

    // Both registrations approved; the figures as they stand.
    approve(&env, &sup, hoa).await;
    approve(&env, &sup, nie).await;
    let figures = approved_figures(&env, &sup).await;
    assert_eq!(figures.1, 2, "both persons approved");
    // Both are ethnic-minority women of reproductive age: the safe-delivery population.
    let population = |areas: &Json| {
        areas
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["code"] == "62")
            .map(|a| a["results"]["safe_delivery_counselled"]["denominator"].clone())
            .unwrap()
    };
    assert_eq!(population(&figures.0), 2);

    // Merge Niê into Hoà, choosing Niê's ethnic group over Hoà's.
    let merged = api(
        &env,
        &sup,
        "POST",
        "/v1/duplicates/merge",
        json!({"keep": hoa, "duplicate": nie, "take": ["ethnicity"]}),
    )
    .await;
    assert_eq!(merged["state"], "merged");
    let kept = api(&env, &sup, "GET", &format!("/v1/records/{hoa}"), Json::Null).await;
    assert_eq!(kept["fields"]["ethnicity"], "30", "the duplicate's value");
    assert_eq!(kept["fields"]["full_name"], "Nguyễn Thị Hoà", "not chosen");
    let history = api(
        &env,
        &sup,
        "GET",
        &format!("/v1/records/{hoa}/history"),
        Json::Null,
    )
    .await;
    let absorb = history["changes"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(absorb["kind"], "absorb");
    assert!(absorb["ops"]
        .as_array()
        .unwrap()
        .contains(&json!({"key": "ethnicity", "old": "14", "value": "30"})));
    sync(&env, &mut lan).await;
    assert_eq!(lan.store.get(hoa).unwrap().fields["ethnicity"], "30".into());

    // Undo: Hoà's own value is back, and both records are approved as before the merge.
    api(
        &env,
        &sup,
        "POST",
        &format!("/v1/records/{nie}/unmerge"),
        Json::Null,
    )
    .await;
    for (id, ethnicity) in [(hoa, "14"), (nie, "30")] {
        let r = api(&env, &sup, "GET", &format!("/v1/records/{id}"), Json::Null).await;
        assert_eq!(r["fields"]["ethnicity"], ethnicity, "{id}");
        assert_eq!(r["review"]["state"], "approved", "{id}: {}", r["review"]);
        assert_eq!(r["review"]["changed_fields"], json!([]));
    }
    let history = api(
        &env,
        &sup,
        "GET",
        &format!("/v1/records/{nie}/history"),
        Json::Null,
    )
    .await;
    let kinds: Vec<&str> = history["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["create", "review", "merge", "unmerge"]);
    let history = api(
        &env,
        &sup,
        "GET",
        &format!("/v1/records/{hoa}/history"),
        Json::Null,
    )
    .await;
    let release = history["changes"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(release["kind"], "release");
    let after = approved_figures(&env, &sup).await;
    assert_eq!(population(&after.0), 2);
    assert_eq!(after, figures, "the figures as before the merge");
    sync(&env, &mut lan).await;
    assert_eq!(lan.store.get(hoa).unwrap().fields["ethnicity"], "14".into());
}
