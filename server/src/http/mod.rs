//! The HTTP API as warp filters: sync, enrolment, admin and supervisor endpoints, all
//! answering errors as JSON. The TLS listener that carries them is in [`crate::listener`].

mod admin;
mod audit;
mod auth;
mod budget;
pub mod compress;
mod duplicates;
pub mod error;
mod indicators;
mod query;
mod records;
mod session;
mod state;
mod sync;
mod web;

use crate::accounts;
use crate::storage::{Caller, Role};
pub(crate) use auth::{caller, credentials, Credentials};
use error::ApiError;
use serde::{Deserialize, Serialize};
pub use state::AppState;
use warp::{Filter, Rejection, Reply};

/// Largest sync request body accepted, compressed; a phone pushes 64 KiB batches.
pub const MAX_REQUEST_BYTES: u64 = 1024 * 1024;
/// Largest sync request message accepted, inflated.
pub const MAX_REQUEST_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// The peer address of a connection, put into each request by the listener.
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub std::net::IpAddr);

pub(crate) fn require_role(caller: &Caller, roles: &[Role]) -> Result<(), ApiError> {
    if roles.contains(&caller.user.role) {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}

pub(crate) fn with_state(
    state: AppState,
) -> impl Filter<Extract = (AppState,), Error = std::convert::Infallible> + Clone {
    warp::any().map(move || state.clone())
}

/// A JSON body of at most 64 KiB, whatever Content-Type the client sent (curl's default is a
/// form type), with a JSON error naming what is wrong.
pub(crate) fn json_body<T: serde::de::DeserializeOwned + Send>(
) -> impl Filter<Extract = (T,), Error = Rejection> + Clone {
    warp::body::content_length_limit(64 * 1024)
        .and(warp::body::bytes())
        .and_then(|body: bytes::Bytes| async move {
            serde_json::from_slice::<T>(&body)
                .map_err(|e| warp::reject::custom(InvalidJson(e.to_string())))
        })
}

/// A request body that is not the JSON an endpoint expects.
#[derive(Debug)]
pub(crate) struct InvalidJson(pub String);

impl warp::reject::Reject for InvalidJson {}

/// Turns a handler's JSON result into a response, errors included.
pub(crate) fn respond_json(result: Result<serde_json::Value, ApiError>) -> warp::reply::Response {
    respond(result.map(|v| warp::reply::json(&v)))
}

/// Turns a handler result into a response, errors included.
pub(crate) fn respond<T: Reply>(result: Result<T, ApiError>) -> warp::reply::Response {
    match result {
        Ok(reply) => reply.into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnrolRequest {
    username: String,
    password: String,
    #[serde(default)]
    device_name: String,
    /// The secret (64 hex characters) the phone's Automerge actor is derived from; the server
    /// binds that actor to this enrolment and accepts no other from it.
    #[serde(default)]
    actor_key: Option<String>,
}

/// Parses an actor key: 32 bytes as 64 hex characters.
fn parse_actor_key(hex: &str) -> Result<[u8; 32], ApiError> {
    let invalid = || ApiError::BadRequest("actor_key: must be 64 hex characters".into());
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid());
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| invalid())?;
    }
    Ok(key)
}

#[derive(Serialize)]
struct EnrolResponse {
    device_id: String,
    token: String,
    username: String,
    role: Role,
    areas: Vec<String>,
    sensitive_access: bool,
}

async fn enrol(
    state: AppState,
    peer: Option<Peer>,
    body: EnrolRequest,
) -> Result<warp::reply::Json, ApiError> {
    if body.username.len() > accounts::MAX_USERNAME_BYTES
        || body.password.len() > accounts::MAX_PASSWORD_BYTES
    {
        // Refused before any throttling state or hashing is spent on it.
        return Err(ApiError::BadCredentials);
    }
    let actor_key = body.actor_key.as_deref().map(parse_actor_key).transpose()?;
    let source = peer.map_or(std::net::IpAddr::from([0, 0, 0, 0]), |p| p.0);
    let attempt = state
        .throttle
        .begin(&body.username, source, crate::storage::sqlite::now_ms())
        .map_err(|t| ApiError::Throttled(t.retry_after_secs))?;
    let result = state
        .hashing(move |storage| {
            Ok(accounts::enrol(
                storage,
                &body.username,
                &body.password,
                &body.device_name,
                actor_key,
            )?)
        })
        .await;
    match &result {
        Ok(_) => attempt.finish(true, crate::storage::sqlite::now_ms()),
        Err(ApiError::BadCredentials) => attempt.finish(false, crate::storage::sqlite::now_ms()),
        // Busy or failed for another reason: the attempt does not count either way.
        Err(_) => drop(attempt),
    }
    let (device, token, user) = result?;
    state
        .audit(
            None,
            Some(source),
            "enrol",
            Some(user.username.clone()),
            Some(format!("device {}", device.id)),
        )
        .await?;
    tracing::info!(device = %device.id, user = %user.username, "device enrolled");
    Ok(warp::reply::json(&EnrolResponse {
        device_id: device.id.to_string(),
        token,
        username: user.username,
        role: user.role,
        areas: user.areas,
        sensitive_access: user.sensitive_access,
    }))
}

/// Free and total bytes of the disk holding `dir`.
fn disk_space(dir: &std::path::Path) -> Option<(u64, u64)> {
    let stat = rustix::fs::statvfs(dir).ok()?;
    Some((
        stat.f_bavail.saturating_mul(stat.f_frsize),
        stat.f_blocks.saturating_mul(stat.f_frsize),
    ))
}

/// Below this much free space (or a tenth of a smaller disk) the server reports itself
/// degraded: writes may start failing.
const LOW_DISK_BYTES: u64 = 64 * 1024 * 1024;

/// `GET /v1/health`: 200 while the server can take writes, 503 when its disk is full (or
/// nearly), so that monitoring sees it before phones do.
fn health(state: AppState) -> warp::reply::Response {
    let space = state.data_dir.as_deref().and_then(disk_space);
    let free = space.map(|(free, _)| free);
    let low = space.is_some_and(|(free, total)| free < LOW_DISK_BYTES.min(total / 10));
    let full = state.storage.disk_full() || low;
    let body = serde_json::json!({
        "status": if full { "degraded" } else { "ok" },
        "version": env!("CARGO_PKG_VERSION"),
        "protocol": fieldsync_core::protocol::PROTOCOL_VERSION,
        "disk": { "full": full, "free_bytes": free },
    });
    let status = if full {
        warp::http::StatusCode::SERVICE_UNAVAILABLE
    } else {
        warp::http::StatusCode::OK
    };
    warp::reply::with_status(warp::reply::json(&body), status).into_response()
}

/// All routes.
pub fn routes(
    state: AppState,
) -> impl Filter<Extract = (warp::reply::Response,), Error = std::convert::Infallible> + Clone {
    let health = warp::path!("v1" / "health")
        .and(warp::get())
        .and(with_state(state.clone()))
        .map(health);
    let enrol = warp::path!("v1" / "enrol")
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(warp::ext::optional::<Peer>())
        .and(json_body())
        .then(|s, p, b| async move { respond(enrol(s, p, b).await) });
    health
        .or(enrol)
        .unify()
        .or(sync::route(state.clone()))
        .unify()
        .or(admin::routes(state.clone()))
        .unify()
        .or(records::routes(state.clone()))
        .unify()
        .or(duplicates::routes(state.clone()))
        .unify()
        .or(session::routes(state.clone()))
        .unify()
        .or(audit::routes(state.clone()))
        .unify()
        .or(indicators::routes(state))
        .unify()
        .or(web::routes())
        .unify()
        .recover(error::recover)
        .unify()
}
