//! `GET /v1/audit`: the audit log for admins, newest first. An admin of some areas sees what
//! the accounts it manages did; an admin of every area sees everything. Entries about support
//! cases (looks, reviews, edits, merges, case lists of indicators, syncs that delivered cases),
//! and so their number, only reach admins with sensitive access, who alone also get
//! `GET /v1/audit/sensitive-devices`: the devices support cases reached.

use super::error::ApiError;
use super::query::{page_size, params};
use super::{caller, credentials, require_role, respond_json, with_state, AppState, Credentials};
use crate::accounts::{self, Authority};
use crate::dates::iso_utc;
use crate::storage::{Caller, Role, User};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;
use warp::reply::Response;
use warp::Filter;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    before: Option<i64>,
    limit: Option<u32>,
    /// Only the entries of one device.
    device: Option<Uuid>,
}

/// Whether `admin` manages the account named `username` (`None`: no account, as for the
/// enrolment of an unknown name, which only admins of everything see).
fn manages(admin: &User, users: &[User], username: Option<&str>) -> bool {
    let Some(name) = username else {
        return accounts::may_manage(Authority::Admin(admin), &["*".to_owned()]);
    };
    users
        .iter()
        .find(|u| u.username == name)
        .is_some_and(|u| accounts::may_manage(Authority::Admin(admin), &u.areas))
}

async fn admin(state: &AppState, auth: Credentials) -> Result<Caller, ApiError> {
    let caller = caller(state, auth).await?;
    require_role(&caller, &[Role::Admin])?;
    Ok(caller)
}

async fn list(
    state: AppState,
    auth: Credentials,
    query: AuditQuery,
) -> Result<serde_json::Value, ApiError> {
    let caller = admin(&state, auth).await?;
    let limit = page_size(query.limit, 100, 1, 500)? as usize;
    let admin = caller.user.clone();
    let with_sensitive = admin.sensitive_access;
    let entries = state
        .blocking(move |storage| {
            let users = storage.list_users()?;
            let mut out = Vec::new();
            let mut before = query.before;
            // Reads in batches until the page is full of entries this admin may see.
            for _ in 0..20 {
                let batch = storage.list_audit(before, 500, query.device, with_sensitive)?;
                let Some(last) = batch.last() else { break };
                before = Some(last.seq);
                out.extend(
                    batch
                        .into_iter()
                        .filter(|e| manages(&admin, &users, e.username.as_deref())),
                );
                if out.len() >= limit {
                    break;
                }
            }
            out.truncate(limit);
            Ok(out)
        })
        .await?;
    let entries: Vec<_> = entries
        .into_iter()
        .map(|e| {
            let mut v = serde_json::to_value(&e).unwrap_or_default();
            v["at"] = json!(iso_utc(e.at_ms));
            v
        })
        .collect();
    Ok(json!({ "entries": entries }))
}

/// The devices support cases reached (by a sync that delivered them, or written on them) of
/// the accounts this admin manages; for admins with sensitive access only.
async fn sensitive_devices(
    state: AppState,
    auth: Credentials,
) -> Result<serde_json::Value, ApiError> {
    let caller = admin(&state, auth).await?;
    if !caller.user.sensitive_access {
        return Err(ApiError::Forbidden);
    }
    let admin = caller.user.clone();
    let devices = state
        .blocking(move |storage| {
            let users = storage.list_users()?;
            let mut devices = storage.sensitive_devices()?;
            devices.retain(|d| manages(&admin, &users, Some(&d.username)));
            Ok(devices)
        })
        .await?;
    let devices: Vec<_> = devices
        .into_iter()
        .map(|d| {
            let mut v = serde_json::to_value(&d).unwrap_or_default();
            v["first_delivery_at"] = json!(d.first_delivery_ms.map(iso_utc));
            v["last_delivery_at"] = json!(d.last_delivery_ms.map(iso_utc));
            v
        })
        .collect();
    Ok(json!({ "devices": devices }))
}

pub fn routes(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let list = warp::path!("v1" / "audit")
        .and(warp::get())
        .and(with_state(state.clone()))
        .and(credentials())
        .and(params::<AuditQuery>())
        .then(|s, a, q| async move { respond_json(list(s, a, q).await) });
    let devices = warp::path!("v1" / "audit" / "sensitive-devices")
        .and(warp::get())
        .and(with_state(state))
        .and(credentials())
        .then(|s, a| async move { respond_json(sensitive_devices(s, a).await) });
    list.or(devices).unify()
}
