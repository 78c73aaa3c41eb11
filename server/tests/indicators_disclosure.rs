//! The disclosure rule of victim figures tested as an attacker would (docs/indicators.md §3).
//! For generated data (four datasets: a few victims, some dozens, five or more in every old
//! district, many in two communes; spread over communes recorded under old and new codes,
//! sexes, ages, ethnic groups, 2020–2026, approved and not, some deleted or registered twice),
//! the test asks the real routes for the reports the API offers — every day from two before to
//! two after the end of each quarter of 2020–2026 and the 15th of every month for the
//! province's supervisor; the ends of quarters and the days around them for supervisors of
//! each old district, of single communes (old and new codes), of two districts, and one
//! without sensitive access; approved and preview — and for the drill-downs of the victim
//! figure (every row of the province's report, each other supervisor's whole area, at every
//! quarter end). From the published figures alone it then
//! - checks each figure holds the true count (a `<5` is 0–4, a band holds it);
//! - subtracts figures two by two and wholes from their parts (`Published::pairs`);
//! - decides exactly, for every set of 1–4 victims (each commune, district and the province;
//!   each run of periods between published dates; approved, preview-only or both; each
//!   group of a breakdown and all but one), whether the figures leave room for it to hold no
//!   one or five or more (`disclosure::exact`);
//! - checks that a drill-down lists exactly the cases counted, and only where the figure and
//!   that of every commune it lists cases of are published.
//!
//! Any finding fails the test, with the findings listed. Figures that carry no date of their
//! own are read as the rule before this one wrote them, so that the test can be run against it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on any error

mod disclosure;
mod indicator_data;

use disclosure::{Cat, Day, Dim, Finding, Kind, Pred, Published, Range, Victim, INF};
use fieldsync_core::generator::Rng;
use fieldsync_core::model::{AreaLevel, Areas};
use fieldsync_server::accounts::{self, Authority};
use fieldsync_server::config::Timeouts;
use fieldsync_server::http::{routes, AppState};
use fieldsync_server::indicators::Plan;
use fieldsync_server::storage::sqlite::SqliteStorage;
use fieldsync_server::storage::{NewUser, Role};
use indicator_data::{write, Case, Person, Planted, Review};
use serde_json::Value as Json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use uuid::Uuid;

const PASSWORD: &str = "mật khẩu dài đủ";
const START: Day = 20210101;

/// Two old districts with targets, so that they are rows of the report.
const PLAN: &str = r#"
[plan]
id = "kiem-tra"
name = "Kế hoạch kiểm tra công bố số liệu"
province = "62"
start = "2021-01-01"
end = "2025-12-31"

[targets]
communication_groups = 10

[areas."62.610"]
communication_groups = 5
[areas."62.613"]
communication_groups = 5
[areas."62.616"]
communication_groups = 5
"#;

/// Old communes of Kon Tum and today's communes, as collectors may write either.
const OLD: [&str; 19] = [
    "62.608.01",
    "62.608.02",
    "62.610.01",
    "62.610.02",
    "62.610.03",
    "62.610.04",
    "62.611.01",
    "62.612.01",
    "62.613.01",
    "62.613.02",
    "62.613.03",
    "62.614.01",
    "62.615.01",
    "62.616.01",
    "62.616.02",
    "62.617.01",
    "62.618.01",
    "62.618.02",
    "51.107",
];

/// Some of today's communes, as collectors write them since the merger.
const NEW: [&str; 7] = [
    "51.101", "51.102", "51.103", "51.105", "51.108", "51.110", "51.113",
];

/// The old districts of the province.
const DISTRICTS: [&str; 10] = [
    "62.608", "62.610", "62.611", "62.612", "62.613", "62.614", "62.615", "62.616", "62.617",
    "62.618",
];

fn day(text: &str) -> Day {
    text.replace('-', "").parse().unwrap()
}

fn text(d: Day) -> String {
    format!("{:04}-{:02}-{:02}", d / 10_000, d / 100 % 100, d % 100)
}

/// A generated dataset: victims placed on purpose (approved, opened during the plan) and victims
/// placed at random (any commune code, date and review).
struct Scenario {
    name: &'static str,
    seed: u64,
    /// Approved victims placed on purpose: (commune code, how many).
    placed: &'static [(&'static str, usize)],
    /// Victims placed at random (any review).
    random: usize,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "a few victims",
        seed: 1,
        placed: &[],
        random: 6,
    },
    Scenario {
        name: "some dozens, small counts everywhere",
        seed: 2,
        placed: &[],
        random: 40,
    },
    Scenario {
        name: "five or more in every district",
        seed: 3,
        placed: &[
            ("62.608.01", 6),
            ("62.610.01", 4),
            ("51.102", 3),
            ("62.610.03", 7),
            ("51.104", 5),
            ("62.612.01", 6),
            ("62.613.01", 2),
            ("62.613.02", 6),
            ("62.614.01", 6),
            ("51.109", 5),
            ("62.616.01", 5),
            ("62.616.02", 5),
            ("62.617.01", 6),
            ("62.618.02", 7),
        ],
        random: 12,
    },
    Scenario {
        name: "many, mostly in two communes",
        seed: 4,
        placed: &[("62.610.01", 14), ("51.107", 11)],
        random: 25,
    },
];

/// A day in 2020–2026, now and then right at the end of a quarter or the day after.
fn opened(rng: &mut Rng) -> String {
    let year = 2020 + rng.below(7);
    if rng.chance(30) {
        let (m, d) = *rng.pick(&[(3, 31), (6, 30), (9, 30), (12, 31)]);
        if rng.chance(50) {
            return format!("{year}-{m:02}-{d:02}");
        }
        return if m == 12 {
            format!("{}-01-01", year + 1)
        } else {
            format!("{year}-{:02}-01", m + 1)
        };
    }
    format!("{year}-{:02}-{:02}", 1 + rng.below(12), 1 + rng.below(28))
}

fn plant(s: &Scenario) -> Planted {
    let mut rng = Rng::new(s.seed);
    let mut p = Planted {
        households: 1,
        ..Planted::default()
    };
    let mut counter = 0u64;
    let mut id = |rng: &mut Rng| {
        counter += 1;
        rng.uuid_v7(counter)
    };
    let places: Vec<(&str, bool)> = s
        .placed
        .iter()
        .flat_map(|(c, n)| std::iter::repeat_n((*c, true), *n))
        .chain((0..s.random).map(|_| ("", false)))
        .collect();
    for (commune, placed) in places {
        let commune: &'static str = if placed {
            OLD.iter()
                .chain(["51.102", "51.104", "51.109"].iter())
                .find(|c| **c == commune)
                .copied()
                .unwrap()
        } else if rng.chance(30) {
            NEW[rng.below(NEW.len())]
        } else {
            OLD[rng.below(OLD.len())]
        };
        let female = rng.chance(80);
        let ethnicity = *rng.pick(&["01", "14", "14", "13", "27", "19", "10"]);
        let year = 1945 + rng.below(70);
        let birth = if rng.chance(40) {
            year.to_string()
        } else {
            format!("{year}-{:02}-{:02}", 1 + rng.below(12), 1 + rng.below(28))
        };
        let person_review = if placed || rng.chance(85) {
            Review::Approved
        } else {
            *rng.pick(&[Review::Pending, Review::Changed])
        };
        let person = Person {
            id: id(&mut rng),
            household: 0,
            commune,
            female,
            ethnicity,
            birth,
            review: person_review,
            deleted: false,
            duplicate_of: None,
            finance: None,
            livelihood: None,
            cadre: None,
        };
        let kept = p.persons.len();
        p.persons.push(person);
        // Registered twice now and then: the case may name the duplicate.
        let mut named = p.persons[kept].id;
        if rng.chance(15) {
            let mut copy = p.persons[kept].clone();
            copy.id = id(&mut rng);
            copy.duplicate_of = Some(kept);
            copy.female = !copy.female;
            named = copy.id;
            p.persons.push(copy);
        }
        let (review, deleted) = if placed {
            (Review::Approved, false)
        } else {
            let review = match rng.below(100) {
                0..=74 => Review::Approved,
                75..=84 => Review::Pending,
                85..=92 => Review::Changed,
                _ => Review::Returned,
            };
            (review, rng.chance(5))
        };
        let opened = if placed {
            format!(
                "{}-{:02}-{:02}",
                2021 + rng.below(5),
                1 + rng.below(12),
                1 + rng.below(28)
            )
        } else {
            opened(&mut rng)
        };
        p.cases.push(Case {
            id: id(&mut rng),
            commune,
            person: named,
            opened,
            review,
            deleted,
        });
    }
    p
}

/// The plan's communes of today, in the report's order.
fn plan_communes() -> Vec<String> {
    Plan::from_toml(PLAN).unwrap().communes.clone()
}

/// The victims as the rules count them (docs/indicators.md §2, 15), from what was planted.
fn victims(p: &Planted, communes: &[String]) -> (Vec<Victim>, BTreeMap<Uuid, usize>) {
    let areas = Areas::bundled();
    let by_id: BTreeMap<Uuid, usize> = p
        .persons
        .iter()
        .enumerate()
        .map(|(i, x)| (x.id, i))
        .collect();
    let mut out = Vec::new();
    let mut case_of = BTreeMap::new();
    for c in &p.cases {
        let i = by_id[&c.person];
        let kept = p.persons[i].duplicate_of.unwrap_or(i);
        let person = &p.persons[kept];
        let opened = day(&c.opened);
        if c.deleted || opened < START {
            continue;
        }
        let leaf = communes
            .iter()
            .position(|x| x == areas.current(c.commune))
            .unwrap();
        let approved = c.review == Review::Approved && person.review == Review::Approved;
        case_of.insert(c.id, out.len());
        out.push(Victim {
            leaf,
            opened,
            approved,
            sex: if person.female { "female" } else { "male" }.into(),
            ethnicity: Some(person.ethnicity.into()),
            birth: Some(person.birth.clone()),
        });
    }
    (out, case_of)
}

/// Today's communes of each old district, and of the province.
struct Tree {
    communes: Vec<String>,
    districts: BTreeMap<String, Vec<usize>>,
}

impl Tree {
    fn new(communes: Vec<String>) -> Tree {
        let areas = Areas::bundled();
        let mut districts: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for c in areas.communes() {
            if let Some(d) = areas.ancestor(&c.code, AreaLevel::District) {
                if let Some(i) = communes.iter().position(|x| x == areas.current(&c.code)) {
                    let v = districts.entry(d.code.clone()).or_default();
                    if !v.contains(&i) {
                        v.push(i);
                        v.sort();
                    }
                }
            }
        }
        Tree {
            communes,
            districts,
        }
    }

    fn all(&self) -> Vec<usize> {
        (0..self.communes.len()).collect()
    }

    /// Every area the audit protects: the province, each district, each commune.
    fn areas(&self) -> Vec<Vec<usize>> {
        let mut out: BTreeSet<Vec<usize>> = BTreeSet::new();
        out.insert(self.all());
        out.extend(self.districts.values().cloned());
        out.extend((0..self.communes.len()).map(|i| vec![i]));
        out.into_iter().collect()
    }

    /// Wholes and their parts: the province by district and by commune, each district by
    /// commune.
    fn partitions(&self) -> Vec<(Vec<usize>, Vec<Vec<usize>>)> {
        let singles: Vec<Vec<usize>> = (0..self.communes.len()).map(|i| vec![i]).collect();
        let mut out = vec![
            (self.all(), singles.clone()),
            (self.all(), self.districts.values().cloned().collect()),
        ];
        for d in self.districts.values() {
            out.push((d.clone(), d.iter().map(|i| vec![*i]).collect()));
        }
        out
    }

    /// The parts a figure of `leaves` withheld for a small part stands among: the parts of its
    /// whole and of every whole above it (one of them has fewer than 5).
    fn siblings(&self, leaves: &[usize]) -> Vec<Vec<usize>> {
        let mut out: BTreeSet<Vec<usize>> = self.districts.values().cloned().collect();
        if leaves.len() == 1 {
            if let Some(d) = self
                .districts
                .values()
                .find(|d| d.len() > 1 && d.contains(&leaves[0]))
            {
                out.extend(d.iter().map(|i| vec![*i]));
            }
        }
        out.into_iter().collect()
    }
}

struct Server {
    state: AppState,
    tokens: Vec<Caller>,
    _dir: tempfile::TempDir,
}

struct Caller {
    name: &'static str,
    token: String,
    sensitive: bool,
}

fn server(p: &Planted, seed: u64) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(SqliteStorage::open(dir.path().join("server.sqlite")).unwrap());
    write(storage.as_ref(), p, seed, 500);
    let mut callers: Vec<(&'static str, Vec<&str>, bool)> = vec![
        ("tinh", vec!["62"], true),
        ("tinh.thuong", vec!["62"], false),
        ("xa.ngoclinh", vec!["51.102"], true),
        ("xa.mangden.cu", vec!["62.613.02"], true),
        ("xa.morai", vec!["51.110"], true),
        ("hai.huyen", vec!["62.610", "62.613"], true),
    ];
    let names: [&'static str; 10] = [
        "huyen.608",
        "huyen.610",
        "huyen.611",
        "huyen.612",
        "huyen.613",
        "huyen.614",
        "huyen.615",
        "huyen.616",
        "huyen.617",
        "huyen.618",
    ];
    for (d, name) in DISTRICTS.iter().zip(names) {
        callers.push((name, vec![d], true));
    }
    let mut tokens = Vec::new();
    for (name, areas, sensitive) in callers {
        accounts::create_user(
            storage.as_ref(),
            Authority::Operator,
            &NewUser {
                username: name.into(),
                password: PASSWORD.into(),
                role: Role::Supervisor,
                sensitive_access: sensitive,
                areas: areas.iter().map(|a| (*a).to_owned()).collect(),
                can_grant_sensitive: false,
                full_name: None,
                phone: None,
            },
        )
        .unwrap();
        let (_, token, _) = accounts::enrol(storage.as_ref(), name, PASSWORD, "t", None).unwrap();
        tokens.push(Caller {
            name,
            token,
            sensitive,
        });
    }
    let state = AppState::new(storage, None, Timeouts::default())
        .unwrap()
        .with_plan(Plan::from_toml(PLAN).unwrap());
    Server {
        state,
        tokens,
        _dir: dir,
    }
}

async fn get(s: &Server, token: &str, path: &str) -> (u16, Json) {
    let response = warp::test::request()
        .method("GET")
        .path(path)
        .header("authorization", format!("Bearer {token}"))
        .reply(&routes(s.state.clone()))
        .await;
    let status = response.status().as_u16();
    let body = serde_json::from_slice(response.body()).unwrap_or(Json::Null);
    (status, body)
}

/// Every `as_of` the sweep asks for: each day from two before to two after the end of every
/// quarter of 2020–2026, and the 15th of every month.
fn dates() -> Vec<Day> {
    let mut out = BTreeSet::new();
    for year in 2020..=2026u32 {
        for (m, d) in [(3, 31), (6, 30), (9, 30), (12, 31)] {
            let end = year * 10_000 + m * 100 + d;
            let next = if m == 12 {
                (year + 1) * 10_000 + 101
            } else {
                year * 10_000 + (m + 1) * 100 + 1
            };
            out.extend([end - 2, end - 1, end, next, next + 1]);
        }
        for m in 1..=12 {
            out.insert(year * 10_000 + m * 100 + 15);
        }
    }
    out.into_iter().collect()
}

/// A figure as published: a number, "<5", a band "a–b", or withheld (`None`). A figure that
/// carries no date of its own follows the rule before bands (zero shown as 0, "<5" for 1 to 4
/// or for a larger count hidden beside it): there "<5" says "at least one".
fn range(v: &Json, dated: bool) -> Option<Range> {
    match v {
        Json::Null => None,
        Json::Number(n) => Some(Range::exact(n.as_u64().unwrap())),
        Json::String(s) if s == "<5" && !dated => Some(Range { lo: 1, hi: INF }),
        Json::String(s) if s == "<5" => Some(Range { lo: 0, hi: 4 }),
        Json::String(s) => {
            let (a, b) = s
                .split_once('–')
                .unwrap_or_else(|| panic!("not a figure: {s}"));
            Some(Range {
                lo: a.parse().unwrap(),
                hi: b.parse().unwrap(),
            })
        }
        other => panic!("not a figure: {other}"),
    }
}

/// The communes (positions) a row of the report adds up.
fn leaves_of(tree: &Tree, area: &Json) -> Vec<usize> {
    let codes: Vec<String> = if area["level"] == "commune" {
        vec![area["code"].as_str().unwrap().to_owned()]
    } else {
        area["communes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_owned())
            .collect()
    };
    let mut out: Vec<usize> = codes
        .iter()
        .map(|c| tree.communes.iter().position(|x| x == c).unwrap())
        .collect();
    out.sort();
    out
}

/// Reads every victim figure of one report into `published`.
fn read_report(published: &mut Published, tree: &Tree, report: &Json, whence: &str) {
    let as_of = day(report["as_of"].as_str().unwrap());
    let all_submitted = report["all_submitted"].as_bool().unwrap();
    for area in report["areas"].as_array().unwrap() {
        let Some(cell) = area["results"].get("victims_supported") else {
            continue;
        };
        let leaves = leaves_of(tree, area);
        let whence = format!("{whence}, row {}", area["code"]);
        // Today's reports date every figure at `as_of` with the report's review rule; a victim
        // figure that says otherwise carries its own date and rule.
        let own = |share: &Json, default: Day| -> (Day, bool) {
            (
                share
                    .get("as_of")
                    .and_then(Json::as_str)
                    .map_or(default, day),
                match share.get("approved_only").and_then(Json::as_bool) {
                    Some(only) => !only,
                    None => all_submitted,
                },
            )
        };
        let (to, all) = own(cell, as_of);
        let dated = cell.get("as_of").is_some();
        let pred = |to: Day, all: bool, cat: Option<Cat>| Pred {
            leaves: leaves.clone(),
            to,
            all,
            cat,
        };
        if !dated && cell["value"] == "<5" {
            published
                .literal
                .push((pred(to, all, None), Range { lo: 0, hi: 4 }, whence.clone()));
        }
        match range(&cell["value"], dated) {
            Some(r) => published.claim(pred(to, all, None), r, &whence),
            None => {
                if cell["withheld"] == "partition" {
                    let alt: Vec<Pred> = tree
                        .siblings(&leaves)
                        .into_iter()
                        .map(|s| Pred {
                            leaves: s,
                            to,
                            all,
                            cat: None,
                        })
                        .collect();
                    published.alts.insert(alt);
                }
            }
        }
        if let Some(years) = cell.get("by_year").and_then(Json::as_object) {
            for (y, share) in years {
                let year: u32 = y.parse().unwrap();
                let (to, all) = own(share, (year * 10_000 + 1231).min(as_of));
                if let Some(r) = range(&share["value"], dated) {
                    published.claim(pred(to, all, None), r, &format!("{whence}, year {y}"));
                }
            }
        }
        if let Some(b) = cell.get("breakdown").filter(|b| !b.is_null()) {
            let (bto, ball) = own(b, to);
            for (key, dim) in [
                ("sex", Dim::Sex),
                ("age", Dim::Age(bto)),
                ("ethnicity", Dim::Ethnicity),
            ] {
                let Some(groups) = b[key].as_object() else {
                    continue;
                };
                // Today's breakdowns list every group with someone in it.
                if b.get("as_of").is_none() {
                    published
                        .complete
                        .insert((leaves.clone(), bto, ball, dim.clone()));
                }
                let mut withheld = Vec::new();
                for (k, share) in groups {
                    let cat = Cat {
                        dim: dim.clone(),
                        key: k.clone(),
                    };
                    if !dated && share["value"] == "<5" {
                        published.literal.push((
                            pred(bto, ball, Some(cat.clone())),
                            Range { lo: 0, hi: 4 },
                            format!("{whence}, {key} {k}"),
                        ));
                    }
                    match range(&share["value"], dated) {
                        Some(r) => published.claim(
                            pred(bto, ball, Some(cat)),
                            r,
                            &format!("{whence}, {key} {k}"),
                        ),
                        None => withheld.push(pred(bto, ball, Some(cat))),
                    }
                }
                if groups.values().any(|g| g["withheld"] == "partition") {
                    published.alts.insert(withheld);
                }
            }
        }
    }
}

/// Drill-downs: a listing of victims must list exactly the cases counted, and only where the
/// area's figure and the figure of every commune it lists cases of are published (at least 5)
/// at the listing's date: a listing shows each case's commune.
#[allow(clippy::too_many_arguments)]
fn check_listing(
    published: &mut Published,
    tree: &Tree,
    leaves: &[usize],
    listing: &Json,
    (to, all): (Day, bool),
    want: &BTreeSet<Uuid>,
    case_leaf: &BTreeMap<Uuid, usize>,
    whence: &str,
) {
    let listed: BTreeSet<Uuid> = listing["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| Uuid::parse_str(r["id"].as_str().unwrap()).unwrap())
        .collect();
    if &listed != want || listing["total"].as_u64() != Some(want.len() as u64) {
        published.findings.push(Finding {
            kind: Kind::Wrong,
            text: format!(
                "{whence}: lists {} cases, counts {}",
                listed.len(),
                want.len()
            ),
        });
    }
    let shown = |leaves: Vec<usize>| {
        published
            .claims
            .get(&Pred {
                leaves,
                to,
                all,
                cat: None,
            })
            .is_some_and(|r| r.lo >= 5)
    };
    let mut per_leaf: BTreeMap<usize, usize> = BTreeMap::new();
    for id in &listed {
        if let Some(leaf) = case_leaf.get(id) {
            *per_leaf.entry(*leaf).or_default() += 1;
        }
    }
    let beyond: Vec<String> = per_leaf
        .iter()
        .filter(|(leaf, _)| !shown(vec![**leaf]))
        .map(|(leaf, n)| format!("{} ({n})", tree.communes[*leaf]))
        .collect();
    if !beyond.is_empty() || (!listed.is_empty() && !shown(leaves.to_vec())) {
        published.findings.push(Finding {
            kind: Kind::Listing,
            text: format!(
                "{whence}: lists {} cases; communes whose figure is not published: {beyond:?}",
                listed.len()
            ),
        });
    }
}

struct Audit {
    findings: Vec<Finding>,
    reports: usize,
    listings: usize,
    /// Drill-downs answered with cases, and figures of a district or commune published.
    listed: usize,
    parts: usize,
    exact: Option<disclosure::Stats>,
}

async fn audit(s: &Scenario) -> Audit {
    let planted = plant(s);
    let communes = plan_communes();
    let tree = Tree::new(communes.clone());
    let (victims, case_index) = victims(&planted, &communes);
    let case_leaf: BTreeMap<Uuid, usize> = case_index
        .iter()
        .map(|(id, i)| (*id, victims[*i].leaf))
        .collect();
    let server = server(&planted, s.seed);
    let mut published = Published::default();
    let mut reports = 0;
    let mut listings = 0;
    let mut listed = 0;
    let dates = dates();
    // The province's supervisor on every day of the sweep; the others at the end of each
    // quarter and the days around it.
    let near_ends: Vec<Day> = dates
        .iter()
        .copied()
        .filter(|d| ![15, 29, 2].contains(&(d % 100)))
        .collect();
    for caller in &server.tokens {
        let asked = if caller.name == "tinh" {
            &dates
        } else {
            &near_ends
        };
        for as_of in asked {
            for all in [false, true] {
                let path = format!(
                    "/v1/indicators?as_of={}{}",
                    text(*as_of),
                    if all { "&all_submitted=true" } else { "" }
                );
                let (status, report) = get(&server, &caller.token, &path).await;
                assert_eq!(status, 200, "{path}");
                reports += 1;
                if !caller.sensitive {
                    assert!(
                        report["areas"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .all(|a| a["results"].get("victims_supported").is_none()),
                        "{}: victim figures without sensitive access",
                        caller.name
                    );
                    continue;
                }
                read_report(
                    &mut published,
                    &tree,
                    &report,
                    &format!("{} {path}", caller.name),
                );
            }
        }
    }
    // Drill-downs at the end of every quarter and the day after the plan's, approved and
    // preview: every row of the province's supervisor, each other supervisor's whole area.
    let listing_dates: Vec<Day> = dates
        .iter()
        .copied()
        .filter(|d| [331, 630, 930, 1231].contains(&(d % 10_000)) || *d == 20260101)
        .collect();
    for caller in server.tokens.iter().filter(|c| c.sensitive) {
        let (_, report) = get(&server, &caller.token, "/v1/indicators").await;
        let rows = report["areas"].as_array().unwrap();
        let rows = if caller.name == "tinh" {
            &rows[..]
        } else {
            &rows[..1]
        };
        for area in rows {
            let code = area["code"].as_str().unwrap();
            for as_of in &listing_dates {
                for all in [false, true] {
                    let path = format!(
                        "/v1/indicators/victims_supported/records?area={code}&as_of={}&limit=500{}",
                        text(*as_of),
                        if all { "&all_submitted=true" } else { "" }
                    );
                    let (status, listing) = get(&server, &caller.token, &path).await;
                    listings += 1;
                    match status {
                        200 => {
                            listed += usize::from(listing["total"].as_u64() > Some(0));
                            let leaves = leaves_of(&tree, area);
                            let to = listing
                                .get("as_of")
                                .and_then(Json::as_str)
                                .map_or(*as_of, day);
                            let all_counted =
                                match listing.get("approved_only").and_then(Json::as_bool) {
                                    Some(only) => !only,
                                    None => all,
                                };
                            let want: BTreeSet<Uuid> = case_index
                                .iter()
                                .filter(|(_, i)| {
                                    let v = &victims[**i];
                                    leaves.contains(&v.leaf)
                                        && v.opened <= to
                                        && (all_counted || v.approved)
                                })
                                .map(|(id, _)| *id)
                                .collect();
                            check_listing(
                                &mut published,
                                &tree,
                                &leaves,
                                &listing,
                                (to, all_counted),
                                &want,
                                &case_leaf,
                                &format!("{} {path}", caller.name),
                            );
                        }
                        403 => {}
                        other => panic!("{path}: {other} {listing}"),
                    }
                }
            }
        }
    }
    published.check_truth(&victims);
    published.pairs(&victims, &tree.partitions());
    let exact = match disclosure::exact(&published, &victims, &tree.areas(), communes.len(), START)
    {
        Ok((findings, stats)) => {
            published.findings.extend(findings);
            Some(stats)
        }
        Err(why) => {
            // Figures of more kinds than the rule publishes: the argument of docs/indicators.md
            // §3 does not cover them, and the exact attacker cannot model them.
            published.findings.push(Finding {
                kind: Kind::Unmodelled,
                text: why.0,
            });
            None
        }
    };
    let parts = published
        .claims
        .iter()
        .filter(|(p, r)| p.leaves.len() < communes.len() && r.lo >= 5)
        .count();
    Audit {
        findings: published.findings,
        reports,
        listings,
        listed,
        parts,
        exact,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_published_figure_or_combination_of_them_names_fewer_than_five_victims() {
    let mut failures = Vec::new();
    for s in SCENARIOS {
        let started = std::time::Instant::now();
        let a = audit(s).await;
        let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
        for f in &a.findings {
            *by_kind.entry(format!("{:?}", f.kind)).or_default() += 1;
        }
        println!(
            "{}: {} reports, {} drill-downs ({} with cases), {} figures of parts, exact attacker {:?}, {} findings {by_kind:?} ({:.1} s)",
            s.name,
            a.reports,
            a.listings,
            a.listed,
            a.parts,
            a.exact,
            a.findings.len(),
            started.elapsed().as_secs_f64()
        );
        let mut shown: BTreeMap<String, usize> = BTreeMap::new();
        for f in &a.findings {
            let n = shown.entry(format!("{:?}", f.kind)).or_default();
            *n += 1;
            if *n <= 3 {
                println!("  {:?}: {}", f.kind, f.text);
            }
        }
        if !a.findings.is_empty() {
            failures.push(format!("{}: {} findings", s.name, a.findings.len()));
        }
        // The exact attacker must have had something to work on; where every district has
        // five or more, parts are published and their cases listed.
        if a.exact.is_some_and(|e| e.checked == 0) {
            failures.push(format!("{}: no set of 1–4 victims examined", s.name));
        }
        if !s.placed.is_empty() && s.random < 20 && (a.parts == 0 || a.listed == 0) {
            failures.push(format!("{}: nothing published below the province", s.name));
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
}
