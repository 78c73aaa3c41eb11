//! Giving a restored server back what it lost. A server restored from a backup no longer has
//! the changes it acknowledged after that backup. When a phone meets a server with another
//! identity, every change this phone ever authored is queued to be pushed again, and every
//! change of others it holds is noted; those the restored server serves again while the phone
//! pulls its log from the start are crossed off, and the rest (the server lost them, and maybe
//! their author's phone is gone) are given back with the server's receipt once the pull is
//! complete. The server acknowledges what it still has by hash and stores what it lost.

use super::{load_doc, uuid_from_row, Store};
use crate::error::Result;
use crate::protocol::ChangeEntry;
use automerge::{ActorId, ChangeHash};
use rusqlite::{params, OptionalExtension};
use uuid::Uuid;

impl Store {
    /// Queues every change authored on this phone for pushing again, oldest first per record.
    /// Idempotent: a change already queued stays queued once, a refused one stays refused.
    pub fn reoffer_own_changes(&mut self) -> Result<usize> {
        Ok(self.after_restore()?.0)
    }

    /// Queues this phone's own changes again and notes every other change it holds as one to
    /// give back unless the server serves it again. Returns (own queued, others noted).
    pub fn after_restore(&mut self) -> Result<(usize, usize)> {
        let device_id = self.device_id;
        let own: Vec<ActorId> = self
            .own_actors()
            .iter()
            .map(|a| ActorId::from(a.as_bytes()))
            .collect();
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM relay", [])?;
        let ids: Vec<Uuid> = {
            let mut stmt = tx.prepare("SELECT id FROM records ORDER BY id")?;
            let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
            rows.map(|r| uuid_from_row(r?)).collect::<Result<_>>()?
        };
        let (mut queued, mut noted) = (0, 0);
        for id in ids {
            // A record this phone cannot read has nothing it can offer.
            let Ok(mut doc) = load_doc(&tx, id, device_id) else {
                continue;
            };
            // In causal order, so that what is given back never waits for its dependencies
            // longer than one exchange.
            for mut change in doc.changes() {
                let hash = change.hash();
                if !own.contains(change.actor_id()) {
                    noted += tx.execute(
                        "INSERT OR IGNORE INTO relay (record_id, hash) VALUES (?1, ?2)",
                        params![id.as_bytes(), &hash.0[..]],
                    )?;
                    continue;
                }
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
        Ok((queued, noted))
    }

    /// The restored server has served its whole log again: what is still noted, it lost. A
    /// change this phone holds no receipt for (received before receipts existed) cannot be
    /// verified by the server, so only its author can give it back; it leaves the list.
    pub fn relay_ready(&mut self) -> Result<usize> {
        self.conn.execute(
            "DELETE FROM relay WHERE hash NOT IN (SELECT hash FROM receipts)",
            [],
        )?;
        Ok(self.conn.execute("UPDATE relay SET ready = 1", [])?)
    }

    /// Changes of others to give back, oldest first, up to `max_bytes` of change data (at
    /// least one), each with its hash and the server's receipt.
    pub fn relay_batch(&self, max_bytes: usize) -> Result<Vec<([u8; 32], ChangeEntry)>> {
        let rows: Vec<(Vec<u8>, Vec<u8>)> = {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT record_id, hash FROM relay WHERE ready = 1 ORDER BY seq")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<std::result::Result<_, _>>()?
        };
        let mut out = Vec::new();
        let mut total = 0;
        for (record, hash) in rows {
            let id = uuid_from_row(record)?;
            let entry = match (ChangeHash::try_from(hash.as_slice()), self.receipt(&hash)?) {
                (Ok(hash), Some(signature)) => self
                    .doc(id)
                    .ok()
                    .and_then(|mut doc| doc.change_by_hash(&hash))
                    .map(|mut change| {
                        let entry = ChangeEntry {
                            record_id: id,
                            bytes: change.bytes().into_owned(),
                            signature,
                        };
                        (hash.0, entry)
                    }),
                _ => None,
            };
            let Some(entry) = entry else {
                continue;
            };
            if !out.is_empty() && total + entry.1.bytes.len() > max_bytes {
                break;
            }
            total += entry.1.bytes.len();
            out.push(entry);
        }
        Ok(out)
    }

    /// The server answered these (stored, or refused for good): nothing more to give back.
    pub fn relay_answered(&mut self, hashes: impl IntoIterator<Item = [u8; 32]>) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached("DELETE FROM relay WHERE hash = ?1")?;
            for h in hashes {
                stmt.execute([&h[..]])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Changes of others still to be given back (ready or not).
    pub fn relay_pending(&self) -> Result<u64> {
        Ok(self
            .conn
            .query_row("SELECT COUNT(*) FROM relay", [], |r| r.get(0))?)
    }

    /// The server's receipt of a change it served to this phone.
    pub fn receipt(&self, hash: &[u8]) -> Result<Option<[u8; 64]>> {
        let sig: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT signature FROM receipts WHERE hash = ?1",
                [hash],
                |r| r.get(0),
            )
            .optional()?;
        Ok(sig.and_then(|s| s.try_into().ok()))
    }
}
