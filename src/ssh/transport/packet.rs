//! Binary packet protocol (RFC 4253 §6) with the AEAD ciphers of OpenSSH's PROTOCOL files.
//!
//! Packets are opened and sealed in place: the decoder decrypts inside the connection's input
//! buffer and hands back where the payload lies; the encoder writes header, payload and
//! padding straight into the transmit buffer and seals that range. Neither allocates.
//! The packet length is checked against [`MAX_PACKET_LEN`] before anything waits for or
//! allocates the body.

use crate::ssh::cipher::{OpeningKey, SealingKey, TAG_LEN};
use crate::ssh::error::Error;
use std::ops::Range;

/// Largest packet_length we accept (RFC 4253 §6.1 asks for at least 35000; 256 KiB covers
/// every client's 32 KiB channel data and large KEX messages with room to spare).
pub const MAX_PACKET_LEN: usize = 256 * 1024;

/// Smallest block size; also the block of the unencrypted phase.
const MIN_BLOCK: usize = 8;

/// A complete, authenticated, decrypted packet inside the input buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedPacket {
    /// Where the payload lies, relative to the slice given to [`PacketDecoder::decode`].
    pub payload: Range<usize>,
    /// Bytes this packet occupied on the wire (to drop from the buffer afterwards).
    pub wire_len: usize,
    /// The packet's sequence number.
    pub seq: u32,
}

/// Reads packets from the peer.
#[derive(Debug, Default)]
pub struct PacketDecoder {
    /// Present once NEWKEYS switched on encryption from the peer.
    opening: Option<OpeningKey>,
    /// Sequence number of the next packet (RFC 4253 §6.4; reset by strict KEX).
    seq: u32,
    /// Packets decoded since the current keys were installed, for the "first KEX" checks.
    pub packets_since_keys: u64,
    /// Bytes decoded since the current keys were installed, for re-key accounting.
    pub bytes_since_keys: u64,
}

impl PacketDecoder {
    /// Decode one packet from the start of `buf` if it is complete. `buf` is decrypted in place.
    pub fn decode(&mut self, buf: &mut [u8]) -> Result<Option<OpenedPacket>, Error> {
        let Some(first4) = buf.get(..4) else {
            return Ok(None);
        };
        let mut len_bytes = [0u8; 4];
        len_bytes.copy_from_slice(first4);
        let (packet_len, block, tag_len) = match &self.opening {
            Some(key) => (
                key.decrypt_length(self.seq, len_bytes) as usize,
                key.block_size(),
                TAG_LEN,
            ),
            None => (u32::from_be_bytes(len_bytes) as usize, MIN_BLOCK, 0),
        };
        if packet_len > MAX_PACKET_LEN {
            return Err(Error::PacketTooLong(packet_len));
        }
        // padding_length (1) + at least a message byte + 4 bytes of padding.
        if packet_len < 1 + 1 + 4 {
            return Err(Error::Protocol("packet too short"));
        }
        let aligned_len = if self.opening.is_some() {
            packet_len
        } else {
            packet_len + 4
        };
        if aligned_len % block != 0 {
            return Err(Error::Protocol(
                "packet length is not a multiple of the block size",
            ));
        }
        let wire_len = 4 + packet_len + tag_len;
        let Some(packet) = buf.get_mut(..wire_len) else {
            return Ok(None);
        };
        if let Some(key) = &mut self.opening {
            let (body, tag) = packet.split_at_mut(4 + packet_len);
            let mut tag_arr = [0u8; TAG_LEN];
            tag_arr.copy_from_slice(tag);
            key.open_in_place(self.seq, body, &tag_arr)
                .map_err(|_| Error::MacMismatch)?;
        }
        let padding = usize::from(packet.get(4).copied().unwrap_or(0));
        if padding < 4 || padding + 1 >= packet_len {
            return Err(Error::Protocol("bad padding length"));
        }
        let payload = 5..4 + packet_len - padding;
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        self.packets_since_keys = self.packets_since_keys.saturating_add(1);
        self.bytes_since_keys = self.bytes_since_keys.saturating_add(wire_len as u64);
        Ok(Some(OpenedPacket {
            payload,
            wire_len,
            seq,
        }))
    }

    /// Switch to new keys after the peer's NEWKEYS.
    pub fn install_keys(&mut self, key: OpeningKey, reset_seq: bool) {
        self.opening = Some(key);
        if reset_seq {
            self.seq = 0;
        }
        self.packets_since_keys = 0;
        self.bytes_since_keys = 0;
    }

    /// Sequence number the next packet will carry.
    pub fn next_seq(&self) -> u32 {
        self.seq
    }
}

/// Writes packets to the peer.
#[derive(Debug, Default)]
pub struct PacketEncoder {
    /// Present once our NEWKEYS switched on encryption towards the peer.
    sealing: Option<SealingKey>,
    /// Sequence number of the next packet we send.
    seq: u32,
    /// Bytes sent since the current keys were installed, for re-key accounting.
    pub bytes_since_keys: u64,
}

impl PacketEncoder {
    /// Append one packet to `out`; `write_payload` appends the payload (message byte first).
    pub fn encode(&mut self, out: &mut Vec<u8>, write_payload: impl FnOnce(&mut Vec<u8>)) {
        let start = out.len();
        out.extend_from_slice(&[0u8; 5]);
        write_payload(out);
        let payload_len = out.len() - start - 5;
        let block = self
            .sealing
            .as_ref()
            .map_or(MIN_BLOCK, SealingKey::block_size);
        // AEAD ciphers leave the length field out of the alignment; the clear phase counts it.
        let counted = if self.sealing.is_some() { 1 } else { 5 } + payload_len;
        let mut padding = block - counted % block;
        if padding < 4 {
            padding += block;
        }
        out.resize(out.len() + padding, 0);
        let packet_len = 1 + payload_len + padding;
        let l = (packet_len as u32).to_be_bytes();
        let header = [l[0], l[1], l[2], l[3], padding as u8];
        if let Some(h) = out.get_mut(start..start + 5) {
            h.copy_from_slice(&header);
        }
        if let Some(key) = &mut self.sealing {
            let mut tag = [0u8; TAG_LEN];
            if let Some(packet) = out.get_mut(start..) {
                // Sealing fails only for a packet shorter than its header, which the
                // padding above rules out.
                let _ = key.seal_in_place(self.seq, packet, &mut tag);
            }
            out.extend_from_slice(&tag);
        }
        self.seq = self.seq.wrapping_add(1);
        self.bytes_since_keys = self
            .bytes_since_keys
            .saturating_add((out.len() - start) as u64);
    }

    /// Switch to new keys right after sending our NEWKEYS.
    pub fn install_keys(&mut self, key: SealingKey, reset_seq: bool) {
        self.sealing = Some(key);
        if reset_seq {
            self.seq = 0;
        }
        self.bytes_since_keys = 0;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::ssh::cipher::CipherAlg;

    /// An encoder and a decoder keyed alike for `alg`.
    fn keyed_pair(alg: CipherAlg) -> (PacketEncoder, PacketDecoder) {
        let key = vec![7u8; alg.key_len()];
        let iv = vec![9u8; alg.iv_len()];
        let mut enc = PacketEncoder::default();
        let mut dec = PacketDecoder::default();
        enc.install_keys(SealingKey::new(alg, &key, &iv).unwrap(), false);
        dec.install_keys(OpeningKey::new(alg, &key, &iv).unwrap(), false);
        (enc, dec)
    }

    #[test]
    fn clear_packets_round_trip() {
        let mut enc = PacketEncoder::default();
        let mut dec = PacketDecoder::default();
        let mut buf = Vec::new();
        enc.encode(&mut buf, |o| o.extend_from_slice(b"\x14hello"));
        assert_eq!(buf.len() % 8, 0);
        let p = dec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(&buf[p.payload.clone()], b"\x14hello");
        assert_eq!(p.wire_len, buf.len());
    }

    #[test]
    fn sealed_packets_round_trip_for_every_cipher_and_size() {
        for alg in CipherAlg::ALL {
            let (mut enc, mut dec) = keyed_pair(alg);
            for size in [1usize, 15, 16, 17, 1000, 32768] {
                let mut buf = Vec::new();
                let payload: Vec<u8> = (0..size).map(|i| i as u8).collect();
                enc.encode(&mut buf, |out| out.extend_from_slice(&payload));
                // A partial packet is not decoded.
                assert_eq!(dec.decode(&mut buf.clone()[..buf.len() - 1]).unwrap(), None);
                let p = dec.decode(&mut buf).unwrap().unwrap();
                assert_eq!(&buf[p.payload.clone()], &payload[..], "{alg:?} {size}");
            }
        }
    }

    #[test]
    fn a_flipped_bit_fails_authentication() {
        for alg in CipherAlg::ALL {
            let (mut enc, mut dec) = keyed_pair(alg);
            let mut buf = Vec::new();
            enc.encode(&mut buf, |out| out.extend_from_slice(b"\x5etampered"));
            let last = buf.len() - 1;
            buf[last - 20] ^= 1;
            assert!(matches!(dec.decode(&mut buf), Err(Error::MacMismatch)));
        }
    }

    #[test]
    fn packet_length_0xffffffff_is_refused_before_waiting_for_the_body() {
        let mut dec = PacketDecoder::default();
        let mut buf = vec![0xff, 0xff, 0xff, 0xff, 0];
        assert!(matches!(dec.decode(&mut buf), Err(Error::PacketTooLong(_))));
    }

    #[test]
    fn misaligned_or_short_packets_are_refused() {
        let mut dec = PacketDecoder::default();
        assert!(dec.decode(&mut [0, 0, 0, 5, 4, 1, 0, 0, 0]).is_err());
        let mut dec = PacketDecoder::default();
        let mut buf = vec![0, 0, 0, 13];
        buf.resize(17, 0);
        assert!(dec.decode(&mut buf).is_err());
    }
}
