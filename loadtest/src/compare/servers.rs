//! Starting the servers `compare` measures, on loopback, with equivalent settings:
//!
//! | | dungeongate | OpenSSH `sshd` | dropbear |
//! |---|---|---|---|
//! | host key | ssh-ed25519 | ssh-ed25519 | ssh-ed25519 |
//! | client offers | curve25519-sha256, chacha20-poly1305 | same | same |
//! | user auth | ed25519 key | ed25519 key | ed25519 key |
//! | `exec cat` | game `cat` = `/bin/cat` in a PTY | forced command `game.sh` → `exec /bin/cat` | same as sshd |
//! | `exec bulk` | game `bulk` = `/bin/cat /dev/zero` | `game.sh` → `exec /bin/cat /dev/zero` | same |
//! | `exec stream` | game `stream` = `loadtest stream-game` (spectate only) | — | — |
//! | logging | `warn` | `LogLevel ERROR` | stderr to a file (no level knob) |
//!
//! The peers need root (they switch to the user) and a system user ([`BENCH_USER`], created if
//! missing: `useradd --system --create-home --home-dir /var/lib/dgbench --shell /bin/sh`,
//! password field `*` so OpenSSH without PAM does not treat it as locked). Its
//! `~/.ssh/authorized_keys` is rewritten with the run's key. sshd also needs `/run/sshd`.

use std::fs;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use tempfile::TempDir;

/// The system user the peers log in as (dungeongate gets an account of the same name).
pub const BENCH_USER: &str = "dgbench";

/// Game id of the stream game dungeongate runs for the spectate scenario.
pub const STREAM_GAME: &str = "stream";

/// Account names of the spectate players: this and a 4-digit number.
pub const PLAYER_PREFIX: &str = "sp";

/// Where [`BENCH_USER`]'s home is created.
const BENCH_HOME: &str = "/var/lib/dgbench";

/// The game both peers run as forced command: dispatches on the exec'd command.
const GAME_SH: &str = "#!/bin/sh\n\
# loadtest game for sshd/dropbear: the exec'd command picks the program.\n\
case \"$SSH_ORIGINAL_COMMAND\" in\n\
  bulk) exec /bin/cat /dev/zero ;;\n\
  *) exec /bin/cat ;;\n\
esac\n";

/// How long a server may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A server `compare` knows how to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// This project's server.
    Dungeongate,
    /// OpenSSH `sshd`.
    Openssh,
    /// dropbear.
    Dropbear,
}

impl Kind {
    /// Label in tables and JSON.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Dungeongate => "dungeongate",
            Kind::Openssh => "openssh",
            Kind::Dropbear => "dropbear",
        }
    }
}

/// What every server is started with.
pub struct Env {
    /// The client's public key, one OpenSSH line.
    pub public_key: String,
    /// The dungeongate binary.
    pub dungeongate: Option<PathBuf>,
    /// dungeongate's `cores` setting (`auto` when none).
    pub dg_cores: Option<usize>,
    /// What the spectate scenario needs of dungeongate (none: it does not run).
    pub spectate: Option<Spectate>,
}

/// The spectate scenario's players and game.
#[derive(Debug, Clone, Copy)]
pub struct Spectate {
    /// Player accounts to create ([`PLAYER_PREFIX`]`0000` upwards, with the client's key).
    pub players: usize,
    /// Frames per second of the stream game.
    pub hz: f64,
    /// Bytes per frame of the stream game.
    pub bytes: usize,
}

/// A started server; dropping it stops it.
pub struct Running {
    /// Which server.
    pub kind: Kind,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its (listener) pid.
    pub pid: i32,
    /// The process.
    child: Child,
    /// Temp dir with its config, keys and log (removed on drop).
    dir: TempDir,
    /// Version string, for the report.
    pub version: String,
}

impl Running {
    /// Last lines of the server's log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines
            .get(lines.len().saturating_sub(20)..)
            .unwrap_or(&[])
            .join("\n")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the pid of a child we started and have not yet reaped.
        unsafe {
            libc::kill(self.pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Why a server was not started: `missing` is a peer that is not installed or cannot run
/// here (reported, and the rest measured); anything else is an error.
#[derive(Debug)]
pub enum Skip {
    /// Not installed / not possible here, with the reason.
    Missing(String),
    /// Installed but failed to start.
    Failed(anyhow::Error),
}

/// Starts `kind`.
pub fn start(kind: Kind, env: &Env) -> Result<Running, Skip> {
    match kind {
        Kind::Dungeongate => start_dungeongate(env),
        Kind::Openssh => start_openssh(env),
        Kind::Dropbear => start_dropbear(env),
    }
}

/// dungeongate with a temp data dir, games `cat` and `bulk`, and the bench account.
fn start_dungeongate(env: &Env) -> Result<Running, Skip> {
    let bin = env.dungeongate.clone().ok_or_else(|| {
        Skip::Missing("dungeongate binary not found (pass --dungeongate PATH)".into())
    })?;
    let dir = temp_dir("lt-dungeongate-").map_err(Skip::Failed)?;
    let port = free_port().map_err(Skip::Failed)?;
    let http = free_port().map_err(Skip::Failed)?;
    let cores = env
        .dg_cores
        .map_or(serde_json::json!("auto"), |n| serde_json::json!(n));
    let mut games = serde_json::json!([
        // The bench account runs hundreds of these at once; they keep no save.
        {"id": "cat", "name": "Cat", "command": "/bin/cat", "concurrent_per_account": true},
        {"id": "bulk", "name": "Bulk", "command": "/bin/cat", "args": ["/dev/zero"],
         "concurrent_per_account": true},
    ]);
    if let (Some(sp), Some(list)) = (env.spectate, games.as_array_mut()) {
        // This binary is the game (`loadtest stream-game`).
        let exe = std::env::current_exe().map_err(|e| Skip::Failed(e.into()))?;
        list.push(serde_json::json!({
            "id": STREAM_GAME, "name": "Stream", "command": exe,
            "args": ["stream-game", "--hz", sp.hz.to_string(), "--bytes", sp.bytes.to_string()],
        }));
    }
    let cfg = serde_json::json!({
        "server_id": "dg-loadtest",
        "data_dir": dir.path().join("data"),
        "cores": cores,
        "ssh": {"listen": format!("127.0.0.1:{port}"), "login_grace_seconds": 60},
        "http": {"listen": format!("127.0.0.1:{http}")},
        "password": {"memory_kib": 64, "iterations": 1, "parallelism": 1, "max_concurrent": 2},
        // The harness is one client on loopback: per-source limits, penalties and
        // MaxStartups would measure themselves, not the server (the flood scenario sets
        // its own).
        "limits": {
            "max_connections": 100000,
            "exempt": ["127.0.0.0/8", "::1"],
            "account_failures_before_backoff": 1000000,
            "source_failures_before_backoff": 1000000,
        },
        // A throw-away bench server: its games may run as whoever runs the bench.
        "games_as_server_user": true,
        "banner": "## $SERVERID\n",
        "games": games,
        "log": {"format": "text", "level": "warn"},
    });
    let config = dir.path().join("config.yaml");
    let body = serde_json::to_string_pretty(&cfg).map_err(|e| Skip::Failed(e.into()))?;
    fs::write(&config, body).map_err(|e| Skip::Failed(e.into()))?;
    let pubfile = dir.path().join("client.pub");
    fs::write(&pubfile, format!("{}\n", env.public_key)).map_err(|e| Skip::Failed(e.into()))?;
    let cli = |args: &[&str], stdin: &str| -> anyhow::Result<()> {
        let mut c = Command::new(&bin)
            .args(args)
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("run {}", bin.display()))?;
        if let Some(mut i) = c.stdin.take() {
            i.write_all(stdin.as_bytes())?;
        }
        let out = c.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "dungeongate {args:?}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    };
    let pubpath = pubfile.to_string_lossy().into_owned();
    cli(&["user", "add", BENCH_USER], "loadtest-password-1\n").map_err(Skip::Failed)?;
    cli(&["user", "key", "add", BENCH_USER, &pubpath], "").map_err(Skip::Failed)?;
    for i in 0..env.spectate.map_or(0, |sp| sp.players) {
        let name = crate::scenario::spectate::player_name(PLAYER_PREFIX, i);
        cli(&["user", "add", &name], "loadtest-password-1\n").map_err(Skip::Failed)?;
        cli(&["user", "key", "add", &name, &pubpath], "").map_err(Skip::Failed)?;
    }
    let log =
        fs::File::create(dir.path().join("server.log")).map_err(|e| Skip::Failed(e.into()))?;
    let mut child = Command::new(&bin)
        .args(["serve", "--config"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .map_err(|e| Skip::Failed(anyhow!("spawn {}: {e}", bin.display())))?;
    let stdout = child.stdout.take();
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        // Drains stdout for the server's whole life so it never blocks on a full pipe.
        if let Some(out) = stdout {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        }
    });
    let want = format!("ssh listening on 127.0.0.1:{port}");
    let deadline = Instant::now() + START_TIMEOUT;
    let version = tool_version(&bin, &["--version"]);
    let mut running = Running {
        kind: Kind::Dungeongate,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        pid: pid_of(&child),
        child,
        dir,
        version,
    };
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) if line.contains(&want) => return Ok(running),
            Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(Skip::Failed(anyhow!(
                    "dungeongate exited before listening: {:?}\n{}",
                    running.child.try_wait(),
                    running.log_tail()
                )))
            }
        }
        if Instant::now() >= deadline {
            return Err(Skip::Failed(anyhow!(
                "dungeongate did not listen in time\n{}",
                running.log_tail()
            )));
        }
    }
}

/// OpenSSH sshd with an ed25519 host key and a forced command.
fn start_openssh(env: &Env) -> Result<Running, Skip> {
    let sshd = Path::new("/usr/sbin/sshd");
    if !sshd.exists() {
        return Err(Skip::Missing(
            "OpenSSH sshd not installed (apt-get install -y openssh-server)".into(),
        ));
    }
    need_root("OpenSSH sshd")?;
    let home = ensure_bench_user(&env.public_key).map_err(Skip::Failed)?;
    fs::create_dir_all("/run/sshd").map_err(|e| Skip::Failed(anyhow!("/run/sshd: {e}")))?;
    let dir = temp_dir("lt-openssh-").map_err(Skip::Failed)?;
    let game = write_game(dir.path()).map_err(Skip::Failed)?;
    let key = dir.path().join("host_ed25519");
    run_ok(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key),
    )
    .map_err(Skip::Failed)?;
    let port = free_port().map_err(Skip::Failed)?;
    let config = dir.path().join("sshd_config");
    let text = format!(
        "Port {port}\n\
         ListenAddress 127.0.0.1\n\
         HostKey {key}\n\
         PidFile {pid}\n\
         AuthorizedKeysFile {home}/.ssh/authorized_keys\n\
         AllowUsers {BENCH_USER}\n\
         PubkeyAuthentication yes\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         UsePAM no\n\
         PermitRootLogin no\n\
         ForceCommand exec {game}\n\
         KexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org\n\
         Ciphers chacha20-poly1305@openssh.com,aes128-gcm@openssh.com,aes256-gcm@openssh.com\n\
         HostKeyAlgorithms ssh-ed25519\n\
         PubkeyAcceptedAlgorithms ssh-ed25519\n\
         MaxStartups 100000\n\
         MaxSessions 10\n\
         LoginGraceTime 60\n\
         UseDNS no\n\
         PrintMotd no\n\
         PrintLastLog no\n\
         X11Forwarding no\n\
         AllowTcpForwarding no\n\
         AllowAgentForwarding no\n\
         PermitTTY yes\n\
         LogLevel ERROR\n",
        key = key.display(),
        pid = dir.path().join("sshd.pid").display(),
        home = home.display(),
        game = game.display(),
    );
    fs::write(&config, text).map_err(|e| Skip::Failed(e.into()))?;
    run_ok(Command::new(sshd).arg("-t").arg("-f").arg(&config)).map_err(Skip::Failed)?;
    let mut cmd = Command::new(sshd);
    cmd.arg("-D").arg("-e").arg("-f").arg(&config);
    let version = tool_version(sshd, &["-V"]);
    spawn_listening(Kind::Openssh, cmd, dir, port, version)
}

/// dropbear with an ed25519 host key and the same forced command.
fn start_dropbear(env: &Env) -> Result<Running, Skip> {
    let bin = Path::new("/usr/sbin/dropbear");
    let keygen = Path::new("/usr/bin/dropbearkey");
    if !bin.exists() || !keygen.exists() {
        return Err(Skip::Missing(
            "dropbear not installed (apt-get install -y dropbear-bin)".into(),
        ));
    }
    need_root("dropbear")?;
    ensure_bench_user(&env.public_key).map_err(Skip::Failed)?;
    let dir = temp_dir("lt-dropbear-").map_err(Skip::Failed)?;
    let game = write_game(dir.path()).map_err(Skip::Failed)?;
    let key = dir.path().join("host_ed25519");
    run_ok(Command::new(keygen).args(["-t", "ed25519", "-f"]).arg(&key)).map_err(Skip::Failed)?;
    let port = free_port().map_err(Skip::Failed)?;
    let mut cmd = Command::new(bin);
    // -F foreground, -E log to stderr, -s no passwords, -w no root, -j/-k no forwarding,
    // -m no motd, -c forced command.
    cmd.args(["-F", "-E", "-s", "-w", "-j", "-k", "-m"])
        .arg("-p")
        .arg(format!("127.0.0.1:{port}"))
        .arg("-r")
        .arg(&key)
        .arg("-P")
        .arg(dir.path().join("dropbear.pid"))
        .arg("-c")
        .arg(format!("exec {}", game.display()));
    let version = tool_version(bin, &["-V"]);
    spawn_listening(Kind::Dropbear, cmd, dir, port, version)
}

/// Spawns a peer with stdout/stderr to `server.log` and waits until its port accepts.
fn spawn_listening(
    kind: Kind,
    mut cmd: Command,
    dir: TempDir,
    port: u16,
    version: String,
) -> Result<Running, Skip> {
    let log =
        fs::File::create(dir.path().join("server.log")).map_err(|e| Skip::Failed(e.into()))?;
    let log2 = log.try_clone().map_err(|e| Skip::Failed(e.into()))?;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .spawn()
        .map_err(|e| Skip::Failed(anyhow!("spawn {}: {e}", kind.label())))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut running = Running {
        kind,
        addr,
        pid: pid_of(&child),
        child,
        dir,
        version,
    };
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(running);
        }
        if let Ok(Some(status)) = running.child.try_wait() {
            return Err(Skip::Failed(anyhow!(
                "{} exited ({status}) before listening\n{}",
                kind.label(),
                running.log_tail()
            )));
        }
        if Instant::now() >= deadline {
            return Err(Skip::Failed(anyhow!(
                "{} did not listen in time\n{}",
                kind.label(),
                running.log_tail()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Fails with `Missing` unless we are root.
fn need_root(what: &str) -> Result<(), Skip> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(Skip::Missing(format!(
            "{what} needs root (it switches to the {BENCH_USER} user)"
        )));
    }
    Ok(())
}

/// Creates [`BENCH_USER`] if missing and installs `public_key` as its only authorized key.
/// Returns its home directory.
fn ensure_bench_user(public_key: &str) -> anyhow::Result<PathBuf> {
    if passwd_entry(BENCH_USER).is_none() {
        run_ok(Command::new("useradd").args([
            "--system",
            "--create-home",
            "--home-dir",
            BENCH_HOME,
            "--shell",
            "/bin/sh",
            BENCH_USER,
        ]))?;
    }
    // '*' (no password, not locked): OpenSSH without PAM refuses accounts marked locked ('!').
    run_ok(Command::new("usermod").args(["-p", "*", BENCH_USER]))?;
    let (uid, gid, home) =
        passwd_entry(BENCH_USER).ok_or_else(|| anyhow!("{BENCH_USER} missing after useradd"))?;
    let ssh = home.join(".ssh");
    fs::create_dir_all(&ssh)?;
    let keys = ssh.join("authorized_keys");
    fs::write(&keys, format!("{public_key}\n"))?;
    for (p, mode) in [(&home, 0o755), (&ssh, 0o700), (&keys, 0o600)] {
        std::os::unix::fs::chown(p, Some(uid), Some(gid))?;
        fs::set_permissions(p, fs::Permissions::from_mode(mode))?;
    }
    Ok(home)
}

/// (uid, gid, home) of `user` from `/etc/passwd`.
fn passwd_entry(user: &str) -> Option<(u32, u32, PathBuf)> {
    let text = fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.first() != Some(&user) {
            return None;
        }
        Some((
            f.get(2)?.parse().ok()?,
            f.get(3)?.parse().ok()?,
            PathBuf::from(f.get(5)?),
        ))
    })
}

/// Writes the forced-command game script into `dir` (mode 755).
fn write_game(dir: &Path) -> anyhow::Result<PathBuf> {
    let p = dir.join("game.sh");
    fs::write(&p, GAME_SH)?;
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755))?;
    Ok(p)
}

/// A world-traversable temp dir (games and the bench user must reach files in it).
fn temp_dir(prefix: &str) -> anyhow::Result<TempDir> {
    let d = tempfile::Builder::new().prefix(prefix).tempdir()?;
    fs::set_permissions(d.path(), fs::Permissions::from_mode(0o755))?;
    Ok(d)
}

/// A port that was free a moment ago.
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Runs a command to completion; its stderr in the error on failure.
fn run_ok(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("run {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// First line of `bin ARGS` output (stdout or stderr), for the report.
fn tool_version(bin: &Path, args: &[&str]) -> String {
    Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map(|o| {
            let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
            s.push_str(&String::from_utf8_lossy(&o.stderr));
            s.lines().next().unwrap_or("").trim().to_owned()
        })
        .unwrap_or_default()
}

/// The child's pid as `i32`.
fn pid_of(child: &Child) -> i32 {
    i32::try_from(child.id()).unwrap_or(i32::MAX)
}
