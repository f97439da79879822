//! Taking a backup of a player's save before a game starts (on the blocking pool, where the
//! rest of a start's file work runs), and reading a save without trusting what is at its
//! name.

use super::catalog::{self, Backup, TempFile, DIR_MODE, FILE_MODE};
use super::{save_path, SaveError, MAX_SAVE_BYTES};
use crate::config::{Config, GameConfig};
use crate::game::launch::game_uid;
use crate::game::userfiles::{open_dir_tree, UserFileError};
use crate::pty::RunAs;
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, FileStat, Mode, SFlag};
use sha2::{Digest as _, Sha256};
use std::fs::File;
use std::io::{Read, Seek as _, SeekFrom, Write};
use std::os::fd::OwnedFd;
use std::path::Path;

/// What [`backup_save`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// There is no save (a new player, or one whose game ended or was restored and deleted
    /// its save).
    NoSave,
    /// The save is the newest backup already.
    Unchanged,
    /// A new backup.
    Copied(Backup),
}

/// Back up `user`'s save of `game` when the game has `save_file`, before it starts. Never
/// stops the start: a failure is logged here. Returns what to count in
/// `game_saves_total{operation="backup"}`: `Some(true)` for a copy made, `Some(false)` for a
/// failure, `None` when there was nothing to do.
pub fn backup_before_start(
    config: &Config,
    game: &GameConfig,
    user: &str,
    run_as: Option<&RunAs>,
) -> Option<bool> {
    let uid = game_uid(run_as);
    let result = match save_path(config, game, user, uid) {
        Ok(None) => return None,
        Ok(Some(save)) => std::path::absolute(&config.data_dir)
            .map_err(|e| SaveError::io(&config.data_dir, e))
            .and_then(|data_dir| {
                let dir = catalog::game_backups_dir(&data_dir, user, &game.id);
                let keep = usize::try_from(game.save_backups_kept).unwrap_or(usize::MAX);
                backup_save(&save, uid, &dir, keep, now_unix_ms())
            }),
        Err(e) => Err(e),
    };
    match result {
        Ok(Outcome::Copied(b)) => {
            tracing::info!(game = %game.id, user, file = %b.file, sha256 = %b.sha256, size = b.size, "backed up the save before the game starts");
            Some(true)
        }
        Ok(Outcome::Unchanged | Outcome::NoSave) => None,
        Err(e) => {
            tracing::warn!(game = %game.id, user, error = %e, "could not back up the save; the game starts anyway");
            Some(false)
        }
    }
}

/// Copy the save at `save` (which must belong to `owner_uid`, the games user) into
/// `backups_dir` (made, the server's, mode 0700) unless it is the newest backup there
/// already, then keep only the newest `keep`. `now_unix_ms` names the copy.
pub fn backup_save(
    save: &Path,
    owner_uid: u32,
    backups_dir: &Path,
    keep: usize,
    now_unix_ms: u64,
) -> Result<Outcome, SaveError> {
    let (parent, name) = split(save)?;
    let save_dir = match open_dir_tree(parent, None) {
        Ok(fd) => fd,
        // No save directory: no save (the game never ran here, or the path is wrong, which
        // `check-config` is the place to say).
        Err(UserFileError::Io {
            source: Errno::ENOENT,
            ..
        }) => return Ok(Outcome::NoSave),
        Err(e) => return Err(e.into()),
    };
    let Some(mut file) = open_save(&save_dir, name, save, owner_uid)? else {
        return Ok(Outcome::NoSave);
    };
    let (sha256, _) = copy_hashing(&mut file, &mut std::io::sink(), save)?;
    let game = backups_dir
        .file_name()
        .map(|g| g.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = open_dir_tree(backups_dir, Some(DIR_MODE))?;
    let newest = |list: &[Backup]| list.first().map(|b| b.sha256.clone());
    let before = catalog::read_dir(&dir, backups_dir, &game)?;
    if newest(&before).as_deref() == Some(sha256.as_str()) {
        return Ok(Outcome::Unchanged);
    }
    // Second pass, into the copy: its own hash names it (the game is not running, but the
    // file is the games user's and may still change between the passes).
    file.seek(SeekFrom::Start(0))
        .map_err(|e| SaveError::io(save, e))?;
    let mut temp = TempFile::create(&dir, backups_dir, &catalog::temp_name("backup"), FILE_MODE)?;
    let (sha256, size) = copy_hashing(&mut file, &mut temp.file, save)?;
    temp.file
        .sync_all()
        .map_err(|e| SaveError::io(&temp.path(), e))?;
    if newest(&before).as_deref() == Some(sha256.as_str()) {
        return Ok(Outcome::Unchanged);
    }
    let backup = Backup {
        game,
        file: catalog::file_name(
            now_unix_ms,
            &sha256,
            catalog::extension(&name.to_string_lossy()),
        ),
        sha256,
        size,
        time_unix_ms: now_unix_ms,
        source: save.to_string_lossy().into_owned(),
    };
    temp.rename_to(&backup.file)?;
    catalog::write_sidecar(&dir, backups_dir, &backup, &catalog::temp_name("sidecar"))?;
    let all = catalog::read_dir(&dir, backups_dir, &backup.game)?;
    catalog::prune(&dir, backups_dir, &all, keep.max(1));
    Ok(Outcome::Copied(backup))
}

/// Copy all of `src` to `dst` (at most [`MAX_SAVE_BYTES`]) and hash it: (SHA-256 hex, size).
/// The cap holds here too, not only in the size checked before: the file may grow.
pub(super) fn copy_hashing(
    src: &mut impl Read,
    dst: &mut impl Write,
    path: &Path,
) -> Result<(String, u64), SaveError> {
    copy_hashing_capped(src, dst, path, MAX_SAVE_BYTES)
}

/// [`copy_hashing`] with its cap as a parameter (the tests' is small).
pub(super) fn copy_hashing_capped(
    src: &mut impl Read,
    dst: &mut impl Write,
    path: &Path,
    cap: u64,
) -> Result<(String, u64), SaveError> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total: u64 = 0;
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(SaveError::io(path, e)),
        };
        total = total.saturating_add(n as u64);
        if total > cap {
            return Err(SaveError::refused(path, too_large()));
        }
        let chunk = buf.get(..n).unwrap_or_default();
        hasher.update(chunk);
        dst.write_all(chunk).map_err(|e| SaveError::io(path, e))?;
    }
    Ok((format!("{:x}", hasher.finalize()), total))
}

/// The save `name` in `dir`, opened for reading without following a link; `None` when there
/// is none. What is there is checked before it is opened (so a FIFO or a device is never
/// opened) and again after (so what was checked is what is read).
fn open_save(
    dir: &OwnedFd,
    name: &std::ffi::OsStr,
    path: &Path,
    owner_uid: u32,
) -> Result<Option<File>, SaveError> {
    let before = match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::ENOENT) => return Ok(None),
        Err(e) => return Err(SaveError::io(path, e)),
    };
    check_save(&before, path, owner_uid)?;
    let fd = match openat(
        dir,
        name,
        OFlag::O_RDONLY
            | OFlag::O_NOFOLLOW
            | OFlag::O_NONBLOCK
            | OFlag::O_NOCTTY
            | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(None),
        Err(Errno::ELOOP) => return Err(SaveError::refused(path, SYMLINK)),
        Err(e) => return Err(SaveError::io(path, e)),
    };
    let after = fstat(&fd).map_err(|e| SaveError::io(path, e))?;
    if (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino) {
        return Err(SaveError::refused(path, "was replaced while being opened"));
    }
    check_save(&after, path, owner_uid)?;
    Ok(Some(File::from(fd)))
}

const SYMLINK: &str = "is a symbolic link; a save is never read through one";

/// What a save must be to be copied.
fn check_save(st: &FileStat, path: &Path, owner_uid: u32) -> Result<(), SaveError> {
    let kind = st.st_mode & SFlag::S_IFMT.bits();
    if kind == SFlag::S_IFLNK.bits() {
        return Err(SaveError::refused(path, SYMLINK));
    }
    if kind != SFlag::S_IFREG.bits() {
        return Err(SaveError::refused(path, "is not a regular file"));
    }
    // Another name for the same file could be a hard link the games user made to a file it
    // could not otherwise read (where protected_hardlinks is off), which a restore would hand
    // back to it.
    if st.st_nlink != 1 {
        return Err(SaveError::refused(
            path,
            format!(
                "has {} hard links; only a file with one is copied",
                st.st_nlink
            ),
        ));
    }
    if st.st_uid != owner_uid {
        return Err(SaveError::refused(
            path,
            format!(
                "belongs to uid {}, not to the user the game runs as (uid {owner_uid})",
                st.st_uid
            ),
        ));
    }
    if u64::try_from(st.st_size).unwrap_or(u64::MAX) > MAX_SAVE_BYTES {
        return Err(SaveError::refused(path, too_large()));
    }
    Ok(())
}

fn too_large() -> String {
    format!("is larger than {MAX_SAVE_BYTES} bytes, more than a save can be")
}

/// The directory and final name of `path` (absolute, ending in a name).
pub(super) fn split(path: &Path) -> Result<(&Path, &std::ffi::OsStr), SaveError> {
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) if path.is_absolute() => Ok((parent, name)),
        _ => Err(SaveError::BadPath {
            path: path.to_string_lossy().into_owned(),
            why: "does not end in a file name",
        }),
    }
}

fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
