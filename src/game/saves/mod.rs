//! Save backups. Before each start of a game with `save_file`, the player's save (when there
//! is one) is copied into the server's own directory, `<data_dir>/saves/<player>/<game id>/`,
//! as `<YYYYMMDDTHHMMSSZ>-<first 16 hex of its SHA-256>.<the save's extension>`, beside a
//! sidecar (`….json`) with the full SHA-256, the size, the time and the path it came from.
//! A save identical to the newest backup is not copied again; past `save_backups_kept` the
//! oldest are removed. `dungeongate user saves` lists them and puts one back
//! ([`restore()`]).
//!
//! Why the server's directory and not the player's: the player's directory belongs to the
//! games user, who can rename or replace anything in it. The backups are the server's (0700
//! directories, 0640 files), so a game that is broken into cannot doctor the copy an operator
//! later restores.
//!
//! The save is in a directory the games user writes (`/var/games/nethack/save`) under a name
//! that carries the player's name, and the server reading it is root: it is read the way
//! [`super::userfiles`] writes. The directory is reached without following a link anyone
//! but root could have planted, the file is opened by descriptor with `O_NOFOLLOW`, and only
//! a regular file with one link, owned by the games user, of at most [`MAX_SAVE_BYTES`] is
//! copied. Anything else is refused and reported, never followed.

mod backup;
mod catalog;
mod pattern;
mod restore;
#[cfg(test)]
mod tests;

pub use backup::{backup_before_start, backup_save, Outcome};
pub use catalog::{game_backups_dir, list_game, list_user, user_backups_dir, Backup};
pub use pattern::{check_pattern, save_path};
pub use restore::{restore, Restored};

use super::userfiles::UserFileError;
use std::path::PathBuf;

/// Largest save copied (and restored): NetHack's are tens of KiB; anything near this is not
/// a save, and reading it must not tie up a pool thread or fill the disk.
pub const MAX_SAVE_BYTES: u64 = 64 << 20;

/// Why a save was not backed up or restored.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    /// The pattern expanded to a path that is not safe to use.
    #[error("save_file expands to {path:?}, which {why}")]
    BadPath { path: String, why: &'static str },
    /// A directory on the way could not be reached safely (or at all).
    #[error(transparent)]
    Dir(#[from] UserFileError),
    /// What is at the save's (or a backup's) name is not copied: a link, not a regular file,
    /// too large, hard-linked, someone else's.
    #[error("{}: {what}", path.display())]
    Refused { path: PathBuf, what: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A backup whose content no longer matches the SHA-256 recorded when it was taken.
    #[error("{}: its content does not match its recorded SHA-256 (recorded {expected}, found {found}); not restored", path.display())]
    Corrupt {
        path: PathBuf,
        expected: String,
        found: String,
    },
    /// A restore would replace a save that is there (allowed only when forced).
    #[error("{} exists", path.display())]
    Exists { path: PathBuf },
}

impl SaveError {
    fn io(path: &std::path::Path, source: impl Into<std::io::Error>) -> Self {
        SaveError::Io {
            path: path.to_owned(),
            source: source.into(),
        }
    }

    fn refused(path: &std::path::Path, what: impl Into<String>) -> Self {
        SaveError::Refused {
            path: path.to_owned(),
            what: what.into(),
        }
    }
}
