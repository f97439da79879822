//! What a channel's lobby decides, turned into work: a login, registration or change becomes
//! a control-core request whose answer goes back to that very lobby (if it is still there);
//! Play starts a game (`play.rs`); Quit closes the channel once the farewell is sent.
//!
//! Requests about an account (changes, SSH keys) name the account the lobby is logged in
//! as, never anything the player typed; the key a guest logged in with can be bound once.
//! Admin orders are asked only for a lobby logged in as an admin account (`admin.rs`).

use super::channel::{Channel, ChannelKey};
use super::requests::{LobbyAsk, Pending};
use super::Session;
use crate::control::{NewKey, Reply, Request};
use crate::game;
use crate::lobby::{GameEntry, LobbyAction, LobbyContext, UserInfo};
use crate::ssh::server::ChannelId;

/// Added to the banner while an admin drains the server of new games.
const MAINTENANCE_BANNER: &str =
    "\nMaintenance: no new games can start for now; games running go on.\n";

/// What the lobby shows when the control core did not answer.
pub(super) const BUSY: &str = "The server is busy; try again.";
/// What the lobby shows when a key request comes from a lobby logged in as nobody.
const NOT_LOGGED_IN: &str = "You are not logged in.";
/// What the lobby shows when there is no login key (any more) to bind.
const NO_KEY_HERE: &str = "There is no key to bind on this connection.";

impl Session {
    /// Act on every decision the lobby of channel `id` has made.
    pub(super) fn drain_actions(&mut self, id: ChannelId) {
        while let Some(action) = self
            .channels
            .get_mut(id)
            .and_then(Channel::lobby_mut)
            .and_then(|l| l.poll_action())
        {
            self.act(id, action);
        }
    }

    fn act(&mut self, id: ChannelId, action: LobbyAction) {
        let source = self.client_ip();
        match action {
            LobbyAction::Quit => {
                if let Some(ch) = self.channels.get_mut(id) {
                    ch.tty.close_after = Some(0);
                }
            }
            LobbyAction::Play { game_id } => self.play(id, game_id),
            LobbyAction::ListGames => self.ask_game_list(id),
            LobbyAction::Watch { game } => self.start_watching(id, game),
            LobbyAction::StopWatching => self.stop_watching(id),
            LobbyAction::ListMyGames => self.ask_my_games(id),
            LobbyAction::TakeOver { game_id, game } => self.take_over(id, game_id, game),
            LobbyAction::Login { name, password } => {
                let request = Request::Login {
                    name,
                    password,
                    source,
                };
                self.ask_for_lobby(id, request, LobbyAsk::Login);
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
                    source,
                };
                self.ask_for_lobby(id, request, LobbyAsk::Register);
            }
            LobbyAction::ChangePassword { new_password } => {
                if let Some(name) = self.lobby_user(id) {
                    let request = Request::ChangePassword {
                        name,
                        password: new_password,
                    };
                    self.ask_for_lobby(id, request, LobbyAsk::Change);
                }
            }
            LobbyAction::ChangeEmail { email } => {
                if let Some(name) = self.lobby_user(id) {
                    let request = Request::ChangeEmail { name, email };
                    self.ask_for_lobby(id, request, LobbyAsk::Change);
                }
            }
            LobbyAction::ListKeys => {
                self.ask_keys(id, |name| Ok(Request::ListKeys { name }));
            }
            LobbyAction::AddKey { line } => {
                let key = NewKey::Line(line);
                self.ask_keys(id, |name| Ok(Request::AddKey { name, key }));
            }
            LobbyAction::RemoveKey { fingerprint } => {
                self.ask_keys(id, |name| Ok(Request::RemoveKey { name, fingerprint }));
            }
            LobbyAction::BindOfferedKey => {
                // Bound once: a second lobby on the connection gets nothing to bind.
                let blob = self.auth.take_guest_key();
                self.ask_keys(id, |name| {
                    let key = NewKey::Offered(blob.ok_or(NO_KEY_HERE)?);
                    Ok(Request::AddKey { name, key })
                });
            }
            LobbyAction::ReadOptions { game_id } => self.ask_options_read(id, game_id),
            LobbyAction::WriteOptions { game_id, text } => {
                self.ask_options_write(id, game_id, text);
            }
            action @ (LobbyAction::AdminSessions
            | LobbyAction::AdminKick { .. }
            | LobbyAction::AdminBroadcast { .. }
            | LobbyAction::AdminDrain { .. }
            | LobbyAction::AdminLock { .. }) => self.admin_action(id, action),
        }
    }

    /// Ask a key request for the account the lobby of channel `id` is logged in as. With no
    /// account, or no request to make (`Err` says why), the lobby is answered at once, so it
    /// never waits for nothing.
    fn ask_keys(
        &mut self,
        id: ChannelId,
        request: impl FnOnce(String) -> Result<Request, &'static str>,
    ) {
        let request = self.lobby_user(id).ok_or(NOT_LOGGED_IN).and_then(request);
        match request {
            Ok(request) => self.ask_for_lobby(id, request, LobbyAsk::Keys),
            Err(why) => {
                if let Some(lobby) = self.channels.get_mut(id).and_then(Channel::lobby_mut) {
                    lobby.handle_keys_result(Err(why.into()));
                }
            }
        }
    }

    /// The account the lobby of channel `id` is logged in as.
    pub(super) fn lobby_user(&mut self, id: ChannelId) -> Option<String> {
        let lobby = self.channels.get_mut(id)?.lobby_mut()?;
        lobby.user().map(|u| u.name.clone())
    }

    /// Ask the control core for the lobby of channel `id`.
    pub(super) fn ask_for_lobby(&mut self, id: ChannelId, request: Request, ask: LobbyAsk) {
        let Some(channel) = self.channels.get(id).map(|c| c.tty.key) else {
            return;
        };
        self.requests
            .ask(&mut self.effects, request, Pending::Lobby { channel, ask });
    }

    /// The control core answered a lobby: the answer goes to that very lobby, if it is still
    /// open (not a newer channel with the same id), and may make it decide more (quit after
    /// too many failures).
    pub(super) fn lobby_answered(&mut self, channel: ChannelKey, ask: LobbyAsk, reply: Reply) {
        let Some(lobby) = self.lobby_of(channel) else {
            return;
        };
        match ask {
            LobbyAsk::Login => lobby.handle_login_result(user_result(reply)),
            LobbyAsk::Register => lobby.handle_register_result(user_result(reply)),
            LobbyAsk::Change => lobby.handle_change_result(match reply {
                Reply::Done(r) => r,
                _ => Err(BUSY.into()),
            }),
            LobbyAsk::Keys => lobby.handle_keys_result(match reply {
                Reply::Keys(r) => r,
                _ => Err(BUSY.into()),
            }),
            LobbyAsk::OptionsRead | LobbyAsk::OptionsWrite => {
                super::options::answer(lobby, ask, reply);
            }
            LobbyAsk::AdminList | LobbyAsk::Admin => super::admin::answer_lobby(lobby, ask, reply),
        }
        self.drain_actions(channel.id);
    }

    /// The lobby of that very channel (not a newer one with the same id), if it is up.
    fn lobby_of(&mut self, channel: ChannelKey) -> Option<&mut crate::lobby::Lobby> {
        self.channels
            .get_key_mut(channel)
            .and_then(Channel::lobby_mut)
    }

    /// The lobby of channel `id` offers the player's running games.
    fn ask_my_games(&mut self, id: ChannelId) {
        let (Some(user), Some(channel)) = (
            self.lobby_user(id),
            self.channels.get(id).map(|c| c.tty.key),
        ) else {
            return;
        };
        let request = Request::GamesOf { user };
        self.requests
            .ask(&mut self.effects, request, Pending::MyGames { channel });
    }

    pub(super) fn my_games_answered(&mut self, channel: ChannelKey, reply: Reply) {
        let Some(lobby) = self.lobby_of(channel) else {
            return;
        };
        if let Reply::Games(list) = reply {
            lobby.handle_my_games(&list);
        }
    }

    /// Every lobby of this connection takes the context as it is now (banner, games,
    /// maintenance), redrawing what is up when it changed.
    pub(super) fn refresh_lobbies(&mut self) {
        let ctx = self.lobby_context();
        self.channels
            .for_each_lobby(|l| l.handle_context(ctx.clone()));
    }

    /// What the lobby shows above its menus: banner, games, counts, today's date.
    pub(super) fn lobby_context(&self) -> LobbyContext {
        let config = &self.env.config;
        LobbyContext {
            server_id: config.server_id.clone(),
            banner: if self.draining {
                format!("{}{MAINTENANCE_BANNER}", config.banner)
            } else {
                config.banner.clone()
            },
            games: config
                .games
                .iter()
                .map(|g| GameEntry {
                    id: g.id.clone(),
                    name: g.name.clone(),
                    key: g.key,
                    available: game::is_available(g),
                    options: g.rc_file.is_some(),
                })
                .collect(),
            players: usize::try_from(self.env.registry.games_running()).unwrap_or(0),
            watchers: usize::try_from(self.env.registry.watchers_active()).unwrap_or(0),
            date: crate::date::utc_today(),
        }
    }
}

fn user_result(r: Reply) -> Result<UserInfo, String> {
    match r {
        Reply::User(r) => r,
        _ => Err(BUSY.into()),
    }
}
