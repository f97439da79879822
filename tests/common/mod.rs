//! Shared harness for the Rust integration tests: runs the real `dungeongate` binary on
//! loopback with a throw-away data dir and config, creates accounts through its CLI, drives
//! it with the `russh` client, and watches its child processes through `/proc`.
//!
//! Nothing here sleeps for a fixed time or asserts a duration: every wait is "until X or a
//! generous deadline", and a deadline that passes fails the test with the evidence attached
//! (server log tail, output seen so far).
#![allow(dead_code)] // each test crate uses a different part of this module

use std::borrow::Cow;
use std::fs;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use russh::client::{self, Handle, Msg};
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::{Algorithm, PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{Channel, ChannelMsg, Preferred};

/// Bounds a server start (the binary is already built by cargo).
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Bounds a server stop after SIGTERM.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Bounds one network step (connect, auth, a channel request, an expected echo).
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// Bounds a CLI call.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(60);

/// A registered account every server gets.
pub const ALICE: &str = "alice";
/// Alice's password.
pub const ALICE_PW: &str = "alice-pass-1";

/// A TEST-ONLY game: a `/bin/sh` script written into the server's temp dir and configured
/// as `command: /bin/sh, args: [SCRIPT, ARGS…]`. Never a product configuration.
#[derive(Debug, Clone, Copy)]
pub struct ScriptGame<'a> {
    /// Game id (what `exec` names).
    pub id: &'a str,
    /// The script's text.
    pub body: &'a str,
    /// Extra arguments; `{dir}` in them becomes the server's temp root.
    pub args: &'a [&'a str],
}

/// One `dungeongate serve` process with its own temp dir, config and ports.
pub struct Server {
    /// Temp root (mode 0755: games run as the `games` user when we are root and must be able
    /// to read scripts placed here). Removed on drop.
    root: tempfile::TempDir,
    /// Config file path.
    pub config: PathBuf,
    /// Server stderr (its log).
    log: PathBuf,
    /// SSH port.
    pub port: u16,
    /// HTTP port (/metrics, /health).
    pub http_port: u16,
    /// The running process; `None` once stopped.
    child: Option<Child>,
    /// Its pid (kept after stop for messages).
    pub pid: i32,
}

impl Server {
    /// Starts a server with a `cat` game (id `cat`) plus the `scripts` games; `patch` may
    /// edit the config JSON (it is YAML-compatible) before it is written. Creates `alice`.
    pub fn start(scripts: &[ScriptGame<'_>], patch: impl FnOnce(&mut serde_json::Value)) -> Server {
        let root = tempfile::Builder::new()
            .prefix("dg-russh-")
            .tempdir()
            .expect("temp dir");
        fs::set_permissions(root.path(), fs::Permissions::from_mode(0o755)).expect("chmod root");
        let port = free_port();
        let mut http_port = free_port();
        while http_port == port {
            http_port = free_port();
        }
        let mut games =
            // Tests run many `cat`s as alice at once; it keeps no save to clobber.
            vec![serde_json::json!({"id": "cat", "name": "Cat", "command": "/bin/cat",
                                    "concurrent_per_account": true})];
        for g in scripts {
            let path = root.path().join(format!("{}.sh", g.id));
            fs::write(&path, g.body).expect("write game script");
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod script");
            let dir = root.path().to_str().expect("utf-8 temp path");
            let mut args = vec![path.to_str().expect("utf-8 temp path").to_owned()];
            args.extend(g.args.iter().map(|a| a.replace("{dir}", dir)));
            games.push(serde_json::json!({
                "id": g.id, "name": g.id, "command": "/bin/sh", "args": args,
            }));
        }
        let mut cfg = serde_json::json!({
            "server_id": "dg-russh",
            "data_dir": root.path().join("data"),
            "cores": 2,
            "ssh": {"listen": format!("127.0.0.1:{port}"), "login_grace_seconds": 120},
            "http": {"listen": format!("127.0.0.1:{http_port}")},
            "password": {"memory_kib": 64, "iterations": 1, "parallelism": 1, "max_concurrent": 2},
            "banner": "## $SERVERID russh tests\n",
            // All tests connect from 127.0.0.1: the guessing limits have their own tests.
            "limits": {
                "account_failures_before_backoff": 100000,
                "source_failures_before_backoff": 100000,
                "registrations_per_source_per_hour": 100000,
                "exempt": ["127.0.0.0/8", "::1"],
            },
            "games": games,
            // Run as root (as CI does), games run as `games`; run by hand as anyone else,
            // they run as that user, which is fine for throw-away test servers.
            "games_as_server_user": !nix::unistd::geteuid().is_root(),
            "log": {"format": "text", "level": "info,dungeongate::reactor=debug"},
        });
        patch(&mut cfg);
        // A dropped connection hangs its game up at once, as these tests expect; re-attach
        // has tests of its own that set a grace.
        if let Some(games) = cfg["games"].as_array_mut() {
            for g in games {
                if g.get("detach_grace_seconds").is_none() {
                    g["detach_grace_seconds"] = serde_json::json!(0);
                }
            }
        }
        let config = root.path().join("config.yaml");
        fs::write(&config, serde_json::to_string_pretty(&cfg).expect("json")).expect("config");
        let log = root.path().join("server.log");
        let mut server = Server {
            root,
            config,
            log,
            port,
            http_port,
            child: None,
            pid: 0,
        };
        server.add_user(ALICE, ALICE_PW);
        server.spawn();
        server
    }

    /// The temp root (world-readable); put test-only game scripts here.
    pub fn dir(&self) -> &Path {
        self.root.path()
    }

    /// Launches the process and waits for `ssh listening on 127.0.0.1:PORT` on its stdout.
    fn spawn(&mut self) {
        let log = fs::File::create(&self.log).expect("log file");
        let mut child = dungeongate()
            .args(["serve", "--config"])
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn dungeongate serve");
        self.pid = i32::try_from(child.id()).expect("pid fits i32");
        let stdout = child.stdout.take().expect("piped stdout");
        self.child = Some(child);
        let want = format!("ssh listening on 127.0.0.1:{}", self.port);
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            // Keeps draining stdout for the server's whole life so it never blocks on a pipe.
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + START_TIMEOUT;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left.min(Duration::from_millis(200))) {
                Ok(line) => {
                    let done = line.contains(&want);
                    seen.push(line);
                    if done {
                        return;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    panic!(
                        "server exited before listening ({:?}); stdout {seen:?}\nlog:\n{}",
                        self.try_wait(),
                        self.log_tail()
                    )
                }
            }
            if Instant::now() >= deadline {
                panic!(
                    "server did not print {want:?} in time; stdout {seen:?}\nlog:\n{}",
                    self.log_tail()
                );
            }
        }
    }

    /// Exit status if the process already ended.
    fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// The whole server log so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many lines of the server log so far contain `needle`.
    pub fn log_count(&self, needle: &str) -> usize {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        text.lines().filter(|l| l.contains(needle)).count()
    }

    /// Last lines of the server log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Runs `dungeongate ARGS --config CONFIG` with `stdin`, panicking on failure.
    pub fn cli(&self, args: &[&str], stdin: &str) -> String {
        let mut child = dungeongate()
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn dungeongate CLI");
        if let Some(mut i) = child.stdin.take() {
            i.write_all(stdin.as_bytes()).expect("CLI stdin");
        }
        let Some(status) = wait_exit(&mut child, CLI_TIMEOUT) else {
            panic!("`dungeongate {args:?}` did not finish in time");
        };
        let mut out = String::new();
        let mut err = String::new();
        if let Some(mut o) = child.stdout.take() {
            let _ = o.read_to_string(&mut out);
        }
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        assert!(
            status.success(),
            "`dungeongate {args:?}` failed ({status}): stdout {out:?} stderr {err:?}"
        );
        out
    }

    /// Creates an account through the CLI (password on stdin).
    pub fn add_user(&self, name: &str, password: &str) {
        self.cli(&["user", "add", name], &format!("{password}\n"));
    }

    /// Adds an OpenSSH public key line to an account through the CLI.
    pub fn add_key(&self, name: &str, key: &PrivateKey) {
        let line = key.public_key().to_openssh().expect("openssh public key");
        let file = self.dir().join(format!("{name}-{}.pub", unique()));
        fs::write(&file, format!("{line}\n")).expect("write .pub");
        let file = file.to_str().expect("utf-8 path").to_owned();
        self.cli(&["user", "key", "add", name, &file], "");
    }

    /// One sample of `GET /metrics`: the sum of every series of `name` (0 when absent).
    pub fn metric(&self, name: &str) -> f64 {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.http_port)).expect("http");
        s.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .expect("request");
        let mut body = String::new();
        s.read_to_string(&mut body).expect("response");
        body.lines()
            .filter(|l| {
                l.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Resident memory of the server process, in bytes.
    pub fn rss_bytes(&self) -> u64 {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024)
    }

    /// Direct children of the server.
    pub fn children(&self) -> Vec<ProcInfo> {
        children_of(self.pid)
    }

    /// Names of the server's threads (`/proc/PID/task/*/comm`).
    pub fn thread_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        let Ok(dir) = fs::read_dir(format!("/proc/{}/task", self.pid)) else {
            return names;
        };
        for e in dir.flatten() {
            if let Ok(c) = fs::read_to_string(e.path().join("comm")) {
                names.push(c.trim_end().to_owned());
            }
        }
        names
    }

    /// Panics unless the server is still running.
    pub fn assert_alive(&mut self, what: &str) {
        if let Some(s) = self.try_wait() {
            panic!("server exited {what} ({s})\nlog:\n{}", self.log_tail());
        }
    }

    /// Waits until the server has no child processes (every game ended and was reaped).
    pub fn assert_idle(&mut self, what: &str) {
        self.assert_alive(what);
        if wait_until(STOP_TIMEOUT, || self.children().is_empty().then_some(())).is_none() {
            panic!(
                "server still has children {what}: {:?}\nlog:\n{}",
                self.children(),
                self.log_tail()
            );
        }
    }

    /// Stops with SIGTERM, expects a clean exit, and checks that no process the server had
    /// started (any descendant alive just before the signal) outlives it.
    pub fn stop(mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let before = descendants_of(self.pid);
        kill(Pid::from_raw(self.pid), Signal::SIGTERM).expect("SIGTERM server");
        let Some(status) = wait_exit(&mut child, STOP_TIMEOUT) else {
            panic!(
                "server did not exit within {STOP_TIMEOUT:?} of SIGTERM\nlog:\n{}",
                self.log_tail()
            );
        };
        assert!(
            status.success(),
            "server exited with {status} after SIGTERM\nlog:\n{}",
            self.log_tail()
        );
        let left = wait_until(STOP_TIMEOUT, || {
            let alive: Vec<&ProcInfo> = before.iter().filter(|p| p.still_exists()).collect();
            alive.is_empty().then_some(())
        });
        if left.is_none() {
            let alive: Vec<&ProcInfo> = before.iter().filter(|p| p.still_exists()).collect();
            panic!(
                "processes started by the server outlived it: {alive:?}\nlog:\n{}",
                self.log_tail()
            );
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // Keep the whole log of a failed test: the temp dir goes away with `self`.
            let keep = std::env::temp_dir().join(format!("dg-russh-failed-{}.log", self.pid));
            if fs::copy(&self.log, &keep).is_ok() {
                eprintln!("server log kept at {}", keep.display());
            }
        }
        // A test that panicked before `stop`: do not leave the server (and its games) behind.
        if let Some(mut c) = self.child.take() {
            let kids = descendants_of(self.pid);
            let _ = c.kill();
            let _ = c.wait();
            for k in kids {
                if k.still_exists() {
                    let _ = kill(Pid::from_raw(k.pid), Signal::SIGKILL);
                }
            }
        }
    }
}

/// A command for the binary under test with no `DUNGEONGATE_*` variables in its environment:
/// the server reads those as config overrides (and rejects unknown ones), so the caller's
/// environment (or cargo's, which passes a build script's `rustc-env` values to tests) must not
/// leak into the test config.
fn dungeongate() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dungeongate"));
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(|n| n.starts_with("DUNGEONGATE_")) {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// One line of `/proc/PID/stat`, the parts the tests look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcInfo {
    /// Process id.
    pub pid: i32,
    /// Parent pid.
    pub ppid: i32,
    /// State letter (`R`, `S`, `Z`, …).
    pub state: char,
    /// Command name.
    pub comm: String,
    /// Start time in clock ticks: tells a reused pid from the original.
    pub start: u64,
}

impl ProcInfo {
    /// Reads `/proc/PID/stat`; `None` if the process is gone.
    pub fn read(pid: i32) -> Option<ProcInfo> {
        let raw = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let lpar = raw.find('(')?;
        let rpar = raw.rfind(')')?;
        let comm = raw.get(lpar + 1..rpar)?.to_owned();
        let rest: Vec<&str> = raw.get(rpar + 2..)?.split_whitespace().collect();
        Some(ProcInfo {
            pid,
            state: rest.first()?.chars().next()?,
            ppid: rest.get(1)?.parse().ok()?,
            start: rest.get(19)?.parse().ok()?,
            comm,
        })
    }

    /// True while this very process (same pid and start time) still has a `/proc` entry
    /// (running or an unreaped zombie).
    pub fn still_exists(&self) -> bool {
        ProcInfo::read(self.pid).is_some_and(|p| p.start == self.start)
    }
}

/// Every process on the machine.
pub fn all_processes() -> Vec<ProcInfo> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(ProcInfo::read)
        .collect()
}

/// Direct children of `pid`.
pub fn children_of(pid: i32) -> Vec<ProcInfo> {
    all_processes()
        .into_iter()
        .filter(|p| p.ppid == pid)
        .collect()
}

/// All descendants of `pid`.
pub fn descendants_of(pid: i32) -> Vec<ProcInfo> {
    let all = all_processes();
    let mut out: Vec<ProcInfo> = Vec::new();
    let mut frontier = vec![pid];
    while let Some(p) = frontier.pop() {
        for c in all.iter().filter(|c| c.ppid == p) {
            frontier.push(c.pid);
            out.push(c.clone());
        }
    }
    out
}

/// Polls `f` until it returns `Some` or `within` passes.
pub fn wait_until<T>(within: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Waits up to `within` for `child` to exit; past that, kills and reaps it and returns `None`.
fn wait_exit(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let status = wait_until(within, || child.try_wait().expect("wait for child"));
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    status
}

/// Async twin of [`wait_until`] for use inside tokio tests.
pub async fn wait_until_async<T>(within: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A port that was free a moment ago (bind port 0, read it, release it).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    l.local_addr().expect("local addr").port()
}

/// A number unique within this test process.
pub fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A fresh ed25519 key (seed from the kernel's CSPRNG).
pub fn new_ed25519_key() -> PrivateKey {
    let mut seed = [0u8; 32];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .expect("read /dev/urandom");
    PrivateKey::from(Ed25519Keypair::from_seed(&seed))
}

/// Raises the soft open-file limit to at least `want` (up to the hard limit) and returns the
/// soft limit now in force. Children started afterwards (the server) inherit it.
pub fn raise_nofile(want: u64) -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    if soft >= want {
        return soft;
    }
    let new = want.min(hard);
    setrlimit(Resource::RLIMIT_NOFILE, new, hard).expect("setrlimit");
    new
}

// ------------------------------------------------------------------------------------------
// The russh side

/// Client handler: accepts the server's host key if (and only if) it is ssh-ed25519, the
/// only host key type the server has.
pub struct Client;

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(
            matches!(key, PublicKeyOrCertificate::PublicKey { key, .. } if key.algorithm() == Algorithm::Ed25519),
        )
    }
}

/// How a test logs in.
#[derive(Clone)]
pub enum Login {
    /// Password authentication.
    Password(String),
    /// Public-key authentication with this key.
    Key(Arc<PrivateKey>),
}

/// Client algorithm preferences: exactly one kex and one cipher (so the handshake either uses
/// them or fails), ed25519 host keys.
pub fn preferred(kex: russh::kex::Name, cipher: russh::cipher::Name) -> Preferred {
    Preferred {
        kex: Cow::Owned(vec![
            kex,
            russh::kex::EXTENSION_SUPPORT_AS_CLIENT,
            russh::kex::EXTENSION_OPENSSH_STRICT_KEX_AS_CLIENT,
        ]),
        key: Cow::Owned(vec![Algorithm::Ed25519]),
        cipher: Cow::Owned(vec![cipher]),
        ..Preferred::default()
    }
}

/// Client configuration with `pref` algorithms and no inactivity timeout.
pub fn client_config(pref: Preferred) -> Arc<client::Config> {
    Arc::new(client::Config {
        preferred: pref,
        inactivity_timeout: None,
        ..client::Config::default()
    })
}

/// Connects to `port` with `preferred` algorithms and authenticates `user`.
pub async fn connect(port: u16, pref: Preferred, user: &str, login: &Login) -> Handle<Client> {
    let fut = client::connect(client_config(pref), ("127.0.0.1", port), Client);
    let mut h = tokio::time::timeout(IO_TIMEOUT, fut)
        .await
        .expect("connect timed out")
        .expect("connect/kex failed");
    authenticate(&mut h, user, login).await;
    h
}

/// Connects over a socket the test keeps a second handle to, so it can cut the TCP
/// connection abruptly (`shutdown`) without any SSH goodbye. Returns that handle too.
pub async fn connect_cuttable(
    port: u16,
    user: &str,
    login: &Login,
) -> (Handle<Client>, std::net::TcpStream) {
    let sock = std::net::TcpStream::connect(("127.0.0.1", port)).expect("tcp connect");
    let keep = sock.try_clone().expect("dup socket");
    sock.set_nonblocking(true).expect("nonblocking");
    let stream = tokio::net::TcpStream::from_std(sock).expect("tokio socket");
    let fut = client::connect_stream(client_config(Preferred::default()), stream, Client);
    let mut h = tokio::time::timeout(IO_TIMEOUT, fut)
        .await
        .expect("connect timed out")
        .expect("connect/kex failed");
    authenticate(&mut h, user, login).await;
    (h, keep)
}

/// Authenticates `user` on a connected handle; panics unless the server accepts.
pub async fn authenticate(h: &mut Handle<Client>, user: &str, login: &Login) {
    let res = match login {
        Login::Password(pw) => {
            tokio::time::timeout(IO_TIMEOUT, h.authenticate_password(user, pw.clone())).await
        }
        Login::Key(k) => {
            let k = PrivateKeyWithHashAlg::new(k.clone(), None);
            tokio::time::timeout(IO_TIMEOUT, h.authenticate_publickey(user, k)).await
        }
    }
    .expect("auth timed out")
    .expect("auth failed with an error");
    assert!(res.success(), "server refused authentication of {user}");
}

/// A session channel with a PTY, plus everything it has received so far.
pub struct Term {
    /// The channel.
    pub channel: Channel<Msg>,
    /// All data bytes received.
    pub output: Vec<u8>,
    /// Exit status, once sent.
    pub exit_status: Option<u32>,
    /// The server closed the channel (or the connection ended).
    pub closed: bool,
}

impl Term {
    /// Opens a session, requests an `xterm` PTY of `cols`×`rows`, and execs `command`; a
    /// refusal of either request fails the test.
    pub async fn start(h: &Handle<Client>, cols: u32, rows: u32, command: &str) -> Term {
        let mut t = Term::open_pty(h, cols, rows).await;
        assert!(t.exec(command).await, "server refused exec {command:?}");
        t
    }

    /// Opens a session and requests an `xterm` PTY of `cols`×`rows` (must succeed).
    pub async fn open_pty(h: &Handle<Client>, cols: u32, rows: u32) -> Term {
        let channel = tokio::time::timeout(IO_TIMEOUT, h.channel_open_session())
            .await
            .expect("channel open timed out")
            .expect("channel open failed");
        channel
            .request_pty(true, "xterm", cols, rows, 0, 0, &[])
            .await
            .expect("pty request");
        let mut t = Term {
            channel,
            output: Vec::new(),
            exit_status: None,
            closed: false,
        };
        assert!(t.reply("pty-req").await, "server refused the PTY request");
        t
    }

    /// Sends an exec request (want-reply); true if the server accepted it.
    pub async fn exec(&mut self, command: &str) -> bool {
        self.channel
            .exec(true, command)
            .await
            .expect("exec request");
        self.reply("exec").await
    }

    /// Waits for the success/failure reply to the last request: true on success.
    async fn reply(&mut self, what: &str) -> bool {
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let msg = tokio::time::timeout(left, self.channel.wait())
                .await
                .unwrap_or_else(|_| panic!("no reply to {what}"));
            match msg {
                Some(ChannelMsg::Success) => return true,
                Some(ChannelMsg::Failure) => return false,
                Some(other) => self.absorb(other),
                None => panic!("channel closed before the reply to {what}"),
            }
        }
    }

    /// Records one message.
    fn absorb(&mut self, msg: ChannelMsg) {
        match msg {
            ChannelMsg::Data { data } => self.output.extend_from_slice(&data),
            ChannelMsg::ExtendedData { data, .. } => self.output.extend_from_slice(&data),
            ChannelMsg::ExitStatus { exit_status } => self.exit_status = Some(exit_status),
            ChannelMsg::Close => self.closed = true,
            _ => {}
        }
    }

    /// Sends bytes as if typed.
    pub async fn send(&self, bytes: &[u8]) {
        self.channel
            .data_bytes(bytes.to_vec())
            .await
            .expect("send data");
    }

    /// Output so far, lossily decoded.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.output).into_owned()
    }

    /// Reads until `done(output)` holds; panics (showing the output) if `within` passes or
    /// the channel ends first.
    pub async fn read_until(&mut self, what: &str, within: Duration, done: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + within;
        while !done(&self.text()) {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.channel.wait()).await {
                Ok(Some(m)) => self.absorb(m),
                Ok(None) => panic!(
                    "channel ended while waiting for {what}; output {:?}",
                    self.text()
                ),
                Err(_) => panic!("timed out waiting for {what}; output {:?}", self.text()),
            }
        }
    }

    /// Like [`Term::read_until`] but reports a timeout (false) instead of panicking.
    pub async fn try_read_until(&mut self, within: Duration, done: impl Fn(&str) -> bool) -> bool {
        let deadline = Instant::now() + within;
        while !done(&self.text()) {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.channel.wait()).await {
                Ok(Some(m)) => self.absorb(m),
                Ok(None) | Err(_) => return false,
            }
        }
        true
    }

    /// Waits until `needle` occurs at least `count` times in the output.
    pub async fn expect_count(&mut self, needle: &str, count: usize) {
        self.read_until(&format!("{count}× {needle:?}"), IO_TIMEOUT, |t| {
            t.matches(needle).count() >= count
        })
        .await;
    }

    /// Reads until the channel ends; returns the exit status.
    pub async fn wait_exit(&mut self) -> Option<u32> {
        let deadline = Instant::now() + IO_TIMEOUT;
        while !self.closed {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.channel.wait()).await {
                Ok(Some(m)) => self.absorb(m),
                Ok(None) => self.closed = true,
                Err(_) => panic!("channel did not close; output {:?}", self.text()),
            }
        }
        self.exit_status
    }
}

/// The crate's own sans-io test client over a real socket: for hostile or unusual message
/// sequences that no real client sends (pipelined channel requests, raw payloads).
pub struct RawClient {
    sock: std::net::TcpStream,
    /// The protocol state; tests read its events and send raw payloads through it.
    pub client: dungeongate::ssh::client::Client,
}

impl RawClient {
    /// Connect and start the handshake.
    pub fn connect(port: u16, cfg: dungeongate::ssh::client::ClientConfig) -> RawClient {
        let sock = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        Self::over(sock, cfg)
    }

    /// Like [`Self::connect`], with a tiny socket receive buffer: a client that stops reading
    /// then stops the server's writes at once, instead of after the kernel has absorbed
    /// megabytes on loopback.
    pub fn connect_small_receive_buffer(
        port: u16,
        cfg: dungeongate::ssh::client::ClientConfig,
    ) -> RawClient {
        use std::os::fd::FromRawFd;
        // SAFETY: plain socket calls on a descriptor owned by the TcpStream at once.
        let sock = unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
            let sock = std::net::TcpStream::from_raw_fd(fd);
            let size: libc::c_int = 4096;
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                std::ptr::from_ref(&size).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
            let (addr, len) = dungeongate::reactor::listen::sockaddr(std::net::SocketAddr::from((
                std::net::Ipv4Addr::LOCALHOST,
                port,
            )));
            let rc = libc::connect(fd, std::ptr::from_ref(&addr).cast(), len);
            assert_eq!(rc, 0, "connect: {}", std::io::Error::last_os_error());
            sock
        };
        Self::over(sock, cfg)
    }

    fn over(sock: std::net::TcpStream, cfg: dungeongate::ssh::client::ClientConfig) -> RawClient {
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("read timeout");
        sock.set_nodelay(true).expect("nodelay");
        RawClient {
            sock,
            client: dungeongate::ssh::client::Client::new(cfg),
        }
    }

    /// Move bytes both ways until `done` holds for the client; false when `within` passes or
    /// the server closes first.
    pub fn pump_until(
        &mut self,
        within: Duration,
        mut done: impl FnMut(&dungeongate::ssh::client::Client) -> bool,
    ) -> bool {
        let deadline = Instant::now() + within;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let mut out = Vec::new();
            self.client.poll_transmit(&mut out);
            if !out.is_empty() && self.sock.write_all(&out).is_err() {
                return done(&self.client);
            }
            if done(&self.client) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            match self.sock.read(&mut buf) {
                Ok(0) => return done(&self.client),
                Ok(n) => {
                    if self.client.handle_input(&buf[..n]).is_err() {
                        return done(&self.client);
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return done(&self.client),
            }
        }
    }

    /// Log in with a password (no session) and return the client, or panic saying why.
    pub fn password_login(server: &Server, user: &str, password: &str) -> RawClient {
        let mut cfg = dungeongate::ssh::client::ClientConfig::new(
            user,
            dungeongate::ssh::client::ClientAuth::Password(password.into()),
        );
        cfg.open_session = false;
        let mut c = RawClient::connect(server.port, cfg);
        let ok = c.pump_until(IO_TIMEOUT, |cl| {
            cl.events
                .contains(&dungeongate::ssh::client::ClientEvent::AuthSuccess)
        });
        assert!(
            ok,
            "login as {user} failed: {:?}\n{}",
            c.client.events,
            server.log_tail()
        );
        c
    }

    /// The client side's port (the server's logs name the peer by it).
    pub fn local_port(&self) -> u16 {
        self.sock.local_addr().map_or(0, |a| a.port())
    }

    /// The socket, for tests that take over the byte stream (the client's state is dropped).
    pub fn into_socket(self) -> std::net::TcpStream {
        self.sock
    }

    /// Queue one payload (a whole message, type byte first); sent by the next pump.
    pub fn send_raw(&mut self, payload: &[u8]) {
        self.client.send_raw_payload(payload);
    }
}
