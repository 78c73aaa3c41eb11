//! The PostgreSQL backend, for several server instances behind a load balancer on one
//! database. Storage calls are blocking and run on the worker threads of `crate::workers`
//! (never on the HTTP runtime's threads), so each operation is driven to completion with
//! `Handle::block_on` on a small runtime the backend owns, which also runs the connections'
//! I/O; `block_on` is allowed there because no worker thread is a runtime thread.
//!
//! Sync writes of all instances are serialised by one advisory lock (`sync_store.rs`), which
//! keeps the change log's sequence numbers in commit order, as SQLite's single writer does.

mod accounts;
mod activity;
mod audit;
mod db;
mod duplicates;
mod export;
mod history;
mod keep_out;
mod merged;
mod schema;
mod sync_store;
mod tls;

pub use db::Db;

use super::{
    Absorbed, AccountStore, AccountUpdate, AdminStore, AuditEntry, AuditStore, Author, Caller,
    Device, DuplicatePage, DuplicatePair, DuplicateQuery, DuplicateStore, HistoryEntry,
    MergedRecord, MergedStore, NewUser, RecordPage, RecordQuery, SensitiveDevice, Stats,
    StorageError, StorageResult, User,
};
use super::{ExportRow, ExportStore};
use crate::scope::Scope;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use fieldsync_core::record::Review;
use fieldsync_core::RecordType;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;
use tokio::runtime::{Handle, Runtime};
use tokio_postgres::config::SslMode;
use uuid::Uuid;

/// Connections of one instance's pool when not configured.
pub const DEFAULT_POOL_SIZE: usize = 16;
/// How long one statement may run before PostgreSQL cancels it, when not configured.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// How to reach the database.
#[derive(Clone, Debug)]
pub struct PostgresOptions {
    /// `postgres://user@host:port/db` (any form `tokio_postgres::Config` parses).
    pub url: String,
    pub pool_size: usize,
    pub statement_timeout: Duration,
    /// The authority of the PostgreSQL server's certificate: TLS is then required and
    /// verified. Without it, connections are plain, which is only for a database on the same
    /// host or a private network (`docs/operating.md`).
    pub ca: Option<PathBuf>,
}

impl PostgresOptions {
    pub fn new(url: &str) -> PostgresOptions {
        PostgresOptions {
            url: url.to_owned(),
            pool_size: DEFAULT_POOL_SIZE,
            statement_timeout: DEFAULT_STATEMENT_TIMEOUT,
            ca: None,
        }
    }
}

/// PostgreSQL-backed [`crate::storage::Storage`].
pub struct PostgresStorage {
    pool: Pool,
    /// Drives every operation and the connections; shut down without waiting on drop.
    runtime: Option<Runtime>,
    handle: Handle,
    server_id: [u8; 16],
    /// When expired held changes were last cleared by this instance (unix ms).
    last_expiry: AtomicI64,
    /// The last write failed for lack of space (cleared by the next write that succeeds).
    disk_full: AtomicBool,
}

fn pool_error(e: impl std::error::Error) -> StorageError {
    // The pool's own message ("error occurred while creating a new object") says nothing an
    // operator can act on; the causes below it do (a refused login, an unknown certificate).
    let mut message = format!("connection pool: {e}");
    let mut source = e.source();
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    StorageError::Postgres {
        code: None,
        message,
    }
}

impl PostgresStorage {
    /// Connects, brings the schema to the current version and reads the database's identity.
    pub fn open(options: &PostgresOptions) -> StorageResult<PostgresStorage> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("fieldsync-postgres")
            .enable_all()
            .build()
            .map_err(|e| StorageError::Io(format!("starting the database runtime: {e}")))?;
        let handle = runtime.handle().clone();
        let mut config: tokio_postgres::Config = options
            .url
            .parse()
            .map_err(|e| StorageError::Invalid(format!("database address: {e}")))?;
        config.options(format!(
            "-c statement_timeout={}",
            options.statement_timeout.as_millis()
        ));
        config.connect_timeout(Duration::from_secs(10));
        if config.get_application_name().is_none() {
            config.application_name("fieldsync-server");
        }
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match &options.ca {
            Some(ca) => {
                // Never `prefer`: a server (or a man in the middle) refusing TLS must not get
                // the plain connection instead.
                config.ssl_mode(SslMode::Require);
                Manager::from_config(config, tls::connector(ca)?, manager_config)
            }
            None if config.get_ssl_mode() == SslMode::Require => {
                return Err(StorageError::Invalid(
                    "sslmode=require needs --database-ca, the certificate of the authority \
                     that signed the PostgreSQL server's certificate"
                        .into(),
                ))
            }
            None => Manager::from_config(config, tokio_postgres::NoTls, manager_config),
        };
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(30)))
            .create_timeout(Some(Duration::from_secs(10)))
            .build()
            .map_err(pool_error)?;
        let mut storage = PostgresStorage {
            pool,
            runtime: Some(runtime),
            handle,
            server_id: [0; 16],
            last_expiry: AtomicI64::new(0),
            disk_full: AtomicBool::new(false),
        };
        let server_id = storage.with_db(|db| {
            schema::upgrade(db)?;
            schema::server_id(db)
        })?;
        storage.server_id = *server_id.as_bytes();
        Ok(storage)
    }

    /// The database's identity as this value read it when it opened.
    pub fn server_id(&self) -> Uuid {
        Uuid::from_bytes(self.server_id)
    }

    /// Gives the database a new identity, for a database restored from a dump: phones then
    /// notice the restore and push back what the dump lacks. Running instances keep the old
    /// identity until restarted.
    pub fn new_identity(&self) -> StorageResult<Uuid> {
        self.write(schema::new_identity)
    }

    /// Runs `f` on a pooled connection, statement by statement (no transaction).
    fn with_db<T>(&self, f: impl FnOnce(&Db<'_>) -> StorageResult<T>) -> StorageResult<T> {
        let client = db::block_on(&self.handle, self.pool.get()).map_err(pool_error)?;
        let db = Db::new(&client, &self.handle);
        let result = f(&db);
        if db.broken() {
            // A transaction that could not be ended must not go back to the pool.
            drop(deadpool_postgres::Object::take(client));
        }
        result
    }

    /// Runs `f` in one transaction begun with `begin`, committed when `f` returns `Ok`.
    fn transaction<T>(
        &self,
        begin: &str,
        f: impl FnOnce(&Db<'_>) -> StorageResult<T>,
    ) -> StorageResult<T> {
        self.with_db(|db| db.transaction(begin, f))
    }

    /// A write transaction (accounts, audit, duplicates) that does not touch the change log.
    fn write<T>(&self, f: impl FnOnce(&Db<'_>) -> StorageResult<T>) -> StorageResult<T> {
        let result = self.transaction("BEGIN", f);
        self.note_disk(&result);
        result
    }

    fn note_disk<T>(&self, result: &StorageResult<T>) {
        match result {
            Err(StorageError::DiskFull) => self.disk_full.store(true, Ordering::Relaxed),
            Ok(_) => self.disk_full.store(false, Ordering::Relaxed),
            Err(_) => {}
        }
    }

    /// Reads outside a transaction, each statement on the committed state of its start.
    fn read<T>(&self, f: impl FnOnce(&Db<'_>) -> StorageResult<T>) -> StorageResult<T> {
        self.with_db(f)
    }

    /// Rebuilds duplicate detection from the records as they stand (see the SQLite backend's
    /// method of the same name). Returns the open pairs.
    pub fn rebuild_duplicates(&self) -> StorageResult<u64> {
        self.write(|db| {
            db.batch("DELETE FROM dup_keys; DELETE FROM dup_pairs WHERE state = 'open';")?;
            duplicates::index_all(db, super::now_ms())?;
            let open: i64 = db
                .one("SELECT COUNT(*) FROM dup_pairs WHERE state = 'open'", &[])?
                .try_get(0)?;
            Ok(open as u64)
        })
    }
}

impl Drop for PostgresStorage {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which is refused inside another runtime's task.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Whether a transaction failed only because it raced another (serialization failure or
/// deadlock), so that running it again may succeed.
pub fn retryable(e: &StorageError) -> bool {
    matches!(e, StorageError::Postgres { code: Some(code), .. } if code == "40001" || code == "40P01")
}

impl AccountStore for PostgresStorage {
    fn create_user(&self, user: &NewUser, password_hash: &str) -> StorageResult<User> {
        self.write(|db| accounts::create_user(db, user, password_hash))
    }

    fn user_by_name(&self, username: &str) -> StorageResult<Option<(User, String)>> {
        self.read(|db| accounts::user_by_name(db, username))
    }

    fn list_users(&self) -> StorageResult<Vec<User>> {
        self.read(accounts::list_users)
    }

    fn update_user(&self, username: &str, update: &AccountUpdate) -> StorageResult<User> {
        self.write(|db| accounts::update_user(db, username, update))
    }

    fn set_password(
        &self,
        username: &str,
        password_hash: &str,
        keep: Option<Uuid>,
    ) -> StorageResult<()> {
        self.write(|db| accounts::set_password(db, username, password_hash, keep, super::now_ms()))
    }

    fn account_has_actor(&self, username: &str, actor: Uuid) -> StorageResult<bool> {
        self.read(|db| accounts::account_has_actor(db, username, actor))
    }

    fn enrol_device(
        &self,
        user_id: i64,
        name: &str,
        token_hash: &[u8],
        keys: Option<&super::DeviceKeys>,
    ) -> StorageResult<Device> {
        // Binding actors must not race a sync of another instance judging them.
        self.sync_write(|db| accounts::enrol_device(db, user_id, name, token_hash, keys))
    }

    fn caller_by_token(&self, token_hash: &[u8]) -> StorageResult<Option<Caller>> {
        self.read(|db| accounts::caller_by_token(db, token_hash, super::now_ms()))
    }

    fn revoke_device(&self, device_id: Uuid) -> StorageResult<()> {
        self.write(|db| accounts::revoke_device(db, device_id))
    }

    fn list_devices(&self) -> StorageResult<Vec<Device>> {
        self.read(accounts::list_devices)
    }

    fn device_list(&self, query: &super::DeviceQuery) -> StorageResult<Vec<super::DeviceInfo>> {
        self.read(|db| accounts::device_list(db, query))
    }

    fn note_sync(&self, device: Uuid, now_ms: i64) -> StorageResult<()> {
        let result = self.read(|db| accounts::note_sync(db, device, now_ms));
        self.note_disk(&result);
        result
    }

    fn create_session(
        &self,
        user_id: i64,
        token_hash: &[u8],
        csrf: &str,
        expires_ms: i64,
    ) -> StorageResult<Device> {
        self.write(|db| accounts::create_session(db, user_id, token_hash, csrf, expires_ms))
    }
}

impl MergedStore for PostgresStorage {
    fn merged_record(&self, id: Uuid) -> StorageResult<Option<MergedRecord>> {
        self.read(|db| merged::get(db, id))
    }

    fn resolve_records(&self, ids: &[Uuid]) -> StorageResult<BTreeMap<Uuid, Uuid>> {
        self.read(|db| duplicates::resolve_all(db, ids))
    }

    fn list_records(&self, scope: &Scope, query: &RecordQuery) -> StorageResult<RecordPage> {
        // The page, its total and its counts from one state.
        self.transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", |db| {
            merged::list(db, scope, query)
        })
    }

    fn indicator_facts(&self) -> StorageResult<Vec<crate::indicators::Fact>> {
        self.read(merged::load_facts)
    }

    fn record_summaries(&self, ids: &[Uuid]) -> StorageResult<Vec<super::RecordSummary>> {
        self.read(|db| merged::summaries(db, ids))
    }

    fn record_review(&self, id: Uuid) -> StorageResult<Option<Review>> {
        self.read(|db| {
            let Some(row) = db.opt(
                "SELECT snapshot FROM records WHERE id = $1",
                &[&id_bytes(id)],
            )?
            else {
                return Ok(None);
            };
            let snapshot: Vec<u8> = row.try_get(0)?;
            let mut doc = fieldsync_core::RecordDoc::load(id, &snapshot, Uuid::nil())?;
            Ok(Some(doc.review()?))
        })
    }

    fn record_history(&self, id: Uuid) -> StorageResult<Vec<HistoryEntry>> {
        self.transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", |db| {
            history::history(db, id)
        })
    }

    fn authors(&self, actors: &[String]) -> StorageResult<BTreeMap<String, Author>> {
        self.read(|db| crate::history::authors(actors, |actor| history::author(db, actor)))
    }
}

impl ExportStore for PostgresStorage {
    fn export_page(
        &self,
        scope: &Scope,
        query: &RecordQuery,
        record_type: RecordType,
        after: Option<Uuid>,
        limit: u32,
    ) -> StorageResult<Vec<ExportRow>> {
        self.read(|db| export::page(db, scope, query, record_type, after, limit))
    }

    fn export_sensitive_count(&self, scope: &Scope, query: &RecordQuery) -> StorageResult<u64> {
        self.read(|db| export::sensitive_count(db, scope, query))
    }
}

impl DuplicateStore for PostgresStorage {
    fn list_duplicates(
        &self,
        scope: &Scope,
        query: &DuplicateQuery,
    ) -> StorageResult<DuplicatePage> {
        self.transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", |db| {
            duplicates::list(db, scope, query)
        })
    }

    fn duplicate_pair(&self, a: Uuid, b: Uuid) -> StorageResult<Option<DuplicatePair>> {
        self.read(|db| duplicates::pair(db, a, b))
    }

    fn dismiss_duplicate(&self, scope: &Scope, a: Uuid, b: Uuid, by: &str) -> StorageResult<()> {
        self.write(|db| duplicates::dismiss(db, scope, a, b, by, super::now_ms()))
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
        let server_id = self.server_id;
        self.sync_write(|db| {
            duplicates::merge(
                db,
                &server_id,
                device,
                scope,
                keep,
                duplicate,
                take,
                by,
                super::now_ms(),
            )
        })
    }

    fn unmerge_record(&self, device: Uuid, scope: &Scope, duplicate: Uuid) -> StorageResult<Uuid> {
        let server_id = self.server_id;
        self.sync_write(|db| {
            duplicates::unmerge(db, &server_id, device, scope, duplicate, super::now_ms())
        })
    }

    fn absorbed_into(&self, keep: Uuid, scope: &Scope) -> StorageResult<Vec<Absorbed>> {
        self.read(|db| duplicates::absorbed(db, keep, scope))
    }
}

impl AuditStore for PostgresStorage {
    fn audit(&self, entry: &AuditEntry) -> StorageResult<()> {
        let result = self.read(|db| audit::append(db, entry));
        self.note_disk(&result);
        result
    }

    fn list_audit(
        &self,
        filter: &super::AuditFilter,
        limit: u32,
    ) -> StorageResult<Vec<AuditEntry>> {
        self.read(|db| audit::list(db, filter, limit))
    }

    fn audit_end(&self) -> StorageResult<i64> {
        self.read(audit::end)
    }

    fn sensitive_devices(&self) -> StorageResult<Vec<SensitiveDevice>> {
        self.transaction(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            audit::sensitive_devices,
        )
    }
}

impl AdminStore for PostgresStorage {
    fn stats(&self) -> StorageResult<Stats> {
        self.transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", |db| {
            let count = |table: &str| -> StorageResult<u64> {
                let n: i64 = db
                    .one(&format!("SELECT COUNT(*) FROM {table}"), &[])?
                    .try_get(0)?;
                Ok(n as u64)
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
        self.transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", |db| {
            merged::stats(db, scope)
        })
    }

    fn activity(&self, since_ms: i64, week_ms: i64) -> StorageResult<super::Activity> {
        self.transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", |db| {
            activity::activity(db, since_ms, week_ms)
        })
    }

    fn disk_full(&self) -> bool {
        self.disk_full.load(Ordering::Relaxed)
    }

    fn backup(&self, _path: &Path) -> StorageResult<()> {
        Err(StorageError::Invalid(
            "the database is PostgreSQL: back it up with pg_dump (docs/operating.md, \
             Running on PostgreSQL), and give a restored copy a new identity with \
             `fieldsync-server admin new-identity`"
                .into(),
        ))
    }
}

/// A UUID as stored (16 bytes).
pub(crate) fn id_bytes(id: Uuid) -> Vec<u8> {
    id.as_bytes().to_vec()
}

pub(crate) fn uuid_col(bytes: Vec<u8>) -> StorageResult<Uuid> {
    Uuid::from_slice(&bytes).map_err(|_| StorageError::Corrupt("stored id is not a UUID".into()))
}

/// Creates an empty database with a random name beside the one `url` names (on the same
/// server, as the same user) and returns its address: each test, or each trial run, gets a
/// database of its own.
pub fn scratch_database(url: &str) -> StorageResult<String> {
    let config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| StorageError::Invalid(format!("database address: {e}")))?;
    let name = format!("fieldsync_{}", Uuid::new_v4().simple());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| StorageError::Io(e.to_string()))?;
    let created = db::block_on(runtime.handle(), async {
        let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
        let driver = tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await?;
        drop(client);
        let _ = driver.await;
        Ok::<_, StorageError>(())
    });
    // Dropping a runtime blocks, which is refused inside another runtime's task.
    runtime.shutdown_background();
    created?;
    let base = url.split('?').next().unwrap_or(url);
    let prefix = match base.rfind('/') {
        Some(i) if i > base.find("//").map_or(0, |j| j + 1) => &base[..i],
        _ => base,
    };
    Ok(format!("{prefix}/{name}"))
}
