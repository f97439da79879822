//! What the whole server (reactor + session + SSH core + PTY path, the game's screen model and
//! its ttyrec recording included) costs per echoed keystroke in steady state: heap
//! allocations on the data-core threads (none: every buffer on the path is reused) and `io_uring_enter` calls of every ring (at most two: one wake-up for the
//! client's packet, one for the game's echo, whose send goes out with the next wait); and
//! the enters per login.
//!
//! On glommio 0.9 the same test measured ~16 allocations (a `Source` per io_uring operation,
//! preemption timers re-armed on every sleep) and ~10 enters per keystroke. It asserts no
//! timing.

mod inproc;

use dungeongate::reactor::ring::ENTERS;
use dungeongate::ssh::client::Client;
use inproc::pump;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

struct Counting;
static CORE_ALLOCS: AtomicU64 = AtomicU64::new(0);

/// Only the data cores' allocations are counted.
fn on_core() -> bool {
    inproc::thread_kind() == inproc::ThreadKind::DataCore
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if on_core() {
            counted();
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        if on_core() {
            counted();
        }
        unsafe { System.realloc(ptr, layout, new) }
    }
}

/// Set while keys are measured: the first allocation then is kept with its backtrace, so a
/// failure says where it came from (a rare one is otherwise hard to catch again).
static MEASURING: AtomicBool = AtomicBool::new(false);
static FIRST: Mutex<Option<String>> = Mutex::new(None);
thread_local!(static IN_CAPTURE: Cell<bool> = const { Cell::new(false) });

fn counted() {
    CORE_ALLOCS.fetch_add(1, Ordering::Relaxed);
    if !MEASURING.load(Ordering::Relaxed) {
        return;
    }
    // Capturing allocates too: those allocations are counted, not captured.
    let _ = IN_CAPTURE.try_with(|busy| {
        if busy.replace(true) {
            return;
        }
        if let Ok(mut first) = FIRST.try_lock() {
            if first.is_none() {
                *first = Some(std::backtrace::Backtrace::force_capture().to_string());
            }
        }
        busy.set(false);
    });
}

#[global_allocator]
static A: Counting = Counting;

#[test]
fn steady_state_echo_through_the_whole_server_allocates_a_bounded_amount_per_keystroke() {
    let dir = tempfile::tempdir().unwrap();
    let seed = [7u8; 32];
    let server = inproc::start(dir.path(), "", seed);
    let (mut client, mut sock) = inproc::connect(&server, seed, Some("cat"));
    let _ = pump(&mut client, &mut sock, |c| c.channel().is_some());

    let mut type_keys = |client: &mut Client, n: usize| {
        for i in 0..n {
            let before = client.received.len();
            // A letter, then DEL (echoed as "\b \b"): the cursor stays put, as in a
            // full-screen game. (A line that scrolls costs the game's screen model one line
            // allocation in avt: per screen line, not per key.)
            let key = if i % 2 == 0 {
                [b'a' + (i / 2 % 26) as u8]
            } else {
                [0x7f]
            };
            client.send_data(&key);
            let _ = pump(client, &mut sock, |c| c.received.len() > before);
            if client.send_window < 1024 {
                // Our own window towards the server never matters here; keep it wide.
                client.send_window = 1 << 20;
            }
            let n = client.received.len() as u32;
            client.adjust_window(n);
            client.received.clear();
            let _ = n;
        }
    };
    // Warm up past a few recording flushes (one a second): the batch buffers the writer gives
    // back are reused from then on.
    let warm = std::time::Instant::now();
    while warm.elapsed() < std::time::Duration::from_millis(2500) {
        type_keys(&mut client, 100);
    }
    let before = CORE_ALLOCS.load(Ordering::Relaxed);
    MEASURING.store(true, Ordering::Relaxed);
    let enters_before = ENTERS.load(Ordering::Relaxed);
    let keys = 2000;
    type_keys(&mut client, keys);
    let allocs = CORE_ALLOCS.load(Ordering::Relaxed) - before;
    MEASURING.store(false, Ordering::Relaxed);
    let enters = ENTERS.load(Ordering::Relaxed) - enters_before;
    let per_key = allocs as f64 / keys as f64;
    let enters_per_key = enters as f64 / keys as f64;
    println!(
        "data-core heap allocations per echoed keystroke: {per_key:.3} ({allocs} in {keys} keys)"
    );
    println!("io_uring_enter per echoed keystroke: {enters_per_key:.2}");

    // Logins: connect, key exchange, public-key authentication, a session channel with a
    // PTY and the lobby, then disconnect.
    let logins = 50;
    let mut flights = 0;
    let enters_before = ENTERS.load(Ordering::Relaxed);
    for _ in 0..logins {
        let (mut c, mut sock) = inproc::connect(&server, seed, None);
        flights += pump(&mut c, &mut sock, |c| !c.received.is_empty());
    }
    let enters_per_login = (ENTERS.load(Ordering::Relaxed) - enters_before) as f64 / logins as f64;
    let flights_per_login = flights as f64 / logins as f64;
    println!(
        "io_uring_enter per login (all rings): {enters_per_login:.1}, for {flights_per_login:.1} \
         flights of packets from the client"
    );
    server.stop();
    drop(sock);
    server.join();
    let first = FIRST.lock().map(|f| f.clone()).unwrap_or_default();
    assert_eq!(
        allocs,
        0,
        "{per_key} allocations per keystroke; the first (later counts include capturing it):\n{}",
        first.unwrap_or_default()
    );
    assert!(
        enters_per_key <= 2.2,
        "{enters_per_key} io_uring_enter per keystroke"
    );
    // A login is a conversation: the data core wakes once per flight of the client's packets
    // (it cannot answer what it has not received), plus once for the accept, once for the
    // control core's answer and once for the close; the control core twice (the request,
    // the pool's result). Anything more is a wake-up with nothing to do.
    let floor = flights_per_login + 5.0;
    assert!(
        enters_per_login <= floor + 1.0,
        "{enters_per_login} io_uring_enter per login for {flights_per_login} client flights"
    );
}
