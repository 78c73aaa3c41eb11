//! The embedded storage backend: one SQLite file (WAL, synchronous=FULL) under the data
//! directory. Writes are serialised on one connection; the pushed part of a sync request is
//! one transaction, committed before its response is sent, so an acknowledgement always means
//! "on disk". Reads (token checks, pulls, supervisors' views) use their own connections and
//! never wait for the writer, and one request holds the writer for a bounded time only.

mod accounts;
mod activity;
mod audit;
mod duplicates;
mod export;
mod facts;
mod history;
mod merged;
mod schema;
mod sync_store;

pub(crate) use sync_store::SqliteSyncTx;

use super::{
    Absorbed, AccountStore, AccountUpdate, AdminStore, AuditEntry, AuditStore, Author, Caller,
    Device, DuplicatePage, DuplicatePair, DuplicateQuery, DuplicateStore, HistoryEntry,
    MergedRecord, MergedStore, NewUser, RecordPage, RecordQuery, SensitiveDevice, Stats,
    StorageError, StorageResult, User,
};
use super::{ExportRow, ExportStore};
use crate::scope::Scope;
use fieldsync_core::record::Review;
use fieldsync_core::RecordType;
use rusqlite::Connection;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use uuid::Uuid;

/// Read connections kept open beside the writer.
const READERS: usize = 4;

/// SQLite-backed [`Storage`].
pub struct SqliteStorage {
    path: PathBuf,
    writer: Mutex<Connection>,
    /// Idle read-only connections, opened on demand up to [`READERS`].
    readers: Mutex<Vec<Connection>>,
    /// The database's identity, sent to phones and kept in their cursors.
    server_id: [u8; 16],
    /// When expired held changes were last cleared (unix ms).
    last_expiry: AtomicI64,
    /// The last write failed for lack of space (cleared by the next write that succeeds).
    disk_full: AtomicBool,
}

pub(crate) use super::now_ms;

impl SqliteStorage {
    pub fn open(path: impl AsRef<Path>) -> StorageResult<SqliteStorage> {
        let path = path.as_ref();
        let conn = schema::open(path)?;
        let server_id = stored_server_id(&conn)?;
        Ok(SqliteStorage {
            path: path.to_owned(),
            writer: Mutex::new(conn),
            readers: Mutex::new(Vec::new()),
            server_id: *server_id.as_bytes(),
            last_expiry: AtomicI64::new(0),
            disk_full: AtomicBool::new(false),
        })
    }

    /// Runs `f` on a read-only connection: it never waits for the writer (WAL readers see the
    /// last committed state).
    fn read_conn<T>(&self, f: impl FnOnce(&Connection) -> StorageResult<T>) -> StorageResult<T> {
        let idle = self.readers.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => {
                let conn = Connection::open_with_flags(
                    &self.path,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                        | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                conn.busy_timeout(Duration::from_secs(10))?;
                conn
            }
        };
        let result = f(&conn);
        let mut readers = self.readers.lock().unwrap_or_else(|e| e.into_inner());
        if readers.len() < READERS {
            readers.push(conn);
        }
        result
    }

    /// Runs `f` on the writer and notes whether the disk was full.
    fn write_conn<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> StorageResult<T>,
    ) -> StorageResult<T> {
        let mut conn = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let result = f(&mut conn);
        match &result {
            Err(StorageError::DiskFull) => self.disk_full.store(true, Ordering::Relaxed),
            Ok(_) => self.disk_full.store(false, Ordering::Relaxed),
            Err(_) => {}
        }
        result
    }

    /// The database's identity (changes when a backup copy is made from it).
    pub fn server_id(&self) -> Uuid {
        Uuid::from_bytes(self.server_id)
    }

    fn conn(&self) -> StorageResult<MutexGuard<'_, Connection>> {
        // A panic while holding the lock cannot leave a half-applied transaction (SQLite rolls
        // it back), so the connection is still good to use.
        Ok(self.writer.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl SqliteStorage {
    /// Rebuilds duplicate detection from the records as they stand: every key again, open
    /// pairs found anew; dismissed and merged pairs keep their decision. Returns the open
    /// pairs. For a new version's detection rules, and to measure detection.
    pub fn rebuild_duplicates(&self) -> StorageResult<u64> {
        self.write_conn(|conn| {
            let tx = conn.transaction()?;
            schema::rebuild_duplicates(&tx)?;
            let open: u64 = tx.query_row(
                "SELECT COUNT(*) FROM dup_pairs WHERE state = 'open'",
                [],
                |r| r.get(0),
            )?;
            tx.commit()?;
            Ok(open)
        })
    }
}

impl AccountStore for SqliteStorage {
    fn create_user(&self, user: &NewUser, password_hash: &str) -> StorageResult<User> {
        self.write_conn(|c| accounts::create_user(c, user, password_hash))
    }

    fn user_by_name(&self, username: &str) -> StorageResult<Option<(User, String)>> {
        self.read_conn(|c| accounts::user_by_name(c, username))
    }

    fn list_users(&self) -> StorageResult<Vec<User>> {
        self.read_conn(accounts::list_users)
    }

    fn update_user(&self, username: &str, update: &AccountUpdate) -> StorageResult<User> {
        self.write_conn(|c| accounts::update_user(c, username, update))
    }

    fn set_password(
        &self,
        username: &str,
        password_hash: &str,
        keep: Option<Uuid>,
    ) -> StorageResult<()> {
        self.write_conn(|c| accounts::set_password(c, username, password_hash, keep, now_ms()))
    }

    fn account_has_actor(&self, username: &str, actor: Uuid) -> StorageResult<bool> {
        self.read_conn(|c| accounts::account_has_actor(c, username, actor))
    }

    fn enrol_device(
        &self,
        user_id: i64,
        name: &str,
        token_hash: &[u8],
        keys: Option<&super::DeviceKeys>,
    ) -> StorageResult<Device> {
        self.write_conn(|c| accounts::enrol_device(c, user_id, name, token_hash, keys))
    }

    fn caller_by_token(&self, token_hash: &[u8]) -> StorageResult<Option<Caller>> {
        self.read_conn(|c| accounts::caller_by_token(c, token_hash, now_ms()))
    }

    fn revoke_device(&self, device_id: Uuid) -> StorageResult<()> {
        self.write_conn(|c| accounts::revoke_device(c, device_id))
    }

    fn list_devices(&self) -> StorageResult<Vec<Device>> {
        self.read_conn(accounts::list_devices)
    }

    fn device_list(&self, query: &super::DeviceQuery) -> StorageResult<Vec<super::DeviceInfo>> {
        self.read_conn(|c| accounts::device_list(c, query))
    }

    fn note_sync(&self, device: Uuid, now_ms: i64) -> StorageResult<()> {
        self.write_conn(|c| accounts::note_sync(c, device, now_ms))
    }

    fn create_session(
        &self,
        user_id: i64,
        token_hash: &[u8],
        csrf: &str,
        expires_ms: i64,
    ) -> StorageResult<Device> {
        self.write_conn(|c| accounts::create_session(c, user_id, token_hash, csrf, expires_ms))
    }
}

impl MergedStore for SqliteStorage {
    fn merged_record(&self, id: Uuid) -> StorageResult<Option<MergedRecord>> {
        self.read_conn(|c| merged::get(c, id))
    }

    fn resolve_records(&self, ids: &[Uuid]) -> StorageResult<BTreeMap<Uuid, Uuid>> {
        self.read_conn(|c| duplicates::resolve_all(c, ids))
    }

    fn list_records(&self, scope: &Scope, query: &RecordQuery) -> StorageResult<RecordPage> {
        self.read_conn(|c| merged::list(c, scope, query))
    }

    fn indicator_facts(&self) -> StorageResult<Vec<crate::indicators::Fact>> {
        self.read_conn(facts::load)
    }

    fn record_summaries(&self, ids: &[Uuid]) -> StorageResult<Vec<super::RecordSummary>> {
        self.read_conn(|c| merged::summaries(c, ids))
    }

    fn record_review(&self, id: Uuid) -> StorageResult<Option<Review>> {
        self.read_conn(|c| match sync_store::read_doc(c, id)? {
            Some(mut doc) => Ok(Some(doc.review()?)),
            None => Ok(None),
        })
    }

    fn record_history(&self, id: Uuid) -> StorageResult<Vec<HistoryEntry>> {
        self.read_conn(|c| history::history(c, id))
    }

    fn authors(&self, actors: &[String]) -> StorageResult<BTreeMap<String, Author>> {
        self.read_conn(|c| history::authors(c, actors))
    }
}

impl ExportStore for SqliteStorage {
    fn export_page(
        &self,
        scope: &Scope,
        query: &RecordQuery,
        record_type: RecordType,
        after: Option<Uuid>,
        limit: u32,
    ) -> StorageResult<Vec<ExportRow>> {
        self.read_conn(|c| export::page(c, scope, query, record_type, after, limit))
    }

    fn export_sensitive_count(&self, scope: &Scope, query: &RecordQuery) -> StorageResult<u64> {
        self.read_conn(|c| export::sensitive_count(c, scope, query))
    }
}

impl DuplicateStore for SqliteStorage {
    fn list_duplicates(
        &self,
        scope: &Scope,
        query: &DuplicateQuery,
    ) -> StorageResult<DuplicatePage> {
        self.read_conn(|c| duplicates::list(c, scope, query))
    }

    fn duplicate_pair(&self, a: Uuid, b: Uuid) -> StorageResult<Option<DuplicatePair>> {
        self.read_conn(|c| duplicates::pair(c, a, b))
    }

    fn dismiss_duplicate(&self, scope: &Scope, a: Uuid, b: Uuid, by: &str) -> StorageResult<()> {
        self.write_conn(|c| duplicates::dismiss(c, scope, a, b, by, now_ms()))
    }

    fn merge_records(
        &self,
        device: Uuid,
        scope: &Scope,
        keep: Uuid,
        duplicate: Uuid,
        take: &[String],
        by: &str,
    ) -> StorageResult<()> {
        self.write_conn(|c| {
            duplicates::merge(c, device, scope, keep, duplicate, take, by, now_ms())
        })
    }

    fn unmerge_record(&self, device: Uuid, scope: &Scope, duplicate: Uuid) -> StorageResult<Uuid> {
        self.write_conn(|c| duplicates::unmerge(c, device, scope, duplicate, now_ms()))
    }

    fn absorbed_into(&self, keep: Uuid, scope: &Scope) -> StorageResult<Vec<Absorbed>> {
        self.read_conn(|c| duplicates::absorbed(c, keep, scope))
    }
}

impl AuditStore for SqliteStorage {
    fn audit(&self, entry: &AuditEntry) -> StorageResult<()> {
        self.write_conn(|c| audit::append(c, entry))
    }

    fn list_audit(
        &self,
        filter: &super::AuditFilter,
        limit: u32,
    ) -> StorageResult<Vec<AuditEntry>> {
        self.read_conn(|c| audit::list(c, filter, limit))
    }

    fn audit_end(&self) -> StorageResult<i64> {
        self.read_conn(audit::end)
    }

    fn sensitive_devices(&self) -> StorageResult<Vec<SensitiveDevice>> {
        self.read_conn(audit::sensitive_devices)
    }
}

impl AdminStore for SqliteStorage {
    fn stats(&self) -> StorageResult<Stats> {
        self.read_conn(|conn| {
            let count = |table: &str| -> StorageResult<u64> {
                Ok(conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?)
            };
            Ok(Stats {
                records: count("records")?,
                changes: count("changes")?,
                held: count("held")?,
                log_entries: count("log")?,
            })
        })
    }

    fn scoped_stats(&self, scope: &Scope) -> StorageResult<Stats> {
        self.read_conn(|c| merged::stats(c, scope))
    }

    fn activity(&self, since_ms: i64, week_ms: i64) -> StorageResult<super::Activity> {
        self.read_conn(|c| activity::activity(c, since_ms, week_ms))
    }

    fn disk_full(&self) -> bool {
        self.disk_full.load(Ordering::Relaxed)
    }

    fn backup(&self, path: &Path) -> StorageResult<()> {
        let conn = self.conn()?;
        fieldsync_core::sqlite_setup::create_private(path)
            .map_err(|e| StorageError::Io(e.to_string()))?;
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
}

/// The database's identity as `meta` keeps it.
pub(crate) fn stored_server_id(conn: &Connection) -> StorageResult<Uuid> {
    let server_id: String =
        conn.query_row("SELECT value FROM meta WHERE key = 'server_id'", [], |r| {
            r.get(0)
        })?;
    Uuid::parse_str(&server_id).map_err(|_| StorageError::Corrupt("server id is not a UUID".into()))
}

/// The server's signing key, kept in `meta` so that every backup carries it.
pub(crate) fn signing_key(conn: &Connection) -> StorageResult<fieldsync_core::signing::DeviceKey> {
    let hex: String = conn.query_row(
        "SELECT value FROM meta WHERE key = 'signing_key'",
        [],
        |r| r.get(0),
    )?;
    let seed: Vec<u8> = (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    let seed: [u8; 32] = seed
        .try_into()
        .map_err(|_| StorageError::Corrupt("the server's signing key is not 32 bytes".into()))?;
    Ok(fieldsync_core::signing::DeviceKey::from_seed(&seed))
}

pub(crate) fn uuid_col(bytes: Vec<u8>) -> StorageResult<Uuid> {
    Uuid::from_slice(&bytes).map_err(|_| StorageError::Corrupt("stored id is not a UUID".into()))
}
