//! What watching shares between the layers: how a running game is named across cores, and
//! the line the watch menu shows for it.
//!
//! A game lives on the core that spawned it. Its [`GameRef`] names that core and the game's
//! slot there, with the slot's generation, so a watcher's late request can never land on a
//! newer game in a reused slot. The control core keeps the directory of [`Listing`]s the data
//! cores report; the watch menu shows a snapshot of it ([`GameList`]).

use std::sync::Arc;

/// A running game, on any core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GameRef {
    /// The data core running it.
    pub core: u16,
    /// Its slot in that core's game table.
    pub slot: u32,
    /// Which occupant of the slot.
    pub generation: u32,
}

/// One running game as the watch menu shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub game: GameRef,
    /// The player's account name.
    pub player: String,
    /// The game's configured id and name (`nethack`, `NetHack 3.6`).
    pub game_id: String,
    pub game_name: String,
    /// The player's terminal.
    pub cols: u16,
    pub rows: u16,
    /// Start, in seconds since the Unix epoch.
    pub started_unix: u64,
    /// Last output, on the reactor's clock (milliseconds): idle time is `now - this`.
    pub last_output_ms: u64,
    /// Connections watching it now.
    pub watchers: u32,
    /// Its player's connection dropped: it waits for them to log in again.
    pub detached: bool,
}

/// A snapshot of every running game, shared by every menu that shows it.
pub type GameList = Arc<[Listing]>;

/// How often an open watch menu asks for a fresh list, and how often cores report their
/// games' idle times and watcher counts.
pub const REFRESH_MS: u64 = 1000;
