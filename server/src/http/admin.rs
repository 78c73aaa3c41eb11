//! Admin endpoints: accounts (create, change, reset a password, disable), devices (list with
//! enrolment, last sync and changes sent, filtered; revoke) and server statistics, each limited to accounts within the admin's own areas; and
//! the one account endpoint every user has, changing their own password.

use super::error::ApiError;
use super::query::{nonempty, params};
use super::{
    caller, credentials, json_body, require_role, respond, with_state, AppState, Credentials, Peer,
};
use crate::accounts::{self, Authority};
use crate::dates::iso_utc;
use crate::storage::{
    now_ms, AccountUpdate, Caller, DeviceInfo, DeviceQuery, DeviceState, NewUser, Role, User,
};
use crate::throttle::{Client, Via};
use serde::Deserialize;
use uuid::Uuid;
use warp::reply::{Json, Response};
use warp::Filter;

#[derive(Deserialize)]
struct Areas {
    areas: Vec<String>,
}

#[derive(Deserialize)]
struct NewPassword {
    password: String,
}

#[derive(Deserialize)]
struct OwnPassword {
    old_password: String,
    new_password: String,
}

/// What the audit log keeps of an account: its role, areas and permissions (no password).
fn account_detail(user: &User) -> String {
    format!(
        "role {}, areas {}, sensitive {}, may grant {}, disabled {}",
        user.role.as_str(),
        user.areas.join(","),
        user.sensitive_access,
        user.can_grant_sensitive,
        user.disabled
    )
}

async fn admin(state: &AppState, auth: Credentials) -> Result<Caller, ApiError> {
    let caller = caller(state, auth).await?;
    require_role(&caller, &[Role::Admin])?;
    Ok(caller)
}

async fn create_user(state: AppState, auth: Credentials, user: NewUser) -> Result<Json, ApiError> {
    let peer = auth.peer;
    let admin = admin(&state, auth).await?;
    let by = admin.user.clone();
    let user = state
        .hashing(move |storage| {
            Ok(accounts::create_user(
                storage,
                Authority::Admin(&by),
                &user,
            )?)
        })
        .await?;
    let detail = account_detail(&user);
    state
        .audit(
            Some(&admin),
            peer,
            "account_create",
            Some(user.username.clone()),
            Some(detail),
        )
        .await?;
    tracing::info!(user = %user.username, role = user.role.as_str(), "user created");
    Ok(warp::reply::json(&user))
}

async fn list_users(state: AppState, auth: Credentials) -> Result<Json, ApiError> {
    let by = admin(&state, auth).await?.user;
    let users: Vec<User> = state
        .blocking(move |storage| {
            Ok(storage
                .list_users()?
                .into_iter()
                .filter(|u| accounts::may_manage(Authority::Admin(&by), &u.areas))
                .collect())
        })
        .await?;
    Ok(warp::reply::json(&users))
}

async fn update_user(
    username: String,
    state: AppState,
    auth: Credentials,
    update: AccountUpdate,
) -> Result<Json, ApiError> {
    let peer = auth.peer;
    let admin = admin(&state, auth).await?;
    let by = admin.user.clone();
    let user = state
        .blocking(move |storage| {
            Ok(accounts::update_user(
                storage,
                Authority::Admin(&by),
                &username,
                &update,
            )?)
        })
        .await?;
    let detail = account_detail(&user);
    state
        .audit(
            Some(&admin),
            peer,
            "account_change",
            Some(user.username.clone()),
            Some(detail),
        )
        .await?;
    tracing::info!(user = %user.username, disabled = user.disabled, "account changed");
    Ok(warp::reply::json(&user))
}

async fn set_areas(
    username: String,
    state: AppState,
    auth: Credentials,
    body: Areas,
) -> Result<Json, ApiError> {
    let update = AccountUpdate {
        areas: Some(body.areas),
        ..AccountUpdate::default()
    };
    update_user(username, state, auth, update).await
}

async fn reset_password(
    username: String,
    state: AppState,
    auth: Credentials,
    body: NewPassword,
) -> Result<Json, ApiError> {
    let peer = auth.peer;
    let admin = admin(&state, auth).await?;
    let by = admin.user.clone();
    let name = username.clone();
    state
        .hashing(move |storage| {
            Ok(accounts::set_password(
                storage,
                Authority::Admin(&by),
                &name,
                &body.password,
            )?)
        })
        .await?;
    state
        .audit(
            Some(&admin),
            peer,
            "password_reset",
            Some(username.clone()),
            None,
        )
        .await?;
    tracing::info!(user = %username, "password reset by an admin");
    Ok(warp::reply::json(
        &serde_json::json!({ "password_changed": username }),
    ))
}

async fn change_own_password(
    state: AppState,
    auth: Credentials,
    peer: Option<Peer>,
    body: OwnPassword,
) -> Result<Json, ApiError> {
    let me_caller = caller(&state, auth).await?;
    let me = me_caller.user.username.clone();
    if body.old_password.len() > accounts::MAX_PASSWORD_BYTES
        || body.new_password.len() > accounts::MAX_PASSWORD_BYTES
    {
        return Err(ApiError::BadCredentials);
    }
    // Guessing the old password with a stolen token is throttled like a login (held to the
    // device's own count: the token proves a device of the account).
    let source = peer.map_or(std::net::IpAddr::from([0, 0, 0, 0]), |p| p.0);
    let keep = me_caller.device.id;
    let name = me.clone();
    super::session::checked(
        &state,
        Via::PasswordChange,
        &me,
        source,
        Client::Known(*keep.as_bytes()),
        move |storage| {
            Ok(accounts::change_own_password(
                storage,
                &name,
                &body.old_password,
                &body.new_password,
                keep,
            )?)
        },
    )
    .await?;
    state
        .audit(
            Some(&me_caller),
            Some(source),
            "password_change",
            Some(me.clone()),
            None,
        )
        .await?;
    tracing::info!(user = %me, "own password changed");
    Ok(warp::reply::json(
        &serde_json::json!({ "password_changed": me }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DevicesQuery {
    /// `phone` or `browser`.
    kind: Option<String>,
    /// `active`, `revoked` or `expired`; none: all but expired sessions.
    state: Option<String>,
    user: Option<String>,
}

/// Most devices one listing gives (sessions of every login pile up as revoked or expired rows).
const MAX_DEVICES: u32 = 1000;

/// A device with its times as the API writes them.
fn device_json(d: &DeviceInfo) -> serde_json::Value {
    let mut v = serde_json::to_value(d).unwrap_or_default();
    v["enrolled_at"] = serde_json::json!(d.enrolled_ms.map(iso_utc));
    v["last_sync_at"] = serde_json::json!(d.last_sync_ms.map(iso_utc));
    v["expires_at"] = serde_json::json!(d.expires_ms.map(iso_utc));
    v
}

async fn list_devices(
    state: AppState,
    auth: Credentials,
    q: DevicesQuery,
) -> Result<Json, ApiError> {
    let by = admin(&state, auth).await?.user;
    let query = DeviceQuery {
        kind: nonempty(q.kind)
            .map(|k| match k.as_str() {
                "phone" | "browser" => Ok(k),
                _ => Err(ApiError::BadRequest(format!(
                    "kind: {k} is neither phone nor browser"
                ))),
            })
            .transpose()?,
        state: nonempty(q.state)
            .map(|s| {
                DeviceState::parse(&s)
                    .ok_or_else(|| ApiError::BadRequest(format!("state: unknown state {s}")))
            })
            .transpose()?,
        username: nonempty(q.user),
        now_ms: now_ms(),
        limit: MAX_DEVICES,
    };
    let devices = state
        .blocking(move |storage| {
            let users = storage.list_users()?;
            let managed = |user_id: i64| {
                users
                    .iter()
                    .find(|u| u.id == user_id)
                    .is_some_and(|u| accounts::may_manage(Authority::Admin(&by), &u.areas))
            };
            Ok(storage
                .device_list(&query)?
                .iter()
                .filter(|d| managed(d.device.user_id))
                .map(device_json)
                .collect::<Vec<_>>())
        })
        .await?;
    Ok(warp::reply::json(&devices))
}

async fn revoke(id: String, state: AppState, auth: Credentials) -> Result<Json, ApiError> {
    let peer = auth.peer;
    let admin = admin(&state, auth).await?;
    let by = admin.user.clone();
    let id =
        Uuid::parse_str(&id).map_err(|_| ApiError::BadRequest("device id is not a UUID".into()))?;
    state
        .blocking(move |storage| {
            let device = storage
                .list_devices()?
                .into_iter()
                .find(|d| d.id == id)
                .ok_or_else(|| ApiError::NotFound("device".into()))?;
            let owner = storage
                .list_users()?
                .into_iter()
                .find(|u| u.id == device.user_id);
            if !owner.is_some_and(|u| accounts::may_manage(Authority::Admin(&by), &u.areas)) {
                // Devices of accounts outside the admin's areas do not exist for it.
                return Err(ApiError::NotFound("device".into()));
            }
            Ok(storage.revoke_device(id)?)
        })
        .await?;
    state
        .audit(
            Some(&admin),
            peer,
            "device_revoke",
            Some(id.to_string()),
            None,
        )
        .await?;
    tracing::info!(device = %id, "device revoked");
    Ok(warp::reply::json(
        &serde_json::json!({ "revoked": id.to_string() }),
    ))
}

/// The database's own counts include support cases and every area: an admin who may list less
/// could subtract what it may list and learn how many cases there are. So only an admin whose
/// scope is the whole database (every area, `*`, and sensitive access) gets them; every other
/// admin gets the same counts over what it may see, which its own lists already show. Held
/// changes of records the server does not have yet belong to no scope, so only the whole
/// database's counts include them.
async fn stats(state: AppState, auth: Credentials) -> Result<Json, ApiError> {
    let caller = admin(&state, auth).await?;
    let scope = caller.scope();
    let whole = scope.all && scope.sensitive;
    let stats = state
        .blocking(move |storage| {
            Ok(if whole {
                storage.stats()?
            } else {
                storage.scoped_stats(&scope)?
            })
        })
        .await?;
    Ok(warp::reply::json(&serde_json::json!({
        "records": stats.records,
        "changes": stats.changes,
        "held": stats.held,
        "log_entries": stats.log_entries,
        "scope": if whole { "database" } else { "visible" },
    })))
}

pub fn routes(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let create = warp::path!("v1" / "admin" / "users")
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(credentials())
        .and(json_body())
        .then(|s, a, b| async move { respond(create_user(s, a, b).await) });
    let users = warp::path!("v1" / "admin" / "users")
        .and(warp::get())
        .and(with_state(state.clone()))
        .and(credentials())
        .then(|s, a| async move { respond(list_users(s, a).await) });
    let update = warp::path!("v1" / "admin" / "users" / String)
        .and(warp::patch())
        .and(with_state(state.clone()))
        .and(credentials())
        .and(json_body())
        .then(|u, s, a, b| async move { respond(update_user(u, s, a, b).await) });
    let areas = warp::path!("v1" / "admin" / "users" / String / "areas")
        .and(warp::put())
        .and(with_state(state.clone()))
        .and(credentials())
        .and(json_body())
        .then(|u, s, a, b| async move { respond(set_areas(u, s, a, b).await) });
    let password = warp::path!("v1" / "admin" / "users" / String / "password")
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(credentials())
        .and(json_body())
        .then(|u, s, a, b| async move { respond(reset_password(u, s, a, b).await) });
    let own_password = warp::path!("v1" / "account" / "password")
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(credentials())
        .and(warp::ext::optional::<Peer>())
        .and(json_body())
        .then(|s, a, p, b| async move { respond(change_own_password(s, a, p, b).await) });
    let devices = warp::path!("v1" / "admin" / "devices")
        .and(warp::get())
        .and(with_state(state.clone()))
        .and(credentials())
        .and(params::<DevicesQuery>())
        .then(|s, a, q| async move { respond(list_devices(s, a, q).await) });
    let revoke = warp::path!("v1" / "admin" / "devices" / String / "revoke")
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(credentials())
        .then(|d, s, a| async move { respond(revoke(d, s, a).await) });
    let stats = warp::path!("v1" / "admin" / "stats")
        .and(warp::get())
        .and(with_state(state))
        .and(credentials())
        .then(|s, a| async move { respond(stats(s, a).await) });
    create
        .or(users)
        .unify()
        .or(update)
        .unify()
        .or(areas)
        .unify()
        .or(password)
        .unify()
        .or(own_password)
        .unify()
        .or(devices)
        .unify()
        .or(revoke)
        .unify()
        .or(stats)
        .unify()
}
