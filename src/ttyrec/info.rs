//! What a recording holds: its length in time, frames and bytes, the terminal size its first
//! frame announces, and whether it was cut short or has gaps.

use super::compress::Compression;
use super::frame::{Timestamp, HEADER_LEN};
use super::preamble::{size_report, TermSize};
use super::reader::{self, ReadError, Reader};
use super::recording::GAP_MARK;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// The first frame's time.
    pub start: Option<Timestamp>,
    /// Playing time: the sum of the forward steps between frames (a clock set back during
    /// the game adds nothing rather than making the length negative).
    pub duration: Duration,
    pub frames: u64,
    /// Bytes of the ttyrec stream in whole frames (headers included), uncompressed.
    pub bytes: u64,
    /// Bytes of terminal output (the frames' contents).
    pub output_bytes: u64,
    /// The size announced by `ESC [ 8 ; rows ; cols t` in the first frame.
    pub first_size: Option<TermSize>,
    /// The stream ends inside a frame (the recorder was stopped while writing).
    pub truncated: bool,
    /// Gap notices: runs of output the server could not record in time.
    pub gaps: u64,
    pub compression: Compression,
}

impl Info {
    /// The recording at `path`, plain, gzip or zstd.
    pub fn from_path(path: &Path) -> Result<Info, ReadError> {
        let (reader, compression) = reader::open(path)?;
        Info::from_reader(reader, compression)
    }

    /// The recording in a stream; a cut at the end is reported in the result, not as an error.
    pub fn from_reader<R: Read>(
        mut reader: Reader<R>,
        compression: Compression,
    ) -> Result<Info, ReadError> {
        let mut info = Info {
            start: None,
            duration: Duration::ZERO,
            frames: 0,
            bytes: 0,
            output_bytes: 0,
            first_size: None,
            truncated: false,
            gaps: 0,
            compression,
        };
        let mut last: Option<Timestamp> = None;
        let mut buf = Vec::new();
        loop {
            let at = match reader.read_frame(&mut buf) {
                Ok(Some(at)) => at,
                Ok(None) => break,
                Err(ReadError::Truncated { .. }) => {
                    info.truncated = true;
                    break;
                }
                Err(e) => return Err(e),
            };
            match last {
                None => {
                    info.start = Some(at);
                    info.first_size = size_report(&buf);
                }
                Some(prev) => info.duration += at.since(prev),
            }
            last = Some(at);
            info.frames += 1;
            info.bytes += (HEADER_LEN + buf.len()) as u64;
            info.output_bytes += buf.len() as u64;
            if buf
                .strip_prefix(b"\r\n")
                .is_some_and(|b| b.starts_with(GAP_MARK))
            {
                info.gaps += 1;
            }
        }
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ttyrec::frame::header;
    use crate::ttyrec::recording::Recording;

    fn frame(out: &mut Vec<u8>, sec: u32, usec: u32, data: &[u8]) {
        out.extend_from_slice(&header(sec, usec, data.len() as u32));
        out.extend_from_slice(data);
    }

    #[test]
    fn info_counts_time_frames_and_bytes() {
        let mut v = Vec::new();
        frame(&mut v, 100, 0, b"\x1b[8;24;80thello");
        frame(&mut v, 101, 500_000, b" world");
        frame(&mut v, 99, 0, b"clock set back");
        frame(&mut v, 103, 250_000, b"!\r\n");
        let info = Info::from_reader(Reader::new(&v[..]), Compression::None).unwrap();
        assert_eq!(info.start, Some(Timestamp { sec: 100, usec: 0 }));
        // 1.5 s, then nothing for the step back, then 4.25 s from 99.0 to 103.25.
        assert_eq!(info.duration, Duration::from_millis(5750));
        assert_eq!(info.frames, 4);
        assert_eq!(info.bytes, v.len() as u64);
        assert_eq!(info.output_bytes, v.len() as u64 - 4 * 12);
        assert_eq!(info.first_size, Some(TermSize { rows: 24, cols: 80 }));
        assert!(!info.truncated);
        assert_eq!(info.gaps, 0);

        let cut = Info::from_reader(Reader::new(&v[..v.len() - 1]), Compression::None).unwrap();
        assert!(cut.truncated);
        assert_eq!(cut.frames, 3);
    }

    #[test]
    fn a_size_later_than_the_first_frame_is_not_the_first_size() {
        let mut v = Vec::new();
        frame(&mut v, 1, 0, b"no size here");
        frame(&mut v, 2, 0, b"\x1b[8;24;80t");
        let info = Info::from_reader(Reader::new(&v[..]), Compression::None).unwrap();
        assert_eq!(info.first_size, None);
        let empty = Info::from_reader(Reader::new(&[][..]), Compression::None).unwrap();
        assert_eq!(
            (empty.frames, empty.start, empty.truncated),
            (0, None, false)
        );
    }

    #[test]
    fn gaps_left_by_a_recording_are_counted() {
        let t = Timestamp { sec: 1, usec: 0 };
        let mut rec = Recording::new(u64::MAX, t, b"\x1b[8;24;80t").with_pending_limit(150);
        rec.frame(t, &[b'x'; 80], |_, _| {});
        rec.frame(t, &[b'y'; 80], |_, _| {}); // dropped
        let mut all = rec.take(Vec::new()).into_buffer();
        rec.frame(t, b"z", |_, s| s.extend_from_slice(b"\x1b[2Jscreen"));
        all.extend_from_slice(rec.take(Vec::new()).bytes());
        let info = Info::from_reader(Reader::new(&all[..]), Compression::None).unwrap();
        assert_eq!(info.gaps, 1);
        assert_eq!(info.frames, 5);
    }
}
