//! CSV as Excel reads it: UTF-8 with a byte-order mark (Excel otherwise reads the diacritics in
//! the Windows code page), CRLF lines, every text quoted, and a text that a spreadsheet would
//! take for a formula (`=`, `+`, `-`, `@`, tab, carriage return first) prefixed with `'`; gzipped
//! on the way when the client accepts it.

use super::columns::Cell;
use flate2::write::GzEncoder;
use flate2::Compression;
use std::io::Write;

pub const BOM: &str = "\u{feff}";

/// Where CSV text goes: a buffer handed out as it fills, through gzip or not.
pub enum Sink {
    Plain(Vec<u8>),
    Gzip(Box<GzEncoder<Vec<u8>>>),
}

impl Sink {
    pub fn new(gzip: bool) -> Sink {
        if gzip {
            Sink::Gzip(Box::new(GzEncoder::new(Vec::new(), Compression::default())))
        } else {
            Sink::Plain(Vec::new())
        }
    }

    pub fn write(&mut self, text: &str) -> std::io::Result<()> {
        match self {
            Sink::Plain(buf) => {
                buf.extend_from_slice(text.as_bytes());
                Ok(())
            }
            Sink::Gzip(encoder) => encoder.write_all(text.as_bytes()),
        }
    }

    /// The bytes ready to send so far.
    pub fn take(&mut self) -> Vec<u8> {
        match self {
            Sink::Plain(buf) => std::mem::take(buf),
            // The encoder only ever appends to its output.
            Sink::Gzip(encoder) => std::mem::take(encoder.get_mut()),
        }
    }

    /// The last bytes (for gzip, what the encoder held back and its trailer).
    pub fn finish(self) -> std::io::Result<Vec<u8>> {
        match self {
            Sink::Plain(buf) => Ok(buf),
            Sink::Gzip(encoder) => (*encoder).finish(),
        }
    }
}

/// A text as a spreadsheet shows it rather than runs it.
fn defused(text: &str) -> std::borrow::Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}").into()
    } else {
        text.into()
    }
}

fn field(out: &mut String, cell: &Cell) {
    match cell {
        Cell::Empty => {}
        Cell::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => {
            out.push_str(&format!("{}", *n as i64));
        }
        Cell::Number(n) => out.push_str(&n.to_string()),
        Cell::Text(text) => {
            out.push('"');
            out.push_str(&defused(text).replace('"', "\"\""));
            out.push('"');
        }
    }
}

/// One CSV line of `cells`, CRLF-terminated.
pub fn line(cells: &[Cell]) -> String {
    let mut out = String::new();
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        field(&mut out, cell);
    }
    out.push_str("\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_quoted_and_formulas_defused() {
        let cells = [
            Cell::Text("Nguyễn \"Hoà\", Thôn 2\nĐắk Long".into()),
            Cell::Text("=HYPERLINK(\"x\")".into()),
            Cell::Text("+84912345678".into()),
            Cell::Text("-1".into()),
            Cell::Text("@SUM(A1)".into()),
            Cell::Text("001234567890".into()),
            Cell::Number(3.0),
            Cell::Empty,
        ];
        assert_eq!(
            line(&cells),
            "\"Nguyễn \"\"Hoà\"\", Thôn 2\nĐắk Long\",\"'=HYPERLINK(\"\"x\"\")\",\"'+84912345678\",\
             \"'-1\",\"'@SUM(A1)\",\"001234567890\",3,\r\n"
        );
    }

    #[test]
    fn gzip_output_inflates_to_what_was_written() {
        let mut sink = Sink::new(true);
        let mut sent = Vec::new();
        for _ in 0..2000 {
            sink.write("\"Hộ gia đình\",\"62.610.01\"\r\n").unwrap();
            sent.extend(sink.take());
        }
        sent.extend(sink.finish().unwrap());
        let plain = fieldsync_core::protocol::decompress(&sent, 1 << 20).unwrap();
        assert_eq!(
            plain.len(),
            2000 * "\"Hộ gia đình\",\"62.610.01\"\r\n".len()
        );
    }
}
