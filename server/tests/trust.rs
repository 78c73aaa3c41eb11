//! The server's side of "nothing silently lost, nothing leaked", without sockets: record
//! identity, authors bound to devices, types that never change, no hint of a support case,
//! held changes that are scoped, capped and expire, areas that exist, and a restore from
//! backup after which every phone gets and gives back everything.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod common;

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ROOT};
use common::*;
use fieldsync_core::model::{RecordType, Value};
use fieldsync_core::protocol::{ChangeEntry, RejectCode, SyncRequest};
use fieldsync_core::record::decode_change;
use fieldsync_server::storage::prelude::*;
use fieldsync_server::storage::sqlite::SqliteStorage;
use fieldsync_server::storage::StorageError;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

fn case_fields(person: &str) -> BTreeMap<String, Value> {
    [
        ("commune", NGOC_LINH),
        ("person_id", person),
        ("case_kind", "trafficking"),
        ("opened", "2025-03-01"),
        ("case_notes", "MARKER-ghi-chu-mat"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), Value::from(v)))
    .collect()
}

/// A change on top of `base` (raw change bytes of one record) written by `actor`.
fn change_on(base: &[Vec<u8>], actor: Uuid, edit: impl FnOnce(&mut AutoCommit)) -> Vec<u8> {
    let mut doc = AutoCommit::new().with_actor(ActorId::from(actor.as_bytes()));
    doc.apply_changes(base.iter().map(|b| decode_change(b).unwrap()))
        .unwrap();
    edit(&mut doc);
    let hash = doc.commit().unwrap();
    doc.get_change_by_hash(&hash).unwrap().raw_bytes().to_vec()
}

/// A request pushing `changes` of one record, each signed by `signer` (the pushing phone).
fn push(signer: &fieldsync_core::Store, record_id: Uuid, changes: &[Vec<u8>]) -> SyncRequest {
    SyncRequest {
        cursor: vec![],
        max_pull_bytes: 65536,
        push: changes
            .iter()
            .map(|bytes| ChangeEntry {
                record_id,
                bytes: bytes.clone(),
                // A change that does not decode has no hash to sign: it is refused before that.
                signature: decode_change(bytes)
                    .map(|c| signer.sign_change(record_id, &c.hash().0))
                    .unwrap_or([0; 64]),
            })
            .collect(),
    }
}

fn record_bytes(phone: &Phone, id: Uuid) -> Vec<Vec<u8>> {
    let mut doc = phone.store.doc(id).unwrap();
    doc.changes()
        .into_iter()
        .map(|mut c| c.bytes().into_owned())
        .collect()
}

#[test]
fn a_known_change_under_another_record_id_is_refused_never_acknowledged() {
    let world = World::new();
    world.user("a", &[NGOC_LINH], false);
    let mut a = world.phone("a");
    let id = a.household(NGOC_LINH, "Y Blơ");
    world.sync(&mut a);
    let creation = record_bytes(&a, id).remove(0);
    let other_id = Uuid::now_v7();
    let response = fieldsync_server::sync::exchange_as(
        &world.storage,
        &a.caller,
        &push(&a.store, other_id, &[creation]),
    )
    .unwrap();
    assert!(response.acked.is_empty());
    assert_eq!(response.rejected.len(), 1);
    assert_eq!(response.rejected[0].code, RejectCode::Invalid);
    assert!(world.storage.merged_record(other_id).unwrap().is_none());
    assert_eq!(world.storage.stats().unwrap().records, 1);
}

#[test]
fn a_change_whose_checksum_does_not_match_is_a_bad_request_and_stores_nothing() {
    let world = World::new();
    world.user("a", &[NGOC_LINH], false);
    let mut a = world.phone("a");
    let id = a.household(NGOC_LINH, "Y Blơ");
    let mut bytes = a.store.unacked(1 << 20).unwrap().remove(0).bytes;
    bytes[4] ^= 0x55;
    let result = fieldsync_server::sync::exchange_as(
        &world.storage,
        &a.caller,
        &push(&a.store, id, &[bytes]),
    );
    assert!(
        matches!(result, Err(StorageError::Invalid(_))),
        "{result:?}"
    );
    assert_eq!(world.storage.stats().unwrap().records, 0);
    world.sync(&mut a);
    assert_eq!(
        world.storage.stats().unwrap().records,
        1,
        "the true change is taken"
    );
}

#[test]
fn a_record_type_never_changes_and_a_case_never_reaches_non_sensitive_eyes() {
    let world = World::new();
    world.user("caseworker", &[NGOC_LINH], true);
    world.user("collector", &[NGOC_LINH], false);
    let mut cw = world.phone("caseworker");
    let mut co = world.phone("collector");
    let case = cw
        .store
        .create(
            RecordType::SupportCase,
            &case_fields(&Uuid::now_v7().to_string()),
        )
        .unwrap();
    world.sync(&mut cw);
    // The caseworker's own app, hostile or buggy, rewrites the type of the case.
    let base = record_bytes(&cw, case);
    let retype = change_on(&base, cw.store.device_id(), |d| {
        d.put(ROOT, "$type", "household").unwrap();
        d.put(ROOT, "f/head_name", "Y Khuyên").unwrap();
        d.put(ROOT, "f/ethnicity", "14").unwrap();
        d.put(ROOT, "f/poverty", "poor").unwrap();
    });
    let response = fieldsync_server::sync::exchange_as(
        &world.storage,
        &cw.caller,
        &push(&cw.store, case, &[retype]),
    )
    .unwrap();
    assert_eq!(response.rejected[0].code, RejectCode::Invalid);
    world.sync(&mut co);
    for id in co.store.list(&Default::default()).unwrap() {
        assert_ne!(id.id, case);
    }
    let supervisor_scope = fieldsync_server::scope::Scope {
        all: true,
        communes: BTreeSet::new(),
        sensitive: false,
        reviews: true,
    };
    let query = fieldsync_server::storage::RecordQuery {
        limit: 1000,
        ..Default::default()
    };
    let listed = world
        .storage
        .list_records(&supervisor_scope, &query)
        .unwrap();
    assert!(listed.records.iter().all(|r| r.id != case));
    let merged = world.storage.merged_record(case).unwrap().unwrap();
    assert!(!merged.visible_to(&supervisor_scope));
    assert_eq!(merged.record_type, RecordType::SupportCase);
}

#[test]
fn a_support_case_answers_a_probe_exactly_like_an_unknown_record() {
    let world = World::new();
    world.user("caseworker", &[NGOC_LINH], true);
    world.user("collector", &[NGOC_LINH], false);
    let mut cw = world.phone("caseworker");
    let co = world.phone("collector");
    let case = cw
        .store
        .create(
            RecordType::SupportCase,
            &case_fields(&Uuid::now_v7().to_string()),
        )
        .unwrap();
    world.sync(&mut cw);
    let unknown = Uuid::now_v7();
    // An edit whose dependency the prober made up, and one built on nothing but a creation of
    // its own: the answers for the case and for an id nobody has are the same.
    let own_base = {
        let (_, creation) = fieldsync_core::RecordDoc::create(
            Uuid::now_v7(),
            RecordType::Household,
            &household(NGOC_LINH, "Y"),
            co.store.device_id(),
        )
        .unwrap();
        vec![creation.bytes]
    };
    // One probe per target: the same bytes pushed under a second id would meet the first push's
    // held copy and be refused whatever the ids are.
    let probe = |village: &str| {
        change_on(&own_base, co.store.device_id(), |d| {
            d.put(ROOT, "f/village", village).unwrap();
        })
    };
    let held_before = world.storage.stats().unwrap().held;
    let on_case = fieldsync_server::sync::exchange_as(
        &world.storage,
        &co.caller,
        &push(&co.store, case, &[probe("x")]),
    )
    .unwrap();
    let on_unknown = fieldsync_server::sync::exchange_as(
        &world.storage,
        &co.caller,
        &push(&co.store, unknown, &[probe("y")]),
    )
    .unwrap();
    assert_eq!(on_case.acked, on_unknown.acked);
    assert_eq!(on_case.rejected, on_unknown.rejected);
    assert_eq!(
        on_case.need.iter().map(|n| n.hash).collect::<Vec<_>>(),
        on_unknown.need.iter().map(|n| n.hash).collect::<Vec<_>>()
    );
    assert_eq!(on_case.need.len(), 1);
    assert_eq!(
        world.storage.stats().unwrap().held,
        held_before + 2,
        "both are held alike, counting against the prober's cap"
    );
    assert!(
        world.storage.merged_record(case).unwrap().unwrap().view["fields"]
            .get("village")
            .is_none(),
        "nothing of it reaches the case"
    );
}

#[test]
fn held_changes_are_scoped_capped_and_expire() {
    let world = World::new();
    world.user("ngoclinh", &[NGOC_LINH], false);
    world.user("morai", &[MO_RAI], false);
    let mut nl = world.phone("ngoclinh");
    let mr = world.phone("morai");
    let id = nl.household(NGOC_LINH, "Y Blơ");
    world.sync(&mut nl);
    // Mô Rai pushes edits of Ngọc Linh's household built on a change nobody has.
    let base = record_bytes(&nl, id);
    let orphan_parent = change_on(&base, mr.store.device_id(), |d| {
        d.put(ROOT, "f/village", "a").unwrap();
    });
    let orphan = change_on(
        &[base[0].clone(), orphan_parent],
        mr.store.device_id(),
        |d| {
            d.put(ROOT, "f/village", "b").unwrap();
        },
    );
    let response = fieldsync_server::sync::exchange_as(
        &world.storage,
        &mr.caller,
        &push(&mr.store, id, &[orphan]),
    )
    .unwrap();
    assert_eq!(
        response.rejected.len(),
        0,
        "answered like an unknown record"
    );
    assert_eq!(
        world.storage.stats().unwrap().held,
        1,
        "and held like one, against Mô Rai's cap"
    );

    // A flood of orphans for records nobody knows stops at the per-device cap.
    let mut codes = BTreeMap::new();
    let mut first_orphan = None;
    for i in 0..1_010 {
        let (_, creation) = fieldsync_core::RecordDoc::create(
            Uuid::now_v7(),
            RecordType::Household,
            &household(MO_RAI, &format!("Y {i}")),
            mr.store.device_id(),
        )
        .unwrap();
        let orphan = change_on(&[creation.bytes], mr.store.device_id(), |d| {
            d.put(ROOT, "f/village", "x").unwrap();
        });
        let record = Uuid::now_v7();
        first_orphan.get_or_insert((record, orphan.clone()));
        let response = fieldsync_server::sync::exchange_as(
            &world.storage,
            &mr.caller,
            &push(&mr.store, record, &[orphan]),
        )
        .unwrap();
        for r in response.rejected {
            *codes.entry(r.code as u8).or_insert(0) += 1;
        }
    }
    let stats = world.storage.stats().unwrap();
    assert_eq!(stats.held, 1_000);
    assert_eq!(codes.get(&(RejectCode::TooLarge as u8)), Some(&11));

    // A week later nothing has come for them: the sender hears so once, and nothing is kept
    // against the change (its dependency may still come from someone).
    let path = world.dir.path().join("server.sqlite");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute(
            "UPDATE held SET received_ms = received_ms - 8 * 24 * 3600 * 1000",
            [],
        )
        .unwrap();
    let later = SqliteStorage::open(&path).unwrap();
    let (record, orphan) = first_orphan.unwrap();
    let response = fieldsync_server::sync::exchange_as(
        &later,
        &mr.caller,
        &push(&mr.store, record, std::slice::from_ref(&orphan)),
    )
    .unwrap();
    assert_eq!(response.rejected[0].code, RejectCode::MissingDependency);
    assert_eq!(later.stats().unwrap().held, 0);
    let again = fieldsync_server::sync::exchange_as(
        &later,
        &mr.caller,
        &push(&mr.store, record, &[orphan]),
    )
    .unwrap();
    assert!(again.rejected.is_empty(), "not remembered");
    assert_eq!(later.stats().unwrap().held, 1, "held anew");
}

/// Reviewing and merging are a supervisor's: a collector's phone that writes an approval, a
/// review comment, a merge or an absorbed mark is refused, and the record stays as it was.
#[test]
fn a_collector_cannot_approve_merge_or_absorb() {
    let world = World::new();
    world.user("lan", &[NGOC_LINH], false);
    let mut phone = world.phone("lan");
    let id = phone.household(NGOC_LINH, "Y Blơ");
    let other = phone.household(NGOC_LINH, "Y Blơ");
    world.sync(&mut phone);
    let base = record_bytes(&phone, id);
    let before = world.storage.merged_record(id).unwrap().unwrap();
    let absorbed = format!("$absorbed/{other}");
    for (key, value) in [
        ("$review", "approved".to_owned()),
        ("$review_comment", "tự duyệt".to_owned()),
        ("$merged_into", other.to_string()),
    ] {
        let change = change_on(&base, phone.store.device_id(), |d| {
            d.put(ROOT, key, value.as_str()).unwrap();
        });
        let response = fieldsync_server::sync::exchange_as(
            &world.storage,
            &phone.caller,
            &push(&phone.store, id, &[change]),
        )
        .unwrap();
        assert_eq!(response.rejected[0].code, RejectCode::NotPermitted, "{key}");
    }
    let change = change_on(&base, phone.store.device_id(), |d| {
        d.put(ROOT, absorbed.as_str(), true).unwrap();
    });
    let response = fieldsync_server::sync::exchange_as(
        &world.storage,
        &phone.caller,
        &push(&phone.store, id, &[change]),
    )
    .unwrap();
    assert_eq!(response.rejected[0].code, RejectCode::NotPermitted);
    let after = world.storage.merged_record(id).unwrap().unwrap();
    assert_eq!((after.view, after.review), (before.view, before.review));
}

#[test]
fn a_commune_must_exist_in_the_area_list() {
    let world = World::new();
    world.user("everywhere", &["*"], false);
    let mut phone = world.phone("everywhere");
    let id = phone.household(NGOC_LINH, "Y Blơ");
    world.sync(&mut phone);
    let base = record_bytes(&phone, id);
    let moved = change_on(&base, phone.store.device_id(), |d| {
        d.put(ROOT, "f/commune", "99.999.99").unwrap();
    });
    let response = fieldsync_server::sync::exchange_as(
        &world.storage,
        &phone.caller,
        &push(&phone.store, id, &[moved]),
    )
    .unwrap();
    assert_eq!(response.rejected[0].code, RejectCode::Invalid);
    let merged = world.storage.merged_record(id).unwrap().unwrap();
    assert_eq!(merged.commune.as_deref(), Some(NGOC_LINH));
}

#[test]
fn after_a_restore_every_phone_gets_and_gives_back_everything() {
    let mut world = World::new();
    world.user("a", &[NGOC_LINH], false);
    world.user("b", &[NGOC_LINH], false);
    let mut a = world.phone("a");
    let mut b = world.phone("b");
    let early = a.household(NGOC_LINH, "Y Trước");
    world.sync(&mut a);
    world.sync(&mut b);
    let backup = world.dir.path().join("backup.sqlite");
    world.storage.backup(&backup).unwrap();

    // After the backup: new records and edits, acknowledged by the server, then lost.
    let late_a = a.household(NGOC_LINH, "Y Sau A");
    a.store
        .set_field(early, "village", &"Thôn mới".into())
        .unwrap();
    world.sync(&mut a);
    world.sync(&mut b);
    let late_b = b.household(NGOC_LINH, "Y Sau B");
    b.store
        .set_field(late_a, "village", &"Thôn B".into())
        .unwrap();
    world.sync(&mut b);
    world.sync(&mut a);
    assert_eq!(a.store.unacked_count().unwrap(), 0);
    assert_eq!(b.store.unacked_count().unwrap(), 0);

    world.storage = TestStorage::new(SqliteStorage::open(&backup).unwrap());
    assert_eq!(
        world.storage.stats().unwrap().records,
        1,
        "the backup predates them"
    );
    for _ in 0..2 {
        world.sync(&mut b);
        world.sync(&mut a);
    }
    assert_eq!(world.storage.stats().unwrap().records, 3);
    let fresh = {
        world.user("c", &[NGOC_LINH], false);
        let mut c = world.phone("c");
        world.sync(&mut c);
        c
    };
    for id in [early, late_a, late_b] {
        let want = a.store.get(id).unwrap();
        assert_eq!(b.store.get(id).unwrap(), want);
        assert_eq!(fresh.store.get(id).unwrap(), want);
    }
    assert_eq!(
        fresh.store.get(late_a).unwrap().fields["village"],
        Value::from("Thôn B")
    );
}

/// One creation in the colliding-creations property: which device, which of two names.
fn creations() -> impl Strategy<Value = Vec<(usize, usize, bool)>> {
    prop::collection::vec((0usize..3, 0usize..2, any::<bool>()), 1..24)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Records created with colliding fields on several devices, synced at random moments,
    /// all arrive at the server and at every phone, each once.
    #[test]
    fn colliding_creations_on_several_devices_all_arrive_each_once(plan in creations()) {
        let world = World::new();
        for user in ["a", "b", "c"] {
            world.user(user, &[NGOC_LINH], false);
        }
        let mut phones = vec![world.phone("a"), world.phone("b"), world.phone("c")];
        let names = ["Nguyễn Thị Hoà", "Y Blơ"];
        let mut ids = BTreeSet::new();
        for (device, name, sync_now) in &plan {
            let phone = &mut phones[*device];
            ids.insert(phone.household(NGOC_LINH, names[*name]));
            if *sync_now {
                world.sync(phone);
            }
        }
        for _ in 0..2 {
            for phone in &mut phones {
                world.sync(phone);
            }
        }
        prop_assert_eq!(world.storage.stats().unwrap().records, ids.len() as u64);
        prop_assert_eq!(world.storage.stats().unwrap().changes, ids.len() as u64);
        for phone in &phones {
            let listed: Vec<Uuid> = phone.store.list(&Default::default()).unwrap().into_iter().map(|r| r.id).collect();
            prop_assert_eq!(listed.len(), ids.len());
            prop_assert_eq!(listed.into_iter().collect::<BTreeSet<_>>(), ids.clone());
            prop_assert_eq!(phone.store.unacked_count().unwrap(), 0);
        }
    }
}
