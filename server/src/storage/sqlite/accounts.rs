//! Users, their assigned areas, and enrolled devices.

use super::uuid_col;
use crate::storage::{Caller, Device, NewUser, Role, StorageError, StorageResult, User};
use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

fn areas_of(conn: &Connection, user_id: i64) -> StorageResult<Vec<String>> {
    let mut stmt =
        conn.prepare_cached("SELECT area FROM user_areas WHERE user_id = ?1 ORDER BY area")?;
    let rows = stmt.query_map([user_id], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn user_from_row(
    conn: &Connection,
    id: i64,
    username: String,
    role: String,
    sensitive: bool,
) -> StorageResult<User> {
    Ok(User {
        id,
        username,
        role: Role::parse(&role)
            .ok_or_else(|| StorageError::Invalid(format!("unknown role {role}")))?,
        sensitive_access: sensitive,
        areas: areas_of(conn, id)?,
    })
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
        return Err(StorageError::Conflict(format!("user {}", user.username)));
    }
    tx.execute(
        "INSERT INTO users (username, password_hash, role, sensitive_access) VALUES (?1, ?2, ?3, ?4)",
        params![user.username, password_hash, user.role.as_str(), user.sensitive_access],
    )?;
    let id = tx.last_insert_rowid();
    for area in &user.areas {
        tx.execute(
            "INSERT OR IGNORE INTO user_areas (user_id, area) VALUES (?1, ?2)",
            params![id, area],
        )?;
    }
    let created = user_from_row(
        &tx,
        id,
        user.username.clone(),
        user.role.as_str().into(),
        user.sensitive_access,
    )?;
    tx.commit()?;
    Ok(created)
}

pub fn user_by_name(conn: &Connection, username: &str) -> StorageResult<Option<(User, String)>> {
    let row: Option<(i64, String, String, bool, String)> = conn
        .query_row(
            "SELECT id, username, role, sensitive_access, password_hash FROM users WHERE username = ?1",
            [username],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()?;
    match row {
        None => Ok(None),
        Some((id, name, role, sensitive, hash)) => Ok(Some((
            user_from_row(conn, id, name, role, sensitive)?,
            hash,
        ))),
    }
}

pub fn set_user_areas(
    conn: &mut Connection,
    username: &str,
    areas: &[String],
) -> StorageResult<User> {
    let tx = conn.transaction()?;
    let (user, _) = user_by_name(&tx, username)?
        .ok_or_else(|| StorageError::NotFound(format!("user {username}")))?;
    tx.execute("DELETE FROM user_areas WHERE user_id = ?1", [user.id])?;
    for area in areas {
        tx.execute(
            "INSERT OR IGNORE INTO user_areas (user_id, area) VALUES (?1, ?2)",
            params![user.id, area],
        )?;
    }
    let updated = User {
        areas: areas_of(&tx, user.id)?,
        ..user
    };
    tx.commit()?;
    Ok(updated)
}

pub fn enrol_device(
    conn: &Connection,
    user_id: i64,
    name: &str,
    token_hash: &[u8],
) -> StorageResult<Device> {
    let id = Uuid::now_v7();
    conn.execute(
        "INSERT INTO devices (id, user_id, name, token_hash) VALUES (?1, ?2, ?3, ?4)",
        params![id.as_bytes(), user_id, name, token_hash],
    )?;
    let username: String =
        conn.query_row("SELECT username FROM users WHERE id = ?1", [user_id], |r| {
            r.get(0)
        })?;
    Ok(Device {
        id,
        user_id,
        username,
        name: name.to_owned(),
        revoked: false,
    })
}

/// (device id, user id, device name, revoked, username, role, sensitive access).
type TokenRow = (Vec<u8>, i64, String, bool, String, String, bool);

pub fn caller_by_token(conn: &Connection, token_hash: &[u8]) -> StorageResult<Option<Caller>> {
    let row: Option<TokenRow> = conn
        .query_row(
            "SELECT d.id, d.user_id, d.name, d.revoked, u.username, u.role, u.sensitive_access
             FROM devices d JOIN users u ON u.id = d.user_id WHERE d.token_hash = ?1",
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
                ))
            },
        )
        .optional()?;
    let Some((id, user_id, name, revoked, username, role, sensitive)) = row else {
        return Ok(None);
    };
    if revoked {
        return Ok(None);
    }
    Ok(Some(Caller {
        device: Device {
            id: uuid_col(id)?,
            user_id,
            username: username.clone(),
            name,
            revoked,
        },
        user: user_from_row(conn, user_id, username, role, sensitive)?,
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
        "SELECT d.id, d.user_id, u.username, d.name, d.revoked FROM devices d JOIN users u ON u.id = d.user_id ORDER BY d.id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, Vec<u8>>(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
        ))
    })?;
    rows.map(|row| {
        let (id, user_id, username, name, revoked) = row?;
        Ok(Device {
            id: uuid_col(id)?,
            user_id,
            username,
            name,
            revoked,
        })
    })
    .collect()
}

/// Failed-login bookkeeping for throttling: returns the time (unix ms) until which the
/// username is locked, if it is.
pub fn locked_until(conn: &Connection, username: &str) -> StorageResult<i64> {
    Ok(conn
        .query_row(
            "SELECT locked_until FROM login_failures WHERE username = ?1",
            [username],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0))
}

pub fn record_failure(conn: &Connection, username: &str, now_ms: i64) -> StorageResult<i64> {
    let failures: i64 = conn
        .query_row(
            "SELECT failures FROM login_failures WHERE username = ?1",
            [username],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0)
        + 1;
    // Three free tries, then a delay doubling from one second up to five minutes.
    let delay_ms = if failures <= 3 {
        0
    } else {
        (1000i64 << (failures - 4).min(9)).min(300_000)
    };
    conn.execute(
        "INSERT INTO login_failures (username, failures, locked_until) VALUES (?1, ?2, ?3)
         ON CONFLICT(username) DO UPDATE SET failures = excluded.failures, locked_until = excluded.locked_until",
        params![username, failures, now_ms + delay_ms],
    )?;
    Ok(now_ms + delay_ms)
}

pub fn clear_failures(conn: &Connection, username: &str) -> StorageResult<()> {
    conn.execute("DELETE FROM login_failures WHERE username = ?1", [username])?;
    Ok(())
}

/// The user behind a device id (revoked or not): whose scope a held change is checked with.
pub fn user_of_device(conn: &Connection, device: Uuid) -> StorageResult<Option<User>> {
    let row: Option<(i64, String, String, bool)> = conn
        .query_row(
            "SELECT u.id, u.username, u.role, u.sensitive_access FROM devices d JOIN users u ON u.id = d.user_id WHERE d.id = ?1",
            [device.as_bytes()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    match row {
        Some((id, name, role, sensitive)) => {
            Ok(Some(user_from_row(conn, id, name, role, sensitive)?))
        }
        None => Ok(None),
    }
}
