//! Games: turning a configured game into a process spec for one player (placeholders, the
//! per-user directory and rc file, the environment) and the per-user files made without
//! following links. The running game itself (PTY, pidfd, viewers) is the reactor's
//! (`reactor::games`) and the session's (`session`).

pub mod launch;
pub mod userfiles;

pub use launch::{is_available, prepare, TerminalInfo};
