//! Generated Project 8 data for the indicator tests and benchmark, written straight into a
//! server storage (one change per record, reviews and deletions included), together with the
//! plain facts the test counts from on its own: what was planted where, approved or not,
//! deleted, or a duplicate merged into another person.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ROOT};
use fieldsync_core::generator::{person_name, Rng};
use fieldsync_core::model::{validate_new_record, RecordType, Value};
use fieldsync_server::storage::prelude::*;
use std::collections::BTreeMap;
use uuid::Uuid;

/// The device the planted records are written by.
pub const PLANTER: Uuid = Uuid::from_u128(0x0000_0000_0000_7000_8000_0000_91a7_0001);

/// Ten communes: old codes of four old districts and two of today's, so that old and new
/// records meet in the same commune of today (Ngọc Linh 51.102 = 62.610.01 + 62.610.02, Xốp
/// 51.103 = 62.610.03 + 62.610.04, Măng Đen 51.107 = 62.613.02 + records made as 51.107).
pub const COMMUNES: [&str; 10] = [
    "62.610.01",
    "62.610.02",
    "62.610.03",
    "62.610.04",
    "62.611.01",
    "62.613.01",
    "62.613.02",
    "51.107",
    "62.616.01",
    "62.618.01",
];

/// Today's commune of each of [`COMMUNES`] (the sample crosswalk, written out by hand).
pub fn today(commune: &str) -> &'static str {
    match commune {
        "62.610.01" | "62.610.02" | "51.102" => "51.102",
        "62.610.03" | "62.610.04" | "51.103" => "51.103",
        "62.611.01" | "51.104" => "51.104",
        "62.613.01" | "51.106" => "51.106",
        "62.613.02" | "62.613.03" | "51.107" => "51.107",
        "62.616.01" | "51.110" => "51.110",
        "62.618.01" | "62.618.02" | "51.113" => "51.113",
        other => panic!("no crosswalk for {other} in the test"),
    }
}

/// Where a record stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Review {
    Approved,
    Pending,
    Returned,
    /// Approved, then edited.
    Changed,
}

#[derive(Clone, Debug)]
pub struct Person {
    pub id: Uuid,
    /// Position of the household (the records' own order).
    pub household: usize,
    pub commune: &'static str,
    pub female: bool,
    pub ethnicity: &'static str,
    pub birth: String,
    pub review: Review,
    pub deleted: bool,
    /// A duplicate, merged into this person (by index).
    pub duplicate_of: Option<usize>,
    pub finance: Option<String>,
    pub livelihood: Option<String>,
    pub cadre: Option<&'static str>,
}

#[derive(Clone, Debug)]
pub struct Group {
    pub id: Uuid,
    pub commune: &'static str,
    pub kind: &'static str,
    pub established: Option<String>,
    pub gals: bool,
    pub gals_since: Option<String>,
    pub women_led: bool,
    pub digital: bool,
    pub technology_since: Option<String>,
    pub trusted_status: Option<&'static str>,
    pub phase: Option<&'static str>,
    /// Person ids as written (a duplicate's id, sometimes).
    pub members: Vec<Uuid>,
    pub review: Review,
    pub deleted: bool,
}

#[derive(Clone, Debug)]
pub struct Activity {
    pub id: Uuid,
    pub commune: &'static str,
    pub kind: &'static str,
    pub date: String,
    pub counselling_topic: Option<&'static str>,
    pub attendees: Vec<Uuid>,
    pub review: Review,
    pub deleted: bool,
}

#[derive(Clone, Debug)]
pub struct Case {
    pub id: Uuid,
    pub commune: &'static str,
    pub person: Uuid,
    pub opened: String,
    pub review: Review,
    pub deleted: bool,
}

/// Everything planted.
#[derive(Default)]
pub struct Planted {
    pub households: usize,
    pub persons: Vec<Person>,
    pub groups: Vec<Group>,
    pub activities: Vec<Activity>,
    pub cases: Vec<Case>,
}

/// How much to plant.
pub struct Size {
    pub households: usize,
    pub persons_per_household: usize,
    pub duplicates: usize,
    pub groups_per_commune: usize,
    pub activities: usize,
    /// Support cases per commune, in [`COMMUNES`] order: some below five on purpose.
    pub cases: [usize; 10],
}

impl Size {
    /// The scale: 10 communes, 5,000 households, 20,000 people, 2,000 activities.
    pub fn test() -> Size {
        Size {
            households: 5_000,
            persons_per_household: 4,
            duplicates: 400,
            groups_per_commune: 80,
            activities: 2_000,
            cases: [0, 2, 7, 12, 3, 9, 0, 15, 6, 1],
        }
    }
}

const ETHNICITIES: &[(&str, u64)] = &[
    ("01", 20),
    ("14", 32),
    ("13", 18),
    ("27", 12),
    ("10", 8),
    ("19", 4),
    ("54", 3),
    ("52", 3),
];

fn weighted(rng: &mut Rng, items: &[(&'static str, u64)]) -> &'static str {
    let total: u64 = items.iter().map(|(_, w)| w).sum();
    let mut roll = rng.next_u64() % total;
    for (item, w) in items {
        if roll < *w {
            return item;
        }
        roll -= w;
    }
    items[0].0
}

/// A date from mid-2019 to mid-2026: some before the plan, some after it.
fn date(rng: &mut Rng) -> String {
    format!(
        "{}-{:02}-{:02}",
        2019 + rng.below(8),
        1 + rng.below(12),
        1 + rng.below(28)
    )
}

fn review(rng: &mut Rng) -> (Review, bool) {
    let review = match rng.below(100) {
        0..=83 => Review::Approved,
        84..=89 => Review::Pending,
        90..=94 => Review::Changed,
        _ => Review::Returned,
    };
    (review, rng.chance(3))
}

/// Plants a dataset (deterministic for a seed).
pub fn plant(seed: u64, size: &Size) -> Planted {
    let mut rng = Rng::new(seed);
    let mut p = Planted {
        households: size.households,
        ..Planted::default()
    };
    let mut counter = 0u64;
    let mut id = |rng: &mut Rng| {
        counter += 1;
        rng.uuid_v7(counter)
    };
    let mut by_commune: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for h in 0..size.households {
        let commune = COMMUNES[h % COMMUNES.len()];
        let ethnicity = weighted(&mut rng, ETHNICITIES);
        for m in 0..size.persons_per_household {
            let female = if m == 0 {
                rng.chance(60)
            } else {
                rng.chance(75)
            };
            let year = 1940 + rng.below(82);
            let birth = if rng.chance(40) {
                year.to_string()
            } else {
                format!("{year}-{:02}-{:02}", 1 + rng.below(12), 1 + rng.below(28))
            };
            let (review, deleted) = review(&mut rng);
            let finance = rng.chance(25).then(|| date(&mut rng));
            let livelihood = rng.chance(20).then(|| date(&mut rng));
            let cadre = (female && ethnicity != "01" && rng.chance(6)).then(|| {
                *["in_leadership_plan", "newly_appointed", "newly_elected"]
                    .get(rng.below(3))
                    .unwrap()
            });
            by_commune.entry(commune).or_default().push(p.persons.len());
            p.persons.push(Person {
                id: id(&mut rng),
                household: h,
                commune,
                female,
                ethnicity,
                birth,
                review,
                deleted,
                duplicate_of: None,
                finance,
                livelihood,
                cadre,
            });
        }
    }
    // Duplicates: a second record of someone, merged into the first (a few into a duplicate,
    // so that merges chain), with values of its own that must not count.
    for d in 0..size.duplicates {
        let of = if d % 20 == 19 {
            p.persons.len() - 1
        } else {
            rng.below(size.households * size.persons_per_household)
        };
        let mut copy = p.persons[of].clone();
        copy.id = id(&mut rng);
        copy.duplicate_of = Some(of);
        copy.review = Review::Approved;
        copy.deleted = false;
        copy.finance = Some("2022-02-02".into());
        copy.cadre = Some("newly_elected");
        p.persons.push(copy);
    }
    let people_of = |commune: &str| by_commune.get(commune).cloned().unwrap_or_default();
    // A person's id as a collector would write it: now and then the id of one of their
    // duplicates instead.
    let duplicates_of: BTreeMap<usize, Vec<usize>> = p
        .persons
        .iter()
        .enumerate()
        .filter_map(|(i, x)| x.duplicate_of.map(|of| (of, i)))
        .fold(BTreeMap::new(), |mut m, (of, i)| {
            m.entry(of).or_insert_with(Vec::new).push(i);
            m
        });
    let written = |rng: &mut Rng, persons: &[Person], i: usize| -> Vec<Uuid> {
        match duplicates_of.get(&i) {
            Some(dups) if rng.chance(60) => {
                let d = dups[rng.below(dups.len())];
                if rng.chance(50) {
                    vec![persons[d].id, persons[i].id]
                } else {
                    vec![persons[d].id]
                }
            }
            _ => vec![persons[i].id],
        }
    };

    const KINDS: &[(&str, u64)] = &[
        ("communication_team", 30),
        ("savings_loan_group", 14),
        ("livelihood_group", 8),
        ("cooperative", 4),
        ("trusted_address", 24),
        ("children_club", 10),
        ("victim_livelihood_model", 6),
        ("undated_team", 4),
    ];
    for commune in COMMUNES {
        let pool = people_of(commune);
        for _ in 0..size.groups_per_commune {
            let kind = weighted(&mut rng, KINDS);
            let (kind, established) = if kind == "undated_team" {
                ("communication_team", None)
            } else {
                (kind, Some(date(&mut rng)))
            };
            let (review, deleted) = review(&mut rng);
            let mut g = Group {
                id: id(&mut rng),
                commune,
                kind,
                established,
                gals: false,
                gals_since: None,
                women_led: false,
                digital: false,
                technology_since: None,
                trusted_status: None,
                phase: None,
                members: Vec::new(),
                review,
                deleted,
            };
            match kind {
                "savings_loan_group" => {
                    g.gals = rng.chance(60);
                    if g.gals && rng.chance(40) {
                        g.gals_since = Some(date(&mut rng));
                    }
                    for _ in 0..10 + rng.below(15) {
                        let i = pool[rng.below(pool.len())];
                        g.members.extend(written(&mut rng, &p.persons, i));
                    }
                }
                "livelihood_group" | "cooperative" => {
                    g.women_led = rng.chance(70);
                    g.digital = rng.chance(60);
                    if g.digital && rng.chance(40) {
                        g.technology_since = Some(date(&mut rng));
                    }
                }
                "trusted_address" => {
                    g.trusted_status = match rng.below(10) {
                        0 => None,
                        1..=7 => Some("existing"),
                        _ => Some("new"),
                    };
                }
                "victim_livelihood_model" => {
                    g.phase = Some(if rng.chance(50) {
                        "pilot"
                    } else {
                        "replicated"
                    });
                }
                _ => {}
            }
            p.groups.push(g);
        }
    }

    for a in 0..size.activities {
        let commune = COMMUNES[a % COMMUNES.len()];
        let pool = people_of(commune);
        let kind = weighted(
            &mut rng,
            &[
                ("policy_dialogue", 25),
                ("safe_motherhood", 35),
                ("counselling_other", 5),
                ("leadership_training", 10),
                ("meeting", 25),
            ],
        );
        let (kind, topic) = match kind {
            "safe_motherhood" => (
                "counselling",
                Some(
                    *["antenatal", "safe_delivery", "postnatal", "child_health"]
                        .get(rng.below(4))
                        .unwrap(),
                ),
            ),
            "counselling_other" => ("counselling", Some("gender_equality")),
            k => (k, None),
        };
        let mut attendees = Vec::new();
        if kind != "policy_dialogue" {
            for _ in 0..8 + rng.below(20) {
                let i = pool[rng.below(pool.len())];
                attendees.extend(written(&mut rng, &p.persons, i));
            }
        }
        let (review, deleted) = review(&mut rng);
        p.activities.push(Activity {
            id: id(&mut rng),
            commune,
            kind,
            date: date(&mut rng),
            counselling_topic: topic,
            attendees,
            review,
            deleted,
        });
    }

    for (c, n) in size.cases.iter().enumerate() {
        let commune = COMMUNES[c];
        let pool = people_of(commune);
        for _ in 0..*n {
            let i = pool[rng.below(pool.len())];
            let person = written(&mut rng, &p.persons, i)[0];
            // Mostly approved: the small counts must be there to be hidden.
            let review = if rng.chance(90) {
                Review::Approved
            } else {
                Review::Pending
            };
            p.cases.push(Case {
                id: id(&mut rng),
                commune,
                person,
                opened: format!("{}-{:02}-15", 2021 + rng.below(4), 1 + rng.below(12)),
                review,
                deleted: false,
            });
        }
    }
    p
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

/// One record as a creation change, plus a later edit when it was changed since approval.
#[allow(clippy::too_many_arguments)]
fn changes(
    id: Uuid,
    record_type: RecordType,
    fields: BTreeMap<String, Value>,
    sets: &[(&str, Uuid)],
    review: Review,
    deleted: bool,
    merged_into: Option<Uuid>,
    edit: (&str, &str),
) -> Vec<Vec<u8>> {
    assert_eq!(
        validate_new_record(record_type, &fields),
        vec![],
        "{record_type}"
    );
    let mut doc = AutoCommit::new().with_actor(ActorId::from(PLANTER.as_bytes()));
    doc.put(ROOT, "$id", id.to_string()).unwrap();
    doc.put(ROOT, "$type", record_type.as_str()).unwrap();
    doc.put(ROOT, "$schema", 2_i64).unwrap();
    doc.put(ROOT, "$deleted", deleted).unwrap();
    for (k, v) in &fields {
        let key = format!("f/{k}");
        match v {
            Value::Text(t) => doc.put(ROOT, key, t.as_str()).unwrap(),
            Value::Bool(b) => doc.put(ROOT, key, *b).unwrap(),
            Value::Int(i) => doc.put(ROOT, key, *i).unwrap(),
        }
    }
    for (field, member) in sets {
        doc.put(ROOT, format!("s/{field}/{member}"), true).unwrap();
    }
    if let Some(to) = merged_into {
        doc.put(ROOT, "$merged_into", to.to_string()).unwrap();
    }
    match review {
        Review::Approved | Review::Changed => doc.put(ROOT, "$review", "approved").unwrap(),
        Review::Returned => doc.put(ROOT, "$review", "returned").unwrap(),
        Review::Pending => {}
    }
    let mut out = Vec::new();
    let hash = doc.commit().unwrap();
    out.push(doc.get_change_by_hash(&hash).unwrap().raw_bytes().to_vec());
    if review == Review::Changed {
        doc.put(ROOT, format!("f/{}", edit.0), edit.1).unwrap();
        let hash = doc.commit().unwrap();
        out.push(doc.get_change_by_hash(&hash).unwrap().raw_bytes().to_vec());
    }
    out
}

fn fields(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// Writes everything planted into `storage`, `batch` records per ingest.
pub fn write(storage: &dyn Storage, p: &Planted, seed: u64, batch: usize) {
    let mut rng = Rng::new(seed ^ 0xface);
    let mut pending: Vec<(Uuid, Vec<u8>)> = Vec::new();
    let flush = |pending: &mut Vec<(Uuid, Vec<u8>)>, force: bool| {
        if force || pending.len() >= batch {
            storage.ingest_trusted(PLANTER, pending).unwrap();
            pending.clear();
        }
    };
    let households: Vec<Uuid> = (0..p.households)
        .map(|h| Uuid::from_u128(0x0196_0000_0000_7000_8000_0000_0000_0000 | h as u128))
        .collect();
    for (h, hid) in households.iter().enumerate() {
        let commune = COMMUNES[h % COMMUNES.len()];
        let f = fields(&[
            ("commune", text(commune)),
            ("head_name", text(&person_name(&mut rng, "14", true))),
            ("ethnicity", text("14")),
            ("poverty", text("poor")),
        ]);
        for c in changes(
            *hid,
            RecordType::Household,
            f,
            &[],
            Review::Approved,
            false,
            None,
            ("village", "Thôn 2"),
        ) {
            pending.push((*hid, c));
        }
        flush(&mut pending, false);
    }
    for x in &p.persons {
        let household = households[x.household];
        let mut f = vec![
            ("commune", text(x.commune)),
            ("household_id", text(&household.to_string())),
            (
                "full_name",
                text(&person_name(&mut rng, x.ethnicity, x.female)),
            ),
            ("sex", text(if x.female { "female" } else { "male" })),
            ("birth", text(&x.birth)),
            ("ethnicity", text(x.ethnicity)),
        ];
        if let Some(d) = &x.finance {
            f.push(("formal_finance_linked", text(d)));
        }
        if let Some(d) = &x.livelihood {
            f.push(("livelihood_supported", text(d)));
        }
        if let Some(c) = x.cadre {
            f.push(("cadre", text(c)));
        }
        let merged_into = x.duplicate_of.map(|of| p.persons[of].id);
        for c in changes(
            x.id,
            RecordType::Person,
            fields(&f),
            &[],
            x.review,
            x.deleted,
            merged_into,
            ("phone", "0912345678"),
        ) {
            pending.push((x.id, c));
        }
        flush(&mut pending, false);
    }
    for g in &p.groups {
        let mut f = vec![
            ("commune", text(g.commune)),
            ("kind", text(g.kind)),
            ("name", text(&format!("Nhóm {}", &g.id.to_string()[..8]))),
        ];
        if let Some(d) = &g.established {
            f.push(("established", text(d)));
        }
        if g.kind == "savings_loan_group" {
            f.push(("gals", Value::Bool(g.gals)));
        }
        if let Some(d) = &g.gals_since {
            f.push(("gals_since", text(d)));
        }
        if matches!(g.kind, "livelihood_group" | "cooperative") {
            f.push(("women_led", Value::Bool(g.women_led)));
            f.push(("uses_digital_technology", Value::Bool(g.digital)));
        }
        if let Some(d) = &g.technology_since {
            f.push(("technology_since", text(d)));
        }
        if let Some(s) = g.trusted_status {
            f.push(("trusted_address_status", text(s)));
        }
        if let Some(s) = g.phase {
            f.push(("model_phase", text(s)));
        }
        let sets: Vec<(&str, Uuid)> = g.members.iter().map(|m| ("members", *m)).collect();
        for c in changes(
            g.id,
            RecordType::Group,
            fields(&f),
            &sets,
            g.review,
            g.deleted,
            None,
            ("village", "Thôn 9"),
        ) {
            pending.push((g.id, c));
        }
        flush(&mut pending, false);
    }
    for a in &p.activities {
        let mut f = vec![
            ("commune", text(a.commune)),
            ("kind", text(a.kind)),
            ("date", text(&a.date)),
            ("topic", text("Sinh hoạt chuyên đề")),
        ];
        if let Some(t) = a.counselling_topic {
            f.push(("counselling_topic", text(t)));
        }
        if a.kind == "policy_dialogue" {
            f.push(("participants", Value::Int(90)));
        }
        let sets: Vec<(&str, Uuid)> = a.attendees.iter().map(|m| ("attendees", *m)).collect();
        for c in changes(
            a.id,
            RecordType::Activity,
            fields(&f),
            &sets,
            a.review,
            a.deleted,
            None,
            ("place", "Nhà văn hoá thôn"),
        ) {
            pending.push((a.id, c));
        }
        flush(&mut pending, false);
    }
    for x in &p.cases {
        let f = fields(&[
            ("commune", text(x.commune)),
            ("person_id", text(&x.person.to_string())),
            ("case_kind", text("domestic_violence")),
            ("opened", text(&x.opened)),
        ]);
        for c in changes(
            x.id,
            RecordType::SupportCase,
            f,
            &[],
            x.review,
            x.deleted,
            None,
            ("status", "closed"),
        ) {
            pending.push((x.id, c));
        }
        flush(&mut pending, false);
    }
    flush(&mut pending, true);
}
