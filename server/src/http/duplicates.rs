//! The duplicates queue: candidate pairs with both records side by side and what differs,
//! "not a duplicate", merge, and undoing a merge. Supervisors only, within their areas: a pair
//! shows only when the caller may see both records, and a merge needs both (support cases: of
//! one commune, by an account with sensitive access; `storage::sqlite::duplicates`).

use super::error::ApiError;
use super::query::{bad, commune_filter, nonempty, page_size, params};
use super::records::{commune_name, visible};
use super::Credentials;
use super::{caller, credentials, json_body, require_role, respond_json, with_state, AppState};
use crate::dates::iso_utc;
use crate::storage::{Caller, DuplicatePair, DuplicateQuery, MergedRecord, PairState, Role};
use fieldsync_core::RecordType;
use serde::Deserialize;
use serde_json::{json, Value as Json};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;
use warp::reply::Response;
use warp::Filter;

const DEFAULT_PAGE: u32 = 20;
const MAX_PAGE: u32 = 200;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    state: Option<String>,
    #[serde(rename = "type")]
    record_type: Option<String>,
    commune: Option<String>,
    /// Only the pairs this record is in.
    record: Option<Uuid>,
    limit: Option<u32>,
    offset: Option<u32>,
}

impl ListQuery {
    fn into_query(self) -> Result<DuplicateQuery, ApiError> {
        let state = nonempty(self.state)
            .map(|s| PairState::parse(&s).ok_or_else(|| bad(&format!("unknown pair state {s}"))))
            .transpose()?
            .unwrap_or_default();
        let record_type = nonempty(self.record_type)
            .map(|t| match RecordType::parse(&t) {
                Some(t @ (RecordType::Person | RecordType::Household)) => Ok(t),
                _ => Err(bad(&format!(
                    "duplicates are of persons or households, not {t}"
                ))),
            })
            .transpose()?;
        let communes = commune_filter(self.commune)?;
        Ok(DuplicateQuery {
            state,
            record_type,
            communes,
            record: self.record,
            // 0 asks for the count alone (the page's menu badge).
            limit: page_size(self.limit, DEFAULT_PAGE, 0, MAX_PAGE)?,
            offset: self.offset.unwrap_or(0),
        })
    }
}

async fn supervisor(state: &AppState, auth: Credentials) -> Result<Caller, ApiError> {
    let caller = caller(state, auth).await?;
    require_role(&caller, &[Role::Supervisor])?;
    Ok(caller)
}

/// One side of a pair: what the queue shows of a record. `village`: a person's, from her
/// household (which she has none of her own).
fn side(record: &MergedRecord, village: Option<&String>) -> Json {
    let village = village.map_or_else(|| record.view["fields"]["village"].clone(), |v| json!(v));
    json!({
        "village": village,
        "id": record.id,
        "record_type": record.record_type,
        "commune": record.commune,
        "commune_name": commune_name(record.commune.as_deref()),
        "status": record.status,
        "title": record.title,
        "fields": record.view["fields"],
        "review": record.review,
        "updated_at": iso_utc(record.updated_ms),
    })
}

/// The villages of the persons in `pairs`, read from their households where the caller may see
/// them.
fn villages(
    storage: &dyn crate::storage::Storage,
    scope: &crate::scope::Scope,
    pairs: &[DuplicatePair],
) -> Result<BTreeMap<Uuid, String>, ApiError> {
    let mut out = BTreeMap::new();
    for record in pairs.iter().flat_map(|p| [&p.a, &p.b]) {
        let household = record.view["fields"]["household_id"]
            .as_str()
            .and_then(|h| Uuid::parse_str(h).ok());
        let Some(household) = household else { continue };
        let village = storage
            .merged_record(household)?
            .filter(|h| h.visible_to(scope))
            .and_then(|h| h.view["fields"]["village"].as_str().map(str::to_owned));
        if let Some(village) = village {
            out.insert(record.id, village);
        }
    }
    Ok(out)
}

fn pair_json(pair: &DuplicatePair, villages: &BTreeMap<Uuid, String>) -> Json {
    let (a, b) = (&pair.a.view["fields"], &pair.b.view["fields"]);
    let names: BTreeSet<&String> = a
        .as_object()
        .into_iter()
        .chain(b.as_object())
        .flat_map(|o| o.keys())
        .collect();
    let differences: Vec<&String> = names.into_iter().filter(|n| a[*n] != b[*n]).collect();
    json!({
        "a": side(&pair.a, villages.get(&pair.a.id)),
        "b": side(&pair.b, villages.get(&pair.b.id)),
        "reasons": pair.reasons,
        "score": pair.score,
        "state": pair.state,
        "differences": differences,
        "found_at": iso_utc(pair.found_ms),
        "decided_by": pair.decided_by,
        "decided_at": pair.decided_ms.map(iso_utc),
    })
}

async fn list(state: AppState, auth: Credentials, query: ListQuery) -> Result<Json, ApiError> {
    let caller = supervisor(&state, auth).await?;
    let query = query.into_query()?;
    let scope = caller.scope();
    let (offset, limit) = (query.offset, query.limit);
    let (page, villages) = state
        .blocking(move |storage| {
            let page = storage.list_duplicates(&scope, &query)?;
            let villages = villages(storage, &scope, &page.pairs)?;
            Ok((page, villages))
        })
        .await?;
    let pairs: Vec<Json> = page.pairs.iter().map(|p| pair_json(p, &villages)).collect();
    Ok(json!({ "total": page.total, "offset": offset, "limit": limit, "pairs": pairs }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PairBody {
    a: Uuid,
    b: Uuid,
}

async fn dismiss(state: AppState, auth: Credentials, body: PairBody) -> Result<Json, ApiError> {
    let peer = auth.peer;
    let caller = supervisor(&state, auth).await?;
    let scope = caller.scope();
    let by = caller.user.username.clone();
    let (a, b) = (body.a, body.b);
    let pair = state
        .blocking(move |storage| {
            storage.dismiss_duplicate(&scope, a, b, &by)?;
            storage
                .duplicate_pair(a, b)?
                .ok_or_else(|| ApiError::NotFound("duplicate pair".into()))
        })
        .await?;
    state
        .audit_about(
            pair.a.sensitive || pair.b.sensitive,
            Some(&caller),
            peer,
            "dismiss_duplicate",
            Some(a.to_string()),
            Some(b.to_string()),
        )
        .await?;
    Ok(pair_json(&pair, &BTreeMap::new()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MergeBody {
    keep: Uuid,
    duplicate: Uuid,
    /// Fields whose duplicate's value the kept record gets (filling a gap or replacing its
    /// own); absent: none.
    #[serde(default)]
    take: Vec<String>,
}

/// Most fields one merge may take over: every record type has fewer.
const MAX_TAKEN: usize = 32;

async fn merge(state: AppState, auth: Credentials, body: MergeBody) -> Result<Json, ApiError> {
    let peer = auth.peer;
    let caller = supervisor(&state, auth).await?;
    if body.take.len() > MAX_TAKEN {
        return Err(bad(&format!("at most {MAX_TAKEN} fields to take")));
    }
    if body.keep == body.duplicate {
        // A well-formed request about a record that exists: the record's state (it is the
        // kept one) is what stands in the way, as when either record is merged already.
        visible(&state, &caller, &body.keep.to_string()).await?;
        return Err(ApiError::Conflict(
            "a record cannot be merged into itself".into(),
        ));
    }
    let scope = caller.scope();
    let (device, by) = (caller.device.id, caller.user.username.clone());
    let (keep, duplicate) = (body.keep, body.duplicate);
    let take = body.take.clone();
    let pair = state
        .blocking(move |storage| {
            storage.merge_records(device, &scope, keep, duplicate, &take, &by)?;
            storage
                .duplicate_pair(keep, duplicate)?
                .ok_or_else(|| ApiError::NotFound("duplicate pair".into()))
        })
        .await?;
    state
        .audit_about(
            pair.a.sensitive || pair.b.sensitive,
            Some(&caller),
            peer,
            "merge",
            Some(duplicate.to_string()),
            Some(format!("into {keep}; took {}", body.take.join(", "))),
        )
        .await?;
    tracing::info!(%keep, %duplicate, %device, "records merged");
    Ok(pair_json(&pair, &BTreeMap::new()))
}

async fn unmerge(id: String, state: AppState, auth: Credentials) -> Result<Json, ApiError> {
    let peer = auth.peer;
    let caller = supervisor(&state, auth).await?;
    let record = visible(&state, &caller, &id).await?;
    let scope = caller.scope();
    let (device, duplicate) = (caller.device.id, record.id);
    let keep = state
        .blocking(move |storage| Ok(storage.unmerge_record(device, &scope, duplicate)?))
        .await?;
    state
        .audit_about(
            record.sensitive,
            Some(&caller),
            peer,
            "unmerge",
            Some(duplicate.to_string()),
            Some(format!("from {keep}")),
        )
        .await?;
    tracing::info!(%keep, %duplicate, %device, "merge undone");
    Ok(json!({ "record": duplicate, "was_merged_into": keep }))
}

pub fn routes(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let list = warp::path!("v1" / "duplicates")
        .and(warp::get())
        .and(with_state(state.clone()))
        .and(credentials())
        .and(params::<ListQuery>())
        .then(|s, a, q| async move { respond_json(list(s, a, q).await) });
    let dismiss = warp::path!("v1" / "duplicates" / "dismiss")
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(credentials())
        .and(json_body())
        .then(|s, a, b| async move { respond_json(dismiss(s, a, b).await) });
    let merge = warp::path!("v1" / "duplicates" / "merge")
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(credentials())
        .and(json_body())
        .then(|s, a, b| async move { respond_json(merge(s, a, b).await) });
    let unmerge = warp::path!("v1" / "records" / String / "unmerge")
        .and(warp::post())
        .and(with_state(state))
        .and(credentials())
        .then(|id, s, a| async move { respond_json(unmerge(id, s, a).await) });
    list.or(dismiss)
        .unify()
        .or(merge)
        .unify()
        .or(unmerge)
        .unify()
}
