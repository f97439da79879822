//! SSH wire encoding (RFC 4251 §5): `byte`, `boolean`, `uint32`, `uint64`, `string`,
//! `mpint` and `name-list`.
//!
//! [`Reader`] borrows from the packet buffer and never panics on short or malformed input;
//! every decoder ends with [`Reader::finish`], which rejects trailing bytes. Writers append to
//! a caller-owned `Vec<u8>` so a pooled buffer can be reused without allocating.

use thiserror::Error;

/// Longest `string` we accept inside a packet: a packet is at most 256 KiB anyway, this only
/// keeps a single field from claiming more than that before we look at it.
pub const MAX_STRING_LEN: usize = 256 * 1024;

/// Most entries we accept in one name-list (OpenSSH sends about 20 in a KEXINIT field).
pub const MAX_NAME_LIST_ENTRIES: usize = 128;

/// A field could not be decoded: the peer sent a malformed message.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum WireError {
    #[error("message truncated while reading {0}")]
    Truncated(&'static str),
    #[error("{0} bytes left over after the end of the message")]
    TrailingBytes(usize),
    #[error("{0} is longer than allowed")]
    TooLong(&'static str),
    #[error("{0} is not valid")]
    Invalid(&'static str),
}

/// Cursor over a borrowed message body.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    /// The bytes not read yet.
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    /// Bytes not consumed yet.
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// Take exactly `n` raw bytes.
    pub fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        if self.rest.len() < n {
            return Err(WireError::Truncated(what));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    pub fn u8(&mut self) -> Result<u8, WireError> {
        let b = self.bytes(1, "byte")?;
        Ok(b.first().copied().unwrap_or_default())
    }

    pub fn bool(&mut self) -> Result<bool, WireError> {
        Ok(self.u8()? != 0)
    }

    pub fn u32(&mut self) -> Result<u32, WireError> {
        let b = self.bytes(4, "uint32")?;
        let mut a = [0u8; 4];
        a.copy_from_slice(b);
        Ok(u32::from_be_bytes(a))
    }

    pub fn u64(&mut self) -> Result<u64, WireError> {
        let b = self.bytes(8, "uint64")?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    /// A length-prefixed `string` (arbitrary bytes).
    pub fn string(&mut self) -> Result<&'a [u8], WireError> {
        let len = self.u32()? as usize;
        if len > MAX_STRING_LEN {
            return Err(WireError::TooLong("string"));
        }
        self.bytes(len, "string")
    }

    /// A `string` that must be UTF-8 (user names, service names, method names).
    pub fn utf8(&mut self) -> Result<&'a str, WireError> {
        std::str::from_utf8(self.string()?).map_err(|_| WireError::Invalid("UTF-8 string"))
    }

    /// A `name-list`: comma-separated US-ASCII names, returned as an iterator-ready str.
    pub fn name_list(&mut self) -> Result<NameList<'a>, WireError> {
        let raw = self.string()?;
        if !raw.iter().all(|b| b.is_ascii_graphic()) {
            return Err(WireError::Invalid("name-list"));
        }
        let s = std::str::from_utf8(raw).map_err(|_| WireError::Invalid("name-list"))?;
        if !s.is_empty() && s.split(',').count() > MAX_NAME_LIST_ENTRIES {
            return Err(WireError::TooLong("name-list"));
        }
        if !s.is_empty() && s.split(',').any(str::is_empty) {
            return Err(WireError::Invalid("name-list"));
        }
        Ok(NameList(s))
    }

    /// An `mpint`, returned as its raw two's-complement big-endian bytes.
    pub fn mpint(&mut self) -> Result<&'a [u8], WireError> {
        self.string()
    }

    /// Everything left (for messages whose tail is opaque, e.g. extension data).
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }

    /// End of message: anything left over is a protocol violation.
    pub fn finish(self) -> Result<(), WireError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(WireError::TrailingBytes(self.rest.len()))
        }
    }
}

/// A decoded name-list, kept as the original comma-separated text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NameList<'a>(pub &'a str);

impl<'a> NameList<'a> {
    pub fn iter(&self) -> impl Iterator<Item = &'a str> {
        let s = self.0;
        s.split(',').filter(|n| !n.is_empty())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.iter().any(|n| n == name)
    }

    pub fn as_str(&self) -> &'a str {
        self.0
    }
}

pub fn put_u8(out: &mut Vec<u8>, v: u8) {
    out.push(v);
}

pub fn put_bool(out: &mut Vec<u8>, v: bool) {
    out.push(u8::from(v));
}

pub fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Append a `string`. Callers never pass more than 4 GiB; the length saturates if they do.
pub fn put_string(out: &mut Vec<u8>, v: &[u8]) {
    put_u32(out, u32::try_from(v.len()).unwrap_or(u32::MAX));
    out.extend_from_slice(v);
}

/// Append a `name-list` from its parts, comma-joined without an intermediate allocation.
pub fn put_name_list<S: AsRef<str>>(out: &mut Vec<u8>, names: &[S]) {
    let len: usize =
        names.iter().map(|n| n.as_ref().len()).sum::<usize>() + names.len().saturating_sub(1);
    put_u32(out, u32::try_from(len).unwrap_or(u32::MAX));
    for (i, n) in names.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(n.as_ref().as_bytes());
    }
}

/// Append an unsigned big-endian integer as an `mpint`: leading zeros stripped, a zero byte
/// prepended when the top bit is set so it does not read as negative.
pub fn put_mpint_unsigned(out: &mut Vec<u8>, v: &[u8]) {
    let first_nonzero = v.iter().position(|&b| b != 0).unwrap_or(v.len());
    let v = v.get(first_nonzero..).unwrap_or_default();
    let pad = v.first().is_some_and(|&b| b & 0x80 != 0);
    put_u32(
        out,
        u32::try_from(v.len() + usize::from(pad)).unwrap_or(u32::MAX),
    );
    if pad {
        out.push(0);
    }
    out.extend_from_slice(v);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_round_trips_and_finish_rejects_trailing_bytes() {
        let mut out = Vec::new();
        put_string(&mut out, b"hello");
        put_u8(&mut out, 7);
        let mut r = Reader::new(&out);
        assert_eq!(r.string().unwrap(), b"hello");
        assert_eq!(r.clone().finish(), Err(WireError::TrailingBytes(1)));
        assert_eq!(r.u8().unwrap(), 7);
        r.finish().unwrap();
    }

    #[test]
    fn truncated_string_is_an_error_not_a_panic() {
        let mut r = Reader::new(&[0, 0, 0, 9, b'a']);
        assert_eq!(r.string(), Err(WireError::Truncated("string")));
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(r.string(), Err(WireError::TooLong("string")));
    }

    #[test]
    fn name_list_round_trips_and_rejects_empty_names() {
        let mut out = Vec::new();
        put_name_list(&mut out, &["a", "b-c@d"]);
        let mut r = Reader::new(&out);
        let l = r.name_list().unwrap();
        assert_eq!(l.iter().collect::<Vec<_>>(), vec!["a", "b-c@d"]);
        let mut out = Vec::new();
        put_string(&mut out, b"a,,b");
        assert!(Reader::new(&out).name_list().is_err());
        let mut out = Vec::new();
        put_name_list::<&str>(&mut out, &[]);
        assert_eq!(Reader::new(&out).name_list().unwrap().iter().count(), 0);
    }

    #[test]
    fn mpint_strips_zeros_and_pads_high_bit() {
        let mut out = Vec::new();
        put_mpint_unsigned(&mut out, &[0, 0, 0x80, 1]);
        assert_eq!(out, vec![0, 0, 0, 3, 0, 0x80, 1]);
        let mut out = Vec::new();
        put_mpint_unsigned(&mut out, &[0, 0]);
        assert_eq!(out, vec![0, 0, 0, 0]);
    }
}
