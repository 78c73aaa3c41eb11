//! The server's storage behind one narrow interface, so that a PostgreSQL backend for
//! multi-server deployments can sit beside the embedded SQLite one without touching handlers.

pub mod sqlite;

use crate::scope::Scope;
use fieldsync_core::protocol::{SyncRequest, SyncResponse};
use fieldsync_core::RecordType;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What a user may do. Serialized as the lower-case name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A field officer: syncs the communes assigned to them.
    Collector,
    /// Reviews merged records of the areas assigned to them.
    Supervisor,
    /// Manages accounts and devices.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Collector => "collector",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        [Role::Collector, Role::Supervisor, Role::Admin]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// An account.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub role: Role,
    /// May see and sync sensitive records (support cases).
    pub sensitive_access: bool,
    /// Assigned area codes (communes, or a district/province for supervisors).
    pub areas: Vec<String>,
    /// May give sensitive access to others (a permission of its own, for admins).
    #[serde(default)]
    pub can_grant_sensitive: bool,
    /// A disabled account cannot log in and its devices are revoked.
    #[serde(default)]
    pub disabled: bool,
}

/// A new account as an admin creates it.
#[derive(Clone, Debug, Deserialize)]
pub struct NewUser {
    pub username: String,
    pub password: String,
    pub role: Role,
    #[serde(default)]
    pub sensitive_access: bool,
    #[serde(default)]
    pub areas: Vec<String>,
    #[serde(default)]
    pub can_grant_sensitive: bool,
}

/// A change an admin makes to an existing account; absent fields stay as they are.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct AccountUpdate {
    pub areas: Option<Vec<String>>,
    pub sensitive_access: Option<bool>,
    pub can_grant_sensitive: Option<bool>,
    pub disabled: Option<bool>,
}

/// An enrolled device (a phone, or a supervisor's browser session).
#[derive(Clone, Debug, Serialize)]
pub struct Device {
    pub id: Uuid,
    pub user_id: i64,
    pub username: String,
    pub name: String,
    pub revoked: bool,
}

/// The identity behind an authorised request.
#[derive(Clone, Debug)]
pub struct Caller {
    pub device: Device,
    pub user: User,
}

impl Caller {
    pub fn scope(&self) -> Scope {
        Scope::for_user(&self.user)
    }
}

/// Storage failures, mapped to HTTP once in `http::error`.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error(transparent)]
    Core(#[from] fieldsync_core::CoreError),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    Conflict(String),
    #[error("invalid: {0}")]
    Invalid(String),
    /// Stored data that cannot be read: the server's fault, never the caller's.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// A file operation beside the database failed.
    #[error("file: {0}")]
    Io(String),
    #[error("storage is shutting down")]
    Closed,
}

pub type StorageResult<T> = Result<T, StorageError>;

/// One merged record as supervisors see it.
#[derive(Clone, Debug, Serialize)]
pub struct MergedRecord {
    pub id: Uuid,
    pub record_type: RecordType,
    pub commune: Option<String>,
    pub status: String,
    pub title: String,
    pub view: serde_json::Value,
    pub problems: serde_json::Value,
    pub conflicts: serde_json::Value,
    /// Ever a sensitive type: shown only to callers with sensitive access.
    #[serde(skip)]
    pub sensitive: bool,
}

impl MergedRecord {
    /// Whether `scope` may see this record; everything else answers as if it did not exist.
    pub fn visible_to(&self, scope: &Scope) -> bool {
        (scope.sensitive || !self.sensitive)
            && self
                .commune
                .as_deref()
                .is_some_and(|c| scope.allows(self.record_type, c))
    }
}

/// An edit a supervisor makes on the server.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "edit", rename_all = "snake_case")]
pub enum RecordEdit {
    /// Approve or return a record, with an optional comment for the collector.
    Review {
        state: fieldsync_core::record::ReviewState,
        comment: Option<String>,
    },
    /// Write a field's value: resolves a conflict on it everywhere.
    SetField {
        field: String,
        value: fieldsync_core::Value,
    },
}

/// Counts useful to operators and tests.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Stats {
    pub records: u64,
    pub changes: u64,
    pub held: u64,
    pub log_entries: u64,
}

/// Everything the HTTP layer needs from storage. Implementations are blocking; handlers call
/// them on the fixed worker pools of `crate::workers`.
pub trait Storage: Send + Sync + 'static {
    fn create_user(&self, user: &NewUser, password_hash: &str) -> StorageResult<User>;
    fn user_by_name(&self, username: &str) -> StorageResult<Option<(User, String)>>;
    fn list_users(&self) -> StorageResult<Vec<User>>;
    /// Applies an admin's change to an account; disabling it revokes all its devices.
    fn update_user(&self, username: &str, update: &AccountUpdate) -> StorageResult<User>;
    fn set_password(&self, username: &str, password_hash: &str) -> StorageResult<()>;
    /// Unix time (ms) until which logins for this username are refused; 0 if not locked.
    fn login_locked_until(&self, username: &str) -> StorageResult<i64>;
    /// Counts a failed login and returns the new lock time.
    fn login_failed(&self, username: &str, now_ms: i64) -> StorageResult<i64>;
    fn login_succeeded(&self, username: &str) -> StorageResult<()>;
    /// Enrols a device writing under the Automerge `actor` it declared. The actor must not
    /// belong to another user's device; a device of the same user re-enrolling takes it over.
    fn enrol_device(
        &self,
        user_id: i64,
        name: &str,
        token_hash: &[u8],
        actor: Option<Uuid>,
    ) -> StorageResult<Device>;
    fn caller_by_token(&self, token_hash: &[u8]) -> StorageResult<Option<Caller>>;
    fn revoke_device(&self, device_id: Uuid) -> StorageResult<()>;
    fn list_devices(&self) -> StorageResult<Vec<Device>>;
    /// Ingests a pushed batch and serves the next page, atomically and durably.
    fn sync(&self, caller: &Caller, request: &SyncRequest) -> StorageResult<SyncResponse>;
    /// Stores changes made on the server itself (demo seed, supervisor edits), unscoped.
    fn ingest_trusted(&self, device: Uuid, changes: &[(Uuid, Vec<u8>)]) -> StorageResult<()>;
    /// Applies a supervisor's edit as a change written by `device`, synced like any other.
    /// Fails with `Invalid` if the edit would take the record outside `scope`.
    fn edit_record(
        &self,
        device: Uuid,
        scope: &Scope,
        record_id: Uuid,
        edit: &RecordEdit,
    ) -> StorageResult<()>;
    fn merged_record(&self, id: Uuid) -> StorageResult<Option<MergedRecord>>;
    fn list_merged(
        &self,
        scope: &Scope,
        record_type: Option<RecordType>,
        search: Option<&str>,
        limit: u32,
    ) -> StorageResult<Vec<MergedRecord>>;
    fn stats(&self) -> StorageResult<Stats>;
    /// Writes a consistent copy of the whole database to `path` while the server runs.
    fn backup(&self, path: &std::path::Path) -> StorageResult<()>;
}
