//! The disclosure rule for sensitive figures (victims), in one place; why it is safe is argued
//! in docs/indicators.md §3. A victim figure is published only
//! - from approved records, at the end of a quarter (the last one on or before the report's
//!   date, the plan's end at the latest), whatever the report's date and review switch;
//! - as a band of five: `<5` for 0 to 4, else `5–9`, `10–14`, …;
//! - through time for the plan's whole province only; for an old district or a commune of
//!   today, and by sex, age group or ethnic group, only as of the plan's end, and only where
//!   every part of the same whole has 5 or more (each district, then each commune of a
//!   district; each group of a breakdown);
//! - for the same figure whoever asks: the caller's scope only decides which rows they see.

use super::day::Day;
use super::targets::Plan;
use fieldsync_core::model::{AreaLevel, Areas};
use serde::{Serialize, Serializer};
use std::collections::BTreeSet;

/// The width of a band, and the smallest count shown as one.
pub const BAND: u64 = 5;

/// A count as reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Figure {
    /// The count itself (figures that are not sensitive).
    Shown(u64),
    /// A sensitive count of 5 or more, as the band of five it lies in (its lower end).
    Band(u64),
    /// A sensitive count of 0 to 4.
    Hidden,
    /// A sensitive figure that is not published here (see [`Withheld`]).
    Withheld(Withheld),
}

/// Why a sensitive figure is not published.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Withheld {
    /// Parts of the province and breakdowns are published as of the plan's end only.
    Period,
    /// The row is not one area (province, old district, commune) wholly in the caller's scope.
    Area,
    /// A part of the same whole (another district or commune, another group) has fewer than
    /// five, so none of the parts is published.
    Partition,
}

impl Default for Figure {
    fn default() -> Figure {
        Figure::Shown(0)
    }
}

impl Figure {
    /// How a hidden figure is written in the API, the page and the exports.
    pub const HIDDEN_TEXT: &'static str = "<5";

    /// A sensitive count as published: its band, or hidden.
    pub fn sensitive(count: u64) -> Figure {
        if count < BAND {
            Figure::Hidden
        } else {
            Figure::Band(count / BAND * BAND)
        }
    }

    /// The count itself when it is published as it is.
    pub fn shown(self) -> Option<u64> {
        match self {
            Figure::Shown(v) => Some(v),
            _ => None,
        }
    }

    /// A published sensitive figure of at least five (a band).
    pub fn at_least_five(self) -> bool {
        matches!(self, Figure::Band(_))
    }

    pub fn withheld(self) -> Option<Withheld> {
        match self {
            Figure::Withheld(w) => Some(w),
            _ => None,
        }
    }

    /// The text of a band or a hidden count (`None` for a number or a withheld figure).
    pub fn text(self) -> Option<String> {
        match self {
            Figure::Band(lo) => Some(format!("{lo}–{}", lo + BAND - 1)),
            Figure::Hidden => Some(Figure::HIDDEN_TEXT.to_owned()),
            Figure::Shown(_) | Figure::Withheld(_) => None,
        }
    }
}

impl Serialize for Figure {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Figure::Shown(v) => s.serialize_u64(*v),
            Figure::Withheld(_) => s.serialize_none(),
            f => s.serialize_str(&f.text().unwrap_or_default()),
        }
    }
}

/// The last day of the quarter `day` falls in.
fn quarter_end(day: Day) -> Day {
    let (year, month) = (day.0 / 10_000, day.0 / 100 % 100);
    let last = month.div_ceil(3) * 3;
    let days = if last == 6 || last == 9 { 30 } else { 31 };
    Day(year * 10_000 + last * 100 + days)
}

/// The day a report's sensitive figures are counted at: the end of the last quarter that has
/// ended by `as_of`, and never after the plan's end.
pub fn period_end(as_of: Day, plan_end: Day) -> Day {
    if as_of >= plan_end {
        return plan_end;
    }
    let end = quarter_end(as_of);
    if end == as_of {
        return end;
    }
    // The quarter before `as_of`'s.
    let (year, month) = (as_of.0 / 10_000, as_of.0 / 100 % 100);
    let first = (month - 1) / 3 * 3 + 1;
    if first == 1 {
        Day((year - 1) * 10_000 + 1231)
    } else {
        quarter_end(Day(year * 10_000 + (first - 1) * 100 + 1))
    }
}

/// Today's communes of the plan (positions) in a fixed tree: the province, the old districts
/// (those whose communes of today no other district shares), and each commune. Parts of the
/// province are published only down this tree.
#[derive(Clone, Debug)]
pub struct Tree {
    /// Every node's communes (sorted), the province first; a district of one commune is that
    /// commune's node.
    pub nodes: Vec<Vec<usize>>,
    /// Each node's parent (`None` for the province).
    pub parent: Vec<Option<usize>>,
}

impl Tree {
    pub fn of(plan: &Plan) -> Tree {
        let areas = Areas::bundled();
        let n = plan.communes.len();
        let position = |code: &str| plan.communes.iter().position(|c| c == areas.current(code));
        // Today's communes of each old district of the plan.
        let mut districts: Vec<(String, BTreeSet<usize>)> = Vec::new();
        for commune in areas.communes() {
            let (Some(d), Some(r)) = (
                areas.ancestor(&commune.code, AreaLevel::District),
                position(&commune.code),
            ) else {
                continue;
            };
            match districts.iter_mut().find(|(code, _)| *code == d.code) {
                Some((_, set)) => {
                    set.insert(r);
                }
                None => districts.push((d.code.clone(), BTreeSet::from([r]))),
            }
        }
        let clean: Vec<Vec<usize>> = districts
            .iter()
            .filter(|(code, set)| {
                districts
                    .iter()
                    .all(|(other, o)| other == code || o.is_disjoint(set))
            })
            .map(|(_, set)| set.iter().copied().collect())
            .collect();
        let mut nodes = vec![(0..n).collect::<Vec<_>>()];
        let mut parent = vec![None];
        for d in &clean {
            if d.len() > 1 && d.len() < n {
                nodes.push(d.clone());
                parent.push(Some(0));
            }
        }
        for r in 0..n {
            if n == 1 {
                break;
            }
            let up = (1..nodes.len())
                .find(|i| nodes[*i].contains(&r))
                .unwrap_or(0);
            nodes.push(vec![r]);
            parent.push(Some(up));
        }
        Tree { nodes, parent }
    }

    /// The node of exactly these communes.
    pub fn node(&self, rows: &[usize]) -> Option<usize> {
        let mut sorted = rows.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        self.nodes.iter().position(|n| *n == sorted)
    }

    fn children(&self, node: usize) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|c| self.parent[*c] == Some(node))
            .collect()
    }

    /// Each node's figure as published at the plan's end, from its count: the province as its
    /// band; the parts of a node with 5 or more only if every one of them has 5 or more (then
    /// down again), else none of them.
    pub fn publish(&self, count: impl Fn(&[usize]) -> u64) -> Vec<Figure> {
        let mut out = vec![Figure::Withheld(Withheld::Partition); self.nodes.len()];
        out[0] = Figure::sensitive(count(&self.nodes[0]));
        // Parents come before their children.
        for node in 0..self.nodes.len() {
            if !out[node].at_least_five() {
                continue;
            }
            let children = self.children(node);
            let counts: Vec<u64> = children.iter().map(|c| count(&self.nodes[*c])).collect();
            if parts_published(&counts) {
                for (c, v) in children.iter().zip(counts) {
                    out[*c] = Figure::sensitive(v);
                }
            }
        }
        out
    }
}

/// Whether the parts of a whole are published: every one has 5 or more (a part with none
/// counts as small too, so that a withheld table says nothing about which part is small).
pub fn parts_published(counts: &[u64]) -> bool {
    counts.iter().all(|c| *c >= BAND)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_published_as_bands_of_five() {
        assert_eq!(Figure::sensitive(0), Figure::Hidden);
        assert_eq!(Figure::sensitive(4), Figure::Hidden);
        assert_eq!(Figure::sensitive(5), Figure::Band(5));
        assert_eq!(Figure::sensitive(9), Figure::Band(5));
        assert_eq!(Figure::sensitive(14), Figure::Band(10));
        let json = |f: Figure| serde_json::to_string(&f).unwrap();
        assert_eq!(json(Figure::Hidden), "\"<5\"");
        assert_eq!(json(Figure::Band(10)), "\"10–14\"");
        assert_eq!(json(Figure::Shown(0)), "0");
        assert_eq!(json(Figure::Withheld(Withheld::Period)), "null");
    }

    #[test]
    fn a_report_counts_victims_at_the_end_of_the_last_full_quarter() {
        let end = Day(20251231);
        let at = |d: u32| period_end(Day(d), end).0;
        assert_eq!(at(20240331), 20240331);
        assert_eq!(at(20240401), 20240331);
        assert_eq!(at(20240629), 20240331);
        assert_eq!(at(20240630), 20240630);
        assert_eq!(at(20241001), 20240930);
        assert_eq!(at(20250115), 20241231);
        assert_eq!(at(20251230), 20250930);
        assert_eq!(at(20251231), 20251231);
        assert_eq!(at(20270101), 20251231);
        assert_eq!(at(20200101), 20191231);
        // A plan that ends inside a quarter: its end is the last period end.
        assert_eq!(period_end(Day(20250620), Day(20250615)).0, 20250615);
        assert_eq!(period_end(Day(20250610), Day(20250615)).0, 20250331);
    }

    #[test]
    fn parts_are_published_only_when_every_part_has_five() {
        assert!(parts_published(&[5, 12, 7]));
        assert!(!parts_published(&[5, 12, 0]));
        assert!(!parts_published(&[5, 4]));
        assert!(parts_published(&[]));
    }

    #[test]
    fn kon_tums_tree_is_the_province_its_old_districts_and_todays_communes() {
        let plan = Plan::bundled();
        let tree = Tree::of(plan);
        let code = |r: &usize| plan.communes[*r].as_str();
        assert_eq!(tree.nodes[0].len(), 13);
        // Three old districts became two communes of today or more; the others one.
        let districts: Vec<Vec<&str>> = (1..tree.nodes.len())
            .filter(|i| tree.nodes[*i].len() > 1)
            .map(|i| {
                let mut codes: Vec<&str> = tree.nodes[i].iter().map(code).collect();
                codes.sort_unstable();
                codes
            })
            .collect();
        assert_eq!(
            districts,
            [
                ["51.102", "51.103"],
                ["51.106", "51.107"],
                ["51.110", "51.111"]
            ]
        );
        let ngoc_linh = tree.node(&[plan.communes.iter().position(|c| c == "51.102").unwrap()]);
        let parent = tree.parent[ngoc_linh.unwrap()].unwrap();
        let mut codes: Vec<&str> = tree.nodes[parent].iter().map(code).collect();
        codes.sort_unstable();
        assert_eq!(codes, ["51.102", "51.103"]);
        let bo_y = tree.node(&[plan.communes.iter().position(|c| c == "51.104").unwrap()]);
        assert_eq!(
            tree.parent[bo_y.unwrap()],
            Some(0),
            "Ngọc Hồi had one commune: no node of its own"
        );
        assert_eq!(tree.children(0).len(), 10);
    }

    #[test]
    fn the_tree_publishes_down_only_where_every_part_has_five() {
        // The province; two districts of two communes and one of one.
        let tree = Tree {
            nodes: vec![
                vec![0, 1, 2, 3, 4],
                vec![0, 1],
                vec![2, 3],
                vec![0],
                vec![1],
                vec![2],
                vec![3],
                vec![4],
            ],
            parent: vec![
                None,
                Some(0),
                Some(0),
                Some(1),
                Some(1),
                Some(2),
                Some(2),
                Some(0),
            ],
        };
        let counts = [6u64, 7, 9, 2, 5];
        let count = |rows: &[usize]| rows.iter().map(|r| counts[*r]).sum();
        let out = tree.publish(count);
        assert_eq!(out[0], Figure::Band(25), "29 in all");
        assert_eq!(out[1], Figure::Band(10));
        assert_eq!(out[2], Figure::Band(10));
        assert_eq!(out[7], Figure::Band(5));
        assert_eq!((out[3], out[4]), (Figure::Band(5), Figure::Band(5)));
        let partition = Figure::Withheld(Withheld::Partition);
        assert_eq!((out[5], out[6]), (partition, partition), "2 is under 5");
        // One district under five: no district and no commune.
        let counts = [6u64, 7, 1, 2, 5];
        let count = |rows: &[usize]| rows.iter().map(|r| counts[*r]).sum();
        let out = tree.publish(count);
        assert_eq!(out[0], Figure::Band(20));
        assert!(out[1..].iter().all(|f| *f == partition));
        // A province under five: nothing below it.
        let out = tree.publish(|rows: &[usize]| rows.len() as u64 - 1);
        assert_eq!(out[0], Figure::Hidden);
        assert!(out[1..].iter().all(|f| *f == partition));
    }
}
