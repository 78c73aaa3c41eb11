//! Store files every older phone version left behind (`tests/fixtures/store/v<N>.sqlite`, made
//! as the README there says) open through the upgrade: the records list and load, the edit
//! never sent is still pending and still this phone's own, what was set aside stays set aside,
//! and the schema is exactly a new store's (`schema.sql`, the schema before the upgrade code
//! was shared).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

use fieldsync_core::generator::minimal_household;
use fieldsync_core::record::actor_for_key;
use fieldsync_core::store::ListFilter;
use fieldsync_core::{RecordDoc, RecordType, Store, Value};
use rusqlite::{params, Connection};
use std::path::{Path, PathBuf};
use uuid::Uuid;

const NGOC_LINH: &str = "62.610.01";
/// The device id of the version 1 fixture (stores then drew it at random).
const V1_DEVICE: Uuid = Uuid::from_u128(0x5c1e_7a2b_0d4f_4e61_9a3c_2b8d_6f10_4e27);
/// The secret protocol 2 stores (versions 2 and 3) derived their actor from.
const V2_SECRET: [u8; 32] = [0x2a; 32];
/// Another phone, whose household this one received.
const OTHER: Uuid = Uuid::from_u128(0x0b7e_51d2_96a8_4c03_8e1f_7d24_a95b_3c60);
const OLDEST: i64 = 1;
const NEWEST_OLD: i64 = 3;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store")
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

fn old_actor(version: i64) -> Uuid {
    if version == 1 {
        V1_DEVICE
    } else {
        actor_for_key(&V2_SECRET)
    }
}

#[test]
fn a_new_store_has_the_schema_of_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phone.sqlite");
    drop(Store::open(&path).unwrap());
    let expected = std::fs::read_to_string(fixtures().join("schema.sql")).unwrap();
    assert_eq!(schema_of(&Connection::open(&path).unwrap()), expected);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the store is its owner's only");
    }
}

#[test]
fn every_older_store_upgrades_with_its_records_and_pending_edits() {
    let expected = std::fs::read_to_string(fixtures().join("schema.sql")).unwrap();
    for version in OLDEST..=NEWEST_OLD {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("phone.sqlite");
        std::fs::copy(fixtures().join(format!("v{version}.sqlite")), &path).unwrap();
        let at = format!("from version {version}");
        let store =
            Store::open(&path).unwrap_or_else(|e| panic!("version {version} does not open: {e}"));
        assert_eq!(
            schema_of(&Connection::open(&path).unwrap()),
            expected,
            "{at}"
        );

        let mut titles: Vec<String> = store
            .list(&ListFilter::default())
            .unwrap()
            .into_iter()
            .map(|r| r.title)
            .collect();
        titles.sort();
        assert_eq!(titles, ["Nguyễn Thị Hoa", "Y Blơ"], "{at}");
        let found = store
            .list(&ListFilter {
                search: Some("nguyen thi hoa".into()),
                ..ListFilter::default()
            })
            .unwrap();
        assert_eq!(found.len(), 1, "{at}");
        let own = found[0].id;
        let view = store.get(own).unwrap();
        assert_eq!(
            view.fields.get("village"),
            Some(&Value::from("Làng Mới")),
            "{at}"
        );

        // The edit never sent is pending, and it is this phone's own.
        assert_eq!(store.unacked_count().unwrap(), 1, "{at}");
        let pending = store.unacked(1 << 20).unwrap();
        assert_eq!(pending[0].record_id, own, "{at}");
        assert!(store.own_actors().contains(&old_actor(version)), "{at}");
        if version >= 2 {
            assert_eq!(store.set_aside().unwrap().len(), 1, "{at}");
        }
        drop(store);

        // Opening the upgraded file again keeps its key and writes nothing.
        let conn = Connection::open(&path).unwrap();
        let changes = |c: &Connection| -> i64 {
            c.query_row("PRAGMA data_version", [], |r| r.get(0))
                .unwrap()
        };
        let before = changes(&conn);
        drop(Store::open(&path).unwrap());
        assert_eq!(changes(&conn), before, "{at}");
    }
}

/// Not a test: writes `tests/fixtures/store/v1.sqlite` … `v3.sqlite` (see the README there).
/// `cargo test -p fieldsync-core --test old_stores -- --ignored write_old_stores`
#[test]
#[ignore = "writes the fixtures; run by hand when they need remaking"]
fn write_old_stores() {
    // The commit whose code wrote each version, and so the SQL a new file was created with.
    for (version, commit) in [(1, "1c78ed9"), (2, "51b2306"), (3, "d27b4c6")] {
        let out = fixtures().join(format!("v{version}.sqlite"));
        let _ = std::fs::remove_file(&out);
        let conn = Connection::open(&out).unwrap();
        for sql in old_schema(commit, "sync-core/src/store/schema.rs") {
            conn.execute_batch(&sql).unwrap();
        }
        let actor = old_actor(version);
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('device_id', ?1)",
            [actor.to_string()],
        )
        .unwrap();
        if version >= 2 {
            let hex: String = V2_SECRET.iter().map(|b| format!("{b:02x}")).collect();
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('actor_key', ?1)",
                [hex],
            )
            .unwrap();
        }

        // Made here and acknowledged, then edited and not sent yet.
        let own = Uuid::from_u128(0x0190_a000_0000_7000_8000_0000_0000_0011);
        let (mut doc, created) = RecordDoc::create(
            own,
            RecordType::Household,
            &minimal_household(NGOC_LINH, "Nguyễn Thị Hoa"),
            actor,
        )
        .unwrap();
        let edit = doc
            .set_field("village", &"Làng Mới".into())
            .unwrap()
            .unwrap();
        conn.execute("INSERT INTO records (id) VALUES (?1)", [own.as_bytes()])
            .unwrap();
        insert_change(&conn, &created, true, 1);
        let seq = insert_change(&conn, &edit, true, 0);
        project(&conn, &doc, seq);

        // Received from another phone.
        let theirs = Uuid::from_u128(0x0190_a000_0000_7000_8000_0000_0000_0012);
        let (doc, created) = RecordDoc::create(
            theirs,
            RecordType::Household,
            &minimal_household(NGOC_LINH, "Y Blơ"),
            OTHER,
        )
        .unwrap();
        conn.execute("INSERT INTO records (id) VALUES (?1)", [theirs.as_bytes()])
            .unwrap();
        let seq = insert_change(&conn, &created, false, 0);
        project(&conn, &doc, seq);

        if version >= 2 {
            conn.execute(
                "INSERT INTO set_aside (record_id, bytes, reason) VALUES (?1, x'00ff', 'undecodable')",
                [Uuid::from_u128(0x0190_a000_0000_7000_8000_0000_0000_0013).as_bytes()],
            )
            .unwrap();
        }
        conn.pragma_update(None, "user_version", version).unwrap();
        conn.execute_batch("PRAGMA page_size = 1024; VACUUM")
            .unwrap();
    }
}

fn insert_change(
    conn: &Connection,
    change: &fieldsync_core::record::RecordChange,
    local: bool,
    acked: i64,
) -> i64 {
    conn.execute(
        "INSERT INTO changes (record_id, hash, bytes, local, acked) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            change.record_id.as_bytes(),
            &change.hash.0[..],
            change.bytes,
            local,
            acked
        ],
    )
    .unwrap();
    conn.last_insert_rowid()
}

/// The projection row the store wrote for a record.
fn project(conn: &Connection, doc: &RecordDoc, seq: i64) {
    let view = doc.view().unwrap();
    conn.execute(
        "INSERT INTO projection (id, record_type, commune, status, title, search_text, conflicts, last_change_seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            view.id.as_bytes(),
            view.record_type.as_str(),
            view.commune(),
            view.status().as_str(),
            view.title(),
            view.search_text(),
            view.conflicts.len() as i64,
            seq
        ],
    )
    .unwrap();
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
