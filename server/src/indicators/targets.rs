//! A province's plan as configuration: its period, its targets for the province and, where it
//! divides them, per commune (old or new code) or old district, read from a TOML file (Kon
//! Tum's plan is built in, `server/plans/kon-tum.toml`). Targets set before the 2025 merger
//! roll up through the crosswalk onto today's communes, as the records do.

use super::day::Day;
use super::definitions::{Indicator, Unit};
use fieldsync_core::model::{AreaLevel, Areas};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::OnceLock;

const BUNDLED: &str = include_str!("../../plans/kon-tum.toml");

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("plan file: {0}")]
    Parse(String),
    #[error("plan file: {0}")]
    Invalid(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanFile {
    plan: Header,
    targets: BTreeMap<String, f64>,
    #[serde(default)]
    areas: BTreeMap<String, BTreeMap<String, f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    id: String,
    name: String,
    name_en: Option<String>,
    province: String,
    start: String,
    end: String,
    #[serde(default)]
    high_home_birth_communes: Vec<String>,
}

type Targets = BTreeMap<Indicator, f64>;

/// A province's plan: period, reporting communes and targets.
#[derive(Clone, Debug)]
pub struct Plan {
    pub id: String,
    pub name: String,
    pub name_en: Option<String>,
    pub province: String,
    pub province_name: String,
    pub start: Day,
    pub end: Day,
    /// Today's communes the plan's province became, in name order: the report's rows.
    pub communes: Vec<String>,
    /// Today's communes where many women give birth at home; `None`: all of them.
    high_home_birth: Option<BTreeSet<String>>,
    province_targets: Targets,
    /// Targets by the code they were given for (old or new commune, old district).
    area_targets: BTreeMap<String, Targets>,
}

fn invalid(why: String) -> PlanError {
    PlanError::Invalid(why)
}

fn targets(map: &BTreeMap<String, f64>, whose: &str) -> Result<Targets, PlanError> {
    let mut out = Targets::new();
    for (id, value) in map {
        let indicator =
            Indicator::parse(id).ok_or_else(|| invalid(format!("{whose}: no indicator {id}")))?;
        let ok = match indicator.definition().unit {
            Unit::Count => *value >= 0.0 && value.fract() == 0.0,
            Unit::Percent => (0.0..=100.0).contains(value),
        };
        if !ok || !value.is_finite() {
            return Err(invalid(format!(
                "{whose}: {id} must be a whole number of at least 0, or a percentage 0–100"
            )));
        }
        out.insert(indicator, *value);
    }
    Ok(out)
}

impl Plan {
    /// Kon Tum's plan, built into the server.
    pub fn bundled() -> &'static Plan {
        static PLAN: OnceLock<Plan> = OnceLock::new();
        // The built-in file is checked by a test; an empty plan would only show no targets.
        PLAN.get_or_init(|| Plan::from_toml(BUNDLED).unwrap_or_else(|_| Plan::empty()))
    }

    fn empty() -> Plan {
        Plan {
            id: String::new(),
            name: String::new(),
            name_en: None,
            province: String::new(),
            province_name: String::new(),
            start: Day(20210101),
            end: Day(20251231),
            communes: Vec::new(),
            high_home_birth: None,
            province_targets: Targets::new(),
            area_targets: BTreeMap::new(),
        }
    }

    pub fn read(path: &Path) -> Result<Plan, PlanError> {
        let text = std::fs::read_to_string(path).map_err(|source| PlanError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Plan::from_toml(&text)
    }

    pub fn from_toml(text: &str) -> Result<Plan, PlanError> {
        let file: PlanFile = toml::from_str(text).map_err(|e| PlanError::Parse(e.to_string()))?;
        let areas = Areas::bundled();
        let header = file.plan;
        let province = areas
            .get(&header.province)
            .filter(|a| a.level == AreaLevel::Province)
            .ok_or_else(|| invalid(format!("{} is not a province code", header.province)))?;
        let day = |s: &str| Day::parse(s).ok_or_else(|| invalid(format!("{s}: not a date")));
        let (start, end) = (day(&header.start)?, day(&header.end)?);
        if end < start {
            return Err(invalid("the plan ends before it starts".into()));
        }
        let mut communes: Vec<String> =
            crate::scope::communes_of(std::slice::from_ref(&header.province))
                .iter()
                .map(|c| areas.current(c).to_owned())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
        let name = |c: &String| areas.get(c).map(|a| a.name.clone()).unwrap_or_default();
        communes.sort_by_key(|c| (name(c), c.clone()));
        let in_plan = |code: &str| communes.iter().any(|c| c == areas.current(code));
        let mut high_home_birth = BTreeSet::new();
        for code in &header.high_home_birth_communes {
            if !areas.is_commune(code) || !in_plan(code) {
                return Err(invalid(format!(
                    "high_home_birth_communes: {code} is not a commune of the plan"
                )));
            }
            high_home_birth.insert(areas.current(code).to_owned());
        }
        let mut area_targets = BTreeMap::new();
        for (code, map) in &file.areas {
            let area = areas
                .get(code)
                .ok_or_else(|| invalid(format!("areas: unknown area code {code}")))?;
            let belongs = match area.level {
                AreaLevel::Commune => in_plan(code),
                AreaLevel::District => areas
                    .ancestor(code, AreaLevel::Province)
                    .is_some_and(|p| p.code == province.code),
                AreaLevel::Province => false,
            };
            if !belongs {
                return Err(invalid(format!(
                    "areas: {code} is not a commune or district of the plan (province targets go under [targets])"
                )));
            }
            area_targets.insert(code.clone(), targets(map, code)?);
        }
        Ok(Plan {
            id: header.id,
            name: header.name,
            name_en: header.name_en,
            province: province.code.clone(),
            province_name: province.name.clone(),
            start,
            end,
            communes,
            high_home_birth: (!high_home_birth.is_empty()).then_some(high_home_birth),
            province_targets: targets(&file.targets, "targets")?,
            area_targets,
        })
    }

    /// The plan's years, first to last.
    pub fn years(&self) -> std::ops::RangeInclusive<i32> {
        self.start.year()..=self.end.year()
    }

    /// Whether a commune (today's code) is in the safe-delivery indicator's population.
    pub fn high_home_birth(&self, commune: &str) -> bool {
        self.high_home_birth
            .as_ref()
            .is_none_or(|set| set.contains(commune))
    }

    pub fn province_target(&self, indicator: Indicator) -> Option<f64> {
        self.province_targets.get(&indicator).copied()
    }

    /// Old districts given targets of their own, each with today's communes its communes
    /// became (in the plan's order).
    pub fn districts(&self) -> Vec<(String, Vec<String>)> {
        let areas = Areas::bundled();
        self.area_targets
            .keys()
            .filter(|code| {
                areas
                    .get(code)
                    .is_some_and(|a| a.level == AreaLevel::District)
            })
            .map(|code| {
                let under: BTreeSet<&str> = areas
                    .communes()
                    .filter(|c| {
                        areas
                            .ancestor(&c.code, AreaLevel::District)
                            .is_some_and(|d| &d.code == code)
                    })
                    .map(|c| areas.current(&c.code))
                    .collect();
                let communes = self
                    .communes
                    .iter()
                    .filter(|c| under.contains(c.as_str()))
                    .cloned()
                    .collect();
                (code.clone(), communes)
            })
            .collect()
    }

    pub fn district_target(&self, district: &str, indicator: Indicator) -> Option<f64> {
        self.area_targets.get(district)?.get(&indicator).copied()
    }

    /// The target of today's commune `commune`: counts given for it and for the old communes
    /// merged into it add up; a percentage is the one given for it (or the highest of its old
    /// communes'), else its old district's, else the province's.
    pub fn commune_target(&self, commune: &str, indicator: Indicator) -> Option<f64> {
        let areas = Areas::bundled();
        let given: Vec<(&String, f64)> = self
            .area_targets
            .iter()
            .filter(|(code, _)| areas.is_commune(code) && areas.current(code) == commune)
            .filter_map(|(code, t)| t.get(&indicator).map(|v| (code, *v)))
            .collect();
        match indicator.definition().unit {
            Unit::Count => (!given.is_empty()).then(|| given.iter().map(|(_, v)| v).sum()),
            Unit::Percent => given
                .iter()
                .find(|(code, _)| code.as_str() == commune)
                .or_else(|| given.iter().max_by(|a, b| a.1.total_cmp(&b.1)))
                .map(|(_, v)| *v)
                .or_else(|| {
                    areas
                        .communes()
                        .filter(|c| areas.current(&c.code) == commune)
                        .filter_map(|c| areas.ancestor(&c.code, AreaLevel::District))
                        .find_map(|d| self.district_target(&d.code, indicator))
                })
                .or_else(|| self.province_target(indicator)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_plan_is_kon_tums_with_the_plans_targets() {
        let plan = Plan::from_toml(BUNDLED).unwrap();
        assert_eq!(plan.province, "62");
        assert_eq!(plan.province_name, "Kon Tum");
        assert_eq!(plan.years(), 2021..=2025);
        assert_eq!(
            plan.province_target(Indicator::CommunicationGroups),
            Some(274.0)
        );
        assert_eq!(plan.province_target(Indicator::SavingsGroups), Some(91.0));
        assert_eq!(
            plan.province_target(Indicator::SafeDeliveryCounselled),
            Some(80.0)
        );
        assert_eq!(
            plan.province_target(Indicator::WomenCadresTrained),
            Some(50.0)
        );
        assert_eq!(plan.province_target(Indicator::VictimsSupported), None);
        assert!(plan.communes.iter().all(|c| c.starts_with("51.")));
        assert_eq!(plan.communes.len(), 13);
        assert!(plan.high_home_birth("51.102"));
    }

    #[test]
    fn old_targets_roll_up_onto_todays_communes() {
        let plan = Plan::from_toml(
            r#"
            [plan]
            id = "t"
            name = "Thử"
            province = "62"
            start = "2021-01-01"
            end = "2025-12-31"
            high_home_birth_communes = ["62.610.03"]
            [targets]
            communication_groups = 10
            safe_delivery_counselled = 80
            [areas."62.610.01"]
            communication_groups = 2
            [areas."62.610.02"]
            communication_groups = 3
            [areas."51.102"]
            communication_groups = 1
            [areas."62.613"]
            safe_delivery_counselled = 60
            communication_groups = 9
            "#,
        )
        .unwrap();
        // Ngọc Linh 51.102 = old Ngọc Linh + Mường Hoong.
        assert_eq!(
            plan.commune_target("51.102", Indicator::CommunicationGroups),
            Some(6.0)
        );
        assert_eq!(
            plan.commune_target("51.103", Indicator::CommunicationGroups),
            None
        );
        // Măng Đen 51.107 was in Kon Plông (62.613), whose percentage it takes.
        assert_eq!(
            plan.commune_target("51.107", Indicator::SafeDeliveryCounselled),
            Some(60.0)
        );
        assert_eq!(
            plan.commune_target("51.102", Indicator::SafeDeliveryCounselled),
            Some(80.0)
        );
        let districts = plan.districts();
        assert_eq!(districts.len(), 1);
        assert_eq!(districts[0].0, "62.613");
        assert_eq!(districts[0].1.len(), 2, "{:?}", districts[0].1);
        assert!(plan.high_home_birth("51.103") && !plan.high_home_birth("51.102"));
    }

    #[test]
    fn mistakes_in_the_file_are_refused_with_what_is_wrong() {
        let base =
            "[plan]\nid='t'\nname='t'\nprovince='62'\nstart='2021-01-01'\nend='2025-12-31'\n";
        let bad = [
            "[targets]\nnope = 1\n",
            "[targets]\ncommunication_groups = 2.5\n",
            "[targets]\nsafe_delivery_counselled = 120\n",
            "[targets]\n[areas.\"62\"]\ncommunication_groups = 1\n",
            "[targets]\n[areas.\"51.999\"]\ncommunication_groups = 1\n",
            "[targets]\nextra = 1\n[other]\n",
        ];
        for tail in bad {
            assert!(Plan::from_toml(&format!("{base}{tail}")).is_err(), "{tail}");
        }
        assert!(Plan::from_toml(&format!("{base}[targets]\n")).is_ok());
        assert!(Plan::from_toml(&base.replace("'62'", "'62.610'")).is_err());
    }
}
