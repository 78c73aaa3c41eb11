//! The supervisors' page: a few static files built into the binary (nothing from a CDN),
//! served gzipped to browsers that accept it, under a Content-Security-Policy that allows only
//! this server's own scripts and styles; and the OpenAPI document of the JSON API.

use fieldsync_core::protocol::compress;
use std::sync::OnceLock;
use warp::http::header::{
    CACHE_CONTROL, CONTENT_ENCODING, CONTENT_SECURITY_POLICY, CONTENT_TYPE, VARY,
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
        path: "app.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../web/app.css"),
    },
    Asset {
        path: "favicon.svg",
        content_type: "image/svg+xml",
        bytes: include_bytes!("../../web/favicon.svg"),
    },
    Asset {
        path: "v1/openapi.json",
        content_type: "application/json",
        bytes: include_bytes!("openapi.json"),
    },
];

const POLICY: &str = "default-src 'self'; img-src 'self' data:; object-src 'none'; \
                      base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Each asset gzipped once, on first use.
fn gzipped(index: usize) -> &'static [u8] {
    static GZIPPED: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    let all = GZIPPED.get_or_init(|| ASSETS.iter().map(|a| compress(a.bytes)).collect());
    all.get(index).map_or(&[], Vec::as_slice)
}

fn serve(path: &str, accept_encoding: Option<String>) -> Response {
    let Some(index) = ASSETS.iter().position(|a| a.path == path) else {
        return super::error::ApiError::NotFound("route".into()).into_response();
    };
    let asset = &ASSETS[index];
    let gzip = accept_encoding.is_some_and(|a| a.contains("gzip"));
    let body: &'static [u8] = if gzip { gzipped(index) } else { asset.bytes };
    let mut response = warp::reply::with_status(body.to_vec(), StatusCode::OK).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    // Small files: revalidated on each load rather than cached stale after an upgrade.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(VARY, HeaderValue::from_static("accept-encoding"));
    if gzip {
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

pub fn routes() -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let encoding = warp::header::optional::<String>("accept-encoding");
    let index = warp::path::end()
        .and(warp::get())
        .and(encoding)
        .map(|e| serve("index.html", e));
    let asset = warp::path!(String).and(warp::get()).and(encoding).and_then(
        |name: String, e: Option<String>| async move {
            // The page itself is only at `/`, the API document only under `/v1`.
            if ASSETS.iter().any(|a| a.path == name)
                && name != "index.html"
                && !name.starts_with("v1")
            {
                Ok(serve(&name, e))
            } else {
                Err(warp::reject::not_found())
            }
        },
    );
    let openapi = warp::path!("v1" / "openapi.json")
        .and(warp::get())
        .and(encoding)
        .map(|e| serve("v1/openapi.json", e));
    index.or(asset).unify().or(openapi).unify()
}
