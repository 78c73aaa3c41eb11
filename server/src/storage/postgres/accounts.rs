//! Users, their areas and permissions, enrolled devices and the actors they write under, on
//! PostgreSQL (the SQLite backend's `accounts.rs`, statement for statement).

use super::db::Db;
use super::{id_bytes, uuid_col};
use crate::storage::{
    AccountUpdate, Caller, Device, DeviceInfo, DeviceKeys, DeviceQuery, DeviceState, NewUser,
    Proven, Role, StorageError, StorageResult, User,
};
use tokio_postgres::Row;
use uuid::Uuid;

const USER_COLUMNS: &str =
    "id, username, role, sensitive_access, can_grant_sensitive, disabled, full_name, phone";

fn areas_of(db: &Db<'_>, user_id: i64) -> StorageResult<Vec<String>> {
    let rows = db.query(
        "SELECT area FROM user_areas WHERE user_id = $1 ORDER BY area",
        &[&user_id],
    )?;
    rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
}

fn user_from_row(db: &Db<'_>, r: &Row) -> StorageResult<User> {
    let id: i64 = r.try_get(0)?;
    let role: String = r.try_get(2)?;
    Ok(User {
        id,
        username: r.try_get(1)?,
        role: Role::parse(&role)
            .ok_or_else(|| StorageError::Corrupt(format!("unknown role {role}")))?,
        sensitive_access: r.try_get(3)?,
        areas: areas_of(db, id)?,
        can_grant_sensitive: r.try_get(4)?,
        disabled: r.try_get(5)?,
        full_name: r.try_get(6)?,
        phone: r.try_get(7)?,
    })
}

fn set_areas(db: &Db<'_>, user_id: i64, areas: &[String]) -> StorageResult<()> {
    db.exec("DELETE FROM user_areas WHERE user_id = $1", &[&user_id])?;
    for area in areas {
        db.exec(
            "INSERT INTO user_areas (user_id, area) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&user_id, area],
        )?;
    }
    Ok(())
}

pub fn create_user(db: &Db<'_>, user: &NewUser, password_hash: &str) -> StorageResult<User> {
    let id: Option<i64> = db
        .opt(
            "INSERT INTO users (username, password_hash, role, sensitive_access,
                                can_grant_sensitive, full_name, phone)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (username) DO NOTHING RETURNING id",
            &[
                &user.username,
                &password_hash,
                &user.role.as_str(),
                &user.sensitive_access,
                &user.can_grant_sensitive,
                &user.full_name,
                &user.phone,
            ],
        )?
        .map(|r| r.try_get(0))
        .transpose()?;
    let Some(id) = id else {
        return Err(StorageError::Conflict(format!(
            "user {} already exists",
            user.username
        )));
    };
    set_areas(db, id, &user.areas)?;
    user_by_id(db, id)
}

fn user_by_id(db: &Db<'_>, id: i64) -> StorageResult<User> {
    let row = db.one(
        &format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"),
        &[&id],
    )?;
    user_from_row(db, &row)
}

pub fn user_by_name(db: &Db<'_>, username: &str) -> StorageResult<Option<(User, String)>> {
    let Some(row) = db.opt(
        &format!("SELECT {USER_COLUMNS}, password_hash FROM users WHERE username = $1"),
        &[&username],
    )?
    else {
        return Ok(None);
    };
    Ok(Some((user_from_row(db, &row)?, row.try_get(8)?)))
}

pub fn list_users(db: &Db<'_>) -> StorageResult<Vec<User>> {
    let rows = db.query(
        &format!("SELECT {USER_COLUMNS} FROM users ORDER BY username"),
        &[],
    )?;
    rows.iter().map(|r| user_from_row(db, r)).collect()
}

pub fn update_user(db: &Db<'_>, username: &str, update: &AccountUpdate) -> StorageResult<User> {
    let (user, _) = user_by_name(db, username)?
        .ok_or_else(|| StorageError::NotFound(format!("user {username}")))?;
    if let Some(areas) = &update.areas {
        set_areas(db, user.id, areas)?;
    }
    if let Some(v) = update.sensitive_access {
        db.exec(
            "UPDATE users SET sensitive_access = $2 WHERE id = $1",
            &[&user.id, &v],
        )?;
    }
    if let Some(v) = update.can_grant_sensitive {
        db.exec(
            "UPDATE users SET can_grant_sensitive = $2 WHERE id = $1",
            &[&user.id, &v],
        )?;
    }
    if let Some(v) = &update.full_name {
        db.exec(
            "UPDATE users SET full_name = NULLIF($2, '') WHERE id = $1",
            &[&user.id, v],
        )?;
    }
    if let Some(v) = &update.phone {
        db.exec(
            "UPDATE users SET phone = NULLIF($2, '') WHERE id = $1",
            &[&user.id, v],
        )?;
    }
    if let Some(v) = update.disabled {
        db.exec(
            "UPDATE users SET disabled = $2 WHERE id = $1",
            &[&user.id, &v],
        )?;
        if v {
            db.exec(
                "UPDATE devices SET revoked = TRUE WHERE user_id = $1",
                &[&user.id],
            )?;
        }
    }
    user_by_id(db, user.id)
}

/// Sets the password and ends every token of the account but `keep`'s (see the SQLite
/// backend: a token ends by expiring now, not by revocation).
pub fn set_password(
    db: &Db<'_>,
    username: &str,
    password_hash: &str,
    keep: Option<Uuid>,
    now_ms: i64,
) -> StorageResult<()> {
    let user_id: i64 = db
        .opt("SELECT id FROM users WHERE username = $1", &[&username])?
        .ok_or_else(|| StorageError::NotFound(format!("user {username}")))?
        .try_get(0)?;
    db.exec(
        "UPDATE users SET password_hash = $2 WHERE id = $1",
        &[&user_id, &password_hash],
    )?;
    let keep = keep.map(id_bytes).unwrap_or_default();
    db.exec(
        "UPDATE devices SET expires_ms = $3
         WHERE user_id = $1 AND id != $2 AND NOT revoked
           AND (expires_ms IS NULL OR expires_ms > $3)",
        &[&user_id, &keep, &now_ms],
    )?;
    Ok(())
}

pub fn account_has_actor(db: &Db<'_>, username: &str, actor: Uuid) -> StorageResult<bool> {
    Ok(db
        .opt(
            "SELECT 1 FROM actors a JOIN devices d ON d.id = a.device_id
             JOIN users u ON u.id = d.user_id
             WHERE a.actor = $1 AND u.username = $2 AND NOT d.revoked",
            &[&id_bytes(actor), &username],
        )?
        .is_some())
}

/// Enrols a device; the actor rules are the SQLite backend's (`accounts::enrol_device` there).
pub fn enrol_device(
    db: &Db<'_>,
    user_id: i64,
    name: &str,
    token_hash: &[u8],
    keys: Option<&DeviceKeys>,
) -> StorageResult<Device> {
    let id = Uuid::now_v7();
    db.exec(
        "INSERT INTO devices (id, user_id, name, token_hash, enrolled_ms)
         VALUES ($1, $2, $3, $4, $5)",
        &[
            &id_bytes(id),
            &user_id,
            &name,
            &token_hash,
            &crate::storage::now_ms(),
        ],
    )?;
    if let Some(keys) = keys {
        let own = fieldsync_core::signing::actor_for_public_key(&keys.public_key);
        for (actor, proven) in std::iter::once((own, Proven::Yes)).chain(keys.legacy.clone()) {
            // An actor bound to something that is not a device (the demo seed) has no user: -1.
            let owner: Option<i64> = db
                .opt(
                    "SELECT d.user_id FROM actors a LEFT JOIN devices d ON d.id = a.device_id
                     WHERE a.actor = $1 FOR UPDATE OF a",
                    &[&id_bytes(actor)],
                )?
                .map(|r| r.try_get::<_, Option<i64>>(0))
                .transpose()?
                .map(|owner| owner.unwrap_or(-1));
            match (owner, proven) {
                (Some(owner), _) if owner != user_id => {
                    return Err(StorageError::Conflict(
                        "this phone's author id belongs to another account".into(),
                    ));
                }
                (None, Proven::No) => continue,
                _ => {}
            }
            db.exec(
                "INSERT INTO actors (actor, device_id, public_key) VALUES ($1, $2, $3)
                 ON CONFLICT (actor) DO UPDATE SET device_id = excluded.device_id,
                   public_key = excluded.public_key",
                &[&id_bytes(actor), &id_bytes(id), &&keys.public_key[..]],
            )?;
        }
    }
    let username: String = db
        .one("SELECT username FROM users WHERE id = $1", &[&user_id])?
        .try_get(0)?;
    Ok(Device {
        id,
        user_id,
        username,
        name: name.to_owned(),
        revoked: false,
        kind: "phone".into(),
    })
}

pub fn create_session(
    db: &Db<'_>,
    user_id: i64,
    token_hash: &[u8],
    csrf: &str,
    expires_ms: i64,
) -> StorageResult<Device> {
    let id = Uuid::now_v7();
    db.exec(
        "INSERT INTO devices (id, user_id, name, token_hash, kind, csrf, expires_ms, enrolled_ms)
         VALUES ($1, $2, 'Trình duyệt', $3, 'browser', $4, $5, $6)",
        &[
            &id_bytes(id),
            &user_id,
            &token_hash,
            &csrf,
            &expires_ms,
            &crate::storage::now_ms(),
        ],
    )?;
    let username: String = db
        .one("SELECT username FROM users WHERE id = $1", &[&user_id])?
        .try_get(0)?;
    Ok(Device {
        id,
        user_id,
        username,
        name: "Trình duyệt".into(),
        revoked: false,
        kind: "browser".into(),
    })
}

pub fn caller_by_token(
    db: &Db<'_>,
    token_hash: &[u8],
    now_ms: i64,
) -> StorageResult<Option<Caller>> {
    let Some(r) = db.opt(
        "SELECT id, user_id, name, revoked, kind, csrf, expires_ms,
                EXISTS (SELECT 1 FROM actors a WHERE a.device_id = devices.id
                        AND a.public_key IS NOT NULL)
         FROM devices WHERE token_hash = $1",
        &[&token_hash],
    )?
    else {
        return Ok(None);
    };
    let revoked: bool = r.try_get(3)?;
    let expires_ms: Option<i64> = r.try_get(6)?;
    if revoked || expires_ms.is_some_and(|e| e <= now_ms) {
        return Ok(None);
    }
    let user_id: i64 = r.try_get(1)?;
    let user = user_by_id(db, user_id)?;
    if user.disabled {
        return Ok(None);
    }
    Ok(Some(Caller {
        device: Device {
            id: uuid_col(r.try_get(0)?)?,
            user_id,
            username: user.username.clone(),
            name: r.try_get(2)?,
            revoked,
            kind: r.try_get(4)?,
        },
        user,
        session_csrf: r.try_get(5)?,
        session_expires_ms: expires_ms,
        signs: r.try_get(7)?,
    }))
}

pub fn revoke_device(db: &Db<'_>, device_id: Uuid) -> StorageResult<()> {
    let n = db.exec(
        "UPDATE devices SET revoked = TRUE WHERE id = $1",
        &[&id_bytes(device_id)],
    )?;
    if n == 0 {
        return Err(StorageError::NotFound(format!("device {device_id}")));
    }
    Ok(())
}

pub fn list_devices(db: &Db<'_>) -> StorageResult<Vec<Device>> {
    let rows = db.query(
        "SELECT d.id, d.user_id, u.username, d.name, d.revoked, d.kind
         FROM devices d JOIN users u ON u.id = d.user_id ORDER BY d.id",
        &[],
    )?;
    rows.iter()
        .map(|r| {
            Ok(Device {
                id: uuid_col(r.try_get(0)?)?,
                user_id: r.try_get(1)?,
                username: r.try_get(2)?,
                name: r.try_get(3)?,
                revoked: r.try_get(4)?,
                kind: r.try_get(5)?,
            })
        })
        .collect()
}

/// The devices `query` asks for, by username, then newest enrolment first.
pub fn device_list(db: &Db<'_>, query: &DeviceQuery) -> StorageResult<Vec<DeviceInfo>> {
    let rows = db.query(
        "SELECT d.id, d.user_id, u.username, d.name, d.revoked, d.kind, d.enrolled_ms,
                d.last_sync_ms, d.expires_ms, d.changes_sent
         FROM devices d JOIN users u ON u.id = d.user_id
         WHERE ($1::TEXT IS NULL OR d.kind = $1) AND ($2::TEXT IS NULL OR u.username = $2)
           AND CASE WHEN d.revoked THEN 'revoked'
                    WHEN d.expires_ms IS NOT NULL AND d.expires_ms <= $3 THEN 'expired'
                    ELSE 'active' END
               IN (COALESCE($4::TEXT, 'active'), COALESCE($4::TEXT, 'revoked'))
         ORDER BY u.username, COALESCE(d.enrolled_ms, 0) DESC, d.id DESC LIMIT $5",
        &[
            &query.kind,
            &query.username,
            &query.now_ms,
            &query.state.map(DeviceState::as_str),
            &(query.limit as i64),
        ],
    )?;
    rows.iter()
        .map(|r| {
            let revoked: bool = r.try_get(4)?;
            let expires_ms: Option<i64> = r.try_get(8)?;
            let sent: i64 = r.try_get(9)?;
            Ok(DeviceInfo {
                device: Device {
                    id: uuid_col(r.try_get(0)?)?,
                    user_id: r.try_get(1)?,
                    username: r.try_get(2)?,
                    name: r.try_get(3)?,
                    revoked,
                    kind: r.try_get(5)?,
                },
                state: crate::storage::device_state(revoked, expires_ms, query.now_ms),
                enrolled_ms: r.try_get(6)?,
                last_sync_ms: r.try_get(7)?,
                expires_ms,
                changes_sent: sent.max(0) as u64,
            })
        })
        .collect()
}

/// Notes a sync of `device`, at most once a minute (a pull alone writes nothing in between).
pub fn note_sync(db: &Db<'_>, device: Uuid, now_ms: i64) -> StorageResult<()> {
    db.exec(
        "UPDATE devices SET last_sync_ms = $2::BIGINT
         WHERE id = $1 AND (last_sync_ms IS NULL OR last_sync_ms < $2::BIGINT - 60000)",
        &[&id_bytes(device), &now_ms],
    )?;
    Ok(())
}

/// The user behind a device id (revoked or not): whose scope a held change is checked with.
pub fn user_of_device(db: &Db<'_>, device: Uuid) -> StorageResult<Option<User>> {
    let user_id: Option<i64> = db
        .opt(
            "SELECT user_id FROM devices WHERE id = $1",
            &[&id_bytes(device)],
        )?
        .map(|r| r.try_get(0))
        .transpose()?;
    user_id.map(|id| user_by_id(db, id)).transpose()
}
