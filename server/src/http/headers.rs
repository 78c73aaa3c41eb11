//! The headers every answer carries: not stored by any cache (answers hold personal data; only
//! the page's static files say otherwise), not content-sniffed, and, outside `--dev`,
//! HTTPS-only for the host from then on (HSTS).

use warp::http::header::{CACHE_CONTROL, STRICT_TRANSPORT_SECURITY, X_CONTENT_TYPE_OPTIONS};
use warp::http::HeaderValue;
use warp::reply::Response;

/// One year: the server answers HTTPS only, on every port it listens on, so a browser that
/// has been here once never needs plain HTTP for this host; a year covers the gaps between a
/// supervisor's visits (it is the figure OWASP recommends). No `includeSubDomains`: other
/// hosts under the province's domain are not this server's to pin.
const HSTS: &str = "max-age=31536000";

/// Adds the headers every answer carries. `hsts` is off in `--dev`, whose self-signed
/// localhost certificate would otherwise pin the developer's browser to HTTPS on localhost.
pub(crate) fn secure(mut response: Response, hsts: bool) -> Response {
    let headers = response.headers_mut();
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // The static files set their own (revalidate); everything else is never stored.
    if !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if hsts {
        headers.insert(STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS));
    }
    response
}
