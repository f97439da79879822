//! Every message decoder (`msg::*::decode`, `msg::decode_*`) on arbitrary bytes, the other
//! parsers of peer or file input (identification line, public key blobs and signatures,
//! authorized_keys lines, host key files, KEX publics), and re-encoding round trips for the
//! messages we also write.
//!
//! Input: the whole input is given to every parser (they are cheap); byte 0 also picks the
//! KEX algorithm whose client-public parser runs.

#![no_main]

use dungeongate::ssh::hostkey::HostKey;
use dungeongate::ssh::kex::{self, KexAlg};
use dungeongate::ssh::msg::{self, ChannelRequest, KexInit, MsgType, UserauthRequest};
use dungeongate::ssh::pubkey::{self, UserKeyAlg};
use dungeongate::ssh::transport::ident::{scan_client_ident, IdentScan};
use dungeongate::ssh::wire::{self, Reader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    messages(data);
    reader(data);
    keys_and_lines(data);
});

/// Decoders read the payload after the message byte; where we have an encoder, decoding then
/// encoding gives back the same bytes.
fn messages(p: &[u8]) {
    let body = p.get(1..).unwrap_or_default();
    if let Ok(k) = KexInit::decode(p) {
        assert_eq!(k.cookie.len(), 16);
        for list in [
            k.kex,
            k.host_key,
            k.cipher_c2s,
            k.cipher_s2c,
            k.mac_c2s,
            k.mac_s2c,
        ] {
            assert!(list.iter().count() <= wire::MAX_NAME_LIST_ENTRIES);
            let _ = list.contains("curve25519-sha256");
        }
    }
    if let Ok(q) = msg::decode_kex_ecdh_init(p) {
        let mut out = Vec::new();
        msg::encode_kex_ecdh_init(&mut out, q);
        assert_eq!(out.get(1..), Some(body));
    }
    if let Ok(r) = msg::decode_kex_ecdh_reply(p) {
        let mut out = Vec::new();
        msg::encode_kex_ecdh_reply(&mut out, r.k_s, r.q_s, r.signature);
        assert_eq!(out.get(1..), Some(body));
    }
    if msg::decode_empty(p).is_ok() {
        assert!(body.is_empty());
    }
    let _ = msg::decode_disconnect(p);
    if let Ok(name) = msg::decode_service_request(p) {
        let mut out = Vec::new();
        msg::encode_service_accept(&mut out, name);
        assert_eq!(out.get(1..), Some(body));
    }
    if let Ok(u) = UserauthRequest::decode(p) {
        let _ = (u.user.len(), u.service.len(), format!("{:?}", u.method));
    }
    if let Ok((methods, partial)) = msg::decode_userauth_failure(p) {
        let names: Vec<&str> = methods.iter().collect();
        let mut out = Vec::new();
        msg::encode_userauth_failure(&mut out, &names, partial);
        // Any non-zero boolean reads as TRUE (RFC 4251 §5), so compare what decodes.
        let again = msg::decode_userauth_failure(&out).map(|(m, b)| (m.as_str(), b));
        assert_eq!(again, Ok((methods.as_str(), partial)));
    }
    if let Ok(g) = msg::decode_global_request(p) {
        let _ = (g.name.len(), g.want_reply);
    }
    if let Ok(o) = msg::decode_channel_open(p) {
        if o.channel_type == b"session" {
            let mut out = Vec::new();
            msg::encode_channel_open_session(
                &mut out,
                o.sender_channel,
                o.initial_window,
                o.max_packet,
            );
            assert_eq!(out.get(1..), Some(body));
        }
    }
    if let Ok(c) = msg::decode_channel_open_confirmation(p) {
        let mut out = Vec::new();
        msg::encode_channel_open_confirmation(
            &mut out,
            c.recipient,
            c.sender,
            c.window,
            c.max_packet,
        );
        assert_eq!(out.get(1..), Some(body));
    }
    if let Ok(c) = msg::decode_channel_only(p) {
        let mut out = Vec::new();
        msg::encode_channel_only(&mut out, MsgType::ChannelEof, c);
        assert_eq!(out.get(1..), Some(body));
    }
    if let Ok((c, n)) = msg::decode_window_adjust(p) {
        let mut out = Vec::new();
        msg::encode_window_adjust(&mut out, c, n);
        assert_eq!(out.get(1..), Some(body));
    }
    if let Ok((c, d)) = msg::decode_channel_data(p) {
        let mut out = Vec::new();
        msg::encode_channel_data_header(&mut out, c, d.len() as u32);
        out.extend_from_slice(d);
        assert_eq!(out.get(1..), Some(body));
    }
    let _ = msg::decode_channel_extended_data(p);
    if let Ok(r) = ChannelRequest::decode(p) {
        let _ = (r.recipient, r.want_reply);
        if let msg::ChannelRequestKind::Shell = r.request {
            let mut out = Vec::new();
            msg::encode_channel_request_header(&mut out, r.recipient, "shell", r.want_reply);
            let again = ChannelRequest::decode(&out).map(|a| (a.recipient, a.want_reply));
            assert_eq!(again, Ok((r.recipient, r.want_reply)));
        }
    }
    let _ = MsgType::from_u8(p.first().copied().unwrap_or(0)).map(MsgType::name);
}

/// The primitive reader: every field kind, until the input runs out or is refused.
fn reader(p: &[u8]) {
    let mut r = Reader::new(p);
    for (i, &b) in p.iter().enumerate().take(64) {
        let before = r.remaining();
        let ok = match (b.wrapping_add(i as u8)) % 7 {
            0 => r.u8().is_ok(),
            1 => r.bool().is_ok(),
            2 => r.u32().is_ok(),
            3 => r.u64().is_ok(),
            4 => r
                .string()
                .map(|s| assert!(s.len() <= wire::MAX_STRING_LEN))
                .is_ok(),
            5 => r.name_list().is_ok(),
            _ => r.mpint().is_ok(),
        };
        assert!(r.remaining() <= before);
        if !ok {
            break;
        }
    }
    let _ = r.finish();
    // Writers and the reader agree on strings and mpints.
    let mut out = Vec::new();
    wire::put_string(&mut out, p);
    wire::put_mpint_unsigned(&mut out, p);
    let mut r = Reader::new(&out);
    assert_eq!(r.string().ok(), Some(p));
    assert!(r.mpint().is_ok());
    assert!(r.finish().is_ok());
}

/// Parsers of key material and lines.
fn keys_and_lines(p: &[u8]) {
    match scan_client_ident(p) {
        Ok(IdentScan::Complete { line_len, consumed }) => {
            assert!(line_len < consumed && consumed <= p.len().min(255));
        }
        Ok(IdentScan::Incomplete) => assert!(p.len() < 255),
        Err(_) => {}
    }
    let _ = pubkey::key_type_of_blob(p);
    for alg in [
        UserKeyAlg::Ed25519,
        UserKeyAlg::EcdsaP256,
        UserKeyAlg::RsaSha256,
    ] {
        let _ = pubkey::check_alg_matches_blob(alg.name(), p);
        // Split the input into key blob and signature blob at a point it chooses.
        let cut = usize::from(p.first().copied().unwrap_or(0)).min(p.len());
        let (k, s) = p.split_at(cut);
        let _ = pubkey::verify(alg, k, s, b"signed data");
    }
    if let Ok(text) = std::str::from_utf8(p) {
        let _ = pubkey::parse_authorized_key_line(text);
        let _ = HostKey::from_openssh_private(text);
    }
    let alg = KexAlg::ALL
        .get(usize::from(p.first().copied().unwrap_or(0)) % KexAlg::ALL.len())
        .copied();
    if let Some(alg) = alg {
        let _ = kex::server_respond(alg, p.get(1..).unwrap_or_default());
    }
}
