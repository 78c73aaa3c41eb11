//! Databases every older server version left behind (`tests/fixtures/db/v<N>.sqlite`, made as
//! the README there says) open through the upgrade: the accounts, the phone's token, the
//! records, every change with a receipt that verifies, the held change, the audit log and the
//! merged view, duplicates and indicator facts are all there, and the schema is exactly a new
//! database's (`schema.sql`, the schema before the upgrade code was shared).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod common;

use common::*;
use fieldsync_core::model::{RecordType, Value};
use fieldsync_core::signing::{verify_change, DeviceKey};
use fieldsync_server::accounts::{self, Authority};
use fieldsync_server::scope::Scope;
use fieldsync_server::storage::prelude::*;
use fieldsync_server::storage::sqlite::SqliteStorage;
use fieldsync_server::storage::{AuditEntry, DuplicateQuery, NewUser, RecordQuery, Role};
use rusqlite::Connection;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// The token of the phone enrolled in every fixture.
const TOKEN: &str = "token-of-lans-phone-in-the-fixtures";
const OLDEST: i64 = 1;
const NEWEST_OLD: i64 = 6;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/db")
}

/// `sqlite_master` as `schema.sql` writes it.
fn schema_of(conn: &Connection) -> String {
    let mut stmt = conn
        .prepare("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name")
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            let (kind, name, table): (String, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
            let sql: Option<String> = r.get(3)?;
            Ok(format!("-- {kind} {name} on {table}\n")
                + &sql.map(|s| format!("{s};\n")).unwrap_or_default())
        })
        .unwrap();
    rows.collect::<Result<Vec<_>, _>>().unwrap().join("\n")
}

fn one(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[test]
fn a_new_database_has_the_schema_of_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.sqlite");
    drop(SqliteStorage::open(&path).unwrap());
    let expected = std::fs::read_to_string(fixtures().join("schema.sql")).unwrap();
    assert_eq!(schema_of(&Connection::open(&path).unwrap()), expected);
}

#[test]
fn every_older_database_upgrades_with_its_rows_kept_and_readable() {
    let expected = std::fs::read_to_string(fixtures().join("schema.sql")).unwrap();
    for version in OLDEST..=NEWEST_OLD {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.sqlite");
        std::fs::copy(fixtures().join(format!("v{version}.sqlite")), &path).unwrap();
        let storage = SqliteStorage::open(&path)
            .unwrap_or_else(|e| panic!("version {version} does not open: {e}"));
        let conn = Connection::open(&path).unwrap();
        let at = format!("from version {version}");
        assert_eq!(schema_of(&conn), expected, "{at}");

        // Accounts: both users, the phone's token still lets it in.
        let (lan, _) = storage.user_by_name("lan").unwrap().expect(&at);
        assert!(lan.sensitive_access, "{at}");
        assert!(storage.user_by_name("admin").unwrap().is_some(), "{at}");
        let caller = accounts::authorise(&storage, TOKEN).unwrap().expect(&at);
        assert_eq!(caller.user.username, "lan", "{at}");

        // The merged view lists every record, by its Vietnamese name.
        let page = storage
            .list_records(
                &Scope::everything(),
                &RecordQuery {
                    limit: 10,
                    ..RecordQuery::default()
                },
            )
            .unwrap();
        let mut titles: Vec<String> = page.records.iter().map(|r| r.title.clone()).collect();
        titles.sort();
        assert_eq!(
            titles,
            ["Nguyễn Thị Hoa", "Nguyễn Thị Hoa", "trafficking"],
            "{at}"
        );
        for record in &page.records {
            let merged = storage.merged_record(record.id).unwrap().expect(&at);
            assert_eq!(merged.view["fields"]["commune"], NGOC_LINH, "{at}");
            assert!(storage.record_review(record.id).unwrap().is_some(), "{at}");
        }
        let edited = page
            .records
            .iter()
            .find(|r| {
                let merged = storage.merged_record(r.id).unwrap().unwrap();
                merged.view["fields"]["village"] == "Làng Mới"
            })
            .expect("the edited household");
        assert_eq!(storage.record_history(edited.id).unwrap().len(), 2, "{at}");
        // The upgrades to versions 8 and 9 filled the list's village and collector from what was there.
        assert_eq!(edited.village.as_deref(), Some("Làng Mới"), "{at}");
        let collector = edited.collector.as_ref().expect(&at);
        assert_eq!(collector.username, "lan", "{at}");
        assert_eq!(collector.full_name, None, "{at}");

        // Every change has a receipt that verifies under the server's key.
        let seed: String = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'signing_key'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let seed: Vec<u8> = (0..seed.len() / 2)
            .map(|i| u8::from_str_radix(&seed[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        let key = DeviceKey::from_seed(&seed.try_into().unwrap()).public_key();
        let mut stmt = conn
            .prepare("SELECT record_id, hash, receipt FROM changes")
            .unwrap();
        assert_eq!(
            one(&conn, "SELECT COUNT(*) FROM changes WHERE receipt IS NULL"),
            0,
            "{at}"
        );
        let changes: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(changes.len(), 4, "{at}");
        for (record, hash, receipt) in changes {
            assert!(
                verify_change(
                    &key,
                    Uuid::from_slice(&record).unwrap(),
                    &hash.try_into().unwrap(),
                    &receipt.try_into().unwrap()
                ),
                "{at}"
            );
        }

        // The held change waits still; the case stays in the sensitive stream only.
        assert_eq!(one(&conn, "SELECT COUNT(*) FROM held"), 1, "{at}");
        assert_eq!(
            one(
                &conn,
                "SELECT COUNT(*) FROM log l JOIN merged m ON m.id = l.record_id
                 WHERE m.record_type = 'support_case' AND l.stream NOT LIKE '%#sensitive'"
            ),
            0,
            "{at}"
        );
        assert_eq!(
            one(&conn, "SELECT COUNT(*) FROM merged WHERE sensitive = 1"),
            1,
            "{at}"
        );

        // Derived data: the two registrations of one household are a candidate pair, and
        // indicators read every record.
        let pairs = storage
            .list_duplicates(
                &Scope::everything(),
                &DuplicateQuery {
                    limit: 10,
                    ..DuplicateQuery::default()
                },
            )
            .unwrap();
        assert_eq!(pairs.total, 1, "{at}");
        assert_eq!(storage.indicator_facts().unwrap().len(), 3, "{at}");

        // The audit log is kept (from version 3, which began it), append-only.
        if version >= 3 {
            assert_eq!(
                one(&conn, "SELECT COUNT(*) FROM audit WHERE action = 'login'"),
                1,
                "{at}"
            );
            assert!(conn.execute("UPDATE audit SET detail = ''", []).is_err());
        }
        drop(storage);

        // Opening the upgraded file again writes nothing.
        let before = one(&conn, "PRAGMA data_version");
        drop(SqliteStorage::open(&path).unwrap());
        assert_eq!(one(&conn, "PRAGMA data_version"), before, "{at}");
    }
}

/// Not a test: writes `tests/fixtures/db/v1.sqlite` … `v6.sqlite` (see the README there).
/// `cargo test -p fieldsync-server --test old_databases -- --ignored write_old_databases`
#[test]
#[ignore = "writes the fixtures; run by hand when they need remaking"]
fn write_old_databases() {
    let world = World::new();
    world.user("lan", &[NGOC_LINH], true);
    accounts::create_user(
        &world.storage,
        Authority::Operator,
        &NewUser {
            username: "admin".into(),
            password: "mật khẩu dài".into(),
            role: Role::Admin,
            sensitive_access: false,
            areas: vec!["*".into()],
            can_grant_sensitive: true,
            full_name: None,
            phone: None,
        },
    )
    .unwrap();
    let mut lan = world.phone("lan");
    let first = lan.household(NGOC_LINH, "Nguyễn Thị Hoa");
    lan.store
        .set_field(first, "village", &"Làng Mới".into())
        .unwrap();
    let mut second = household(NGOC_LINH, "Nguyễn Thị Hoa");
    second.insert("village".into(), "Làng Mới".into());
    lan.store.create(RecordType::Household, &second).unwrap();
    let case: BTreeMap<String, Value> = [
        ("commune", NGOC_LINH),
        ("person_id", "0190a000-0000-7000-8000-000000000001"),
        ("case_kind", "trafficking"),
        ("opened", "2025-03-01"),
        ("case_notes", "Chị Hoa cần hỗ trợ pháp lý"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), Value::from(v)))
    .collect();
    lan.store.create(RecordType::SupportCase, &case).unwrap();
    world.sync(&mut lan);
    world
        .storage
        .audit(&AuditEntry {
            at_ms: 1_765_000_000_000,
            user_id: Some(lan.caller.user.id),
            username: Some("lan".into()),
            action: "login".into(),
            peer: Some("203.113.0.7".into()),
            ..AuditEntry::default()
        })
        .unwrap();
    // Two more edits; the server gets only the second, which waits for the first.
    lan.store
        .set_field(first, "village", &"Làng Cũ".into())
        .unwrap();
    lan.store
        .set_field(first, "village", &"Làng Giữa".into())
        .unwrap();
    let unsent = lan.store.unacked(1 << 20).unwrap();
    let last = unsent.last().unwrap();
    world.exchange(
        &lan,
        &fieldsync_core::protocol::compress(
            &push_only(&lan.store, last.record_id, &last.bytes).encode(),
        ),
    );
    drop(lan);

    let current = world.dir.path().join("server.sqlite");
    let conn = Connection::open(&current).unwrap();
    conn.execute(
        "UPDATE devices SET token_hash = ?1",
        [accounts::token_hash(TOKEN)],
    )
    .unwrap();
    assert_eq!(one(&conn, "SELECT COUNT(*) FROM held"), 1);
    drop(conn);

    // The commit whose code wrote each version, and the SQL it created a new file with.
    let versions = [
        (1, "811c1fb"),
        (2, "852edb7"),
        (3, "c9b03d1"),
        (4, "7f23604"),
        (5, "d27b4c6"),
        (6, "9e12261"),
    ];
    for (version, commit) in versions {
        let out = fixtures().join(format!("v{version}.sqlite"));
        let _ = std::fs::remove_file(&out);
        let old = Connection::open(&out).unwrap();
        for sql in old_schema(commit, "server/src/storage/sqlite/schema.rs") {
            if version == 6 && sql.contains("DROP TRIGGER audit_is_append_only_update") {
                // Version 6 added this column in code, just before its SQL.
                old.execute_batch(
                    "ALTER TABLE audit ADD COLUMN sensitive INTEGER NOT NULL DEFAULT 0;",
                )
                .unwrap();
            }
            old.execute_batch(&sql).unwrap();
        }
        copy_rows(&old, &current);
        if version >= 2 {
            // Signing keys came with version 7.
            old.execute_batch("DELETE FROM meta WHERE key = 'signing_key'")
                .unwrap();
        }
        old.pragma_update(None, "user_version", version).unwrap();
        old.execute_batch("PRAGMA page_size = 1024; VACUUM")
            .unwrap();
    }
}

/// The SQL constants of `path` at `commit`, in the order they appear (the order a new file was
/// created in).
fn old_schema(commit: &str, path: &str) -> Vec<String> {
    let out = std::process::Command::new("git")
        .args(["show", &format!("{commit}:{path}")])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let mut found = Vec::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find(": &str = \"") {
        let body = &rest[start + ": &str = \"".len()..];
        let end = body.find("\";\n").unwrap();
        found.push(body[..end].replace("\\\"", "\""));
        rest = &body[end..];
    }
    assert!(!found.is_empty(), "no schema at {commit}");
    found
}

/// Copies every row of `current` into the tables `old` has, in the columns it has.
fn copy_rows(old: &Connection, current: &Path) {
    old.execute("ATTACH DATABASE ?1 AS cur", [current.to_str().unwrap()])
        .unwrap();
    let tables: Vec<String> = old
        .prepare(
            "SELECT name FROM main.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    // The audit log refuses changes, not inserts; triggers stay as they are.
    for table in tables {
        let columns: Vec<String> = old
            .prepare(
                "SELECT o.name FROM pragma_table_info(?1, 'main') o
                 JOIN pragma_table_info(?1, 'cur') c ON c.name = o.name ORDER BY o.cid",
            )
            .unwrap()
            .query_map([&table], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        if columns.is_empty() {
            continue;
        }
        let list = columns.join(", ");
        old.execute_batch(&format!(
            "INSERT INTO main.{table} ({list}) SELECT {list} FROM cur.{table}"
        ))
        .unwrap();
    }
    old.execute_batch("DETACH DATABASE cur").unwrap();
}
