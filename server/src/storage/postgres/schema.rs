//! The PostgreSQL schema, versioned in one place: [`STEPS`] lists every migration in order and
//! `schema_version` records how many a database has had. The first step is the final form of
//! the SQLite schema (version 7 there): BYTEA for ids, hashes and documents, BIGINT for numbers
//! and times, BOOLEAN for flags, the same indexes, and unique keys wherever a write relies on
//! one to deduplicate (`ON CONFLICT DO NOTHING`).

use super::db::Db;
use crate::storage::{StorageError, StorageResult};
use fieldsync_core::signing::DeviceKey;
use uuid::Uuid;

/// The advisory lock that serialises schema upgrades of instances starting together (a key of
/// its own, apart from the sync writes' lock).
const UPGRADE_LOCK: i64 = 0x6669_656c_6473_0001;

/// Every migration, oldest first; append, never edit one that has shipped.
const STEPS: &[&str] = &[V1, V2, ADMINISTRATION];

/// Accounts get a full name and a phone number; the merged view keeps each record's village
/// (SQLite version 8; a record's collector comes from `record_origin`, the next step).
const V2: &str = "
ALTER TABLE users ADD COLUMN full_name TEXT;
ALTER TABLE users ADD COLUMN phone TEXT;
ALTER TABLE merged ADD COLUMN village TEXT;
UPDATE merged SET village = view::jsonb -> 'fields' ->> 'village';
";

/// The step after which open duplicate pairs are scored anew (`duplicates::index_all`).
const SCORES_PAIRS: usize = 3;

const V1: &str = "
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE users (
    id                  BIGSERIAL PRIMARY KEY,
    username            TEXT NOT NULL UNIQUE,
    password_hash       TEXT NOT NULL,
    role                TEXT NOT NULL,
    sensitive_access    BOOLEAN NOT NULL DEFAULT FALSE,
    disabled            BOOLEAN NOT NULL DEFAULT FALSE,
    can_grant_sensitive BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE TABLE user_areas (
    user_id BIGINT NOT NULL REFERENCES users(id),
    area    TEXT NOT NULL,
    PRIMARY KEY (user_id, area)
);
-- Tokens are stored only as SHA-256 hashes: a copy of the database enrols nobody.
CREATE TABLE devices (
    id         BYTEA PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users(id),
    name       TEXT NOT NULL,
    token_hash BYTEA NOT NULL UNIQUE,
    revoked    BOOLEAN NOT NULL DEFAULT FALSE,
    legacy     BOOLEAN NOT NULL DEFAULT FALSE,
    kind       TEXT NOT NULL DEFAULT 'phone',
    csrf       TEXT,
    expires_ms BIGINT
);
CREATE INDEX devices_by_user ON devices(user_id);
CREATE TABLE records (
    id          BYTEA PRIMARY KEY,
    record_type TEXT,
    commune     TEXT,
    snapshot    BYTEA NOT NULL,
    sensitive   BOOLEAN NOT NULL DEFAULT FALSE
);
-- Every change ever accepted; never deleted.
CREATE TABLE changes (
    seq              BIGSERIAL PRIMARY KEY,
    hash             BYTEA NOT NULL UNIQUE,
    record_id        BYTEA NOT NULL,
    bytes            BYTEA NOT NULL,
    origin_device    BYTEA NOT NULL,
    received_ms      BIGINT NOT NULL DEFAULT 0,
    receipt          BYTEA,
    author_signature BYTEA
);
CREATE INDEX changes_by_record ON changes(record_id, seq);
CREATE INDEX changes_by_device ON changes(origin_device);
-- What devices pull: change references per stream. Sequence numbers are taken under the sync
-- writes' advisory lock, so they follow commit order.
CREATE TABLE log (
    seq           BIGSERIAL PRIMARY KEY,
    stream        TEXT NOT NULL,
    record_id     BYTEA NOT NULL,
    hash          BYTEA NOT NULL,
    origin_device BYTEA NOT NULL
);
CREATE INDEX log_by_stream ON log(stream, seq);
CREATE TABLE held (
    hash          BYTEA PRIMARY KEY,
    record_id     BYTEA NOT NULL,
    bytes         BYTEA NOT NULL,
    origin_device BYTEA NOT NULL,
    missing       BYTEA NOT NULL,
    received_ms   BIGINT NOT NULL DEFAULT 0,
    signature     BYTEA,
    vouched       BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX held_by_record ON held(record_id);
CREATE INDEX held_by_device ON held(origin_device);
CREATE INDEX held_by_age ON held(received_ms);
CREATE TABLE expired (
    hash          BYTEA PRIMARY KEY,
    record_id     BYTEA NOT NULL,
    origin_device BYTEA NOT NULL
);
CREATE TABLE merged (
    id          BYTEA PRIMARY KEY,
    record_type TEXT NOT NULL,
    commune     TEXT,
    status      TEXT NOT NULL,
    title       TEXT NOT NULL,
    search_text TEXT NOT NULL,
    view        TEXT NOT NULL,
    problems    TEXT NOT NULL,
    conflicts   TEXT NOT NULL,
    n_problems  BIGINT NOT NULL,
    n_conflicts BIGINT NOT NULL,
    sensitive   BOOLEAN NOT NULL DEFAULT FALSE,
    review      TEXT NOT NULL DEFAULT 'pending',
    updated_ms  BIGINT NOT NULL DEFAULT 0,
    merged_into BYTEA,
    merge_edits TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX merged_by_commune ON merged(commune, record_type);
CREATE INDEX merged_by_review ON merged(review);
CREATE INDEX merged_by_updated ON merged(updated_ms);
CREATE INDEX merged_by_merged_into ON merged(merged_into) WHERE merged_into IS NOT NULL;
CREATE TABLE actors (
    actor      BYTEA PRIMARY KEY,
    device_id  BYTEA NOT NULL,
    public_key BYTEA
);
CREATE INDEX actors_by_device ON actors(device_id);
CREATE TABLE refused (
    hash      BYTEA PRIMARY KEY,
    record_id BYTEA NOT NULL,
    code      BIGINT NOT NULL
);
CREATE TABLE record_streams (
    record_id BYTEA NOT NULL,
    stream    TEXT NOT NULL,
    upto      BIGINT NOT NULL,
    PRIMARY KEY (record_id, stream)
);
-- Who did what, when, from where: appended to, never changed (the trigger refuses it).
CREATE TABLE audit (
    seq       BIGSERIAL PRIMARY KEY,
    at_ms     BIGINT NOT NULL,
    user_id   BIGINT,
    username  TEXT,
    device_id BYTEA,
    action    TEXT NOT NULL,
    target    TEXT,
    detail    TEXT,
    peer      TEXT,
    sensitive BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX audit_by_action ON audit(action, device_id);
CREATE FUNCTION audit_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END
$$;
CREATE TRIGGER audit_is_append_only BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_is_append_only();
CREATE TABLE dup_keys (
    key       TEXT NOT NULL,
    record_id BYTEA NOT NULL,
    PRIMARY KEY (key, record_id)
);
CREATE INDEX dup_keys_by_record ON dup_keys(record_id);
-- a < b; reasons is a JSON array; state is open, dismissed or merged.
CREATE TABLE dup_pairs (
    a           BYTEA NOT NULL,
    b           BYTEA NOT NULL,
    record_type TEXT NOT NULL,
    reasons     TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'open',
    decided_by  TEXT,
    decided_ms  BIGINT,
    found_ms    BIGINT NOT NULL,
    PRIMARY KEY (a, b)
);
CREATE INDEX dup_pairs_by_b ON dup_pairs(b);
CREATE INDEX dup_pairs_by_state ON dup_pairs(state, found_ms);
CREATE TABLE indicator_facts (
    id          BYTEA PRIMARY KEY,
    record_type TEXT NOT NULL,
    commune     TEXT,
    status      TEXT NOT NULL,
    merged_into BYTEA,
    review      TEXT NOT NULL,
    sensitive   BOOLEAN NOT NULL,
    kind        TEXT,
    date        TEXT,
    detail      TEXT NOT NULL,
    people      BYTEA NOT NULL
);
";

/// When each device enrolled, last synced and how many changes it sent (counted as they arrive;
/// filled here from the stored changes); the device and time each record's first change
/// arrived from (who registered it, and when); a score for each candidate pair of duplicates.
const ADMINISTRATION: &str = "
ALTER TABLE devices ADD COLUMN enrolled_ms BIGINT;
ALTER TABLE devices ADD COLUMN last_sync_ms BIGINT;
ALTER TABLE devices ADD COLUMN changes_sent BIGINT NOT NULL DEFAULT 0;
UPDATE devices d SET changes_sent = c.n, last_sync_ms = NULLIF(c.last, 0)
  FROM (SELECT origin_device, COUNT(*) AS n, MAX(received_ms) AS last FROM changes
        GROUP BY origin_device) AS c
  WHERE c.origin_device = d.id;
CREATE TABLE record_origin (
    record_id BYTEA PRIMARY KEY,
    device_id BYTEA NOT NULL,
    at_ms     BIGINT NOT NULL
);
INSERT INTO record_origin (record_id, device_id, at_ms)
  SELECT record_id, origin_device, received_ms FROM changes
  WHERE seq IN (SELECT MIN(seq) FROM changes GROUP BY record_id)
  ON CONFLICT DO NOTHING;
CREATE INDEX record_origin_by_time ON record_origin(at_ms);
ALTER TABLE dup_pairs ADD COLUMN score BIGINT NOT NULL DEFAULT 0;
CREATE INDEX dup_pairs_by_score ON dup_pairs(state, score);
";

/// Brings the database to the newest step, creating everything in an empty one, and gives a
/// new database its identity and signing key. A current database is only read.
pub fn upgrade(db: &Db<'_>) -> StorageResult<()> {
    db.transaction("BEGIN", |db| {
        db.exec("SELECT pg_advisory_xact_lock($1)", &[&UPGRADE_LOCK])?;
        db.batch("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")?;
        let found: i64 = db
            .one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])?
            .try_get(0)?;
        let newest = STEPS.len() as i64;
        if found > newest {
            return Err(StorageError::Invalid(format!(
                "database schema version {found} is newer than this server ({newest})"
            )));
        }
        for (step, sql) in STEPS.iter().enumerate().skip(found as usize) {
            db.batch(sql)?;
            db.exec(
                "INSERT INTO schema_version (version) VALUES ($1)",
                &[&(step as i64 + 1)],
            )?;
        }
        if found > 0 && (found as usize) < SCORES_PAIRS {
            db.batch("DELETE FROM dup_keys; DELETE FROM dup_pairs WHERE state = 'open';")?;
            super::duplicates::index_all(db, crate::storage::now_ms())?;
        }
        db.exec(
            "INSERT INTO meta (key, value) VALUES ('server_id', $1) ON CONFLICT (key) DO NOTHING",
            &[&Uuid::new_v4().to_string()],
        )?;
        let key = DeviceKey::generate();
        db.exec(
            "INSERT INTO meta (key, value) VALUES ('signing_key', $1) ON CONFLICT (key) DO NOTHING",
            &[&hex(&key.seed())],
        )?;
        Ok(())
    })
}

/// Gives the database a new identity, so that phones notice it was restored from a copy and
/// offer back what the copy lacks (the SQLite backend does this to every backup copy).
pub fn new_identity(db: &Db<'_>) -> StorageResult<Uuid> {
    let id = Uuid::new_v4();
    db.exec(
        "INSERT INTO meta (key, value) VALUES ('server_id', $1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[&id.to_string()],
    )?;
    Ok(id)
}

/// The database's identity as `meta` keeps it.
pub fn server_id(db: &Db<'_>) -> StorageResult<Uuid> {
    let value: String = db
        .one("SELECT value FROM meta WHERE key = 'server_id'", &[])?
        .try_get(0)?;
    Uuid::parse_str(&value).map_err(|_| StorageError::Corrupt("server id is not a UUID".into()))
}

/// The server's signing key, kept in `meta` so that every dump carries it.
pub fn signing_key(db: &Db<'_>) -> StorageResult<DeviceKey> {
    let hex: String = db
        .one("SELECT value FROM meta WHERE key = 'signing_key'", &[])?
        .try_get(0)?;
    let seed: Vec<u8> = (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    let seed: [u8; 32] = seed
        .try_into()
        .map_err(|_| StorageError::Corrupt("the server's signing key is not 32 bytes".into()))?;
    Ok(DeviceKey::from_seed(&seed))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
