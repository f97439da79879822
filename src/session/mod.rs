//! One SSH connection above the protocol: what each session channel is doing (setup, lobby,
//! a game starting, a game running, closing) and the effects that needs. No I/O, no runtime,
//! no clock: the reactor feeds it socket bytes, PTY output, spawn results, control-core
//! answers and the time, and carries out what [`Session::poll_effect`] asks for.
//!
//! ```text
//! reactor ── handle_socket(bytes, now) ──────────▶ Session ── ServerConnection (ssh/)
//!         ── handle_pty_output(game, bytes, now) ▶    │  └─ Channel apps: Lobby / Game …
//!         ── handle_pty_written(game, n, now) ───▶    │
//!         ── handle_spawned(game, result, now) ──▶    │
//!         ── handle_game_ended(game, status, now)▶    │
//!         ── handle_control_reply(token, r, now) ▶    │
//!         ── handle_timeout(now) ────────────────▶    │
//!         ◀── poll_effect() / transmit() / poll_timeout() / wants_read()
//! ```
//!
//! After each `handle_*` call (and after [`Session::advance_transmit`]) the reactor drains
//! [`Session::poll_effect`], sends [`Session::transmit`], re-arms [`Session::poll_timeout`],
//! and checks [`Session::wants_read`], [`Session::is_closed`] and, for games whose output it
//! holds back, [`Session::pty_room`].
//!
//! Every effect that gets an answer later names what it is for with a [`Token`] (control
//! requests) or a [`GameKey`] (games): both carry a serial that is never reused on a
//! connection, so a late answer can never land on a newer channel that reuses a channel id.
//!
//! The work is split by concern:
//! - `events.rs`: the SSH core's events, dispatched to the channels;
//! - `channel.rs`: one channel's application, a state machine moved by value
//!   (Setup → Lobby ⇄ Starting → Game → Closing), and its output queue;
//! - `table.rs`: the channels of the connection, found by id, by serial or by game;
//! - `auth.rs`: SSH authentication requests and answers, and who is logged in;
//! - `actions.rs`: what a lobby decides (log in, register, change, play, quit), and the
//!   control core's answers to it;
//! - `options.rs`: the lobby's options editor, as requests for the lobby's own account;
//! - `play.rs`: starting a game (exec or the lobby): refusals, the claim, the spawn, the
//!   game's end;
//! - `requests.rs`: control-core requests waiting for their answer;
//! - `idle.rs`: the lobby and no-channel idle limits, and the lone-ESC input pause;
//! - `lograte.rs`: per-source log rate limiting (one table per core).
//!
//! Tests: `harness.rs` (the real SSH test client, a fake reactor, virtual time), `tests.rs`,
//! `tests_games.rs`, `tests_keys.rs` and `tests_options.rs` (behaviour), `alloc_tests.rs` (no allocation per keystroke; its
//! counting allocator is the one `unsafe` here, test-only).

#![deny(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

mod actions;
mod admin;
mod auth;
mod channel;
mod events;
mod idle;
pub mod lograte;
mod options;
mod play;
mod requests;
mod table;
mod watch;

#[cfg(test)]
mod alloc_tests;
#[cfg(test)]
mod harness;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_admin;
#[cfg(test)]
mod tests_games;
#[cfg(test)]
mod tests_keys;
#[cfg(test)]
mod tests_options;
#[cfg(test)]
mod tests_reattach;
#[cfg(test)]
mod tests_watch;

pub use lograte::LogRate;

use self::auth::Auth;
use self::requests::Requests;
use self::table::Channels;
use crate::config::Config;
use crate::control::{Reply, Request};
use crate::game::TerminalInfo;
use crate::metrics::{CoreMetrics, Registry};
use crate::pty::{ExitStatus, Signal, WinSize};
use crate::ssh::msg::DisconnectReason;
use crate::ssh::server::{ChannelId, Millis, ServerConnection, ServerSettings};
use crate::watch::GameRef;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

/// Stop reading the socket while this much input waits for the SSH core (one maximum packet
/// plus a read): a client cannot make us buffer more by flooding during an auth decision.
pub const MAX_BUFFERED_INPUT: usize = 256 * 1024 + 8 * 1024;
/// Hold game output back while this much is queued for the socket.
pub const MAX_TRANSMIT_BACKLOG: usize = 256 * 1024;

/// What a session needs from its core: read-only settings and the core's metric cells.
#[derive(Clone)]
pub struct SessionEnv {
    pub config: Arc<Config>,
    /// SSH settings (host key, algorithms, limits) built once per core.
    pub ssh: Rc<ServerSettings>,
    /// For `$PLAYERS` (games running on every core).
    pub registry: Arc<Registry>,
    /// This core's metric cells (auth attempts, handshakes, terminal sessions).
    pub metrics: Arc<CoreMetrics>,
    /// This core's per-source log rate limits ("authentication failed", "connection ended"),
    /// shared by all its sessions.
    pub log_rate: Rc<LogRate>,
}

/// A control-core request of one session; echoed with the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Token(pub u64);

/// One game of one session: the channel it was started on and a serial of its own, drawn
/// from the same counter as channel serials (never reused on a connection, unlike channel
/// ids; a channel that starts a second game from its lobby gets a new key for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GameKey {
    pub channel: ChannelId,
    pub serial: u64,
}

/// One watch of one session: the channel and a serial of its own (never reused on the
/// connection), so a screen that arrives after its watcher moved on is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WatchKey {
    pub channel: ChannelId,
    pub serial: u64,
}

/// What the session needs done.
#[derive(Debug)]
pub enum Effect {
    /// Ask the control core; answer with [`Session::handle_control_reply`] and this token.
    Control { token: Token, request: Request },
    /// Start `game_id` for `user` (files prepared and the process spawned off the core);
    /// answer with [`Session::handle_spawned`], even when the session closed meanwhile (a
    /// game that started for nobody is then hung up). `claimed`: a `ClaimGame` was granted
    /// for it, so whoever sees the game end, or its start fail, sends the matching
    /// `ReleaseGame` (the reactor, which outlives the session).
    Spawn {
        game: GameKey,
        game_id: String,
        user: String,
        terminal: TerminalInfo,
        claimed: bool,
    },
    /// Player input waits: write [`Session::pty_input`] to the game's PTY, as the PTY takes
    /// it, until it is empty, reporting each write with [`Session::handle_pty_written`] (a
    /// full PTY: wait for it to drain). Emitted when input starts waiting, not again for
    /// input that arrives while some is still waiting.
    PtyWrite { game: GameKey },
    /// The player's terminal changed size (the reactor counts the PTY operation).
    PtyResize { game: GameKey, size: WinSize },
    /// Forward a signal from the player (SSH `signal` request).
    PtySignal { game: GameKey, signal: Signal },
    /// The player left: the game is the reactor's from now on (its end is not reported to
    /// this session). It waits, detached, for the game's grace for its player to come back,
    /// then gets SIGHUP so it saves (SIGKILL after another grace).
    Hangup { game: GameKey },
    /// Attach this session's `game` to the player's running game `target` (on any core),
    /// sized `size`; answer with [`Session::handle_spawned`] and then its screen as output.
    /// `take_over`: also when another connection has it (that one is told and closed).
    Reattach {
        game: GameKey,
        target: GameRef,
        take_over: bool,
        size: WinSize,
    },
    /// The first successful login of this connection (the per-source counts move it from
    /// "still logging in" to "logged in").
    LoggedIn,
    /// Watch `game` (on any core): answer with [`Session::handle_watch_screen`] (its screen
    /// now) then [`Session::handle_watch_output`] as it plays, until
    /// [`Session::handle_watch_ended`] or [`Effect::Unwatch`].
    Watch { watch: WatchKey, game: GameRef },
    /// The watcher fell behind and its queue drained: send `game`'s screen again
    /// ([`Session::handle_watch_screen`]); output before it is dropped.
    Resync { watch: WatchKey, game: GameRef },
    /// The watch is over (the watcher left or went back to the menu).
    Unwatch { watch: WatchKey, game: GameRef },
}

/// How a game start went.
pub type SpawnResult = Result<(), SpawnError>;

/// Why a game did not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpawnError {
    /// It failed (a missing program, a file it could not make): logged for the operator, the
    /// player is told it failed.
    Failed(String),
    /// The server has no room for it now (descriptors, the spawn queue): the player is told
    /// this text, which says to try again later.
    NoRoom(String),
    /// A running game could not be re-attached (it ended, is saving, or another connection
    /// took it): the player is told this text.
    NotResumed(String),
}

impl std::fmt::Display for SpawnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpawnError::Failed(e) | SpawnError::NoRoom(e) | SpawnError::NotResumed(e) => {
                f.write_str(e)
            }
        }
    }
}

/// One SSH connection's applications.
pub struct Session {
    /// Settings, metric cells and the core's log-rate table.
    env: SessionEnv,
    /// Log context of everything this connection does: id, peer, client, user once known.
    span: tracing::Span,
    /// The client: the socket's peer, or who a trusted PROXY header names.
    client: SocketAddr,
    /// The SSH protocol state machine.
    ssh: ServerConnection,
    /// The application on each session channel.
    channels: Channels,
    /// What the reactor must do, in order (drained by `poll_effect`).
    effects: VecDeque<Effect>,
    /// Control-core requests waiting for their answer.
    requests: Requests,
    /// Who is logged in, the authentication in flight, failed attempts.
    auth: Auth,
    /// The first key exchange completed.
    handshake_done: bool,
    /// When the connection was accepted (handshake duration).
    accepted_at: Millis,
    /// The latest time the reactor told us.
    now: Millis,
    /// The next channel or game serial (never reused on the connection).
    next_serial: u64,
    /// Logged in with no session channel open since then (the no-channel idle limit).
    channelless_since: Option<Millis>,
    /// The connection is over.
    closed: bool,
    /// When bytes last moved (socket or PTY): [`TRIM_AFTER_MS`] later an idle connection
    /// gives its buffers back.
    last_io: Millis,
    /// The buffers were given back and nothing has moved since.
    trimmed: bool,
    /// A watcher on this connection fell behind (look for its re-sync as output drains).
    behind: bool,
    /// When the client last sent channel data (keys), for the admin list's idle time.
    last_input: Millis,
    /// New games are refused for maintenance (the lobbies say so).
    draining: bool,
}

/// Quiet time after which a connection gives its buffers back (a lobby nobody types in, a
/// game nobody plays): idle sessions then cost a few KiB, busy ones keep their buffers and
/// allocate nothing per keystroke.
pub const TRIM_AFTER_MS: Millis = 2_000;

impl Session {
    /// A new connection: `id` (core-unique, for logs) from `peer`. Its log span (id, peer,
    /// client, user) is the session's: every line about the connection is logged in it.
    pub fn new(env: SessionEnv, id: u64, peer: SocketAddr, now: Millis) -> Session {
        let span = tracing::info_span!(
            "conn",
            id,
            peer = %peer,
            client = tracing::field::Empty,
            user = tracing::field::Empty
        );
        tracing::debug!(parent: &span, "connection accepted");
        Session {
            ssh: ServerConnection::new(env.ssh.clone(), now),
            env,
            span,
            client: peer,
            channels: Channels::default(),
            effects: VecDeque::new(),
            requests: Requests::default(),
            auth: Auth::default(),
            handshake_done: false,
            accepted_at: now,
            now,
            next_serial: 0,
            channelless_since: None,
            closed: false,
            last_io: now,
            trimmed: false,
            behind: false,
            last_input: now,
            draining: false,
        }
    }

    /// Refuse the connection at once (a limit): a DISCONNECT saying `message`, then close.
    pub fn refuse(&mut self, message: &str) {
        let span = self.span.clone();
        let _in = span.enter();
        // Said in a DISCONNECT right after our version line: clients print it.
        self.ssh
            .disconnect(DisconnectReason::TooManyConnections, message);
        self.run();
        self.close();
    }

    /// The client is now known to be `client` (a PROXY header named it).
    pub fn set_client(&mut self, client: SocketAddr) {
        self.client = client;
        self.span.record("client", tracing::field::display(client));
    }

    /// Bytes from the socket.
    pub fn handle_socket(&mut self, bytes: &[u8], now: Millis) {
        self.now = now;
        if self.closed {
            return;
        }
        self.moved(now);
        let span = self.span.clone();
        let _in = span.enter();
        self.ssh.handle_input(bytes, now);
        self.run();
    }

    /// The peer closed the socket (or reading failed).
    pub fn handle_socket_closed(&mut self, now: Millis) {
        self.now = now;
        let span = self.span.clone();
        let _in = span.enter();
        if !self.closed {
            tracing::debug!("peer closed the socket");
        }
        self.close();
    }

    /// How much game output `game` can take now (0: hold it back; the PTY is not read).
    /// Output still queued on the channel goes first, and nothing more is taken while the
    /// socket is behind; the answer can change after any `handle_*` call and after
    /// [`Session::advance_transmit`].
    #[must_use]
    pub fn pty_room(&self, game: GameKey) -> usize {
        if self.closed || self.ssh.transmit().len() >= MAX_TRANSMIT_BACKLOG {
            return 0;
        }
        match self.channels.running(game) {
            Some(ch) if !ch.has_queued_output() => self.ssh.send_window(game.channel),
            _ => 0,
        }
    }

    /// Output read from `game`'s PTY (at most [`Session::pty_room`] bytes). What does not
    /// fit the window any more (a key exchange started meanwhile) waits on the channel, in
    /// order.
    pub fn handle_pty_output(&mut self, game: GameKey, bytes: &[u8], now: Millis) {
        self.now = now;
        if self.closed {
            return;
        }
        self.moved(now);
        if let Some(ch) = self.channels.running_mut(game) {
            ch.deliver(&mut self.ssh, bytes);
        }
    }

    /// Capacity of the buffers this connection holds (the SSH core's; for tests of trimming).
    #[cfg(test)]
    pub(crate) fn buffer_capacity(&self) -> usize {
        self.ssh.buffer_capacity()
    }

    /// Bytes moved at `now`: the connection is busy.
    fn moved(&mut self, now: Millis) {
        self.last_io = now;
        self.trimmed = false;
    }

    /// The connection has been quiet for [`TRIM_AFTER_MS`]: give the buffers back.
    fn trim_if_quiet(&mut self, now: Millis) {
        if self.trimmed || now < self.last_io.saturating_add(TRIM_AFTER_MS) {
            return;
        }
        self.trimmed = true;
        self.ssh.release_idle_buffers();
        self.channels.release_idle_buffers();
        if self.effects.is_empty() {
            self.effects = VecDeque::new();
        }
    }

    /// Player input waiting for `game`'s PTY (see [`Effect::PtyWrite`]).
    #[must_use]
    pub fn pty_input(&self, game: GameKey) -> &[u8] {
        if self.closed {
            return &[];
        }
        self.channels
            .running(game)
            .map_or(&[][..], channel::Channel::pending_input)
    }

    /// `n` bytes of [`Session::pty_input`] reached the PTY: they leave the queue and go back
    /// to the client's window.
    pub fn handle_pty_written(&mut self, game: GameKey, n: usize, now: Millis) {
        self.now = now;
        if self.closed {
            return;
        }
        if let Some(ch) = self.channels.running_mut(game) {
            let n = ch.input_written(n);
            if n > 0 {
                self.ssh.channel_consumed(game.channel, n);
            }
        }
    }

    /// The game `game` was spawned (or failed to).
    pub fn handle_spawned(&mut self, game: GameKey, result: SpawnResult, now: Millis) {
        self.now = now;
        let span = self.span.clone();
        let _in = span.enter();
        self.spawned(game, result);
        self.run();
    }

    /// The server's configuration was reloaded: what this session starts from now on (games,
    /// limits); its lobbies redraw with the new banner and games.
    pub fn handle_reconfigured(&mut self, config: Arc<Config>, now: Millis) {
        self.now = now;
        self.env.config = config;
        if self.closed {
            return;
        }
        self.refresh_lobbies();
        self.run();
    }

    /// The game `game` exited (`None`: its status could not be read).
    pub fn handle_game_ended(&mut self, game: GameKey, status: Option<ExitStatus>, now: Millis) {
        self.now = now;
        if self.closed {
            return;
        }
        let span = self.span.clone();
        let _in = span.enter();
        self.game_ended(game, status);
        self.run();
    }

    /// The control core answered the request `token`. An answer for a channel that is gone
    /// is dropped (a granted claim is given back).
    pub fn handle_control_reply(&mut self, token: Token, reply: Reply, now: Millis) {
        self.now = now;
        let span = self.span.clone();
        let _in = span.enter();
        let Some(pending) = self.requests.take(token) else {
            return;
        };
        match pending {
            requests::Pending::Auth(ask) => self.auth_answered(ask, reply),
            requests::Pending::Lobby { channel, ask } => self.lobby_answered(channel, ask, reply),
            requests::Pending::Claim {
                game,
                user,
                game_id,
            } => self.claim_answered(game, user, game_id, reply),
            requests::Pending::GameList { channel } => self.list_answered(channel, reply),
            requests::Pending::MyGames { channel } => self.my_games_answered(channel, reply),
        }
        self.run();
    }

    /// Time passed: deadlines at or before `now` fire.
    pub fn handle_timeout(&mut self, now: Millis) {
        self.now = now;
        if self.closed {
            return;
        }
        let span = self.span.clone();
        let _in = span.enter();
        self.ssh.handle_timeout(now);
        self.process_events();
        if !self.closed {
            self.fire_input_pauses(now);
            self.refresh_lists(now);
            self.check_idle(now);
        }
        self.run();
        self.trim_if_quiet(now);
    }

    /// End the connection from the server side (shutdown, an operator's lock): `message` is
    /// shown on every channel and sent in the DISCONNECT; games get their hangup.
    pub fn shutdown(&mut self, message: &str, now: Millis) {
        self.now = now;
        if self.closed {
            return;
        }
        let span = self.span.clone();
        let _in = span.enter();
        let text = format!("\r\n\r\n{message}\r\n");
        self.channels.queue_text_everywhere(text.as_bytes());
        self.channels.flush(&mut self.ssh);
        self.ssh
            .disconnect(DisconnectReason::ByApplication, message);
        self.run();
        self.close();
    }

    /// Whether this connection is logged in as, or plays as, the account `name`.
    #[must_use]
    pub fn belongs_to(&self, name: &str) -> bool {
        self.auth.is_user(name) || self.channels.any_account(name)
    }

    /// The connection's log context (id, peer, client, user), for the reactor's own lines
    /// about it.
    #[must_use]
    pub fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// The next effect to carry out.
    #[must_use]
    pub fn poll_effect(&mut self) -> Option<Effect> {
        self.effects.pop_front()
    }

    /// Sealed bytes for the socket.
    #[must_use]
    pub fn transmit(&self) -> &[u8] {
        self.ssh.transmit()
    }

    /// `n` bytes of [`Session::transmit`] were handed to the socket. Input held back while
    /// our output was over its cap is processed now, so effects may follow.
    pub fn advance_transmit(&mut self, n: usize) {
        let was_paused = self.ssh.input_paused();
        self.ssh.advance_transmit(n);
        if self.behind {
            self.resync_drained();
        }
        if was_paused && !self.ssh.input_paused() && !self.closed {
            let span = self.span.clone();
            let _in = span.enter();
            self.run();
        }
    }

    /// Whether the socket should be read now (false while input is held back).
    #[must_use]
    pub fn wants_read(&self) -> bool {
        // Input waits while the core holds enough, or while our answers to the peer pile up
        // unread: a peer that does not read gets nothing more read either.
        !self.closed && self.ssh.buffered_input() < MAX_BUFFERED_INPUT && !self.ssh.input_paused()
    }

    /// The next deadline.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Millis> {
        if self.closed {
            return None;
        }
        [
            self.ssh.poll_timeout(),
            self.idle_deadline(),
            self.channels.next_input_pause(),
            self.channels.next_list_refresh(),
            (!self.trimmed).then(|| self.last_io.saturating_add(TRIM_AFTER_MS)),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The connection is over: flush [`Session::transmit`] (with a deadline) and close.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// What the connection's end means for its source's counts: it logged in, and whether
    /// it ended with an offence (failed attempts with no login, login grace expired, a
    /// protocol error).
    #[must_use]
    pub fn outcome(&self) -> Outcome {
        Outcome {
            logged_in: self.auth.logged_in(),
            handshake_done: self.handshake_done,
            offence: self.auth.offence(),
        }
    }

    // ----- shared by the concerns -----

    /// After anything that may have produced events or output: act on the SSH core's events,
    /// send what the channels have queued as their windows allow, and notice the end.
    fn run(&mut self) {
        self.process_events();
        if self.closed {
            return;
        }
        self.channels.flush(&mut self.ssh);
        // Sending does not end a connection today; should the core end it anyway, its
        // Closed event says why.
        if self.ssh.is_closed() {
            self.process_events();
            self.close();
        }
    }

    /// A serial for a new channel or game.
    fn serial(&mut self) -> u64 {
        let s = self.next_serial;
        self.next_serial = s.wrapping_add(1);
        s
    }

    /// The client's address (the peer's, or the one a trusted PROXY header names).
    fn client_ip(&self) -> std::net::IpAddr {
        self.client.ip()
    }

    /// Mark the connection over: every channel goes (games get their hangup); answers still
    /// on their way are dropped, except a claim, which is given back if granted.
    fn close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.channelless_since = None;
        self.requests.forget_all_but_claims();
        let (metrics, now) = (&self.env.metrics, self.now);
        for ch in self.channels.drain() {
            ch.teardown(metrics, now, &mut self.effects);
        }
    }
}

/// Facts about a connection the reactor reports to the per-source counts and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// A login succeeded.
    pub logged_in: bool,
    /// The first key exchange completed.
    pub handshake_done: bool,
    /// Penalize the source (see [`Session::outcome`]).
    pub offence: bool,
}
