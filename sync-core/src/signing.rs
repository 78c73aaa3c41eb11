//! Who wrote a change, provably. Every device holds an Ed25519 key; the Automerge actor it
//! writes under is derived from the public key, and every change it pushes travels with its
//! signature. The server signs every change it accepts (a receipt), so a change that a restore
//! lost can be given back by any phone that received it, and be verified on its own.
//!
//! Signatures cover a fixed domain tag, the record id and the change hash, never the change
//! bytes themselves: the hash already commits to every byte, and a signature made for one
//! record cannot be replayed under another.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Length of a signature on the wire.
pub const SIGNATURE_BYTES: usize = 64;
/// Length of a public key (and of a secret seed).
pub const KEY_BYTES: usize = 32;

const ACTOR_TAG: &[u8] = b"fieldsync actor v2";
const CHANGE_TAG: &[u8] = b"fieldsync change v1\0";
const ENROL_TAG: &[u8] = b"fieldsync enrol v1\0";

/// The Automerge actor of a device with this public key: the first 16 bytes of
/// SHA-256(`"fieldsync actor v2"` ‖ key), with the UUID version and variant bits of a v4 UUID.
pub fn actor_for_public_key(public_key: &[u8; KEY_BYTES]) -> Uuid {
    let digest = Sha256::new()
        .chain_update(ACTOR_TAG)
        .chain_update(public_key)
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

fn change_message(record_id: Uuid, hash: &[u8; 32]) -> Vec<u8> {
    [CHANGE_TAG, record_id.as_bytes(), hash].concat()
}

fn enrol_message(username: &str) -> Vec<u8> {
    [ENROL_TAG, username.as_bytes()].concat()
}

/// A device's (or the server's) signing key.
pub struct DeviceKey(SigningKey);

impl DeviceKey {
    /// The key of a 32-byte secret seed.
    pub fn from_seed(seed: &[u8; KEY_BYTES]) -> DeviceKey {
        DeviceKey(SigningKey::from_bytes(seed))
    }

    /// A new key from the operating system's randomness (through UUIDv4, which draws on it).
    pub fn generate() -> DeviceKey {
        let mut seed = [0u8; KEY_BYTES];
        seed[..16].copy_from_slice(Uuid::new_v4().as_bytes());
        seed[16..].copy_from_slice(Uuid::new_v4().as_bytes());
        DeviceKey::from_seed(&seed)
    }

    /// The secret seed, to be kept by its owner only.
    pub fn seed(&self) -> [u8; KEY_BYTES] {
        self.0.to_bytes()
    }

    pub fn public_key(&self) -> [u8; KEY_BYTES] {
        self.0.verifying_key().to_bytes()
    }

    /// The Automerge actor this key writes under.
    pub fn actor(&self) -> Uuid {
        actor_for_public_key(&self.public_key())
    }

    /// Signs one change of one record.
    pub fn sign_change(&self, record_id: Uuid, hash: &[u8; 32]) -> [u8; SIGNATURE_BYTES] {
        self.0.sign(&change_message(record_id, hash)).to_bytes()
    }

    /// The proof shown at enrolment that the enrolling device holds this key.
    pub fn enrolment_proof(&self, username: &str) -> [u8; SIGNATURE_BYTES] {
        self.0.sign(&enrol_message(username)).to_bytes()
    }
}

fn verify(public_key: &[u8; KEY_BYTES], message: &[u8], signature: &[u8; SIGNATURE_BYTES]) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(public_key) else {
        return false;
    };
    // Strict verification: no malleable or small-order forms, so one change has one valid
    // signature per key.
    key.verify_strict(message, &Signature::from_bytes(signature))
        .is_ok()
}

/// Whether `signature` is `public_key`'s signature of the change `hash` of `record_id`.
pub fn verify_change(
    public_key: &[u8; KEY_BYTES],
    record_id: Uuid,
    hash: &[u8; 32],
    signature: &[u8; SIGNATURE_BYTES],
) -> bool {
    verify(public_key, &change_message(record_id, hash), signature)
}

/// Whether `proof` shows that whoever enrols as `username` holds `public_key`'s secret.
pub fn verify_enrolment(
    public_key: &[u8; KEY_BYTES],
    username: &str,
    proof: &[u8; SIGNATURE_BYTES],
) -> bool {
    verify(public_key, &enrol_message(username), proof)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_signature_verifies_for_its_record_and_hash_only() {
        let key = DeviceKey::from_seed(&[7; 32]);
        let record = Uuid::from_u128(1);
        let hash = [9u8; 32];
        let sig = key.sign_change(record, &hash);
        assert!(verify_change(&key.public_key(), record, &hash, &sig));
        assert!(!verify_change(
            &key.public_key(),
            Uuid::from_u128(2),
            &hash,
            &sig
        ));
        assert!(!verify_change(&key.public_key(), record, &[8; 32], &sig));
        let other = DeviceKey::from_seed(&[8; 32]);
        assert!(!verify_change(&other.public_key(), record, &hash, &sig));
        let mut forged = sig;
        forged[10] ^= 1;
        assert!(!verify_change(&key.public_key(), record, &hash, &forged));
        assert!(
            !verify_change(&[0xff; 32], record, &hash, &sig),
            "not a key"
        );
    }

    #[test]
    fn the_actor_comes_from_the_public_key_and_enrolment_proofs_name_the_user() {
        let key = DeviceKey::from_seed(&[7; 32]);
        assert_eq!(key.actor(), actor_for_public_key(&key.public_key()));
        assert_eq!(key.actor().get_version_num(), 4);
        assert_ne!(key.actor(), DeviceKey::from_seed(&[8; 32]).actor());
        let proof = key.enrolment_proof("lan");
        assert!(verify_enrolment(&key.public_key(), "lan", &proof));
        assert!(!verify_enrolment(&key.public_key(), "lan2", &proof));
        assert_eq!(
            DeviceKey::from_seed(&key.seed()).public_key(),
            key.public_key()
        );
    }
}
