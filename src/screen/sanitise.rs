//! The filter between a game's output and its watchers: what comes out can only draw.
//!
//! A watcher's terminal must not be made to answer (DA, DSR, DECRQM, window reports: the
//! answers would arrive as the watcher's input, and some replay attacker-chosen text), change
//! how it sends input (mouse, keypad, paste, focus, keyboard protocols), write the clipboard,
//! set titles, palettes or hyperlinks, or switch how it decodes bytes (8-bit controls, charset
//! encodings). So this is an allow-list: printable UTF-8 text, BS HT LF CR, SO/SI with the
//! G0/G1 designations DECgraphics uses, and the CSI/ESC sequences listed in `csi.rs` and
//! below. Everything else is dropped whole.
//!
//! It is a streaming state machine: state carries across chunks, so a sequence split between
//! two PTY reads is judged exactly like one read whole. Memory is bounded: strings (OSC, DCS,
//! SOS, PM, APC) are skipped byte by byte without being stored, CSI parameters are capped.
//! Output only ever holds whole characters and whole sequences, so a watcher whose terminal
//! starts from rest is back at rest after every chunk; a partial character or sequence waits
//! inside the sanitiser for the rest.
//!
//! Decisions beyond the plain allow-list:
//! - The alternate screen (`?47`, `?1047`, `?1049`) is dropped: the watcher stays on one
//!   buffer, the one the screen model mirrors; switching back to the primary buffer when the
//!   game ends would show a watcher whatever was there before, not the game.
//! - `ESC c` (RIS) resets far more than the screen (modes, the palette, on some terminals the
//!   window size), so it becomes its drawing part: default rendition, ASCII charsets, full
//!   scroll region, visible cursor, screen cleared. That is the largest expansion: 2 bytes in,
//!   [`RIS_DRAWING`] out.
//! - BEL is dropped: a watcher's terminal beeping or flashing is not drawing.
//! - 8-bit C1 controls (bytes 0x80..=0x9F outside a UTF-8 character, or U+0080..=U+009F
//!   encoded) are never passed on. Those that open a sequence (CSI, OSC, DCS, SOS, PM, APC)
//!   have that sequence consumed and dropped too, so its payload does not spill out as text.
//! - Invalid UTF-8 becomes U+FFFD, one per maximal invalid subpart, as a UTF-8 terminal
//!   would show it to the player.

use super::csi::Csi;
use super::utf8::{Step, Utf8};

/// What `ESC c` becomes: SGR 0, G0 and G1 ASCII, SI, full scroll region, cursor shown, home,
/// clear.
pub const RIS_DRAWING: &[u8] = b"\x1b[0m\x1b(B\x1b)B\x0f\x1b[r\x1b[?25h\x1b[H\x1b[2J";

const REPLACEMENT: &[u8] = "\u{FFFD}".as_bytes();

/// Where the parser is between two bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Text and C0 controls (a UTF-8 character may be part-read, in `Sanitiser::utf8`).
    Ground,
    /// After ESC.
    Escape,
    /// After ESC and an intermediate byte; `extra` if more than one intermediate came.
    EscIntermediate { first: u8, extra: bool },
    /// Inside a CSI (its parameters are in `Sanitiser::csi`).
    Csi,
    /// Skipping an OSC (`osc`, which BEL may end) or a DCS/SOS/PM/APC (only ST ends those).
    /// `c2` remembers a 0xC2 byte, the first half of a UTF-8 encoded ST (U+009C).
    Skip { osc: bool, c2: bool },
    /// ESC inside a skipped string: `\` completes ST, anything else starts a new sequence.
    SkipEscape,
}

/// The streaming filter; one per running game, fed every chunk of its output in order.
#[derive(Debug, Clone)]
pub struct Sanitiser {
    state: State,
    utf8: Utf8,
    csi: Csi,
}

impl Default for Sanitiser {
    fn default() -> Self {
        Self::new()
    }
}

impl Sanitiser {
    pub fn new() -> Self {
        Self {
            state: State::Ground,
            utf8: Utf8::default(),
            csi: Csi::default(),
        }
    }

    /// Appends to `out` what a watcher may receive of `input`. Anything incomplete at the end
    /// of `input` is held until the next call.
    pub fn filter(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len());
        let mut rest = input;
        while let Some((&byte, after)) = rest.split_first() {
            if self.state == State::Ground && self.utf8.is_idle() {
                // Most of a game's output is runs of printable ASCII: copied whole.
                let run = rest
                    .iter()
                    .take_while(|b| (0x20..=0x7E).contains(*b))
                    .count();
                if run > 0 {
                    out.extend_from_slice(&rest[..run]);
                    rest = &rest[run..];
                    continue;
                }
            }
            // A byte that ends a malformed sequence is then read afresh, as terminals do;
            // each repeat moves towards Ground, which consumes every byte: at most 3 steps.
            while self.step(byte, out) {}
            rest = after;
        }
    }

    /// Consumes one byte; true if the same byte must be stepped again in the new state.
    fn step(&mut self, byte: u8, out: &mut Vec<u8>) -> bool {
        match self.state {
            State::Ground => return self.ground(byte, out),
            State::Escape => return self.escape(byte, out),
            State::EscIntermediate { first, extra } => match byte {
                0x20..=0x2F => self.state = State::EscIntermediate { first, extra: true },
                0x30..=0x7E => {
                    // G0/G1 as DEC special graphics or ASCII: DECgraphics draws with these.
                    // Other sets, G2/G3, `ESC %` (leave UTF-8), `ESC SP F/G` (8-bit
                    // controls), `ESC #` (line sizes, alignment test) are dropped.
                    if !extra && matches!(first, b'(' | b')') && matches!(byte, b'0' | b'B') {
                        out.extend_from_slice(&[0x1B, first, byte]);
                    }
                    self.state = State::Ground;
                }
                _ => return self.inside_sequence(byte, out),
            },
            State::Csi => match byte {
                0x20..=0x3F => self.csi.push(byte),
                0x40..=0x7E => {
                    self.csi.finish(byte, out);
                    self.state = State::Ground;
                }
                _ => return self.inside_sequence(byte, out),
            },
            State::Skip { osc, c2 } => match byte {
                0x07 if osc => self.state = State::Ground,
                0x18 | 0x1A => self.state = State::Ground,
                0x1B => self.state = State::SkipEscape,
                0x9C if c2 => self.state = State::Ground,
                _ => {
                    self.state = State::Skip {
                        osc,
                        c2: byte == 0xC2,
                    }
                }
            },
            State::SkipEscape if byte == b'\\' => self.state = State::Ground,
            State::SkipEscape => {
                self.state = State::Escape;
                return true;
            }
        }
        false
    }

    fn ground(&mut self, byte: u8, out: &mut Vec<u8>) -> bool {
        if self.utf8.is_idle() {
            match byte {
                0x20..=0x7E => out.push(byte),
                0x1B => self.state = State::Escape,
                0x00..=0x1F | 0x7F => control(byte, out),
                // Not a UTF-8 lead byte: an 8-bit C1 control.
                0x80..=0x9F => self.c1(byte),
                _ => return self.decode(byte, out),
            }
            return false;
        }
        self.decode(byte, out)
    }

    fn decode(&mut self, byte: u8, out: &mut Vec<u8>) -> bool {
        match self.utf8.push(byte) {
            Step::Pending => false,
            Step::Char(c) if ('\u{80}'..='\u{9F}').contains(&c) => {
                // UTF-8 encoded C1: terminals that decode first treat it as the control.
                self.c1(c as u8);
                false
            }
            Step::Char(c) => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                false
            }
            Step::Invalid { again } => {
                out.extend_from_slice(REPLACEMENT);
                again
            }
        }
    }

    fn c1(&mut self, code: u8) {
        match code {
            0x9B => {
                self.csi.start(true);
                self.state = State::Csi;
            }
            0x9D => {
                self.state = State::Skip {
                    osc: true,
                    c2: false,
                }
            }
            0x90 | 0x98 | 0x9E | 0x9F => {
                self.state = State::Skip {
                    osc: false,
                    c2: false,
                }
            }
            _ => {}
        }
    }

    fn escape(&mut self, byte: u8, out: &mut Vec<u8>) -> bool {
        match byte {
            b'[' => {
                self.csi.start(false);
                self.state = State::Csi;
            }
            b']' => {
                self.state = State::Skip {
                    osc: true,
                    c2: false,
                }
            }
            b'P' | b'X' | b'^' | b'_' => {
                self.state = State::Skip {
                    osc: false,
                    c2: false,
                }
            }
            0x20..=0x2F => {
                self.state = State::EscIntermediate {
                    first: byte,
                    extra: false,
                }
            }
            // DECSC/DECRC save and restore the cursor; IND, NEL and RI move it (scrolling
            // inside the region). Keypad modes (`=`, `>`), DECID (`Z`), HTS (`H`), single and
            // locking shifts to G2/G3 and the rest are dropped.
            b'7' | b'8' | b'D' | b'E' | b'M' => {
                out.extend_from_slice(&[0x1B, byte]);
                self.state = State::Ground;
            }
            b'c' => {
                out.extend_from_slice(RIS_DRAWING);
                self.state = State::Ground;
            }
            0x30..=0x7E => self.state = State::Ground,
            _ => return self.inside_sequence(byte, out),
        }
        false
    }

    /// A byte with no meaning of its own inside an ESC or CSI sequence, handled as a VT500
    /// parser does: C0 controls act (and the sequence goes on), CAN and SUB cancel it, ESC
    /// starts another, DEL is ignored, and anything 8-bit abandons it to be read as text.
    fn inside_sequence(&mut self, byte: u8, out: &mut Vec<u8>) -> bool {
        match byte {
            0x18 | 0x1A => self.state = State::Ground,
            0x1B => self.state = State::Escape,
            0x00..=0x1F => control(byte, out),
            0x7F => {}
            _ => {
                self.state = State::Ground;
                return true;
            }
        }
        false
    }
}

/// C0 controls: the ones that draw (BS, HT, LF, CR; SO and SI select G1/G0 for DECgraphics)
/// pass, the rest (BEL, VT, FF, ENQ, which makes some terminals answer, …) are dropped.
fn control(byte: u8, out: &mut Vec<u8>) {
    if matches!(byte, 0x08 | 0x09 | 0x0A | 0x0D | 0x0E | 0x0F) {
        out.push(byte);
    }
}
