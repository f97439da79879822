//! The whole server fed arbitrary bytes: identification, clear-phase packets, KEX messages
//! and whatever follows, in arbitrary chunk splits, with the clock moving and the
//! application answering auth requests. It must never panic, and after its events are
//! drained it must never hold more than [`MAX_BUFFERED`] bytes of input.
//!
//! Input: bytes 0–1 seed the chooser (chunk sizes, auth answers, clock steps, partial
//! transmit drains); byte 1's high bit makes the rest repeat up to 512 KiB (a flood, so the
//! buffering bound is tested beyond libFuzzer's usual input size); the rest is the stream.

#![no_main]

use dungeongate::ssh::server::{Millis, ServerConnection};
use dungeongate_fuzz::{advance, drain, settings, Chooser, MAX_BUFFERED};
use libfuzzer_sys::fuzz_target;

/// Total stream length in flood mode.
const FLOOD_LEN: usize = 512 * 1024;

fuzz_target!(|data: &[u8]| {
    let [s0, s1, stream @ ..] = data else { return };
    let mut c = Chooser::new(&[*s0, *s1]);
    let flood;
    let stream: &[u8] = if s1 & 0x80 != 0 && !stream.is_empty() {
        flood = repeat_to(stream, FLOOD_LEN);
        &flood
    } else {
        stream
    };

    let mut now: Millis = 0;
    let mut server = ServerConnection::new(settings(), now);
    let mut rest = stream;
    while !rest.is_empty() {
        let n = c.chunk_len().min(rest.len());
        let (chunk, r) = rest.split_at(n);
        rest = r;
        if c.one_in(4) {
            advance(&mut now, &mut c);
        }
        server.handle_input(chunk, now);
        let d = drain(&mut server, &mut || c.one_in(2), true);
        if c.one_in(8) {
            advance(&mut now, &mut c);
            server.handle_timeout(now);
            drain(&mut server, &mut || false, false);
        }
        // The socket takes some or all of the output.
        let pending = server.transmit().len();
        let take = if c.one_in(4) {
            c.below(pending as u64 + 1) as usize
        } else {
            pending
        };
        server.advance_transmit(take);
        assert!(server.buffered_input() < MAX_BUFFERED);
        if d.closed || server.is_closed() {
            // Once closed, input is ignored and nothing new is produced.
            let before = server.transmit().len();
            server.handle_input(rest, now);
            assert!(
                server.poll_event().is_none(),
                "event after Closed was drained"
            );
            assert_eq!(server.transmit().len(), before, "output after close");
            assert_eq!(server.poll_timeout(), None);
            break;
        }
    }
    // The end of time: the login grace expires for anyone not authenticated.
    server.handle_timeout(now.saturating_add(10_000_000));
    drain(&mut server, &mut || false, false);
});

/// `bytes` repeated to `len` bytes (by doubling copies: the per-byte loop is slow under ASan).
fn repeat_to(bytes: &[u8], len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len + bytes.len());
    v.extend_from_slice(bytes);
    while v.len() < len {
        let n = v.len().min(len - v.len());
        v.extend_from_within(..n);
    }
    v
}
