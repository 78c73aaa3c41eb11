//! Administrative areas as a dated code list with a crosswalk from old units to new ones.
//!
//! Until 30 June 2025 local government had three levels (province, district, commune); from
//! 1 July 2025 it has two (province, commune) and many communes merged. A record keeps the
//! commune code it was made with; [`Areas::current`] follows the crosswalk to today's unit and
//! [`Areas::ancestor`] climbs to an old district, so plan targets set in 2022 and reports made
//! after the merger aggregate the same records. The bundled list (`data/areas.tsv`) covers the
//! units fieldsync's demo and tests use; deployments load the official list with
//! [`Areas::from_tsv`].

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::OnceLock;

const BUNDLED: &str = include_str!("../../data/areas.tsv");

/// Administrative level of an area.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AreaLevel {
    Province,
    /// Abolished on 1 July 2025; kept for records and targets made before.
    District,
    Commune,
}

/// One administrative unit with its validity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Area {
    pub code: String,
    pub name: String,
    pub level: AreaLevel,
    pub parent: Option<String>,
    /// ISO dates; `valid_to` is `None` for units that exist today.
    pub valid_from: String,
    pub valid_to: Option<String>,
    /// The unit this one became when it was merged or re-parented.
    pub successor: Option<String>,
}

/// A code list of areas, indexed by code.
#[derive(Clone, Debug, Default)]
pub struct Areas {
    by_code: BTreeMap<String, Area>,
}

impl Areas {
    /// The list bundled with fieldsync.
    pub fn bundled() -> &'static Areas {
        static AREAS: OnceLock<Areas> = OnceLock::new();
        AREAS.get_or_init(|| Areas::from_tsv(BUNDLED).unwrap_or_default())
    }

    /// Parses a list in the bundled format: a header line, then
    /// `code name level parent valid_from valid_to successor`, tab-separated.
    pub fn from_tsv(text: &str) -> Result<Areas, String> {
        let mut by_code = BTreeMap::new();
        for (n, line) in text.lines().enumerate().skip(1) {
            if line.trim().is_empty() {
                continue;
            }
            let cols: Vec<&str> = line.split('\t').map(str::trim).collect();
            if cols.len() < 5 {
                return Err(format!("line {}: expected 7 columns", n + 1));
            }
            let level = match cols[2] {
                "province" => AreaLevel::Province,
                "district" => AreaLevel::District,
                "commune" => AreaLevel::Commune,
                other => return Err(format!("line {}: unknown level {other}", n + 1)),
            };
            let opt = |i: usize| {
                cols.get(i)
                    .filter(|s| !s.is_empty())
                    .map(|s| (*s).to_owned())
            };
            let area = Area {
                code: cols[0].to_owned(),
                name: cols[1].to_owned(),
                level,
                parent: opt(3),
                valid_from: cols[4].to_owned(),
                valid_to: opt(5),
                successor: opt(6),
            };
            by_code.insert(area.code.clone(), area);
        }
        Ok(Areas { by_code })
    }

    pub fn get(&self, code: &str) -> Option<&Area> {
        self.by_code.get(code)
    }

    /// Whether `code` is a commune, old or new: the level records are attached to.
    pub fn is_commune(&self, code: &str) -> bool {
        self.get(code)
            .is_some_and(|a| a.level == AreaLevel::Commune)
    }

    /// Today's unit for `code`, following the crosswalk through any number of mergers.
    pub fn current<'a>(&'a self, code: &'a str) -> &'a str {
        let mut code = code;
        // A cycle in a hand-edited list must not hang: a chain is never longer than the list.
        for _ in 0..=self.by_code.len() {
            match self.get(code).and_then(|a| a.successor.as_deref()) {
                Some(next) => code = next,
                None => break,
            }
        }
        code
    }

    /// The ancestor of `code` at `level` (e.g. the old district of a pre-merger commune).
    pub fn ancestor(&self, code: &str, level: AreaLevel) -> Option<&Area> {
        let mut area = self.get(code)?;
        for _ in 0..=self.by_code.len() {
            if area.level == level {
                return Some(area);
            }
            area = self.get(area.parent.as_deref()?)?;
        }
        None
    }

    /// Every unit, old and new, in code order.
    pub fn all(&self) -> impl Iterator<Item = &Area> {
        self.by_code.values()
    }

    /// Every commune, old and new.
    pub fn communes(&self) -> impl Iterator<Item = &Area> {
        self.by_code
            .values()
            .filter(|a| a.level == AreaLevel::Commune)
    }

    /// Communes valid on `date` (ISO `YYYY-MM-DD`).
    pub fn communes_on<'a>(&'a self, date: &'a str) -> impl Iterator<Item = &'a Area> {
        self.communes().filter(move |a| {
            a.valid_from.as_str() <= date && a.valid_to.as_deref().is_none_or(|to| date <= to)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_communes_map_to_their_merged_successor() {
        let areas = Areas::bundled();
        assert_eq!(areas.current("62.610.02"), "51.102");
        assert_eq!(areas.current("62.610.01"), "51.102");
        assert_eq!(areas.current("51.102"), "51.102");
        let district = areas.ancestor("62.610.02", AreaLevel::District);
        assert_eq!(district.map(|d| d.name.as_str()), Some("Đắk Glei"));
    }

    #[test]
    fn communes_on_a_date_respect_validity() {
        let areas = Areas::bundled();
        let before: Vec<_> = areas.communes_on("2024-01-01").map(|a| &a.code).collect();
        let after: Vec<_> = areas.communes_on("2025-08-01").map(|a| &a.code).collect();
        assert!(before.iter().all(|c| c.starts_with("62.")));
        assert!(after.iter().all(|c| c.starts_with("51.")));
        assert!(!before.is_empty() && !after.is_empty());
    }

    #[test]
    fn a_malformed_list_is_refused() {
        assert!(Areas::from_tsv("header\n1\tX\tcounty\t\t2020-01-01\t\t").is_err());
    }
}
