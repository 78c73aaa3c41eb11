//! The server's storage: what each client of it (sync, accounts, merged view, duplicates,
//! audit, administration) needs, as one trait each, and the types they exchange. The SQLite
//! backend (`sqlite/`) implements them all, and so does the PostgreSQL one (`postgres/`) for
//! several server instances on one database.

pub mod postgres;
pub mod sqlite;

use crate::scope::{Cursor, Scope};
use crate::sync::store::SyncStore;
use fieldsync_core::protocol::{ChangeEntry, NeedEntry, Rejection, SyncRequest};
use fieldsync_core::record::{Review, ReviewPhase};
use fieldsync_core::RecordType;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
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
    /// The person's full name as the page shows it (Vietnamese, with diacritics).
    #[serde(default)]
    pub full_name: Option<String>,
    /// A contact number; shown only where admins manage accounts.
    #[serde(default)]
    pub phone: Option<String>,
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
    #[serde(default)]
    pub full_name: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
}

/// A change an admin makes to an existing account; absent fields stay as they are.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct AccountUpdate {
    pub areas: Option<Vec<String>>,
    pub sensitive_access: Option<bool>,
    pub can_grant_sensitive: Option<bool>,
    pub disabled: Option<bool>,
    /// A new full name; empty clears it.
    pub full_name: Option<String>,
    /// A new phone number; empty clears it.
    pub phone: Option<String>,
}

/// An enrolled device (a phone, or a supervisor's browser session).
#[derive(Clone, Debug, Serialize)]
pub struct Device {
    pub id: Uuid,
    pub user_id: i64,
    pub username: String,
    pub name: String,
    pub revoked: bool,
    /// `phone` (enrolled with `POST /v1/enrol`) or `browser` (a session of the supervisors'
    /// page, which expires).
    pub kind: String,
}

/// Where a device stands: in use, revoked (by an admin, a logout or a disabled account), or a
/// page session past its expiry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceState {
    Active,
    Revoked,
    Expired,
}

impl DeviceState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceState::Active => "active",
            DeviceState::Revoked => "revoked",
            DeviceState::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<DeviceState> {
        match s {
            "active" => Some(DeviceState::Active),
            "revoked" => Some(DeviceState::Revoked),
            "expired" => Some(DeviceState::Expired),
            _ => None,
        }
    }
}

/// The state of a device revoked or not, with that expiry (sessions), at `now_ms`.
pub fn device_state(revoked: bool, expires_ms: Option<i64>, now_ms: i64) -> DeviceState {
    if revoked {
        DeviceState::Revoked
    } else if expires_ms.is_some_and(|e| e <= now_ms) {
        DeviceState::Expired
    } else {
        DeviceState::Active
    }
}

/// Which devices an admin lists; without a state, every one but expired sessions.
#[derive(Clone, Debug, Default)]
pub struct DeviceQuery {
    /// `phone` or `browser`.
    pub kind: Option<String>,
    pub state: Option<DeviceState>,
    pub username: Option<String>,
    /// Now (unix ms): sessions whose expiry is past are expired.
    pub now_ms: i64,
    pub limit: u32,
}

/// A device as the administration lists it.
#[derive(Clone, Debug, Serialize)]
pub struct DeviceInfo {
    #[serde(flatten)]
    pub device: Device,
    pub state: DeviceState,
    /// Unknown for devices enrolled before it was kept.
    #[serde(skip)]
    pub enrolled_ms: Option<i64>,
    #[serde(skip)]
    pub last_sync_ms: Option<i64>,
    #[serde(skip)]
    pub expires_ms: Option<i64>,
    /// Changes the server accepted from it.
    pub changes_sent: u64,
}

/// Records registered (by the device their first change came from) in one week, counted by
/// what the access rule asks of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registrations {
    pub user_id: i64,
    pub record_type: RecordType,
    pub commune: Option<String>,
    pub sensitive: bool,
    /// Weeks since the start asked for, from 0.
    pub week: i64,
    pub count: u64,
}

/// What the collectors view reads: registrations since a time, and each account's last sync
/// from a phone (unix ms).
#[derive(Clone, Debug, Default)]
pub struct Activity {
    pub registrations: Vec<Registrations>,
    pub last_sync: BTreeMap<i64, i64>,
}

/// The keys a device shows when it enrols: the public key it signs its changes with (its
/// actor derives from it) and the actors it wrote under before, each proved by its secret
/// (protocol 2 actors) or not provable (from before actors came from a key).
#[derive(Clone, Debug)]
pub struct DeviceKeys {
    pub public_key: [u8; 32],
    pub legacy: Vec<(Uuid, Proven)>,
}

impl DeviceKeys {
    /// The keys a device showed, if its proof is its key's signature of `username`.
    pub fn verified(
        shown: &fieldsync_core::protocol::Enrolment,
        username: &str,
    ) -> Option<DeviceKeys> {
        if !fieldsync_core::signing::verify_enrolment(&shown.public_key, username, &shown.proof) {
            return None;
        }
        let proven = shown
            .legacy_actor_keys
            .iter()
            .map(|secret| (fieldsync_core::record::actor_for_key(secret), Proven::Yes));
        let unproven = shown.legacy_actors.iter().map(|a| (*a, Proven::No));
        Some(DeviceKeys {
            public_key: shown.public_key,
            legacy: proven.chain(unproven).collect(),
        })
    }
}

/// Whether an actor claimed at enrolment was proved by its secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proven {
    Yes,
    No,
}

/// The identity behind an authorised request.
#[derive(Clone, Debug)]
pub struct Caller {
    pub device: Device,
    pub user: User,
    /// For a browser session: the token every request that changes something must carry.
    pub session_csrf: Option<String>,
    /// For a browser session: when it ends (unix ms).
    pub session_expires_ms: Option<i64>,
    /// The device enrolled with a signing key (protocol 3) and may push changes.
    pub signs: bool,
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
    Db(rusqlite::Error),
    /// The disk holding the database is full: writes wait, reads go on.
    #[error("the data disk is full")]
    DiskFull,
    /// The request pushes more than one request may carry.
    #[error("{0}")]
    TooLarge(String),
    #[error(transparent)]
    Core(#[from] fieldsync_core::CoreError),
    #[error("{0} not found")]
    NotFound(String),
    /// Something that must be unique already exists; the text says what.
    #[error("{0}")]
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
    /// A PostgreSQL failure, with its SQLSTATE when the database sent one (what
    /// `postgres::retryable` reads).
    #[error("database: {message}")]
    Postgres {
        code: Option<String>,
        message: String,
    },
}

impl From<rusqlite::Error> for StorageError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => StorageError::DiskFull,
            _ => StorageError::Db(e),
        }
    }
}

impl From<tokio_postgres::Error> for StorageError {
    fn from(e: tokio_postgres::Error) -> Self {
        let code = e.code().map(|c| c.code().to_owned());
        if code.as_deref() == Some("53100") {
            return StorageError::DiskFull;
        }
        let message = match e.as_db_error() {
            Some(db) => db.message().to_owned(),
            None => e.to_string(),
        };
        StorageError::Postgres { code, message }
    }
}

pub type StorageResult<T> = Result<T, StorageError>;

/// The server's clock (unix ms), used only for housekeeping and for what people read (when a
/// change arrived, an audit entry's time), never to order changes.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

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
    pub review: ReviewPhase,
    /// When the server last received a change of it (unix ms).
    pub updated_ms: i64,
}

/// What a supervisor asks the record list for.
#[derive(Clone, Debug, Default)]
pub struct RecordQuery {
    pub record_type: Option<RecordType>,
    /// Communes to keep (an area filter already expanded across the 2025 merger).
    pub communes: Option<std::collections::BTreeSet<String>>,
    pub review: Option<ReviewPhase>,
    pub conflicts: Option<bool>,
    pub problems: Option<bool>,
    /// Deleted and merged records instead of the others.
    pub deleted: bool,
    pub changed_since_ms: Option<i64>,
    pub search: Option<String>,
    pub sort: RecordSort,
    /// Highest first (the default for the time of the last change).
    pub descending: bool,
    pub limit: u32,
    pub offset: u32,
}

/// What the record list is ordered by; every order ends with the record id, so that paging
/// neither repeats nor skips a record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RecordSort {
    Title,
    /// Commune, then village.
    Place,
    /// The collector's full name (their username if they have none).
    Collector,
    /// When the server last received a change of the record.
    #[default]
    Updated,
    /// Pending, returned, changed since approval, approved.
    Review,
}

impl RecordSort {
    pub fn parse(s: &str) -> Option<RecordSort> {
        Some(match s {
            "title" => RecordSort::Title,
            "place" => RecordSort::Place,
            "collector" => RecordSort::Collector,
            "updated" => RecordSort::Updated,
            "review" => RecordSort::Review,
            _ => return None,
        })
    }
}

/// The record list's ORDER BY over `merged` and its collector's account `u`, from the
/// whitelist [`RecordSort`] only; `collate` makes text compare byte by byte on both backends
/// (empty on SQLite, where that is the default). Ties go to the record id, both ways.
pub(crate) fn list_order(sort: RecordSort, descending: bool, collate: &str) -> String {
    let dir = if descending { "DESC" } else { "ASC" };
    let keys = match sort {
        RecordSort::Title => format!("merged.title{collate} {dir}"),
        RecordSort::Place => {
            format!("merged.commune{collate} {dir}, COALESCE(merged.village, ''){collate} {dir}")
        }
        RecordSort::Collector => {
            format!("COALESCE(u.full_name, u.username, ''){collate} {dir}")
        }
        RecordSort::Updated => format!("merged.updated_ms {dir}"),
        RecordSort::Review => format!(
            "CASE merged.review WHEN 'pending' THEN 0 WHEN 'returned' THEN 1 \
             WHEN 'changed' THEN 2 ELSE 3 END {dir}"
        ),
    };
    format!("{keys}, merged.id {dir}")
}

/// A person as lists name them: the full name, and the username beside it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PersonName {
    pub username: String,
    pub full_name: Option<String>,
}

/// One row of the record list.
#[derive(Clone, Debug, Serialize)]
pub struct RecordSummary {
    pub id: Uuid,
    pub record_type: RecordType,
    pub commune: Option<String>,
    pub status: String,
    pub review: ReviewPhase,
    pub title: String,
    pub n_conflicts: u32,
    pub n_problems: u32,
    #[serde(skip)]
    pub updated_ms: i64,
    pub village: Option<String>,
    /// Whose device first sent the record (none for records the server made itself).
    pub collector: Option<PersonName>,
}

/// For each filter of the list, how many records each value gives with the others kept.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FilterCounts {
    #[serde(rename = "type")]
    pub record_type: std::collections::BTreeMap<String, u64>,
    pub review: std::collections::BTreeMap<String, u64>,
    pub conflicts: u64,
    pub problems: u64,
    pub deleted: u64,
}

/// A page of the record list.
#[derive(Clone, Debug, Default)]
pub struct RecordPage {
    pub total: u64,
    pub records: Vec<RecordSummary>,
    pub counts: FilterCounts,
}

/// Who wrote a change: the person and the device, as far as the server knows them (changes of
/// the demo seed have neither).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Author {
    pub username: Option<String>,
    /// The account's full name, when it has one.
    pub full_name: Option<String>,
    pub device_name: Option<String>,
    pub device_id: Option<Uuid>,
    /// The account's role (`collector`, `supervisor`, `admin`): a supervisor's field change is
    /// a correction.
    pub role: Option<String>,
    /// `phone`, or `browser` for the supervisors' page (whose changes the server writes).
    pub device_kind: Option<String>,
}

/// One key a change wrote, the value it left (`None`: cleared, removed) and the value before
/// it, as far as the change knew.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HistoryOp {
    pub key: String,
    pub value: Option<fieldsync_core::Value>,
    pub old: Option<fieldsync_core::Value>,
}

/// What a change did, in the words a history uses (see `crate::history::kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Create,
    Edit,
    Correction,
    Review,
    Merge,
    Unmerge,
    Absorb,
    Release,
}

/// One change of a record's history.
#[derive(Clone, Debug, Serialize)]
pub struct HistoryEntry {
    #[serde(skip)]
    pub received_ms: i64,
    /// The `time` its device stamped on it (seconds by that device's clock; 0: none).
    #[serde(skip)]
    pub device_time_s: i64,
    pub kind: ChangeKind,
    pub author: Author,
    pub ops: Vec<HistoryOp>,
}

/// Where a candidate pair of duplicates stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PairState {
    /// Waiting for a supervisor.
    #[default]
    Open,
    /// "Not a duplicate": stays so whatever changes later.
    Dismissed,
    /// One record was merged into the other.
    Merged,
}

impl PairState {
    pub fn as_str(self) -> &'static str {
        match self {
            PairState::Open => "open",
            PairState::Dismissed => "dismissed",
            PairState::Merged => "merged",
        }
    }

    pub fn parse(s: &str) -> Option<PairState> {
        [PairState::Open, PairState::Dismissed, PairState::Merged]
            .into_iter()
            .find(|p| p.as_str() == s)
    }
}

/// Which candidate pairs to list.
#[derive(Clone, Debug, Default)]
pub struct DuplicateQuery {
    pub state: PairState,
    pub record_type: Option<RecordType>,
    /// Pairs with a record in one of these communes (already expanded across the merger).
    pub communes: Option<std::collections::BTreeSet<String>>,
    /// Only the pairs this record is in.
    pub record: Option<Uuid>,
    pub limit: u32,
    pub offset: u32,
}

/// Two records that may be the same woman or household, and why.
#[derive(Clone, Debug)]
pub struct DuplicatePair {
    pub a: MergedRecord,
    pub b: MergedRecord,
    pub reasons: Vec<fieldsync_core::dedup::MatchReason>,
    /// How alike the two are, 0 to 100 (`crate::duplicates::score`).
    pub score: i64,
    pub state: PairState,
    pub decided_by: Option<String>,
    pub decided_ms: Option<i64>,
    pub found_ms: i64,
}

/// A page of candidate pairs.
#[derive(Clone, Debug, Default)]
pub struct DuplicatePage {
    pub total: u64,
    pub pairs: Vec<DuplicatePair>,
}

/// A duplicate merged into a record, with the edits it received after its merge.
#[derive(Clone, Debug, Serialize)]
pub struct Absorbed {
    pub id: Uuid,
    pub title: String,
    pub edits_after_merge: Vec<fieldsync_core::record::EditAfterMerge>,
}

/// Which audit entries to read: those with `floor <= seq < before` that match every filter
/// given.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub before: i64,
    pub floor: i64,
    pub device: Option<Uuid>,
    /// Done by this account (or, for entries of no account, about it).
    pub username: Option<String>,
    pub action: Option<String>,
    /// About this record (its id as the target or in the detail).
    pub record: Option<Uuid>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// Entries about support cases too.
    pub with_sensitive: bool,
}

/// The audit action of a sync whose page carried changes of support cases.
pub const SYNC_CASES: &str = "sync_cases";

/// One line of the audit log.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AuditEntry {
    pub seq: i64,
    #[serde(skip)]
    pub at_ms: i64,
    pub user_id: Option<i64>,
    pub username: Option<String>,
    pub device_id: Option<Uuid>,
    pub action: String,
    pub target: Option<String>,
    pub detail: Option<String>,
    pub peer: Option<String>,
    /// About support cases: read only by accounts with sensitive access.
    pub sensitive: bool,
}

/// A device that support cases reached: delivered by its syncs (audited since schema 6) or
/// written on it.
#[derive(Clone, Debug, Serialize)]
pub struct SensitiveDevice {
    pub device_id: Uuid,
    pub device_name: String,
    pub username: String,
    /// `phone` or `browser`.
    pub kind: String,
    pub revoked: bool,
    /// Syncs that delivered changes of support cases to it.
    pub deliveries: u64,
    #[serde(skip)]
    pub first_delivery_ms: Option<i64>,
    #[serde(skip)]
    pub last_delivery_ms: Option<i64>,
    /// Support cases it wrote changes of (so it holds them, or held them).
    pub cases_written: u64,
}

impl MergedRecord {
    /// Whether `scope` may see this record; everything else answers as if it did not exist.
    pub fn visible_to(&self, scope: &Scope) -> bool {
        visible(
            scope,
            self.record_type,
            self.commune.as_deref(),
            self.sensitive,
        )
    }
}

pub use crate::access::visible;

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
    /// Clear an optional field (also resolves a conflict on it).
    ClearField { field: String },
}

/// Counts useful to operators and tests.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Stats {
    pub records: u64,
    pub changes: u64,
    pub held: u64,
    pub log_entries: u64,
}

/// A pushed change, decoded (under the size caps) before any storage work.
pub struct Pushed {
    pub record_id: Uuid,
    pub change: automerge::Change,
    pub bytes: Vec<u8>,
    /// Its author's signature, or the server's receipt (docs/sync-protocol.md §4.1).
    pub signature: [u8; fieldsync_core::signing::SIGNATURE_BYTES],
}

/// Decodes a request's pushed changes: the whole request is refused (and nothing written) if
/// one is not a valid change, has a wrong checksum, or is too large, or if there are too many.
pub fn decode_push(request: SyncRequest, max_changes: usize) -> StorageResult<Vec<Pushed>> {
    if request.push.len() > max_changes {
        return Err(StorageError::TooLarge(format!(
            "at most {max_changes} changes per request"
        )));
    }
    request
        .push
        .into_iter()
        .map(|entry| {
            let change =
                fieldsync_core::record::decode_change(&entry.bytes).map_err(|e| match e {
                    e @ (fieldsync_core::CoreError::ChangeTooLarge { .. }
                    | fieldsync_core::CoreError::ChangeTooManyOps { .. }) => {
                        StorageError::TooLarge(format!("record {}: {e}", entry.record_id))
                    }
                    e => StorageError::Invalid(format!("record {}: {e}", entry.record_id)),
                })?;
            Ok(Pushed {
                record_id: entry.record_id,
                change,
                bytes: entry.bytes,
                signature: entry.signature,
            })
        })
        .collect()
}

/// What the server did with a pushed batch.
#[derive(Default)]
pub struct PushOutcome {
    pub acked: Vec<[u8; 32]>,
    pub rejected: Vec<Rejection>,
    pub need: Vec<NeedEntry>,
}

/// A page of changes for a device.
pub struct PullPage {
    pub changes: Vec<ChangeEntry>,
    pub cursor: Cursor,
    pub more: bool,
    /// Distinct support cases the page carries changes of (the sync audits their delivery).
    pub sensitive_records: usize,
}

/// Everything the HTTP layer needs from storage, one trait per client: sync (`SyncStore`, the
/// narrow interface of `crate::sync::store`), accounts, the merged view, duplicates, audit and
/// administration. Implementations are blocking; handlers call them on the fixed worker pools
/// of `crate::workers`.
pub trait Storage:
    SyncStore
    + AccountStore
    + MergedStore
    + ExportStore
    + DuplicateStore
    + AuditStore
    + AdminStore
    + 'static
{
}

impl<T> Storage for T where
    T: SyncStore
        + AccountStore
        + MergedStore
        + ExportStore
        + DuplicateStore
        + AuditStore
        + AdminStore
        + 'static
{
}

/// Accounts, devices and sessions.
pub trait AccountStore: Send + Sync {
    fn create_user(&self, user: &NewUser, password_hash: &str) -> StorageResult<User>;
    fn user_by_name(&self, username: &str) -> StorageResult<Option<(User, String)>>;
    fn list_users(&self) -> StorageResult<Vec<User>>;
    /// Applies an admin's change to an account; disabling it revokes all its devices.
    fn update_user(&self, username: &str, update: &AccountUpdate) -> StorageResult<User>;
    /// Sets an account's password and, in the same transaction, ends every session and device
    /// token of it but `keep` (the session or phone a user changed their own password from).
    fn set_password(
        &self,
        username: &str,
        password_hash: &str,
        keep: Option<Uuid>,
    ) -> StorageResult<()>;
    /// Whether `username` has a device, not revoked, that writes under `actor`.
    fn account_has_actor(&self, username: &str, actor: Uuid) -> StorageResult<bool>;
    /// Enrols a device signing with `keys.public_key`, writing under the actor derived from it
    /// and under the older actors it claims. A device of the same user re-enrolling takes an
    /// actor over; one of another user cannot (a store copied between accounts): `Conflict`.
    /// An unproven old actor is taken over only from a device of the same account.
    fn enrol_device(
        &self,
        user_id: i64,
        name: &str,
        token_hash: &[u8],
        keys: Option<&DeviceKeys>,
    ) -> StorageResult<Device>;
    fn caller_by_token(&self, token_hash: &[u8]) -> StorageResult<Option<Caller>>;
    fn revoke_device(&self, device_id: Uuid) -> StorageResult<()>;
    fn list_devices(&self) -> StorageResult<Vec<Device>>;
    /// The devices `query` asks for, by username, at most `query.limit`.
    fn device_list(&self, query: &DeviceQuery) -> StorageResult<Vec<DeviceInfo>>;
    /// Notes that `device` synced at `now_ms` (written at most once a minute per device).
    fn note_sync(&self, device: Uuid, now_ms: i64) -> StorageResult<()>;
    /// Starts a session of the supervisors' page: a browser device with a CSRF token.
    fn create_session(
        &self,
        user_id: i64,
        token_hash: &[u8],
        csrf: &str,
        expires_ms: i64,
    ) -> StorageResult<Device>;
}

/// The merged view supervisors read, and what is derived from it.
pub trait MergedStore: Send + Sync {
    fn merged_record(&self, id: Uuid) -> StorageResult<Option<MergedRecord>>;
    /// Where each of `ids` leads after merges (only those that lead elsewhere).
    fn resolve_records(&self, ids: &[Uuid]) -> StorageResult<BTreeMap<Uuid, Uuid>>;
    /// A page of the records `scope` may see that match `query`.
    fn list_records(&self, scope: &Scope, query: &RecordQuery) -> StorageResult<RecordPage>;
    /// What plan progress indicators read of every record (see `crate::indicators::facts`).
    fn indicator_facts(&self) -> StorageResult<Vec<crate::indicators::Fact>>;
    /// The list rows of records by id, in the order given (unknown ids left out).
    fn record_summaries(&self, ids: &[Uuid]) -> StorageResult<Vec<RecordSummary>>;
    /// The review of a record, with what changed since its approval.
    fn record_review(&self, id: Uuid) -> StorageResult<Option<Review>>;
    /// Every change of a record, oldest first, with who made it and what it wrote.
    fn record_history(&self, id: Uuid) -> StorageResult<Vec<HistoryEntry>>;
    /// The person and device behind each Automerge actor (as written in conflicts).
    fn authors(&self, actors: &[String]) -> StorageResult<BTreeMap<String, Author>>;
}

/// A record as the exports write it: its merged row without what only its page shows.
#[derive(Clone, Debug)]
pub struct ExportRow {
    pub id: Uuid,
    pub commune: Option<String>,
    pub status: String,
    pub review: ReviewPhase,
    /// The record's `RecordView` as stored (`fields`, `sets`, ...).
    pub view: serde_json::Value,
    pub n_conflicts: u32,
    pub n_problems: u32,
    pub updated_ms: i64,
}

/// The record exports: the records the list's filters select, read a page at a time.
pub trait ExportStore: Send + Sync {
    /// Up to `limit` records of `record_type` that `scope` may see and `query` matches (its
    /// paging aside), with ids after `after`, in id order.
    fn export_page(
        &self,
        scope: &Scope,
        query: &RecordQuery,
        record_type: RecordType,
        after: Option<Uuid>,
        limit: u32,
    ) -> StorageResult<Vec<ExportRow>>;
    /// How many of the records an export of `query` carries are support cases (ever sensitive).
    fn export_sensitive_count(&self, scope: &Scope, query: &RecordQuery) -> StorageResult<u64>;
}

/// Candidate duplicates and the merges that resolve them.
pub trait DuplicateStore: Send + Sync {
    /// Candidate duplicate pairs `scope` may see (both records visible).
    fn list_duplicates(
        &self,
        scope: &Scope,
        query: &DuplicateQuery,
    ) -> StorageResult<DuplicatePage>;
    /// One candidate pair, whatever its state.
    fn duplicate_pair(&self, a: Uuid, b: Uuid) -> StorageResult<Option<DuplicatePair>>;
    /// Marks a pair "not a duplicate".
    fn dismiss_duplicate(&self, scope: &Scope, a: Uuid, b: Uuid, by: &str) -> StorageResult<()>;
    /// Merges `duplicate` into `keep` as changes written by `device`, taking over the fields
    /// `take` that `keep` lacks.
    fn merge_records(
        &self,
        device: Uuid,
        scope: &Scope,
        keep: Uuid,
        duplicate: Uuid,
        take: &[String],
        by: &str,
    ) -> StorageResult<()>;
    /// Undoes the merge of `duplicate`; returns the record it had been merged into.
    fn unmerge_record(&self, device: Uuid, scope: &Scope, duplicate: Uuid) -> StorageResult<Uuid>;
    /// The duplicates merged into `keep` that `scope` may see.
    fn absorbed_into(&self, keep: Uuid, scope: &Scope) -> StorageResult<Vec<Absorbed>>;
}

/// The audit log.
pub trait AuditStore: Send + Sync {
    /// Appends to the audit log (which nothing changes afterwards).
    fn audit(&self, entry: &AuditEntry) -> StorageResult<()>;
    /// Audit entries `filter` asks for, newest first, at most `limit`.
    fn list_audit(&self, filter: &AuditFilter, limit: u32) -> StorageResult<Vec<AuditEntry>>;
    /// One past the newest entry's number (1 for an empty log).
    fn audit_end(&self) -> StorageResult<i64>;
    /// The devices support cases reached, most recent delivery first.
    fn sensitive_devices(&self) -> StorageResult<Vec<SensitiveDevice>>;
}

/// Operating the database.
pub trait AdminStore: Send + Sync {
    /// Database-wide counts (support cases, held changes of unknown records and all).
    fn stats(&self) -> StorageResult<Stats>;
    /// The same counts over what `scope` may see: its records, their changes and held changes,
    /// and the log entries of its streams.
    fn scoped_stats(&self, scope: &Scope) -> StorageResult<Stats>;
    /// Registrations since `since_ms` by weeks of `week_ms`, and every account's last sync.
    fn activity(&self, since_ms: i64, week_ms: i64) -> StorageResult<Activity>;
    /// Whether the last write failed for lack of disk space (and none succeeded since).
    fn disk_full(&self) -> bool;
    /// Writes a consistent copy of the whole database to `path` while the server runs.
    fn backup(&self, path: &std::path::Path) -> StorageResult<()>;
}

/// Every storage trait, for code that calls a concrete backend's methods (the CLI, tests).
pub mod prelude {
    pub use super::{
        AccountStore, AdminStore, AuditStore, DuplicateStore, ExportStore, MergedStore, Storage,
    };
    pub use crate::sync::store::SyncStore;
    pub use crate::sync::OwnWrites;
}
