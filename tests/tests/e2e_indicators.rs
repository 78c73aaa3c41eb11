//! Plan progress end to end: a real server started with a plan file of its own, a collector's
//! phone that records groups, people (one of them twice, merged by the supervisor), a savings group, a
//! counselling, a leadership training and a policy dialogue and syncs them over HTTPS, a
//! supervisor who approves some of them; then the report, its drill-down, and the CSV and XLSX
//! exports (read back with calamine), all over HTTPS; victims supported, as the disclosure rule
//! publishes them to a province supervisor and a district one. A plan file with a mistake stops
//! the server at start.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod common;

use calamine::{Data, Reader, Xlsx};
use common::*;
use fieldsync_core::model::{RecordType, Value};
use fieldsync_tests::phone::{call_json, enrol};
use fieldsync_tests::server::ServerProcess;
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;
use uuid::Uuid;

const PLAN: &str = r#"
[plan]
id = "thu-e2e"
name = "Kế hoạch thử nghiệm"
province = "62"
start = "2021-01-01"
end = "2025-12-31"

[targets]
communication_groups = 274
safe_delivery_counselled = 80

[areas."62.610.01"]
communication_groups = 4
"#;

fn fields(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn text(s: &str) -> Value {
    Value::from(s)
}

async fn get_bytes(env: &Env, token: &str, path: &str) -> (u16, Vec<u8>) {
    let r = env
        .http
        .request(
            env.addr(),
            "GET",
            path,
            &[("authorization", format!("Bearer {token}"))],
            Vec::new(),
        )
        .await
        .unwrap();
    (r.status, r.body)
}

fn cell<'a>(report: &'a Json, area: &str, indicator: &str) -> &'a Json {
    let row = report["areas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["code"] == area)
        .unwrap_or_else(|| panic!("no row {area}"));
    &row["results"][indicator]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phones_records_approved_by_a_supervisor_show_in_the_report_and_its_exports() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.toml");
    std::fs::write(&plan, PLAN).unwrap();
    let env = Env::start_with(&["--demo-households", "0", "--plan", plan.to_str().unwrap()]).await;
    env.user("lan", &[NGOC_LINH], false).await;
    call_json(
        &env.http,
        env.addr(),
        "POST",
        "/v1/admin/users",
        Some(&env.admin),
        &json!({"username": "giamsat", "password": PASSWORD, "role": "supervisor",
                "areas": ["62.610"], "sensitive_access": true}),
    )
    .await
    .unwrap();

    // The collector's phone, offline, then one sync.
    let mut phone = env.phone("lan", Default::default()).await;
    let s = &mut phone.store;
    let household = s
        .create(
            RecordType::Household,
            &minimal_household(NGOC_LINH, "Y Blơ"),
        )
        .unwrap();
    let person = |commune: &str, name: &str, sex: &str, eth: &str, extra: &[(&str, Value)]| {
        let mut f = vec![
            ("commune", text(commune)),
            ("household_id", text(&household.to_string())),
            ("full_name", text(name)),
            ("sex", text(sex)),
            ("birth", text("1990-04-01")),
            ("ethnicity", text(eth)),
        ];
        f.extend(extra.iter().cloned());
        fields(&f)
    };
    let blo = s
        .create(
            RecordType::Person,
            &person(
                NGOC_LINH,
                "Y Blơ",
                "female",
                "14",
                &[
                    ("formal_finance_linked", text("2023-03-01")),
                    ("cadre", text("newly_elected")),
                ],
            ),
        )
        .unwrap();
    // The same woman registered again under the new commune code (merged below).
    let blo_again = s
        .create(
            RecordType::Person,
            &person("51.102", "Y Blơ", "female", "14", &[]),
        )
        .unwrap();
    let hung = s
        .create(
            RecordType::Person,
            &person(NGOC_LINH, "Nguyễn Văn Hùng", "male", "01", &[]),
        )
        .unwrap();
    let group = |commune: &str, kind: &str, date: &str, extra: &[(&str, Value)]| {
        let mut f = vec![
            ("commune", text(commune)),
            ("kind", text(kind)),
            ("name", text("Nhóm truyền thông Làng Le")),
            ("established", text(date)),
        ];
        f.extend(extra.iter().cloned());
        fields(&f)
    };
    let team_old = s
        .create(
            RecordType::Group,
            &group(NGOC_LINH, "communication_team", "2022-05-01", &[]),
        )
        .unwrap();
    s.create(
        RecordType::Group,
        &group("51.102", "communication_team", "2024-09-01", &[]),
    )
    .unwrap();
    let team_deleted = s
        .create(
            RecordType::Group,
            &group(NGOC_LINH, "communication_team", "2023-01-01", &[]),
        )
        .unwrap();
    s.soft_delete(team_deleted).unwrap();
    let savings = s
        .create(
            RecordType::Group,
            &group(
                NGOC_LINH,
                "savings_loan_group",
                "2022-01-01",
                &[("gals", Value::Bool(true))],
            ),
        )
        .unwrap();
    for m in [blo_again, blo, hung] {
        s.add_member(savings, "members", &m.to_string()).unwrap();
    }
    let activity = |kind: &str, date: &str, extra: &[(&str, Value)]| {
        let mut f = vec![
            ("commune", text(NGOC_LINH)),
            ("kind", text(kind)),
            ("date", text(date)),
            ("topic", text("Làm mẹ an toàn")),
        ];
        f.extend(extra.iter().cloned());
        fields(&f)
    };
    let counselling = s
        .create(
            RecordType::Activity,
            &activity(
                "counselling",
                "2023-05-05",
                &[("counselling_topic", text("safe_delivery"))],
            ),
        )
        .unwrap();
    s.add_member(counselling, "attendees", &blo_again.to_string())
        .unwrap();
    let training = s
        .create(
            RecordType::Activity,
            &activity("leadership_training", "2024-04-04", &[]),
        )
        .unwrap();
    s.add_member(training, "attendees", &blo.to_string())
        .unwrap();
    s.create(
        RecordType::Activity,
        &activity(
            "policy_dialogue",
            "2024-06-01",
            &[("participants", Value::Int(95))],
        ),
    )
    .unwrap();
    phone.sync(&env.http, env.addr(), 20).await.unwrap();

    // The supervisor merges the second registration into the first, and approves all but the
    // newer team and the dialogue.
    let sup = enrol(&env.http, env.addr(), "giamsat", PASSWORD)
        .await
        .unwrap();
    call_json(
        &env.http,
        env.addr(),
        "POST",
        "/v1/duplicates/merge",
        Some(&sup),
        &json!({"keep": blo, "duplicate": blo_again, "take": []}),
    )
    .await
    .unwrap();
    for id in [
        household,
        blo,
        blo_again,
        hung,
        team_old,
        team_deleted,
        savings,
        counselling,
        training,
    ] {
        call_json(
            &env.http,
            env.addr(),
            "POST",
            &format!("/v1/records/{id}/edits"),
            Some(&sup),
            &json!({"edit": "review", "state": "approved"}),
        )
        .await
        .unwrap();
    }
    let report = |path: &str| {
        let path = path.to_owned();
        let env = &env;
        let sup = sup.clone();
        async move {
            call_json(&env.http, env.addr(), "GET", &path, Some(&sup), &Json::Null)
                .await
                .unwrap()
        }
    };
    let r = report("/v1/indicators").await;
    assert_eq!(r["plan"]["id"], "thu-e2e", "the plan file is the one used");
    let c = |i: &str| cell(&r, "51.102", i).clone();
    assert_eq!(
        c("communication_groups")["value"],
        1,
        "pending and deleted teams do not count"
    );
    assert_eq!(c("communication_groups")["target"], 4.0);
    assert_eq!(c("communication_groups")["progress"], 25.0);
    assert_eq!(c("communication_groups")["by_year"]["2021"]["value"], 0);
    assert_eq!(c("communication_groups")["by_year"]["2022"]["value"], 1);
    assert_eq!(c("savings_groups")["value"], 1);
    assert_eq!(c("savings_groups_gals")["value"], 1);
    // Members: Y Blơ (named twice, counted once) and Hùng; she was linked to formal finance.
    assert_eq!(c("savings_members_formal_finance")["value"], 1);
    assert_eq!(c("savings_members_formal_finance")["denominator"], 2);
    assert_eq!(c("savings_members_formal_finance")["percent"], 50.0);
    // Counselled under her duplicate's id: she counts, once.
    assert_eq!(c("safe_delivery_counselled")["value"], 1);
    assert_eq!(c("safe_delivery_counselled")["denominator"], 1);
    assert_eq!(
        c("safe_delivery_counselled")["breakdown"]["ethnicity"]["14"]["value"],
        1
    );
    assert_eq!(c("women_cadres_trained")["value"], 1);
    assert_eq!(c("policy_dialogues")["value"], 0, "not approved yet");
    assert_eq!(cell(&r, "62", "communication_groups")["target"], Json::Null);
    // Her whole area is an old district: its victim figure is published only beside every
    // other district's, and none has five.
    assert_eq!(cell(&r, "62", "victims_supported")["value"], Json::Null);
    assert_eq!(cell(&r, "62", "victims_supported")["withheld"], "partition");

    let preview = report("/v1/indicators?all_submitted=true").await;
    assert_eq!(cell(&preview, "51.102", "communication_groups")["value"], 2);
    assert_eq!(cell(&preview, "51.102", "policy_dialogues")["value"], 1);
    let earlier = report("/v1/indicators?as_of=2022-12-31").await;
    assert_eq!(
        cell(&earlier, "51.102", "safe_delivery_counselled")["value"],
        0
    );
    assert_eq!(cell(&earlier, "51.102", "women_cadres_trained")["value"], 0);

    let listed = report(
        "/v1/indicators/savings_members_formal_finance/records?area=51.102&part=denominator",
    )
    .await;
    let mut ids: Vec<Uuid> = listed["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| Uuid::parse_str(r["id"].as_str().unwrap()).unwrap())
        .collect();
    ids.sort();
    let mut want = vec![blo, hung];
    want.sort();
    assert_eq!(ids, want);

    // The exports, over HTTPS.
    let (status, csv) = get_bytes(&env, &sup, "/v1/indicators/export.csv").await;
    assert_eq!(status, 200);
    let csv = String::from_utf8(csv).unwrap();
    assert!(csv.starts_with("\u{feff}Mã chỉ tiêu,Chỉ tiêu,"));
    let line = csv
        .lines()
        .find(|l| l.starts_with("communication_groups,") && l.contains(",51.102,Ngọc Linh,Tổng,"))
        .unwrap();
    assert!(line.contains(",Tổng,,1,,,4,25,"), "{line}");
    let (status, xlsx) = get_bytes(&env, &sup, "/v1/indicators/export.xlsx").await;
    assert_eq!(status, 200);
    let mut book = Xlsx::new(std::io::Cursor::new(xlsx)).unwrap();
    let sheet = book.worksheet_range("Tiến độ").unwrap();
    let row = sheet
        .rows()
        .find(|r| r[0] == "safe_delivery_counselled" && r[5] == "51.102")
        .unwrap();
    assert_eq!(row[6], Data::String("Ngọc Linh".into()));
    assert_eq!(
        (&row[7], &row[8], &row[9]),
        (&Data::Float(1.0), &Data::Float(1.0), &Data::Float(100.0))
    );
    assert_eq!(row[10], Data::Float(80.0));

    // The export held victim figures: it is in the audit log, for admins with sensitive
    // access only.
    call_json(
        &env.http,
        env.addr(),
        "POST",
        "/v1/admin/users",
        Some(&env.admin),
        &json!({"username": "quantri.nhaycam", "password": PASSWORD, "role": "admin",
                "areas": ["*"], "sensitive_access": true}),
    )
    .await
    .unwrap();
    let sensitive_admin = enrol(&env.http, env.addr(), "quantri.nhaycam", PASSWORD)
        .await
        .unwrap();
    let exported = |token: String| {
        let env = &env;
        async move {
            let audit = call_json(
                &env.http,
                env.addr(),
                "GET",
                "/v1/audit",
                Some(&token),
                &Json::Null,
            )
            .await
            .unwrap();
            audit["entries"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["action"] == "export_indicators" && e["username"] == "giamsat")
        }
    };
    assert!(exported(sensitive_admin).await);
    assert!(!exported(env.admin.clone()).await);
    // Collectors do not get the report.
    let lan = enrol(&env.http, env.addr(), "lan", PASSWORD).await.unwrap();
    let (status, _) = get_bytes(&env, &lan, "/v1/indicators").await;
    assert_eq!(status, 403);

    victims(&env, &sup).await;
}

/// Six women of Ngọc Linh supported in 2023, approved: the province's supervisor with
/// sensitive access reads a band with its own date, approved records only, in the report,
/// the preview, the CSV and the XLSX; the district's supervisor reads nothing (a district is
/// published only beside every other with five); neither may list the cases.
async fn victims(env: &Env, district: &str) {
    env.user("thu", &[NGOC_LINH], true).await;
    call_json(
        &env.http,
        env.addr(),
        "POST",
        "/v1/admin/users",
        Some(&env.admin),
        &json!({"username": "tinh", "password": PASSWORD, "role": "supervisor",
                "areas": ["62"], "sensitive_access": true}),
    )
    .await
    .unwrap();
    let mut phone = env.phone("thu", Default::default()).await;
    let s = &mut phone.store;
    let home = s
        .create(
            RecordType::Household,
            &minimal_household(NGOC_LINH, "Y Hoa"),
        )
        .unwrap();
    let mut ids = vec![home];
    for (i, opened) in [
        "2023-02-01",
        "2023-03-10",
        "2023-05-05",
        "2023-06-30",
        "2023-08-08",
        "2024-04-04",
    ]
    .iter()
    .enumerate()
    {
        let woman = s
            .create(
                RecordType::Person,
                &fields(&[
                    ("commune", text(NGOC_LINH)),
                    ("household_id", text(&home.to_string())),
                    ("full_name", text(&format!("Y Hoa {i}"))),
                    ("sex", text("female")),
                    ("birth", text("1994")),
                    ("ethnicity", text("14")),
                ]),
            )
            .unwrap();
        let case = s
            .create(
                RecordType::SupportCase,
                &fields(&[
                    ("commune", text(NGOC_LINH)),
                    ("person_id", text(&woman.to_string())),
                    ("case_kind", text("domestic_violence")),
                    ("opened", text(opened)),
                    ("status", text("supported")),
                ]),
            )
            .unwrap();
        ids.extend([woman, case]);
    }
    phone.sync(&env.http, env.addr(), 20).await.unwrap();
    for id in &ids {
        call_json(
            &env.http,
            env.addr(),
            "POST",
            &format!("/v1/records/{id}/edits"),
            Some(district),
            &json!({"edit": "review", "state": "approved"}),
        )
        .await
        .unwrap();
    }
    let province = enrol(&env.http, env.addr(), "tinh", PASSWORD)
        .await
        .unwrap();
    let get = |token: &str, path: &str| {
        let (token, path) = (token.to_owned(), path.to_owned());
        async move {
            call_json(
                &env.http,
                env.addr(),
                "GET",
                &path,
                Some(&token),
                &Json::Null,
            )
            .await
            .unwrap()
        }
    };
    for path in ["/v1/indicators", "/v1/indicators?all_submitted=true"] {
        let r = get(&province, path).await;
        let v = cell(&r, "62", "victims_supported");
        assert_eq!(v["value"], "5–9", "{path}");
        assert_eq!(
            (v["as_of"].as_str(), v["approved_only"].as_bool()),
            (Some("2025-12-31"), Some(true))
        );
        assert_eq!(v["by_year"]["2022"]["value"], "<5");
        assert_eq!(v["by_year"]["2023"]["value"], "5–9");
        assert_eq!(
            v["listable"], false,
            "Ngọc Linh's own figure is not published"
        );
        let commune = cell(&r, "51.102", "victims_supported");
        assert_eq!(
            (&commune["value"], &commune["withheld"]),
            (&Json::Null, &json!("partition"))
        );
    }
    // Inside a quarter: the end of the one before.
    let r = get(&province, "/v1/indicators?as_of=2023-08-20").await;
    let v = cell(&r, "62", "victims_supported");
    assert_eq!(
        (v["as_of"].as_str(), v["value"].as_str()),
        (Some("2023-06-30"), Some("<5"))
    );
    let r = get(district, "/v1/indicators").await;
    assert_eq!(cell(&r, "62", "victims_supported")["withheld"], "partition");
    for token in [&province, district] {
        let (status, _) = get_bytes(
            env,
            token,
            "/v1/indicators/victims_supported/records?area=62",
        )
        .await;
        assert_eq!(status, 403);
    }
    let (status, csv) = get_bytes(
        env,
        &province,
        "/v1/indicators/export.csv?all_submitted=true",
    )
    .await;
    assert_eq!(status, 200);
    let csv = String::from_utf8(csv).unwrap();
    let line = csv
        .lines()
        .find(|l| l.starts_with("victims_supported,") && l.contains(",62,Kon Tum,Tổng,"))
        .unwrap();
    assert!(line.contains(",Tổng,,5–9,"), "{line}");
    assert!(
        line.ends_with(",2025-12-31,đã duyệt"),
        "the preview does not apply: {line}"
    );
    let (status, xlsx) = get_bytes(env, &province, "/v1/indicators/export.xlsx").await;
    assert_eq!(status, 200);
    let mut book = Xlsx::new(std::io::Cursor::new(xlsx)).unwrap();
    let sheet = book.worksheet_range("Tiến độ").unwrap();
    let row = sheet
        .rows()
        .find(|r| r[0] == "victims_supported" && r[5] == "62")
        .unwrap();
    assert_eq!(row[7], Data::String("5–9".into()));
    let about = book.worksheet_range("Thông tin").unwrap();
    assert!(about
        .rows()
        .any(|r| r[0] == "Số nạn nhân" && r[1].to_string().contains("31/12/2025")));
}

#[test]
fn a_plan_file_with_a_mistake_stops_the_server_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.toml");
    std::fs::write(
        &plan,
        PLAN.replace("communication_groups = 4", "communication_groups = 4.5"),
    )
    .unwrap();
    let started = ServerProcess::start_with(
        dir.path(),
        "127.0.0.1:0",
        &["--demo-households", "0", "--plan", plan.to_str().unwrap()],
    );
    assert!(
        started.is_err(),
        "the server must not start on a wrong plan"
    );
}
