//! Small counts of victims hidden so that no one can be picked out: a count of 1 to 4 is shown
//! as "<5", and so is a second figure wherever the hidden one could otherwise be worked out by
//! subtraction (from a total and the other parts, or from the figure a year earlier). A zero
//! names nobody and is shown.

use serde::{Serialize, Serializer};

/// The smallest count of victims shown as it is.
pub const MIN_SHOWN: u64 = 5;

/// A count as reported: the number, or hidden.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Figure {
    Shown(u64),
    Hidden,
}

impl Figure {
    pub fn shown(self) -> Option<u64> {
        match self {
            Figure::Shown(v) => Some(v),
            Figure::Hidden => None,
        }
    }

    /// How a hidden figure is written in the API, the page and the exports.
    pub const HIDDEN_TEXT: &'static str = "<5";
}

impl Serialize for Figure {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Figure::Shown(v) => s.serialize_u64(*v),
            Figure::Hidden => s.serialize_str(Figure::HIDDEN_TEXT),
        }
    }
}

/// A count that would name victims: 1 to 4.
pub fn small(v: u64) -> bool {
    (1..MIN_SHOWN).contains(&v)
}

/// Which parts of a whole to hide (`true`): every small one, and when that leaves exactly one
/// hidden beside a shown total, also the smallest other part that is not zero.
pub fn parts(values: &[u64]) -> Vec<bool> {
    let mut hidden: Vec<bool> = values.iter().map(|v| small(*v)).collect();
    let total: u64 = values.iter().sum();
    if hidden.iter().filter(|h| **h).count() == 1 && !small(total) {
        let next = values
            .iter()
            .enumerate()
            .filter(|(i, v)| !hidden[*i] && **v > 0)
            .min_by_key(|(i, v)| (**v, *i))
            .map(|(i, _)| i);
        if let Some(i) = next {
            hidden[i] = true;
        }
    }
    hidden
}

/// Which values of a count through time (each covering all before it, in date order) to hide:
/// every small one, and one that differs from the last value shown before it by 1 to 4.
pub fn series(values: &[u64]) -> Vec<bool> {
    let mut last_shown = 0;
    values
        .iter()
        .map(|v| {
            let hide = small(*v) || small(v.abs_diff(last_shown));
            if !hide {
                last_shown = *v;
            }
            hide
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_parts_are_hidden_and_a_lone_one_takes_another_with_it() {
        assert_eq!(parts(&[0, 5, 12]), vec![false, false, false]);
        assert_eq!(parts(&[3, 7, 12]), vec![true, true, false]);
        assert_eq!(parts(&[3, 4, 12]), vec![true, true, false]);
        assert_eq!(
            parts(&[3, 0, 0]),
            vec![true, false, false],
            "total is small too"
        );
        assert_eq!(parts(&[0, 0]), vec![false, false]);
    }

    #[test]
    fn a_step_of_fewer_than_five_is_hidden_through_time() {
        assert_eq!(
            series(&[0, 7, 9, 12, 12]),
            vec![false, false, true, false, false]
        );
        assert_eq!(series(&[2, 6, 20]), vec![true, false, false]);
        assert_eq!(series(&[0, 0, 5]), vec![false, false, false]);
    }

    #[test]
    fn hidden_figures_read_as_less_than_five() {
        assert_eq!(serde_json::to_string(&Figure::Hidden).unwrap(), "\"<5\"");
        assert_eq!(serde_json::to_string(&Figure::Shown(0)).unwrap(), "0");
    }
}
