//! The embedded storage backend: one SQLite file (WAL, synchronous=FULL) under the data
//! directory. Writes are serialised on one connection; every sync request is one transaction,
//! committed before its response is sent, so an acknowledgement always means "on disk".

mod accounts;
mod ingest;
mod merged;
mod pull;
mod schema;

use super::{
    AccountUpdate, Caller, Device, MergedRecord, NewUser, RecordEdit, Stats, Storage, StorageError,
    StorageResult, User,
};
use crate::scope::{Cursor, Scope};
use fieldsync_core::protocol::{RejectCode, SyncRequest, SyncResponse};
use fieldsync_core::record::decode_change;
use fieldsync_core::RecordType;
use ingest::{Authors, Ingest};
use rusqlite::Connection;
use rusqlite::OptionalExtension;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};
use uuid::Uuid;

/// How long a change waits for missing dependencies before it is refused
/// (`MissingDependency`); the server's clock is used only for this housekeeping.
pub const HELD_TTL_MS: i64 = 7 * 24 * 3600 * 1000;

/// SQLite-backed [`Storage`].
pub struct SqliteStorage {
    conn: Mutex<Connection>,
    /// The database's identity, sent to phones and kept in their cursors.
    server_id: [u8; 16],
    /// When expired held changes were last cleared (unix ms).
    last_expiry: AtomicI64,
}

/// Creates the file readable by its owner only (with the write-ahead log and shared-memory
/// files SQLite makes beside it, which take its permissions): it holds victims' data.
pub fn create_private(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map(drop)
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl SqliteStorage {
    pub fn open(path: impl AsRef<Path>) -> StorageResult<SqliteStorage> {
        let path = path.as_ref();
        if !path.exists() {
            create_private(path).map_err(|e| StorageError::Io(e.to_string()))?;
        }
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        schema::upgrade(&mut conn)?;
        let server_id: String =
            conn.query_row("SELECT value FROM meta WHERE key = 'server_id'", [], |r| {
                r.get(0)
            })?;
        let server_id = Uuid::parse_str(&server_id)
            .map_err(|_| StorageError::Corrupt("server id is not a UUID".into()))?;
        Ok(SqliteStorage {
            conn: Mutex::new(conn),
            server_id: *server_id.as_bytes(),
            last_expiry: AtomicI64::new(0),
        })
    }

    /// The database's identity (changes when a backup copy is made from it).
    pub fn server_id(&self) -> Uuid {
        Uuid::from_bytes(self.server_id)
    }

    /// Gives the database a new identity (after a restore) and returns it; takes effect for
    /// storages opened afterwards.
    pub fn rotate_identity(&self) -> StorageResult<Uuid> {
        let conn = self.conn()?;
        schema::new_identity(&conn)?;
        let id: String =
            conn.query_row("SELECT value FROM meta WHERE key = 'server_id'", [], |r| {
                r.get(0)
            })?;
        Uuid::parse_str(&id).map_err(|_| StorageError::Corrupt("server id is not a UUID".into()))
    }

    /// Refuses held changes that waited longer than [`HELD_TTL_MS`] for their dependencies,
    /// at most once a minute. Their senders get `MissingDependency` at their next push.
    fn expire_held(&self, tx: &rusqlite::Transaction<'_>, now: i64) -> StorageResult<()> {
        let last = self.last_expiry.load(Ordering::Relaxed);
        if now - last < 60_000 {
            return Ok(());
        }
        self.last_expiry.store(now, Ordering::Relaxed);
        let cutoff = now - HELD_TTL_MS;
        tx.execute(
            "INSERT OR IGNORE INTO refused (hash, record_id, code)
             SELECT hash, record_id, ?2 FROM held WHERE received_ms < ?1",
            rusqlite::params![cutoff, RejectCode::MissingDependency as u8],
        )?;
        tx.execute("DELETE FROM held WHERE received_ms < ?1", [cutoff])?;
        Ok(())
    }

    fn conn(&self) -> StorageResult<MutexGuard<'_, Connection>> {
        // A panic while holding the lock cannot leave a half-applied transaction (SQLite rolls
        // it back), so the connection is still good to use.
        Ok(self.conn.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Storage for SqliteStorage {
    fn create_user(&self, user: &NewUser, password_hash: &str) -> StorageResult<User> {
        accounts::create_user(&mut *self.conn()?, user, password_hash)
    }

    fn user_by_name(&self, username: &str) -> StorageResult<Option<(User, String)>> {
        accounts::user_by_name(&*self.conn()?, username)
    }

    fn list_users(&self) -> StorageResult<Vec<User>> {
        accounts::list_users(&*self.conn()?)
    }

    fn update_user(&self, username: &str, update: &AccountUpdate) -> StorageResult<User> {
        accounts::update_user(&mut *self.conn()?, username, update)
    }

    fn set_password(&self, username: &str, password_hash: &str) -> StorageResult<()> {
        accounts::set_password(&*self.conn()?, username, password_hash)
    }

    fn login_locked_until(&self, username: &str) -> StorageResult<i64> {
        accounts::locked_until(&*self.conn()?, username)
    }

    fn login_failed(&self, username: &str, now_ms: i64) -> StorageResult<i64> {
        accounts::record_failure(&*self.conn()?, username, now_ms)
    }

    fn login_succeeded(&self, username: &str) -> StorageResult<()> {
        accounts::clear_failures(&*self.conn()?, username)
    }

    fn enrol_device(
        &self,
        user_id: i64,
        name: &str,
        token_hash: &[u8],
        actor: Option<Uuid>,
    ) -> StorageResult<Device> {
        accounts::enrol_device(&mut *self.conn()?, user_id, name, token_hash, actor)
    }

    fn caller_by_token(&self, token_hash: &[u8]) -> StorageResult<Option<Caller>> {
        accounts::caller_by_token(&*self.conn()?, token_hash)
    }

    fn revoke_device(&self, device_id: Uuid) -> StorageResult<()> {
        accounts::revoke_device(&*self.conn()?, device_id)
    }

    fn list_devices(&self) -> StorageResult<Vec<Device>> {
        accounts::list_devices(&*self.conn()?)
    }

    fn sync(&self, caller: &Caller, request: &SyncRequest) -> StorageResult<SyncResponse> {
        // Decode everything first: a batch with garbage in it is refused whole, unchanged.
        let mut push = Vec::with_capacity(request.push.len());
        for entry in &request.push {
            let change = decode_change(&entry.bytes).map_err(|e| match e {
                e @ fieldsync_core::CoreError::ChangeTooLarge { .. } => StorageError::Core(e),
                e => StorageError::Invalid(format!("record {}: {e}", entry.record_id)),
            })?;
            push.push((entry.record_id, change, entry.bytes.as_slice()));
        }
        let cursor =
            Cursor::decode(&request.cursor, &self.server_id).map_err(StorageError::Invalid)?;
        let scope = caller.scope();
        let now = now_ms();
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        self.expire_held(&tx, now)?;
        let mut ingest = Ingest::new(&tx, caller.device.id, &scope, Authors::Device, now);
        for (record_id, change, bytes) in push {
            ingest.push(record_id, change, bytes)?;
        }
        let outcome = ingest.finish()?;
        let page = pull::page(
            &tx,
            &scope,
            cursor,
            caller.device.id,
            request.max_pull_bytes,
        )?;
        tx.commit()?;
        Ok(SyncResponse {
            acked: outcome.acked,
            rejected: outcome.rejected,
            need: outcome.need,
            pull: page.changes,
            cursor: page.cursor.encode(&self.server_id),
            more: page.more,
            server_id: self.server_id,
        })
    }

    fn ingest_trusted(&self, device: Uuid, changes: &[(Uuid, Vec<u8>)]) -> StorageResult<()> {
        let scope = Scope::everything();
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        let mut ingest = Ingest::new(&tx, device, &scope, Authors::Server, now_ms());
        for (record_id, bytes) in changes {
            ingest.push(*record_id, decode_change(bytes)?, bytes)?;
        }
        let outcome = ingest.finish()?;
        if let Some(r) = outcome.rejected.first() {
            return Err(StorageError::Invalid(format!(
                "record {} refused",
                r.record_id
            )));
        }
        tx.commit()?;
        Ok(())
    }

    fn edit_record(
        &self,
        device: Uuid,
        scope: &Scope,
        record_id: Uuid,
        edit: &RecordEdit,
    ) -> StorageResult<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        let snapshot: Vec<u8> = tx
            .query_row(
                "SELECT snapshot FROM records WHERE id = ?1",
                [record_id.as_bytes()],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| StorageError::NotFound(format!("record {record_id}")))?;
        let mut doc = fieldsync_core::RecordDoc::load(record_id, &snapshot, device)?;
        let change = match edit {
            RecordEdit::Review { state, comment } => doc.set_review(*state, comment.as_deref())?,
            RecordEdit::SetField { field, value } => doc.set_field(field, value)?,
        };
        if let Some(change) = change {
            let mut ingest = Ingest::new(&tx, device, scope, Authors::Server, now_ms());
            ingest.push(record_id, decode_change(&change.bytes)?, &change.bytes)?;
            let outcome = ingest.finish()?;
            if !outcome.rejected.is_empty() {
                return Err(StorageError::Invalid(
                    "the edit would take the record outside your areas".into(),
                ));
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn merged_record(&self, id: Uuid) -> StorageResult<Option<MergedRecord>> {
        merged::get(&*self.conn()?, id)
    }

    fn list_merged(
        &self,
        scope: &Scope,
        record_type: Option<RecordType>,
        search: Option<&str>,
        limit: u32,
    ) -> StorageResult<Vec<MergedRecord>> {
        merged::list(&*self.conn()?, scope, record_type, search, limit)
    }

    fn backup(&self, path: &Path) -> StorageResult<()> {
        let conn = self.conn()?;
        create_private(path).map_err(|e| StorageError::Io(e.to_string()))?;
        let mut dest = Connection::open(path)?;
        {
            let backup = rusqlite::backup::Backup::new(&conn, &mut dest)?;
            // Within the server process the connection lock keeps writes out, so the copy is
            // taken in one pass; from another process (`admin backup`) SQLite restarts the copy
            // when the server writes meanwhile, and the result is consistent either way.
            backup.run_to_completion(1024, std::time::Duration::ZERO, None)?;
        }
        // The copy is another database: a server restored from it must not be mistaken for
        // this one by phones whose cursors have moved on (see docs/sync-protocol.md).
        schema::new_identity(&dest)?;
        Ok(())
    }

    fn stats(&self) -> StorageResult<Stats> {
        let conn = self.conn()?;
        let count = |table: &str| -> StorageResult<u64> {
            Ok(conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?)
        };
        Ok(Stats {
            records: count("records")?,
            changes: count("changes")?,
            held: count("held")?,
            log_entries: count("log")?,
        })
    }
}

pub(crate) fn uuid_col(bytes: Vec<u8>) -> StorageResult<Uuid> {
    Uuid::from_slice(&bytes).map_err(|_| StorageError::Corrupt("stored id is not a UUID".into()))
}
