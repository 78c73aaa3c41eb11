//! Adversarial: a collector probing ids it may not see. For every way a change or a request can
//! name a record, an id nobody uses, another commune's household and a support case of the
//! prober's own commune give the same answer: the same reject code, the same `need`, the same
//! effect on the prober's held-change cap, the same HTTP status and body. The one answer an
//! existing id gives that an unknown one does not (a valid creation under it is refused, as for
//! a record the prober can see) is checked to say nothing more than that.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod adversarial_support;
mod common;

use adversarial_support::*;
use common::*;
use fieldsync_core::model::{RecordType, Value};
use fieldsync_core::protocol::{ChangeEntry, RejectCode, SyncResponse};
use fieldsync_core::RecordDoc;
use fieldsync_tests::phone::Phone;
use serde_json::{json, Value as Json};
use uuid::Uuid;

/// What a push's answer says, with the target's id and the probe's own hashes taken out (they
/// differ by construction); what is left must not depend on the target.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    acked: usize,
    codes: Vec<RejectCode>,
    /// Needed hashes, as indexes into the probe's list of dependencies (`None`: unrelated).
    need: Vec<Option<usize>>,
    held_added: i64,
}

fn held(env: &Env) -> i64 {
    db_number(env, "SELECT COUNT(*) FROM held")
}

async fn probe(env: &Env, prober: &Phone, entries: Vec<ChangeEntry>, deps: &[[u8; 32]]) -> Answer {
    let before = held(env);
    let response: SyncResponse = push(env, prober, entries).await;
    Answer {
        acked: response.acked.len(),
        codes: response.rejected.iter().map(|r| r.code).collect(),
        need: response
            .need
            .iter()
            .map(|n| deps.iter().position(|d| *d == n.hash))
            .collect(),
        held_added: held(env) - before,
    }
}

/// A creation of `id` under `actor`, of `record_type`, with `fields`, rewritten by `f`.
fn creation(
    id: Uuid,
    actor: Uuid,
    record_type: RecordType,
    fields: &std::collections::BTreeMap<String, Value>,
    f: impl FnOnce(&mut Json),
) -> Vec<u8> {
    let (_, change) = RecordDoc::create(id, record_type, fields, actor).unwrap();
    rewrite(&change.bytes, f)
}

/// Every probe for one target: the answers, in order.
async fn probes(env: &Env, prober: &Phone, target: Uuid, known: &[Vec<u8>]) -> Vec<Answer> {
    let actor = prober.store.device_id();
    let household = minimal_household(NGOC_LINH, "Y Đoán");
    let mut answers = Vec::new();

    // 1. A "creation" without a type.
    let untyped = creation(target, actor, RecordType::Household, &household, |c| {
        let ops = c["ops"].as_array_mut().unwrap();
        ops.retain(|op| op["key"] != "$type");
    });
    answers.push(probe(env, prober, vec![entry(target, &untyped)], &[]).await);
    // 2. A creation naming another record in `$id`.
    let misnamed = creation(target, actor, RecordType::Household, &household, |c| {
        for op in c["ops"].as_array_mut().unwrap() {
            if op["key"] == "$id" {
                op["value"] = json!(Uuid::now_v7().to_string());
            }
        }
    });
    answers.push(probe(env, prober, vec![entry(target, &misnamed)], &[]).await);
    // 3. A support case created by a collector without sensitive access.
    let case_fields = fields(&[
        ("commune", NGOC_LINH),
        ("person_id", &Uuid::now_v7().to_string()),
        ("case_kind", "domestic_violence"),
        ("opened", "2025-02-03"),
        ("status", "open"),
    ]);
    let case = creation(target, actor, RecordType::SupportCase, &case_fields, |_| {});
    answers.push(probe(env, prober, vec![entry(target, &case)], &[]).await);
    // 4. A household created in another commune.
    let elsewhere = minimal_household(MO_RAI, "Y Xa");
    let far = creation(target, actor, RecordType::Household, &elsewhere, |_| {});
    answers.push(probe(env, prober, vec![entry(target, &far)], &[]).await);
    // 5. An edit on a made-up creation: held, its dependency asked for.
    let (made_up, edit) = creation_and_edit(target, actor, NGOC_LINH, &format!("Dò {target}"));
    let deps = [hash_of(&made_up)];
    answers.push(probe(env, prober, vec![entry(target, &edit)], &deps).await);
    // 6. The same kind of edit, but with a nested object: not shaped like an edit.
    let (made_up, edit) = creation_and_edit(target, actor, NGOC_LINH, &format!("Lồng {target}"));
    let nested = rewrite(&edit, |c| {
        c["ops"][0]["action"] = json!("makeMap");
        c["ops"][0].as_object_mut().unwrap().remove("value");
    });
    answers.push(
        probe(
            env,
            prober,
            vec![entry(target, &nested)],
            &[hash_of(&made_up)],
        )
        .await,
    );
    // 7. An edit on the real history of a record (the target's own, if the prober saw it
    //    once; another record's for an unknown id): every dependency is "missing".
    let real = forge(target, actor, known, RecordDoc::soft_delete);
    let deps: Vec<[u8; 32]> = fieldsync_core::record::decode_change(&real)
        .unwrap()
        .deps()
        .iter()
        .map(|h| h.0)
        .collect();
    answers.push(probe(env, prober, vec![entry(target, &real)], &deps).await);
    // 8. Someone else's change passed off with a forged receipt.
    let stranger = Uuid::new_v4();
    let (_, theirs) = creation_and_edit(target, stranger, NGOC_LINH, "Lạ");
    let mut forged = entry(target, &theirs);
    forged.signature = [7; 64];
    answers.push(probe(env, prober, vec![forged], &[]).await);
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_ids_answer_like_unknown_ones_on_every_path() {
    let env = Env::start().await;
    env.user("carer", &[NGOC_LINH], true).await;
    env.user("morai", &[MO_RAI], false).await;
    // One prober per target, with the same rights: the same probe bytes pushed under two ids
    // would meet each other's held copy, whatever the ids.
    for name in ["prober", "prober2", "prober3"] {
        env.user(name, &[NGOC_LINH], false).await;
    }
    let sup = supervisor(&env, "sup", &[NGOC_LINH], false).await;
    let mut carer = env.phone("carer", Default::default()).await;
    let mut morai = env.phone("morai", Default::default()).await;
    let mut prober = env.phone("prober", Default::default()).await;
    let prober2 = env.phone("prober2", Default::default()).await;
    let prober3 = env.phone("prober3", Default::default()).await;
    let (_person, case) = open_case(&mut carer, "Ghi chú kín.");
    carer.sync(&env.http, env.addr(), 10).await.unwrap();
    let far = morai
        .store
        .create(RecordType::Household, &minimal_household(MO_RAI, "A Hyơk"))
        .unwrap();
    morai.sync(&env.http, env.addr(), 10).await.unwrap();
    let own = household(&mut prober, "Y Mình");
    prober.sync(&env.http, env.addr(), 10).await.unwrap();
    let unknown = Uuid::now_v7();
    let case_history = record_changes(&carer.store, case);
    let far_history = record_changes(&morai.store, far);
    let case_before = carer.store.get(case).unwrap();
    let far_before = morai.store.get(far).unwrap();

    // Every push probe: the same answers for all three.
    let on_unknown = probes(&env, &prober, unknown, &far_history).await;
    let on_case = probes(&env, &prober2, case, &case_history).await;
    let on_far = probes(&env, &prober3, far, &far_history).await;
    assert_eq!(
        on_case, on_unknown,
        "a support case answers like an unknown id"
    );
    assert_eq!(
        on_far, on_unknown,
        "another commune's record answers like an unknown id"
    );
    // The probes got the answers an attacker would hope to tell apart; none differ.
    let codes: Vec<_> = on_unknown.iter().map(|a| a.codes.clone()).collect();
    assert_eq!(
        codes,
        vec![
            vec![RejectCode::Invalid],
            vec![RejectCode::Invalid],
            vec![RejectCode::NotPermitted],
            vec![RejectCode::OutOfScope],
            vec![],
            vec![RejectCode::Invalid],
            vec![],
            vec![RejectCode::NotAuthor],
        ]
    );
    assert_eq!(on_unknown[4].need, vec![Some(0)]);
    assert_eq!(on_unknown[4].held_added, 1);
    assert_eq!(on_unknown[6].held_added, 1);

    // With the prober's held-change cap full, the same again: refused `TooLarge` alike.
    let actor = prober.store.device_id();
    let fill: Vec<ChangeEntry> = (0..1_000)
        .map(|i| {
            let id = Uuid::now_v7();
            entry(
                id,
                &creation_and_edit(id, actor, NGOC_LINH, &format!("Đầy {i}")).1,
            )
        })
        .collect();
    // Until every one is answered, held or (past the cap) refused: a request may leave part
    // of its push unanswered (the ingest time budget), to be sent again.
    for batch in fill.chunks(200) {
        push_all(&env, &prober, batch.to_vec()).await;
    }
    let mut full = Vec::new();
    for target in [unknown, case, far] {
        let (made_up, edit) = creation_and_edit(target, actor, NGOC_LINH, &format!("Cap {target}"));
        full.push(
            probe(
                &env,
                &prober,
                vec![entry(target, &edit)],
                &[hash_of(&made_up)],
            )
            .await,
        );
    }
    assert!(
        full.iter()
            .all(|a| a.codes == vec![RejectCode::TooLarge] && a.held_added == 0),
        "{full:?}"
    );

    // The one answer an existing id gives: a valid creation under it is refused `Invalid`, for
    // a hidden record exactly as for one the prober can see (a record has one creation).
    let household_fields = minimal_household(NGOC_LINH, "Y Trùng");
    let mut valid = Vec::new();
    for target in [case, far, own] {
        let again = creation(
            target,
            actor,
            RecordType::Household,
            &household_fields,
            |_| {},
        );
        valid.push(probe(&env, &prober, vec![entry(target, &again)], &[]).await);
    }
    assert!(
        valid.iter().all(|a| a.codes == vec![RejectCode::Invalid]),
        "{valid:?}"
    );

    // Every request of the supervisors' API that names a record.
    let visible = own;
    for token in [&sup, &prober.token] {
        let mut by_target = Vec::new();
        for target in [unknown, case, far] {
            let mut answers = Vec::new();
            for (method, path, body) in [
                ("GET", format!("/v1/records/{target}"), Json::Null),
                ("GET", format!("/v1/records/{target}/history"), Json::Null),
                (
                    "POST",
                    format!("/v1/records/{target}/edits"),
                    json!({"edit": "set_field", "field": "village", "value": "x"}),
                ),
                (
                    "POST",
                    format!("/v1/records/{target}/edits"),
                    json!({"edit": "review", "state": "approved", "comment": null}),
                ),
                ("POST", format!("/v1/records/{target}/unmerge"), Json::Null),
                (
                    "POST",
                    "/v1/duplicates/merge".to_owned(),
                    json!({"keep": visible, "duplicate": target, "take": []}),
                ),
                (
                    "POST",
                    "/v1/duplicates/merge".to_owned(),
                    json!({"keep": target, "duplicate": visible, "take": []}),
                ),
                (
                    "POST",
                    "/v1/duplicates/dismiss".to_owned(),
                    json!({"a": visible, "b": target}),
                ),
            ] {
                let (status, text) = call_text(&env, method, &path, Some(token), &body).await;
                answers.push((status, text.replace(&target.to_string(), "<id>")));
            }
            by_target.push(answers);
        }
        assert_eq!(
            by_target[1], by_target[0],
            "a case answers like an unknown id"
        );
        assert_eq!(
            by_target[2], by_target[0],
            "another commune's record answers like one"
        );
    }

    // None of it reached the records.
    carer.sync(&env.http, env.addr(), 10).await.unwrap();
    morai.sync(&env.http, env.addr(), 10).await.unwrap();
    assert_eq!(carer.store.get(case).unwrap(), case_before);
    assert_eq!(morai.store.get(far).unwrap(), far_before);
}
