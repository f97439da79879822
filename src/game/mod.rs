//! Games: turning a configured game into a process spec for one player (placeholders, the
//! per-user directory and rc file, the environment), the per-user files made without
//! following links, the backups of players' saves taken before each start, and the rc file
//! read and replaced for the lobby's options editor. The running game itself (PTY, pidfd,
//! viewers) is the reactor's (`reactor::games`) and the session's (`session`).

pub mod launch;
pub mod rcfile;
pub mod saves;
pub mod userfiles;

pub use launch::{is_available, prepare, TerminalInfo};
