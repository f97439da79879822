//! Finding the stream game's send-time markers (`@T` + 20 digits + `@`) and dungeongate's
//! repaints (a watcher's screen drawn from the server's model) in what a connection receives.
//!
//! Both may be split across reads (SSH packets cut anywhere), so the [`Scanner`] keeps the
//! unfinished tail of one read (never more than a pattern's length) and tries again with the
//! next.

/// How a repaint from the screen model begins, after resetting the terminal's modes: cursor
/// hidden, home, clear. The lobby's own full redraw shows the cursor (`?25h`) instead, and the
/// sanitised game output never holds this (the stream game writes no clear at all).
pub const REPAINT: &[u8] = b"\x1b[?25l\x1b[H\x1b[2J";

/// `@T`, 20 digits, `@`.
const MARKER_LEN: usize = 23;

/// Digits of the nanosecond count in a marker.
const DIGITS: usize = 20;

/// Something found in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// A frame's marker: its send time, CLOCK_MONOTONIC nanoseconds.
    Marker(u64),
    /// The start of a repaint (on attach, and on every re-sync after falling behind).
    Repaint,
}

/// A streaming search for [`Found`] items.
#[derive(Debug, Default)]
pub struct Scanner {
    /// The tail of the previous read that may begin a pattern.
    carry: Vec<u8>,
    /// Work buffer: carry followed by the new read (kept to avoid an allocation per read).
    buf: Vec<u8>,
}

/// What is at one position.
enum Match {
    /// A whole pattern, this long.
    Whole(Found, usize),
    /// The bytes up to the end could begin a pattern.
    Partial,
    /// Nothing.
    No,
}

impl Scanner {
    /// Scans `data` (the next bytes received), calling `on` for each item found, in order.
    pub fn feed(&mut self, data: &[u8], mut on: impl FnMut(Found)) {
        self.buf.clear();
        self.buf.extend_from_slice(&self.carry);
        self.buf.extend_from_slice(data);
        self.carry.clear();
        let mut i = 0;
        while let Some(rest) = self.buf.get(i..).filter(|r| !r.is_empty()) {
            match at(rest) {
                Match::Whole(found, len) => {
                    on(found);
                    i += len;
                }
                Match::Partial => {
                    self.carry.extend_from_slice(rest);
                    return;
                }
                Match::No => i += 1,
            }
        }
    }
}

/// Whether a pattern starts at the beginning of `s`.
fn at(s: &[u8]) -> Match {
    match s.first() {
        Some(b'@') => marker(s),
        Some(0x1b) if s.starts_with(REPAINT) => Match::Whole(Found::Repaint, REPAINT.len()),
        Some(0x1b) if REPAINT.starts_with(s) => Match::Partial,
        _ => Match::No,
    }
}

/// A marker at the start of `s` (which starts with `@`).
fn marker(s: &[u8]) -> Match {
    let fits = |i: usize, b: u8| match i {
        0 => b == b'@',
        1 => b == b'T',
        i if i < 2 + DIGITS => b.is_ascii_digit(),
        _ => b == b'@',
    };
    let seen = s.len().min(MARKER_LEN);
    if !s.iter().take(seen).enumerate().all(|(i, &b)| fits(i, b)) {
        return Match::No;
    }
    if seen < MARKER_LEN {
        return Match::Partial;
    }
    let digits = s.get(2..2 + DIGITS).unwrap_or(&[]);
    let ns = digits.iter().try_fold(0u64, |acc, &d| {
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    });
    match ns {
        Some(ns) => Match::Whole(Found::Marker(ns), MARKER_LEN),
        None => Match::No,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_in_pieces(stream: &[u8], cut: usize) -> Vec<Found> {
        let mut s = Scanner::default();
        let mut out = Vec::new();
        for piece in stream.chunks(cut) {
            s.feed(piece, |f| out.push(f));
        }
        out
    }

    #[test]
    fn markers_and_repaints_are_found_however_the_stream_is_cut() {
        let mut stream = b"\x1b[1;1H@T00000000000000001234@\x1b[K map".to_vec();
        stream.extend_from_slice(b"\x18\x1b[0m\x1b(B\x1b)B\x0f\x1b[r");
        stream.extend_from_slice(REPAINT);
        stream.extend_from_slice(b"@T00000000000000005678@ @T1@ @@T00000000000000009999@");
        let want = vec![
            Found::Marker(1234),
            Found::Repaint,
            Found::Marker(5678),
            Found::Marker(9999),
        ];
        for cut in 1..=stream.len() {
            assert_eq!(scan_in_pieces(&stream, cut), want, "cut {cut}");
        }
    }

    #[test]
    fn the_lobbys_clear_is_not_a_repaint_and_overflow_is_not_a_marker() {
        let stream = b"\x1b[0m\x1b[r\x1b[?25h\x1b[H\x1b[2J @T99999999999999999999@";
        assert!(scan_in_pieces(stream, 5).is_empty());
    }

    #[test]
    fn the_carry_stays_small() {
        let mut s = Scanner::default();
        s.feed(b"xx@T0000000000", |_| {});
        assert_eq!(s.carry.len(), 12);
        s.feed(b"garbage", |_| {});
        assert!(s.carry.is_empty());
    }
}
