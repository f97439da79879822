//! Compression of finished recordings, and telling compressed files by their first bytes.

use std::io::{self, Read, Write};

/// zstd level for finished recordings: written once, kept for years, compressed on a writer
/// thread off the reactor cores. On a 90 KB NetHack recording made here, level 9 gave 7.9 KB
/// against 9.7 KB at the default 3 (19: 7.4 KB at several times the CPU; gzip -6: 8.6 KB).
const ZSTD_LEVEL: i32 = 9;

/// How a finished recording is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// `NAME.ttyrec` as written.
    #[default]
    None,
    /// `NAME.ttyrec.gz`: every ttyrec tool reads it.
    Gzip,
    /// `NAME.ttyrec.zst`: smaller and faster; termrec and our reader read it.
    Zstd,
}

impl Compression {
    /// What the compressed file's name adds after `.ttyrec`.
    pub fn extension(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => ".gz",
            Compression::Zstd => ".zst",
        }
    }

    /// A name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }

    /// How a stream beginning with `head` is compressed, by its magic number. A plain ttyrec
    /// starts with a timestamp's low bytes, which could in principle match; the gzip magic
    /// with its method byte (deflate) and zstd's four bytes make that as good as impossible
    /// for any time a recorder writes.
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b, 0x08]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// Copy `src` compressed into `dst`; the writer is returned flushed (not synced).
    /// `Compression::None` copies as is.
    pub fn copy<W: Write>(self, src: &mut impl Read, dst: W) -> io::Result<W> {
        match self {
            Compression::None => {
                let mut dst = dst;
                io::copy(src, &mut dst)?;
                dst.flush()?;
                Ok(dst)
            }
            Compression::Gzip => {
                let mut enc = flate2::write::GzEncoder::new(dst, flate2::Compression::default());
                io::copy(src, &mut enc)?;
                let mut dst = enc.finish()?;
                dst.flush()?;
                Ok(dst)
            }
            Compression::Zstd => {
                let mut enc = zstd::stream::write::Encoder::new(dst, ZSTD_LEVEL)?;
                io::copy(src, &mut enc)?;
                let mut dst = enc.finish()?;
                dst.flush()?;
                Ok(dst)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressed_copies_are_recognised_and_decompress() {
        let data: Vec<u8> = b"\x1b[H\x1b[2J@ the dungeon\r\n".repeat(200);
        for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let packed = c.copy(&mut &data[..], Vec::new()).unwrap();
            assert_eq!(Compression::sniff(&packed), c, "{c:?}");
            let mut back = Vec::new();
            match c {
                Compression::None => back = packed.clone(),
                Compression::Gzip => {
                    flate2::read::MultiGzDecoder::new(&packed[..])
                        .read_to_end(&mut back)
                        .unwrap();
                }
                Compression::Zstd => {
                    zstd::stream::read::Decoder::new(&packed[..])
                        .unwrap()
                        .read_to_end(&mut back)
                        .unwrap();
                }
            }
            assert_eq!(back, data, "{c:?}");
            if c != Compression::None {
                assert!(packed.len() < data.len() / 10, "{c:?}: {}", packed.len());
            }
        }
        // A plain recording's first header is not mistaken for either.
        let plain = crate::ttyrec::frame::header(1_700_000_000, 0, 3);
        assert_eq!(Compression::sniff(&plain), Compression::None);
        assert_eq!(Compression::sniff(b""), Compression::None);
    }
}
