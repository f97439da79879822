//! A player's rc (options) file, read and replaced for the lobby's options editor. Blocking
//! file system work: run it on a pool thread, never on a reactor core.
//!
//! The server is root and the file sits in a directory the games user owns, so anything
//! running as that user (an escaped game) may have put a link, a FIFO, a directory or a hard
//! link to someone else's file at its name. So, as for [`super::userfiles`] (whose walk and
//! checks this reuses):
//!
//! - the directory is reached with the link-refusing walk from `/` and every later step is
//!   relative to its descriptor;
//! - reading opens with `O_NOFOLLOW | O_NONBLOCK` (a link is refused, a FIFO cannot hang the
//!   thread) and reads only a regular file owned by the games user with one link (a hard
//!   link to a root-only file is owned by root: refused), at most [`MAX_RC_BYTES`];
//! - writing never opens the old file: a new file is made next to it
//!   (`O_CREAT | O_EXCL | O_NOFOLLOW`, a fresh inode whatever was planted), handed to the games
//!   user with `fchown`, written, `fsync`ed and renamed over the old name (`rename` replaces
//!   a link, it does not follow it); a link or anything not a regular file at the name is
//!   refused first, so a planted link is reported rather than silently replaced;
//! - the per-user directory is made and checked exactly as a game start does
//!   ([`super::userfiles::ensure_user_dir`]).

use super::launch::user_paths;
use super::userfiles::{
    final_name, ids, io_errno, is_kind, open_dir_tree, UserFileError, PATH_DIR_MODE, RC_FILE_MODE,
};
use crate::config::{Config, GameConfig};
use crate::pty::RunAs;
use nix::errno::Errno;
use nix::fcntl::{openat, renameat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, fstat, fstatat, Mode, SFlag};
use nix::unistd::{fchown, fsync, unlinkat, UnlinkatFlags};
use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use thiserror::Error;

/// Largest rc file read or written: the lobby editor's cap.
pub const MAX_RC_BYTES: usize = 64 * 1024;
/// Names tried for the new file before giving up (another one may be in the way each time).
const TEMP_ATTEMPTS: u32 = 8;

/// Why an rc file was not read or written.
#[derive(Debug, Error)]
pub enum RcError {
    #[error("game {0} has no rc file")]
    NoRcFile(String),
    #[error("{path} is larger than {MAX_RC_BYTES} bytes")]
    TooLarge { path: PathBuf },
    #[error(transparent)]
    Unsafe(#[from] UserFileError),
    #[error("cannot find the data directory: {0}")]
    DataDir(std::io::Error),
}

impl RcError {
    /// What the player is told (the log gets the whole error, paths included).
    pub fn player_message(&self) -> String {
        match self {
            RcError::NoRcFile(_) => "This game has no options file.".into(),
            RcError::TooLarge { .. } => format!(
                "Your options file is larger than {} KiB: too large to edit here.",
                MAX_RC_BYTES / 1024
            ),
            // Short: shown after "Not saved: " on one 80-column line.
            RcError::Unsafe(UserFileError::Symlink { .. }) => {
                "Options file is a symbolic link: not followed; ask the operator.".into()
            }
            RcError::Unsafe(_) | RcError::DataDir(_) => {
                "The options file cannot be used safely (see the server log).".into()
            }
        }
    }
}

/// `user`'s rc file of `game`: its bytes, or `None` when there is none yet. Nothing is made.
pub fn read(
    config: &Config,
    game: &GameConfig,
    user: &str,
    owner: Option<&RunAs>,
) -> Result<Option<Vec<u8>>, RcError> {
    let path = rc_path(config, game, user, owner)?;
    read_file(&path, owner)
}

/// Replaces `user`'s rc file of `game` with `text`, making the per-user directory first if
/// needed (as a game start does).
pub fn write(
    config: &Config,
    game: &GameConfig,
    user: &str,
    text: &[u8],
    owner: Option<&RunAs>,
) -> Result<(), RcError> {
    let paths = user_paths(config, game, user, owner).map_err(RcError::DataDir)?;
    let path = PathBuf::from(
        paths
            .rc_file
            .ok_or_else(|| RcError::NoRcFile(game.id.clone()))?,
    );
    if text.len() > MAX_RC_BYTES {
        return Err(RcError::TooLarge { path });
    }
    if let Some(dir) = &paths.user_dir {
        super::userfiles::ensure_user_dir(Path::new(dir), owner)?;
    }
    replace_file(&path, text, owner)
}

/// Where `user`'s rc file of `game` is.
fn rc_path(
    config: &Config,
    game: &GameConfig,
    user: &str,
    owner: Option<&RunAs>,
) -> Result<PathBuf, RcError> {
    let paths = user_paths(config, game, user, owner).map_err(RcError::DataDir)?;
    paths
        .rc_file
        .map(PathBuf::from)
        .ok_or_else(|| RcError::NoRcFile(game.id.clone()))
}

/// The file at `path` (absolute) if it is a plain file of `owner`'s, at most
/// [`MAX_RC_BYTES`]; `None` when it (or its directory) does not exist.
pub fn read_file(path: &Path, owner: Option<&RunAs>) -> Result<Option<Vec<u8>>, RcError> {
    let name = final_name(path)?;
    let parent = path.parent().unwrap_or(Path::new("/"));
    let dir = match open_dir_tree(parent, None) {
        Ok(dir) => dir,
        Err(UserFileError::Io {
            source: Errno::ENOENT,
            ..
        }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    // Looked at before it is opened: root never opens a device node (or anything else but a
    // plain file) that turned up at the player's path; checked again on the descriptor.
    match fstatat(&dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) if is_kind(&st, SFlag::S_IFLNK) => return Err(symlink(path)),
        Ok(st) if !is_kind(&st, SFlag::S_IFREG) => {
            return Err(unsafe_file(path, "is not a regular file"))
        }
        Ok(_) => {}
        Err(Errno::ENOENT) => return Ok(None),
        Err(e) => return Err(UserFileError::io(path, e).into()),
    }
    let flags = OFlag::O_RDONLY
        | OFlag::O_NOFOLLOW
        | OFlag::O_NONBLOCK
        | OFlag::O_NOCTTY
        | OFlag::O_CLOEXEC;
    let fd = match openat(&dir, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(None),
        // O_NOFOLLOW on a link.
        Err(Errno::ELOOP) => return Err(symlink(path)),
        Err(e) => return Err(UserFileError::io(path, e).into()),
    };
    check_plain_file(&fd, path, owner)?;
    let mut bytes = Vec::new();
    let cap = u64::try_from(MAX_RC_BYTES).unwrap_or(u64::MAX);
    // One more than the cap: a file that grew after the check is still caught.
    std::fs::File::from(fd)
        .take(cap.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| UserFileError::io(path, io_errno(&e)))?;
    if bytes.len() > MAX_RC_BYTES {
        return Err(RcError::TooLarge {
            path: path.to_owned(),
        });
    }
    Ok(Some(bytes))
}

/// Puts `text` at `path` (absolute) as a new file of `owner`'s (mode 0600), replacing a
/// regular file there and refusing anything else; missing directories on the way are made
/// (root's, mode 0711), as for an rc file at a game start.
pub fn replace_file(path: &Path, text: &[u8], owner: Option<&RunAs>) -> Result<(), RcError> {
    let name = final_name(path)?;
    let parent = path.parent().unwrap_or(Path::new("/"));
    let dir = open_dir_tree(parent, Some(PATH_DIR_MODE))?;
    match fstatat(&dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) if is_kind(&st, SFlag::S_IFLNK) => return Err(symlink(path)),
        Ok(st) if !is_kind(&st, SFlag::S_IFREG) => {
            return Err(unsafe_file(path, "is not a regular file"))
        }
        Ok(_) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(UserFileError::io(path, e).into()),
    }
    let (temp, fd) = create_temp(&dir, path)?;
    let written = fill(fd, text, owner)
        .and_then(|()| renameat(&dir, temp.as_os_str(), &dir, name))
        .map_err(|e| UserFileError::io(path, e));
    if let Err(e) = written {
        // The new file is ours and unlinked by name in our directory descriptor: whatever
        // was put at that name meanwhile goes, nothing outside.
        let _ = unlinkat(&dir, temp.as_os_str(), UnlinkatFlags::NoRemoveDir);
        return Err(e.into());
    }
    // The rename itself survives a crash only once the directory is on disk.
    let sync_dir = openat(
        &dir,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .and_then(fsync);
    sync_dir.map_err(|e| UserFileError::io(path, e))?;
    Ok(())
}

/// A regular file owned by the games user (`owner`, or ourselves) with no other link.
fn check_plain_file(fd: &OwnedFd, path: &Path, owner: Option<&RunAs>) -> Result<(), RcError> {
    let st = fstat(fd).map_err(|e| UserFileError::io(path, e))?;
    if !is_kind(&st, SFlag::S_IFREG) {
        return Err(unsafe_file(path, "is not a regular file"));
    }
    let (uid, _) = ids(owner);
    if st.st_uid != uid.as_raw() {
        return Err(unsafe_file(
            path,
            &format!(
                "belongs to uid {}, not the games user (uid {uid})",
                st.st_uid
            ),
        ));
    }
    if st.st_nlink != 1 {
        return Err(unsafe_file(path, "has other hard links"));
    }
    if usize::try_from(st.st_size).map_or(true, |n| n > MAX_RC_BYTES) {
        return Err(RcError::TooLarge {
            path: path.to_owned(),
        });
    }
    Ok(())
}

/// A new, empty file next to `path` in `dir`, under a name nobody else has (`O_EXCL`: if
/// something is there, even a link, another name is tried).
fn create_temp(dir: &OwnedFd, path: &Path) -> Result<(OsString, OwnedFd), RcError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = final_name(path)?;
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut last = Errno::EEXIST;
    for _ in 0..TEMP_ATTEMPTS {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let mut temp = OsString::from(".");
        temp.push(name);
        temp.push(format!(".dg-{}-{n}-{nanos:x}", std::process::id()));
        match openat(
            dir,
            temp.as_os_str(),
            flags,
            Mode::from_bits_truncate(RC_FILE_MODE),
        ) {
            Ok(fd) => return Ok((temp, fd)),
            Err(Errno::EEXIST) => last = Errno::EEXIST,
            Err(e) => return Err(UserFileError::io(path, e).into()),
        }
    }
    Err(UserFileError::io(path, last).into())
}

/// Gives the new file to `owner` with mode 0600 and writes `text` to disk.
fn fill(fd: OwnedFd, text: &[u8], owner: Option<&RunAs>) -> Result<(), Errno> {
    let (uid, gid) = ids(owner);
    fchown(&fd, Some(uid), Some(gid))?;
    // The umask may have taken bits away, never added any; set exactly 0600.
    fchmod(&fd, Mode::from_bits_truncate(RC_FILE_MODE))?;
    let mut file = std::fs::File::from(fd);
    file.write_all(text).map_err(|e| io_errno(&e))?;
    file.sync_all().map_err(|e| io_errno(&e))
}

fn symlink(path: &Path) -> RcError {
    UserFileError::Symlink {
        path: path.to_owned(),
        link: path.to_owned(),
    }
    .into()
}

fn unsafe_file(path: &Path, what: &str) -> RcError {
    UserFileError::Unsafe {
        path: path.to_owned(),
        what: what.into(),
    }
    .into()
}

#[cfg(test)]
#[path = "rcfile_tests.rs"]
mod tests;
