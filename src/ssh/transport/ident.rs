//! Protocol version exchange (RFC 4253 §4.2).
//!
//! The identification line is capped at 255 bytes including CR LF, as the RFC says; a peer
//! that sends more without a line end is cut off there, so a 10 MB "identification" costs us
//! 255 bytes of buffer, not 10 MB.

use crate::ssh::error::Error;

/// Longest identification line (RFC 4253 §4.2), CR LF included.
pub const MAX_IDENT_LINE: usize = 255;

/// Outcome of scanning the start of the input for the client's identification line.
#[derive(Debug, PartialEq, Eq)]
pub enum IdentScan {
    /// Need more bytes.
    Incomplete,
    /// Found it: the line without its CR LF, and how many input bytes it used.
    Complete { line_len: usize, consumed: usize },
}

/// Look for the client's identification line at the start of `input`.
///
/// Clients must send the version line first (only servers may send other lines before it), so
/// anything that does not start with `SSH-` is refused, as is a version other than 2.0 (or
/// the 1.99 compatibility form).
pub fn scan_client_ident(input: &[u8]) -> Result<IdentScan, Error> {
    let window = input
        .get(..input.len().min(MAX_IDENT_LINE))
        .unwrap_or(input);
    if !b"SSH-".starts_with(window.get(..window.len().min(4)).unwrap_or(window)) {
        return Err(Error::BadIdentification(
            "the first line is not an SSH version line",
        ));
    }
    let Some(lf) = window.iter().position(|&b| b == b'\n') else {
        if input.len() >= MAX_IDENT_LINE {
            return Err(Error::BadIdentification(
                "identification line longer than 255 bytes",
            ));
        }
        return Ok(IdentScan::Incomplete);
    };
    let line = window.get(..lf).unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if !(line.starts_with(b"SSH-2.0-") || line.starts_with(b"SSH-1.99-")) {
        return Err(Error::BadIdentification("protocol version is not 2.0"));
    }
    if line.iter().any(|&b| !(0x20..0x7f).contains(&b)) {
        return Err(Error::BadIdentification(
            "identification line has non-printable bytes",
        ));
    }
    Ok(IdentScan::Complete {
        line_len: line.len(),
        consumed: lf + 1,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn openssh_identification_is_accepted() {
        let s = b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\nrest";
        assert_eq!(
            scan_client_ident(s).unwrap(),
            IdentScan::Complete {
                line_len: 30,
                consumed: 32
            }
        );
    }

    #[test]
    fn bare_lf_line_end_is_accepted() {
        assert!(matches!(
            scan_client_ident(b"SSH-2.0-x\n").unwrap(),
            IdentScan::Complete {
                line_len: 9,
                consumed: 10
            }
        ));
    }

    #[test]
    fn partial_line_waits_for_more() {
        assert_eq!(
            scan_client_ident(b"SSH-2.0-Op").unwrap(),
            IdentScan::Incomplete
        );
        assert_eq!(scan_client_ident(b"SS").unwrap(), IdentScan::Incomplete);
    }

    #[test]
    fn ten_megabyte_identification_line_is_refused_after_255_bytes() {
        let mut s = b"SSH-2.0-".to_vec();
        s.resize(10 * 1024 * 1024, b'a');
        assert!(scan_client_ident(&s).is_err());
        assert!(scan_client_ident(&s[..255]).is_err());
        assert_eq!(scan_client_ident(&s[..254]).unwrap(), IdentScan::Incomplete);
    }

    #[test]
    fn http_request_and_ssh1_are_refused() {
        assert!(scan_client_ident(b"GET / HTTP/1.1\r\n").is_err());
        assert!(scan_client_ident(b"SSH-1.5-old\r\n").is_err());
        assert!(scan_client_ident(b"SSH-2.0-a\x01b\r\n").is_err());
    }
}
