//! Which methods each path answers, read from the embedded OpenAPI document: the one list of
//! the server's routes. A request passes to the router only when its path and method are
//! listed; a listed path asked with another method answers `405` with an `Allow` header, any
//! other path `404`. HEAD and OPTIONS are served nowhere (see `docs/sync-protocol.md` §5.1).

use std::sync::OnceLock;
use warp::http::Method;
use warp::{Filter, Rejection};

/// The OpenAPI document of the API, served at `/v1/openapi.json`.
pub(crate) const OPENAPI: &[u8] = include_bytes!("openapi.json");

/// The methods an OpenAPI path item may hold, in the order `Allow` lists them.
const METHOD_KEYS: [&str; 8] = [
    "get", "post", "put", "patch", "delete", "head", "options", "trace",
];

#[derive(Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// A `{name}` of the template: any non-empty segment.
    Param,
}

/// One documented path and its methods.
#[derive(Debug)]
struct Route {
    segments: Vec<Segment>,
    methods: Vec<Method>,
}

/// The document's paths could not be read: the embedded document is broken.
#[derive(Debug, thiserror::Error)]
#[error("the embedded OpenAPI document: {0}")]
pub(crate) struct DocumentError(String);

/// A path's segments as the router sees them: without the leading slash and one trailing
/// slash (warp's `path!` accepts `/v1/records/` as `/v1/records`).
fn segments(path: &str) -> Vec<&str> {
    let path = path.strip_prefix('/').unwrap_or(path);
    let path = path.strip_suffix('/').unwrap_or(path);
    if path.is_empty() {
        Vec::new()
    } else {
        path.split('/').collect()
    }
}

fn parse(document: &[u8]) -> Result<Vec<Route>, DocumentError> {
    let doc: serde_json::Value =
        serde_json::from_slice(document).map_err(|e| DocumentError(e.to_string()))?;
    let paths = doc["paths"]
        .as_object()
        .ok_or_else(|| DocumentError("no paths".into()))?;
    paths
        .iter()
        .map(|(template, item)| {
            let item = item
                .as_object()
                .ok_or_else(|| DocumentError(format!("{template} is not an object")))?;
            let methods = METHOD_KEYS
                .iter()
                .filter(|k| item.contains_key(**k))
                .map(|k| {
                    Method::from_bytes(k.to_uppercase().as_bytes())
                        .map_err(|e| DocumentError(format!("{template} {k}: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let segments = segments(template)
                .into_iter()
                .map(|s| {
                    if s.starts_with('{') && s.ends_with('}') {
                        Segment::Param
                    } else {
                        Segment::Literal(s.to_owned())
                    }
                })
                .collect();
            Ok(Route { segments, methods })
        })
        .collect()
}

fn table() -> Result<&'static [Route], &'static DocumentError> {
    static TABLE: OnceLock<Result<Vec<Route>, DocumentError>> = OnceLock::new();
    TABLE.get_or_init(|| parse(OPENAPI)).as_deref()
}

/// The documented route `path` belongs to, preferring literal segments over parameters from
/// the left (`/a/fixed` over `/a/{id}`).
fn find<'a>(routes: &'a [Route], path: &str) -> Option<&'a Route> {
    let given = segments(path);
    routes
        .iter()
        .filter(|r| {
            r.segments.len() == given.len()
                && r.segments.iter().zip(&given).all(|(s, g)| match s {
                    Segment::Literal(l) => l == g,
                    Segment::Param => !g.is_empty(),
                })
        })
        .max_by_key(|r| {
            r.segments
                .iter()
                .map(|s| matches!(s, Segment::Literal(_)))
                .collect::<Vec<_>>()
        })
}

/// The methods `path` answers, or `None` when it is no route.
pub(crate) fn allowed(path: &str) -> Result<Option<&'static [Method]>, &'static DocumentError> {
    Ok(find(table()?, path).map(|r| r.methods.as_slice()))
}

/// A known path asked with a method it does not answer.
#[derive(Debug)]
pub(crate) struct NotAllowed {
    /// The `Allow` header's value: the path's methods.
    pub allow: String,
}

impl warp::reject::Reject for NotAllowed {}

/// Lets a request through to the router only when the document lists its path and method.
pub(crate) fn documented() -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::method()
        .and(warp::path::full())
        .and_then(|method: Method, path: warp::path::FullPath| async move {
            match allowed(path.as_str()) {
                Ok(None) => Err(warp::reject::not_found()),
                Ok(Some(methods)) if methods.contains(&method) => Ok(()),
                Ok(Some(methods)) => Err(warp::reject::custom(NotAllowed {
                    allow: methods
                        .iter()
                        .map(Method::as_str)
                        .collect::<Vec<_>>()
                        .join(", "),
                })),
                // Unreachable with the document this binary embeds (a unit test reads
                // it); the router alone then decides, as before this check existed.
                Err(e) => {
                    tracing::error!(error = %e, "route table unavailable");
                    Ok(())
                }
            }
        })
        .untuple_one()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_document_gives_every_path_its_methods() {
        let routes = table().unwrap();
        assert!(routes.len() >= 20);
        assert!(routes.iter().all(|r| !r.methods.is_empty()));
        let session = allowed("/v1/session").unwrap().unwrap();
        assert_eq!(session, [Method::GET, Method::POST, Method::DELETE]);
        assert_eq!(allowed("/").unwrap().unwrap(), [Method::GET]);
    }

    #[test]
    fn paths_match_templates_segment_by_segment() {
        let id = "/v1/records/01960000-0000-7000-8000-000000000001";
        assert_eq!(allowed(id).unwrap().unwrap(), [Method::GET]);
        assert_eq!(
            allowed(&format!("{id}/edits")).unwrap().unwrap(),
            [Method::POST]
        );
        // One trailing slash is the same path, as for the router.
        assert_eq!(allowed("/v1/records/").unwrap().unwrap(), [Method::GET]);
        assert_eq!(
            allowed("/v1/indicators/export.csv").unwrap().unwrap(),
            [Method::GET]
        );
        for unknown in [
            "/v1",
            "/v1/records//edits",
            "/v1/records/x/edits/y",
            "/v1/nothing",
            "/index.html",
            "//v1/health",
        ] {
            assert_eq!(allowed(unknown).unwrap(), None, "{unknown}");
        }
    }

    #[test]
    fn literal_segments_win_over_parameters() {
        let doc = br#"{"paths": {"/a/{id}": {"get": {}}, "/a/fixed": {"post": {}},
                        "/b/{x}/c": {"get": {}, "parameters": []}}}"#;
        let routes = parse(doc).unwrap();
        assert_eq!(find(&routes, "/a/fixed").unwrap().methods, [Method::POST]);
        assert_eq!(find(&routes, "/a/other").unwrap().methods, [Method::GET]);
        assert_eq!(find(&routes, "/b/1/c").unwrap().methods, [Method::GET]);
        assert!(parse(b"{}").is_err());
    }
}
