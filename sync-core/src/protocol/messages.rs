//! The two sync messages and their byte encoding (normative text: docs/sync-protocol.md).
//!
//! Every body starts with the magic `FSYN`, the protocol version and the message kind, so a
//! peer of another version is recognised before anything else is read.

use super::codec::{Reader, Writer};
use super::{ProtocolError, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION};
use crate::signing::SIGNATURE_BYTES;
use uuid::Uuid;

const MAGIC: &[u8; 4] = b"FSYN";
const KIND_REQUEST: u8 = 1;
const KIND_RESPONSE: u8 = 2;

/// Largest inflated message either side accepts.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// One Automerge change of one record, with the signature that makes it verifiable on its
/// own: its author's when a device pushes its own change, the server's receipt otherwise
/// (every change the server serves, and every change a device gives back on another's behalf).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeEntry {
    pub record_id: Uuid,
    pub bytes: Vec<u8>,
    pub signature: [u8; SIGNATURE_BYTES],
}

/// Why the server refused a pushed change. The change is not stored; the rest of the batch is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectCode {
    /// The record is (or would move) outside the communes assigned to the device's user, or
    /// is a record the user may not see.
    OutOfScope = 1,
    /// The change would create a sensitive record and the user's role may not write one.
    NotPermitted = 2,
    /// The change cannot be applied to the record, or is not shaped like a fieldsync edit
    /// (unknown keys, nested objects, a changed type, an unknown commune ...).
    Invalid = 3,
    /// The change's author (Automerge actor) is not bound to the device that pushed it, and
    /// the change carries no receipt of the server's.
    NotAuthor = 4,
    /// The change would take the record past a size limit.
    TooLarge = 5,
    /// The change depends on a change the server refused for good, or on one that never
    /// arrived within the hold period.
    MissingDependency = 6,
    /// The change's signature does not verify: not its author's (for the sender's own
    /// changes), nor the server's receipt (for a change given back on another's behalf).
    BadSignature = 7,
}

impl RejectCode {
    pub const ALL: [RejectCode; 7] = [
        RejectCode::OutOfScope,
        RejectCode::NotPermitted,
        RejectCode::Invalid,
        RejectCode::NotAuthor,
        RejectCode::TooLarge,
        RejectCode::MissingDependency,
        RejectCode::BadSignature,
    ];

    pub fn from_u8(b: u8) -> Result<RejectCode, ProtocolError> {
        RejectCode::ALL
            .into_iter()
            .find(|c| *c as u8 == b)
            .ok_or_else(|| ProtocolError::Malformed(format!("unknown reject code {b}")))
    }

    /// The stable name shown to collectors' apps and kept with a refused edit.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectCode::OutOfScope => "out_of_scope",
            RejectCode::NotPermitted => "not_permitted",
            RejectCode::Invalid => "invalid",
            RejectCode::NotAuthor => "not_author",
            RejectCode::TooLarge => "too_large",
            RejectCode::MissingDependency => "missing_dependency",
            RejectCode::BadSignature => "bad_signature",
        }
    }
}

/// A refused change, by hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub hash: [u8; 32],
    pub record_id: Uuid,
    pub code: RejectCode,
}

/// A change the server is missing: a dependency of something it holds. Send it next time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NeedEntry {
    pub record_id: Uuid,
    pub hash: [u8; 32],
}

/// Phone → server: what I have applied up to, and the changes I want you to store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncRequest {
    /// The cursor from the last response applied; empty on first sync. Opaque to the phone.
    pub cursor: Vec<u8>,
    /// Soft limit for the pulled changes in the response (at least one change is sent).
    pub max_pull_bytes: u64,
    pub push: Vec<ChangeEntry>,
}

/// Server → phone: what it stored, what it refused, what it needs, and a page of changes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncResponse {
    /// Hashes of pushed changes now stored durably (including ones it already had).
    pub acked: Vec<[u8; 32]>,
    pub rejected: Vec<Rejection>,
    pub need: Vec<NeedEntry>,
    /// Changes for the phone, in an order that respects each record's causality.
    pub pull: Vec<ChangeEntry>,
    /// Where the phone stands once it has applied `pull`; send it in the next request.
    pub cursor: Vec<u8>,
    /// More changes are waiting: sync again right away.
    pub more: bool,
    /// The server database's identity. It changes when the database is restored from a
    /// backup; a phone that sees it change pushes every change it authored again.
    pub server_id: [u8; 16],
}

fn header(w: &mut Writer, kind: u8) {
    w.fixed(MAGIC);
    w.u8(PROTOCOL_VERSION);
    w.u8(kind);
}

fn check_header(r: &mut Reader<'_>, kind: u8) -> Result<(), ProtocolError> {
    let magic: [u8; 4] = r.fixed("magic")?;
    if &magic != MAGIC {
        return Err(ProtocolError::Malformed(
            "not a fieldsync sync message".into(),
        ));
    }
    let version = r.u8("version")?;
    if !(MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&version) {
        return Err(ProtocolError::UpgradeNeeded {
            found: version,
            min: MIN_PROTOCOL_VERSION,
            max: PROTOCOL_VERSION,
        });
    }
    let found = r.u8("kind")?;
    if found != kind {
        return Err(ProtocolError::Malformed(format!(
            "expected message kind {kind}, got {found}"
        )));
    }
    Ok(())
}

fn write_changes(w: &mut Writer, changes: &[ChangeEntry]) {
    w.varint(changes.len() as u64);
    for c in changes {
        w.fixed(c.record_id.as_bytes());
        w.bytes(&c.bytes);
        w.fixed(&c.signature);
    }
}

fn read_changes(r: &mut Reader<'_>, what: &str) -> Result<Vec<ChangeEntry>, ProtocolError> {
    let n = r.count(what, 17 + SIGNATURE_BYTES)?;
    (0..n)
        .map(|_| {
            Ok(ChangeEntry {
                record_id: Uuid::from_bytes(r.fixed(what)?),
                bytes: r.bytes(what)?.to_vec(),
                signature: r.fixed(what)?,
            })
        })
        .collect()
}

impl SyncRequest {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        header(&mut w, KIND_REQUEST);
        w.bytes(&self.cursor);
        w.varint(self.max_pull_bytes);
        write_changes(&mut w, &self.push);
        w.buf
    }

    pub fn decode(data: &[u8]) -> Result<SyncRequest, ProtocolError> {
        let mut r = Reader::new(data);
        check_header(&mut r, KIND_REQUEST)?;
        let msg = SyncRequest {
            cursor: r.bytes("cursor")?.to_vec(),
            max_pull_bytes: r.varint("max_pull_bytes")?,
            push: read_changes(&mut r, "push")?,
        };
        r.finish()?;
        Ok(msg)
    }
}

impl SyncResponse {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        header(&mut w, KIND_RESPONSE);
        w.varint(self.acked.len() as u64);
        for h in &self.acked {
            w.fixed(h);
        }
        w.varint(self.rejected.len() as u64);
        for rej in &self.rejected {
            w.fixed(&rej.hash);
            w.fixed(rej.record_id.as_bytes());
            w.u8(rej.code as u8);
        }
        w.varint(self.need.len() as u64);
        for n in &self.need {
            w.fixed(n.record_id.as_bytes());
            w.fixed(&n.hash);
        }
        write_changes(&mut w, &self.pull);
        w.bytes(&self.cursor);
        w.u8(u8::from(self.more));
        w.fixed(&self.server_id);
        w.buf
    }

    pub fn decode(data: &[u8]) -> Result<SyncResponse, ProtocolError> {
        let mut r = Reader::new(data);
        check_header(&mut r, KIND_RESPONSE)?;
        let n = r.count("acked", 32)?;
        let acked = (0..n).map(|_| r.fixed("acked")).collect::<Result<_, _>>()?;
        let n = r.count("rejected", 49)?;
        let rejected = (0..n)
            .map(|_| {
                Ok(Rejection {
                    hash: r.fixed("rejected")?,
                    record_id: Uuid::from_bytes(r.fixed("rejected")?),
                    code: RejectCode::from_u8(r.u8("rejected")?)?,
                })
            })
            .collect::<Result<_, ProtocolError>>()?;
        let n = r.count("need", 48)?;
        let need = (0..n)
            .map(|_| {
                Ok(NeedEntry {
                    record_id: Uuid::from_bytes(r.fixed("need")?),
                    hash: r.fixed("need")?,
                })
            })
            .collect::<Result<_, ProtocolError>>()?;
        let pull = read_changes(&mut r, "pull")?;
        let cursor = r.bytes("cursor")?.to_vec();
        let more = match r.u8("more")? {
            0 => false,
            1 => true,
            other => return Err(ProtocolError::Malformed(format!("more flag {other}"))),
        };
        let server_id = r.fixed("server_id")?;
        r.finish()?;
        Ok(SyncResponse {
            acked,
            rejected,
            need,
            pull,
            cursor,
            more,
            server_id,
        })
    }
}

/// Decodes a request body as received: gzip, then the message.
pub fn decode_request_body(body: &[u8]) -> Result<SyncRequest, ProtocolError> {
    SyncRequest::decode(&super::decompress(body, MAX_BODY_BYTES)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_response() -> SyncResponse {
        SyncResponse {
            acked: vec![[1; 32], [2; 32]],
            rejected: vec![Rejection {
                hash: [3; 32],
                record_id: Uuid::from_u128(7),
                code: RejectCode::OutOfScope,
            }],
            need: vec![NeedEntry {
                record_id: Uuid::from_u128(8),
                hash: [4; 32],
            }],
            pull: vec![ChangeEntry {
                record_id: Uuid::from_u128(9),
                bytes: vec![5; 40],
                signature: [6; 64],
            }],
            cursor: vec![6; 12],
            more: true,
            server_id: [7; 16],
        }
    }

    #[test]
    fn messages_round_trip() {
        let req = SyncRequest {
            cursor: vec![1, 2, 3],
            max_pull_bytes: 65_536,
            push: vec![ChangeEntry {
                record_id: Uuid::from_u128(1),
                bytes: vec![9; 70],
                signature: [8; 64],
            }],
        };
        assert_eq!(SyncRequest::decode(&req.encode()).ok(), Some(req));
        let resp = sample_response();
        assert_eq!(SyncResponse::decode(&resp.encode()).ok(), Some(resp));
    }

    #[test]
    fn every_truncation_is_an_error_never_a_panic() {
        let bytes = sample_response().encode();
        for cut in 0..bytes.len() {
            assert!(SyncResponse::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn another_version_asks_for_an_upgrade() {
        let mut bytes = SyncRequest::default().encode();
        bytes[4] = PROTOCOL_VERSION + 1;
        assert!(
            matches!(SyncRequest::decode(&bytes), Err(ProtocolError::UpgradeNeeded { found, .. }) if found == PROTOCOL_VERSION + 1)
        );
    }
}
