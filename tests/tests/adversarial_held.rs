//! Adversarial: held changes (pushed before their dependencies). Changes against records a
//! collector may not see are held exactly like changes against ids nobody has (so the cap tells
//! nothing) and never reach the hidden record, and nobody can fill the server's disk with changes
//! that wait for dependencies that never come: each account may hold at most 1,000 changes or
//! 4 MiB.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod adversarial_support;
mod common;

use adversarial_support::*;
use common::*;
use fieldsync_core::model::RecordType;
use fieldsync_core::protocol::{ChangeEntry, RejectCode};
use serde_json::json;
use uuid::Uuid;

/// Held changes one device may have, and their bytes (server/src/storage/sqlite/ingest.rs).
const MAX_HELD: usize = 1_000;
const MAX_HELD_BYTES: usize = 4 * 1024 * 1024;

fn held(env: &Env) -> (i64, i64) {
    (
        db_number(env, "SELECT COUNT(*) FROM held"),
        db_number(env, "SELECT COALESCE(SUM(length(bytes)), 0) FROM held"),
    )
}

/// Size of the server's database (with SQLite's write-ahead log).
fn database_bytes(env: &Env) -> u64 {
    env.database_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_waiting_on_records_out_of_sight_are_held_like_unknown_ones() {
    let env = Env::start().await;
    env.user("carer", &[NGOC_LINH], true).await;
    env.user("morai", &[MO_RAI], false).await;
    env.user("prober", &[NGOC_LINH], false).await;
    let mut carer = env.phone("carer", Default::default()).await;
    let mut morai = env.phone("morai", Default::default()).await;
    let prober = env.phone("prober", Default::default()).await;
    let (_, case) = open_case(&mut carer, "Đã chuyển đến địa chỉ tin cậy.");
    carer.sync(&env.http, env.addr(), 10).await.unwrap();
    let elsewhere = morai
        .store
        .create(RecordType::Household, &minimal_household(MO_RAI, "A Hyơk"))
        .unwrap();
    morai.sync(&env.http, env.addr(), 10).await.unwrap();
    let case_before = carer.store.get(case).unwrap();
    let elsewhere_before = morai.store.get(elsewhere).unwrap();
    let before = env.stats().await;
    assert_eq!(before["held"].as_u64(), Some(0));

    let actor = prober.store.device_id();
    for target in [case, elsewhere] {
        // Twenty different edits on a creation the server never saw (for the household of
        // the other commune, one of them on a creation naming that commune).
        let mut batch = Vec::new();
        let mut wanted = Vec::new();
        for i in 0..20 {
            let commune = if i == 0 && target == elsewhere {
                MO_RAI
            } else {
                NGOC_LINH
            };
            let (creation, edit) =
                creation_and_edit(target, actor, commune, &format!("Làng Dò {i}"));
            wanted.push(hash_of(&creation));
            batch.push(entry(target, &edit));
        }
        let response = push(&env, &prober, batch).await;
        assert!(response.acked.is_empty());
        assert!(response.rejected.is_empty(), "{:?}", response.rejected);
        wanted.sort();
        wanted.dedup();
        let needed: Vec<[u8; 32]> = response.need.iter().map(|n| n.hash).collect();
        assert_eq!(needed, wanted, "each missing creation is asked for, once");
        assert!(response.need.iter().all(|n| n.record_id == target));
    }
    // Held like edits of ids nobody has, against the prober's cap, and nothing else stored.
    let after = env.stats().await;
    assert_eq!(after["held"].as_u64(), Some(40));
    for count in ["records", "changes", "log_entries"] {
        assert_eq!(after[count], before[count], "{count}");
    }

    // Control: the same kind of edit for an id nobody uses answers and holds the same way.
    let nobody = Uuid::now_v7();
    let (creation, edit) = creation_and_edit(nobody, actor, NGOC_LINH, "Làng Dò");
    let response = push(&env, &prober, vec![entry(nobody, &edit)]).await;
    assert!(response.acked.is_empty() && response.rejected.is_empty());
    assert_eq!(
        response.need.iter().map(|n| n.hash).collect::<Vec<_>>(),
        vec![hash_of(&creation)]
    );
    assert_eq!(env.stats().await["held"].as_u64(), Some(41));

    // The owners' records are untouched.
    carer.sync(&env.http, env.addr(), 10).await.unwrap();
    morai.sync(&env.http, env.addr(), 10).await.unwrap();
    assert_eq!(carer.store.get(case).unwrap(), case_before);
    assert_eq!(morai.store.get(elsewhere).unwrap(), elsewhere_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_held_changes_from_one_device_is_capped() {
    let env = Env::start().await;
    env.user("flooder", &[NGOC_LINH], false).await;
    env.user("honest", &[NGOC_LINH], false).await;
    let flooder = env.phone("flooder", Default::default()).await;
    let mut honest = env.phone("honest", Default::default()).await;
    let actor = flooder.store.device_id();

    // 1,100 small edits, each waiting for a creation that never comes.
    let flood: Vec<ChangeEntry> = (0..MAX_HELD + 100)
        .map(|i| {
            let id = Uuid::now_v7();
            let (_, edit) = creation_and_edit(id, actor, NGOC_LINH, &format!("Làng {i}"));
            entry(id, &edit)
        })
        .collect();
    let mut needed = 0;
    let mut refused = Vec::new();
    for batch in flood.chunks(275) {
        let (need, codes) = push_all(&env, &flooder, batch.to_vec()).await;
        needed += need.len();
        refused.extend(codes);
    }
    assert_eq!(needed, MAX_HELD, "the first thousand are held");
    assert_eq!(refused, vec![RejectCode::TooLarge; 100], "the rest refused");
    let (rows, bytes) = held(&env);
    assert_eq!(rows, MAX_HELD as i64);
    assert!(bytes as usize <= MAX_HELD_BYTES);
    assert_eq!(db_number(&env, "SELECT COUNT(*) FROM refused"), 0);

    // Another 300, each carrying 12 kB (the longest text a field may hold, 4,000 characters,
    // of three bytes each): all refused, and the database does not grow.
    let size_before = database_bytes(&env);
    let big: Vec<ChangeEntry> = (0..300)
        .map(|i| {
            let id = Uuid::now_v7();
            let (_, edit) = creation_and_edit(id, actor, NGOC_LINH, "Làng");
            let padded = rewrite(&edit, |c| {
                c["ops"][0]["value"] = json!(format!("{i:03}{}", "ỹ".repeat(3_990)));
            });
            entry(id, &padded)
        })
        .collect();
    for batch in big.chunks(100) {
        let (need, codes) = push_all(&env, &flooder, batch.to_vec()).await;
        assert!(need.is_empty());
        assert_eq!(codes, vec![RejectCode::TooLarge; batch.len()]);
    }
    assert_eq!(held(&env), (rows, bytes), "nothing more held");
    assert!(
        database_bytes(&env) < size_before + 64 * 1024,
        "3.6 MB refused, the file grew from {size_before} to {}",
        database_bytes(&env)
    );

    // The byte cap: a second device of another user holds large changes only up to 4 MiB.
    env.user("flooder2", &[NGOC_LINH], false).await;
    let second = env.phone("flooder2", Default::default()).await;
    let actor2 = second.store.device_id();
    let large: Vec<ChangeEntry> = (0..400)
        .map(|i| {
            let id = Uuid::now_v7();
            let (_, edit) = creation_and_edit(id, actor2, NGOC_LINH, "Làng");
            let padded = rewrite(&edit, |c| {
                c["ops"][0]["value"] = json!(format!("{i:03}{}", "ỳ".repeat(3_990)));
            });
            entry(id, &padded)
        })
        .collect();
    let one = large[0].bytes.len();
    let mut held_now = 0;
    let mut too_large = 0;
    for batch in large.chunks(20) {
        let (need, codes) = push_all(&env, &second, batch.to_vec()).await;
        held_now += need.len();
        too_large += codes.iter().filter(|c| **c == RejectCode::TooLarge).count();
        assert_eq!(need.len() + codes.len(), batch.len());
    }
    assert_eq!(held_now, MAX_HELD_BYTES / one, "as many as fit in 4 MiB");
    assert_eq!(too_large, 400 - held_now);
    let (rows2, bytes2) = held(&env);
    assert_eq!(rows2 as usize, MAX_HELD + held_now);
    assert!((bytes2 - bytes) as usize <= MAX_HELD_BYTES);

    // Honest work carries on.
    let id = honest
        .store
        .create(
            RecordType::Household,
            &minimal_household(NGOC_LINH, "Y Blơ"),
        )
        .unwrap();
    let report = honest.sync(&env.http, env.addr(), 10).await.unwrap();
    assert_eq!((report.acked, report.rejected), (1, 0));
    assert!(honest.store.get(id).is_ok());
}
