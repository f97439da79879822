//! What watchers of a running game receive.
//!
//! - [`Sanitiser`]: the filter every byte of a game's output goes through before any watcher
//!   gets it; what comes out can only draw (no queries, modes, clipboard, titles, 8-bit
//!   controls). The allow-list and its reasons are in `sanitise.rs` and `csi.rs`.
//! - [`Screen`]: the game's current screen, kept per running game and fed the same sanitised
//!   stream, so a watcher who attaches gets [`Screen::repaint`] at once and the live stream
//!   continues it; nothing is sent to the player's game.
//!
//! Typical use per chunk of game output: `screen.feed_and_filter(chunk, &mut for_watchers)`;
//! on attach: `screen.repaint(&mut to_the_new_watcher)`, then the live stream.

mod csi;
mod model;
mod repaint;
mod sanitise;
mod utf8;

#[cfg(test)]
mod tests;

pub use model::Screen;
pub use sanitise::{Sanitiser, RIS_DRAWING};
