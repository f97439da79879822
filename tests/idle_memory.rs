//! What an idle lobby session costs the server in heap: sessions are opened (key login, PTY,
//! the lobby drawn), left quiet until they give their buffers back, and the live bytes the
//! server's own threads allocated are divided by their number. The figure is printed (the
//! README's "Performance" section) and held under a bound; no timing is asserted.

mod inproc;

use dungeongate::ssh::client::Client;
use std::alloc::{GlobalAlloc, Layout, System};
use std::net::TcpStream;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

struct Counting;
/// Live heap bytes allocated by the server's threads (`dg-*`), net of what they freed.
static LIVE: AtomicI64 = AtomicI64::new(0);

/// Allocations of the server's own threads are counted.
fn on_server() -> bool {
    inproc::thread_kind() != inproc::ThreadKind::Other
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if on_server() {
            LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if on_server() {
            LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        }
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        if on_server() {
            LIVE.fetch_add(new as i64 - layout.size() as i64, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static A: Counting = Counting;

#[test]
fn an_idle_lobby_session_holds_a_few_kib_of_server_heap() {
    let dir = tempfile::tempdir().unwrap();
    let seed = [9u8; 32];
    let server = inproc::start(dir.path(), r#"limits: { exempt: ["127.0.0.0/8"] }"#, seed);
    let open = |n: usize| -> Vec<(Client, TcpStream)> {
        (0..n)
            .map(|_| {
                let (mut c, mut sock) = inproc::connect(&server, seed, None);
                inproc::pump(&mut c, &mut sock, |c| !c.received.is_empty());
                (c, sock)
            })
            .collect()
    };
    // Warm up: the core's tables and buffers reach their working size.
    let warm = open(20);
    drop(warm);
    std::thread::sleep(Duration::from_millis(500));
    let before = LIVE.load(Ordering::Relaxed);
    let n = 300;
    let sessions = open(n);
    // Quiet long enough for every session to give its buffers back.
    std::thread::sleep(Duration::from_millis(
        dungeongate::session::TRIM_AFTER_MS + 1_500,
    ));
    let per_session = (LIVE.load(Ordering::Relaxed) - before) as f64 / n as f64 / 1024.0;
    println!("server heap per idle lobby session: {per_session:.2} KiB");
    drop(sessions);
    server.stop();
    server.join();
    assert!(
        per_session < 8.0,
        "{per_session:.2} KiB per idle lobby session"
    );
}
