//! Applying changes received from the server. Each change is checked on its own; one that
//! cannot be taken (undecodable, the wrong shape, a clash with what this phone holds) is set
//! aside with its reason and the rest of the page still applies, so a single bad change can
//! never stop a phone from syncing.

use super::{insert_change, load_doc, uuid_from_row, Writer};
use crate::error::{CoreError, Result};
use crate::protocol::ChangeEntry;
use crate::record::{decode_change, Fields, RecordChange, RecordDoc};
use crate::signing::SIGNATURE_BYTES;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use std::collections::BTreeMap;
use uuid::Uuid;

/// The server's signature of a change it served.
type Receipt = [u8; SIGNATURE_BYTES];
/// A received change's bytes, with the server's receipt when it came from the server.
type Incoming<'c> = (&'c [u8], Option<&'c Receipt>);

/// What applying a batch of received changes did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ApplyReport {
    pub applied: usize,
    /// Already present: harmless resends.
    pub duplicates: usize,
    /// Records holding changes whose dependencies have not arrived, with the missing hashes.
    pub waiting: BTreeMap<Uuid, Vec<[u8; 32]>>,
    /// Changes that could not be taken, kept in the `set_aside` table with their reason.
    pub set_aside: usize,
}

/// A received change this phone could not take, kept (never dropped) for support to look at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SetAside {
    pub record_id: Uuid,
    pub reason: String,
    pub bytes: usize,
}

impl Writer<'_> {
    /// Applies received changes record by record; duplicates are skipped, early arrivals are
    /// kept until their dependencies come, and changes that cannot be taken are set aside.
    pub fn apply_remote(&mut self, changes: &[(Uuid, Vec<u8>)]) -> Result<ApplyReport> {
        self.apply_received(
            changes
                .iter()
                .map(|(id, bytes)| (*id, bytes.as_slice(), None)),
        )
    }

    /// Applies changes pulled from the server and keeps the server's receipt of each, which
    /// lets this phone give the change back to a server restored from an older backup.
    pub fn apply_pulled(&mut self, changes: &[ChangeEntry]) -> Result<ApplyReport> {
        self.apply_received(
            changes
                .iter()
                .map(|c| (c.record_id, c.bytes.as_slice(), Some(&c.signature))),
        )
    }

    fn apply_received<'c>(
        &mut self,
        changes: impl Iterator<Item = (Uuid, &'c [u8], Option<&'c Receipt>)>,
    ) -> Result<ApplyReport> {
        let mut report = ApplyReport::default();
        let mut by_record: BTreeMap<Uuid, Vec<Incoming<'c>>> = BTreeMap::new();
        for (id, bytes, receipt) in changes {
            by_record.entry(id).or_default().push((bytes, receipt));
        }
        for (id, list) in by_record {
            let (mut doc, existed) = match self.open_for_receiving(id) {
                Ok(opened) => opened,
                Err(CoreError::Corrupt { reason, .. }) => {
                    // This phone's own copy is unreadable: keep what arrived for later repair
                    // rather than failing every sync from now on.
                    for (bytes, _) in list {
                        set_aside(
                            &self.tx,
                            id,
                            bytes,
                            &format!("local record unreadable: {reason}"),
                        )?;
                        report.set_aside += 1;
                    }
                    continue;
                }
                Err(e) => return Err(e),
            };
            let mut last_seq = None;
            for (bytes, receipt) in list {
                let change = decode_change(bytes);
                if let (Ok(change), Some(receipt)) = (&change, receipt) {
                    keep_receipt(&self.tx, &change.hash(), receipt)?;
                }
                match self.receive_one(&mut doc, id, change, bytes)? {
                    Received::Applied(seq) => {
                        last_seq = Some(seq);
                        report.applied += 1;
                    }
                    Received::Duplicate => report.duplicates += 1,
                    Received::SetAside(reason) => {
                        set_aside(&self.tx, id, bytes, &reason)?;
                        report.set_aside += 1;
                    }
                }
            }
            let missing = doc.missing_deps();
            if !missing.is_empty() {
                report
                    .waiting
                    .insert(id, missing.iter().map(|h| h.0).collect());
            }
            if let Some(seq) = last_seq {
                if !existed {
                    self.tx
                        .execute("INSERT INTO records (id) VALUES (?1)", [id.as_bytes()])?;
                }
                self.after_change(&mut doc, seq)?;
            }
        }
        Ok(report)
    }

    /// The record's document and whether the store has it yet.
    fn open_for_receiving(&mut self, id: Uuid) -> Result<(RecordDoc, bool)> {
        let exists = self
            .tx
            .query_row(
                "SELECT 1 FROM records WHERE id = ?1",
                [id.as_bytes()],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        if exists {
            Ok((load_doc(&self.tx, id, self.device_id)?, true))
        } else {
            Ok((RecordDoc::empty(id, self.device_id), false))
        }
    }

    fn receive_one(
        &mut self,
        doc: &mut RecordDoc,
        id: Uuid,
        decoded: Result<automerge::Change>,
        bytes: &[u8],
    ) -> Result<Received> {
        let change = match decoded {
            Ok(c) => c,
            Err(e) => return Ok(Received::SetAside(e.to_string())),
        };
        let hash = change.hash();
        if doc.has_change(&hash) {
            return Ok(Received::Duplicate);
        }
        let owner: Option<Vec<u8>> = self
            .tx
            .query_row(
                "SELECT record_id FROM changes WHERE hash = ?1",
                [&hash.0[..]],
                |r| r.get(0),
            )
            .optional()?;
        match owner {
            Some(owner) if owner.as_slice() == id.as_bytes() => return Ok(Received::Duplicate),
            Some(_) => {
                return Ok(Received::SetAside(
                    "the change already belongs to another record".into(),
                ))
            }
            None => {}
        }
        // This phone writes only under its own actor: a received change claiming it was not
        // made here, and taking it would clash with this phone's own next edits.
        let actor = change.actor_id().to_bytes();
        if self.own_actors.iter().any(|own| actor == own.as_bytes()) {
            return Ok(Received::SetAside(
                "the change claims this phone's own author".into(),
            ));
        }
        if let Err(refusal) = doc.admit(&change, Fields::AnyName) {
            return Ok(Received::SetAside(refusal.to_string()));
        }
        // Applied in place (a copy per change would make a first sync of thousands of records
        // slow); if Automerge refuses it half-way, the document is read back from the store,
        // which holds exactly what was applied before.
        if let Err(e) = doc.apply([change]) {
            *doc = match load_doc(&self.tx, id, self.device_id) {
                Ok(reloaded) => reloaded,
                Err(CoreError::NotFound(_)) => RecordDoc::empty(id, self.device_id),
                Err(other) => return Err(other),
            };
            return Ok(Received::SetAside(format!("cannot be applied: {e}")));
        }
        let stored = RecordChange {
            record_id: id,
            hash,
            bytes: bytes.to_vec(),
        };
        Ok(match insert_change(&self.tx, &stored, false)? {
            0 => Received::Duplicate,
            seq => Received::Applied(seq),
        })
    }
}

/// Keeps the server's receipt of a change it served, and takes the change off the list of
/// those to give back (the server has it).
fn keep_receipt(conn: &Connection, hash: &automerge::ChangeHash, receipt: &Receipt) -> Result<()> {
    conn.execute(
        "INSERT OR IGNORE INTO receipts (hash, signature) VALUES (?1, ?2)",
        params![&hash.0[..], &receipt[..]],
    )?;
    conn.execute("DELETE FROM relay WHERE hash = ?1", [&hash.0[..]])?;
    Ok(())
}

enum Received {
    Applied(i64),
    Duplicate,
    SetAside(String),
}

fn set_aside(conn: &Connection, id: Uuid, bytes: &[u8], reason: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO set_aside (record_id, bytes, reason) VALUES (?1, ?2, ?3)",
        params![id.as_bytes(), bytes, reason],
    )?;
    Ok(())
}

pub(super) fn list_set_aside(conn: &Connection) -> Result<Vec<SetAside>> {
    let mut stmt =
        conn.prepare("SELECT record_id, length(bytes), reason FROM set_aside ORDER BY id")?;
    let rows = stmt.query_map([], |r| {
        Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?, r.get(2)?))
    })?;
    rows.map(|row| {
        let (id, len, reason) = row?;
        Ok(SetAside {
            record_id: uuid_from_row(id)?,
            reason,
            bytes: usize::try_from(len).unwrap_or(0),
        })
    })
    .collect()
}
