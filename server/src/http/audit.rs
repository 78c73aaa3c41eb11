//! `GET /v1/audit`: the audit log for admins, newest first. An admin of some areas sees what
//! the accounts it manages did; an admin of every area sees everything.

use super::error::ApiError;
use super::{caller, credentials, require_role, respond_json, with_state, AppState, Credentials};
use crate::accounts::{self, Authority};
use crate::dates::iso_utc;
use crate::storage::Role;
use serde::Deserialize;
use serde_json::json;
use warp::reply::Response;
use warp::Filter;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    before: Option<i64>,
    limit: Option<u32>,
}

async fn list(
    state: AppState,
    auth: Credentials,
    query: AuditQuery,
) -> Result<serde_json::Value, ApiError> {
    let caller = caller(&state, auth).await?;
    require_role(&caller, &[Role::Admin])?;
    let limit = query.limit.unwrap_or(100).clamp(1, 500) as usize;
    let admin = caller.user.clone();
    let entries = state
        .blocking(move |storage| {
            let users = storage.list_users()?;
            let managed = |username: Option<&str>| {
                let Some(name) = username else {
                    // Failed logins of unknown names and the like: for admins of everything.
                    return accounts::may_manage(Authority::Admin(&admin), &["*".to_owned()]);
                };
                users
                    .iter()
                    .find(|u| u.username == name)
                    .is_some_and(|u| accounts::may_manage(Authority::Admin(&admin), &u.areas))
            };
            let mut out = Vec::new();
            let mut before = query.before;
            // Reads in batches until the page is full of entries this admin may see.
            for _ in 0..20 {
                let batch = storage.list_audit(before, 500)?;
                let Some(last) = batch.last() else { break };
                before = Some(last.seq);
                out.extend(batch.into_iter().filter(|e| managed(e.username.as_deref())));
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

pub fn routes(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    warp::path!("v1" / "audit")
        .and(warp::get())
        .and(with_state(state))
        .and(credentials())
        .and(warp::query::<AuditQuery>())
        .then(|s, a, q| async move { respond_json(list(s, a, q).await) })
}
