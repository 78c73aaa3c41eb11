//! Peak memory of a real server process exporting 20,000 and then 200,000 records (CSV plain
//! and gzipped, and the workbook of every type): the exports read page by page and stream, so
//! the peak must not grow with the count. A measurement that prints its figures, not a pass/fail
//! timing; run it with
//!   cargo test -p fieldsync-tests --test export_memory -- --ignored --nocapture
//! The records are written straight into the merged view of a fresh database (the only table
//! an export reads), not through phones.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a measurement fails loudly on any error

use fieldsync_server::accounts::{self, Authority};
use fieldsync_server::storage::sqlite::SqliteStorage;
use fieldsync_server::storage::{NewUser, Role};
use fieldsync_tests::https::HttpsClient;
use fieldsync_tests::server::ServerProcess;
use std::path::Path;
use std::time::{Duration, Instant};
use uuid::Uuid;

const PASSWORD: &str = "mật khẩu đo bộ nhớ";
const COMMUNES: [&str; 4] = ["62.610.01", "62.610.02", "62.611.01", "62.616.01"];
const NAMES: [&str; 6] = [
    "Nguyễn Thị Hoà",
    "Y Hnui",
    "A Blưm",
    "Đinh Thị Lụa",
    "Trần Văn Đức",
    "Hồ Thị Ánh",
];

/// `n` records of every non-sensitive type, and a support case in a hundred, into the merged
/// view of the database in `dir`; returns a bearer token of a province supervisor with
/// sensitive access.
fn fill(dir: &Path, n: usize) -> String {
    let path = dir.join("fieldsync.sqlite");
    let storage = SqliteStorage::open(&path).unwrap();
    accounts::create_user(
        &storage,
        Authority::Operator,
        &NewUser {
            username: "giamsat.tinh".into(),
            password: PASSWORD.into(),
            role: Role::Supervisor,
            sensitive_access: true,
            areas: vec!["62".into()],
            can_grant_sensitive: false,
            full_name: Some("Giám sát tỉnh".into()),
            phone: None,
        },
    )
    .unwrap();
    let (_, token, _) = accounts::enrol(&storage, "giamsat.tinh", PASSWORD, "đo", None).unwrap();
    drop(storage);
    let mut conn = rusqlite::Connection::open(&path).unwrap();
    let tx = conn.transaction().unwrap();
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO merged (id, record_type, commune, status, title, search_text, view,
                   problems, conflicts, n_problems, n_conflicts, sensitive, review, updated_ms)
                 VALUES (?1, ?2, ?3, 'active', ?4, ?5, ?6, '[]', '[]', 0, 0, ?7, 'pending', ?8)",
            )
            .unwrap();
        for i in 0..n {
            let id = Uuid::now_v7();
            let commune = COMMUNES[i % COMMUNES.len()];
            let name = format!("{} {i}", NAMES[i % NAMES.len()]);
            let household = Uuid::from_u128(i as u128 / 4 + 1).to_string();
            let (record_type, fields) = match i % 100 {
                0 => (
                    "support_case",
                    serde_json::json!({ "commune": commune, "person_id": household,
                        "case_kind": "domestic_violence", "opened": "2025-03-01",
                        "case_notes": "Ghi chú vụ việc, có dấu phẩy và \"ngoặc kép\"" }),
                ),
                1..=20 => (
                    "household",
                    serde_json::json!({ "commune": commune, "head_name": name, "ethnicity": "14",
                        "poverty": "poor", "village": "Thôn 2, Đắk Long", "address": "Số 5" }),
                ),
                21..=80 => (
                    "person",
                    serde_json::json!({ "commune": commune, "household_id": household,
                        "full_name": name, "sex": "female", "birth": "1990-05-01",
                        "ethnicity": "14", "national_id": format!("0012{:08}", i % 100_000_000),
                        "phone": "+84912345678" }),
                ),
                81..=90 => (
                    "group",
                    serde_json::json!({ "commune": commune, "kind": "savings_loan_group",
                        "name": format!("Tổ tiết kiệm {i}"), "established": "2022-01-10" }),
                ),
                _ => (
                    "activity",
                    serde_json::json!({ "commune": commune, "kind": "counselling",
                        "date": "2024-11-02", "topic": "Tư vấn sinh an toàn",
                        "counselling_topic": "safe_delivery", "participants": 25 }),
                ),
            };
            let view = serde_json::json!({
                "id": id, "record_type": record_type, "schema_version": 2, "fields": fields,
                "sets": {}, "deleted": false, "merged_into": null, "absorbed": [],
                "review": "pending", "review_comment": null, "conflicts": [],
            });
            insert
                .execute(rusqlite::params![
                    id.as_bytes(),
                    record_type,
                    commune,
                    name,
                    fieldsync_core::search::fold(&name),
                    view.to_string(),
                    record_type == "support_case",
                    1_751_328_000_000i64 + i as i64,
                ])
                .unwrap();
        }
    }
    tx.commit().unwrap();
    token
}

/// The server's peak resident memory in MiB.
fn peak_mib(server: &ServerProcess) -> f64 {
    server.peak_memory_kib().unwrap() as f64 / 1024.0
}

async fn measure(n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let token = fill(dir.path(), n);
    let server = ServerProcess::start(dir.path(), "127.0.0.1:0").unwrap();
    let client = HttpsClient::new(&server.cert_pem)
        .unwrap()
        .with_timeout(Duration::from_secs(1800));
    println!(
        "{n:>7} records: server started, peak {:.1} MiB",
        peak_mib(&server)
    );
    for (path, gzip) in [
        ("/v1/records/export.csv?type=person", false),
        ("/v1/records/export.csv?type=person", true),
        ("/v1/records/export.xlsx", false),
    ] {
        let mut headers = vec![("authorization", format!("Bearer {token}"))];
        if gzip {
            headers.push(("accept-encoding", "gzip".to_owned()));
        }
        let started = Instant::now();
        let answer = client
            .request(server.addr, "GET", path, &headers, Vec::new())
            .await
            .unwrap();
        assert_eq!(
            answer.status,
            200,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
        println!(
            "{n:>7} records: {path}{} {:>6.1} MB in {:>6.1} s, server peak {:.1} MiB",
            if gzip { " (gzip)" } else { "" },
            answer.body.len() as f64 / 1e6,
            started.elapsed().as_secs_f64(),
            peak_mib(&server),
        );
    }
}

#[tokio::test]
#[ignore = "a measurement: run with --ignored --nocapture"]
async fn export_peak_memory_does_not_grow_with_the_records() {
    for n in [20_000, 200_000] {
        measure(n).await;
    }
}
