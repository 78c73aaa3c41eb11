//! Adversarial: restoring the server from a backup taken while it ran. Phones made more edits
//! after the backup (new records, and edits of records made before it, some building on other
//! phones' lost changes); after the restore they pull again from the start and push back their
//! own changes, and the server ends up with every change any phone saw, with every phone agreeing.
//! A phone enrolled after the backup must get its author back, not a colleague who knows it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod adversarial_support;
mod common;

use adversarial_support::*;
use common::*;
use fieldsync_core::model::{RecordType, Value};
use fieldsync_core::protocol::RejectCode;
use fieldsync_core::store::ListFilter;
use fieldsync_tests::deployment::skip_unless_sqlite;
use fieldsync_tests::phone::{Phone, PhoneError};
use fieldsync_tests::server::ServerProcess;
use serde_json::Value as Json;
use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use uuid::Uuid;

/// Why this file runs on SQLite only.
const SQLITE_BACKUP: &str = "it backs up and restores the SQLite file (`admin backup`, \
     `admin restore`) under the one server; PostgreSQL's backups (pg_dump) are tested in \
     server/tests/postgres_restore.rs";

fn ids(phone: &Phone) -> BTreeSet<Uuid> {
    let filter = ListFilter {
        include_inactive: true,
        limit: Some(100_000),
        ..Default::default()
    };
    phone
        .store
        .list(&filter)
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restore_the_server_gets_back_every_change_phones_saw() {
    if skip_unless_sqlite(SQLITE_BACKUP) {
        return;
    }
    let mut env = Env::start().await;
    for name in ["a", "b", "c", "d"] {
        env.user(name, &[NGOC_LINH], false).await;
    }
    let sup_before = supervisor(&env, "sup", &[NGOC_LINH], false).await;
    let mut a = env.phone("a", Default::default()).await;
    let mut b = env.phone("b", Default::default()).await;
    let mut c = env.phone("c", Default::default()).await;

    // Before the backup.
    let h1 = household(&mut a, "Y Blơ");
    let h2 = household(&mut a, "A Hyơk");
    let h3 = b
        .store
        .create(
            RecordType::Household,
            &minimal_household(NGOC_LINH, "Đinh Thị Thúy"),
        )
        .unwrap();
    for phone in [&mut a, &mut b, &mut c] {
        phone.sync(&env.http, env.addr(), 10).await.unwrap();
    }
    a.sync(&env.http, env.addr(), 10).await.unwrap();

    let backup_file = env.dir.path().join("backup.sqlite");
    let data_dir = env.server.data_dir.clone();
    admin_command(&["backup"], &data_dir, "--to", &backup_file);

    // After the backup: new records, edits of old ones, edits on top of other phones' new
    // changes, and a phone enrolled only now.
    a.store.set_field(h1, "village", &"Làng Le".into()).unwrap();
    let h4 = household(&mut a, "Nguyễn Thị Hoà");
    a.sync(&env.http, env.addr(), 10).await.unwrap();
    b.store
        .set_field(h2, "poverty", &"near_poor".into())
        .unwrap();
    let h5 = b
        .store
        .create(
            RecordType::Household,
            &minimal_household(NGOC_LINH, "Ksor H'Nhi"),
        )
        .unwrap();
    b.store.set_field(h5, "village", &"Thôn 2".into()).unwrap();
    b.sync(&env.http, env.addr(), 10).await.unwrap();
    c.sync(&env.http, env.addr(), 10).await.unwrap();
    c.store
        .set_field(h4, "village", &"Thôn Đăk Mế".into())
        .unwrap();
    c.store
        .set_field(h1, "head_name", &"Y Blơ Niê".into())
        .unwrap();
    c.store
        .set_field(h3, "village", &"Làng Kon Klor".into())
        .unwrap();
    c.sync(&env.http, env.addr(), 10).await.unwrap();
    let mut d = env.phone("d", Default::default()).await;
    d.sync(&env.http, env.addr(), 10).await.unwrap();
    d.store
        .set_field(h5, "head_name", &"Ksor H'Nhi Niê".into())
        .unwrap();
    let h6 = d
        .store
        .create(
            RecordType::Household,
            &minimal_household(NGOC_LINH, "A Thái"),
        )
        .unwrap();
    d.sync(&env.http, env.addr(), 10).await.unwrap();
    for phone in [&mut a, &mut b, &mut c] {
        phone.sync(&env.http, env.addr(), 10).await.unwrap();
    }
    // Unsynced work at the time of the restore, too.
    a.store
        .set_field(h6, "village", &"Làng Mới".into())
        .unwrap();

    // Everything any phone saw acknowledged or pulled: all of it was on the server.
    let seen: BTreeSet<[u8; 32]> = [&a, &b, &c, &d]
        .iter()
        .flat_map(|p| all_hashes(&p.store))
        .collect();
    let expected_views: Vec<(Uuid, Json)> = [h1, h2, h3, h4, h5, h6]
        .iter()
        .map(|id| (*id, phone_view(&d, *id)))
        .collect();
    assert_eq!(
        env.stats().await["changes"].as_u64(),
        Some(seen.len() as u64 - 1)
    );

    // Stop, restore, start again on the same directory.
    assert!(env.server.terminate(), "clean shutdown");
    admin_command(&["restore"], &data_dir, "--from", &backup_file);
    env.server = ServerProcess::start(&data_dir, "127.0.0.1:0").unwrap();
    // The restored database, and the one it replaced (kept beside it), are private.
    for file in std::fs::read_dir(&data_dir).unwrap() {
        let path = file.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("fieldsync.") {
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{name}");
        }
    }
    let restored = env.stats().await;
    assert!(restored["changes"].as_u64().unwrap() < seen.len() as u64);

    // The phone enrolled after the backup is unknown now: it enrols again, same store.
    let err = d.sync(&env.http, env.addr(), 10).await.unwrap_err();
    assert!(
        matches!(err, PhoneError::Status { status: 401, .. }),
        "{err}"
    );
    d.token =
        fieldsync_tests::phone::enrol_as(&env.http, env.addr(), "d", PASSWORD, Some(&d.store))
            .await
            .unwrap();

    for _round in 0..2 {
        for phone in [&mut c, &mut a, &mut d, &mut b] {
            phone.sync(&env.http, env.addr(), 20).await.unwrap();
        }
    }

    // Every change seen before, plus the one made offline, is on the server, once.
    let now: BTreeSet<[u8; 32]> = all_hashes(&a.store);
    assert!(
        now.is_superset(&seen),
        "{} missing",
        seen.difference(&now).count()
    );
    assert_eq!(now.len(), seen.len());
    let stats = env.stats().await;
    assert_eq!(stats["changes"].as_u64(), Some(now.len() as u64));
    assert_eq!(stats["records"].as_u64(), Some(6));
    assert_eq!(stats["held"].as_u64(), Some(0));
    for phone in [&a, &b, &c, &d] {
        assert_eq!(phone.store.unacked_count().unwrap(), 0);
        assert_eq!(all_hashes(&phone.store), now);
        assert_eq!(ids(phone), ids(&a));
        assert!(phone.store.set_aside().unwrap().is_empty());
        assert!(phone.store.refused_edits(None).unwrap().is_empty());
    }
    // The same values everywhere: phones, a fresh phone, the supervisors' view.
    let mut fresh = env.phone("b", Default::default()).await;
    fresh.sync(&env.http, env.addr(), 20).await.unwrap();
    // (The supervisor enrolled before the backup: its token is in the restored database.)
    let sup = sup_before;
    for (id, before) in &expected_views {
        let view = phone_view(&a, *id);
        for phone in [&b, &c, &d, &fresh] {
            assert_eq!(phone_view(phone, *id), view, "{id}");
        }
        let (status, merged) = merged_view(&env, &sup, *id).await;
        assert_eq!((status, &merged), (200, &view), "{id}");
        if *id != h6 {
            assert_eq!(&view, before, "{id} as before the restore");
        }
    }
    assert_eq!(
        a.store.get(h6).unwrap().fields["village"],
        Value::from("Làng Mới")
    );
    assert_eq!(
        fresh.store.get(h4).unwrap().fields["village"],
        Value::from("Thôn Đăk Mế")
    );
}

/// Takes a backup of the running server: the backup file and the data directory.
fn backup(env: &Env, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let file = env.dir.path().join(name);
    let data_dir = env.server.data_dir.clone();
    admin_command(&["backup"], &data_dir, "--to", &file);
    (file, data_dir)
}

/// Stops the server, restores `file` and starts it again.
fn restore(env: &mut Env, data_dir: &Path, file: &Path) {
    assert!(env.server.terminate(), "clean shutdown");
    admin_command(&["restore"], data_dir, "--from", file);
    env.server = ServerProcess::start(data_dir, "127.0.0.1:0").unwrap();
}

/// A phone enrolled after the backup: its author (Automerge actor) is unknown to the restored
/// server, but every colleague who pulled its changes knows it. A colleague cannot take the
/// author over; what it can do is give the author's changes back, with the server's receipts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restore_a_colleague_gives_back_but_cannot_take_over_a_phones_author() {
    if skip_unless_sqlite(SQLITE_BACKUP) {
        return;
    }
    let mut env = Env::start().await;
    env.user("victim", &[NGOC_LINH], false).await;
    env.user("squatter", &[NGOC_LINH], false).await;
    let sup = supervisor(&env, "sup", &[NGOC_LINH], false).await;
    let mut squatter = env.phone("squatter", Default::default()).await;
    let (backup_file, data_dir) = backup(&env, "backup.sqlite");

    let mut victim = env.phone("victim", Default::default()).await;
    let victim_actor = victim.store.device_id();
    let h = household(&mut victim, "Y Blơ");
    victim.sync(&env.http, env.addr(), 10).await.unwrap();
    squatter.sync(&env.http, env.addr(), 10).await.unwrap();
    let history = record_changes(&squatter.store, h);
    assert_eq!(
        fieldsync_core::record::decode_change(&history[0])
            .unwrap()
            .actor_id()
            .to_bytes(),
        victim_actor.as_bytes(),
        "the colleague knows the victim's author"
    );
    let receipt = squatter
        .store
        .receipt(&hash_of(&history[0]))
        .unwrap()
        .unwrap();

    restore(&mut env, &data_dir, &backup_file);

    // The colleague is first back and tries to claim the victim's author: the restored server
    // no longer knows who it belongs to, but claiming it takes its key.
    let (status, _) = enrol_claiming(&env, "squatter", PASSWORD, victim_actor).await;
    assert_eq!(status, 400, "an author cannot be claimed without its key");
    // Its own phone, enrolled again, even naming the victim's author as an old one of its own,
    // writes under its own author only.
    let shown = squatter.store.enrolment("squatter");
    let mut body = shown.request("squatter", PASSWORD, "phone");
    body["legacy_actors"] = serde_json::json!([victim_actor.to_string()]);
    let (status, answer) = call(&env, "POST", "/v1/enrol", None, &body).await;
    assert_eq!(status, 200, "{answer}");
    squatter.token = answer["token"].as_str().unwrap().to_owned();
    let forged = forge(h, victim_actor, &history, |d| {
        d.set_field("village", &"Làng Giả".into())
    });
    let mut given_back = entry(h, &history[0]);
    given_back.signature = receipt;
    let response = push(&env, &squatter, vec![given_back, entry(h, &forged)]).await;
    assert_eq!(
        response.acked,
        vec![hash_of(&history[0])],
        "given back with its receipt"
    );
    assert_eq!(
        codes(&response).into_values().collect::<Vec<_>>(),
        vec![RejectCode::NotAuthor],
        "the forgery carries no receipt"
    );
    // The victim comes back: it gets its author back and its record is intact.
    victim.token = fieldsync_tests::phone::enrol_as(
        &env.http,
        env.addr(),
        "victim",
        PASSWORD,
        Some(&victim.store),
    )
    .await
    .expect("the victim enrols again with its own author");
    victim.sync(&env.http, env.addr(), 10).await.unwrap();
    assert!(victim.store.refused_edits(None).unwrap().is_empty());
    let (status, merged) = merged_view(&env, &sup, h).await;
    assert_eq!((status, merged), (200, phone_view(&victim, h)));
}

/// (a) Phone A creates a record after the backup and phone B edits it; the restore loses both;
/// A's phone is gone. B alone gives the whole record back, and a new phone receives it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_whose_author_phone_is_gone_comes_back_whole_from_a_colleague() {
    if skip_unless_sqlite(SQLITE_BACKUP) {
        return;
    }
    let mut env = Env::start().await;
    for name in ["a", "b", "c"] {
        env.user(name, &[NGOC_LINH], false).await;
    }
    let sup = supervisor(&env, "sup", &[NGOC_LINH], false).await;
    let mut a = env.phone("a", Default::default()).await;
    let mut b = env.phone("b", Default::default()).await;
    let (backup_file, data_dir) = backup(&env, "backup.sqlite");

    let h = household(&mut a, "Y Blơ");
    a.store.set_field(h, "village", &"Làng Le".into()).unwrap();
    a.sync(&env.http, env.addr(), 10).await.unwrap();
    b.sync(&env.http, env.addr(), 10).await.unwrap();
    b.store
        .set_field(h, "head_name", &"Y Blơ Niê".into())
        .unwrap();
    b.sync(&env.http, env.addr(), 10).await.unwrap();
    assert_eq!(b.store.unacked_count().unwrap(), 0);
    let expected = phone_view(&b, h);
    let seen = all_hashes(&b.store);
    assert_eq!(seen.len(), 3);
    drop(a); // lost in the river

    restore(&mut env, &data_dir, &backup_file);
    assert_eq!(
        env.stats().await["changes"].as_u64(),
        Some(0),
        "the restore lost them"
    );
    b.sync(&env.http, env.addr(), 20).await.unwrap();

    let stats = env.stats().await;
    assert_eq!(stats["changes"].as_u64(), Some(3), "{stats}");
    assert_eq!(stats["held"].as_u64(), Some(0));
    assert_eq!(b.store.unacked_count().unwrap(), 0);
    assert_eq!(b.store.relay_pending().unwrap(), 0);
    assert!(b.store.refused_edits(None).unwrap().is_empty());
    let (status, merged) = merged_view(&env, &sup, h).await;
    assert_eq!((status, merged), (200, expected.clone()));
    let mut c = env.phone("c", Default::default()).await;
    c.sync(&env.http, env.addr(), 10).await.unwrap();
    assert_eq!(phone_view(&c, h), expected);
    assert_eq!(all_hashes(&c.store), seen);
}

/// (b) A supervisor edits and approves a record on the server after the backup; a phone pulls
/// both and edits on top; the restore loses the supervisor's changes. The phone gives them back
/// and its own edits are taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisors_edit_a_restore_lost_comes_back_from_the_phone_that_pulled_it() {
    if skip_unless_sqlite(SQLITE_BACKUP) {
        return;
    }
    let mut env = Env::start().await;
    env.user("a", &[NGOC_LINH], false).await;
    let sup = supervisor(&env, "sup", &[NGOC_LINH], false).await;
    let mut a = env.phone("a", Default::default()).await;
    let h = household(&mut a, "Y Blơ");
    a.sync(&env.http, env.addr(), 10).await.unwrap();
    let (backup_file, data_dir) = backup(&env, "backup.sqlite");

    for edit in [
        serde_json::json!({"edit": "set_field", "field": "village", "value": "Làng Kon Klor"}),
        serde_json::json!({"edit": "review", "state": "approved", "comment": "Đã kiểm tra"}),
    ] {
        let (status, body) = call(
            &env,
            "POST",
            &format!("/v1/records/{h}/edits"),
            Some(&sup),
            &edit,
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    a.sync(&env.http, env.addr(), 10).await.unwrap();
    assert_eq!(
        a.store.get(h).unwrap().fields["village"],
        Value::from("Làng Kon Klor")
    );
    // Edits on top of the supervisor's: one synced before the restore, one after.
    a.store
        .set_field(h, "poverty", &"near_poor".into())
        .unwrap();
    a.sync(&env.http, env.addr(), 10).await.unwrap();
    a.store
        .set_field(h, "head_name", &"Y Blơ Niê".into())
        .unwrap();

    restore(&mut env, &data_dir, &backup_file);
    let report = a.sync(&env.http, env.addr(), 20).await.unwrap();
    assert!(report.rejected == 0, "{report:?}");
    assert_eq!(
        a.store.unacked_count().unwrap(),
        0,
        "the phone's edits are acked"
    );
    assert_eq!(env.stats().await["held"].as_u64(), Some(0));
    assert!(a.store.refused_edits(None).unwrap().is_empty());
    let (status, merged) = merged_view(&env, &sup, h).await;
    assert_eq!((status, &merged), (200, &phone_view(&a, h)));
    assert_eq!(
        merged["fields"]["village"], "Làng Kon Klor",
        "the supervisor's edit is back"
    );
    assert_eq!(merged["fields"]["head_name"], "Y Blơ Niê");
    assert_eq!(merged["fields"]["poverty"], "near_poor");
    // The approval is back too; the phone's edits since make the record "changed since approval".
    let (_, record) = call(
        &env,
        "GET",
        &format!("/v1/records/{h}"),
        Some(&sup),
        &Json::Null,
    )
    .await;
    assert_eq!(record["review"]["state"], "changed", "{record}");
}

/// (c) A phone is stolen and revoked after the backup; the restore loses what it had synced.
/// Its changes come back from a colleague's phone, which holds their receipts; what the thief
/// makes with the stolen key gets in neither directly nor through a colleague's phone. A
/// forged signature is refused visibly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_phones_synced_changes_come_back_but_nothing_new_gets_in() {
    if skip_unless_sqlite(SQLITE_BACKUP) {
        return;
    }
    let mut env = Env::start().await;
    for name in ["a", "b", "c"] {
        env.user(name, &[NGOC_LINH], false).await;
    }
    let sup = supervisor(&env, "sup", &[NGOC_LINH], false).await;
    let mut a = env.phone("a", Default::default()).await;
    let mut b = env.phone("b", Default::default()).await;
    let (backup_file, data_dir) = backup(&env, "backup.sqlite");
    let h = household(&mut a, "Y Blơ");
    a.store.set_field(h, "village", &"Làng Le".into()).unwrap();
    a.sync(&env.http, env.addr(), 10).await.unwrap();
    b.sync(&env.http, env.addr(), 10).await.unwrap();
    let before = phone_view(&b, h);

    // Stolen: revoked (after the backup), then the database is restored.
    let devices = call(
        &env,
        "GET",
        "/v1/admin/devices",
        Some(&env.admin),
        &Json::Null,
    )
    .await
    .1;
    let stolen = devices
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["username"] == "a" && d["kind"] == "phone")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = call(
        &env,
        "POST",
        &format!("/v1/admin/devices/{stolen}/revoke"),
        Some(&env.admin),
        &Json::Null,
    )
    .await;
    assert_eq!(status, 200);
    restore(&mut env, &data_dir, &backup_file);

    // The thief edits on the stolen phone. Its token stays revoked after the restore...
    a.store
        .set_field(h, "village", &"Làng Trộm".into())
        .unwrap();
    let theft = a.store.unacked(1 << 20).unwrap().remove(0);
    let err = a.sync(&env.http, env.addr(), 10).await.unwrap_err();
    assert!(
        matches!(err, PhoneError::Status { status: 401, .. }),
        "{err}"
    );
    // ... and a colleague's phone cannot carry the new change in, signed by the stolen key
    // or passed off as a receipt.
    let mut carried = entry(h, &theft.bytes);
    carried.signature = a.store.sign_change(h, &theft.hash.0);
    let response = push(&env, &b, vec![carried]).await;
    assert_eq!(
        codes(&response).into_values().collect::<Vec<_>>(),
        vec![RejectCode::NotAuthor]
    );

    // What the stolen phone synced before it was revoked comes back from the colleague.
    b.sync(&env.http, env.addr(), 20).await.unwrap();
    assert_eq!(b.store.relay_pending().unwrap(), 0);
    let (status, merged) = merged_view(&env, &sup, h).await;
    assert_eq!((status, merged), (200, before.clone()));
    let mut c = env.phone("c", Default::default()).await;
    c.sync(&env.http, env.addr(), 10).await.unwrap();
    assert_eq!(phone_view(&c, h), before);
    assert!(
        !all_hashes(&c.store).contains(&theft.hash.0),
        "the theft got nowhere"
    );

    // A forged signature on a phone's own change is refused visibly, and forgets nothing: the
    // change with its real signature is taken.
    b.store
        .set_field(h, "poverty", &"near_poor".into())
        .unwrap();
    let own = b.store.unacked(1 << 20).unwrap().remove(0);
    let mut forged = entry(h, &own.bytes);
    forged.signature = b.store.sign_change(h, &own.hash.0);
    forged.signature[5] ^= 0x20;
    let response = push(&env, &b, vec![forged]).await;
    assert_eq!(
        codes(&response).into_values().collect::<Vec<_>>(),
        vec![RejectCode::BadSignature]
    );
    let response = push(&env, &b, vec![entry(h, &own.bytes)]).await;
    assert_eq!(response.acked, vec![own.hash.0]);
}

/// What keeps people out is not rolled back with the data: a password changed and an account
/// disabled after the backup stay so after the restore, and the tokens the change ended stay
/// ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_keeps_password_changes_ended_tokens_and_disabled_accounts() {
    if skip_unless_sqlite(SQLITE_BACKUP) {
        return;
    }
    let mut env = Env::start().await;
    env.user("x", &[NGOC_LINH], false).await;
    env.user("y", &[NGOC_LINH], false).await;
    let mut x = env.phone("x", Default::default()).await;
    let (backup_file, data_dir) = backup(&env, "backup.sqlite");
    let new_password = "Mật khẩu mới của X 2026";
    for (method, path, body) in [
        (
            "POST",
            "/v1/admin/users/x/password",
            serde_json::json!({ "password": new_password }),
        ),
        (
            "PATCH",
            "/v1/admin/users/y",
            serde_json::json!({ "disabled": true }),
        ),
    ] {
        let (status, answer) = call(&env, method, path, Some(&env.admin), &body).await;
        assert_eq!(status, 200, "{path}: {answer}");
    }
    restore(&mut env, &data_dir, &backup_file);

    let err = x.sync(&env.http, env.addr(), 10).await.unwrap_err();
    assert!(
        matches!(err, PhoneError::Status { status: 401, .. }),
        "{err}"
    );
    let login = |user: &'static str, password: &'static str| {
        let env = &env;
        async move {
            call(
                env,
                "POST",
                "/v1/enrol",
                None,
                &serde_json::json!({ "username": user, "password": password }),
            )
            .await
            .0
        }
    };
    assert_eq!(
        login("x", PASSWORD).await,
        401,
        "the old password stays changed"
    );
    assert_eq!(login("x", new_password).await, 200);
    assert_eq!(
        login("y", PASSWORD).await,
        401,
        "the account stays disabled"
    );
}
