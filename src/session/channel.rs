//! What runs on one session channel (RFC 4254 §6): its terminal (pty-req, env, size), the
//! output waiting for the client's window, and the application — a state machine moved by
//! value from one state to the next, each state holding exactly its own data:
//!
//! ```text
//! Setup ──shell──▶ Lobby ──Play──▶ Starting ──spawned──▶ Game ──ended──▶ Lobby
//!   │                ▲                │ refused / ended                    (exec: Closing)
//!   └──exec──────────┼───────────────▶│──────────────▶ Lobby (exec: Closing)
//!                    └────────────────┘
//! ```
//!
//! Transitions consume the channel and return the next one ([`Channel::attach`],
//! [`Channel::refuse_play`], …); the table (`table.rs`) takes a channel out and puts the
//! result back in one place. Keystrokes only touch a state in place: a running game's input
//! goes into a buffer whose capacity is kept, so typing allocates nothing.

use super::{Effect, GameKey, WatchKey};
use crate::game::TerminalInfo;
use crate::lobby::Lobby;
use crate::metrics::CoreMetrics;
use crate::pty::WinSize;
use crate::ssh::server::{ChannelId, Millis, ServerConnection, TermSize};
use crate::watch::{GameRef, Listing};
use std::collections::VecDeque;
use std::time::Duration;

/// How long input must pause before a lone ESC counts as the Escape key.
const INPUT_PAUSE_MS: Millis = 60;
/// What the lobby shows when a game it started has ended.
const GAME_ENDED: &str = "Your game has ended.";
/// Capacity a game's input buffer starts with (keystrokes and pastes reuse it).
const INPUT_CAPACITY: usize = 1024;

/// A channel as later work (a control-core answer) knows it: its id and the serial of the
/// channel that was open on it when the work began. The SSH core reuses channel ids
/// lowest-first, so an id alone could land a late answer on a newer channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ChannelKey {
    pub id: ChannelId,
    pub serial: u64,
}

/// One session channel: its terminal and what runs on it.
pub(super) struct Channel {
    /// The terminal, the output queue and the facts every state shares.
    pub tty: Tty,
    /// The application.
    pub mode: Mode,
}

impl Channel {
    /// Give back the buffers that are empty now: the output queue and a game's input.
    pub fn release_idle_buffers(&mut self) {
        if self.tty.out.is_empty() {
            self.tty.out = Vec::new();
        }
        if let Mode::Game(g) = &mut self.mode {
            if g.input.is_empty() {
                g.input = Vec::new();
            }
        }
    }
}

/// What every state of a channel shares.
pub(super) struct Tty {
    /// Which opening of the channel id this is.
    pub key: ChannelKey,
    /// TERM from pty-req (or an env request after it); `None` without a PTY.
    term: Option<String>,
    /// Size from pty-req and window-change.
    pub size: WinSize,
    /// LANG / LC_* from env requests.
    locale: Vec<(String, String)>,
    /// Output waiting for the client's window, in order.
    out: Vec<u8>,
    /// Close the channel once `out` is sent, with this exit status.
    pub close_after: Option<u32>,
    /// When a shell or game started on it (a terminal session, for metrics).
    session_started: Option<Millis>,
    /// When the client last typed on it (the lobby's idle limit).
    last_input: Millis,
    /// When a lone ESC typed into the lobby becomes the Escape key, if input stays paused.
    input_pause_at: Option<Millis>,
    /// The watch menu's list of games: asked for and not answered yet.
    pub list_asked: bool,
    /// When the watch menu's list is due for a refresh.
    pub list_due: Option<Millis>,
}

/// The application on a channel.
pub(super) enum Mode {
    /// Collecting pty-req and env before shell or exec.
    Setup,
    /// The menus.
    Lobby(Box<Lobby>),
    /// A game is being claimed and spawned (off the core).
    Starting(Starting),
    /// A game runs.
    Game(Game),
    /// Someone's game is being watched (the lobby, in its watching state, waits for `q`).
    Watching(Watching),
    /// The channel is being closed (our CLOSE sent, or about to be): input is dropped.
    Closing,
}

/// A game on its way.
pub(super) struct Starting {
    /// The game's key (the spawn answer names it).
    pub game: GameKey,
    /// Which configured game.
    pub game_id: String,
    /// The account it is started for.
    pub user: String,
    /// Where the player returns (None when started by exec).
    pub lobby: Option<Box<Lobby>>,
    /// Input typed meanwhile, unacknowledged (so the channel window bounds it): the game
    /// gets it once it runs.
    pub held: Vec<u8>,
    /// Claim or spawn.
    pub step: StartStep,
}

/// Where a start is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StartStep {
    /// Waiting for the control core's `ClaimGame` answer.
    Claiming,
    /// [`Effect::Spawn`] went out, with the terminal at this size.
    Spawning { size: WinSize },
}

/// A running game.
pub(super) struct Game {
    /// The game's key (PTY output, writes and its end name it).
    pub key: GameKey,
    /// Who plays it.
    pub user: String,
    /// Which game it is (the configuration's id).
    pub game_id: String,
    /// Where the player returns (None when started by exec).
    pub lobby: Option<Box<Lobby>>,
    /// Input not yet written to the PTY, acknowledged to the client as it is written.
    pub input: Vec<u8>,
}

/// Someone's game on the channel's terminal.
pub(super) struct Watching {
    /// This watch (the game's core names it in what it sends).
    pub watch: WatchKey,
    pub game: GameRef,
    /// Where the watcher returns; it decides when to stop.
    pub lobby: Box<Lobby>,
    pub feed: Feed,
}

/// Whether a watcher's picture is whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Feed {
    /// The game's screen was asked for; output before it is dropped.
    Awaiting,
    /// The screen arrived; output follows it.
    Live,
    /// Output was dropped (the watcher fell behind): a fresh screen is asked for once what
    /// is queued has gone out.
    Behind,
}

/// Most output queued for a watcher before it falls behind (and is re-synced from the
/// game's screen instead of being fed the backlog).
pub(super) const WATCH_BACKLOG: usize = 64 * 1024;

/// What became of input from the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Taken {
    /// Dealt with: return it to the client's window now.
    Consumed,
    /// Kept for a game: acknowledged once written to its PTY.
    Held,
}

impl Channel {
    /// A channel just opened: collecting its terminal's description.
    pub fn new(key: ChannelKey, now: Millis) -> Channel {
        Channel {
            tty: Tty {
                key,
                term: None,
                size: WinSize {
                    cols: 80,
                    rows: 24,
                    px_width: 0,
                    px_height: 0,
                },
                locale: Vec::new(),
                out: Vec::new(),
                close_after: None,
                session_started: None,
                last_input: now,
                input_pause_at: None,
                list_asked: false,
                list_due: None,
            },
            mode: Mode::Setup,
        }
    }

    /// Whether `game` is the game starting or running here.
    pub fn has_game(&self, game: GameKey) -> bool {
        match &self.mode {
            Mode::Starting(s) => s.game == game,
            Mode::Game(g) => g.key == game,
            _ => false,
        }
    }

    /// Whether a game is starting or running here.
    pub fn busy_with_game(&self) -> bool {
        matches!(self.mode, Mode::Starting(_) | Mode::Game(_))
    }

    /// The account this channel is logged in as (a lobby) or plays as (a game).
    pub fn account(&self) -> Option<&str> {
        match &self.mode {
            Mode::Lobby(l) => l.user().map(|u| u.name.as_str()),
            Mode::Starting(s) => Some(s.user.as_str()),
            Mode::Game(g) => Some(g.user.as_str()),
            Mode::Watching(w) => w.lobby.user().map(|u| u.name.as_str()),
            Mode::Setup | Mode::Closing => None,
        }
    }

    /// The lobby, when it is what runs here.
    pub fn lobby_mut(&mut self) -> Option<&mut Lobby> {
        match &mut self.mode {
            Mode::Lobby(l) => Some(l),
            Mode::Watching(w) => Some(&mut w.lobby),
            _ => None,
        }
    }

    /// The channel's lobby, also one kept aside while its game starts or runs (it draws
    /// nothing then, but takes new context for when it is back).
    pub fn lobby_any_mut(&mut self) -> Option<&mut Lobby> {
        match &mut self.mode {
            Mode::Lobby(l) => Some(l),
            Mode::Watching(w) => Some(&mut w.lobby),
            Mode::Starting(s) => s.lobby.as_deref_mut(),
            Mode::Game(g) => g.lobby.as_deref_mut(),
            _ => None,
        }
    }

    /// Output is waiting for the client's window.
    pub fn has_queued_output(&self) -> bool {
        !self.tty.out.is_empty()
    }

    /// Input waiting for the running game's PTY.
    pub fn pending_input(&self) -> &[u8] {
        match &self.mode {
            Mode::Game(g) => &g.input,
            _ => &[],
        }
    }

    /// Input from the client. A running game queues it (and asks for a PTY write when the
    /// queue was empty), a starting one holds it, a lobby acts on it; the rest is dropped.
    pub fn input(&mut self, data: &[u8], now: Millis, effects: &mut VecDeque<Effect>) -> Taken {
        self.tty.last_input = now;
        match &mut self.mode {
            Mode::Game(g) => {
                let was_empty = g.input.is_empty();
                g.input.extend_from_slice(data);
                if was_empty && !g.input.is_empty() {
                    effects.push_back(Effect::PtyWrite { game: g.key });
                }
                Taken::Held
            }
            Mode::Starting(s) => {
                s.held.extend_from_slice(data);
                Taken::Held
            }
            Mode::Watching(w) => {
                // Never the game's: the watcher's keys only decide when to stop.
                w.lobby.handle_input(data);
                Taken::Consumed
            }
            Mode::Lobby(l) => {
                l.handle_input(data);
                // A lone ESC is only known to be Escape once no more bytes follow.
                self.tty.input_pause_at = l
                    .wants_input_idle()
                    .then_some(now.saturating_add(INPUT_PAUSE_MS));
                Taken::Consumed
            }
            Mode::Setup | Mode::Closing => Taken::Consumed,
        }
    }

    /// `n` bytes of the game's input reached its PTY; returns how many left the queue.
    pub fn input_written(&mut self, n: usize) -> usize {
        match &mut self.mode {
            Mode::Game(g) => {
                let n = n.min(g.input.len());
                g.input.drain(..n);
                n
            }
            _ => 0,
        }
    }

    /// The lobby's input pause ran out: a pending lone ESC is the Escape key.
    pub fn input_paused(&mut self) {
        self.tty.input_pause_at = None;
        if let Some(l) = self.lobby_mut() {
            l.handle_input_idle();
        }
    }

    /// When the lobby's input pause runs out, if it waits for one.
    pub fn input_pause_at(&self) -> Option<Millis> {
        self.tty.input_pause_at
    }

    /// The terminal changed size: the lobby redraws (or will, when its game ends), a running
    /// game's PTY follows.
    pub fn resize(&mut self, size: TermSize, effects: &mut VecDeque<Effect>) {
        self.tty.size = win(size);
        match &mut self.mode {
            Mode::Lobby(l) => l.handle_resize(size.cols, size.rows),
            Mode::Watching(w) => w.lobby.handle_resize(size.cols, size.rows),
            Mode::Starting(s) => {
                if let Some(l) = &mut s.lobby {
                    l.handle_resize(size.cols, size.rows);
                }
            }
            Mode::Game(g) => {
                if let Some(l) = &mut g.lobby {
                    l.handle_resize(size.cols, size.rows);
                }
                effects.push_back(Effect::PtyResize {
                    game: g.key,
                    size: self.tty.size,
                });
            }
            Mode::Setup | Mode::Closing => {}
        }
    }

    /// Game output: sent as the window allows, the rest queued after what already waits.
    pub fn deliver(&mut self, ssh: &mut ServerConnection, data: &[u8]) {
        if self.tty.out.is_empty() {
            let sent = ssh.send_data(self.tty.key.id, data);
            // The room we were promised went away while the read was in flight (a key
            // exchange started, or the window was used): keep the rest, in order.
            self.tty
                .out
                .extend_from_slice(data.get(sent..).unwrap_or_default());
        } else {
            self.tty.out.extend_from_slice(data);
            self.flush(ssh);
        }
    }

    /// Move lobby output into the queue and send what the window allows; once all is sent,
    /// a pending close goes out. Returns true when the channel was closed now (the caller
    /// moves it to [`Channel::into_closing`]).
    pub fn flush(&mut self, ssh: &mut ServerConnection) -> bool {
        let Tty { key, out, .. } = &mut self.tty;
        if let Mode::Lobby(lobby) = &mut self.mode {
            // The lobby draws only into an empty queue: while a client is not taking what
            // was drawn (its window is full), later changes wait in the lobby as "redraw"
            // and go out as one screen, instead of every resize stacking up another.
            if out.is_empty() {
                lobby.poll_output(out);
            }
        }
        if !out.is_empty() {
            let n = ssh.send_data(key.id, out);
            out.drain(..n);
        }
        if !out.is_empty() {
            return false;
        }
        let Some(status) = self.tty.close_after.take() else {
            return false;
        };
        let id = self.tty.key.id;
        ssh.send_exit_status(id, status);
        ssh.send_eof(id);
        ssh.close_channel(id);
        true
    }

    // ----- transitions: each consumes the channel and returns the next -----

    /// A shell request with a terminal: the lobby takes the channel.
    pub fn into_lobby(self, lobby: Box<Lobby>) -> Channel {
        match self.mode {
            Mode::Setup => Channel {
                tty: self.tty,
                mode: Mode::Lobby(lobby),
            },
            _ => self,
        }
    }

    /// A game starts from the lobby (which waits for it) or from exec (`Setup`).
    pub fn into_starting(self, game: GameKey, game_id: String, user: String) -> Channel {
        let Channel { tty, mode } = self;
        let lobby = match mode {
            Mode::Lobby(l) => Some(l),
            Mode::Setup => None,
            other => return Channel { tty, mode: other },
        };
        Channel {
            tty,
            mode: Mode::Starting(Starting {
                game,
                game_id,
                user,
                lobby,
                held: Vec::new(),
                step: StartStep::Claiming,
            }),
        }
    }

    /// The game `game` is running: the channel plays it, with the input typed meanwhile
    /// (written, then acknowledged) and the size it has now. Returns whether it attached
    /// (false: this channel is not waiting for that spawn).
    pub fn attach(self, game: GameKey, effects: &mut VecDeque<Effect>) -> (Channel, bool) {
        let Channel { tty, mode } = self;
        match mode {
            Mode::Starting(Starting {
                game: key,
                game_id,
                user,
                lobby,
                mut held,
                step: StartStep::Spawning { size },
            }) if key == game => {
                if !held.is_empty() {
                    effects.push_back(Effect::PtyWrite { game });
                }
                if size != tty.size {
                    effects.push_back(Effect::PtyResize {
                        game,
                        size: tty.size,
                    });
                }
                held.reserve(INPUT_CAPACITY.saturating_sub(held.len()));
                let playing = Game {
                    key: game,
                    user,
                    game_id,
                    lobby,
                    input: held,
                };
                let ch = Channel {
                    tty,
                    mode: Mode::Game(playing),
                };
                (ch, true)
            }
            other => (Channel { tty, mode: other }, false),
        }
    }

    /// The game could not start: back to the lobby showing `message`, or (exec) the message
    /// and exit status 1. Returns the held input's length, for the caller to acknowledge.
    pub fn refuse_play(self, message: &str) -> (Channel, usize) {
        let Channel { mut tty, mode } = self;
        match mode {
            Mode::Starting(s) => {
                let held = s.held.len();
                let mode = match s.lobby {
                    Some(mut l) => {
                        l.handle_play_refused(message.to_owned());
                        Mode::Lobby(l)
                    }
                    None => {
                        tty.finish_with(&format!("{message}\r\n"), 1);
                        Mode::Closing
                    }
                };
                (Channel { tty, mode }, held)
            }
            other => (Channel { tty, mode: other }, 0),
        }
    }

    /// The game asked for is open on another connection: the lobby asks whether to take it
    /// over. Returns the length of the input held meanwhile, for the caller to acknowledge.
    /// (Only a channel with a lobby is asked; see `Session::resume`.)
    pub fn offer_take_over(self, listing: &Listing) -> (Channel, usize) {
        let Channel { tty, mode } = self;
        match mode {
            Mode::Starting(Starting {
                lobby: Some(mut l),
                held,
                ..
            }) => {
                l.handle_take_over_offer(listing);
                let held = held.len();
                (
                    Channel {
                        tty,
                        mode: Mode::Lobby(l),
                    },
                    held,
                )
            }
            other => (Channel { tty, mode: other }, 0),
        }
    }

    /// Whether a game starting on this channel came from a lobby (else: an exec).
    pub fn starting_from_lobby(&self) -> bool {
        matches!(&self.mode, Mode::Starting(s) if s.lobby.is_some())
    }

    /// The channel's game ended with exit `code`: back to the lobby it came from, or (exec)
    /// close with `code`. Returns the length of the input it never took, for the caller to
    /// acknowledge. A game can end before its start completed: its held input is dropped.
    pub fn game_ended(self, code: u32) -> (Channel, usize) {
        let Channel { mut tty, mode } = self;
        let (lobby, unread) = match mode {
            Mode::Game(g) => (g.lobby, g.input.len()),
            Mode::Starting(s) => (s.lobby, s.held.len()),
            other => return (Channel { tty, mode: other }, 0),
        };
        let mode = match lobby {
            Some(mut l) => {
                l.handle_game_ended(GAME_ENDED.into());
                Mode::Lobby(l)
            }
            None => {
                tty.close_after = Some(code);
                Mode::Closing
            }
        };
        (Channel { tty, mode }, unread)
    }

    /// The lobby chose a game to watch: the channel shows its screen from now on.
    pub fn into_watching(self, watch: WatchKey, game: GameRef) -> Channel {
        match self.mode {
            Mode::Lobby(lobby) => Channel {
                tty: self.tty,
                mode: Mode::Watching(Watching {
                    watch,
                    game,
                    lobby,
                    feed: Feed::Awaiting,
                }),
            },
            mode => Channel {
                tty: self.tty,
                mode,
            },
        }
    }

    /// Watching stops (the watcher's `q`, or the game is gone): back to the lobby, which
    /// shows its watch menu. Returns the watch that ended, if one was on.
    pub fn stop_watching(self) -> (Channel, Option<(WatchKey, GameRef)>) {
        let Channel { mut tty, mode } = self;
        match mode {
            Mode::Watching(w) => {
                // What was queued of the game's picture is no use any more.
                tty.out.clear();
                let ch = Channel {
                    tty,
                    mode: Mode::Lobby(w.lobby),
                };
                (ch, Some((w.watch, w.game)))
            }
            mode => (Channel { tty, mode }, None),
        }
    }

    /// The watched game's screen (on attach or a re-sync), `cols`×`rows`: it replaces
    /// whatever is still queued, and the output after it follows. A watcher whose terminal
    /// is smaller is told so on its bottom line.
    pub fn watch_screen(
        &mut self,
        ssh: &mut ServerConnection,
        screen: &[u8],
        cols: u16,
        rows: u16,
    ) {
        let Mode::Watching(w) = &mut self.mode else {
            return;
        };
        w.feed = Feed::Live;
        if !self.tty.out.is_empty() {
            self.tty.out.clear();
            // CAN: a sequence cut short by the dropped backlog is abandoned by the terminal.
            self.tty.out.push(0x18);
        }
        self.tty.out.extend_from_slice(screen);
        let (mine_cols, mine_rows) = (self.tty.size.cols, self.tty.size.rows);
        if mine_cols < cols || mine_rows < rows {
            let text = format!(
                " This game is {cols}x{rows}, your terminal is {mine_cols}x{mine_rows}: \
                 enlarge it to see everything. q: stop watching "
            );
            let text: String = text.chars().take(usize::from(mine_cols)).collect();
            let notice = format!("\x1b7\x1b[{mine_rows};1H\x1b[0;7m{text}\x1b[0m\x1b8");
            self.tty.out.extend_from_slice(notice.as_bytes());
        }
        self.flush(ssh);
    }

    /// Output of the watched game. Returns false when the watcher fell behind (the output
    /// was dropped; a fresh screen is wanted once the queue drains).
    pub fn watch_output(
        &mut self,
        ssh: &mut ServerConnection,
        bytes: &[u8],
        backlog: usize,
    ) -> bool {
        let Mode::Watching(w) = &mut self.mode else {
            return true;
        };
        match w.feed {
            Feed::Live => {}
            Feed::Awaiting | Feed::Behind => return true,
        }
        if self.tty.out.len() + backlog + bytes.len() > WATCH_BACKLOG {
            w.feed = Feed::Behind;
            return false;
        }
        self.deliver(ssh, bytes);
        true
    }

    /// A watcher that fell behind and whose queue has drained: it asks for a fresh screen
    /// (returns the watch to re-sync).
    pub fn wants_resync(&mut self, backlog: usize) -> Option<(WatchKey, GameRef)> {
        let Mode::Watching(w) = &mut self.mode else {
            return None;
        };
        if w.feed == Feed::Behind && self.tty.out.is_empty() && backlog < WATCH_BACKLOG / 2 {
            w.feed = Feed::Awaiting;
            return Some((w.watch, w.game));
        }
        None
    }

    /// Output for the watcher here was lost: it needs a fresh screen.
    pub fn fell_behind(&mut self) {
        if let Mode::Watching(w) = &mut self.mode {
            if w.feed == Feed::Live {
                w.feed = Feed::Behind;
            }
        }
    }

    /// A watcher here fell behind and waits for its queue to drain.
    pub fn is_behind(&self) -> bool {
        matches!(&self.mode, Mode::Watching(w) if w.feed == Feed::Behind)
    }

    /// The watch of `watch` is what runs here.
    pub fn is_watching(&self, watch: WatchKey) -> bool {
        matches!(&self.mode, Mode::Watching(w) if w.watch == watch)
    }

    /// The lobby's idle limit ran out: say so and close the channel.
    pub fn idle_out(self, message: &str) -> Channel {
        match self.mode {
            Mode::Lobby(_) if self.tty.close_after.is_none() => {
                let mut tty = self.tty;
                tty.out.clear();
                tty.finish_with(message, 0);
                Channel {
                    tty,
                    mode: Mode::Closing,
                }
            }
            _ => self,
        }
    }

    /// Our CLOSE went out: input is dropped from now on. A game (never closed this way) is
    /// kept, so its hangup is not lost.
    pub fn into_closing(self) -> Channel {
        match self.mode {
            Mode::Setup | Mode::Lobby(_) => Channel {
                tty: self.tty,
                mode: Mode::Closing,
            },
            _ => self,
        }
    }

    /// The channel or the connection is gone: a running game gets its hangup (a starting one
    /// is hung up when its spawn is answered), and the terminal session is counted.
    pub fn teardown(self, metrics: &CoreMetrics, now: Millis, effects: &mut VecDeque<Effect>) {
        match &self.mode {
            Mode::Game(g) => effects.push_back(Effect::Hangup { game: g.key }),
            Mode::Watching(w) => {
                metrics.spectator_left();
                effects.push_back(Effect::Unwatch {
                    watch: w.watch,
                    game: w.game,
                });
            }
            _ => {}
        }
        if let Some(started) = self.tty.session_started {
            let lived = Duration::from_millis(now.saturating_sub(started));
            metrics.terminal_session_ended(lived, self.tty.close_after.is_none_or(|s| s == 0));
        }
    }
}

impl Tty {
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

    /// The client asked for a PTY.
    pub fn has_pty(&self) -> bool {
        self.term.is_some()
    }

    /// What a game started here is told about its terminal.
    pub fn terminal_info(&self) -> TerminalInfo {
        TerminalInfo {
            term: self.term.clone().unwrap_or_else(|| "vt100".into()),
            locale: self.locale.clone(),
            size: self.size,
        }
    }

    /// Since when a lobby on this channel has had no input (None: not a lobby, or closing).
    pub fn lobby_idle_since(&self, mode: &Mode) -> Option<Millis> {
        (matches!(mode, Mode::Lobby(_)) && self.close_after.is_none()).then_some(self.last_input)
    }

    pub fn queue_output(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// Finish the channel with a message and exit status.
    pub fn finish_with(&mut self, text: &str, status: u32) {
        self.queue_output(text.as_bytes());
        self.close_after = Some(status);
    }

    /// A shell or game begins on this channel (counted once).
    pub fn begin_session(&mut self, metrics: &CoreMetrics, now: Millis) {
        if self.session_started.is_none() {
            self.session_started = Some(now);
            metrics.terminal_session_started();
        }
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
