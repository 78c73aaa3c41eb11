//! The server's own writes (demo seed, supervisors' edits and merges): the actor they are
//! written under, and storing them through the push step like any device's change.

use super::push::push_own;
use super::store::{SyncStore, SyncWrite};
use crate::scope::Scope;
use crate::storage::{RecordEdit, StorageError, StorageResult};
use fieldsync_core::protocol::RejectCode;
use fieldsync_core::RecordDoc;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The actor the server writes under for `device` (a supervisor's session) in the database
/// `server_id`: after a restore, the server's own actors must not take sequence numbers that
/// changes the restore lost (and phones may give back) already have.
pub fn own_actor(device: Uuid, server_id: &[u8; 16]) -> Uuid {
    let server_id = Uuid::from_bytes(*server_id).to_string();
    let digest = Sha256::new()
        .chain_update(b"fieldsync server actor v1")
        .chain_update(device.as_bytes())
        .chain_update(server_id.as_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// A record's document to write a change of the server's into, as `device`.
pub fn doc_for_writing(
    tx: &mut dyn SyncWrite,
    server_id: &[u8; 16],
    id: Uuid,
    device: Uuid,
) -> StorageResult<RecordDoc> {
    let stored = tx
        .load_record(id)?
        .ok_or_else(|| StorageError::NotFound(format!("record {id}")))?;
    Ok(RecordDoc::load(
        id,
        &stored.snapshot,
        own_actor(device, server_id),
    )?)
}

/// Stores changes made on the server (the demo seed) as `device`; none may be refused.
pub fn ingest_own<S: SyncStore + ?Sized>(
    store: &S,
    device: Uuid,
    changes: &[(Uuid, Vec<u8>)],
    now_ms: i64,
) -> StorageResult<()> {
    let changes: Vec<(Uuid, &[u8])> = changes.iter().map(|(id, b)| (*id, &b[..])).collect();
    super::write(store, |tx| {
        match push_own(tx, device, &Scope::everything(), &changes, now_ms)? {
            Some(r) => Err(StorageError::Invalid(format!(
                "record {} refused",
                r.record_id
            ))),
            None => Ok(()),
        }
    })
}

/// A supervisor's edit, written as a change of the supervisor's device and ingested like any.
pub fn edit_record<S: SyncStore + ?Sized>(
    store: &S,
    device: Uuid,
    scope: &Scope,
    record_id: Uuid,
    edit: &RecordEdit,
    now_ms: i64,
) -> StorageResult<()> {
    let server_id = store.server_id();
    super::write(store, |tx| {
        let mut doc = doc_for_writing(tx, &server_id, record_id, device)?;
        let change = match edit {
            RecordEdit::Review { state, comment } => doc.set_review(*state, comment.as_deref())?,
            RecordEdit::SetField { field, value } => doc.set_field(field, value)?,
            RecordEdit::ClearField { field } => doc.clear_field(field)?,
        };
        let Some(change) = change else {
            return Ok(());
        };
        let refusal = push_own(tx, device, scope, &[(record_id, &change.bytes)], now_ms)?;
        match refusal.map(|r| r.code) {
            None => Ok(()),
            Some(RejectCode::OutOfScope) => Err(StorageError::Invalid(
                "the edit would take the record outside your areas".into(),
            )),
            Some(RejectCode::TooLarge) => Err(StorageError::TooLarge(
                "the record has reached its size limit".into(),
            )),
            Some(code) => Err(StorageError::Invalid(format!(
                "the edit was refused ({code:?})"
            ))),
        }
    })
}

/// The server's own writes as methods of any store, at the server's clock.
pub trait OwnWrites {
    /// See [`ingest_own`].
    fn ingest_trusted(&self, device: Uuid, changes: &[(Uuid, Vec<u8>)]) -> StorageResult<()>;
    /// See [`edit_record`].
    fn edit_record(
        &self,
        device: Uuid,
        scope: &Scope,
        record_id: Uuid,
        edit: &RecordEdit,
    ) -> StorageResult<()>;
}

impl<T: SyncStore + ?Sized> OwnWrites for T {
    fn ingest_trusted(&self, device: Uuid, changes: &[(Uuid, Vec<u8>)]) -> StorageResult<()> {
        ingest_own(self, device, changes, crate::storage::now_ms())
    }

    fn edit_record(
        &self,
        device: Uuid,
        scope: &Scope,
        record_id: Uuid,
        edit: &RecordEdit,
    ) -> StorageResult<()> {
        edit_record(
            self,
            device,
            scope,
            record_id,
            edit,
            crate::storage::now_ms(),
        )
    }
}
