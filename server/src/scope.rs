//! What a device may pull and push: the communes under its user's assigned areas (across the
//! 2025 merger, both ways), and whether it may see sensitive records. Also the pull cursor,
//! which keeps one position per stream so that a newly assigned commune backfills from zero
//! while the others carry on where they were.

use crate::storage::{Role, User};
use fieldsync_core::model::{AreaLevel, Areas};
use fieldsync_core::protocol::varint;
use fieldsync_core::RecordType;
use std::collections::{BTreeMap, BTreeSet};

/// The set of communes and record kinds a caller may sync.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    pub all: bool,
    pub communes: BTreeSet<String>,
    pub sensitive: bool,
    /// May review and merge records (supervisors and admins): write `$review`,
    /// `$review_comment`, `$merged_into` and `$absorbed/…`.
    pub reviews: bool,
}

impl Scope {
    pub fn for_user(user: &User) -> Scope {
        Scope {
            all: user.areas.iter().any(|a| a == "*"),
            communes: communes_of(&user.areas),
            sensitive: user.sensitive_access,
            reviews: user.role != Role::Collector,
        }
    }

    /// Everything: for server-side writes.
    pub fn everything() -> Scope {
        Scope {
            all: true,
            communes: BTreeSet::new(),
            sensitive: true,
            reviews: true,
        }
    }

    pub fn allows(&self, record_type: RecordType, commune: &str) -> bool {
        (self.all || self.communes.contains(commune))
            && (self.sensitive || !record_type.is_sensitive())
    }

    /// The log streams this scope pulls, or `None` for every stream.
    pub fn streams(&self) -> Option<Vec<String>> {
        if self.all {
            return None;
        }
        let mut out = Vec::new();
        for c in &self.communes {
            out.push(stream_key(c, false));
            if self.sensitive {
                out.push(stream_key(c, true));
            }
        }
        Some(out)
    }
}

/// Every commune (old and new) the area codes cover, across the 2025 merger both ways: a
/// current commune also covers the old communes merged into it; an old commune covers its
/// successor and the communes merged with it; a province or district covers the communes
/// under it, and an old one also the current communes its communes became. Unknown codes
/// (and `*`) cover nothing here.
pub fn communes_of(area_codes: &[String]) -> BTreeSet<String> {
    let areas = Areas::bundled();
    let mut out = BTreeSet::new();
    for assigned in area_codes {
        let Some(area) = areas.get(assigned) else {
            continue;
        };
        for commune in areas.communes() {
            let c = commune.code.as_str();
            let current = areas.current(c);
            let under = |code: &str| {
                areas
                    .ancestor(code, area.level)
                    .is_some_and(|a| a.code == area.code)
            };
            let same_unit =
                area.level == AreaLevel::Commune && current == areas.current(&area.code);
            if c == area.code || same_unit || under(c) || under(current) {
                out.insert(c.to_owned());
                // An old district also covers the new communes its communes merged into.
                out.insert(current.to_owned());
            }
        }
    }
    out
}

/// The communes whose records lie in the area `code`, for the pages' area filters. A current
/// area covers what [`communes_of`] says. An old (pre-2025) area covers the old communes under
/// it and each current commune made only of them: a record holding an old commune's code lies
/// in that old commune, while one holding the code of a commune merged from several may lie in
/// any of them, so an old commune's filter leaves it out (docs/data-model.md, §4).
pub fn communes_within(code: &str) -> BTreeSet<String> {
    let areas = Areas::bundled();
    let Some(area) = areas.get(code) else {
        return BTreeSet::new();
    };
    if area.valid_to.is_none() {
        return communes_of(&[code.to_owned()]);
    }
    let lies_in = |c: &str| {
        c == area.code
            || areas
                .ancestor(c, area.level)
                .is_some_and(|a| a.code == area.code)
    };
    let old: BTreeSet<String> = areas
        .communes()
        .filter(|c| c.valid_to.is_some() && lies_in(&c.code))
        .map(|c| c.code.clone())
        .collect();
    let mut out = old.clone();
    for commune in areas.communes().filter(|c| c.valid_to.is_none()) {
        let mut made_of = areas
            .communes()
            .filter(|c| c.code != commune.code && areas.current(&c.code) == commune.code)
            .peekable();
        if made_of.peek().is_some() && made_of.all(|c| old.contains(&c.code)) {
            out.insert(commune.code.clone());
        }
    }
    out
}

/// A log stream: one commune's ordinary records, or its sensitive ones.
pub fn stream_key(commune: &str, sensitive: bool) -> String {
    if sensitive {
        format!("{commune}#sensitive")
    } else {
        commune.to_owned()
    }
}

pub fn is_sensitive_stream(stream: &str) -> bool {
    stream.ends_with("#sensitive")
}

/// Pull positions, one per stream: the last log sequence number the device has applied.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cursor(pub BTreeMap<String, i64>);

impl Cursor {
    /// Encoding: the server database's identity (16 bytes), a varint count, then per stream a
    /// varint-length key and a varint position.
    pub fn encode(&self, server_id: &[u8; 16]) -> Vec<u8> {
        let mut out = server_id.to_vec();
        varint::write(&mut out, self.0.len() as u64);
        for (key, seq) in &self.0 {
            varint::write(&mut out, key.len() as u64);
            out.extend_from_slice(key.as_bytes());
            varint::write(&mut out, u64::try_from(*seq).unwrap_or(0));
        }
        out
    }

    /// Decodes a cursor, counting one of another database as empty (see [`Cursor::read`]).
    pub fn decode(data: &[u8], server_id: &[u8; 16]) -> Result<Cursor, String> {
        Ok(match Cursor::read(data, server_id)? {
            Presented::Current(cursor) => cursor,
            Presented::Empty | Presented::Foreign => Cursor::default(),
        })
    }

    /// Reads a request's cursor; anything malformed is an error (the phone sent bytes we never
    /// made). A cursor made by a database with another identity (before a restore from backup)
    /// is [`Presented::Foreign`]: its positions may point past entries the restored log reuses.
    pub fn read(data: &[u8], server_id: &[u8; 16]) -> Result<Presented, String> {
        if data.is_empty() {
            return Ok(Presented::Empty);
        }
        let (identity, data) = data.split_at_checked(16).ok_or("truncated cursor")?;
        if identity != server_id {
            return Ok(Presented::Foreign);
        }
        let mut pos = 0;
        let n = read_varint(data, &mut pos)?;
        let mut map = BTreeMap::new();
        for _ in 0..n {
            let len = usize::try_from(read_varint(data, &mut pos)?).map_err(|_| "bad cursor")?;
            let end = pos.checked_add(len).ok_or("bad cursor")?;
            let key = std::str::from_utf8(data.get(pos..end).ok_or("truncated cursor")?)
                .map_err(|_| "cursor key is not UTF-8")?;
            pos = end;
            let seq = i64::try_from(read_varint(data, &mut pos)?).map_err(|_| "bad cursor")?;
            map.insert(key.to_owned(), seq);
        }
        if pos != data.len() {
            return Err("trailing bytes in cursor".into());
        }
        Ok(Presented::Current(Cursor(map)))
    }
}

/// What a request's cursor is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Presented {
    /// None: the device's first sync.
    Empty,
    /// A cursor of this database.
    Current(Cursor),
    /// A cursor of a database with another identity: the device last synced before a restore
    /// (the server decides whether it may start over, `http::state`).
    Foreign,
}

/// One varint of a cursor, with the protocol's own checks (length, overflow).
fn read_varint(data: &[u8], pos: &mut usize) -> Result<u64, String> {
    varint::read(data, pos, "cursor").map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Role;

    #[test]
    fn an_old_commune_filter_keeps_what_lies_in_that_old_commune() {
        let set = |codes: &[&str]| {
            codes
                .iter()
                .map(|c| (*c).to_owned())
                .collect::<BTreeSet<_>>()
        };
        // Mường Hoong and Ngọc Linh became Ngọc Linh (51.102): a record holding 51.102 may lie
        // in either.
        assert_eq!(communes_within("62.610.02"), set(&["62.610.02"]));
        // Bờ Y became Bờ Y (51.104) alone: a record holding 51.104 lies in old Bờ Y.
        assert_eq!(communes_within("62.611.01"), set(&["62.611.01", "51.104"]));
        // An old district keeps the current communes made wholly of its communes.
        assert_eq!(
            communes_within("62.610"),
            set(&[
                "62.610.01",
                "62.610.02",
                "62.610.03",
                "62.610.04",
                "51.102",
                "51.103"
            ])
        );
        // A current commune covers the old communes merged into it.
        assert_eq!(
            communes_within("51.102"),
            set(&["51.102", "62.610.01", "62.610.02"])
        );
        assert!(communes_within("nowhere").is_empty());
    }

    fn user(areas: &[&str], sensitive: bool) -> User {
        User {
            id: 1,
            username: "u".into(),
            role: Role::Collector,
            sensitive_access: sensitive,
            areas: areas.iter().map(|s| s.to_string()).collect(),
            can_grant_sensitive: false,
            disabled: false,
            full_name: None,
            phone: None,
        }
    }

    #[test]
    fn a_new_commune_covers_the_old_communes_merged_into_it_and_back() {
        let scope = Scope::for_user(&user(&["51.102"], false));
        assert!(scope.communes.contains("62.610.01"));
        assert!(scope.communes.contains("62.610.02"));
        assert!(!scope.communes.contains("62.610.03"));
        let old = Scope::for_user(&user(&["62.610.02"], false));
        assert!(old.communes.contains("51.102") && old.communes.contains("62.610.01"));
    }

    #[test]
    fn a_district_covers_its_communes_and_sensitive_needs_the_flag() {
        let scope = Scope::for_user(&user(&["62.610"], false));
        assert!(scope.allows(RecordType::Person, "62.610.03"));
        assert!(!scope.allows(RecordType::Person, "62.616.01"));
        assert!(!scope.allows(RecordType::SupportCase, "62.610.03"));
        assert!(
            Scope::for_user(&user(&["62.610"], true)).allows(RecordType::SupportCase, "62.610.03")
        );
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let c = Cursor(BTreeMap::from([
            ("62.610.01".into(), 42),
            ("x#sensitive".into(), 7),
        ]));
        let id = [3u8; 16];
        assert_eq!(Cursor::decode(&c.encode(&id), &id), Ok(c.clone()));
        assert!(Cursor::decode(&[5, 1], &id).is_err());
        let mut garbage = id.to_vec();
        garbage.extend([5, 1]);
        assert!(Cursor::decode(&garbage, &id).is_err());
        assert_eq!(
            Cursor::decode(&c.encode(&[4u8; 16]), &id),
            Ok(Cursor::default()),
            "another database's cursor starts from the beginning"
        );
        assert_eq!(
            Cursor::read(&c.encode(&[4u8; 16]), &id),
            Ok(Presented::Foreign)
        );
        assert_eq!(Cursor::read(&[], &id), Ok(Presented::Empty));
        assert_eq!(Cursor::read(&c.encode(&id), &id), Ok(Presented::Current(c)));
    }

    #[test]
    fn a_cursor_varint_past_64_bits_is_refused() {
        let id = [3u8; 16];
        // One stream whose key is "a" and whose position is 2^64, one past u64::MAX.
        let mut over = id.to_vec();
        over.extend([1, 1, b'a']);
        over.extend([0x80; 9]);
        over.push(0x02);
        let err = Cursor::read(&over, &id).unwrap_err();
        assert!(err.contains("overflows 64 bits"), "{err}");
        // 2^63 is a well-formed varint but no log position: refused as a position.
        let mut big = id.to_vec();
        big.extend([1, 1, b'a']);
        big.extend([0x80; 9]);
        big.push(0x01);
        assert_eq!(Cursor::read(&big, &id), Err("bad cursor".into()));
    }
}
