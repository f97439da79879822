//! Keyboard decoding: the raw bytes an SSH client sends for key presses → lobby keys.
//!
//! Control functions follow ECMA-48: CSI sequences (§5.4, `ESC [` params final 0x40–0x7E, as
//! sent for arrow and function keys), SS3 (`ESC O` x, application cursor keys) and the string
//! controls OSC/DCS/SOS/PM/APC (ended by BEL or ST) are consumed. The cursor keys up and
//! down, Page Up/Down, Home and End (xterm's and the VT220's encodings) become [`Key::Move`];
//! every other sequence is ignored. Enter is normalised from CR, LF, CR LF and CR NUL
//! (RFC 854's telnet NVT habit that some clients keep).
//! UTF-8 is assembled across calls; invalid UTF-8 is dropped. The decoder takes one byte at a
//! time and keeps its state between calls, so input split at any point decodes the same.
//!
//! A lone Escape key cannot be told from the start of a sequence without a clock: it is
//! resolved by the next byte, or by [`KeyDecoder::flush_idle`] when the caller saw a pause.

/// One key press as the lobby understands it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Key {
    /// A printable character (never a control character).
    Char(char),
    /// CR, LF, CR LF or CR NUL.
    Enter,
    /// DEL (0x7f) or BS (0x08).
    Backspace,
    /// Ctrl-U: erase the whole line.
    ClearLine,
    /// Ctrl-C.
    Interrupt,
    /// A lone Escape key.
    Escape,
    /// Ctrl-D.
    Eof,
    /// A cursor or paging key (screens without a list ignore it).
    Move(Move),
}

/// The navigation keys the decoder recognises.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Move {
    Up,
    Down,
    PageUp,
    PageDown,
    Home,
    End,
}

/// Up to two keys produced by one byte (a pending Escape resolved by the byte, then the byte).
#[derive(Default)]
pub(crate) struct Keys {
    /// The keys in order; `None` slots are empty.
    slots: [Option<Key>; 2],
}

impl Keys {
    /// Appends a key; a third key is impossible by construction and would be dropped.
    fn push(&mut self, key: Key) {
        if let Some(slot) = self.slots.iter_mut().find(|s| s.is_none()) {
            *slot = Some(key);
        }
    }
}

impl IntoIterator for Keys {
    type Item = Key;
    type IntoIter = std::iter::Flatten<std::array::IntoIter<Option<Key>, 2>>;

    fn into_iter(self) -> Self::IntoIter {
        self.slots.into_iter().flatten()
    }
}

/// Byte-at-a-time key decoder with state kept across calls.
#[derive(Default)]
pub(crate) struct KeyDecoder {
    /// Where we are inside an escape sequence or a UTF-8 character.
    state: State,
    /// The previous byte was CR, so a following LF or NUL belongs to the same Enter.
    after_cr: bool,
}

impl KeyDecoder {
    /// Feeds one byte; returns the keys it completes (zero, one or two).
    pub(crate) fn push(&mut self, byte: u8) -> Keys {
        let mut keys = Keys::default();
        self.step(byte, &mut keys);
        keys
    }

    /// Whether the last byte was a lone ESC, which only a pause in input can tell apart
    /// from the start of an escape sequence (then call [`Self::flush_idle`] after one).
    pub(crate) fn escape_pending(&self) -> bool {
        self.state == State::Escape
    }

    /// The caller saw no input for a moment: a pending lone ESC is the Escape key.
    pub(crate) fn flush_idle(&mut self) -> Option<Key> {
        if self.state == State::Escape {
            self.state = State::Ground;
            Some(Key::Escape)
        } else {
            None
        }
    }

    /// Forgets any half-read sequence (e.g. after a game had the terminal).
    pub(crate) fn reset(&mut self) {
        *self = KeyDecoder::default();
    }

    /// Runs the state machine for one byte.
    fn step(&mut self, byte: u8, keys: &mut Keys) {
        match self.state {
            State::Ground => self.ground(byte, keys),
            State::Escape => match byte {
                b'[' => {
                    self.state = State::Csi {
                        len: 0,
                        param: Param::First(0),
                    }
                }
                b'O' => self.state = State::Ss3,
                b']' | b'P' | b'X' | b'^' | b'_' => self.state = State::Str { len: 0 },
                ESC => keys.push(Key::Escape),
                _ => {
                    keys.push(Key::Escape);
                    self.state = State::Ground;
                    self.ground(byte, keys);
                }
            },
            State::Csi { len, param } => match byte {
                0x40..=0x7e => {
                    self.state = State::Ground;
                    if let Some(m) = csi_move(param, byte) {
                        keys.push(Key::Move(m));
                    }
                }
                0x20..=0x3f if len < MAX_SEQUENCE => {
                    self.state = State::Csi {
                        len: len + 1,
                        param: next_param(param, byte),
                    }
                }
                0x20..=0x3f => self.state = State::Ground,
                ESC => self.state = State::Escape,
                _ => {
                    self.state = State::Ground;
                    self.ground(byte, keys);
                }
            },
            State::Ss3 => match byte {
                ESC => self.state = State::Escape,
                0x20..=0x7e => {
                    self.state = State::Ground;
                    if let Some(m) = ss3_move(byte) {
                        keys.push(Key::Move(m));
                    }
                }
                _ => {
                    self.state = State::Ground;
                    self.ground(byte, keys);
                }
            },
            State::Str { len } => match byte {
                BEL => self.state = State::Ground,
                ESC => self.state = State::StrEscape,
                0x00..=0x1f => {
                    // A key press inside a runaway string: give the key back to the user.
                    self.state = State::Ground;
                    self.ground(byte, keys);
                }
                _ if len < MAX_STRING => self.state = State::Str { len: len + 1 },
                _ => self.state = State::Ground,
            },
            State::StrEscape => {
                if byte == b'\\' {
                    self.state = State::Ground;
                } else {
                    self.state = State::Escape;
                    self.step(byte, keys);
                }
            }
            State::Utf8 { buf, have, need } => {
                if byte & 0xc0 != 0x80 {
                    // Truncated character: drop it and read the byte afresh.
                    self.state = State::Ground;
                    self.ground(byte, keys);
                    return;
                }
                let mut buf = buf;
                if let Some(slot) = buf.get_mut(usize::from(have)) {
                    *slot = byte;
                }
                let have = have + 1;
                if have < need {
                    self.state = State::Utf8 { buf, have, need };
                    return;
                }
                self.state = State::Ground;
                let bytes = buf.get(..usize::from(need)).unwrap_or_default();
                if let Some(c) = std::str::from_utf8(bytes)
                    .ok()
                    .and_then(|s| s.chars().next())
                {
                    if !c.is_control() {
                        keys.push(Key::Char(c));
                    }
                }
            }
        }
    }

    /// Handles a byte outside any sequence.
    fn ground(&mut self, byte: u8, keys: &mut Keys) {
        let after_cr = std::mem::take(&mut self.after_cr);
        if after_cr && (byte == b'\n' || byte == 0) {
            return;
        }
        match byte {
            b'\r' => {
                self.after_cr = true;
                keys.push(Key::Enter);
            }
            b'\n' => keys.push(Key::Enter),
            0x7f | 0x08 => keys.push(Key::Backspace),
            0x15 => keys.push(Key::ClearLine),
            0x03 => keys.push(Key::Interrupt),
            0x04 => keys.push(Key::Eof),
            ESC => self.state = State::Escape,
            0x20..=0x7e => keys.push(Key::Char(char::from(byte))),
            0xc2..=0xdf => self.start_utf8(byte, 2),
            0xe0..=0xef => self.start_utf8(byte, 3),
            0xf0..=0xf4 => self.start_utf8(byte, 4),
            // Other control bytes, stray continuation bytes and impossible lead bytes.
            _ => {}
        }
    }

    /// Begins a multi-byte UTF-8 character of `need` bytes.
    fn start_utf8(&mut self, lead: u8, need: u8) {
        self.state = State::Utf8 {
            buf: [lead, 0, 0, 0],
            have: 1,
            need,
        };
    }
}

/// The key a CSI sequence stands for: `CSI A`/`B` (up/down, with or without modifiers),
/// `CSI H`/`F` (home/end), `CSI 5~`/`6~` (page up/down), `CSI 1~`/`7~` and `CSI 4~`/`8~`
/// (home/end on VT220-style and rxvt keyboards).
fn csi_move(param: Param, fin: u8) -> Option<Move> {
    let value = match param {
        Param::First(v) | Param::Ended(v) => v,
        Param::Other => return None,
    };
    match (fin, value) {
        (b'A', _) => Some(Move::Up),
        (b'B', _) => Some(Move::Down),
        (b'H', _) => Some(Move::Home),
        (b'F', _) => Some(Move::End),
        (b'~', 5) => Some(Move::PageUp),
        (b'~', 6) => Some(Move::PageDown),
        (b'~', 1 | 7) => Some(Move::Home),
        (b'~', 4 | 8) => Some(Move::End),
        _ => None,
    }
}

/// The key an SS3 sequence stands for (application cursor mode).
fn ss3_move(fin: u8) -> Option<Move> {
    match fin {
        b'A' => Some(Move::Up),
        b'B' => Some(Move::Down),
        b'H' => Some(Move::Home),
        b'F' => Some(Move::End),
        _ => None,
    }
}

/// The first parameter of a CSI sequence, as far as it has been read (the rest only carry
/// modifiers, which do not change which key it is).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Param {
    /// Digits of the first parameter so far (0 when there are none yet).
    First(u16),
    /// The first parameter ended at a `;`.
    Ended(u16),
    /// A private marker or an intermediate byte: no key of ours.
    Other,
}

/// The first parameter after one more parameter or intermediate byte.
fn next_param(param: Param, byte: u8) -> Param {
    match (param, byte) {
        (Param::First(v), b'0'..=b'9') => {
            Param::First(v.saturating_mul(10).saturating_add(u16::from(byte - b'0')))
        }
        (Param::First(v), b';') => Param::Ended(v),
        (Param::Ended(v), b'0'..=b'9' | b';') => Param::Ended(v),
        _ => Param::Other,
    }
}

/// The escape character.
const ESC: u8 = 0x1b;
/// The bell character, which ends an OSC string in xterm's dialect.
const BEL: u8 = 0x07;
/// Longest CSI parameter/intermediate run we follow before giving up on the sequence.
const MAX_SEQUENCE: u8 = 64;
/// Longest OSC/DCS string we swallow before giving up on it.
const MAX_STRING: u16 = 1024;

/// Decoder state between bytes.
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
enum State {
    /// Plain input.
    #[default]
    Ground,
    /// Just saw ESC.
    Escape,
    /// Inside `ESC [`; `len` counts parameter/intermediate bytes so far, `param` is what
    /// they say of the key.
    Csi { len: u8, param: Param },
    /// Inside `ESC O`, waiting for its one final byte.
    Ss3,
    /// Inside a string control; `len` counts its bytes so far.
    Str { len: u16 },
    /// ESC inside a string control: `\` makes it ST.
    StrEscape,
    /// Inside a multi-byte UTF-8 character: `have` of `need` bytes are in `buf`.
    Utf8 { buf: [u8; 4], have: u8, need: u8 },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> Vec<Key> {
        let mut d = KeyDecoder::default();
        bytes.iter().flat_map(|&b| d.push(b)).collect()
    }

    #[test]
    fn every_enter_convention_gives_one_enter() {
        for input in [&b"a\rb"[..], b"a\nb", b"a\r\nb", b"a\r\0b"] {
            assert_eq!(
                decode(input),
                vec![Key::Char('a'), Key::Enter, Key::Char('b')],
                "{input:?}"
            );
        }
    }

    #[test]
    fn two_line_feeds_are_two_enters() {
        assert_eq!(decode(b"\n\n"), vec![Key::Enter, Key::Enter]);
        assert_eq!(decode(b"\r\r"), vec![Key::Enter, Key::Enter]);
    }

    #[test]
    fn left_right_function_keys_and_paste_brackets_produce_nothing() {
        let input = b"\x1bOC\x1b[1;5D\x1b[C\x1b[15~\x1b[200~x\x1b[201~\x1b[?1;2A\x1b[>0;1B";
        assert_eq!(decode(input), vec![Key::Char('x')]);
    }

    #[test]
    fn cursor_and_paging_keys_are_moves_in_every_encoding() {
        use Move::*;
        let cases: [(&[u8], Move); 14] = [
            (b"\x1b[A", Up),
            (b"\x1bOA", Up),
            (b"\x1b[1;5A", Up),
            (b"\x1b[B", Down),
            (b"\x1bOB", Down),
            (b"\x1b[5~", PageUp),
            (b"\x1b[6~", PageDown),
            (b"\x1b[H", Home),
            (b"\x1bOH", Home),
            (b"\x1b[1~", Home),
            (b"\x1b[7~", Home),
            (b"\x1b[F", End),
            (b"\x1b[4~", End),
            (b"\x1b[8~", End),
        ];
        for (input, want) in cases {
            assert_eq!(decode(input), vec![Key::Move(want)], "{input:?}");
        }
        // Split anywhere, it is the same key.
        let mut d = KeyDecoder::default();
        let keys: Vec<Key> = b"\x1b[6~".iter().flat_map(|&b| d.push(b)).collect();
        assert_eq!(keys, vec![Key::Move(PageDown)]);
    }

    #[test]
    fn osc_reply_is_swallowed_whether_ended_by_bel_or_st() {
        assert_eq!(decode(b"\x1b]11;rgb:0/0/0\x07q"), vec![Key::Char('q')]);
        assert_eq!(decode(b"\x1b]11;rgb:0/0/0\x1b\\q"), vec![Key::Char('q')]);
    }

    #[test]
    fn escape_followed_by_a_letter_is_escape_then_the_letter() {
        assert_eq!(decode(b"\x1bq"), vec![Key::Escape, Key::Char('q')]);
    }

    #[test]
    fn lone_escape_waits_for_idle() {
        let mut d = KeyDecoder::default();
        assert_eq!(d.push(0x1b).into_iter().count(), 0);
        assert_eq!(d.flush_idle(), Some(Key::Escape));
        assert_eq!(d.flush_idle(), None);
    }

    #[test]
    fn control_keys_are_recognised_and_others_ignored() {
        assert_eq!(
            decode(b"\x03\x04\x15\x7f\x08\x01\x09\x00"),
            vec![
                Key::Interrupt,
                Key::Eof,
                Key::ClearLine,
                Key::Backspace,
                Key::Backspace
            ]
        );
    }

    #[test]
    fn utf8_is_assembled_and_invalid_bytes_dropped() {
        assert_eq!(
            decode("é€😀".as_bytes()),
            vec![Key::Char('é'), Key::Char('€'), Key::Char('😀')]
        );
        assert_eq!(
            decode(b"\xc3a\xff\x80b"),
            vec![Key::Char('a'), Key::Char('b')]
        );
        // Overlong encoding of '/' and a UTF-16 surrogate are not characters.
        assert_eq!(decode(b"\xe0\x80\xaf\xed\xa0\x80z"), vec![Key::Char('z')]);
    }

    #[test]
    fn ctrl_c_inside_a_broken_sequence_still_counts() {
        assert_eq!(decode(b"\x1b[1\x03"), vec![Key::Interrupt]);
        assert_eq!(decode(b"\x1b]junk\x03"), vec![Key::Interrupt]);
    }

    #[test]
    fn overlong_csi_is_abandoned() {
        let mut input = b"\x1b[".to_vec();
        input.extend(std::iter::repeat_n(b'1', 100));
        input.push(b'x');
        // The sequence is given up after 64 parameter bytes; the rest is plain digits.
        let keys = decode(&input);
        assert_eq!(keys.last(), Some(&Key::Char('x')));
        assert!(keys.len() < 100);
    }
}
