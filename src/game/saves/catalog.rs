//! The backups of a player's saves on disk: where they live, how they are named, the sidecar
//! that records each one, listing them newest first, and removing the oldest.
//!
//! A backup counts once its sidecar is there: the copy is renamed into place first and the
//! sidecar written after it, so a crash between the two leaves a file no listing shows
//! rather than a listed backup with nothing behind it.

use super::SaveError;
use crate::game::userfiles::{open_dir_tree, UserFileError};
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, fstat, fstatat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};
use serde::{Deserialize, Serialize};
use std::io::{Read as _, Write as _};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// Mode of the backup directories: the server's alone (the games user must not reach them).
pub(super) const DIR_MODE: u32 = 0o700;
/// Mode of a backup and its sidecar: the server's, readable by its group (an operator's
/// tools), never writable by anyone else.
pub(super) const FILE_MODE: u32 = 0o640;
/// What a sidecar's name adds to its backup's.
const SIDECAR_SUFFIX: &str = ".json";
/// Largest sidecar read: one is ~200 bytes.
const MAX_SIDECAR_BYTES: u64 = 4096;
/// Hex digits of the SHA-256 in a backup's name: enough to tell saves apart at a glance.
pub(super) const NAME_HASH_LEN: usize = 16;
/// Prefix of the temporary names copies are written under before they get their own.
pub(super) const TEMP_PREFIX: &str = ".tmp-";

/// One backup of one player's save of one game.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    /// The game's id: the directory it is in.
    pub game: String,
    /// Its file name: `<YYYYMMDDTHHMMSSZ>-<sha256 prefix>.<extension>`.
    pub file: String,
    /// SHA-256 of the content, lowercase hex: what a restore checks before writing.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// When it was taken, in milliseconds since the epoch (orders backups within a second).
    pub time_unix_ms: u64,
    /// The save file it was copied from.
    pub source: String,
}

/// What the sidecar of a backup holds (its JSON form).
#[derive(Serialize, Deserialize)]
struct Sidecar {
    sha256: String,
    size: u64,
    time_unix_ms: u64,
    source: String,
}

/// Where a player's backups are: `<data_dir>/saves/<user>` (`data_dir` absolute).
pub fn user_backups_dir(data_dir: &Path, user: &str) -> PathBuf {
    data_dir.join("saves").join(user)
}

/// Where a player's backups of one game are.
pub fn game_backups_dir(data_dir: &Path, user: &str, game: &str) -> PathBuf {
    user_backups_dir(data_dir, user).join(game)
}

/// Every backup of `user`'s saves, of every game, newest first (none when nothing was ever
/// backed up).
pub fn list_user(data_dir: &Path, user: &str) -> Result<Vec<Backup>, SaveError> {
    let dir_path = user_backups_dir(data_dir, user);
    let Some(dir) = open_existing(&dir_path)? else {
        return Ok(Vec::new());
    };
    let mut all = Vec::new();
    for name in entries(&dir, &dir_path)? {
        if !is_game_id(&name) {
            continue;
        }
        all.extend(list_game(data_dir, user, &name)?);
    }
    sort_newest_first(&mut all);
    Ok(all)
}

/// The backups of `user`'s saves of `game`, newest first.
pub fn list_game(data_dir: &Path, user: &str, game: &str) -> Result<Vec<Backup>, SaveError> {
    let dir_path = game_backups_dir(data_dir, user, game);
    match open_existing(&dir_path)? {
        Some(dir) => read_dir(&dir, &dir_path, game),
        None => Ok(Vec::new()),
    }
}

/// The backups in the open directory `dir` (of game `game`), newest first. An entry without
/// a readable sidecar, or a sidecar without its file, is not a backup and is left out.
pub(super) fn read_dir(
    dir: &OwnedFd,
    dir_path: &Path,
    game: &str,
) -> Result<Vec<Backup>, SaveError> {
    let mut found = Vec::new();
    for name in entries(dir, dir_path)? {
        let Some(file) = name.strip_suffix(SIDECAR_SUFFIX) else {
            continue;
        };
        if !is_backup_name(file) || !is_regular(dir, file) {
            continue;
        }
        if let Some(s) = read_sidecar(dir, &name) {
            found.push(Backup {
                game: game.to_owned(),
                file: file.to_owned(),
                sha256: s.sha256,
                size: s.size,
                time_unix_ms: s.time_unix_ms,
                source: s.source,
            });
        }
    }
    sort_newest_first(&mut found);
    Ok(found)
}

/// The name of a backup taken at `time_unix_ms` of content hashing to `sha256` (hex) from a
/// save whose extension is `ext`.
pub(super) fn file_name(time_unix_ms: u64, sha256: &str, ext: &str) -> String {
    let stamp = crate::date::utc_date_time(time_unix_ms / 1000)
        .replace(['-', ':'], "")
        .replace(' ', "T");
    let hash = sha256.get(..NAME_HASH_LEN).unwrap_or(sha256);
    format!("{stamp}Z-{hash}.{ext}")
}

/// The extension a backup of the save named `save_name` keeps (`5alice.gz` → `gz`), so that
/// tools that go by it still work on the copy; `save` when it has none worth keeping.
pub(super) fn extension(save_name: &str) -> &str {
    match save_name.rsplit_once('.') {
        Some((stem, ext))
            if !stem.is_empty()
                && !ext.is_empty()
                && ext.len() <= 8
                && ext.bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            ext
        }
        _ => "save",
    }
}

/// Whether `name` has the shape [`file_name`] gives: nothing else in a backup directory is
/// listed, and nothing else is ever restored or removed.
pub(super) fn is_backup_name(name: &str) -> bool {
    let Some((stem, ext)) = name.split_once('.') else {
        return false;
    };
    let Some((stamp, hash)) = stem.split_once('-') else {
        return false;
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let stamp_ok = stamp.len() == 16
        && stamp.get(..8).is_some_and(digits)
        && stamp.get(8..9) == Some("T")
        && stamp.get(9..15).is_some_and(digits)
        && stamp.get(15..) == Some("Z");
    stamp_ok
        && hash.len() == NAME_HASH_LEN
        && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        && !ext.is_empty()
        && ext.len() <= 8
        && ext.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Record `backup` (already in place under its name) with its sidecar, written under a
/// temporary name and renamed, so a sidecar is never seen half written.
pub(super) fn write_sidecar(
    dir: &OwnedFd,
    dir_path: &Path,
    backup: &Backup,
    temp_name: &str,
) -> Result<(), SaveError> {
    let sidecar = Sidecar {
        sha256: backup.sha256.clone(),
        size: backup.size,
        time_unix_ms: backup.time_unix_ms,
        source: backup.source.clone(),
    };
    let name = format!("{}{SIDECAR_SUFFIX}", backup.file);
    let path = dir_path.join(&name);
    let mut text = serde_json::to_vec_pretty(&sidecar).map_err(|e| SaveError::io(&path, e))?;
    text.push(b'\n');
    let mut temp = TempFile::create(dir, dir_path, temp_name, FILE_MODE)?;
    temp.file
        .write_all(&text)
        .and_then(|()| temp.file.sync_all())
        .map_err(|e| SaveError::io(&path, e))?;
    temp.rename_to(&name)
}

/// Remove all but the newest `keep` of `backups` (listed newest first). Returns how many
/// went; a removal that fails is logged and the rest go on.
pub(super) fn prune(dir: &OwnedFd, dir_path: &Path, backups: &[Backup], keep: usize) -> usize {
    let mut removed = 0;
    for old in backups.iter().skip(keep) {
        // The sidecar first: a backup without it is no longer listed, whatever happens next.
        let sidecar = format!("{}{SIDECAR_SUFFIX}", old.file);
        let gone = [sidecar.as_str(), old.file.as_str()].into_iter().all(|name| {
            match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => true,
                Err(e) => {
                    tracing::warn!(file = %dir_path.join(name).display(), error = %e, "could not remove an old save backup");
                    false
                }
            }
        });
        removed += usize::from(gone);
    }
    removed
}

/// A file made under a temporary name with `O_EXCL`, removed again unless renamed.
pub(super) struct TempFile<'a> {
    dir: &'a OwnedFd,
    dir_path: &'a Path,
    name: String,
    /// The open file; written by the caller.
    pub(super) file: std::fs::File,
    /// Renamed into place: nothing left to remove.
    done: bool,
}

impl<'a> TempFile<'a> {
    /// A new file `name` in `dir` with `mode` exactly (whatever the umask), refused when
    /// anything is at the name already.
    pub(super) fn create(
        dir: &'a OwnedFd,
        dir_path: &'a Path,
        name: &str,
        mode: u32,
    ) -> Result<Self, SaveError> {
        let path = dir_path.join(name);
        let fd = openat(
            dir,
            name,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(mode),
        )
        .map_err(|e| SaveError::io(&path, e))?;
        let temp = TempFile {
            dir,
            dir_path,
            name: name.to_owned(),
            file: std::fs::File::from(fd),
            done: false,
        };
        fchmod(&temp.file, Mode::from_bits_truncate(mode)).map_err(|e| SaveError::io(&path, e))?;
        Ok(temp)
    }

    /// Where it is now.
    pub(super) fn path(&self) -> PathBuf {
        self.dir_path.join(&self.name)
    }

    /// Give it its own name in the same directory, replacing what is there.
    pub(super) fn rename_to(self, name: &str) -> Result<(), SaveError> {
        self.rename_with(name, nix::fcntl::RenameFlags::empty())
    }

    /// Give it its own name; with `RENAME_NOREPLACE`, [`SaveError::Exists`] when taken.
    pub(super) fn rename_with(
        mut self,
        name: &str,
        flags: nix::fcntl::RenameFlags,
    ) -> Result<(), SaveError> {
        let target = self.dir_path.join(name);
        match nix::fcntl::renameat2(self.dir, self.name.as_str(), self.dir, name, flags) {
            Ok(()) => {
                self.done = true;
                sync_dir(self.dir);
                Ok(())
            }
            Err(Errno::EEXIST) => Err(SaveError::Exists { path: target }),
            Err(e) => Err(SaveError::io(&target, e)),
        }
    }
}

impl Drop for TempFile<'_> {
    fn drop(&mut self) {
        if !self.done {
            // Ours (made with O_EXCL) and unfinished.
            let _ = unlinkat(self.dir, self.name.as_str(), UnlinkatFlags::NoRemoveDir);
        }
    }
}

/// A temporary name no other writer in this directory uses at the same time: the process,
/// and a counter for the threads of the pool.
pub(super) fn temp_name(what: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{TEMP_PREFIX}{what}-{}-{n}", std::process::id())
}

/// Make a directory's entries durable (best effort: a failure loses nothing already written).
fn sync_dir(dir: &OwnedFd) {
    if let Ok(d) = openat(
        dir,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        let _ = nix::unistd::fsync(&d);
    }
}

/// The directory `path` reached without following untrusted links; `None` when it (or a
/// directory above it) does not exist.
fn open_existing(path: &Path) -> Result<Option<OwnedFd>, SaveError> {
    match open_dir_tree(path, None) {
        Ok(fd) => Ok(Some(fd)),
        Err(UserFileError::Io {
            source: Errno::ENOENT,
            ..
        }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The names in the directory `dir` (an `O_PATH` descriptor), `.` and `..` left out; names
/// that are not UTF-8 are none of ours and are left out too.
fn entries(dir: &OwnedFd, dir_path: &Path) -> Result<Vec<String>, SaveError> {
    let mut d = nix::dir::Dir::openat(
        dir,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| SaveError::io(dir_path, e))?;
    let mut names = Vec::new();
    for entry in d.iter() {
        let entry = entry.map_err(|e| SaveError::io(dir_path, e))?;
        if let Ok(name) = entry.file_name().to_str() {
            if name != "." && name != ".." {
                names.push(name.to_owned());
            }
        }
    }
    Ok(names)
}

/// A game id as the configuration allows them (a directory of another shape is not ours).
fn is_game_id(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn is_regular(dir: &OwnedFd, name: &str) -> bool {
    fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
        .is_ok_and(|st| st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFREG.bits())
}

/// The sidecar `name` in `dir`, or `None` when it is not a readable one.
fn read_sidecar(dir: &OwnedFd, name: &str) -> Option<Sidecar> {
    let fd = openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let st = fstat(&fd).ok()?;
    if st.st_mode & SFlag::S_IFMT.bits() != SFlag::S_IFREG.bits() {
        return None;
    }
    let mut text = Vec::new();
    std::fs::File::from(fd)
        .take(MAX_SIDECAR_BYTES)
        .read_to_end(&mut text)
        .ok()?;
    let s: Sidecar = serde_json::from_slice(&text).ok()?;
    let hex_ok = s.sha256.len() == 64
        && s.sha256
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    hex_ok.then_some(s)
}

fn sort_newest_first(backups: &mut [Backup]) {
    backups.sort_by(|a, b| {
        (b.time_unix_ms, &b.file, &b.game).cmp(&(a.time_unix_ms, &a.file, &a.game))
    });
}
