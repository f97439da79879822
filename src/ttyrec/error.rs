//! Why recording to disk failed. The caller stops that game's recording with one log line
//! (the message names the path) and a metric labelled with [`RecordError::kind`]; the game
//! itself goes on.

use crate::game::userfiles::UserFileError;
use nix::errno::Errno;
use std::io;
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum RecordError {
    #[error("{path}: no space left on the disk (or the quota is used up)")]
    DiskFull { path: PathBuf },
    #[error("{path}: permission denied")]
    Permission { path: PathBuf },
    #[error("{path}: refusing a symbolic link ({link}) that a non-root user could have made")]
    Symlink { path: PathBuf, link: PathBuf },
    #[error("{path}: {what}")]
    Unsafe { path: PathBuf, what: String },
    #[error("{dir}: no free file name for {first} (tried {tries} numbered names)")]
    NoFreeName {
        dir: PathBuf,
        first: String,
        tries: u32,
    },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

impl RecordError {
    /// An I/O error on `path`, sorted into the kinds an operator acts on differently.
    pub fn io(path: &Path, e: io::Error) -> Self {
        let path = path.to_owned();
        match e.raw_os_error().map(Errno::from_raw) {
            Some(Errno::ENOSPC | Errno::EDQUOT) => RecordError::DiskFull { path },
            Some(Errno::EACCES | Errno::EPERM | Errno::EROFS) => RecordError::Permission { path },
            // O_NOFOLLOW on a link.
            Some(Errno::ELOOP) => RecordError::Symlink {
                link: path.clone(),
                path,
            },
            _ => RecordError::Io { path, source: e },
        }
    }

    pub fn errno(path: &Path, e: Errno) -> Self {
        Self::io(path, io::Error::from_raw_os_error(e as i32))
    }

    /// A short, fixed label for a metric.
    pub fn kind(&self) -> &'static str {
        match self {
            RecordError::DiskFull { .. } => "disk_full",
            RecordError::Permission { .. } => "permission",
            RecordError::Symlink { .. } => "symlink",
            RecordError::Unsafe { .. } => "unsafe",
            RecordError::NoFreeName { .. } => "no_free_name",
            RecordError::Io { .. } => "io",
        }
    }
}

impl From<UserFileError> for RecordError {
    fn from(e: UserFileError) -> Self {
        match e {
            UserFileError::Symlink { path, link } => RecordError::Symlink { path, link },
            UserFileError::Unsafe { path, what } => RecordError::Unsafe { path, what },
            UserFileError::Io { path, source } => RecordError::errno(&path, source),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_sorted_and_name_the_path() {
        let p = Path::new("/var/lib/dg/ttyrec/x.ttyrec");
        let e = RecordError::errno(p, Errno::ENOSPC);
        assert_eq!(e.kind(), "disk_full");
        assert!(e.to_string().contains("/var/lib/dg/ttyrec/x.ttyrec"), "{e}");
        assert_eq!(RecordError::errno(p, Errno::EDQUOT).kind(), "disk_full");
        assert_eq!(RecordError::errno(p, Errno::EACCES).kind(), "permission");
        assert_eq!(RecordError::errno(p, Errno::ELOOP).kind(), "symlink");
        let e = RecordError::errno(p, Errno::EIO);
        assert_eq!(e.kind(), "io");
        assert!(
            e.to_string().starts_with("/var/lib/dg/ttyrec/x.ttyrec: "),
            "{e}"
        );
    }
}
