//! Sessions of the supervisors' page: logging in with a username and password sets an
//! HttpOnly, Secure, SameSite=Strict cookie and gives the page its CSRF token; the session is
//! a device of kind `browser` that expires after eight hours and can be revoked like a phone.
//! Collectors cannot use the page. Also every password check of the API under the login
//! throttle ([`checked`]), with failed and throttled attempts audited.

use super::error::ApiError;
use super::{caller, credentials, json_body, respond, with_state, AppState, Credentials, Peer};
use crate::accounts;
use crate::dates::iso_utc;
use crate::storage::sqlite::now_ms;
use crate::storage::{AuditEntry, Caller, Role, Storage};
use crate::throttle::{Client, LoginNote, Via, AUDIT_WINDOW_MS, KNOWN_BROWSER_MS};
use serde::Deserialize;
use serde_json::json;
use std::net::IpAddr;
use warp::http::header::SET_COOKIE;
use warp::http::HeaderValue;
use warp::reply::Response;
use warp::{Filter, Reply};

/// How long a session lasts.
const SESSION_MS: i64 = 8 * 3_600_000;
/// The cookie that makes a browser known to the login throttle for the account that last
/// logged in with it (sent to `/v1/session` only).
const KNOWN_COOKIE: &str = "fieldsync_known";
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

fn known_cookie(value: &str) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(&format!(
        "{KNOWN_COOKIE}={value}; Path=/v1/session; HttpOnly; Secure; SameSite=Strict; Max-Age={}",
        KNOWN_BROWSER_MS / 1000
    ))
    .map_err(|_| ApiError::Internal)
}

/// Runs one password check (`check`, on the password workers) for `username` from `source`
/// under the login throttle: a throttled attempt gets 429 without any check, and failed and
/// throttled attempts are written to the audit log (coalesced, see [`crate::throttle`]).
pub(super) async fn checked<T: Send + 'static>(
    state: &AppState,
    via: Via,
    username: &str,
    source: IpAddr,
    client: Client,
    check: impl FnOnce(&dyn Storage) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let attempt = match state.throttle.begin(username, source, client, now_ms()) {
        Ok(attempt) => attempt,
        Err(throttled) => {
            note_failure(state, via, username, source, false);
            return Err(ApiError::Throttled(throttled.retry_after_secs));
        }
    };
    let result = state.hashing(check).await;
    match &result {
        Ok(_) => attempt.finish(true, now_ms()),
        Err(ApiError::BadCredentials) => {
            attempt.finish(false, now_ms());
            note_failure(state, via, username, source, true);
        }
        // Busy or failed for another reason: the attempt does not count either way.
        Err(_) => drop(attempt),
    }
    result
}

/// How the login throttle sees a phone asking to enrol: known when the key it showed is that
/// of a store enrolled to this account before (a new token after a password change).
pub(super) async fn phone_client(
    state: &AppState,
    username: &str,
    source: IpAddr,
    keys: Option<&crate::storage::DeviceKeys>,
) -> Result<Client, ApiError> {
    // The keys' proof was checked: this client holds the key's secret.
    let Some(keys) = keys else {
        return Ok(Client::Address);
    };
    // A flooding address is refused by the throttle anyway: no database read for it.
    if !state.throttle.source_has_room(source, now_ms()) {
        return Ok(Client::Address);
    }
    let actor = fieldsync_core::signing::actor_for_public_key(&keys.public_key);
    let name = username.to_owned();
    let known = state
        .auth(move |storage| Ok(accounts::enrolled_before(storage, &name, actor)?))
        .await?;
    Ok(if known {
        Client::Known(*actor.as_bytes())
    } else {
        Client::Address
    })
}

/// Counts a failed (`failed`) or throttled login for the audit log, writing what is due in
/// the background: the answer to the client does not wait for it.
fn note_failure(state: &AppState, via: Via, username: &str, source: IpAddr, failed: bool) {
    let notes = state.throttle.note(via, username, source, failed, now_ms());
    if !notes.is_empty() {
        let state = state.clone();
        tokio::spawn(async move { write_notes(&state, notes).await });
    }
    if state.throttle.start_flushing() {
        let state = state.clone();
        tokio::spawn(async move {
            // Writes each window's count when it ends, and stops when none is open.
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(
                    (AUDIT_WINDOW_MS / 10) as u64,
                ))
                .await;
                let (notes, more) = state.throttle.flush(now_ms());
                write_notes(&state, notes).await;
                if !more {
                    break;
                }
            }
        });
    }
}

/// Writes coalesced failed logins to the audit log: the account only if it exists (a name
/// someone typed may be a password typed in the wrong box), never a password.
async fn write_notes(state: &AppState, notes: Vec<LoginNote>) {
    if notes.is_empty() {
        return;
    }
    let result = state
        .blocking(move |storage| {
            for note in notes {
                let counts = match (note.failed, note.throttled) {
                    (f, 0) => format!("{f} failed"),
                    (0, t) => format!("{t} throttled"),
                    (f, t) => format!("{f} failed, {t} throttled"),
                };
                let since = iso_utc(note.since_ms);
                let (target, peer, detail) = match &note.attempt {
                    Some((username, source, via)) => {
                        let exists = storage.user_by_name(username)?.is_some();
                        let detail = if exists {
                            format!("{}: {counts} since {since}", via.as_str())
                        } else {
                            format!("{}: {counts} since {since}; unknown username", via.as_str())
                        };
                        (
                            exists.then(|| username.clone()),
                            Some(source.to_string()),
                            detail,
                        )
                    }
                    None => (
                        None,
                        None,
                        format!("{counts} since {since} from many addresses, not itemised"),
                    ),
                };
                storage.audit(&AuditEntry {
                    at_ms: now_ms(),
                    action: if note.failed > 0 {
                        "login_failed".into()
                    } else {
                        "login_throttled".into()
                    },
                    target,
                    detail: Some(detail),
                    peer,
                    ..Default::default()
                })?;
            }
            Ok(())
        })
        .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "failed logins not written to the audit log");
    }
}

fn session_json(caller: &Caller) -> serde_json::Value {
    // A phone number is for admins managing accounts, not for every page that reads a session.
    let mut user = serde_json::to_value(&caller.user).unwrap_or_default();
    if let Some(fields) = user.as_object_mut() {
        fields.remove("phone");
    }
    json!({
        "user": user,
        "csrf_token": caller.session_csrf,
        "expires_at": caller.session_expires_ms.map(iso_utc),
    })
}

async fn login(
    state: AppState,
    requested_with: Option<String>,
    known: Option<String>,
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
    let client = known
        .and_then(|cookie| {
            state
                .throttle
                .known_browser(&body.username, &cookie, now_ms())
        })
        .unwrap_or(Client::Address);
    let username = body.username.clone();
    let user = checked(
        &state,
        Via::Page,
        &username,
        source,
        client,
        move |storage| Ok(accounts::login(storage, &body.username, &body.password)?),
    )
    .await?;
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
    let headers = reply.headers_mut();
    headers.append(SET_COOKIE, cookie(&token, SESSION_MS / 1000)?);
    let known = state
        .throttle
        .known_browser_cookie(&caller.user.username, now_ms());
    headers.append(SET_COOKIE, known_cookie(&known)?);
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
        .and(warp::cookie::optional::<String>(KNOWN_COOKIE))
        .and(warp::ext::optional::<Peer>())
        .and(json_body())
        .then(|s, h, k, p, b| async move { respond(login(s, h, k, p, b).await) });
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
