//! The narrow storage interface the sync steps run on: small operations inside one
//! transaction, each a row or two of a backend's tables. A backend implements these and
//! nothing of the sync rules; the rules live in `push.rs` and `pull.rs`.

use crate::scope::Scope;
use crate::storage::StorageResult;
use fieldsync_core::protocol::RejectCode;
use fieldsync_core::record::{EditAfterMerge, Review};
use fieldsync_core::signing::{DeviceKey, SIGNATURE_BYTES};
use fieldsync_core::{RecordType, RecordView};
use uuid::Uuid;

pub type Hash = [u8; 32];
pub type Signature = [u8; SIGNATURE_BYTES];

/// A record as stored: its document and where it stands (what scope and streams depend on).
#[derive(Clone, Debug)]
pub struct StoredRecord {
    pub snapshot: Vec<u8>,
    pub record_type: Option<RecordType>,
    pub commune: Option<String>,
    /// Ever a sensitive type.
    pub sensitive: bool,
}

/// Which device an actor's changes come from, and the key they are signed with (none for the
/// server's own actors and for actors bound before protocol 3).
#[derive(Clone, Debug)]
pub struct ActorBinding {
    pub device: Uuid,
    pub public_key: Option<[u8; 32]>,
}

/// An accepted change, as the change table keeps it.
#[derive(Clone, Debug)]
pub struct NewChange<'a> {
    pub hash: Hash,
    pub record_id: Uuid,
    pub bytes: &'a [u8],
    pub origin: Uuid,
    pub received_ms: i64,
    /// This server's signature of it, given back to every device that pulls it.
    pub receipt: Signature,
    /// Its author's signature, when the sender was its author.
    pub author_signature: Option<Signature>,
}

/// A change waiting for its dependencies.
#[derive(Clone, Debug)]
pub struct HeldChange {
    pub hash: Hash,
    pub record_id: Uuid,
    pub bytes: Vec<u8>,
    pub origin: Uuid,
    pub missing: Vec<Hash>,
    pub received_ms: i64,
    pub signature: Option<Signature>,
    /// It came with this server's receipt rather than its author's signature.
    pub vouched: bool,
}

/// What the derived views (merged view, duplicate keys, indicator facts) are rebuilt from
/// after a record changed.
pub struct RecordUpdate<'a> {
    pub view: &'a RecordView,
    pub review: &'a Review,
    pub merge_edits: &'a [EditAfterMerge],
    pub sensitive: bool,
    pub now_ms: i64,
}

/// One entry of a stream of the change log, with the change it points to.
#[derive(Clone, Debug)]
pub struct LogEntry {
    pub seq: i64,
    pub record_id: Uuid,
    pub bytes: Vec<u8>,
    pub origin: Uuid,
    pub receipt: Vec<u8>,
}

/// The operations of one write transaction of a sync. Everything a step does through one
/// value of this trait commits together or not at all.
pub trait SyncWrite {
    /// The record an accepted change belongs to.
    fn change_owner(&mut self, hash: &Hash) -> StorageResult<Option<Uuid>>;
    /// The record a held change belongs to.
    fn held_owner(&mut self, hash: &Hash) -> StorageResult<Option<Uuid>>;
    /// The remembered refusal of a change.
    fn refusal(&mut self, hash: &Hash) -> StorageResult<Option<RejectCode>>;
    fn remember_refusal(
        &mut self,
        record: Uuid,
        hash: &Hash,
        code: RejectCode,
    ) -> StorageResult<()>;
    /// Takes (and forgets) the note that `device`'s held change expired; whether there was one.
    fn take_expired(&mut self, hash: &Hash, device: Uuid) -> StorageResult<bool>;
    /// Moves held changes received before `cutoff_ms` to the expired notes.
    fn expire_held(&mut self, cutoff_ms: i64) -> StorageResult<()>;
    fn actor_binding(&mut self, actor: &[u8]) -> StorageResult<Option<ActorBinding>>;
    /// Binds an actor to a device for good (the server's own actors); a no-op if bound.
    fn bind_actor(&mut self, actor: &[u8], device: Uuid) -> StorageResult<()>;
    /// This database's signing key.
    fn server_key(&mut self) -> StorageResult<DeviceKey>;
    /// A record to write: a backend that has several writers locks it until commit.
    fn load_record(&mut self, id: Uuid) -> StorageResult<Option<StoredRecord>>;
    fn save_record(&mut self, id: Uuid, record: &StoredRecord) -> StorageResult<()>;
    /// The one hook for the views derived from a record (merged view, duplicates, indicators).
    fn refresh_views(&mut self, update: &RecordUpdate<'_>) -> StorageResult<()>;
    fn insert_change(&mut self, change: &NewChange<'_>) -> StorageResult<()>;
    /// Held changes and their bytes of every device of `device`'s account.
    fn held_of_account(&mut self, device: Uuid) -> StorageResult<(i64, i64)>;
    /// Holds a change; a no-op if it is held already.
    fn hold(&mut self, held: &HeldChange) -> StorageResult<()>;
    fn is_held(&mut self, hash: &Hash) -> StorageResult<bool>;
    fn held_of_record(&mut self, record: Uuid) -> StorageResult<Vec<HeldChange>>;
    fn unhold(&mut self, hash: &Hash) -> StorageResult<()>;
    /// The scope of a device's user (nothing for an unknown device).
    fn scope_of_device(&mut self, device: Uuid) -> StorageResult<Scope>;
    /// Appends to `stream` every change of the record it has not had yet, in acceptance order:
    /// a record's history enters a stream at most once, however often it moves.
    fn log_new_history(&mut self, record: Uuid, stream: &str) -> StorageResult<()>;
}

/// The reads of a pull, from one consistent state.
pub trait SyncRead {
    /// Every stream the log has (for callers whose scope is everything).
    fn streams(&mut self) -> StorageResult<Vec<String>>;
    /// Up to `limit` entries of `stream` after position `after`, in log order.
    fn log_after(&mut self, stream: &str, after: i64, limit: usize)
        -> StorageResult<Vec<LogEntry>>;
}

/// A backend's sync transactions.
pub trait SyncStore: Send + Sync {
    /// The database's identity, sent to phones and kept in their cursors.
    fn server_id(&self) -> [u8; 16];
    /// Runs `f` in one write transaction, committed when it returns `Ok`.
    fn write(
        &self,
        f: &mut dyn FnMut(&mut dyn SyncWrite) -> StorageResult<()>,
    ) -> StorageResult<()>;
    /// Runs `f` on one consistent read of the log.
    fn read(&self, f: &mut dyn FnMut(&mut dyn SyncRead) -> StorageResult<()>) -> StorageResult<()>;
}
