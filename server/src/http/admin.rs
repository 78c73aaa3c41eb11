//! Admin endpoints: accounts, area assignments, devices (list, revoke), server statistics.

use super::error::ApiError;
use super::{auth_header, caller, json_body, require_role, respond, with_state, AppState};
use crate::accounts;
use crate::storage::{NewUser, Role};
use serde::Deserialize;
use uuid::Uuid;
use warp::reply::{Json, Response};
use warp::Filter;

#[derive(Deserialize)]
struct Areas {
    areas: Vec<String>,
}

async fn admin(state: &AppState, auth: Option<String>) -> Result<(), ApiError> {
    let caller = caller(state, auth).await?;
    require_role(&caller, &[Role::Admin])
}

async fn create_user(
    state: AppState,
    auth: Option<String>,
    user: NewUser,
) -> Result<Json, ApiError> {
    admin(&state, auth).await?;
    let user = state
        .hashing(move |storage| Ok(accounts::create_user(storage, &user)?))
        .await?;
    tracing::info!(user = %user.username, role = user.role.as_str(), "user created");
    Ok(warp::reply::json(&user))
}

async fn set_areas(
    username: String,
    state: AppState,
    auth: Option<String>,
    body: Areas,
) -> Result<Json, ApiError> {
    admin(&state, auth).await?;
    let user = state
        .blocking(move |storage| {
            accounts::check_areas(&body.areas)?;
            Ok(storage.set_user_areas(&username, &body.areas)?)
        })
        .await?;
    tracing::info!(user = %user.username, areas = ?user.areas, "areas assigned");
    Ok(warp::reply::json(&user))
}

async fn list_devices(state: AppState, auth: Option<String>) -> Result<Json, ApiError> {
    admin(&state, auth).await?;
    Ok(warp::reply::json(
        &state
            .blocking(|storage| Ok(storage.list_devices()?))
            .await?,
    ))
}

async fn revoke(id: String, state: AppState, auth: Option<String>) -> Result<Json, ApiError> {
    admin(&state, auth).await?;
    let id =
        Uuid::parse_str(&id).map_err(|_| ApiError::BadRequest("device id is not a UUID".into()))?;
    state
        .blocking(move |storage| Ok(storage.revoke_device(id)?))
        .await?;
    tracing::info!(device = %id, "device revoked");
    Ok(warp::reply::json(
        &serde_json::json!({ "revoked": id.to_string() }),
    ))
}

async fn stats(state: AppState, auth: Option<String>) -> Result<Json, ApiError> {
    admin(&state, auth).await?;
    Ok(warp::reply::json(
        &state.blocking(|storage| Ok(storage.stats()?)).await?,
    ))
}

pub fn routes(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let create = warp::path!("v1" / "admin" / "users")
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(auth_header())
        .and(json_body())
        .then(|s, a, b| async move { respond(create_user(s, a, b).await) });
    let areas = warp::path!("v1" / "admin" / "users" / String / "areas")
        .and(warp::put())
        .and(with_state(state.clone()))
        .and(auth_header())
        .and(json_body())
        .then(|u, s, a, b| async move { respond(set_areas(u, s, a, b).await) });
    let devices = warp::path!("v1" / "admin" / "devices")
        .and(warp::get())
        .and(with_state(state.clone()))
        .and(auth_header())
        .then(|s, a| async move { respond(list_devices(s, a).await) });
    let revoke = warp::path!("v1" / "admin" / "devices" / String / "revoke")
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(auth_header())
        .then(|d, s, a| async move { respond(revoke(d, s, a).await) });
    let stats = warp::path!("v1" / "admin" / "stats")
        .and(warp::get())
        .and(with_state(state))
        .and(auth_header())
        .then(|s, a| async move { respond(stats(s, a).await) });
    create
        .or(areas)
        .unify()
        .or(devices)
        .unify()
        .or(revoke)
        .unify()
        .or(stats)
        .unify()
}
