//! Duplicates end to end, over HTTPS with two phones: the same woman registered twice shows in
//! the queue; two supervisors merging at once get one merge and one conflict; a phone that
//! edits the duplicate offline has its edit flagged on the kept record; both phones show the
//! kept record only, find it by either name and resolve the duplicate to it; undoing the merge
//! brings both back with the edits made in between. Phones and server agree at every step.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod common;

use common::*;
use fieldsync_core::model::{RecordType, Value};
use fieldsync_core::store::ListFilter;
use fieldsync_tests::phone::{call_json, enrol, Phone, PhoneError};
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;
use uuid::Uuid;

fn person(name: &str, birth: &str, phone: Option<&str>) -> BTreeMap<String, Value> {
    let mut fields: BTreeMap<String, Value> = [
        ("commune", NGOC_LINH),
        ("household_id", "0190a000-0000-7000-8000-000000000001"),
        ("full_name", name),
        ("sex", "female"),
        ("birth", birth),
        ("ethnicity", "30"),
        ("national_id", "062190000123"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), Value::from(v)))
    .collect();
    if let Some(phone) = phone {
        fields.insert("phone".into(), phone.into());
    }
    fields
}

async fn supervisor(env: &Env, name: &str) -> String {
    call_json(
        &env.http,
        env.addr(),
        "POST",
        "/v1/admin/users",
        Some(&env.admin),
        &json!({ "username": name, "password": PASSWORD, "role": "supervisor",
                 "areas": ["62.610"] }),
    )
    .await
    .unwrap();
    enrol(&env.http, env.addr(), name, PASSWORD).await.unwrap()
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

/// The persons a phone lists, and those a search finds.
fn listed(phone: &Phone, search: Option<&str>) -> Vec<Uuid> {
    phone
        .store
        .list(&ListFilter {
            record_type: Some(RecordType::Person),
            search: search.map(str::to_owned),
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect()
}

/// Both phones hold the same records, with the values the server shows.
async fn agree(env: &Env, sup: &str, phones: [&Phone; 2], ids: [Uuid; 2]) {
    for id in ids {
        let (a, b) = (
            phones[0].store.get(id).unwrap(),
            phones[1].store.get(id).unwrap(),
        );
        assert_eq!(a, b, "the phones agree on {id}");
        let server = api(env, sup, "GET", &format!("/v1/records/{id}"), Json::Null).await;
        assert_eq!(server["fields"], serde_json::to_value(&a.fields).unwrap());
        assert_eq!(
            server["merged_into"],
            serde_json::to_value(a.merged_into).unwrap()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_offline_edit_and_undo_converge_on_two_phones_and_the_server() {
    let env = Env::start().await;
    env.user("lan", &[NGOC_LINH], false).await;
    env.user("mai", &[NGOC_LINH], false).await;
    let (sup1, sup2) = (supervisor(&env, "gs1").await, supervisor(&env, "gs2").await);
    let mut lan = env.phone("lan", Default::default()).await;
    let mut mai = env.phone("mai", Default::default()).await;

    // The same woman, registered on two visits by two collectors.
    let a = lan
        .store
        .create(RecordType::Person, &person("Nguyễn Thị Hoà", "1990", None))
        .unwrap();
    let b = mai
        .store
        .create(
            RecordType::Person,
            &person("Y Hoà Niê", "1989-03-02", Some("0987654321")),
        )
        .unwrap();
    sync(&env, &mut lan).await;
    sync(&env, &mut mai).await;
    sync(&env, &mut lan).await;

    let queue = api(&env, &sup1, "GET", "/v1/duplicates", Json::Null).await;
    assert_eq!(queue["total"], 1, "{queue}");
    let pair = &queue["pairs"][0];
    assert_eq!(pair["reasons"], json!(["national_id"]));
    for field in ["full_name", "birth", "phone"] {
        assert!(
            pair["differences"]
                .as_array()
                .unwrap()
                .contains(&json!(field)),
            "{field} differs: {pair}"
        );
    }

    // Two supervisors merge at the same moment, each the other way round: one merge wins,
    // the other is told the record is merged already.
    let merge = |token: String, keep: Uuid, dup: Uuid, take: Vec<&'static str>| {
        let (http, addr) = (env.http.clone(), env.addr());
        async move {
            call_json(
                &http,
                addr,
                "POST",
                "/v1/duplicates/merge",
                Some(&token),
                &json!({"keep": keep, "duplicate": dup, "take": take}),
            )
            .await
        }
    };
    let (first, second) = tokio::join!(
        merge(sup1.clone(), a, b, vec!["phone"]),
        merge(sup2.clone(), b, a, vec![])
    );
    let (keep, dup) = match (&first, &second) {
        (Ok(_), Err(PhoneError::Status { status: 409, .. })) => (a, b),
        (Err(PhoneError::Status { status: 409, .. }), Ok(_)) => (b, a),
        other => panic!("one merge and one conflict: {other:?}"),
    };
    let merged = first.or(second).unwrap();
    assert_eq!(merged["state"], "merged");

    // Mai had not synced: she edits the duplicate, offline, then syncs.
    mai.store
        .set_field(dup, "disability", &"mild".into())
        .unwrap();
    sync(&env, &mut mai).await;
    sync(&env, &mut lan).await;
    sync(&env, &mut mai).await;

    let kept = api(
        &env,
        &sup1,
        "GET",
        &format!("/v1/records/{keep}"),
        Json::Null,
    )
    .await;
    assert_eq!(kept["fields"]["phone"], "0987654321", "kept or taken over");
    assert_eq!(kept["absorbed"][0]["id"], json!(dup));
    assert_eq!(
        kept["absorbed"][0]["edits_after_merge"],
        json!([{"field": "disability", "at_merge": null, "now": "mild"}]),
        "the offline edit is flagged on the kept record"
    );
    let gone = api(
        &env,
        &sup1,
        "GET",
        &format!("/v1/records/{dup}"),
        Json::Null,
    )
    .await;
    assert_eq!(gone["status"], "merged");
    assert_eq!(gone["merged_into"], json!(keep));
    assert_eq!(gone["fields"]["disability"], "mild", "the edit is kept");

    // On both phones: the kept record only, found by either name, the duplicate resolving to it.
    let only_dup_word = if dup == b { "nie" } else { "nguyen" };
    for phone in [&lan, &mai] {
        assert_eq!(listed(phone, None), vec![keep]);
        assert_eq!(listed(phone, Some(only_dup_word)), vec![keep]);
        assert_eq!(listed(phone, Some("hoa")), vec![keep]);
        assert_eq!(phone.store.resolve(dup).unwrap(), keep);
    }
    agree(&env, &sup1, [&lan, &mai], [a, b]).await;

    // Undo: both come back; the merge's own take-over leaves, the edits made since stay.
    let undone = api(
        &env,
        &sup2,
        "POST",
        &format!("/v1/records/{dup}/unmerge"),
        Json::Null,
    )
    .await;
    assert_eq!(undone["was_merged_into"], json!(keep));
    sync(&env, &mut lan).await;
    sync(&env, &mut mai).await;
    for phone in [&lan, &mai] {
        let mut both = listed(phone, None);
        both.sort();
        let mut want = vec![a, b];
        want.sort();
        assert_eq!(both, want);
        assert_eq!(phone.store.resolve(dup).unwrap(), dup);
        assert_eq!(
            phone.store.get(dup).unwrap().fields["disability"],
            "mild".into()
        );
        let kept_view = phone.store.get(keep).unwrap();
        assert_eq!(
            kept_view.fields.contains_key("phone"),
            keep == b,
            "a phone number the merge took over leaves with the undo"
        );
    }
    agree(&env, &sup1, [&lan, &mai], [a, b]).await;
    let queue = api(&env, &sup1, "GET", "/v1/duplicates", Json::Null).await;
    assert_eq!(queue["total"], 1, "the pair is back in the queue: {queue}");
}
