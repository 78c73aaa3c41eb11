//! The sync steps' storage operations (`sync::store`) on PostgreSQL, with several writers (one
//! or more per server instance). Every sync write transaction first takes one advisory lock,
//! held until it commits: log sequence numbers are then taken in commit order, so a phone that
//! pulled up to `seq` never misses an entry committed later with a smaller one. Records being
//! written are also row-locked (`FOR UPDATE`), and inserts rely on unique keys
//! (`ON CONFLICT DO NOTHING`). A pull reads one REPEATABLE READ snapshot.

use super::db::Db;
use super::{id_bytes, merged, retryable, schema, uuid_col, PostgresStorage};
use crate::indicators::Fact;
use crate::scope::Scope;
use crate::storage::{StorageError, StorageResult};
use crate::sync::store::{
    ActorBinding, Hash, HeldChange, LogEntry, NewChange, RecordUpdate, StoredRecord, SyncRead,
    SyncStore, SyncWrite,
};
use fieldsync_core::protocol::RejectCode;
use fieldsync_core::signing::DeviceKey;
use fieldsync_core::RecordType;
use std::sync::atomic::{AtomicI64, Ordering};
use uuid::Uuid;

/// The advisory lock every sync write transaction of every instance takes first.
pub const SYNC_WRITE_LOCK: i64 = 0x6669_656c_6473_0002;

/// Times a sync write transaction is run in all when it loses a race (serialization failure,
/// deadlock) before the error is given up.
const ATTEMPTS: usize = 4;

/// A write transaction of the sync steps.
pub struct PgSyncTx<'a, 'b> {
    pub(super) db: &'a Db<'b>,
    /// When expired held changes were last cleared (housekeeping at most once a minute).
    last_expiry: Option<&'a AtomicI64>,
}

impl<'a, 'b> PgSyncTx<'a, 'b> {
    pub fn new(db: &'a Db<'b>) -> PgSyncTx<'a, 'b> {
        PgSyncTx {
            db,
            last_expiry: None,
        }
    }
}

fn signature_opt(v: Option<Vec<u8>>) -> Option<[u8; 64]> {
    v.and_then(|s| <[u8; 64]>::try_from(s.as_slice()).ok())
}

impl PostgresStorage {
    /// Runs `f` in a sync write transaction: READ COMMITTED under the sync writes' advisory
    /// lock, run again (up to [`ATTEMPTS`] times) when it loses a race.
    pub(super) fn sync_write<T>(
        &self,
        mut f: impl FnMut(&Db<'_>) -> StorageResult<T>,
    ) -> StorageResult<T> {
        let mut attempt = 1;
        loop {
            let result = self.transaction("BEGIN ISOLATION LEVEL READ COMMITTED", |db| {
                db.exec("SELECT pg_advisory_xact_lock($1)", &[&SYNC_WRITE_LOCK])?;
                f(db)
            });
            match result {
                Err(e) if retryable(&e) && attempt < ATTEMPTS => attempt += 1,
                result => {
                    self.note_disk(&result);
                    return result;
                }
            }
        }
    }
}

impl SyncWrite for PgSyncTx<'_, '_> {
    fn change_owner(&mut self, hash: &Hash) -> StorageResult<Option<Uuid>> {
        owner(
            self.db,
            "SELECT record_id FROM changes WHERE hash = $1",
            hash,
        )
    }

    fn held_owner(&mut self, hash: &Hash) -> StorageResult<Option<Uuid>> {
        owner(self.db, "SELECT record_id FROM held WHERE hash = $1", hash)
    }

    fn refusal(&mut self, hash: &Hash) -> StorageResult<Option<RejectCode>> {
        let code: Option<i64> = self
            .db
            .opt("SELECT code FROM refused WHERE hash = $1", &[&&hash[..]])?
            .map(|r| r.try_get(0))
            .transpose()?;
        Ok(code
            .and_then(|c| u8::try_from(c).ok())
            .and_then(|c| RejectCode::from_u8(c).ok()))
    }

    fn remember_refusal(
        &mut self,
        record: Uuid,
        hash: &Hash,
        code: RejectCode,
    ) -> StorageResult<()> {
        self.db.exec(
            "INSERT INTO refused (hash, record_id, code) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
            &[&&hash[..], &id_bytes(record), &(code as u8 as i64)],
        )?;
        Ok(())
    }

    fn take_expired(&mut self, hash: &Hash, device: Uuid) -> StorageResult<bool> {
        let n = self.db.exec(
            "DELETE FROM expired WHERE hash = $1 AND origin_device = $2",
            &[&&hash[..], &id_bytes(device)],
        )?;
        Ok(n > 0)
    }

    fn expire_held(&mut self, cutoff_ms: i64) -> StorageResult<()> {
        if let Some(last) = self.last_expiry {
            let now = cutoff_ms + crate::sync::HELD_TTL_MS;
            if now - last.load(Ordering::Relaxed) < 60_000 {
                return Ok(());
            }
            last.store(now, Ordering::Relaxed);
        }
        self.db.exec(
            "INSERT INTO expired (hash, record_id, origin_device)
             SELECT hash, record_id, origin_device FROM held WHERE received_ms < $1
             ON CONFLICT DO NOTHING",
            &[&cutoff_ms],
        )?;
        self.db
            .exec("DELETE FROM held WHERE received_ms < $1", &[&cutoff_ms])?;
        Ok(())
    }

    fn actor_binding(&mut self, actor: &[u8]) -> StorageResult<Option<ActorBinding>> {
        let Some(row) = self.db.opt(
            "SELECT device_id, public_key FROM actors WHERE actor = $1",
            &[&actor],
        )?
        else {
            return Ok(None);
        };
        let key: Option<Vec<u8>> = row.try_get(1)?;
        Ok(Some(ActorBinding {
            device: uuid_col(row.try_get(0)?)?,
            public_key: key.and_then(|k| <[u8; 32]>::try_from(k.as_slice()).ok()),
        }))
    }

    fn bind_actor(&mut self, actor: &[u8], device: Uuid) -> StorageResult<()> {
        self.db.exec(
            "INSERT INTO actors (actor, device_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&actor, &id_bytes(device)],
        )?;
        Ok(())
    }

    fn server_key(&mut self) -> StorageResult<DeviceKey> {
        schema::signing_key(self.db)
    }

    fn load_record(&mut self, id: Uuid) -> StorageResult<Option<StoredRecord>> {
        let Some(row) = self.db.opt(
            "SELECT snapshot, record_type, commune, sensitive FROM records WHERE id = $1
             FOR UPDATE",
            &[&id_bytes(id)],
        )?
        else {
            return Ok(None);
        };
        let record_type: Option<String> = row.try_get(1)?;
        Ok(Some(StoredRecord {
            snapshot: row.try_get(0)?,
            record_type: record_type.as_deref().and_then(RecordType::parse),
            commune: row.try_get(2)?,
            sensitive: row.try_get(3)?,
        }))
    }

    fn save_record(&mut self, id: Uuid, record: &StoredRecord) -> StorageResult<()> {
        self.db.exec(
            "INSERT INTO records (id, record_type, commune, snapshot, sensitive)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE SET record_type = excluded.record_type,
               commune = excluded.commune, snapshot = excluded.snapshot,
               sensitive = excluded.sensitive",
            &[
                &id_bytes(id),
                &record.record_type.map(RecordType::as_str),
                &record.commune,
                &record.snapshot,
                &record.sensitive,
            ],
        )?;
        Ok(())
    }

    fn refresh_views(&mut self, update: &RecordUpdate<'_>) -> StorageResult<()> {
        merged::refresh(
            self.db,
            update.view,
            update.review,
            update.merge_edits,
            update.sensitive,
            update.now_ms,
        )?;
        let fact = Fact::from_view(update.view, update.review.state, update.sensitive);
        merged::refresh_facts(self.db, &fact)
    }

    fn insert_change(&mut self, change: &NewChange<'_>) -> StorageResult<()> {
        self.db.exec(
            "INSERT INTO changes (hash, record_id, bytes, origin_device, received_ms, receipt,
                                  author_signature)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &&change.hash[..],
                &id_bytes(change.record_id),
                &change.bytes,
                &id_bytes(change.origin),
                &change.received_ms,
                &&change.receipt[..],
                &change.author_signature.as_ref().map(|s| &s[..]),
            ],
        )?;
        // What the administration shows of devices and registrations, counted as they arrive.
        self.db.exec(
            "UPDATE devices SET changes_sent = changes_sent + 1 WHERE id = $1",
            &[&id_bytes(change.origin)],
        )?;
        self.db.exec(
            "INSERT INTO record_origin (record_id, device_id, at_ms) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
            &[
                &id_bytes(change.record_id),
                &id_bytes(change.origin),
                &change.received_ms,
            ],
        )?;
        Ok(())
    }

    fn held_of_account(&mut self, device: Uuid) -> StorageResult<(i64, i64)> {
        let row = self.db.one(
            "SELECT COUNT(*), COALESCE(SUM(length(h.bytes)), 0)::BIGINT FROM held h
             WHERE h.origin_device = $1 OR h.origin_device IN (SELECT id FROM devices
                 WHERE user_id = (SELECT user_id FROM devices WHERE id = $1))",
            &[&id_bytes(device)],
        )?;
        Ok((row.try_get(0)?, row.try_get(1)?))
    }

    fn hold(&mut self, held: &HeldChange) -> StorageResult<()> {
        let missing: Vec<u8> = held.missing.iter().flatten().copied().collect();
        self.db.exec(
            "INSERT INTO held (hash, record_id, bytes, origin_device, missing, received_ms,
                               signature, vouched)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
            &[
                &&held.hash[..],
                &id_bytes(held.record_id),
                &held.bytes,
                &id_bytes(held.origin),
                &missing,
                &held.received_ms,
                &held.signature.as_ref().map(|s| &s[..]),
                &held.vouched,
            ],
        )?;
        Ok(())
    }

    fn is_held(&mut self, hash: &Hash) -> StorageResult<bool> {
        Ok(self
            .db
            .opt("SELECT 1 FROM held WHERE hash = $1", &[&&hash[..]])?
            .is_some())
    }

    fn held_of_record(&mut self, record: Uuid) -> StorageResult<Vec<HeldChange>> {
        let rows = self.db.query(
            "SELECT hash, bytes, origin_device, missing, received_ms, signature, vouched
             FROM held WHERE record_id = $1",
            &[&id_bytes(record)],
        )?;
        rows.into_iter()
            .map(|r| {
                let hash: Vec<u8> = r.try_get(0)?;
                let missing: Vec<u8> = r.try_get(3)?;
                Ok(HeldChange {
                    hash: hash
                        .try_into()
                        .map_err(|_| StorageError::Corrupt("held change hash".into()))?,
                    record_id: record,
                    bytes: r.try_get(1)?,
                    origin: uuid_col(r.try_get(2)?)?,
                    missing: missing
                        .chunks_exact(32)
                        .filter_map(|c| c.try_into().ok())
                        .collect(),
                    received_ms: r.try_get(4)?,
                    signature: signature_opt(r.try_get(5)?),
                    vouched: r.try_get(6)?,
                })
            })
            .collect()
    }

    fn unhold(&mut self, hash: &Hash) -> StorageResult<()> {
        self.db
            .exec("DELETE FROM held WHERE hash = $1", &[&&hash[..]])?;
        Ok(())
    }

    fn scope_of_device(&mut self, device: Uuid) -> StorageResult<Scope> {
        Ok(super::accounts::user_of_device(self.db, device)?
            .map(|u| Scope::for_user(&u))
            .unwrap_or_default())
    }

    fn log_new_history(&mut self, record: Uuid, stream: &str) -> StorageResult<()> {
        let id = id_bytes(record);
        let upto: i64 = match self.db.opt(
            "SELECT upto FROM record_streams WHERE record_id = $1 AND stream = $2",
            &[&id, &stream],
        )? {
            Some(row) => row.try_get(0)?,
            None => 0,
        };
        self.db.exec(
            "INSERT INTO log (stream, record_id, hash, origin_device)
             SELECT $1::TEXT, record_id, hash, origin_device FROM changes
             WHERE record_id = $2 AND seq > $3 ORDER BY seq",
            &[&stream, &id, &upto],
        )?;
        self.db.exec(
            "INSERT INTO record_streams (record_id, stream, upto)
             SELECT $1::BYTEA, $2::TEXT, MAX(seq) FROM changes WHERE record_id = $1::BYTEA
             ON CONFLICT (record_id, stream) DO UPDATE SET upto = excluded.upto",
            &[&id, &stream],
        )?;
        Ok(())
    }
}

fn owner(db: &Db<'_>, sql: &str, hash: &Hash) -> StorageResult<Option<Uuid>> {
    db.opt(sql, &[&&hash[..]])?
        .map(|r| uuid_col(r.try_get(0)?))
        .transpose()
}

/// A pull's reads, inside one REPEATABLE READ transaction.
struct PgLog<'a, 'b> {
    db: &'a Db<'b>,
}

impl SyncRead for PgLog<'_, '_> {
    fn streams(&mut self) -> StorageResult<Vec<String>> {
        let rows = self
            .db
            .query("SELECT DISTINCT stream FROM log ORDER BY stream", &[])?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    fn log_after(
        &mut self,
        stream: &str,
        after: i64,
        limit: usize,
    ) -> StorageResult<Vec<LogEntry>> {
        let rows = self.db.query(
            "SELECT l.seq, l.record_id, c.bytes, l.origin_device, c.receipt
             FROM log l JOIN changes c ON c.hash = l.hash
             WHERE l.stream = $1 AND l.seq > $2 ORDER BY l.seq LIMIT $3",
            &[&stream, &after, &(limit as i64)],
        )?;
        rows.into_iter()
            .map(|r| {
                let receipt: Option<Vec<u8>> = r.try_get(4)?;
                Ok(LogEntry {
                    seq: r.try_get(0)?,
                    record_id: uuid_col(r.try_get(1)?)?,
                    bytes: r.try_get(2)?,
                    origin: uuid_col(r.try_get(3)?)?,
                    receipt: receipt.unwrap_or_default(),
                })
            })
            .collect()
    }
}

impl SyncStore for PostgresStorage {
    fn server_id(&self) -> [u8; 16] {
        self.server_id
    }

    fn write(
        &self,
        f: &mut dyn FnMut(&mut dyn SyncWrite) -> StorageResult<()>,
    ) -> StorageResult<()> {
        self.sync_write(|db| {
            let mut tx = PgSyncTx {
                db,
                last_expiry: Some(&self.last_expiry),
            };
            f(&mut tx)
        })
    }

    fn read(&self, f: &mut dyn FnMut(&mut dyn SyncRead) -> StorageResult<()>) -> StorageResult<()> {
        self.transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", |db| {
            f(&mut PgLog { db })
        })
    }
}
