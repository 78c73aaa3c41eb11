//! Accounts: passwords (argon2id, with a minimum policy), device tokens (random, stored only as
//! SHA-256), login throttling, and who may manage whom: an admin manages only accounts within
//! its own areas, and giving sensitive access takes a permission of its own.

use crate::scope::Scope;
use crate::storage::{
    AccountUpdate, Caller, Device, DeviceKeys, NewUser, Role, Storage, StorageError, User,
};
use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use uuid::Uuid;

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("wrong username or password")]
    BadCredentials,
    #[error("invalid account: {0}")]
    Invalid(String),
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

thread_local! {
    // Argon2's 19 MiB working memory, allocated once per worker thread and reused: allocating
    // it per hash leaves that much resident after every login with the system allocator.
    static ARGON2_MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

fn argon2_raw(params: &Params, password: &[u8], salt: &[u8]) -> Result<[u8; 32], AccountError> {
    let mut out = [0u8; 32];
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    ARGON2_MEMORY.with(|memory| {
        let mut memory = memory.borrow_mut();
        let blocks = params.block_count();
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        argon
            .hash_password_into_with_memory(password, salt, &mut out, &mut memory[..blocks])
            .map_err(|e| AccountError::Invalid(e.to_string()))
    })?;
    Ok(out)
}

/// Hashes a password with argon2id (the library's recommended parameters) into a PHC string.
pub fn hash_password(password: &str) -> Result<String, AccountError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let params = Params::default();
    let out = argon2_raw(&params, password.as_bytes(), &salt)?;
    let invalid = |e: argon2::password_hash::Error| AccountError::Invalid(e.to_string());
    let salt = SaltString::encode_b64(&salt).map_err(invalid)?;
    let hash = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: (&params).try_into().map_err(invalid)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(invalid)?),
    };
    Ok(hash.to_string())
}

fn verify_password(password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Ok(params), Some(salt), Some(expected)) =
        (Params::try_from(&parsed), parsed.salt, parsed.hash)
    else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    match argon2_raw(&params, password.as_bytes(), salt) {
        // Output's equality is constant-time.
        Ok(out) => Output::new(&out).is_ok_and(|o| o == expected),
        Err(_) => false,
    }
}

/// A new random device token (what the phone keeps) and its hash (what the server keeps).
pub fn new_token() -> (String, Vec<u8>) {
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    let token: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let hash = token_hash(&token);
    (token, hash)
}

pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Who is changing an account.
#[derive(Clone, Copy, Debug)]
pub enum Authority<'a> {
    /// The operator on the server machine (`fieldsync-server admin ...`): may do anything.
    Operator,
    /// An admin account, through the API.
    Admin(&'a User),
}

impl Authority<'_> {
    fn may_grant_sensitive(&self) -> bool {
        match self {
            Authority::Operator => true,
            Authority::Admin(u) => u.can_grant_sensitive,
        }
    }

    /// Whether an account with `areas` is within this authority's own areas. An admin of every
    /// area (`*`) covers every account; any other admin only accounts with at least one
    /// commune, all of them its own (an account with no areas, or `*`, is not within anyone's
    /// areas but the province admin's).
    fn covers(&self, areas: &[String]) -> bool {
        let Authority::Admin(admin) = self else {
            return true;
        };
        if admin.role != Role::Admin || admin.disabled {
            return false;
        }
        let mine = Scope::for_user(admin);
        if mine.all {
            return true;
        }
        if areas.iter().any(|a| a == "*") {
            return false;
        }
        let theirs = Scope::for_user(&User {
            areas: areas.to_vec(),
            ..(*admin).clone()
        });
        !theirs.communes.is_empty() && theirs.communes.is_subset(&mine.communes)
    }

    fn check_covers(&self, areas: &[String]) -> Result<(), AccountError> {
        if self.covers(areas) {
            Ok(())
        } else {
            Err(AccountError::Forbidden(
                "that account is not within your areas".into(),
            ))
        }
    }

    fn check_sensitive_grant(&self, granting: bool) -> Result<(), AccountError> {
        if granting && !self.may_grant_sensitive() {
            return Err(AccountError::Forbidden(
                "giving sensitive access needs the permission to grant it".into(),
            ));
        }
        Ok(())
    }

    /// Whether this authority may change `target` at all (its password, areas, permissions,
    /// disabled flag): the account's rights must be within what the authority could grant.
    /// Whoever could reset the password of an account with sensitive access could read what
    /// it reads, so that takes the permission to grant sensitive access.
    fn check_manages(&self, target: &User) -> Result<(), AccountError> {
        self.check_covers(&target.areas)?;
        if (target.sensitive_access || target.can_grant_sensitive) && !self.may_grant_sensitive() {
            return Err(AccountError::Forbidden(
                "that account has sensitive access (or may grant it): managing it needs the \
                 permission to grant sensitive access"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// The password policy (see [`crate::passwords`]): a weak password is refused with its reason.
pub fn check_password(username: &str, password: &str) -> Result<(), AccountError> {
    crate::passwords::check(username, password)
        .map_err(|weak| AccountError::Invalid(weak.to_string()))
}

fn check_username(username: &str) -> Result<(), AccountError> {
    let valid_name = !username.is_empty()
        && username.len() <= 64
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if valid_name {
        Ok(())
    } else {
        Err(AccountError::Invalid(
            "username: 1-64 ASCII letters, digits, '.', '_' or '-'".into(),
        ))
    }
}

/// Longest full name, in characters.
pub const MAX_FULL_NAME_CHARS: usize = 120;

/// A full name: 1-120 characters without control characters once trimmed (any script, so
/// Vietnamese names keep their diacritics as typed); empty means none.
fn check_full_name(name: Option<&str>) -> Result<(), AccountError> {
    let Some(name) = name.map(str::trim).filter(|n| !n.is_empty()) else {
        return Ok(());
    };
    if name.chars().count() > MAX_FULL_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(AccountError::Invalid(format!(
            "full_name: at most {MAX_FULL_NAME_CHARS} characters, no control characters"
        )));
    }
    Ok(())
}

/// A phone number: an optional leading `+` and 8-15 digits; empty means none.
fn check_phone(phone: Option<&str>) -> Result<(), AccountError> {
    let Some(phone) = phone.filter(|p| !p.is_empty()) else {
        return Ok(());
    };
    let digits = phone.strip_prefix('+').unwrap_or(phone);
    if (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(AccountError::Invalid(
            "phone: 8-15 digits, optionally after a leading '+'".into(),
        ))
    }
}

/// The full name and phone as stored: trimmed, `None` when empty.
fn tidy(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// Creates an account after checking it and the authority creating it.
pub fn create_user(
    storage: &dyn Storage,
    by: Authority<'_>,
    user: &NewUser,
) -> Result<User, AccountError> {
    check_username(&user.username)?;
    check_full_name(user.full_name.as_deref())?;
    check_phone(user.phone.as_deref())?;
    check_areas(&user.areas)?;
    by.check_covers(&user.areas)?;
    by.check_sensitive_grant(user.sensitive_access || user.can_grant_sensitive)?;
    check_password(&user.username, &user.password)?;
    let user = NewUser {
        full_name: tidy(&user.full_name),
        phone: tidy(&user.phone),
        ..user.clone()
    };
    Ok(storage.create_user(&user, &hash_password(&user.password)?)?)
}

fn existing(storage: &dyn Storage, username: &str) -> Result<User, AccountError> {
    storage
        .user_by_name(username)?
        .map(|(u, _)| u)
        .ok_or_else(|| AccountError::Storage(StorageError::NotFound(format!("user {username}"))))
}

/// Changes an account's areas, permissions or disabled flag. The admin must manage the account
/// (see [`Authority`]) and cover its areas after the change too.
pub fn update_user(
    storage: &dyn Storage,
    by: Authority<'_>,
    username: &str,
    update: &AccountUpdate,
) -> Result<User, AccountError> {
    let target = existing(storage, username)?;
    by.check_manages(&target)?;
    check_full_name(update.full_name.as_deref())?;
    check_phone(update.phone.as_deref())?;
    if let Some(areas) = &update.areas {
        check_areas(areas)?;
        by.check_covers(areas)?;
    }
    by.check_sensitive_grant(
        update.sensitive_access == Some(true) || update.can_grant_sensitive == Some(true),
    )?;
    if let (Authority::Admin(admin), Some(true)) = (by, update.disabled) {
        if admin.id == target.id {
            return Err(AccountError::Invalid(
                "an admin cannot disable their own account".into(),
            ));
        }
    }
    let update = AccountUpdate {
        full_name: update.full_name.as_deref().map(|n| n.trim().to_owned()),
        ..update.clone()
    };
    Ok(storage.update_user(username, &update)?)
}

/// Sets an account's password (an admin resetting it, or the operator) and ends every session
/// and device token of the account: whoever held them must log in or enrol again.
pub fn set_password(
    storage: &dyn Storage,
    by: Authority<'_>,
    username: &str,
    password: &str,
) -> Result<(), AccountError> {
    let target = existing(storage, username)?;
    by.check_manages(&target)?;
    check_password(username, password)?;
    Ok(storage.set_password(username, &hash_password(password)?, None)?)
}

/// A user changing their own password, which they must know. Every other session and device
/// token of the account ends; `keep`, the device or session the change was made from, goes on.
pub fn change_own_password(
    storage: &dyn Storage,
    username: &str,
    old: &str,
    new: &str,
    keep: Uuid,
) -> Result<(), AccountError> {
    let (_, hash) = storage
        .user_by_name(username)?
        .ok_or(AccountError::BadCredentials)?;
    if !verify_password(old, &hash) {
        return Err(AccountError::BadCredentials);
    }
    check_password(username, new)?;
    Ok(storage.set_password(username, &hash_password(new)?, Some(keep))?)
}

/// Whether an admin may see and act on a device of a user with `areas`.
pub fn may_manage(by: Authority<'_>, areas: &[String]) -> bool {
    by.covers(areas)
}

pub fn check_areas(areas: &[String]) -> Result<(), AccountError> {
    let list = fieldsync_core::model::Areas::bundled();
    match areas.iter().find(|a| *a != "*" && list.get(a).is_none()) {
        Some(bad) => Err(AccountError::Invalid(format!("unknown area code {bad}"))),
        None => Ok(()),
    }
}

/// Longest username or password looked at; longer ones are refused before any hashing.
pub const MAX_USERNAME_BYTES: usize = 64;
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Checks a username and password and enrols a new device for that user, signing with the
/// key in `keys` (already proved to be the device's) and writing under the actors it names.
/// Throttling is the caller's (see `crate::throttle`).
pub fn enrol(
    storage: &dyn Storage,
    username: &str,
    password: &str,
    device_name: &str,
    keys: Option<&DeviceKeys>,
) -> Result<(Device, String, User), AccountError> {
    let user = login(storage, username, password)?;
    let (token, hash) = new_token();
    let name: String = device_name
        .chars()
        .filter(|c| !breaks_listing(*c))
        .take(100)
        .collect();
    let device = storage.enrol_device(user.id, &name, &hash, keys)?;
    Ok((device, token, user))
}

/// Whether `username` has a device, not revoked, writing under `actor`: the phone asking to
/// enrol holds the key of a store enrolled to this account before (a new token after a
/// password change, a reinstalled app). Login throttling does not hold such a phone to the
/// account-wide count (see [`crate::throttle`]). Only ask this about an actor the phone has
/// proved is its own.
pub fn enrolled_before(
    storage: &dyn Storage,
    username: &str,
    actor: Uuid,
) -> Result<bool, AccountError> {
    Ok(storage.account_has_actor(username, actor)?)
}

/// Characters a name shown on one line of a listing must not hold: control characters and
/// Unicode line and paragraph separators would forge lines, and direction overrides would
/// make a name display as another.
pub fn breaks_listing(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Checks a username and password: the account, or `BadCredentials` (also for a disabled
/// account, which answers like a wrong password: nothing to learn from trying).
pub fn login(storage: &dyn Storage, username: &str, password: &str) -> Result<User, AccountError> {
    let found = storage.user_by_name(username)?;
    let ok = match &found {
        Some((_, hash)) => verify_password(password, hash),
        None => {
            // Same work for unknown names, so timing does not reveal which names exist.
            let _ = hash_password(password);
            false
        }
    };
    found
        .filter(|(u, _)| ok && !u.disabled)
        .map(|(u, _)| u)
        .ok_or(AccountError::BadCredentials)
}

/// The caller behind a bearer token, if the token is known and not revoked.
pub fn authorise(storage: &dyn Storage, token: &str) -> Result<Option<Caller>, AccountError> {
    Ok(storage.caller_by_token(&token_hash(token))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_and_wrong_ones_do_not() {
        let hash = hash_password("mật khẩu đúng").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_password("mật khẩu đúng", &hash));
        assert!(!verify_password("mật khẩu sai", &hash));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn short_common_and_self_named_passwords_are_refused() {
        assert!(check_password("lan", "ngắn quá").is_err());
        assert!(check_password("lan", "Password123").is_err());
        assert!(check_password("nguyen.lan", "Nguyen.Lan").is_err());
        assert!(check_password("lan", "mật khẩu dài đủ").is_ok());
    }

    fn admin(areas: &[&str], can_grant: bool) -> User {
        User {
            id: 1,
            username: "qt".into(),
            role: Role::Admin,
            sensitive_access: false,
            areas: areas.iter().map(|a| a.to_string()).collect(),
            can_grant_sensitive: can_grant,
            disabled: false,
            full_name: None,
            phone: None,
        }
    }

    #[test]
    fn an_admin_covers_only_accounts_within_its_areas() {
        let district = admin(&["62.610"], false);
        let by = Authority::Admin(&district);
        assert!(by.covers(&["62.610.01".into()]));
        assert!(
            by.covers(&["51.102".into()]),
            "the merged commune of its communes"
        );
        assert!(!by.covers(&["62.616.01".into()]));
        assert!(!by.covers(&["62".into()]));
        assert!(!by.covers(&["*".into()]));
        assert!(
            !by.covers(&[]),
            "an account with no areas: only the province admin's"
        );
        assert!(by.check_sensitive_grant(true).is_err());
        assert!(by.check_sensitive_grant(false).is_ok());
        let all = admin(&["*"], true);
        assert!(Authority::Admin(&all).covers(&["*".into()]));
        assert!(Authority::Admin(&all).covers(&[]));
        assert!(Authority::Admin(&all).check_sensitive_grant(true).is_ok());
    }

    #[test]
    fn an_account_with_sensitive_access_is_managed_only_with_the_grant_permission() {
        let account = |sensitive: bool, can_grant: bool| User {
            id: 2,
            username: "giamsat".into(),
            role: Role::Supervisor,
            sensitive_access: sensitive,
            areas: vec!["62.610.01".into()],
            can_grant_sensitive: can_grant,
            disabled: false,
            full_name: None,
            phone: None,
        };
        let without = admin(&["62.610"], false);
        let with = admin(&["62.610"], true);
        let province = admin(&["*"], false);
        for target in [account(true, false), account(false, true)] {
            assert!(Authority::Admin(&without).check_manages(&target).is_err());
            assert!(Authority::Admin(&province).check_manages(&target).is_err());
            assert!(Authority::Admin(&with).check_manages(&target).is_ok());
            assert!(Authority::Operator.check_manages(&target).is_ok());
        }
        assert!(Authority::Admin(&without)
            .check_manages(&account(false, false))
            .is_ok());
    }
}
