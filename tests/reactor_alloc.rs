//! How many heap allocations the whole server (reactor + SSH core + PTY path) makes per
//! echoed keystroke in steady state, counted on the data-core threads only.
//!
//! The sans-io SSH core is held to zero by `no_alloc_echo.rs`; here glommio's per-operation
//! bookkeeping is included. Measured on this machine (backtraces per allocation site): ~16 per
//! keystroke, all glommio 0.9 internals (a `Source` per io_uring operation, preemption timers
//! re-armed on every sleep, timer processing). Keystrokes reach the PTY with a plain write(2)
//! (an io_uring `write_at` took an owned `Vec` per write, two more). This test prints the figure and guards
//! against a regression well above it; it asserts no timing.

use dungeongate::config::Config;
use dungeongate::ssh::client::{Client, ClientAuth, ClientConfig};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
#[allow(unused_imports)]
use std::io::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

struct Counting;
static CORE_ALLOCS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// 0 = not yet known, 1 = a data-core thread, 2 = another thread (or deciding now).
    static ON_CORE: Cell<u8> = const { Cell::new(0) };
}

fn on_core() -> bool {
    ON_CORE.with(|c| match c.get() {
        1 => true,
        2 => false,
        _ => {
            c.set(2);
            let yes = std::thread::current()
                .name()
                .is_some_and(|n| n.starts_with("dg-core-"));
            c.set(if yes { 1 } else { 2 });
            yes
        }
    })
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if on_core() {
            CORE_ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        if on_core() {
            CORE_ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Drive the client over a real socket until `done` or the deadline.
fn pump(client: &mut Client, sock: &mut TcpStream, done: impl Fn(&Client) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = [0u8; 65536];
    while !done(client) {
        assert!(Instant::now() < deadline, "timed out: {:?}", client.events);
        let mut out = Vec::new();
        client.poll_transmit(&mut out);
        if !out.is_empty() {
            sock.write_all(&out).unwrap();
        }
        match sock.read(&mut buf) {
            Ok(0) => panic!("server closed: {:?}", client.events),
            Ok(n) => client.handle_input(&buf[..n]).unwrap(),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn steady_state_echo_through_the_whole_server_allocates_a_bounded_amount_per_keystroke() {
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = dir.path().join("cfg.yaml");
    std::fs::write(
        &cfg_path,
        format!(
            r#"
ssh: {{ listen: "127.0.0.1:0" }}
http: {{ listen: "127.0.0.1:0" }}
data_dir: "{}"
cores: 1
password: {{ memory_kib: 64, iterations: 1, parallelism: 1, max_concurrent: 1 }}
games:
  - {{ id: cat, name: "Cat", command: /bin/cat }}
log: {{ level: warn }}
"#,
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    // The account is made by the real CLI in its own process (LMDB is multi-process).
    let seed = [7u8; 32];
    let line = format!(
        "ssh-ed25519 {}\n",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            Client::key_blob(&seed)
        )
    );
    let key_file = dir.path().join("k.pub");
    std::fs::write(&key_file, line).unwrap();
    let cli = |args: &[&str], stdin: &str| {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_dungeongate"))
            .args(args)
            .arg("--config")
            .arg(&cfg_path)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success(), "{args:?}");
    };
    cli(&["user", "add", "alice"], "password1\n");
    cli(
        &["user", "key", "add", "alice", key_file.to_str().unwrap()],
        "",
    );

    let config = Config::load(Some(&cfg_path)).unwrap();
    let server = dungeongate::reactor::start(config).unwrap();
    let mut sock = TcpStream::connect(server.ssh_addrs[0]).unwrap();
    sock.set_nodelay(true).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(2)))
        .unwrap();
    let mut cfg = ClientConfig::new(
        "alice",
        ClientAuth::Ed25519 {
            seed,
            query_first: false,
        },
    );
    cfg.command = Some("cat".into());
    let mut client = Client::new(cfg);
    pump(&mut client, &mut sock, |c| c.channel().is_some());

    let mut type_keys = |client: &mut Client, n: usize| {
        for i in 0..n {
            let before = client.received.len();
            let key = [b'a' + (i % 26) as u8];
            client.send_data(&key);
            pump(client, &mut sock, |c| c.received.len() > before);
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
    type_keys(&mut client, 300);
    let before = CORE_ALLOCS.load(Ordering::Relaxed);
    let keys = 2000;
    type_keys(&mut client, keys);
    let per_key = (CORE_ALLOCS.load(Ordering::Relaxed) - before) as f64 / keys as f64;
    println!("data-core heap allocations per echoed keystroke: {per_key:.2}");
    server.stop();
    drop(sock);
    server.join();
    // A regression guard, not a target: glommio allocates per io_uring operation.
    assert!(per_key < 50.0, "{per_key} allocations per keystroke");
}
