//! Typing into a running game allocates nothing on the session's side: the keystroke path
//! (socket bytes → Data event → input buffer → PtyWrite effect → written → acknowledged) and
//! the echo path (PTY output → `send_data` → transmit) are measured with a counting global
//! allocator, counting only while a session call runs on this thread.
//!
//! `unsafe` appears here only because a `#[global_allocator]` must implement the unsafe
//! `GlobalAlloc` trait; every method forwards to `System`. It is the allocator of the whole
//! library test binary, but counts nothing unless a test here switches counting on.

#![allow(
    unsafe_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use super::harness::{alice_exec, Harness, AMULET};
use super::Effect;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Keystrokes measured.
const KEYSTROKES: usize = 5_000;
/// Keystrokes before measuring (buffers reach their working size).
const WARM_UP: usize = 300;
/// The server's receive window: small, so WINDOW_ADJUSTs are part of the steady state.
const SERVER_WINDOW: u32 = 2048;

thread_local! {
    /// Set while a session call runs on this thread: only then are allocations counted.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    /// Allocations counted on this thread.
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

struct CountingAlloc;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn note_allocation() {
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the
// bookkeeping only touches const-initialised thread-locals (no allocation, no destructor).
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: forwarded as received.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: forwarded as received.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: forwarded as received.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as received.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Run `f` with counting on; returns its result.
fn counted<R>(f: impl FnOnce() -> R) -> R {
    COUNTING.with(|c| c.set(true));
    let r = f();
    COUNTING.with(|c| c.set(false));
    r
}

fn allocations() -> u64 {
    COUNT.with(Cell::get)
}

fn reset() {
    COUNT.with(|c| c.set(0));
}

#[test]
fn the_counting_allocator_sees_allocations() {
    reset();
    counted(|| drop(std::hint::black_box(vec![1u8; 10])));
    assert_eq!(allocations(), 1);
    reset();
}

#[test]
fn typing_into_a_running_game_and_seeing_the_echo_allocates_nothing() {
    let mut h = Harness::with(alice_exec(AMULET), |_, s| s.channel_window = SERVER_WINDOW);
    let game = h.running_game();
    let mut to_server = Vec::with_capacity(64 * 1024);
    let mut to_client = Vec::with_capacity(64 * 1024);
    let mut total = 0u64;
    for i in 0..WARM_UP + KEYSTROKES {
        if i == WARM_UP {
            reset();
        }
        let key = b' ' + (i % 95) as u8;
        h.now += 1;
        let now = h.now;
        assert_eq!(h.client.send_data(&[key]), 1, "client window shut at {i}");
        if i % 1000 == 999 {
            h.client.adjust_window(1000);
        }
        to_server.clear();
        h.client.poll_transmit(&mut to_server);
        let s = &mut h.session;
        let mut echo = [0u8; 16];
        let n = counted(|| {
            s.handle_socket(&to_server, now);
            let mut writes = 0;
            while let Some(effect) = s.poll_effect() {
                writes += usize::from(matches!(effect, Effect::PtyWrite { game: g } if g == game));
            }
            let input = s.pty_input(game);
            let n = input.len().min(echo.len());
            echo[..n].copy_from_slice(&input[..n]);
            s.handle_pty_written(game, n, now);
            let room = s.pty_room(game);
            s.handle_pty_output(game, &echo[..n.min(room)], now);
            let _ = s.poll_timeout();
            let _ = s.wants_read();
            (writes, n)
        });
        assert_eq!(n, (1, 1), "keystroke {i}: one write request, one byte");
        to_client.clear();
        to_client.extend_from_slice(s.transmit());
        counted(|| s.advance_transmit(to_client.len()));
        h.client.handle_input(&to_client).unwrap();
        assert_eq!(
            h.client.received.last(),
            Some(&key),
            "echo of keystroke {i}"
        );
        h.client.received.clear();
        total += 1;
    }
    assert_eq!(total as usize, WARM_UP + KEYSTROKES);
    let n = allocations();
    assert_eq!(n, 0, "{n} allocations in {KEYSTROKES} echoed keystrokes");
    assert!(!h.session.is_closed());
}
