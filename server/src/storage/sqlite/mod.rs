//! The embedded storage backend: one SQLite file (WAL, synchronous=FULL) under the data
//! directory. Writes are serialised on one connection; the pushed part of a sync request is
//! one transaction, committed before its response is sent, so an acknowledgement always means
//! "on disk". Reads (token checks, pulls, supervisors' views) use their own connections and
//! never wait for the writer, and one request holds the writer for a bounded time only.

mod accounts;
mod audit;
mod duplicates;
mod facts;
mod history;
mod ingest;
mod merged;
mod pull;
mod schema;

use super::{
    Absorbed, AccountUpdate, AuditEntry, Author, Caller, Device, DuplicatePage, DuplicatePair,
    DuplicateQuery, HistoryEntry, MergedRecord, NewUser, PullPage, PushOutcome, Pushed, RecordEdit,
    RecordPage, RecordQuery, SensitiveDevice, Stats, Storage, StorageError, StorageResult, User,
};
use crate::scope::{Cursor, Scope};
use fieldsync_core::protocol::RejectCode;
use fieldsync_core::record::decode_change;
use fieldsync_core::record::Review;
use ingest::{Authors, Ingest};
use rusqlite::Connection;
use rusqlite::OptionalExtension;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use uuid::Uuid;

/// How long one request may spend ingesting its pushed changes while holding the writer. The
/// changes it did not reach stay unacknowledged; the phone sends them again in its next
/// exchange, so a heavy pusher is split into several requests instead of stalling everyone.
pub const INGEST_BUDGET: Duration = Duration::from_millis(150);
/// Most changes one request may push (more is `413`); the reference client sends at most
/// `ClientOptions::max_push_changes`.
pub const MAX_PUSH_CHANGES: usize = 1_000;
/// Read connections kept open beside the writer.
const READERS: usize = 4;

/// How long a change waits for missing dependencies before it is refused
/// (`MissingDependency`); the server's clock is used only for this housekeeping.
pub const HELD_TTL_MS: i64 = 7 * 24 * 3600 * 1000;

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
        let conn = schema::open(path)?;
        let server_id: String =
            conn.query_row("SELECT value FROM meta WHERE key = 'server_id'", [], |r| {
                r.get(0)
            })?;
        let server_id = Uuid::parse_str(&server_id)
            .map_err(|_| StorageError::Corrupt("server id is not a UUID".into()))?;
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
    fn read<T>(&self, f: impl FnOnce(&Connection) -> StorageResult<T>) -> StorageResult<T> {
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
    fn write<T>(&self, f: impl FnOnce(&mut Connection) -> StorageResult<T>) -> StorageResult<T> {
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

    /// Drops held changes that waited longer than [`HELD_TTL_MS`] for their dependencies, at
    /// most once a minute. Each sender gets `MissingDependency` at its next push of one; the
    /// refusal is not kept, so the change still applies if its dependencies come later.
    fn expire_held(&self, tx: &rusqlite::Transaction<'_>, now: i64) -> StorageResult<()> {
        let last = self.last_expiry.load(Ordering::Relaxed);
        if now - last < 60_000 {
            return Ok(());
        }
        self.last_expiry.store(now, Ordering::Relaxed);
        let cutoff = now - HELD_TTL_MS;
        tx.execute(
            "INSERT OR IGNORE INTO expired (hash, record_id, origin_device)
             SELECT hash, record_id, origin_device FROM held WHERE received_ms < ?1",
            [cutoff],
        )?;
        tx.execute("DELETE FROM held WHERE received_ms < ?1", [cutoff])?;
        Ok(())
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
        self.write(|conn| {
            let tx = conn.transaction()?;
            tx.execute_batch("DELETE FROM dup_keys; DELETE FROM dup_pairs WHERE state = 'open';")?;
            duplicates::index_all(&tx, now_ms())?;
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

impl Storage for SqliteStorage {
    fn create_user(&self, user: &NewUser, password_hash: &str) -> StorageResult<User> {
        self.write(|c| accounts::create_user(c, user, password_hash))
    }

    fn user_by_name(&self, username: &str) -> StorageResult<Option<(User, String)>> {
        self.read(|c| accounts::user_by_name(c, username))
    }

    fn list_users(&self) -> StorageResult<Vec<User>> {
        self.read(accounts::list_users)
    }

    fn update_user(&self, username: &str, update: &AccountUpdate) -> StorageResult<User> {
        self.write(|c| accounts::update_user(c, username, update))
    }

    fn set_password(
        &self,
        username: &str,
        password_hash: &str,
        keep: Option<Uuid>,
    ) -> StorageResult<()> {
        self.write(|c| accounts::set_password(c, username, password_hash, keep, now_ms()))
    }

    fn account_has_actor(&self, username: &str, actor: Uuid) -> StorageResult<bool> {
        self.read(|c| accounts::account_has_actor(c, username, actor))
    }

    fn enrol_device(
        &self,
        user_id: i64,
        name: &str,
        token_hash: &[u8],
        keys: Option<&super::DeviceKeys>,
    ) -> StorageResult<Device> {
        self.write(|c| accounts::enrol_device(c, user_id, name, token_hash, keys))
    }

    fn caller_by_token(&self, token_hash: &[u8]) -> StorageResult<Option<Caller>> {
        self.read(|c| accounts::caller_by_token(c, token_hash, now_ms()))
    }

    fn revoke_device(&self, device_id: Uuid) -> StorageResult<()> {
        self.write(|c| accounts::revoke_device(c, device_id))
    }

    fn list_devices(&self) -> StorageResult<Vec<Device>> {
        self.read(accounts::list_devices)
    }

    fn server_id(&self) -> [u8; 16] {
        self.server_id
    }

    fn push(&self, caller: &Caller, changes: Vec<Pushed>) -> StorageResult<PushOutcome> {
        if changes.len() > MAX_PUSH_CHANGES {
            return Err(StorageError::TooLarge(format!(
                "at most {MAX_PUSH_CHANGES} changes per request"
            )));
        }
        let scope = caller.scope();
        self.write(|conn| {
            let started = Instant::now();
            let now = now_ms();
            let tx = conn.transaction()?;
            // Housekeeping is not worth failing a push for (on a full disk, say).
            if let Err(e) = self.expire_held(&tx, now) {
                tracing::warn!(error = %e, "expiring held changes failed");
            }
            let mut ingest = Ingest::new(&tx, caller.device.id, &scope, Authors::Device, now);
            for (i, pushed) in changes.into_iter().enumerate() {
                if i > 0 && started.elapsed() > INGEST_BUDGET {
                    break;
                }
                ingest.push(
                    pushed.record_id,
                    pushed.change,
                    &pushed.bytes,
                    Some(&pushed.signature),
                )?;
            }
            let outcome = ingest.finish()?;
            tx.commit()?;
            Ok(outcome)
        })
    }

    fn pull(&self, caller: &Caller, cursor: Cursor, max_bytes: u64) -> StorageResult<PullPage> {
        let scope = caller.scope();
        self.read(|conn| {
            // One read transaction: every stream is read from the same committed state.
            let tx = conn.unchecked_transaction()?;
            pull::page(&tx, &scope, cursor, caller.device.id, max_bytes)
        })
    }

    fn ingest_trusted(&self, device: Uuid, changes: &[(Uuid, Vec<u8>)]) -> StorageResult<()> {
        let scope = Scope::everything();
        self.write(|conn| {
            let tx = conn.transaction()?;
            let mut ingest = Ingest::new(&tx, device, &scope, Authors::Server, now_ms());
            for (record_id, bytes) in changes {
                ingest.push(*record_id, decode_change(bytes)?, bytes, None)?;
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
        })
    }

    fn edit_record(
        &self,
        device: Uuid,
        scope: &Scope,
        record_id: Uuid,
        edit: &RecordEdit,
    ) -> StorageResult<()> {
        self.write(|conn| edit_record(conn, device, scope, record_id, edit))
    }

    fn merged_record(&self, id: Uuid) -> StorageResult<Option<MergedRecord>> {
        self.read(|c| merged::get(c, id))
    }

    fn list_records(&self, scope: &Scope, query: &RecordQuery) -> StorageResult<RecordPage> {
        self.read(|c| merged::list(c, scope, query))
    }

    fn list_duplicates(
        &self,
        scope: &Scope,
        query: &DuplicateQuery,
    ) -> StorageResult<DuplicatePage> {
        self.read(|c| duplicates::list(c, scope, query))
    }

    fn duplicate_pair(&self, a: Uuid, b: Uuid) -> StorageResult<Option<DuplicatePair>> {
        self.read(|c| duplicates::pair(c, a, b))
    }

    fn dismiss_duplicate(&self, scope: &Scope, a: Uuid, b: Uuid, by: &str) -> StorageResult<()> {
        self.write(|c| duplicates::dismiss(c, scope, a, b, by, now_ms()))
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
        self.write(|c| duplicates::merge(c, device, scope, keep, duplicate, take, by, now_ms()))
    }

    fn unmerge_record(&self, device: Uuid, scope: &Scope, duplicate: Uuid) -> StorageResult<Uuid> {
        self.write(|c| duplicates::unmerge(c, device, scope, duplicate, now_ms()))
    }

    fn absorbed_into(&self, keep: Uuid, scope: &Scope) -> StorageResult<Vec<Absorbed>> {
        self.read(|c| duplicates::absorbed(c, keep, scope))
    }

    fn resolve_records(&self, ids: &[Uuid]) -> StorageResult<BTreeMap<Uuid, Uuid>> {
        self.read(|c| duplicates::resolve_all(c, ids))
    }

    fn indicator_facts(&self) -> StorageResult<Vec<crate::indicators::Fact>> {
        self.read(facts::load)
    }

    fn record_summaries(&self, ids: &[Uuid]) -> StorageResult<Vec<super::RecordSummary>> {
        self.read(|c| merged::summaries(c, ids))
    }

    fn record_review(&self, id: Uuid) -> StorageResult<Option<Review>> {
        self.read(|c| {
            let snapshot: Option<Vec<u8>> = c
                .query_row(
                    "SELECT snapshot FROM records WHERE id = ?1",
                    [id.as_bytes()],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(snapshot) = snapshot else {
                return Ok(None);
            };
            let mut doc = fieldsync_core::RecordDoc::load(id, &snapshot, Uuid::nil())?;
            Ok(Some(doc.review()?))
        })
    }

    fn record_history(&self, id: Uuid) -> StorageResult<Vec<HistoryEntry>> {
        self.read(|c| history::history(c, id))
    }

    fn authors(&self, actors: &[String]) -> StorageResult<BTreeMap<String, Author>> {
        self.read(|c| history::authors(c, actors))
    }

    fn create_session(
        &self,
        user_id: i64,
        token_hash: &[u8],
        csrf: &str,
        expires_ms: i64,
    ) -> StorageResult<Device> {
        self.write(|c| accounts::create_session(c, user_id, token_hash, csrf, expires_ms))
    }

    fn audit(&self, entry: &AuditEntry) -> StorageResult<()> {
        self.write(|c| audit::append(c, entry))
    }

    fn list_audit(
        &self,
        before: Option<i64>,
        limit: u32,
        device: Option<Uuid>,
        with_sensitive: bool,
    ) -> StorageResult<Vec<AuditEntry>> {
        self.read(|c| audit::list(c, before, limit, device, with_sensitive))
    }

    fn sensitive_devices(&self) -> StorageResult<Vec<SensitiveDevice>> {
        self.read(audit::sensitive_devices)
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
        self.read(|conn| {
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
        self.read(|c| merged::stats(c, scope))
    }

    fn disk_full(&self) -> bool {
        self.disk_full.load(Ordering::Relaxed)
    }
}

/// A supervisor's edit, written as a change of the supervisor's device and ingested like any.
fn edit_record(
    conn: &mut Connection,
    device: Uuid,
    scope: &Scope,
    record_id: Uuid,
    edit: &RecordEdit,
) -> StorageResult<()> {
    let tx = conn.transaction()?;
    let mut doc = load_for_writing(&tx, record_id, device)?;
    let change = match edit {
        RecordEdit::Review { state, comment } => doc.set_review(*state, comment.as_deref())?,
        RecordEdit::SetField { field, value } => doc.set_field(field, value)?,
        RecordEdit::ClearField { field } => doc.clear_field(field)?,
    };
    if let Some(change) = change {
        let mut ingest = Ingest::new(&tx, device, scope, Authors::Server, now_ms());
        ingest.push(
            record_id,
            decode_change(&change.bytes)?,
            &change.bytes,
            None,
        )?;
        let outcome = ingest.finish()?;
        if let Some(refusal) = outcome.rejected.first() {
            return Err(match refusal.code {
                RejectCode::OutOfScope => StorageError::Invalid(
                    "the edit would take the record outside your areas".into(),
                ),
                RejectCode::TooLarge => {
                    StorageError::TooLarge("the record has reached its size limit".into())
                }
                code => StorageError::Invalid(format!("the edit was refused ({code:?})")),
            });
        }
    }
    tx.commit()?;
    Ok(())
}

/// A record's document to write a change of the server's into, as `device` (a supervisor's
/// session). The changes are written under an actor of that device and of this database's
/// identity: after a restore, the server's own actors must not take sequence numbers that
/// changes the restore lost (and phones may give back) already have.
pub(crate) fn load_for_writing(
    conn: &Connection,
    id: Uuid,
    device: Uuid,
) -> StorageResult<fieldsync_core::RecordDoc> {
    let snapshot: Vec<u8> = conn
        .query_row(
            "SELECT snapshot FROM records WHERE id = ?1",
            [id.as_bytes()],
            |r| r.get(0),
        )
        .optional()?
        .ok_or_else(|| StorageError::NotFound(format!("record {id}")))?;
    let server_id: String =
        conn.query_row("SELECT value FROM meta WHERE key = 'server_id'", [], |r| {
            r.get(0)
        })?;
    let actor = {
        use sha2::{Digest, Sha256};
        let digest = Sha256::new()
            .chain_update(b"fieldsync server actor v1")
            .chain_update(device.as_bytes())
            .chain_update(server_id.as_bytes())
            .finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    };
    Ok(fieldsync_core::RecordDoc::load(id, &snapshot, actor)?)
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
