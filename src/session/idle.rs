//! Idle limits after login: a connection that opens no session channel, and a lobby nobody
//! types in, are closed (before login the SSH core's login grace does the same). A game may
//! sit idle for as long as the game itself allows. Also the lobby's short input pause: a
//! lone ESC is the Escape key only once no byte follows it for a moment.

use super::Session;
use crate::ssh::msg::DisconnectReason;
use crate::ssh::server::Millis;

impl Session {
    /// The next idle deadline (no channel, or a lobby), once logged in.
    pub(super) fn idle_deadline(&self) -> Option<Millis> {
        if !self.auth.logged_in() {
            return None;
        }
        let (no_channel, lobby) = self.idle_limits_ms();
        let no_channel = self.channelless_since.map(|t| t.saturating_add(no_channel));
        let lobby = self
            .channels
            .lobby_idle_since()
            .map(|t| t.saturating_add(lobby));
        no_channel.into_iter().chain(lobby).min()
    }

    /// Act on the idle limits that ran out by `now`.
    pub(super) fn check_idle(&mut self, now: Millis) {
        if !self.auth.logged_in() {
            return;
        }
        let (no_channel, lobby_idle) = self.idle_limits_ms();
        if self
            .channelless_since
            .is_some_and(|t| t.saturating_add(no_channel) <= now)
        {
            tracing::debug!("no session channel opened in time; closing");
            self.ssh.disconnect(
                DisconnectReason::ByApplication,
                "idle: no session was opened on this connection",
            );
            return;
        }
        let Some(cutoff) = now.checked_sub(lobby_idle) else {
            return;
        };
        if self
            .channels
            .lobby_idle_since()
            .is_none_or(|since| since > cutoff)
        {
            return;
        }
        let secs = self.env.config.limits.lobby_idle_seconds;
        let how_long = if secs < 120 {
            format!("{secs} s")
        } else {
            format!("{} min", secs / 60)
        };
        let message = format!("\r\nIdle in the lobby for {how_long}: goodbye.\r\n");
        loop {
            let Some(id) = self.channels.idle_lobbies(cutoff).next() else {
                break;
            };
            self.channels.step(id, |ch| (ch.idle_out(&message), ()));
        }
    }

    /// Lobbies whose input paused long enough: a pending lone ESC is Escape, which may make
    /// the lobby decide something (cancel a prompt).
    pub(super) fn fire_input_pauses(&mut self, now: Millis) {
        while let Some(id) = self.channels.input_pause_due(now) {
            if let Some(ch) = self.channels.get_mut(id) {
                ch.input_paused();
            }
            self.drain_actions(id);
        }
    }

    /// The no-channel and lobby idle limits.
    fn idle_limits_ms(&self) -> (Millis, Millis) {
        let limits = &self.env.config.limits;
        (
            limits.no_channel_idle_seconds.saturating_mul(1000),
            limits.lobby_idle_seconds.saturating_mul(1000),
        )
    }
}
