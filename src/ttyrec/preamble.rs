//! The first frame of every recording file: who played what, where, when, and at which
//! terminal size.
//!
//! A ttyrec has no header of its own, so the size travels as the xterm request to resize the
//! window, `ESC [ 8 ; rows ; cols t`: a terminal replaying the file is asked for the size the
//! game was drawn for, and `ttyrec info` reads it back ([`size_report`]). The line of text
//! after it is for a person looking at the file (players, `termcat`, `strings`).

use super::name::utc_parts;
use std::fmt::Write as _;
use std::time::SystemTime;

/// What the first frame says.
#[derive(Debug, Clone)]
pub struct Preamble<'a> {
    pub player: &'a str,
    pub game: &'a str,
    pub server: &'a str,
    pub start: SystemTime,
    pub rows: u16,
    pub cols: u16,
}

/// A terminal size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TermSize {
    pub rows: u16,
    pub cols: u16,
}

impl Preamble<'_> {
    /// The frame's bytes: the size request, a cleared screen, one line of text.
    pub fn bytes(&self) -> Vec<u8> {
        let (date, h, m, s) = utc_parts(self.start);
        let mut out = String::new();
        let _ = write!(
            out,
            "\x1b[8;{};{}t\x1b[H\x1b[2Jdungeongate recording: {} playing {} on {}, started {date} {h:02}:{m:02}:{s:02} UTC, {}x{}\r\n",
            self.rows,
            self.cols,
            printable(self.player),
            printable(self.game),
            printable(self.server),
            self.cols,
            self.rows,
        );
        out.into_bytes()
    }
}

/// `text` with control characters replaced: names come from configuration and accounts, and
/// nothing in them may act on the terminal of whoever replays the file.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// The size in the first `ESC [ 8 ; rows ; cols t` of `bytes`, if there is one with both
/// numbers in range (1 to 65535).
pub fn size_report(bytes: &[u8]) -> Option<TermSize> {
    const START: &[u8] = b"\x1b[8;";
    let mut rest = bytes;
    while let Some(i) = find(rest, START) {
        rest = &rest[i + START.len()..];
        let Some((rows, after)) = number(rest) else {
            continue;
        };
        let Some(after) = after.strip_prefix(b";") else {
            continue;
        };
        let Some((cols, after)) = number(after) else {
            continue;
        };
        if after.first() == Some(&b't') && rows > 0 && cols > 0 {
            return Some(TermSize { rows, cols });
        }
    }
    None
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A decimal `u16` at the start of `bytes` (at most 5 digits) and what follows it.
fn number(bytes: &[u8]) -> Option<(u16, &[u8])> {
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 5 {
        return None;
    }
    let value = std::str::from_utf8(&bytes[..digits]).ok()?.parse().ok()?;
    Some((value, &bytes[digits..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn the_preamble_names_everything_and_reports_its_size() {
        let p = Preamble {
            player: "alice",
            game: "NetHack 3.6",
            server: "dg.example",
            start: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            rows: 24,
            cols: 80,
        };
        let bytes = p.bytes();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.starts_with("\x1b[8;24;80t"), "{text:?}");
        for want in [
            "alice",
            "NetHack 3.6",
            "dg.example",
            "2023-11-14 22:13:20 UTC",
            "80x24",
        ] {
            assert!(text.contains(want), "{want} missing from {text:?}");
        }
        assert_eq!(size_report(&bytes), Some(TermSize { rows: 24, cols: 80 }));
    }

    #[test]
    fn names_cannot_carry_escape_sequences() {
        let p = Preamble {
            player: "eve\x1b]0;pwned\x07",
            game: "g",
            server: "s\r\n",
            start: UNIX_EPOCH,
            rows: 50,
            cols: 132,
        };
        let bytes = p.bytes();
        // Only the size request and the clear-screen carry ESC, and one line ending.
        assert_eq!(bytes.iter().filter(|&&b| b == 0x1b).count(), 3);
        assert_eq!(bytes.iter().filter(|&&b| b == b'\n').count(), 1);
        assert!(!bytes.contains(&0x07));
        assert_eq!(
            size_report(&bytes),
            Some(TermSize {
                rows: 50,
                cols: 132
            })
        );
    }

    #[test]
    fn size_reports_are_found_only_when_well_formed() {
        assert_eq!(
            size_report(b"junk\x1b[8;;3t\x1b[8;99999;1t then \x1b[8;40;100t"),
            Some(TermSize {
                rows: 40,
                cols: 100
            })
        );
        assert_eq!(size_report(b"\x1b[8;0;80t"), None);
        assert_eq!(size_report(b"\x1b[8;24;80"), None);
        assert_eq!(size_report(b"\x1b[8;123456;80t"), None);
        assert_eq!(size_report(b"\x1b[18;24;80t"), None);
        assert_eq!(size_report(b""), None);
    }
}
