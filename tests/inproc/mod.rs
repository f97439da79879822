//! A server started inside the test process (so an allocator or a counter of the test's own
//! can see its threads), with one account that logs in with an ed25519 key, and a blocking
//! driver for the in-tree SSH client.

#![allow(dead_code)]

use dungeongate::config::Config;
use dungeongate::reactor::Server;
use dungeongate::ssh::client::{Client, ClientAuth, ClientConfig};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// Which of the server's threads this is, for a test's counting allocator (decided once per
/// thread, without allocating on the way: while deciding, the thread counts as "other").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadKind {
    /// A data core (`dg-core-N`).
    DataCore,
    /// Another thread of the server (`dg-*`: the control core, its pools).
    OtherServer,
    /// Not the server's (the test itself, the deciding moment).
    Other,
}

thread_local! {
    /// 0 = not yet known, 1 = data core, 2 = other server thread, 3 = other.
    static KIND: std::cell::Cell<u8> = const { std::cell::Cell::new(0) };
}

/// The kind of the current thread.
pub fn thread_kind() -> ThreadKind {
    let code = KIND.with(|c| {
        if c.get() == 0 {
            // Naming the thread may allocate, which calls back in here: "other" meanwhile.
            c.set(3);
            let code = match std::thread::current().name() {
                Some(n) if n.starts_with("dg-core-") => 1,
                Some(n) if n.starts_with("dg-") => 2,
                _ => 3,
            };
            c.set(code);
        }
        c.get()
    });
    match code {
        1 => ThreadKind::DataCore,
        2 => ThreadKind::OtherServer,
        _ => ThreadKind::Other,
    }
}

/// The account's name.
pub const USER: &str = "alice";

/// Write a one-core config under `dir` (with `extra` YAML lines), make the account with the
/// key of `seed` through the real CLI (LMDB is multi-process), and start the server here.
pub fn start(dir: &Path, extra: &str, seed: [u8; 32]) -> Server {
    let cfg_path = dir.join("cfg.yaml");
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
  - {{ id: cat, name: "Cat", command: /bin/cat, detach_grace_seconds: 0 }}
log: {{ level: warn }}
{extra}
"#,
            dir.join("data").display()
        ),
    )
    .unwrap();
    let line = format!(
        "ssh-ed25519 {}\n",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            Client::key_blob(&seed)
        )
    );
    let key_file = dir.join("k.pub");
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
    cli(&["user", "add", USER], "password1\n");
    cli(
        &["user", "key", "add", USER, key_file.to_str().unwrap()],
        "",
    );
    let config = Config::load(Some(&cfg_path)).unwrap();
    dungeongate::reactor::start(config).unwrap()
}

/// A connected socket (2 ms read timeout: the driver polls) and a key-login client that
/// runs `command` (None: a shell, i.e. the lobby).
pub fn connect(server: &Server, seed: [u8; 32], command: Option<&str>) -> (Client, TcpStream) {
    let sock = TcpStream::connect(server.ssh_addrs[0]).unwrap();
    sock.set_nodelay(true).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(2)))
        .unwrap();
    let mut cfg = ClientConfig::new(
        USER,
        ClientAuth::Ed25519 {
            seed,
            query_first: false,
        },
    );
    cfg.command = command.map(str::to_owned);
    (Client::new(cfg), sock)
}

/// Drive the client over its socket until `done` or 20 s; returns how many times the client
/// wrote (its flights of packets).
pub fn pump(client: &mut Client, sock: &mut TcpStream, done: impl Fn(&Client) -> bool) -> usize {
    let mut flights = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = [0u8; 65536];
    while !done(client) {
        assert!(Instant::now() < deadline, "timed out: {:?}", client.events);
        let mut out = Vec::new();
        client.poll_transmit(&mut out);
        if !out.is_empty() {
            sock.write_all(&out).unwrap();
            flights += 1;
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
    flights
}
