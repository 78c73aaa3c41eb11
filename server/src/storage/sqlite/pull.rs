//! Serving a page of the change log to a device: stream by stream, from its cursor, up to a
//! byte budget, skipping (but moving past) changes the device itself sent.

use crate::scope::{is_sensitive_stream, Cursor, Scope};
use crate::storage::{PullPage, StorageError, StorageResult};
use fieldsync_core::protocol::ChangeEntry;
use rusqlite::{params, Transaction};
use uuid::Uuid;

/// Bounds on the page size a device may ask for.
const MIN_PAGE_BYTES: u64 = 1024;
const MAX_PAGE_BYTES: u64 = 4 * 1024 * 1024;
const ROWS_PER_QUERY: i64 = 256;

/// (log seq, record id, change bytes, origin device, receipt) of one log entry.
type LogRow = (i64, Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>);

pub fn page(
    tx: &Transaction<'_>,
    scope: &Scope,
    old: Cursor,
    device: Uuid,
    max_bytes: u64,
) -> StorageResult<PullPage> {
    let budget = max_bytes.clamp(MIN_PAGE_BYTES, MAX_PAGE_BYTES) as usize;
    let streams: Vec<String> = match scope.streams() {
        Some(s) => s,
        None => {
            let mut stmt = tx.prepare_cached("SELECT DISTINCT stream FROM log ORDER BY stream")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            let all: Vec<String> = rows.collect::<Result<_, _>>()?;
            // Every commune, but sensitive streams still only for roles allowed to see them.
            all.into_iter()
                .filter(|s| scope.sensitive || !is_sensitive_stream(s))
                .collect()
        }
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
    let mut cases = std::collections::BTreeSet::new();
    let mut stmt = tx.prepare_cached(
        "SELECT l.seq, l.record_id, c.bytes, l.origin_device, c.receipt FROM log l JOIN changes c ON c.hash = l.hash
         WHERE l.stream = ?1 AND l.seq > ?2 ORDER BY l.seq LIMIT ?3",
    )?;
    for stream in &streams {
        loop {
            let from = cursor.0.get(stream).copied().unwrap_or(0);
            let rows: Vec<LogRow> = stmt
                .query_map(params![stream, from, ROWS_PER_QUERY], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?
                .collect::<Result<_, _>>()?;
            let fetched = rows.len();
            for (seq, record_id, bytes, origin, receipt) in rows {
                if origin.as_slice() != device.as_bytes() {
                    if !changes.is_empty() && total + bytes.len() > budget {
                        return Ok(PullPage {
                            changes,
                            cursor,
                            more: true,
                            sensitive_records: cases.len(),
                        });
                    }
                    total += bytes.len();
                    let signature = receipt.try_into().map_err(|_| {
                        StorageError::Corrupt("a stored change has no receipt".into())
                    })?;
                    if is_sensitive_stream(stream) {
                        cases.insert(record_id.clone());
                    }
                    changes.push(ChangeEntry {
                        record_id: super::uuid_col(record_id)?,
                        bytes,
                        signature,
                    });
                }
                cursor.0.insert(stream.clone(), seq);
            }
            if (fetched as i64) < ROWS_PER_QUERY {
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
