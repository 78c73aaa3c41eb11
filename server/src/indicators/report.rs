//! The progress report: every indicator for the caller's whole area, each old district the plan
//! gives targets to, and each of today's communes, as of a date and at the end of each year of
//! the plan, against the targets, with small victim counts hidden. The API answers it as JSON,
//! the page draws it and the exports write it: all three show the same figures.

use super::count::{Breakdown, Counter, Listing, Part, Tallies, Tally};
use super::day::Day;
use super::definitions::{Definition, Indicator, Unit, DEFINITIONS};
use super::facts::Fact;
use super::suppress::{self, Figure};
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
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Share {
    pub value: Figure,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denominator: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percent: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BreakdownOut {
    pub sex: BTreeMap<String, Share>,
    pub ethnicity: BTreeMap<String, Share>,
    pub age: BTreeMap<String, Share>,
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

fn share(unit: Unit, part: Part, value: Figure) -> Share {
    match unit {
        Unit::Count => Share {
            value,
            denominator: None,
            percent: None,
        },
        Unit::Percent => Share {
            value,
            denominator: Some(part.denominator),
            percent: (part.denominator > 0)
                .then(|| round1(part.value as f64 * 100.0 / part.denominator as f64)),
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
        let values: Vec<u64> = map.values().map(|p| p.value).collect();
        let hidden = if def.sensitive {
            suppress::parts(&values)
        } else {
            vec![false; values.len()]
        };
        map.iter()
            .zip(hidden)
            .map(|((k, p), h)| {
                let figure = if h {
                    Figure::Hidden
                } else {
                    Figure::Shown(p.value)
                };
                (k.clone(), share(def.unit, *p, figure))
            })
            .collect()
    };
    BreakdownOut {
        sex: dimension(&b.sex),
        ethnicity: dimension(&b.ethnicity),
        age: dimension(&b.age),
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
    let counter = Counter::new(facts, plan, scope, request.all_submitted);
    build_from(&counter, plan, scope, request)
}

fn build_from(counter: &Counter, plan: &Plan, scope: &Scope, request: &Request) -> Report {
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
        // Small victim counts: which communes' figures to hide, as parts of the total.
        let commune_values: Vec<u64> = visible
            .iter()
            .map(|r| sum(&now, &[*r], indicator).part.value)
            .collect();
        let hidden_rows: Vec<usize> = if def.sensitive {
            suppress::parts(&commune_values)
                .into_iter()
                .zip(&visible)
                .filter_map(|(hide, r)| hide.then_some(*r))
                .collect()
        } else {
            Vec::new()
        };
        for area in &mut areas {
            let tally = sum(&now, &area.rows, indicator);
            // A commune's or district's figure is hidden with any of its communes'.
            let mut hidden = def.sensitive
                && (suppress::small(tally.part.value)
                    || (area.level != "province"
                        && area.rows.iter().any(|r| hidden_rows.contains(r))));
            // A victim figure's years and breakdown are given for the whole area only, where
            // they cannot be set against a neighbouring commune's.
            let detailed = !def.sensitive || area.level == "province";
            let mut years_out = BTreeMap::new();
            if detailed {
                // The figure through time, the report's date last: a step of fewer than five
                // between two dates would name victims as surely as a small figure.
                let mut series: Vec<u64> = by_year
                    .iter()
                    .map(|t| sum(t, &area.rows, indicator).part.value)
                    .collect();
                let now_at_end = years.last().is_some_and(|(_, d)| *d == request.as_of);
                if !now_at_end {
                    series.push(tally.part.value);
                }
                let mut hidden_series = if def.sensitive {
                    suppress::series(&series)
                } else {
                    vec![false; series.len()]
                };
                if let Some(last) = hidden_series.last_mut() {
                    hidden |= *last;
                    *last |= hidden;
                }
                for (i, (year, _)) in years.iter().enumerate() {
                    let t = sum(&by_year[i], &area.rows, indicator);
                    let figure = if hidden_series[i] {
                        Figure::Hidden
                    } else {
                        Figure::Shown(t.part.value)
                    };
                    years_out.insert(*year, share(def.unit, t.part, figure));
                }
            }
            let value = if hidden {
                Figure::Hidden
            } else {
                Figure::Shown(tally.part.value)
            };
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
            let share = share(def.unit, tally.part, value);
            let achieved = match def.unit {
                Unit::Count => value.shown().map(|v| v as f64),
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
                    by_year: years_out,
                    breakdown: (def.has_breakdown() && detailed)
                        .then(|| breakdown(def, &tally.breakdown)),
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
    /// The figure is hidden (a small count of victims).
    Hidden,
    /// The indicator needs sensitive access.
    Sensitive,
}

/// The records counted for `indicator` in `area` (a row of the report): those in the figure, or
/// with `denominator` those in its population. Ordered as counted.
pub fn records(
    facts: &[Fact],
    plan: &Plan,
    scope: &Scope,
    request: &Request,
    indicator: Indicator,
    area: &str,
    denominator: bool,
) -> Result<Vec<Uuid>, ListRefusal> {
    if indicator.definition().sensitive && !scope.sensitive {
        return Err(ListRefusal::Sensitive);
    }
    let counter = Counter::new(facts, plan, scope, request.all_submitted);
    let report = build_from(&counter, plan, scope, request);
    let row = report
        .areas
        .iter()
        .find(|a| a.code == area)
        .ok_or(ListRefusal::NoSuchArea)?;
    if row
        .results
        .get(&indicator)
        .is_some_and(|c| c.share.value == Figure::Hidden)
    {
        return Err(ListRefusal::Hidden);
    }
    let listing = Listing {
        indicator,
        rows: &row.rows,
        denominator,
    };
    let mut ids = Vec::new();
    counter.at(
        request.as_of,
        plan.communes.len(),
        false,
        Some((&listing, &mut ids)),
    );
    Ok(ids)
}
