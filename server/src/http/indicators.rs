//! Plan progress for supervisors and admins: the report of every indicator against the plan's
//! targets (JSON), the same as CSV and XLSX, and the records counted in a figure. Each caller
//! sees only the communes of their areas; victim figures need sensitive access, and exporting
//! them or listing the cases behind one is written to the audit log.

use super::error::ApiError;
use super::query::{page_size, params};
use super::{caller, credentials, require_role, respond, with_state, AppState, Credentials};
use crate::dates::iso_utc;
use crate::indicators::report::{self, ListRefusal};
use crate::indicators::{export, Day, Indicator, Report, Request};
use crate::storage::{Caller, Role};
use fieldsync_core::model::Areas;
use serde::Deserialize;
use serde_json::json;
use warp::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use warp::http::HeaderValue;
use warp::reply::Response;
use warp::{Filter, Reply};

const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 500;

/// `?as_of=YYYY-MM-DD&all_submitted=true`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportQuery {
    as_of: Option<String>,
    all_submitted: Option<bool>,
}

/// A drill-down: the report's query, the area, which part, and a page.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordsQuery {
    area: String,
    as_of: Option<String>,
    all_submitted: Option<bool>,
    /// `value` (the records in the figure, the default) or `denominator` (its population).
    part: Option<String>,
    limit: Option<u32>,
    offset: Option<u32>,
}

fn request(
    state: &AppState,
    as_of: Option<String>,
    all_submitted: Option<bool>,
) -> Result<Request, ApiError> {
    let as_of = match as_of.filter(|s| !s.trim().is_empty()) {
        // The plan's end: everything the plan achieved, without reading the server's clock.
        None => state.plan.end,
        Some(d) => {
            Day::parse(&d).ok_or_else(|| ApiError::BadRequest("as_of: a date YYYY-MM-DD".into()))?
        }
    };
    Ok(Request {
        as_of,
        all_submitted: all_submitted.unwrap_or(false),
    })
}

async fn supervisor_or_admin(state: &AppState, auth: Credentials) -> Result<Caller, ApiError> {
    let caller = caller(state, auth).await?;
    require_role(&caller, &[Role::Supervisor, Role::Admin])?;
    Ok(caller)
}

async fn build(state: &AppState, caller: &Caller, request: Request) -> Result<Report, ApiError> {
    // Held by the work itself: a client that goes away does not free its place before the
    // work is done.
    let slot = state.report_slot(caller)?;
    let scope = caller.scope();
    let plan = state.plan.clone();
    state
        .blocking(move |storage| {
            let _slot = slot;
            let facts = storage.indicator_facts()?;
            Ok(report::build(&facts, &plan, &scope, &request))
        })
        .await
}

async fn report_json(
    state: AppState,
    auth: Credentials,
    q: ReportQuery,
) -> Result<Response, ApiError> {
    let caller = supervisor_or_admin(&state, auth).await?;
    let request = request(&state, q.as_of, q.all_submitted)?;
    let report = build(&state, &caller, request).await?;
    Ok(warp::reply::json(&report).into_response())
}

/// Whether a report holds victim figures.
fn has_victims(report: &Report) -> bool {
    report.indicators.iter().any(|d| d.sensitive)
}

fn file(bytes: Vec<u8>, content_type: &'static str, name: String) -> Response {
    let mut response = warp::reply::Response::new(bytes.into());
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(CONTENT_DISPOSITION, v);
    }
    response
}

#[derive(Clone, Copy)]
enum Format {
    Csv,
    Xlsx,
}

async fn export_file(
    state: AppState,
    auth: Credentials,
    q: ReportQuery,
    format: Format,
) -> Result<Response, ApiError> {
    let peer = auth.peer;
    let caller = supervisor_or_admin(&state, auth).await?;
    let request = request(&state, q.as_of, q.all_submitted)?;
    let report = build(&state, &caller, request).await?;
    let (name, kind) = match format {
        Format::Csv => ("csv", "text/csv; charset=utf-8"),
        Format::Xlsx => (
            "xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
    };
    if has_victims(&report) {
        state
            .audit_sensitive(
                Some(&caller),
                peer,
                "export_indicators",
                Some(name.to_owned()),
                Some(format!(
                    "as of {}, {}, with victim figures",
                    report.as_of.text(),
                    if report.all_submitted {
                        "all submitted"
                    } else {
                        "approved"
                    }
                )),
            )
            .await?;
    }
    let bytes = match format {
        Format::Csv => export::csv(&report),
        Format::Xlsx => export::xlsx(&report).map_err(|e| {
            tracing::error!(error = %e, "writing the XLSX export");
            ApiError::Internal
        })?,
    };
    Ok(file(
        bytes,
        kind,
        format!("tien-do-du-an-8-{}.{name}", report.as_of.text()),
    ))
}

async fn records(
    id: String,
    state: AppState,
    auth: Credentials,
    q: RecordsQuery,
) -> Result<Response, ApiError> {
    let peer = auth.peer;
    let caller = supervisor_or_admin(&state, auth).await?;
    let indicator = Indicator::parse(&id).ok_or_else(|| ApiError::NotFound("indicator".into()))?;
    let request = request(&state, q.as_of, q.all_submitted)?;
    let denominator = match q.part.as_deref() {
        None | Some("" | "value") => false,
        Some("denominator") => true,
        Some(other) => return Err(ApiError::BadRequest(format!("unknown part {other}"))),
    };
    let (offset, limit) = (
        q.offset.unwrap_or(0),
        page_size(q.limit, DEFAULT_PAGE, 1, MAX_PAGE)?,
    );
    let scope = caller.scope();
    let plan = state.plan.clone();
    let area = q.area.clone();
    let slot = state.report_slot(&caller)?;
    let (total, page, counted_at, approved_only) = state
        .blocking(move |storage| {
            let _slot = slot;
            let facts = storage.indicator_facts()?;
            let listed = report::records(
                &facts,
                &plan,
                &scope,
                &request,
                indicator,
                &area,
                denominator,
            )
            .map_err(|refusal| match refusal {
                ListRefusal::NoSuchArea => ApiError::NotFound("area".into()),
                ListRefusal::Hidden => ApiError::Denied(
                    "the cases behind a victim figure are listed only as of the plan's end, \
                     where the figure and that of every commune it spans are published"
                        .into(),
                ),
                ListRefusal::Sensitive => ApiError::Forbidden,
            })?;
            let page: Vec<_> = listed
                .ids
                .iter()
                .skip(offset as usize)
                .take(limit as usize)
                .copied()
                .collect();
            Ok((
                listed.ids.len(),
                storage.record_summaries(&page)?,
                listed.as_of,
                listed.approved_only,
            ))
        })
        .await?;
    if indicator.definition().sensitive {
        state
            .audit_sensitive(
                Some(&caller),
                peer,
                "view_indicator_cases",
                Some(q.area.clone()),
                Some(format!("{} ({total} cases)", indicator.id())),
            )
            .await?;
    }
    let areas = Areas::bundled();
    let rows: Vec<serde_json::Value> = page
        .iter()
        .map(|r| {
            let mut row = serde_json::to_value(r).unwrap_or_default();
            row["commune_name"] = json!(r
                .commune
                .as_deref()
                .and_then(|c| areas.get(c))
                .map(|a| a.name.clone()));
            row["updated_at"] = json!(iso_utc(r.updated_ms));
            row
        })
        .collect();
    Ok(warp::reply::json(&json!({
        "indicator": indicator,
        "area": q.area,
        "part": if denominator { "denominator" } else { "value" },
        "as_of": counted_at,
        "approved_only": approved_only,
        "total": total,
        "offset": offset,
        "limit": limit,
        "records": rows,
    }))
    .into_response())
}

pub fn routes(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let report = warp::path!("v1" / "indicators")
        .and(warp::get())
        .and(with_state(state.clone()))
        .and(credentials())
        .and(params::<ReportQuery>())
        .then(|s, a, q| async move { respond(report_json(s, a, q).await) });
    let csv = warp::path!("v1" / "indicators" / "export.csv")
        .and(warp::get())
        .and(with_state(state.clone()))
        .and(credentials())
        .and(params::<ReportQuery>())
        .then(|s, a, q| async move { respond(export_file(s, a, q, Format::Csv).await) });
    let xlsx = warp::path!("v1" / "indicators" / "export.xlsx")
        .and(warp::get())
        .and(with_state(state.clone()))
        .and(credentials())
        .and(params::<ReportQuery>())
        .then(|s, a, q| async move { respond(export_file(s, a, q, Format::Xlsx).await) });
    let records = warp::path!("v1" / "indicators" / String / "records")
        .and(warp::get())
        .and(with_state(state))
        .and(credentials())
        .and(params::<RecordsQuery>())
        .then(|id, s, a, q| async move { respond(records(id, s, a, q).await) });
    report.or(csv).unify().or(xlsx).unify().or(records).unify()
}
