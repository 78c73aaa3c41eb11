//! The record exports read back: the CSV parsed (byte-order mark, quoting, Vietnamese names,
//! formulas defused, gzip), the workbook opened with calamine (sheets, headers, text cells),
//! the list's filters selecting exactly the list's records, support cases only for an account
//! with sensitive access and such an export audited without case details. Through the real
//! routes in process, on SQLite or (with `FIELDSYNC_TEST_BACKEND=postgres`) PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod common;

use calamine::{Data, Reader, Xlsx};
use common::*;
use fieldsync_core::model::{RecordType, Value};
use fieldsync_server::accounts::{self, Authority};
use fieldsync_server::config::Timeouts;
use fieldsync_server::http::{routes, AppState};
use fieldsync_server::storage::prelude::*;
use fieldsync_server::storage::{AuditFilter, NewUser, Role};
use serde_json::Value as Json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tempfile::TempDir;

const PASSWORD: &str = "mật khẩu của trang";
const HOA: &str = "Nguyễn Thị Hoà";
const CCCD: &str = "001234567890";

struct Server {
    _dir: TempDir,
    state: AppState,
    /// Bearer tokens: a supervisor with sensitive access, one without, a collector.
    sensitive: String,
    plain: String,
    collector: String,
}

fn fields(pairs: &[(&str, &str)]) -> BTreeMap<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
        .collect()
}

fn setup() -> Server {
    let world = World::new();
    world.user("canbo", &[NGOC_LINH, MO_RAI], true);
    let mut phone = world.phone("canbo");
    let mut household = household(NGOC_LINH, HOA);
    household.insert("village".into(), Value::from("Thôn 2, Đắk \"Mới\""));
    let hoa = phone
        .store
        .create(RecordType::Household, &household)
        .unwrap();
    phone.household(NGOC_LINH, "=HYPERLINK(\"http://x\",\"y\")");
    phone.household(MO_RAI, "A Blưm");
    let person = phone
        .store
        .create(
            RecordType::Person,
            &fields(&[
                ("commune", NGOC_LINH),
                ("household_id", &hoa.to_string()),
                ("full_name", HOA),
                ("sex", "female"),
                ("birth", "1990"),
                ("ethnicity", "14"),
                ("national_id", CCCD),
                ("phone", "+84912345678"),
            ]),
        )
        .unwrap();
    phone
        .store
        .create(
            RecordType::SupportCase,
            &fields(&[
                ("commune", NGOC_LINH),
                ("person_id", &person.to_string()),
                ("case_kind", "trafficking"),
                ("opened", "2025-03-01"),
                ("case_notes", "ghi chú riêng"),
            ]),
        )
        .unwrap();
    world.sync(&mut phone);
    let mut tokens = Vec::new();
    for (name, role, sensitive) in [
        ("giamsat.nhaycam", Role::Supervisor, true),
        ("giamsat", Role::Supervisor, false),
        ("canbo2", Role::Collector, false),
    ] {
        accounts::create_user(
            &world.storage,
            Authority::Operator,
            &NewUser {
                username: name.into(),
                password: PASSWORD.into(),
                role,
                sensitive_access: sensitive,
                areas: vec!["62".into()],
                can_grant_sensitive: false,
                full_name: None,
                phone: None,
            },
        )
        .unwrap();
        let (_, token, _) = accounts::enrol(&world.storage, name, PASSWORD, "t", None).unwrap();
        tokens.push(token);
    }
    let World { dir, storage } = world;
    let storage: Arc<dyn Storage> = Arc::from(storage.into_inner());
    let state =
        AppState::new(storage, Some(dir.path().to_path_buf()), Timeouts::default()).unwrap();
    Server {
        _dir: dir,
        state,
        collector: tokens.pop().unwrap(),
        plain: tokens.pop().unwrap(),
        sensitive: tokens.pop().unwrap(),
    }
}

struct Answer {
    status: u16,
    headers: warp::http::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map_or("", |v| v.to_str().unwrap_or(""))
    }
}

async fn get(server: &Server, token: &str, path: &str, gzip: bool) -> Answer {
    let mut request = warp::test::request()
        .method("GET")
        .path(path)
        .header("authorization", format!("Bearer {token}"));
    if gzip {
        request = request.header("accept-encoding", "gzip, deflate");
    }
    let response = request.reply(&routes(server.state.clone())).await;
    Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.body().to_vec(),
    }
}

/// RFC 4180 as the export writes it: quoted fields with doubled quotes, CRLF lines.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let (mut rows, mut row, mut cell) = (Vec::new(), Vec::new(), String::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\r') => {
                assert_eq!(chars.next(), Some('\n'), "lines end in CRLF");
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => cell.push(c),
        }
    }
    assert!(
        row.is_empty() && cell.is_empty(),
        "the file ends with a line end"
    );
    rows
}

/// The CSV's rows after its header, as maps from header to value.
fn csv_records(body: &[u8]) -> (Vec<String>, Vec<BTreeMap<String, String>>) {
    let text = std::str::from_utf8(body).unwrap();
    let text = text.strip_prefix('\u{feff}').expect("a byte-order mark");
    let mut rows = parse_csv(text).into_iter();
    let headers = rows.next().unwrap();
    let records = rows
        .map(|r| {
            assert_eq!(r.len(), headers.len());
            headers.iter().cloned().zip(r).collect()
        })
        .collect();
    (headers, records)
}

async fn list_ids(server: &Server, token: &str, filters: &str) -> BTreeSet<String> {
    let answer = get(
        server,
        token,
        &format!("/v1/records?limit=500&{filters}"),
        false,
    )
    .await;
    assert_eq!(answer.status, 200);
    let page: Json = serde_json::from_slice(&answer.body).unwrap();
    page["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_csv_reads_back_with_its_names_quoting_and_the_lists_filters() {
    let server = setup();
    let answer = get(
        &server,
        &server.plain,
        "/v1/records/export.csv?type=household",
        false,
    )
    .await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(answer.header("content-type"), "text/csv; charset=utf-8");
    let disposition = answer.header("content-disposition");
    assert!(
        disposition.starts_with("attachment; filename=\"ho-so-ho-gia-dinh-20")
            && disposition.ends_with(".csv\""),
        "{disposition}"
    );
    assert_eq!(answer.header("cache-control"), "no-store");
    assert_eq!(answer.header("x-content-type-options"), "nosniff");
    assert_eq!(answer.header("content-encoding"), "");

    let (headers, records) = csv_records(&answer.body);
    assert_eq!(headers[0], "Mã hồ sơ");
    for h in [
        "Xã",
        "Mã xã",
        "Họ tên chủ hộ",
        "Thôn/làng",
        "Trạng thái duyệt",
    ] {
        assert!(headers.iter().any(|x| x == h), "{h} in {headers:?}");
    }
    assert_eq!(records.len(), 3);
    let hoa = records
        .iter()
        .find(|r| r["Họ tên chủ hộ"] == HOA)
        .expect("the name round-trips with its diacritics");
    assert_eq!(hoa["Thôn/làng"], "Thôn 2, Đắk \"Mới\"");
    assert_eq!(hoa["Xã"], "Ngọc Linh");
    assert_eq!(hoa["Mã xã"], NGOC_LINH);
    assert_eq!(hoa["Dân tộc"], "Xơ Đăng");
    assert_eq!(hoa["Trạng thái duyệt"], "Chờ duyệt");
    assert!(
        records
            .iter()
            .any(|r| r["Họ tên chủ hộ"] == "'=HYPERLINK(\"http://x\",\"y\")"),
        "a formula is written as text"
    );
    // The commune code is a quoted text in the file itself.
    let raw = String::from_utf8(answer.body.clone()).unwrap();
    assert!(raw.contains(&format!("\"{NGOC_LINH}\"")));

    // The same records as the list, filter by filter.
    for filters in [
        "type=household",
        "type=household&commune=62.616.01",
        "type=household&commune=51.102",
        "type=household&q=nguyen%20thi%20hoa",
        "type=household&review=approved",
        "type=person&problems=false",
        "type=person&conflicts=true",
    ] {
        let answer = get(
            &server,
            &server.plain,
            &format!("/v1/records/export.csv?{filters}"),
            false,
        )
        .await;
        assert_eq!(answer.status, 200, "{filters}");
        let exported: BTreeSet<String> = csv_records(&answer.body)
            .1
            .iter()
            .map(|r| r["Mã hồ sơ"].clone())
            .collect();
        assert_eq!(
            exported,
            list_ids(&server, &server.plain, filters).await,
            "{filters}"
        );
    }

    // People: the CCCD and phone numbers stay text, the phone defused.
    let answer = get(
        &server,
        &server.plain,
        "/v1/records/export.csv?type=person&lang=en",
        false,
    )
    .await;
    let (headers, people) = csv_records(&answer.body);
    assert_eq!(headers[0], "Record id");
    assert_eq!(people.len(), 1);
    assert_eq!(people[0]["Sex"], "Female");
    assert_eq!(people[0]["ID card (CCCD)"], CCCD);
    assert!(answer
        .header("content-disposition")
        .contains("records-person-"));

    // Gzipped when accepted: the same file.
    let zipped = get(
        &server,
        &server.plain,
        "/v1/records/export.csv?type=household",
        true,
    )
    .await;
    assert_eq!(zipped.header("content-encoding"), "gzip");
    assert_eq!(zipped.header("vary"), "accept-encoding");
    let plain = fieldsync_core::protocol::decompress(&zipped.body, 1 << 20).unwrap();
    assert_eq!(
        csv_records(&plain),
        csv_records(&answer_body_of_households(&server).await)
    );

    // Refusals.
    for (token, path, status) in [
        (&server.plain, "/v1/records/export.csv", 400),
        (
            &server.plain,
            "/v1/records/export.csv?type=household&limit=5",
            400,
        ),
        (
            &server.plain,
            "/v1/records/export.csv?type=household&lang=fr",
            400,
        ),
        (
            &server.plain,
            "/v1/records/export.csv?type=household&colour=red",
            400,
        ),
        (
            &server.collector,
            "/v1/records/export.csv?type=household",
            403,
        ),
        (&server.collector, "/v1/records/export.xlsx", 403),
        (&"nobody".to_owned(), "/v1/records/export.xlsx", 401),
    ] {
        let answer = get(&server, token, path, false).await;
        assert_eq!(answer.status, status, "{path}");
        let error: Json = serde_json::from_slice(&answer.body).unwrap();
        assert!(error["message"].is_string(), "{error}");
    }
}

async fn answer_body_of_households(server: &Server) -> Vec<u8> {
    get(
        server,
        &server.plain,
        "/v1/records/export.csv?type=household",
        false,
    )
    .await
    .body
}

#[tokio::test]
async fn support_cases_are_exported_only_with_sensitive_access_and_audited() {
    let server = setup();
    let exports = |with_sensitive: bool| {
        let state = server.state.clone();
        move || -> Vec<fieldsync_server::storage::AuditEntry> {
            let end = state.storage.audit_end().unwrap();
            let filter = AuditFilter {
                before: end,
                with_sensitive,
                ..AuditFilter::default()
            };
            state
                .storage
                .list_audit(&filter, 500)
                .unwrap()
                .into_iter()
                .filter(|e| e.action == "export_records")
                .collect()
        }
    };
    let (audited, any_audited) = (exports(true), exports(false));

    // Without sensitive access: refused alone, absent from the workbook, nothing audited.
    let refused = get(
        &server,
        &server.plain,
        "/v1/records/export.csv?type=support_case",
        false,
    )
    .await;
    assert_eq!(refused.status, 403);
    let book = get(&server, &server.plain, "/v1/records/export.xlsx", false).await;
    assert_eq!(book.status, 200);
    let sheets = Xlsx::new(std::io::Cursor::new(book.body))
        .unwrap()
        .sheet_names();
    assert_eq!(
        sheets,
        ["Hộ gia đình", "Nhân khẩu", "Mô hình-nhóm", "Hoạt động"]
    );
    assert!(audited().is_empty());

    // Households alone carry no case: not audited either.
    let households = get(
        &server,
        &server.sensitive,
        "/v1/records/export.csv?type=household",
        false,
    )
    .await;
    assert_eq!(households.status, 200);
    assert!(audited().is_empty());

    // With sensitive access: the case, and an audit entry first.
    let cases = get(
        &server,
        &server.sensitive,
        "/v1/records/export.csv?type=support_case&review=pending",
        false,
    )
    .await;
    assert_eq!(cases.status, 200);
    let entries = audited();
    assert_eq!(entries.len(), 1);
    let entry = &entries[0];
    assert_eq!(entry.username.as_deref(), Some("giamsat.nhaycam"));
    assert_eq!(entry.target.as_deref(), Some("csv"));
    let detail = entry.detail.clone().unwrap();
    assert_eq!(detail, "1 support cases; type support_case, review pending");
    assert!(entry.sensitive);
    let (_, rows) = csv_records(&cases.body);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["Ghi chú"], "ghi chú riêng");
    assert!(
        any_audited().is_empty(),
        "the entry is read only with sensitive access"
    );
    let all = get(&server, &server.sensitive, "/v1/records/export.xlsx", false).await;
    assert_eq!(all.status, 200);
    assert_eq!(audited().len(), 2);
    let mut book = Xlsx::new(std::io::Cursor::new(all.body)).unwrap();
    assert_eq!(book.sheet_names().len(), 5);
    let sheet = book.worksheet_range("Vụ việc hỗ trợ").unwrap();
    assert_eq!(sheet.height(), 2);
    let row: Vec<String> = sheet
        .rows()
        .nth(1)
        .unwrap()
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert!(row.iter().any(|c| c == "Mua bán người"), "{row:?}");
}

#[tokio::test]
async fn the_workbook_has_a_sheet_per_type_with_headers_and_text_cells() {
    let server = setup();
    let answer = get(&server, &server.plain, "/v1/records/export.xlsx", false).await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("content-type"),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    let disposition = answer.header("content-disposition");
    assert!(
        disposition.starts_with("attachment; filename=\"ho-so-20")
            && disposition.ends_with(".xlsx\""),
        "{disposition}"
    );
    assert_eq!(answer.header("cache-control"), "no-store");
    let mut book = Xlsx::new(std::io::Cursor::new(answer.body)).unwrap();
    let households = book.worksheet_range("Hộ gia đình").unwrap();
    assert_eq!(households.height(), 4, "a header and three households");
    let headers: Vec<String> = households
        .rows()
        .next()
        .unwrap()
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(headers[0], "Mã hồ sơ");
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    for row in households.rows().skip(1) {
        assert!(matches!(&row[column("Mã xã")], Data::String(c) if c.contains('.')));
        assert!(matches!(&row[column("Số xung đột")], Data::Float(n) if *n == 0.0));
    }
    assert!(households
        .rows()
        .any(|r| r[column("Họ tên chủ hộ")] == Data::String(HOA.into())));
    assert!(
        households
            .rows()
            .any(|r| r[column("Họ tên chủ hộ")]
                == Data::String("=HYPERLINK(\"http://x\",\"y\")".into())),
        "a text cell, never a formula"
    );
    let people = book.worksheet_range("Nhân khẩu").unwrap();
    let headers: Vec<String> = people
        .rows()
        .next()
        .unwrap()
        .iter()
        .map(|c| c.to_string())
        .collect();
    let cccd = headers.iter().position(|h| h == "Số CCCD").unwrap();
    assert_eq!(
        people.rows().nth(1).unwrap()[cccd],
        Data::String(CCCD.into())
    );
    assert_eq!(
        book.worksheet_range("Hoạt động").unwrap().height(),
        1,
        "headers alone"
    );

    // In English, and one type when one is asked for.
    let answer = get(
        &server,
        &server.plain,
        "/v1/records/export.xlsx?type=person&lang=en",
        false,
    )
    .await;
    let mut book = Xlsx::new(std::io::Cursor::new(answer.body)).unwrap();
    assert_eq!(book.sheet_names(), ["Household member"]);
    let sheet = book.worksheet_range("Household member").unwrap();
    assert_eq!(
        sheet.rows().next().unwrap()[0],
        Data::String("Record id".into())
    );
}
