//! Plan progress: the Project 8 indicators counted from the records against a province plan's
//! targets, by commune, as of any date, for the supervisors' page and the CSV/XLSX exports.
//! Definitions and counting rules are in docs/indicators.md.

pub mod count;
pub mod day;
pub mod definitions;
pub mod export;
pub mod facts;
pub mod report;
pub mod suppress;
pub mod targets;

pub use day::Day;
pub use definitions::{Definition, Indicator, DEFINITIONS};
pub use facts::Fact;
pub use report::{Report, Request};
pub use targets::{Plan, PlanError};
