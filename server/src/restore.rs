//! Restoring the database from a backup copy, offline. The copy is checked first (it must open
//! as a fieldsync database), the current database is kept beside it, and the restored database
//! gets a new identity so that phones whose cursors moved on after the backup notice, pull
//! again from the start and give back every change the backup lacks.
//!
//! What keeps people and phones out does not go back in time with the data: revoked devices
//! stay revoked, tokens a password change ended stay ended, disabled accounts disabled, and
//! changed passwords changed, as far as the database being replaced can still be read.

use crate::storage::sqlite::SqliteStorage;
use crate::storage::{AdminStore, StorageError};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use std::path::Path;
use uuid::Uuid;

/// What a restore put in place.
pub struct Restored {
    pub records: u64,
    pub changes: u64,
    pub server_id: Uuid,
    /// Account state carried over from the replaced database, or why it could not be.
    pub carried: Result<Carried, String>,
}

/// Revocations, ended tokens, disabled accounts and passwords newer than the backup, kept.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Carried {
    pub revoked_devices: u64,
    /// Device tokens and sessions that ended earlier in the replaced database (a password
    /// change ends every other token of its account).
    pub ended_tokens: u64,
    pub disabled_accounts: u64,
    pub passwords: u64,
}

/// Replaces `database` with a copy of `backup`. The server must not be running.
pub fn restore(database: &Path, backup: &Path) -> Result<Restored, StorageError> {
    if !backup.is_file() {
        return Err(StorageError::NotFound(format!(
            "backup {}",
            backup.display()
        )));
    }
    // Checked (and upgraded, if it is from an older fieldsync) on a scratch copy, so a bad file
    // never replaces a good database and the backup itself is left as it was.
    let staging = database.with_extension("restoring");
    remove_with_sidecars(&staging);
    std::fs::copy(backup, &staging).map_err(io)?;
    // `copy` takes the backup's permissions; the database is the owner's alone.
    #[cfg(unix)]
    std::fs::set_permissions(
        &staging,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .map_err(io)?;
    let staged = SqliteStorage::open(&staging)?;
    let stats = staged.stats()?;
    drop(staged);

    // The new identity (and the carried account state) must be in the staged file itself: a
    // write-ahead log beside it would not follow it into place. Leaving WAL mode folds the log
    // into the file and removes it; the server turns WAL on again when it opens the file.
    let mut conn = Connection::open(&staging)?;
    conn.pragma_update(None, "journal_mode", "DELETE")?;
    let tx = conn.transaction()?;
    let carried = match database.exists() {
        true => carry_forward(&tx, database).map_err(|e| e.to_string()),
        false => Ok(Carried::default()),
    };
    let server_id = Uuid::new_v4();
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('server_id', ?1)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [server_id.to_string()],
    )?;
    tx.commit()?;
    drop(conn);
    if read_identity(&staging)? != server_id {
        return Err(StorageError::Corrupt(
            "the restored copy does not hold its new identity".into(),
        ));
    }

    if database.exists() {
        let kept = database.with_extension(format!("before-restore-{}", Uuid::now_v7()));
        std::fs::rename(database, &kept).map_err(io)?;
        for suffix in ["-wal", "-shm"] {
            let side = append(database, suffix);
            if side.exists() {
                let _ = std::fs::rename(&side, append(&kept, suffix));
            }
        }
    }
    std::fs::rename(&staging, database).map_err(io)?;
    Ok(Restored {
        records: stats.records,
        changes: stats.changes,
        server_id,
        carried,
    })
}

/// The identity a database file holds, read the way the server will read it.
pub fn read_identity(path: &Path) -> Result<Uuid, StorageError> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let id: String = conn.query_row("SELECT value FROM meta WHERE key = 'server_id'", [], |r| {
        r.get(0)
    })?;
    Uuid::parse_str(&id).map_err(|_| StorageError::Corrupt("server id is not a UUID".into()))
}

/// Copies into `restored` what the database being replaced knows of keeping people out:
/// revoked devices, ended tokens, disabled accounts, changed passwords. Accounts and devices are matched by
/// id and name; ones the backup does not have are not brought back (they enrol again).
fn carry_forward(restored: &Connection, current: &Path) -> Result<Carried, StorageError> {
    let old = Connection::open_with_flags(current, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut carried = Carried::default();
    let users: Vec<(i64, String, String, bool)> = {
        let mut stmt = old.prepare("SELECT id, username, password_hash, disabled FROM users")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for (id, username, password_hash, disabled) in users {
        let here: Option<(String, String, bool)> = restored
            .query_row(
                "SELECT username, password_hash, disabled FROM users WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((name, hash, was_disabled)) = here else {
            continue;
        };
        if name != username {
            return Err(StorageError::Conflict(format!(
                "account {id} is {name} in the backup but {username} in the database it replaces"
            )));
        }
        if hash != password_hash {
            restored.execute(
                "UPDATE users SET password_hash = ?2 WHERE id = ?1",
                params![id, password_hash],
            )?;
            carried.passwords += 1;
        }
        if disabled && !was_disabled {
            restored.execute("UPDATE users SET disabled = 1 WHERE id = ?1", [id])?;
            carried.disabled_accounts += 1;
        }
    }
    // Devices revoked, and tokens ended (a password change ends them by an expiry).
    let devices: Vec<(Vec<u8>, bool, Option<i64>)> = {
        let mut stmt = old.prepare("SELECT id, revoked, expires_ms FROM devices")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for (device, revoked, expires_ms) in devices {
        if revoked {
            carried.revoked_devices += restored.execute(
                "UPDATE devices SET revoked = 1 WHERE id = ?1 AND revoked = 0",
                [&device],
            )? as u64;
        }
        if let Some(expires_ms) = expires_ms {
            carried.ended_tokens += restored.execute(
                "UPDATE devices SET expires_ms = ?2
                 WHERE id = ?1 AND (expires_ms IS NULL OR expires_ms > ?2)",
                params![&device, expires_ms],
            )? as u64;
        }
    }
    Ok(carried)
}

fn io(e: std::io::Error) -> StorageError {
    StorageError::Io(e.to_string())
}

fn remove_with_sidecars(path: &Path) {
    let _ = std::fs::remove_file(path);
    for suffix in ["-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(append(path, suffix));
    }
}

fn append(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}
