//! `GET /v1/audit`: the audit log for admins, newest first. An admin of some areas sees what
//! the accounts it manages did; an admin of every area sees everything. Entries about support
//! cases (looks, reviews, edits, merges, case lists of indicators, syncs that delivered cases),
//! and so their number, only reach admins with sensitive access, who alone also get
//! `GET /v1/audit/sensitive-devices`: the devices support cases reached. The log can be
//! filtered (account, action, dates, record) and is read a bounded stretch at a time; records
//! it names come with their titles when the admin may see them (the one access rule).

use super::error::ApiError;
use super::query::{page_size, params};
use super::{caller, credentials, require_role, respond_json, with_state, AppState, Credentials};
use crate::accounts::{self, Authority};
use crate::dates::{iso_utc, vietnam_day_start};
use crate::storage::{AuditEntry, AuditFilter, Caller, Role, User};
use serde::Deserialize;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
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
    /// Only what this account did.
    user: Option<String>,
    action: Option<String>,
    /// Only entries about this record.
    record: Option<Uuid>,
    /// Calendar dates in Vietnam, both included.
    from: Option<String>,
    to: Option<String>,
}

/// Entries one request reads at most (newest first from `before`): a filter that matches
/// little answers with fewer entries and where to go on, rather than reading the whole log.
const SCAN: i64 = 20_000;

/// The actions whose target (and detail) name records by id.
pub(crate) const RECORD_ACTIONS: &[&str] = &[
    "view_case",
    "review",
    "edit",
    "merge",
    "unmerge",
    "dismiss_duplicate",
];

fn date(name: &str, value: Option<String>) -> Result<Option<i64>, ApiError> {
    super::query::nonempty(value)
        .map(|d| {
            vietnam_day_start(&d).ok_or_else(|| {
                ApiError::BadRequest(format!("{name}: {d} is not a date (YYYY-MM-DD)"))
            })
        })
        .transpose()
}

/// The record ids an entry names (target and detail), if its action is about records.
fn record_ids(entry: &AuditEntry) -> Vec<Uuid> {
    if !RECORD_ACTIONS.contains(&entry.action.as_str()) {
        return Vec::new();
    }
    let words = entry.target.iter().chain(entry.detail.iter());
    words
        .flat_map(|s| s.split(|c: char| !(c.is_ascii_hexdigit() || c == '-')))
        .filter_map(|w| Uuid::parse_str(w).ok())
        .collect()
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
    let from_ms = date("from", query.from)?;
    // `to` includes its day: entries before the next one.
    let to_ms = date("to", query.to)?.map(|t| t + 86_400_000);
    let scope = caller.scope();
    let admin = caller.user.clone();
    let mut filter = AuditFilter {
        device: query.device,
        username: super::query::nonempty(query.user),
        action: super::query::nonempty(query.action),
        record: query.record,
        from_ms,
        to_ms,
        with_sensitive: admin.sensitive_access,
        ..Default::default()
    };
    let (entries, next, records) = state
        .blocking(move |storage| {
            let users = storage.list_users()?;
            let top = match query.before {
                Some(b) => b,
                None => storage.audit_end()?,
            };
            filter.before = top;
            filter.floor = top.saturating_sub(SCAN).max(0);
            let mut out = Vec::new();
            // Reads in batches until the page is full of entries this admin may see, or the
            // stretch of the log one request reads is done.
            let next = loop {
                let batch = storage.list_audit(&filter, 500)?;
                let full = batch.len() == 500;
                if let Some(last) = batch.last() {
                    filter.before = last.seq;
                }
                out.extend(
                    batch
                        .into_iter()
                        .filter(|e| manages(&admin, &users, e.username.as_deref())),
                );
                if out.len() >= limit {
                    out.truncate(limit);
                    break out.last().map(|e| e.seq);
                }
                if !full {
                    break (filter.floor > 1).then_some(filter.floor);
                }
            };
            let ids: BTreeSet<Uuid> = out.iter().flat_map(record_ids).collect();
            let mut records = BTreeMap::new();
            for id in ids {
                // Another area's record reads as an unknown one: no title, no type.
                if let Some(r) = storage.merged_record(id)?.filter(|r| r.visible_to(&scope)) {
                    records.insert(
                        id.to_string(),
                        json!({ "title": r.title, "record_type": r.record_type }),
                    );
                }
            }
            Ok((out, next, records))
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
    Ok(json!({ "entries": entries, "next_before": next, "records": records }))
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
