//! The server database's SQL schema, one migration per version, the rebuilds of derived data
//! they ask for, and how the file is opened (see `fieldsync_core::sqlite_setup`). Opening a
//! database that is already current writes nothing, so a server can start (and serve reads) on
//! a full disk. Add a version by appending its migration to [`SCHEMA`].

use crate::storage::{StorageError, StorageResult};
use fieldsync_core::record::decode_change;
use fieldsync_core::sqlite_setup::{
    self, Journal, Migration, Pragmas, Rebuild, Schema, SetupError, Step,
};
use rusqlite::{params, Connection, Transaction};
use std::path::Path;
use std::time::Duration;

const V1: &str = "
CREATE TABLE users (
    id               INTEGER PRIMARY KEY,
    username         TEXT NOT NULL UNIQUE,
    password_hash    TEXT NOT NULL,
    role             TEXT NOT NULL,
    sensitive_access INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE user_areas (
    user_id INTEGER NOT NULL REFERENCES users(id),
    area    TEXT NOT NULL,
    PRIMARY KEY (user_id, area)
);
-- Tokens are stored only as SHA-256 hashes: a copy of the database enrols nobody.
CREATE TABLE devices (
    id         BLOB PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id),
    name       TEXT NOT NULL,
    token_hash BLOB NOT NULL UNIQUE,
    revoked    INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE login_failures (
    username     TEXT PRIMARY KEY,
    failures     INTEGER NOT NULL,
    locked_until INTEGER NOT NULL
);
-- The current merged document of every record (always up to date after an ingest).
CREATE TABLE records (
    id          BLOB PRIMARY KEY,
    record_type TEXT,
    commune     TEXT,
    snapshot    BLOB NOT NULL
);
-- Every change ever accepted, in arrival order; never deleted.
CREATE TABLE changes (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    hash          BLOB NOT NULL UNIQUE,
    record_id     BLOB NOT NULL,
    bytes         BLOB NOT NULL,
    origin_device BLOB NOT NULL
);
CREATE INDEX changes_by_record ON changes(record_id, seq);
-- What devices pull: change references per stream (commune, sensitive or not), causal order.
CREATE TABLE log (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    stream        TEXT NOT NULL,
    record_id     BLOB NOT NULL,
    hash          BLOB NOT NULL,
    origin_device BLOB NOT NULL
);
CREATE INDEX log_by_stream ON log(stream, seq);
-- Changes received before their dependencies: kept until those arrive, never dropped.
CREATE TABLE held (
    hash          BLOB PRIMARY KEY,
    record_id     BLOB NOT NULL,
    bytes         BLOB NOT NULL,
    origin_device BLOB NOT NULL,
    missing       BLOB NOT NULL
);
CREATE INDEX held_by_record ON held(record_id);
-- The merged view supervisors read.
CREATE TABLE merged (
    id          BLOB PRIMARY KEY,
    record_type TEXT NOT NULL,
    commune     TEXT,
    status      TEXT NOT NULL,
    title       TEXT NOT NULL,
    search_text TEXT NOT NULL,
    view        TEXT NOT NULL,
    problems    TEXT NOT NULL,
    conflicts   TEXT NOT NULL,
    n_problems  INTEGER NOT NULL,
    n_conflicts INTEGER NOT NULL
);
CREATE INDEX merged_by_commune ON merged(commune, record_type);
";

/// Version 2: the database's identity, actors bound to enrolments, remembered refusals, held
/// changes with their arrival time, records that were ever sensitive, how far each record's
/// history is logged per stream, and account permissions.
const V2_FROM_V1: &str = "
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
-- Devices enrolled before phones proved their actor at enrolment: each may still take the
-- actors it pushes under, if no other device has them.
ALTER TABLE devices ADD COLUMN legacy INTEGER NOT NULL DEFAULT 0;
UPDATE devices SET legacy = 1;
ALTER TABLE users ADD COLUMN can_grant_sensitive INTEGER NOT NULL DEFAULT 0;
-- The Automerge actors each enrolment writes under: an actor belongs to one device only, and
-- every actor of a stored change is here.
CREATE TABLE actors (
    actor     BLOB PRIMARY KEY,
    device_id BLOB NOT NULL
);
CREATE INDEX actors_by_device ON actors(device_id);
-- Changes the server refused, so that pushing one again (or an edit built on one) gets the
-- same answer instead of being held.
CREATE TABLE refused (
    hash      BLOB PRIMARY KEY,
    record_id BLOB NOT NULL,
    code      INTEGER NOT NULL
);
ALTER TABLE held ADD COLUMN received_ms INTEGER NOT NULL DEFAULT 0;
CREATE INDEX held_by_device ON held(origin_device);
CREATE INDEX held_by_age ON held(received_ms);
-- A record that was ever a sensitive type stays sensitive for good.
ALTER TABLE records ADD COLUMN sensitive INTEGER NOT NULL DEFAULT 0;
ALTER TABLE merged ADD COLUMN sensitive INTEGER NOT NULL DEFAULT 0;
-- The newest change (by changes.seq) of each record already logged into each stream: a record
-- that moves back into a stream logs only what the stream has not had.
CREATE TABLE record_streams (
    record_id BLOB NOT NULL,
    stream    TEXT NOT NULL,
    upto      INTEGER NOT NULL,
    PRIMARY KEY (record_id, stream)
);
-- Admins kept every power they had before areas applied to them.
UPDATE users SET can_grant_sensitive = 1 WHERE role = 'admin';
-- Failed logins are throttled in memory now (per account and source address, decaying).
DROP TABLE login_failures;
INSERT INTO user_areas (user_id, area)
  SELECT id, '*' FROM users WHERE role = 'admin' AND id NOT IN (SELECT user_id FROM user_areas);
";

/// Version 3: the supervisors' workspace. When the server received each change (for the
/// history and "changed since"), browser sessions as devices with a CSRF token and an expiry,
/// the review state (with "changed since approval") and last change time in the merged view,
/// and the append-only audit log.
const V3_FROM_V2: &str = "
ALTER TABLE changes ADD COLUMN received_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN kind TEXT NOT NULL DEFAULT 'phone';
ALTER TABLE devices ADD COLUMN csrf TEXT;
ALTER TABLE devices ADD COLUMN expires_ms INTEGER;
ALTER TABLE merged ADD COLUMN review TEXT NOT NULL DEFAULT 'pending';
ALTER TABLE merged ADD COLUMN updated_ms INTEGER NOT NULL DEFAULT 0;
UPDATE merged SET review = COALESCE(json_extract(view, '$.review'), 'pending');
CREATE INDEX merged_by_review ON merged(review);
CREATE INDEX merged_by_updated ON merged(updated_ms);
-- Who did what, when, from where: appended to, never changed (the triggers refuse it).
CREATE TABLE audit (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms     INTEGER NOT NULL,
    user_id   INTEGER,
    username  TEXT,
    device_id BLOB,
    action    TEXT NOT NULL,
    target    TEXT,
    detail    TEXT,
    peer      TEXT
);
CREATE TRIGGER audit_is_append_only_update BEFORE UPDATE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_is_append_only_delete BEFORE DELETE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
";

/// Version 4: duplicates. Detection keys per record and the candidate pairs with their
/// reasons and the supervisor's decision; in the merged view, which record a duplicate was
/// merged into and the edits it received after its merge.
const V4_FROM_V3: &str = "
ALTER TABLE merged ADD COLUMN merged_into BLOB;
ALTER TABLE merged ADD COLUMN merge_edits TEXT NOT NULL DEFAULT '[]';
UPDATE merged SET merged_into = unhex(replace(json_extract(view, '$.merged_into'), '-', ''))
  WHERE json_extract(view, '$.merged_into') IS NOT NULL;
CREATE INDEX merged_by_merged_into ON merged(merged_into) WHERE merged_into IS NOT NULL;
CREATE TABLE dup_keys (
    key       TEXT NOT NULL,
    record_id BLOB NOT NULL,
    PRIMARY KEY (key, record_id)
) WITHOUT ROWID;
CREATE INDEX dup_keys_by_record ON dup_keys(record_id);
-- a < b; reasons is a JSON array; state is open, dismissed or merged.
CREATE TABLE dup_pairs (
    a           BLOB NOT NULL,
    b           BLOB NOT NULL,
    record_type TEXT NOT NULL,
    reasons     TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'open',
    decided_by  TEXT,
    decided_ms  INTEGER,
    found_ms    INTEGER NOT NULL,
    PRIMARY KEY (a, b)
) WITHOUT ROWID;
CREATE INDEX dup_pairs_by_b ON dup_pairs(b);
CREATE INDEX dup_pairs_by_state ON dup_pairs(state, found_ms);
";

/// Version 5: plan progress. What indicators read of each record (kind, own date, review,
/// merges, the people it names), rewritten with the merged view on every ingest and filled
/// from it here (`facts::backfill`).
const V5_FROM_V4: &str = "
CREATE TABLE indicator_facts (
    id          BLOB PRIMARY KEY,
    record_type TEXT NOT NULL,
    commune     TEXT,
    status      TEXT NOT NULL,
    merged_into BLOB,
    review      TEXT NOT NULL,
    sensitive   INTEGER NOT NULL,
    kind        TEXT,
    date        TEXT,
    detail      TEXT NOT NULL,
    people      BLOB NOT NULL
);
";

/// Version 6 (after the column `audit.sensitive` is added): audit entries say whether they are
/// about support cases, which only accounts with sensitive access read. Entries written before
/// are classified by their action and target (the only time rows of the log are touched: the
/// update trigger is lifted for this statement alone); the sensitive devices listing reads
/// syncs' entries by action.
const V6_FROM_V5: &str = "
DROP TRIGGER audit_is_append_only_update;
UPDATE audit SET sensitive = 1
  WHERE action IN ('view_case', 'view_indicator_cases', 'export_indicators')
     OR (action IN ('review', 'edit', 'merge', 'unmerge', 'dismiss_duplicate')
         AND EXISTS (SELECT 1 FROM merged m WHERE m.id = unhex(replace(audit.target, '-', ''))
                     AND (m.sensitive = 1 OR m.record_type = 'support_case')));
CREATE TRIGGER audit_is_append_only_update BEFORE UPDATE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE INDEX IF NOT EXISTS audit_by_action ON audit(action, device_id);
";

/// Version 7 (protocol 3): signed changes. The public key each actor signs with (a device's,
/// shown at enrolment; actors bound before it have none until their device enrols again);
/// for every change the server's receipt (its signature: this server accepted the change) and
/// the author's own signature when the author pushed it; held changes with the signature they
/// came with and whether it was the server's receipt; held changes that waited too long, so
/// that their sender hears of it once without the refusal being kept for everyone. The
/// server's key is created here and every stored change gets its receipt (`sign_all`).
const V7_FROM_V6: &str = "
ALTER TABLE actors ADD COLUMN public_key BLOB;
ALTER TABLE changes ADD COLUMN receipt BLOB;
ALTER TABLE changes ADD COLUMN author_signature BLOB;
ALTER TABLE held ADD COLUMN signature BLOB;
ALTER TABLE held ADD COLUMN vouched INTEGER NOT NULL DEFAULT 0;
CREATE TABLE expired (
    hash          BLOB PRIMARY KEY,
    record_id     BLOB NOT NULL,
    origin_device BLOB NOT NULL
) WITHOUT ROWID;
";

/// Version 8: accounts get a full name and a phone number; the merged view keeps each record's
/// village, for the record list's column and order (its collector comes from `record_origin`,
/// version 9).
const V8_FROM_V7: &str = "
ALTER TABLE users ADD COLUMN full_name TEXT;
ALTER TABLE users ADD COLUMN phone TEXT;
ALTER TABLE merged ADD COLUMN village TEXT;
UPDATE merged SET village = json_extract(view, '$.fields.village');
";

/// Version 9: administration and the review queue. When each device enrolled, last synced and
/// how many changes it sent (counted as they arrive; filled here from the stored changes); the
/// device and time each record's first change arrived from (who registered it, and when); a
/// score for each candidate pair of duplicates (computed by the rebuild).
const V9_FROM_V8: &str = "
ALTER TABLE devices ADD COLUMN enrolled_ms INTEGER;
ALTER TABLE devices ADD COLUMN last_sync_ms INTEGER;
ALTER TABLE devices ADD COLUMN changes_sent INTEGER NOT NULL DEFAULT 0;
UPDATE devices SET changes_sent = c.n, last_sync_ms = NULLIF(c.last, 0)
  FROM (SELECT origin_device, COUNT(*) AS n, MAX(received_ms) AS last FROM changes
        GROUP BY origin_device) AS c
  WHERE c.origin_device = devices.id;
CREATE TABLE record_origin (
    record_id BLOB PRIMARY KEY,
    device_id BLOB NOT NULL,
    at_ms     INTEGER NOT NULL
);
INSERT OR IGNORE INTO record_origin (record_id, device_id, at_ms)
  SELECT record_id, origin_device, received_ms FROM changes
  WHERE seq IN (SELECT MIN(seq) FROM changes GROUP BY record_id);
CREATE INDEX record_origin_by_time ON record_origin(at_ms);
ALTER TABLE dup_pairs ADD COLUMN score INTEGER NOT NULL DEFAULT 0;
CREATE INDEX dup_pairs_by_score ON dup_pairs(state, score);
";

/// Every version's migration and the rebuilds they ask for.
pub const SCHEMA: Schema<StorageError> = Schema {
    what: "server database",
    migrations: &[
        Migration {
            version: 1,
            steps: &[Step::Sql(V1)],
            rebuilds: &[],
        },
        Migration {
            version: 2,
            steps: &[Step::Sql(V2_FROM_V1), Step::Run(migrate_history_to_v2)],
            rebuilds: &[],
        },
        Migration {
            version: 3,
            steps: &[Step::Sql(V3_FROM_V2)],
            rebuilds: &[],
        },
        Migration {
            version: 4,
            steps: &[Step::Sql(V4_FROM_V3)],
            rebuilds: &[DUPLICATES],
        },
        Migration {
            version: 5,
            steps: &[Step::Sql(V5_FROM_V4)],
            rebuilds: &[FACTS],
        },
        Migration {
            version: 6,
            steps: &[Step::Run(add_audit_sensitive), Step::Sql(V6_FROM_V5)],
            rebuilds: &[],
        },
        Migration {
            version: 7,
            steps: &[Step::Sql(V7_FROM_V6), Step::Run(create_signing_key)],
            rebuilds: &[RECEIPTS],
        },
        Migration {
            version: 8,
            steps: &[Step::Sql(V8_FROM_V7)],
            rebuilds: &[],
        },
        Migration {
            version: 9,
            steps: &[Step::Sql(V9_FROM_V8)],
            rebuilds: &[DUPLICATES],
        },
    ],
    // Duplicates and facts are both read from the merged view; receipts from the changes.
    rebuilds: &[
        Rebuild {
            name: DUPLICATES,
            run: rebuild_duplicates,
        },
        Rebuild {
            name: FACTS,
            run: rebuild_facts,
        },
        Rebuild {
            name: RECEIPTS,
            run: receipt_every_change,
        },
    ],
    after_upgrade: Some(renew_identity),
};

const DUPLICATES: &str = "duplicate detection";
const FACTS: &str = "indicator facts";
const RECEIPTS: &str = "receipts";

/// WAL, so that readers never wait for the writer; `synchronous=FULL`, so that an
/// acknowledged push is on disk.
const PRAGMAS: Pragmas = Pragmas {
    journal: Journal::Wal,
    full_sync: true,
    busy_timeout: Duration::from_secs(10),
};

/// Opens (creating it private if missing) and upgrades the database at `path`.
pub fn open(path: &Path) -> StorageResult<Connection> {
    sqlite_setup::open(path, PRAGMAS, &SCHEMA)
        .map(|opened| opened.conn)
        .map_err(into_storage)
}

/// The one place a setup failure becomes a [`StorageError`].
fn into_storage(e: SetupError<StorageError>) -> StorageError {
    match e {
        SetupError::TooNew {
            found, supported, ..
        } => StorageError::Invalid(format!(
            "database schema version {found} is newer than this server ({supported})"
        )),
        SetupError::Sqlite(e) => e.into(),
        SetupError::Step { source, .. } | SetupError::Rebuild { source, .. } => source,
        SetupError::Create { source, .. } => StorageError::Io(source.to_string()),
    }
}

/// Version 6 adds `audit.sensitive` unless the file has it already (a file whose version was
/// set back by hand, as tests do).
fn add_audit_sensitive(tx: &Transaction<'_>) -> StorageResult<()> {
    if !has_column(tx, "audit", "sensitive")? {
        tx.execute_batch("ALTER TABLE audit ADD COLUMN sensitive INTEGER NOT NULL DEFAULT 0;")?;
    }
    Ok(())
}

/// Creates the server's signing key, kept in `meta` so that every backup carries it. A key
/// already there (a file set back by hand) stays, and so do the receipts made with it.
fn create_signing_key(tx: &Transaction<'_>) -> StorageResult<()> {
    let key = fieldsync_core::signing::DeviceKey::generate();
    tx.execute(
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('signing_key', ?1)",
        [hex(&key.seed())],
    )?;
    Ok(())
}

/// Detection keys for every record and the candidate pairs found anew; pairs a supervisor
/// decided keep their decision.
pub(super) fn rebuild_duplicates(tx: &Transaction<'_>) -> StorageResult<()> {
    tx.execute_batch("DELETE FROM dup_keys; DELETE FROM dup_pairs WHERE state = 'open';")?;
    super::duplicates::index_all(tx, super::now_ms())
}

fn rebuild_facts(tx: &Transaction<'_>) -> StorageResult<()> {
    Ok(super::facts::backfill(tx)?)
}

/// Gives every stored change without one its receipt: each was accepted by this server.
fn receipt_every_change(tx: &Transaction<'_>) -> StorageResult<()> {
    let key = super::signing_key(tx)?;
    let rows: Vec<(i64, Vec<u8>, Vec<u8>)> = {
        let mut stmt =
            tx.prepare("SELECT seq, record_id, hash FROM changes WHERE receipt IS NULL")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut update = tx.prepare("UPDATE changes SET receipt = ?2 WHERE seq = ?1")?;
    for (seq, record, hash) in rows {
        let (Ok(record), Ok(hash)) = (
            uuid::Uuid::from_slice(&record),
            <[u8; 32]>::try_from(hash.as_slice()),
        ) else {
            return Err(StorageError::Corrupt(format!(
                "change {seq} has a malformed record id or hash"
            )));
        };
        update.execute(params![seq, &key.sign_change(record, &hash)[..]])?;
    }
    Ok(())
}

fn renew_identity(tx: &Transaction<'_>) -> StorageResult<()> {
    Ok(new_identity(tx)?)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn has_column(tx: &Transaction<'_>, table: &str, column: &str) -> rusqlite::Result<bool> {
    tx.query_row(
        "SELECT COUNT(*) FROM pragma_table_info(?1) WHERE name = ?2",
        [table, column],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

/// Gives the database a new identity: on creation, on upgrade, and in every backup copy, so
/// that phones notice when a server was restored and offer back what it lost.
pub fn new_identity(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('server_id', ?1)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [uuid::Uuid::new_v4().to_string()],
    )?;
    Ok(())
}

/// Fills the version 2 tables from the history a version 1 database holds: the actor behind
/// every stored change is bound to the device that pushed it first, a record that was ever a
/// support case is marked sensitive and its history leaves the ordinary streams, and how far
/// each record is logged per stream is taken from the log.
fn migrate_history_to_v2(tx: &Transaction<'_>) -> StorageResult<()> {
    let rows: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> = {
        let mut stmt =
            tx.prepare("SELECT record_id, bytes, origin_device FROM changes ORDER BY seq")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    for (record, bytes, origin) in rows {
        // A row that no longer decodes stays where it is; the record will read as corrupt.
        let Ok(change) = decode_change(&bytes) else {
            continue;
        };
        tx.execute(
            "INSERT OR IGNORE INTO actors (actor, device_id) VALUES (?1, ?2)",
            params![change.actor_id().to_bytes(), origin],
        )?;
        let made_sensitive = change.decode().operations.iter().any(|op| {
            matches!(&op.key, automerge::legacy::Key::Map(k) if k == "$type")
                && matches!(&op.action, automerge::legacy::OpType::Put(automerge::ScalarValue::Str(t)) if t == "support_case")
        });
        if made_sensitive {
            tx.execute("UPDATE records SET sensitive = 1 WHERE id = ?1", [&record])?;
        }
    }
    tx.execute_batch(
        "DELETE FROM log WHERE stream NOT LIKE '%#sensitive'
           AND record_id IN (SELECT id FROM records WHERE sensitive = 1);
         INSERT INTO log (stream, record_id, hash, origin_device)
           SELECT r.commune || '#sensitive', c.record_id, c.hash, c.origin_device
           FROM records r JOIN changes c ON c.record_id = r.id
           WHERE r.sensitive = 1 AND r.commune IS NOT NULL
             AND NOT EXISTS (SELECT 1 FROM log l WHERE l.record_id = r.id AND l.stream = r.commune || '#sensitive')
           ORDER BY c.seq;
         UPDATE merged SET sensitive = 1 WHERE id IN (SELECT id FROM records WHERE sensitive = 1);
         INSERT OR REPLACE INTO record_streams (record_id, stream, upto)
           SELECT l.record_id, l.stream, MAX(c.seq) FROM log l JOIN changes c ON c.hash = l.hash
           GROUP BY l.record_id, l.stream;",
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upgrade(conn: &mut Connection) -> StorageResult<i64> {
        sqlite_setup::upgrade(conn, &SCHEMA).map_err(into_storage)
    }

    #[test]
    fn the_declaration_holds_together() {
        assert_eq!(SCHEMA.check(), Ok(()));
    }
    use automerge::transaction::Transactable;
    use fieldsync_core::model::{RecordType, Value};
    use fieldsync_core::RecordDoc;
    use std::collections::BTreeMap;
    use uuid::Uuid;

    /// A version 1 database as an older server left it: an admin without areas, a phone, and
    /// a support case that a user with sensitive access retyped into a household, so that its
    /// whole history was logged into the ordinary commune stream.
    fn version_1_with_a_retyped_case() -> (Connection, Uuid, Uuid) {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(V1).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute_batch(
            "INSERT INTO users (id, username, password_hash, role) VALUES (1, 'admin', 'x', 'admin');
             INSERT INTO users (id, username, password_hash, role, sensitive_access) VALUES (2, 'cw', 'x', 'collector', 1);",
        )
        .unwrap();
        let device = Uuid::now_v7();
        conn.execute(
            "INSERT INTO devices (id, user_id, name, token_hash) VALUES (?1, 2, 'phone', x'00')",
            [device.as_bytes()],
        )
        .unwrap();
        let id = Uuid::now_v7();
        let actor = Uuid::new_v4();
        let fields: BTreeMap<String, Value> = [
            ("commune", "62.610.01"),
            ("person_id", "0190a000-0000-7000-8000-000000000001"),
            ("case_kind", "trafficking"),
            ("opened", "2025-03-01"),
            ("case_notes", "ghi chú mật"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Value::from(v)))
        .collect();
        let (mut doc, creation) =
            RecordDoc::create(id, RecordType::SupportCase, &fields, actor).unwrap();
        let mut raw = automerge::AutoCommit::load(&doc.save())
            .unwrap()
            .with_actor(automerge::ActorId::from(actor.as_bytes()));
        raw.put(automerge::ROOT, "$type", "household").unwrap();
        let hash = raw.commit().unwrap();
        let retype = raw.get_change_by_hash(&hash).unwrap().raw_bytes().to_vec();
        for (bytes, hash) in [(&creation.bytes, creation.hash), (&retype, hash)] {
            conn.execute(
                "INSERT INTO changes (hash, record_id, bytes, origin_device) VALUES (?1, ?2, ?3, ?4)",
                params![&hash.0[..], id.as_bytes(), bytes, device.as_bytes()],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO log (stream, record_id, hash, origin_device) VALUES ('62.610.01', ?1, ?2, ?3)",
                params![id.as_bytes(), &hash.0[..], device.as_bytes()],
            )
            .unwrap();
        }
        conn.execute(
            "INSERT INTO records (id, record_type, commune, snapshot) VALUES (?1, 'household', '62.610.01', ?2)",
            params![id.as_bytes(), raw.save()],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO merged (id, record_type, commune, status, title, search_text, view, problems, conflicts, n_problems, n_conflicts)
             VALUES (?1, 'household', '62.610.01', 'active', '', '', '{}', '[]', '[]', 0, 0)",
            [id.as_bytes()],
        )
        .unwrap();
        (conn, id, actor)
    }

    /// A version 3 database holds two registrations of one household and a record a phone
    /// had marked merged: the upgrade pairs the two and keeps the mark in its column.
    #[test]
    fn a_version_3_database_upgrades_with_its_duplicates_found() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(V1).unwrap();
        conn.execute_batch(V2_FROM_V1).unwrap();
        conn.execute_batch(V3_FROM_V2).unwrap();
        conn.pragma_update(None, "user_version", 3).unwrap();
        let mut fields = fieldsync_core::generator::minimal_household("62.610.01", "A Khang");
        fields.insert("village".into(), "Làng Le".into());
        let kept = Uuid::now_v7();
        let mut ids = Vec::new();
        for merged_into in [None, None, Some(kept)] {
            let id = if ids.is_empty() { kept } else { Uuid::now_v7() };
            let (doc, _) =
                RecordDoc::create(id, RecordType::Household, &fields, Uuid::new_v4()).unwrap();
            let mut view = doc.view().unwrap();
            view.merged_into = merged_into;
            conn.execute(
                "INSERT INTO merged (id, record_type, commune, status, title, search_text, view, problems,
                                     conflicts, n_problems, n_conflicts)
                 VALUES (?1, 'household', '62.610.01', ?2, 'A Khang', 'a khang', ?3, '[]', '[]', 0, 0)",
                params![id.as_bytes(), view.status().as_str(), serde_json::to_string(&view).unwrap()],
            )
            .unwrap();
            ids.push(id);
        }
        upgrade(&mut conn).unwrap();
        let pairs: Vec<(Vec<u8>, Vec<u8>, String)> = conn
            .prepare("SELECT a, b, reasons FROM dup_pairs")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let (a, b) = if ids[0] < ids[1] {
            (ids[0], ids[1])
        } else {
            (ids[1], ids[0])
        };
        assert_eq!(
            pairs,
            vec![(
                a.as_bytes().to_vec(),
                b.as_bytes().to_vec(),
                "[\"head_village\"]".to_owned()
            )]
        );
        let mark: Vec<u8> = conn
            .query_row(
                "SELECT merged_into FROM merged WHERE id = ?1",
                [ids[2].as_bytes()],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(mark, kept.as_bytes());
    }

    #[test]
    fn a_version_1_database_upgrades_and_a_case_once_retyped_stays_sensitive() {
        let (mut conn, id, actor) = version_1_with_a_retyped_case();
        upgrade(&mut conn).unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA.version());
        let one = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
        assert_eq!(one("SELECT sensitive FROM records"), 1);
        assert_eq!(one("SELECT sensitive FROM merged"), 1);
        assert_eq!(
            one("SELECT COUNT(*) FROM log WHERE stream = '62.610.01'"),
            0,
            "the case's history left the ordinary stream"
        );
        assert_eq!(
            one("SELECT COUNT(*) FROM log WHERE stream = '62.610.01#sensitive'"),
            2
        );
        let bound: Vec<u8> = conn
            .query_row("SELECT actor FROM actors", [], |r| r.get(0))
            .unwrap();
        assert_eq!(bound, actor.as_bytes());
        assert_eq!(
            one("SELECT COUNT(*) FROM user_areas WHERE user_id = 1 AND area = '*'"),
            1,
            "an admin keeps the reach it had"
        );
        assert_eq!(one("SELECT COUNT(*) FROM record_streams"), 1);
        let stored: Vec<u8> = conn
            .query_row("SELECT record_id FROM record_streams", [], |r| r.get(0))
            .unwrap();
        assert_eq!(stored, id.as_bytes());
        // Opening again writes nothing and keeps the identity.
        let before: String = conn
            .query_row("SELECT value FROM meta WHERE key = 'server_id'", [], |r| {
                r.get(0)
            })
            .unwrap();
        upgrade(&mut conn).unwrap();
        let after: String = conn
            .query_row("SELECT value FROM meta WHERE key = 'server_id'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(before, after);
    }

    /// A version 5 audit log: the entries about a case (a look, a return with its comment, an
    /// indicator's case list) are marked sensitive by the upgrade, the others are not, and the
    /// log is append-only again afterwards.
    #[test]
    fn a_version_5_audit_log_has_its_case_entries_marked_sensitive() {
        let mut conn = Connection::open_in_memory().unwrap();
        for step in [V1, V2_FROM_V1, V3_FROM_V2, V4_FROM_V3, V5_FROM_V4] {
            conn.execute_batch(step).unwrap();
        }
        conn.pragma_update(None, "user_version", 5).unwrap();
        let (case, household) = (Uuid::now_v7(), Uuid::now_v7());
        for (id, record_type, sensitive) in [(case, "support_case", 1), (household, "household", 0)]
        {
            conn.execute(
                "INSERT INTO merged (id, record_type, commune, status, title, search_text, view, problems,
                                     conflicts, n_problems, n_conflicts, sensitive)
                 VALUES (?1, ?2, '62.610.01', 'active', '', '', '{}', '[]', '[]', 0, 0, ?3)",
                params![id.as_bytes(), record_type, sensitive],
            )
            .unwrap();
        }
        let entries = [
            ("view_case", case.to_string()),
            ("review", case.to_string()),
            ("review", household.to_string()),
            ("login", String::new()),
            ("view_indicator_cases", "62".to_owned()),
            ("merge", household.to_string()),
        ];
        for (action, target) in &entries {
            conn.execute(
                "INSERT INTO audit (at_ms, action, target, detail) VALUES (1, ?1, ?2, 'returned: x')",
                params![action, target],
            )
            .unwrap();
        }
        upgrade(&mut conn).unwrap();
        let marks: Vec<bool> = conn
            .prepare("SELECT sensitive FROM audit ORDER BY seq")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(marks, [true, true, false, false, true, false]);
        assert!(
            conn.execute("UPDATE audit SET detail = ''", []).is_err(),
            "append-only again"
        );
    }
}
