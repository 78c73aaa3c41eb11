//! The sync steps' storage operations (`sync::store`) on SQLite: one writer connection, so a
//! write transaction is serialised with every other and the log's `AUTOINCREMENT` order is
//! commit order; pulls read a WAL snapshot on a reader connection.

use super::{accounts, facts, merged, uuid_col, SqliteStorage};
use crate::indicators::Fact;
use crate::scope::Scope;
use crate::storage::{StorageError, StorageResult};
use crate::sync::store::{
    ActorBinding, Hash, HeldChange, LogEntry, NewChange, RecordUpdate, StoredRecord, SyncRead,
    SyncStore, SyncWrite,
};
use fieldsync_core::protocol::RejectCode;
use fieldsync_core::signing::DeviceKey;
use fieldsync_core::{RecordDoc, RecordType};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use std::sync::atomic::{AtomicI64, Ordering};
use uuid::Uuid;

/// A write transaction of the sync steps.
pub struct SqliteSyncTx<'a> {
    tx: &'a Transaction<'a>,
    /// When expired held changes were last cleared (housekeeping at most once a minute).
    last_expiry: Option<&'a AtomicI64>,
}

impl<'a> SqliteSyncTx<'a> {
    pub fn new(tx: &'a Transaction<'a>) -> SqliteSyncTx<'a> {
        SqliteSyncTx {
            tx,
            last_expiry: None,
        }
    }
}

fn hash_opt(v: Option<Vec<u8>>) -> Option<[u8; 64]> {
    v.and_then(|s| <[u8; 64]>::try_from(s.as_slice()).ok())
}

impl SyncWrite for SqliteSyncTx<'_> {
    fn change_owner(&mut self, hash: &Hash) -> StorageResult<Option<Uuid>> {
        owner(self.tx, "changes", hash)
    }

    fn held_owner(&mut self, hash: &Hash) -> StorageResult<Option<Uuid>> {
        owner(self.tx, "held", hash)
    }

    fn refusal(&mut self, hash: &Hash) -> StorageResult<Option<RejectCode>> {
        let code: Option<u8> = self
            .tx
            .prepare_cached("SELECT code FROM refused WHERE hash = ?1")?
            .query_row([&hash[..]], |r| r.get(0))
            .optional()?;
        Ok(code.and_then(|c| RejectCode::from_u8(c).ok()))
    }

    fn remember_refusal(
        &mut self,
        record: Uuid,
        hash: &Hash,
        code: RejectCode,
    ) -> StorageResult<()> {
        self.tx.execute(
            "INSERT OR IGNORE INTO refused (hash, record_id, code) VALUES (?1, ?2, ?3)",
            params![&hash[..], record.as_bytes(), code as u8],
        )?;
        Ok(())
    }

    fn take_expired(&mut self, hash: &Hash, device: Uuid) -> StorageResult<bool> {
        let n = self.tx.execute(
            "DELETE FROM expired WHERE hash = ?1 AND origin_device = ?2",
            params![&hash[..], device.as_bytes()],
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
        self.tx.execute(
            "INSERT OR IGNORE INTO expired (hash, record_id, origin_device)
             SELECT hash, record_id, origin_device FROM held WHERE received_ms < ?1",
            [cutoff_ms],
        )?;
        self.tx
            .execute("DELETE FROM held WHERE received_ms < ?1", [cutoff_ms])?;
        Ok(())
    }

    fn actor_binding(&mut self, actor: &[u8]) -> StorageResult<Option<ActorBinding>> {
        let bound: Option<(Vec<u8>, Option<Vec<u8>>)> = self
            .tx
            .prepare_cached("SELECT device_id, public_key FROM actors WHERE actor = ?1")?
            .query_row([actor], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        bound
            .map(|(device, key)| {
                Ok(ActorBinding {
                    device: uuid_col(device)?,
                    public_key: key.and_then(|k| <[u8; 32]>::try_from(k.as_slice()).ok()),
                })
            })
            .transpose()
    }

    fn bind_actor(&mut self, actor: &[u8], device: Uuid) -> StorageResult<()> {
        self.tx.execute(
            "INSERT OR IGNORE INTO actors (actor, device_id) VALUES (?1, ?2)",
            params![actor, device.as_bytes()],
        )?;
        Ok(())
    }

    fn server_key(&mut self) -> StorageResult<DeviceKey> {
        super::signing_key(self.tx)
    }

    fn load_record(&mut self, id: Uuid) -> StorageResult<Option<StoredRecord>> {
        load_record(self.tx, id)
    }

    fn save_record(&mut self, id: Uuid, record: &StoredRecord) -> StorageResult<()> {
        self.tx.prepare_cached(
            "INSERT INTO records (id, record_type, commune, snapshot, sensitive) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(id) DO UPDATE SET record_type = excluded.record_type,
               commune = excluded.commune, snapshot = excluded.snapshot, sensitive = excluded.sensitive",
        )?
        .execute(params![
            id.as_bytes(),
            record.record_type.map(RecordType::as_str),
            record.commune,
            record.snapshot,
            record.sensitive
        ])?;
        Ok(())
    }

    fn refresh_views(&mut self, update: &RecordUpdate<'_>) -> StorageResult<()> {
        merged::refresh(
            self.tx,
            update.view,
            update.review,
            update.merge_edits,
            update.sensitive,
            update.now_ms,
        )?;
        let fact = Fact::from_view(update.view, update.review.state, update.sensitive);
        facts::refresh(self.tx, &fact)
    }

    fn insert_change(&mut self, change: &NewChange<'_>) -> StorageResult<()> {
        self.tx.prepare_cached(
            "INSERT INTO changes (hash, record_id, bytes, origin_device, received_ms, receipt, author_signature)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            &change.hash[..],
            change.record_id.as_bytes(),
            change.bytes,
            change.origin.as_bytes(),
            change.received_ms,
            &change.receipt[..],
            change.author_signature.as_ref().map(|s| &s[..])
        ])?;
        // What the administration shows of devices and registrations, counted as they arrive.
        self.tx
            .prepare_cached("UPDATE devices SET changes_sent = changes_sent + 1 WHERE id = ?1")?
            .execute([change.origin.as_bytes()])?;
        self.tx
            .prepare_cached(
                "INSERT OR IGNORE INTO record_origin (record_id, device_id, at_ms) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![
                change.record_id.as_bytes(),
                change.origin.as_bytes(),
                change.received_ms
            ])?;
        Ok(())
    }

    fn held_of_account(&mut self, device: Uuid) -> StorageResult<(i64, i64)> {
        Ok(self.tx.query_row(
            "SELECT COUNT(*), COALESCE(SUM(length(h.bytes)), 0) FROM held h
             WHERE h.origin_device = ?1 OR h.origin_device IN (SELECT id FROM devices
                 WHERE user_id = (SELECT user_id FROM devices WHERE id = ?1))",
            [device.as_bytes()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?)
    }

    fn hold(&mut self, held: &HeldChange) -> StorageResult<()> {
        let missing: Vec<u8> = held.missing.iter().flatten().copied().collect();
        self.tx.execute(
            "INSERT OR IGNORE INTO held (hash, record_id, bytes, origin_device, missing, received_ms, signature, vouched)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![&held.hash[..], held.record_id.as_bytes(), held.bytes, held.origin.as_bytes(),
                    missing, held.received_ms, held.signature.as_ref().map(|s| &s[..]), held.vouched],
        )?;
        Ok(())
    }

    fn is_held(&mut self, hash: &Hash) -> StorageResult<bool> {
        Ok(self
            .tx
            .prepare_cached("SELECT 1 FROM held WHERE hash = ?1")?
            .query_row([&hash[..]], |_| Ok(()))
            .optional()?
            .is_some())
    }

    fn held_of_record(&mut self, record: Uuid) -> StorageResult<Vec<HeldChange>> {
        type Row = (
            Vec<u8>,
            Vec<u8>,
            Vec<u8>,
            Vec<u8>,
            i64,
            Option<Vec<u8>>,
            bool,
        );
        let rows: Vec<Row> = self
            .tx
            .prepare_cached(
                "SELECT hash, bytes, origin_device, missing, received_ms, signature, vouched
                 FROM held WHERE record_id = ?1",
            )?
            .query_map([record.as_bytes()], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            })?
            .collect::<Result<_, _>>()?;
        rows.into_iter()
            .map(
                |(hash, bytes, origin, missing, received_ms, signature, vouched)| {
                    Ok(HeldChange {
                        hash: hash
                            .try_into()
                            .map_err(|_| StorageError::Corrupt("held change hash".into()))?,
                        record_id: record,
                        bytes,
                        origin: uuid_col(origin)?,
                        missing: missing
                            .chunks_exact(32)
                            .filter_map(|c| c.try_into().ok())
                            .collect(),
                        received_ms,
                        signature: hash_opt(signature),
                        vouched,
                    })
                },
            )
            .collect()
    }

    fn unhold(&mut self, hash: &Hash) -> StorageResult<()> {
        self.tx
            .execute("DELETE FROM held WHERE hash = ?1", [&hash[..]])?;
        Ok(())
    }

    fn scope_of_device(&mut self, device: Uuid) -> StorageResult<Scope> {
        Ok(accounts::user_of_device(self.tx, device)?
            .map(|u| Scope::for_user(&u))
            .unwrap_or_default())
    }

    fn log_new_history(&mut self, record: Uuid, stream: &str) -> StorageResult<()> {
        let upto: i64 = self
            .tx
            .prepare_cached("SELECT upto FROM record_streams WHERE record_id = ?1 AND stream = ?2")?
            .query_row(params![record.as_bytes(), stream], |r| r.get(0))
            .optional()?
            .unwrap_or(0);
        self.tx
            .prepare_cached(
                "INSERT INTO log (stream, record_id, hash, origin_device)
             SELECT ?1, record_id, hash, origin_device FROM changes
             WHERE record_id = ?2 AND seq > ?3 ORDER BY seq",
            )?
            .execute(params![stream, record.as_bytes(), upto])?;
        self.tx
            .prepare_cached(
                "INSERT INTO record_streams (record_id, stream, upto)
             SELECT ?1, ?2, MAX(seq) FROM changes WHERE record_id = ?1
             ON CONFLICT(record_id, stream) DO UPDATE SET upto = excluded.upto",
            )?
            .execute(params![record.as_bytes(), stream])?;
        Ok(())
    }
}

fn owner(tx: &Connection, table: &str, hash: &Hash) -> StorageResult<Option<Uuid>> {
    let owner: Option<Vec<u8>> = tx
        .prepare_cached(&format!("SELECT record_id FROM {table} WHERE hash = ?1"))?
        .query_row([&hash[..]], |r| r.get(0))
        .optional()?;
    owner.map(uuid_col).transpose()
}

pub(crate) fn load_record(conn: &Connection, id: Uuid) -> StorageResult<Option<StoredRecord>> {
    type Row = (Vec<u8>, Option<String>, Option<String>, bool);
    let row: Option<Row> = conn
        .prepare_cached(
            "SELECT snapshot, record_type, commune, sensitive FROM records WHERE id = ?1",
        )?
        .query_row([id.as_bytes()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    Ok(
        row.map(|(snapshot, record_type, commune, sensitive)| StoredRecord {
            snapshot,
            record_type: record_type.as_deref().and_then(RecordType::parse),
            commune,
            sensitive,
        }),
    )
}

/// A record's document for reading (its actor writes nothing).
pub(crate) fn read_doc(conn: &Connection, id: Uuid) -> StorageResult<Option<RecordDoc>> {
    load_record(conn, id)?
        .map(|r| Ok(RecordDoc::load(id, &r.snapshot, Uuid::nil())?))
        .transpose()
}

/// A pull's reads, inside one read transaction.
struct SqliteLog<'a> {
    tx: &'a Connection,
}

impl SyncRead for SqliteLog<'_> {
    fn streams(&mut self) -> StorageResult<Vec<String>> {
        let mut stmt = self
            .tx
            .prepare_cached("SELECT DISTINCT stream FROM log ORDER BY stream")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn log_after(
        &mut self,
        stream: &str,
        after: i64,
        limit: usize,
    ) -> StorageResult<Vec<LogEntry>> {
        type Row = (i64, Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>);
        let rows: Vec<Row> = self
            .tx
            .prepare_cached(
                "SELECT l.seq, l.record_id, c.bytes, l.origin_device, c.receipt
                 FROM log l JOIN changes c ON c.hash = l.hash
                 WHERE l.stream = ?1 AND l.seq > ?2 ORDER BY l.seq LIMIT ?3",
            )?
            .query_map(params![stream, after, limit as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect::<Result<_, _>>()?;
        rows.into_iter()
            .map(|(seq, record_id, bytes, origin, receipt)| {
                Ok(LogEntry {
                    seq,
                    record_id: uuid_col(record_id)?,
                    bytes,
                    origin: uuid_col(origin)?,
                    receipt,
                })
            })
            .collect()
    }
}

impl SyncStore for SqliteStorage {
    fn server_id(&self) -> [u8; 16] {
        self.server_id
    }

    fn write(
        &self,
        f: &mut dyn FnMut(&mut dyn SyncWrite) -> StorageResult<()>,
    ) -> StorageResult<()> {
        self.write_conn(|conn| {
            let tx = conn.transaction()?;
            let mut sync_tx = SqliteSyncTx {
                tx: &tx,
                last_expiry: Some(&self.last_expiry),
            };
            f(&mut sync_tx)?;
            tx.commit()?;
            Ok(())
        })
    }

    fn read(&self, f: &mut dyn FnMut(&mut dyn SyncRead) -> StorageResult<()>) -> StorageResult<()> {
        self.read_conn(|conn| {
            // One read transaction: every stream is read from the same committed state.
            let tx = conn.unchecked_transaction()?;
            f(&mut SqliteLog { tx: &tx })
        })
    }
}
