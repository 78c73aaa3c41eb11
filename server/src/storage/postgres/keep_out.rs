//! After `pg_restore`: the restored database's new identity, and what keeps people out taken
//! over from the database it replaces (the rule: [`crate::keep_out`]).

use super::{schema, Db, PostgresStorage};
use crate::keep_out::{self, Carried, KeepOut, KeptDevice, KeptUser};
use crate::storage::StorageResult;
use uuid::Uuid;

impl PostgresStorage {
    /// Accounts and devices as far as keeping people out goes.
    pub fn keep_out(&self) -> StorageResult<KeepOut> {
        self.transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", read)
    }

    /// Gives this (restored) database a new identity and takes over from `replaced` its
    /// revocations, ended tokens, disabled accounts and changed passwords, in one transaction.
    pub fn new_identity_keeping(&self, replaced: &KeepOut) -> StorageResult<(Uuid, Carried)> {
        self.write(|db| {
            let plan = keep_out::tighten(replaced, &read(db)?)?;
            for (id, hash) in &plan.passwords {
                db.exec(
                    "UPDATE users SET password_hash = $2 WHERE id = $1",
                    &[id, hash],
                )?;
            }
            for id in &plan.disable {
                db.exec("UPDATE users SET disabled = TRUE WHERE id = $1", &[id])?;
            }
            for device in &plan.revoke {
                db.exec("UPDATE devices SET revoked = TRUE WHERE id = $1", &[device])?;
            }
            for (device, ends) in &plan.expire {
                db.exec(
                    "UPDATE devices SET expires_ms = $2 WHERE id = $1",
                    &[device, ends],
                )?;
            }
            Ok((schema::new_identity(db)?, plan.carried()))
        })
    }
}

fn read(db: &Db<'_>) -> StorageResult<KeepOut> {
    let users = db
        .query(
            "SELECT id, username, password_hash, disabled FROM users",
            &[],
        )?
        .iter()
        .map(|r| {
            Ok(KeptUser {
                id: r.try_get(0)?,
                username: r.try_get(1)?,
                password_hash: r.try_get(2)?,
                disabled: r.try_get(3)?,
            })
        })
        .collect::<StorageResult<_>>()?;
    let devices = db
        .query("SELECT id, revoked, expires_ms FROM devices", &[])?
        .iter()
        .map(|r| {
            Ok(KeptDevice {
                id: r.try_get(0)?,
                revoked: r.try_get(1)?,
                expires_ms: r.try_get(2)?,
            })
        })
        .collect::<StorageResult<_>>()?;
    Ok(KeepOut { users, devices })
}
