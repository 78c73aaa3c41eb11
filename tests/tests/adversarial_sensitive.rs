//! Adversarial: support cases (victim data). Nobody can retype a case into an ordinary record
//! (or the other way), no byte of a case reaches a device or supervisor without sensitive
//! access, and probing a case's id answers exactly as probing an id that does not exist.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod adversarial_support;
mod common;

use adversarial_support::*;
use common::*;
use fieldsync_core::model::{RecordType, Value};
use fieldsync_core::protocol::{NeedEntry, RejectCode};
use fieldsync_core::store::ListFilter;
use fieldsync_core::RecordDoc;
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;
use uuid::Uuid;

/// Put in a case's notes: found anywhere it must not be, the case leaked.
const MARKER: &str = "GHI-CHU-MAT-7c1e9a-không-được-lộ";

/// Whether any pulled change carries the marker or names the record.
fn leaks(pulled: &[fieldsync_core::protocol::ChangeEntry], case: Uuid) -> bool {
    pulled.iter().any(|c| {
        c.record_id == case
            || contains(&readable_bytes(&c.bytes), MARKER.as_bytes())
            || contains(&readable_bytes(&c.bytes), case.to_string().as_bytes())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_cannot_be_retyped_and_its_notes_reach_only_sensitive_eyes() {
    let env = Env::start().await;
    env.user("carer", &[NGOC_LINH], true).await;
    env.user("carer2", &[NGOC_LINH], true).await;
    env.user("plain", &[NGOC_LINH], false).await;
    let sup_plain = supervisor(&env, "sup.plain", &[NGOC_LINH], false).await;
    let sup_sens = supervisor(&env, "sup.sens", &[NGOC_LINH], true).await;
    let mut carer = env.phone("carer", Default::default()).await;
    let mut plain = env.phone("plain", Default::default()).await;
    let carer2 = env.phone("carer2", Default::default()).await;
    let (_person, case) = open_case(&mut carer, MARKER);
    carer.sync(&env.http, env.addr(), 10).await.unwrap();
    let own = plain
        .store
        .create(
            RecordType::Household,
            &minimal_household(NGOC_LINH, "Y Blơ"),
        )
        .unwrap();
    plain.sync(&env.http, env.addr(), 10).await.unwrap();
    let before = env.stats().await;

    // 1. The carer (who may see and write cases) turns the case into a household: the edit
    //    overwrites `$type` (its predecessor is the creation's `$type` operation).
    let carer_actor = carer.store.device_id();
    let edit = forge(
        case,
        carer_actor,
        &record_changes(&carer.store, case),
        |d| d.set_field("case_notes", &"x".into()),
    );
    let retype = rewrite(&edit, |change| {
        let op = &mut change["ops"][0];
        op["key"] = json!("$type");
        op["value"] = json!("household");
        op["pred"] = json!([format!("2@{}", hex(carer_actor.as_bytes()))]);
    });
    // 2. The same with the record's notes erased and household fields added in one change.
    let disguise = rewrite(&edit, |change| {
        let actor = hex(carer_actor.as_bytes());
        let pred = |n: u32| json!([format!("{n}@{actor}")]);
        change["ops"] = json!([
            {"action": "set", "obj": "_root", "key": "$type", "value": "household", "pred": pred(2)},
            {"action": "set", "obj": "_root", "key": "f/head_name", "value": "Hộ Thường", "pred": []},
            {"action": "set", "obj": "_root", "key": "f/poverty", "value": "poor", "pred": []},
        ]);
    });
    // 3. The plain collector turns its household into a support case, and 4. creates one.
    let plain_actor = plain.store.device_id();
    let own_edit = forge(own, plain_actor, &record_changes(&plain.store, own), |d| {
        d.set_field("village", &"Làng Le".into())
    });
    let into_case = rewrite_key(&own_edit, "f/village", "$type", Some(json!("support_case")));
    let fake_case = Uuid::now_v7();
    let (_, case_creation) = RecordDoc::create(
        fake_case,
        RecordType::SupportCase,
        &fields(&[
            ("commune", NGOC_LINH),
            ("person_id", &Uuid::now_v7().to_string()),
            ("case_kind", "trafficking"),
            ("opened", "2025-02-04"),
        ]),
        plain_actor,
    )
    .unwrap();

    let response = push(
        &env,
        &carer,
        vec![entry(case, &retype), entry(case, &disguise)],
    )
    .await;
    assert!(response.acked.is_empty());
    assert_eq!(
        codes(&response),
        BTreeMap::from([
            (hash_of(&retype), RejectCode::Invalid),
            (hash_of(&disguise), RejectCode::Invalid),
        ])
    );
    let response = push(
        &env,
        &plain,
        vec![
            entry(own, &into_case),
            entry(fake_case, &case_creation.bytes),
        ],
    )
    .await;
    assert!(response.acked.is_empty());
    assert_eq!(
        codes(&response),
        BTreeMap::from([
            (hash_of(&into_case), RejectCode::Invalid),
            (hash_of(&case_creation.bytes), RejectCode::NotPermitted),
        ])
    );
    assert_eq!(env.stats().await, before, "nothing stored or held");

    // Those allowed still see the case as it was (and the scans below can see the marker).
    let (status, view) = merged_view(&env, &sup_sens, case).await;
    assert_eq!(status, 200);
    assert_eq!(view["record_type"], "support_case");
    assert_eq!(view["fields"]["case_notes"], MARKER);
    assert!(leaks(&pull_everything(&env, &carer2.token).await, case));

    // Nothing of it reaches the plain collector's pulls ...
    assert!(!leaks(&pull_everything(&env, &plain.token).await, case));
    plain.sync(&env.http, env.addr(), 10).await.unwrap();
    assert!(plain.store.get(case).is_err());
    let filter = ListFilter {
        include_inactive: true,
        ..Default::default()
    };
    assert_eq!(
        plain.store.count(&filter).unwrap(),
        3,
        "the case's household and person, and its own household"
    );
    assert!(plain
        .store
        .list(&filter)
        .unwrap()
        .iter()
        .all(|r| r.record_type != RecordType::SupportCase));
    assert!(plain.store.set_aside().unwrap().is_empty());
    assert_eq!(
        plain.store.get(own).unwrap().record_type,
        RecordType::Household
    );

    // ... nor any API answer to a supervisor or admin without sensitive access.
    let admin = env.admin.clone();
    let paths = [
        "/v1/records?limit=500".to_owned(),
        "/v1/records?type=support_case".to_owned(),
        "/v1/records?q=GHI-CHU-MAT".to_owned(),
        "/v1/records?q=domestic_violence".to_owned(),
        format!("/v1/records?q={case}"),
        format!("/v1/records/{case}"),
    ];
    for token in [&sup_plain, &admin] {
        for path in &paths {
            let (status, body) = call_text(&env, "GET", path, Some(token), &Json::Null).await;
            assert!(status == 200 || status == 404, "{path}: {status} {body}");
            assert!(!body.contains(MARKER), "{path} leaked the notes: {body}");
            assert!(
                !body.contains(&case.to_string()),
                "{path} leaked the id: {body}"
            );
            assert!(!body.contains("support_case"), "{path}: {body}");
        }
    }
    let (status, body) = call_text(
        &env,
        "GET",
        "/v1/records?limit=500",
        Some(&sup_sens),
        &Json::Null,
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.contains(&case.to_string()), "control: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_id_answers_exactly_like_an_unknown_id() {
    let env = Env::start().await;
    env.user("carer", &[NGOC_LINH], true).await;
    env.user("plain", &[NGOC_LINH], false).await;
    let sup_plain = supervisor(&env, "sup.plain", &[NGOC_LINH], false).await;
    let sup_elsewhere = supervisor(&env, "sup.morai", &[MO_RAI], true).await;
    let mut carer = env.phone("carer", Default::default()).await;
    let plain = env.phone("plain", Default::default()).await;
    let (_person, case) = open_case(&mut carer, MARKER);
    carer.sync(&env.http, env.addr(), 10).await.unwrap();
    let unknown = Uuid::now_v7();
    let plain_actor = plain.store.device_id();
    let case_before = carer.store.get(case).unwrap();

    // Pushing an edit whose dependency the server lacks: "send me that change", and held
    // against the prober's cap, for both alike.
    let mut shapes = Vec::new();
    for (target, held_after) in [(case, 1), (unknown, 2)] {
        let (creation, edit) = creation_and_edit(target, plain_actor, NGOC_LINH, "Làng Dò");
        for _ in 0..2 {
            let response = push(&env, &plain, vec![entry(target, &edit)]).await;
            assert!(response.acked.is_empty() && response.rejected.is_empty());
            assert_eq!(
                response.need,
                vec![NeedEntry {
                    record_id: target,
                    hash: hash_of(&creation)
                }]
            );
            shapes.push((
                response.acked.len(),
                response.rejected.len(),
                response.need.len(),
                response.pull.len(),
                response.more,
            ));
        }
        assert_eq!(env.stats().await["held"].as_u64(), Some(held_after));
    }
    assert!(shapes.windows(2).all(|w| w[0] == w[1]), "{shapes:?}");

    // Reading and editing through the supervisors' API: the same status and the same body.
    let edits = [
        json!({"edit": "set_field", "field": "status", "value": "closed"}),
        json!({"edit": "set_field", "field": "case_notes", "value": "đã xem"}),
        json!({"edit": "review", "state": "approved", "comment": null}),
    ];
    for token in [&sup_plain, &sup_elsewhere, &plain.token] {
        let probe = |id: Uuid| {
            let env = &env;
            let edits = &edits;
            async move {
                let mut answers = vec![
                    call_text(
                        env,
                        "GET",
                        &format!("/v1/records/{id}"),
                        Some(token),
                        &Json::Null,
                    )
                    .await,
                ];
                for edit in edits {
                    answers.push(
                        call_text(
                            env,
                            "POST",
                            &format!("/v1/records/{id}/edits"),
                            Some(token),
                            edit,
                        )
                        .await,
                    );
                }
                answers
            }
        };
        let on_case = probe(case).await;
        let on_unknown = probe(unknown).await;
        assert_eq!(on_case, on_unknown);
        for (status, body) in &on_case {
            assert!(*status == 404 || *status == 403, "{status} {body}");
            assert!(!body.contains(MARKER));
        }
    }
    let (status, _) = call(
        &env,
        "GET",
        &format!("/v1/records/{case}"),
        Some(&sup_plain),
        &Json::Null,
    )
    .await;
    assert_eq!(status, 404);

    // The probes changed nothing: the carer's case is as it was, everywhere.
    carer.sync(&env.http, env.addr(), 10).await.unwrap();
    assert_eq!(carer.store.get(case).unwrap(), case_before);
    let sup_sens = supervisor(&env, "sup.sens", &[NGOC_LINH], true).await;
    let (status, view) = merged_view(&env, &sup_sens, case).await;
    assert_eq!(
        (status, view),
        (200, serde_json::to_value(&case_before).unwrap())
    );
    assert_eq!(
        case_before.fields["status"],
        Value::from("open"),
        "not closed by a probe"
    );
}
