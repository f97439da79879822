//! What a running game shows to others: its terminal screen model (a watcher attaching sees
//! the screen at once, without anything being sent to the game), the sanitiser its output
//! passes before any watcher gets it, its watchers on this core and how many on each other
//! core, and what the watch menu was last told about it.

use super::games::ConnRef;
use crate::screen::Screen;
use crate::session::WatchKey;
use crate::watch::GameRef;

/// A watcher on some core: its connection there and its watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watcher {
    pub conn: ConnRef,
    pub watch: WatchKey,
}

pub struct GameView {
    /// The screen model; it sanitises what it is fed, and hands watchers the same bytes.
    screen: Screen,
    pub cols: u16,
    pub rows: u16,
    /// Watchers on the game's own core.
    pub local: Vec<Watcher>,
    /// Watchers on each core (index: core; the game's own core stays 0 here).
    pub remote: Vec<u32>,
    /// When the game last wrote (reactor clock).
    pub last_output_ms: u64,
    /// (cols, rows, last output in whole seconds, watchers) as last reported.
    reported: (u16, u16, u64, u32),
}

impl GameView {
    pub fn new(cols: u16, rows: u16, cores: usize, now: u64) -> GameView {
        let (cols, rows) = (cols.max(1), rows.max(1));
        GameView {
            screen: Screen::new(rows, cols),
            cols,
            rows,
            local: Vec::new(),
            remote: vec![0; cores],
            last_output_ms: now,
            reported: (cols, rows, now / 1000, 0),
        }
    }

    /// Output of the game: into the screen model and, when anyone watches, the same
    /// sanitised bytes into `safe` (cleared first). Returns whether anyone watches.
    pub fn output(&mut self, bytes: &[u8], now: u64, safe: &mut Vec<u8>) -> bool {
        self.last_output_ms = now;
        safe.clear();
        if !self.watched() {
            self.screen.feed(bytes);
            return false;
        }
        self.screen.feed_and_filter(bytes, safe);
        true
    }

    /// The player's terminal changed size.
    pub fn resize(&mut self, cols: u16, rows: u16) {
        let (cols, rows) = (cols.max(1), rows.max(1));
        self.cols = cols;
        self.rows = rows;
        self.screen.resize(rows, cols);
    }

    /// Appends the bytes that draw the current screen on any terminal of its size.
    pub fn repaint_into(&self, out: &mut Vec<u8>) {
        self.screen.repaint(out);
    }

    /// The bytes that draw the current screen on a blank terminal.
    pub fn repaint(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(usize::from(self.cols) * usize::from(self.rows) * 2);
        self.screen.repaint(&mut out);
        out
    }

    /// The other cores with watchers of this game.
    pub fn watching_cores(&self) -> Vec<usize> {
        (0..self.remote.len())
            .filter(|&c| self.remote.get(c).is_some_and(|&n| n > 0))
            .collect()
    }

    pub fn watched(&self) -> bool {
        !self.local.is_empty() || self.remote.iter().any(|&n| n > 0)
    }

    pub fn watchers(&self) -> u32 {
        u32::try_from(self.local.len()).unwrap_or(u32::MAX) + self.remote.iter().sum::<u32>()
    }

    /// What changed since the last report, if anything (and remember it as reported).
    pub fn status_changed(&mut self) -> Option<(u16, u16, u64, u32)> {
        let now = (
            self.cols,
            self.rows,
            self.last_output_ms / 1000,
            self.watchers(),
        );
        (now != self.reported).then(|| {
            self.reported = now;
            now
        })
    }
}

/// The name of game `slot` (with `generation`) on core `core`.
pub fn game_ref(core: usize, slot: usize, generation: u32) -> GameRef {
    GameRef {
        core: u16::try_from(core).unwrap_or(u16::MAX),
        slot: u32::try_from(slot).unwrap_or(u32::MAX),
        generation,
    }
}
