//! What every handler shares: the storage, the fixed worker pools that run blocking work, and
//! the admission rules that keep one client from making everyone else wait (one sync in flight
//! per device, two per account, a bounded queue for the database writer, a bounded queue for
//! password hashing, a cap on request bodies held in memory, a few record exports at once, the
//! login throttle, and each account's sync budgets).

use super::error::ApiError;
use crate::storage::{Caller, Storage};
use crate::throttle::LoginThrottle;
use crate::workers::WorkerPool;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

/// Syncs that push and wait for the writer at once; more get 429. Each holds the writer for at
/// most `storage::sqlite::INGEST_BUDGET`, so the last in line waits about a second.
const MAX_QUEUED_WRITES: usize = 6;
/// Syncs one account may have in flight (several phones of one officer are fine).
const MAX_SYNCS_PER_USER: usize = 2;
/// Plan progress computations at once per account: the page's drill-down asks for two.
const MAX_REPORTS_PER_USER: usize = 2;
/// Record exports at once per account (the page's CSV and Excel buttons), and overall: each
/// holds a temporary file or a gzip stream and takes turns at the API workers page by page.
const MAX_EXPORTS_PER_USER: usize = 2;
const MAX_EXPORTS: usize = 8;
/// Request bodies held in memory at once, in KiB.
const MAX_BODY_KIB_IN_FLIGHT: usize = 64 * 1024;

/// Shared by every request.
#[derive(Clone)]
pub struct AppState {
    pub storage: Arc<dyn Storage>,
    /// The directory of the database, for the free-space figure in `/v1/health`.
    pub data_dir: Option<PathBuf>,
    pub timeouts: crate::config::Timeouts,
    /// The province plan progress is reported against (Kon Tum's unless `--plan` names one).
    pub plan: Arc<crate::indicators::Plan>,
    /// Whether answers carry `Strict-Transport-Security` (not in `--dev`).
    pub hsts: bool,
    /// Token checks and other short reads: never queued behind a push or a password hash.
    auth_pool: WorkerPool,
    /// Decoding, ingesting and pulling sync requests.
    sync_pool: WorkerPool,
    /// Supervisors' and admins' reads and edits.
    api_pool: WorkerPool,
    /// Password hashing: each argon2 hash takes ~19 MiB and a core.
    password_pool: WorkerPool,
    admission: Arc<Admission>,
    pub throttle: Arc<LoginThrottle>,
    /// Per-account pull and push budgets of `/v1/sync`, and its foreign-cursor rule.
    pub(crate) budgets: Arc<super::budget::SyncBudgets>,
}

struct Admission {
    /// Pushing syncs take turns at the writer in arrival order (tokio's mutex is fair).
    write_turn: Arc<tokio::sync::Mutex<()>>,
    writes_queued: AtomicUsize,
    /// Places in the password-hashing queue.
    password_slots: Arc<Semaphore>,
    /// KiB of request bodies being read or held.
    body_kib: Arc<Semaphore>,
    syncing: Mutex<Syncing>,
    /// Plan progress reports being computed, per account.
    reporting: Arc<Mutex<HashMap<i64, usize>>>,
    /// Record exports being written, per account.
    exporting: Arc<Mutex<HashMap<i64, usize>>>,
}

#[derive(Default)]
struct Syncing {
    devices: HashSet<Uuid>,
    users: HashMap<i64, usize>,
}

/// A device's place among the syncs in flight, freed when dropped.
pub struct SyncSlot {
    admission: Arc<Admission>,
    device: Uuid,
    user: i64,
}

impl Drop for SyncSlot {
    fn drop(&mut self) {
        let mut syncing = self
            .admission
            .syncing
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        syncing.devices.remove(&self.device);
        if let Some(n) = syncing.users.get_mut(&self.user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                syncing.users.remove(&self.user);
            }
        }
    }
}

/// An account's place among the plan progress reports being computed (or the record exports
/// being written), freed when dropped.
pub struct ReportSlot {
    reporting: Arc<Mutex<HashMap<i64, usize>>>,
    user: i64,
}

impl Drop for ReportSlot {
    fn drop(&mut self) {
        let mut reporting = self.reporting.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = reporting.get_mut(&self.user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                reporting.remove(&self.user);
            }
        }
    }
}

/// A pushing sync's turn at the writer, held until its ingest is done.
pub struct WriteTurn {
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

struct InQueue<'a>(&'a AtomicUsize);

impl Drop for InQueue<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn busy(retry_after_secs: u64, what: &str) -> ApiError {
    ApiError::Busy {
        retry_after_secs,
        message: what.to_owned(),
    }
}

impl AppState {
    pub fn new(
        storage: Arc<dyn Storage>,
        data_dir: Option<PathBuf>,
        timeouts: crate::config::Timeouts,
    ) -> std::io::Result<AppState> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(AppState {
            storage,
            data_dir,
            timeouts,
            plan: Arc::new(crate::indicators::Plan::bundled().clone()),
            hsts: true,
            auth_pool: WorkerPool::new("auth", 2)?,
            sync_pool: WorkerPool::new("sync", 4)?,
            api_pool: WorkerPool::new("api", 2)?,
            password_pool: WorkerPool::new("password", cores)?,
            admission: Arc::new(Admission {
                write_turn: Arc::new(tokio::sync::Mutex::new(())),
                writes_queued: AtomicUsize::new(0),
                password_slots: Arc::new(Semaphore::new(2 * cores)),
                body_kib: Arc::new(Semaphore::new(MAX_BODY_KIB_IN_FLIGHT)),
                syncing: Mutex::new(Syncing::default()),
                reporting: Arc::new(Mutex::new(HashMap::new())),
                exporting: Arc::new(Mutex::new(HashMap::new())),
            }),
            throttle: Arc::new(LoginThrottle::default()),
            budgets: Arc::new(super::budget::SyncBudgets::default()),
        })
    }

    /// Reports progress against `plan` instead of the built-in one.
    pub fn with_plan(mut self, plan: crate::indicators::Plan) -> AppState {
        self.plan = Arc::new(plan);
        self
    }

    /// Sends `Strict-Transport-Security` (the default) or not (`--dev`).
    pub fn with_hsts(mut self, hsts: bool) -> AppState {
        self.hsts = hsts;
        self
    }

    async fn run_on<T: Send + 'static>(
        &self,
        pool: &WorkerPool,
        f: impl FnOnce(&dyn Storage) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let storage = self.storage.clone();
        pool.run(move || f(storage.as_ref()))
            .await
            .map_err(|_| ApiError::Internal)?
    }

    /// Runs a token check or another short read.
    pub(crate) async fn auth<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Storage) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        self.run_on(&self.auth_pool, f).await
    }

    /// Runs a step of a sync.
    pub(crate) async fn sync_work<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Storage) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        self.run_on(&self.sync_pool, f).await
    }

    /// Runs blocking storage work of the supervisors' and admins' API.
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Storage) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        self.run_on(&self.api_pool, f).await
    }

    /// Runs work that hashes a password, if the hashing queue has room (else 429).
    pub(crate) async fn hashing<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Storage) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let permit = self
            .admission
            .password_slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| busy(2, "the server is busy checking passwords; retry shortly"))?;
        let result = self.run_on(&self.password_pool, f).await;
        drop(permit);
        result
    }

    /// Appends to the audit log: who (`caller`, if known), from where, did what to what.
    pub(crate) async fn audit(
        &self,
        caller: Option<&Caller>,
        peer: Option<std::net::IpAddr>,
        action: &str,
        target: Option<String>,
        detail: Option<String>,
    ) -> Result<(), ApiError> {
        self.audit_about(false, caller, peer, action, target, detail)
            .await
    }

    /// Appends an entry about support cases: only accounts with sensitive access read it.
    pub(crate) async fn audit_sensitive(
        &self,
        caller: Option<&Caller>,
        peer: Option<std::net::IpAddr>,
        action: &str,
        target: Option<String>,
        detail: Option<String>,
    ) -> Result<(), ApiError> {
        self.audit_about(true, caller, peer, action, target, detail)
            .await
    }

    /// Appends an entry, about support cases if `sensitive`.
    pub(crate) async fn audit_about(
        &self,
        sensitive: bool,
        caller: Option<&Caller>,
        peer: Option<std::net::IpAddr>,
        action: &str,
        target: Option<String>,
        detail: Option<String>,
    ) -> Result<(), ApiError> {
        let entry = audit_entry(sensitive, caller, peer, action, target, detail);
        self.blocking(move |storage| Ok(storage.audit(&entry)?))
            .await
    }

    /// Admits one sync of `caller`: one at a time per device, a few per account.
    pub(crate) fn sync_slot(&self, caller: &Caller) -> Result<SyncSlot, ApiError> {
        let mut syncing = self
            .admission
            .syncing
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let user = caller.user.id;
        if syncing.devices.contains(&caller.device.id)
            || syncing.users.get(&user).copied().unwrap_or(0) >= MAX_SYNCS_PER_USER
        {
            return Err(busy(1, "a sync of this device is already running"));
        }
        syncing.devices.insert(caller.device.id);
        *syncing.users.entry(user).or_default() += 1;
        Ok(SyncSlot {
            admission: self.admission.clone(),
            device: caller.device.id,
            user,
        })
    }

    /// Admits one plan progress computation of `caller`'s account (each reads every record's
    /// facts): a few at a time per account, so that one supervisor's reloads cannot fill the
    /// API workers everyone's pages use.
    pub(crate) fn report_slot(&self, caller: &Caller) -> Result<ReportSlot, ApiError> {
        let mut reporting = self
            .admission
            .reporting
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let running = reporting.entry(caller.user.id).or_default();
        if *running >= MAX_REPORTS_PER_USER {
            return Err(busy(1, "this account's reports are still being computed"));
        }
        *running += 1;
        Ok(ReportSlot {
            reporting: self.admission.reporting.clone(),
            user: caller.user.id,
        })
    }

    /// Admits one record export of `caller`'s account: a few per account and a few overall, so
    /// that exports cannot fill the temporary disk or crowd out everyone's pages.
    pub(crate) fn export_slot(&self, caller: &Caller) -> Result<ReportSlot, ApiError> {
        let mut exporting = self
            .admission
            .exporting
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let all: usize = exporting.values().sum();
        let mine = exporting.get(&caller.user.id).copied().unwrap_or(0);
        if mine >= MAX_EXPORTS_PER_USER || all >= MAX_EXPORTS {
            return Err(busy(
                5,
                "exports are still being written; retry when they are done",
            ));
        }
        *exporting.entry(caller.user.id).or_default() += 1;
        Ok(ReportSlot {
            reporting: self.admission.exporting.clone(),
            user: caller.user.id,
        })
    }

    /// Room for a request body of `bytes`, or 429 when too many are held at once.
    pub(crate) fn body_room(&self, bytes: u64) -> Result<OwnedSemaphorePermit, ApiError> {
        let kib = u32::try_from(bytes.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .max(1);
        self.admission
            .body_kib
            .clone()
            .try_acquire_many_owned(kib)
            .map_err(|_| busy(2, "the server is receiving too much at once; retry shortly"))
    }

    /// Waits for this push's turn at the writer, or 429 when the queue is full.
    pub(crate) async fn write_turn(&self) -> Result<WriteTurn, ApiError> {
        let queued = self.admission.writes_queued.fetch_add(1, Ordering::SeqCst);
        // Counted until the turn comes, also if the client goes away while waiting.
        let _in_queue = InQueue(&self.admission.writes_queued);
        if queued >= MAX_QUEUED_WRITES {
            return Err(busy(1, "many phones are sending at once; retry shortly"));
        }
        let guard = self.admission.write_turn.clone().lock_owned().await;
        Ok(WriteTurn { _guard: guard })
    }
}

/// An audit entry as of now: who (`caller`, if known), from where, did what to what, and
/// whether it is about support cases.
pub(crate) fn audit_entry(
    sensitive: bool,
    caller: Option<&Caller>,
    peer: Option<std::net::IpAddr>,
    action: &str,
    target: Option<String>,
    detail: Option<String>,
) -> crate::storage::AuditEntry {
    crate::storage::AuditEntry {
        at_ms: crate::storage::sqlite::now_ms(),
        user_id: caller.map(|c| c.user.id),
        username: caller.map(|c| c.user.username.clone()),
        device_id: caller.map(|c| c.device.id),
        action: action.to_owned(),
        target,
        detail,
        peer: peer.map(|p| p.to_string()),
        sensitive,
        ..Default::default()
    }
}
