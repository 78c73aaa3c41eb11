//! The columns of a record type's export and the cells of a record in them: named in Vietnamese
//! (or English) from the tables `GET /v1/schema` names the model with, codes given by their
//! names, commune codes and other codes kept as text.

use super::super::schema::labels::{self, Label};
use crate::dates::vietnam_minute;
use crate::storage::ExportRow;
use fieldsync_core::model::{ethnic_group, schema_of, Areas, FieldKind, FieldSpec};
use fieldsync_core::RecordType;
use serde_json::Value as Json;

/// The language of headers and names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Vi,
    En,
}

impl Lang {
    pub fn pick(self, (vi, en): Label) -> &'static str {
        match self {
            Lang::Vi => vi,
            Lang::En => en,
        }
    }
}

/// One cell of an export.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Text(String),
    Number(f64),
    Empty,
}

/// A field with the names of its codes, looked up once per export rather than per cell.
struct Field {
    spec: &'static FieldSpec,
    label: &'static str,
    codes: Vec<(&'static str, &'static str)>,
}

/// The columns of one record type's sheet or file.
pub struct Columns {
    lang: Lang,
    fields: Vec<Field>,
}

impl Columns {
    pub fn new(t: RecordType, lang: Lang) -> Columns {
        let fields = schema_of(t)
            .fields
            .iter()
            .map(|spec| {
                let list: &[&str] = match spec.kind {
                    FieldKind::Enum(list) | FieldKind::EnumSet(list) => list,
                    _ => &[],
                };
                Field {
                    spec,
                    label: labels::field(t, spec.name).map_or(spec.name, |l| lang.pick(l)),
                    codes: list
                        .iter()
                        .map(|c| {
                            (
                                *c,
                                labels::code(t, spec.name, c).map_or(*c, |l| lang.pick(l)),
                            )
                        })
                        .collect(),
                }
            })
            .collect();
        Columns { lang, fields }
    }

    fn say(&self, vi: &'static str, en: &'static str) -> &'static str {
        self.lang.pick((vi, en))
    }

    pub fn headers(&self) -> Vec<String> {
        let mut out = vec![self.say("Mã hồ sơ", "Record id").to_owned()];
        for f in &self.fields {
            out.push(f.label.to_owned());
            if f.spec.kind == FieldKind::Commune {
                out.push(match self.lang {
                    Lang::Vi => format!("Mã {}", f.label.to_lowercase()),
                    Lang::En => format!("{} code", f.label),
                });
            }
        }
        for (vi, en) in [
            ("Trạng thái duyệt", "Review"),
            ("Tình trạng hồ sơ", "Status"),
            ("Số xung đột", "Conflicts"),
            ("Số lỗi dữ liệu", "Problems"),
            (
                "Cập nhật lần cuối (giờ Việt Nam)",
                "Last changed (Vietnam time)",
            ),
        ] {
            out.push(self.say(vi, en).to_owned());
        }
        out
    }

    /// The record's cells, in the order of [`Columns::headers`].
    pub fn row(&self, row: &ExportRow) -> Vec<Cell> {
        let mut out = Vec::with_capacity(self.fields.len() + 8);
        out.push(Cell::Text(row.id.to_string()));
        let values = &row.view["fields"];
        let sets = &row.view["sets"];
        for f in &self.fields {
            if f.spec.kind.is_set() {
                out.push(self.set(f, &sets[f.spec.name]));
                continue;
            }
            let value = &values[f.spec.name];
            out.push(self.value(f, value));
            if f.spec.kind == FieldKind::Commune {
                out.push(
                    value
                        .as_str()
                        .map_or(Cell::Empty, |c| Cell::Text(c.to_owned())),
                );
            }
        }
        out.push(Cell::Text(
            self.lang.pick(labels::review(row.review)).to_owned(),
        ));
        out.push(Cell::Text(
            self.lang.pick(labels::status(&row.status)).to_owned(),
        ));
        out.push(Cell::Number(f64::from(row.n_conflicts)));
        out.push(Cell::Number(f64::from(row.n_problems)));
        out.push(Cell::Text(vietnam_minute(row.updated_ms)));
        out
    }

    fn code_name(f: &Field, code: &str) -> String {
        f.codes
            .iter()
            .find(|(c, _)| *c == code)
            .map_or(code, |(_, name)| name)
            .to_owned()
    }

    /// A scalar field's cell. A value the schema does not expect (a record with problems) is
    /// written as it is stored, never dropped.
    fn value(&self, f: &Field, value: &Json) -> Cell {
        match (f.spec.kind, value) {
            (_, Json::Null) => Cell::Empty,
            (FieldKind::Int { .. }, Json::Number(n)) => {
                n.as_f64().map_or(Cell::Empty, Cell::Number)
            }
            (FieldKind::Bool, Json::Bool(b)) => {
                Cell::Text(self.lang.pick(labels::yes_no(*b)).into())
            }
            (FieldKind::Enum(_), Json::String(code)) => Cell::Text(Self::code_name(f, code)),
            (FieldKind::Commune, Json::String(code)) => Cell::Text(
                Areas::bundled()
                    .get(code)
                    .map_or_else(|| code.clone(), |a| a.name.clone()),
            ),
            (FieldKind::Ethnicity, Json::String(code)) => {
                Cell::Text(ethnic_group(code).map_or_else(|| code.clone(), |g| g.name_vi.clone()))
            }
            (_, Json::String(s)) => Cell::Text(s.clone()),
            (_, other) => Cell::Text(other.to_string()),
        }
    }

    /// A set field's cell: its members (record ids, or the names of codes) by "; ".
    fn set(&self, f: &Field, members: &Json) -> Cell {
        let Some(list) = members.as_array().filter(|l| !l.is_empty()) else {
            return Cell::Empty;
        };
        let names: Vec<String> = list
            .iter()
            .map(|m| {
                let text = m.as_str().map_or_else(|| m.to_string(), str::to_owned);
                match f.spec.kind {
                    FieldKind::EnumSet(_) => Self::code_name(f, &text),
                    _ => text,
                }
            })
            .collect();
        Cell::Text(names.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fieldsync_core::record::ReviewPhase;
    use serde_json::json;
    use uuid::Uuid;

    fn row(fields: Json, sets: Json) -> ExportRow {
        ExportRow {
            id: Uuid::nil(),
            commune: Some("62.610.01".into()),
            status: "active".into(),
            review: ReviewPhase::Returned,
            view: json!({ "fields": fields, "sets": sets }),
            n_conflicts: 1,
            n_problems: 0,
            updated_ms: 1_751_328_000_000,
        }
    }

    #[test]
    fn codes_are_named_and_kept_as_text() {
        let columns = Columns::new(RecordType::Person, Lang::Vi);
        let headers = columns.headers();
        let cells = columns.row(&row(
            json!({ "commune": "62.610.01", "full_name": "Y Hnui", "sex": "female",
                    "ethnicity": "14", "national_id": "001234567890", "cadre": "unknown" }),
            json!({}),
        ));
        assert_eq!(headers.len(), cells.len());
        let cell = |h: &str| cells[headers.iter().position(|x| x == h).unwrap()].clone();
        assert_eq!(cell("Mã hồ sơ"), Cell::Text(Uuid::nil().to_string()));
        assert_eq!(cell("Mã xã"), Cell::Text("62.610.01".into()));
        assert_eq!(cell("Giới tính"), Cell::Text("Nữ".into()));
        assert_eq!(cell("Số CCCD"), Cell::Text("001234567890".into()));
        assert_eq!(cell("Trạng thái duyệt"), Cell::Text("Đã trả lại".into()));
        assert_eq!(cell("Số xung đột"), Cell::Number(1.0));
        assert_eq!(
            cell("Cập nhật lần cuối (giờ Việt Nam)"),
            Cell::Text("2025-07-01 07:00".into())
        );
        // Not a code of the list: written as stored.
        assert!(cells.contains(&Cell::Text("unknown".into())));
        let en = Columns::new(RecordType::Person, Lang::En);
        assert_eq!(en.headers()[0], "Record id");
    }

    #[test]
    fn sets_list_their_members() {
        let columns = Columns::new(RecordType::SupportCase, Lang::En);
        let cells = columns.row(&row(
            json!({ "commune": "62.610.01" }),
            json!({ "support": ["medical", "legal_aid"] }),
        ));
        assert!(
            cells
                .iter()
                .any(|c| matches!(c, Cell::Text(t) if t.contains("; "))),
            "{cells:?}"
        );
    }
}
