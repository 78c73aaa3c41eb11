//! Supervisors' endpoints over the merged view: the filtered, counted, paged record list; a
//! record with its review, problems and conflicts (naming the person and device behind each
//! value); its history; and the review and edits. A record the caller may not see answers
//! exactly as an unknown one. Every look at a support case is written to the audit log, as an
//! entry only readers with sensitive access are given.

use super::error::ApiError;
use super::query::{bad, commune_filter, nonempty, page_size, params};
use super::{
    caller, credentials, json_body, require_role, respond_json, with_state, AppState, Credentials,
};
use crate::dates::{iso_utc, vietnam_day_start};
use crate::storage::{now_ms, Caller, MergedRecord, RecordEdit, RecordQuery, RecordSort, Role};
use fieldsync_core::model::{schema_of, Areas, FieldKind};
use fieldsync_core::record::ReviewPhase;
use fieldsync_core::RecordType;
use serde::Deserialize;
use serde_json::{json, Value as Json};
use uuid::Uuid;
use warp::reply::Response;
use warp::Filter;

const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 500;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    #[serde(rename = "type")]
    record_type: Option<String>,
    commune: Option<String>,
    review: Option<String>,
    conflicts: Option<bool>,
    problems: Option<bool>,
    deleted: Option<bool>,
    changed_since: Option<String>,
    q: Option<String>,
    sort: Option<String>,
    order: Option<String>,
    limit: Option<u32>,
    offset: Option<u32>,
}

impl ListQuery {
    pub(super) fn into_query(self) -> Result<RecordQuery, ApiError> {
        let record_type = nonempty(self.record_type)
            .map(|t| RecordType::parse(&t).ok_or_else(|| bad(&format!("unknown record type {t}"))))
            .transpose()?;
        let communes = commune_filter(self.commune)?;
        let review = nonempty(self.review)
            .map(|r| {
                ReviewPhase::parse(&r).ok_or_else(|| bad(&format!("unknown review state {r}")))
            })
            .transpose()?;
        let changed_since_ms = nonempty(self.changed_since)
            .map(|d| vietnam_day_start(&d).ok_or_else(|| bad("changed_since: a date YYYY-MM-DD")))
            .transpose()?;
        let sort = nonempty(self.sort)
            .map(|s| {
                RecordSort::parse(&s)
                    .ok_or_else(|| bad("sort: one of title, place, collector, updated, review"))
            })
            .transpose()?
            .unwrap_or_default();
        // The time of the last change reads newest first unless asked otherwise; the others A-Z.
        let descending = match nonempty(self.order).as_deref() {
            None => sort == RecordSort::Updated,
            Some("asc") => false,
            Some("desc") => true,
            Some(_) => return Err(bad("order: asc or desc")),
        };
        Ok(RecordQuery {
            record_type,
            communes,
            review,
            conflicts: self.conflicts,
            problems: self.problems,
            deleted: self.deleted.unwrap_or(false),
            changed_since_ms,
            search: nonempty(self.q),
            sort,
            descending,
            limit: page_size(self.limit, DEFAULT_PAGE, 1, MAX_PAGE)?,
            offset: self.offset.unwrap_or(0),
        })
    }
}

pub(super) fn commune_name(code: Option<&str>) -> Option<String> {
    Areas::bundled().get(code?).map(|a| a.name.clone())
}

/// Whether `caller` may write records: review, edit, undo a merge (admins only read them).
fn may_edit(caller: &Caller) -> bool {
    caller.user.role == Role::Supervisor
}

pub(super) async fn supervisor_or_admin(
    state: &AppState,
    auth: Credentials,
) -> Result<Caller, ApiError> {
    let caller = caller(state, auth).await?;
    require_role(&caller, &[Role::Supervisor, Role::Admin])?;
    Ok(caller)
}

async fn list(state: AppState, auth: Credentials, query: ListQuery) -> Result<Json, ApiError> {
    let caller = supervisor_or_admin(&state, auth).await?;
    let query = query.into_query()?;
    let scope = caller.scope();
    let (offset, limit) = (query.offset, query.limit);
    let page = state
        .blocking(move |storage| Ok(storage.list_records(&scope, &query)?))
        .await?;
    let records: Vec<Json> = page
        .records
        .iter()
        .map(|r| {
            let mut row = serde_json::to_value(r).unwrap_or(Json::Null);
            row["commune_name"] = json!(commune_name(r.commune.as_deref()));
            row["updated_at"] = json!(iso_utc(r.updated_ms));
            row
        })
        .collect();
    Ok(json!({
        "total": page.total,
        "offset": offset,
        "limit": limit,
        "records": records,
        "counts": page.counts,
    }))
}

/// The record if `caller` may see it; 404 otherwise, the same as for an unknown id.
pub(super) async fn visible(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<MergedRecord, ApiError> {
    let id =
        Uuid::parse_str(id).map_err(|_| ApiError::BadRequest("record id is not a UUID".into()))?;
    let scope = caller.scope();
    state
        .blocking(move |storage| Ok(storage.merged_record(id)?))
        .await?
        .filter(|r| r.visible_to(&scope))
        .ok_or_else(|| ApiError::NotFound("record".into()))
}

/// Writes a look at a support case to the audit log; the look is refused if it cannot be.
pub(super) async fn audit_look(
    state: &AppState,
    caller: &Caller,
    peer: Option<std::net::IpAddr>,
    record: &MergedRecord,
    what: &str,
) -> Result<(), ApiError> {
    if record.sensitive {
        state
            .audit_sensitive(
                Some(caller),
                peer,
                "view_case",
                Some(record.id.to_string()),
                Some(what.to_owned()),
            )
            .await?;
    }
    Ok(())
}

/// The record as the page shows it: values, sets, review, problems, and conflicts with the
/// person and device behind each value; with `with_view`, also the record as phones hold it.
async fn record_json(
    state: &AppState,
    caller: &Caller,
    record: MergedRecord,
    with_view: bool,
) -> Result<Json, ApiError> {
    let id = record.id;
    let actors: Vec<String> = record
        .conflicts
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["values"].as_array().cloned().unwrap_or_default())
        .filter_map(|v| v["device"].as_str().map(str::to_owned))
        .collect();
    let fallback = fieldsync_core::record::Review {
        state: record.review,
        comment: record.view["review_comment"].as_str().map(str::to_owned),
        changed_fields: Vec::new(),
    };
    let references = references(&record);
    let scope = caller.scope();
    let (review, authors, absorbed, refs) = state
        .blocking(move |storage| {
            // A record whose document cannot be read still shows its merged row; only what
            // changed since its approval is missing then.
            let review = storage.record_review(id).unwrap_or_else(|e| {
                tracing::error!(record = %id, error = %e, "reading the record's review");
                None
            });
            Ok((
                review,
                storage.authors(&actors)?,
                storage.absorbed_into(id, &scope)?,
                storage.resolve_records(&references)?,
            ))
        })
        .await?;
    let conflicts: Vec<Json> = record
        .conflicts
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let values: Vec<Json> = c["values"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|v| {
                    let author = v["device"]
                        .as_str()
                        .and_then(|a| authors.get(a))
                        .cloned()
                        .unwrap_or_default();
                    json!({ "value": v["value"], "author": author })
                })
                .collect();
            json!({ "field": c["field"], "values": values })
        })
        .collect();
    let view = &record.view;
    let mut out = json!({
        "id": record.id,
        "record_type": record.record_type,
        "commune": record.commune,
        "commune_name": commune_name(record.commune.as_deref()),
        "status": record.status,
        "title": record.title,
        "fields": view["fields"],
        "sets": view["sets"],
        "merged_into": view["merged_into"],
        "absorbed": absorbed,
        "refs": refs,
        "review": review.unwrap_or(fallback),
        "problems": record.problems,
        "conflicts": conflicts,
        "updated_at": iso_utc(record.updated_ms),
        "may_edit": may_edit(caller),
    });
    if with_view {
        out["view"] = record.view.clone();
    }
    Ok(out)
}

/// The record ids a record refers to (its household, group members, attendees, ...).
fn references(record: &MergedRecord) -> Vec<Uuid> {
    let view = &record.view;
    let mut ids = Vec::new();
    for spec in schema_of(record.record_type).fields {
        match spec.kind {
            FieldKind::Ref(_) => ids.extend(
                view["fields"][spec.name]
                    .as_str()
                    .and_then(|s| Uuid::parse_str(s).ok()),
            ),
            FieldKind::RefSet(_) => ids.extend(
                view["sets"][spec.name]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|m| m.as_str().and_then(|s| Uuid::parse_str(s).ok())),
            ),
            _ => {}
        }
    }
    ids
}

/// `?include=view`: also the record as phones hold it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordQueryParams {
    include: Option<String>,
}

impl RecordQueryParams {
    fn view(&self) -> Result<bool, ApiError> {
        match self.include.as_deref() {
            None | Some("") => Ok(false),
            Some("view") => Ok(true),
            Some(other) => Err(bad(&format!("unknown include {other}"))),
        }
    }
}

async fn get(
    id: String,
    state: AppState,
    auth: Credentials,
    params: RecordQueryParams,
) -> Result<Json, ApiError> {
    let with_view = params.view()?;
    let peer = auth.peer;
    let caller = supervisor_or_admin(&state, auth).await?;
    let record = visible(&state, &caller, &id).await?;
    audit_look(&state, &caller, peer, &record, "record").await?;
    record_json(&state, &caller, record, with_view).await
}

async fn history(id: String, state: AppState, auth: Credentials) -> Result<Json, ApiError> {
    let peer = auth.peer;
    let caller = supervisor_or_admin(&state, auth).await?;
    let record = visible(&state, &caller, &id).await?;
    audit_look(&state, &caller, peer, &record, "history").await?;
    let record_id = record.id;
    let entries = state
        .blocking(move |storage| Ok(storage.record_history(record_id)?))
        .await?;
    let changes: Vec<Json> = entries
        .into_iter()
        .map(|e| {
            json!({
                "received_at": iso_utc(e.received_ms),
                // The page's changes are written by the server: their time is its own.
                "made_at": (e.author.device_kind.as_deref() != Some("browser"))
                    .then(|| device_time(e.device_time_s))
                    .flatten(),
                "kind": e.kind,
                "author": e.author,
                "ops": e.ops,
            })
        })
        .collect();
    Ok(json!({ "changes": changes }))
}

/// A change's own time (seconds by its device's clock) as the history shows it, or null when
/// the change has none or one no clock could have read (before 2000, after 2100): a label from
/// the phone, never used for order.
fn device_time(seconds: i64) -> Option<String> {
    const Y2000: i64 = 946_684_800;
    const Y2100: i64 = 4_102_444_800;
    (Y2000..Y2100)
        .contains(&seconds)
        .then(|| iso_utc(seconds * 1000))
}

async fn edit(
    id: String,
    state: AppState,
    auth: Credentials,
    edit: RecordEdit,
) -> Result<Json, ApiError> {
    let peer = auth.peer;
    let caller = caller(&state, auth).await?;
    if !may_edit(&caller) {
        return Err(ApiError::Forbidden);
    }
    let record = visible(&state, &caller, &id).await?;
    let (record_id, sensitive) = (record.id, record.sensitive);
    let scope = caller.scope();
    let device = caller.device.id;
    // The log names what was done, never what was written: a comment (free text about a
    // woman, for any record type) stays with the record, where its readers are those of the
    // record.
    let (action, detail) = match &edit {
        RecordEdit::Review { state, comment } => (
            "review",
            match comment.as_deref().map(str::trim) {
                Some(c) if !c.is_empty() => format!("{}, with a comment", state.as_str()),
                _ => state.as_str().to_owned(),
            },
        ),
        RecordEdit::SetField { field, .. } => ("edit", format!("set {field}")),
        RecordEdit::ClearField { field } => ("edit", format!("clear {field}")),
    };
    let updated = state
        .blocking(move |storage| {
            crate::sync::edit_record(storage, device, &scope, record_id, &edit, now_ms())?;
            storage
                .merged_record(record_id)?
                .ok_or_else(|| ApiError::NotFound("record".into()))
        })
        .await?;
    state
        .audit_about(
            sensitive,
            Some(&caller),
            peer,
            action,
            Some(record_id.to_string()),
            Some(detail),
        )
        .await?;
    tracing::info!(record = %record_id, %device, action, "supervisor edit");
    record_json(&state, &caller, updated, false).await
}

/// Most records one bulk review names: bounds the writes (and audit entries) one request makes.
pub const MAX_BULK_REVIEW: usize = 200;

/// `POST /v1/records/review`: approve several records at once.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkReview {
    ids: Vec<Uuid>,
    state: fieldsync_core::record::ReviewState,
}

/// Why a bulk approval left a record as it was. A record the caller may not see is
/// `not_found`, as an unknown id is.
fn bulk_skip(record: Option<&MergedRecord>) -> Option<&'static str> {
    let Some(record) = record else {
        return Some("not_found");
    };
    if record.status != "active" {
        Some("not_active")
    } else if record.conflicts.as_array().is_some_and(|c| !c.is_empty()) {
        Some("conflicts")
    } else if record.problems.as_array().is_some_and(|p| !p.is_empty()) {
        Some("problems")
    } else if record.review == ReviewPhase::Approved {
        Some("already_approved")
    } else {
        None
    }
}

/// Approves each named record the caller may see that is active, without conflicts or
/// problems and not approved already, as one review edit each, audited like a single review;
/// the others are listed with the reason they were skipped.
async fn review_many(
    state: AppState,
    auth: Credentials,
    body: BulkReview,
) -> Result<Json, ApiError> {
    let peer = auth.peer;
    let caller = caller(&state, auth).await?;
    if !may_edit(&caller) {
        return Err(ApiError::Forbidden);
    }
    if body.state != fieldsync_core::record::ReviewState::Approved {
        return Err(bad("state: only approved is given in bulk"));
    }
    if body.ids.is_empty() || body.ids.len() > MAX_BULK_REVIEW {
        return Err(bad(&format!("ids: 1 to {MAX_BULK_REVIEW} record ids")));
    }
    let mut seen = std::collections::HashSet::new();
    let (mut approved, mut skipped) = (Vec::new(), Vec::new());
    for id in body.ids.into_iter().filter(|id| seen.insert(*id)) {
        let scope = caller.scope();
        let device = caller.device.id;
        let outcome = state
            .blocking(move |storage| {
                let record = storage.merged_record(id)?.filter(|r| r.visible_to(&scope));
                if let Some(why) = bulk_skip(record.as_ref()) {
                    return Ok(Err(why));
                }
                let edit = RecordEdit::Review {
                    state: fieldsync_core::record::ReviewState::Approved,
                    comment: None,
                };
                match crate::sync::edit_record(storage, device, &scope, id, &edit, now_ms()) {
                    Ok(()) => Ok(Ok(record.is_some_and(|r| r.sensitive))),
                    Err(e) => {
                        tracing::warn!(record = %id, error = %e, "bulk approval refused");
                        Ok(Err("refused"))
                    }
                }
            })
            .await?;
        match outcome {
            Ok(sensitive) => {
                state
                    .audit_about(
                        sensitive,
                        Some(&caller),
                        peer,
                        "review",
                        Some(id.to_string()),
                        Some("approved".into()),
                    )
                    .await?;
                approved.push(id);
            }
            Err(reason) => skipped.push(json!({ "id": id, "reason": reason })),
        }
    }
    tracing::info!(
        approved = approved.len(),
        skipped = skipped.len(),
        "bulk approval"
    );
    Ok(json!({ "approved": approved, "skipped": skipped }))
}

async fn areas(state: AppState, auth: Credentials) -> Result<Json, ApiError> {
    caller(&state, auth).await?;
    let areas: Vec<_> = Areas::bundled().all().collect();
    Ok(json!({ "areas": areas }))
}

pub fn routes(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let list = warp::path!("v1" / "records")
        .and(warp::get())
        .and(with_state(state.clone()))
        .and(credentials())
        .and(params::<ListQuery>())
        .then(|s, a, q| async move { respond_json(list(s, a, q).await) });
    let get = warp::path!("v1" / "records" / String)
        .and(warp::get())
        .and(with_state(state.clone()))
        .and(credentials())
        .and(params::<RecordQueryParams>())
        .then(|id, s, a, q| async move { respond_json(get(id, s, a, q).await) });
    let history = warp::path!("v1" / "records" / String / "history")
        .and(warp::get())
        .and(with_state(state.clone()))
        .and(credentials())
        .then(|id, s, a| async move { respond_json(history(id, s, a).await) });
    let edit = warp::path!("v1" / "records" / String / "edits")
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(credentials())
        .and(json_body())
        .then(|id, s, a, e| async move { respond_json(edit(id, s, a, e).await) });
    let review_many = warp::path!("v1" / "records" / "review")
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(credentials())
        .and(json_body())
        .then(|s, a, b| async move { respond_json(review_many(s, a, b).await) });
    let areas = warp::path!("v1" / "areas")
        .and(warp::get())
        .and(with_state(state))
        .and(credentials())
        .then(|s, a| async move { respond_json(areas(s, a).await) });
    list.or(review_many)
        .unify()
        .or(get)
        .unify()
        .or(history)
        .unify()
        .or(edit)
        .unify()
        .or(areas)
        .unify()
}
