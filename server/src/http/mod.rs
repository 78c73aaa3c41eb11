//! The HTTP API as warp filters: sync, enrolment, admin and supervisor endpoints, all
//! answering errors as JSON. The TLS listener that carries them is in [`crate::listener`].

mod admin;
pub mod error;
mod records;
mod sync;

use crate::accounts;
use crate::storage::{Caller, Role, Storage};
use crate::workers::WorkerPool;
use error::ApiError;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use warp::{Filter, Rejection, Reply};

/// Largest request body accepted, compressed (sync) or JSON.
pub const MAX_REQUEST_BYTES: u64 = 4 * 1024 * 1024;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub storage: Arc<dyn Storage>,
    /// Runs storage calls. The embedded backend serialises writes anyway, so a small pool
    /// loses nothing and keeps memory flat.
    storage_pool: WorkerPool,
    /// Runs password hashing: each argon2 hash takes ~19 MiB and a core, so a burst of
    /// logins (every phone of a district after an outage) queues here instead of multiplying.
    password_pool: WorkerPool,
}

impl AppState {
    pub fn new(storage: Arc<dyn Storage>) -> std::io::Result<AppState> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(AppState {
            storage,
            storage_pool: WorkerPool::new("storage", 2)?,
            password_pool: WorkerPool::new("password", cores)?,
        })
    }

    /// Runs blocking storage work off the async threads.
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Storage) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let storage = self.storage.clone();
        self.storage_pool
            .run(move || f(storage.as_ref()))
            .await
            .map_err(|_| ApiError::Internal)?
    }

    /// Runs work that hashes a password.
    pub(crate) async fn hashing<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Storage) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let storage = self.storage.clone();
        self.password_pool
            .run(move || f(storage.as_ref()))
            .await
            .map_err(|_| ApiError::Internal)?
    }
}

/// Resolves the bearer token of a request to its caller, or 401.
pub(crate) async fn caller(
    state: &AppState,
    authorization: Option<String>,
) -> Result<Caller, ApiError> {
    let token = authorization
        .as_deref()
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(ApiError::Unauthorized)?
        .to_owned();
    state
        .blocking(move |storage| {
            accounts::authorise(storage, &token)?.ok_or(ApiError::Unauthorized)
        })
        .await
}

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

pub(crate) fn auth_header() -> impl Filter<Extract = (Option<String>,), Error = Rejection> + Clone {
    warp::header::optional::<String>("authorization")
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

/// Turns a handler result into a response, errors included.
pub(crate) fn respond<T: Reply>(result: Result<T, ApiError>) -> warp::reply::Response {
    match result {
        Ok(reply) => reply.into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
struct EnrolRequest {
    username: String,
    password: String,
    #[serde(default)]
    device_name: String,
    /// The Automerge actor the phone writes under (its store's device id); the server binds
    /// it to this enrolment and accepts no other from it.
    #[serde(default)]
    actor: Option<String>,
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

async fn enrol(state: AppState, body: EnrolRequest) -> Result<warp::reply::Json, ApiError> {
    let actor = body
        .actor
        .as_deref()
        .map(|a| {
            uuid::Uuid::parse_str(a)
                .map_err(|_| ApiError::BadRequest("actor: must be a UUID".into()))
        })
        .transpose()?;
    let (device, token, user) = state
        .hashing(move |storage| {
            Ok(accounts::enrol(
                storage,
                &body.username,
                &body.password,
                &body.device_name,
                actor,
            )?)
        })
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

/// All routes.
pub fn routes(
    state: AppState,
) -> impl Filter<Extract = (warp::reply::Response,), Error = std::convert::Infallible> + Clone {
    let health = warp::path!("v1" / "health").and(warp::get()).map(|| {
        warp::reply::json(&serde_json::json!({
            "status": "ok",
            "version": env!("CARGO_PKG_VERSION"),
            "protocol": fieldsync_core::protocol::PROTOCOL_VERSION,
        }))
        .into_response()
    });
    let enrol = warp::path!("v1" / "enrol")
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(json_body())
        .then(|s, b| async move { respond(enrol(s, b).await) });
    health
        .or(enrol)
        .unify()
        .or(sync::route(state.clone()))
        .unify()
        .or(admin::routes(state.clone()))
        .unify()
        .or(records::routes(state))
        .unify()
        .recover(error::recover)
        .unify()
}
