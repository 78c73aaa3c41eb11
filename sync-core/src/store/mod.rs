//! The local store: record documents in one SQLite file (WAL), saved change by change.
//!
//! Every edit is one transaction that writes the new change, folds it into the record's
//! projection row, and (every [`COMPACT_EVERY`] changes) a fresh snapshot of the document, so
//! a process killed at any point leaves the file with every committed edit. Lists and
//! searches read only the projection table; a document is loaded only when a record is opened
//! or edited, which is what lets a 20,000-record store open instantly on a phone.

mod projection;
mod received;
mod refused;
mod reoffer;
mod schema;

pub use crate::record::Status;
pub use projection::{ListFilter, RecordSummary};
pub use received::{ApplyReport, SetAside};
pub use refused::RefusedEdit;
pub use schema::VERSION as SCHEMA_VERSION;

use crate::error::{CoreError, Result};
use crate::model::{RecordType, Value};
use crate::protocol::Enrolment;
use crate::record::{decode_change, Clock, RecordChange, RecordDoc, RecordView};
use crate::signing::{DeviceKey, SIGNATURE_BYTES};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use std::collections::BTreeMap;
use std::path::Path;
use uuid::Uuid;

/// How many changes a record accumulates before its snapshot is rewritten.
pub const COMPACT_EVERY: i64 = 32;

const META_DEVICE_ID: &str = "device_id";
/// The secret seed of this store's Ed25519 key (hex): its actor derives from the public key.
const META_SIGNING_KEY: &str = "signing_key";
/// A store made under protocol 2 kept a secret its actor was derived from; its changes stay
/// this store's own, and the secret proves it when the store enrols again.
const META_V2_ACTOR_KEY: &str = "actor_key";
const META_LEGACY_ACTOR_KEY: &str = "legacy_actor_key";
/// The device id of a store made before ids were derived from a key; its changes stay
/// this store's own.
const META_LEGACY_ACTOR: &str = "legacy_device_id";

/// A local fieldsync store.
pub struct Store {
    conn: Connection,
    key: DeviceKey,
    device_id: Uuid,
    legacy: Legacy,
    clock: Clock,
}

/// Actors this store wrote under before its current key.
#[derive(Clone, Debug, Default)]
struct Legacy {
    /// The secret of the protocol 2 actor, if the store is that old.
    actor_key: Option<[u8; 32]>,
    /// The random device id of a store from before actors were derived from a key.
    actor: Option<Uuid>,
}

impl Legacy {
    fn actors(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.actor_key
            .as_ref()
            .map(crate::record::actor_for_key)
            .into_iter()
            .chain(self.actor)
    }
}

impl Store {
    /// Opens (creating it private if needed) the store at `path`, upgrading its schema.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        let conn = schema::open(path.as_ref())?;
        // The Automerge actor of every change made here is derived from a key made once per
        // installed store: a reinstall never reuses an actor's sequence numbers, and only this
        // store can sign as the actor.
        let key = match meta_get(&conn, META_SIGNING_KEY)? {
            Some(hex) => DeviceKey::from_seed(&parse_key(&hex)?),
            None => {
                let key = DeviceKey::generate();
                meta_set(&conn, META_SIGNING_KEY, &to_hex(&key.seed()))?;
                key
            }
        };
        let device_id = key.actor();
        if let Some(v2) = meta_get(&conn, META_V2_ACTOR_KEY)? {
            meta_set(&conn, META_LEGACY_ACTOR_KEY, &v2)?;
            conn.execute("DELETE FROM meta WHERE key = ?1", [META_V2_ACTOR_KEY])?;
        }
        match meta_get(&conn, META_DEVICE_ID)? {
            Some(id) if id == device_id.to_string() => {}
            Some(old) => {
                // An older store: a keyed actor of protocol 2 is known by its secret; an id
                // from before that is kept as it is. Either way its changes stay this store's.
                let keyed = meta_get(&conn, META_LEGACY_ACTOR_KEY)?
                    .map(|k| parse_key(&k))
                    .transpose()?
                    .is_some_and(|k| crate::record::actor_for_key(&k).to_string() == old);
                if !keyed && meta_get(&conn, META_LEGACY_ACTOR)?.is_none() {
                    meta_set(&conn, META_LEGACY_ACTOR, &old)?;
                }
                meta_set(&conn, META_DEVICE_ID, &device_id.to_string())?;
            }
            None => meta_set(&conn, META_DEVICE_ID, &device_id.to_string())?,
        }
        let legacy = Legacy {
            actor_key: meta_get(&conn, META_LEGACY_ACTOR_KEY)?
                .map(|k| parse_key(&k))
                .transpose()?,
            actor: meta_get(&conn, META_LEGACY_ACTOR)?
                .map(|s| Uuid::parse_str(&s))
                .transpose()
                .map_err(|_| CoreError::Corrupt {
                    id: Uuid::nil(),
                    reason: "legacy device id is not a UUID".into(),
                })?,
        };
        Ok(Store {
            conn,
            key,
            device_id,
            legacy,
            clock: crate::record::device_clock,
        })
    }

    /// This store's device id (the Automerge actor of its changes).
    pub fn device_id(&self) -> Uuid {
        self.device_id
    }

    /// The public key this store's actor is derived from and its changes are signed with.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.public_key()
    }

    /// This store's signature of one of its changes.
    pub fn sign_change(&self, record_id: Uuid, hash: &[u8; 32]) -> [u8; SIGNATURE_BYTES] {
        self.key.sign_change(record_id, hash)
    }

    /// What the store shows when it enrols as `username`: its public key, the proof that it
    /// holds the secret, and the actors it wrote under before (see
    /// [`Enrolment::request`]).
    pub fn enrolment(&self, username: &str) -> Enrolment {
        Enrolment {
            public_key: self.key.public_key(),
            proof: self.key.enrolment_proof(username),
            legacy_actor_keys: self.legacy.actor_key.into_iter().collect(),
            legacy_actors: self.legacy.actor.into_iter().collect(),
        }
    }

    /// Every actor this store has written under: its own, and those it had before its key.
    pub fn own_actors(&self) -> Vec<Uuid> {
        std::iter::once(self.device_id)
            .chain(self.legacy.actors())
            .collect()
    }

    /// Sets the clock this store's new changes are stamped with (the history's "made at"): the
    /// device's unless fixed, as a reproducible example does.
    pub fn set_clock(&mut self, clock: Clock) {
        self.clock = clock;
    }

    /// Runs several edits in one transaction: all of them land, or none.
    pub fn write<T>(&mut self, f: impl FnOnce(&mut Writer<'_>) -> Result<T>) -> Result<T> {
        let own_actors = self.own_actors();
        let mut writer = Writer {
            tx: self.conn.transaction()?,
            device_id: self.device_id,
            own_actors,
            clock: self.clock,
        };
        let out = f(&mut writer)?;
        writer.tx.commit()?;
        Ok(out)
    }

    pub fn create(
        &mut self,
        record_type: RecordType,
        fields: &BTreeMap<String, Value>,
    ) -> Result<Uuid> {
        self.write(|w| w.create(record_type, fields))
    }

    pub fn set_field(&mut self, id: Uuid, field: &str, value: &Value) -> Result<()> {
        self.write(|w| w.edit(id, |d| d.set_field(field, value)))
    }

    pub fn clear_field(&mut self, id: Uuid, field: &str) -> Result<()> {
        self.write(|w| w.edit(id, |d| d.clear_field(field)))
    }

    pub fn add_member(&mut self, id: Uuid, field: &str, member: &str) -> Result<()> {
        self.write(|w| w.edit(id, |d| d.add_member(field, member)))
    }

    pub fn remove_member(&mut self, id: Uuid, field: &str, member: &str) -> Result<()> {
        self.write(|w| w.edit(id, |d| d.remove_member(field, member)))
    }

    pub fn soft_delete(&mut self, id: Uuid) -> Result<()> {
        self.write(|w| w.edit(id, RecordDoc::soft_delete))
    }

    pub fn restore(&mut self, id: Uuid) -> Result<()> {
        self.write(|w| w.edit(id, RecordDoc::restore))
    }

    /// Reads a record: its current values, sets and conflicts.
    pub fn get(&self, id: Uuid) -> Result<RecordView> {
        load_doc(&self.conn, id, self.device_id)?.view()
    }

    /// The record to show for `id`: `id` itself, or the record a supervisor merged it into
    /// (following merges of merges). References (a person's household, group members,
    /// attendees) go through this, so they lead to the kept record after a merge.
    pub fn resolve(&self, id: Uuid) -> Result<Uuid> {
        let mut failure = None;
        let resolved =
            crate::record::resolve(id, |x| match projection::merged_into(&self.conn, x) {
                Ok(m) => m,
                Err(e) => {
                    failure = Some(e);
                    None
                }
            });
        match failure {
            Some(e) => Err(e),
            None => Ok(resolved),
        }
    }

    /// Loads a record's document, e.g. to read changes by hash.
    pub fn doc(&self, id: Uuid) -> Result<RecordDoc> {
        load_doc(&self.conn, id, self.device_id)
    }

    /// Lists records from the projection table without loading any document.
    pub fn list(&self, filter: &ListFilter) -> Result<Vec<RecordSummary>> {
        projection::list(&self.conn, filter)
    }

    pub fn count(&self, filter: &ListFilter) -> Result<u64> {
        projection::count(&self.conn, filter)
    }

    /// Applies changes received from a peer, all in one transaction.
    pub fn apply_remote(&mut self, changes: &[(Uuid, Vec<u8>)]) -> Result<ApplyReport> {
        self.write(|w| w.apply_remote(changes))
    }

    /// Local changes the server has not yet acknowledged, oldest first, up to `max_bytes`
    /// (at least one change, however large, so that progress is always possible).
    pub fn unacked(&self, max_bytes: usize) -> Result<Vec<RecordChange>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT record_id, hash, bytes FROM changes WHERE local = 1 AND acked = 0 ORDER BY seq",
        )?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        let mut total = 0;
        while let Some(row) = rows.next()? {
            let bytes: Vec<u8> = row.get(2)?;
            if !out.is_empty() && total + bytes.len() > max_bytes {
                break;
            }
            total += bytes.len();
            out.push(RecordChange {
                record_id: uuid_from_row(row.get(0)?)?,
                hash: hash_from_row(row.get(1)?)?,
                bytes,
            });
        }
        Ok(out)
    }

    pub fn unacked_count(&self) -> Result<u64> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*) FROM changes WHERE local = 1 AND acked = 0",
            [],
            |r| r.get(0),
        )?)
    }

    /// Marks local changes as durably stored by the server.
    pub fn ack(&mut self, hashes: &[[u8; 32]]) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt =
                tx.prepare_cached("UPDATE changes SET acked = 1 WHERE hash = ?1 AND acked = 0")?;
            for h in hashes {
                stmt.execute([&h[..]])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Reads a value stored by the sync driver (cursor, server URL, token ...).
    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        meta_get(&self.conn, key)
    }

    pub fn set_meta(&mut self, key: &str, value: &str) -> Result<()> {
        meta_set(&self.conn, key, value)
    }

    /// Writes received changes and new meta values (the sync cursor) in one transaction, so
    /// a cursor never runs ahead of what was stored.
    pub fn apply_pulled_and_set_meta(
        &mut self,
        changes: &[crate::protocol::ChangeEntry],
        meta: &[(&str, &str)],
    ) -> Result<ApplyReport> {
        self.write(|w| {
            let report = w.apply_pulled(changes)?;
            for (key, value) in meta {
                meta_set(&w.tx, key, value)?;
            }
            Ok(report)
        })
    }

    /// Received changes that could not be taken, oldest first.
    pub fn set_aside(&self) -> Result<Vec<SetAside>> {
        received::list_set_aside(&self.conn)
    }

    /// Bytes used by the store file (pages in use).
    pub fn size_bytes(&self) -> Result<u64> {
        let pages: u64 = self.conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        let size: u64 = self.conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        Ok(pages * size)
    }

    /// Folds the write-ahead log back into the main file.
    pub fn checkpoint(&self) -> Result<()> {
        self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
        Ok(())
    }
}

/// Edits inside one store transaction (see [`Store::write`]).
pub struct Writer<'a> {
    tx: Transaction<'a>,
    device_id: Uuid,
    /// This store's actor and those it had before: received changes never claim them.
    own_actors: Vec<Uuid>,
    clock: Clock,
}

impl Writer<'_> {
    /// Creates a record with a new UUIDv7 id; invalid fields write nothing.
    pub fn create(
        &mut self,
        record_type: RecordType,
        fields: &BTreeMap<String, Value>,
    ) -> Result<Uuid> {
        self.create_with_id(Uuid::now_v7(), record_type, fields)
    }

    /// Creates a record with a given id (generators and imports; ids must be unique UUIDs).
    pub fn create_with_id(
        &mut self,
        id: Uuid,
        record_type: RecordType,
        fields: &BTreeMap<String, Value>,
    ) -> Result<Uuid> {
        let (mut doc, change) =
            RecordDoc::create_with_clock(id, record_type, fields, self.device_id, self.clock)?;
        self.tx
            .execute("INSERT INTO records (id) VALUES (?1)", [id.as_bytes()])?;
        let seq = insert_change(&self.tx, &change, true)?;
        self.after_change(&mut doc, seq)?;
        Ok(id)
    }

    /// Loads a record, runs one edit on it, and stores the change it made.
    pub fn edit(
        &mut self,
        id: Uuid,
        op: impl FnOnce(&mut RecordDoc) -> Result<Option<RecordChange>>,
    ) -> Result<()> {
        let mut doc = load_doc(&self.tx, id, self.device_id)?.with_clock(self.clock);
        let Some(change) = op(&mut doc)? else {
            return Ok(());
        };
        let seq = insert_change(&self.tx, &change, true)?;
        self.after_change(&mut doc, seq)
    }

    fn after_change(&mut self, doc: &mut RecordDoc, seq: i64) -> Result<()> {
        let id = doc.id();
        if doc.record_type().is_some() {
            projection::upsert(&self.tx, &doc.view()?, seq)?;
        }
        let (snapshot_seq, pending): (i64, i64) = self.tx.query_row(
            "SELECT r.snapshot_seq, (SELECT COUNT(*) FROM changes c WHERE c.record_id = r.id AND c.seq > r.snapshot_seq)
             FROM records r WHERE r.id = ?1",
            [id.as_bytes()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        // A document still waiting for dependencies keeps its raw changes: a snapshot would not
        // contain the held ones.
        if pending >= COMPACT_EVERY && doc.missing_deps().is_empty() && seq > snapshot_seq {
            let snapshot = doc.save();
            self.tx.execute(
                "UPDATE records SET snapshot = ?2, snapshot_seq = ?3 WHERE id = ?1",
                params![id.as_bytes(), snapshot, seq],
            )?;
            // Local changes stay until acknowledged; everything else now lives in the snapshot.
            self.tx.execute(
                "DELETE FROM changes WHERE record_id = ?1 AND seq <= ?2 AND (local = 0 OR acked = 1)",
                params![id.as_bytes(), seq],
            )?;
        }
        Ok(())
    }
}

/// Inserts a change row; returns its sequence number, or 0 if the hash was already stored.
fn insert_change(conn: &Connection, change: &RecordChange, local: bool) -> Result<i64> {
    let n = conn.execute(
        "INSERT OR IGNORE INTO changes (record_id, hash, bytes, local) VALUES (?1, ?2, ?3, ?4)",
        params![
            change.record_id.as_bytes(),
            &change.hash.0[..],
            change.bytes,
            local
        ],
    )?;
    Ok(if n == 0 { 0 } else { conn.last_insert_rowid() })
}

fn load_doc(conn: &Connection, id: Uuid, device_id: Uuid) -> Result<RecordDoc> {
    let row: Option<(Option<Vec<u8>>, i64)> = conn
        .query_row(
            "SELECT snapshot, snapshot_seq FROM records WHERE id = ?1",
            [id.as_bytes()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (snapshot, snapshot_seq) = row.ok_or(CoreError::NotFound(id))?;
    let mut doc = match snapshot {
        Some(bytes) => RecordDoc::load(id, &bytes, device_id)?,
        None => RecordDoc::empty(id, device_id),
    };
    let mut stmt = conn.prepare_cached(
        "SELECT bytes FROM changes WHERE record_id = ?1 AND seq > ?2 ORDER BY seq",
    )?;
    let changes = stmt
        .query_map(params![id.as_bytes(), snapshot_seq], |r| {
            r.get::<_, Vec<u8>>(0)
        })?
        .map(|bytes| {
            let bytes = bytes?;
            decode_change(&bytes).map_err(|e| CoreError::Corrupt {
                id,
                reason: e.to_string(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    doc.apply(changes).map_err(|e| CoreError::Corrupt {
        id,
        reason: e.to_string(),
    })?;
    if doc.record_type().is_none() && doc.missing_deps().is_empty() {
        return Err(CoreError::Corrupt {
            id,
            reason: "document has no record type".into(),
        });
    }
    Ok(doc)
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_key(hex: &str) -> Result<[u8; 32]> {
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    bytes.try_into().map_err(|_| CoreError::Corrupt {
        id: Uuid::nil(),
        reason: "store key is not 32 bytes of hex".into(),
    })
}

fn meta_get(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?)
}

fn meta_set(conn: &Connection, key: &str, value: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [key, value],
    )?;
    Ok(())
}

pub(crate) fn uuid_from_row(bytes: Vec<u8>) -> Result<Uuid> {
    Uuid::from_slice(&bytes).map_err(|_| CoreError::Corrupt {
        id: Uuid::nil(),
        reason: "record id is not 16 bytes".into(),
    })
}

fn hash_from_row(bytes: Vec<u8>) -> Result<automerge::ChangeHash> {
    automerge::ChangeHash::try_from(bytes.as_slice()).map_err(|_| CoreError::Corrupt {
        id: Uuid::nil(),
        reason: "change hash is not 32 bytes".into(),
    })
}
