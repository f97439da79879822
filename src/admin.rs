//! What operators see of the running server and what they may do to it, shared by the
//! layers: the lobby's admin menu (for admin accounts), the control core that carries the
//! orders out across the data cores, and `dungeongate admin` on the server's own machine.

use std::net::IpAddr;

/// A connection on some data core (slot and generation, so an order that arrives late can
/// never reach a newer connection in a reused slot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId {
    pub core: u16,
    pub slot: u32,
    pub generation: u32,
}

impl std::fmt::Display for SessionId {
    /// `core.slot.generation`, the form `dungeongate admin kick` takes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.core, self.slot, self.generation)
    }
}

impl std::str::FromStr for SessionId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!(
                "{s:?} is not a session id (core.slot.generation, as `admin sessions` shows it)"
            )
        };
        let mut parts = s.split('.');
        let (Some(c), Some(sl), Some(g), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        Ok(SessionId {
            core: c.parse().map_err(|_| bad())?,
            slot: sl.parse().map_err(|_| bad())?,
            generation: g.parse().map_err(|_| bad())?,
        })
    }
}

/// One connection as the admin list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub id: SessionId,
    /// The account logged in (`None`: a guest, or not logged in yet).
    pub user: Option<String>,
    /// Where it comes from (the real client behind a PROXY-protocol balancer).
    pub source: IpAddr,
    /// The game it plays, by id, or the one it watches (`watching` set).
    pub game: Option<String>,
    /// It watches `game` rather than plays it.
    pub watching: bool,
    /// Since its last input, in milliseconds.
    pub idle_ms: u64,
    /// Since it connected, in milliseconds.
    pub connected_ms: u64,
}

/// The longest broadcast line (it is shown on one terminal line).
pub const MAX_BROADCAST: usize = 200;
/// The longest reason given for a kick or a lock.
pub const MAX_REASON: usize = 200;

/// A broadcast or reason as it may be shown: printable text only (no escape sequences or
/// other controls reach any terminal), capped at `max` characters; `None` when nothing
/// printable is left.
pub fn clean_text(text: &str, max: usize) -> Option<String> {
    let cleaned: String = text.chars().filter(|c| !c.is_control()).take(max).collect();
    let cleaned = cleaned.trim().to_owned();
    (!cleaned.is_empty()).then_some(cleaned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_round_trip_and_garbage_is_refused() {
        let id = SessionId {
            core: 1,
            slot: 42,
            generation: 7,
        };
        assert_eq!(id.to_string(), "1.42.7");
        assert_eq!("1.42.7".parse::<SessionId>(), Ok(id));
        for bad in ["", "1.2", "1.2.3.4", "a.b.c", "1.-2.3", "70000.1.1"] {
            assert!(bad.parse::<SessionId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn broadcast_text_loses_its_controls_and_is_capped() {
        assert_eq!(
            clean_text(" Back in 5\x1b[2J minutes\x07 ", 100).as_deref(),
            Some("Back in 5[2J minutes")
        );
        assert_eq!(clean_text("\x1b\x07\r\n", 100), None);
        assert_eq!(
            clean_text(&"x".repeat(500), 200).map(|s| s.len()),
            Some(200)
        );
    }
}
