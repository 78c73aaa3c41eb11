//! Restoring the database from a backup copy, offline. The copy is checked first (it must open
//! as a fieldsync database), the current database is kept beside it, and the restored database
//! gets a new identity so that phones whose cursors moved on after the backup notice, pull
//! again from the start and give back every change the backup lacks.
//!
//! What keeps people and phones out does not go back in time with the data: revoked devices
//! stay revoked, tokens a password change ended stay ended, disabled accounts disabled, and
//! changed passwords changed, as far as the database being replaced can still be read.

pub use crate::keep_out::Carried;
use crate::keep_out::{self, KeepOut, KeptDevice, KeptUser};
use crate::storage::sqlite::SqliteStorage;
use crate::storage::{AdminStore, StorageError};
use rusqlite::{params, Connection, OpenFlags};
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

/// Copies into `restored` what the database being replaced knows of keeping people out
/// (the rule: [`keep_out::tighten`]).
fn carry_forward(restored: &Connection, current: &Path) -> Result<Carried, StorageError> {
    let old = Connection::open_with_flags(current, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let plan = keep_out::tighten(&read_keep_out(&old)?, &read_keep_out(restored)?)?;
    for (id, hash) in &plan.passwords {
        restored.execute(
            "UPDATE users SET password_hash = ?2 WHERE id = ?1",
            params![id, hash],
        )?;
    }
    for id in &plan.disable {
        restored.execute("UPDATE users SET disabled = 1 WHERE id = ?1", [id])?;
    }
    for device in &plan.revoke {
        restored.execute("UPDATE devices SET revoked = 1 WHERE id = ?1", [device])?;
    }
    for (device, ends) in &plan.expire {
        restored.execute(
            "UPDATE devices SET expires_ms = ?2 WHERE id = ?1",
            params![device, ends],
        )?;
    }
    Ok(plan.carried())
}

fn read_keep_out(conn: &Connection) -> Result<KeepOut, StorageError> {
    let mut users = conn.prepare("SELECT id, username, password_hash, disabled FROM users")?;
    let users = users
        .query_map([], |r| {
            Ok(KeptUser {
                id: r.get(0)?,
                username: r.get(1)?,
                password_hash: r.get(2)?,
                disabled: r.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut devices = conn.prepare("SELECT id, revoked, expires_ms FROM devices")?;
    let devices = devices
        .query_map([], |r| {
            Ok(KeptDevice {
                id: r.get(0)?,
                revoked: r.get(1)?,
                expires_ms: r.get(2)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(KeepOut { users, devices })
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
