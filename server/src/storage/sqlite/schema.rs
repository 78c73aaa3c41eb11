//! The server database's SQL schema, its version, and the upgrade path.

use rusqlite::Connection;

/// Bump with every schema change and add the step to [`upgrade`].
pub const VERSION: i64 = 1;

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

/// Brings the database to [`VERSION`], creating it if empty.
pub fn upgrade(conn: &mut Connection) -> rusqlite::Result<()> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > VERSION {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "database schema version {found} is newer than this server ({VERSION})"
        )));
    }
    let tx = conn.transaction()?;
    if found < 1 {
        tx.execute_batch(V1)?;
    }
    tx.pragma_update(None, "user_version", VERSION)?;
    tx.commit()
}
