//! What runs on a session channel: the lobby or a game. The channel's PTY request, locale and
//! size are kept here; input goes to whichever is active; output not yet covered by the
//! client's window waits in a small per-channel queue.

use super::conn::Conn;
use super::control::{Reply, Request};
use crate::game::{self, GameSession, TerminalInfo, Viewer};
use crate::lobby::{GameEntry, Lobby, LobbyAction, LobbyContext, UserInfo};
use crate::metrics::{CoreMetrics, PtyOp};
use crate::pty::{self, ExitStatus, WinSize};
use crate::ssh::server::{ChannelId, ServerConnection, TermSize};
use std::rc::{Rc, Weak};

/// Who the SSH login made this connection.
#[derive(Debug, Clone)]
pub enum Identity {
    /// An unregistered SSH name (the anonymous lobby).
    Guest(String),
    /// A registered, authenticated account.
    User(UserInfo),
}

enum Mode {
    /// Collecting pty-req/env before shell or exec.
    Setup,
    Lobby(Lobby),
    /// A game is being spawned (off the reactor); input typed meanwhile is held for it
    /// (unacknowledged, so the channel window bounds it).
    Starting {
        lobby: Option<Lobby>,
        held_input: Vec<u8>,
    },
    /// A game runs; `lobby` is where the player returns (None when started by exec).
    Game {
        session: Rc<GameSession>,
        lobby: Option<Lobby>,
    },
    /// The channel is being closed.
    Closing,
}

/// A channel as later work (a game start, a control-core answer, a game's output) knows it:
/// its id and the serial of the terminal that was on it when the work began. The SSH core
/// reuses channel ids lowest-first, so an id alone could land a late answer on a newer
/// channel; the serial is never reused on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelKey {
    pub id: ChannelId,
    pub serial: u64,
}

pub struct Terminal {
    /// Which opening of the channel id this is (see [`ChannelKey`]).
    serial: u64,
    /// TERM from pty-req; `None` without a PTY.
    term: Option<String>,
    size: WinSize,
    /// LANG / LC_* from env requests.
    locale: Vec<(String, String)>,
    mode: Mode,
    /// Output waiting for window.
    out: Vec<u8>,
    /// Close the channel once `out` is sent, with this exit status.
    close_after: Option<u32>,
    /// When a shell or game started on it (a terminal session, for metrics).
    session_started: Option<std::time::Instant>,
    /// When the client last typed on it (the lobby's idle limit).
    last_input: std::time::Instant,
}

impl Terminal {
    pub fn new(serial: u64) -> Terminal {
        Terminal {
            serial,
            term: None,
            size: WinSize {
                cols: 80,
                rows: 24,
                px_width: 0,
                px_height: 0,
            },
            locale: Vec::new(),
            mode: Mode::Setup,
            out: Vec::new(),
            close_after: None,
            session_started: None,
            last_input: std::time::Instant::now(),
        }
    }

    pub fn serial(&self) -> u64 {
        self.serial
    }

    pub fn set_pty(&mut self, term: String, size: TermSize) {
        self.term = Some(if term.is_empty() {
            "vt100".into()
        } else {
            term
        });
        self.size = win(size);
    }

    pub fn set_env(&mut self, name: String, value: String) {
        if name == "TERM" {
            if self.term.is_some() {
                self.term = Some(value);
            }
            return;
        }
        self.locale.retain(|(n, _)| *n != name);
        self.locale.push((name, value));
    }

    pub fn signal(&mut self, name: &str) {
        if let (Mode::Game { session, .. }, Some(sig)) =
            (&self.mode, pty::signal_from_ssh_name(name))
        {
            session.signal(sig);
        }
    }

    /// Input from the client. Returns true when it was dealt with at once (so the window can
    /// be refilled now); a game acknowledges its input when written to the PTY.
    pub fn input(&mut self, data: &[u8]) -> bool {
        self.last_input = std::time::Instant::now();
        match &mut self.mode {
            // Acknowledged once written to the PTY (or now, if the game is already over).
            Mode::Game { session, .. } => !session.write_input(data),
            Mode::Lobby(lobby) => {
                lobby.handle_input(data);
                true
            }
            Mode::Starting { held_input, .. } => {
                held_input.extend_from_slice(data);
                false
            }
            _ => true,
        }
    }

    /// The account this channel is logged in as (a lobby) or plays as (a game).
    pub fn account(&self) -> Option<&str> {
        match &self.mode {
            Mode::Lobby(l) => l.user().map(|u| u.name.as_str()),
            Mode::Starting { lobby, .. } => lobby
                .as_ref()
                .and_then(|l| l.user())
                .map(|u| u.name.as_str()),
            Mode::Game { session, .. } => Some(session.user.as_str()),
            Mode::Setup | Mode::Closing => None,
        }
    }

    /// Since when a lobby on this channel has had no input (None: not a lobby).
    pub fn lobby_idle_since(&self) -> Option<std::time::Instant> {
        (matches!(self.mode, Mode::Lobby(_)) && self.close_after.is_none())
            .then_some(self.last_input)
    }

    /// The lobby's idle limit ran out: say so and close the channel.
    pub fn idle_out(&mut self, message: &str) {
        if matches!(self.mode, Mode::Lobby(_)) && self.close_after.is_none() {
            self.mode = Mode::Closing;
            self.out.clear();
            self.finish_with(message, 0);
        }
    }

    pub fn queue_output(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// Move lobby output into the queue and send what the window allows.
    pub fn flush(&mut self, ssh: &mut ServerConnection, channel: ChannelId) {
        if let Mode::Lobby(lobby) = &mut self.mode {
            // The lobby draws only into an empty queue: while a client is not taking what
            // was drawn (its window is full), later changes wait in the lobby as "redraw"
            // and go out as one screen, instead of every resize stacking up another.
            if self.out.is_empty() {
                lobby.poll_output(&mut self.out);
            }
        }
        if !self.out.is_empty() {
            let n = ssh.send_data(channel, &self.out);
            self.out.drain(..n);
        }
        if self.out.is_empty() {
            if let Some(status) = self.close_after.take() {
                ssh.send_exit_status(channel, status);
                ssh.send_eof(channel);
                ssh.close_channel(channel);
                self.mode = Mode::Closing;
            }
        }
    }

    pub fn wake_output(&self) {
        if let Mode::Game { session, .. } = &self.mode {
            session.output_room();
        }
    }

    /// The channel or connection is gone: hang up a running game.
    pub fn teardown(self, metrics: &CoreMetrics) {
        if let Mode::Game { session, .. } = &self.mode {
            session.hang_up();
        }
        if let Some(started) = self.session_started {
            metrics
                .terminal_session_ended(started.elapsed(), self.close_after.is_none_or(|s| s == 0));
        }
    }

    /// A shell or game begins on this channel.
    fn begin_session(&mut self, metrics: &CoreMetrics) {
        if self.session_started.is_none() {
            self.session_started = Some(std::time::Instant::now());
            metrics.terminal_session_started();
        }
    }

    fn terminal_info(&self) -> TerminalInfo {
        TerminalInfo {
            term: self.term.clone().unwrap_or_else(|| "vt100".into()),
            locale: self.locale.clone(),
            size: self.size,
        }
    }

    /// Leave the Starting state: the lobby to return to and the input typed meanwhile, or None
    /// (state unchanged) when the channel is not starting a game. The caller sets the next mode.
    fn take_starting(&mut self) -> Option<(Option<Lobby>, Vec<u8>)> {
        if !matches!(self.mode, Mode::Starting { .. }) {
            return None;
        }
        match std::mem::replace(&mut self.mode, Mode::Closing) {
            Mode::Starting { lobby, held_input } => Some((lobby, held_input)),
            other => {
                self.mode = other;
                None
            }
        }
    }

    /// The channel's game ended: back to the lobby it came from, or close with `status`.
    /// A game can end before its start is even complete (it exits at once): then the input
    /// held for it is dropped, and its length returned for the caller to acknowledge.
    fn game_ended(&mut self, status: u32) -> usize {
        if !matches!(self.mode, Mode::Game { .. } | Mode::Starting { .. }) {
            return 0;
        }
        let (lobby, held) = match std::mem::replace(&mut self.mode, Mode::Closing) {
            Mode::Game { lobby, .. } => (lobby, 0),
            Mode::Starting { lobby, held_input } => (lobby, held_input.len()),
            other => {
                self.mode = other;
                return 0;
            }
        };
        match lobby {
            Some(mut l) => {
                l.handle_game_ended("Your game has ended.".into());
                self.mode = Mode::Lobby(l);
            }
            None => self.close_after = Some(status),
        }
        held
    }

    /// Finish the channel with a message and exit status.
    fn finish_with(&mut self, text: &str, status: u32) {
        self.queue_output(text.as_bytes());
        self.close_after = Some(status);
    }

    // ----- reactions that need the connection -----

    /// A shell request: the lobby.
    pub fn start_shell(conn: &Rc<Conn>, channel: ChannelId) {
        let user = match conn.identity.borrow().as_ref() {
            Some(Identity::User(u)) => Some(u.clone()),
            _ => None,
        };
        let ctx = lobby_context(conn);
        conn.with_terminal(channel, |t, _| {
            if t.term.is_none() {
                t.finish_with(
                    "dungeongate needs a terminal: connect with `ssh -t`.\r\n",
                    1,
                );
                return;
            }
            t.begin_session(&conn.core.metrics);
            let mut lobby = Lobby::new(ctx, user, t.size.cols, t.size.rows);
            let limits = &conn.core.config().limits;
            lobby.set_attempt_limits(
                limits.lobby_failed_logins,
                limits.lobby_failed_registrations,
            );
            t.mode = Mode::Lobby(lobby);
        });
        conn.flush_terminals();
        conn.after_activity();
    }

    /// An exec request: a game id starts that game directly.
    pub fn start_exec(conn: &Rc<Conn>, channel: ChannelId, command: &str) {
        let config = conn.core.config();
        let game = config.games.iter().find(|g| g.id == command).cloned();
        let user = match conn.identity.borrow().as_ref() {
            Some(Identity::User(u)) => Some(u.clone()),
            _ => None,
        };
        let ids: Vec<&str> = config.games.iter().map(|g| g.id.as_str()).collect();
        let refusal = match (&game, &user) {
            (None, _) => Some(format!(
                "'{}' is not a game here. Games: {}. Or connect without a command for the lobby.\r\n",
                command.chars().filter(|c| !c.is_control()).take(64).collect::<String>(),
                ids.join(", ")
            )),
            (Some(_), None) => Some(
                "Guests cannot play: log in as a registered user, or connect without a command to register.\r\n"
                    .to_string(),
            ),
            (Some(g), Some(_)) if !game::is_available(g) => {
                Some(format!("{} is not installed on this server.\r\n", g.name))
            }
            _ => None,
        };
        let has_pty = conn
            .with_terminal(channel, |t, _| t.term.is_some())
            .unwrap_or(false);
        let refusal = refusal
            .or_else(|| {
                (!has_pty).then(|| "Games need a terminal: connect with `ssh -t`.\r\n".to_string())
            })
            .or_else(|| game_on_connection(conn).then(|| format!("{ONE_GAME}\r\n")));
        if let Some(text) = refusal {
            conn.with_terminal(channel, |t, _| t.finish_with(&text, 1));
            conn.flush_terminals();
            conn.after_activity();
            return;
        }
        if let (Some(g), Some(u), Some(key)) = (game, user, conn.key_of(channel)) {
            conn.with_terminal(channel, |t, _| {
                t.begin_session(&conn.core.metrics);
                t.mode = Mode::Starting {
                    lobby: None,
                    held_input: Vec::new(),
                }
            });
            conn.spawn_urgent(launch(conn.clone(), key, g.id, u.name));
        }
    }

    pub fn resize(conn: &Rc<Conn>, channel: ChannelId, size: TermSize) {
        conn.with_terminal(channel, |t, _| {
            t.size = win(size);
            match &mut t.mode {
                Mode::Lobby(l) => l.handle_resize(size.cols, size.rows),
                Mode::Game { session, .. } => {
                    session.resize(t.size);
                    conn.core.metrics.pty_op(PtyOp::Resize);
                }
                _ => {}
            }
        });
        conn.flush_terminals();
        conn.after_activity();
    }

    /// After input: act on what the lobby decided.
    pub fn after_input(conn: &Rc<Conn>, channel: ChannelId) {
        drain_actions(conn, channel);
        // A lone ESC is only known to be Escape once no more bytes follow.
        let wants_idle = conn
            .with_terminal(channel, |t, _| match &t.mode {
                Mode::Lobby(l) => l.wants_input_idle(),
                _ => false,
            })
            .unwrap_or(false);
        if let (true, Some(key)) = (wants_idle, conn.key_of(channel)) {
            let c = conn.clone();
            conn.spawn(async move {
                glommio::timer::sleep(std::time::Duration::from_millis(60)).await;
                let still_there = c.with_terminal_at(key, |t, _| {
                    if let Mode::Lobby(l) = &mut t.mode {
                        l.handle_input_idle();
                    }
                });
                if still_there.is_some() {
                    Terminal::after_input_idle(&c, channel);
                }
            });
        }
    }

    fn after_input_idle(conn: &Rc<Conn>, channel: ChannelId) {
        drain_actions(conn, channel);
        conn.flush_terminals();
        conn.after_activity();
    }
}

/// Act on every decision the channel's lobby has made.
fn drain_actions(conn: &Rc<Conn>, channel: ChannelId) {
    loop {
        let action = conn
            .with_terminal(channel, |t, _| match &mut t.mode {
                Mode::Lobby(l) => l.poll_action(),
                _ => None,
            })
            .flatten();
        let Some(action) = action else { break };
        handle_action(conn, channel, action);
    }
}

fn win(size: TermSize) -> WinSize {
    WinSize {
        cols: size.cols,
        rows: size.rows,
        px_width: size.px_width,
        px_height: size.px_height,
    }
}

fn lobby_context(conn: &Conn) -> LobbyContext {
    let config = conn.core.config();
    LobbyContext {
        server_id: config.server_id.clone(),
        banner: config.banner.clone(),
        games: config
            .games
            .iter()
            .map(|g| GameEntry {
                id: g.id.clone(),
                name: g.name.clone(),
                key: g.key,
                available: game::is_available(g),
            })
            .collect(),
        players: usize::try_from(conn.core.shared.registry.games_running()).unwrap_or(0),
        watchers: 0,
        date: crate::date::utc_today(),
    }
}

fn handle_action(conn: &Rc<Conn>, channel: ChannelId, action: LobbyAction) {
    match action {
        LobbyAction::Quit => {
            conn.with_terminal(channel, |t, _| {
                t.close_after = Some(0);
            });
        }
        LobbyAction::Play { game_id } => {
            let user = conn
                .with_terminal(channel, |t, _| match &t.mode {
                    Mode::Lobby(l) => l.user().cloned(),
                    _ => None,
                })
                .flatten();
            let (Some(user), Some(key)) = (user, conn.key_of(channel)) else {
                return;
            };
            if game_on_connection(conn) {
                conn.with_terminal(channel, |t, _| {
                    if let Mode::Lobby(l) = &mut t.mode {
                        l.handle_play_refused(ONE_GAME.into());
                    }
                });
                return;
            }
            conn.with_terminal(channel, |t, _| {
                if let Mode::Lobby(l) = std::mem::replace(&mut t.mode, Mode::Setup) {
                    t.mode = Mode::Starting {
                        lobby: Some(l),
                        held_input: Vec::new(),
                    };
                }
            });
            conn.spawn_urgent(launch(conn.clone(), key, game_id, user.name));
        }
        LobbyAction::Login { name, password } => {
            let request = Request::Login {
                name,
                password,
                source: conn.client_ip(),
            };
            ask_control(conn, channel, request, |l, r| {
                l.handle_login_result(user_result(r))
            });
        }
        LobbyAction::Register {
            name,
            password,
            email,
        } => {
            let request = Request::Register {
                name,
                password,
                email,
                source: conn.client_ip(),
            };
            ask_control(conn, channel, request, |l, r| {
                l.handle_register_result(user_result(r))
            });
        }
        LobbyAction::ChangePassword { new_password } => {
            change(conn, channel, |name| Request::ChangePassword {
                name,
                password: new_password,
            });
        }
        LobbyAction::ChangeEmail { email } => {
            change(conn, channel, |name| Request::ChangeEmail { name, email });
        }
    }
}

/// Password or e-mail change for the logged-in lobby user.
fn change(conn: &Rc<Conn>, channel: ChannelId, make: impl FnOnce(String) -> Request) {
    let name = conn
        .with_terminal(channel, |t, _| match &t.mode {
            Mode::Lobby(l) => l.user().map(|u| u.name.clone()),
            _ => None,
        })
        .flatten();
    let Some(name) = name else { return };
    ask_control(conn, channel, make(name), |l, r| {
        l.handle_change_result(match r {
            Some(Reply::Done(r)) => r,
            _ => Err(BUSY.into()),
        })
    });
}

/// Told to a client that starts a second game on one connection.
const ONE_GAME: &str = "One game per connection: finish the game on your other session first.";

/// Whether a game is starting or running on any channel of `conn`.
fn game_on_connection(conn: &Conn) -> bool {
    conn.terminals
        .borrow()
        .values()
        .any(|t| matches!(t.mode, Mode::Starting { .. } | Mode::Game { .. }))
}

/// What the lobby shows when the control core did not answer.
const BUSY: &str = "The server is busy; try again.";

fn user_result(r: Option<Reply>) -> Result<UserInfo, String> {
    match r {
        Some(Reply::User(r)) => r,
        _ => Err(BUSY.into()),
    }
}

/// Ask the control core, then hand the answer to the channel's lobby (if it is still there).
fn ask_control(
    conn: &Rc<Conn>,
    channel: ChannelId,
    request: Request,
    apply: impl FnOnce(&mut Lobby, Option<Reply>) + 'static,
) {
    let Some(key) = conn.key_of(channel) else {
        return;
    };
    let c = conn.clone();
    conn.spawn_urgent(async move {
        let reply = c.core.request(request).await;
        let applied = c.with_terminal_at(key, |t, _| {
            if let Mode::Lobby(l) = &mut t.mode {
                apply(l, reply)
            }
        });
        // An answer can make the lobby decide something (quit after too many failures).
        if applied.is_some() {
            drain_actions(&c, key.id);
        }
        c.flush_terminals();
        c.after_activity();
    });
}

/// Spawn `game_id` for `user` on this core and attach the channel as its player.
async fn launch(conn: Rc<Conn>, key: ChannelKey, game_id: String, user: String) {
    let config = conn.core.shared.config.clone();
    let run_as = conn.core.shared.run_as.clone();
    let Some(game) = config.games.iter().find(|g| g.id == game_id).cloned() else {
        return;
    };
    let Some(info) = conn.with_terminal_at(key, |t, _| t.terminal_info()) else {
        return;
    };
    // One copy of a game per account, whichever core or connection started it: two NetHack
    // processes under one name overwrite each other's save.
    let claim = Request::ClaimGame {
        user: user.clone(),
        game_id: game_id.clone(),
    };
    let claimed = if game.concurrent_per_account {
        Some(Reply::Done(Ok(())))
    } else {
        conn.core.request(claim).await
    };
    match claimed {
        Some(Reply::Done(Ok(()))) => {}
        Some(Reply::Done(Err(_))) => {
            let text = format!(
                "You already have {} running (on another connection, or still saving). \
                 One copy at a time: end that one first.",
                game.name
            );
            refuse_play(&conn, key, &text);
            return;
        }
        _ => {
            refuse_play(&conn, key, BUSY);
            return;
        }
    }
    let release = {
        let core = conn.core.clone();
        let (user, game_id) = (user.clone(), game_id.clone());
        let claimed = !game.concurrent_per_account;
        move || {
            if claimed {
                glommio::spawn_local(async move {
                    let _ = core.request(Request::ReleaseGame { user, game_id }).await;
                })
                .detach();
            }
        }
    };
    let spawn_user = user.clone();
    // File-system preparation and clone/exec can block: off the reactor.
    let spawned = glommio::executor()
        .spawn_blocking(move || {
            let spec = game::prepare(&config, &game, &spawn_user, &info, run_as.as_ref())
                .map_err(|e| e.to_string())?;
            pty::spawn(&spec).map_err(|e| e.to_string())
        })
        .await;
    let game_idx = conn.core.metrics.game_index(&game_id);
    conn.core.metrics.game_spawned(game_idx, spawned.is_ok());
    let child = match spawned {
        Ok(c) => c,
        Err(e) => {
            release();
            tracing::warn!(game = %game_id, error = %e, "game failed to start");
            refuse_play(
                &conn,
                key,
                "The game could not be started; the operator has been told.",
            );
            return;
        }
    };
    let viewer: Rc<dyn Viewer> = Rc::new(PlayerViewer {
        conn: Rc::downgrade(&conn),
        key,
    });
    let session = match GameSession::start(
        game_id.clone(),
        user.clone(),
        child,
        viewer,
        game::Accounting {
            running: conn.core.games_running.clone(),
            metrics: conn.core.metrics.clone(),
            game_idx,
            on_end: Some(Box::new(release)),
        },
        tracing::info_span!(
            parent: &conn.span,
            "game",
            game = %game_id,
            account = %crate::auth::printable(&user)
        ),
    ) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "game session setup failed");
            refuse_play(&conn, key, "The game could not be started.");
            return;
        }
    };
    let attached = !conn.is_closed()
        && conn
            .with_terminal_at(key, |t, _| match t.take_starting() {
                Some((lobby, held_input)) => {
                    // Just started, so the game takes it; acknowledged once written.
                    if !held_input.is_empty() {
                        session.write_input(&held_input);
                    }
                    t.mode = Mode::Game {
                        session: session.clone(),
                        lobby,
                    };
                    true
                }
                None => false,
            })
            .unwrap_or(false);
    if !attached {
        // The player left, or closed this channel, while the game was starting: hang it up
        // like any other.
        session.hang_up();
        return;
    }
    tracing::info!(game = %game_id, "game started");
}

fn refuse_play(conn: &Rc<Conn>, key: ChannelKey, message: &str) {
    let held = conn.with_terminal_at(key, |t, _| match t.take_starting() {
        Some((Some(mut l), held_input)) => {
            l.handle_play_refused(message.to_owned());
            t.mode = Mode::Lobby(l);
            held_input.len()
        }
        Some((None, held_input)) => {
            t.mode = Mode::Closing;
            t.finish_with(&format!("{message}\r\n"), 1);
            held_input.len()
        }
        None => 0,
    });
    if let Some(n) = held.filter(|n| *n > 0) {
        conn.ssh.borrow_mut().channel_consumed(key.id, n);
    }
    conn.flush_terminals();
    conn.after_activity();
}

/// The player's SSH channel as a viewer of its game.
struct PlayerViewer {
    conn: Weak<Conn>,
    /// The channel this game was started on; nothing reaches a newer channel with its id.
    key: ChannelKey,
}

impl PlayerViewer {
    /// The connection, while the game's channel is still open on it.
    fn live_conn(&self) -> Option<Rc<Conn>> {
        let c = self.conn.upgrade()?;
        c.with_terminal_at(self.key, |_, _| ())?;
        Some(c)
    }
}

impl Viewer for PlayerViewer {
    fn room(&self) -> usize {
        let Some(c) = self.live_conn() else {
            return 0;
        };
        // Output still queued on the channel goes first.
        let queued = c
            .with_terminal_at(self.key, |t, _| !t.out.is_empty())
            .unwrap_or(true);
        if c.is_closed() || queued {
            0
        } else {
            c.room(self.key.id)
        }
    }

    fn deliver(&self, data: &[u8]) {
        if let Some(c) = self.live_conn() {
            let sent = c.ssh.borrow_mut().send_data(self.key.id, data);
            if sent < data.len() {
                // The room we were promised went away while the read was in flight (a key
                // exchange started, or the window was used): keep the rest, in order.
                let rest = data.get(sent..).unwrap_or_default();
                c.with_terminal_at(self.key, |t, _| t.queue_output(rest));
            }
            c.after_activity();
        }
    }

    fn input_consumed(&self, n: usize) {
        if let Some(c) = self.live_conn() {
            c.ssh.borrow_mut().channel_consumed(self.key.id, n);
            c.after_activity();
        }
    }

    fn ended(&self, status: Option<ExitStatus>) {
        let Some(c) = self.conn.upgrade() else { return };
        let code = match status {
            Some(ExitStatus::Exited(code)) => code as u32,
            Some(ExitStatus::Signaled(sig)) => 128 + sig as u32,
            None => 255,
        };
        let held = c.with_terminal_at(self.key, |t, _| t.game_ended(code));
        if let Some(n) = held.filter(|n| *n > 0) {
            c.ssh.borrow_mut().channel_consumed(self.key.id, n);
        }
        c.flush_terminals();
        c.after_activity();
    }
}
