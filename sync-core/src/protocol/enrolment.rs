//! What a device shows when it enrols (`POST /v1/enrol`, docs/sync-protocol.md §2.1): its
//! public key, a signature proving it holds the secret, and the actors it wrote under before
//! its current key, so that its older changes stay its own.

use crate::signing::{KEY_BYTES, SIGNATURE_BYTES};
use uuid::Uuid;

/// A device's credentials for enrolment, from [`crate::Store::enrolment`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enrolment {
    pub public_key: [u8; KEY_BYTES],
    /// The device's signature of the enrolling username.
    pub proof: [u8; SIGNATURE_BYTES],
    /// Secrets of protocol 2 actors this device wrote under (each proves its actor).
    pub legacy_actor_keys: Vec<[u8; 32]>,
    /// Actors from before actors were derived from a key (claimed only if nobody else has them).
    pub legacy_actors: Vec<Uuid>,
}

impl Enrolment {
    /// The JSON body of `POST /v1/enrol`.
    pub fn request(&self, username: &str, password: &str, device_name: &str) -> serde_json::Value {
        let mut body = serde_json::json!({
            "username": username,
            "password": password,
            "device_name": device_name,
            "public_key": hex(&self.public_key),
            "proof": hex(&self.proof),
        });
        if !self.legacy_actor_keys.is_empty() {
            body["legacy_actor_keys"] = self.legacy_actor_keys.iter().map(|k| hex(k)).collect();
        }
        if !self.legacy_actors.is_empty() {
            body["legacy_actors"] = self.legacy_actors.iter().map(Uuid::to_string).collect();
        }
        body
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
