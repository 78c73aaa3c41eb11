//! Low-level framing: unsigned LEB128 varints, length-prefixed byte strings, fixed-size ids,
//! and gzip with a hard limit on the inflated size (so a small body cannot expand into a bomb).

use super::ProtocolError;
use flate2::bufread::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use std::io::{Read, Write};

pub(crate) struct Writer {
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn new() -> Writer {
        Writer { buf: Vec::new() }
    }

    pub(crate) fn varint(&mut self, v: u64) {
        varint::write(&mut self.buf, v);
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.varint(b.len() as u64);
        self.buf.extend_from_slice(b);
    }

    pub(crate) fn fixed(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    pub(crate) fn u8(&mut self, b: u8) {
        self.buf.push(b);
    }
}

pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

fn truncated(what: &str) -> ProtocolError {
    ProtocolError::Malformed(format!("truncated {what}"))
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Reader<'a> {
        Reader { data, pos: 0 }
    }

    pub(crate) fn u8(&mut self, what: &str) -> Result<u8, ProtocolError> {
        let b = *self.data.get(self.pos).ok_or_else(|| truncated(what))?;
        self.pos += 1;
        Ok(b)
    }

    pub(crate) fn varint(&mut self, what: &str) -> Result<u64, ProtocolError> {
        varint::read(self.data, &mut self.pos, what)
    }

    /// A count of items that each take at least `min_item` bytes: refused when the rest of
    /// the message could not hold that many, so a lying count cannot make us allocate.
    pub(crate) fn count(&mut self, what: &str, min_item: usize) -> Result<usize, ProtocolError> {
        let n = self.varint(what)?;
        let room = (self.data.len() - self.pos) / min_item.max(1);
        if n > room as u64 {
            return Err(truncated(what));
        }
        Ok(n as usize)
    }

    pub(crate) fn fixed<const N: usize>(&mut self, what: &str) -> Result<[u8; N], ProtocolError> {
        let end = self.pos.checked_add(N).ok_or_else(|| truncated(what))?;
        let slice = self
            .data
            .get(self.pos..end)
            .ok_or_else(|| truncated(what))?;
        self.pos = end;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Ok(out)
    }

    pub(crate) fn bytes(&mut self, what: &str) -> Result<&'a [u8], ProtocolError> {
        let len = self.varint(what)?;
        let len = usize::try_from(len).map_err(|_| truncated(what))?;
        let end = self.pos.checked_add(len).ok_or_else(|| truncated(what))?;
        let slice = self
            .data
            .get(self.pos..end)
            .ok_or_else(|| truncated(what))?;
        self.pos = end;
        Ok(slice)
    }

    pub(crate) fn finish(&self) -> Result<(), ProtocolError> {
        if self.pos == self.data.len() {
            Ok(())
        } else {
            Err(ProtocolError::Malformed(format!(
                "{} trailing bytes",
                self.data.len() - self.pos
            )))
        }
    }
}

/// Unsigned LEB128 varints, public for encodings of their own built on this framing (the
/// server's pull cursor).
pub mod varint {
    use super::{truncated, ProtocolError};

    /// Appends `v` to `out`: seven bits a byte, low bits first, the top bit set on all but the
    /// last byte.
    pub fn write(out: &mut Vec<u8>, mut v: u64) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    /// Reads the varint at `*pos` and moves `*pos` past it; `what` names it in errors. A varint
    /// cut short, longer than ten bytes, or worth more than `u64::MAX` is malformed.
    pub fn read(data: &[u8], pos: &mut usize, what: &str) -> Result<u64, ProtocolError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *data.get(*pos).ok_or_else(|| truncated(what))?;
            *pos += 1;
            if shift == 63 && byte > 1 {
                return Err(ProtocolError::Malformed(format!(
                    "{what}: varint overflows 64 bits"
                )));
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ProtocolError::Malformed(format!("{what}: varint too long")))
    }
}

/// Gzip-compresses a message body.
pub fn compress(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(
        Vec::with_capacity(data.len() / 2 + 32),
        Compression::default(),
    );
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

/// Inflates a gzip body, refusing anything that inflates past `limit` bytes and anything
/// after the end of the gzip stream.
pub fn decompress(data: &[u8], limit: usize) -> Result<Vec<u8>, ProtocolError> {
    let mut out = Vec::new();
    let mut decoder = GzDecoder::new(data);
    (&mut decoder)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| ProtocolError::Malformed(format!("bad gzip body: {e}")))?;
    if out.len() > limit {
        return Err(ProtocolError::TooLarge { limit });
    }
    if !decoder.into_inner().is_empty() {
        return Err(ProtocolError::Malformed(
            "bytes after the end of the gzip stream".into(),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_every_width() {
        for v in [
            0,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u32::MAX as u64,
            u64::MAX,
        ] {
            let mut w = Writer::new();
            w.varint(v);
            let mut r = Reader::new(&w.buf);
            assert_eq!(r.varint("v").ok(), Some(v));
            assert!(r.finish().is_ok());
        }
    }

    #[test]
    fn a_varint_past_64_bits_is_refused() {
        let mut over = vec![0xff; 9];
        over.push(0x02);
        assert!(matches!(
            Reader::new(&over).varint("v"),
            Err(ProtocolError::Malformed(m)) if m.contains("overflows")
        ));
        let mut max = vec![0xff; 9];
        max.push(0x01);
        assert_eq!(Reader::new(&max).varint("v").ok(), Some(u64::MAX));
    }

    #[test]
    fn a_gzip_bomb_is_refused() {
        let big = vec![0u8; 1_000_000];
        let small = compress(&big);
        assert!(small.len() < 5_000);
        assert!(matches!(
            decompress(&small, 100_000),
            Err(ProtocolError::TooLarge { .. })
        ));
        assert_eq!(
            decompress(&small, 1_000_000).map(|v| v.len()).ok(),
            Some(1_000_000)
        );
    }

    #[test]
    fn bytes_after_the_gzip_stream_are_refused() {
        let mut body = compress(b"FSYN");
        assert!(decompress(&body, 100).is_ok());
        body.extend_from_slice(b"extra");
        assert!(matches!(
            decompress(&body, 100),
            Err(ProtocolError::Malformed(_))
        ));
        let twice = [compress(b"a"), compress(b"b")].concat();
        assert!(decompress(&twice, 100).is_err(), "one gzip member only");
    }

    #[test]
    fn a_lying_count_is_refused_before_allocating() {
        let mut w = Writer::new();
        w.varint(1 << 40);
        assert!(Reader::new(&w.buf).count("n", 16).is_err());
    }
}
