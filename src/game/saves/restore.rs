//! Putting a backup back where the game looks for its save (`dungeongate user saves NAME
//! --restore`). The content is checked against the SHA-256 recorded when it was taken while
//! it is copied under a temporary name in the save's directory; only a copy that matches is
//! renamed over the save's name, so the save is either the backup, whole, or untouched.

use super::backup::{copy_hashing, split};
use super::catalog::{is_backup_name, temp_name, Backup, TempFile};
use super::SaveError;
use crate::game::userfiles::open_dir_tree;
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag, RenameFlags};
use nix::sys::stat::{fchmod, fstat, fstatat, Mode, SFlag};
use nix::unistd::{fchown, geteuid, Gid, Uid};
use std::fs::File;
use std::path::{Path, PathBuf};

/// Mode of a restored save: as NetHack makes its own (owner and the games group).
const SAVE_MODE: u32 = 0o660;

/// What [`restore`] did.
#[derive(Debug, PartialEq, Eq)]
pub struct Restored {
    /// The save file written.
    pub path: PathBuf,
    /// A save was there and was replaced (only when forced).
    pub replaced: bool,
}

/// Copy `backup` (in `backups_dir`) to `save`, owned by `owner_uid` (the games user, when run
/// as root) and the save directory's group, mode 0660. A save already there is replaced only
/// when `force`; otherwise [`SaveError::Exists`].
pub fn restore(
    backups_dir: &Path,
    backup: &Backup,
    save: &Path,
    owner_uid: u32,
    force: bool,
) -> Result<Restored, SaveError> {
    let backup_path = backups_dir.join(&backup.file);
    if !is_backup_name(&backup.file) {
        return Err(SaveError::refused(&backup_path, "is not a backup's name"));
    }
    let source = open_backup(backups_dir, &backup.file, &backup_path)?;
    let (parent, name) = split(save)?;
    let name = name.to_str().ok_or_else(|| SaveError::BadPath {
        path: save.to_string_lossy().into_owned(),
        why: "is not UTF-8",
    })?;
    let save_dir = open_dir_tree(parent, None)?;
    let replaced = match fstatat(&save_dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) if st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFDIR.bits() => {
            return Err(SaveError::refused(save, "is a directory"));
        }
        Ok(_) if !force => return Err(SaveError::Exists { path: save.into() }),
        Ok(_) => true,
        Err(Errno::ENOENT) => false,
        Err(e) => return Err(SaveError::io(save, e)),
    };
    let group = fstat(&save_dir)
        .map_err(|e| SaveError::io(parent, e))?
        .st_gid;
    let mut temp = TempFile::create(&save_dir, parent, &temp_name("restore"), 0o600)?;
    let (found, _) = copy_hashing(&mut File::from(source), &mut temp.file, &backup_path)?;
    if found != backup.sha256 {
        return Err(SaveError::Corrupt {
            path: backup_path,
            expected: backup.sha256.clone(),
            found,
        });
    }
    let temp_path = temp.path();
    let root = geteuid().is_root();
    match fchown(
        &temp.file,
        root.then_some(Uid::from_raw(owner_uid)),
        Some(Gid::from_raw(group)),
    ) {
        Ok(()) => {}
        // Not root: the directory's group may not be ours to give; the file stays ours.
        Err(Errno::EPERM) if !root => {}
        Err(e) => return Err(SaveError::io(&temp_path, e)),
    }
    fchmod(&temp.file, Mode::from_bits_truncate(SAVE_MODE))
        .map_err(|e| SaveError::io(&temp_path, e))?;
    temp.file
        .sync_all()
        .map_err(|e| SaveError::io(&temp_path, e))?;
    // Not forced: a save that appeared since the check above is not replaced either.
    let flags = if force {
        RenameFlags::empty()
    } else {
        RenameFlags::RENAME_NOREPLACE
    };
    temp.rename_with(name, flags)?;
    Ok(Restored {
        path: save.to_owned(),
        replaced,
    })
}

/// The backup file, opened without following a link: only a regular file is restored.
fn open_backup(
    backups_dir: &Path,
    file: &str,
    path: &Path,
) -> Result<std::os::fd::OwnedFd, SaveError> {
    let dir = open_dir_tree(backups_dir, None)?;
    let fd = openat(
        &dir,
        file,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        Errno::ELOOP => SaveError::refused(path, "is a symbolic link"),
        e => SaveError::io(path, e),
    })?;
    let st = fstat(&fd).map_err(|e| SaveError::io(path, e))?;
    if st.st_mode & SFlag::S_IFMT.bits() != SFlag::S_IFREG.bits() {
        return Err(SaveError::refused(path, "is not a regular file"));
    }
    Ok(fd)
}
