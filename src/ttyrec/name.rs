//! Recording file names as dgamelaunch writes them (`2025-03-01.18:04:05.ttyrec`, UTC), so
//! the scripts and web pages written for dgamelaunch servers find ours.

use crate::date::utc_date;
use std::time::{SystemTime, UNIX_EPOCH};

/// The extension of an uncompressed recording.
pub const EXTENSION: &str = ".ttyrec";

/// The name of a recording started at `start`: `YYYY-MM-DD.HH:MM:SS.ttyrec` in UTC.
pub fn file_name(start: SystemTime) -> String {
    numbered_file_name(start, 1)
}

/// The `n`th candidate name for a recording started at `start`: the first is
/// [`file_name`]; a second recording in the same second (a rotation, another game of the same
/// player) gets `-2` before the extension, then `-3`, and so on. Sorting the names as text
/// keeps one second's files together.
pub fn numbered_file_name(start: SystemTime, n: u32) -> String {
    let (date, h, m, s) = utc_parts(start);
    if n <= 1 {
        format!("{date}.{h:02}:{m:02}:{s:02}{EXTENSION}")
    } else {
        format!("{date}.{h:02}:{m:02}:{s:02}-{n}{EXTENSION}")
    }
}

/// `YYYY-MM-DD` and the hour, minute and second of `t` in UTC (times before 1970: the epoch).
pub(super) fn utc_parts(t: SystemTime) -> (String, u64, u64, u64) {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let day = secs % 86_400;
    (utc_date(secs), day / 3600, day / 60 % 60, day % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn names_are_utc_date_and_time() {
        assert_eq!(file_name(at(0)), "1970-01-01.00:00:00.ttyrec");
        // 2023-11-14 22:13:20 UTC.
        assert_eq!(file_name(at(1_700_000_000)), "2023-11-14.22:13:20.ttyrec");
        assert_eq!(file_name(at(951_868_799)), "2000-02-29.23:59:59.ttyrec");
        // Sub-second parts do not change the name.
        assert_eq!(
            file_name(at(1_700_000_000) + Duration::from_millis(999)),
            "2023-11-14.22:13:20.ttyrec"
        );
        // Before the epoch: the epoch (a broken clock still yields a valid name).
        assert_eq!(
            file_name(UNIX_EPOCH - Duration::from_secs(1)),
            "1970-01-01.00:00:00.ttyrec"
        );
    }

    #[test]
    fn later_names_in_the_same_second_are_numbered() {
        let t = at(1_700_000_000);
        assert_eq!(numbered_file_name(t, 1), file_name(t));
        assert_eq!(numbered_file_name(t, 2), "2023-11-14.22:13:20-2.ttyrec");
        assert_eq!(numbered_file_name(t, 17), "2023-11-14.22:13:20-17.ttyrec");
    }
}
