//! Helpers of the adversarial end-to-end tests: raw HTTP calls that keep the status, hand-built
//! sync exchanges, forged and rewritten Automerge changes, and scans for leaked bytes.
//!
//! Used from `tests/tests/adversarial_*.rs` next to `mod common;`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use crate::common::{Env, PASSWORD};
use fieldsync_core::model::{RecordType, Value};
use fieldsync_core::protocol::{
    compress, decompress, ChangeEntry, RejectCode, SyncRequest, SyncResponse, MAX_BODY_BYTES,
};
use fieldsync_core::record::decode_change;
use fieldsync_core::{RecordDoc, Store};
use fieldsync_tests::phone::{enrol, Phone};
use serde_json::{json, Value as Json};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// Any HTTP call with an optional JSON body: the status and the JSON answer (Null if none).
pub async fn call(
    env: &Env,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &Json,
) -> (u16, Json) {
    let (status, text) = call_text(env, method, path, token, body).await;
    (status, serde_json::from_str(&text).unwrap_or(Json::Null))
}

/// Like [`call`] but the body as text, to scan for leaked bytes.
pub async fn call_text(
    env: &Env,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &Json,
) -> (u16, String) {
    let mut headers = vec![("content-type", "application/json".to_owned())];
    if let Some(t) = token {
        headers.push(("authorization", format!("Bearer {t}")));
    }
    let body = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    let response = env
        .http
        .request(env.addr(), method, path, &headers, body)
        .await
        .unwrap();
    (
        response.status,
        String::from_utf8_lossy(&response.body).into_owned(),
    )
}

/// Tries to enrol `user` claiming `actor` without its key, the only thing a colleague who saw
/// the actor in changes can do: by naming it, by passing it off as a public key (without the
/// secret there is no proof), and as an old actor without a key of its own. The status and the
/// JSON answer; every claim answers alike.
pub async fn enrol_claiming(env: &Env, user: &str, password: &str, actor: Uuid) -> (u16, Json) {
    let mut answers = Vec::new();
    let as_key = hex(&[actor.as_bytes().as_slice(), actor.as_bytes()].concat());
    for body in [
        json!({"username": user, "password": password, "actor": actor.to_string()}),
        json!({"username": user, "password": password, "public_key": as_key, "proof": "00".repeat(64)}),
        json!({"username": user, "password": password, "legacy_actors": [actor.to_string()]}),
    ] {
        answers.push(call(env, "POST", "/v1/enrol", None, &body).await);
    }
    let first = answers.remove(0);
    assert!(
        answers.iter().all(|a| a.0 == first.0),
        "claims answer alike: {answers:?}"
    );
    first
}

/// Creates an account through the demo admin; panics unless it is created.
pub async fn account(env: &Env, name: &str, role: &str, areas: &[&str], sensitive: bool) {
    let (status, body) = call(
        env,
        "POST",
        "/v1/admin/users",
        Some(&env.admin),
        &json!({ "username": name, "password": PASSWORD, "role": role,
                 "areas": areas, "sensitive_access": sensitive }),
    )
    .await;
    assert_eq!(status, 200, "creating {name}: {body}");
}

/// A supervisor account and a token for it.
pub async fn supervisor(env: &Env, name: &str, areas: &[&str], sensitive: bool) -> String {
    account(env, name, "supervisor", areas, sensitive).await;
    enrol(&env.http, env.addr(), name, PASSWORD).await.unwrap()
}

/// One hand-built sync exchange: the HTTP status and, on 200, the decoded response.
pub async fn exchange(
    env: &Env,
    token: &str,
    cursor: Vec<u8>,
    push: Vec<ChangeEntry>,
) -> (u16, Option<SyncResponse>, String) {
    let body = compress(
        &SyncRequest {
            cursor,
            max_pull_bytes: 64 * 1024,
            push,
        }
        .encode(),
    );
    let response = Phone::exchange(&env.http, env.addr(), token, body)
        .await
        .unwrap();
    if response.status != 200 {
        let text = String::from_utf8_lossy(&response.body).into_owned();
        return (response.status, None, text);
    }
    let decoded =
        SyncResponse::decode(&decompress(&response.body, MAX_BODY_BYTES).unwrap()).unwrap();
    (200, Some(decoded), String::new())
}

/// Pushes changes (with an empty cursor) and returns the decoded response; panics on non-200.
/// Pushes `changes` as `phone`: each is signed with the phone's key unless it already carries
/// a signature (a receipt, or a forgery the test made).
pub async fn push(env: &Env, phone: &Phone, changes: Vec<ChangeEntry>) -> SyncResponse {
    let changes = changes
        .into_iter()
        .map(|mut c| {
            if c.signature == [0; 64] {
                let hash = fieldsync_core::record::decode_change(&c.bytes)
                    .map(|change| change.hash().0)
                    .unwrap_or_default();
                c.signature = phone.store.sign_change(c.record_id, &hash);
            }
            c
        })
        .collect();
    let (status, response, text) = exchange(env, &phone.token, Vec::new(), changes).await;
    assert_eq!(status, 200, "push answered {status}: {text}");
    response.unwrap()
}

/// Pushes entries (each of its own record) until the server has answered every one: a request
/// ingests for a bounded time and leaves the rest for the next. Returns the records asked for
/// (`need`) and the refusal codes, one answer per entry.
pub async fn push_all(
    env: &Env,
    phone: &Phone,
    entries: Vec<ChangeEntry>,
) -> (Vec<Uuid>, Vec<RejectCode>) {
    let mut waiting = entries;
    let (mut needed, mut refused) = (Vec::new(), Vec::new());
    for _ in 0..100 {
        if waiting.is_empty() {
            return (needed, refused);
        }
        let response = push(env, phone, waiting.clone()).await;
        assert!(response.acked.is_empty());
        let answered: BTreeSet<Uuid> = response
            .need
            .iter()
            .map(|n| n.record_id)
            .chain(response.rejected.iter().map(|r| r.record_id))
            .collect();
        assert!(!answered.is_empty(), "no progress");
        needed.extend(response.need.iter().map(|n| n.record_id));
        refused.extend(response.rejected.iter().map(|r| r.code));
        waiting.retain(|e| !answered.contains(&e.record_id));
    }
    panic!("the server never answered every entry");
}

/// Every change a token's device can pull, from the start of the log.
pub async fn pull_everything(env: &Env, token: &str) -> Vec<ChangeEntry> {
    let mut cursor = Vec::new();
    let mut out = Vec::new();
    for _ in 0..10_000 {
        let (status, response, text) = exchange(env, token, cursor, Vec::new()).await;
        assert_eq!(status, 200, "pull answered {status}: {text}");
        let response = response.unwrap();
        out.extend(response.pull);
        cursor = response.cursor;
        if !response.more {
            return out;
        }
    }
    panic!("pull never finished");
}

/// The rejection codes of a response, by hash.
pub fn codes(response: &SyncResponse) -> BTreeMap<[u8; 32], RejectCode> {
    response.rejected.iter().map(|r| (r.hash, r.code)).collect()
}

pub fn hash_of(bytes: &[u8]) -> [u8; 32] {
    decode_change(bytes).unwrap().hash().0
}

/// The bytes a change carries, as sent and inflated: what a leak scan looks through.
pub fn readable_bytes(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    if let Ok(change) = decode_change(bytes) {
        out.extend_from_slice(change.raw_bytes());
    }
    out
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Text fields from pairs.
pub fn fields(pairs: &[(&str, &str)]) -> BTreeMap<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
        .collect()
}

/// Every change of a record in a store, as bytes, in causal order.
pub fn record_changes(store: &Store, id: Uuid) -> Vec<Vec<u8>> {
    store
        .doc(id)
        .unwrap()
        .changes()
        .into_iter()
        .map(|mut c| c.bytes().into_owned())
        .collect()
}

/// The hashes of every change of every record in a store.
pub fn all_hashes(store: &Store) -> BTreeSet<[u8; 32]> {
    let filter = fieldsync_core::store::ListFilter {
        include_inactive: true,
        limit: Some(100_000),
        ..Default::default()
    };
    store
        .list(&filter)
        .unwrap()
        .into_iter()
        .flat_map(|r| store.doc(r.id).unwrap().changes())
        .map(|c| c.hash().0)
        .collect()
}

/// A change made on top of `history` (a record's changes) under `actor`, which need not be
/// the caller's: the forger's tool. `edit` makes one edit on the document.
pub fn forge(
    record: Uuid,
    actor: Uuid,
    history: &[Vec<u8>],
    edit: impl FnOnce(
        &mut RecordDoc,
    ) -> fieldsync_core::Result<Option<fieldsync_core::record::RecordChange>>,
) -> Vec<u8> {
    let mut doc = RecordDoc::empty(record, actor);
    doc.apply(history.iter().map(|b| decode_change(b).unwrap()))
        .unwrap();
    edit(&mut doc).unwrap().unwrap().bytes
}

/// A creation and an edit on top of it, made under `actor` for record `id`: pushing only the
/// edit is a change with a missing dependency. `village` makes the pair unique. Returns
/// (creation, edit).
pub fn creation_and_edit(
    id: Uuid,
    actor: Uuid,
    commune: &str,
    village: &str,
) -> (Vec<u8>, Vec<u8>) {
    let (mut doc, creation) = RecordDoc::create(
        id,
        RecordType::Household,
        &fieldsync_core::generator::minimal_household(commune, "Y Đoán"),
        actor,
    )
    .unwrap();
    let edit = doc
        .set_field("village", &Value::from(village))
        .unwrap()
        .unwrap();
    (creation.bytes, edit.bytes)
}

/// The same change rewritten through Automerge's expanded (JSON) form: `f` may change any
/// operation, key or value; the result is a well-formed change with a correct hash and
/// checksum, as a hostile client would build it.
pub fn rewrite(bytes: &[u8], f: impl FnOnce(&mut Json)) -> Vec<u8> {
    let change = decode_change(bytes).unwrap();
    let mut expanded = change.decode();
    let mut json = serde_json::to_value(&expanded).unwrap();
    f(&mut json);
    expanded = serde_json::from_value(json).unwrap();
    rebuild(&change, expanded).raw_bytes().to_vec()
}

/// `C::from(e)` where `C` is the type of `like`: names Automerge's change type without a
/// dependency on the crate.
fn rebuild<C: From<E>, E>(_like: &C, e: E) -> C {
    C::from(e)
}

/// Rewrites every operation on `key`: its key becomes `new_key` and, if given, its value.
pub fn rewrite_key(bytes: &[u8], key: &str, new_key: &str, value: Option<Json>) -> Vec<u8> {
    let mut found = false;
    let out = rewrite(bytes, |json| {
        for op in json["ops"].as_array_mut().unwrap() {
            if op["key"] == key {
                found = true;
                op["key"] = json!(new_key);
                if let Some(v) = &value {
                    op["value"] = v.clone();
                }
            }
        }
    });
    assert!(found, "the change has no operation on {key}");
    out
}

/// A supervisor's (or admin's) view of a record: the status and its `view` JSON.
pub async fn merged_view(env: &Env, token: &str, id: Uuid) -> (u16, Json) {
    let (status, body) = call(
        env,
        "GET",
        &format!("/v1/records/{id}?include=view"),
        Some(token),
        &Json::Null,
    )
    .await;
    (status, body["view"].clone())
}

/// A record's current field values in a phone's store, as JSON (the merged view's shape).
pub fn phone_view(phone: &Phone, id: Uuid) -> Json {
    serde_json::to_value(phone.store.get(id).unwrap()).unwrap()
}

/// A change to push, unsigned: [`push`] signs it as the pushing phone.
pub fn entry(record_id: Uuid, bytes: &[u8]) -> ChangeEntry {
    ChangeEntry {
        record_id,
        bytes: bytes.to_vec(),
        signature: [0; 64],
    }
}

/// One number read straight from the running server's database (SQLite in WAL mode: readers
/// never block it; or PostgreSQL).
pub fn db_number(env: &Env, sql: &str) -> i64 {
    env.db_number(sql)
}

/// Hex of bytes (an actor id as Automerge writes it in op ids).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A household, a woman of it and a support case about her in Ngọc Linh, on a phone allowed
/// to write cases (not synced): the woman's id and the case's.
pub fn open_case(phone: &mut Phone, notes: &str) -> (Uuid, Uuid) {
    let household = phone
        .store
        .create(
            RecordType::Household,
            &fieldsync_core::generator::minimal_household(crate::common::NGOC_LINH, "Hộ Kín"),
        )
        .unwrap();
    let hid = household.to_string();
    let person = phone
        .store
        .create(
            RecordType::Person,
            &fields(&[
                ("commune", crate::common::NGOC_LINH),
                ("household_id", &hid),
                ("full_name", "Y Nạn Nhân"),
                ("sex", "female"),
                ("birth", "1996"),
                ("ethnicity", "14"),
            ]),
        )
        .unwrap();
    let pid = person.to_string();
    let case = phone
        .store
        .create(
            RecordType::SupportCase,
            &fields(&[
                ("commune", crate::common::NGOC_LINH),
                ("person_id", &pid),
                ("case_kind", "domestic_violence"),
                ("opened", "2025-02-03"),
                ("status", "open"),
                ("case_notes", notes),
            ]),
        )
        .unwrap();
    (person, case)
}

/// Two collectors of Ngọc Linh with a phone each, and a supervisor of the commune (her token).
pub async fn two_collectors_and_supervisor(env: &Env) -> (Phone, Phone, String) {
    env.user("a", &[crate::common::NGOC_LINH], false).await;
    env.user("b", &[crate::common::NGOC_LINH], false).await;
    let sup = supervisor(env, "sup", &[crate::common::NGOC_LINH], false).await;
    let a = env.phone("a", Default::default()).await;
    let b = env.phone("b", Default::default()).await;
    (a, b, sup)
}

/// A household of Ngọc Linh headed by `head`, created on `phone` (not synced).
pub fn household(phone: &mut Phone, head: &str) -> Uuid {
    phone
        .store
        .create(
            RecordType::Household,
            &fieldsync_core::generator::minimal_household(crate::common::NGOC_LINH, head),
        )
        .unwrap()
}

/// Runs `fieldsync-server admin <args> --data-dir DIR <file_flag> FILE` and returns what it
/// printed; panics unless it succeeds.
pub fn admin_command(
    args: &[&str],
    data_dir: &std::path::Path,
    file_flag: &str,
    file: &std::path::Path,
) -> String {
    let out = std::process::Command::new(fieldsync_tests::server::binary().unwrap())
        .arg("admin")
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .arg(file_flag)
        .arg(file)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "admin {args:?}: {printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    printed
}
