//! What keeps people and phones out does not go back in time with a restore: the rule that
//! carries revoked devices, ended tokens, disabled accounts and changed passwords from the
//! database being replaced into the restored copy, for both backends.

use crate::storage::StorageError;
use std::collections::HashMap;

/// An account as far as keeping people out goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptUser {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
    pub disabled: bool,
}

/// A device (phone or browser session) as far as keeping it out goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptDevice {
    pub id: Vec<u8>,
    pub revoked: bool,
    /// When its token ends (a password change ends every other token of its account).
    pub expires_ms: Option<i64>,
}

/// A database's accounts and devices, read for [`tighten`].
#[derive(Clone, Debug, Default)]
pub struct KeepOut {
    pub users: Vec<KeptUser>,
    pub devices: Vec<KeptDevice>,
}

/// What the restored copy must change: it only ever becomes stricter.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tightening {
    pub passwords: Vec<(i64, String)>,
    pub disable: Vec<i64>,
    pub revoke: Vec<Vec<u8>>,
    pub expire: Vec<(Vec<u8>, i64)>,
}

/// Revocations, ended tokens, disabled accounts and passwords newer than the backup, kept.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Carried {
    pub revoked_devices: u64,
    /// Device tokens and sessions that ended earlier in the replaced database.
    pub ended_tokens: u64,
    pub disabled_accounts: u64,
    pub passwords: u64,
}

impl Tightening {
    pub fn carried(&self) -> Carried {
        let n = |v: usize| v as u64;
        Carried {
            revoked_devices: n(self.revoke.len()),
            ended_tokens: n(self.expire.len()),
            disabled_accounts: n(self.disable.len()),
            passwords: n(self.passwords.len()),
        }
    }
}

/// What `restored` must take over from `replaced`. Accounts and devices are matched by id (an
/// account also by name: the same id under another name means the two databases are not
/// copies of one another, and nothing is changed); ones the restored copy lacks are not
/// brought back (they enrol again).
pub fn tighten(replaced: &KeepOut, restored: &KeepOut) -> Result<Tightening, StorageError> {
    let users: HashMap<i64, &KeptUser> = restored.users.iter().map(|u| (u.id, u)).collect();
    let devices: HashMap<&[u8], &KeptDevice> = restored
        .devices
        .iter()
        .map(|d| (d.id.as_slice(), d))
        .collect();
    let mut plan = Tightening::default();
    for old in &replaced.users {
        let Some(here) = users.get(&old.id) else {
            continue;
        };
        if here.username != old.username {
            return Err(StorageError::Conflict(format!(
                "account {} is {} in the backup but {} in the database it replaces",
                old.id, here.username, old.username
            )));
        }
        if here.password_hash != old.password_hash {
            plan.passwords.push((old.id, old.password_hash.clone()));
        }
        if old.disabled && !here.disabled {
            plan.disable.push(old.id);
        }
    }
    for old in &replaced.devices {
        let Some(here) = devices.get(old.id.as_slice()) else {
            continue;
        };
        if old.revoked && !here.revoked {
            plan.revoke.push(old.id.clone());
        }
        if let Some(ends) = old.expires_ms {
            if here.expires_ms.is_none_or(|e| e > ends) {
                plan.expire.push((old.id.clone(), ends));
            }
        }
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: i64, name: &str, hash: &str, disabled: bool) -> KeptUser {
        KeptUser {
            id,
            username: name.into(),
            password_hash: hash.into(),
            disabled,
        }
    }

    fn device(id: u8, revoked: bool, expires_ms: Option<i64>) -> KeptDevice {
        KeptDevice {
            id: vec![id],
            revoked,
            expires_ms,
        }
    }

    #[test]
    fn only_ever_stricter() {
        let restored = KeepOut {
            users: vec![user(1, "lan", "old", false), user(2, "hoa", "h", true)],
            devices: vec![
                device(1, false, None),
                device(2, true, None),
                device(3, false, Some(100)),
            ],
        };
        let replaced = KeepOut {
            // Lan changed her password and was disabled; Hoa was enabled again after the backup,
            // which a restore must not undo in the other direction either: she stays disabled.
            users: vec![user(1, "lan", "new", true), user(2, "hoa", "h", false)],
            devices: vec![
                device(1, true, Some(50)),
                device(2, false, None),
                device(3, false, Some(200)),
                device(9, true, None),
            ],
        };
        let plan = tighten(&replaced, &restored).unwrap();
        assert_eq!(plan.passwords, vec![(1, "new".to_owned())]);
        assert_eq!(plan.disable, vec![1]);
        assert_eq!(plan.revoke, vec![vec![1]]);
        assert_eq!(plan.expire, vec![(vec![1], 50)]);
        assert_eq!(
            plan.carried(),
            Carried {
                revoked_devices: 1,
                ended_tokens: 1,
                disabled_accounts: 1,
                passwords: 1
            }
        );
    }

    #[test]
    fn another_database_changes_nothing() {
        let restored = KeepOut {
            users: vec![user(1, "lan", "a", false)],
            devices: vec![],
        };
        let replaced = KeepOut {
            users: vec![user(1, "mai", "b", true)],
            devices: vec![],
        };
        assert!(matches!(
            tighten(&replaced, &restored),
            Err(StorageError::Conflict(_))
        ));
    }
}
