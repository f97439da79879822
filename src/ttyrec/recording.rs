//! One game's recording as it runs on a reactor core: frames go into a pending buffer that a
//! writer thread takes away in batches. Sans-io: no files, no clock (every time is passed in),
//! no blocking, and no allocation in the steady state (each batch hands back a recycled
//! buffer).
//!
//! Two things can make the recording need a fresh picture of the screen, and both ask the
//! caller for it through the `resync` closure given with each frame, so no caller can forget
//! to answer (a flag to poll could be missed):
//!
//! - **rotation**: a frame that would take the current file past its cap starts a new file.
//!   A frame is never split across files, and every file begins with a first frame of its own
//!   ([`Resync::NewFile`]), so each file plays back alone.
//! - **a gap**: when the writer falls behind and more than the pending limit is waiting, new
//!   frames are dropped and counted (the game never waits for a disk). The next frame that is
//!   accepted is preceded by a visible notice frame, `[dungeongate: recording gap: N bytes of
//!   output were not recorded]`, and then by a repaint ([`Resync::AfterGap`]): a replay says
//!   that something is missing and then shows the right screen again, instead of drawing
//!   the rest of the game over a screen it never received. `ttyrec info` counts the notices.

use super::frame::{framed_len, push_frames, Timestamp};

/// Most bytes left waiting for the writer before frames are dropped: a second or more of the
/// busiest game's output, and a bound on what a stuck disk can cost each game in memory.
pub const PENDING_LIMIT: usize = 1024 * 1024;

/// Text that starts a gap notice frame (after `\r\n`); readers look for it.
pub const GAP_MARK: &[u8] = b"[dungeongate: recording gap: ";

/// Why a frame's `resync` closure is called; it appends bytes that draw the screen as it was
/// just before this frame's bytes, from any state (clear, then draw everything).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resync {
    /// This frame starts a new file: write what a viewer of this file alone needs, the
    /// identification header ([`super::preamble::Preamble`], with its size report) and then
    /// the screen.
    NewFile,
    /// Output before this frame was lost: redraw the screen.
    AfterGap,
}

/// Where a new file starts in a pending buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStart {
    offset: usize,
    at: Timestamp,
}

/// A recording's pending frames and the state of its current file.
#[derive(Debug)]
pub struct Recording {
    pending: Vec<u8>,
    starts: Vec<FileStart>,
    cap: u64,
    limit: usize,
    file_bytes: u64,
    /// The current file holds a frame besides its first: only then is rotating worth it (a
    /// cap below one frame would otherwise make a file per frame of nothing but preambles).
    file_has_output: bool,
    lost: u64,
    dropped: u64,
    gaps: u64,
    files: u64,
}

impl Recording {
    /// A recording whose files hold about `cap_bytes` each, starting with `preamble` at `at`
    /// as the first frame of the first file (see [`super::preamble::Preamble`]). A file
    /// exceeds the cap only to hold its first frame and one frame of output, or a gap notice.
    pub fn new(cap_bytes: u64, at: Timestamp, preamble: &[u8]) -> Self {
        let mut r = Recording {
            pending: Vec::new(),
            starts: Vec::new(),
            cap: cap_bytes,
            limit: PENDING_LIMIT,
            file_bytes: 0,
            file_has_output: false,
            lost: 0,
            dropped: 0,
            gaps: 0,
            files: 1,
        };
        r.push(at, preamble);
        r
    }

    /// The same with another pending limit (tests, or a server with slow disks).
    pub fn with_pending_limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// Record `bytes`, the game's output at `at`. `resync` is called at most once, only when
    /// this frame starts a new file or follows lost output (see [`Resync`]).
    pub fn frame(
        &mut self,
        at: Timestamp,
        bytes: &[u8],
        resync: impl FnOnce(Resync, &mut Vec<u8>),
    ) {
        if bytes.is_empty() {
            return;
        }
        let need = framed_len(bytes.len());
        // A frame larger than the limit is still taken into an empty buffer: the bound is
        // the limit or one frame, whichever is larger, and a huge write is not lost for it.
        if !self.pending.is_empty() && self.pending.len() + need > self.limit {
            self.lost += bytes.len() as u64;
            self.dropped += bytes.len() as u64;
            return;
        }
        let gap = self.lost > 0;
        if gap {
            // The notice ends the file where the gap is, so it never stands before a new
            // file's first frame; it may take that file past its cap by its own few bytes.
            let notice = gap_notice(self.lost);
            self.push(at, &notice);
            self.lost = 0;
            self.gaps += 1;
        }
        let rotate = self.file_has_output && self.file_bytes + need as u64 > self.cap;
        let why = if rotate {
            self.starts.push(FileStart {
                offset: self.pending.len(),
                at,
            });
            self.file_bytes = 0;
            self.files += 1;
            Some(Resync::NewFile)
        } else if gap {
            Some(Resync::AfterGap)
        } else {
            None
        };
        if let Some(why) = why {
            // Rare (a rotation, a gap): a buffer of its own, so the closure can touch nothing
            // already recorded.
            let mut screen = Vec::new();
            resync(why, &mut screen);
            self.push(at, &screen);
        }
        self.push(at, bytes);
        self.file_has_output = true;
    }

    /// Bytes waiting for the writer.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// What the pending buffer can hold before it must grow.
    pub fn buffer_capacity(&self) -> usize {
        self.pending.capacity()
    }

    /// The pending buffer, when nothing is pending (a quiet game gives its memory back);
    /// `None` otherwise, or when it holds none.
    pub fn release_buffer(&mut self) -> Option<Vec<u8>> {
        (self.pending.is_empty() && self.pending.capacity() > 0)
            .then(|| std::mem::take(&mut self.pending))
    }

    /// Output bytes dropped because the writer was behind, since the start.
    pub fn dropped_bytes(&self) -> u64 {
        self.dropped
    }

    /// Gap notices written (each marks one run of dropped frames).
    pub fn gaps(&self) -> u64 {
        self.gaps
    }

    /// Files this recording has started, the first included.
    pub fn files_started(&self) -> u64 {
        self.files
    }

    /// The pending bytes for the writer; `spare` (a buffer a previous batch gave back, or
    /// `Vec::new()`) is cleared and becomes the pending buffer, so that passing buffers
    /// back and forth allocates nothing once they have grown.
    pub fn take(&mut self, mut spare: Vec<u8>) -> Batch {
        spare.clear();
        Batch {
            bytes: std::mem::replace(&mut self.pending, spare),
            starts: std::mem::take(&mut self.starts),
        }
    }

    fn push(&mut self, at: Timestamp, bytes: &[u8]) {
        push_frames(&mut self.pending, at, bytes);
        self.file_bytes += framed_len(bytes.len()) as u64;
    }
}

fn gap_notice(lost: u64) -> Vec<u8> {
    let mut v = b"\r\n".to_vec();
    v.extend_from_slice(GAP_MARK);
    v.extend_from_slice(format!("{lost} bytes of output were not recorded]\r\n").as_bytes());
    v
}

/// Frames taken from a [`Recording`] for the writer: whole frames, in order, some of them
/// possibly starting new files (see [`Batch::parts`]).
#[derive(Debug, Default)]
pub struct Batch {
    bytes: Vec<u8>,
    starts: Vec<FileStart>,
}

/// A run of a batch's bytes that goes into one file.
#[derive(Debug, PartialEq, Eq)]
pub struct Part<'a> {
    /// `Some(time of its first frame)` when these bytes start a new file (close the current
    /// one first); `None` for the current file.
    pub new_file: Option<Timestamp>,
    pub bytes: &'a [u8],
}

impl Batch {
    /// All the bytes, in order (whole frames).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The bytes split at the files they go into, in order.
    pub fn parts(&self) -> impl Iterator<Item = Part<'_>> {
        let first_end = self.starts.first().map_or(self.bytes.len(), |s| s.offset);
        let head = Part {
            new_file: None,
            bytes: &self.bytes[..first_end],
        };
        let rest = self.starts.iter().enumerate().map(move |(i, s)| {
            let end = self
                .starts
                .get(i + 1)
                .map_or(self.bytes.len(), |next| next.offset);
            Part {
                new_file: Some(s.at),
                bytes: &self.bytes[s.offset..end],
            }
        });
        std::iter::once(head)
            .filter(|p| !p.bytes.is_empty())
            .chain(rest)
    }

    /// The buffer, to be passed back to [`Recording::take`].
    pub fn into_buffer(self) -> Vec<u8> {
        self.bytes
    }
}

#[cfg(test)]
#[path = "recording_tests.rs"]
mod tests;
