//! A sync store in memory, for tests of the sync steps alone (the in-memory pair of
//! docs/architecture.md): the same operations as the database backends, with whole-store
//! transactions (a write works on a copy that replaces the store when it commits).

use super::store::{
    ActorBinding, Hash, HeldChange, LogEntry, NewChange, RecordUpdate, StoredRecord, SyncRead,
    SyncStore, SyncWrite,
};
use crate::scope::Scope;
use crate::storage::{StorageError, StorageResult, User};
use fieldsync_core::protocol::RejectCode;
use fieldsync_core::signing::DeviceKey;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use uuid::Uuid;

/// An accepted change: hash, record, bytes, origin device, receipt.
type ChangeRow = (Hash, Uuid, Vec<u8>, Uuid, Vec<u8>);

#[derive(Clone, Default)]
struct Tables {
    changes: Vec<ChangeRow>,
    change_index: BTreeMap<Hash, usize>,
    refused: BTreeMap<Hash, RejectCode>,
    expired: BTreeSet<(Hash, Uuid)>,
    held: BTreeMap<Hash, HeldChange>,
    actors: BTreeMap<Vec<u8>, ActorBinding>,
    records: BTreeMap<Uuid, StoredRecord>,
    /// Per stream: (log seq, index into `changes`).
    log: BTreeMap<String, Vec<(i64, usize)>>,
    next_seq: i64,
    record_streams: BTreeMap<(Uuid, String), usize>,
    /// Device → (account, user).
    devices: BTreeMap<Uuid, (i64, User)>,
    /// How many times each record's views were refreshed (what a backend's merged view,
    /// duplicate keys and indicator facts would see).
    refreshed: BTreeMap<Uuid, u64>,
}

/// An in-memory [`SyncStore`].
pub struct MemoryStore {
    server_id: [u8; 16],
    seed: [u8; 32],
    tables: Mutex<Tables>,
    /// Every transaction in the order it ended: `"write"` (committed), `"rollback"`, `"read"`.
    journal: Mutex<Vec<&'static str>>,
}

impl MemoryStore {
    pub fn new(server_id: [u8; 16], key_seed: [u8; 32]) -> MemoryStore {
        MemoryStore {
            server_id,
            seed: key_seed,
            tables: Mutex::new(Tables::default()),
            journal: Mutex::new(Vec::new()),
        }
    }

    /// A copy of this store under a new identity, as a backup restored elsewhere would be.
    pub fn restored_copy(&self, server_id: [u8; 16]) -> MemoryStore {
        MemoryStore {
            server_id,
            seed: self.seed,
            tables: Mutex::new(self.lock().clone()),
            journal: Mutex::new(Vec::new()),
        }
    }

    /// Enrols a device of `user`, signing with `public_key` under `actor`.
    pub fn enrol(&self, device: Uuid, user: User, actor: Uuid, public_key: [u8; 32]) {
        let mut t = self.lock();
        let account = user.id;
        t.devices.insert(device, (account, user));
        t.actors.insert(
            actor.as_bytes().to_vec(),
            ActorBinding {
                device,
                public_key: Some(public_key),
            },
        );
    }

    /// Hashes of every accepted change, in acceptance order.
    pub fn accepted(&self) -> Vec<Hash> {
        self.lock().changes.iter().map(|c| c.0).collect()
    }

    /// The stored snapshot of a record.
    pub fn snapshot(&self, id: Uuid) -> Option<Vec<u8>> {
        self.lock().records.get(&id).map(|r| r.snapshot.clone())
    }

    /// Every record stored.
    pub fn record_ids(&self) -> Vec<Uuid> {
        self.lock().records.keys().copied().collect()
    }

    /// Held changes waiting now.
    pub fn held(&self) -> usize {
        self.lock().held.len()
    }

    /// The transactions so far, in the order they ended.
    pub fn journal(&self) -> Vec<&'static str> {
        self.journal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn note(&self, what: &'static str) {
        self.journal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(what);
    }
}

struct MemoryTx<'a> {
    t: &'a mut Tables,
    seed: [u8; 32],
}

impl SyncWrite for MemoryTx<'_> {
    fn change_owner(&mut self, hash: &Hash) -> StorageResult<Option<Uuid>> {
        Ok(self.t.change_index.get(hash).map(|&i| self.t.changes[i].1))
    }

    fn held_owner(&mut self, hash: &Hash) -> StorageResult<Option<Uuid>> {
        Ok(self.t.held.get(hash).map(|h| h.record_id))
    }

    fn refusal(&mut self, hash: &Hash) -> StorageResult<Option<RejectCode>> {
        Ok(self.t.refused.get(hash).copied())
    }

    fn remember_refusal(
        &mut self,
        _record: Uuid,
        hash: &Hash,
        code: RejectCode,
    ) -> StorageResult<()> {
        self.t.refused.entry(*hash).or_insert(code);
        Ok(())
    }

    fn take_expired(&mut self, hash: &Hash, device: Uuid) -> StorageResult<bool> {
        Ok(self.t.expired.remove(&(*hash, device)))
    }

    fn expire_held(&mut self, cutoff_ms: i64) -> StorageResult<()> {
        let gone: Vec<Hash> = self
            .t
            .held
            .values()
            .filter(|h| h.received_ms < cutoff_ms)
            .map(|h| h.hash)
            .collect();
        for hash in gone {
            if let Some(h) = self.t.held.remove(&hash) {
                self.t.expired.insert((hash, h.origin));
            }
        }
        Ok(())
    }

    fn actor_binding(&mut self, actor: &[u8]) -> StorageResult<Option<ActorBinding>> {
        Ok(self.t.actors.get(actor).cloned())
    }

    fn bind_actor(&mut self, actor: &[u8], device: Uuid) -> StorageResult<()> {
        self.t.actors.entry(actor.to_vec()).or_insert(ActorBinding {
            device,
            public_key: None,
        });
        Ok(())
    }

    fn server_key(&mut self) -> StorageResult<DeviceKey> {
        Ok(DeviceKey::from_seed(&self.seed))
    }

    fn load_record(&mut self, id: Uuid) -> StorageResult<Option<StoredRecord>> {
        Ok(self.t.records.get(&id).cloned())
    }

    fn save_record(&mut self, id: Uuid, record: &StoredRecord) -> StorageResult<()> {
        self.t.records.insert(id, record.clone());
        Ok(())
    }

    fn refresh_views(&mut self, update: &RecordUpdate<'_>) -> StorageResult<()> {
        *self.t.refreshed.entry(update.view.id).or_default() += 1;
        Ok(())
    }

    fn insert_change(&mut self, change: &NewChange<'_>) -> StorageResult<()> {
        if self.t.change_index.contains_key(&change.hash) {
            return Err(StorageError::Conflict("change stored twice".into()));
        }
        self.t
            .change_index
            .insert(change.hash, self.t.changes.len());
        self.t.changes.push((
            change.hash,
            change.record_id,
            change.bytes.to_vec(),
            change.origin,
            change.receipt.to_vec(),
        ));
        Ok(())
    }

    fn held_of_account(&mut self, device: Uuid) -> StorageResult<(i64, i64)> {
        let account = self.t.devices.get(&device).map(|d| d.0);
        let same = |origin: &Uuid| {
            *origin == device
                || account.is_some() && self.t.devices.get(origin).map(|d| d.0) == account
        };
        let held: Vec<&HeldChange> = self.t.held.values().filter(|h| same(&h.origin)).collect();
        Ok((
            held.len() as i64,
            held.iter().map(|h| h.bytes.len() as i64).sum(),
        ))
    }

    fn hold(&mut self, held: &HeldChange) -> StorageResult<()> {
        self.t.held.entry(held.hash).or_insert_with(|| held.clone());
        Ok(())
    }

    fn is_held(&mut self, hash: &Hash) -> StorageResult<bool> {
        Ok(self.t.held.contains_key(hash))
    }

    fn held_of_record(&mut self, record: Uuid) -> StorageResult<Vec<HeldChange>> {
        Ok(self
            .t
            .held
            .values()
            .filter(|h| h.record_id == record)
            .cloned()
            .collect())
    }

    fn unhold(&mut self, hash: &Hash) -> StorageResult<()> {
        self.t.held.remove(hash);
        Ok(())
    }

    fn scope_of_device(&mut self, device: Uuid) -> StorageResult<Scope> {
        Ok(self
            .t
            .devices
            .get(&device)
            .map(|(_, user)| Scope::for_user(user))
            .unwrap_or_default())
    }

    fn log_new_history(&mut self, record: Uuid, stream: &str) -> StorageResult<()> {
        let key = (record, stream.to_owned());
        let upto = self.t.record_streams.get(&key).copied().unwrap_or(0);
        let new: Vec<usize> = (upto..self.t.changes.len())
            .filter(|&i| self.t.changes[i].1 == record)
            .collect();
        for i in new {
            self.t.next_seq += 1;
            let seq = self.t.next_seq;
            self.t
                .log
                .entry(stream.to_owned())
                .or_default()
                .push((seq, i));
        }
        self.t.record_streams.insert(key, self.t.changes.len());
        Ok(())
    }
}

impl SyncRead for Tables {
    fn streams(&mut self) -> StorageResult<Vec<String>> {
        Ok(self.log.keys().cloned().collect())
    }

    fn log_after(
        &mut self,
        stream: &str,
        after: i64,
        limit: usize,
    ) -> StorageResult<Vec<LogEntry>> {
        let Some(entries) = self.log.get(stream) else {
            return Ok(Vec::new());
        };
        Ok(entries
            .iter()
            .filter(|(seq, _)| *seq > after)
            .take(limit)
            .map(|&(seq, i)| {
                let (_, record_id, bytes, origin, receipt) = &self.changes[i];
                LogEntry {
                    seq,
                    record_id: *record_id,
                    bytes: bytes.clone(),
                    origin: *origin,
                    receipt: receipt.clone(),
                }
            })
            .collect())
    }
}

impl SyncStore for MemoryStore {
    fn server_id(&self) -> [u8; 16] {
        self.server_id
    }

    fn write(
        &self,
        f: &mut dyn FnMut(&mut dyn SyncWrite) -> StorageResult<()>,
    ) -> StorageResult<()> {
        let mut tables = self.lock();
        let mut copy = tables.clone();
        let result = f(&mut MemoryTx {
            t: &mut copy,
            seed: self.seed,
        });
        match result {
            Ok(()) => {
                *tables = copy;
                self.note("write");
            }
            Err(_) => self.note("rollback"),
        }
        result
    }

    fn read(&self, f: &mut dyn FnMut(&mut dyn SyncRead) -> StorageResult<()>) -> StorageResult<()> {
        // A snapshot, as a database read transaction sees one.
        let mut snapshot = self.lock().clone();
        let result = f(&mut snapshot);
        self.note("read");
        result
    }
}
