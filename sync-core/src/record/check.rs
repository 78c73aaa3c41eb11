//! What a received change may be: decoded under hard size caps with its checksum verified, and
//! shaped like a fieldsync record (flat root map, keys of the record's schema, type and id set
//! once at creation). Server and phone both run every received change through here before it
//! touches a document, so one hostile peer cannot inflate, nest or retype its way past them.

use super::{
    ABSORBED_PREFIX, KEY_DELETED, KEY_ID, KEY_MERGED_INTO, KEY_REVIEW, KEY_REVIEW_COMMENT,
    KEY_SCHEMA, KEY_TYPE,
};
use crate::error::{CoreError, Result};
use crate::model::{schema_of, validate_set_member, RecordType, MAX_TEXT_CHARS};
use crate::protocol::varint;
use crate::record::ReviewState;
use automerge::legacy::{Key, ObjectId, OpType};
use automerge::{Change, ChangeHash, ScalarValue};
use flate2::read::DeflateDecoder;
use sha2::{Digest, Sha256};
use std::io::Read;
use uuid::Uuid;

/// Largest change accepted, in bytes of its uncompressed chunk data. A full creation with case
/// notes at their 4,000-character maximum is under 20 kB.
pub const MAX_CHANGE_BYTES: usize = 64 * 1024;
/// Most operations one change may hold: a creation puts about twenty keys.
pub const MAX_OPS_PER_CHANGE: usize = 256;
/// Most members one set field (attendees, group members, support given) may hold.
pub const MAX_SET_MEMBERS: usize = 2_000;
/// Most operations one record's document may accumulate over its life; loading and saving a
/// document costs time in proportion, and every later edit of the record pays it.
pub const MAX_DOC_OPS: u64 = 50_000;
/// Longest set member (a record id or a code).
const MAX_MEMBER_CHARS: usize = 64;
/// Longest review comment.
pub const MAX_REVIEW_COMMENT_CHARS: usize = 2_000;

const AUTOMERGE_MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
const CHUNK_CHANGE: u8 = 1;
const CHUNK_COMPRESSED_CHANGE: u8 = 2;

/// Why a well-formed change is not one fieldsync accepts for a record.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error("change has {0} operations (at most {MAX_OPS_PER_CHANGE})")]
    TooManyOps(usize),
    #[error("operation outside the record's root map")]
    Nested,
    #[error("operation kind not used by fieldsync records")]
    OpKind,
    #[error("key {0:?} is not part of the record layout")]
    UnknownKey(String),
    #[error("key {0:?} holds a value of the wrong kind")]
    WrongValue(String),
    #[error("{0} can only be set when the record is created")]
    Immutable(&'static str),
    #[error("a creation change must set $type")]
    NoType,
    #[error("the creation names record {claimed}, not {record}")]
    WrongId { claimed: String, record: Uuid },
    #[error("the record already has its creation change")]
    SecondCreation,
}

/// How field keys are checked. The server accepts only fields of its own schema; a phone
/// accepts any well-shaped field key from its server, so that a server with a newer schema
/// (an added optional field) does not make older phones set its changes aside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fields {
    Schema,
    AnyName,
}

impl Fields {
    fn type_for_fields(self, known: Option<RecordType>) -> Option<RecordType> {
        match self {
            Fields::Schema => known,
            Fields::AnyName => None,
        }
    }
}

/// What a change does, as far as checks need to know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shape {
    /// The type a creation change gives the record.
    pub creates: Option<RecordType>,
    /// Set-member keys (`s/<field>/<member>`) it writes, for the per-set member cap.
    pub member_puts: Vec<String>,
    /// Whether it reviews or merges (writes `$review`, `$review_comment`, `$merged_into` or
    /// `$absorbed/…`): only supervisors may.
    pub supervisory: bool,
    /// Whether it names its record's id (`$id`), as every creation since protocol 2 does.
    pub names_id: bool,
}

/// Decodes one change received over the network or read from disk: at most
/// [`MAX_CHANGE_BYTES`] inflated, a valid chunk with nothing after it, and a checksum that
/// matches its content. Automerge's own decoder inflates compressed chunks without a limit and
/// does not compare the checksum, so both are done here first.
pub fn decode_change(bytes: &[u8]) -> Result<Change> {
    let (data, canonical) = canonical_chunk(bytes)?;
    let hash = chunk_hash(&data);
    let checksum: [u8; 4] = bytes
        .get(4..8)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| bad("truncated header"))?;
    if hash.0[..4] != checksum {
        return Err(bad("checksum does not match the change's content"));
    }
    let change = Change::from_bytes(canonical).map_err(|e| bad(&e.to_string()))?;
    if change.hash() != hash {
        return Err(bad("hash does not match the change's content"));
    }
    if change.len() > MAX_OPS_PER_CHANGE {
        return Err(CoreError::ChangeTooManyOps {
            limit: MAX_OPS_PER_CHANGE,
        });
    }
    Ok(change)
}

fn bad(why: &str) -> CoreError {
    CoreError::BadChange(why.to_owned())
}

/// The uncompressed chunk data and a type-1 chunk holding it. A compressed chunk (type 2) is
/// inflated here, stopping at the cap.
fn canonical_chunk(bytes: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    if bytes.get(..4) != Some(&AUTOMERGE_MAGIC[..]) {
        return Err(bad("not an Automerge change"));
    }
    let chunk_type = *bytes.get(8).ok_or_else(|| bad("truncated header"))?;
    let (len, used) = read_uleb(bytes.get(9..).unwrap_or_default())?;
    let start = 9 + used;
    let body = bytes.get(start..).unwrap_or_default();
    if usize::try_from(len).ok() != Some(body.len()) {
        return Err(bad("chunk length does not match its bytes"));
    }
    let data = match chunk_type {
        CHUNK_CHANGE => {
            if body.len() > MAX_CHANGE_BYTES {
                return Err(CoreError::ChangeTooLarge {
                    limit: MAX_CHANGE_BYTES,
                });
            }
            body.to_vec()
        }
        CHUNK_COMPRESSED_CHANGE => inflate_capped(body)?,
        other => return Err(bad(&format!("chunk type {other} is not a change"))),
    };
    let mut canonical = Vec::with_capacity(data.len() + 16);
    canonical.extend_from_slice(&AUTOMERGE_MAGIC);
    canonical.extend_from_slice(&bytes[4..8]);
    canonical.push(CHUNK_CHANGE);
    varint::write(&mut canonical, data.len() as u64);
    canonical.extend_from_slice(&data);
    Ok((data, canonical))
}

fn inflate_capped(body: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    DeflateDecoder::new(body)
        .take(MAX_CHANGE_BYTES as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|_| bad("compressed change does not inflate"))?;
    if out.len() > MAX_CHANGE_BYTES {
        return Err(CoreError::ChangeTooLarge {
            limit: MAX_CHANGE_BYTES,
        });
    }
    Ok(out)
}

/// Automerge's change hash: SHA-256 over the chunk type, the LEB128 length and the data of
/// the uncompressed chunk.
fn chunk_hash(data: &[u8]) -> ChangeHash {
    let mut header = vec![CHUNK_CHANGE];
    varint::write(&mut header, data.len() as u64);
    let mut hasher = Sha256::new();
    hasher.update(&header);
    hasher.update(data);
    ChangeHash(hasher.finalize().into())
}

/// A chunk length: LEB128, the same unsigned varint as the sync protocol's.
fn read_uleb(bytes: &[u8]) -> Result<(u64, usize)> {
    let mut used = 0;
    let len = varint::read(bytes, &mut used, "chunk length").map_err(|e| bad(&e.to_string()))?;
    Ok((len, used))
}

/// Checks that `change` only does what a fieldsync client does to record `record_id`, whose
/// type is `known_type` (`None` while its creation has not been seen). A change with no
/// dependencies is a creation: it must set `$type` (and, if it names one, the right `$id`);
/// no other change may touch `$type`, `$id` or `$schema`, so a record's type never changes.
pub fn check_layout(
    change: &Change,
    record_id: Uuid,
    known_type: Option<RecordType>,
    strictness: Fields,
) -> Result<Shape, LayoutError> {
    if change.len() > MAX_OPS_PER_CHANGE {
        return Err(LayoutError::TooManyOps(change.len()));
    }
    let creation = change.deps().is_empty();
    if creation && known_type.is_some() {
        return Err(LayoutError::SecondCreation);
    }
    let expanded = change.decode();
    // A creation's operations may come in any order: its fields are checked against the type
    // it sets wherever `$type` stands in it (the last put wins, as in Automerge).
    let declared = expanded
        .operations
        .iter()
        .rev()
        .filter(|_| creation)
        .find_map(|op| match (&op.key, &op.action) {
            (Key::Map(k), OpType::Put(ScalarValue::Str(t))) if k == KEY_TYPE => {
                RecordType::parse(t)
            }
            _ => None,
        });
    let mut creates = None;
    let mut names_id = false;
    let mut member_puts = Vec::new();
    let mut supervisory = false;
    for op in &expanded.operations {
        if op.obj != ObjectId::Root || op.insert {
            return Err(LayoutError::Nested);
        }
        let Key::Map(key) = &op.key else {
            return Err(LayoutError::Nested);
        };
        let value = match &op.action {
            OpType::Put(v) => Some(v),
            OpType::Delete => None,
            _ => return Err(LayoutError::OpKind),
        };
        if value.is_some_and(|v| !clean_text(v)) {
            return Err(wrong(key));
        }
        match key.as_str() {
            KEY_TYPE | KEY_ID | KEY_SCHEMA if !creation => {
                return Err(LayoutError::Immutable(immutable_name(key)));
            }
            KEY_TYPE => match value {
                Some(ScalarValue::Str(t)) => {
                    creates = Some(RecordType::parse(t).ok_or_else(|| wrong(key))?);
                }
                _ => return Err(wrong(key)),
            },
            KEY_ID => match value {
                Some(ScalarValue::Str(claimed))
                    if Uuid::parse_str(claimed).ok() == Some(record_id) =>
                {
                    names_id = true;
                }
                Some(ScalarValue::Str(claimed)) => {
                    return Err(LayoutError::WrongId {
                        claimed: claimed.chars().take(40).collect(),
                        record: record_id,
                    })
                }
                _ => return Err(wrong(key)),
            },
            KEY_SCHEMA => expect(key, value, |v| {
                matches!(v, ScalarValue::Int(_) | ScalarValue::Uint(_))
            })?,
            // Deleting is allowed on every mutable key: Automerge resolves a conflict by deleting
            // the losing values when the winning one is written again.
            KEY_DELETED => optional(key, value, |v| matches!(v, ScalarValue::Boolean(_)))?,
            KEY_MERGED_INTO => {
                supervisory = true;
                optional(key, value, is_uuid)?;
            }
            KEY_REVIEW => {
                supervisory = true;
                optional(
                    key,
                    value,
                    |v| matches!(v, ScalarValue::Str(s) if ReviewState::parse(s).is_some()),
                )?;
            }
            KEY_REVIEW_COMMENT => {
                supervisory = true;
                optional(
                    key,
                    value,
                    |v| matches!(v, ScalarValue::Str(s) if s.chars().count() <= MAX_REVIEW_COMMENT_CHARS),
                )?;
            }
            k if k.starts_with(ABSORBED_PREFIX) => {
                supervisory = true;
                let absorbed = &k[ABSORBED_PREFIX.len()..];
                if Uuid::parse_str(absorbed).is_err() {
                    return Err(LayoutError::UnknownKey(k.chars().take(80).collect()));
                }
                optional(key, value, |v| matches!(v, ScalarValue::Boolean(true)))?;
            }
            k => {
                check_field_key(
                    k,
                    value,
                    strictness.type_for_fields(declared.or(known_type)),
                )?;
                if k.starts_with("s/") && value.is_some() {
                    member_puts.push(k.to_owned());
                }
            }
        }
    }
    if creation && creates.is_none() {
        return Err(LayoutError::NoType);
    }
    Ok(Shape {
        creates,
        member_puts,
        supervisory,
        names_id,
    })
}

fn immutable_name(key: &str) -> &'static str {
    match key {
        KEY_TYPE => "$type",
        KEY_ID => "$id",
        _ => "$schema",
    }
}

fn wrong(key: &str) -> LayoutError {
    LayoutError::WrongValue(key.chars().take(80).collect())
}

fn expect(
    key: &str,
    value: Option<&ScalarValue>,
    ok: impl Fn(&ScalarValue) -> bool,
) -> Result<(), LayoutError> {
    match value {
        Some(v) if ok(v) => Ok(()),
        _ => Err(wrong(key)),
    }
}

fn optional(
    key: &str,
    value: Option<&ScalarValue>,
    ok: impl Fn(&ScalarValue) -> bool,
) -> Result<(), LayoutError> {
    match value {
        None => Ok(()),
        Some(v) if ok(v) => Ok(()),
        Some(_) => Err(wrong(key)),
    }
}

/// No string in a record holds a NUL or other control character but line breaks and tabs:
/// they corrupt exports, logs and the C strings of other tools.
fn clean_text(v: &ScalarValue) -> bool {
    match v {
        ScalarValue::Str(s) => !s.chars().any(|c| c.is_control() && c != '\n' && c != '\t'),
        _ => true,
    }
}

fn is_uuid(v: &ScalarValue) -> bool {
    matches!(v, ScalarValue::Str(s) if Uuid::parse_str(s).is_ok())
}

/// `f/<field>` must name a scalar field and `s/<field>/<member>` a set field of the record's
/// type. While the type is unknown (the creation has not arrived) only the shape is checked.
fn check_field_key(
    key: &str,
    value: Option<&ScalarValue>,
    record_type: Option<RecordType>,
) -> Result<(), LayoutError> {
    let unknown = || LayoutError::UnknownKey(key.chars().take(80).collect());
    if let Some(field) = key.strip_prefix("f/") {
        let mut max_chars = MAX_TEXT_CHARS;
        if let Some(t) = record_type {
            let spec = schema_of(t).field(field).ok_or_else(unknown)?;
            if spec.kind.is_set() {
                return Err(unknown());
            }
            max_chars = spec.kind.max_chars();
        }
        // Text longer than its field allows is refused here, not at validation: a change of
        // one repeated letter inflates 200-fold and would be stored, and sent to every phone
        // of the commune, before anyone looked at it.
        return optional(key, value, |v| match v {
            ScalarValue::Str(s) => s.chars().count() <= max_chars,
            ScalarValue::Int(_) | ScalarValue::Uint(_) | ScalarValue::Boolean(_) => true,
            _ => false,
        });
    }
    if let Some((field, member)) = key.strip_prefix("s/").and_then(|r| r.split_once('/')) {
        if member.is_empty() || member.chars().count() > MAX_MEMBER_CHARS {
            return Err(unknown());
        }
        if let Some(t) = record_type {
            validate_set_member(t, field, member).map_err(|_| unknown())?;
        }
        return optional(key, value, |v| matches!(v, ScalarValue::Boolean(true)));
    }
    Err(unknown())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::minimal_household;
    use crate::record::RecordDoc;
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ROOT};

    fn creation() -> (Uuid, Vec<u8>) {
        let id = Uuid::now_v7();
        let (_, change) = RecordDoc::create(
            id,
            RecordType::Household,
            &minimal_household("62.610.01", "Y Blơ"),
            Uuid::new_v4(),
        )
        .unwrap();
        (id, change.bytes)
    }

    #[test]
    fn a_valid_change_decodes_and_passes() {
        let (id, bytes) = creation();
        let change = decode_change(&bytes).unwrap();
        let shape = check_layout(&change, id, None, Fields::Schema).unwrap();
        assert_eq!(shape.creates, Some(RecordType::Household));
        assert_eq!(
            check_layout(&change, id, Some(RecordType::Household), Fields::Schema),
            Err(LayoutError::SecondCreation)
        );
        assert!(matches!(
            check_layout(&change, Uuid::now_v7(), None, Fields::Schema),
            Err(LayoutError::WrongId { .. })
        ));
    }

    /// A creation written by another client: `fields` first, then `$id` (if given) and `$type`.
    fn creation_in_order(fields: &[(&str, &str)], with_id: bool) -> (Uuid, Change) {
        let id = Uuid::now_v7();
        let mut doc = AutoCommit::new();
        for (key, value) in fields {
            doc.put(ROOT, *key, *value).unwrap();
        }
        if with_id {
            doc.put(ROOT, KEY_ID, id.to_string()).unwrap();
        }
        doc.put(ROOT, KEY_TYPE, "household").unwrap();
        let bytes = doc.get_last_local_change().unwrap().raw_bytes().to_vec();
        (id, decode_change(&bytes).unwrap())
    }

    #[test]
    fn a_creation_is_checked_against_its_type_whatever_the_order_of_its_operations() {
        let (id, change) = creation_in_order(&[("f/commune", "62.610.01")], true);
        let shape = check_layout(&change, id, None, Fields::Schema).unwrap();
        assert_eq!(shape.creates, Some(RecordType::Household));
        assert!(shape.names_id);
        let (id, change) = creation_in_order(&[("f/no_such_field", "x")], true);
        assert!(matches!(
            check_layout(&change, id, None, Fields::Schema),
            Err(LayoutError::UnknownKey(_))
        ));
        let (id, change) = creation_in_order(&[("f/village", &"a".repeat(201))], true);
        assert!(check_layout(&change, id, None, Fields::Schema).is_err());
        let (id, change) = creation_in_order(&[("f/commune", "62.610.01")], false);
        assert!(
            !check_layout(&change, id, None, Fields::Schema)
                .unwrap()
                .names_id
        );
    }

    #[test]
    fn a_wrong_checksum_is_refused() {
        let (_, mut bytes) = creation();
        bytes[5] ^= 0xff;
        assert!(matches!(
            decode_change(&bytes),
            Err(CoreError::BadChange(_))
        ));
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let (_, mut bytes) = creation();
        bytes.push(0);
        assert!(decode_change(&bytes).is_err());
    }

    #[test]
    fn a_compressed_bomb_stops_at_the_cap() {
        // A valid-looking compressed chunk whose data inflates to 10 MB of zeros.
        let zeros = vec![0u8; 10_000_000];
        let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut enc, &zeros).unwrap();
        let body = enc.finish().unwrap();
        let mut bytes = AUTOMERGE_MAGIC.to_vec();
        bytes.extend_from_slice(&[0, 0, 0, 0, CHUNK_COMPRESSED_CHANGE]);
        varint::write(&mut bytes, body.len() as u64);
        bytes.extend_from_slice(&body);
        assert!(bytes.len() < 20_000);
        assert!(matches!(
            decode_change(&bytes),
            Err(CoreError::ChangeTooLarge { .. })
        ));
    }

    fn edit(f: impl FnOnce(&mut AutoCommit)) -> (Uuid, Change) {
        let (id, bytes) = creation();
        let mut doc = AutoCommit::new();
        doc.apply_changes([decode_change(&bytes).unwrap()]).unwrap();
        f(&mut doc);
        let hash = doc.commit().unwrap();
        let change = doc.get_change_by_hash(&hash).unwrap();
        (id, change)
    }

    #[test]
    fn retyping_nesting_and_foreign_keys_are_refused() {
        let (id, c) = edit(|d| {
            d.put(ROOT, KEY_TYPE, "support_case").unwrap();
        });
        assert_eq!(
            check_layout(&c, id, Some(RecordType::Household), Fields::Schema),
            Err(LayoutError::Immutable("$type"))
        );
        let (id, c) = edit(|d| {
            d.put_object(ROOT, "f/village", automerge::ObjType::Map)
                .unwrap();
        });
        assert_eq!(
            check_layout(&c, id, Some(RecordType::Household), Fields::Schema),
            Err(LayoutError::OpKind)
        );
        let (id, c) = edit(|d| {
            d.put(ROOT, "x/1", 1).unwrap();
        });
        assert!(matches!(
            check_layout(&c, id, Some(RecordType::Household), Fields::Schema),
            Err(LayoutError::UnknownKey(_))
        ));
        let (id, c) = edit(|d| {
            d.put(ROOT, "f/case_notes", "x").unwrap();
        });
        assert!(matches!(
            check_layout(&c, id, Some(RecordType::Household), Fields::Schema),
            Err(LayoutError::UnknownKey(_))
        ));
        let (id, c) = edit(|d| {
            d.put(ROOT, "f/village", "Làng Le").unwrap();
        });
        assert_eq!(
            check_layout(&c, id, Some(RecordType::Household), Fields::Schema),
            Ok(Shape {
                creates: None,
                member_puts: vec![],
                supervisory: false,
                names_id: false,
            })
        );
    }

    #[test]
    fn text_longer_than_its_field_is_refused() {
        let village = "Làng ".to_owned() + &"a".repeat(195);
        let (id, c) = edit(|d| d.put(ROOT, "f/village", village.as_str()).unwrap());
        assert!(check_layout(&c, id, Some(RecordType::Household), Fields::Schema).is_ok());
        let (id, c) = edit(|d| d.put(ROOT, "f/village", format!("{village}a")).unwrap());
        assert_eq!(
            check_layout(&c, id, Some(RecordType::Household), Fields::Schema),
            Err(LayoutError::WrongValue("f/village".into()))
        );
        let (id, c) = edit(|d| d.put(ROOT, "f/poverty", "x".repeat(65)).unwrap());
        assert!(check_layout(&c, id, Some(RecordType::Household), Fields::Schema).is_err());
        let (id, c) = edit(|d| d.put(ROOT, "s/members/not-a-record-id", true).unwrap());
        assert!(check_layout(&c, id, Some(RecordType::Group), Fields::Schema).is_err());
        // Before the creation is known, no text may exceed the longest field.
        let (id, c) = edit(|d| {
            d.put(ROOT, "f/village", "a".repeat(MAX_TEXT_CHARS + 1))
                .unwrap()
        });
        assert!(check_layout(&c, id, None, Fields::Schema).is_err());
        assert!(check_layout(&c, id, None, Fields::AnyName).is_err());
    }
}
