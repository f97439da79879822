//! Idle limits after login: a connection that opens no session channel, and a lobby nobody
//! types in, are closed (before login the SSH core's login grace does the same). A game may
//! sit idle for as long as the game itself allows.

use super::conn::Conn;
use crate::ssh::msg::DisconnectReason;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Watch `conn` from its login until it closes.
pub async fn watch(conn: Rc<Conn>) {
    let limits = &conn.core.config().limits;
    let lobby_idle = Duration::from_secs(limits.lobby_idle_seconds);
    let no_channel_idle = Duration::from_secs(limits.no_channel_idle_seconds);
    loop {
        if conn.is_closed() {
            return;
        }
        let now = Instant::now();
        let no_channel_deadline = conn.channelless_since().map(|t| t + no_channel_idle);
        if no_channel_deadline.is_some_and(|d| d <= now) {
            tracing::debug!("no session channel opened in time; closing");
            conn.disconnect(
                DisconnectReason::ByApplication,
                "idle: no session was opened on this connection",
            );
            return;
        }
        let lobby_deadline = conn.lobby_idle_since().map(|t| t + lobby_idle);
        if lobby_deadline.is_some_and(|d| d <= now) {
            let secs = limits.lobby_idle_seconds;
            let how_long = if secs < 120 {
                format!("{secs} s")
            } else {
                format!("{} min", secs / 60)
            };
            conn.idle_out_lobbies(
                now - lobby_idle,
                &format!("\r\nIdle in the lobby for {how_long}: goodbye.\r\n"),
            );
            continue;
        }
        // Sleep until the earlier deadline; activity meanwhile only moves deadlines later,
        // so waking early costs one recomputation and nothing is missed.
        let next = [no_channel_deadline, lobby_deadline]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(now + no_channel_idle.min(lobby_idle));
        glommio::timer::sleep(next.saturating_duration_since(now)).await;
    }
}
