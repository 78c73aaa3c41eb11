//! Who is asking: a device token (`Authorization: Bearer`, phones and API clients) or the
//! supervisors' page session cookie. A request authenticated by the cookie that changes
//! anything must also carry the session's CSRF token in `X-CSRF-Token`: a page of another site
//! can make a browser send the cookie, but cannot read the token.

use super::error::ApiError;
use super::{AppState, Peer};
use crate::accounts;
use crate::listener::ConnectionMark;
use crate::storage::Caller;
use std::net::IpAddr;
use warp::http::header::{AUTHORIZATION, COOKIE};
use warp::http::HeaderMap;
use warp::Filter;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "fieldsync_session";
/// The header carrying the session's CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The credentials a request carries, and what it is.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    bearer: Option<String>,
    session: Option<String>,
    csrf: Option<String>,
    /// Not GET or HEAD: the request changes something.
    changes: bool,
    pub peer: Option<IpAddr>,
    /// The connection the request came on, marked authenticated once its token checks out.
    connection: Option<ConnectionMark>,
}

/// Extracts the credentials of any request. A header that is not text counts as absent, so a
/// garbled token or cookie is answered as a missing one (401), never as a malformed request.
pub fn credentials(
) -> impl Filter<Extract = (Credentials,), Error = std::convert::Infallible> + Clone {
    warp::header::headers_cloned()
        .and(warp::method())
        .and(warp::ext::optional::<Peer>())
        .and(warp::ext::optional::<ConnectionMark>())
        .map(
            |headers: HeaderMap,
             method: warp::http::Method,
             peer: Option<Peer>,
             connection: Option<ConnectionMark>| Credentials {
                bearer: text(&headers, AUTHORIZATION)
                    .and_then(|h| h.strip_prefix("Bearer "))
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned),
                session: session_cookie(&headers),
                csrf: text(&headers, CSRF_HEADER).map(str::to_owned),
                changes: !matches!(method, warp::http::Method::GET | warp::http::Method::HEAD),
                peer: peer.map(|p| p.0),
                connection,
            },
        )
}

fn text<K: warp::http::header::AsHeaderName>(headers: &HeaderMap, name: K) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The session cookie's value, from any `Cookie` header that is text.
fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|list| list.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// Compares two strings in time that does not depend on where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Resolves the credentials to their caller, or 401 (403 for a cookie request that changes
/// something without the session's CSRF token).
pub(crate) async fn caller(state: &AppState, credentials: Credentials) -> Result<Caller, ApiError> {
    let (token, by_cookie) = match (credentials.bearer, credentials.session) {
        (Some(token), _) => (token, false),
        (None, Some(token)) => (token, true),
        (None, None) => return Err(ApiError::Unauthorized),
    };
    let caller = state
        .auth(move |storage| accounts::authorise(storage, &token)?.ok_or(ApiError::Unauthorized))
        .await?;
    if by_cookie {
        // A phone token in a cookie is not a session.
        let Some(expected) = caller.session_csrf.as_deref() else {
            return Err(ApiError::Unauthorized);
        };
        if credentials.changes
            && !credentials
                .csrf
                .as_deref()
                .is_some_and(|given| same_secret(given, expected))
        {
            return Err(ApiError::Denied(
                "missing or wrong CSRF token (X-CSRF-Token)".into(),
            ));
        }
    }
    if let Some(connection) = &credentials.connection {
        connection.authenticated();
    }
    Ok(caller)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
    }
}
