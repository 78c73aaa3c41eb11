//! Users, their assigned areas and permissions, enrolled devices and the actors they write
//! under, and the ending of an account's tokens when its password changes.

use super::uuid_col;
use crate::storage::{
    AccountUpdate, Caller, Device, DeviceInfo, DeviceKeys, DeviceQuery, DeviceState, NewUser,
    Proven, Role, StorageError, StorageResult, User,
};
use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

const USER_COLUMNS: &str =
    "id, username, role, sensitive_access, can_grant_sensitive, disabled, full_name, phone";

fn areas_of(conn: &Connection, user_id: i64) -> StorageResult<Vec<String>> {
    let mut stmt =
        conn.prepare_cached("SELECT area FROM user_areas WHERE user_id = ?1 ORDER BY area")?;
    let rows = stmt.query_map([user_id], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// (id, username, role, sensitive access, may grant it, disabled, (full name, phone)).
type UserRow = (i64, String, String, bool, bool, bool, Contact);

/// (full name, phone).
type Contact = (Option<String>, Option<String>);

fn user_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        (r.get(6)?, r.get(7)?),
    ))
}

fn user_from_row(conn: &Connection, row: UserRow) -> StorageResult<User> {
    let (id, username, role, sensitive, can_grant, disabled, (full_name, phone)) = row;
    Ok(User {
        id,
        username,
        role: Role::parse(&role)
            .ok_or_else(|| StorageError::Corrupt(format!("unknown role {role}")))?,
        sensitive_access: sensitive,
        areas: areas_of(conn, id)?,
        can_grant_sensitive: can_grant,
        disabled,
        full_name,
        phone,
    })
}

fn set_areas(conn: &Connection, user_id: i64, areas: &[String]) -> StorageResult<()> {
    conn.execute("DELETE FROM user_areas WHERE user_id = ?1", [user_id])?;
    for area in areas {
        conn.execute(
            "INSERT OR IGNORE INTO user_areas (user_id, area) VALUES (?1, ?2)",
            params![user_id, area],
        )?;
    }
    Ok(())
}

pub fn create_user(
    conn: &mut Connection,
    user: &NewUser,
    password_hash: &str,
) -> StorageResult<User> {
    let tx = conn.transaction()?;
    let exists = tx
        .query_row(
            "SELECT 1 FROM users WHERE username = ?1",
            [&user.username],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    if exists {
        return Err(StorageError::Conflict(format!(
            "user {} already exists",
            user.username
        )));
    }
    tx.execute(
        "INSERT INTO users (username, password_hash, role, sensitive_access, can_grant_sensitive,
                            full_name, phone)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            user.username,
            password_hash,
            user.role.as_str(),
            user.sensitive_access,
            user.can_grant_sensitive,
            user.full_name,
            user.phone
        ],
    )?;
    let id = tx.last_insert_rowid();
    set_areas(&tx, id, &user.areas)?;
    let created = user_by_id(&tx, id)?;
    tx.commit()?;
    Ok(created)
}

fn user_by_id(conn: &Connection, id: i64) -> StorageResult<User> {
    let row = conn.query_row(
        &format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"),
        [id],
        user_row,
    )?;
    user_from_row(conn, row)
}

pub fn user_by_name(conn: &Connection, username: &str) -> StorageResult<Option<(User, String)>> {
    let row = conn
        .query_row(
            &format!("SELECT {USER_COLUMNS}, password_hash FROM users WHERE username = ?1"),
            [username],
            |r| Ok((user_row(r)?, r.get::<_, String>(8)?)),
        )
        .optional()?;
    match row {
        None => Ok(None),
        Some((row, hash)) => Ok(Some((user_from_row(conn, row)?, hash))),
    }
}

pub fn list_users(conn: &Connection) -> StorageResult<Vec<User>> {
    let rows: Vec<UserRow> = {
        let mut stmt = conn.prepare(&format!(
            "SELECT {USER_COLUMNS} FROM users ORDER BY username"
        ))?;
        let rows = stmt.query_map([], user_row)?;
        rows.collect::<Result<_, _>>()?
    };
    rows.into_iter().map(|r| user_from_row(conn, r)).collect()
}

pub fn update_user(
    conn: &mut Connection,
    username: &str,
    update: &AccountUpdate,
) -> StorageResult<User> {
    let tx = conn.transaction()?;
    let (user, _) = user_by_name(&tx, username)?
        .ok_or_else(|| StorageError::NotFound(format!("user {username}")))?;
    if let Some(areas) = &update.areas {
        set_areas(&tx, user.id, areas)?;
    }
    if let Some(v) = update.sensitive_access {
        tx.execute(
            "UPDATE users SET sensitive_access = ?2 WHERE id = ?1",
            params![user.id, v],
        )?;
    }
    if let Some(v) = update.can_grant_sensitive {
        tx.execute(
            "UPDATE users SET can_grant_sensitive = ?2 WHERE id = ?1",
            params![user.id, v],
        )?;
    }
    if let Some(v) = &update.full_name {
        tx.execute(
            "UPDATE users SET full_name = NULLIF(?2, '') WHERE id = ?1",
            params![user.id, v],
        )?;
    }
    if let Some(v) = &update.phone {
        tx.execute(
            "UPDATE users SET phone = NULLIF(?2, '') WHERE id = ?1",
            params![user.id, v],
        )?;
    }
    if let Some(v) = update.disabled {
        tx.execute(
            "UPDATE users SET disabled = ?2 WHERE id = ?1",
            params![user.id, v],
        )?;
        if v {
            tx.execute(
                "UPDATE devices SET revoked = 1 WHERE user_id = ?1",
                [user.id],
            )?;
        }
    }
    let updated = user_by_id(&tx, user.id)?;
    tx.commit()?;
    Ok(updated)
}

/// Sets the password and ends every token of the account but `keep`'s: phones get 401 and
/// enrol again, sessions of the page end. A token ends by expiring now, not by revocation:
/// nobody said the phone was lost, so its actor stays its own and it enrols again with it.
pub fn set_password(
    conn: &mut Connection,
    username: &str,
    password_hash: &str,
    keep: Option<Uuid>,
    now_ms: i64,
) -> StorageResult<()> {
    let tx = conn.transaction()?;
    let user_id: i64 = tx
        .query_row(
            "SELECT id FROM users WHERE username = ?1",
            [username],
            |r| r.get(0),
        )
        .optional()?
        .ok_or_else(|| StorageError::NotFound(format!("user {username}")))?;
    tx.execute(
        "UPDATE users SET password_hash = ?2 WHERE id = ?1",
        params![user_id, password_hash],
    )?;
    let keep = keep.map(|id| id.as_bytes().to_vec()).unwrap_or_default();
    tx.execute(
        "UPDATE devices SET expires_ms = ?3
         WHERE user_id = ?1 AND id != ?2 AND revoked = 0
           AND (expires_ms IS NULL OR expires_ms > ?3)",
        params![user_id, keep, now_ms],
    )?;
    tx.commit()?;
    Ok(())
}

/// Whether `username` has a device, not revoked, that writes under `actor`.
pub fn account_has_actor(conn: &Connection, username: &str, actor: Uuid) -> StorageResult<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM actors a JOIN devices d ON d.id = a.device_id
             JOIN users u ON u.id = d.user_id
             WHERE a.actor = ?1 AND u.username = ?2 AND d.revoked = 0",
            params![actor.as_bytes(), username],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

pub fn enrol_device(
    conn: &mut Connection,
    user_id: i64,
    name: &str,
    token_hash: &[u8],
    keys: Option<&DeviceKeys>,
) -> StorageResult<Device> {
    let tx = conn.transaction()?;
    let id = Uuid::now_v7();
    tx.execute(
        "INSERT INTO devices (id, user_id, name, token_hash, enrolled_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id.as_bytes(), user_id, name, token_hash, crate::storage::now_ms()],
    )?;
    if let Some(keys) = keys {
        let own = fieldsync_core::signing::actor_for_public_key(&keys.public_key);
        for (actor, proven) in std::iter::once((own, Proven::Yes)).chain(keys.legacy.clone()) {
            // An actor bound to something that is not a device (the demo seed) has no user: -1.
            let owner: Option<i64> = tx
                .query_row(
                    "SELECT d.user_id FROM actors a LEFT JOIN devices d ON d.id = a.device_id
                     WHERE a.actor = ?1",
                    [actor.as_bytes()],
                    |r| r.get::<_, Option<i64>>(0),
                )
                .optional()?
                .map(|owner| owner.unwrap_or(-1));
            match (owner, proven) {
                (Some(owner), _) if owner != user_id => {
                    return Err(StorageError::Conflict(
                        "this phone's author id belongs to another account".into(),
                    ));
                }
                // An old id nobody can prove only moves between devices of one account: a
                // colleague who saw it in changes, on a server that forgot it, gets nothing.
                (None, Proven::No) => continue,
                _ => {}
            }
            // The same store enrolling again (a new token for the same phone): the new
            // enrolment takes the actor over, the old one can no longer write under it.
            tx.execute(
                "INSERT INTO actors (actor, device_id, public_key) VALUES (?1, ?2, ?3)
                 ON CONFLICT(actor) DO UPDATE SET device_id = excluded.device_id,
                   public_key = excluded.public_key",
                params![actor.as_bytes(), id.as_bytes(), &keys.public_key[..]],
            )?;
        }
    }
    let username: String =
        tx.query_row("SELECT username FROM users WHERE id = ?1", [user_id], |r| {
            r.get(0)
        })?;
    tx.commit()?;
    Ok(Device {
        id,
        user_id,
        username,
        name: name.to_owned(),
        revoked: false,
        kind: "phone".into(),
    })
}

/// A browser session of the supervisors' page: a device of kind `browser` with a CSRF token
/// and an expiry.
pub fn create_session(
    conn: &Connection,
    user_id: i64,
    token_hash: &[u8],
    csrf: &str,
    expires_ms: i64,
) -> StorageResult<Device> {
    let id = Uuid::now_v7();
    conn.execute(
        "INSERT INTO devices (id, user_id, name, token_hash, kind, csrf, expires_ms, enrolled_ms)
         VALUES (?1, ?2, 'Trình duyệt', ?3, 'browser', ?4, ?5, ?6)",
        params![
            id.as_bytes(),
            user_id,
            token_hash,
            csrf,
            expires_ms,
            crate::storage::now_ms()
        ],
    )?;
    let username: String =
        conn.query_row("SELECT username FROM users WHERE id = ?1", [user_id], |r| {
            r.get(0)
        })?;
    Ok(Device {
        id,
        user_id,
        username,
        name: "Trình duyệt".into(),
        revoked: false,
        kind: "browser".into(),
    })
}

/// (id, user id, name, revoked, kind, CSRF token, expiry, has a signing key).
type DeviceRow = (
    Vec<u8>,
    i64,
    String,
    bool,
    String,
    Option<String>,
    Option<i64>,
    bool,
);

pub fn caller_by_token(
    conn: &Connection,
    token_hash: &[u8],
    now_ms: i64,
) -> StorageResult<Option<Caller>> {
    let row: Option<DeviceRow> = conn
        .query_row(
            "SELECT id, user_id, name, revoked, kind, csrf, expires_ms,
                    EXISTS (SELECT 1 FROM actors a WHERE a.device_id = devices.id AND a.public_key IS NOT NULL)
             FROM devices WHERE token_hash = ?1",
            [token_hash],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                ))
            },
        )
        .optional()?;
    let Some((id, user_id, name, revoked, kind, csrf, expires_ms, signs)) = row else {
        return Ok(None);
    };
    if revoked || expires_ms.is_some_and(|e| e <= now_ms) {
        return Ok(None);
    }
    let user = user_by_id(conn, user_id)?;
    if user.disabled {
        return Ok(None);
    }
    Ok(Some(Caller {
        device: Device {
            id: uuid_col(id)?,
            user_id,
            username: user.username.clone(),
            name,
            revoked,
            kind,
        },
        user,
        session_csrf: csrf,
        session_expires_ms: expires_ms,
        signs,
    }))
}

pub fn revoke_device(conn: &Connection, device_id: Uuid) -> StorageResult<()> {
    let n = conn.execute(
        "UPDATE devices SET revoked = 1 WHERE id = ?1",
        [device_id.as_bytes()],
    )?;
    if n == 0 {
        return Err(StorageError::NotFound(format!("device {device_id}")));
    }
    Ok(())
}

pub fn list_devices(conn: &Connection) -> StorageResult<Vec<Device>> {
    let mut stmt = conn.prepare(
        "SELECT d.id, d.user_id, u.username, d.name, d.revoked, d.kind FROM devices d JOIN users u ON u.id = d.user_id ORDER BY d.id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, Vec<u8>>(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
        ))
    })?;
    rows.map(|row| {
        let (id, user_id, username, name, revoked, kind) = row?;
        Ok(Device {
            id: uuid_col(id)?,
            user_id,
            username,
            name,
            revoked,
            kind,
        })
    })
    .collect()
}

/// The devices `query` asks for, by username, then newest enrolment first.
pub fn device_list(conn: &Connection, query: &DeviceQuery) -> StorageResult<Vec<DeviceInfo>> {
    let mut stmt = conn.prepare_cached(
        "SELECT d.id, d.user_id, u.username, d.name, d.revoked, d.kind, d.enrolled_ms,
                d.last_sync_ms, d.expires_ms, d.changes_sent
         FROM devices d JOIN users u ON u.id = d.user_id
         WHERE (?1 IS NULL OR d.kind = ?1) AND (?2 IS NULL OR u.username = ?2)
           AND CASE WHEN d.revoked THEN 'revoked'
                    WHEN d.expires_ms IS NOT NULL AND d.expires_ms <= ?3 THEN 'expired'
                    ELSE 'active' END
               IN (COALESCE(?4, 'active'), COALESCE(?4, 'revoked'))
         ORDER BY u.username, COALESCE(d.enrolled_ms, 0) DESC, d.id DESC LIMIT ?5",
    )?;
    let state = query.state.map(DeviceState::as_str);
    let rows = stmt.query_map(
        params![query.kind, query.username, query.now_ms, state, query.limit],
        |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                Device {
                    id: Uuid::nil(),
                    user_id: r.get(1)?,
                    username: r.get(2)?,
                    name: r.get(3)?,
                    revoked: r.get(4)?,
                    kind: r.get(5)?,
                },
                (
                    r.get::<_, Option<i64>>(6)?,
                    r.get::<_, Option<i64>>(7)?,
                    r.get::<_, Option<i64>>(8)?,
                    r.get::<_, i64>(9)?,
                ),
            ))
        },
    )?;
    rows.map(|row| {
        let (id, device, (enrolled_ms, last_sync_ms, expires_ms, sent)) = row?;
        Ok(DeviceInfo {
            device: Device {
                id: uuid_col(id)?,
                ..device
            },
            state: crate::storage::device_state(device.revoked, expires_ms, query.now_ms),
            enrolled_ms,
            last_sync_ms,
            expires_ms,
            changes_sent: sent.max(0) as u64,
        })
    })
    .collect()
}

/// Notes a sync of `device`, at most once a minute (a pull alone writes nothing in between).
pub fn note_sync(conn: &Connection, device: Uuid, now_ms: i64) -> StorageResult<()> {
    conn.prepare_cached(
        "UPDATE devices SET last_sync_ms = ?2
         WHERE id = ?1 AND (last_sync_ms IS NULL OR last_sync_ms < ?2 - 60000)",
    )?
    .execute(params![device.as_bytes(), now_ms])?;
    Ok(())
}

/// The user behind a device id (revoked or not): whose scope a held change is checked with.
pub fn user_of_device(conn: &Connection, device: Uuid) -> StorageResult<Option<User>> {
    let user_id: Option<i64> = conn
        .query_row(
            "SELECT user_id FROM devices WHERE id = ?1",
            [device.as_bytes()],
            |r| r.get(0),
        )
        .optional()?;
    user_id.map(|id| user_by_id(conn, id)).transpose()
}
