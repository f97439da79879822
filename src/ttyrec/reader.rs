//! Reading recordings back: frames one at a time from any `Read`, and files opened by path
//! with gzip or zstd recognised by their first bytes (a renamed file still reads).
//!
//! A recording whose writer was killed (`kill -9`, a crash, a full disk) usually ends in the
//! middle of a frame. That is not a broken file: every whole frame is returned, and only
//! then [`ReadError::Truncated`], so a player or `ttyrec info` shows everything that was
//! saved and says that the end is missing.

use super::compress::Compression;
use super::frame::{parse_header, Timestamp, HEADER_LEN, MAX_READ_FRAME};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// One frame: its time and the bytes the terminal received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub at: Timestamp,
    pub data: Vec<u8>,
}

#[derive(Debug, Error)]
pub enum ReadError {
    /// The stream ends inside a frame; the frames before it were all returned.
    #[error("cut short at byte {offset}: the last frame is incomplete (the recorder stopped while writing it); the {frames} whole frames before it are intact")]
    Truncated { offset: u64, frames: u64 },
    #[error("corrupt at byte {offset}: a frame header claims {len} bytes, more than the {MAX_READ_FRAME} any recorder writes (not a ttyrec file, or a damaged one)")]
    Corrupt { offset: u64, len: u32 },
    #[error("{path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Frames from a ttyrec stream.
#[derive(Debug)]
pub struct Reader<R> {
    inner: R,
    offset: u64,
    frames: u64,
    done: bool,
}

impl<R: Read> Reader<R> {
    pub fn new(inner: R) -> Self {
        Reader {
            inner,
            offset: 0,
            frames: 0,
            done: false,
        }
    }

    /// Bytes of the (uncompressed) stream read so far, in whole frames.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next frame's bytes into `buf` (cleared first) and its time; `None` at the end.
    /// After an error the reader is finished.
    pub fn read_frame(&mut self, buf: &mut Vec<u8>) -> Result<Option<Timestamp>, ReadError> {
        if self.done {
            return Ok(None);
        }
        let result = self.read_frame_inner(buf);
        if !matches!(result, Ok(Some(_))) {
            self.done = true;
        }
        result
    }

    fn read_frame_inner(&mut self, buf: &mut Vec<u8>) -> Result<Option<Timestamp>, ReadError> {
        let mut h = [0u8; HEADER_LEN];
        let got = read_full(&mut self.inner, &mut h).map_err(|e| self.error(e))?;
        if got == 0 {
            return Ok(None);
        }
        if got < HEADER_LEN {
            return Err(self.truncated());
        }
        let (at, len) = parse_header(&h);
        if len > MAX_READ_FRAME {
            return Err(ReadError::Corrupt {
                offset: self.offset,
                len,
            });
        }
        buf.clear();
        // `len` is bounded above, so trusting it for the read (not for a reservation) is safe.
        let got = (&mut self.inner)
            .take(u64::from(len))
            .read_to_end(buf)
            .map_err(|e| self.error(e))?;
        if got < len as usize {
            return Err(self.truncated());
        }
        self.offset += (HEADER_LEN + got) as u64;
        self.frames += 1;
        Ok(Some(at))
    }

    fn truncated(&self) -> ReadError {
        ReadError::Truncated {
            offset: self.offset,
            frames: self.frames,
        }
    }

    /// A decompressor reports a stream cut short as an unexpected end: the same truncation
    /// as a plain file's.
    fn error(&self, e: io::Error) -> ReadError {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            self.truncated()
        } else {
            ReadError::Io(e)
        }
    }
}

impl<R: Read> Iterator for Reader<R> {
    type Item = Result<Frame, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut data = Vec::new();
        match self.read_frame(&mut data) {
            Ok(Some(at)) => Some(Ok(Frame { at, data })),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

/// Read until `buf` is full or the stream ends; how many bytes were read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A recording file, plain or compressed, and how it was compressed.
pub fn open(path: &Path) -> Result<(Reader<Box<dyn Read>>, Compression), ReadError> {
    let opened = |source| ReadError::Open {
        path: path.to_owned(),
        source,
    };
    let mut buf = BufReader::new(File::open(path).map_err(opened)?);
    // One read of a regular file returns its first 8 KiB (or all of a shorter file): plenty
    // for a magic number.
    let compression = Compression::sniff(buf.fill_buf().map_err(opened)?);
    let inner: Box<dyn Read> = match compression {
        Compression::None => Box::new(buf),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buf)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::with_buffer(buf).map_err(opened)?)
        }
    };
    Ok((Reader::new(inner), compression))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ttyrec::frame::header;

    fn recording(frames: &[(u32, u32, &[u8])]) -> Vec<u8> {
        let mut v = Vec::new();
        for &(s, u, d) in frames {
            v.extend_from_slice(&header(s, u, d.len() as u32));
            v.extend_from_slice(d);
        }
        v
    }

    const SAMPLE: &[(u32, u32, &[u8])] = &[(5, 1, b"\x1b[8;24;80tab"), (6, 2, b""), (6, 9, b"xyz")];

    #[test]
    fn frames_come_back_in_order() {
        let bytes = recording(SAMPLE);
        let frames: Vec<Frame> = Reader::new(&bytes[..]).map(Result::unwrap).collect();
        assert_eq!(frames.len(), 3);
        for (f, &(s, u, d)) in frames.iter().zip(SAMPLE) {
            assert_eq!(f.at, Timestamp { sec: s, usec: u });
            assert_eq!(f.data, d);
        }
    }

    #[test]
    fn a_cut_at_every_offset_keeps_the_whole_frames_and_reports_the_cut() {
        let bytes = recording(SAMPLE);
        let ends: Vec<usize> = SAMPLE
            .iter()
            .scan(0, |end, f| {
                *end += HEADER_LEN + f.2.len();
                Some(*end)
            })
            .collect();
        for cut in 0..=bytes.len() {
            let mut r = Reader::new(&bytes[..cut]);
            let whole = ends.iter().filter(|&&e| e <= cut).count();
            let mut got = 0;
            let mut buf = Vec::new();
            let end = loop {
                match r.read_frame(&mut buf) {
                    Ok(Some(_)) => got += 1,
                    other => break other,
                }
            };
            assert_eq!(got, whole, "cut at {cut}");
            let at_boundary = cut == 0 || ends.contains(&cut);
            match end {
                Ok(None) => assert!(at_boundary, "cut at {cut} not reported"),
                Err(ReadError::Truncated { offset, frames }) => {
                    assert!(!at_boundary, "clean cut at {cut} reported");
                    assert_eq!(frames as usize, whole);
                    assert_eq!(offset, r.offset());
                }
                Err(e) => panic!("cut at {cut}: {e}"),
                Ok(Some(_)) => unreachable!(),
            }
            // Finished: nothing more, no repeated error.
            assert!(matches!(r.read_frame(&mut buf), Ok(None)));
        }
    }

    #[test]
    fn absurd_lengths_are_corrupt_not_allocated() {
        let mut bytes = recording(&[(1, 0, b"ok")]);
        bytes.extend_from_slice(&header(2, 0, u32::MAX));
        bytes.extend_from_slice(b"short");
        let mut r = Reader::new(&bytes[..]);
        assert!(r.next().unwrap().is_ok());
        match r.next() {
            Some(Err(ReadError::Corrupt { offset: 14, len })) => assert_eq!(len, u32::MAX),
            other => panic!("{other:?}"),
        }
        assert!(r.next().is_none());
    }
}
