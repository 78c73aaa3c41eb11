//! Dates as the API shows and takes them, without a calendar crate: server times as ISO 8601
//! UTC, and calendar dates (YYYY-MM-DD) as the start of that day in Vietnam (UTC+7). The server
//! reads its clock only to stamp what it received and when; nothing is ordered by it.

const DAY_MS: i64 = 86_400_000;
const VIETNAM_OFFSET_MS: i64 = 7 * 3_600_000;

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `2025-07-01T03:04:05Z` for a unix time in milliseconds.
pub fn iso_utc(ms: i64) -> String {
    let days = ms.div_euclid(DAY_MS);
    let rest = ms.rem_euclid(DAY_MS) / 1000;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// `2025-07-01 10:04` for a unix time in milliseconds: the time in Vietnam, to the minute.
pub fn vietnam_minute(ms: i64) -> String {
    let local = ms + VIETNAM_OFFSET_MS;
    let (y, m, d) = civil_from_days(local.div_euclid(DAY_MS));
    let minutes = local.rem_euclid(DAY_MS) / 60_000;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        minutes / 60,
        minutes % 60
    )
}

/// The first millisecond of a calendar date (`YYYY-MM-DD`) in Vietnam, if it is one.
pub fn vietnam_day_start(date: &str) -> Option<i64> {
    let b = date.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y: i64 = date.get(..4)?.parse().ok()?;
    let m: i64 = date.get(5..7)?.parse().ok()?;
    let d: i64 = date.get(8..)?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let days = days_from_civil(y, m, d);
    // Refuses 2025-02-30 and the like: the day must map back to itself.
    (civil_from_days(days) == (y, m, d)).then_some(days * DAY_MS - VIETNAM_OFFSET_MS)
}

/// The Monday (in Vietnam) starting the week `now_ms` falls in, `weeks_back` weeks earlier: its
/// first millisecond and its date.
pub fn vietnam_monday(now_ms: i64, weeks_back: i64) -> (i64, String) {
    let days = (now_ms + VIETNAM_OFFSET_MS).div_euclid(DAY_MS);
    // 1970-01-01 was a Thursday: three days after a Monday.
    let monday = days - (days + 3).rem_euclid(7) - 7 * weeks_back;
    let (y, m, d) = civil_from_days(monday);
    (
        monday * DAY_MS - VIETNAM_OFFSET_MS,
        format!("{y:04}-{m:02}-{d:02}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses() {
        assert_eq!(iso_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_utc(1_751_328_000_000), "2025-07-01T00:00:00Z");
        assert_eq!(
            vietnam_day_start("2025-07-01"),
            Some(1_751_328_000_000 - 7 * 3_600_000)
        );
        assert_eq!(
            vietnam_day_start("2024-02-29").map(iso_utc).as_deref(),
            Some("2024-02-28T17:00:00Z")
        );
        assert!(vietnam_day_start("2025-02-30").is_none());
        assert!(vietnam_day_start("01/07/2025").is_none());
    }

    #[test]
    fn vietnam_time_is_seven_hours_ahead() {
        assert_eq!(vietnam_minute(1_751_328_000_000), "2025-07-01 07:00");
        assert_eq!(
            vietnam_minute(1_751_328_000_000 - 7 * 3_600_000 - 60_000),
            "2025-06-30 23:59"
        );
    }

    #[test]
    fn weeks_start_on_monday_in_vietnam() {
        // Sunday 2025-07-06 20:00 UTC is Monday 03:00 in Vietnam.
        let sunday_night = vietnam_day_start("2025-07-07").unwrap_or(0) - 4 * 3_600_000;
        assert_eq!(vietnam_monday(sunday_night, 0).1, "2025-06-30");
        let monday_morning = sunday_night + 7 * 3_600_000;
        assert_eq!(vietnam_monday(monday_morning, 0).1, "2025-07-07");
        assert_eq!(vietnam_monday(monday_morning, 2).1, "2025-06-23");
        assert_eq!(
            Some(vietnam_monday(monday_morning, 0).0),
            vietnam_day_start("2025-07-07")
        );
    }
}
