//! The 54 recognised ethnic groups with the General Statistics Office codes ("01" Kinh ...).

use std::sync::OnceLock;

const TSV: &str = include_str!("../../data/ethnic-groups.tsv");

/// One recognised ethnic group (dân tộc).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EthnicGroup {
    /// Two-digit statistics office code, the value stored in records.
    pub code: String,
    pub name_vi: String,
    pub name_ascii: String,
}

/// All 54 groups in code order.
pub fn ethnic_groups() -> &'static [EthnicGroup] {
    static GROUPS: OnceLock<Vec<EthnicGroup>> = OnceLock::new();
    GROUPS.get_or_init(|| {
        TSV.lines()
            .skip(1)
            .filter_map(|line| {
                let mut cols = line.split('\t');
                Some(EthnicGroup {
                    code: cols.next()?.trim().to_owned(),
                    name_vi: cols.next()?.trim().to_owned(),
                    name_ascii: cols.next()?.trim().to_owned(),
                })
            })
            .collect()
    })
}

/// The group with this code, if it is one of the 54.
pub fn ethnic_group(code: &str) -> Option<&'static EthnicGroup> {
    ethnic_groups().iter().find(|g| g.code == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_54_groups_load_with_their_codes() {
        assert_eq!(ethnic_groups().len(), 54);
        assert_eq!(ethnic_group("01").map(|g| g.name_vi.as_str()), Some("Kinh"));
        assert_eq!(
            ethnic_group("14").map(|g| g.name_vi.as_str()),
            Some("Xơ Đăng")
        );
        assert!(ethnic_group("55").is_none());
    }
}
