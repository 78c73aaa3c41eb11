//! `GET /v1/schema`: the domain tables a client shows records with, read from the record model
//! itself — every record type with its fields, kinds and codes, named in Vietnamese and English;
//! the 54 ethnic groups; the area list; the validation problem and sync reject codes — and what
//! of them the caller may see. The supervisors' page keeps no copy of any of them.

pub(super) mod labels;

use super::error::ApiError;
use super::{caller, credentials, require_role, with_state, AppState, Credentials};
use crate::storage::{Caller, Role};
use fieldsync_core::model::{ethnic_groups, schema_of, Areas, FieldKind, FieldSpec};
use fieldsync_core::protocol::RejectCode;
use fieldsync_core::RecordType;
use labels::Label;
use serde_json::{json, Value as Json};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;
use warp::http::header::{CACHE_CONTROL, ETAG};
use warp::http::{HeaderValue, StatusCode};
use warp::reply::Response;
use warp::{Filter, Reply};

fn label((vi, en): Label) -> Json {
    json!({ "vi": vi, "en": en })
}

/// A field as clients read it: its kind and the limits or codes that kind carries.
fn field_json(t: RecordType, spec: &FieldSpec) -> Json {
    let mut out = json!({
        "name": spec.name,
        "label": labels::field(t, spec.name).map_or(json!(null), label),
        "required": spec.required,
    });
    let codes = |list: &[&str]| -> Json {
        list.iter()
            .map(|c| json!({ "code": c, "label": labels::code(t, spec.name, c).map_or(json!(null), label) }))
            .collect()
    };
    let (kind, extra) = match spec.kind {
        FieldKind::Text { max_chars } => ("text", json!({ "max_chars": max_chars })),
        FieldKind::Int { min, max } => ("int", json!({ "min": min, "max": max })),
        FieldKind::Bool => ("bool", json!({})),
        FieldKind::Date => ("date", json!({})),
        FieldKind::DateOrYear => ("date_or_year", json!({})),
        FieldKind::Enum(list) => ("code", json!({ "codes": codes(list) })),
        FieldKind::Commune => ("commune", json!({})),
        FieldKind::Ethnicity => ("ethnicity", json!({})),
        FieldKind::Ref(to) => ("ref", json!({ "record_type": to })),
        FieldKind::NationalId => ("national_id", json!({})),
        FieldKind::Phone => ("phone", json!({})),
        FieldKind::RefSet(to) => ("ref_set", json!({ "record_type": to })),
        FieldKind::EnumSet(list) => ("code_set", json!({ "codes": codes(list) })),
    };
    out["kind"] = json!(kind);
    if let (Some(out), Some(extra)) = (out.as_object_mut(), extra.as_object()) {
        out.extend(extra.clone());
    }
    out
}

/// Everything but the caller's part: the same for every caller, built once.
fn tables() -> &'static serde_json::Map<String, Json> {
    static TABLES: OnceLock<serde_json::Map<String, Json>> = OnceLock::new();
    TABLES.get_or_init(|| {
        let record_types: Vec<Json> = RecordType::ALL
            .into_iter()
            .map(|t| {
                let schema = schema_of(t);
                json!({
                    "name": t,
                    "label": label(labels::record_type(t)),
                    "sensitive": t.is_sensitive(),
                    "fields": schema.fields.iter().map(|f| field_json(t, f)).collect::<Vec<_>>(),
                })
            })
            .collect();
        let ethnic: Vec<Json> = ethnic_groups()
            .iter()
            .map(|g| json!({ "code": g.code, "name": g.name_vi }))
            .collect();
        let problems: Vec<Json> = labels::PROBLEMS
            .iter()
            .map(|&p| json!({ "code": p, "label": label(labels::problem(p)) }))
            .collect();
        let rejections: Vec<Json> = RejectCode::ALL
            .iter()
            .map(|&r| json!({ "code": r.as_str(), "label": label(labels::rejection(r)) }))
            .collect();
        let tables = json!({
            "schema_version": fieldsync_core::model::SCHEMA_VERSION,
            "record_types": record_types,
            "ethnic_groups": ethnic,
            // Administrative units are public; the whole list lets any commune a record names
            // be shown, in scope or not (an admin assigning areas picks from all of them).
            "areas": Areas::bundled().all().collect::<Vec<_>>(),
            "problems": problems,
            "rejections": rejections,
        });
        match tables {
            Json::Object(map) => map,
            _ => serde_json::Map::new(),
        }
    })
}

/// What of the tables the caller may see: its record types and communes (`null`: all).
fn scope_json(caller: &Caller) -> Json {
    let scope = caller.scope();
    let types: Vec<RecordType> = RecordType::ALL
        .into_iter()
        .filter(|t| scope.sensitive || !t.is_sensitive())
        .collect();
    json!({
        "record_types": types,
        "communes": if scope.all { json!(null) } else { json!(scope.communes) },
    })
}

/// The whole answer for `caller`.
pub(crate) fn schema_json(caller: &Caller) -> Json {
    let mut out = tables().clone();
    out.insert("scope".into(), scope_json(caller));
    Json::Object(out)
}

/// A strong validator of an answer: the first 16 hex digits of its SHA-256.
fn etag(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

async fn schema(
    state: AppState,
    auth: Credentials,
    if_none_match: Option<String>,
) -> Result<Response, ApiError> {
    let caller = caller(&state, auth).await?;
    require_role(&caller, &[Role::Supervisor, Role::Admin])?;
    let body = serde_json::to_vec(&schema_json(&caller)).map_err(|_| ApiError::Internal)?;
    let tag = etag(&body);
    let fresh = if_none_match.is_some_and(|tags| tags.split(',').any(|t| t.trim() == tag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        warp::reply::with_header(body, "content-type", "application/json").into_response()
    };
    let headers = response.headers_mut();
    // No personal data, but the caller's scope: kept by this browser only, and asked again
    // (a 304 when unchanged) at each load, so a change of areas shows at the next one.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    if let Ok(tag) = HeaderValue::from_str(&tag) {
        headers.insert(ETAG, tag);
    }
    Ok(response)
}

pub fn routes(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    warp::path!("v1" / "schema")
        .and(warp::get())
        .and(with_state(state))
        .and(credentials())
        .and(warp::header::optional::<String>("if-none-match"))
        .then(|s, a, t| async move { super::respond(schema(s, a, t).await) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Every field and code of every record type has a name, and no name is left of a field or
    /// code the model no longer has.
    #[test]
    fn the_label_tables_name_exactly_the_model() {
        let mut fields_used = BTreeSet::new();
        let mut codes_used = BTreeSet::new();
        for t in RecordType::ALL {
            for spec in schema_of(t).fields {
                assert!(labels::field(t, spec.name).is_some(), "{t}.{}", spec.name);
                let typed = format!("{t}.{}", spec.name);
                let key = if labels::FIELDS.iter().any(|f| f.0 == typed) {
                    typed
                } else {
                    spec.name.to_owned()
                };
                let list = match spec.kind {
                    FieldKind::Enum(list) | FieldKind::EnumSet(list) => list,
                    _ => &[],
                };
                for code in list {
                    assert!(labels::code(t, spec.name, code).is_some(), "{key}: {code}");
                    codes_used.insert((key.clone(), (*code).to_owned()));
                }
                fields_used.insert(key);
            }
        }
        let fields: BTreeSet<String> = labels::FIELDS.iter().map(|f| f.0.to_owned()).collect();
        assert_eq!(
            fields, fields_used,
            "names of fields the model does not have"
        );
        let codes: BTreeSet<(String, String)> = labels::CODES
            .iter()
            .map(|c| (c.0.to_owned(), c.1.to_owned()))
            .collect();
        assert_eq!(codes, codes_used, "names of codes the model does not have");
    }

    #[test]
    fn every_problem_code_is_listed_once() {
        use fieldsync_core::model::ProblemCode as P;
        // Exhaustive: a new problem code does not compile here until it is counted.
        let number = |p: P| match p {
            P::UnknownField => 0,
            P::WrongType => 1,
            P::NotAllowed => 2,
            P::InvalidFormat => 3,
            P::OutOfRange => 4,
            P::TooLong => 5,
            P::Required => 6,
            P::NotASet => 7,
            P::NotAScalar => 8,
        };
        let listed: BTreeSet<u8> = labels::PROBLEMS.iter().map(|&p| number(p)).collect();
        assert_eq!(listed, (0..9).collect());
    }
}
