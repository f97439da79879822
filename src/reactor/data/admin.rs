//! Admin orders on a data core: its sessions for the admin list, a kick, a broadcast line,
//! draining new games, an account locked with a reason.

use super::*;
use crate::admin::SessionId;

/// Told to a player whose game start is refused while the server drains.
pub(super) const MAINTENANCE: &str =
    "The server is in maintenance: no new games can start for now. Please come back later.";
/// Told to the sessions of an account an admin locked (the reason follows, when given).
const LOCKED: &str = "Your account was locked by an administrator.";

impl DataCore {
    /// The admin list `query`: this core's connections, to the control core.
    pub(super) fn report_sessions(&mut self, query: u64) {
        let now = now_ms();
        let core = u16::try_from(self.id).unwrap_or(u16::MAX);
        let sessions = self
            .conns
            .iter()
            .filter(|(_, c)| c.sock.phase == Phase::Open)
            .map(|(slot, c)| {
                let id = SessionId {
                    core,
                    slot: slot as u32,
                    generation: c.sock.generation,
                };
                let connected = u64::try_from(c.accepted_at.elapsed().as_millis()).unwrap_or(0);
                c.session.admin_view(id, connected, now)
            })
            .collect();
        self.tell_control(Request::SessionsReport { query, sessions });
    }

    /// Close `session` if it is on this core, telling it `reason`; its games are hung up
    /// (they save) rather than kept for a return.
    pub(super) fn kick(&mut self, session: SessionId, reason: &str) {
        if usize::from(session.core) != self.id {
            return;
        }
        let now = now_ms();
        let slot = session.slot as usize;
        let Some(c) = self
            .conns
            .get_mut(slot)
            .filter(|c| c.sock.generation == session.generation)
        else {
            return;
        };
        tracing::info!(parent: c.session.span(), %reason, "closed by an administrator");
        c.hang_up_games = true;
        c.session.shutdown(reason, now);
        self.after(slot);
    }

    /// An admin's line for every player on this core.
    pub(super) fn broadcast(&mut self, text: &str) {
        let now = now_ms();
        self.each_session(|session| session.handle_broadcast(text, now));
    }

    /// New games refused (`on`) or allowed again; the lobbies say so.
    pub(super) fn drain(&mut self, on: bool) {
        self.draining = on;
        let now = now_ms();
        self.each_session(|session| session.handle_drain(on, now));
    }

    /// An admin locked `name`: its connections end with the reason, its games are hung up.
    pub(super) fn locked_out(&mut self, name: &str, reason: Option<&str>) {
        let message = match reason {
            Some(r) => format!("{LOCKED} Reason: {r}"),
            None => LOCKED.to_owned(),
        };
        self.end_sessions_with(name, &message);
    }
}
