//! Game sessions: a game process in a PTY on the core that spawned it, and the viewers that
//! watch it. The player's SSH channel is one viewer; spectators (on any core) will be others,
//! and re-attaching after a dropped connection is swapping the player viewer — the same
//! mechanism. Output reaches viewers as byte slices now and as refcounted chunks once viewers
//! live on other cores.

pub mod launch;
pub mod session;
pub mod userfiles;

pub use launch::{is_available, prepare, TerminalInfo};
pub use session::{Accounting, GameSession, Viewer};
