//! An outsider's view of the published victim figures, for the disclosure audit: every figure
//! the API gave becomes a constraint on how many victims fall in a set (which communes of
//! today, opened up to which day, approved records only or every submitted one, which sex, age
//! group or ethnic group), and from these alone the audit bounds every other set of victims.
//!
//! Two attackers. The quick one (`pairs`) subtracts figures two by two and a whole from its
//! parts, as someone with a spreadsheet would; what it derives is certain, so each finding is
//! a real disclosure. The exact one (`exact`) decides, for each set of victims whose true
//! count is 1 to 4, whether the published figures leave room for that set to hold no one (or
//! five or more): integer feasibility over the cells the figures tell apart, by a small simplex
//! with branch and bound, and branching over "some part under 5" signals of withheld tables.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A calendar day as `yyyymmdd`.
pub type Day = u32;

/// No upper bound.
pub const INF: u64 = u64::MAX;

/// A breakdown dimension (age groups depend on the day they are taken on).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dim {
    Sex,
    Age(Day),
    Ethnicity,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cat {
    pub dim: Dim,
    pub key: String,
}

/// The victims a figure counts: those in `leaves` (today's communes, by position), whose
/// counted case was opened from the plan's start up to `to`, approved (or with `all` every
/// submitted one), and in a category.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pred {
    pub leaves: Vec<usize>,
    pub to: Day,
    pub all: bool,
    pub cat: Option<Cat>,
}

/// What the audit knows of a victim (the truth, never given to the attackers).
#[derive(Clone, Debug)]
pub struct Victim {
    pub leaf: usize,
    pub opened: Day,
    /// Counted with approved records only (else only in a preview).
    pub approved: bool,
    pub sex: String,
    pub ethnicity: Option<String>,
    /// `YYYY` or `YYYY-MM-DD`.
    pub birth: Option<String>,
}

pub fn age_group(birth: Option<&str>, on: Day) -> &'static str {
    let Some(b) = birth else { return "unknown" };
    let year: i64 = b[..4].parse().unwrap();
    let born_md: u32 = if b.len() == 10 {
        b[5..7].parse::<u32>().unwrap() * 100 + b[8..10].parse::<u32>().unwrap()
    } else {
        101
    };
    let (on_year, on_md) = (i64::from(on / 10_000), on % 10_000);
    let age = on_year - year - i64::from(on_md < born_md);
    match age {
        a if a < 0 => "unknown",
        0..=15 => "0-15",
        16..=30 => "16-30",
        31..=59 => "31-59",
        _ => "60+",
    }
}

impl Cat {
    pub fn matches(&self, v: &Victim) -> bool {
        match &self.dim {
            Dim::Sex => v.sex == self.key,
            Dim::Ethnicity => match (self.key.as_str(), v.ethnicity.as_deref()) {
                ("unknown", e) => e.is_none(),
                ("minority", Some(e)) => e != "01",
                (k, Some(e)) => k == e,
                _ => false,
            },
            Dim::Age(on) => age_group(v.birth.as_deref(), *on) == self.key,
        }
    }
}

impl Pred {
    pub fn matches(&self, v: &Victim) -> bool {
        self.leaves.binary_search(&v.leaf).is_ok()
            && v.opened <= self.to
            && (self.all || v.approved)
            && self.cat.as_ref().is_none_or(|c| c.matches(v))
    }

    pub fn truth(&self, victims: &[Victim]) -> u64 {
        victims.iter().filter(|v| self.matches(v)).count() as u64
    }

    fn group(&self) -> (Vec<usize>, Day, bool) {
        (self.leaves.clone(), self.to, self.all)
    }
}

/// A published interval `[lo, hi]` (`hi` = [`INF`] when unbounded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub lo: u64,
    pub hi: u64,
}

impl Range {
    pub fn exact(n: u64) -> Range {
        Range { lo: n, hi: n }
    }

    fn contains(self, n: u64) -> bool {
        self.lo <= n && n <= self.hi
    }

    /// Known to be 1 to 4: a small group named.
    pub fn small(self) -> bool {
        self.lo >= 1 && self.hi <= 4
    }

    fn text(self) -> String {
        if self.hi == INF {
            format!("[{}, ∞)", self.lo)
        } else {
            format!("[{}, {}]", self.lo, self.hi)
        }
    }
}

/// `a - b` for published sets `b ⊂ a`: what lies in `a` and not in `b`.
fn minus(a: Range, b: Range) -> Range {
    Range {
        lo: a.lo.saturating_sub(b.hi),
        hi: if a.hi == INF {
            INF
        } else {
            a.hi.saturating_sub(b.lo)
        },
    }
}

fn sum(ranges: impl Iterator<Item = Range>) -> Range {
    ranges.fold(Range::exact(0), |acc, r| Range {
        lo: acc.lo + r.lo,
        hi: if acc.hi == INF || r.hi == INF {
            INF
        } else {
            acc.hi + r.hi
        },
    })
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A figure that is not the true count (or a band that does not hold it).
    Wrong,
    /// Two published figures of the same set that disagree.
    Conflict,
    /// A set of victims known to hold 1 to 4 people.
    Pinned,
    /// A withheld table whose stated reason is false.
    FalseReason,
    /// A drill-down that lists more than the published figures show.
    Listing,
    /// Figures of a kind the exact attacker cannot model (see `exact`).
    Unmodelled,
}

#[derive(Clone, Debug)]
pub struct Finding {
    pub kind: Kind,
    pub text: String,
}

/// Communes and category.
type SetKey = (Vec<usize>, Option<Cat>);
/// Date, review rule and category.
type WhenKey = (Day, bool, Option<Cat>);
/// Communes, date and review rule.
type Group = (Vec<usize>, Day, bool);

/// Everything published, from every report asked for.
#[derive(Default)]
pub struct Published {
    pub claims: BTreeMap<Pred, Range>,
    /// Where each figure was first read (report and cell), for the findings.
    pub whence: BTreeMap<Pred, String>,
    /// Withheld tables: at least one of these sets holds fewer than 5 victims.
    pub alts: BTreeSet<Vec<Pred>>,
    /// Breakdowns given in full (a category not listed is zero): the group and dimension.
    pub complete: BTreeSet<(Vec<usize>, Day, bool, Dim)>,
    /// What figures say in words, where an attacker reads more into them (a `<5` that may
    /// also stand for a larger count): each must still be true.
    pub literal: Vec<(Pred, Range, String)>,
    pub findings: Vec<Finding>,
}

impl Published {
    pub fn claim(&mut self, pred: Pred, range: Range, whence: &str) {
        match self.claims.get(&pred).copied() {
            None => {
                self.claims.insert(pred.clone(), range);
                self.whence.insert(pred, whence.to_owned());
            }
            Some(old) if old == range => {}
            Some(old) => {
                let was = self.whence.get(&pred).cloned().unwrap_or_default();
                self.findings.push(Finding {
                    kind: Kind::Conflict,
                    text: format!(
                        "{pred:?}: {} in {was}, {} in {whence}",
                        old.text(),
                        range.text()
                    ),
                });
                // Two readings of one set: keep what both allow, or the first when none.
                let both = Range {
                    lo: old.lo.max(range.lo),
                    hi: old.hi.min(range.hi),
                };
                if both.lo <= both.hi {
                    self.claims.insert(pred, both);
                }
            }
        }
    }

    /// Every figure must hold the true count, and every "some part is under 5" must be true.
    pub fn check_truth(&mut self, victims: &[Victim]) {
        for (pred, range) in &self.claims {
            let truth = pred.truth(victims);
            if !range.contains(truth) {
                self.findings.push(Finding {
                    kind: Kind::Wrong,
                    text: format!(
                        "{} shown for {truth} ({pred:?}, {})",
                        range.text(),
                        self.whence[pred]
                    ),
                });
            }
        }
        for (pred, range, whence) in &self.literal {
            let truth = pred.truth(victims);
            if !range.contains(truth) {
                self.findings.push(Finding {
                    kind: Kind::Wrong,
                    text: format!("{} shown for {truth} ({pred:?}, {whence})", range.text()),
                });
            }
        }
        for alt in &self.alts {
            if !alt.iter().any(|p| p.truth(victims) <= 4) {
                self.findings.push(Finding {
                    kind: Kind::FalseReason,
                    text: format!("withheld for a part under 5, but none is: {alt:?}"),
                });
            }
        }
    }

    fn pinned(&mut self, what: String, range: Range, truth: u64) {
        if range.small() {
            self.findings.push(Finding {
                kind: Kind::Pinned,
                text: format!("{what}: {} (true {truth})", range.text()),
            });
        }
    }

    /// The quick attacker: every figure alone, every difference of two nested figures (dates,
    /// preview and approved, areas, a category and its total), and each part of a whole whose
    /// other parts are published (communes of a district or the province, categories of a
    /// breakdown given in full). `partitions`: parent → parts, as sets of today's communes.
    pub fn pairs(&mut self, victims: &[Victim], partitions: &[(Vec<usize>, Vec<Vec<usize>>)]) {
        let claims: Vec<(Pred, Range)> = self.claims.iter().map(|(p, r)| (p.clone(), *r)).collect();
        let mut found: Vec<(String, Range, u64)> = Vec::new();
        for (p, r) in &claims {
            if r.small() {
                found.push((format!("{p:?}"), *r, p.truth(victims)));
            }
        }
        // Same communes and category: dates and preview.
        let mut by_set: BTreeMap<SetKey, Vec<(Day, bool, Range)>> = BTreeMap::new();
        // Same date, review rule and category: areas.
        let mut by_when: BTreeMap<WhenKey, BTreeMap<Vec<usize>, Range>> = BTreeMap::new();
        // Same communes, date and review rule: categories.
        let mut by_group: BTreeMap<Group, Vec<(Option<Cat>, Range)>> = BTreeMap::new();
        for (p, r) in &claims {
            by_set
                .entry((p.leaves.clone(), p.cat.clone()))
                .or_default()
                .push((p.to, p.all, *r));
            by_when
                .entry((p.to, p.all, p.cat.clone()))
                .or_default()
                .insert(p.leaves.clone(), *r);
            by_group
                .entry(p.group())
                .or_default()
                .push((p.cat.clone(), *r));
        }
        for ((leaves, cat), figures) in &by_set {
            for (i, (to_a, all_a, a)) in figures.iter().enumerate() {
                for (to_b, all_b, b) in &figures[i + 1..] {
                    let (small, big, small_to, small_all, big_to, big_all) =
                        if to_a <= to_b && all_a <= all_b {
                            (a, b, to_a, all_a, to_b, all_b)
                        } else if to_b <= to_a && all_b <= all_a {
                            (b, a, to_b, all_b, to_a, all_a)
                        } else {
                            continue;
                        };
                    let d = minus(*big, *small);
                    if d.small() {
                        let truth = victims
                            .iter()
                            .filter(|v| {
                                let inside = |to: Day, all: bool| {
                                    Pred {
                                        leaves: leaves.clone(),
                                        to,
                                        all,
                                        cat: cat.clone(),
                                    }
                                    .matches(v)
                                };
                                inside(*big_to, *big_all) && !inside(*small_to, *small_all)
                            })
                            .count() as u64;
                        found.push((
                            format!(
                                "{leaves:?} {cat:?}: ({small_to}, all {small_all}) → ({big_to}, all {big_all})"
                            ),
                            d,
                            truth,
                        ));
                    }
                }
            }
        }
        for ((to, all, cat), areas) in &by_when {
            let count = |leaves: &[usize]| {
                Pred {
                    leaves: leaves.to_vec(),
                    to: *to,
                    all: *all,
                    cat: cat.clone(),
                }
                .truth(victims)
            };
            for (big, b) in areas {
                for (small, s) in areas {
                    if small.len() < big.len() && small.iter().all(|l| big.contains(l)) {
                        let d = minus(*b, *s);
                        if d.small() {
                            found.push((
                                format!("{big:?} minus {small:?} at {to}, all {all}, {cat:?}"),
                                d,
                                count(big) - count(small),
                            ));
                        }
                    }
                }
            }
            for (parent, parts) in partitions {
                let Some(whole) = areas.get(parent) else {
                    continue;
                };
                let given: Vec<Option<Range>> =
                    parts.iter().map(|p| areas.get(p).copied()).collect();
                for (k, part) in parts.iter().enumerate() {
                    if given.iter().enumerate().any(|(j, g)| j != k && g.is_none()) {
                        continue;
                    }
                    let others = sum(given
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| *j != k)
                        .map(|(_, g)| g.unwrap()));
                    let mut d = minus(*whole, others);
                    if let Some(own) = given[k] {
                        d = Range {
                            lo: d.lo.max(own.lo),
                            hi: d.hi.min(own.hi),
                        };
                    }
                    if d.small() {
                        found.push((
                            format!("{part:?} = {parent:?} minus the others, at {to}, all {all}, {cat:?}"),
                            d,
                            count(part),
                        ));
                    }
                }
            }
        }
        for ((leaves, to, all), figures) in &by_group {
            let Some(total) = figures.iter().find(|(c, _)| c.is_none()).map(|(_, r)| *r) else {
                continue;
            };
            let group = Pred {
                leaves: leaves.clone(),
                to: *to,
                all: *all,
                cat: None,
            };
            let mut dims: BTreeMap<Dim, Vec<(Cat, Range)>> = BTreeMap::new();
            for (c, r) in figures {
                if let Some(c) = c {
                    dims.entry(c.dim.clone()).or_default().push((c.clone(), *r));
                }
            }
            for (dim, cats) in &dims {
                let in_cat = |c: &Cat| {
                    victims
                        .iter()
                        .filter(|v| group.matches(v) && c.matches(v))
                        .count() as u64
                };
                for (c, r) in cats {
                    let d = minus(total, *r);
                    if d.small() {
                        found.push((
                            format!("{group:?} not in {c:?}"),
                            d,
                            group.truth(victims) - in_cat(c),
                        ));
                    }
                }
                if self
                    .complete
                    .contains(&(leaves.clone(), *to, *all, dim.clone()))
                {
                    for (k, (c, own)) in cats.iter().enumerate() {
                        let others = sum(cats
                            .iter()
                            .enumerate()
                            .filter(|(j, _)| *j != k)
                            .map(|(_, (_, r))| *r));
                        let d = minus(total, others);
                        let d = Range {
                            lo: d.lo.max(own.lo),
                            hi: d.hi.min(own.hi),
                        };
                        if d.small() {
                            found.push((
                                format!("{c:?} = total minus the other groups ({group:?})"),
                                d,
                                in_cat(c),
                            ));
                        }
                    }
                }
            }
        }
        for (what, range, truth) in found {
            self.pinned(what, range, truth);
        }
    }
}

// ---- The exact attacker.

/// Why the exact attacker cannot model what was published.
#[derive(Debug)]
pub struct TooBig(pub String);

/// A set of cells with bounds on how many victims it holds.
struct Row {
    cells: Vec<usize>,
    lo: u64,
    hi: u64,
}

/// One model: cells (commune × period × review × category of at most one breakdown), the
/// published figures over them, and the "some part under 5" signals.
struct Model {
    rows: Vec<Row>,
    alts: Vec<Vec<Vec<usize>>>,
    /// Victims per cell.
    truth: Vec<u64>,
    cells: usize,
    /// Cells no figure tells apart form one class; each cell's class, and each class's size.
    class: Vec<usize>,
    class_size: Vec<usize>,
    /// The figures as inequalities over classes, and the signals' members as sets of classes.
    ineqs: Vec<Ineq>,
    alt_classes: Vec<Vec<(u64, Vec<usize>)>>,
    /// Answers already found: (classes wholly in the set, for "none"; classes it touches, for
    /// "five or more").
    none: HashMap<Vec<usize>, Option<bool>>,
    five: HashMap<Vec<usize>, Option<bool>>,
    /// Victims per class in data that fit every figure: the true data, then every solution
    /// found; a set that one of them leaves empty (or fills with five) needs no search.
    witnesses: Vec<Vec<u64>>,
}
/// For each set of victims the audit protects, whether the published figures pin it to 1–4:
/// sets of today's communes given in `areas` (each commune, each district, the province), every
/// run of periods between the dates figures were given for, approved victims, preview-only
/// ones or both, and for each breakdown each category and all but one. Returns the sets found
/// pinned, or why the figures do not fit the model (more than one date or area per breakdown).
pub fn exact(
    published: &Published,
    victims: &[Victim],
    areas: &[Vec<usize>],
    leaves: usize,
    start: Day,
) -> Result<(Vec<Finding>, Stats), TooBig> {
    let mut cuts: BTreeSet<Day> = published
        .claims
        .keys()
        .map(|p| p.to)
        .chain(published.alts.iter().flatten().map(|p| p.to))
        .filter(|d| *d >= start)
        .collect();
    if cuts.len() > 64 {
        return Err(TooBig(format!("{} dates", cuts.len())));
    }
    if cuts.is_empty() {
        cuts.insert(start);
    }
    let cuts: Vec<Day> = cuts.into_iter().collect();
    let mut dims: BTreeMap<Dim, BTreeSet<(Vec<usize>, Day, bool)>> = BTreeMap::new();
    for p in published
        .claims
        .keys()
        .chain(published.alts.iter().flatten())
    {
        if let Some(c) = &p.cat {
            dims.entry(c.dim.clone()).or_default().insert(p.group());
        }
    }
    for (dim, groups) in &dims {
        if groups.len() > 1 {
            return Err(TooBig(format!("{dim:?} given for {} groups", groups.len())));
        }
    }
    let mut stats = Stats::default();
    let mut findings = Vec::new();
    for dim in std::iter::once(None).chain(dims.keys().cloned().map(Some)) {
        let mut model = Model::build(published, victims, &cuts, leaves, start, dim.as_ref());
        stats.cells += model.cells;
        for (what, q) in protected(&cuts, areas, leaves, dim.as_ref(), &model) {
            let truth: u64 = q.iter().map(|c| model.truth[*c]).sum();
            if !(1..=4).contains(&truth) {
                continue;
            }
            stats.checked += 1;
            match model.pinned(&q, &mut stats) {
                Some(false) => {}
                Some(true) => findings.push(Finding {
                    kind: Kind::Pinned,
                    text: format!("{what}: only 1–4 possible (true {truth})"),
                }),
                None => findings.push(Finding {
                    kind: Kind::Pinned,
                    text: format!("{what}: undecided within the search budget (true {truth})"),
                }),
            }
        }
    }
    Ok((findings, stats))
}

/// What the exact attacker did.
#[derive(Debug, Default)]
pub struct Stats {
    /// Cells over all models.
    pub cells: usize,
    /// Sets of 1–4 victims examined.
    pub checked: usize,
    /// Linear programs solved.
    pub lps: usize,
}

impl Model {
    fn build(
        published: &Published,
        victims: &[Victim],
        cuts: &[Day],
        leaves: usize,
        start: Day,
        dim: Option<&Dim>,
    ) -> Model {
        let periods = cuts.len();
        let cats: Vec<String> = match dim {
            None => vec![String::new()],
            Some(d) => {
                let mut keys: BTreeSet<String> = published
                    .claims
                    .keys()
                    .chain(published.alts.iter().flatten())
                    .filter_map(|p| p.cat.as_ref())
                    .filter(|c| &c.dim == d)
                    .map(|c| c.key.clone())
                    .collect();
                // Everyone in none of the categories given.
                keys.insert("\u{0}rest".into());
                keys.into_iter().collect()
            }
        };
        let cells = leaves * periods * 2 * cats.len();
        let cell = |leaf: usize, period: usize, approved: bool, cat: usize| {
            ((leaf * periods + period) * 2 + usize::from(!approved)) * cats.len() + cat
        };
        let period_of = |day: Day| cuts.iter().position(|c| day <= *c);
        let set = |p: &Pred, whole: bool| -> Vec<usize> {
            let mut out = Vec::new();
            if p.to < start {
                return out;
            }
            let last = period_of(p.to).unwrap();
            for &leaf in &p.leaves {
                for period in 0..=last {
                    for approved in [true, false] {
                        if !approved && !p.all {
                            continue;
                        }
                        for (ci, key) in cats.iter().enumerate() {
                            let inside = whole
                                || match (&p.cat, dim) {
                                    (Some(c), Some(d)) if &c.dim == d => &c.key == key,
                                    _ => true,
                                };
                            if inside {
                                out.push(cell(leaf, period, approved, ci));
                            }
                        }
                    }
                }
            }
            out
        };
        let mut rows = Vec::new();
        // Figures of another breakdown bound the total of their group only: from below by
        // the sum of what they show, from above too when they are given in full.
        let mut other: BTreeMap<(Pred, Dim), (u64, u64)> = BTreeMap::new();
        for (p, r) in &published.claims {
            match (&p.cat, dim) {
                (Some(c), d) if d != Some(&c.dim) => {
                    let total = Pred {
                        cat: None,
                        ..p.clone()
                    };
                    let e = other.entry((total, c.dim.clone())).or_insert((0, 0));
                    e.0 += r.lo;
                    e.1 = if e.1 == INF || r.hi == INF {
                        INF
                    } else {
                        e.1 + r.hi
                    };
                }
                _ => rows.push(Row {
                    cells: set(p, false),
                    lo: r.lo,
                    hi: r.hi,
                }),
            }
        }
        for ((total, d), (lo, hi)) in other {
            let complete = published.complete.contains(&(
                total.leaves.clone(),
                total.to,
                total.all,
                d.clone(),
            ));
            rows.push(Row {
                cells: set(&total, true),
                lo,
                hi: if complete { hi } else { INF },
            });
        }
        let alts: Vec<Vec<Vec<usize>>> = published
            .alts
            .iter()
            .filter(|alt| {
                alt.iter().all(|p| match (&p.cat, dim) {
                    (None, _) => true,
                    (Some(c), Some(d)) => &c.dim == d,
                    _ => false,
                })
            })
            .map(|alt| alt.iter().map(|p| set(p, false)).collect())
            .collect();
        let mut truth = vec![0; cells];
        for v in victims {
            let Some(period) = period_of(v.opened).filter(|_| v.opened >= start) else {
                continue;
            };
            let ci = match dim {
                None => 0,
                Some(d) => cats
                    .iter()
                    .position(|k| {
                        Cat {
                            dim: d.clone(),
                            key: k.clone(),
                        }
                        .matches(v)
                    })
                    .unwrap_or(cats.len() - 1),
            };
            truth[cell(v.leaf, period, v.approved, ci)] += 1;
        }
        let mut signature: Vec<Vec<u32>> = vec![Vec::new(); cells];
        for (i, row) in rows.iter().enumerate() {
            for c in &row.cells {
                signature[*c].push(i as u32);
            }
        }
        let mut next = rows.len() as u32;
        for alt in &alts {
            for member in alt {
                for c in member {
                    signature[*c].push(next);
                }
                next += 1;
            }
        }
        let mut ids: HashMap<Vec<u32>, usize> = HashMap::new();
        let mut class = Vec::with_capacity(cells);
        for s in signature {
            let n = ids.len();
            class.push(*ids.entry(s).or_insert(n));
        }
        let mut class_size = vec![0; ids.len()];
        for c in &class {
            class_size[*c] += 1;
        }
        let to_classes = |cells: &[usize]| -> Vec<usize> {
            let set: BTreeSet<usize> = cells.iter().map(|c| class[*c]).collect();
            set.into_iter().collect()
        };
        let ineqs = rows
            .iter()
            .map(|r| Ineq {
                vars: to_classes(&r.cells),
                lo: r.lo,
                hi: r.hi,
            })
            .collect();
        // The true data's parts under 5 first: the likeliest to fit.
        let alt_classes = alts
            .iter()
            .map(|alt: &Vec<Vec<usize>>| {
                let mut members: Vec<(u64, Vec<usize>)> = alt
                    .iter()
                    .map(|m| (m.iter().map(|c| truth[*c]).sum(), to_classes(m)))
                    .collect();
                members.sort();
                members
            })
            .collect();
        Model {
            rows,
            alts,
            truth,
            cells,
            class,
            class_size,
            ineqs,
            alt_classes,
            none: HashMap::new(),
            five: HashMap::new(),
            witnesses: Vec::new(),
        }
        .with_truth()
    }

    fn with_truth(mut self) -> Model {
        let mut per_class = vec![0; self.class_size.len()];
        for (c, t) in self.truth.iter().enumerate() {
            per_class[self.class[c]] += t;
        }
        // Only if it fits what was published (a wrong figure is a finding of its own).
        let total = |vars: &[usize]| vars.iter().map(|k| per_class[*k]).sum::<u64>();
        let fits = self
            .ineqs
            .iter()
            .all(|r| (r.lo..=r.hi).contains(&total(&r.vars)))
            && self
                .alt_classes
                .iter()
                .all(|a| a.iter().any(|(_, m)| total(m) <= 4));
        if fits {
            self.witnesses.push(per_class);
        }
        self
    }

    /// Whether `q` must hold 1–4 victims under every reading of the figures (`None`: the
    /// search ran out of budget).
    fn pinned(&mut self, q: &[usize], stats: &mut Stats) -> Option<bool> {
        let mut inside: BTreeMap<usize, usize> = BTreeMap::new();
        for c in q {
            *inside.entry(self.class[*c]).or_default() += 1;
        }
        let touched: Vec<usize> = inside.keys().copied().collect();
        let whole: Vec<usize> = inside
            .iter()
            .filter(|(k, n)| self.class_size[**k] == **n)
            .map(|(k, _)| *k)
            .collect();
        let n = self.class_size.len();
        let alts: Vec<Vec<Vec<usize>>> = self
            .alt_classes
            .iter()
            .map(|a| a.iter().map(|(_, m)| m.clone()).collect())
            .collect();
        // Room for no one: what lies wholly inside holds none (a class partly inside can keep
        // its victims outside).
        let fits_none = |w: &Vec<u64>| whole.iter().all(|k| w[*k] == 0);
        // Room for five or more: a class partly inside can put all its victims inside.
        let fits_five = |w: &Vec<u64>| touched.iter().map(|k| w[*k]).sum::<u64>() >= 5;
        if self.witnesses.iter().any(|w| fits_none(w) || fits_five(w)) {
            return Some(false);
        }
        let none = match self.none.get(&whole) {
            Some(r) => *r,
            None => {
                let mut rows = self.ineqs.clone();
                rows.push(Ineq {
                    vars: whole.clone(),
                    lo: 0,
                    hi: 0,
                });
                let mut budget = 20_000usize;
                let r = with_alts(n, &mut rows, &alts, &mut budget, stats);
                let answer = r.as_ref().map(Option::is_some);
                if let Some(Some(w)) = r {
                    self.witnesses.push(w);
                }
                self.none.insert(whole, answer);
                answer
            }
        };
        if none == Some(true) {
            return Some(false);
        }
        let five = match self.five.get(&touched) {
            Some(r) => *r,
            None => {
                let mut rows = self.ineqs.clone();
                rows.push(Ineq {
                    vars: touched.clone(),
                    lo: 5,
                    hi: INF,
                });
                let mut budget = 20_000usize;
                let r = with_alts(n, &mut rows, &alts, &mut budget, stats);
                let answer = r.as_ref().map(Option::is_some);
                if let Some(Some(w)) = r {
                    self.witnesses.push(w);
                }
                self.five.insert(touched, answer);
                answer
            }
        };
        match (none, five) {
            (_, Some(true)) => Some(false),
            (Some(false), Some(false)) => Some(true),
            _ => None,
        }
    }
}

/// An integer point with one member of each signal under 5, if any (`None`: out of budget):
/// depth first, dropping a branch as soon as its linear relaxation has no point.
fn with_alts(
    n: usize,
    rows: &mut Vec<Ineq>,
    alts: &[Vec<Vec<usize>>],
    budget: &mut usize,
    stats: &mut Stats,
) -> Option<Option<Vec<u64>>> {
    if *budget == 0 {
        return None;
    }
    *budget -= 1;
    stats.lps += 1;
    if lp_feasible(n, rows).is_none() {
        return Some(None);
    }
    let Some((first, rest)) = alts.split_first() else {
        return integer_point(n, rows, budget, stats);
    };
    let mut undecided = false;
    for member in first {
        rows.push(Ineq {
            vars: member.clone(),
            lo: 0,
            hi: 4,
        });
        let r = with_alts(n, rows, rest, budget, stats);
        rows.pop();
        match r {
            Some(Some(w)) => return Some(Some(w)),
            Some(None) => {}
            None => undecided = true,
        }
    }
    if undecided {
        None
    } else {
        Some(None)
    }
}

#[derive(Clone, Debug)]
struct Ineq {
    vars: Vec<usize>,
    lo: u64,
    hi: u64,
}

/// Integers x ≥ 0 with lo ≤ Σ x ≤ hi on every row, if any (`None`: out of budget): branch
/// and bound over the simplex.
fn integer_point(
    n: usize,
    rows: &mut Vec<Ineq>,
    budget: &mut usize,
    stats: &mut Stats,
) -> Option<Option<Vec<u64>>> {
    if *budget == 0 {
        return None;
    }
    *budget -= 1;
    stats.lps += 1;
    let Some(x) = lp_feasible(n, rows) else {
        return Some(None);
    };
    let Some((j, v)) = x
        .iter()
        .enumerate()
        .find(|(_, v)| (**v - v.round()).abs() > 1e-6)
        .map(|(j, v)| (j, *v))
    else {
        return Some(Some(x.iter().map(|v| v.round() as u64).collect()));
    };
    let mut undecided = false;
    for branch in [
        Ineq {
            vars: vec![j],
            lo: 0,
            hi: v.floor() as u64,
        },
        Ineq {
            vars: vec![j],
            lo: v.ceil() as u64,
            hi: INF,
        },
    ] {
        rows.push(branch);
        let r = integer_point(n, rows, budget, stats);
        rows.pop();
        match r {
            Some(Some(w)) => return Some(Some(w)),
            Some(None) => {}
            None => undecided = true,
        }
    }
    if undecided {
        None
    } else {
        Some(None)
    }
}

/// A point x ≥ 0 of the rows (phase one of the simplex, Bland's rule), or `None`.
fn lp_feasible(n: usize, rows: &[Ineq]) -> Option<Vec<f64>> {
    const EPS: f64 = 1e-9;
    // Each bound as one inequality: Σ x ≤ hi (a slack), Σ x ≥ lo (a surplus and an artificial).
    let mut le: Vec<(&[usize], f64)> = Vec::new();
    let mut ge: Vec<(&[usize], f64)> = Vec::new();
    for r in rows {
        if r.lo > 0 {
            ge.push((&r.vars, r.lo as f64));
        }
        if r.hi != INF {
            if r.vars.is_empty() {
                continue;
            }
            le.push((&r.vars, r.hi as f64));
        }
        if r.vars.is_empty() && r.lo > 0 {
            return None;
        }
    }
    let m = le.len() + ge.len();
    let cols = n + le.len() + 2 * ge.len();
    let width = cols + 1;
    let mut t = vec![0.0f64; m * width];
    let mut basis = vec![0usize; m];
    for (i, (vars, b)) in le.iter().enumerate() {
        for v in *vars {
            t[i * width + v] = 1.0;
        }
        t[i * width + n + i] = 1.0;
        t[i * width + cols] = *b;
        basis[i] = n + i;
    }
    for (k, (vars, b)) in ge.iter().enumerate() {
        let i = le.len() + k;
        for v in *vars {
            t[i * width + v] = 1.0;
        }
        t[i * width + n + le.len() + k] = -1.0;
        t[i * width + n + le.len() + ge.len() + k] = 1.0;
        t[i * width + cols] = *b;
        basis[i] = n + le.len() + ge.len() + k;
    }
    let artificial = |j: usize| j >= n + le.len() + ge.len();
    // Reduced costs of minimising the sum of the artificials.
    let mut z = vec![0.0f64; width];
    for (j, zj) in z.iter_mut().enumerate() {
        if j < cols && artificial(j) {
            continue;
        }
        *zj = -(le.len()..m).map(|i| t[i * width + j]).sum::<f64>();
    }
    for _ in 0..50_000 {
        let Some(enter) = (0..cols).find(|j| z[*j] < -EPS) else {
            break;
        };
        let mut leave: Option<(usize, f64)> = None;
        for i in 0..m {
            let a = t[i * width + enter];
            if a > EPS {
                let ratio = t[i * width + cols] / a;
                match leave {
                    Some((l, best))
                        if ratio > best + EPS
                            || ((ratio - best).abs() <= EPS && basis[i] > basis[l]) => {}
                    _ => leave = Some((i, ratio)),
                }
            }
        }
        let (row, _) = leave?;
        let pivot = t[row * width + enter];
        for j in 0..width {
            t[row * width + j] /= pivot;
        }
        for i in 0..m {
            if i != row {
                let f = t[i * width + enter];
                if f.abs() > EPS {
                    for j in 0..width {
                        t[i * width + j] -= f * t[row * width + j];
                    }
                }
            }
        }
        let f = z[enter];
        for j in 0..width {
            z[j] -= f * t[row * width + j];
        }
        basis[row] = enter;
    }
    if -z[cols] > 1e-7 {
        return None;
    }
    let mut x = vec![0.0; n];
    for (i, b) in basis.iter().enumerate() {
        if *b < n {
            x[*b] = t[i * width + cols];
        }
    }
    Some(x)
}

/// The sets the exact attacker examines in one model, by name and cells.
fn protected(
    cuts: &[Day],
    areas: &[Vec<usize>],
    leaves: usize,
    dim: Option<&Dim>,
    model: &Model,
) -> Vec<(String, Vec<usize>)> {
    let periods = cuts.len();
    let cats = model.cells / (leaves * periods * 2);
    let cell = |leaf: usize, period: usize, approved: bool, cat: usize| {
        ((leaf * periods + period) * 2 + usize::from(!approved)) * cats + cat
    };
    let mut cat_sets: Vec<(String, Vec<usize>)> = vec![("".into(), (0..cats).collect())];
    if dim.is_some() {
        for c in 0..cats {
            cat_sets.push((format!(" category {c}"), vec![c]));
            if cats > 2 {
                cat_sets.push((
                    format!(" all but category {c}"),
                    (0..cats).filter(|x| *x != c).collect(),
                ));
            }
        }
    }
    let mut out = Vec::new();
    for area in areas {
        for from in 0..periods {
            for to in from..periods {
                for (review, states) in [
                    ("approved", &[true][..]),
                    ("preview only", &[false][..]),
                    ("submitted", &[true, false][..]),
                ] {
                    for (cat_name, cat_set) in &cat_sets {
                        let mut q = Vec::new();
                        for leaf in area {
                            for period in from..=to {
                                for approved in states {
                                    for c in cat_set {
                                        q.push(cell(*leaf, period, *approved, *c));
                                    }
                                }
                            }
                        }
                        let first = if from == 0 {
                            "the plan's start".to_owned()
                        } else {
                            format!("after {}", cuts[from - 1])
                        };
                        out.push((
                            format!(
                                "{dim:?}{cat_name}: communes {area:?}, {review}, opened {first} to {}",
                                cuts[to]
                            ),
                            q,
                        ));
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn victim(leaf: usize, opened: Day) -> Victim {
        Victim {
            leaf,
            opened,
            approved: true,
            sex: "female".into(),
            ethnicity: Some("14".into()),
            birth: Some("1990".into()),
        }
    }

    fn total(leaves: &[usize], to: Day) -> Pred {
        Pred {
            leaves: leaves.to_vec(),
            to,
            all: false,
            cat: None,
        }
    }

    fn band(lo: u64) -> Range {
        Range { lo, hi: lo + 4 }
    }

    fn pinned(p: &Published, victims: &[Victim]) -> usize {
        let areas = vec![vec![0, 1], vec![0], vec![1]];
        let (findings, _) = exact(p, victims, &areas, 2, 20210101).unwrap();
        findings.len()
    }

    /// A commune that crosses into the next band while its province stays in one: the
    /// victims of the commune in between are 1 to 4.
    #[test]
    fn a_part_through_time_beside_its_whole_is_caught() {
        let mut v: Vec<Victim> = (0..9).map(|_| victim(0, 20210301)).collect();
        v.extend((0..11).map(|_| victim(1, 20210301)));
        v.push(victim(0, 20220301));
        let mut p = Published::default();
        p.claim(total(&[0, 1], 20211231), band(20), "");
        p.claim(total(&[0, 1], 20221231), band(20), "");
        p.claim(total(&[0], 20211231), band(5), "");
        p.claim(total(&[0], 20221231), band(10), "");
        assert!(pinned(&p, &v) > 0);
        p.pairs(&v, &[]);
        // Two by two, nothing shows: it takes the three figures together.
        assert!(p.findings.is_empty(), "{:?}", p.findings);
        // The province alone through time pins nothing.
        let mut p = Published::default();
        p.claim(total(&[0, 1], 20211231), band(20), "");
        p.claim(total(&[0, 1], 20221231), band(20), "");
        assert_eq!(pinned(&p, &v), 0);
    }

    /// A hidden part beside a shown part and the whole.
    #[test]
    fn a_hidden_part_beside_its_whole_and_a_shown_part_is_caught() {
        let mut v: Vec<Victim> = (0..7).map(|_| victim(0, 20210301)).collect();
        v.extend((0..4).map(|_| victim(1, 20210301)));
        let mut p = Published::default();
        p.claim(total(&[0, 1], 20211231), band(10), "");
        p.claim(total(&[0], 20211231), band(5), "");
        p.claim(total(&[1], 20211231), Range { lo: 0, hi: 4 }, "");
        assert!(pinned(&p, &v) > 0);
        p.pairs(&v, &[(vec![0, 1], vec![vec![0], vec![1]])]);
        assert!(p.findings.iter().any(|f| f.kind == Kind::Pinned));
        // Withheld instead, for a part under 5: nothing is pinned.
        let mut p = Published::default();
        p.claim(total(&[0, 1], 20211231), band(10), "");
        p.alts
            .insert(vec![total(&[0], 20211231), total(&[1], 20211231)]);
        assert_eq!(pinned(&p, &v), 0);
    }
}
