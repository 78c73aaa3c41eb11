//! Restoring the database from a backup copy, offline. The copy is checked first (it must open
//! as a fieldsync database), the current database is kept beside it, and the restored database
//! gets a new identity so that phones whose cursors moved on after the backup notice, pull
//! again from the start and push back every change of theirs the backup lacks.

use crate::storage::sqlite::SqliteStorage;
use crate::storage::{Storage, StorageError};
use std::path::Path;
use uuid::Uuid;

/// What a restore put in place.
pub struct Restored {
    pub records: u64,
    pub changes: u64,
    pub server_id: Uuid,
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
    let _ = std::fs::remove_file(&staging);
    std::fs::copy(backup, &staging).map_err(|e| StorageError::Io(e.to_string()))?;
    // `copy` takes the backup's permissions; the database is the owner's alone.
    #[cfg(unix)]
    std::fs::set_permissions(
        &staging,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .map_err(|e| StorageError::Io(e.to_string()))?;
    let staged = SqliteStorage::open(&staging)?;
    let server_id = staged.rotate_identity()?;
    let stats = staged.stats()?;
    drop(staged);
    if database.exists() {
        let kept = database.with_extension(format!("before-restore-{}", Uuid::now_v7()));
        std::fs::rename(database, &kept).map_err(|e| StorageError::Io(e.to_string()))?;
        for suffix in ["-wal", "-shm"] {
            let side = append(database, suffix);
            if side.exists() {
                let _ = std::fs::rename(&side, append(&kept, suffix));
            }
        }
    }
    std::fs::rename(&staging, database).map_err(|e| StorageError::Io(e.to_string()))?;
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(append(&staging, suffix));
    }
    Ok(Restored {
        records: stats.records,
        changes: stats.changes,
        server_id,
    })
}

fn append(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}
