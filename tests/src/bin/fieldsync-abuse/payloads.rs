//! What the attacks send: record changes built with Automerge directly (a hostile client is
//! not bound by the phone's validation), sync request bodies, and the nested DEFLATE bomb.

use crate::{BenchResult, Context};
use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, AutoCommit, ROOT};
use fieldsync_core::model::SCHEMA_VERSION;
use fieldsync_core::protocol::{compress, ChangeEntry, SyncRequest};
use flate2::write::DeflateEncoder;
use flate2::Compression;
use std::io::Write;
use uuid::Uuid;

/// Zeros inflated by each repeated piece of the bomb's DEFLATE stream.
const BOMB_PIECE_ZEROS: usize = 64 * 1024 * 1024;

pub use fieldsync_tests::attacker::{attacker_key, sign_as};

/// The actor the attacker enrolled as "attacker" writes under.
pub fn attacker_actor() -> Uuid {
    fieldsync_core::signing::DeviceKey::from_seed(&attacker_key("attacker")).actor()
}

/// One record's Automerge document, written key by key the way a phone lays out a record
/// (`$type`, `$schema`, `$deleted`, `f/<field>`), but without any validation.
pub struct RawRecord {
    pub id: Uuid,
    doc: AutoCommit,
}

impl RawRecord {
    /// A household in `commune`, not yet committed.
    pub fn household(actor: Uuid, commune: &str, head_name: &str) -> BenchResult<RawRecord> {
        let mut record = RawRecord {
            id: Uuid::now_v7(),
            doc: AutoCommit::new().with_actor(ActorId::from(actor.as_bytes())),
        };
        record.put("$type", "household")?;
        record.put("$schema", SCHEMA_VERSION as i64)?;
        record.put("$deleted", false)?;
        for (field, value) in [
            ("commune", commune),
            ("head_name", head_name),
            ("ethnicity", "14"),
            ("poverty", "poor"),
        ] {
            record.put(&format!("f/{field}"), value)?;
        }
        Ok(record)
    }

    /// A communication group in `commune` with `members` member ids, not yet committed: with
    /// 240 members about the largest valid change (248 of 256 operations, some 12 KiB).
    pub fn group(actor: Uuid, commune: &str, name: &str, members: usize) -> BenchResult<RawRecord> {
        let mut record = RawRecord {
            id: Uuid::now_v7(),
            doc: AutoCommit::new().with_actor(ActorId::from(actor.as_bytes())),
        };
        record.put("$type", "group")?;
        record.put("$schema", SCHEMA_VERSION as i64)?;
        record.put("$deleted", false)?;
        record.put("f/commune", commune)?;
        record.put("f/kind", "communication_team")?;
        record.put("f/name", name)?;
        for _ in 0..members {
            record.put(&format!("s/members/{}", Uuid::new_v4()), true)?;
        }
        Ok(record)
    }

    /// Sets a root key.
    pub fn put(&mut self, key: &str, value: impl Into<automerge::ScalarValue>) -> BenchResult<()> {
        self.doc
            .put(ROOT, key, value.into())
            .context("automerge put")
    }

    /// Commits what was put since the last commit as one change (timestamp 0, as phones do)
    /// and returns its bytes as a phone sends them: DEFLATE-compressed above 256 bytes.
    pub fn commit(&mut self) -> BenchResult<Vec<u8>> {
        Ok(self.commit_change()?.bytes().into_owned())
    }

    /// Like [`RawRecord::commit`], but the uncompressed chunk (type 1), whatever its size.
    pub fn commit_uncompressed(&mut self) -> BenchResult<Vec<u8>> {
        Ok(self.commit_change()?.raw_bytes().to_vec())
    }

    fn commit_change(&mut self) -> BenchResult<automerge::Change> {
        let hash = self
            .doc
            .commit_with(CommitOptions::default())
            .ok_or("nothing to commit")?;
        self.doc
            .get_change_by_hash(&hash)
            .ok_or_else(|| "committed change not found".to_owned())
    }

    /// The change as a push entry, signed by its actor when that is an attacker's.
    pub fn entry(&self, bytes: Vec<u8>) -> ChangeEntry {
        let actor = Uuid::from_slice(self.doc.get_actor().to_bytes()).unwrap_or_default();
        ChangeEntry {
            record_id: self.id,
            signature: sign_as(actor, self.id, &bytes),
            bytes,
        }
    }
}

/// The encoded (not yet compressed) sync request pushing `push`, with `cursor`.
pub fn sync_message(cursor: &[u8], push: Vec<ChangeEntry>) -> Vec<u8> {
    SyncRequest {
        cursor: cursor.to_vec(),
        // The smallest page the server serves: the attacker does not want to download.
        max_pull_bytes: 1024,
        push,
    }
    .encode()
}

/// The gzip body of a sync request.
pub fn sync_body(cursor: &[u8], push: Vec<ChangeEntry>) -> Vec<u8> {
    compress(&sync_message(cursor, push))
}

/// A raw DEFLATE stream that inflates to `pieces` × 64 MiB of zeros.
///
/// It is one piece repeated: 64 MiB of zeros deflated and ended with a sync flush, which ends
/// on a byte boundary without a final block. A repeated piece is still valid, since it only
/// refers back to zeros, and an empty final block closes the stream.
pub fn zero_bomb(pieces: usize) -> BenchResult<Vec<u8>> {
    let mut encoder = DeflateEncoder::new(Vec::new(), Compression::best());
    encoder
        .write_all(&vec![0u8; BOMB_PIECE_ZEROS])
        .context("deflate")?;
    encoder.flush().context("deflate flush")?;
    let piece = encoder.get_ref().clone();
    let end = DeflateEncoder::new(Vec::new(), Compression::best())
        .finish()
        .context("deflate end")?;
    let mut stream = Vec::with_capacity(piece.len() * pieces + end.len());
    for _ in 0..pieces {
        stream.extend_from_slice(&piece);
    }
    stream.extend_from_slice(&end);
    Ok(stream)
}

/// Zeros inflated by a [`zero_bomb`] of `pieces`.
pub fn zero_bomb_inflated(pieces: usize) -> u64 {
    (pieces * BOMB_PIECE_ZEROS) as u64
}

/// How many bomb pieces fit in `budget` bytes of DEFLATE data.
pub fn zero_bomb_pieces_within(budget: usize) -> BenchResult<usize> {
    let piece = zero_bomb(1)?.len();
    Ok((budget / piece.max(1)).max(1))
}

pub use fieldsync_tests::attacker::compressed_change_chunk;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use flate2::read::DeflateDecoder;
    use std::io::Read;

    #[test]
    fn the_bomb_inflates_to_its_announced_size_of_zeros() {
        let bomb = zero_bomb(3).unwrap();
        assert!(bomb.len() < 3 * 100 * 1024, "{} bytes", bomb.len());
        let mut total = 0u64;
        let mut nonzero = false;
        let mut decoder = DeflateDecoder::new(&bomb[..]);
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = decoder.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            nonzero |= buf[..n].iter().any(|&b| b != 0);
            total += n as u64;
        }
        assert_eq!(total, zero_bomb_inflated(3));
        assert!(!nonzero);
    }

    #[test]
    fn a_compressed_chunk_has_the_automerge_header() {
        let chunk = compressed_change_chunk(&[7; 200]);
        assert_eq!(&chunk[..4], &[0x85, 0x6f, 0x4a, 0x83]);
        assert_eq!(chunk[8], 2);
        assert_eq!(&chunk[9..11], &[0xc8, 0x01]);
        assert_eq!(chunk.len(), 11 + 200);
    }

    #[test]
    fn raw_records_make_changes_the_core_accepts() {
        let mut record = RawRecord::household(Uuid::new_v4(), "62.610.01", "Y Blơ").unwrap();
        let bytes = record.commit().unwrap();
        let change = fieldsync_core::record::decode_change(&bytes).unwrap();
        assert_eq!(change.deps().len(), 0);
        record.put("f/village", "Thôn 1").unwrap();
        let second = record.commit_uncompressed().unwrap();
        assert_eq!(second[8], 1, "type 1: an uncompressed change");
    }
}
