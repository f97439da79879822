//! Per-user directories and files, made by the (root) server without following any path that an
//! unprivileged user could have planted.
//!
//! A per-user directory belongs to the games user, and so does anything running as that user
//! (an escaped game). Had root created `nethackrc` with a plain `write`, a symbolic link put there
//! (`nethackrc -> /etc/ld.so.preload`) would make root create and hand over a file of the
//! attacker's choice. So every path is walked one component at a time from `/` with
//! `openat(O_NOFOLLOW)`, directories are made with `mkdirat` and opened again without following,
//! files are made with `O_CREAT | O_EXCL | O_NOFOLLOW`, and ownership is changed through the
//! descriptor (`fchown`), never by name.
//!
//! A symbolic link on the way is followed only where nobody but root (or the server's own
//! user) could have made it: in a directory owned by root or by us and writable by no group or
//! other user — an operator's `/var/lib/dungeongate -> /srv/dg`, say. Anywhere else it is
//! refused with [`UserFileError::Symlink`].

use crate::pty::RunAs;
use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, OFlag};
use nix::sys::stat::{fchmod, fstat, mkdirat, FileStat, Mode, SFlag};
use nix::unistd::{fchown, Gid, Uid};
use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use thiserror::Error;

/// Mode of a per-user directory: its owner (the games user) only.
const USER_DIR_MODE: u32 = 0o700;
/// Mode of directories made on the way to a per-user one (`users/` under the data dir): the
/// games user must pass through them, and nothing more.
pub(super) const PATH_DIR_MODE: u32 = 0o711;
/// Mode of a new rc file.
pub(super) const RC_FILE_MODE: u32 = 0o600;
/// Symbolic links followed in one walk, as the kernel's own limit.
const MAX_LINKS: usize = 40;

#[derive(Debug, Error)]
pub enum UserFileError {
    #[error("{path} is reached through a symbolic link that a non-root user could have made ({link}); refusing to follow it")]
    Symlink { path: PathBuf, link: PathBuf },
    #[error("{path}: {what}")]
    Unsafe { path: PathBuf, what: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: Errno },
}

impl UserFileError {
    pub(super) fn io(path: &Path, source: Errno) -> Self {
        UserFileError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// What [`create_rc_file`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum RcFile {
    /// The file was missing and now holds the template.
    Created,
    /// A file was already there: the player's own settings, kept.
    Kept,
}

/// The directory `path`, made (with any missing directories above it) when missing, owned by
/// `owner` (the games user) with mode 0700; an existing one owned by anyone else is refused.
pub fn ensure_user_dir(path: &Path, owner: Option<&RunAs>) -> Result<OwnedFd, UserFileError> {
    let parent = path.parent().ok_or_else(|| UserFileError::Unsafe {
        path: path.to_owned(),
        what: "a per-user directory cannot be /".into(),
    })?;
    let name = final_name(path)?;
    let parent_fd = walk_dirs(parent, true)?;
    let made = match mkdirat(&parent_fd, name, Mode::from_bits_truncate(USER_DIR_MODE)) {
        Ok(()) => true,
        Err(Errno::EEXIST) => false,
        Err(e) => return Err(UserFileError::io(path, e)),
    };
    let dir = open_no_follow(&parent_fd, name, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
        .map_err(|e| refused_or_io(&parent_fd, name, path, e))?;
    let st = fstat(&dir).map_err(|e| UserFileError::io(path, e))?;
    let (uid, gid) = ids(owner);
    if made {
        // Ours a moment ago, reached again without following: hand it over.
        if st.st_uid != Uid::effective().as_raw() {
            return Err(UserFileError::Unsafe {
                path: path.to_owned(),
                what: "was replaced while being created".into(),
            });
        }
        fchown(&dir, Some(uid), Some(gid)).map_err(|e| UserFileError::io(path, e))?;
    } else if st.st_uid != uid.as_raw() {
        return Err(UserFileError::Unsafe {
            path: path.to_owned(),
            what: format!(
                "exists but belongs to uid {}, not the games user (uid {})",
                st.st_uid, uid
            ),
        });
    }
    if made || st.st_mode & 0o7077 != 0 {
        fchmod(&dir, Mode::from_bits_truncate(USER_DIR_MODE))
            .map_err(|e| UserFileError::io(path, e))?;
    }
    Ok(dir)
}

/// The rc file `path` with `template` as its content when it does not exist yet, owned by
/// `owner`. An existing file, or anything else at that name (a symbolic link included), is
/// left exactly as it is; a link is reported as refused.
pub fn create_rc_file(
    path: &Path,
    template: &str,
    owner: Option<&RunAs>,
) -> Result<RcFile, UserFileError> {
    let parent = path.parent().unwrap_or(Path::new("/"));
    let name = final_name(path)?;
    let dir = walk_dirs(parent, true)?;
    let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW;
    let fd = match openat(
        &dir,
        name,
        flags | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(RC_FILE_MODE),
    ) {
        Ok(fd) => fd,
        Err(Errno::EEXIST) => {
            // O_EXCL does not follow a link either: tell a planted link from a real file.
            let st = nix::sys::stat::fstatat(&dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
                .map_err(|e| UserFileError::io(path, e))?;
            if is_kind(&st, SFlag::S_IFLNK) {
                return Err(UserFileError::Symlink {
                    path: path.to_owned(),
                    link: path.to_owned(),
                });
            }
            return Ok(RcFile::Kept);
        }
        Err(e) => return Err(UserFileError::io(path, e)),
    };
    let (uid, gid) = ids(owner);
    fchown(&fd, Some(uid), Some(gid)).map_err(|e| UserFileError::io(path, e))?;
    let mut file = std::fs::File::from(fd);
    file.write_all(template.as_bytes())
        .map_err(|e| UserFileError::io(path, io_errno(&e)))?;
    Ok(RcFile::Created)
}

/// The owner of what is made for a player: the games user, or (not root) ourselves.
pub(super) fn ids(owner: Option<&RunAs>) -> (Uid, Gid) {
    match owner {
        Some(r) => (Uid::from_raw(r.uid), Gid::from_raw(r.gid)),
        None => (Uid::effective(), Gid::effective()),
    }
}

/// The last component of `path`, which must be a plain name.
pub(super) fn final_name(path: &Path) -> Result<&OsStr, UserFileError> {
    match path.components().next_back() {
        Some(Component::Normal(n)) => Ok(n),
        _ => Err(UserFileError::Unsafe {
            path: path.to_owned(),
            what: "does not end in a plain name".into(),
        }),
    }
}

/// Open the directory `path` (absolute), walking it from `/` without following any link that
/// is not trusted; missing directories are made (root's, mode 0711) when `create`.
fn walk_dirs(path: &Path, create: bool) -> Result<OwnedFd, UserFileError> {
    open_dir_tree(path, create.then_some(PATH_DIR_MODE))
}

/// The walk of [`walk_dirs`] for other modules (the ttyrec writer), which need their own mode
/// for the directories it makes (`None`: make none). The result is an `O_PATH` descriptor.
pub fn open_dir_tree(path: &Path, create_mode: Option<u32>) -> Result<OwnedFd, UserFileError> {
    if !path.is_absolute() {
        return Err(UserFileError::Unsafe {
            path: path.to_owned(),
            what: "is not an absolute path".into(),
        });
    }
    let root = || {
        nix::fcntl::open(
            "/",
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| UserFileError::io(Path::new("/"), e))
    };
    let mut dir = root()?;
    let mut todo: VecDeque<OsString> = components(path);
    let mut links = 0;
    while let Some(name) = todo.pop_front() {
        let next = match open_no_follow(&dir, &name, OFlag::O_PATH) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) if create_mode.is_some() => {
                match mkdirat(
                    &dir,
                    name.as_os_str(),
                    Mode::from_bits_truncate(create_mode.unwrap_or(PATH_DIR_MODE)),
                ) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(UserFileError::io(path, e)),
                }
                open_no_follow(&dir, &name, OFlag::O_PATH)
                    .map_err(|e| UserFileError::io(path, e))?
            }
            Err(e) => return Err(UserFileError::io(path, e)),
        };
        let st = fstat(&next).map_err(|e| UserFileError::io(path, e))?;
        if is_kind(&st, SFlag::S_IFDIR) {
            dir = next;
            continue;
        }
        if !is_kind(&st, SFlag::S_IFLNK) {
            return Err(UserFileError::Unsafe {
                path: path.to_owned(),
                what: format!("{} is not a directory", name.to_string_lossy()),
            });
        }
        // A link: followed only where nobody else could have put it.
        let here = fstat(&dir).map_err(|e| UserFileError::io(path, e))?;
        links += 1;
        if !trusted_dir(&here) || links > MAX_LINKS {
            return Err(UserFileError::Symlink {
                path: path.to_owned(),
                link: PathBuf::from(name),
            });
        }
        let target = readlinkat(&dir, name.as_os_str()).map_err(|e| UserFileError::io(path, e))?;
        let target = PathBuf::from(target);
        let mut spliced = components(&target);
        spliced.extend(todo.drain(..));
        todo = spliced;
        if target.is_absolute() {
            dir = root()?;
        }
    }
    Ok(dir)
}

/// Path components to walk (`.` dropped; `..` kept: it is never a link).
fn components(path: &Path) -> VecDeque<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_owned()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect()
}

fn open_no_follow(dir: &impl AsFd, name: &OsStr, flags: OFlag) -> Result<OwnedFd, Errno> {
    openat(
        dir,
        name,
        flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// An error opening `name` in `dir` without following: a link there is reported as one.
fn refused_or_io(dir: &OwnedFd, name: &OsStr, path: &Path, e: Errno) -> UserFileError {
    let is_link = nix::sys::stat::fstatat(dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
        .is_ok_and(|st| is_kind(&st, SFlag::S_IFLNK));
    if is_link {
        UserFileError::Symlink {
            path: path.to_owned(),
            link: path.to_owned(),
        }
    } else {
        UserFileError::io(path, e)
    }
}

/// Only root or the server's own user could have made an entry in this directory.
fn trusted_dir(st: &FileStat) -> bool {
    let owner_ok = st.st_uid == 0 || st.st_uid == Uid::effective().as_raw();
    owner_ok && st.st_mode & 0o022 == 0
}

pub(super) fn is_kind(st: &FileStat, kind: SFlag) -> bool {
    st.st_mode & SFlag::S_IFMT.bits() == kind.bits()
}

pub(super) fn io_errno(e: &std::io::Error) -> Errno {
    e.raw_os_error().map_or(Errno::EIO, Errno::from_raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

    #[test]
    fn makes_missing_directories_and_the_rc_file_once() {
        let t = tempfile::tempdir().unwrap();
        let user_dir = t.path().join("users/alice");
        ensure_user_dir(&user_dir, None).unwrap();
        let meta = std::fs::metadata(&user_dir).unwrap();
        assert!(meta.is_dir());
        assert_eq!(meta.permissions().mode() & 0o777, USER_DIR_MODE);
        let users = std::fs::metadata(t.path().join("users")).unwrap();
        assert_eq!(users.permissions().mode() & 0o777, PATH_DIR_MODE);
        let rc = user_dir.join("nethackrc");
        assert_eq!(
            create_rc_file(&rc, "OPTIONS=color\n", None).unwrap(),
            RcFile::Created
        );
        assert_eq!(std::fs::read_to_string(&rc).unwrap(), "OPTIONS=color\n");
        std::fs::write(&rc, "OPTIONS=mine\n").unwrap();
        assert_eq!(
            create_rc_file(&rc, "OPTIONS=color\n", None).unwrap(),
            RcFile::Kept
        );
        assert_eq!(std::fs::read_to_string(&rc).unwrap(), "OPTIONS=mine\n");
        // Again: nothing changes, no error.
        ensure_user_dir(&user_dir, None).unwrap();
    }

    #[test]
    fn a_planted_rc_file_link_is_refused_and_its_target_untouched() {
        let t = tempfile::tempdir().unwrap();
        let user_dir = t.path().join("users/alice");
        ensure_user_dir(&user_dir, None).unwrap();
        let target = t.path().join("victim");
        symlink(&target, user_dir.join("nethackrc")).unwrap();
        let e = create_rc_file(&user_dir.join("nethackrc"), "X\n", None).unwrap_err();
        assert!(matches!(e, UserFileError::Symlink { .. }), "{e}");
        assert!(!target.exists(), "the link's target was created");
    }

    #[test]
    fn a_user_dir_that_is_a_link_in_a_writable_directory_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let users = t.path().join("users");
        std::fs::create_dir(&users).unwrap();
        std::fs::set_permissions(&users, std::fs::Permissions::from_mode(0o777)).unwrap();
        let elsewhere = t.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        symlink(&elsewhere, users.join("alice")).unwrap();
        let e = ensure_user_dir(&users.join("alice"), None).unwrap_err();
        assert!(matches!(e, UserFileError::Symlink { .. }), "{e}");
        // And as a directory on the way to an rc file.
        let e = create_rc_file(&users.join("alice/nethackrc"), "X\n", None).unwrap_err();
        assert!(matches!(e, UserFileError::Symlink { .. }), "{e}");
        assert!(!elsewhere.join("nethackrc").exists());
    }

    #[test]
    fn an_operator_link_in_a_private_directory_is_followed() {
        let t = tempfile::tempdir().unwrap();
        std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let real = t.path().join("real-data");
        std::fs::create_dir(&real).unwrap();
        symlink("real-data", t.path().join("data")).unwrap();
        let user_dir = t.path().join("data/users/bob");
        ensure_user_dir(&user_dir, None).unwrap();
        assert!(real.join("users/bob").is_dir());
    }

    #[test]
    fn a_too_open_user_dir_is_closed_and_a_foreign_one_refused() {
        let t = tempfile::tempdir().unwrap();
        let user_dir = t.path().join("carol");
        std::fs::create_dir(&user_dir).unwrap();
        std::fs::set_permissions(&user_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        ensure_user_dir(&user_dir, None).unwrap();
        let meta = std::fs::metadata(&user_dir).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, USER_DIR_MODE);
        // Owned by another user: only testable as root (chown needs it).
        if Uid::effective().is_root() {
            let other = RunAs {
                uid: 4242,
                gid: 4242,
                name: "nobody-in-particular".into(),
                home: "/".into(),
            };
            let e = ensure_user_dir(&user_dir, Some(&other)).unwrap_err();
            assert!(matches!(e, UserFileError::Unsafe { .. }), "{e}");
            let fresh = t.path().join("dave");
            ensure_user_dir(&fresh, Some(&other)).unwrap();
            assert_eq!(std::fs::metadata(&fresh).unwrap().uid(), 4242);
        }
    }
}
