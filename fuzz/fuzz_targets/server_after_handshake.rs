//! The server after a real handshake: our own `Client` completes KEX, userauth and (usually)
//! opens a session in memory, then the input's records are sealed with the client's keys and
//! fed to the server. Random wire bytes never get past the MAC; these reach userauth,
//! channel, re-key and flow-control code with arbitrary payloads.
//!
//! Input: byte 0 is a [`SessionChoice`] (cipher, auth method, session, strict KEX); then
//! records `op, len, bytes` (see [`dungeongate_fuzz::records`]); an op's high bit is the
//! application's answer to auth requests raised while that record is processed.

#![no_main]

use dungeongate::ssh::cipher::CipherAlg;
use dungeongate::ssh::client::{Client, ClientAuth, ClientConfig, ClientEvent};
use dungeongate::ssh::msg::DisconnectReason;
use dungeongate::ssh::server::{ChannelId, Millis, ServerConnection};
use dungeongate_fuzz::{drain, records, settings, Chooser, Op, SessionChoice};
use libfuzzer_sys::fuzz_target;

/// The client's ed25519 key seed.
const KEY: [u8; 32] = [0x5A; 32];

fuzz_target!(|data: &[u8]| {
    let [choice, rest @ ..] = data else { return };
    let choice = SessionChoice::from_byte(*choice);
    let Some(mut s) = Session::handshake(choice, rest) else {
        return;
    };
    // Capped: every record pumps the pair, and long inputs would only slow the search.
    for rec in records(rest).into_iter().take(100) {
        s.accept = rec.op & 0x80 != 0;
        let mut split = false;
        match Op::from_byte(rec.op) {
            Op::Payload => s.client.send_raw_payload(rec.bytes),
            Op::PayloadSplit => {
                s.client.send_raw_payload(rec.bytes);
                split = true;
            }
            Op::ClientData => {
                let _ = s.client.send_data(rec.bytes);
            }
            Op::Timeout => {
                let step = rec
                    .bytes
                    .iter()
                    .fold(0u64, |a, &b| a.wrapping_mul(251) ^ u64::from(b));
                s.now = s.now.saturating_add(step % 10_000_000);
                s.server.handle_timeout(s.now);
            }
            Op::ServerSend => {
                let ch = ChannelId(u32::from(rec.bytes.first().copied().unwrap_or(0) % 4));
                let sent = s.server.send_data(ch, rec.bytes);
                assert!(sent <= rec.bytes.len());
                assert!(s.server.send_window(ch) <= u32::MAX as usize);
            }
            Op::ServerEof => {
                let ch = ChannelId(u32::from(rec.bytes.first().copied().unwrap_or(0) % 4));
                s.server.send_exit_status(ch, 0);
                s.server.send_eof(ch);
            }
            Op::ServerClose => {
                let ch = ChannelId(u32::from(rec.bytes.first().copied().unwrap_or(0) % 4));
                s.server.close_channel(ch);
            }
            Op::Rekey => {
                if s.client_ok {
                    s.client.send_kexinit();
                }
            }
            Op::Disconnect => s.server.disconnect(DisconnectReason::ByApplication, "fuzz"),
            Op::Corrupt => s.corrupt = Some(rec.bytes.first().copied().unwrap_or(0)),
        }
        s.pump(split);
        if s.server.is_closed() {
            assert!(s.server.poll_event().is_none());
            break;
        }
    }
});

/// A client/server pair in memory.
struct Session {
    server: ServerConnection,
    client: Client,
    /// False once the client gave up on the server's output (fuzzed states confuse it);
    /// the server is still fed what the client queued.
    client_ok: bool,
    now: Millis,
    /// The application's answer to auth requests during the current record.
    accept: bool,
    /// Flip a byte (at this index, modulo length) of the next client transmission.
    corrupt: Option<u8>,
    /// Chunk splits for `PayloadSplit`.
    chooser: Chooser,
}

impl Session {
    /// Log in and (if chosen) open a session; `None` only if the input is unusable.
    fn handshake(choice: SessionChoice, seed: &[u8]) -> Option<Session> {
        let auth = match choice.auth {
            0 => ClientAuth::None,
            1 => ClientAuth::Password("fuzz password".into()),
            2 => ClientAuth::Ed25519 {
                seed: KEY,
                query_first: false,
            },
            _ => ClientAuth::Ed25519 {
                seed: KEY,
                query_first: true,
            },
        };
        let mut cfg = ClientConfig::new("fuzzer", auth);
        cfg.cipher = CipherAlg::ALL.get(choice.cipher).copied()?;
        cfg.open_session = choice.open_session;
        cfg.strict_kex = choice.strict_kex;
        let mut s = Session {
            server: ServerConnection::new(settings(), 0),
            client: Client::new(cfg),
            client_ok: true,
            now: 0,
            accept: true,
            corrupt: None,
            chooser: Chooser::new(seed.get(..8).unwrap_or(seed)),
        };
        s.pump(false);
        let ev = &s.client.events;
        assert!(
            s.client_ok && ev.contains(&ClientEvent::AuthSuccess),
            "handshake failed: {choice:?} {ev:?}"
        );
        if choice.open_session {
            assert!(s.client.channel().is_some(), "session not opened: {ev:?}");
            let oks = ev
                .iter()
                .filter(|e| **e == ClientEvent::RequestSuccess)
                .count();
            assert_eq!(oks, 2, "pty-req and shell not both accepted: {ev:?}");
        }
        Some(s)
    }

    /// Move bytes both ways until nothing moves (bounded: a fuzzed state may ping-pong).
    fn pump(&mut self, split: bool) {
        for _ in 0..64 {
            let mut moved = false;
            let to_client = self.server.transmit().to_vec();
            self.server.advance_transmit(to_client.len());
            if !to_client.is_empty() {
                moved = true;
                if self.client_ok && self.client.handle_input(&to_client).is_err() {
                    self.client_ok = false;
                }
            }
            let mut to_server = Vec::new();
            self.client.poll_transmit(&mut to_server);
            if let Some(at) = self.corrupt.take() {
                let len = to_server.len().max(1);
                if let Some(b) = to_server.get_mut(usize::from(at) % len) {
                    *b ^= 0x40;
                }
            }
            let accept = self.accept;
            let mut rest = to_server.as_slice();
            while !rest.is_empty() {
                moved = true;
                let n = if split {
                    self.chooser.chunk_len().min(rest.len())
                } else {
                    rest.len()
                };
                let (chunk, r) = rest.split_at(n);
                rest = r;
                self.server.handle_input(chunk, self.now);
                drain(&mut self.server, &mut || accept, true);
            }
            moved |= drain(&mut self.server, &mut || accept, true).events > 0;
            if !moved {
                return;
            }
        }
    }
}
