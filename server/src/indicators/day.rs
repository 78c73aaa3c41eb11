//! Calendar days as indicators compare them: a record's own date (`YYYY-MM-DD`) as one number
//! `yyyymmdd`, so that "on or before" is an integer comparison, and ages from a date or a year
//! of birth.

use serde::{Serialize, Serializer};

/// A calendar day, `yyyymmdd`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(pub u32);

impl Day {
    /// A real calendar date written `YYYY-MM-DD`; anything else is `None`.
    pub fn parse(text: &str) -> Option<Day> {
        crate::dates::vietnam_day_start(text)?;
        let digits: String = text.chars().filter(char::is_ascii_digit).collect();
        digits.parse().ok().map(Day)
    }

    /// 31 December of `year`.
    pub fn year_end(year: i32) -> Day {
        Day(u32::try_from(year).unwrap_or(0) * 10_000 + 1231)
    }

    pub fn year(self) -> i32 {
        (self.0 / 10_000) as i32
    }

    fn month_day(self) -> u32 {
        self.0 % 10_000
    }

    /// `YYYY-MM-DD`.
    pub fn text(self) -> String {
        format!(
            "{:04}-{:02}-{:02}",
            self.0 / 10_000,
            self.0 / 100 % 100,
            self.0 % 100
        )
    }
}

impl Serialize for Day {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text())
    }
}

/// A date of birth as records hold it: a full date, or only a year.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Birth {
    Date(Day),
    Year(i32),
}

impl Birth {
    pub fn parse(text: &str) -> Option<Birth> {
        if text.len() == 4 {
            let year: i32 = text.parse().ok()?;
            return (1900..=2100).contains(&year).then_some(Birth::Year(year));
        }
        Day::parse(text).map(Birth::Date)
    }

    /// Age in whole years on `day`; someone known only by birth year counts as born on
    /// 1 January. `None` if not born yet.
    pub fn age_on(self, day: Day) -> Option<u32> {
        let years = match self {
            Birth::Year(y) => day.year() - y,
            Birth::Date(b) => {
                let before_birthday = day.month_day() < b.month_day();
                day.year() - b.year() - i32::from(before_birthday)
            }
        };
        u32::try_from(years).ok().filter(|_| match self {
            Birth::Date(b) => b <= day,
            Birth::Year(y) => y <= day.year(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_parse_strictly_and_compare_in_order() {
        let a = Day::parse("2024-02-29").unwrap();
        assert_eq!(a, Day(20240229));
        assert!(Day::parse("2023-02-29").is_none());
        assert!(Day::parse("2024-2-29").is_none());
        assert!(Day::parse("").is_none());
        assert!(a < Day::parse("2024-03-01").unwrap());
        assert_eq!(Day::year_end(2025).text(), "2025-12-31");
    }

    #[test]
    fn ages_count_whole_years_and_a_year_alone_counts_from_new_year() {
        let day = Day::parse("2025-06-15").unwrap();
        assert_eq!(Birth::parse("2000-06-15").unwrap().age_on(day), Some(25));
        assert_eq!(Birth::parse("2000-06-16").unwrap().age_on(day), Some(24));
        assert_eq!(Birth::parse("2000").unwrap().age_on(day), Some(25));
        assert_eq!(Birth::parse("2026").unwrap().age_on(day), None);
        assert_eq!(Birth::parse("2025-06-16").unwrap().age_on(day), None);
        assert!(Birth::parse("19x0").is_none());
    }
}
