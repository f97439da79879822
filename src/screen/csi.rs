//! One control sequence (CSI) as the sanitiser collects it, and the verdict on it: which
//! sequences reach a watcher, rewritten into one canonical form, and which are dropped.
//!
//! Collection is bounded: at most [`MAX_PARAMS`] parameters, each clamped to [`CLAMP`]; a
//! sequence that overflows is dropped whole rather than truncated, since a truncated SGR or
//! CUP would mean something the game never said. Kept sequences are re-serialised from the
//! parsed values, so odd spellings (leading zeros, HVP for CUP) never reach a watcher.

/// Enough for the longest SGR a game sends in practice (attributes plus two truecolour
/// colours is 15); anything longer is not drawing a screen.
pub(super) const MAX_PARAMS: usize = 32;

/// No terminal is 10,000 cells in any direction, so a larger count only makes a watcher's
/// terminal loop; clamping keeps the meaning on every real screen.
const CLAMP: u16 = 9999;

/// The most REP may repeat: wider than any terminal a game is played in.
const MAX_REPEAT: u16 = 512;

/// The parameters, private marker and intermediates of the sequence being read.
#[derive(Debug, Clone, Default)]
pub(super) struct Csi {
    /// `?`, `>`, `=` or `<` before the parameters; 0 for none.
    private: u8,
    values: [u16; MAX_PARAMS],
    /// Bit i: parameter i was written (an empty parameter means "default").
    present: u32,
    /// Bit i: parameter i follows a `:` (a sub-parameter, only meaningful in SGR).
    colon: u32,
    /// Parameters so far; a sequence always has at least one, possibly empty.
    len: usize,
    intermediates: u8,
    /// Malformed or over the bounds: dropped when it ends.
    bad: bool,
    /// Introduced by an 8-bit C1 CSI: dropped whatever it says (see `sanitise`).
    c1: bool,
}

impl Csi {
    /// Starts a new sequence.
    pub(super) fn start(&mut self, c1: bool) {
        *self = Self {
            len: 1,
            c1,
            ..Self::default()
        };
    }

    /// A parameter, separator, private-marker or intermediate byte (0x20..=0x3F).
    pub(super) fn push(&mut self, byte: u8) {
        let i = self.len - 1;
        match byte {
            b'0'..=b'9' if self.intermediates == 0 => {
                let v = u32::from(self.values[i]) * 10 + u32::from(byte - b'0');
                self.values[i] = v.min(u32::from(CLAMP)) as u16;
                self.present |= 1 << i;
            }
            b';' | b':' if self.intermediates == 0 && self.len < MAX_PARAMS => {
                if byte == b':' {
                    self.colon |= 1 << self.len;
                }
                self.len += 1;
            }
            0x3C..=0x3F if self.len == 1 && self.present == 0 && self.private == 0 => {
                self.private = byte;
            }
            0x20..=0x2F => self.intermediates = self.intermediates.saturating_add(1),
            _ => self.bad = true,
        }
    }

    /// The final byte arrived: appends the sequence to `out` if a watcher may have it.
    pub(super) fn finish(&self, final_byte: u8, out: &mut Vec<u8>) {
        // Every kept sequence is a plain or `?` CSI with no intermediates: intermediates
        // select DECRQM, DECSTR, DECSCL (7/8-bit controls), cursor styles and the like.
        if self.bad || self.c1 || self.intermediates > 0 {
            return;
        }
        let n = self.len;
        match (self.private, final_byte) {
            (0, b'm') => self.emit(out, b'm'),
            // `:` means something only in SGR; elsewhere it is a malformed sequence.
            _ if self.colon != 0 => {}
            // Cursor movement. HVP is CUP by another name and HPA is CHA: one spelling each,
            // so every watcher's terminal (and the model) reads them the same way.
            (0, b'H' | b'f') if n <= 2 => self.emit(out, b'H'),
            (0, b'`') if n == 1 => self.emit(out, b'G'),
            (0, b'A' | b'B' | b'C' | b'D' | b'E' | b'F' | b'G' | b'd') if n == 1 => {
                self.emit(out, final_byte)
            }
            // Tab movement (CHT, CBT): cursor motion that curses uses; tab stops themselves
            // (HTS, TBC) are terminal state and stay the watcher's own.
            (0, b'I' | b'Z') if n == 1 => self.emit(out, final_byte),
            // ED 0-2 and EL 0-2 erase what is drawn; ED 3 erases the watcher's scrollback,
            // history that is theirs, not the game's.
            (0, b'J' | b'K') if n == 1 && self.value(0) <= 2 => self.emit(out, final_byte),
            // ECH, ICH, DCH, IL, DL: curses redraws lines by inserting and deleting cells and
            // rows instead of repainting them; each only moves or blanks cells on the screen.
            (0, b'X' | b'@' | b'P' | b'L' | b'M') if n == 1 => self.emit(out, final_byte),
            // DECSTBM: curses scrolls a region (the message window) with it; it bounds where
            // LF/RI scroll and moves the cursor home, nothing else.
            (0, b'r') if n <= 2 => self.emit(out, b'r'),
            // SU/SD (ncurses' indn/rin). One parameter only: `CSI Ps;Ps;Ps;Ps;Ps T` is
            // xterm's mouse highlight tracking.
            (0, b'S' | b'T') if n == 1 => self.emit(out, final_byte),
            // REP repeats the last printed character: ncurses uses it for runs such as
            // walls. Each repeat is a character for the model and every watcher to draw, so
            // 7 bytes could cost 9,999 prints: capped at a line's worth (longer runs only
            // wrap and scroll, which a game does with text and LF).
            (0, b'b') if n == 1 => {
                out.extend_from_slice(b"\x1b[");
                if self.present != 0 {
                    push_decimal(out, self.values[0].min(MAX_REPEAT));
                }
                out.push(b'b');
            }
            // Of the ANSI modes only IRM (4, insert mode) draws; KAM (2) locks the keyboard,
            // SRM (12) turns on local echo, LNM (20) changes what Enter sends.
            (0, b'h' | b'l') => self.emit_mode(out, final_byte, 4),
            // Of the DEC private modes only DECTCEM (25, cursor visible) is drawing; the rest
            // change input (mouse, keypad, paste, focus), the screen buffer or the terminal.
            (b'?', b'h' | b'l') => self.emit_mode(out, final_byte, 25),
            _ => {}
        }
    }

    fn value(&self, i: usize) -> u16 {
        if self.present & (1 << i) != 0 {
            self.values[i]
        } else {
            0
        }
    }

    fn emit(&self, out: &mut Vec<u8>, final_byte: u8) {
        out.extend_from_slice(b"\x1b[");
        for i in 0..self.len {
            if i > 0 {
                out.push(if self.colon & (1 << i) != 0 {
                    b':'
                } else {
                    b';'
                });
            }
            if self.present & (1 << i) != 0 {
                push_decimal(out, self.values[i]);
            }
        }
        out.push(final_byte);
    }

    /// Keeps only `keep` out of a mode set/reset list (`CSI ? 25;1000 h` → `CSI ? 25 h`).
    fn emit_mode(&self, out: &mut Vec<u8>, final_byte: u8, keep: u16) {
        let listed = (0..self.len).any(|i| self.present & (1 << i) != 0 && self.values[i] == keep);
        if listed {
            out.extend_from_slice(b"\x1b[");
            if self.private != 0 {
                out.push(self.private);
            }
            push_decimal(out, keep);
            out.push(final_byte);
        }
    }
}

/// Appends `v` in decimal (no allocation; the sanitiser runs on every byte of game output).
pub(super) fn push_decimal(out: &mut Vec<u8>, v: u16) {
    let mut digits = [0u8; 5];
    let mut n = 0;
    let mut v = v;
    loop {
        digits[n] = b'0' + (v % 10) as u8;
        n += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend(digits[..n].iter().rev());
}
