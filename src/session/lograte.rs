//! Per-source log rate limiting: a peer that fails authentication in a loop, or keeps
//! breaking the protocol, must not be able to fill the operator's disk or drown other lines.
//! Each data core keeps its own table (no sharing; see [`super::SessionEnv::log_rate`]); a
//! source gets `BURST` lines per `WINDOW`, then one line saying it is being suppressed, then
//! silence until the window turns. Time is the caller's [`Millis`] clock.

use crate::ssh::server::Millis;
use std::cell::RefCell;
use std::collections::HashMap;
use std::net::IpAddr;

/// Lines allowed per source and window.
const BURST: u32 = 10;
/// Length of a window.
const WINDOW: Millis = 60_000;
/// Sources remembered at most (the table is cleared past this: better to log again than to
/// let an address scan grow memory).
const MAX_SOURCES: usize = 16_384;

/// What to do with a line.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Log,
    /// Log this one with a note that the next ones from this source are suppressed.
    LogLast,
    Suppress,
}

/// One core's table of recent lines per source.
#[derive(Default)]
pub struct LogRate {
    /// Window start and lines logged in it, per source address.
    sources: RefCell<HashMap<IpAddr, (Millis, u32)>>,
}

impl LogRate {
    /// Count a line about `source` at `now` and say whether to log it.
    pub fn check(&self, source: IpAddr, now: Millis) -> Verdict {
        let mut sources = self.sources.borrow_mut();
        if sources.len() >= MAX_SOURCES && !sources.contains_key(&source) {
            sources.clear();
        }
        let entry = sources.entry(source).or_insert((now, 0));
        if now.saturating_sub(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        match entry.1 {
            n if n < BURST => Verdict::Log,
            n if n == BURST => Verdict::LogLast,
            _ => Verdict::Suppress,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn a_noisy_source_is_cut_off_and_others_are_not() {
        let r = LogRate::default();
        let t = 5_000;
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let verdicts: Vec<_> = (0..12).map(|_| r.check(a, t)).collect();
        assert_eq!(verdicts[..9], [(); 9].map(|_| Verdict::Log));
        assert_eq!(verdicts[9], Verdict::LogLast);
        assert_eq!(verdicts[10], Verdict::Suppress);
        assert_eq!(r.check(b, t), Verdict::Log);
        assert_eq!(r.check(a, t + WINDOW), Verdict::Log);
    }
}
