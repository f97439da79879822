//! A byte-at-a-time UTF-8 decoder whose state survives chunk boundaries: PTY reads split
//! characters anywhere, and both the sanitiser and the screen model must treat a character
//! split across two reads exactly like one that arrived whole.
//!
//! Invalid input follows the "maximal subpart" rule (as browsers and most terminals do): a bad
//! lead byte is one error; a truncated sequence is one error and the byte that broke it is
//! decoded afresh, so a lost continuation byte never swallows the ESC that follows it.

/// What one byte did to the decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// Inside a multi-byte character; more bytes needed.
    Pending,
    /// A whole character (ASCII included).
    Char(char),
    /// An invalid sequence ended. With `again`, the byte that ended it was not consumed and
    /// must be pushed again.
    Invalid { again: bool },
}

/// The decoder: at most three continuation bytes outstanding, no buffer.
#[derive(Debug, Clone, Copy)]
pub(super) struct Utf8 {
    code: u32,
    need: u8,
    /// Bounds for the next continuation byte: the second byte of E0, ED, F0 and F4 sequences
    /// is narrower, which is how overlong forms, surrogates and code points past U+10FFFF are
    /// refused without decoding them first.
    lower: u8,
    upper: u8,
}

impl Default for Utf8 {
    fn default() -> Self {
        Self {
            code: 0,
            need: 0,
            lower: 0x80,
            upper: 0xBF,
        }
    }
}

impl Utf8 {
    /// True between characters (no partial sequence held).
    pub(super) fn is_idle(&self) -> bool {
        self.need == 0
    }

    pub(super) fn push(&mut self, byte: u8) -> Step {
        if self.need == 0 {
            return self.lead(byte);
        }
        if byte < self.lower || byte > self.upper {
            *self = Self::default();
            return Step::Invalid { again: true };
        }
        self.lower = 0x80;
        self.upper = 0xBF;
        self.code = (self.code << 6) | u32::from(byte & 0x3F);
        self.need -= 1;
        if self.need > 0 {
            return Step::Pending;
        }
        let code = self.code;
        *self = Self::default();
        // The bounds above admit only scalar values, so this never fails; a failure would be
        // reported as invalid input rather than trusted.
        match char::from_u32(code) {
            Some(c) => Step::Char(c),
            None => Step::Invalid { again: false },
        }
    }

    fn lead(&mut self, byte: u8) -> Step {
        let (need, code, lower, upper) = match byte {
            0x00..=0x7F => return Step::Char(char::from(byte)),
            0xC2..=0xDF => (1, byte & 0x1F, 0x80, 0xBF),
            0xE0 => (2, byte & 0x0F, 0xA0, 0xBF),
            0xE1..=0xEC | 0xEE..=0xEF => (2, byte & 0x0F, 0x80, 0xBF),
            0xED => (2, byte & 0x0F, 0x80, 0x9F),
            0xF0 => (3, byte & 0x07, 0x90, 0xBF),
            0xF1..=0xF3 => (3, byte & 0x07, 0x80, 0xBF),
            0xF4 => (3, byte & 0x07, 0x80, 0x8F),
            _ => return Step::Invalid { again: false },
        };
        *self = Self {
            code: u32::from(code),
            need,
            lower,
            upper,
        };
        Step::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> String {
        let mut d = Utf8::default();
        let mut s = String::new();
        let mut i = 0;
        while i < bytes.len() {
            match d.push(bytes[i]) {
                Step::Pending => {}
                Step::Char(c) => s.push(c),
                Step::Invalid { again } => {
                    s.push('\u{FFFD}');
                    if again {
                        continue;
                    }
                }
            }
            i += 1;
        }
        if !d.is_idle() {
            s.push('\u{FFFD}');
        }
        s
    }

    #[test]
    fn agrees_with_std_lossy_decoding() {
        let cases: &[&[u8]] = &[
            b"plain",
            "é漢🙂".as_bytes(),
            b"\xC0\xAF",         // overlong
            b"\xED\xA0\x80",     // surrogate
            b"\xF4\x90\x80\x80", // past U+10FFFF
            b"\xE6\xBC\x1B[m",   // truncated, then an escape
            b"\x80\xBF\xFF\xFE",
            b"\xF0\x9F\x99",
        ];
        for bytes in cases {
            assert_eq!(decode(bytes), String::from_utf8_lossy(bytes), "{bytes:?}");
        }
    }
}
