//! Recording files on disk: the blocking side, run on a writer thread and never on a reactor
//! core.
//!
//! The directory is reached and made with the walk of [`crate::game::userfiles`] (no link
//! that an unprivileged user could have planted is followed, since the games user can write
//! in per-user directories), and each file is created inside it by descriptor with
//! `O_CREAT | O_EXCL | O_NOFOLLOW`: a name that exists is never opened, a link at the name is
//! refused, and a name taken by an earlier recording in the same second moves on to the next
//! numbered name ([`super::name::numbered_file_name`]).
//!
//! Compression happens when a file is finished (at rotation and at the end): the compressed
//! copy is written beside it under a name of its own, synced, and only then is the original
//! removed, so a crash at any point leaves at least one complete copy.

use super::compress::Compression;
use super::error::RecordError;
use super::name::numbered_file_name;
use super::recording::Batch;
use crate::game::userfiles::open_dir_tree;
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, Mode, SFlag};
use nix::unistd::{fsync, unlinkat, UnlinkatFlags};
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Mode of recording directories made on the way: a web server's group may read them.
const DIR_MODE: u32 = 0o750;
/// Mode of recording files.
const FILE_MODE: u32 = 0o640;
/// Numbered names tried for one second before giving up: far more recordings than one
/// player can start in a second, few enough to stop quickly on a directory gone wrong.
const MAX_SAME_SECOND: u32 = 1000;

/// The recording file being written, and where its next ones go.
#[derive(Debug)]
pub struct Sink {
    place: Place,
    file: File,
    name: String,
}

/// Where a recording's files go and how they are finished.
#[derive(Debug)]
struct Place {
    dir: OwnedFd,
    dir_path: PathBuf,
    compression: Compression,
}

impl Sink {
    /// A new recording file for a game started at `start` in `dir`, which is made (mode
    /// 0750) with any missing parents. A relative `dir` is taken from the current directory.
    pub fn create(
        dir: &Path,
        start: SystemTime,
        compression: Compression,
    ) -> Result<Sink, RecordError> {
        let dir_path = std::path::absolute(dir).map_err(|e| RecordError::io(dir, e))?;
        let dir_fd = open_dir_tree(&dir_path, Some(DIR_MODE))?;
        let (file, name) = create_file(&dir_fd, &dir_path, start)?;
        Ok(Sink {
            place: Place {
                dir: dir_fd,
                dir_path,
                compression,
            },
            file,
            name,
        })
    }

    /// The file being written.
    pub fn path(&self) -> PathBuf {
        self.place.dir_path.join(&self.name)
    }

    /// Append bytes (whole frames) to the current file.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), RecordError> {
        self.file
            .write_all(bytes)
            .map_err(|e| RecordError::io(&self.place.dir_path.join(&self.name), e))
    }

    /// Write a batch, starting a new file where it says so. Returns the files finished on the
    /// way (their final names, compressed or not).
    pub fn write_batch(&mut self, batch: &Batch) -> Result<Vec<PathBuf>, RecordError> {
        let mut finished = Vec::new();
        for part in batch.parts() {
            if let Some(at) = part.new_file {
                finished.push(self.rotate(at.to_system_time())?);
            }
            self.write(part.bytes)?;
        }
        Ok(finished)
    }

    /// Finish the current file (synced, then compressed if so configured) and go on in a new
    /// one named for `start`. Returns the finished file's final name.
    pub fn rotate(&mut self, start: SystemTime) -> Result<PathBuf, RecordError> {
        let (file, name) = create_file(&self.place.dir, &self.place.dir_path, start)?;
        let old_file = std::mem::replace(&mut self.file, file);
        let old_name = std::mem::replace(&mut self.name, name);
        self.place.finish_file(old_file, &old_name)
    }

    /// Finish the current file (synced, then compressed if so configured); its final name.
    pub fn finish(self) -> Result<PathBuf, RecordError> {
        let Sink { place, file, name } = self;
        place.finish_file(file, &name)
    }
}

impl Place {
    fn finish_file(&self, mut file: File, name: &str) -> Result<PathBuf, RecordError> {
        let path = self.dir_path.join(name);
        file.sync_data().map_err(|e| RecordError::io(&path, e))?;
        if self.compression == Compression::None {
            return Ok(path);
        }
        let packed_name = format!("{name}{}", self.compression.extension());
        let packed_path = self.dir_path.join(&packed_name);
        let packed = create_exclusive(&self.dir, &packed_path, &packed_name)?;
        let written = file
            .seek(SeekFrom::Start(0))
            .and_then(|_| self.compression.copy(&mut file, File::from(packed)))
            .and_then(|f| f.sync_all());
        if let Err(e) = written {
            // Ours (made with O_EXCL a moment ago) and incomplete: the original stays.
            let _ = unlinkat(&self.dir, packed_name.as_str(), UnlinkatFlags::NoRemoveDir);
            return Err(RecordError::io(&packed_path, e));
        }
        drop(file);
        unlinkat(&self.dir, name, UnlinkatFlags::NoRemoveDir)
            .map_err(|e| RecordError::errno(&path, e))?;
        // Make the removal and the new name durable together; a failure here loses nothing.
        if let Ok(d) = openat(
            &self.dir,
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            let _ = fsync(&d);
        }
        Ok(packed_path)
    }
}

/// Create the first free numbered name for `start` in `dir`. A name is free when neither it
/// nor a compressed copy of it exists (a compressed copy would collide when this one is
/// finished).
fn create_file(
    dir: &OwnedFd,
    dir_path: &Path,
    start: SystemTime,
) -> Result<(File, String), RecordError> {
    for n in 1..=MAX_SAME_SECOND {
        let name = numbered_file_name(start, n);
        let packed_exists = [Compression::Gzip, Compression::Zstd].iter().any(|c| {
            let packed = format!("{name}{}", c.extension());
            fstatat(dir, packed.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW).is_ok()
        });
        if packed_exists {
            continue;
        }
        match create_exclusive(dir, &dir_path.join(&name), &name) {
            Ok(fd) => return Ok((File::from(fd), name)),
            Err(RecordError::Io { source, .. })
                if source.raw_os_error() == Some(Errno::EEXIST as i32) => {}
            Err(e) => return Err(e),
        }
    }
    Err(RecordError::NoFreeName {
        dir: dir_path.to_owned(),
        first: numbered_file_name(start, 1),
        tries: MAX_SAME_SECOND,
    })
}

/// Create `name` in `dir` only if nothing is there; a symbolic link there is refused.
fn create_exclusive(dir: &OwnedFd, path: &Path, name: &str) -> Result<OwnedFd, RecordError> {
    let flags =
        OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    match openat(dir, name, flags, Mode::from_bits_truncate(FILE_MODE)) {
        Ok(fd) => Ok(fd),
        Err(Errno::EEXIST) => {
            // O_EXCL never follows a link, so a link lands here: tell it from a file.
            let is_link = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
                .is_ok_and(|st| st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFLNK.bits());
            if is_link {
                Err(RecordError::Symlink {
                    path: path.to_owned(),
                    link: path.to_owned(),
                })
            } else {
                Err(RecordError::errno(path, Errno::EEXIST))
            }
        }
        Err(e) => Err(RecordError::errno(path, e)),
    }
}

#[cfg(test)]
#[path = "sink_tests.rs"]
mod tests;
