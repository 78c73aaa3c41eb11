//! What the administration reads from storage, on either backend: devices with their
//! enrolment, last sync and the changes they sent, filtered by kind and state (expired sessions
//! apart); who registered which records when; and the audit log's filters over a bounded
//! stretch of it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod common;

use common::*;
use fieldsync_core::RecordType;
use fieldsync_server::storage::prelude::*;
use fieldsync_server::storage::{now_ms, AuditEntry, AuditFilter, DeviceQuery, DeviceState};
use uuid::Uuid;

const WEEK_MS: i64 = 7 * 86_400_000;

fn devices(world: &World, kind: &str, state: Option<DeviceState>) -> Vec<(String, DeviceState)> {
    world
        .storage
        .device_list(&DeviceQuery {
            kind: Some(kind.into()),
            state,
            now_ms: now_ms(),
            limit: 100,
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .map(|d| (d.device.username, d.state))
        .collect()
}

#[test]
fn devices_show_what_they_sent_when_they_synced_and_sessions_stay_apart() {
    let world = World::new();
    world.user("lan", &[NGOC_LINH], false);
    world.user("mai", &[MO_RAI], false);
    let mut lan = world.phone("lan");
    for head in ["Y Hnui", "A Khang", "Y Blơ"] {
        lan.household(NGOC_LINH, head);
    }
    world.sync(&mut lan);
    let _mai = world.phone("mai");
    let listed = world
        .storage
        .device_list(&DeviceQuery {
            kind: Some("phone".into()),
            now_ms: now_ms(),
            limit: 100,
            ..Default::default()
        })
        .unwrap();
    let sent: Vec<(&str, u64)> = listed
        .iter()
        .map(|d| (d.device.username.as_str(), d.changes_sent))
        .collect();
    assert_eq!(sent, vec![("lan", 3), ("mai", 0)]);
    assert!(listed.iter().all(|d| d.enrolled_ms.is_some()));
    // The last sync is written at most once a minute.
    let device = lan.caller.device.id;
    let t = now_ms();
    world.storage.note_sync(device, t).unwrap();
    world.storage.note_sync(device, t + 1_000).unwrap();
    let last = |world: &World| {
        world
            .storage
            .device_list(&DeviceQuery {
                username: Some("lan".into()),
                now_ms: now_ms(),
                limit: 10,
                ..Default::default()
            })
            .unwrap()[0]
            .last_sync_ms
    };
    assert_eq!(last(&world), Some(t));
    world.storage.note_sync(device, t + 61_000).unwrap();
    assert_eq!(last(&world), Some(t + 61_000));
    // Sessions: one in use, one past its expiry (hidden unless asked for), one ended.
    let (user, _) = world.storage.user_by_name("mai").unwrap().unwrap();
    world
        .storage
        .create_session(user.id, b"session-in-use", "csrf-1", now_ms() + 3_600_000)
        .unwrap();
    world
        .storage
        .create_session(user.id, b"session-expired", "csrf-2", now_ms() - 1)
        .unwrap();
    let ended = world
        .storage
        .create_session(user.id, b"session-ended", "csrf-3", now_ms() + 3_600_000)
        .unwrap();
    world.storage.revoke_device(ended.id).unwrap();
    assert_eq!(
        devices(&world, "browser", None),
        vec![
            ("mai".into(), DeviceState::Revoked),
            ("mai".into(), DeviceState::Active)
        ],
        "newest first, the expired one left out"
    );
    assert_eq!(
        devices(&world, "browser", Some(DeviceState::Expired)),
        vec![("mai".into(), DeviceState::Expired)]
    );
    assert_eq!(
        devices(&world, "browser", Some(DeviceState::Active)),
        vec![("mai".into(), DeviceState::Active)]
    );
    assert_eq!(devices(&world, "phone", Some(DeviceState::Revoked)), vec![]);
    // Who registered what, and when: lan's three households, this week.
    let since = now_ms() - WEEK_MS;
    let activity = world.storage.activity(since, WEEK_MS).unwrap();
    let (lan_user, _) = world.storage.user_by_name("lan").unwrap().unwrap();
    let counted: u64 = activity
        .registrations
        .iter()
        .filter(|r| r.user_id == lan_user.id && r.record_type == RecordType::Household)
        .map(|r| {
            assert_eq!(r.week, 0);
            assert_eq!(r.commune.as_deref(), Some(NGOC_LINH));
            r.count
        })
        .sum();
    assert_eq!(counted, 3);
    assert!(activity.last_sync.contains_key(&lan_user.id));
    // Nothing registered before `since` is counted.
    assert!(world
        .storage
        .activity(now_ms() + 1_000, WEEK_MS)
        .unwrap()
        .registrations
        .is_empty());
}

fn entry(at_ms: i64, user: Option<&str>, action: &str, target: &str, detail: &str) -> AuditEntry {
    AuditEntry {
        at_ms,
        username: user.map(str::to_owned),
        action: action.into(),
        target: Some(target.into()),
        detail: Some(detail.into()),
        ..Default::default()
    }
}

#[test]
fn the_audit_log_filters_by_account_action_record_and_dates_within_a_stretch() {
    let world = World::new();
    let record = Uuid::now_v7();
    let kept = Uuid::now_v7();
    let day = 86_400_000;
    let entries = [
        entry(10 * day, Some("lan"), "login", "", ""),
        entry(
            11 * day,
            Some("giamsat"),
            "review",
            &record.to_string(),
            "approved",
        ),
        entry(
            12 * day,
            Some("giamsat"),
            "merge",
            &kept.to_string(),
            &format!("into {record}; took "),
        ),
        entry(13 * day, None, "login_failed", "lan", "password: 3 since …"),
        AuditEntry {
            sensitive: true,
            ..entry(
                14 * day,
                Some("giamsat"),
                "view_case",
                &record.to_string(),
                "case",
            )
        },
    ];
    for e in &entries {
        world.storage.audit(e).unwrap();
    }
    let end = world.storage.audit_end().unwrap();
    let list = |f: AuditFilter| -> Vec<String> {
        world
            .storage
            .list_audit(&AuditFilter { before: end, ..f }, 100)
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect()
    };
    assert_eq!(
        list(AuditFilter::default()),
        vec!["login_failed", "merge", "review", "login"],
        "entries about support cases only with sensitive access"
    );
    assert_eq!(
        list(AuditFilter {
            with_sensitive: true,
            ..Default::default()
        })[0],
        "view_case"
    );
    // An account's own entries, and those of no account about it (a failed login).
    assert_eq!(
        list(AuditFilter {
            username: Some("lan".into()),
            ..Default::default()
        }),
        vec!["login_failed", "login"]
    );
    assert_eq!(
        list(AuditFilter {
            action: Some("review".into()),
            ..Default::default()
        }),
        vec!["review"]
    );
    // A record as the target or named in the detail.
    assert_eq!(
        list(AuditFilter {
            record: Some(record),
            ..Default::default()
        }),
        vec!["merge", "review"]
    );
    assert_eq!(
        list(AuditFilter {
            from_ms: Some(11 * day),
            to_ms: Some(13 * day),
            ..Default::default()
        }),
        vec!["merge", "review"]
    );
    // Only the stretch asked for is read: the two newest numbers.
    assert_eq!(
        list(AuditFilter {
            floor: end - 2,
            with_sensitive: true,
            ..Default::default()
        }),
        vec!["view_case", "login_failed"]
    );
}
