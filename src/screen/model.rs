//! One running game's screen, kept so a watcher who attaches sees it at once, without any
//! input (a redraw key) being sent to the player's game.
//!
//! The emulation is avt's (see Cargo.toml for why that crate). The model is fed through its own
//! [`Sanitiser`], so it interprets exactly the bytes a watcher receives: what it repaints is
//! what a watcher who had been there from the start would see, and the stream that follows a
//! repaint continues it correctly. It also keeps avt away from everything it need not know
//! (alternate screens, in-band resizes, modes), which keeps the state small.

use avt::parser::{Function, Parser};
use avt::terminal::Terminal;
use unicode_width::UnicodeWidthChar;

use super::repaint;
use super::sanitise::Sanitiser;

/// Input is sanitised in pieces of this size into a scratch buffer kept between calls, so the
/// buffer stays small (a piece expands at most ~15x, for a run of `ESC c`) however large the
/// chunk handed to [`Screen::feed`].
const PIECE: usize = 512;

/// Scrolled-off lines pile up in avt until collected. A print scrolls at most one line (when
/// it wraps), so prints are collected after this many; any other operation may scroll a
/// screenful (SU, LF, IL in a region), so it is collected at once.
const GC_EVERY: u32 = 64;

/// The screen model.
pub struct Screen {
    term: Terminal,
    parser: Parser,
    sanitiser: Sanitiser,
    scratch: Vec<u8>,
    rows: u16,
    cols: u16,
    since_gc: u32,
}

impl std::fmt::Debug for Screen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Screen")
            .field("rows", &self.rows)
            .field("cols", &self.cols)
            .finish_non_exhaustive()
    }
}

impl Screen {
    /// A blank screen. Sizes are taken as at least 1 row and 2 columns (see `fit`).
    pub fn new(rows: u16, cols: u16) -> Self {
        let (rows, cols) = fit(rows, cols);
        Self {
            // No scrollback: a watcher is shown the screen, not its history.
            term: Terminal::new((usize::from(cols), usize::from(rows)), Some(0)),
            parser: Parser::new(),
            sanitiser: Sanitiser::new(),
            // Sized up front: grown lazily, it would grow on the first read larger than any
            // before, an allocation at a random moment of a steady game.
            scratch: Vec::with_capacity(2 * PIECE),
            rows,
            cols,
            since_gc: 0,
        }
    }

    /// Interprets a chunk of the game's raw output.
    pub fn feed(&mut self, bytes: &[u8]) {
        let mut clean = std::mem::take(&mut self.scratch);
        for piece in bytes.chunks(PIECE) {
            clean.clear();
            self.sanitiser.filter(piece, &mut clean);
            self.interpret(&clean);
        }
        self.scratch = clean;
    }

    /// [`feed`](Self::feed), also appending to `out` the sanitised bytes for the watchers
    /// attached now (the sanitising is done once for both).
    pub fn feed_and_filter(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        self.sanitiser.filter(bytes, out);
        self.interpret(&out[start..]);
    }

    /// The player's terminal changed size (taken as at least 1×2, see `fit`).
    pub fn resize(&mut self, rows: u16, cols: u16) {
        let (rows, cols) = fit(rows, cols);
        if (rows, cols) == (self.rows, self.cols) {
            return;
        }
        self.term.resize(usize::from(cols), usize::from(rows));
        self.rows = rows;
        self.cols = cols;
        self.collect();
    }

    /// `(rows, cols)`.
    pub fn size(&self) -> (u16, u16) {
        (self.rows, self.cols)
    }

    /// Appends bytes that draw the current screen on a terminal of this size, whatever it
    /// showed before: rendition reset, screen cleared, every cell with its colours and
    /// attributes, then the state the live stream goes on from (scroll region, charsets,
    /// insert mode, rendition) and the cursor's position and visibility. Only printable text,
    /// cursor positioning, erase, SGR, DECSTBM, IRM, `?25` and G0/G1 designations with SO/SI
    /// are used: a repaint passes the sanitiser unchanged.
    pub fn repaint(&self, out: &mut Vec<u8>) {
        repaint::repaint(&self.term, out);
    }

    /// The emulator, for the tests' cell-by-cell comparisons.
    #[cfg(test)]
    pub(super) fn terminal(&self) -> &Terminal {
        &self.term
    }

    /// Runs sanitised bytes through the emulator. They are whole UTF-8 characters (the
    /// sanitiser holds back partial ones), so a plain decode suffices.
    fn interpret(&mut self, clean: &[u8]) {
        match std::str::from_utf8(clean) {
            Ok(text) => text.chars().for_each(|c| self.execute(c)),
            // Not expected from the sanitiser; lossy rather than trusted or panicking.
            Err(_) => String::from_utf8_lossy(clean)
                .chars()
                .for_each(|c| self.execute(c)),
        }
        self.collect();
    }

    fn execute(&mut self, c: char) {
        // Terminals put a zero-width character (a combining mark, a joiner) on the cell
        // before it; avt gives it a cell of its own, so a repaint would shift the rest of the
        // row by one. Left out, the model loses the mark but keeps every column where the
        // watchers' terminals have it. (The live stream still carries it.)
        if c.width() == Some(0) {
            return;
        }
        if let Some(op) = self.parser.feed(c) {
            let print = matches!(op, Function::Print(_));
            self.term.execute(op);
            self.since_gc += 1;
            if !print || self.since_gc >= GC_EVERY {
                self.collect();
            }
        }
    }

    /// Drops the lines scrolled off the top (dropping avt's iterator is what discards them).
    fn collect(&mut self) {
        drop(self.term.gc());
        self.since_gc = 0;
    }
}

/// The size the emulator is given: a PTY can report 0×0, and avt needs a cell; and a wide
/// character needs two columns (avt panics reflowing a line that holds one into a single
/// column). Nobody plays in one column, so a watcher loses nothing.
fn fit(rows: u16, cols: u16) -> (u16, u16) {
    (rows.max(1), cols.max(2))
}
