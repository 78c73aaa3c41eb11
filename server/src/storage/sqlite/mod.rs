//! The embedded storage backend: one SQLite file (WAL, synchronous=FULL) under the data
//! directory. Writes are serialised on one connection; every sync request is one transaction,
//! committed before its response is sent, so an acknowledgement always means "on disk".

mod accounts;
mod ingest;
mod merged;
mod pull;
mod schema;

use super::{
    Caller, Device, MergedRecord, NewUser, RecordEdit, Stats, Storage, StorageError, StorageResult,
    User,
};
use crate::scope::{Cursor, Scope};
use fieldsync_core::protocol::{SyncRequest, SyncResponse};
use fieldsync_core::record::decode_change;
use fieldsync_core::RecordType;
use rusqlite::Connection;
use rusqlite::OptionalExtension;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use uuid::Uuid;

/// SQLite-backed [`Storage`].
pub struct SqliteStorage {
    conn: Mutex<Connection>,
}

impl SqliteStorage {
    pub fn open(path: impl AsRef<Path>) -> StorageResult<SqliteStorage> {
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        schema::upgrade(&mut conn)?;
        Ok(SqliteStorage {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> StorageResult<MutexGuard<'_, Connection>> {
        // A panic while holding the lock cannot leave a half-applied transaction (SQLite rolls
        // it back), so the connection is still good to use.
        Ok(self.conn.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Storage for SqliteStorage {
    fn create_user(&self, user: &NewUser, password_hash: &str) -> StorageResult<User> {
        accounts::create_user(&mut *self.conn()?, user, password_hash)
    }

    fn user_by_name(&self, username: &str) -> StorageResult<Option<(User, String)>> {
        accounts::user_by_name(&*self.conn()?, username)
    }

    fn set_user_areas(&self, username: &str, areas: &[String]) -> StorageResult<User> {
        accounts::set_user_areas(&mut *self.conn()?, username, areas)
    }

    fn login_locked_until(&self, username: &str) -> StorageResult<i64> {
        accounts::locked_until(&*self.conn()?, username)
    }

    fn login_failed(&self, username: &str, now_ms: i64) -> StorageResult<i64> {
        accounts::record_failure(&*self.conn()?, username, now_ms)
    }

    fn login_succeeded(&self, username: &str) -> StorageResult<()> {
        accounts::clear_failures(&*self.conn()?, username)
    }

    fn enrol_device(&self, user_id: i64, name: &str, token_hash: &[u8]) -> StorageResult<Device> {
        accounts::enrol_device(&*self.conn()?, user_id, name, token_hash)
    }

    fn caller_by_token(&self, token_hash: &[u8]) -> StorageResult<Option<Caller>> {
        accounts::caller_by_token(&*self.conn()?, token_hash)
    }

    fn revoke_device(&self, device_id: Uuid) -> StorageResult<()> {
        accounts::revoke_device(&*self.conn()?, device_id)
    }

    fn list_devices(&self) -> StorageResult<Vec<Device>> {
        accounts::list_devices(&*self.conn()?)
    }

    fn sync(&self, caller: &Caller, request: &SyncRequest) -> StorageResult<SyncResponse> {
        // Decode everything first: a batch with garbage in it is refused whole, unchanged.
        let mut push = Vec::with_capacity(request.push.len());
        for entry in &request.push {
            let change = decode_change(&entry.bytes)
                .map_err(|e| StorageError::Invalid(format!("record {}: {e}", entry.record_id)))?;
            push.push((entry.record_id, change, entry.bytes.as_slice()));
        }
        let cursor = Cursor::decode(&request.cursor).map_err(StorageError::Invalid)?;
        let scope = caller.scope();
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        let mut ingest = ingest::Ingest::new(&tx, caller.device.id, &scope);
        for (record_id, change, bytes) in push {
            ingest.push(record_id, change, bytes)?;
        }
        let outcome = ingest.finish()?;
        let page = pull::page(
            &tx,
            &scope,
            cursor,
            caller.device.id,
            request.max_pull_bytes,
        )?;
        tx.commit()?;
        Ok(SyncResponse {
            acked: outcome.acked,
            rejected: outcome.rejected,
            need: outcome.need,
            pull: page.changes,
            cursor: page.cursor.encode(),
            more: page.more,
        })
    }

    fn ingest_trusted(&self, device: Uuid, changes: &[(Uuid, Vec<u8>)]) -> StorageResult<()> {
        let scope = Scope::everything();
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        let mut ingest = ingest::Ingest::new(&tx, device, &scope);
        for (record_id, bytes) in changes {
            ingest.push(*record_id, decode_change(bytes)?, bytes)?;
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
    }

    fn edit_record(
        &self,
        device: Uuid,
        scope: &Scope,
        record_id: Uuid,
        edit: &RecordEdit,
    ) -> StorageResult<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        let snapshot: Vec<u8> = tx
            .query_row(
                "SELECT snapshot FROM records WHERE id = ?1",
                [record_id.as_bytes()],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| StorageError::NotFound(format!("record {record_id}")))?;
        let mut doc = fieldsync_core::RecordDoc::load(record_id, &snapshot, device)?;
        let change = match edit {
            RecordEdit::Review { state, comment } => doc.set_review(*state, comment.as_deref())?,
            RecordEdit::SetField { field, value } => doc.set_field(field, value)?,
        };
        if let Some(change) = change {
            let mut ingest = ingest::Ingest::new(&tx, device, scope);
            ingest.push(record_id, decode_change(&change.bytes)?, &change.bytes)?;
            let outcome = ingest.finish()?;
            if !outcome.rejected.is_empty() {
                return Err(StorageError::Invalid(
                    "the edit would take the record outside your areas".into(),
                ));
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn merged_record(&self, id: Uuid) -> StorageResult<Option<MergedRecord>> {
        merged::get(&*self.conn()?, id)
    }

    fn list_merged(
        &self,
        scope: &Scope,
        record_type: Option<RecordType>,
        search: Option<&str>,
        limit: u32,
    ) -> StorageResult<Vec<MergedRecord>> {
        merged::list(&*self.conn()?, scope, record_type, search, limit)
    }

    fn backup(&self, path: &Path) -> StorageResult<()> {
        let conn = self.conn()?;
        let mut dest = Connection::open(path)?;
        let backup = rusqlite::backup::Backup::new(&conn, &mut dest)?;
        // Within the server process the connection lock keeps writes out, so the copy is taken
        // in one pass; from another process (`admin backup`) SQLite restarts the copy when the
        // server writes meanwhile, and the result is consistent either way.
        backup.run_to_completion(1024, std::time::Duration::ZERO, None)?;
        Ok(())
    }

    fn stats(&self) -> StorageResult<Stats> {
        let conn = self.conn()?;
        let count = |table: &str| -> StorageResult<u64> {
            Ok(conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?)
        };
        Ok(Stats {
            records: count("records")?,
            changes: count("changes")?,
            held: count("held")?,
            log_entries: count("log")?,
        })
    }
}

pub(crate) fn uuid_col(bytes: Vec<u8>) -> StorageResult<Uuid> {
    Uuid::from_slice(&bytes).map_err(|_| StorageError::Invalid("stored id is not a UUID".into()))
}
