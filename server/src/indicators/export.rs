//! The report as files to send upward: CSV (UTF-8 with a byte-order mark and CRLF lines, so that
//! Excel reads the diacritics right; LibreOffice asks and defaults to UTF-8) and XLSX (numbers
//! as numbers; victim figures as the texts of the report: a band such as "10–14", "<5", or "—"
//! where not published), both with Vietnamese headers.

use super::day::Day;
use super::definitions::{Counted, Definition, Unit};
use super::report::{AreaReport, Cell, Report, Share};
use super::suppress::Figure;
use fieldsync_core::model::ethnic_group;
use rust_xlsxwriter::{Format, Workbook, XlsxError};

/// One cell of an exported table.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    Text(String),
    Number(f64),
    Empty,
}

impl From<&str> for Val {
    fn from(s: &str) -> Val {
        Val::Text(s.to_owned())
    }
}

impl From<String> for Val {
    fn from(s: String) -> Val {
        Val::Text(s)
    }
}

fn num(v: Option<f64>) -> Val {
    v.map_or(Val::Empty, Val::Number)
}

/// How a victim figure that is not published here is written in the exports.
pub const WITHHELD_TEXT: &str = "—";

fn figure(f: Figure) -> Val {
    match f {
        Figure::Shown(v) => Val::Number(v as f64),
        Figure::Withheld(_) => Val::from(WITHHELD_TEXT),
        f => Val::Text(f.text().unwrap_or_default()),
    }
}

fn unit_name(d: &Definition) -> &'static str {
    match (d.unit, d.counted) {
        (Unit::Percent, _) => "%",
        (_, Counted::Groups) => "tổ, nhóm, mô hình",
        (_, Counted::Activities) => "cuộc",
        (_, Counted::Persons | Counted::Cases) => "người",
    }
}

fn level_name(area: &AreaReport) -> &'static str {
    match (area.level, area.complete) {
        ("province", Some(false)) => "Địa bàn phụ trách",
        ("province", _) => "Tỉnh",
        ("district", _) => "Huyện (trước 01/7/2025)",
        _ => "Xã",
    }
}

/// What a year or breakdown column shows: the figure, or for a share its percentage.
fn headline(unit: Unit, share: &Share) -> Val {
    match (unit, share.value) {
        (Unit::Percent, Figure::Shown(_)) => num(share.percent),
        (_, f) => figure(f),
    }
}

/// The date and the records a row counts: the report's, or a victim figure's own.
type CountedAs = (Option<Day>, Option<bool>);

fn counted_as_text(report: &Report, (as_of, approved_only): CountedAs) -> [Val; 2] {
    let approved = approved_only.unwrap_or(!report.all_submitted);
    [
        Val::Text(as_of.unwrap_or(report.as_of).text()),
        Val::from(if approved {
            "đã duyệt"
        } else {
            "tất cả đã gửi"
        }),
    ]
}

const AGE_NAMES: &[(&str, &str)] = &[
    ("0-15", "Dưới 16 tuổi"),
    ("16-30", "16–30 tuổi"),
    ("31-59", "31–59 tuổi"),
    ("60+", "Từ 60 tuổi trở lên"),
];

fn category_name(dimension: &str, key: &str) -> String {
    let unknown = || "Không rõ".to_owned();
    match dimension {
        "sex" => match key {
            "female" => "Nữ".into(),
            "male" => "Nam".into(),
            _ => unknown(),
        },
        "ethnicity" if key == "minority" => "Dân tộc thiểu số".into(),
        "ethnicity" => ethnic_group(key).map_or_else(unknown, |g| g.name_vi.clone()),
        _ => AGE_NAMES
            .iter()
            .find(|(k, _)| *k == key)
            .map_or_else(unknown, |(_, n)| (*n).to_owned()),
    }
}

/// Headers of the progress table.
pub fn progress_headers(report: &Report) -> Vec<String> {
    let mut h: Vec<String> = [
        "Mã chỉ tiêu",
        "Chỉ tiêu",
        "Chỉ tiêu (tiếng Anh)",
        "Đơn vị",
        "Cấp địa bàn",
        "Mã địa bàn",
        "Địa bàn",
        "Kết quả",
        "Mẫu số",
        "Tỷ lệ (%)",
        "Mục tiêu",
        "Đạt so với mục tiêu (%)",
        "Hồ sơ chưa có ngày",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    h.extend(report.years.iter().map(|y| format!("Năm {y}")));
    h
}

/// One row per indicator and area, in the report's order (indicator by indicator).
pub fn progress_rows(report: &Report) -> Vec<Vec<Val>> {
    progress_lines(report).into_iter().map(|(r, _)| r).collect()
}

fn progress_lines(report: &Report) -> Vec<(Vec<Val>, CountedAs)> {
    let mut rows = Vec::new();
    for d in &report.indicators {
        for area in &report.areas {
            let Some(cell) = area.results.get(&d.indicator) else {
                continue;
            };
            let mut row = vec![
                d.id().into(),
                d.name_vi.into(),
                d.name_en.into(),
                unit_name(d).into(),
                level_name(area).into(),
                area.code.clone().into(),
                area.name.clone().into(),
                figure(cell.share.value),
                cell.share
                    .denominator
                    .map_or(Val::Empty, |v| Val::Number(v as f64)),
                num(cell.share.percent),
                num(cell.target),
                num(cell.progress),
                Val::Number(cell.undated as f64),
            ];
            row.extend(report.years.iter().map(|y| {
                cell.by_year
                    .get(y)
                    .map_or(Val::Empty, |s| headline(d.unit, s))
            }));
            rows.push((row, (cell.share.as_of, cell.share.approved_only)));
        }
    }
    rows
}

pub const BREAKDOWN_HEADERS: &[&str] = &[
    "Mã chỉ tiêu",
    "Chỉ tiêu",
    "Mã địa bàn",
    "Địa bàn",
    "Phân tổ",
    "Nhóm",
    "Kết quả",
    "Mẫu số",
    "Tỷ lệ (%)",
];

fn breakdown_rows_of(
    d: &Definition,
    area: &AreaReport,
    cell: &Cell,
    rows: &mut Vec<(Vec<Val>, CountedAs)>,
) {
    let Some(b) = &cell.breakdown else { return };
    for (dimension, title, map) in [
        ("sex", "Giới tính", &b.sex),
        ("ethnicity", "Dân tộc", &b.ethnicity),
        ("age", "Nhóm tuổi", &b.age),
    ] {
        for (key, share) in map {
            let row = vec![
                d.id().into(),
                d.name_vi.into(),
                area.code.clone().into(),
                area.name.clone().into(),
                title.into(),
                category_name(dimension, key).into(),
                figure(share.value),
                share
                    .denominator
                    .map_or(Val::Empty, |v| Val::Number(v as f64)),
                num(share.percent),
            ];
            rows.push((row, (b.as_of, b.approved_only)));
        }
    }
}

/// Figures of people by sex, ethnic group and age group.
pub fn breakdown_rows(report: &Report) -> Vec<Vec<Val>> {
    breakdown_lines(report)
        .into_iter()
        .map(|(r, _)| r)
        .collect()
}

fn breakdown_lines(report: &Report) -> Vec<(Vec<Val>, CountedAs)> {
    let mut rows = Vec::new();
    for d in &report.indicators {
        for area in &report.areas {
            if let Some(cell) = area.results.get(&d.indicator) {
                breakdown_rows_of(d, area, cell, &mut rows);
            }
        }
    }
    rows
}

/// What the figures are: the plan, the date, which records count.
pub fn about_rows(report: &Report) -> Vec<(String, String)> {
    let date = |d: super::Day| {
        let t = d.text();
        format!("{}/{}/{}", &t[8..10], &t[5..7], &t[0..4])
    };
    let victims_as_of = report
        .areas
        .iter()
        .flat_map(|a| a.results.values())
        .find_map(|c| c.share.as_of);
    let mut rows = vec![
        ("Kế hoạch".into(), report.plan.name.clone()),
        ("Tỉnh".into(), report.plan.province_name.clone()),
        (
            "Thời gian thực hiện".into(),
            format!("{} – {}", date(report.plan.start), date(report.plan.end)),
        ),
        ("Số liệu tính đến ngày".into(), date(report.as_of)),
        (
            "Hồ sơ được tính".into(),
            if report.all_submitted {
                "Tất cả hồ sơ đã gửi, kể cả chưa duyệt (xem trước)".into()
            } else {
                "Chỉ hồ sơ đã được duyệt".into()
            },
        ),
        (
            "Ghi chú".into(),
            "Mỗi người chỉ được tính một lần (hồ sơ trùng đã gộp được tính theo hồ sơ giữ lại); \
             hồ sơ đã xoá không được tính."
                .into(),
        ),
    ];
    if let Some(day) = victims_as_of {
        rows.push((
            "Số nạn nhân".into(),
            format!(
                "Tính đến ngày {} (cuối quý), chỉ hồ sơ đã duyệt, ghi theo khoảng 5 người \
                 (\"10–14\"); \"<5\": từ 0 đến 4 người; \"{WITHHELD_TEXT}\": không công bố ở cấp \
                 này (theo huyện, xã và phân tổ chỉ công bố cho cả giai đoạn kế hoạch, khi mọi \
                 phần đều có từ 5 người), để không thể nhận diện nạn nhân.",
                date(day)
            ),
        ));
    }
    rows
}

fn csv_field(out: &mut String, v: &Val) {
    match v {
        Val::Empty => {}
        Val::Number(n) => out.push_str(&n.to_string()),
        Val::Text(t) => {
            if t.contains([',', '"', '\n', '\r']) {
                out.push('"');
                out.push_str(&t.replace('"', "\"\""));
                out.push('"');
            } else {
                out.push_str(t);
            }
        }
    }
}

fn csv_line(out: &mut String, cells: impl IntoIterator<Item = Val>) {
    for (i, v) in cells.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(out, &v);
    }
    out.push_str("\r\n");
}

/// The report as CSV: the progress rows (breakdown "Tổng"), then one row per breakdown group,
/// each with the date and the records it counts (a victim figure's own).
pub fn csv(report: &Report) -> Vec<u8> {
    let mut out = String::from("\u{feff}");
    let mut headers = progress_headers(report);
    headers.splice(7..7, ["Phân tổ".to_owned(), "Nhóm".to_owned()]);
    headers.push("Số liệu đến ngày".into());
    headers.push("Hồ sơ được tính".into());
    csv_line(&mut out, headers.into_iter().map(Val::Text));
    for (mut row, counted) in progress_lines(report) {
        row.splice(7..7, [Val::from("Tổng"), Val::Empty]);
        row.extend(counted_as_text(report, counted));
        csv_line(&mut out, row);
    }
    let width = progress_headers(report).len();
    for (b, counted) in breakdown_lines(report) {
        // Into the progress columns: code, names, area, then breakdown, group and figures.
        let mut row = vec![
            b[0].clone(),
            b[1].clone(),
            Val::Empty,
            Val::Empty,
            Val::Empty,
            b[2].clone(),
            b[3].clone(),
            b[4].clone(),
            b[5].clone(),
            b[6].clone(),
            b[7].clone(),
            b[8].clone(),
        ];
        row.resize(width + 2, Val::Empty);
        row.extend(counted_as_text(report, counted));
        csv_line(&mut out, row);
    }
    out.into_bytes()
}

fn write_row(
    sheet: &mut rust_xlsxwriter::Worksheet,
    row: u32,
    cells: &[Val],
    percent_cols: &[usize],
    decimal: &Format,
) -> Result<(), XlsxError> {
    for (c, v) in cells.iter().enumerate() {
        let col = u16::try_from(c).unwrap_or(u16::MAX);
        match v {
            Val::Text(t) => {
                sheet.write_string(row, col, t)?;
            }
            Val::Number(n) if percent_cols.contains(&c) => {
                sheet.write_number_with_format(row, col, *n, decimal)?;
            }
            Val::Number(n) => {
                sheet.write_number(row, col, *n)?;
            }
            Val::Empty => {}
        }
    }
    Ok(())
}

/// The report as an XLSX workbook: "Tiến độ" (progress), "Phân tổ" (breakdowns), "Thông tin"
/// (what the figures are).
pub fn xlsx(report: &Report) -> Result<Vec<u8>, XlsxError> {
    let mut book = Workbook::new();
    let bold = Format::new().set_bold().set_text_wrap();
    let decimal = Format::new().set_num_format("0.0");

    let sheet = book.add_worksheet();
    sheet.set_name("Tiến độ")?;
    for (c, h) in progress_headers(report).iter().enumerate() {
        sheet.write_string_with_format(0, u16::try_from(c).unwrap_or(0), h, &bold)?;
    }
    for (r, row) in progress_rows(report).iter().enumerate() {
        write_row(sheet, r as u32 + 1, row, &[9, 11], &decimal)?;
    }
    sheet.set_column_width(1, 48)?;
    sheet.set_column_width(2, 36)?;
    sheet.set_column_width(6, 18)?;
    sheet.set_freeze_panes(1, 0)?;

    let sheet = book.add_worksheet();
    sheet.set_name("Phân tổ")?;
    for (c, h) in BREAKDOWN_HEADERS.iter().enumerate() {
        sheet.write_string_with_format(0, c as u16, *h, &bold)?;
    }
    for (r, row) in breakdown_rows(report).iter().enumerate() {
        write_row(sheet, r as u32 + 1, row, &[8], &decimal)?;
    }
    sheet.set_column_width(1, 48)?;
    sheet.set_column_width(5, 16)?;
    sheet.set_freeze_panes(1, 0)?;

    let sheet = book.add_worksheet();
    sheet.set_name("Thông tin")?;
    for (r, (k, v)) in about_rows(report).iter().enumerate() {
        sheet.write_string_with_format(r as u32, 0, k, &bold)?;
        sheet.write_string(r as u32, 1, v)?;
    }
    sheet.set_column_width(0, 24)?;
    sheet.set_column_width(1, 90)?;
    book.save_to_buffer()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_it_and_keeps_diacritics() {
        let mut out = String::new();
        csv_line(
            &mut out,
            [
                Val::from("Xơ Đăng, Ba Na"),
                Val::from("nói \"có\""),
                Val::Number(12.0),
                Val::Number(15.5),
                Val::Empty,
                Val::from("Đắk Glei"),
            ],
        );
        assert_eq!(
            out,
            "\"Xơ Đăng, Ba Na\",\"nói \"\"có\"\"\",12,15.5,,Đắk Glei\r\n"
        );
        assert_eq!(category_name("ethnicity", "14"), "Xơ Đăng");
        assert_eq!(category_name("age", "60+"), "Từ 60 tuổi trở lên");
        assert_eq!(category_name("sex", "x"), "Không rõ");
        assert_eq!(category_name("ethnicity", "minority"), "Dân tộc thiểu số");
    }

    #[test]
    fn victim_figures_are_written_as_the_report_words_them_never_as_numbers() {
        use super::super::suppress::Withheld;
        assert_eq!(figure(Figure::Shown(12)), Val::Number(12.0));
        assert_eq!(figure(Figure::Band(10)), Val::from("10–14"));
        assert_eq!(figure(Figure::Hidden), Val::from("<5"));
        assert_eq!(figure(Figure::Withheld(Withheld::Period)), Val::from("—"));
        // A share's percentage stands in for a shown figure only.
        let share = Share {
            value: Figure::Band(5),
            percent: Some(50.0),
            ..Share::default()
        };
        assert_eq!(headline(Unit::Percent, &share), Val::from("5–9"));
    }
}
