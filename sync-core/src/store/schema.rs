//! The local store's SQL schema, its version, and the upgrade path from every older version.

use crate::error::{CoreError, Result};
use rusqlite::Connection;

/// Bump with every schema change and add the step to [`upgrade`].
pub const VERSION: i64 = 1;

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

/// Brings a connection's database to [`VERSION`], creating it if empty.
pub fn upgrade(conn: &mut Connection) -> Result<()> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > VERSION {
        return Err(CoreError::StoreTooNew {
            found,
            supported: VERSION,
        });
    }
    let tx = conn.transaction()?;
    if found < 1 {
        tx.execute_batch(V1)?;
    }
    // Later versions: `if found < 2 { tx.execute_batch(V2_FROM_V1)?; }` and so on.
    tx.pragma_update(None, "user_version", VERSION)?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrade_is_idempotent_and_refuses_newer_files() -> Result<()> {
        let mut conn = Connection::open_in_memory()?;
        upgrade(&mut conn)?;
        upgrade(&mut conn)?;
        let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        assert_eq!(v, VERSION);
        conn.pragma_update(None, "user_version", VERSION + 1)?;
        assert!(matches!(
            upgrade(&mut conn),
            Err(CoreError::StoreTooNew { .. })
        ));
        Ok(())
    }
}
