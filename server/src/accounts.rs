//! Passwords (argon2id), device tokens (random, stored only as SHA-256), and login throttling.

use crate::storage::{Caller, Device, NewUser, Storage, StorageError, User};
use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("wrong username or password")]
    BadCredentials,
    #[error("too many failed logins; retry in {retry_after_secs} s")]
    Throttled { retry_after_secs: u64 },
    #[error("invalid account: {0}")]
    Invalid(String),
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

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Creates an account after checking it.
pub fn create_user(storage: &dyn Storage, user: &NewUser) -> Result<User, AccountError> {
    let valid_name = !user.username.is_empty()
        && user.username.len() <= 64
        && user
            .username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if !valid_name {
        return Err(AccountError::Invalid(
            "username: 1-64 ASCII letters, digits, '.', '_' or '-'".into(),
        ));
    }
    if user.password.chars().count() < 8 {
        return Err(AccountError::Invalid(
            "password: at least 8 characters".into(),
        ));
    }
    check_areas(&user.areas)?;
    Ok(storage.create_user(user, &hash_password(&user.password)?)?)
}

pub fn check_areas(areas: &[String]) -> Result<(), AccountError> {
    let list = fieldsync_core::model::Areas::bundled();
    match areas.iter().find(|a| *a != "*" && list.get(a).is_none()) {
        Some(bad) => Err(AccountError::Invalid(format!("unknown area code {bad}"))),
        None => Ok(()),
    }
}

/// Checks a username and password and enrols a new device for that user. Failed attempts
/// are counted per username; after three, each further one locks the name for longer.
pub fn enrol(
    storage: &dyn Storage,
    username: &str,
    password: &str,
    device_name: &str,
) -> Result<(Device, String, User), AccountError> {
    let now = now_ms();
    let locked_until = storage.login_locked_until(username)?;
    if locked_until > now {
        return Err(AccountError::Throttled {
            retry_after_secs: ((locked_until - now) as u64).div_ceil(1000),
        });
    }
    let found = storage.user_by_name(username)?;
    let ok = match &found {
        Some((_, hash)) => verify_password(password, hash),
        None => {
            // Same work for unknown names, so timing does not reveal which names exist.
            let _ = hash_password(password);
            false
        }
    };
    let Some((user, _)) = found.filter(|_| ok) else {
        storage.login_failed(username, now)?;
        return Err(AccountError::BadCredentials);
    };
    storage.login_succeeded(username)?;
    let (token, hash) = new_token();
    let name: String = device_name.chars().take(100).collect();
    let device = storage.enrol_device(user.id, &name, &hash)?;
    Ok((device, token, user))
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
}
