//! Sessions of the supervisors' page: logging in with a username and password sets an
//! HttpOnly, Secure, SameSite=Strict cookie and gives the page its CSRF token; the session is
//! a device of kind `browser` that expires after eight hours and can be revoked like a phone.
//! Collectors cannot use the page.

use super::error::ApiError;
use super::{caller, credentials, json_body, respond, with_state, AppState, Credentials, Peer};
use crate::accounts;
use crate::dates::iso_utc;
use crate::storage::sqlite::now_ms;
use crate::storage::{Caller, Role};
use serde::Deserialize;
use serde_json::json;
use warp::http::header::SET_COOKIE;
use warp::http::HeaderValue;
use warp::reply::Response;
use warp::{Filter, Reply};

/// How long a session lasts.
const SESSION_MS: i64 = 8 * 3_600_000;
/// The header a login must carry: a page of another site cannot send it without the browser
/// asking this server first (CORS), which it never allows.
const REQUESTED_WITH: &str = "fieldsync";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    username: String,
    password: String,
}

fn cookie(token: &str, max_age_secs: i64) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(&format!(
        "{}={token}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={max_age_secs}",
        super::auth::SESSION_COOKIE
    ))
    .map_err(|_| ApiError::Internal)
}

fn session_json(caller: &Caller) -> serde_json::Value {
    json!({
        "user": caller.user,
        "csrf_token": caller.session_csrf,
        "expires_at": caller.session_expires_ms.map(iso_utc),
    })
}

async fn login(
    state: AppState,
    requested_with: Option<String>,
    peer: Option<Peer>,
    body: Login,
) -> Result<Response, ApiError> {
    if requested_with.as_deref() != Some(REQUESTED_WITH) {
        return Err(ApiError::Denied(format!(
            "log in from the fieldsync page (X-Requested-With: {REQUESTED_WITH})"
        )));
    }
    if body.username.len() > accounts::MAX_USERNAME_BYTES
        || body.password.len() > accounts::MAX_PASSWORD_BYTES
    {
        return Err(ApiError::BadCredentials);
    }
    let source = peer.map_or(std::net::IpAddr::from([0, 0, 0, 0]), |p| p.0);
    let attempt = state
        .throttle
        .begin(&body.username, source, now_ms())
        .map_err(|t| ApiError::Throttled(t.retry_after_secs))?;
    let result = state
        .hashing(move |storage| Ok(accounts::login(storage, &body.username, &body.password)?))
        .await;
    let user = match result {
        Ok(user) => {
            attempt.finish(true, now_ms());
            user
        }
        Err(e) => {
            // Failed attempts are counted by the throttle, not written down: a flood of them
            // must not grow the database.
            if matches!(e, ApiError::BadCredentials) {
                attempt.finish(false, now_ms());
            }
            return Err(e);
        }
    };
    if user.role == Role::Collector {
        return Err(ApiError::Denied(
            "the supervisors' page is for supervisors and admins".into(),
        ));
    }
    let (token, token_hash) = accounts::new_token();
    let (csrf, _) = accounts::new_token();
    let expires_ms = now_ms() + SESSION_MS;
    let user_id = user.id;
    let session_csrf = csrf.clone();
    let device = state
        .blocking(move |storage| {
            Ok(storage.create_session(user_id, &token_hash, &session_csrf, expires_ms)?)
        })
        .await?;
    let caller = Caller {
        device,
        user,
        session_csrf: Some(csrf),
        session_expires_ms: Some(expires_ms),
        signs: false,
    };
    state
        .audit(Some(&caller), Some(source), "login", None, None)
        .await?;
    let mut reply = warp::reply::json(&session_json(&caller)).into_response();
    reply
        .headers_mut()
        .insert(SET_COOKIE, cookie(&token, SESSION_MS / 1000)?);
    Ok(reply)
}

async fn current(state: AppState, auth: Credentials) -> Result<warp::reply::Json, ApiError> {
    let caller = caller(&state, auth).await?;
    if caller.session_csrf.is_none() {
        return Err(ApiError::Unauthorized);
    }
    Ok(warp::reply::json(&session_json(&caller)))
}

async fn logout(state: AppState, auth: Credentials) -> Result<Response, ApiError> {
    let peer = auth.peer;
    let caller = caller(&state, auth).await?;
    if caller.session_csrf.is_none() {
        return Err(ApiError::Unauthorized);
    }
    let device = caller.device.id;
    state
        .blocking(move |storage| Ok(storage.revoke_device(device)?))
        .await?;
    state
        .audit(Some(&caller), peer, "logout", None, None)
        .await?;
    let mut reply = warp::reply::json(&json!({ "logged_out": true })).into_response();
    reply.headers_mut().insert(SET_COOKIE, cookie("", 0)?);
    Ok(reply)
}

pub fn routes(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let login = warp::path!("v1" / "session")
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(warp::header::optional::<String>("x-requested-with"))
        .and(warp::ext::optional::<Peer>())
        .and(json_body())
        .then(|s, h, p, b| async move { respond(login(s, h, p, b).await) });
    let current = warp::path!("v1" / "session")
        .and(warp::get())
        .and(with_state(state.clone()))
        .and(credentials())
        .then(|s, a| async move { respond(current(s, a).await) });
    let logout = warp::path!("v1" / "session")
        .and(warp::delete())
        .and(with_state(state))
        .and(credentials())
        .then(|s, a| async move { respond(logout(s, a).await) });
    login.or(current).unify().or(logout).unify()
}
