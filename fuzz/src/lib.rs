//! Shared pieces of the fuzz targets: a deterministic byte-driven chooser, fixed server
//! settings, the event-draining "application", and the record format of
//! `server_after_handshake` (also used by `examples/gen_corpus.rs` to write seeds).
//!
//! Everything the targets decide (chunk splits, auth answers, clock steps) comes from the
//! input, so a crash file replays the same run.

use dungeongate::ssh::hostkey::HostKey;
use dungeongate::ssh::server::{Event, Millis, ServerConnection, ServerSettings};
use std::rc::Rc;

/// Most bytes the server may hold unprocessed after its events are drained: one maximal
/// packet (256 KiB + length + tag) plus slack, well under the 300 KiB the targets assert.
pub const MAX_BUFFERED: usize = 300 * 1024;

/// A small deterministic chooser fed by input bytes (splitmix64 over a seed).
pub struct Chooser {
    /// Generator state.
    state: u64,
}

impl Chooser {
    /// A chooser seeded from `seed` bytes (any length).
    pub fn new(seed: &[u8]) -> Self {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for &b in seed {
            state = state.rotate_left(8) ^ u64::from(b);
            state = state.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        }
        Chooser { state }
    }

    /// The next 64 pseudo-random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// A chunk length: mostly small, sometimes large, never 0.
    pub fn chunk_len(&mut self) -> usize {
        let shift = self.below(17);
        1 + self.below(1 << shift) as usize
    }

    /// True with probability 1/`n`.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
}

thread_local! {
    /// One set of settings (and host key) per fuzzing process: generating a key per input
    /// would dominate the run time, and the settings are read-only anyway.
    static SETTINGS: Rc<ServerSettings> = build_settings();
}

/// Server settings as the targets use them: the defaults with small limits, so that window
/// exhaustion, re-keying, the channel cap and the auth-try cap are reachable by short inputs,
/// and a banner so that code path runs.
pub fn settings() -> Rc<ServerSettings> {
    SETTINGS.with(Rc::clone)
}

fn build_settings() -> Rc<ServerSettings> {
    let Ok(key) = HostKey::generate() else {
        // Without a host key nothing can run; this is the machine, not the input.
        std::process::abort();
    };
    let mut s = ServerSettings::new(key);
    s.auth_banner = Some("fuzz banner\r\n".into());
    s.max_auth_tries = 4;
    s.login_grace_ms = 120_000;
    s.rekey_bytes = 64 * 1024;
    s.rekey_interval_ms = 600_000;
    s.channel_window = 8 * 1024;
    s.channel_max_packet = 4 * 1024;
    s.max_channels = 3;
    Rc::new(s)
}

/// What the fuzzing application saw while draining; used to keep the run moving.
#[derive(Default)]
pub struct Drained {
    /// The connection reported `Closed`.
    pub closed: bool,
    /// Events seen (for a cap on pathological loops).
    pub events: usize,
}

/// Drain every event, answering auth requests with `decide()` and acting on channel data
/// (consume it, sometimes echo it). Asserts the invariants every target shares.
pub fn drain(
    server: &mut ServerConnection,
    decide: &mut dyn FnMut() -> bool,
    echo: bool,
) -> Drained {
    let mut out = Drained::default();
    loop {
        let mut answer: Option<bool> = None;
        let mut data: Option<(dungeongate::ssh::server::ChannelId, usize, [u8; 64], usize)> = None;
        {
            let Some(ev) = server.poll_event() else { break };
            out.events += 1;
            match ev {
                Event::AuthRequest { user, attempt } => {
                    // The fields must be readable; touch them so a bad range would show.
                    let _ = (user.len(), format!("{attempt:?}").len());
                    answer = Some(decide());
                }
                Event::Data { channel, data: d } => {
                    let mut copy = [0u8; 64];
                    let n = d.len().min(copy.len());
                    if let (Some(dst), Some(src)) = (copy.get_mut(..n), d.get(..n)) {
                        dst.copy_from_slice(src);
                    }
                    data = Some((channel, d.len(), copy, n));
                }
                Event::Closed { .. } => out.closed = true,
                Event::PtyRequest { term, .. } => assert!(term.len() <= 1024),
                Event::Env { name, value, .. } => assert!(name.len() + value.len() <= 1 << 20),
                _ => {}
            }
        }
        if let Some(ok) = answer {
            server.auth_reply(ok);
        }
        if let Some((ch, len, copy, n)) = data {
            if echo {
                let _ = server.send_data(ch, copy.get(..n).unwrap_or_default());
            }
            server.channel_consumed(ch, len);
        }
        assert!(out.events < 1_000_000, "event loop does not end");
    }
    assert!(
        server.buffered_input() < MAX_BUFFERED,
        "server buffers {} bytes after draining",
        server.buffered_input()
    );
    out
}

/// Current time helper: advance `now` by a step chosen by `c` (sometimes past every deadline).
pub fn advance(now: &mut Millis, c: &mut Chooser) {
    *now = now.saturating_add(match c.below(8) {
        0 => 0,
        1..=5 => c.below(1000),
        6 => c.below(200_000),
        _ => 4_000_000,
    });
}

// ----- record format of `server_after_handshake` -----

/// Operations of a `server_after_handshake` record (the low 4 bits of its op byte; the high
/// bit answers the next auth request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Seal the record's bytes as one payload with the client's keys and send it.
    Payload,
    /// Like `Payload`, but deliver the sealed bytes to the server in random splits.
    PayloadSplit,
    /// Client sends channel data through its own API (respects its window).
    ClientData,
    /// Advance the clock (record bytes seed the step) and call `handle_timeout`.
    Timeout,
    /// The application sends the record's bytes on channel 0.
    ServerSend,
    /// The application sends EOF and exit-status on channel 0.
    ServerEof,
    /// The application closes channel 0.
    ServerClose,
    /// The client starts a re-key.
    Rekey,
    /// The application disconnects.
    Disconnect,
    /// Flip the garbage bit: one byte of the next sealed packet is corrupted.
    Corrupt,
}

impl Op {
    /// Decode the low bits of an op byte.
    pub fn from_byte(b: u8) -> Op {
        match b & 0x0f {
            0..=5 => Op::Payload,
            6 => Op::PayloadSplit,
            7 => Op::ClientData,
            8 => Op::Timeout,
            9 => Op::ServerSend,
            10 => Op::ServerEof,
            11 => Op::ServerClose,
            12 => Op::Rekey,
            13 => Op::Disconnect,
            14 => Op::Corrupt,
            _ => Op::Payload,
        }
    }

    /// The canonical op byte of this operation (for seed writers).
    pub fn byte(self) -> u8 {
        match self {
            Op::Payload => 0,
            Op::PayloadSplit => 6,
            Op::ClientData => 7,
            Op::Timeout => 8,
            Op::ServerSend => 9,
            Op::ServerEof => 10,
            Op::ServerClose => 11,
            Op::Rekey => 12,
            Op::Disconnect => 13,
            Op::Corrupt => 14,
        }
    }
}

/// One record: op byte and its bytes.
pub struct Record<'a> {
    /// The op byte as written (high bit: accept the next auth request).
    pub op: u8,
    /// The record's bytes.
    pub bytes: &'a [u8],
}

/// Split `data` into records: `op, len, bytes[len]`; a length byte of 255 is followed by a
/// big-endian u16 length. A truncated last record takes what is left.
pub fn records(mut data: &[u8]) -> Vec<Record<'_>> {
    let mut out = Vec::new();
    while let [op, rest @ ..] = data {
        let (len, rest) = match rest {
            [255, hi, lo, rest @ ..] => (usize::from(u16::from_be_bytes([*hi, *lo])), rest),
            [l, rest @ ..] => (usize::from(*l), rest),
            [] => (0, rest),
        };
        let len = len.min(rest.len());
        let (bytes, rest) = rest.split_at(len);
        out.push(Record { op: *op, bytes });
        data = rest;
    }
    out
}

/// Append one record to a seed file.
pub fn write_record(out: &mut Vec<u8>, op: u8, bytes: &[u8]) {
    out.push(op);
    if bytes.len() < 255 {
        out.push(bytes.len() as u8);
    } else {
        out.push(255);
        let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
    }
    out.extend_from_slice(bytes.get(..usize::from(u16::MAX)).unwrap_or(bytes));
}

/// The first byte of a `server_after_handshake` input: which cipher and auth the client uses.
#[derive(Debug, Clone, Copy)]
pub struct SessionChoice {
    /// Index into `CipherAlg::ALL`.
    pub cipher: usize,
    /// 0 none, 1 password, 2 ed25519 signed, 3 ed25519 with the PK_OK query first.
    pub auth: u8,
    /// The client opens a session channel with a PTY and shell during the handshake.
    pub open_session: bool,
    /// The client announces strict KEX.
    pub strict_kex: bool,
}

impl SessionChoice {
    /// Decode the config byte.
    pub fn from_byte(b: u8) -> Self {
        SessionChoice {
            cipher: usize::from(b % 3),
            auth: (b >> 2) & 3,
            open_session: b & 0x10 == 0,
            strict_kex: b & 0x20 == 0,
        }
    }
}
