//! The steady state of an established session does no heap allocation on the server side.
//!
//! A client/server pair runs in memory (our own `ssh::client::Client`); after the handshake
//! and a warm-up, 10,000 one-byte keystrokes are sent and echoed back. A counting global
//! allocator counts allocations made on this thread only while a server call runs
//! (`handle_input`, `poll_event`, `send_data`, `channel_consumed`, `transmit`,
//! `advance_transmit`, `poll_timeout`); the client's own work is not counted. The count must
//! be zero for every cipher.
//!
//! Debugging: `NO_ALLOC_BACKTRACE=1 cargo test --test no_alloc_echo -- --nocapture` prints a
//! backtrace for every counted allocation (the first few), and the failure message names the
//! server call that allocated.
//!
//! `unsafe` appears here only because a `#[global_allocator]` must implement the unsafe
//! `GlobalAlloc` trait; every method forwards to `System`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use dungeongate::ssh::cipher::CipherAlg;
use dungeongate::ssh::client::{serve, Client, ClientAuth, ClientConfig, ClientEvent, Reply};
use dungeongate::ssh::hostkey::HostKey;
use dungeongate::ssh::server::{AuthAttempt, Event, Millis, ServerConnection, ServerSettings};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Keystroke round trips measured.
const KEYSTROKES: usize = 10_000;
/// Keystroke round trips before measuring (buffers reach their working size).
const WARM_UP: usize = 500;
/// Receive window the server grants: small, so WINDOW_ADJUSTs are part of the steady state.
const SERVER_WINDOW: u32 = 2048;
/// The client returns window to the server after this many echoed bytes.
const CLIENT_ADJUST_EVERY: usize = 1000;

// ----- the counting allocator -----

/// The server calls whose allocations are counted, for the failure message.
#[derive(Debug, Clone, Copy)]
enum Call {
    HandleInput,
    PollEvent,
    SendData,
    ChannelConsumed,
    Transmit,
    AdvanceTransmit,
    PollTimeout,
}

/// Every `Call`, in discriminant order.
const ALL_CALLS: [Call; 7] = [
    Call::HandleInput,
    Call::PollEvent,
    Call::SendData,
    Call::ChannelConsumed,
    Call::Transmit,
    Call::AdvanceTransmit,
    Call::PollTimeout,
];
const CALLS: usize = ALL_CALLS.len();

thread_local! {
    /// Set while a server call runs on this thread: only then are allocations counted.
    static COUNTING: Cell<Option<Call>> = const { Cell::new(None) };
    /// Allocations counted per `Call` on this thread.
    static COUNTS: [Cell<u64>; CALLS] = const { [const { Cell::new(0) }; CALLS] };
    /// Backtraces printed so far (capped, the output is long).
    static TRACES: Cell<u32> = const { Cell::new(0) };
}

/// Print a backtrace for counted allocations (set from `NO_ALLOC_BACKTRACE` before counting).
static BACKTRACES: AtomicBool = AtomicBool::new(false);

struct CountingAlloc;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Record one allocation if this thread is inside a counted server call.
fn note_allocation(size: usize) {
    let Ok(Some(call)) = COUNTING.try_with(Cell::get) else {
        return;
    };
    let _ = COUNTS.try_with(|c| c[call as usize].set(c[call as usize].get() + 1));
    if BACKTRACES.load(Ordering::Relaxed) && TRACES.try_with(Cell::get).unwrap_or(u32::MAX) < 5 {
        // Capturing and printing allocate too: stop counting meanwhile.
        let _ = COUNTING.try_with(|c| c.set(None));
        let _ = TRACES.try_with(|t| t.set(t.get() + 1));
        let bt = std::backtrace::Backtrace::force_capture();
        eprintln!("allocation of {size} bytes in {call:?}:\n{bt}");
        let _ = COUNTING.try_with(|c| c.set(Some(call)));
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the
// bookkeeping only touches const-initialised thread-locals (no allocation, no destructor).
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation(layout.size());
        // SAFETY: forwarded as received.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation(layout.size());
        // SAFETY: forwarded as received.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation(new_size);
        // SAFETY: forwarded as received.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as received.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Run one server call with counting on.
fn counted<R>(call: Call, f: impl FnOnce() -> R) -> R {
    COUNTING.with(|c| c.set(Some(call)));
    let r = f();
    COUNTING.with(|c| c.set(None));
    r
}

fn reset_counts() {
    COUNTS.with(|c| c.iter().for_each(|x| x.set(0)));
}

/// Counted allocations so far, by call (non-zero entries only).
fn counts() -> Vec<(Call, u64)> {
    COUNTS.with(|c| {
        ALL_CALLS
            .iter()
            .map(|&k| (k, c[k as usize].get()))
            .filter(|&(_, n)| n > 0)
            .collect()
    })
}

// ----- the session -----

/// A logged-in client/server pair with an open session channel.
struct Session {
    server: ServerConnection,
    client: Client,
    now: Millis,
    /// Bytes from the server to the client, reused.
    to_client: Vec<u8>,
    /// Bytes from the client to the server, reused.
    to_server: Vec<u8>,
}

impl Session {
    fn established(cipher: CipherAlg) -> Session {
        let mut settings = ServerSettings::new(HostKey::generate().expect("host key"));
        settings.channel_window = SERVER_WINDOW;
        let mut cfg = ClientConfig::new("guest", ClientAuth::None);
        cfg.cipher = cipher;
        let mut s = Session {
            server: ServerConnection::new(Rc::new(settings), 0),
            client: Client::new(cfg),
            now: 0,
            to_client: Vec::with_capacity(64 * 1024),
            to_server: Vec::with_capacity(64 * 1024),
        };
        let Session {
            server,
            client,
            now,
            ..
        } = &mut s;
        // Nothing counted here: the handshake may allocate.
        client
            .pump(100, |input, out| {
                serve(server, input, *now, accept_guests, out)
            })
            .expect("handshake");
        assert!(
            s.client.events.contains(&ClientEvent::AuthSuccess) && s.client.channel().is_some(),
            "{cipher:?}: session not established: {:?}",
            s.client.events
        );
        s
    }

    /// One keystroke: the client sends `key`, the server echoes it, the client receives it.
    fn keystroke(&mut self, key: u8, i: usize) {
        self.now += 1;
        let sent = self.client.send_data(&[key]);
        assert_eq!(sent, 1, "client window closed at keystroke {i}");
        if i % CLIENT_ADJUST_EVERY == CLIENT_ADJUST_EVERY - 1 {
            self.client.adjust_window(CLIENT_ADJUST_EVERY as u32);
        }
        self.to_server.clear();
        self.client.poll_transmit(&mut self.to_server);

        counted(Call::HandleInput, || {
            self.server.handle_input(&self.to_server, self.now)
        });
        let mut echoed = 0;
        loop {
            // Copy the data out of the event (it borrows the server) into a stack buffer.
            let mut buf = [0u8; 16];
            let got = counted(Call::PollEvent, || match self.server.poll_event() {
                None => None,
                Some(Event::Data { channel, data }) => {
                    let n = data.len().min(buf.len());
                    buf[..n].copy_from_slice(&data[..n]);
                    Some(Some((channel, n)))
                }
                Some(_) => Some(None),
            });
            let Some(ev) = got else { break };
            let Some((channel, n)) = ev else {
                panic!("unexpected server event at keystroke {i}");
            };
            let out = counted(Call::SendData, || self.server.send_data(channel, &buf[..n]));
            assert_eq!(out, n, "echo did not fit the window at keystroke {i}");
            counted(Call::ChannelConsumed, || {
                self.server.channel_consumed(channel, n)
            });
            echoed += n;
        }
        assert_eq!(
            echoed, 1,
            "keystroke {i} was not delivered as one Data event"
        );
        let pending = counted(Call::Transmit, || self.server.transmit().len());
        self.to_client.clear();
        self.to_client.extend_from_slice(self.server.transmit());
        counted(Call::AdvanceTransmit, || {
            self.server.advance_transmit(pending)
        });
        let _ = counted(Call::PollTimeout, || self.server.poll_timeout());

        let before = self.client.received.len();
        self.client
            .handle_input(&self.to_client)
            .expect("client input");
        assert_eq!(
            self.client.received.get(before..),
            Some(&[key][..]),
            "echo of keystroke {i}"
        );
        // Keep the client's record of received data from growing without bound.
        self.client.received.clear();
    }
}

/// The application's part of the handshake: guests (auth `none`) get in.
fn accept_guests(event: Event<'_>) -> Reply {
    match event {
        Event::AuthRequest { attempt, .. } => Reply::Auth(matches!(attempt, AuthAttempt::None)),
        _ => Reply::Nothing,
    }
}

fn assert_echo_allocates_nothing(cipher: CipherAlg) {
    BACKTRACES.store(
        std::env::var_os("NO_ALLOC_BACKTRACE").is_some(),
        Ordering::Relaxed,
    );
    let mut s = Session::established(cipher);
    for i in 0..WARM_UP {
        s.keystroke(b'a' + (i % 26) as u8, i);
    }
    reset_counts();
    for i in 0..KEYSTROKES {
        s.keystroke(b' ' + (i % 95) as u8, WARM_UP + i);
    }
    let counted = counts();
    assert!(
        counted.is_empty(),
        "{cipher:?}: server allocated during {KEYSTROKES} echoed keystrokes: {counted:?} \
         (rerun with NO_ALLOC_BACKTRACE=1 -- --nocapture for backtraces)"
    );
    assert!(!s.server.is_closed());
}

#[test]
fn counting_allocator_sees_allocations_inside_server_calls() {
    // The instrument itself must work, or a zero below would prove nothing.
    reset_counts();
    counted(Call::SendData, || drop(std::hint::black_box(vec![1u8; 10])));
    assert_eq!(counts().len(), 1);
    reset_counts();
}

#[test]
fn echoing_keystrokes_allocates_nothing_with_chacha20_poly1305() {
    assert_echo_allocates_nothing(CipherAlg::ChaCha20Poly1305);
}

#[test]
fn echoing_keystrokes_allocates_nothing_with_aes128_gcm() {
    assert_echo_allocates_nothing(CipherAlg::Aes128Gcm);
}

#[test]
fn echoing_keystrokes_allocates_nothing_with_aes256_gcm() {
    assert_echo_allocates_nothing(CipherAlg::Aes256Gcm);
}
