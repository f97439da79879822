//! The binary packet layer (RFC 4253 §6): arbitrary bytes into `PacketDecoder::decode`, in
//! clear and under each cipher, plus the property that whatever `PacketEncoder` writes,
//! the matching decoder reads back identically (payload, wire length, sequence number).
//!
//! Input: byte 0 picks the mode (clear or a cipher), byte 1 how the rest is used
//! (decode as wire bytes, or split into payloads for the round trip).

#![no_main]

use dungeongate::ssh::cipher::{CipherAlg, OpeningKey, SealingKey};
use dungeongate::ssh::transport::packet::{PacketDecoder, PacketEncoder, MAX_PACKET_LEN};
use dungeongate_fuzz::Chooser;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [mode, how, rest @ ..] = data else { return };
    let alg = match mode % 4 {
        0 => None,
        n => CipherAlg::ALL.get(usize::from(n - 1)).copied(),
    };
    if how & 1 == 0 {
        decode_garbage(alg, *how, rest);
    } else {
        round_trip(alg, *how, rest);
    }
});

/// A decoder/encoder pair sharing fixed keys for `alg` (or clear).
fn pair(alg: Option<CipherAlg>, strict: bool) -> (PacketEncoder, PacketDecoder) {
    let mut enc = PacketEncoder::default();
    let mut dec = PacketDecoder::default();
    if let Some(alg) = alg {
        let key: Vec<u8> = (0..alg.key_len()).map(|i| i as u8).collect();
        let iv: Vec<u8> = (0..alg.iv_len()).map(|i| (i * 7) as u8).collect();
        let (Ok(s), Ok(o)) = (
            SealingKey::new(alg, &key, &iv),
            OpeningKey::new(alg, &key, &iv),
        ) else {
            panic!("fixed keys of the right length are refused for {alg:?}");
        };
        enc.install_keys(s, strict);
        dec.install_keys(o, strict);
    }
    (enc, dec)
}

/// Decode packets from arbitrary bytes until the decoder wants more or refuses.
fn decode_garbage(alg: Option<CipherAlg>, how: u8, bytes: &[u8]) {
    let (_, mut dec) = pair(alg, how & 2 != 0);
    let mut buf = bytes.to_vec();
    let mut at = 0usize;
    while let Some(window) = buf.get_mut(at..) {
        let len = window.len();
        let seq = dec.next_seq();
        match dec.decode(window) {
            Ok(Some(p)) => {
                assert!(p.wire_len <= len, "wire_len {} beyond {len}", p.wire_len);
                assert!(p.wire_len <= 4 + MAX_PACKET_LEN + 16);
                assert!(p.payload.start <= p.payload.end && p.payload.end <= p.wire_len);
                assert!(!p.payload.is_empty(), "empty payload accepted");
                assert_eq!(p.seq, seq);
                assert_eq!(dec.next_seq(), seq.wrapping_add(1));
                at += p.wire_len;
            }
            Ok(None) => {
                // "Need more" must not be said about a buffer that already holds a
                // maximal packet.
                assert!(len < 4 + MAX_PACKET_LEN + 16);
                break;
            }
            Err(_) => break,
        }
    }
}

/// Encode payloads cut from `bytes`, then decode them back, whole and byte-split.
fn round_trip(alg: Option<CipherAlg>, how: u8, bytes: &[u8]) {
    let (mut enc, mut dec) = pair(alg, how & 2 != 0);
    let mut c = Chooser::new(&[how]);
    let mut payloads = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let n = c.chunk_len().min(rest.len());
        let (p, r) = rest.split_at(n);
        payloads.push(p);
        rest = r;
    }
    // A payload that is large is made from repeating the input, to cover big packets.
    if how & 0x1c == 0x1c && !bytes.is_empty() {
        let big: Vec<u8> = bytes.iter().copied().cycle().take(32 * 1024 + 13).collect();
        check_one(&mut enc, &mut dec, &big);
    }
    for p in payloads {
        check_one(&mut enc, &mut dec, p);
    }
}

fn check_one(enc: &mut PacketEncoder, dec: &mut PacketDecoder, payload: &[u8]) {
    let mut wire = Vec::new();
    enc.encode(&mut wire, |o| o.extend_from_slice(payload));
    let seq = dec.next_seq();
    // Every proper prefix is "need more", never an error or a packet.
    for cut in [0, 1, 3, 4, 5, wire.len() / 2, wire.len().saturating_sub(1)] {
        if cut < wire.len() {
            let mut prefix = wire.get(..cut).unwrap_or_default().to_vec();
            let r = dec.decode(&mut prefix);
            assert!(
                matches!(r, Ok(None)),
                "prefix of {cut}/{} gave {r:?}",
                wire.len()
            );
            assert_eq!(dec.next_seq(), seq, "a prefix advanced the sequence number");
        }
    }
    // Extra bytes after the packet are left alone.
    wire.extend_from_slice(b"trailing");
    let p = match dec.decode(&mut wire) {
        Ok(Some(p)) => p,
        other => panic!(
            "own packet of {} bytes not decoded: {other:?}",
            payload.len()
        ),
    };
    assert_eq!(p.seq, seq);
    assert_eq!(p.wire_len, wire.len() - b"trailing".len());
    assert_eq!(wire.get(p.payload.clone()), Some(payload));
}
