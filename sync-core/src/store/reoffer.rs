//! Giving a restored server back what it lost. A server restored from a backup no longer has
//! the changes it acknowledged after that backup; when a phone meets a server with another
//! identity, every change this phone ever authored is queued to be pushed again. The server
//! acknowledges the ones it still has by hash and stores the ones it lost.

use super::{load_doc, uuid_from_row, Store};
use crate::error::Result;
use automerge::ActorId;
use rusqlite::params;
use uuid::Uuid;

impl Store {
    /// Queues every change authored on this phone for pushing again, oldest first per record.
    /// Idempotent: a change already queued stays queued once, a refused one stays refused.
    pub fn reoffer_own_changes(&mut self) -> Result<usize> {
        let device_id = self.device_id;
        let own: Vec<ActorId> = self
            .own_actors()
            .iter()
            .map(|a| ActorId::from(a.as_bytes()))
            .collect();
        let tx = self.conn.transaction()?;
        let ids: Vec<Uuid> = {
            let mut stmt = tx.prepare("SELECT id FROM records ORDER BY id")?;
            let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
            rows.map(|r| uuid_from_row(r?)).collect::<Result<_>>()?
        };
        let mut queued = 0;
        for id in ids {
            // A record this phone cannot read has nothing it can offer.
            let Ok(mut doc) = load_doc(&tx, id, device_id) else {
                continue;
            };
            for mut change in doc.changes() {
                if !own.contains(change.actor_id()) {
                    continue;
                }
                let hash = change.hash();
                let updated = tx.execute(
                    "UPDATE changes SET acked = 0, local = 1 WHERE hash = ?1 AND acked = 1",
                    [&hash.0[..]],
                )?;
                // Rows added here are already inside the record's snapshot; applying them again
                // on load is a no-op, and they are compacted away once acknowledged.
                let inserted = tx.execute(
                    "INSERT OR IGNORE INTO changes (record_id, hash, bytes, local, acked) VALUES (?1, ?2, ?3, 1, 0)",
                    params![id.as_bytes(), &hash.0[..], change.bytes().as_ref()],
                )?;
                queued += updated + inserted;
            }
        }
        tx.commit()?;
        Ok(queued)
    }
}
