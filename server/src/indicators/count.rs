//! Counting the indicators from the records' facts, as of a date, per commune of today.
//!
//! The rules (docs/indicators.md): a record counts if it is not deleted, not merged into
//! another, and approved (or, as a preview, whatever its review); people named by members,
//! attendees or a case are followed through merges to the person kept and counted once; dates
//! are the records' own (a group's founding, an activity's day, a case's opening), never when
//! they reached the server. Groups and activities count in the commune they belong to, people
//! in their own commune, victims in the commune of their first case. Only what the caller's
//! scope covers is counted.

use super::day::{Birth, Day};
use super::definitions::Indicator;
use super::facts::Fact;
use super::targets::Plan;
use crate::scope::Scope;
use fieldsync_core::model::Areas;
use fieldsync_core::record::{resolve, ReviewPhase, Status};
use fieldsync_core::RecordType;
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// Counselling topics that are safe motherhood (làm mẹ an toàn).
const SAFE_MOTHERHOOD: &[&str] = &["antenatal", "safe_delivery", "postnatal", "child_health"];
/// The age range of the safe-delivery population: women of reproductive age.
const REPRODUCTIVE_AGE: std::ops::RangeInclusive<u32> = 15..=49;
/// Ethnic-group code of the Kinh majority; every other group is an ethnic minority.
const KINH: &str = "01";

/// Age groups of the breakdowns: children (under 16, as Vietnamese law counts them), youth
/// (16 to 30, the Law on Youth), adults, and the elderly (60 and over).
pub fn age_group(age: Option<u32>) -> &'static str {
    match age {
        None => "unknown",
        Some(0..=15) => "0-15",
        Some(16..=30) => "16-30",
        Some(31..=59) => "31-59",
        Some(_) => "60+",
    }
}

/// A figure and, for a share, its population.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Part {
    pub value: u64,
    pub denominator: u64,
}

impl std::ops::AddAssign for Part {
    fn add_assign(&mut self, other: Part) {
        self.value += other.value;
        self.denominator += other.denominator;
    }
}

/// A figure by sex, ethnic group and age group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Breakdown {
    pub sex: BTreeMap<String, Part>,
    pub ethnicity: BTreeMap<String, Part>,
    pub age: BTreeMap<String, Part>,
}

impl Breakdown {
    fn add(&mut self, person: &Person, age: Option<u32>, part: Part) {
        *self.sex.entry(person.sex.clone()).or_default() += part;
        *self.ethnicity.entry(person.ethnicity.clone()).or_default() += part;
        *self.age.entry(age_group(age).to_owned()).or_default() += part;
    }

    pub fn merge(&mut self, other: &Breakdown) {
        for (mine, theirs) in [
            (&mut self.sex, &other.sex),
            (&mut self.ethnicity, &other.ethnicity),
            (&mut self.age, &other.age),
        ] {
            for (k, v) in theirs {
                *mine.entry(k.clone()).or_default() += *v;
            }
        }
    }
}

/// One indicator in one place at one date.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub part: Part,
    /// Records that would count but have no (valid) date of their own.
    pub undated: u64,
    pub breakdown: Breakdown,
}

impl Tally {
    pub fn merge(&mut self, other: &Tally) {
        self.part += other.part;
        self.undated += other.undated;
        self.breakdown.merge(&other.breakdown);
    }
}

/// The tallies of every indicator in each of the plan's communes (by position), at one date.
pub type Tallies = Vec<BTreeMap<Indicator, Tally>>;

/// Which records a drill-down wants: those counted for one indicator in some communes, in the
/// figure (`denominator: false`) or its population.
pub struct Listing<'a> {
    pub indicator: Indicator,
    pub rows: &'a [usize],
    pub denominator: bool,
}

struct Person {
    id: Uuid,
    row: Option<usize>,
    female: bool,
    minority: bool,
    sex: String,
    ethnicity: String,
    birth: Option<Birth>,
    cadre: bool,
    finance: Option<Day>,
    livelihood: Option<Day>,
    high_home_birth: bool,
    /// The founding of the first counted savings group the person is a member of.
    savings_since: Option<Day>,
    /// The first counted safe-motherhood counselling the person attended.
    safe_motherhood: Option<Day>,
    /// The first counted leadership training the person attended.
    leadership: Option<Day>,
    /// The first counted case supporting the person: its opening, id and commune row.
    victim: Option<(Day, Uuid, usize)>,
}

/// A dated record counted for an indicator in a commune (`date` absent: undated).
struct Item {
    indicator: Indicator,
    row: usize,
    date: Option<Day>,
    id: Uuid,
}

/// The records of a request, prepared once and counted at any date.
pub struct Counter {
    plan_start: Day,
    items: Vec<Item>,
    persons: Vec<Person>,
    sensitive: bool,
    /// Counts victims only (the figures published the same whoever asks).
    victims_only: bool,
}

fn earliest(slot: &mut Option<Day>, day: Day) {
    if slot.is_none_or(|d| day < d) {
        *slot = Some(day);
    }
}

impl Counter {
    /// Prepares `facts` for counting what `scope` may see of `plan`; `all_submitted` counts
    /// records whatever their review (a preview), else approved ones only.
    pub fn new(facts: &[Fact], plan: &Plan, scope: &Scope, all_submitted: bool) -> Counter {
        Counter::prepare(facts, plan, scope, all_submitted, false)
    }

    /// Prepares the victims of the plan's whole province, from approved records: the only
    /// counts victim figures are published from (docs/indicators.md §3).
    pub fn victims(facts: &[Fact], plan: &Plan) -> Counter {
        Counter::prepare(facts, plan, &Scope::everything(), false, true)
    }

    fn prepare(
        facts: &[Fact],
        plan: &Plan,
        scope: &Scope,
        all_submitted: bool,
        victims_only: bool,
    ) -> Counter {
        let areas = Areas::bundled();
        let row_index: HashMap<&str, usize> = plan
            .communes
            .iter()
            .enumerate()
            .map(|(i, c)| (c.as_str(), i))
            .collect();
        // The row of a record, if its commune is the plan's and the record the caller's.
        let row_of = |record_type: RecordType, f: &Fact| -> Option<usize> {
            let commune = f.commune.as_deref()?;
            if !crate::access::visible(scope, record_type, Some(commune), f.sensitive) {
                return None;
            }
            row_index.get(areas.current(commune)).copied()
        };
        let counts = |f: &Fact| {
            f.status == Status::Active
                && (all_submitted || f.review == ReviewPhase::Approved)
                && (!f.sensitive || f.record_type == RecordType::SupportCase)
        };
        let merged: HashMap<Uuid, Uuid> = facts
            .iter()
            .filter_map(|f| f.merged_into.map(|to| (f.id, to)))
            .collect();
        let kept = |id: Uuid| resolve(id, |x| merged.get(&x).copied());

        let mut persons = Vec::new();
        let mut person_at: HashMap<Uuid, usize> = HashMap::new();
        for f in facts
            .iter()
            .filter(|f| f.record_type == RecordType::Person && counts(f))
        {
            let d = &f.detail;
            let ethnicity = d.ethnicity.clone().unwrap_or_else(|| "unknown".into());
            let row = row_of(RecordType::Person, f);
            let day = |v: &Option<String>| v.as_deref().and_then(Day::parse);
            person_at.insert(f.id, persons.len());
            persons.push(Person {
                id: f.id,
                row,
                female: d.sex.as_deref() == Some("female"),
                minority: d.ethnicity.as_deref().is_some_and(|e| e != KINH),
                sex: d.sex.clone().unwrap_or_else(|| "unknown".into()),
                ethnicity,
                birth: d.birth.as_deref().and_then(Birth::parse),
                cadre: d.cadre.is_some(),
                finance: day(&d.formal_finance_linked),
                livelihood: day(&d.livelihood_supported),
                high_home_birth: row.is_some_and(|r| plan.high_home_birth(&plan.communes[r])),
                savings_since: None,
                safe_motherhood: None,
                leadership: None,
                victim: None,
            });
        }

        let mut items = Vec::new();
        for f in facts
            .iter()
            .filter(|f| counts(f) && (!victims_only || f.record_type == RecordType::SupportCase))
        {
            let date = f.date.as_deref().and_then(Day::parse);
            let people = || {
                f.people
                    .iter()
                    .filter_map(|p| person_at.get(&kept(*p)).copied())
                    .collect::<Vec<_>>()
            };
            match f.record_type {
                RecordType::Group => {
                    let later = |since: &Option<String>| {
                        let since = since.as_deref().and_then(Day::parse);
                        date.map(|d| since.map_or(d, |s| s.max(d)))
                    };
                    let d = &f.detail;
                    let yes = |b: Option<bool>| b == Some(true);
                    let mut counted = Vec::new();
                    match f.kind.as_deref() {
                        Some("communication_team") => {
                            counted.push((Indicator::CommunicationGroups, date))
                        }
                        Some("savings_loan_group") => {
                            counted.push((Indicator::SavingsGroups, date));
                            if yes(d.gals) {
                                counted.push((Indicator::SavingsGroupsGals, later(&d.gals_since)));
                            }
                            if let Some(founded) = date {
                                for p in people() {
                                    earliest(&mut persons[p].savings_since, founded);
                                }
                            }
                        }
                        Some("livelihood_group" | "cooperative")
                            if yes(d.women_led) && yes(d.uses_digital_technology) =>
                        {
                            counted.push((
                                Indicator::WomenLedGroupsTechnology,
                                later(&d.technology_since),
                            ));
                        }
                        Some("trusted_address") => match d.trusted_address_status.as_deref() {
                            Some("existing") => {
                                counted.push((Indicator::TrustedAddressesConsolidated, date))
                            }
                            Some("new") => counted.push((Indicator::TrustedAddressesNew, date)),
                            _ => {}
                        },
                        Some("children_club") => counted.push((Indicator::ChildrensClubs, date)),
                        Some("victim_livelihood_model") => match d.model_phase.as_deref() {
                            Some("pilot") => counted.push((Indicator::VictimModelsPilot, date)),
                            Some("replicated") => {
                                counted.push((Indicator::VictimModelsReplicated, date))
                            }
                            _ => {}
                        },
                        _ => {}
                    }
                    if let Some(row) = row_of(RecordType::Group, f) {
                        for (indicator, date) in counted {
                            items.push(Item {
                                indicator,
                                row,
                                date,
                                id: f.id,
                            });
                        }
                    }
                }
                RecordType::Activity => {
                    // Activities before the plan began are not its results.
                    let in_plan = date.filter(|d| *d >= plan.start);
                    match f.kind.as_deref() {
                        Some("policy_dialogue") => {
                            if let Some(row) = row_of(RecordType::Activity, f) {
                                if date.is_none() || in_plan.is_some() {
                                    items.push(Item {
                                        indicator: Indicator::PolicyDialogues,
                                        row,
                                        date: in_plan,
                                        id: f.id,
                                    });
                                }
                            }
                        }
                        Some("counselling")
                            if f.detail
                                .counselling_topic
                                .as_deref()
                                .is_some_and(|t| SAFE_MOTHERHOOD.contains(&t)) =>
                        {
                            if let Some(day) = in_plan {
                                for p in people() {
                                    earliest(&mut persons[p].safe_motherhood, day);
                                }
                            }
                        }
                        Some("leadership_training") => {
                            if let Some(day) = in_plan {
                                for p in people() {
                                    earliest(&mut persons[p].leadership, day);
                                }
                            }
                        }
                        _ => {}
                    }
                }
                RecordType::SupportCase if scope.sensitive => {
                    let (Some(day), Some(row)) = (
                        date.filter(|d| *d >= plan.start),
                        row_of(RecordType::SupportCase, f),
                    ) else {
                        continue;
                    };
                    for p in people() {
                        let person = &mut persons[p];
                        if person.victim.is_none_or(|(d, id, _)| (day, f.id) < (d, id)) {
                            person.victim = Some((day, f.id, row));
                        }
                    }
                }
                _ => {}
            }
        }
        Counter {
            plan_start: plan.start,
            items,
            persons,
            sensitive: scope.sensitive,
            victims_only,
        }
    }

    /// The tallies at `day` in each of `rows` communes (the plan's count). With `detail`,
    /// also undated records and breakdowns. With a listing, the ids of the records it asks for
    /// are pushed to `listed`.
    pub fn at(
        &self,
        day: Day,
        rows: usize,
        detail: bool,
        listing: Option<(&Listing<'_>, &mut Vec<Uuid>)>,
    ) -> Tallies {
        let mut sink = Sink {
            out: vec![BTreeMap::new(); rows],
            detail,
            listing,
        };
        for item in &self.items {
            match item.date {
                Some(d) if d <= day => {
                    sink.tally(item.indicator, item.row).part.value += 1;
                    sink.list(item.indicator, item.row, false, item.id);
                }
                Some(_) => {}
                None if detail => sink.tally(item.indicator, item.row).undated += 1,
                None => {}
            }
        }
        let window = |d: Option<Day>| d.is_some_and(|d| d >= self.plan_start && d <= day);
        let reached = |d: Option<Day>| d.is_some_and(|d| d <= day);
        let share = |counted: bool| Part {
            value: u64::from(counted),
            denominator: 1,
        };
        let one = Part {
            value: 1,
            denominator: 0,
        };
        for person in &self.persons {
            let age = person.birth.and_then(|b| b.age_on(day));
            if let Some(row) = person.row.filter(|_| !self.victims_only) {
                if reached(person.savings_since) {
                    let finance = share(window(person.finance));
                    sink.add(
                        Indicator::SavingsMembersFormalFinance,
                        row,
                        person,
                        age,
                        finance,
                    );
                    let livelihood = share(window(person.livelihood));
                    sink.add(
                        Indicator::SavingsMembersLivelihood,
                        row,
                        person,
                        age,
                        livelihood,
                    );
                }
                if person.female && person.minority && person.high_home_birth {
                    match age {
                        Some(a) if REPRODUCTIVE_AGE.contains(&a) => {
                            let counselled = share(reached(person.safe_motherhood));
                            sink.add(
                                Indicator::SafeDeliveryCounselled,
                                row,
                                person,
                                age,
                                counselled,
                            );
                        }
                        None if detail && person.birth.is_none() => {
                            sink.tally(Indicator::SafeDeliveryCounselled, row).undated += 1;
                        }
                        _ => {}
                    }
                }
                if person.female && person.minority && person.cadre && reached(person.leadership) {
                    sink.add(Indicator::WomenCadresTrained, row, person, age, one);
                }
            }
            if let Some((opened, case, row)) = person.victim.filter(|_| self.sensitive) {
                if opened <= day {
                    sink.tally(Indicator::VictimsSupported, row).part += one;
                    if detail {
                        sink.tally(Indicator::VictimsSupported, row)
                            .breakdown
                            .add(person, age, one);
                    }
                    // A victim's drill-down lists the case, not the person.
                    sink.list(Indicator::VictimsSupported, row, false, case);
                }
            }
        }
        sink.out
    }
}

/// Where a count at one date goes.
struct Sink<'l, 'a> {
    out: Tallies,
    detail: bool,
    listing: Option<(&'l Listing<'a>, &'l mut Vec<Uuid>)>,
}

impl Sink<'_, '_> {
    fn tally(&mut self, indicator: Indicator, row: usize) -> &mut Tally {
        self.out[row].entry(indicator).or_default()
    }

    fn list(&mut self, indicator: Indicator, row: usize, denominator: bool, id: Uuid) {
        if let Some((want, ids)) = self.listing.as_mut() {
            if want.indicator == indicator
                && want.denominator == denominator
                && want.rows.contains(&row)
            {
                ids.push(id);
            }
        }
    }

    /// A person's part in an indicator: in the figure, its population, or both.
    fn add(
        &mut self,
        indicator: Indicator,
        row: usize,
        person: &Person,
        age: Option<u32>,
        part: Part,
    ) {
        let detail = self.detail;
        let tally = self.tally(indicator, row);
        tally.part += part;
        if detail {
            tally.breakdown.add(person, age, part);
        }
        if part.value > 0 {
            self.list(indicator, row, false, person.id);
        }
        if part.denominator > 0 {
            self.list(indicator, row, true, person.id);
        }
    }
}
