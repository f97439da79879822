//! What a data core asks the control core, and the answers. These cross threads (through the
//! reactor's mesh queues), so everything is owned.

use crate::admin::{SessionId, SessionInfo};
use crate::config::Config;
use crate::lobby::{KeyEntry, OptionsFile, UserInfo};
use crate::watch::{GameList, GameRef, Listing};
use std::net::IpAddr;
use std::sync::Arc;
use zeroize::Zeroizing;

/// What a session can ask.
pub enum Request {
    /// An SSH authentication attempt for `user` from `source`.
    SshAuth {
        user: String,
        attempt: SshAttempt,
        source: IpAddr,
    },
    /// Lobby login with name and password.
    Login {
        name: String,
        password: Zeroizing<String>,
        source: IpAddr,
    },
    /// Lobby registration.
    Register {
        name: String,
        password: Zeroizing<String>,
        email: Option<String>,
        source: IpAddr,
    },
    ChangePassword {
        name: String,
        password: Zeroizing<String>,
    },
    ChangeEmail {
        name: String,
        email: Option<String>,
    },
    /// `user` is about to start `game_id`: refused when that account already runs it (two
    /// copies of one game under one name clobber each other's save).
    ClaimGame {
        user: String,
        game_id: String,
    },
    /// `user`'s games still running (to offer their resumption in the lobby).
    GamesOf {
        user: String,
    },
    /// The claimed game ended.
    ReleaseGame {
        user: String,
        game_id: String,
    },
    /// The running games, for a watch menu.
    ListGames,
    /// A game started on the asking core (no answer).
    GameListed(Box<Listing>),
    /// A listed game's size, last output or watchers changed (no answer).
    GameStatus {
        game: GameRef,
        cols: u16,
        rows: u16,
        last_output_ms: u64,
        watchers: u32,
    },
    /// A listed game ended (no answer).
    GameUnlisted(GameRef),
    /// A listed game's player left it running (`true`), or came back (no answer).
    GameDetached {
        game: GameRef,
        detached: bool,
    },
    /// Admin (the asking session is logged in as an admin account; the session checks, the
    /// control core carries out): every connection on every core. Answer:
    /// [`Reply::Sessions`].
    AdminSessions,
    /// Admin: close a connection, telling it `reason`. Answer: `Done`.
    AdminKick {
        session: SessionId,
        reason: String,
    },
    /// Admin: one line to every player's terminal, shown in the lobby (between screens,
    /// never into a game: a player in a game sees it when back in the lobby). Answer: `Done`.
    AdminBroadcast {
        text: String,
    },
    /// Admin: refuse new games (`on`), with a maintenance line in the lobby, or allow them
    /// again. Running games go on. Answer: `Done`.
    AdminDrain {
        on: bool,
    },
    /// Admin: lock (`locked`) or unlock account `name`; a lock ends its sessions, telling
    /// them `reason`. Answer: `Done` (`Err` naming what failed: no such account…).
    AdminLock {
        name: String,
        locked: bool,
        reason: Option<String>,
    },
    /// The sessions of the answering data core, for the admin list `query` (no answer).
    SessionsReport {
        query: u64,
        sessions: Vec<SessionInfo>,
    },
    /// The SSH keys of `name`, the account the asking lobby is logged in as (the session
    /// fills it in; nothing a player types names the account). Answer: [`Reply::Keys`].
    ListKeys {
        name: String,
    },
    /// Add a key to `name` (the asking lobby's own account). Answer: [`Reply::Keys`].
    AddKey {
        name: String,
        key: NewKey,
    },
    /// Remove the key with this `SHA256:…` fingerprint from `name` (the asking lobby's own
    /// account); removing a key that is not there is not an error. Answer: [`Reply::Keys`].
    RemoveKey {
        name: String,
        fingerprint: String,
    },
    /// The options (rc) file of game `game_id` of `name`, the account the asking lobby is
    /// logged in as (the session fills both in from its login and its configuration; nothing
    /// typed names a user or a path). Answer: [`Reply::Options`].
    ReadOptions {
        name: String,
        game_id: String,
        /// The configuration the lobby's menu came from: where the file is.
        config: Arc<Config>,
    },
    /// Replace that file with `text`. Answer: [`Reply::Done`].
    WriteOptions {
        name: String,
        game_id: String,
        config: Arc<Config>,
        text: String,
    },
}

/// A key to add to an account.
pub enum NewKey {
    /// An OpenSSH public key line pasted in the lobby (checked again by the control core).
    Line(String),
    /// The key blob a guest's SSH client logged in with (signature verified by the SSH
    /// core), bound to the account the guest has just registered.
    Offered(Vec<u8>),
}

/// The SSH method, owned (it crosses cores).
pub enum SshAttempt {
    None,
    Password(Zeroizing<String>),
    /// A public key blob; `signed` means the SSH core verified a signature by it (an
    /// unsigned one is the "may I use this key?" query, not a login attempt).
    Key {
        blob: Vec<u8>,
        signed: bool,
    },
}

/// What an SSH authentication attempt means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SshOutcome {
    /// Not a registered account: in as a guest (anonymous lobby).
    Guest,
    /// A registered account, authenticated.
    User(UserInfo),
    /// A registered account and the attempt failed (or the account is locked).
    Denied,
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Ssh(SshOutcome),
    User(Result<UserInfo, String>),
    Done(Result<(), String>),
    /// Every running game (or one player's).
    Games(GameList),
    /// A claim for a game the account already runs, here: the session can re-attach to
    /// it (when detached) or offer to take it over.
    Running(Box<Listing>),
    /// Every connection, for an admin list.
    Sessions(Vec<SessionInfo>),
    /// An account's SSH keys after the request, or why the request failed.
    Keys(Result<Vec<KeyEntry>, String>),
    /// An options file for the editor, or why it cannot be edited.
    Options(Result<OptionsFile, String>),
    /// The control core could not answer (shutting down, or its queue was full).
    Unavailable,
}

/// What the control core tells a data core unasked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// This account was locked or deleted: end its sessions (games get their hangup).
    EndSessionsOf(String),
    /// An admin locked this account, saying why: end its sessions with the reason.
    LockedOut {
        name: String,
        reason: Option<String>,
    },
    /// Report this core's sessions for the admin list `query` ([`Request::SessionsReport`]).
    ReportSessions { query: u64 },
    /// Close this connection (if it is on the receiving core), telling it `reason`.
    Kick { session: SessionId, reason: String },
    /// Show every player this line (in the lobby).
    Broadcast(std::sync::Arc<str>),
    /// Refuse new games, showing a maintenance line (`true`), or allow them again.
    Drain(bool),
}

/// Names the request and its account, never a password or key.
impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (what, who) = match self {
            Request::SshAuth { user, .. } => ("SshAuth", user),
            Request::Login { name, .. } => ("Login", name),
            Request::Register { name, .. } => ("Register", name),
            Request::ChangePassword { name, .. } => ("ChangePassword", name),
            Request::ChangeEmail { name, .. } => ("ChangeEmail", name),
            Request::ClaimGame { user, .. } => ("ClaimGame", user),
            Request::ReleaseGame { user, .. } => ("ReleaseGame", user),
            Request::GameListed(l) => ("GameListed", &l.player),
            Request::ListKeys { name } => ("ListKeys", name),
            Request::AddKey { name, .. } => ("AddKey", name),
            Request::RemoveKey { name, .. } => ("RemoveKey", name),
            Request::ReadOptions { name, .. } => ("ReadOptions", name),
            Request::WriteOptions { name, .. } => ("WriteOptions", name),
            Request::ListGames => return f.write_str("ListGames"),
            Request::GameStatus { game, .. } => return write!(f, "GameStatus({game:?})"),
            Request::GameUnlisted(game) => return write!(f, "GameUnlisted({game:?})"),
            Request::GameDetached { game, detached } => {
                return write!(f, "GameDetached({game:?}, {detached})")
            }
            Request::GamesOf { user } => ("GamesOf", user),
            Request::AdminSessions => return f.write_str("AdminSessions"),
            Request::AdminKick { session, .. } => return write!(f, "AdminKick({session})"),
            Request::AdminBroadcast { .. } => return f.write_str("AdminBroadcast"),
            Request::AdminDrain { on } => return write!(f, "AdminDrain({on})"),
            Request::AdminLock { name, locked, .. } => {
                return write!(f, "AdminLock({}, {locked})", crate::auth::printable(name))
            }
            Request::SessionsReport { query, sessions } => {
                return write!(f, "SessionsReport({query}, {})", sessions.len())
            }
        };
        write!(f, "{what}({})", crate::auth::printable(who))
    }
}
