//! The server's half of the sync protocol (docs/sync-protocol.md), written once over a narrow
//! storage interface (`store.rs`) that both backends implement: the push step (`push.rs`,
//! judging each change with `judge.rs`), the pull step (`pull.rs`), and [`exchange`], the
//! whole of one request in the order the HTTP handler runs it. `memory.rs` is a store in
//! memory for tests of the steps alone.

mod judge;
pub mod memory;
mod own;
mod pull;
mod push;
pub mod store;

pub use own::{doc_for_writing, edit_record, ingest_own, own_actor, OwnWrites};
pub use pull::{pull, MAX_PAGE_BYTES, MIN_PAGE_BYTES};
pub use push::{
    push, push_own, HELD_TTL_MS, INGEST_BUDGET, MAX_HELD_BYTES_PER_ACCOUNT, MAX_HELD_PER_ACCOUNT,
    MAX_PUSH_CHANGES,
};

use crate::scope::{Cursor, Presented, Scope};
use crate::storage::{decode_push, PullPage, PushOutcome, Pushed, StorageError, StorageResult};
use fieldsync_core::protocol::{SyncRequest, SyncResponse};
use std::time::Duration;
use store::{SyncStore, SyncWrite};
use uuid::Uuid;

/// Runs `f` in one write transaction of `store` and returns its value. `f` may run more than
/// once (a backend with several writers retries a transaction that lost a race), so it must
/// not keep anything outside the transaction between runs.
pub fn write<T, S: SyncStore + ?Sized>(
    store: &S,
    mut f: impl FnMut(&mut dyn SyncWrite) -> StorageResult<T>,
) -> StorageResult<T> {
    let mut out = None;
    store.write(&mut |tx| {
        out = Some(f(tx)?);
        Ok(())
    })?;
    out.ok_or(StorageError::Closed)
}

/// A decoded sync request: where the device stands and what it pushes.
pub struct Request {
    pub cursor: Presented,
    pub max_pull_bytes: u64,
    pub pushed: Vec<Pushed>,
}

impl Request {
    /// Decodes a request for the database `server_id`; a malformed one changes nothing.
    pub fn decode(request: SyncRequest, server_id: &[u8; 16]) -> StorageResult<Request> {
        let cursor = Cursor::read(&request.cursor, server_id).map_err(StorageError::Invalid)?;
        let max_pull_bytes = request.max_pull_bytes;
        Ok(Request {
            cursor,
            max_pull_bytes,
            pushed: decode_push(request, MAX_PUSH_CHANGES)?,
        })
    }
}

/// The push half of an exchange: one write transaction, committed before the pull reads.
pub fn push_changes<S: SyncStore + ?Sized>(
    store: &S,
    sender: Uuid,
    scope: &Scope,
    pushed: &[Pushed],
    now_ms: i64,
    budget: Duration,
) -> StorageResult<PushOutcome> {
    if pushed.is_empty() {
        return Ok(PushOutcome::default());
    }
    write(store, |tx| push(tx, sender, scope, pushed, now_ms, budget))
}

/// The answer to an exchange, from what its push and pull did.
pub fn response(outcome: PushOutcome, page: PullPage, server_id: [u8; 16]) -> SyncResponse {
    SyncResponse {
        acked: outcome.acked,
        rejected: outcome.rejected,
        need: outcome.need,
        pull: page.changes,
        cursor: page.cursor.encode(&server_id),
        more: page.more,
        server_id,
    }
}

/// One whole exchange without the HTTP policy around it (budgets, audit): decode, push, pull,
/// answer, in the order the handler (`http/sync.rs`) runs the same steps.
pub fn exchange<S: SyncStore + ?Sized>(
    store: &S,
    sender: Uuid,
    scope: &Scope,
    request: SyncRequest,
    now_ms: i64,
) -> StorageResult<SyncResponse> {
    let server_id = store.server_id();
    let request = Request::decode(request, &server_id)?;
    let outcome = push_changes(store, sender, scope, &request.pushed, now_ms, INGEST_BUDGET)?;
    let cursor = match request.cursor {
        Presented::Current(cursor) => cursor,
        // The handler lets a device start over once after a restore; alone, it always may.
        Presented::Empty | Presented::Foreign => Cursor::default(),
    };
    let page = pull(store, scope, cursor, sender, request.max_pull_bytes)?;
    Ok(response(outcome, page, server_id))
}

/// [`exchange`] for an authenticated caller, at the server's clock.
pub fn exchange_as<S: SyncStore + ?Sized>(
    store: &S,
    caller: &crate::storage::Caller,
    request: &SyncRequest,
) -> StorageResult<SyncResponse> {
    exchange(
        store,
        caller.device.id,
        &caller.scope(),
        request.clone(),
        crate::storage::now_ms(),
    )
}
