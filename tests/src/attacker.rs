//! Keys of hostile devices whose changes the tests and `fieldsync-abuse` build by hand: each is
//! fixed by a name, so that an attack's changes are under the actor its enrolment proved, and
//! a hand-built change of such an actor can be signed as its device would.

use fieldsync_core::signing::{DeviceKey, SIGNATURE_BYTES};
use std::collections::BTreeMap;
use std::sync::Mutex;
use uuid::Uuid;

/// Every attacker key made so far, by the actor it writes under.
static KEYS: Mutex<BTreeMap<Uuid, [u8; 32]>> = Mutex::new(BTreeMap::new());

/// The fixed secret seed of an attacking device enrolled as `name`.
pub fn attacker_key(name: &str) -> [u8; 32] {
    let mut key = [0x5au8; 32];
    for (slot, byte) in key.iter_mut().zip(name.bytes().cycle()) {
        *slot ^= byte;
    }
    let actor = DeviceKey::from_seed(&key).actor();
    KEYS.lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(actor, key);
    key
}

/// The signature `actor`'s device gives a change (zeros for an actor without a known key, or
/// bytes that are not a change).
pub fn sign_as(actor: Uuid, record_id: Uuid, bytes: &[u8]) -> [u8; SIGNATURE_BYTES] {
    let seed = KEYS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&actor)
        .copied();
    match (seed, fieldsync_core::record::decode_change(bytes)) {
        (Some(seed), Ok(change)) => {
            DeviceKey::from_seed(&seed).sign_change(record_id, &change.hash().0)
        }
        _ => [0; SIGNATURE_BYTES],
    }
}

/// An Automerge compressed-change chunk (type 2) holding `deflated`; the checksum is zeros
/// (the server must not get as far as checking it).
pub fn compressed_change_chunk(deflated: &[u8]) -> Vec<u8> {
    let mut chunk = vec![0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 2];
    fieldsync_core::protocol::varint::write(&mut chunk, deflated.len() as u64);
    chunk.extend_from_slice(deflated);
    chunk
}
