//! Ingesting pushed changes inside one transaction: deduplicate by hash, hold changes whose
//! dependencies are missing, check scope on the record before and after the change, append
//! accepted changes to the pull log, and refresh the merged view of every touched record.

use super::merged;
use crate::scope::{stream_key, Scope};
use crate::storage::StorageResult;
use automerge::{Change, ChangeHash};
use fieldsync_core::protocol::{NeedEntry, RejectCode, Rejection};
use fieldsync_core::record::decode_change;
use fieldsync_core::{RecordDoc, RecordType, RecordView};
use rusqlite::{params, OptionalExtension, Transaction};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// The server never writes through these documents; its actor id only has to exist.
const SERVER_ACTOR: Uuid = Uuid::nil();

struct Loaded {
    doc: RecordDoc,
    /// Type and commune as of `doc`, kept so that each change costs one view of the document
    /// (the state after it) rather than three.
    state: Option<State>,
    dirty: bool,
}

/// What scope and streams depend on: the record's type and commune.
type State = (RecordType, Option<String>);

fn state_of(view: &RecordView) -> State {
    (view.record_type, view.commune().map(str::to_owned))
}

/// The stream a record's changes are logged under, once it has a type and a commune.
fn stream_of(state: Option<&State>) -> Option<String> {
    let (record_type, commune) = state?;
    Some(stream_key(commune.as_deref()?, record_type.is_sensitive()))
}

#[derive(Default)]
pub struct Outcome {
    pub acked: Vec<[u8; 32]>,
    pub rejected: Vec<Rejection>,
    pub need: Vec<NeedEntry>,
}

pub struct Ingest<'a> {
    tx: &'a Transaction<'a>,
    device: Uuid,
    scope: &'a Scope,
    docs: BTreeMap<Uuid, Loaded>,
    outcome: Outcome,
    need: BTreeSet<(Uuid, [u8; 32])>,
}

impl<'a> Ingest<'a> {
    pub fn new(tx: &'a Transaction<'a>, device: Uuid, scope: &'a Scope) -> Ingest<'a> {
        Ingest {
            tx,
            device,
            scope,
            docs: BTreeMap::new(),
            outcome: Outcome::default(),
            need: BTreeSet::new(),
        }
    }

    pub fn push(&mut self, record_id: Uuid, change: Change, bytes: &[u8]) -> StorageResult<()> {
        let hash = change.hash();
        let known = self
            .tx
            .query_row(
                "SELECT 1 FROM changes WHERE hash = ?1",
                [&hash.0[..]],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        if known {
            self.outcome.acked.push(hash.0);
            return Ok(());
        }
        self.load(record_id)?;
        let missing = self.missing_deps(record_id, &change)?;
        // Built on a change refused in this same batch: refused for the same reason, rather
        // than held for a dependency that will never come.
        let refused_dep = missing.iter().find_map(|dep| {
            self.outcome
                .rejected
                .iter()
                .find(|r| r.hash == dep.0)
                .map(|r| r.code)
        });
        if let Some(code) = refused_dep {
            self.outcome.rejected.push(Rejection {
                hash: hash.0,
                record_id,
                code,
            });
            return Ok(());
        }
        if !missing.is_empty() {
            self.hold(record_id, &change, bytes, &missing)?;
            return Ok(());
        }
        if self.apply(record_id, change, bytes, self.device)? {
            self.release_held(record_id)?;
        }
        Ok(())
    }

    pub fn finish(mut self) -> StorageResult<Outcome> {
        for (id, loaded) in &mut self.docs {
            if !loaded.dirty {
                continue;
            }
            let view = loaded.doc.view().ok();
            let record_type = view.as_ref().map(|v| v.record_type.as_str());
            let commune = view.as_ref().and_then(RecordView::commune);
            self.tx.execute(
                "INSERT INTO records (id, record_type, commune, snapshot) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(id) DO UPDATE SET record_type = excluded.record_type,
                   commune = excluded.commune, snapshot = excluded.snapshot",
                params![id.as_bytes(), record_type, commune, loaded.doc.save()],
            )?;
            if let Some(view) = &view {
                merged::refresh(self.tx, view)?;
            }
        }
        self.outcome.need = self
            .need
            .into_iter()
            .map(|(record_id, hash)| NeedEntry { record_id, hash })
            .collect();
        Ok(self.outcome)
    }

    fn load(&mut self, record_id: Uuid) -> StorageResult<()> {
        if self.docs.contains_key(&record_id) {
            return Ok(());
        }
        let snapshot: Option<Vec<u8>> = self
            .tx
            .query_row(
                "SELECT snapshot FROM records WHERE id = ?1",
                [record_id.as_bytes()],
                |r| r.get(0),
            )
            .optional()?;
        let doc = match snapshot {
            Some(bytes) => RecordDoc::load(record_id, &bytes, SERVER_ACTOR)?,
            None => RecordDoc::empty(record_id, SERVER_ACTOR),
        };
        let state = doc.view().ok().map(|v| state_of(&v));
        self.docs.insert(
            record_id,
            Loaded {
                doc,
                state,
                dirty: false,
            },
        );
        Ok(())
    }

    fn missing_deps(&mut self, record_id: Uuid, change: &Change) -> StorageResult<Vec<ChangeHash>> {
        let Some(loaded) = self.docs.get_mut(&record_id) else {
            return Ok(change.deps().to_vec());
        };
        Ok(change
            .deps()
            .iter()
            .filter(|d| !loaded.doc.has_change(d))
            .copied()
            .collect())
    }

    fn hold(
        &mut self,
        record_id: Uuid,
        change: &Change,
        bytes: &[u8],
        missing: &[ChangeHash],
    ) -> StorageResult<()> {
        let missing_bytes: Vec<u8> = missing.iter().flat_map(|h| h.0).collect();
        self.tx.execute(
            "INSERT OR IGNORE INTO held (hash, record_id, bytes, origin_device, missing) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![&change.hash().0[..], record_id.as_bytes(), bytes, self.device.as_bytes(), missing_bytes],
        )?;
        for dep in missing {
            // A dependency that is itself held is not what the phone must send: its own
            // missing dependencies are.
            let held = self
                .tx
                .query_row("SELECT 1 FROM held WHERE hash = ?1", [&dep.0[..]], |_| {
                    Ok(())
                })
                .optional()?
                .is_some();
            if !held {
                self.need.insert((record_id, dep.0));
            }
        }
        Ok(())
    }

    /// Applies one change whose dependencies are present. Returns whether it was accepted.
    fn apply(
        &mut self,
        record_id: Uuid,
        change: Change,
        bytes: &[u8],
        origin: Uuid,
    ) -> StorageResult<bool> {
        let hash = change.hash();
        let Some(loaded) = self.docs.get_mut(&record_id) else {
            return Ok(false);
        };
        let before = loaded.state.clone();
        let mut candidate = loaded.doc.fork();
        let verdict = match candidate.apply([change]) {
            Err(_) => Err(RejectCode::Invalid),
            Ok(()) => match candidate.view() {
                Err(_) => Err(RejectCode::Invalid),
                Ok(after) => {
                    let after = state_of(&after);
                    // A held change released now is judged by the scope of the device that
                    // sent it, not of the one whose push completed its dependencies.
                    let scope = if origin == self.device {
                        self.scope.clone()
                    } else {
                        super::accounts::user_of_device(self.tx, origin)?
                            .map(|u| Scope::for_user(&u))
                            .unwrap_or_default()
                    };
                    check_scope(&scope, before.as_ref())
                        .and(check_scope(&scope, Some(&after)))
                        .map(|()| after)
                }
            },
        };
        let after = match verdict {
            Ok(after) => after,
            Err(code) => {
                // Only the sender can act on a refusal; another device's held change that fails
                // is refused to its sender when it pushes it again.
                if origin == self.device {
                    self.outcome.rejected.push(Rejection {
                        hash: hash.0,
                        record_id,
                        code,
                    });
                }
                return Ok(false);
            }
        };
        loaded.doc = candidate;
        loaded.dirty = true;
        self.tx.execute(
            "INSERT INTO changes (hash, record_id, bytes, origin_device) VALUES (?1, ?2, ?3, ?4)",
            params![&hash.0[..], record_id.as_bytes(), bytes, origin.as_bytes()],
        )?;
        let stream = stream_of(Some(&after));
        let moved = stream != stream_of(loaded.state.as_ref());
        loaded.state = Some(after);
        if moved {
            // The record moved into another stream (or got its first one): relog its whole
            // history there, so devices of the new commune receive all of it in causal order.
            if let Some(s) = &stream {
                self.tx.execute(
                    "INSERT INTO log (stream, record_id, hash, origin_device)
                     SELECT ?1, record_id, hash, origin_device FROM changes WHERE record_id = ?2 ORDER BY seq",
                    params![s, record_id.as_bytes()],
                )?;
            }
        } else if let Some(s) = &stream {
            self.tx.execute(
                "INSERT INTO log (stream, record_id, hash, origin_device) VALUES (?1, ?2, ?3, ?4)",
                params![s, record_id.as_bytes(), &hash.0[..], origin.as_bytes()],
            )?;
        }
        if origin == self.device {
            self.outcome.acked.push(hash.0);
        }
        Ok(true)
    }

    /// Applies held changes of this record whose dependencies have now all arrived.
    fn release_held(&mut self, record_id: Uuid) -> StorageResult<()> {
        loop {
            let held: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> = {
                let mut stmt = self.tx.prepare_cached(
                    "SELECT hash, bytes, origin_device FROM held WHERE record_id = ?1",
                )?;
                let rows = stmt.query_map([record_id.as_bytes()], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?;
                rows.collect::<Result<_, _>>()?
            };
            let mut progress = false;
            for (hash, bytes, origin) in held {
                let change = decode_change(&bytes)?;
                if !self.missing_deps(record_id, &change)?.is_empty() {
                    continue;
                }
                self.tx
                    .execute("DELETE FROM held WHERE hash = ?1", [&hash])?;
                let origin = super::uuid_col(origin)?;
                if self.apply(record_id, change, &bytes, origin)? {
                    progress = true;
                }
            }
            if !progress {
                return Ok(());
            }
        }
    }
}

fn check_scope(scope: &Scope, state: Option<&State>) -> Result<(), RejectCode> {
    let Some((record_type, commune)) = state else {
        return Ok(());
    };
    if record_type.is_sensitive() && !scope.sensitive {
        return Err(RejectCode::NotPermitted);
    }
    match commune {
        Some(c) if scope.allows(*record_type, c) => Ok(()),
        _ => Err(RejectCode::OutOfScope),
    }
}
