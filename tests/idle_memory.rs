//! What an idle lobby session costs the server in heap: sessions are opened (key login, PTY,
//! the lobby drawn), left quiet until they give their buffers back, and the live bytes the
//! server's own threads allocated are divided by their number. The figure is printed (the
//! README's "Performance" section) and held under a bound; no timing is asserted.

use dungeongate::config::Config;
use dungeongate::ssh::client::{Client, ClientAuth, ClientConfig};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

struct Counting;
/// Live heap bytes allocated by the server's threads (`dg-*`), net of what they freed.
static LIVE: AtomicI64 = AtomicI64::new(0);

thread_local! {
    /// 0 = not yet known, 1 = a server thread, 2 = another thread (or deciding now).
    static SERVER: Cell<u8> = const { Cell::new(0) };
}

fn on_server() -> bool {
    SERVER.with(|c| match c.get() {
        1 => true,
        2 => false,
        _ => {
            c.set(2);
            let yes = std::thread::current()
                .name()
                .is_some_and(|n| n.starts_with("dg-"));
            c.set(if yes { 1 } else { 2 });
            yes
        }
    })
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

/// Drive the client until `done` or the deadline.
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
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) => {}
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn an_idle_lobby_session_holds_a_few_kib_of_server_heap() {
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
limits: {{ exempt: ["127.0.0.0/8"] }}
games:
  - {{ id: cat, name: "Cat", command: /bin/cat }}
log: {{ level: warn }}
"#,
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let seed = [9u8; 32];
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
    // Warm up: the core's tables and buffers reach their working size.
    let open = |n: usize| -> Vec<(Client, TcpStream)> {
        (0..n)
            .map(|_| {
                let mut sock = TcpStream::connect(server.ssh_addrs[0]).unwrap();
                sock.set_read_timeout(Some(Duration::from_millis(2)))
                    .unwrap();
                let cfg = ClientConfig::new(
                    "alice",
                    ClientAuth::Ed25519 {
                        seed,
                        query_first: false,
                    },
                );
                let mut c = Client::new(cfg);
                pump(&mut c, &mut sock, |c| !c.received.is_empty());
                (c, sock)
            })
            .collect()
    };
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
