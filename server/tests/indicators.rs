//! Plan progress on generated data at the issue's scale (10 communes, 5,000 households, 20,000
//! people, 2,000 activities, with duplicates, unapproved, changed and deleted records planted):
//! every indicator, in every commune, at several dates and per year, with the review switch,
//! for a province supervisor and a district one, equals what this file counts on its own from
//! what was planted; the drill-down lists exactly the records counted; victim figures follow
//! the disclosure rule (bands at quarter ends, parts only where all have five; the rule is
//! audited as an attacker would in tests/indicators_disclosure.rs); the CSV and the XLSX (read
//! back with calamine) carry the same numbers. Requests go through the real routes in process.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod indicator_data;

use calamine::{Data, Reader, Xlsx};
use fieldsync_server::accounts::{self, Authority};
use fieldsync_server::config::Timeouts;
use fieldsync_server::http::{routes, AppState};
use fieldsync_server::indicators::Plan;
use fieldsync_server::storage::sqlite::SqliteStorage;
use fieldsync_server::storage::{NewUser, Role};
use indicator_data::*;
use serde_json::Value as Json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};
use uuid::Uuid;

const PASSWORD: &str = "mật khẩu dài đủ";
const SEED: u64 = 3320;
const START: &str = "2021-01-01";

/// Today's communes in the safe-delivery population of the test's plan: all but Xốp (51.103)
/// and Đắk Long (51.106).
const HOME_BIRTH: [&str; 5] = ["51.102", "51.104", "51.107", "51.110", "51.113"];

const PLAN: &str = r#"
[plan]
id = "thu"
name = "Kế hoạch thử"
province = "62"
start = "2021-01-01"
end = "2025-12-31"
high_home_birth_communes = ["62.610.01", "62.611.01", "51.107", "62.616.01", "62.618.01"]

[targets]
communication_groups = 274
savings_groups = 91
safe_delivery_counselled = 80
women_cadres_trained = 50

[areas."62.610.01"]
communication_groups = 20
[areas."62.610.02"]
communication_groups = 15
[areas."62.613"]
savings_groups = 12
safe_delivery_counselled = 70
"#;

struct World {
    state: AppState,
    planted: Planted,
    /// Tokens: province supervisor with sensitive access; district supervisor without; a
    /// province supervisor whose reports only the admission test asks for.
    province: String,
    district: String,
    hurried: String,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let dir = world_dir();
        let storage = Arc::new(SqliteStorage::open(dir.join("server.sqlite")).unwrap());
        let planted = plant(SEED, &Size::test());
        assert_eq!(planted.households, 5_000);
        assert_eq!(
            planted
                .persons
                .iter()
                .filter(|p| p.duplicate_of.is_none())
                .count(),
            20_000
        );
        assert_eq!(planted.activities.len(), 2_000);
        write(storage.as_ref(), &planted, SEED, 1_000);
        let mut tokens = Vec::new();
        for (name, areas, sensitive) in [
            ("giamsat.tinh", vec!["62".to_owned()], true),
            ("giamsat.daklei", vec!["62.610".to_owned()], false),
            ("giamsat.voiva", vec!["62".to_owned()], false),
        ] {
            accounts::create_user(
                storage.as_ref(),
                Authority::Operator,
                &NewUser {
                    username: name.into(),
                    password: PASSWORD.into(),
                    role: Role::Supervisor,
                    sensitive_access: sensitive,
                    areas,
                    can_grant_sensitive: false,
                    full_name: None,
                    phone: None,
                },
            )
            .unwrap();
            let (_, token, _) =
                accounts::enrol(storage.as_ref(), name, PASSWORD, "t", None).unwrap();
            tokens.push(token);
        }
        let state = AppState::new(storage, None, Timeouts::default())
            .unwrap()
            .with_plan(Plan::from_toml(PLAN).unwrap());
        World {
            state,
            planted,
            hurried: tokens.pop().unwrap(),
            district: tokens.pop().unwrap(),
            province: tokens.pop().unwrap(),
        }
    })
}

/// The shared world's database directory, under Cargo's temporary directory. A static is never
/// dropped, so each test process's directory is named by its pid and those of processes that
/// have ended are removed here.
fn world_dir() -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    if let Ok(entries) = std::fs::read_dir(root) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("indicators-world-") {
                if !std::path::Path::new("/proc").join(pid).exists() {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
    }
    let dir = root.join(format!("indicators-world-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One GET: its status, its Retry-After and its body.
async fn get_once(token: &str, path: &str) -> (u16, Option<String>, Vec<u8>) {
    let response = warp::test::request()
        .method("GET")
        .path(path)
        .header("authorization", format!("Bearer {token}"))
        .reply(&routes(world().state.clone()))
        .await;
    let retry = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (response.status().as_u16(), retry, response.body().to_vec())
}

/// A GET as clients make it: tests run at once and share accounts, so an account's reports
/// may be busy (429); the request is made again after the wait the server names.
async fn get(token: &str, path: &str) -> (u16, Vec<u8>) {
    for _ in 0..60 {
        let (status, _, body) = get_once(token, path).await;
        if status != 429 {
            return (status, body);
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    panic!("{path}: busy for 12 s");
}

async fn json(token: &str, path: &str) -> Json {
    let (status, body) = get(token, path).await;
    assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

// ---- Counting on our own, from what was planted.

/// Who is looking and how: which communes of today they see (`None`: all), and whether
/// unapproved records count.
struct Looker {
    rows: Option<BTreeSet<&'static str>>,
    all_submitted: bool,
    sensitive: bool,
}

/// (indicator, commune of today) → (figure, population), and the ids behind each figure.
#[derive(Default)]
struct Expected {
    figures: BTreeMap<(&'static str, &'static str), (u64, u64)>,
    ids: BTreeMap<(&'static str, &'static str, bool), BTreeSet<Uuid>>,
    /// Province-wide breakdowns: (indicator, dimension, group) → (figure, population).
    breakdown: BTreeMap<(&'static str, &'static str, String), (u64, u64)>,
}

impl Expected {
    fn add(
        &mut self,
        indicator: &'static str,
        commune: &str,
        value: u64,
        population: u64,
        id: Uuid,
    ) {
        let row = today(commune);
        let e = self.figures.entry((indicator, row)).or_default();
        e.0 += value;
        e.1 += population;
        if value > 0 {
            self.ids
                .entry((indicator, row, false))
                .or_default()
                .insert(id);
        }
        if population > 0 {
            self.ids
                .entry((indicator, row, true))
                .or_default()
                .insert(id);
        }
    }

    fn get(&self, indicator: &str, commune: &str) -> (u64, u64) {
        self.figures
            .iter()
            .find(|((i, c), _)| *i == indicator && *c == commune)
            .map(|(_, v)| *v)
            .unwrap_or_default()
    }
}

fn age(birth: &str, on: &str) -> Option<i64> {
    let years: i64 = on[..4].parse::<i64>().unwrap() - birth[..4].parse::<i64>().unwrap();
    let years = if birth.len() == 10 && birth[5..] > on[5..] {
        years - 1
    } else {
        years
    };
    (years >= 0 && birth <= on).then_some(years)
}

fn age_group(age: Option<i64>) -> String {
    match age {
        None => "unknown",
        Some(a) if a < 16 => "0-15",
        Some(a) if a <= 30 => "16-30",
        Some(a) if a < 60 => "31-59",
        _ => "60+",
    }
    .to_owned()
}

fn later(a: &Option<String>, b: &Option<String>) -> Option<String> {
    let a = a.clone()?;
    Some(match b {
        Some(b) if *b > a => b.clone(),
        _ => a,
    })
}

fn expected(p: &Planted, who: &Looker, as_of: &str) -> Expected {
    let counts = |review: Review, deleted: bool| {
        !deleted && (who.all_submitted || review == Review::Approved)
    };
    let visible = |commune: &str| {
        who.rows
            .as_ref()
            .is_none_or(|rows| rows.contains(today(commune)))
    };
    let index: BTreeMap<Uuid, usize> = p
        .persons
        .iter()
        .enumerate()
        .map(|(i, x)| (x.id, i))
        .collect();
    // The person kept for an id, following duplicates to the record they were merged into.
    let kept = |id: &Uuid| -> Option<usize> {
        let mut i = *index.get(id)?;
        while let Some(of) = p.persons[i].duplicate_of {
            i = of;
        }
        let x = &p.persons[i];
        counts(x.review, x.deleted).then_some(i)
    };
    let on = |d: &Option<String>| d.as_deref().is_some_and(|d| d <= as_of);
    let mut e = Expected::default();

    for g in &p.groups {
        if !counts(g.review, g.deleted) || !visible(g.commune) {
            continue;
        }
        let mut add = |indicator, date: &Option<String>| {
            if on(date) {
                e.add(indicator, g.commune, 1, 0, g.id);
            }
        };
        match (g.kind, g.trusted_status, g.phase) {
            ("communication_team", _, _) => add("communication_groups", &g.established),
            ("savings_loan_group", _, _) => {
                add("savings_groups", &g.established);
                if g.gals {
                    add("savings_groups_gals", &later(&g.established, &g.gals_since));
                }
            }
            ("livelihood_group" | "cooperative", _, _) if g.women_led && g.digital => add(
                "women_led_groups_technology",
                &later(&g.established, &g.technology_since),
            ),
            ("trusted_address", Some("existing"), _) => {
                add("trusted_addresses_consolidated", &g.established)
            }
            ("trusted_address", Some("new"), _) => add("trusted_addresses_new", &g.established),
            ("children_club", _, _) => add("childrens_clubs", &g.established),
            ("victim_livelihood_model", _, Some("pilot")) => {
                add("victim_livelihood_models_pilot", &g.established)
            }
            ("victim_livelihood_model", _, Some("replicated")) => {
                add("victim_livelihood_models_replicated", &g.established)
            }
            _ => {}
        }
    }
    for a in &p.activities {
        if counts(a.review, a.deleted)
            && visible(a.commune)
            && a.kind == "policy_dialogue"
            && START <= a.date.as_str()
            && a.date.as_str() <= as_of
        {
            e.add("policy_dialogues", a.commune, 1, 0, a.id);
        }
    }

    // Per kept person: first savings group, first safe-motherhood counselling, first
    // leadership training (counted records only, wherever they were held).
    let mut savings: BTreeMap<usize, String> = BTreeMap::new();
    let mut counselled: BTreeMap<usize, String> = BTreeMap::new();
    let mut trained: BTreeMap<usize, String> = BTreeMap::new();
    let first = |map: &mut BTreeMap<usize, String>, i: usize, d: &str| {
        let slot = map.entry(i).or_insert_with(|| d.to_owned());
        if d < slot.as_str() {
            *slot = d.to_owned();
        }
    };
    for g in &p.groups {
        if counts(g.review, g.deleted) && g.kind == "savings_loan_group" {
            if let Some(d) = &g.established {
                for m in &g.members {
                    if let Some(i) = kept(m) {
                        first(&mut savings, i, d);
                    }
                }
            }
        }
    }
    for a in &p.activities {
        if !counts(a.review, a.deleted) || a.date.as_str() < START {
            continue;
        }
        let map = match (a.kind, a.counselling_topic) {
            ("counselling", Some("antenatal" | "safe_delivery" | "postnatal" | "child_health")) => {
                &mut counselled
            }
            ("leadership_training", _) => &mut trained,
            _ => continue,
        };
        for m in &a.attendees {
            if let Some(i) = kept(m) {
                first(map, i, &a.date);
            }
        }
    }
    let in_window = |d: &Option<String>| d.as_deref().is_some_and(|d| START <= d && d <= as_of);
    let mut breakdowns: BTreeMap<(&'static str, &'static str, String), (u64, u64)> =
        BTreeMap::new();
    for (i, x) in p.persons.iter().enumerate() {
        if x.duplicate_of.is_some() || !counts(x.review, x.deleted) || !visible(x.commune) {
            continue;
        }
        let mut part = |indicator: &'static str, value: u64, population: u64| {
            e.add(indicator, x.commune, value, population, x.id);
            let a = age(&x.birth, as_of);
            for (dimension, group) in [
                ("sex", (if x.female { "female" } else { "male" }).to_owned()),
                ("ethnicity", x.ethnicity.to_owned()),
                ("age", age_group(a)),
            ] {
                let entry = breakdowns.entry((indicator, dimension, group)).or_default();
                entry.0 += value;
                entry.1 += population;
            }
        };
        if savings.get(&i).is_some_and(|d| d.as_str() <= as_of) {
            part(
                "savings_members_formal_finance",
                u64::from(in_window(&x.finance)),
                1,
            );
            part(
                "savings_members_livelihood",
                u64::from(in_window(&x.livelihood)),
                1,
            );
        }
        let minority_woman = x.female && x.ethnicity != "01";
        if minority_woman
            && HOME_BIRTH.contains(&today(x.commune))
            && age(&x.birth, as_of).is_some_and(|a| (15..=49).contains(&a))
        {
            let reached = counselled.get(&i).is_some_and(|d| d.as_str() <= as_of);
            part("safe_delivery_counselled", u64::from(reached), 1);
        }
        if minority_woman
            && x.cadre.is_some()
            && trained.get(&i).is_some_and(|d| d.as_str() <= as_of)
        {
            part("women_cadres_trained", 1, 0);
        }
    }
    if who.sensitive {
        // Each victim once, in the commune of their first case.
        let mut first_case: BTreeMap<usize, (&str, Uuid, &str)> = BTreeMap::new();
        for c in &p.cases {
            if !counts(c.review, c.deleted) || !visible(c.commune) || c.opened.as_str() < START {
                continue;
            }
            if let Some(i) = kept(&c.person) {
                let slot = first_case.entry(i).or_insert((&c.opened, c.id, c.commune));
                if (c.opened.as_str(), c.id) < (slot.0, slot.1) {
                    *slot = (&c.opened, c.id, c.commune);
                }
            }
        }
        for (opened, case, commune) in first_case.values() {
            if *opened <= as_of {
                e.add("victims_supported", commune, 1, 0, *case);
            }
        }
    }
    e.breakdown = breakdowns;
    e
}

// ---- Reading the report.

/// A figure as the report gives it (indicators that are not sensitive: a number).
fn figure(v: &Json) -> Option<u64> {
    Some(v.as_u64().unwrap_or_else(|| panic!("not a figure: {v}")))
}

fn area<'a>(report: &'a Json, code: &str) -> &'a Json {
    report["areas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["code"] == code)
        .unwrap_or_else(|| panic!("no row {code}"))
}

const COUNTED: [&str; 14] = [
    "communication_groups",
    "savings_groups",
    "savings_members_formal_finance",
    "savings_members_livelihood",
    "savings_groups_gals",
    "women_led_groups_technology",
    "trusted_addresses_consolidated",
    "trusted_addresses_new",
    "victim_livelihood_models_pilot",
    "victim_livelihood_models_replicated",
    "safe_delivery_counselled",
    "childrens_clubs",
    "policy_dialogues",
    "women_cadres_trained",
];

const PERCENT: [&str; 3] = [
    "savings_members_formal_finance",
    "savings_members_livelihood",
    "safe_delivery_counselled",
];

/// Checks every non-victim figure of `report` (communes, and the province as their sum) against
/// what was counted here, at the report's date or a year's end.
fn check_figures(report: &Json, e: &Expected, year: Option<i32>, communes: &[&str]) {
    let at = |cell: &Json| -> Json {
        match year {
            None => cell.clone(),
            Some(y) => cell["by_year"][y.to_string()].clone(),
        }
    };
    for indicator in COUNTED {
        let mut total = (0, 0);
        for commune in communes {
            let cell = at(&area(report, commune)["results"][indicator]);
            assert!(
                !cell.is_null(),
                "{indicator} in {commune} ({year:?}): {}",
                area(report, commune)["results"][indicator]
            );
            let want = e.get(indicator, commune);
            total.0 += want.0;
            total.1 += want.1;
            assert_eq!(
                figure(&cell["value"]),
                Some(want.0),
                "{indicator} in {commune} ({year:?})"
            );
            if PERCENT.contains(&indicator) {
                assert_eq!(
                    cell["denominator"], want.1,
                    "{indicator} population in {commune}"
                );
            }
        }
        let cell = at(&area(report, "62")["results"][indicator]);
        assert_eq!(
            figure(&cell["value"]),
            Some(total.0),
            "{indicator} total ({year:?})"
        );
        if PERCENT.contains(&indicator) {
            assert_eq!(cell["denominator"], total.1);
            let percent = (total.0 as f64 * 1000.0 / total.1 as f64).round() / 10.0;
            assert_eq!(cell["percent"].as_f64(), Some(percent), "{indicator} %");
        }
    }
}

const ALL_ROWS: [&str; 7] = [
    "51.102", "51.103", "51.104", "51.106", "51.107", "51.110", "51.113",
];

fn province(all_submitted: bool) -> Looker {
    Looker {
        rows: None,
        all_submitted,
        sensitive: true,
    }
}

#[tokio::test]
async fn every_indicator_in_every_commune_matches_what_was_planted() {
    let w = world();
    // The data has what the rules are about.
    let p = &w.planted;
    assert!(
        p.persons
            .iter()
            .filter(|x| x.duplicate_of.is_some())
            .count()
            >= 400
    );
    assert!(p.groups.iter().any(|g| g.deleted) && p.activities.iter().any(|a| a.deleted));
    assert!(p.persons.iter().any(|x| x.review == Review::Pending));
    assert!(p.groups.iter().any(|g| g.review == Review::Changed));

    for (as_of, all_submitted) in [
        (None, false),
        (Some("2023-06-30"), false),
        (None, true),
        (Some("2021-03-31"), false),
    ] {
        let mut path = "/v1/indicators?".to_owned();
        if let Some(d) = as_of {
            path.push_str(&format!("as_of={d}&"));
        }
        if all_submitted {
            path.push_str("all_submitted=true");
        }
        let report = json(&w.province, &path).await;
        let date = as_of.unwrap_or("2025-12-31");
        assert_eq!(report["as_of"], date);
        assert_eq!(report["all_submitted"], all_submitted);
        let codes: Vec<&str> = report["areas"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["code"].as_str().unwrap())
            .collect();
        assert_eq!(codes[0], "62");
        assert!(area(&report, "62")["complete"] == true);
        for c in ALL_ROWS {
            assert!(codes.contains(&c), "{c} in {codes:?}");
        }
        let e = expected(p, &province(all_submitted), date);
        check_figures(&report, &e, None, &ALL_ROWS);
        // Per year of the plan, up to the report's date.
        let last = date[..4].parse::<i32>().unwrap();
        assert_eq!(
            report["years"],
            serde_json::json!((2021..=last).collect::<Vec<_>>())
        );
        for year in 2021..last {
            let e = expected(p, &province(all_submitted), &format!("{year}-12-31"));
            check_figures(&report, &e, Some(year), &ALL_ROWS);
        }
        check_figures(&report, &e, Some(last), &ALL_ROWS);
    }
    // The preview counts more than approved records alone.
    let approved = expected(p, &province(false), "2025-12-31");
    let all = expected(p, &province(true), "2025-12-31");
    assert!(
        all.get("communication_groups", "51.102").0
            > approved.get("communication_groups", "51.102").0
    );
}

#[tokio::test]
async fn people_are_broken_down_by_sex_ethnic_group_and_age_group() {
    let w = world();
    let report = json(&w.province, "/v1/indicators").await;
    let e = expected(&w.planted, &province(false), "2025-12-31");
    for indicator in [
        "safe_delivery_counselled",
        "women_cadres_trained",
        "savings_members_livelihood",
    ] {
        let b = &area(&report, "62")["results"][indicator]["breakdown"];
        let mut seen = 0;
        for ((i, dimension, group), (value, population)) in &e.breakdown {
            if *i != indicator {
                continue;
            }
            let share = &b[*dimension][group];
            assert_eq!(
                figure(&share["value"]),
                Some(*value),
                "{indicator} {dimension} {group}"
            );
            if PERCENT.contains(&indicator) {
                assert_eq!(
                    share["denominator"], *population,
                    "{indicator} {dimension} {group}"
                );
            }
            seen += 1;
        }
        assert!(seen >= 5, "{indicator}: {seen} groups");
        // Each dimension adds up to the figure.
        let total = figure(&area(&report, "62")["results"][indicator]["value"]).unwrap();
        for dimension in ["sex", "ethnicity", "age"] {
            let sum: u64 = b[dimension]
                .as_object()
                .unwrap()
                .values()
                .map(|s| figure(&s["value"]).unwrap())
                .sum();
            assert_eq!(sum, total, "{indicator} by {dimension}");
        }
    }
    // Safe delivery counts women of 15-49 only.
    let ages = area(&report, "62")["results"]["safe_delivery_counselled"]["breakdown"]["age"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect::<BTreeSet<_>>();
    assert!(
        !ages.contains("60+") && !ages.contains("unknown"),
        "{ages:?}"
    );
    // Targets: the province's, and rolled up onto today's communes from old ones.
    let r = |code: &str, i: &str| area(&report, code)["results"][i].clone();
    assert_eq!(r("62", "communication_groups")["target"], 274.0);
    assert_eq!(r("51.102", "communication_groups")["target"], 35.0);
    assert_eq!(r("51.103", "communication_groups")["target"], Json::Null);
    assert_eq!(r("62.613", "savings_groups")["target"], 12.0);
    assert_eq!(r("51.107", "safe_delivery_counselled")["target"], 70.0);
    assert_eq!(r("51.102", "safe_delivery_counselled")["target"], 80.0);
    // The district row adds up its communes of today (Kon Plông: Đắk Long and Măng Đen).
    let sum = figure(&r("51.106", "savings_groups")["value"]).unwrap()
        + figure(&r("51.107", "savings_groups")["value"]).unwrap();
    assert_eq!(figure(&r("62.613", "savings_groups")["value"]), Some(sum));
    let progress = r("62", "communication_groups");
    let want = (figure(&progress["value"]).unwrap() as f64 * 1000.0 / 274.0).round() / 10.0;
    assert_eq!(progress["progress"].as_f64(), Some(want));
    // Old communes are named under the commune they became.
    let merged: Vec<String> = area(&report, "51.102")["merged_from"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m[1].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(merged, ["Ngọc Linh", "Mường Hoong"]);
}

#[tokio::test]
async fn a_district_supervisor_sees_its_communes_only_and_no_victim_figures() {
    let w = world();
    let report = json(&w.district, "/v1/indicators?as_of=2024-12-31").await;
    let codes: Vec<&str> = report["areas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["code"].as_str().unwrap())
        .collect();
    // Kon Plông's district row is not theirs.
    assert_eq!(codes, ["62", "51.102", "51.103"]);
    assert_eq!(area(&report, "62")["complete"], false);
    let who = Looker {
        rows: Some(["51.102", "51.103"].into()),
        all_submitted: false,
        sensitive: false,
    };
    let e = expected(&w.planted, &who, "2024-12-31");
    check_figures(&report, &e, None, &["51.102", "51.103"]);
    assert!(report["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["id"] != "victims_supported"));
    assert!(area(&report, "62")["results"]
        .get("victims_supported")
        .is_none());
    // Their whole area's count target is the sum of their communes', if each has one.
    assert_eq!(
        area(&report, "62")["results"]["communication_groups"]["target"],
        Json::Null
    );
    let (status, _) = get(
        &w.district,
        "/v1/indicators/victims_supported/records?area=51.102",
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = get(
        &w.district,
        "/v1/indicators/communication_groups/records?area=51.104",
    )
    .await;
    assert_eq!(status, 404, "another district's commune");
}

/// A victim figure as published: the band of `count` ("<5", "5–9", …).
fn band(count: u64) -> Json {
    if count < 5 {
        Json::from("<5")
    } else {
        let lo = count / 5 * 5;
        Json::from(format!("{lo}–{}", lo + 4))
    }
}

/// Victims of the province with approved records, at `day`.
fn victims_at(day: &str) -> u64 {
    let e = expected(&world().planted, &province(false), day);
    ALL_ROWS
        .iter()
        .map(|c| e.get("victims_supported", c).0)
        .sum()
}

#[tokio::test]
async fn victim_figures_are_bands_at_quarter_ends_and_parts_only_where_all_have_five() {
    let w = world();
    // The plan's end: the province, its years, and parts only where every part has five.
    let report = json(&w.province, "/v1/indicators").await;
    let whole = &area(&report, "62")["results"]["victims_supported"];
    assert_eq!(whole["value"], band(victims_at("2025-12-31")));
    assert!(
        victims_at("2025-12-31") >= 5,
        "the planted victims are enough to show"
    );
    assert_eq!(whole["as_of"], "2025-12-31");
    assert_eq!(whole["approved_only"], true);
    assert_eq!(whole["undated"], 0);
    for y in 2021..=2025 {
        let share = &whole["by_year"][y.to_string()];
        assert_eq!(
            share["value"],
            band(victims_at(&format!("{y}-12-31"))),
            "{y}"
        );
        assert_eq!(share["as_of"], format!("{y}-12-31"));
    }
    // Planted: communes of today with none or fewer than five victims, so no district and no
    // commune is published, whatever its own count; and none of their cases is listed.
    let e = expected(&w.planted, &province(false), "2025-12-31");
    assert!(ALL_ROWS
        .iter()
        .any(|c| e.get("victims_supported", c).0 >= 5));
    for code in ALL_ROWS.iter().chain(&["62.613"]) {
        let cell = &area(&report, code)["results"]["victims_supported"];
        assert_eq!(cell["value"], Json::Null, "{code}");
        assert_eq!(cell["withheld"], "partition", "{code}");
        assert_eq!(cell["listable"], false, "{code}");
        let (status, _) = get(
            &w.province,
            &format!("/v1/indicators/victims_supported/records?area={code}"),
        )
        .await;
        assert_eq!(status, 403, "{code}");
    }
    // The province's cases span communes whose figures are not published: not listed either.
    assert_eq!(whole["listable"], false);
    let (status, _) = get(
        &w.province,
        "/v1/indicators/victims_supported/records?area=62",
    )
    .await;
    assert_eq!(status, 403);
    // A breakdown dimension is published whole (every group five or more) or not at all.
    for dimension in ["sex", "age", "ethnicity"] {
        let groups = whole["breakdown"][dimension].as_object().unwrap();
        let shown = groups.values().filter(|g| g["value"].is_string()).count();
        assert!(
            shown == 0 || shown == groups.len(),
            "{dimension}: {groups:?}"
        );
        for g in groups.values() {
            assert_ne!(
                g["value"], "<5",
                "{dimension}: a group under five is not shown"
            );
        }
    }
    assert_eq!(whole["breakdown"]["as_of"], "2025-12-31");

    // Inside a quarter: the province at the end of the one before; parts not at all; the
    // preview shows the approved figures.
    for all_submitted in [false, true] {
        let report = json(
            &w.province,
            &format!("/v1/indicators?as_of=2024-05-10&all_submitted={all_submitted}"),
        )
        .await;
        let whole = &area(&report, "62")["results"]["victims_supported"];
        assert_eq!(whole["as_of"], "2024-03-31");
        assert_eq!(whole["approved_only"], true);
        assert_eq!(whole["value"], band(victims_at("2024-03-31")));
        assert!(whole.get("breakdown").is_none());
        assert_eq!(
            whole["by_year"]
                .as_object()
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            ["2021", "2022", "2023", "2024"]
        );
        for code in ALL_ROWS {
            let cell = &area(&report, code)["results"]["victims_supported"];
            assert_eq!(cell["value"], Json::Null);
            assert_eq!(cell["withheld"], "period", "{code}");
        }
    }
}

#[tokio::test]
async fn a_figure_drills_down_to_exactly_the_records_counted() {
    let w = world();
    let e = expected(&w.planted, &province(false), "2025-12-31");
    // Victims' cases: tests/indicators_disclosure.rs, where parts are published.
    for (indicator, commune, denominator) in [
        ("communication_groups", "51.102", false),
        ("policy_dialogues", "51.107", false),
        ("safe_delivery_counselled", "51.104", false),
        ("safe_delivery_counselled", "51.104", true),
        ("women_cadres_trained", "51.113", false),
        ("savings_groups_gals", "51.110", false),
    ] {
        let mut got = BTreeSet::new();
        let mut offset = 0;
        loop {
            let page = json(
                &w.province,
                &format!(
                    "/v1/indicators/{indicator}/records?area={commune}&limit=50&offset={offset}{}",
                    if denominator { "&part=denominator" } else { "" }
                ),
            )
            .await;
            let records = page["records"].as_array().unwrap();
            for r in records {
                got.insert(Uuid::parse_str(r["id"].as_str().unwrap()).unwrap());
                assert_eq!(today(r["commune"].as_str().unwrap()), commune);
            }
            offset += 50;
            if offset >= page["total"].as_u64().unwrap() {
                break;
            }
        }
        let want = e
            .ids
            .get(&(indicator, commune, denominator))
            .cloned()
            .unwrap_or_default();
        assert!(!want.is_empty(), "{indicator} {commune}: something to list");
        assert_eq!(
            got, want,
            "{indicator} in {commune} (denominator {denominator})"
        );
    }
    // The whole province lists the sum of its communes.
    let page = json(
        &w.province,
        "/v1/indicators/childrens_clubs/records?area=62&limit=1",
    )
    .await;
    let sum: u64 = ALL_ROWS.iter().map(|c| e.get("childrens_clubs", c).0).sum();
    assert_eq!(page["total"], sum);
    let (status, _) = get(
        &w.province,
        "/v1/indicators/childrens_clubs/records?area=51.999",
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = get(
        &w.province,
        "/v1/indicators/childrens_clubs/records?area=51.102&part=x",
    )
    .await;
    assert_eq!(status, 400);
}

/// A small CSV reader (quoted fields, doubled quotes), independent of the writer.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => row.push(std::mem::take(&mut field)),
            ('\r', false) => {}
            ('\n', false) => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (c, _) => field.push(c),
        }
    }
    rows
}

#[tokio::test]
async fn the_csv_and_the_xlsx_carry_the_reports_numbers_with_vietnamese_text() {
    let w = world();
    let e = expected(&w.planted, &province(false), "2024-12-31");
    let want = |indicator: &str, code: &str| -> String {
        let rows: &[&str] = match code {
            "62" => &ALL_ROWS,
            // Kon Plông, given targets of its own: Đắk Long and Măng Đen today.
            "62.613" => &["51.106", "51.107"],
            c => &[c][..],
        };
        rows.iter()
            .map(|c| e.get(indicator, c).0)
            .sum::<u64>()
            .to_string()
    };

    let (status, xlsx) = get(&w.province, "/v1/indicators/export.xlsx?as_of=2024-12-31").await;
    assert_eq!(status, 200);
    let mut book = Xlsx::new(std::io::Cursor::new(xlsx)).unwrap();
    assert_eq!(book.sheet_names(), ["Tiến độ", "Phân tổ", "Thông tin"]);
    let sheet = book.worksheet_range("Tiến độ").unwrap();
    let rows: Vec<Vec<Data>> = sheet.rows().map(|r| r.to_vec()).collect();
    let header: Vec<String> = rows[0].iter().map(|c| c.to_string()).collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("{name} in {header:?}"))
    };
    let (c_id, c_code, c_value, c_target) = (
        col("Mã chỉ tiêu"),
        col("Mã địa bàn"),
        col("Kết quả"),
        col("Mục tiêu"),
    );
    assert!(header.contains(&"Năm 2024".to_owned()));
    let mut checked = 0;
    for row in &rows[1..] {
        let id = row[c_id].to_string();
        let code = row[c_code].to_string();
        if !COUNTED.contains(&id.as_str()) {
            continue;
        }
        match &row[c_value] {
            Data::Float(v) => assert_eq!(format!("{v}"), want(&id, &code), "{id} {code}"),
            other => panic!("{id} {code}: {other:?} is not a number"),
        }
        checked += 1;
    }
    // The province, Kon Plông, and all 13 communes of today (6 of them without records).
    assert_eq!(checked, COUNTED.len() * 15);
    let target = rows
        .iter()
        .find(|r| r[c_id] == "communication_groups" && r[c_code] == "62")
        .unwrap();
    assert_eq!(target[c_target], Data::Float(274.0));
    let names: String = rows.iter().map(|r| r[col("Địa bàn")].to_string()).collect();
    assert!(
        names.contains("Ngọc Linh") && names.contains("Đắk Long"),
        "diacritics survive"
    );
    // Victim figures: the report's texts (a band, "<5"), "—" where it publishes none.
    let report = json(&w.province, "/v1/indicators?as_of=2024-12-31").await;
    let victims = |code: &str| -> String {
        match &area(&report, code)["results"]["victims_supported"]["value"] {
            Json::Null => "—".into(),
            v => v.as_str().unwrap().to_owned(),
        }
    };
    let mut seen = 0;
    for row in rows.iter().filter(|r| r[c_id] == "victims_supported") {
        let code = row[c_code].to_string();
        assert_eq!(row[c_value], Data::String(victims(&code)), "{code}");
        seen += 1;
    }
    assert_eq!(seen, 15);
    let breakdown = book.worksheet_range("Phân tổ").unwrap();
    assert!(breakdown.rows().any(|r| r.iter().any(|c| *c == "Xơ Đăng")));

    let (status, csv) = get(&w.province, "/v1/indicators/export.csv?as_of=2024-12-31").await;
    assert_eq!(status, 200);
    let text = String::from_utf8(csv).unwrap();
    assert!(text.starts_with('\u{feff}'), "a byte-order mark for Excel");
    let table = parse_csv(text.trim_start_matches('\u{feff}'));
    let header = &table[0];
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (c_id, c_code, c_split, c_value) = (
        col("Mã chỉ tiêu"),
        col("Mã địa bàn"),
        col("Phân tổ"),
        col("Kết quả"),
    );
    let (c_date, c_records) = (col("Số liệu đến ngày"), col("Hồ sơ được tính"));
    let mut checked = 0;
    for row in &table[1..] {
        assert_eq!(row.len(), header.len());
        if row[c_split] == "Tổng" && COUNTED.contains(&row[c_id].as_str()) {
            assert_eq!(row[c_value], want(&row[c_id], &row[c_code]), "{row:?}");
            assert_eq!(row[c_date], "2024-12-31");
            checked += 1;
        }
        if row[c_id] == "victims_supported" {
            // Counted at its own date, from approved records, whatever was asked.
            assert_eq!(
                (row[c_date].as_str(), row[c_records].as_str()),
                ("2024-12-31", "đã duyệt")
            );
            if row[c_split] == "Tổng" {
                assert_eq!(row[c_value], victims(&row[c_code]), "{row:?}");
            }
        }
    }
    assert_eq!(checked, COUNTED.len() * 15);
    assert!(table.iter().any(|r| r.iter().any(|c| c == "Tổ sinh kế, tổ hợp tác, hợp tác xã do phụ nữ làm chủ, đồng làm chủ ứng dụng công nghệ 4.0")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_computes_two_reports_at_once_and_is_told_to_wait_for_more() {
    let w = world();
    let reports: Vec<_> = (0..6)
        .map(|_| tokio::spawn(get_once(&w.hurried, "/v1/indicators?as_of=2024-12-31")))
        .collect();
    // Another supervisor's page is answered all the same.
    let other = json(&w.district, "/v1/indicators?as_of=2024-12-31").await;
    assert_eq!(other["as_of"], "2024-12-31");
    let mut statuses = Vec::new();
    for report in reports {
        let (status, retry, _) = report.await.unwrap();
        if status == 429 {
            assert_eq!(retry.as_deref(), Some("1"));
        }
        statuses.push(status);
    }
    statuses.sort();
    let ok = statuses.iter().filter(|s| **s == 200).count();
    assert!(
        (2..6).contains(&ok) && statuses.iter().all(|s| [200, 429].contains(s)),
        "two at a time, the others told to wait: {statuses:?}"
    );
    // Once they are done, the account's next report is computed.
    assert_eq!(get_once(&w.hurried, "/v1/indicators").await.0, 200);
}
