//! Starting and ending games. A shell gets the lobby; an exec names a game, which starts
//! directly (or is refused with a text and exit status 1). A start, from exec or the lobby,
//! claims the game for the account first (one copy per account, unless the game allows
//! more), then asks the reactor to spawn it; the spawn's answer attaches the game to its
//! channel, or, when that channel is gone, hangs it up. One game per connection.

use super::actions::BUSY;
use super::channel::{Mode, StartStep};
use super::requests::Pending;
use super::{Effect, GameKey, Session, SpawnError, SpawnResult};
use crate::config::GameConfig;
use crate::control::{Reply, Request};
use crate::lobby::Lobby;
use crate::pty::ExitStatus;
use crate::ssh::server::ChannelId;
use crate::watch::{GameRef, Listing};

/// Told to a client that starts a second game on one connection.
const ONE_GAME: &str = "One game per connection: finish the game on your other session first.";
/// Told to a shell without a PTY.
const NEEDS_TERMINAL: &str = "dungeongate needs a terminal: connect with `ssh -t`.\r\n";
/// Told to an exec without a PTY.
const GAMES_NEED_TERMINAL: &str = "Games need a terminal: connect with `ssh -t`.\r\n";
/// Told to a guest's exec.
const GUESTS_CANNOT_PLAY: &str = "Guests cannot play: log in as a registered user, or connect without a command to register.\r\n";
/// Told when the reactor could not spawn the game.
const SPAWN_FAILED: &str = "The game could not be started; the operator has been told.";

impl Session {
    /// A shell request: the lobby (a terminal is required).
    pub(super) fn start_shell(&mut self, id: ChannelId) {
        let user = self.auth.user().cloned();
        let ctx = self.lobby_context();
        let limits = &self.env.config.limits;
        let Some(ch) = self.channels.get_mut(id) else {
            return;
        };
        if !ch.tty.has_pty() {
            ch.tty.finish_with(NEEDS_TERMINAL, 1);
            return;
        }
        ch.tty.begin_session(&self.env.metrics, self.now);
        let mut lobby = Lobby::new(ctx, user, ch.tty.size.cols, ch.tty.size.rows);
        lobby.set_attempt_limits(
            limits.lobby_failed_logins,
            limits.lobby_failed_registrations,
        );
        lobby.set_offered_key(self.auth.guest_key_fingerprint());
        let lobby = Box::new(lobby);
        self.channels.step(id, |ch| (ch.into_lobby(lobby), ()));
        // A logged-in lobby asks for the player's running games at once.
        self.drain_actions(id);
    }

    /// An exec request: a game id starts that game directly, for a registered user with a
    /// terminal and no other game on the connection.
    pub(super) fn start_exec(&mut self, id: ChannelId, command: &str) {
        let config = self.env.config.clone();
        let game = config.game(command);
        let user = self.auth.user().map(|u| u.name.clone());
        let refusal = match (game, &user) {
            (None, _) => Some(not_a_game(command, &config.games)),
            (Some(_), None) => Some(GUESTS_CANNOT_PLAY.to_string()),
            (Some(g), Some(_)) if !crate::game::is_available(g) => {
                Some(format!("{} is not installed on this server.\r\n", g.name))
            }
            _ => None,
        };
        let has_pty = self.channels.get(id).is_some_and(|c| c.tty.has_pty());
        let refusal = refusal
            .or_else(|| (!has_pty).then(|| GAMES_NEED_TERMINAL.to_string()))
            .or_else(|| self.channels.any_game().then(|| format!("{ONE_GAME}\r\n")));
        let Some(ch) = self.channels.get_mut(id) else {
            return;
        };
        if let Some(text) = refusal {
            ch.tty.finish_with(&text, 1);
            return;
        }
        let (Some(g), Some(user)) = (game, user) else {
            return;
        };
        ch.tty.begin_session(&self.env.metrics, self.now);
        let key = self.game_key(id);
        let game_id = g.id.clone();
        self.channels
            .step(id, |ch| (ch.into_starting(key, game_id, user), ()));
        self.launch(key);
    }

    /// The lobby of channel `id` chose `game_id`.
    pub(super) fn play(&mut self, id: ChannelId, game_id: String) {
        if let Some(key) = self.start_from_lobby(id, game_id) {
            self.launch(key);
        }
    }

    /// The lobby of channel `id` steps aside for `game_id`: the key of the game starting on
    /// it, or `None` (refused: one game per connection).
    fn start_from_lobby(&mut self, id: ChannelId, game_id: String) -> Option<GameKey> {
        let user = self.lobby_user(id)?;
        if self.channels.any_game() {
            if let Some(l) = self.channels.get_mut(id).and_then(|c| c.lobby_mut()) {
                l.handle_play_refused(ONE_GAME.into());
            }
            return None;
        }
        let key = self.game_key(id);
        self.channels
            .step(id, |ch| (ch.into_starting(key, game_id, user), ()));
        Some(key)
    }

    /// A game starts on its channel: claimed for the account first, unless the game lets an
    /// account run several copies.
    fn launch(&mut self, game: GameKey) {
        let Some((user, game_id)) = self.starting(game) else {
            return;
        };
        // A game no longer in the configuration (a reload removed it) may still be running
        // for this account: the claim finds it (and a fresh start of it then fails).
        let concurrent = self
            .game_config(&game_id)
            .is_some_and(|g| g.concurrent_per_account);
        if concurrent {
            self.spawn(game, false);
            return;
        }
        // One copy of a game per account, whichever core or connection started it: two
        // NetHack processes under one name overwrite each other's save.
        let request = Request::ClaimGame {
            user: user.clone(),
            game_id: game_id.clone(),
        };
        let pending = Pending::Claim {
            game,
            user,
            game_id,
        };
        self.requests.ask(&mut self.effects, request, pending);
    }

    /// The control core answered a claim. Granted for a game whose channel is gone (or
    /// whose connection is): given back at once.
    pub(super) fn claim_answered(
        &mut self,
        game: GameKey,
        user: String,
        game_id: String,
        reply: Reply,
    ) {
        let waiting = !self.closed
            && self.channels.with_game(game).is_some_and(
                |c| matches!(&c.mode, Mode::Starting(s) if s.step == StartStep::Claiming),
            );
        match reply {
            Reply::Running(listing) if waiting => self.resume(game, &listing),
            Reply::Done(Ok(())) if waiting => self.spawn(game, true),
            Reply::Done(Ok(())) => {
                tracing::debug!(game = %game_id, "claim granted after its channel went; released");
                let request = Request::ReleaseGame { user, game_id };
                self.requests.tell(&mut self.effects, request);
            }
            _ if !waiting => {}
            Reply::Done(Err(_)) => {
                let name = self
                    .game_config(&game_id)
                    .map_or(game_id.as_str(), |g| g.name.as_str());
                let text = format!(
                    "You already have {name} running (on another connection, or still saving). \
                     One copy at a time: end that one first."
                );
                self.refuse_play(game, &text);
            }
            _ => self.refuse_play(game, BUSY),
        }
    }

    /// The game asked for is already running for this account: re-attached when its
    /// connection dropped; when another connection has it, a lobby asks whether to take it
    /// over, and an exec (which has no one to ask) is refused, saying how to take it over.
    fn resume(&mut self, game: GameKey, listing: &Listing) {
        if listing.detached {
            self.reattach(game, listing.game, false);
            return;
        }
        let from_lobby = self
            .channels
            .with_game(game)
            .is_some_and(|c| c.starting_from_lobby());
        if !from_lobby {
            let text = format!(
                "You already have {} running on another connection. Connect without a \
                 command and press r in the lobby to take it over.",
                listing.game_name
            );
            self.refuse_play(game, &text);
            return;
        }
        let held = self
            .channels
            .step_game(game, |ch| ch.offer_take_over(listing));
        if let Some(n) = held.filter(|n| *n > 0) {
            self.ssh.channel_consumed(game.channel, n);
        }
    }

    /// The lobby of channel `id` chose to take over the player's game `target`.
    pub(super) fn take_over(&mut self, id: ChannelId, game_id: String, target: GameRef) {
        if let Some(key) = self.start_from_lobby(id, game_id) {
            self.reattach(key, target, true);
        }
    }

    /// Ask the reactor to attach the starting `game` to the running `target`, for the
    /// terminal as it is now.
    fn reattach(&mut self, game: GameKey, target: GameRef, take_over: bool) {
        let Some(ch) = self.channels.with_game_mut(game) else {
            return;
        };
        let Mode::Starting(s) = &mut ch.mode else {
            return;
        };
        s.step = StartStep::Spawning { size: ch.tty.size };
        self.effects.push_back(Effect::Reattach {
            game,
            target,
            take_over,
            size: ch.tty.size,
        });
    }

    /// Ask the reactor to spawn the claimed game, for the terminal as it is now.
    fn spawn(&mut self, game: GameKey, claimed: bool) {
        let Some(ch) = self.channels.with_game_mut(game) else {
            return;
        };
        let Mode::Starting(s) = &mut ch.mode else {
            return;
        };
        s.step = StartStep::Spawning { size: ch.tty.size };
        self.effects.push_back(Effect::Spawn {
            game,
            game_id: s.game_id.clone(),
            user: s.user.clone(),
            terminal: ch.tty.terminal_info(),
            claimed,
        });
    }

    /// The reactor's answer to [`Effect::Spawn`]: the channel plays the game, or, when it is
    /// gone (or the connection is), the game that started for nobody is hung up.
    pub(super) fn spawned(&mut self, game: GameKey, result: SpawnResult) {
        let game_id = self.starting(game).map(|(_, id)| id).unwrap_or_default();
        match result {
            Ok(()) => {
                let attached = !self.closed
                    && self
                        .channels
                        .step_game(game, |ch| ch.attach(game, &mut self.effects))
                        .unwrap_or(false);
                if attached {
                    tracing::info!(game = %game_id, "game attached");
                } else {
                    // The player left, or closed this channel, while the game was starting:
                    // hang it up like any other.
                    self.effects.push_back(Effect::Hangup { game });
                }
            }
            Err(SpawnError::Failed(e)) => {
                tracing::warn!(game = %game_id, error = %e, "game failed to start");
                if !self.closed {
                    self.refuse_play(game, SPAWN_FAILED);
                }
            }
            Err(SpawnError::NotResumed(text)) => {
                tracing::info!(game = %game_id, reason = %text, "game not re-attached");
                if !self.closed {
                    self.refuse_play(game, &text);
                }
            }
            Err(SpawnError::NoRoom(text)) => {
                tracing::info!(game = %game_id, "no room for another game");
                if !self.closed {
                    self.refuse_play(game, &text);
                }
            }
        }
    }

    /// The game `game` exited: its channel goes back to the lobby, or (exec) closes with the
    /// game's status.
    pub(super) fn game_ended(&mut self, game: GameKey, status: Option<ExitStatus>) {
        let code = match status {
            Some(ExitStatus::Exited(code)) => code as u32,
            Some(ExitStatus::Signaled(sig)) => 128 + sig as u32,
            None => 255,
        };
        let unread = self.channels.step_game(game, |ch| ch.game_ended(code));
        if let Some(n) = unread.filter(|n| *n > 0) {
            self.ssh.channel_consumed(game.channel, n);
        }
        // The lobby back asks for the player's running games.
        self.drain_actions(game.channel);
    }

    /// The start of `game` failed: its lobby shows `message`, or (exec) the channel closes
    /// with it. Input held for the game goes back to the client's window.
    fn refuse_play(&mut self, game: GameKey, message: &str) {
        let held = self.channels.step_game(game, |ch| ch.refuse_play(message));
        if let Some(n) = held.filter(|n| *n > 0) {
            self.ssh.channel_consumed(game.channel, n);
        }
        self.drain_actions(game.channel);
    }

    /// A key for a new game on channel `id`.
    fn game_key(&mut self, id: ChannelId) -> GameKey {
        GameKey {
            channel: id,
            serial: self.serial(),
        }
    }

    /// Who `game` is starting for, and which game it is.
    fn starting(&self, game: GameKey) -> Option<(String, String)> {
        match &self.channels.with_game(game)?.mode {
            Mode::Starting(s) => Some((s.user.clone(), s.game_id.clone())),
            _ => None,
        }
    }

    fn game_config(&self, game_id: &str) -> Option<&GameConfig> {
        self.env.config.game(game_id)
    }
}

/// The refusal for an exec of something that is not a configured game.
fn not_a_game(command: &str, games: &[GameConfig]) -> String {
    let shown: String = command
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect();
    let ids: Vec<&str> = games.iter().map(|g| g.id.as_str()).collect();
    format!(
        "'{shown}' is not a game here. Games: {}. Or connect without a command for the lobby.\r\n",
        ids.join(", ")
    )
}
