//! Properties: whatever order, interleaving and duplication the changes of three devices arrive
//! in, every store ends with identical documents and identical projection rows; and records
//! created with colliding fields all survive, each once, while edits the server refused leave
//! every store alike.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod common;

use common::*;
use fieldsync_core::generator::Rng;
use fieldsync_core::model::{RecordType, Value};
use fieldsync_core::store::{ListFilter, RecordSummary};
use fieldsync_core::{RecordView, Store};
use proptest::prelude::*;
use uuid::Uuid;

/// One offline edit: which device, which record, which operation, which value.
#[derive(Clone, Debug)]
struct Edit {
    device: usize,
    record: usize,
    op: u8,
    value: usize,
}

const NAMES: &[&str] = &[
    "Y Blơ",
    "Nguyễn Thị Hoà",
    "Nguyễn Thị Hòa",
    "Ksor H'Nhi",
    "Đinh Thị Đào",
];
const VILLAGES: &[&str] = &["Làng Le", "Thôn Đăk Mế", "Thôn 2"];
const POVERTY: &[&str] = &["poor", "near_poor", "none"];

fn member(i: usize) -> String {
    Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 + i as u128).to_string()
}

fn apply_edit(store: &mut Store, ids: &[Uuid], edit: &Edit) {
    let id = ids[edit.record % ids.len()];
    let is_group = edit.record % ids.len() == 1;
    let v = edit.value;
    let result = match (is_group, edit.op % 6) {
        (false, 0) => store.set_field(id, "head_name", &NAMES[v % NAMES.len()].into()),
        (false, 1) => store.set_field(id, "village", &VILLAGES[v % VILLAGES.len()].into()),
        (false, 2) => store.clear_field(id, "village"),
        (false, 3) => store.set_field(id, "poverty", &POVERTY[v % POVERTY.len()].into()),
        (true, 0) => store.set_field(id, "gals", &Value::Bool(v % 2 == 0)),
        (true, 1) | (true, 2) => store.add_member(id, "members", &member(v % 6)),
        (true, 3) => store.remove_member(id, "members", &member(v % 6)),
        (_, 4) => store.soft_delete(id),
        _ => store.restore(id),
    };
    result.expect("valid edit");
}

fn state(store: &Store, ids: &[Uuid]) -> (Vec<RecordView>, Vec<RecordSummary>) {
    let views = ids.iter().map(|id| store.get(*id).expect("view")).collect();
    let mut rows = store
        .list(&ListFilter {
            include_inactive: true,
            ..Default::default()
        })
        .expect("list");
    // The one column that is local by design: the order changes arrived in on this store.
    for row in &mut rows {
        row.last_change_seq = 0;
    }
    rows.sort_by_key(|r| r.id);
    (views, rows)
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    prop::collection::vec(
        (0usize..3, 0usize..2, any::<u8>(), 0usize..10).prop_map(|(device, record, op, value)| {
            Edit {
                device,
                record,
                op,
                value,
            }
        }),
        1..25,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn any_delivery_order_converges(edits in edits(), order_seed in any::<u64>(), sync_points in prop::collection::vec(0usize..25, 0..3)) {
        let mut dirs = Vec::new();
        let mut devices: Vec<Store> = (0..3).map(|_| { let (d, s) = temp_store(); dirs.push(d); s }).collect();
        let household = devices[0].create(RecordType::Household, &household_fields("Y Hơ")).expect("create");
        let group = devices[0].create(RecordType::Group, &fields(&[
            ("commune", COMMUNE.into()), ("kind", "savings_loan_group".into()), ("name", "Tổ TKVV Làng Le".into()),
        ])).expect("create");
        let ids = [household, group];
        let (first, rest) = devices.split_at_mut(1);
        for other in rest.iter_mut() {
            deliver(&first[0], other, &ids);
        }
        // Devices edit offline; at a few points two of them happen to meet and exchange.
        for (i, edit) in edits.iter().enumerate() {
            apply_edit(&mut devices[edit.device], &ids, edit);
            if sync_points.contains(&i) {
                let changes = all_changes(&devices[edit.device], &ids);
                devices[(edit.device + 1) % 3].apply_remote(&changes).expect("apply");
            }
        }
        let mut union: Vec<(Uuid, Vec<u8>)> = devices.iter().flat_map(|d| all_changes(d, &ids)).collect();

        // Fresh receivers get the union shuffled, with duplicates, in random batches.
        let mut rng = Rng::new(order_seed);
        let mut receivers: Vec<Store> = (0..3).map(|_| { let (d, s) = temp_store(); dirs.push(d); s }).collect();
        for receiver in &mut receivers {
            let mut stream = union.clone();
            for _ in 0..rng.below(stream.len()) {
                let dup = stream[rng.below(stream.len())].clone();
                stream.push(dup);
            }
            for i in (1..stream.len()).rev() {
                stream.swap(i, rng.below(i + 1));
            }
            while !stream.is_empty() {
                let n = 1 + rng.below(stream.len());
                let batch: Vec<_> = stream.drain(..n).collect();
                receiver.apply_remote(&batch).expect("apply");
            }
        }
        // And the devices themselves receive everything too.
        union.reverse();
        for device in &mut devices {
            device.apply_remote(&union).expect("apply");
        }
        let expected = state(&devices[0], &ids);
        for store in devices.iter().chain(receivers.iter()) {
            prop_assert_eq!(&state(store, &ids), &expected);
        }
    }
}

#[test]
fn a_change_arriving_before_its_dependencies_is_held_then_applied() {
    let (_a_dir, mut a) = temp_store();
    let (_b_dir, mut b) = temp_store();
    let id = a
        .create(RecordType::Household, &household_fields("Y Lêm"))
        .unwrap();
    a.set_field(id, "village", &"Thôn 1".into()).unwrap();
    let changes = all_changes(&a, &[id]);
    assert_eq!(changes.len(), 2);

    let report = b.apply_remote(&changes[1..]).unwrap();
    assert_eq!(
        report.waiting.get(&id).map(Vec::len),
        Some(1),
        "told what is missing"
    );
    assert!(
        b.get(id).is_err(),
        "not readable until its creation arrives"
    );
    // Still held after reopening the store: nothing received is dropped.
    let path = _b_dir.path().join("store.sqlite");
    drop(b);
    let mut b = Store::open(&path).unwrap();
    let report = b.apply_remote(&changes[..1]).unwrap();
    assert!(report.waiting.is_empty());
    assert_eq!(
        b.get(id).unwrap().fields.get("village"),
        Some(&Value::from("Thôn 1"))
    );
}

/// One step of the colliding-creations property: a device creates a record from a tiny value
/// space (so creations collide, on one device and across devices), or edits one it knows, and
/// the server may refuse that edit.
#[derive(Clone, Debug)]
struct Step {
    device: usize,
    create: bool,
    value: usize,
    refused: bool,
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        (
            0usize..3,
            any::<bool>(),
            0usize..2,
            prop::bool::weighted(0.25),
        )
            .prop_map(|(device, create, value, refused)| Step {
                device,
                create,
                value,
                refused,
            }),
        1..30,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn colliding_creations_all_survive_and_refused_edits_leave_everyone_alike(steps in steps(), order_seed in any::<u64>()) {
        let mut dirs = Vec::new();
        let mut devices: Vec<Store> = (0..3).map(|_| { let (d, s) = temp_store(); dirs.push(d); s }).collect();
        let mut created: Vec<(usize, Uuid)> = Vec::new();
        let mut refused_values = Vec::new();
        for (i, step) in steps.iter().enumerate() {
            let device = &mut devices[step.device];
            let own: Vec<Uuid> = created.iter().filter(|(d, _)| *d == step.device).map(|(_, id)| *id).collect();
            if step.create || own.is_empty() {
                // Two names, same everything else: identical creations are common.
                let id = device.create(RecordType::Household, &household_fields(NAMES[step.value])).expect("create");
                created.push((step.device, id));
                continue;
            }
            let id = own[i % own.len()];
            let village = format!("Thôn {i}");
            device.set_field(id, "village", &village.as_str().into()).expect("edit");
            if step.refused {
                // The server refused this edit at once: it never leaves the phone.
                let pending = device.unacked(1 << 30).expect("unacked");
                let last = pending.last().expect("the edit is pending");
                device.reject(&[(last.hash.0, "out_of_scope")]).expect("reject");
                refused_values.push((id, village));
            } else {
                let pending = device.unacked(1 << 30).expect("unacked");
                device.ack(&pending.iter().map(|c| c.hash.0).collect::<Vec<_>>()).expect("ack");
            }
        }
        let ids: Vec<Uuid> = created.iter().map(|(_, id)| *id).collect();
        let union: Vec<(Uuid, Vec<u8>)> = created
            .iter()
            .flat_map(|(d, id)| all_changes(&devices[*d], &[*id]))
            .collect();
        let mut rng = Rng::new(order_seed);
        let mut receivers: Vec<Store> = (0..2).map(|_| { let (d, s) = temp_store(); dirs.push(d); s }).collect();
        for store in devices.iter_mut().chain(receivers.iter_mut()) {
            let mut stream = union.clone();
            for i in (1..stream.len()).rev() {
                stream.swap(i, rng.below(i + 1));
            }
            let report = store.apply_remote(&stream).expect("apply");
            prop_assert_eq!(report.set_aside, 0);
        }
        let expected = state(&devices[0], &ids);
        prop_assert_eq!(expected.1.len(), ids.len(), "every creation is its own record, once");
        for store in devices.iter().chain(receivers.iter()) {
            prop_assert_eq!(&state(store, &ids), &expected);
        }
        for (id, village) in refused_values {
            let view = devices[0].get(id).expect("record");
            prop_assert_ne!(view.fields.get("village"), Some(&Value::from(village.as_str())));
        }
    }
}
