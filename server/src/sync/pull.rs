//! The pull step: a page of the change log for a device, stream by stream from its cursor, up
//! to a byte budget, skipping (but moving past) changes the device itself sent.

use super::store::{SyncRead, SyncStore};
use crate::scope::{is_sensitive_stream, Cursor, Scope};
use crate::storage::{PullPage, StorageError, StorageResult};
use fieldsync_core::protocol::ChangeEntry;
use std::collections::BTreeSet;
use uuid::Uuid;

/// Bounds on the page size a device may ask for.
pub const MIN_PAGE_BYTES: u64 = 1024;
pub const MAX_PAGE_BYTES: u64 = 4 * 1024 * 1024;
const ROWS_PER_READ: usize = 256;

/// Reads one page from one consistent state of the log.
pub fn pull<S: SyncStore + ?Sized>(
    store: &S,
    scope: &Scope,
    cursor: Cursor,
    device: Uuid,
    max_bytes: u64,
) -> StorageResult<PullPage> {
    let mut page = None;
    store.read(&mut |log| {
        page = Some(page_of(log, scope, &cursor, device, max_bytes)?);
        Ok(())
    })?;
    page.ok_or(StorageError::Closed)
}

fn page_of(
    log: &mut dyn SyncRead,
    scope: &Scope,
    old: &Cursor,
    device: Uuid,
    max_bytes: u64,
) -> StorageResult<PullPage> {
    let budget = max_bytes.clamp(MIN_PAGE_BYTES, MAX_PAGE_BYTES) as usize;
    let streams: Vec<String> = match scope.streams() {
        Some(s) => s,
        // Every commune, but sensitive streams still only for roles allowed to see them.
        None => log
            .streams()?
            .into_iter()
            .filter(|s| scope.sensitive || !is_sensitive_stream(s))
            .collect(),
    };
    // Streams no longer in scope drop out of the cursor; new ones start from zero (backfill).
    let mut cursor = Cursor(
        streams
            .iter()
            .map(|s| (s.clone(), old.0.get(s).copied().unwrap_or(0)))
            .collect(),
    );
    let mut changes = Vec::new();
    let mut total = 0usize;
    // Support cases the page carries changes of, for the sync's audit entry.
    let mut cases = BTreeSet::new();
    for stream in &streams {
        loop {
            let from = cursor.0.get(stream).copied().unwrap_or(0);
            let entries = log.log_after(stream, from, ROWS_PER_READ)?;
            let fetched = entries.len();
            for entry in entries {
                if entry.origin != device {
                    if !changes.is_empty() && total + entry.bytes.len() > budget {
                        return Ok(PullPage {
                            changes,
                            cursor,
                            more: true,
                            sensitive_records: cases.len(),
                        });
                    }
                    total += entry.bytes.len();
                    let signature = entry.receipt.try_into().map_err(|_| {
                        StorageError::Corrupt("a stored change has no receipt".into())
                    })?;
                    if is_sensitive_stream(stream) {
                        cases.insert(entry.record_id);
                    }
                    changes.push(ChangeEntry {
                        record_id: entry.record_id,
                        bytes: entry.bytes,
                        signature,
                    });
                }
                cursor.0.insert(stream.clone(), entry.seq);
            }
            if fetched < ROWS_PER_READ {
                break;
            }
        }
    }
    Ok(PullPage {
        changes,
        cursor,
        more: false,
        sensitive_records: cases.len(),
    })
}
