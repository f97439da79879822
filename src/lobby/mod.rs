//! The lobby: the terminal menus a player sees after SSH login, as a sans-io state machine.
//!
//! Input bytes go in ([`Lobby::handle_input`]), screen bytes ([`Lobby::poll_output`]) and
//! requests ([`Lobby::poll_action`]) come out; the server answers requests later through the
//! `handle_*_result` methods. No I/O, no clock, no async. Conventions follow dgamelaunch (see
//! SPEC §1): an anonymous menu (`l` log in, `r` register, `q` quit) and a logged-in menu (one
//! key per game, `o` edit a game's options, `c` change password, `e` change e-mail, `k` SSH
//! keys, `a` admin for admins, `q` quit), under an operator banner.
//!
//! Rules the caller can rely on:
//! - **Watching** asks nothing that the lobby waits for: `ListGames` (again about once a second
//!   while [`Lobby::wants_game_list`]), `Watch` (the lobby then draws nothing until `q` or
//!   [`Lobby::handle_watch_ended`]) and `StopWatching` may come out together.
//! - **One request at a time.** After an action other than `Quit` is polled, the lobby shows a
//!   "please wait" screen (or, after `Play`, steps aside for the game) and *discards* all input,
//!   Ctrl-C included, until the matching `handle_*` answer arrives. Type-ahead is not kept:
//!   keys pressed while a password is being checked must not land in the next menu. The keys
//!   screen (`ListKeys`, `AddKey`, `RemoveKey`), the options editor (`ReadOptions`,
//!   `WriteOptions`) and the admin screen (`Admin*`) say "please wait" on their prompt line
//!   instead.
//! - **SSH keys** are the logged-in account's own: key actions name no account, the caller
//!   supplies the one the lobby is logged in as. A guest whose client logged in with a key
//!   ([`Lobby::set_offered_key`]) is asked after registering whether to bind it
//!   (`BindOfferedKey`).
//! - **Admin** actions (`AdminSessions`, `AdminKick`, `AdminBroadcast`, `AdminDrain`,
//!   `AdminLock`) come only from the admin screen, which opens only for a [`UserInfo::admin`]
//!   account. The caller should still check that flag before acting on one.
//! - **Screens** are drawn for the current size; below 80x24 a "terminal too small" screen is
//!   shown instead, where only `q`/Ctrl-D (in a menu) and Ctrl-C/Escape (in a prompt) work.
//!   Every resize redraws. While a game runs the lobby draws nothing.
//! - **Escape**: a lone ESC byte might begin an arrow key's sequence, so it is decided by the
//!   next byte, or by [`Lobby::handle_input_idle`], which the caller should call when input
//!   has paused (e.g. 50 ms after the last byte). Without that call, Escape acts on the next key.
//! - **Passwords** are never echoed, never kept outside zeroized buffers, and never shown by
//!   `Debug`.

mod admin;
mod banner;
mod form;
mod input;
mod keys;
mod line_edit;
mod menu;
mod options;
mod screen;
mod watch;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::fmt;

use zeroize::Zeroizing;

use self::admin::AdminMenu;
use self::form::{FlowKind, Form, FormStep};
use self::input::{Key, KeyDecoder};
pub use self::keys::KeyEntry;
use self::keys::{KeyOffer, KeysMenu};
use self::menu::{Choice, RunningGame};
pub use self::options::OptionsFile;
use self::options::OptionsScreen;
use self::screen::{Frame, Line, Notice, Style, INDENT, MIN_COLS, MIN_ROWS};
use self::watch::{WatchMenu, WatchStep};
use crate::admin::SessionId;
use crate::watch::{GameList, GameRef, Listing};

/// A game the logged-in menu offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GameEntry {
    /// The configuration's id, sent back in [`LobbyAction::Play`].
    pub id: String,
    /// What the menu shows (`NetHack 3.6`).
    pub name: String,
    /// The menu key, assigned by the caller (`p` for the first game). `c`, `e`, `k`, `o`, `w`,
    /// `q` and, for admins, `a` are taken by the lobby itself and win over a game with the
    /// same key.
    pub key: char,
    /// False when the game's command is missing: shown "(unavailable)" and refused.
    pub available: bool,
    /// The game has a per-player options (rc) file, which `o` edits.
    pub options: bool,
}

/// What the server tells the lobby about itself; may change at any time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LobbyContext {
    /// `$SERVERID` in the banner.
    pub server_id: String,
    /// The banner template (see the `banner` module for variables and colour).
    pub banner: String,
    /// The games of the logged-in menu, in menu order.
    pub games: Vec<GameEntry>,
    /// `$PLAYERS` in the banner.
    pub players: usize,
    /// `$WATCHERS` in the banner.
    pub watchers: usize,
    /// `$DATE` in the banner, formatted by the caller (the lobby has no clock).
    pub date: String,
}

/// The account a session is logged in as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserInfo {
    /// Account name, shown in the menu and as `$USERNAME`.
    pub name: String,
    /// Admins see the `a` entry.
    pub admin: bool,
    /// The account's games running when it logged in (offered at once; see
    /// [`Lobby::handle_my_games`] for later).
    pub running: Vec<Listing>,
}

/// A request from the lobby to the server. `Debug` redacts passwords.
#[derive(PartialEq, Eq)]
pub enum LobbyAction {
    /// The player left; close the session. [`Lobby::is_finished`] is true from now on.
    Quit,
    /// Check a name and password; answer with [`Lobby::handle_login_result`].
    Login {
        /// Account name as typed (trimmed, printable ASCII).
        name: String,
        /// Password as typed.
        password: Zeroizing<String>,
    },
    /// Create an account; answer with [`Lobby::handle_register_result`].
    Register {
        /// Wanted account name (trimmed, printable ASCII, not yet validated).
        name: String,
        /// Password, typed twice identically.
        password: Zeroizing<String>,
        /// E-mail, if one was given (lightly checked: `x@y`).
        email: Option<String>,
    },
    /// Start a game; answer with [`Lobby::handle_game_ended`] or [`Lobby::handle_play_refused`].
    Play {
        /// The [`GameEntry::id`] chosen.
        game_id: String,
    },
    /// Change the logged-in user's password; answer with [`Lobby::handle_change_result`].
    ChangePassword {
        /// The new password, typed twice identically.
        new_password: Zeroizing<String>,
    },
    /// Change or (with `None`) remove the e-mail; answer with [`Lobby::handle_change_result`].
    ChangeEmail {
        /// The new address.
        email: Option<String>,
    },
    /// The watch menu wants the list of running games: answer with
    /// [`Lobby::handle_game_list`] (now, and again about once a second while
    /// [`Lobby::wants_game_list`] says so).
    ListGames,
    /// Watch a game: its screen goes to the terminal until [`LobbyAction::StopWatching`] or
    /// [`Lobby::handle_watch_ended`]. The lobby draws nothing meanwhile.
    Watch {
        /// The game chosen in the watch menu.
        game: GameRef,
    },
    /// The watcher pressed `q`: stop sending the game's screen; the watch menu is back.
    StopWatching,
    /// The logged-in player's games still running, to offer their resumption: answer with
    /// [`Lobby::handle_my_games`] (the lobby does not wait for it).
    ListMyGames,
    /// Take over the player's game open on another connection (that connection is closed);
    /// answered like [`LobbyAction::Play`].
    TakeOver { game_id: String, game: GameRef },
    /// The keys screen wants the logged-in account's SSH keys: answer with
    /// [`Lobby::handle_keys_result`].
    ListKeys,
    /// Add this OpenSSH public key line (checked by the lobby already; check it again) to the
    /// logged-in account; answer with [`Lobby::handle_keys_result`].
    AddKey {
        /// The line as pasted, trimmed.
        line: String,
    },
    /// Remove the logged-in account's key with this `SHA256:…` fingerprint; answer with
    /// [`Lobby::handle_keys_result`].
    RemoveKey {
        /// The key's fingerprint.
        fingerprint: String,
    },
    /// The account just registered wants the key its SSH client logged in with (see
    /// [`Lobby::set_offered_key`]); answer with [`Lobby::handle_keys_result`].
    BindOfferedKey,
    /// The options editor wants the logged-in account's options file of this game (one with
    /// [`GameEntry::options`]): answer with [`Lobby::handle_options_read`].
    ReadOptions {
        /// The [`GameEntry::id`] chosen.
        game_id: String,
    },
    /// Write the logged-in account's options file of this game; answer with
    /// [`Lobby::handle_options_saved`].
    WriteOptions {
        /// The [`GameEntry::id`] being edited.
        game_id: String,
        /// The whole file: printable lines, each ended by a newline, at most 64 KiB (check
        /// it again).
        text: String,
    },
    /// The admin screen wants every connection on the server: answer with
    /// [`Lobby::handle_admin_sessions`]. This and the other `Admin*` actions come from an
    /// admin account's lobby only; check [`UserInfo::admin`] again before acting.
    AdminSessions,
    /// Close a connection, telling it `reason`; answer with [`Lobby::handle_admin_result`].
    AdminKick {
        /// The connection chosen in the list.
        session: SessionId,
        /// As typed, trimmed; empty for the server's default reason.
        reason: String,
    },
    /// One line for every player's lobby; answer with [`Lobby::handle_admin_result`].
    AdminBroadcast {
        /// As typed, trimmed, not empty.
        text: String,
    },
    /// Stop new games on the whole server (`on`) or allow them again; answer with
    /// [`Lobby::handle_admin_result`].
    AdminDrain { on: bool },
    /// Lock (`locked`) or unlock account `name`; answer with [`Lobby::handle_admin_result`].
    AdminLock {
        /// The account's name as typed, trimmed.
        name: String,
        locked: bool,
        /// Why, shown to the locked account's connections (locking only).
        reason: Option<String>,
    },
}

impl fmt::Debug for LobbyAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const HIDDEN: &str = "<redacted>";
        match self {
            LobbyAction::Quit => f.write_str("Quit"),
            LobbyAction::Login { name, .. } => f
                .debug_struct("Login")
                .field("name", name)
                .field("password", &HIDDEN)
                .finish(),
            LobbyAction::Register { name, email, .. } => f
                .debug_struct("Register")
                .field("name", name)
                .field("password", &HIDDEN)
                .field("email", email)
                .finish(),
            LobbyAction::Play { game_id } => {
                f.debug_struct("Play").field("game_id", game_id).finish()
            }
            LobbyAction::ChangePassword { .. } => f
                .debug_struct("ChangePassword")
                .field("new_password", &HIDDEN)
                .finish(),
            LobbyAction::ChangeEmail { email } => {
                f.debug_struct("ChangeEmail").field("email", email).finish()
            }
            LobbyAction::ListGames => f.write_str("ListGames"),
            LobbyAction::Watch { game } => f.debug_struct("Watch").field("game", game).finish(),
            LobbyAction::StopWatching => f.write_str("StopWatching"),
            LobbyAction::ListMyGames => f.write_str("ListMyGames"),
            LobbyAction::TakeOver { game_id, game } => f
                .debug_struct("TakeOver")
                .field("game_id", game_id)
                .field("game", game)
                .finish(),
            LobbyAction::ListKeys => f.write_str("ListKeys"),
            LobbyAction::AddKey { line } => f
                .debug_struct("AddKey")
                .field("bytes", &line.len())
                .finish(),
            LobbyAction::RemoveKey { fingerprint } => f
                .debug_struct("RemoveKey")
                .field("fingerprint", fingerprint)
                .finish(),
            LobbyAction::BindOfferedKey => f.write_str("BindOfferedKey"),
            LobbyAction::ReadOptions { game_id } => f
                .debug_struct("ReadOptions")
                .field("game_id", game_id)
                .finish(),
            LobbyAction::WriteOptions { game_id, text } => f
                .debug_struct("WriteOptions")
                .field("game_id", game_id)
                .field("bytes", &text.len())
                .finish(),
            LobbyAction::AdminSessions => f.write_str("AdminSessions"),
            LobbyAction::AdminKick { session, reason } => f
                .debug_struct("AdminKick")
                .field("session", &format_args!("{session}"))
                .field("reason", reason)
                .finish(),
            LobbyAction::AdminBroadcast { text } => f
                .debug_struct("AdminBroadcast")
                .field("text", text)
                .finish(),
            LobbyAction::AdminDrain { on } => f.debug_struct("AdminDrain").field("on", on).finish(),
            LobbyAction::AdminLock {
                name,
                locked,
                reason,
            } => f
                .debug_struct("AdminLock")
                .field("name", name)
                .field("locked", locked)
                .field("reason", reason)
                .finish(),
        }
    }
}

/// One player's lobby session.
pub struct Lobby {
    /// Banner, games and counts, as last given by the caller.
    ctx: LobbyContext,
    /// The account logged in, `None` in the anonymous lobby.
    user: Option<UserInfo>,
    /// Terminal width in columns.
    cols: u16,
    /// Terminal height in rows.
    rows: u16,
    /// Which screen is up.
    mode: Mode,
    /// The message under the menu (a failed login, "your game was saved").
    notice: Option<Notice>,
    /// Turns input bytes into keys across calls.
    decoder: KeyDecoder,
    /// Requests not yet polled by the caller.
    actions: VecDeque<LobbyAction>,
    /// How much of the screen must be redrawn at the next [`Lobby::poll_output`].
    dirty: Dirty,
    /// Failed lobby logins on this connection (capped at [`MAX_FAILED_LOGINS`]).
    failed_logins: u8,
    /// Failed registrations on this connection (capped at [`MAX_FAILED_REGISTRATIONS`]).
    failed_registrations: u8,
    /// What the last screen says when the lobby ends on its own ("Goodbye!" otherwise).
    farewell: Option<&'static str>,
    /// Failed logins allowed on this connection (default [`MAX_FAILED_LOGINS`]).
    max_failed_logins: u8,
    /// Failed registrations allowed (default [`MAX_FAILED_REGISTRATIONS`]).
    max_failed_registrations: u8,
    /// The logged-in player's games still running, as last told (`r` goes back to the first).
    running: Vec<RunningGame>,
    /// An admin's message that came while the menu was not up: shown when it is back.
    pending_broadcast: Option<Notice>,
    /// Fingerprint of the key the guest's SSH client logged in with: offered for binding
    /// once, right after a registration.
    offered_key: Option<String>,
}

/// Failed logins one connection may make in the lobby before it is closed.
pub const MAX_FAILED_LOGINS: u8 = 3;
/// Failed registrations one connection may make in the lobby before it is closed.
pub const MAX_FAILED_REGISTRATIONS: u8 = 3;

impl fmt::Debug for Lobby {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lobby")
            .field("user", &self.user)
            .field("cols", &self.cols)
            .field("rows", &self.rows)
            .field("mode", &self.mode.name())
            .field("pending_actions", &self.actions.len())
            .finish_non_exhaustive()
    }
}

impl Lobby {
    /// A lobby for a `cols`x`rows` terminal: the anonymous menu when `user` is `None`, the
    /// logged-in one otherwise. The first full screen is queued for [`Lobby::poll_output`].
    /// A size of 0 (unknown) is taken as 80x24.
    #[must_use]
    pub fn new(ctx: LobbyContext, user: Option<UserInfo>, cols: u16, rows: u16) -> Lobby {
        let mut lobby = Lobby {
            ctx,
            user,
            cols: MIN_COLS,
            rows: MIN_ROWS,
            mode: Mode::Menu,
            notice: None,
            decoder: KeyDecoder::default(),
            actions: VecDeque::new(),
            dirty: Dirty::Full,
            failed_logins: 0,
            failed_registrations: 0,
            farewell: None,
            max_failed_logins: MAX_FAILED_LOGINS,
            max_failed_registrations: MAX_FAILED_REGISTRATIONS,
            running: Vec::new(),
            pending_broadcast: None,
            offered_key: None,
        };
        lobby.set_size(cols, rows);
        if let Some(running) = lobby.user.as_ref().map(|u| u.running.clone()) {
            lobby.handle_my_games(&running);
        }
        lobby
    }

    /// Failed logins and registrations this connection may make before the lobby ends
    /// (at least 1 each).
    pub fn set_attempt_limits(&mut self, failed_logins: u8, failed_registrations: u8) {
        self.max_failed_logins = failed_logins.max(1);
        self.max_failed_registrations = failed_registrations.max(1);
    }

    /// Feeds bytes typed by the player, split anywhere.
    pub fn handle_input(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            if matches!(self.mode, Mode::Finished | Mode::Playing) {
                return;
            }
            for key in self.decoder.push(byte) {
                self.on_key(key);
            }
        }
    }

    /// Whether the input so far ends in a lone ESC: the caller should call
    /// [`Self::handle_input_idle`] once input pauses (a few tens of ms), to know it was the
    /// Escape key and not the start of an arrow key's sequence.
    pub fn wants_input_idle(&self) -> bool {
        !matches!(self.mode, Mode::Finished | Mode::Playing) && self.decoder.escape_pending()
    }

    /// Input has paused: a pending lone ESC byte is the Escape key (cancels a prompt).
    pub fn handle_input_idle(&mut self) {
        if matches!(self.mode, Mode::Finished | Mode::Playing) {
            return;
        }
        if let Some(key) = self.decoder.flush_idle() {
            self.on_key(key);
        }
    }

    /// The terminal changed size (SSH window-change). Redraws, unless a game is running or
    /// being watched.
    pub fn handle_resize(&mut self, cols: u16, rows: u16) {
        self.set_size(cols, rows);
        if !matches!(
            self.mode,
            Mode::Playing | Mode::Finished | Mode::Watching(_)
        ) {
            self.mark(Dirty::Full);
        }
    }

    /// New banner, games or counts. When something changed, redraws whatever lobby screen is
    /// up (menus, prompts and the wait screen all show the banner; a prompt keeps what was
    /// typed). Nothing is drawn while a game runs.
    pub fn handle_context(&mut self, ctx: LobbyContext) {
        if ctx == self.ctx {
            return;
        }
        self.ctx = ctx;
        if matches!(
            self.mode,
            Mode::Menu | Mode::Form(_) | Mode::Waiting(_) | Mode::KeyOffer(_)
        ) {
            self.mark(Dirty::Full);
        }
    }

    /// Whether the watch menu is up and wants the list of games about once a second.
    #[must_use]
    pub fn wants_game_list(&self) -> bool {
        matches!(self.mode, Mode::WatchMenu(_))
    }

    /// Answer to [`LobbyAction::ListGames`]: the running games, and the reactor clock (for
    /// idle times). Redraws the watch menu in place when what it shows changed.
    pub fn handle_game_list(&mut self, list: GameList, now_ms: u64) {
        let changed = match &mut self.mode {
            Mode::WatchMenu(menu) => menu.set_list(list, now_ms),
            // Kept for the way back; nothing is drawn while watching.
            Mode::Watching(menu) => {
                menu.set_list(list, now_ms);
                false
            }
            _ => false,
        };
        if changed {
            self.mark(Dirty::Refresh);
        }
    }

    /// The game being watched ended, or could not be watched: the watch menu comes back,
    /// fully redrawn, showing `message`.
    pub fn handle_watch_ended(&mut self, message: &str) {
        if let Mode::Watching(_) = self.mode {
            let Mode::Watching(mut menu) = std::mem::replace(&mut self.mode, Mode::Menu) else {
                return;
            };
            self.decoder.reset();
            menu.notice = Some(Notice::info(message));
            self.mode = Mode::WatchMenu(menu);
            self.actions.push_back(LobbyAction::ListGames);
            self.mark(Dirty::Full);
        }
    }

    /// The next request for the server, if any. See the module doc: at most one is
    /// outstanding besides a final `Quit`.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<LobbyAction> {
        self.actions.pop_front()
    }

    /// Answer to [`LobbyAction::Login`]: `Ok` shows the logged-in menu, `Err(message)` shows
    /// the message in the anonymous menu. Ignored unless a login is pending.
    pub fn handle_login_result(&mut self, r: Result<UserInfo, String>) {
        if !matches!(self.mode, Mode::Waiting(Pending::Login)) {
            return;
        }
        match r {
            Ok(user) => {
                let running = user.running.clone();
                self.user = Some(user);
                self.back_to_menu(None);
                self.handle_my_games(&running);
            }
            Err(message) => {
                self.failed_logins = self.failed_logins.saturating_add(1);
                if self.failed_logins >= self.max_failed_logins {
                    self.farewell = Some("Too many failed logins. Goodbye!");
                    self.quit();
                } else {
                    self.back_to_menu(Some(Notice::error(&message)));
                }
            }
        }
    }

    /// Answer to [`LobbyAction::Register`]: `Ok` logs in as the new account, `Err(message)`
    /// shows the message in the anonymous menu. Ignored unless a registration is pending.
    pub fn handle_register_result(&mut self, r: Result<UserInfo, String>) {
        if !matches!(self.mode, Mode::Waiting(Pending::Register)) {
            return;
        }
        match r {
            Ok(user) => {
                let welcome = format!("Welcome, {}! Your account is ready.", user.name);
                self.user = Some(user);
                self.offer_key_or_welcome(welcome);
            }
            Err(message) => {
                self.failed_registrations = self.failed_registrations.saturating_add(1);
                if self.failed_registrations >= self.max_failed_registrations {
                    self.farewell = Some("Too many failed registrations. Goodbye!");
                    self.quit();
                } else {
                    self.back_to_menu(Some(Notice::error(&message)));
                }
            }
        }
    }

    /// Answer to [`LobbyAction::ChangePassword`] or [`LobbyAction::ChangeEmail`]; back to the
    /// menu with a confirmation or the error message. Ignored unless a change is pending.
    pub fn handle_change_result(&mut self, r: Result<(), String>) {
        let done = match self.mode {
            Mode::Waiting(Pending::ChangePassword) => "Your password has been changed.",
            Mode::Waiting(Pending::ChangeEmail { removed: false }) => {
                "Your e-mail address has been changed."
            }
            Mode::Waiting(Pending::ChangeEmail { removed: true }) => {
                "Your e-mail address has been removed."
            }
            _ => return,
        };
        match r {
            Ok(()) => self.back_to_menu(Some(Notice::info(done))),
            Err(message) => self.back_to_menu(Some(Notice::error(&message))),
        }
    }

    /// The game started by [`LobbyAction::Play`] is over: the menu comes back, fully redrawn,
    /// showing `message` (e.g. "Your game was saved."). Ignored unless a game is running.
    pub fn handle_game_ended(&mut self, message: String) {
        if matches!(self.mode, Mode::Playing) {
            self.decoder.reset();
            self.back_to_menu(Some(Notice::info(&message)));
            self.actions.push_back(LobbyAction::ListMyGames);
        }
    }

    /// The server could not start the game: the menu comes back showing `message`.
    /// Ignored unless a game was requested.
    pub fn handle_play_refused(&mut self, message: String) {
        if matches!(self.mode, Mode::Playing) {
            self.decoder.reset();
            self.back_to_menu(Some(Notice::error(&message)));
            self.actions.push_back(LobbyAction::ListMyGames);
        }
    }

    /// An admin's message for every player: shown under the menu now, or, while a prompt,
    /// a game or a watched game has the terminal, when the menu is back (never drawn over
    /// anything else).
    pub fn handle_broadcast(&mut self, text: &str) {
        let notice = Notice::info(&format!(
            "Message from the server: {}",
            screen::sanitize(text)
        ));
        if matches!(self.mode, Mode::Menu) {
            self.show_notice(notice);
        } else {
            self.pending_broadcast = Some(notice);
        }
    }

    /// Answer to [`LobbyAction::ListMyGames`]: the player's running games (others' are
    /// ignored). The menu offers `r` for the first; redrawn when that changed.
    pub fn handle_my_games(&mut self, games: &[Listing]) {
        let Some(user) = &self.user else {
            return;
        };
        let running: Vec<RunningGame> = games
            .iter()
            .filter(|l| l.player == user.name)
            .map(|l| RunningGame {
                game_id: l.game_id.clone(),
                name: l.game_name.clone(),
                detached: l.detached,
            })
            .collect();
        if running != self.running {
            self.running = running;
            if matches!(self.mode, Mode::Menu) {
                self.mark(Dirty::Full);
            }
        }
    }

    /// The game asked for with [`LobbyAction::Play`] is already running on another
    /// connection: ask whether to take it over (`t`) or go back (`b`). Ignored unless a game
    /// was requested.
    pub fn handle_take_over_offer(&mut self, listing: &Listing) {
        if matches!(self.mode, Mode::Playing) {
            self.decoder.reset();
            self.notice = None;
            self.mode = Mode::TakeOver(Box::new(TakeOverOffer {
                game_id: listing.game_id.clone(),
                name: listing.game_name.clone(),
                game: listing.game,
            }));
            self.mark(Dirty::Full);
        }
    }

    /// Appends the bytes that bring the terminal up to date; appends nothing if nothing changed.
    pub fn poll_output(&mut self, out: &mut Vec<u8>) {
        let dirty = std::mem::replace(&mut self.dirty, Dirty::Clean);
        if matches!(self.mode, Mode::Watching(_)) {
            // The watched game's screen has the terminal.
            return;
        }
        match dirty {
            Dirty::Clean => {}
            Dirty::EditLine => self.frame().render_edit_line(out),
            Dirty::Refresh => self.frame().render_in_place(out),
            Dirty::Full => self.frame().render_full(out),
        }
    }

    /// The logged-in account, if any.
    #[must_use]
    pub fn user(&self) -> Option<&UserInfo> {
        self.user.as_ref()
    }

    /// True once the player quit; the caller should close the session after sending output.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        matches!(self.mode, Mode::Finished)
    }
}

/// Which screen is up.
enum Mode {
    /// The anonymous or logged-in menu (which one depends on `Lobby::user`).
    Menu,
    /// A prompt flow in progress.
    Form(Form),
    /// A request was sent; waiting for its answer.
    Waiting(Pending),
    /// A game has the terminal.
    Playing,
    /// The list of running games.
    WatchMenu(Box<WatchMenu>),
    /// Someone's game has the terminal; `q` goes back to the watch menu (kept here).
    Watching(Box<WatchMenu>),
    /// The player's game is open on another connection: take it over, or back.
    TakeOver(Box<TakeOverOffer>),
    /// The account's SSH keys.
    Keys(Box<KeysMenu>),
    /// Just registered: bind the key the client logged in with?
    KeyOffer(KeyOffer),
    /// The options editor (choosing a game, loading, editing).
    Options(Box<OptionsScreen>),
    /// An admin's list of connections and orders.
    Admin(Box<AdminMenu>),
    /// The player quit.
    Finished,
}

impl Mode {
    /// A name for `Debug`, without the secrets a form holds.
    fn name(&self) -> &'static str {
        match self {
            Mode::Menu => "Menu",
            Mode::Form(_) => "Form",
            Mode::Waiting(_) => "Waiting",
            Mode::Playing => "Playing",
            Mode::WatchMenu(_) => "WatchMenu",
            Mode::Watching(_) => "Watching",
            Mode::TakeOver(_) => "TakeOver",
            Mode::Keys(_) => "Keys",
            Mode::KeyOffer(_) => "KeyOffer",
            Mode::Options(_) => "Options",
            Mode::Admin(_) => "Admin",
            Mode::Finished => "Finished",
        }
    }
}

/// What the take-over question is about.
struct TakeOverOffer {
    game_id: String,
    name: String,
    game: GameRef,
}

/// The request being waited for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Pending {
    /// [`LobbyAction::Login`].
    Login,
    /// [`LobbyAction::Register`].
    Register,
    /// [`LobbyAction::ChangePassword`].
    ChangePassword,
    /// [`LobbyAction::ChangeEmail`]; `removed` when the address is being removed.
    ChangeEmail {
        /// Chooses the confirmation text.
        removed: bool,
    },
    /// [`LobbyAction::BindOfferedKey`].
    BindKey,
}

impl Pending {
    /// The line shown while waiting.
    fn text(self) -> &'static str {
        match self {
            Pending::Login => "Checking your name and password...",
            Pending::Register => "Creating your account...",
            Pending::ChangePassword => "Changing your password...",
            Pending::ChangeEmail { .. } => "Changing your e-mail address...",
            Pending::BindKey => "Binding your key...",
        }
    }
}

/// How much to redraw; ordered so the larger need wins.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Dirty {
    /// Nothing changed.
    Clean,
    /// Only the line being typed.
    EditLine,
    /// Everything, drawn over what is there (no clearing, so a refresh does not flicker).
    Refresh,
    /// Everything, on a cleared screen.
    Full,
}

impl Lobby {
    /// Stores a terminal size, treating 0 as unknown.
    fn set_size(&mut self, cols: u16, rows: u16) {
        self.cols = if cols == 0 { MIN_COLS } else { cols };
        self.rows = if rows == 0 { MIN_ROWS } else { rows };
    }

    /// True when the menus do not fit.
    fn too_small(&self) -> bool {
        self.cols < MIN_COLS || self.rows < MIN_ROWS
    }

    /// Raises the redraw need to at least `d`.
    fn mark(&mut self, d: Dirty) {
        self.dirty = self.dirty.max(d);
    }

    /// Dispatches one key to the current screen.
    fn on_key(&mut self, key: Key) {
        let too_small = self.too_small();
        match &mut self.mode {
            Mode::Menu => self.menu_key(key),
            Mode::Form(form) => {
                if too_small && !matches!(key, Key::Interrupt | Key::Escape) {
                    return;
                }
                match form.key(key) {
                    FormStep::Unchanged => {}
                    FormStep::EditLine => self.mark(Dirty::EditLine),
                    FormStep::Full => self.mark(Dirty::Full),
                    FormStep::Cancel => self.back_to_menu(None),
                    FormStep::Submit(action) => self.submit(action),
                }
            }
            Mode::WatchMenu(menu) => {
                let rows = usize::from(self.rows);
                if too_small && !matches!(key, Key::Char('q' | 'Q') | Key::Eof | Key::Escape) {
                    return;
                }
                match menu.key(key, rows) {
                    WatchStep::Unchanged => {}
                    WatchStep::Redraw => self.mark(Dirty::Refresh),
                    WatchStep::Back => self.back_to_menu(None),
                    WatchStep::Watch(game) => {
                        let Mode::WatchMenu(mut menu) =
                            std::mem::replace(&mut self.mode, Mode::Menu)
                        else {
                            return;
                        };
                        menu.notice = None;
                        self.mode = Mode::Watching(menu);
                        self.actions.push_back(LobbyAction::Watch { game });
                    }
                }
            }
            Mode::Watching(_) => {
                if matches!(key, Key::Char('q' | 'Q') | Key::Interrupt | Key::Eof) {
                    let Mode::Watching(menu) = std::mem::replace(&mut self.mode, Mode::Menu) else {
                        return;
                    };
                    self.mode = Mode::WatchMenu(menu);
                    self.actions.push_back(LobbyAction::StopWatching);
                    self.actions.push_back(LobbyAction::ListGames);
                    self.mark(Dirty::Full);
                }
            }
            Mode::TakeOver(_) => self.take_over_key(key),
            Mode::Keys(_) | Mode::KeyOffer(_) => self.keys_key(key, too_small),
            Mode::Options(_) => self.options_key(key, too_small),
            Mode::Admin(_) => self.admin_key(key, too_small),
            Mode::Waiting(_) | Mode::Playing | Mode::Finished => {}
        }
    }

    /// A key at the take-over question.
    fn take_over_key(&mut self, key: Key) {
        match key {
            Key::Char('t' | 'T' | 'y' | 'Y') if !self.too_small() => {
                let Mode::TakeOver(offer) = std::mem::replace(&mut self.mode, Mode::Playing) else {
                    return;
                };
                self.actions.push_back(LobbyAction::TakeOver {
                    game_id: offer.game_id,
                    game: offer.game,
                });
                self.mark(Dirty::Full);
            }
            Key::Char('b' | 'B' | 'n' | 'N' | 'q' | 'Q')
            | Key::Escape
            | Key::Interrupt
            | Key::Eof => self.back_to_menu(None),
            _ => {}
        }
    }

    /// A key in a menu.
    fn menu_key(&mut self, key: Key) {
        let c = match key {
            Key::Char(c) => c,
            Key::Eof => return self.quit(),
            _ => return,
        };
        let choice = menu::choose(c, self.user.as_ref(), &self.ctx.games, self.running.first());
        if self.too_small() && choice != Some(Choice::Quit) {
            return;
        }
        match choice {
            None => {}
            Some(Choice::Quit) => self.quit(),
            Some(Choice::Login) => self.start_form(FlowKind::Login),
            Some(Choice::Register) => self.start_form(FlowKind::Register),
            Some(Choice::ChangePassword) => self.start_form(FlowKind::ChangePassword),
            Some(Choice::ChangeEmail) => self.start_form(FlowKind::ChangeEmail),
            Some(Choice::Watch) => {
                self.notice = None;
                self.mode = Mode::WatchMenu(Box::new(WatchMenu::new(None)));
                self.actions.push_back(LobbyAction::ListGames);
                self.mark(Dirty::Full);
            }
            Some(Choice::Keys) => self.open_keys(),
            Some(Choice::Options) => self.open_options(),
            Some(Choice::Admin) => self.open_admin(),
            Some(Choice::Resume) => {
                // A running game a reload took off the menu is still the player's to resume.
                if let Some(r) = self
                    .running
                    .first()
                    .filter(|r| !self.ctx.games.iter().any(|g| g.id == r.game_id))
                {
                    let game_id = r.game_id.clone();
                    self.actions.push_back(LobbyAction::Play { game_id });
                    self.notice = None;
                    self.mode = Mode::Playing;
                    self.mark(Dirty::Full);
                    return;
                }
                let Some(index) = self
                    .running
                    .first()
                    .and_then(|r| self.ctx.games.iter().position(|g| g.id == r.game_id))
                else {
                    return;
                };
                self.menu_choice(index);
            }
            Some(Choice::Play(index)) => self.menu_choice(index),
        }
    }

    /// A game chosen in the menu: it starts (or, when it is running, is resumed).
    fn menu_choice(&mut self, index: usize) {
        let Some(game) = self.ctx.games.get(index) else {
            return;
        };
        if !game.available {
            let text = format!("{} is unavailable right now.", game.name);
            return self.show_notice(Notice::error(&text));
        }
        let game_id = game.id.clone();
        self.actions.push_back(LobbyAction::Play { game_id });
        self.notice = None;
        self.mode = Mode::Playing;
        self.mark(Dirty::Full);
    }

    /// Opens a prompt flow.
    fn start_form(&mut self, kind: FlowKind) {
        self.notice = None;
        self.mode = Mode::Form(Form::new(kind));
        self.mark(Dirty::Full);
    }

    /// Sends a finished form's action and waits for the answer.
    fn submit(&mut self, action: LobbyAction) {
        let pending = match &action {
            LobbyAction::Login { .. } => Pending::Login,
            LobbyAction::Register { .. } => Pending::Register,
            LobbyAction::ChangePassword { .. } => Pending::ChangePassword,
            LobbyAction::ChangeEmail { email } => Pending::ChangeEmail {
                removed: email.is_none(),
            },
            LobbyAction::Quit
            | LobbyAction::Play { .. }
            | LobbyAction::ListGames
            | LobbyAction::Watch { .. }
            | LobbyAction::StopWatching
            | LobbyAction::ListMyGames
            | LobbyAction::TakeOver { .. } => return self.back_to_menu(None),
            LobbyAction::ListKeys
            | LobbyAction::AddKey { .. }
            | LobbyAction::RemoveKey { .. }
            | LobbyAction::BindOfferedKey
            | LobbyAction::ReadOptions { .. }
            | LobbyAction::WriteOptions { .. } => return self.back_to_menu(None),
            LobbyAction::AdminSessions
            | LobbyAction::AdminKick { .. }
            | LobbyAction::AdminBroadcast { .. }
            | LobbyAction::AdminDrain { .. }
            | LobbyAction::AdminLock { .. } => return self.back_to_menu(None),
        };
        self.actions.push_back(action);
        self.mode = Mode::Waiting(pending);
        self.mark(Dirty::Full);
    }

    /// Shows the menu (anonymous or logged-in, by `self.user`) with `notice` under it.
    fn back_to_menu(&mut self, notice: Option<Notice>) {
        self.mode = Mode::Menu;
        // An admin's message waiting wins over the usual one: it is rare and may matter more
        // ("the server restarts in five minutes").
        self.notice = self.pending_broadcast.take().or(notice);
        self.mark(Dirty::Full);
    }

    /// Replaces the menu's notice, redrawing only when it changed.
    fn show_notice(&mut self, notice: Notice) {
        if self.notice.as_ref() != Some(&notice) {
            self.notice = Some(notice);
            self.mark(Dirty::Full);
        }
    }

    /// The player leaves.
    fn quit(&mut self) {
        self.actions.push_back(LobbyAction::Quit);
        self.mode = Mode::Finished;
        self.mark(Dirty::Full);
    }

    /// The whole screen for the current state.
    fn frame(&self) -> Frame {
        let width = usize::from(self.cols);
        let rows = usize::from(self.rows);
        match &self.mode {
            Mode::Finished => {
                return single_line_frame(width, self.farewell.unwrap_or("Goodbye!"));
            }
            Mode::Playing => return single_line_frame(width, "Starting the game..."),
            // The game's screen is being sent; nothing of ours is drawn.
            Mode::Watching(_) => return Frame::default(),
            _ => {}
        }
        if self.too_small() {
            return self.too_small_frame();
        }
        if let Mode::Keys(menu) = &self.mode {
            return menu.frame(width, rows);
        }
        if let Mode::Options(screen) = &self.mode {
            return screen.frame(width, rows);
        }
        if let Mode::Admin(menu) = &self.mode {
            return menu.frame(width, rows);
        }
        if let Mode::WatchMenu(menu) = &self.mode {
            let (lines, (row, col)) = menu.lines(width, rows);
            let editing = menu.is_searching();
            return Frame {
                lines,
                cursor: Some((row, col)),
                edit_row: editing.then_some(row),
                flowing: false,
            };
        }
        // The body, the index of the line holding the cursor, the cursor column, and whether
        // that line is the one being typed on.
        let (body, cursor_line, cursor_col, editing) = match &self.mode {
            Mode::Form(form) => {
                let (lines, edit, col) = form.lines(width);
                (lines, Some(edit), col, true)
            }
            Mode::Waiting(pending) => {
                let mut line = Line::new(width);
                line.push(Style::Plain, INDENT);
                line.push(Style::Title, pending.text());
                (vec![line], None, 0, false)
            }
            Mode::TakeOver(offer) => {
                let (lines, col) = take_over_lines(offer, width);
                let last = lines.len().checked_sub(1);
                (lines, last, col, false)
            }
            Mode::KeyOffer(offer) => offer.body(width),
            _ => {
                let max = rows.saturating_sub(1);
                let (lines, col) = menu::lines(
                    self.user.as_ref(),
                    &self.ctx.games,
                    self.running.first(),
                    self.notice.as_ref(),
                    width,
                    max,
                );
                let last = lines.len().checked_sub(1);
                (lines, last, col, false)
            }
        };
        let values = banner::BannerValues {
            username: self.user.as_ref().map_or("guest", |u| u.name.as_str()),
            server_id: &self.ctx.server_id,
            date: &self.ctx.date,
            players: self.ctx.players,
            watchers: self.ctx.watchers,
        };
        let mut lines = banner::lines(&banner::substitute(&self.ctx.banner, &values), width);
        // Room for the banner: what the body leaves, minus one separating blank line.
        lines.truncate(rows.saturating_sub(body.len() + 1));
        if !lines.is_empty() {
            lines.push(Line::new(width));
        }
        let offset = lines.len();
        lines.extend(body);
        lines.truncate(rows);
        let cursor_row = cursor_line
            .map(|l| l + offset)
            .filter(|&row| row < lines.len());
        Frame {
            lines,
            cursor: cursor_row.map(|row| (row, cursor_col)),
            edit_row: cursor_row.filter(|_| editing),
            flowing: false,
        }
    }

    /// The "terminal too small" screen: short lines that wrap on even a tiny terminal.
    fn too_small_frame(&self) -> Frame {
        let width = usize::from(self.cols.max(MIN_COLS));
        let hint = if matches!(self.mode, Mode::Menu) {
            "Please enlarge the window, or press q to quit."
        } else {
            "Please enlarge the window to continue."
        };
        let texts = [
            "Your terminal is too small.".to_string(),
            format!(
                "This lobby needs at least {MIN_COLS}x{MIN_ROWS}, yours is {}x{}.",
                self.cols, self.rows
            ),
            hint.to_string(),
        ];
        let lines = texts
            .iter()
            .map(|t| {
                let mut line = Line::new(width);
                line.push(Style::Error, t);
                line
            })
            .collect();
        Frame {
            lines,
            cursor: None,
            edit_row: None,
            flowing: true,
        }
    }
}

/// The take-over question: what is running where, the two keys, the prompt.
fn take_over_lines(offer: &TakeOverOffer, width: usize) -> (Vec<Line>, usize) {
    let text = |style: Style, t: &str| {
        let mut line = Line::new(width);
        line.push(Style::Plain, INDENT);
        line.push(style, t);
        line
    };
    let name = screen::sanitize(&offer.name);
    let mut prompt = text(Style::Key, "=> ");
    let cursor = prompt.width();
    prompt.push(Style::Plain, "");
    let lines = vec![
        text(
            Style::Title,
            &format!("Your game of {name} is open on another connection."),
        ),
        Line::new(width),
        text(
            Style::Plain,
            "t) Take it over here (the other connection is closed)",
        ),
        text(Style::Plain, "b) Back to the menu"),
        Line::new(width),
        prompt,
    ];
    (lines, cursor)
}

/// A screen with one line of text at the top and the cursor at the start of the next line,
/// where whatever comes next (a game, the SSH client's own messages) can start cleanly.
fn single_line_frame(width: usize, text: &str) -> Frame {
    let mut line = Line::new(width);
    line.push(Style::Plain, text);
    Frame {
        lines: vec![line],
        cursor: Some((1, 0)),
        edit_row: None,
        flowing: false,
    }
}
