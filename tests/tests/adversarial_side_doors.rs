//! Adversarial: side doors around the sensitive boundary, against a real `serve --dev` server.
//! Nothing about a support case reaches an account without sensitive access through the audit
//! log (its entries, their free text, their number), through a count (stats, list totals,
//! filter counts, the duplicates badge) or through a merge ("absorbed", a search by an unseen
//! duplicate's name, cases of two communes merged into one); and every sync that hands cases to
//! a device is written down, with a list of the devices that cases reached.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod adversarial_support;
mod common;

use adversarial_support::*;
use common::*;
use fieldsync_core::model::{RecordType, Value};
use fieldsync_tests::phone::enrol;
use serde_json::{json, Value as Json};
use uuid::Uuid;

/// Put in a case's notes: found anywhere it must not be, the case leaked.
const MARKER: &str = "GHI-CHU-MAT-5d2f0b-không-được-lộ";
/// A supervisor's comment returning a case: free text about the woman.
const CASE_COMMENT: &str = "TRA-LAI-3a9e: chị bị chồng đánh lần thứ ba, đang ở nhà mẹ đẻ";
/// A comment returning an ordinary household: free text too.
const HOUSEHOLD_COMMENT: &str = "TRA-LAI-HO-77c1: hỏi lại hoàn cảnh của con gái";
const XOP: &str = "62.610.03";
/// The commune Ngọc Linh became on 1 July 2025.
const NGOC_LINH_NOW: &str = "51.102";
const NGOC_LINH_DISTRICT: &str = "62.610";
const MO_RAI_DISTRICT: &str = "62.616";

/// An admin account and a token for it.
async fn admin(env: &Env, name: &str, areas: &[&str], sensitive: bool) -> String {
    account(env, name, "admin", areas, sensitive).await;
    enrol(&env.http, env.addr(), name, PASSWORD).await.unwrap()
}

/// A GET that must answer 200: its JSON.
async fn get(env: &Env, token: &str, path: &str) -> Json {
    let (status, body) = call(env, "GET", path, Some(token), &Json::Null).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// The audit entries a token is given, newest first.
async fn audit(env: &Env, token: &str, query: &str) -> Vec<Json> {
    get(env, token, &format!("/v1/audit?limit=500{query}")).await["entries"]
        .as_array()
        .unwrap()
        .clone()
}

/// The server's id of the (only) device of `username`.
async fn device_of(env: &Env, username: &str) -> String {
    let devices = get(env, &env.admin, "/v1/admin/devices").await;
    let ids: Vec<&str> = devices
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["username"] == username)
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 1, "{username}: {devices}");
    ids[0].to_owned()
}

/// A woman of `household`, created on `phone` (not synced).
fn person(
    phone: &mut fieldsync_tests::phone::Phone,
    commune: &str,
    household: Uuid,
    name: &str,
    national_id: &str,
) -> Uuid {
    let household = household.to_string();
    phone
        .store
        .create(
            RecordType::Person,
            &fields(&[
                ("commune", commune),
                ("household_id", &household),
                ("full_name", name),
                ("sex", "female"),
                ("birth", "1994"),
                ("ethnicity", "14"),
                ("national_id", national_id),
            ]),
        )
        .unwrap()
}

/// A household of `commune` headed by `head`, created on `phone` (not synced).
fn household_in(phone: &mut fieldsync_tests::phone::Phone, commune: &str, head: &str) -> Uuid {
    phone
        .store
        .create(RecordType::Household, &minimal_household(commune, head))
        .unwrap()
}

/// A support case about `person`, created on `phone` (not synced).
fn case_of(phone: &mut fieldsync_tests::phone::Phone, commune: &str, person: Uuid) -> Uuid {
    phone
        .store
        .create(
            RecordType::SupportCase,
            &fields(&[
                ("commune", commune),
                ("person_id", &person.to_string()),
                ("case_kind", "domestic_violence"),
                ("opened", "2025-02-03"),
                ("status", "open"),
                ("case_notes", MARKER),
            ]),
        )
        .unwrap()
}

async fn sync(env: &Env, phone: &mut fieldsync_tests::phone::Phone) {
    phone.sync(&env.http, env.addr(), 10).await.unwrap();
}

/// A supervisor returns a case with a comment: the comment stays with the case, and the audit
/// log says that it was returned (with a comment) and is given to admins with sensitive access
/// only; an admin without it sees neither that entry, nor the look at the case, nor their
/// number. The household's return, which every admin of the area sees, keeps no comment either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_keeps_no_word_of_a_case_from_those_without_sensitive_access() {
    let env = Env::start().await;
    env.user("carer", &[NGOC_LINH], true).await;
    let sup = supervisor(&env, "sup.sens", &[NGOC_LINH], true).await;
    let admin_sens = admin(&env, "quantri.nhaycam", &["*"], true).await;
    let admin_elsewhere = admin(&env, "quantri.morai", &[MO_RAI_DISTRICT], true).await;
    let mut carer = env.phone("carer", Default::default()).await;
    let (_person, case) = open_case(&mut carer, MARKER);
    let home = household(&mut carer, "Hộ Thường");
    sync(&env, &mut carer).await;
    let plain_before = audit(&env, &env.admin, "").await;

    // The look, the return with its comment, an edit of the case; then the household.
    get(&env, &sup, &format!("/v1/records/{case}")).await;
    for (id, edit) in [
        (
            case,
            json!({"edit": "review", "state": "returned", "comment": CASE_COMMENT}),
        ),
        (
            case,
            json!({"edit": "set_field", "field": "status", "value": "closed"}),
        ),
        (
            home,
            json!({"edit": "review", "state": "returned", "comment": HOUSEHOLD_COMMENT}),
        ),
    ] {
        let (status, body) = call(
            &env,
            "POST",
            &format!("/v1/records/{id}/edits"),
            Some(&sup),
            &edit,
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    // The comment is with the case, for those who may read it.
    let record = get(&env, &sup, &format!("/v1/records/{case}")).await;
    assert_eq!(record["review"]["comment"], CASE_COMMENT);

    // The admin of every area without sensitive access: one new entry, the household's
    // return, and no word of the case anywhere.
    let plain_after = audit(&env, &env.admin, "").await;
    let newest_before = plain_before[0]["seq"].as_i64().unwrap();
    let new: Vec<&Json> = plain_after
        .iter()
        .filter(|e| e["seq"].as_i64().unwrap() > newest_before)
        .collect();
    assert_eq!(new.len(), 1, "{new:#?}");
    assert_eq!(
        (
            &new[0]["action"],
            &new[0]["target"],
            &new[0]["detail"],
            &new[0]["sensitive"]
        ),
        (
            &json!("review"),
            &json!(home.to_string()),
            &json!("returned, with a comment"),
            &json!(false)
        )
    );
    assert_eq!(plain_after.len(), plain_before.len() + 1);
    let (_, text) = call_text(
        &env,
        "GET",
        "/v1/audit?limit=500",
        Some(&env.admin),
        &Json::Null,
    )
    .await;
    for secret in [
        MARKER,
        CASE_COMMENT,
        HOUSEHOLD_COMMENT,
        &case.to_string(),
        "view_case",
    ] {
        assert!(
            !text.contains(secret),
            "the audit log shows {secret}: {text}"
        );
    }

    // An admin with sensitive access sees the look, the return and the edit, marked, and no
    // comment either: comments stay with the record.
    let sens = audit(&env, &admin_sens, "").await;
    let about_case: Vec<(&str, &str, bool)> = sens
        .iter()
        .filter(|e| e["target"] == case.to_string())
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["detail"].as_str().unwrap(),
                e["sensitive"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        about_case,
        [
            ("view_case", "record", true),
            ("edit", "set status", true),
            ("review", "returned, with a comment", true),
            ("view_case", "record", true),
        ]
    );
    let (_, text) = call_text(
        &env,
        "GET",
        "/v1/audit?limit=500",
        Some(&admin_sens),
        &Json::Null,
    )
    .await;
    for secret in [MARKER, CASE_COMMENT, HOUSEHOLD_COMMENT] {
        assert!(
            !text.contains(secret),
            "the audit log keeps {secret}: {text}"
        );
    }
    // An admin with sensitive access of another district manages neither the supervisor nor
    // the collector: none of their entries.
    let elsewhere = audit(&env, &admin_elsewhere, "").await;
    assert!(
        elsewhere
            .iter()
            .all(|e| e["username"] != "sup.sens" && e["username"] != "carer"),
        "{elsewhere:#?}"
    );
}

/// Everything a reader can count, by the reader's own requests: stats (admins), the record
/// list's total and its filter counts under several filters, the duplicates badge and tabs
/// (supervisors), the collectors' registrations, the audit log's length (admins).
async fn numbers(env: &Env, token: &str, role: &str) -> Json {
    let mut out = serde_json::Map::new();
    for q in [
        "",
        "deleted=true",
        "type=person",
        "type=support_case",
        "review=returned",
        "review=pending",
        "conflicts=true",
        "q=y%20ngoc",
        "commune=62.610.01",
    ] {
        let body = get(env, token, &format!("/v1/records?limit=1&{q}")).await;
        out.insert(
            format!("records?{q}"),
            json!({"total": body["total"], "counts": body["counts"]}),
        );
    }
    // Each collector's registrations per week: support cases only for readers with access.
    let collectors = get(env, token, "/v1/collectors").await;
    let registered: serde_json::Map<String, Json> = collectors["collectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["username"].as_str().unwrap().to_owned(),
                c["registered"].clone(),
            )
        })
        .collect();
    out.insert("collectors".into(), Json::Object(registered));
    if role == "supervisor" {
        for state in ["open", "dismissed", "merged"] {
            let body = get(env, token, &format!("/v1/duplicates?limit=0&state={state}")).await;
            out.insert(format!("duplicates?{state}"), body["total"].clone());
        }
    } else {
        let mut stats = get(env, token, "/v1/admin/stats").await;
        stats.as_object_mut().unwrap().remove("scope");
        out.insert("stats".into(), stats);
        out.insert("audit".into(), json!(audit(env, token, "").await.len()));
    }
    Json::Object(out)
}

/// Adds support cases (one deleted, one returned, one with a conflict) and then another
/// district's people (with a duplicate of a person of Ngọc Linh): the numbers of every reader
/// without sensitive access stay as they were through the first, those of Ngọc Linh's district
/// through the second. The stats subtraction (database total minus what an admin may list)
/// gives nothing any more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_count_counts_only_what_its_reader_may_see() {
    let env = Env::start().await;
    env.user("lan", &[NGOC_LINH], false).await;
    env.user("carer", &[NGOC_LINH], true).await;
    env.user("carer2", &[NGOC_LINH], true).await;
    env.user("rai", &[MO_RAI], false).await;
    let readers = [
        (
            "sup.plain",
            supervisor(&env, "sup.plain", &[NGOC_LINH_DISTRICT], false).await,
            "supervisor",
            false,
        ),
        (
            "sup.sens",
            supervisor(&env, "sup.sens", &[NGOC_LINH_DISTRICT], true).await,
            "supervisor",
            true,
        ),
        (
            "admin.huyen",
            admin(&env, "admin.huyen", &[NGOC_LINH_DISTRICT], false).await,
            "admin",
            false,
        ),
        (
            "admin.huyen.nc",
            admin(&env, "admin.huyen.nc", &[NGOC_LINH_DISTRICT], true).await,
            "admin",
            true,
        ),
        ("admin", env.admin.clone(), "admin", false),
    ];
    let sup_sens = readers[1].1.clone();
    let sup_province = supervisor(&env, "sup.tinh", &["62"], false).await;
    let admin_all = admin(&env, "admin.tinh.nc", &["*"], true).await;
    let mut lan = env.phone("lan", Default::default()).await;
    let mut carer = env.phone("carer", Default::default()).await;
    let mut carer2 = env.phone("carer2", Default::default()).await;
    let mut rai = env.phone("rai", Default::default()).await;

    // Ordinary records of Ngọc Linh: a household and two registrations of one woman.
    let home = household_in(&mut lan, NGOC_LINH, "Y Ngọc");
    let woman = person(&mut lan, NGOC_LINH, home, "Y Ngọc Hoa", "062194000101");
    person(&mut lan, NGOC_LINH, home, "Y Ngọc Hoa", "062194000101");
    sync(&env, &mut lan).await;
    sync(&env, &mut carer2).await;
    let mut before = Vec::new();
    for (_, token, role, _) in &readers {
        before.push(numbers(&env, token, role).await);
    }
    let province_before = numbers(&env, &sup_province, "supervisor").await;
    assert_eq!(before[0]["duplicates?open"], 1, "{}", before[0]);

    // Support cases about the woman: one open (and edited on two phones at once: a
    // conflict), one deleted, one returned by the supervisor with access.
    let open = case_of(&mut carer, NGOC_LINH, woman);
    let deleted = case_of(&mut carer, NGOC_LINH, woman);
    let returned = case_of(&mut carer, NGOC_LINH, woman);
    carer.store.soft_delete(deleted).unwrap();
    sync(&env, &mut carer).await;
    sync(&env, &mut carer2).await;
    carer
        .store
        .set_field(open, "case_notes", &Value::from("ghi chú A"))
        .unwrap();
    carer2
        .store
        .set_field(open, "case_notes", &Value::from("ghi chú B"))
        .unwrap();
    sync(&env, &mut carer).await;
    sync(&env, &mut carer2).await;
    let (status, body) = call(
        &env,
        "POST",
        &format!("/v1/records/{returned}/edits"),
        Some(&sup_sens),
        &json!({"edit": "review", "state": "returned", "comment": "thiếu ngày"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let mut after_cases = Vec::new();
    for ((name, token, role, sensitive), before) in readers.iter().zip(&before) {
        let now = numbers(&env, token, role).await;
        if *sensitive {
            // The control: those with access count the cases.
            assert_ne!(&now, before, "{name} counts the cases");
        } else {
            assert_eq!(&now, before, "{name} can count the cases");
        }
        after_cases.push(now);
    }
    let sens_list = get(&env, &sup_sens, "/v1/records?limit=1&type=support_case").await;
    assert_eq!(sens_list["total"], 2);
    assert_eq!(sens_list["counts"]["deleted"], 1);
    assert_eq!(sens_list["counts"]["conflicts"], 1);
    assert_eq!(sens_list["counts"]["review"]["returned"], 1);

    // The stats subtraction: the database's records minus those an admin may list is what it
    // may not see. For the admin of every area without sensitive access that is nothing now;
    // only the admin who sees the whole database gets the database's counts.
    let listable = |token: String| {
        let env = &env;
        async move {
            let active = get(env, &token, "/v1/records?limit=1").await["total"]
                .as_u64()
                .unwrap();
            let inactive = get(env, &token, "/v1/records?limit=1&deleted=true").await["total"]
                .as_u64()
                .unwrap();
            active + inactive
        }
    };
    let database = env.stats().await;
    let stats = get(&env, &env.admin, "/v1/admin/stats").await;
    assert_eq!(stats["scope"], "visible");
    assert_eq!(
        stats["records"].as_u64(),
        Some(listable(env.admin.clone()).await)
    );
    assert_eq!(
        database["records"].as_u64().unwrap() - stats["records"].as_u64().unwrap(),
        3,
        "the control: the database holds the three cases"
    );
    assert_eq!(
        stats["changes"].as_i64().unwrap(),
        db_number(
            &env,
            "SELECT COUNT(*) FROM changes c JOIN records r ON r.id = c.record_id
             WHERE NOT r.sensitive AND r.record_type != 'support_case'"
        )
    );
    assert_eq!(
        stats["log_entries"].as_i64().unwrap(),
        db_number(
            &env,
            "SELECT COUNT(*) FROM log WHERE stream NOT LIKE '%#sensitive'"
        )
    );
    let whole = get(&env, &admin_all, "/v1/admin/stats").await;
    assert_eq!(whole["scope"], "database");
    for key in ["records", "changes", "held", "log_entries"] {
        assert_eq!(whole[key], database[key], "{key}");
    }
    assert_eq!(
        whole["records"].as_u64(),
        Some(listable(admin_all.clone()).await)
    );

    // Another district's people, one of them with the national ID of the woman of Ngọc Linh
    // and two alike: pairs the district's supervisors must not count.
    let far = household_in(&mut rai, MO_RAI, "Y Rai");
    person(&mut rai, MO_RAI, far, "Y Rai Mai", "062194000101");
    person(&mut rai, MO_RAI, far, "Y Rai Lê", "062194000202");
    person(&mut rai, MO_RAI, far, "Y Rai Lê", "062194000202");
    sync(&env, &mut rai).await;
    for ((name, token, role, _), before) in readers.iter().zip(&after_cases).take(4) {
        assert_eq!(
            &numbers(&env, token, role).await,
            before,
            "{name} counts another district's records"
        );
    }
    // The control: the province's supervisor counts the new pairs.
    let province = numbers(&env, &sup_province, "supervisor").await;
    assert_ne!(
        province["duplicates?open"],
        province_before["duplicates?open"]
    );
    assert_eq!(
        get(&env, &env.admin, "/v1/admin/stats").await["records"].as_u64(),
        Some(listable(env.admin.clone()).await)
    );
}

/// Every sync that delivers changes of support cases to a device writes an audit entry (which
/// device, whose, how many cases), idle syncs and syncs of other records do not; the devices
/// cases reached are listed for admins with sensitive access, revoked ones included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_that_hands_cases_to_a_device_is_audited_and_the_devices_are_listed() {
    let env = Env::start().await;
    env.user("carer", &[NGOC_LINH], true).await;
    env.user("carer2", &[NGOC_LINH], true).await;
    env.user("plain", &[NGOC_LINH], false).await;
    env.user("far", &[MO_RAI], true).await;
    let admin_sens = admin(&env, "quantri.nhaycam", &["*"], true).await;
    let admin_elsewhere = admin(&env, "quantri.morai", &[MO_RAI_DISTRICT], true).await;
    let mut a = env.phone("carer", Default::default()).await;
    let mut b = env.phone("carer2", Default::default()).await;
    let mut c = env.phone("plain", Default::default()).await;
    let mut d = env.phone("far", Default::default()).await;
    let (a_id, b_id) = (
        device_of(&env, "carer").await,
        device_of(&env, "carer2").await,
    );
    let deliveries = |token: String| {
        let env = &env;
        async move {
            audit(env, &token, "")
                .await
                .into_iter()
                .filter(|e| e["action"] == "sync_cases")
                .collect::<Vec<_>>()
        }
    };

    // A writes two cases (with their households and women): its own sync pulls nothing of them.
    let (_, case1) = open_case(&mut a, MARKER);
    open_case(&mut a, MARKER);
    sync(&env, &mut a).await;
    assert!(deliveries(admin_sens.clone()).await.is_empty());

    // B receives them: one entry, two cases.
    sync(&env, &mut b).await;
    let entries = deliveries(admin_sens.clone()).await;
    assert_eq!(entries.len(), 1, "{entries:#?}");
    let e = &entries[0];
    assert_eq!(
        (
            &e["device_id"],
            &e["username"],
            &e["detail"],
            &e["sensitive"]
        ),
        (
            &json!(b_id),
            &json!("carer2"),
            &json!("2 cases"),
            &json!(true)
        )
    );
    // Idle syncs, a collector without access, a district without cases: nothing.
    sync(&env, &mut b).await;
    sync(&env, &mut a).await;
    sync(&env, &mut c).await;
    sync(&env, &mut d).await;
    assert_eq!(deliveries(admin_sens.clone()).await.len(), 1);

    // B edits a case; A receives the edit: one entry for A, one case.
    b.store
        .set_field(case1, "case_notes", &Value::from("đã gặp"))
        .unwrap();
    sync(&env, &mut b).await;
    sync(&env, &mut a).await;
    let entries = deliveries(admin_sens.clone()).await;
    assert_eq!(entries.len(), 2, "{entries:#?}");
    assert_eq!(
        (&entries[0]["device_id"], &entries[0]["detail"]),
        (&json!(a_id), &json!("1 cases"))
    );
    // One device's entries.
    let of_b = audit(&env, &admin_sens, &format!("&device={b_id}")).await;
    assert!(of_b.iter().all(|e| e["device_id"] == b_id));
    assert!(of_b.iter().any(|e| e["action"] == "sync_cases"));

    // An admin without sensitive access sees none of it, and may not list the devices.
    assert!(deliveries(env.admin.clone()).await.is_empty());
    assert!(audit(&env, &env.admin, &format!("&device={b_id}"))
        .await
        .iter()
        .all(|e| e["sensitive"] == false));
    let (status, _) = call(
        &env,
        "GET",
        "/v1/audit/sensitive-devices",
        Some(&env.admin),
        &Json::Null,
    )
    .await;
    assert_eq!(status, 403);

    // The devices cases reached: A (wrote two, received one edit), B (received two, wrote one
    // edit), the newest delivery first; not C nor D.
    let listed = |token: String| {
        let env = &env;
        async move {
            get(env, &token, "/v1/audit/sensitive-devices").await["devices"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| {
                    (
                        d["device_id"].as_str().unwrap().to_owned(),
                        d["username"].as_str().unwrap().to_owned(),
                        d["deliveries"].as_u64().unwrap(),
                        d["cases_written"].as_u64().unwrap(),
                        d["revoked"].as_bool().unwrap(),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        listed(admin_sens.clone()).await,
        [
            (a_id.clone(), "carer".to_owned(), 1, 2, false),
            (b_id.clone(), "carer2".to_owned(), 1, 1, false),
        ]
    );
    let devices = get(&env, &admin_sens, "/v1/audit/sensitive-devices").await;
    assert!(
        devices["devices"][0]["last_delivery_at"].is_string(),
        "{devices}"
    );
    // An admin of another district manages neither collector.
    assert!(listed(admin_elsewhere).await.is_empty());
    // A lost phone, revoked, stays on the list.
    let (status, _) = call(
        &env,
        "POST",
        &format!("/v1/admin/devices/{b_id}/revoke"),
        Some(&env.admin),
        &Json::Null,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        listed(admin_sens).await[1],
        (b_id, "carer2".to_owned(), 1, 1, true)
    );
}

/// The merge rules: two records of one type that the supervisor may both see, and support
/// cases only by a supervisor with sensitive access and within one commune (a pre-2025 commune
/// counting as the one it became). After a province supervisor merges another district's
/// woman into one of Ngọc Linh, Ngọc Linh's supervisor sees nothing of her: not under
/// "absorbed", not by searching her name; undoing needs both records too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merges_follow_the_rules_and_absorbed_shows_only_what_the_viewer_may_see() {
    let env = Env::start().await;
    env.user("carer", &[NGOC_LINH, XOP, MO_RAI], true).await;
    let province = supervisor(&env, "sup.tinh", &["62"], true).await;
    let province_plain = supervisor(&env, "sup.tinh.thuong", &["62"], false).await;
    let ngoc_linh = supervisor(&env, "sup.ngoclinh", &[NGOC_LINH_DISTRICT], true).await;
    let mo_rai = supervisor(&env, "sup.morai", &[MO_RAI_DISTRICT], true).await;
    let admin_sens = admin(&env, "quantri.nhaycam", &["*"], true).await;
    let mut carer = env.phone("carer", Default::default()).await;
    let home = household_in(&mut carer, NGOC_LINH, "Y Lan");
    let lan = person(&mut carer, NGOC_LINH, home, "Y Lan", "062194000301");
    let far = household_in(&mut carer, MO_RAI, "Y Khuất");
    let hidden_name = "Y Khuất Mặt";
    let hidden = person(&mut carer, MO_RAI, far, hidden_name, "062194000301");
    let kept_case = case_of(&mut carer, NGOC_LINH, lan);
    let twin_case = case_of(&mut carer, NGOC_LINH, lan);
    let renamed_case = case_of(&mut carer, NGOC_LINH_NOW, lan);
    let xop_case = case_of(&mut carer, XOP, lan);
    let far_case = case_of(&mut carer, MO_RAI, hidden);
    sync(&env, &mut carer).await;
    let merge = |token: String, keep: Uuid, duplicate: Uuid| {
        let env = &env;
        async move {
            call(
                env,
                "POST",
                "/v1/duplicates/merge",
                Some(&token),
                &json!({"keep": keep, "duplicate": duplicate, "take": []}),
            )
            .await
        }
    };
    let unmerge = |token: String, id: Uuid| {
        let env = &env;
        async move {
            call(
                env,
                "POST",
                &format!("/v1/records/{id}/unmerge"),
                Some(&token),
                &Json::Null,
            )
            .await
        }
    };
    let status_of = |id: Uuid| {
        let env = &env;
        let token = province.clone();
        async move {
            get(env, &token, &format!("/v1/records/{id}")).await["status"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };

    // Cases of two districts, or of two communes of one district: refused, nothing written.
    for other in [far_case, xop_case] {
        let (status, body) = merge(province.clone(), kept_case, other).await;
        assert_eq!(status, 400, "{body}");
        assert!(
            body["message"].as_str().unwrap().contains("one commune"),
            "{body}"
        );
        assert_eq!(status_of(other).await, "active");
    }
    // A case into a woman: refused.
    assert_eq!(merge(province.clone(), lan, kept_case).await.0, 400);
    // Without sensitive access the cases do not exist: as for unknown ids.
    let on_cases = merge(province_plain.clone(), kept_case, twin_case).await;
    let on_unknown = merge(province_plain.clone(), Uuid::now_v7(), Uuid::now_v7()).await;
    assert_eq!(on_cases.0, 404);
    assert_eq!(on_cases.0, on_unknown.0);
    assert_eq!(on_cases.1["error"], on_unknown.1["error"]);
    // One commune, and across the 2025 merger the commune it became: merged.
    for twin in [twin_case, renamed_case] {
        let (status, body) = merge(province.clone(), kept_case, twin).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(status_of(twin).await, "merged");
    }

    // The province merges the other district's woman into Ngọc Linh's (women may move).
    let (status, body) = merge(province.clone(), lan, hidden).await;
    assert_eq!(status, 200, "{body}");
    let seen = get(&env, &province, &format!("/v1/records/{lan}")).await;
    assert_eq!(seen["absorbed"][0]["id"], hidden.to_string(), "the control");
    assert!(seen["absorbed"][0]["title"]
        .as_str()
        .unwrap()
        .contains(hidden_name));
    // Ngọc Linh's supervisor: the woman of Ngọc Linh, without the other.
    let (_, page) = call_text(
        &env,
        "GET",
        &format!("/v1/records/{lan}"),
        Some(&ngoc_linh),
        &Json::Null,
    )
    .await;
    let record: Json = serde_json::from_str(&page).unwrap();
    assert_eq!(record["absorbed"], json!([]));
    assert!(!page.contains(&hidden.to_string()), "{page}");
    assert!(!page.contains(hidden_name), "{page}");
    // Nor does a search by her name find Ngọc Linh's woman for her (it does for the province).
    let search = "/v1/records?q=khuat%20mat";
    assert_eq!(get(&env, &ngoc_linh, search).await["total"], 0);
    let found = get(&env, &province, search).await;
    assert_eq!(found["records"][0]["id"], lan.to_string(), "{found}");
    // Mô Rai's supervisor sees her merged, into a record it cannot open.
    let moved = get(&env, &mo_rai, &format!("/v1/records/{hidden}")).await;
    assert_eq!(moved["status"], "merged");
    assert_eq!(
        call(
            &env,
            "GET",
            &format!("/v1/records/{lan}"),
            Some(&mo_rai),
            &Json::Null
        )
        .await
        .0,
        404
    );

    // Undo needs both records: neither district's supervisor may, the province may.
    for token in [&ngoc_linh, &mo_rai] {
        let on_unknown = unmerge(token.clone(), Uuid::now_v7()).await;
        let answer = unmerge(token.clone(), hidden).await;
        assert_eq!(
            (answer.0, &answer.1["error"]),
            (404, &on_unknown.1["error"]),
            "{answer:?}"
        );
    }
    let (status, body) = unmerge(province.clone(), hidden).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["was_merged_into"], lan.to_string());
    // A case's merge: not without sensitive access.
    assert_eq!(unmerge(province_plain, twin_case).await.0, 404);
    assert_eq!(unmerge(province.clone(), twin_case).await.0, 200);

    // The merges of cases are entries for sensitive eyes; the woman's merge is not.
    let targets = |entries: Vec<Json>| -> Vec<(String, String)> {
        entries
            .into_iter()
            .filter(|e| e["action"] == "merge" || e["action"] == "unmerge")
            .map(|e| {
                (
                    e["action"].as_str().unwrap().to_owned(),
                    e["target"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let plain = targets(audit(&env, &env.admin, "").await);
    assert_eq!(
        plain,
        [
            ("unmerge".to_owned(), hidden.to_string()),
            ("merge".to_owned(), hidden.to_string()),
        ]
    );
    let sens = targets(audit(&env, &admin_sens, "").await);
    assert_eq!(
        sens,
        [
            ("unmerge".to_owned(), twin_case.to_string()),
            ("unmerge".to_owned(), hidden.to_string()),
            ("merge".to_owned(), hidden.to_string()),
            ("merge".to_owned(), renamed_case.to_string()),
            ("merge".to_owned(), twin_case.to_string()),
        ]
    );
}
