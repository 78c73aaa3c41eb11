//! The supervisors' page: a few static files built into the binary (nothing from a CDN),
//! served gzipped to browsers that accept it, under a Content-Security-Policy that allows only
//! this server's own scripts and styles; and the OpenAPI document of the JSON API.

use fieldsync_core::protocol::compress;
use std::sync::OnceLock;
use warp::http::header::{
    CACHE_CONTROL, CONTENT_ENCODING, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, VARY,
};
use warp::http::{HeaderValue, StatusCode};
use warp::reply::Response;
use warp::{Filter, Reply};

/// One embedded file: its path, content type and bytes.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        path: "index.html",
        content_type: "text/html; charset=utf-8",
        bytes: include_bytes!("../../web/index.html"),
    },
    Asset {
        path: "app.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../web/app.js"),
    },
    Asset {
        path: "duplicates.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../web/duplicates.js"),
    },
    Asset {
        path: "export.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../web/export.js"),
    },
    Asset {
        path: "admin.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../web/admin.js"),
    },
    Asset {
        path: "indicators.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../web/indicators.js"),
    },
    Asset {
        path: "app.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../web/app.css"),
    },
    Asset {
        path: "indicators.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../web/indicators.css"),
    },
    Asset {
        path: "favicon.svg",
        content_type: "image/svg+xml",
        bytes: include_bytes!("../../web/favicon.svg"),
    },
    Asset {
        path: "v1/openapi.json",
        content_type: "application/json",
        bytes: super::methods::OPENAPI,
    },
];

const POLICY: &str = "default-src 'self'; img-src 'self' data:; object-src 'none'; \
                      base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// A strong validator of each asset: the first 16 hex digits of its SHA-256.
fn etag(index: usize) -> &'static str {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    let all = ETAGS.get_or_init(|| {
        use sha2::{Digest, Sha256};
        ASSETS
            .iter()
            .map(|a| {
                let digest = Sha256::digest(a.bytes);
                let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
                format!("\"{hex}\"")
            })
            .collect()
    });
    all.get(index).map_or("\"\"", String::as_str)
}

/// Each asset gzipped once, on first use.
fn gzipped(index: usize) -> &'static [u8] {
    static GZIPPED: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    let all = GZIPPED.get_or_init(|| ASSETS.iter().map(|a| compress(a.bytes)).collect());
    all.get(index).map_or(&[], Vec::as_slice)
}

/// The request headers serving an asset looks at.
#[derive(Default)]
struct Conditions {
    accept_encoding: Option<String>,
    if_none_match: Option<String>,
}

fn serve(path: &str, conditions: Conditions) -> Response {
    let Some(index) = ASSETS.iter().position(|a| a.path == path) else {
        return super::error::ApiError::NotFound("route".into()).into_response();
    };
    let asset = &ASSETS[index];
    let etag = etag(index);
    // A browser that has this version already gets an empty answer (slow links).
    let fresh = conditions
        .if_none_match
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let gzip = conditions
        .accept_encoding
        .is_some_and(|a| a.contains("gzip"));
    let body: &'static [u8] = if fresh {
        &[]
    } else if gzip {
        gzipped(index)
    } else {
        asset.bytes
    };
    let status = if fresh {
        StatusCode::NOT_MODIFIED
    } else {
        StatusCode::OK
    };
    let mut response = warp::reply::with_status(body.to_vec(), status).into_response();
    let headers = response.headers_mut();
    headers.insert(ETAG, HeaderValue::from_static(etag));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    // Small files: revalidated on each load rather than cached stale after an upgrade.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(VARY, HeaderValue::from_static("accept-encoding"));
    if gzip && !fresh {
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

fn conditions() -> impl Filter<Extract = (Conditions,), Error = warp::Rejection> + Clone {
    warp::header::optional::<String>("accept-encoding")
        .and(warp::header::optional::<String>("if-none-match"))
        .map(|accept_encoding, if_none_match| Conditions {
            accept_encoding,
            if_none_match,
        })
}

pub fn routes() -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let index = warp::path::end()
        .and(warp::get())
        .and(conditions())
        .map(|c| serve("index.html", c));
    let asset = warp::path!(String)
        .and(warp::get())
        .and(conditions())
        .and_then(|name: String, c: Conditions| async move {
            // The page itself is only at `/`, the API document only under `/v1`.
            if ASSETS.iter().any(|a| a.path == name)
                && name != "index.html"
                && !name.starts_with("v1")
            {
                Ok(serve(&name, c))
            } else {
                Err(warp::reject::not_found())
            }
        });
    let openapi = warp::path!("v1" / "openapi.json")
        .and(warp::get())
        .and(conditions())
        .map(|c| serve("v1/openapi.json", c));
    index.or(asset).unify().or(openapi).unify()
}
