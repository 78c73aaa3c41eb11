//! The phone store's SQL schema, one migration per version, and how its file is opened.
//! Add a version by appending its migration to [`SCHEMA`] and bumping [`VERSION`].

use crate::error::{CoreError, Result};
use crate::sqlite_setup::{self, Journal, Migration, Pragmas, Schema, SetupError, Step};
use rusqlite::Connection;
use std::path::Path;
use std::time::Duration;

const V1: &str = "
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
-- One row per record: a compacted snapshot of its document and how far it reaches.
CREATE TABLE records (
    id           BLOB PRIMARY KEY,
    snapshot     BLOB,
    snapshot_seq INTEGER NOT NULL DEFAULT 0
);
-- Every change not yet folded into a snapshot, and every local change until acknowledged.
-- acked: 0 waiting for the server, 1 stored by the server, 2 refused by the server.
CREATE TABLE changes (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    record_id BLOB NOT NULL,
    hash      BLOB NOT NULL UNIQUE,
    bytes     BLOB NOT NULL,
    local     INTEGER NOT NULL,
    acked     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX changes_by_record ON changes(record_id, seq);
CREATE INDEX changes_unacked ON changes(seq) WHERE local = 1 AND acked = 0;
-- What lists and searches read, so that they never load a document.
CREATE TABLE projection (
    id              BLOB PRIMARY KEY,
    record_type     TEXT NOT NULL,
    commune         TEXT,
    status          TEXT NOT NULL,
    title           TEXT NOT NULL,
    search_text     TEXT NOT NULL,
    conflicts       INTEGER NOT NULL,
    last_change_seq INTEGER NOT NULL
);
CREATE INDEX projection_by_commune ON projection(commune, record_type, last_change_seq);
CREATE INDEX projection_by_type ON projection(record_type, last_change_seq);
";

/// Version 2: changes received that could not be applied are set aside instead of stopping the
/// sync, and what the server refused is kept for the collector with the values it carried.
const V2_FROM_V1: &str = "
CREATE TABLE set_aside (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    record_id BLOB NOT NULL,
    bytes     BLOB NOT NULL,
    reason    TEXT NOT NULL
);
CREATE TABLE refusals (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    hash      BLOB NOT NULL UNIQUE,
    record_id BLOB NOT NULL,
    code      TEXT NOT NULL,
    left_out  INTEGER NOT NULL,
    fields    TEXT NOT NULL
);
CREATE INDEX refusals_by_record ON refusals(record_id, seq);
";

/// Version 3: which record each merged duplicate was merged into, so that lists find a kept
/// record by a merged one's name and references resolve without loading documents. No record
/// was merged before this version, so existing rows need no value.
const V3_FROM_V2: &str = "
ALTER TABLE projection ADD COLUMN merged_into BLOB;
CREATE INDEX projection_by_merged_into ON projection(merged_into) WHERE merged_into IS NOT NULL;
";

/// Version 4 (protocol 3): the server's receipt of every change received from it, so that this
/// phone can give the change back to a server restored from a backup that lost it; and the
/// changes waiting to be given back. The signing key itself is in `meta`.
const V4_FROM_V3: &str = "
CREATE TABLE receipts (
    hash      BLOB PRIMARY KEY,
    signature BLOB NOT NULL
) WITHOUT ROWID;
-- After a restore: changes of others this phone holds, until the server has served them
-- again (then it has them) or, once the phone has pulled everything, taken them back.
-- ready: 0 while the phone pulls the restored server's log again, 1 to be sent.
CREATE TABLE relay (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    record_id BLOB NOT NULL,
    hash      BLOB NOT NULL UNIQUE,
    ready     INTEGER NOT NULL DEFAULT 0
);
";

/// Every version's migration. Nothing in the phone's store is derived from more than the change
/// it was written with, so no version asks for a rebuild yet.
pub const SCHEMA: Schema<CoreError> = Schema {
    what: "phone store",
    migrations: &[
        Migration {
            version: 1,
            steps: &[Step::Sql(V1)],
            rebuilds: &[],
        },
        Migration {
            version: 2,
            steps: &[Step::Sql(V2_FROM_V1)],
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
            rebuilds: &[],
        },
    ],
    rebuilds: &[],
    after_upgrade: None,
};

/// The version this build writes.
pub const VERSION: i64 = SCHEMA.version();

/// How the phone opens its file: WAL, and `synchronous=FULL` because an officer's edit
/// acknowledged on screen must survive a power cut too.
pub const PRAGMAS: Pragmas = Pragmas {
    journal: Journal::Wal,
    full_sync: true,
    busy_timeout: Duration::from_secs(5),
};

/// Opens (creating it private if missing) and upgrades the store file at `path`.
pub fn open(path: &Path) -> Result<Connection> {
    sqlite_setup::open(path, PRAGMAS, &SCHEMA)
        .map(|opened| opened.conn)
        .map_err(into_core)
}

/// The one place a setup failure becomes a [`CoreError`].
fn into_core(e: SetupError<CoreError>) -> CoreError {
    match e {
        SetupError::TooNew {
            found, supported, ..
        } => CoreError::StoreTooNew { found, supported },
        SetupError::Sqlite(e) => CoreError::Store(e),
        SetupError::Step { source, .. } | SetupError::Rebuild { source, .. } => source,
        SetupError::Create { source, .. } => CoreError::StoreFile(source),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upgrade(conn: &mut Connection) -> Result<i64> {
        sqlite_setup::upgrade(conn, &SCHEMA).map_err(into_core)
    }

    #[test]
    fn the_declaration_holds_together() {
        assert_eq!(SCHEMA.check(), Ok(()));
    }

    #[test]
    fn a_version_1_file_upgrades_and_keeps_its_rows() -> Result<()> {
        let mut conn = Connection::open_in_memory()?;
        conn.execute_batch(V1)?;
        conn.pragma_update(None, "user_version", 1)?;
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('device_id', 'x')",
            [],
        )?;
        assert_eq!(upgrade(&mut conn)?, 1);
        let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        assert_eq!(v, VERSION);
        let kept: String =
            conn.query_row("SELECT value FROM meta WHERE key = 'device_id'", [], |r| {
                r.get(0)
            })?;
        assert_eq!(kept, "x");
        let n: i64 = conn.query_row("SELECT COUNT(*) FROM refusals", [], |r| r.get(0))?;
        assert_eq!(n, 0);
        Ok(())
    }

    #[test]
    fn upgrade_is_idempotent_and_refuses_newer_files() -> Result<()> {
        let mut conn = Connection::open_in_memory()?;
        upgrade(&mut conn)?;
        assert_eq!(upgrade(&mut conn)?, VERSION);
        conn.pragma_update(None, "user_version", VERSION + 1)?;
        assert!(matches!(
            upgrade(&mut conn),
            Err(CoreError::StoreTooNew { .. })
        ));
        Ok(())
    }
}
