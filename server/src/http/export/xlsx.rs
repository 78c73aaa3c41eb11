//! The workbook of an export: one sheet per record type (continued on a second sheet past
//! Excel's row limit), a bold frozen header row, codes and ids as text cells (a CCCD number or a
//! commune code never becomes a number), counts as numbers. Sheets are written in
//! rust_xlsxwriter's constant-memory mode: each row goes to a temporary file as it is written.

use super::columns::Cell;
use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};

/// Data rows per sheet: Excel's 1,048,576 rows less the header.
const MAX_ROWS: u32 = 1_048_575;

/// A sheet name Excel accepts: at most 31 characters, none of `[]:*?/\`.
fn sheet_name(name: &str) -> String {
    name.chars()
        .map(|c| if "[]:*?/\\".contains(c) { '-' } else { c })
        .take(31)
        .collect()
}

/// Where the next rows of the current record type go.
pub struct SheetCursor {
    name: String,
    headers: Vec<String>,
    sheet: usize,
    next_row: u32,
    part: u32,
}

/// Adds the first sheet of a record type, named `name`, with its header row.
pub fn begin(
    book: &mut Workbook,
    name: &str,
    headers: Vec<String>,
) -> Result<SheetCursor, XlsxError> {
    let mut cursor = SheetCursor {
        name: name.to_owned(),
        headers,
        sheet: 0,
        next_row: 1,
        part: 1,
    };
    cursor.sheet = add_sheet(book, &sheet_name(name), &cursor.headers)?;
    Ok(cursor)
}

fn add_sheet(book: &mut Workbook, name: &str, headers: &[String]) -> Result<usize, XlsxError> {
    let bold = Format::new().set_bold();
    let sheet = book.add_worksheet_with_constant_memory();
    sheet.set_name(name)?;
    for (c, h) in headers.iter().enumerate() {
        let c = u16::try_from(c).unwrap_or(u16::MAX);
        sheet.set_column_width(c, if c == 0 { 38 } else { 20 })?;
        sheet.write_string_with_format(0, c, h, &bold)?;
    }
    sheet.set_freeze_panes(1, 0)?;
    Ok(book.worksheets().len() - 1)
}

/// Writes `rows` under those already written, starting a continuation sheet at the limit.
pub fn write_rows(
    book: &mut Workbook,
    cursor: &mut SheetCursor,
    rows: impl IntoIterator<Item = Vec<Cell>>,
) -> Result<(), XlsxError> {
    for cells in rows {
        if cursor.next_row > MAX_ROWS {
            cursor.part += 1;
            let suffix = format!(" ({})", cursor.part);
            let base: String = sheet_name(&cursor.name)
                .chars()
                .take(31 - suffix.chars().count())
                .collect();
            cursor.sheet = add_sheet(book, &format!("{base}{suffix}"), &cursor.headers)?;
            cursor.next_row = 1;
        }
        let sheet = book.worksheet_from_index(cursor.sheet)?;
        write_row(sheet, cursor.next_row, &cells)?;
        cursor.next_row += 1;
    }
    Ok(())
}

fn write_row(sheet: &mut Worksheet, row: u32, cells: &[Cell]) -> Result<(), XlsxError> {
    for (c, cell) in cells.iter().enumerate() {
        let c = u16::try_from(c).unwrap_or(u16::MAX);
        match cell {
            Cell::Text(text) => {
                sheet.write_string(row, c, text)?;
            }
            Cell::Number(n) => {
                sheet.write_number(row, c, *n)?;
            }
            Cell::Empty => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sheet_names_are_ones_excel_accepts() {
        assert_eq!(sheet_name("Mô hình/nhóm"), "Mô hình-nhóm");
        assert_eq!(sheet_name(&"x".repeat(40)).chars().count(), 31);
    }
}
