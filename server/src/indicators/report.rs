//! The progress report: every indicator for the caller's whole area, each old district the plan
//! gives targets to, and each of today's communes, as of a date and at the end of each year of
//! the plan, against the targets. Victim figures follow the disclosure rule (`suppress`): they
//! are counted once for the plan's whole province and shown on the rows where the rule
//! publishes them. The API answers it as JSON, the page draws it and the exports write it: all
//! three show the same figures.

use super::count::{Breakdown, Counter, Listing, Part, Tallies, Tally};
use super::day::Day;
use super::definitions::{Definition, Indicator, Unit, DEFINITIONS};
use super::facts::Fact;
use super::suppress::{self, Figure, Tree, Withheld};
use super::targets::Plan;
use crate::scope::Scope;
use fieldsync_core::model::Areas;
use serde::Serialize;
use std::collections::BTreeMap;
use uuid::Uuid;

/// What a report is asked for.
#[derive(Clone, Copy, Debug)]
pub struct Request {
    pub as_of: Day,
    /// Count records whatever their review (a preview), not only approved ones.
    pub all_submitted: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct PlanInfo {
    pub id: String,
    pub name: String,
    pub name_en: Option<String>,
    pub province: String,
    pub province_name: String,
    pub start: Day,
    pub end: Day,
}

/// A figure with, for a share, its population and the percentage.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Share {
    pub value: Figure,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denominator: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percent: Option<f64>,
    /// A victim figure: the day it is counted at (a period end), whatever the report's date.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_of: Option<Day>,
    /// A victim figure: counted from approved records only, whatever the review switch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approved_only: Option<bool>,
    /// A victim figure that is not published here: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withheld: Option<Withheld>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BreakdownOut {
    pub sex: BTreeMap<String, Share>,
    pub ethnicity: BTreeMap<String, Share>,
    pub age: BTreeMap<String, Share>,
    /// Victims: the day the breakdown is counted at (the plan's end).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_of: Option<Day>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approved_only: Option<bool>,
}

/// One indicator in one area.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Cell {
    #[serde(flatten)]
    pub share: Share,
    pub target: Option<f64>,
    /// How far the figure (or percentage) has come towards the target, in percent.
    pub progress: Option<f64>,
    /// Records that would count but lack a valid date of their own.
    pub undated: u64,
    /// The figure at the end of each year of the plan up to the report's date (that date for
    /// its own year).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub by_year: BTreeMap<i32, Share>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breakdown: Option<BreakdownOut>,
    /// A victim figure: whether the cases behind it may be listed (the figure and that of every
    /// commune it spans are published).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listable: Option<bool>,
}

/// An area's row of the report.
#[derive(Clone, Debug, Serialize)]
pub struct AreaReport {
    pub code: String,
    pub name: String,
    /// `province` (the caller's whole area), `district` (old, with targets) or `commune`.
    pub level: &'static str,
    /// For the province row: whether the caller sees every commune of the plan (else its
    /// figures are for the caller's communes only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub complete: Option<bool>,
    /// For a commune: the old communes merged into it (code and name).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<(String, String)>,
    /// For the province and a district: today's communes it adds up.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub communes: Vec<String>,
    pub results: BTreeMap<Indicator, Cell>,
    /// The plan's communes (positions) this row adds up.
    #[serde(skip)]
    pub rows: Vec<usize>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub plan: PlanInfo,
    pub as_of: Day,
    pub all_submitted: bool,
    pub years: Vec<i32>,
    pub indicators: Vec<&'static Definition>,
    pub areas: Vec<AreaReport>,
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn share(unit: Unit, part: Part) -> Share {
    let value = Figure::Shown(part.value);
    match unit {
        Unit::Count => Share {
            value,
            ..Share::default()
        },
        Unit::Percent => Share {
            value,
            denominator: Some(part.denominator),
            percent: (part.denominator > 0)
                .then(|| round1(part.value as f64 * 100.0 / part.denominator as f64)),
            ..Share::default()
        },
    }
}

fn sum(tallies: &Tallies, rows: &[usize], indicator: Indicator) -> Tally {
    let mut total = Tally::default();
    for r in rows {
        if let Some(t) = tallies.get(*r).and_then(|row| row.get(&indicator)) {
            total.merge(t);
        }
    }
    total
}

fn breakdown(def: &Definition, b: &Breakdown) -> BreakdownOut {
    let dimension = |map: &BTreeMap<String, Part>| -> BTreeMap<String, Share> {
        map.iter()
            .map(|(k, p)| (k.clone(), share(def.unit, *p)))
            .collect()
    };
    BreakdownOut {
        sex: dimension(&b.sex),
        ethnicity: dimension(&b.ethnicity),
        age: dimension(&b.age),
        as_of: None,
        approved_only: None,
    }
}

/// Victim figures as published (docs/indicators.md §3): counted once, for the plan's whole
/// province from approved records, at the report's period end; the same whoever asks.
struct Victims {
    counter: Counter,
    day: Day,
    /// The period end is the plan's end: parts of the province and breakdowns are published.
    at_end: bool,
    tree: Tree,
    /// Each node's figure as of the plan's end (when `at_end`).
    nodes: Vec<Figure>,
    /// The province at the end of each year of the plan before `day`, then at `day`.
    chain: Vec<(i32, Day, u64)>,
    breakdown: Option<BreakdownOut>,
}

impl Victims {
    fn new(facts: &[Fact], plan: &Plan, as_of: Day) -> Victims {
        let counter = Counter::victims(facts, plan);
        let day = suppress::period_end(as_of, plan.end);
        let n = plan.communes.len();
        let all: Vec<usize> = (0..n).collect();
        let at_end = day == plan.end;
        let now = counter.at(day, n, at_end, None);
        let count =
            |t: &Tallies, rows: &[usize]| sum(t, rows, Indicator::VictimsSupported).part.value;
        let mut chain: Vec<(i32, Day, u64)> = plan
            .years()
            .map(|y| (y, Day::year_end(y)))
            .filter(|(_, d)| *d < day)
            .map(|(y, d)| (y, d, count(&counter.at(d, n, false, None), &all)))
            .collect();
        if plan.years().contains(&day.year()) {
            chain.push((day.year(), day, count(&now, &all)));
        }
        let tree = Tree::of(plan);
        let nodes = if at_end {
            tree.publish(|rows| count(&now, rows))
        } else {
            Vec::new()
        };
        let breakdown = at_end.then(|| {
            victim_breakdown(&sum(&now, &all, Indicator::VictimsSupported).breakdown, day)
        });
        Victims {
            counter,
            day,
            at_end,
            tree,
            nodes,
            chain,
            breakdown,
        }
    }

    fn share(&self, value: Figure) -> Share {
        Share {
            value,
            as_of: Some(self.day),
            approved_only: Some(true),
            withheld: value.withheld(),
            ..Share::default()
        }
    }

    /// The victim figure of a row adding up `rows`, as `scope` may see it.
    fn cell(&self, plan: &Plan, scope: &Scope, rows: &[usize]) -> Cell {
        let node = self
            .tree
            .node(rows)
            .filter(|_| rows.iter().all(|r| wholly_seen(scope, &plan.communes[*r])));
        let mut by_year = BTreeMap::new();
        let mut breakdown = None;
        let value = match node {
            None => Figure::Withheld(Withheld::Area),
            Some(0) => {
                for (year, day, count) in &self.chain {
                    let mut s = self.share(Figure::sensitive(*count));
                    s.as_of = Some(*day);
                    by_year.insert(*year, s);
                }
                breakdown = self.breakdown.clone();
                Figure::sensitive(self.chain.last().map_or(0, |(_, _, c)| *c))
            }
            Some(_) if !self.at_end => Figure::Withheld(Withheld::Period),
            Some(i) => self.nodes[i],
        };
        let listable = self.at_end
            && value.at_least_five()
            && rows.iter().all(|r| {
                self.tree
                    .node(&[*r])
                    .is_some_and(|i| self.nodes[i].at_least_five())
            });
        Cell {
            share: self.share(value),
            target: None,
            progress: None,
            undated: 0,
            by_year,
            breakdown,
            listable: Some(listable),
        }
    }
}

/// Whether `scope` sees every record of today's commune `code` (every old commune merged
/// into it), so that the figure counted for the whole province is all theirs.
fn wholly_seen(scope: &Scope, code: &str) -> bool {
    let areas = Areas::bundled();
    scope.all
        || (scope.communes.contains(code)
            && areas
                .communes()
                .filter(|c| areas.current(&c.code) == code)
                .all(|c| scope.communes.contains(&c.code)))
}

/// The victims of the province by sex, age group and ethnic group (Kinh or a minority), as of
/// the plan's end: a dimension is published only when every one of its groups has 5 or more.
/// Victims of no listed group (sex or birth not recorded) are in none.
fn victim_breakdown(b: &Breakdown, day: Day) -> BreakdownOut {
    let get = |m: &BTreeMap<String, Part>, k: &str| m.get(k).map_or(0, |p| p.value);
    let dimension = |groups: Vec<(&str, u64)>| -> BTreeMap<String, Share> {
        let counts: Vec<u64> = groups.iter().map(|(_, c)| *c).collect();
        let published = suppress::parts_published(&counts);
        groups
            .into_iter()
            .map(|(k, c)| {
                let value = if published {
                    Figure::sensitive(c)
                } else {
                    Figure::Withheld(Withheld::Partition)
                };
                let share = Share {
                    value,
                    withheld: value.withheld(),
                    ..Share::default()
                };
                (k.to_owned(), share)
            })
            .collect()
    };
    let minority = b
        .ethnicity
        .iter()
        .filter(|(k, _)| *k != "01" && *k != "unknown")
        .map(|(_, p)| p.value)
        .sum();
    BreakdownOut {
        sex: dimension(vec![
            ("female", get(&b.sex, "female")),
            ("male", get(&b.sex, "male")),
        ]),
        age: dimension(
            ["0-15", "16-30", "31-59", "60+"]
                .iter()
                .map(|k| (*k, get(&b.age, k)))
                .collect(),
        ),
        ethnicity: dimension(vec![
            ("01", get(&b.ethnicity, "01")),
            ("minority", minority),
        ]),
        as_of: Some(day),
        approved_only: Some(true),
    }
}

/// The plan's communes (positions) the caller sees.
fn visible_rows(plan: &Plan, scope: &Scope) -> Vec<usize> {
    (0..plan.communes.len())
        .filter(|r| scope.all || scope.communes.contains(&plan.communes[*r]))
        .collect()
}

/// The report of what `scope` may see of `plan` in `facts`.
pub fn build(facts: &[Fact], plan: &Plan, scope: &Scope, request: &Request) -> Report {
    let counter = Counter::new(facts, plan, &counted(scope), request.all_submitted);
    let victims = scope
        .sensitive
        .then(|| Victims::new(facts, plan, request.as_of));
    build_from(&counter, victims.as_ref(), plan, scope, request)
}

/// What the caller's own counting covers: every indicator but victims, which are counted once
/// for everyone ([`Victims`]).
fn counted(scope: &Scope) -> Scope {
    Scope {
        sensitive: false,
        ..scope.clone()
    }
}

fn build_from(
    counter: &Counter,
    victims: Option<&Victims>,
    plan: &Plan,
    scope: &Scope,
    request: &Request,
) -> Report {
    let n = plan.communes.len();
    let now = counter.at(request.as_of, n, true, None);
    // Each year of the plan up to the report's date, at its end (or at that date).
    let years: Vec<(i32, Day)> = plan
        .years()
        .filter(|y| *y <= request.as_of.year())
        .map(|y| (y, Day::year_end(y).min(request.as_of)))
        .collect();
    let by_year: Vec<Tallies> = years
        .iter()
        .map(|(_, day)| {
            if *day == request.as_of {
                now.clone()
            } else {
                counter.at(*day, n, false, None)
            }
        })
        .collect();
    let definitions: Vec<&'static Definition> = DEFINITIONS
        .iter()
        .filter(|d| scope.sensitive || !d.sensitive)
        .collect();
    let visible = visible_rows(plan, scope);
    let complete = visible.len() == n;
    let areas_list = Areas::bundled();
    let name_of = |code: &str| {
        areas_list
            .get(code)
            .map(|a| a.name.clone())
            .unwrap_or_default()
    };

    let mut areas = vec![AreaReport {
        code: plan.province.clone(),
        name: plan.province_name.clone(),
        level: "province",
        complete: Some(complete),
        merged_from: Vec::new(),
        communes: visible.iter().map(|r| plan.communes[*r].clone()).collect(),
        results: BTreeMap::new(),
        rows: visible.clone(),
    }];
    for (code, communes) in plan.districts() {
        let rows: Vec<usize> = communes
            .iter()
            .filter_map(|c| plan.communes.iter().position(|x| x == c))
            .collect();
        if !rows.is_empty() && rows.iter().all(|r| visible.contains(r)) {
            areas.push(AreaReport {
                name: name_of(&code),
                code,
                level: "district",
                complete: None,
                merged_from: Vec::new(),
                communes: rows.iter().map(|r| plan.communes[*r].clone()).collect(),
                results: BTreeMap::new(),
                rows,
            });
        }
    }
    for r in &visible {
        let code = &plan.communes[*r];
        let merged_from = areas_list
            .communes()
            .filter(|c| &c.code != code && areas_list.current(&c.code) == code)
            .map(|c| (c.code.clone(), c.name.clone()))
            .collect();
        areas.push(AreaReport {
            code: code.clone(),
            name: name_of(code),
            level: "commune",
            complete: None,
            merged_from,
            communes: Vec::new(),
            results: BTreeMap::new(),
            rows: vec![*r],
        });
    }

    for def in &definitions {
        let indicator = def.indicator;
        for area in &mut areas {
            if def.sensitive {
                if let Some(v) = victims {
                    area.results
                        .insert(indicator, v.cell(plan, scope, &area.rows));
                }
                continue;
            }
            let tally = sum(&now, &area.rows, indicator);
            let by_year: BTreeMap<i32, Share> = years
                .iter()
                .enumerate()
                .map(|(i, (year, _))| {
                    (
                        *year,
                        share(def.unit, sum(&by_year[i], &area.rows, indicator).part),
                    )
                })
                .collect();
            let target = match area.level {
                "province" if complete => plan.province_target(indicator),
                "province" => match def.unit {
                    Unit::Percent => plan.province_target(indicator),
                    Unit::Count => area
                        .rows
                        .iter()
                        .map(|r| plan.commune_target(&plan.communes[*r], indicator))
                        .sum::<Option<f64>>(),
                },
                "district" => plan.district_target(&area.code, indicator).or_else(|| {
                    (def.unit == Unit::Percent)
                        .then(|| plan.province_target(indicator))
                        .flatten()
                }),
                _ => plan.commune_target(&area.code, indicator),
            };
            let share = share(def.unit, tally.part);
            let achieved = match def.unit {
                Unit::Count => share.value.shown().map(|v| v as f64),
                Unit::Percent => share.percent,
            };
            let progress = match (achieved, target) {
                (Some(a), Some(t)) if t > 0.0 => Some(round1(a * 100.0 / t)),
                _ => None,
            };
            area.results.insert(
                indicator,
                Cell {
                    share,
                    target,
                    progress,
                    undated: tally.undated,
                    by_year,
                    breakdown: def
                        .has_breakdown()
                        .then(|| breakdown(def, &tally.breakdown)),
                    listable: None,
                },
            );
        }
    }
    Report {
        plan: PlanInfo {
            id: plan.id.clone(),
            name: plan.name.clone(),
            name_en: plan.name_en.clone(),
            province: plan.province.clone(),
            province_name: plan.province_name.clone(),
            start: plan.start,
            end: plan.end,
        },
        as_of: request.as_of,
        all_submitted: request.all_submitted,
        years: years.iter().map(|(y, _)| *y).collect(),
        indicators: definitions,
        areas,
    }
}

/// Why a drill-down is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum ListRefusal {
    /// The area is not a row of the caller's report.
    NoSuchArea,
    /// A victim figure that is not listable: hidden, withheld, or spanning a commune whose own
    /// figure is not published.
    Hidden,
    /// The indicator needs sensitive access.
    Sensitive,
}

/// A drill-down: the records, and what they are counted as of.
#[derive(Debug)]
pub struct Listed {
    pub ids: Vec<Uuid>,
    /// The day they are counted at (for victims, the figure's period end).
    pub as_of: Day,
    /// Approved records only (victims always), else as the request said.
    pub approved_only: bool,
}

/// The records counted for `indicator` in `area` (a row of the report): those in the figure, or
/// with `denominator` those in its population. Ordered as counted. The cases behind a victim
/// figure are listed only where the report marks it listable.
pub fn records(
    facts: &[Fact],
    plan: &Plan,
    scope: &Scope,
    request: &Request,
    indicator: Indicator,
    area: &str,
    denominator: bool,
) -> Result<Listed, ListRefusal> {
    let sensitive = indicator.definition().sensitive;
    if sensitive && !scope.sensitive {
        return Err(ListRefusal::Sensitive);
    }
    let counter = Counter::new(facts, plan, &counted(scope), request.all_submitted);
    let victims = scope
        .sensitive
        .then(|| Victims::new(facts, plan, request.as_of));
    let report = build_from(&counter, victims.as_ref(), plan, scope, request);
    let row = report
        .areas
        .iter()
        .find(|a| a.code == area)
        .ok_or(ListRefusal::NoSuchArea)?;
    let listing = Listing {
        indicator,
        rows: &row.rows,
        denominator,
    };
    let mut ids = Vec::new();
    match victims.filter(|_| sensitive) {
        Some(v) => {
            if row.results.get(&indicator).and_then(|c| c.listable) != Some(true) {
                return Err(ListRefusal::Hidden);
            }
            v.counter.at(
                v.day,
                plan.communes.len(),
                false,
                Some((&listing, &mut ids)),
            );
            Ok(Listed {
                ids,
                as_of: v.day,
                approved_only: true,
            })
        }
        None => {
            counter.at(
                request.as_of,
                plan.communes.len(),
                false,
                Some((&listing, &mut ids)),
            );
            Ok(Listed {
                ids,
                as_of: request.as_of,
                approved_only: !request.all_submitted,
            })
        }
    }
}
