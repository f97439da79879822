//! Calendar dates without a date crate: the lobby banner's `$DATE` and the account listing
//! need only `YYYY-MM-DD` in UTC, the save backups a time of day as well.

/// `YYYY-MM-DD` (UTC) of a Unix timestamp in seconds.
pub fn utc_date(unix_secs: u64) -> String {
    let days = i64::try_from(unix_secs / 86_400).unwrap_or(0);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) of a Unix timestamp in seconds.
pub fn utc_date_time(unix_secs: u64) -> String {
    let (h, m, s) = (
        unix_secs % 86_400 / 3600,
        unix_secs % 3600 / 60,
        unix_secs % 60,
    );
    format!("{} {h:02}:{m:02}:{s:02}", utc_date(unix_secs))
}

/// Today's `YYYY-MM-DD` (UTC).
pub fn utc_today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    utc_date(secs)
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days` algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_become_utc_calendar_days() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(86_399), "1970-01-01");
        assert_eq!(utc_date(86_400), "1970-01-02");
        assert_eq!(utc_date(951_782_400), "2000-02-29");
        assert_eq!(utc_date(1_700_000_000), "2023-11-14");
        assert_eq!(utc_date(4_107_542_400), "2100-03-01");
    }

    #[test]
    fn timestamps_become_utc_times_of_day() {
        assert_eq!(utc_date_time(0), "1970-01-01 00:00:00");
        assert_eq!(utc_date_time(86_399), "1970-01-01 23:59:59");
        assert_eq!(utc_date_time(1_700_000_000), "2023-11-14 22:13:20");
    }

    #[test]
    fn today_is_a_well_formed_date_after_2025() {
        let today = utc_today();
        assert_eq!(today.len(), 10, "{today}");
        assert!(today.as_str() > "2025-01-01", "{today}");
    }
}
