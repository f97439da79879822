//! The lobby's options editor, turned into control-core requests: the account is the one the
//! lobby is logged in as and the configuration this core's (which says where the file is);
//! the lobby names only the game, one of its menu's. Answers go back to that very lobby.

use super::actions::BUSY;
use super::channel::Channel;
use super::requests::LobbyAsk;
use super::Session;
use crate::control::{Reply, Request};
use crate::lobby::Lobby;
use crate::ssh::server::ChannelId;

/// What the lobby shows when an options request comes from a lobby logged in as nobody.
const NOT_LOGGED_IN: &str = "You are not logged in.";

impl Session {
    /// `ReadOptions` from the lobby of channel `id`.
    pub(super) fn ask_options_read(&mut self, id: ChannelId, game_id: String) {
        let config = self.env.config.clone();
        match self.lobby_user(id) {
            Some(name) => {
                let request = Request::ReadOptions {
                    name,
                    game_id,
                    config,
                };
                self.ask_for_lobby(id, request, LobbyAsk::OptionsRead);
            }
            None => {
                if let Some(lobby) = self.channels.get_mut(id).and_then(Channel::lobby_mut) {
                    lobby.handle_options_read(Err(NOT_LOGGED_IN.into()));
                }
            }
        }
    }

    /// `WriteOptions` from the lobby of channel `id`.
    pub(super) fn ask_options_write(&mut self, id: ChannelId, game_id: String, text: String) {
        let config = self.env.config.clone();
        match self.lobby_user(id) {
            Some(name) => {
                let request = Request::WriteOptions {
                    name,
                    game_id,
                    config,
                    text,
                };
                self.ask_for_lobby(id, request, LobbyAsk::OptionsWrite);
            }
            None => {
                if let Some(lobby) = self.channels.get_mut(id).and_then(Channel::lobby_mut) {
                    lobby.handle_options_saved(Err(NOT_LOGGED_IN.into()));
                }
            }
        }
    }
}

/// Hands the control core's answer about an options file to `lobby`.
pub(super) fn answer(lobby: &mut Lobby, ask: LobbyAsk, reply: Reply) {
    match (ask, reply) {
        (LobbyAsk::OptionsRead, Reply::Options(r)) => lobby.handle_options_read(r),
        (LobbyAsk::OptionsRead, _) => lobby.handle_options_read(Err(BUSY.into())),
        (LobbyAsk::OptionsWrite, Reply::Done(r)) => lobby.handle_options_saved(r),
        (LobbyAsk::OptionsWrite, _) => lobby.handle_options_saved(Err(BUSY.into())),
        _ => {}
    }
}
