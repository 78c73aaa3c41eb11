//! The HTTP API as warp filters: sync, enrolment, admin and supervisor endpoints, all
//! answering errors as JSON. The TLS listener that carries them is in [`crate::listener`].

mod admin;
mod audit;
mod auth;
mod budget;
mod collectors;
pub mod compress;
mod duplicates;
pub mod error;
mod export;
pub(crate) mod headers;
mod indicators;
mod methods;
mod query;
mod records;
mod schema;
mod session;
mod state;
mod sync;
mod web;

use crate::storage::{Caller, DeviceKeys, Role};
use crate::{accounts, throttle};
pub(crate) use auth::{caller, credentials, Credentials};
use error::ApiError;
use fieldsync_core::protocol::{Enrolment, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION};
use serde::{Deserialize, Serialize};
pub use state::AppState;
use uuid::Uuid;
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
    /// The Ed25519 public key (64 hex characters) the phone signs its changes with; its
    /// Automerge actor is derived from it.
    #[serde(default)]
    public_key: Option<String>,
    /// The phone's signature (128 hex characters) of the username: it holds the secret.
    #[serde(default)]
    proof: Option<String>,
    /// Secrets of the protocol 2 actors the phone wrote under before its key.
    #[serde(default)]
    legacy_actor_keys: Vec<String>,
    /// Actors from before actors were derived from a key.
    #[serde(default)]
    legacy_actors: Vec<String>,
    /// What a protocol 2 phone sends instead of a public key: it must be updated.
    #[serde(default)]
    actor_key: Option<serde_json::Value>,
}

/// Parses `N` bytes written as 2N hex characters.
fn parse_hex<const N: usize>(field: &str, hex: &str) -> Result<[u8; N], ApiError> {
    let invalid = || ApiError::BadRequest(format!("{field}: must be {} hex characters", 2 * N));
    if hex.len() != 2 * N || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid());
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| invalid())?;
    }
    Ok(out)
}

/// The keys an enrolling phone shows, with the proof that it holds its key checked.
fn device_keys(body: &EnrolRequest) -> Result<Option<DeviceKeys>, ApiError> {
    if body.actor_key.is_some() {
        return Err(ApiError::UpgradeNeeded {
            found: "actor_key (protocol 2)".into(),
            min: MIN_PROTOCOL_VERSION,
            max: PROTOCOL_VERSION,
        });
    }
    let (public_key, proof) = match (&body.public_key, &body.proof) {
        (None, None) if body.legacy_actor_keys.is_empty() && body.legacy_actors.is_empty() => {
            return Ok(None)
        }
        (Some(key), Some(proof)) => (
            parse_hex::<32>("public_key", key)?,
            parse_hex::<64>("proof", proof)?,
        ),
        _ => {
            return Err(ApiError::BadRequest(
                "public_key and proof go together".into(),
            ))
        }
    };
    if body.legacy_actor_keys.len() + body.legacy_actors.len() > 8 {
        return Err(ApiError::BadRequest("at most 8 older actors".into()));
    }
    let shown = Enrolment {
        public_key,
        proof,
        legacy_actor_keys: body
            .legacy_actor_keys
            .iter()
            .map(|k| parse_hex::<32>("legacy_actor_keys", k))
            .collect::<Result<_, _>>()?,
        legacy_actors: body
            .legacy_actors
            .iter()
            .map(|a| {
                Uuid::parse_str(a)
                    .map_err(|_| ApiError::BadRequest("legacy_actors: must be UUIDs".into()))
            })
            .collect::<Result<_, _>>()?,
    };
    DeviceKeys::verified(&shown, &body.username)
        .map(Some)
        .ok_or_else(|| {
            ApiError::BadRequest("proof: not this key's signature of the username".into())
        })
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
    let keys = device_keys(&body)?;
    let source = peer.map_or(std::net::IpAddr::from([0, 0, 0, 0]), |p| p.0);
    let client = session::phone_client(&state, &body.username, source, keys.as_ref()).await?;
    let username = body.username.clone();
    let (device, token, user) = session::checked(
        &state,
        throttle::Via::Enrol,
        &username,
        source,
        client,
        move |storage| {
            Ok(accounts::enrol(
                storage,
                &body.username,
                &body.password,
                &body.device_name,
                keys.as_ref(),
            )?)
        },
    )
    .await?;
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

/// All routes: the documented path and method (else 405 or 404), then the route, every answer
/// with the headers of [`headers::secure`].
pub fn routes(
    state: AppState,
) -> impl Filter<Extract = (warp::reply::Response,), Error = std::convert::Infallible> + Clone {
    let hsts = state.hsts;
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
    let api = health
        .or(enrol)
        .unify()
        .or(sync::route(state.clone()))
        .unify()
        .or(admin::routes(state.clone()))
        .unify()
        // Before the records' routes, which would take `export.csv` for a record id.
        .or(export::routes(state.clone()))
        .unify()
        .or(records::routes(state.clone()))
        .unify()
        .or(schema::routes(state.clone()))
        .unify()
        .or(duplicates::routes(state.clone()))
        .unify()
        .or(session::routes(state.clone()))
        .unify()
        .or(audit::routes(state.clone()))
        .unify()
        .or(collectors::routes(state.clone()))
        .unify()
        .or(indicators::routes(state))
        .unify()
        .or(web::routes())
        .unify();
    methods::documented()
        .and(api)
        .recover(error::recover)
        .unify()
        .map(move |response| headers::secure(response, hsts))
}
