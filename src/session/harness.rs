//! An in-memory test bench for [`Session`]: the real SSH test client (`ssh::client`) on one
//! side, a fake reactor on the other that carries out every effect — a control core
//! answering from a table, a spawner that answers at once or when told, games that echo
//! their input like `cat` — all on virtual time. Nothing here sleeps or touches a socket.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use super::{
    Effect, GameKey, LogRate, Session, SessionEnv, SpawnError, SpawnResult, Token, WatchKey,
};
use crate::config::{Config, GameCommand};
use crate::control::{NewKey, Reply, Request, SshAttempt, SshOutcome};
use crate::game::TerminalInfo;
use crate::lobby::UserInfo;
use crate::metrics::{Registry, RegistryOptions};
use crate::pty::{ExitStatus, Signal, WinSize};
use crate::ssh::client::{Client, ClientAuth, ClientConfig, ClientEvent};
use crate::ssh::hostkey::HostKey;
use crate::ssh::msg::{self, MsgType};
use crate::ssh::server::{Millis, ServerSettings};
use crate::watch::{GameList, GameRef, Listing};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;

/// A registered account of the fake control core.
pub const ALICE: &str = "alice";
/// Alice's password.
pub const ALICE_PW: &str = "correct horse";
/// Bob, another registered account.
pub const BOB: &str = "bob";
/// Bob's password.
pub const BOB_PW: &str = "battery staple";
/// The seed of alice's authorised ed25519 key.
pub const KEY_A: [u8; 32] = [0xA1; 32];
/// The built-in game every test server offers, and its menu key.
pub const AMULET: &str = "amulet";
pub const AMULET_KEY: &[u8] = b"2";

/// The fake control core: accounts, keys and claims in tables.
pub struct FakeControl {
    /// Registered accounts and their passwords.
    pub accounts: Vec<(String, String)>,
    /// Authorised public key blobs per account.
    pub keys: Vec<(String, Vec<u8>)>,
    /// Games claimed: (account, game id).
    pub claims: Vec<(String, String)>,
    /// Which requests to keep in `held` until the test answers them (the rest are
    /// answered at once).
    pub hold: fn(&Request) -> bool,
    /// Requests held back, in order.
    pub held: Vec<(Token, Request)>,
    /// Every request seen, as its `Debug` (which shows no secret).
    pub seen: Vec<String>,
    /// The running games the watch menu is told of.
    pub listed: Vec<Listing>,
    /// The connections an admin list is told of.
    pub sessions: Vec<crate::admin::SessionInfo>,
    /// Options files: (account, game id, text).
    pub options: Vec<(String, String, String)>,
    /// Accounts whose logins say they are admins.
    pub admins: Vec<String>,
}

impl FakeControl {
    /// What the control core would say.
    pub fn answer(&mut self, request: &Request) -> Reply {
        match request {
            Request::SshAuth { user, attempt, .. } => {
                if !self.accounts.iter().any(|(n, _)| n == user) {
                    return Reply::Ssh(SshOutcome::Guest);
                }
                let ok = match attempt {
                    SshAttempt::None => false,
                    SshAttempt::Password(p) => self.password_ok(user, p),
                    SshAttempt::Key { blob, .. } => {
                        self.keys.iter().any(|(n, b)| n == user && b == blob)
                    }
                };
                Reply::Ssh(if ok {
                    SshOutcome::User(self.info(user))
                } else {
                    SshOutcome::Denied
                })
            }
            Request::Login { name, password, .. } => {
                Reply::User(if self.password_ok(name, password) {
                    Ok(self.info(name))
                } else {
                    Err("Wrong name or password.".into())
                })
            }
            Request::Register { name, password, .. } => {
                if self.accounts.iter().any(|(n, _)| n == name) {
                    return Reply::User(Err("That name is taken.".into()));
                }
                self.accounts.push((name.clone(), password.to_string()));
                Reply::User(Ok(self.info(name)))
            }
            Request::ChangePassword { .. } | Request::ChangeEmail { .. } => Reply::Done(Ok(())),
            Request::ClaimGame { user, game_id } => {
                if let Some(l) = self
                    .listed
                    .iter()
                    .find(|l| &l.player == user && &l.game_id == game_id)
                {
                    return Reply::Running(Box::new(l.clone()));
                }
                let claim = (user.clone(), game_id.clone());
                if self.claims.contains(&claim) {
                    return Reply::Done(Err("already running".into()));
                }
                self.claims.push(claim);
                Reply::Done(Ok(()))
            }
            Request::ReleaseGame { user, game_id } => {
                self.claims
                    .retain(|c| c != &(user.clone(), game_id.clone()));
                Reply::Done(Ok(()))
            }
            Request::ListGames => Reply::Games(GameList::from(self.listed.clone())),
            Request::AdminSessions => Reply::Sessions(self.sessions.clone()),
            Request::AdminKick { .. }
            | Request::AdminBroadcast { .. }
            | Request::AdminDrain { .. }
            | Request::AdminLock { .. }
            | Request::SessionsReport { .. } => Reply::Done(Ok(())),
            Request::GamesOf { user } => Reply::Games(
                self.listed
                    .iter()
                    .filter(|l| &l.player == user)
                    .cloned()
                    .collect(),
            ),
            Request::GameListed(_)
            | Request::GameStatus { .. }
            | Request::GameUnlisted(_)
            | Request::GameDetached { .. } => Reply::Done(Ok(())),
            Request::ListKeys { name } => Reply::Keys(Ok(self.key_entries(name))),
            Request::AddKey { name, key } => {
                let blob = match key {
                    NewKey::Offered(blob) => blob.clone(),
                    NewKey::Line(line) => match crate::auth::parse_public_key_line(line) {
                        Ok(k) => k.blob,
                        Err(e) => return Reply::Keys(Err(e.to_string())),
                    },
                };
                self.keys.push((name.clone(), blob));
                Reply::Keys(Ok(self.key_entries(name)))
            }
            Request::RemoveKey { name, fingerprint } => {
                self.keys
                    .retain(|(n, b)| n != name || crate::auth::key_fingerprint(b) != *fingerprint);
                Reply::Keys(Ok(self.key_entries(name)))
            }
            Request::ReadOptions { name, game_id, .. } => {
                let found = self
                    .options
                    .iter()
                    .find(|(n, g, _)| n == name && g == game_id);
                // As the control core: no file yet reads as the defaults.
                let template = "OPTIONS=default\n".to_string();
                Reply::Options(Ok(crate::lobby::OptionsFile {
                    text: found.map_or_else(|| template.clone(), |(_, _, t)| t.clone()),
                    template: Some(template),
                    exists: found.is_some(),
                }))
            }
            Request::WriteOptions {
                name,
                game_id,
                text,
                ..
            } => {
                self.options
                    .retain(|(n, g, _)| !(n == name && g == game_id));
                self.options
                    .push((name.clone(), game_id.clone(), text.clone()));
                Reply::Done(Ok(()))
            }
        }
    }

    /// `name`'s keys as the keys screen shows them.
    fn key_entries(&self, name: &str) -> Vec<crate::lobby::KeyEntry> {
        self.keys
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, b)| crate::lobby::KeyEntry {
                key_type: "ssh-ed25519".into(),
                fingerprint: crate::auth::key_fingerprint(b),
                comment: String::new(),
                added_unix: 0,
            })
            .collect()
    }

    /// Who logged in, with the games the account runs (as the control core answers).
    fn info(&self, name: &str) -> UserInfo {
        UserInfo {
            running: self
                .listed
                .iter()
                .filter(|l| l.player == name)
                .cloned()
                .collect(),
            admin: self.admins.iter().any(|a| a == name),
            ..info(name)
        }
    }

    fn password_ok(&self, name: &str, password: &str) -> bool {
        self.accounts
            .iter()
            .any(|(n, p)| n == name && p == password)
    }
}

fn info(name: &str) -> UserInfo {
    UserInfo {
        name: name.to_owned(),
        admin: false,
        running: Vec::new(),
    }
}

/// One [`Effect::Spawn`] as the fake spawner saw it.
#[derive(Debug, Clone)]
pub struct Spawned {
    pub game: GameKey,
    pub game_id: String,
    pub user: String,
    pub terminal: TerminalInfo,
    pub claimed: bool,
}

/// The fake spawner: answers at once (`defer` false) or when the test says.
#[derive(Default)]
pub struct FakeSpawner {
    /// Keep spawns in `pending` until [`Harness::answer_spawn`].
    pub defer: bool,
    /// Fail every spawn with this error.
    pub fail: Option<String>,
    /// Spawns not answered yet.
    pub pending: Vec<Spawned>,
    /// Every spawn asked for.
    pub asked: Vec<Spawned>,
}

/// A game in a fake PTY: echoes what it is typed, like `cat`.
pub struct FakeGame {
    pub key: GameKey,
    /// Output waiting in the PTY for the session to take it.
    pub output: VecDeque<u8>,
    /// Everything typed that reached the PTY.
    pub typed: Vec<u8>,
    /// Echo input into `output`.
    pub echo: bool,
    /// The PTY is full: it takes no input.
    pub full: bool,
    /// A [`Effect::PtyWrite`] came and the input has not all been written yet.
    pub writing: bool,
    /// Hung up by the session.
    pub hung_up: bool,
    /// Ended (reported to the session).
    pub ended: bool,
}

/// What the fake reactor draws for a game it re-attaches (its screen model's repaint).
pub const REATTACHED_SCREEN: &[u8] = b"\x1b[H\x1b[2JT:1234 the game you left";

impl FakeGame {
    fn new(key: GameKey) -> FakeGame {
        FakeGame {
            key,
            output: VecDeque::new(),
            typed: Vec::new(),
            echo: true,
            full: false,
            writing: false,
            hung_up: false,
            ended: false,
        }
    }

    fn live(&self) -> bool {
        !self.hung_up && !self.ended
    }
}

/// A client, a session and a fake reactor, on virtual time.
pub struct Harness {
    pub session: Session,
    pub client: Client,
    /// Virtual time.
    pub now: Millis,
    pub env: SessionEnv,
    pub control: FakeControl,
    pub spawner: FakeSpawner,
    /// Games spawned, in order (also those hung up or ended).
    pub games: Vec<FakeGame>,
    /// [`Effect::Hangup`]s, in order.
    pub hangups: Vec<GameKey>,
    /// [`Effect::LoggedIn`]s seen.
    pub logged_in: usize,
    /// [`Effect::PtyWrite`]s, in order.
    pub pty_writes: Vec<GameKey>,
    /// [`Effect::PtyResize`]s, in order.
    pub resizes: Vec<(GameKey, WinSize)>,
    /// [`Effect::PtySignal`]s, in order.
    pub signals: Vec<(GameKey, Signal)>,
    /// The socket takes none of the session's output.
    pub socket_stalled: bool,
    /// Watch effects, in order.
    pub watches: Vec<WatchEffect>,
    /// [`Effect::Reattach`]es: game, target, take over, size.
    pub reattaches: Vec<(GameKey, GameRef, bool, WinSize)>,
    /// Refuse re-attaches with this text (else they succeed, the game's screen being
    /// [`REATTACHED_SCREEN`]).
    pub refuse_reattach: Option<String>,
    /// The client's terminal, fed from what it received.
    term: vt100::Parser,
    /// Bytes of `client.received` already fed to `term`.
    term_fed: usize,
}

/// A watch effect as the fake reactor saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchEffect {
    Watch(WatchKey, GameRef),
    Resync(WatchKey, GameRef),
    Unwatch(WatchKey, GameRef),
}

/// The test server's configuration: the embedded default, with NetHack configured but not
/// installed (whatever this machine has) and the built-in Amulet Run on key `2`.
pub fn test_config() -> Config {
    let mut c = Config::from_yaml(crate::config::DEFAULT_YAML, "test", Vec::new()).unwrap();
    c.games[0].command = GameCommand::Program("/nonexistent/dungeongate-test/nethack".into());
    assert_eq!(c.games[1].id, AMULET);
    assert_eq!(c.games[1].key, '2');
    c
}

/// A client logging in as `user` with `password`, opening a shell.
pub fn password_client(user: &str, password: &str) -> ClientConfig {
    ClientConfig::new(user, ClientAuth::Password(password.into()))
}

/// Alice with her password, executing `command`.
pub fn alice_exec(command: &str) -> ClientConfig {
    let mut c = password_client(ALICE, ALICE_PW);
    c.command = Some(command.into());
    c
}

impl Harness {
    /// A session with the test configuration, and `client` connected to it (as far as it
    /// gets without the test's help).
    pub fn new(client: ClientConfig) -> Harness {
        Harness::with(client, |_, _| {})
    }

    /// As [`Harness::new`], after `tweak` changed the configuration or SSH settings.
    pub fn with(
        client: ClientConfig,
        tweak: impl FnOnce(&mut Config, &mut ServerSettings),
    ) -> Harness {
        let mut h = Harness::build(client, tweak);
        h.pump();
        h
    }

    /// As [`Harness::with`], but nothing has moved yet: the test can set up the fakes first
    /// (then [`Harness::pump`]).
    pub fn build(
        client: ClientConfig,
        tweak: impl FnOnce(&mut Config, &mut ServerSettings),
    ) -> Harness {
        let mut config = test_config();
        let mut settings = ServerSettings::new(HostKey::generate().unwrap());
        settings.login_grace_ms = config.ssh.login_grace_seconds * 1000;
        settings.max_auth_tries = config.ssh.max_auth_tries;
        tweak(&mut config, &mut settings);
        let registry = Arc::new(Registry::new(RegistryOptions {
            cores: 1,
            game_ids: config.games.iter().map(|g| g.id.clone()).collect(),
            connections_limit: 100,
            version: "test".into(),
            commit: "test".into(),
        }));
        let env = SessionEnv {
            config: Arc::new(config),
            ssh: Rc::new(settings),
            metrics: registry.core(0).unwrap(),
            registry,
            log_rate: Rc::new(LogRate::default()),
        };
        let peer = "192.0.2.7:40000".parse().unwrap();
        Harness {
            session: Session::new(env.clone(), 1, peer, 0),
            client: Client::new(client),
            now: 0,
            env,
            control: FakeControl {
                accounts: vec![(ALICE.into(), ALICE_PW.into()), (BOB.into(), BOB_PW.into())],
                keys: vec![(ALICE.into(), Client::key_blob(&KEY_A))],
                claims: Vec::new(),
                hold: |_| false,
                held: Vec::new(),
                seen: Vec::new(),
                listed: Vec::new(),
                sessions: Vec::new(),
                options: Vec::new(),
                admins: Vec::new(),
            },
            spawner: FakeSpawner::default(),
            games: Vec::new(),
            hangups: Vec::new(),
            logged_in: 0,
            pty_writes: Vec::new(),
            resizes: Vec::new(),
            signals: Vec::new(),
            socket_stalled: false,
            watches: Vec::new(),
            reattaches: Vec::new(),
            refuse_reattach: None,
            term: vt100::Parser::new(24, 80, 0),
            term_fed: 0,
        }
    }

    /// Move bytes, effects and game I/O until nothing moves.
    pub fn pump(&mut self) {
        for _ in 0..10_000 {
            let mut moved = false;
            let mut to_server = Vec::new();
            self.client.poll_transmit(&mut to_server);
            if !to_server.is_empty() {
                self.session.handle_socket(&to_server, self.now);
                moved = true;
            }
            moved |= self.carry_out_effects();
            moved |= self.run_games();
            moved |= self.carry_out_effects();
            moved |= self.flush_socket();
            if !moved {
                return;
            }
        }
        panic!("the harness did not settle: {:?}", self.client.events);
    }

    /// Let `ms` of virtual time pass, firing every deadline on the way.
    pub fn advance(&mut self, ms: Millis) {
        let target = self.now + ms;
        for _ in 0..10_000 {
            match self.session.poll_timeout() {
                Some(t) if t <= target => {
                    self.now = self.now.max(t);
                    self.session.handle_timeout(self.now);
                    self.pump();
                }
                _ => {
                    self.now = target;
                    self.pump();
                    return;
                }
            }
        }
        panic!("deadlines did not settle");
    }

    /// The client types `bytes` (within its window).
    pub fn type_keys(&mut self, bytes: &[u8]) {
        let sent = self.client.send_data(bytes);
        assert_eq!(sent, bytes.len(), "the client's window is shut");
        self.pump();
    }

    /// The client sends a raw payload.
    pub fn send_raw(&mut self, payload: &[u8]) {
        self.client.send_raw_payload(payload);
        self.pump();
    }

    /// The client opens another session channel (its number `sender`) granting us `window`;
    /// on the confirmation it asks for a PTY and the shell or its command, as always.
    pub fn open_channel(&mut self, sender: u32, window: u32) {
        let mut p = Vec::new();
        msg::encode_channel_open_session(&mut p, sender, window, 32 * 1024);
        self.send_raw(&p);
    }

    /// The client closes the server's channel `id`.
    pub fn close_channel(&mut self, id: u32) {
        let mut p = Vec::new();
        msg::encode_channel_only(&mut p, MsgType::ChannelClose, id);
        self.send_raw(&p);
    }

    /// Answer the `i`th held control request as the table says.
    pub fn answer_held(&mut self, i: usize) {
        let (token, request) = self.control.held.remove(i);
        let reply = self.control.answer(&request);
        self.answer_held_with(token, reply);
    }

    /// Answer a held control request with `reply`.
    pub fn answer_held_with(&mut self, token: Token, reply: Reply) {
        self.session.handle_control_reply(token, reply, self.now);
        self.pump();
    }

    /// Answer the `i`th pending spawn.
    pub fn answer_spawn(&mut self, i: usize, result: SpawnResult) {
        let s = self.spawner.pending.remove(i);
        self.finish_spawn(&s, result);
        self.pump();
    }

    /// The game `key` exits with `status`.
    pub fn end_game(&mut self, key: GameKey, status: Option<ExitStatus>) {
        if let Some(g) = self.games.iter_mut().find(|g| g.key == key) {
            g.ended = true;
        }
        self.session.handle_game_ended(key, status, self.now);
        self.pump();
    }

    /// The game `key` writes `bytes` to its terminal.
    pub fn game_prints(&mut self, key: GameKey, bytes: &[u8]) {
        self.game_mut(key).output.extend(bytes);
        self.pump();
    }

    pub fn game_mut(&mut self, key: GameKey) -> &mut FakeGame {
        self.games
            .iter_mut()
            .find(|g| g.key == key)
            .expect("no such game")
    }

    /// The one game that runs now.
    pub fn running_game(&self) -> GameKey {
        let live: Vec<_> = self.games.iter().filter(|g| g.live()).collect();
        assert_eq!(live.len(), 1, "expected one running game");
        live[0].key
    }

    /// What the client's terminal shows.
    pub fn screen(&mut self) -> String {
        let fresh = &self.client.received[self.term_fed..];
        self.term.process(fresh);
        self.term_fed = self.client.received.len();
        self.term.screen().contents()
    }

    pub fn assert_shows(&mut self, text: &str) {
        let screen = self.screen();
        assert!(screen.contains(text), "{text:?} not on screen:\n{screen}");
    }

    /// Everything the client received on its channels, as text.
    pub fn received_text(&self) -> String {
        String::from_utf8_lossy(&self.client.received).into_owned()
    }

    /// The client's events after `from`.
    pub fn events_since(&self, from: usize) -> &[ClientEvent] {
        &self.client.events[from..]
    }

    /// What the metrics of this core say about `family` (the rendered lines).
    pub fn metric(&self, family: &str) -> String {
        self.env
            .registry
            .render()
            .lines()
            .filter(|l| l.starts_with(family))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn carry_out_effects(&mut self) -> bool {
        let mut any = false;
        while let Some(effect) = self.session.poll_effect() {
            any = true;
            match effect {
                Effect::Control { token, request } => {
                    self.control.seen.push(format!("{request:?}"));
                    if (self.control.hold)(&request) {
                        self.control.held.push((token, request));
                    } else {
                        let reply = self.control.answer(&request);
                        self.session.handle_control_reply(token, reply, self.now);
                    }
                }
                Effect::Spawn {
                    game,
                    game_id,
                    user,
                    terminal,
                    claimed,
                } => {
                    let s = Spawned {
                        game,
                        game_id,
                        user,
                        terminal,
                        claimed,
                    };
                    self.spawner.asked.push(s.clone());
                    if self.spawner.defer {
                        self.spawner.pending.push(s);
                    } else {
                        let result = self
                            .spawner
                            .fail
                            .clone()
                            .map_or(Ok(()), |e| Err(SpawnError::Failed(e)));
                        self.finish_spawn(&s, result);
                    }
                }
                Effect::PtyWrite { game } => {
                    self.pty_writes.push(game);
                    if let Some(g) = self.games.iter_mut().find(|g| g.key == game) {
                        g.writing = true;
                    }
                }
                Effect::PtyResize { game, size } => self.resizes.push((game, size)),
                Effect::PtySignal { game, signal } => self.signals.push((game, signal)),
                Effect::Hangup { game } => {
                    self.hangups.push(game);
                    if let Some(g) = self.games.iter_mut().find(|g| g.key == game) {
                        g.hung_up = true;
                    }
                }
                Effect::LoggedIn => self.logged_in += 1,
                Effect::Reattach {
                    game,
                    target,
                    take_over,
                    size,
                } => {
                    self.reattaches.push((game, target, take_over, size));
                    match self.refuse_reattach.clone() {
                        Some(why) => self.session.handle_spawned(
                            game,
                            Err(SpawnError::NotResumed(why)),
                            self.now,
                        ),
                        None => {
                            self.games.push(FakeGame::new(game));
                            self.session.handle_spawned(game, Ok(()), self.now);
                            self.session
                                .handle_pty_output(game, REATTACHED_SCREEN, self.now);
                        }
                    }
                }
                Effect::Watch { watch, game } => self.watches.push(WatchEffect::Watch(watch, game)),
                Effect::Resync { watch, game } => {
                    self.watches.push(WatchEffect::Resync(watch, game));
                }
                Effect::Unwatch { watch, game } => {
                    self.watches.push(WatchEffect::Unwatch(watch, game));
                }
            }
        }
        any
    }

    /// The spawner's answer: a game exists (before the session hears of it) when it worked.
    fn finish_spawn(&mut self, s: &Spawned, result: SpawnResult) {
        if result.is_ok() {
            self.games.push(FakeGame::new(s.game));
        }
        self.session.handle_spawned(s.game, result, self.now);
    }

    /// The fake reactor's PTY work: write waiting input (after a PtyWrite, until none is
    /// left), read output as the session has room.
    fn run_games(&mut self) -> bool {
        let mut any = false;
        for g in self.games.iter_mut().filter(|g| g.live()) {
            if g.writing && !g.full {
                let input = self.session.pty_input(g.key).to_vec();
                if input.is_empty() {
                    g.writing = false;
                } else {
                    g.typed.extend_from_slice(&input);
                    if g.echo {
                        g.output.extend(&input);
                    }
                    self.session
                        .handle_pty_written(g.key, input.len(), self.now);
                    any = true;
                }
            }
            while !g.output.is_empty() {
                let room = self.session.pty_room(g.key);
                if room == 0 {
                    break;
                }
                let n = room.min(g.output.len()).min(4096);
                let chunk: Vec<u8> = g.output.drain(..n).collect();
                self.session.handle_pty_output(g.key, &chunk, self.now);
                any = true;
            }
        }
        any
    }

    /// The session's output reaches the client (unless the socket is stalled).
    fn flush_socket(&mut self) -> bool {
        if self.socket_stalled {
            return false;
        }
        let out = self.session.transmit().to_vec();
        if out.is_empty() {
            return false;
        }
        self.session.advance_transmit(out.len());
        self.client.handle_input(&out).expect("client input");
        true
    }
}
