//! What the admin orders need of a session: how it looks in the session list, a broadcast
//! line for its lobbies, and the maintenance state its lobbies show.

use super::channel::Mode;
use super::Session;
use crate::admin::{SessionId, SessionInfo};
use crate::ssh::server::Millis;

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
        let ctx = self.lobby_context();
        self.channels
            .for_each_lobby(|l| l.handle_context(ctx.clone()));
        self.run();
    }
}
