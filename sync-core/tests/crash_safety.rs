//! A process killed (SIGKILL) in the middle of writing leaves a store that opens with every
//! edit it had committed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod common;

use common::*;
use fieldsync_core::model::RecordType;
use fieldsync_core::Store;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use uuid::Uuid;

const CHILD_ENV: &str = "FIELDSYNC_CRASH_CHILD_STORE";

/// Child half: writes records as fast as it can, printing each id once its transaction has
/// committed. Does nothing unless started by the parent below.
#[test]
fn crash_child_writer() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut store = Store::open(path).unwrap();
    for i in 0.. {
        let id = store
            .create(
                RecordType::Household,
                &household_fields(&format!("Y Hơ {i}")),
            )
            .unwrap();
        // Several changes per record, so the kill can land between and inside them.
        store.set_field(id, "village", &"Làng Le".into()).unwrap();
        println!("committed {id}");
    }
}

#[test]
fn killed_writer_leaves_every_committed_edit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite");
    for round in 0..3 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash_child_writer",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut committed = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if let Some(id) = line.strip_prefix("committed ") {
                committed.push(Uuid::parse_str(id.trim()).unwrap());
            }
            if committed.len() >= 40 + round * 17 {
                break;
            }
        }
        child.kill().unwrap(); // SIGKILL: no destructor, no checkpoint
        child.wait().unwrap();

        let store = Store::open(&path).unwrap();
        for id in &committed {
            let view = store.get(*id).unwrap();
            assert_eq!(view.fields.get("village"), Some(&"Làng Le".into()));
        }
        assert!(store.count(&Default::default()).unwrap() as usize >= committed.len());
    }
}
