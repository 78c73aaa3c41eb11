//! Supervisor endpoints over the merged view: list and read merged records with their
//! validation problems and field conflicts, within the supervisor's areas.

use super::error::ApiError;
use super::{auth_header, caller, json_body, require_role, respond, with_state, AppState};
use crate::storage::{RecordEdit, Role};
use fieldsync_core::RecordType;
use serde::Deserialize;
use uuid::Uuid;
use warp::reply::{Json, Response};
use warp::Filter;

#[derive(Deserialize)]
struct ListQuery {
    #[serde(rename = "type")]
    record_type: Option<String>,
    q: Option<String>,
    limit: Option<u32>,
}

async fn list(state: AppState, auth: Option<String>, query: ListQuery) -> Result<Json, ApiError> {
    let caller = caller(&state, auth).await?;
    require_role(&caller, &[Role::Supervisor, Role::Admin])?;
    let record_type = match query.record_type.as_deref() {
        None | Some("") => None,
        Some(t) => Some(
            RecordType::parse(t)
                .ok_or_else(|| ApiError::BadRequest(format!("unknown record type {t}")))?,
        ),
    };
    let scope = caller.scope();
    let limit = query.limit.unwrap_or(200).min(1000);
    let records = state
        .blocking(move |storage| {
            Ok(storage.list_merged(&scope, record_type, query.q.as_deref(), limit)?)
        })
        .await?;
    Ok(warp::reply::json(&records))
}

async fn get(id: String, state: AppState, auth: Option<String>) -> Result<Json, ApiError> {
    let caller = caller(&state, auth).await?;
    require_role(&caller, &[Role::Supervisor, Role::Admin])?;
    let id =
        Uuid::parse_str(&id).map_err(|_| ApiError::BadRequest("record id is not a UUID".into()))?;
    let record = state
        .blocking(move |storage| Ok(storage.merged_record(id)?))
        .await?;
    let scope = caller.scope();
    match record {
        Some(r) if r.visible_to(&scope) => Ok(warp::reply::json(&r)),
        // Out of scope looks the same as absent: no hint that a sensitive record exists.
        _ => Err(ApiError::NotFound("record".into())),
    }
}

async fn edit(
    id: String,
    state: AppState,
    auth: Option<String>,
    edit: RecordEdit,
) -> Result<Json, ApiError> {
    let caller = caller(&state, auth).await?;
    require_role(&caller, &[Role::Supervisor])?;
    let id =
        Uuid::parse_str(&id).map_err(|_| ApiError::BadRequest("record id is not a UUID".into()))?;
    let scope = caller.scope();
    let device = caller.device.id;
    let record = state
        .blocking(move |storage| {
            let in_scope = storage
                .merged_record(id)?
                .is_some_and(|r| r.visible_to(&scope));
            if !in_scope {
                return Err(ApiError::NotFound("record".into()));
            }
            storage.edit_record(device, &scope, id, &edit)?;
            Ok(storage.merged_record(id)?)
        })
        .await?;
    tracing::info!(record = %id, %device, "supervisor edit");
    Ok(warp::reply::json(&record))
}

pub fn routes(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let list = warp::path!("v1" / "records")
        .and(warp::get())
        .and(with_state(state.clone()))
        .and(auth_header())
        .and(warp::query::<ListQuery>())
        .then(|s, a, q| async move { respond(list(s, a, q).await) });
    let get = warp::path!("v1" / "records" / String)
        .and(warp::get())
        .and(with_state(state.clone()))
        .and(auth_header())
        .then(|id, s, a| async move { respond(get(id, s, a).await) });
    let edit = warp::path!("v1" / "records" / String / "edits")
        .and(warp::post())
        .and(with_state(state))
        .and(auth_header())
        .and(json_body())
        .then(|id, s, a, e| async move { respond(edit(id, s, a, e).await) });
    list.or(get).unify().or(edit).unify()
}
