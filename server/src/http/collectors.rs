//! `GET /v1/collectors`: each collector of the caller's areas with their last sync and the
//! records they registered in each of the last weeks, those silent longest first. Supervisors
//! and admins; a collector shows when one of her communes is in the caller's areas, and only
//! records the caller may see are counted (the one access rule), so a supervisor without
//! sensitive access learns nothing of support cases here.

use super::error::ApiError;
use super::query::{page_size, params};
use super::{caller, credentials, require_role, respond_json, with_state, AppState, Credentials};
use crate::dates::{iso_utc, vietnam_monday};
use crate::scope::{communes_of, Scope};
use crate::storage::{now_ms, visible, Role};
use serde::Deserialize;
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;
use warp::reply::Response;
use warp::Filter;

const WEEK_MS: i64 = 7 * 86_400_000;
/// A collector who has not synced for this long is silent.
const SILENT_MS: i64 = 7 * 86_400_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CollectorsQuery {
    /// How many weeks to count, this one included.
    weeks: Option<u32>,
}

async fn list(state: AppState, auth: Credentials, q: CollectorsQuery) -> Result<Json, ApiError> {
    let caller = caller(&state, auth).await?;
    require_role(&caller, &[Role::Supervisor, Role::Admin])?;
    let weeks = i64::from(page_size(q.weeks, 6, 1, 12)?);
    let scope = caller.scope();
    let now = now_ms();
    let (since, _) = vietnam_monday(now, weeks - 1);
    let starts: Vec<String> = (0..weeks)
        .rev()
        .map(|back| vietnam_monday(now, back).1)
        .collect();
    let (users, activity) = state
        .blocking(move |storage| Ok((storage.list_users()?, storage.activity(since, WEEK_MS)?)))
        .await?;
    let mut counts: BTreeMap<i64, Vec<u64>> = BTreeMap::new();
    for r in &activity.registrations {
        let week = usize::try_from(r.week).ok().filter(|&w| w < starts.len());
        if let Some(week) = week {
            if visible(&scope, r.record_type, r.commune.as_deref(), r.sensitive) {
                counts
                    .entry(r.user_id)
                    .or_insert_with(|| vec![0; starts.len()])[week] += r.count;
            }
        }
    }
    let mut rows: Vec<(Option<i64>, String, Json)> = users
        .iter()
        .filter(|u| u.role == Role::Collector && !u.disabled && in_areas(&scope, &u.areas))
        .map(|u| {
            let last = activity.last_sync.get(&u.id).copied();
            let registered = counts
                .get(&u.id)
                .cloned()
                .unwrap_or_else(|| vec![0; starts.len()]);
            let silent = last.is_none_or(|at| now - at >= SILENT_MS);
            let row = json!({
                "username": u.username,
                "full_name": u.full_name,
                "areas": u.areas,
                "last_sync_at": last.map(iso_utc),
                "silent": silent,
                "registered": registered,
            });
            (last, u.username.clone(), row)
        })
        .collect();
    // Never synced first, then the longest silent; the rest by name.
    rows.sort_by(|(la, na, _), (lb, nb, _)| {
        let silent = |l: &Option<i64>| l.is_none_or(|at| now - at >= SILENT_MS);
        silent(lb)
            .cmp(&silent(la))
            .then_with(|| match (silent(la), la, lb) {
                (true, _, _) => la.cmp(lb),
                _ => std::cmp::Ordering::Equal,
            })
            .then_with(|| na.cmp(nb))
    });
    let collectors: Vec<Json> = rows.into_iter().map(|(_, _, row)| row).collect();
    Ok(json!({ "weeks": starts, "collectors": collectors }))
}

/// Whether one of a collector's communes is in `scope`.
fn in_areas(scope: &Scope, areas: &[String]) -> bool {
    scope.all
        || communes_of(areas)
            .iter()
            .any(|c| scope.communes.contains(c))
}

pub fn routes(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    warp::path!("v1" / "collectors")
        .and(warp::get())
        .and(with_state(state))
        .and(credentials())
        .and(params::<CollectorsQuery>())
        .then(|s, a, q| async move { respond_json(list(s, a, q).await) })
}
