//! Times of predictions and outcomes, as milliseconds since the Unix epoch (UTC), so the join
//! can compare a prediction's `scored_at` with the moment its lead's outcome became known.

use crate::schema::parse_date;
use chrono::{DateTime, NaiveDate};

/// A time in milliseconds since the epoch (UTC), and whether the text had a time of day:
/// RFC 3339, `YYYY-MM-DD HH:MM[:SS[.fff]]` (read as UTC), or a date alone (midnight).
pub(super) fn parse_instant(text: &str) -> Option<(i64, bool)> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some((t.timestamp_millis(), true));
    }
    for format in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S%.f",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return Some((t.and_utc().timestamp_millis(), true));
        }
    }
    parse_date(text).map(|d| (start_of_day(d), false))
}

pub(super) fn parse_time(text: &str) -> Option<i64> {
    parse_instant(text).map(|(t, _)| t)
}

/// Midnight (UTC) at the start of `date`, in milliseconds.
fn start_of_day(date: NaiveDate) -> i64 {
    date.and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc()
        .timestamp_millis()
}

/// The (UTC) day of a time, which the monthly table groups by.
pub(super) fn day_of_time(millis: i64) -> Option<NaiveDate> {
    DateTime::from_timestamp_millis(millis).map(|t| t.date_naive())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_with_and_without_a_time_of_day() {
        let noon = 1_739_188_800_000; // 2025-02-10T12:00:00Z
        assert_eq!(parse_instant("2025-02-10T12:00:00Z"), Some((noon, true)));
        assert_eq!(
            parse_instant("2025-02-10T14:00:00+02:00"),
            Some((noon, true))
        );
        assert_eq!(parse_instant(" 2025-02-10 12:00:00 "), Some((noon, true)));
        assert_eq!(parse_instant("2025-02-10 12:00"), Some((noon, true)));
        assert_eq!(
            parse_instant("2025-02-10T12:00:00.250"),
            Some((noon + 250, true))
        );
        // A date alone is its midnight, and says it had no time.
        assert_eq!(
            parse_instant("2025-02-10"),
            Some((noon - 12 * 3_600_000, false))
        );
        assert_eq!(parse_instant("10 Feb"), None);
        assert_eq!(parse_time("2025-02-10T12:00:00Z"), Some(noon));
        assert_eq!(day_of_time(noon), NaiveDate::from_ymd_opt(2025, 2, 10));
    }
}
