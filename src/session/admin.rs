//! What the admin orders need of a session: how it looks in the session list, a broadcast
//! line for its lobbies, the maintenance state its lobbies show, and the orders an admin's
//! lobby gives (the admin screen), asked of the control core only for an admin account.

use super::actions::BUSY;
use super::channel::{Channel, Mode};
use super::requests::LobbyAsk;
use super::Session;
use crate::admin::{SessionId, SessionInfo};
use crate::control::{Reply, Request};
use crate::lobby::{Lobby, LobbyAction};
use crate::ssh::server::{ChannelId, Millis};

/// What a lobby is told when it asks for an admin order without being an admin's.
const NOT_ADMIN: &str = "Only administrators can do that.";

impl Session {
    /// This connection as the admin list shows it (`id` and `connected_ms` are the reactor's).
    pub fn admin_view(&self, id: SessionId, connected_ms: u64, now: Millis) -> SessionInfo {
        let user = self.auth.user().map(|u| u.name.clone()).or_else(|| {
            self.channels
                .iter()
                .find_map(|c| c.account().map(str::to_owned))
        });
        let (game, watching) = self
            .channels
            .iter()
            .find_map(|c| match &c.mode {
                Mode::Game(g) => Some((Some(g.game_id.clone()), false)),
                Mode::Starting(s) => Some((Some(s.game_id.clone()), false)),
                Mode::Watching(_) => Some((None, true)),
                _ => None,
            })
            .unwrap_or((None, false));
        SessionInfo {
            id,
            user,
            source: self.client.ip(),
            game,
            watching,
            idle_ms: now.saturating_sub(self.last_input),
            connected_ms,
        }
    }

    /// An admin's line for every player: each lobby shows it (one in a game or watching shows
    /// it when it is back).
    pub fn handle_broadcast(&mut self, text: &str, now: Millis) {
        self.now = now;
        if self.closed {
            return;
        }
        self.channels.for_each_lobby(|l| l.handle_broadcast(text));
        self.run();
    }

    /// New games are refused (`true`, the lobbies say so) or allowed again.
    pub fn handle_drain(&mut self, on: bool, now: Millis) {
        self.now = now;
        self.draining = on;
        if self.closed {
            return;
        }
        self.refresh_lobbies();
        self.run();
    }
}

impl Session {
    /// An order from the admin screen of channel `id`'s lobby. It is asked of the control
    /// core only when that lobby is logged in as an admin account: the lobby offers the
    /// screen to admins only, and this checks again, so no lobby bug can make a player an
    /// admin. Otherwise the lobby is answered at once and nothing is asked.
    pub(super) fn admin_action(&mut self, id: ChannelId, action: LobbyAction) {
        let (request, ask) = match action {
            LobbyAction::AdminSessions => (Request::AdminSessions, LobbyAsk::AdminList),
            LobbyAction::AdminKick { session, reason } => {
                (Request::AdminKick { session, reason }, LobbyAsk::Admin)
            }
            LobbyAction::AdminBroadcast { text } => {
                (Request::AdminBroadcast { text }, LobbyAsk::Admin)
            }
            LobbyAction::AdminDrain { on } => (Request::AdminDrain { on }, LobbyAsk::Admin),
            LobbyAction::AdminLock {
                name,
                locked,
                reason,
            } => (
                Request::AdminLock {
                    name,
                    locked,
                    reason,
                },
                LobbyAsk::Admin,
            ),
            _ => return,
        };
        let Some(lobby) = self.channels.get_mut(id).and_then(Channel::lobby_mut) else {
            return;
        };
        let admin = match lobby.user() {
            Some(u) if u.admin => crate::auth::printable(&u.name),
            _ => {
                tracing::warn!(
                    ?request,
                    "an admin order from a lobby not logged in as an admin; refused"
                );
                answer_lobby(lobby, ask, Reply::Done(Err(NOT_ADMIN.into())));
                return;
            }
        };
        // The control core logs what it does; this says which account asked.
        tracing::info!(admin = %admin, ?request, "admin order from the lobby");
        self.ask_for_lobby(id, request, ask);
    }
}

/// The control core's answer to an admin screen's request, for its lobby. An answer of the
/// wrong kind (`Unavailable`: the control core is busy or stopping) reads as "busy".
pub(super) fn answer_lobby(lobby: &mut Lobby, ask: LobbyAsk, reply: Reply) {
    match (ask, reply) {
        (LobbyAsk::AdminList, Reply::Sessions(list)) => lobby.handle_admin_sessions(Ok(list)),
        (LobbyAsk::AdminList, Reply::Done(Err(why))) => lobby.handle_admin_sessions(Err(why)),
        (LobbyAsk::AdminList, _) => lobby.handle_admin_sessions(Err(BUSY.into())),
        (_, Reply::Done(r)) => lobby.handle_admin_result(r),
        (_, _) => lobby.handle_admin_result(Err(BUSY.into())),
    }
}
