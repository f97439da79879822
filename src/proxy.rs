//! The PROXY protocol, version 2 (HAProxy's `send-proxy-v2`, cloud load balancers): the
//! binary header a trusted proxy puts before the client's bytes to say who the client is.
//! Sans-io: bytes in, the client's address and the header's length out.
//!
//! Layout: a 12-byte signature, a version/command byte (`0x21` PROXY, `0x20` LOCAL: the
//! proxy's own health check), a family/transport byte (`0x11` TCP over IPv4, `0x21` TCP over
//! IPv6), a big-endian length, then source and destination addresses and ports, then TLVs
//! (ignored).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use thiserror::Error;

const SIGNATURE: [u8; 12] = [
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
];
/// Fixed part: signature, version/command, family, length.
const FIXED: usize = 16;
/// Longest address block (with TLVs) we accept; real headers are a few dozen bytes.
const MAX_BLOCK: usize = 512;

/// What a complete header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The client, for a proxied TCP connection; `None` for LOCAL (the proxy itself
    /// connecting, e.g. a health check) or an address family we do not use.
    pub source: Option<SocketAddr>,
    /// Bytes of the header, to drop before the client's own bytes.
    pub len: usize,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ProxyError {
    #[error("the connection does not start with a PROXY protocol v2 header")]
    NoHeader,
    #[error("unsupported PROXY protocol version or command {0:#04x}")]
    Version(u8),
    #[error("PROXY protocol header too long ({0} bytes)")]
    TooLong(usize),
    #[error("PROXY protocol address block too short for its family")]
    Truncated,
}

/// Parse the start of a connection: `Ok(None)` while more bytes are needed.
pub fn parse(buf: &[u8]) -> Result<Option<Header>, ProxyError> {
    let sig_len = buf.len().min(SIGNATURE.len());
    if buf.get(..sig_len) != SIGNATURE.get(..sig_len) {
        return Err(ProxyError::NoHeader);
    }
    let Some(fixed) = buf.get(..FIXED) else {
        return Ok(None);
    };
    let (ver_cmd, family) = (fixed[12], fixed[13]);
    let block = usize::from(u16::from_be_bytes([fixed[14], fixed[15]]));
    if ver_cmd >> 4 != 2 || ver_cmd & 0x0F > 1 {
        return Err(ProxyError::Version(ver_cmd));
    }
    if block > MAX_BLOCK {
        return Err(ProxyError::TooLong(FIXED + block));
    }
    let Some(addresses) = buf.get(FIXED..FIXED + block) else {
        return Ok(None);
    };
    let len = FIXED + block;
    if ver_cmd & 0x0F == 0 {
        return Ok(Some(Header { source: None, len }));
    }
    let source = match family {
        0x11 => {
            let a = addresses.get(..12).ok_or(ProxyError::Truncated)?;
            let ip = Ipv4Addr::new(a[0], a[1], a[2], a[3]);
            Some(SocketAddr::new(
                IpAddr::V4(ip),
                u16::from_be_bytes([a[8], a[9]]),
            ))
        }
        0x21 => {
            let a = addresses.get(..36).ok_or(ProxyError::Truncated)?;
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&a[..16]);
            let ip = Ipv6Addr::from(octets);
            Some(SocketAddr::new(
                IpAddr::V6(ip),
                u16::from_be_bytes([a[32], a[33]]),
            ))
        }
        // UNSPEC, UDP, UNIX: nothing we can count by; the proxy's address stands.
        _ => None,
    };
    Ok(Some(Header { source, len }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(src: [u8; 4], sport: u16, extra_tlv: &[u8]) -> Vec<u8> {
        let mut h = SIGNATURE.to_vec();
        h.push(0x21);
        h.push(0x11);
        h.extend_from_slice(&((12 + extra_tlv.len()) as u16).to_be_bytes());
        h.extend_from_slice(&src);
        h.extend_from_slice(&[10, 0, 0, 1]);
        h.extend_from_slice(&sport.to_be_bytes());
        h.extend_from_slice(&22u16.to_be_bytes());
        h.extend_from_slice(extra_tlv);
        h
    }

    #[test]
    fn an_ipv4_header_names_the_client_and_its_length() {
        let mut bytes = v4([192, 0, 2, 7], 40000, &[0x04, 0x00, 0x01, 0xAA]);
        let header_len = bytes.len();
        bytes.extend_from_slice(b"SSH-2.0-client\r\n");
        let h = parse(&bytes).unwrap().unwrap();
        assert_eq!(h.source, Some("192.0.2.7:40000".parse().unwrap()));
        assert_eq!(h.len, header_len);
        // Any prefix is "not yet".
        for cut in 0..header_len {
            assert_eq!(parse(&bytes[..cut]), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn an_ipv6_header_and_a_local_one() {
        let mut h = SIGNATURE.to_vec();
        h.extend_from_slice(&[0x21, 0x21, 0, 36]);
        let src: Ipv6Addr = "2001:db8::5".parse().unwrap();
        h.extend_from_slice(&src.octets());
        h.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        h.extend_from_slice(&[0x9c, 0x40, 0, 22]);
        assert_eq!(
            parse(&h).unwrap().unwrap().source,
            Some("[2001:db8::5]:40000".parse().unwrap())
        );
        let mut local = SIGNATURE.to_vec();
        local.extend_from_slice(&[0x20, 0x00, 0, 0]);
        assert_eq!(
            parse(&local),
            Ok(Some(Header {
                source: None,
                len: 16
            }))
        );
    }

    #[test]
    fn anything_else_is_refused() {
        assert_eq!(parse(b"SSH-2.0-x\r\n"), Err(ProxyError::NoHeader));
        assert_eq!(
            parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"),
            Err(ProxyError::NoHeader)
        );
        let mut v1 = SIGNATURE.to_vec();
        v1.extend_from_slice(&[0x11, 0x11, 0, 12]);
        assert_eq!(parse(&v1), Err(ProxyError::Version(0x11)));
        let mut long = SIGNATURE.to_vec();
        long.extend_from_slice(&[0x21, 0x11, 0xFF, 0xFF]);
        assert_eq!(parse(&long), Err(ProxyError::TooLong(16 + 65535)));
        let mut short = SIGNATURE.to_vec();
        short.extend_from_slice(&[0x21, 0x11, 0, 4, 1, 2, 3, 4]);
        assert_eq!(parse(&short), Err(ProxyError::Truncated));
    }
}
