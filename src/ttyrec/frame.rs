//! The ttyrec frame: a 12-byte header (seconds, microseconds, length; each a little-endian
//! `u32`) followed by `length` bytes exactly as the terminal received them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Length of a frame header.
pub const HEADER_LEN: usize = 12;

/// Longest frame we write: longer output is cut into several frames with the same time.
/// Players read a frame whole into memory, and old ones (ttyplay) into a fixed buffer; 64 KiB
/// is far above any single PTY read and small for any of them.
pub const MAX_WRITE_FRAME: usize = 64 * 1024;

/// Longest frame we read before calling the file corrupt: a damaged header must not make us
/// allocate gigabytes. Far above what any recorder writes (ours: 64 KiB).
pub const MAX_READ_FRAME: u32 = 16 * 1024 * 1024;

/// A frame's time: seconds and microseconds since the Unix epoch, as the format stores them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Timestamp {
    pub sec: u32,
    pub usec: u32,
}

impl Timestamp {
    /// Microseconds since the epoch.
    pub fn as_micros(self) -> u64 {
        u64::from(self.sec) * 1_000_000 + u64::from(self.usec)
    }

    /// The time as a `SystemTime` (for naming a file).
    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::new(u64::from(self.sec), self.usec.min(999_999) * 1000)
    }

    /// Time from `earlier` to `self`; zero when `self` is not later (a clock set back).
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_micros(self.as_micros().saturating_sub(earlier.as_micros()))
    }
}

impl From<SystemTime> for Timestamp {
    /// Times before 1970 become 0 and times after 2106 (the format's `u32` seconds) the last
    /// second it can hold: a wrong clock must not make a recording unreadable.
    fn from(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => match u32::try_from(d.as_secs()) {
                Ok(sec) => Timestamp {
                    sec,
                    usec: d.subsec_micros(),
                },
                Err(_) => Timestamp {
                    sec: u32::MAX,
                    usec: 999_999,
                },
            },
            Err(_) => Timestamp::default(),
        }
    }
}

/// The header of a frame of `len` bytes at `sec`.`usec`.
pub fn header(sec: u32, usec: u32, len: u32) -> [u8; HEADER_LEN] {
    let mut h = [0; HEADER_LEN];
    h[0..4].copy_from_slice(&sec.to_le_bytes());
    h[4..8].copy_from_slice(&usec.to_le_bytes());
    h[8..12].copy_from_slice(&len.to_le_bytes());
    h
}

/// A header's time and length.
pub fn parse_header(h: &[u8; HEADER_LEN]) -> (Timestamp, u32) {
    let word = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    (
        Timestamp {
            sec: word(0),
            usec: word(4),
        },
        word(8),
    )
}

/// Append `bytes` to `out` as frames at `at`, cut every [`MAX_WRITE_FRAME`] bytes.
pub fn push_frames(out: &mut Vec<u8>, at: Timestamp, bytes: &[u8]) {
    for chunk in bytes.chunks(MAX_WRITE_FRAME) {
        // A chunk is at most MAX_WRITE_FRAME long, so its length always fits.
        let len = u32::try_from(chunk.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&header(at.sec, at.usec, len));
        out.extend_from_slice(chunk);
    }
}

/// How many bytes [`push_frames`] writes for `len` bytes of output.
pub fn framed_len(len: usize) -> usize {
    len + len.div_ceil(MAX_WRITE_FRAME) * HEADER_LEN
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_three_little_endian_words() {
        assert_eq!(
            header(0x0403_0201, 0x0807_0605, 0x0c0b_0a09),
            [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
        );
        let h = header(1_700_000_000, 999_999, 42);
        assert_eq!(
            parse_header(&h),
            (
                Timestamp {
                    sec: 1_700_000_000,
                    usec: 999_999
                },
                42
            )
        );
    }

    #[test]
    fn system_times_out_of_range_are_clamped() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        assert_eq!(
            Timestamp::from(t),
            Timestamp {
                sec: 1_700_000_000,
                usec: 123_456
            }
        );
        assert_eq!(
            Timestamp::from(UNIX_EPOCH - Duration::from_secs(5)),
            Timestamp::default()
        );
        let far = UNIX_EPOCH + Duration::from_secs(u64::from(u32::MAX) + 10);
        assert_eq!(Timestamp::from(far).sec, u32::MAX);
        assert_eq!(
            Timestamp::from(t).to_system_time(),
            t - Duration::new(0, 789)
        );
    }

    #[test]
    fn long_output_is_cut_into_frames_of_the_same_time() {
        let at = Timestamp { sec: 7, usec: 8 };
        let bytes: Vec<u8> = (0..MAX_WRITE_FRAME * 2 + 5).map(|i| i as u8).collect();
        let mut out = Vec::new();
        push_frames(&mut out, at, &bytes);
        assert_eq!(out.len(), framed_len(bytes.len()));
        assert_eq!(out.len(), bytes.len() + 3 * HEADER_LEN);
        let mut rest = &out[..];
        let mut joined = Vec::new();
        let mut lens = Vec::new();
        while !rest.is_empty() {
            let (h, tail) = rest.split_at(HEADER_LEN);
            let (t, len) = parse_header(h.try_into().unwrap());
            assert_eq!(t, at);
            let (data, tail) = tail.split_at(len as usize);
            joined.extend_from_slice(data);
            lens.push(len as usize);
            rest = tail;
        }
        assert_eq!(lens, [MAX_WRITE_FRAME, MAX_WRITE_FRAME, 5]);
        assert_eq!(joined, bytes);
        assert_eq!(framed_len(0), 0);
    }

    #[test]
    fn durations_never_go_negative() {
        let a = Timestamp { sec: 10, usec: 0 };
        let b = Timestamp {
            sec: 11,
            usec: 500_000,
        };
        assert_eq!(b.since(a), Duration::from_millis(1500));
        assert_eq!(a.since(b), Duration::ZERO);
    }
}
