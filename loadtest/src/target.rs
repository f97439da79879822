//! A server under test and how the client reaches it: address, user, credentials, algorithms,
//! source addresses, and the `/proc` view of its process tree.
//!
//! Every connection goes through [`Target::login`]: TCP (see [`crate::net`]) → russh handshake →
//! authentication, each stage bounded by the I/O timeout and failing with a [`Failure`] kind
//! that the scenario tallies.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use russh::client::{self, Handle, Msg};
use russh::keys::{Algorithm, PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{Channel, ChannelMsg, Preferred};
use thiserror::Error;

use crate::net;
use crate::proc::{self, TreeSample};

/// How the client authenticates.
#[derive(Clone)]
pub enum Auth {
    /// Password authentication.
    Password(String),
    /// Public-key authentication.
    Key(Arc<PrivateKey>),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        match self {
            Auth::Password(_) => f.write_str("Password(<redacted>)"),
            Auth::Key(k) => write!(f, "Key({})", k.algorithm()),
        }
    }
}

/// Why one connection or request failed; the kind is what the error tally counts.
#[derive(Debug, Error)]
pub enum Failure {
    /// TCP connect failed (refused, reset, out of ports).
    #[error("tcp connect: {0}")]
    Connect(std::io::Error),
    /// Version exchange or key exchange failed, or the server closed during it.
    #[error("handshake: {0}")]
    Handshake(russh::Error),
    /// The server said no to our credentials.
    #[error("authentication refused")]
    AuthRefused,
    /// The authentication exchange itself failed.
    #[error("auth: {0}")]
    Auth(russh::Error),
    /// Opening a session channel failed.
    #[error("channel open: {0}")]
    Channel(russh::Error),
    /// The server ended the connection with a DISCONNECT message before we were in (a full
    /// server says "too many connections").
    #[error("disconnected by the server: {0}")]
    Disconnected(String),
    /// The server refused a channel request (pty-req, exec).
    #[error("{0} refused")]
    Refused(&'static str),
    /// The channel or connection ended early.
    #[error("closed by server during {0}")]
    Closed(&'static str),
    /// A stage took longer than the I/O timeout.
    #[error("timeout during {0}")]
    Timeout(&'static str),
}

impl Failure {
    /// Short stable name for tallies and JSON.
    pub fn kind(&self) -> String {
        match self {
            Failure::Connect(_) => "connect".into(),
            Failure::Handshake(_) => "handshake".into(),
            Failure::Disconnected(code) => format!("disconnected:{code}"),
            Failure::AuthRefused => "auth-refused".into(),
            Failure::Auth(_) => "auth".into(),
            Failure::Channel(_) => "channel-open".into(),
            Failure::Refused(what) => format!("refused:{what}"),
            Failure::Closed(what) => format!("closed:{what}"),
            Failure::Timeout(what) => format!("timeout:{what}"),
        }
    }
}

/// One server under test.
pub struct Target {
    /// Name in tables and JSON (`dungeongate`, `openssh`, `dropbear`, or the address).
    pub label: String,
    /// Where it listens.
    pub addr: SocketAddr,
    /// SSH user name.
    pub user: String,
    /// Credentials.
    pub auth: Auth,
    /// Source addresses to spread connections over (empty: let the kernel choose).
    sources: Vec<IpAddr>,
    /// Round-robin cursor into `sources`.
    next_source: AtomicUsize,
    /// russh client settings (algorithms, window).
    config: Arc<client::Config>,
    /// Bound on each stage of a connection or request.
    pub io_timeout: Duration,
    /// The server's pid, for CPU and memory from `/proc` (none: not measured).
    pub server_pid: Option<i32>,
    /// Command names of game processes (reported apart from the server).
    pub game_comms: Vec<String>,
    /// Exec command that starts the echoing game.
    pub echo_command: String,
    /// Exec command that starts the bulk-output game.
    pub bulk_command: String,
}

/// Algorithm choice for the client, by name.
#[derive(Debug, Clone)]
pub struct Algorithms {
    /// Key exchange names, most preferred first.
    pub kex: Vec<String>,
    /// Cipher names, most preferred first.
    pub ciphers: Vec<String>,
}

impl Default for Algorithms {
    fn default() -> Self {
        Algorithms {
            kex: vec!["curve25519-sha256".into()],
            ciphers: vec!["chacha20-poly1305@openssh.com".into()],
        }
    }
}

/// Everything needed to build a [`Target`].
#[derive(Debug, Clone)]
pub struct TargetSpec {
    /// See [`Target::label`].
    pub label: String,
    /// See [`Target::addr`].
    pub addr: SocketAddr,
    /// See [`Target::user`].
    pub user: String,
    /// See [`Target::auth`].
    pub auth: Auth,
    /// Number of `127.0.0.x` source addresses to use on loopback (0: none).
    pub sources: usize,
    /// Client algorithms.
    pub algorithms: Algorithms,
    /// See [`Target::io_timeout`].
    pub io_timeout: Duration,
    /// See [`Target::server_pid`].
    pub server_pid: Option<i32>,
    /// See [`Target::game_comms`].
    pub game_comms: Vec<String>,
    /// See [`Target::echo_command`].
    pub echo_command: String,
    /// See [`Target::bulk_command`].
    pub bulk_command: String,
}

impl Target {
    /// Builds a target; fails on an algorithm name russh does not know.
    pub fn new(spec: TargetSpec) -> anyhow::Result<Target> {
        let config = client_config(&spec.algorithms)?;
        Ok(Target {
            sources: net::loopback_sources(&spec.addr, spec.sources),
            next_source: AtomicUsize::new(0),
            label: spec.label,
            addr: spec.addr,
            user: spec.user,
            auth: spec.auth,
            config,
            io_timeout: spec.io_timeout,
            server_pid: spec.server_pid,
            game_comms: spec.game_comms,
            echo_command: spec.echo_command,
            bulk_command: spec.bulk_command,
        })
    }

    /// The same server with other client algorithms (e.g. the fastest cipher for throughput).
    pub fn with_algorithms(&self, algs: &Algorithms) -> anyhow::Result<Target> {
        let config = client_config(algs)?;
        Ok(Target {
            label: self.label.clone(),
            addr: self.addr,
            user: self.user.clone(),
            auth: self.auth.clone(),
            sources: self.sources.clone(),
            next_source: AtomicUsize::new(0),
            config,
            io_timeout: self.io_timeout,
            server_pid: self.server_pid,
            game_comms: self.game_comms.clone(),
            echo_command: self.echo_command.clone(),
            bulk_command: self.bulk_command.clone(),
        })
    }

    /// Connects, completes the handshake and authenticates.
    pub async fn login(&self) -> Result<Handle<Client>, Failure> {
        self.login_as(&self.user, Some(&self.auth)).await
    }

    /// [`Target::login`] as another user: `auth` `None` is the `none` method (a guest on
    /// dungeongate); `Some` the given credentials (the spectate scenario's players share the
    /// target's key under their own account names).
    pub async fn login_as(
        &self,
        user: &str,
        auth: Option<&Auth>,
    ) -> Result<Handle<Client>, Failure> {
        let stream = self.connect().await?;
        let client = Client::default();
        let farewell = client.farewell.clone();
        // A DISCONNECT from the server surfaces as a generic error from russh: say which.
        let told = |fail: Failure| match farewell.get() {
            Some(code) => Failure::Disconnected(code.clone()),
            None => fail,
        };
        let mut h = self
            .bounded(
                "handshake",
                client::connect_stream(self.config.clone(), stream, client),
            )
            .await?
            .map_err(|e| told(Failure::Handshake(e)))?;
        let res = match auth {
            None => self.bounded("auth", h.authenticate_none(user)).await?,
            Some(Auth::Password(pw)) => {
                self.bounded("auth", h.authenticate_password(user, pw.clone()))
                    .await?
            }
            Some(Auth::Key(k)) => {
                let k = PrivateKeyWithHashAlg::new(k.clone(), None);
                self.bounded("auth", h.authenticate_publickey(user, k))
                    .await?
            }
        }
        .map_err(|e| told(Failure::Auth(e)))?;
        if !res.success() {
            return Err(Failure::AuthRefused);
        }
        Ok(h)
    }

    /// Opens a TCP connection from the next source address (bounded by the I/O timeout).
    pub async fn connect(&self) -> Result<net::QuickAckStream, Failure> {
        let source = self.pick_source();
        self.bounded("connect", net::connect(self.addr, source))
            .await?
            .map_err(Failure::Connect)
    }

    /// Opens a session channel on an authenticated connection.
    pub async fn open_session(&self, h: &Handle<Client>) -> Result<Channel<Msg>, Failure> {
        self.bounded("channel-open", h.channel_open_session())
            .await?
            .map_err(Failure::Channel)
    }

    /// Opens a session with an 80×24 `xterm` PTY and execs `command` (both with want-reply).
    pub async fn open_game(
        &self,
        h: &Handle<Client>,
        command: &str,
    ) -> Result<Channel<Msg>, Failure> {
        self.open_exec(h, command, true).await
    }

    /// Opens a session, requests a PTY if `pty`, and execs `command` (want-reply each).
    pub async fn open_exec(
        &self,
        h: &Handle<Client>,
        command: &str,
        pty: bool,
    ) -> Result<Channel<Msg>, Failure> {
        let mut ch = self.open_session(h).await?;
        if pty {
            ch.request_pty(true, "xterm", 80, 24, 0, 0, &[])
                .await
                .map_err(|_| Failure::Closed("pty-req"))?;
            self.await_reply(&mut ch, "pty-req").await?;
        }
        ch.exec(true, command)
            .await
            .map_err(|_| Failure::Closed("exec"))?;
        self.await_reply(&mut ch, "exec").await?;
        Ok(ch)
    }

    /// Opens a session with an 80×24 `xterm` PTY and a shell (on dungeongate: the lobby), and
    /// waits for its first output (the menu drawn).
    pub async fn open_shell(&self, h: &Handle<Client>) -> Result<Channel<Msg>, Failure> {
        let mut ch = self.open_session(h).await?;
        ch.request_pty(true, "xterm", 80, 24, 0, 0, &[])
            .await
            .map_err(|_| Failure::Closed("pty-req"))?;
        self.await_reply(&mut ch, "pty-req").await?;
        ch.request_shell(true)
            .await
            .map_err(|_| Failure::Closed("shell"))?;
        self.await_reply(&mut ch, "shell").await?;
        let first = self.bounded("first-output", async {
            loop {
                match ch.wait().await {
                    Some(ChannelMsg::Data { .. }) => return Ok(()),
                    Some(_) => {}
                    None => return Err(Failure::Closed("shell")),
                }
            }
        });
        first.await??;
        Ok(ch)
    }

    /// Reads the tree of the server process, if a pid is known.
    pub fn sample(&self, with_mem: bool) -> Option<TreeSample> {
        self.server_pid
            .and_then(|pid| proc::sample_tree(pid, &self.game_comms, with_mem))
    }

    /// Waits (up to `within`) until the server has no more than `children` live child
    /// processes: per-connection processes of the last scenario have exited.
    pub async fn settle(&self, children: usize, within: Duration) {
        let Some(pid) = self.server_pid else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            return;
        };
        let deadline = tokio::time::Instant::now() + within;
        while proc::child_count(pid) > children && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Let the last exits and reaps land in the parent's counters.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    /// Waits for the success/failure reply of a channel request, skipping other messages.
    async fn await_reply(&self, ch: &mut Channel<Msg>, what: &'static str) -> Result<(), Failure> {
        loop {
            match self.bounded(what, ch.wait()).await? {
                Some(ChannelMsg::Success) => return Ok(()),
                Some(ChannelMsg::Failure) => return Err(Failure::Refused(what)),
                Some(ChannelMsg::Close | ChannelMsg::Eof) | None => {
                    return Err(Failure::Closed(what))
                }
                Some(_) => {}
            }
        }
    }

    /// Runs `fut` within the I/O timeout.
    pub async fn bounded<F: std::future::Future>(
        &self,
        what: &'static str,
        fut: F,
    ) -> Result<F::Output, Failure> {
        tokio::time::timeout(self.io_timeout, fut)
            .await
            .map_err(|_| Failure::Timeout(what))
    }

    /// Next source address, round robin.
    fn pick_source(&self) -> Option<IpAddr> {
        if self.sources.is_empty() {
            return None;
        }
        let i = self.next_source.fetch_add(1, Ordering::Relaxed) % self.sources.len();
        self.sources.get(i).copied()
    }
}

/// The client's handler: accepts any host key. The harness measures servers it was pointed
/// at; it does not defend against impostors.
#[derive(Default)]
pub struct Client {
    /// The reason code (its name) of a DISCONNECT the server sent, if it sent one.
    farewell: Arc<OnceLock<String>>,
}

impl client::Handler for Client {
    type Error = russh::Error;

    async fn disconnected(
        &mut self,
        reason: client::DisconnectReason<Self::Error>,
    ) -> Result<(), Self::Error> {
        match reason {
            client::DisconnectReason::ReceivedDisconnect(info) => {
                let _ = self.farewell.set(format!("{:?}", info.reason_code));
                Ok(())
            }
            client::DisconnectReason::Error(e) => Err(e),
        }
    }

    async fn check_server_key(
        &mut self,
        _key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

/// russh client settings for `algs`: no inactivity timeout, `TCP_NODELAY`, and a channel
/// window large enough that bulk output is not window-bound on loopback.
fn client_config(algs: &Algorithms) -> anyhow::Result<Arc<client::Config>> {
    Ok(Arc::new(client::Config {
        preferred: preferred(algs)?,
        inactivity_timeout: None,
        nodelay: true,
        window_size: 16 * 1024 * 1024,
        ..client::Config::default()
    }))
}

/// Builds russh's preference lists from names. Host keys: ssh-ed25519 first (the only type
/// dungeongate has), then the common others so any server can be measured.
fn preferred(algs: &Algorithms) -> anyhow::Result<Preferred> {
    let mut kex = Vec::new();
    for name in &algs.kex {
        let n = russh::kex::Name::try_from(name.as_str())
            .map_err(|_| anyhow::anyhow!("unknown kex {name:?}"))?;
        kex.push(n);
    }
    kex.push(russh::kex::EXTENSION_SUPPORT_AS_CLIENT);
    kex.push(russh::kex::EXTENSION_OPENSSH_STRICT_KEX_AS_CLIENT);
    let mut cipher = Vec::new();
    for name in &algs.ciphers {
        let n = russh::cipher::Name::try_from(name.as_str())
            .map_err(|_| anyhow::anyhow!("unknown cipher {name:?}"))?;
        cipher.push(n);
    }
    Ok(Preferred {
        kex: Cow::Owned(kex),
        key: Cow::Owned(vec![
            Algorithm::Ed25519,
            Algorithm::Ecdsa {
                curve: russh::keys::EcdsaCurve::NistP256,
            },
        ]),
        cipher: Cow::Owned(cipher),
        ..Preferred::default()
    })
}
