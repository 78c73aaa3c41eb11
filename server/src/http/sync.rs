//! `POST /v1/sync`: one exchange of the sync protocol (docs/sync-protocol.md). Everything cheap
//! is checked before the body is read (protocol header, token, this device's sync slot, its
//! account's pull budget, the declared length), the body is read with a time limit into memory
//! the server has room for, and only a request that pushes waits for its turn at the database
//! writer, within its account's push budget (`budget.rs`).

use super::error::{ApiError, DISK_FULL_RETRY_SECS};
use super::state::audit_entry;
use super::{
    caller, credentials, respond, with_state, AppState, Credentials, MAX_REQUEST_BYTES,
    MAX_REQUEST_MESSAGE_BYTES,
};
use crate::listener::RateLimitedLog;
use crate::storage::{now_ms, Caller, PushOutcome, Pushed, StorageError, SYNC_CASES};
use crate::sync::{self, INGEST_BUDGET};
use bytes::Buf;
use fieldsync_core::protocol::{
    compress, decompress, SyncRequest, CONTENT_TYPE, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION,
    VERSION_HEADER,
};
use futures_util::{Stream, StreamExt};
use std::time::{Duration, Instant};
use warp::http::header::{CONTENT_ENCODING, CONTENT_TYPE as CONTENT_TYPE_HEADER, RETRY_AFTER};
use warp::reply::Response;
use warp::{Filter, Reply};

/// An oversized body is read and thrown away up to this much, so that a client still
/// sending sees the 413 instead of a broken connection.
const DRAIN_LIMIT: u64 = 8 * 1024 * 1024;
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

pub fn route(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    warp::path!("v1" / "sync")
        .and(warp::post())
        .and(with_state(state))
        .and(warp::header::optional::<String>(VERSION_HEADER))
        .and(credentials())
        .and(warp::header::optional::<u64>("content-length"))
        .and(warp::body::stream())
        .then(|state, version, auth, length, body| async move {
            respond(handle(state, version, auth, length, body).await)
        })
}

fn check_version(header: Option<String>) -> Result<(), ApiError> {
    let found =
        header.ok_or_else(|| ApiError::BadRequest(format!("missing {VERSION_HEADER} header")))?;
    // The decimal digits of a version in range and nothing else (`3`, not `03` or `+3`): one
    // spelling, the one the protocol and the API document give.
    if (MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION).any(|v| found.trim() == v.to_string()) {
        return Ok(());
    }
    Err(ApiError::UpgradeNeeded {
        found,
        min: MIN_PROTOCOL_VERSION,
        max: PROTOCOL_VERSION,
    })
}

/// Reads exactly `length` bytes of body within `timeout`.
async fn read_body<S, B>(body: S, length: u64, timeout: Duration) -> Result<Vec<u8>, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let mut out = Vec::with_capacity(usize::try_from(length).unwrap_or(0));
    let read = async {
        futures_util::pin_mut!(body);
        while let Some(chunk) = body.next().await {
            let mut chunk =
                chunk.map_err(|e| ApiError::BadRequest(format!("reading body: {e}")))?;
            if out.len() as u64 + chunk.remaining() as u64 > length {
                return Err(ApiError::BadRequest(
                    "body longer than its Content-Length".into(),
                ));
            }
            while chunk.has_remaining() {
                let part = chunk.chunk();
                out.extend_from_slice(part);
                let n = part.len();
                chunk.advance(n);
            }
        }
        Ok(())
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| ApiError::Timeout)??;
    if out.len() as u64 != length {
        return Err(ApiError::BadRequest(
            "body shorter than its Content-Length".into(),
        ));
    }
    Ok(out)
}

/// Reads and discards up to [`DRAIN_LIMIT`] bytes of a refused body.
async fn drain<S, B>(body: S)
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let drain = async {
        futures_util::pin_mut!(body);
        let mut seen = 0u64;
        while let Some(Ok(chunk)) = body.next().await {
            seen += chunk.remaining() as u64;
            if seen > DRAIN_LIMIT {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, drain).await;
}

async fn handle<S, B>(
    state: AppState,
    version: Option<String>,
    auth: Credentials,
    length: Option<u64>,
    body: S,
) -> Result<Response, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    check_version(version)?;
    let peer = auth.peer;
    let caller = caller(&state, auth).await?;
    let _slot = state.sync_slot(&caller)?;
    let account = caller.user.id;
    // A spent pull budget is refused before a byte of body is read.
    let pull_room = state.budgets.pull_room(account, Instant::now())?;
    let length =
        length.ok_or_else(|| ApiError::BadRequest("a Content-Length header is required".into()))?;
    if length > MAX_REQUEST_BYTES {
        drain(body).await;
        return Err(ApiError::BodyTooLarge);
    }
    let _room = state.body_room(length)?;
    let body = read_body(body, length, state.timeouts.body).await?;
    let device = caller.device.id;
    let started = Instant::now();

    // The steps of `sync::exchange`, with this server's policy between them.
    let request = state
        .sync_work(move |storage| {
            let message = decompress(&body, MAX_REQUEST_MESSAGE_BYTES)?;
            let request = SyncRequest::decode(&message)?;
            Ok(sync::Request::decode(request, &storage.server_id())?)
        })
        .await?;
    let sync::Request {
        cursor: presented,
        max_pull_bytes: max_pull,
        pushed,
    } = request;
    if !pushed.is_empty() && !caller.signs {
        // Enrolled before protocol 3: its changes could only be refused, and a phone recovers
        // from refusals by giving its edits up. It enrols again with its key instead.
        return Err(ApiError::Unsigned);
    }
    let pushed = within_push_budget(&state, account, pushed)?;
    let cursor = state.budgets.cursor(device, presented, Instant::now())?;
    let pushed_count = pushed.len();
    let (outcome, deferred) = ingest(&state, &caller, pushed).await?;
    state.budgets.spend_push(
        account,
        outcome.acked.len() + outcome.rejected.len(),
        Instant::now(),
    );
    let server_id = state.storage.server_id();
    let (scope, device_id) = (caller.scope(), caller.device.id);
    let page = state
        .sync_work(move |storage| {
            Ok(sync::pull(
                storage,
                &scope,
                cursor,
                device_id,
                max_pull.min(pull_room),
            )?)
        })
        .await?;
    let pulled_bytes = page.changes.iter().map(|c| c.bytes.len()).sum();
    state
        .budgets
        .spend_pull(account, pulled_bytes, Instant::now());
    if page.sensitive_records > 0 {
        // Which device now holds support cases, as a page view of one is: no entry, no answer
        // (the phone asks again with the same cursor). Written on the sync workers, so that
        // many phones receiving cases do not hold up the supervisors' page.
        let entry = audit_entry(
            true,
            Some(&caller),
            peer,
            SYNC_CASES,
            Some(caller.device.name.clone()),
            Some(format!("{} cases", page.sensitive_records)),
        );
        state
            .sync_work(move |storage| Ok(storage.audit(&entry)?))
            .await?;
    }
    // When the device last synced, for the administration; a full disk must not fail a pull.
    if let Err(e) = state
        .sync_work(move |storage| Ok(storage.note_sync(device, crate::storage::now_ms())?))
        .await
    {
        tracing::warn!(%device, "last sync not noted: {e}");
    }
    let response = sync::response(outcome, page, server_id);
    tracing::info!(
        %device,
        pushed = pushed_count,
        acked = response.acked.len(),
        rejected = response.rejected.len(),
        held_need = response.need.len(),
        pulled = response.pull.len(),
        pulled_bytes,
        more = response.more,
        deferred,
        ms = started.elapsed().as_millis() as u64,
        "sync"
    );
    let mut reply =
        warp::reply::with_status(compress(&response.encode()), warp::http::StatusCode::OK)
            .into_response();
    let headers = reply.headers_mut();
    headers.insert(
        CONTENT_TYPE_HEADER,
        warp::http::HeaderValue::from_static(CONTENT_TYPE),
    );
    headers.insert(
        CONTENT_ENCODING,
        warp::http::HeaderValue::from_static("gzip"),
    );
    headers.insert(
        VERSION_HEADER,
        warp::http::HeaderValue::from(u16::from(PROTOCOL_VERSION)),
    );
    if deferred {
        // Nothing of the push was answered: the phone keeps it and may say when it retries.
        headers.insert(
            RETRY_AFTER,
            warp::http::HeaderValue::from(DISK_FULL_RETRY_SECS),
        );
    }
    Ok(reply)
}

/// The changes of a push this account may still write now: all of them, the first ones (the
/// rest stay unanswered and are sent again, as after the ingest budget), or 429 when its push
/// budget is spent. A request that pushes nothing is never refused here.
fn within_push_budget(
    state: &AppState,
    account: i64,
    mut pushed: Vec<Pushed>,
) -> Result<Vec<Pushed>, ApiError> {
    if pushed.is_empty() {
        return Ok(pushed);
    }
    let room = state.budgets.push_room(account, Instant::now())?;
    pushed.truncate(room);
    Ok(pushed)
}

static PUSH_DEFERRED: RateLimitedLog = RateLimitedLog::new();

/// Ingests a push at the writer's turn; whether it was deferred. A push the full disk cannot
/// store is deferred rather than failing the request: nothing of it is answered (no ack, no
/// refusal, no `need`), so the phone keeps every change and sends it again, and the pull half
/// is served all the same: phones with unsent edits go on receiving while the disk is full.
async fn ingest(
    state: &AppState,
    caller: &Caller,
    pushed: Vec<Pushed>,
) -> Result<(PushOutcome, bool), ApiError> {
    if pushed.is_empty() {
        return Ok((PushOutcome::default(), false));
    }
    let _turn = state.write_turn().await?;
    let (scope, device) = (caller.scope(), caller.device.id);
    let stored = state
        .sync_work(move |storage| {
            Ok(sync::push_changes(
                storage,
                device,
                &scope,
                &pushed,
                now_ms(),
                INGEST_BUDGET,
            ))
        })
        .await?;
    match stored {
        Ok(outcome) => Ok((outcome, false)),
        Err(StorageError::DiskFull) => {
            PUSH_DEFERRED.warn(|suppressed| {
                tracing::error!(suppressed, "push deferred: the data disk is full");
            });
            Ok((PushOutcome::default(), true))
        }
        Err(e) => Err(e.into()),
    }
}
