//! The revocation watch: once a period the control core reads the accounts locked or
//! deleted since its last look (by the `dungeongate user` CLI in another process, or by
//! this server's own lockout), and tells every data core to end their sessions (games get
//! their hangup and save). The store keeps a numbered log of revocations
//! ([`crate::auth::Store::revocations_since`]); the first read only learns the latest
//! number, so what happened before the server started is not replayed.

use crate::auth::AuthError;
use crate::ssh::server::Millis;

/// Where the watch is.
pub(super) struct Revocations {
    /// The latest revocation number seen; `None` until the first read succeeded.
    seen: Option<u64>,
    /// Due at a time, or reading.
    state: State,
    /// Time between reads.
    period: Millis,
}

enum State {
    /// The next read starts at this time.
    Due(Millis),
    /// A read is in flight.
    Reading,
}

impl Revocations {
    /// The first read is due at `now`.
    pub(super) fn new(now: Millis, period: Millis) -> Revocations {
        Revocations {
            seen: None,
            state: State::Due(now),
            period,
        }
    }

    /// When the next read is due; `None` while one is in flight.
    pub(super) fn poll_timeout(&self) -> Option<Millis> {
        match self.state {
            State::Due(at) => Some(at),
            State::Reading => None,
        }
    }

    /// If a read is due at `now`, start it: the revocation number to read after.
    pub(super) fn start(&mut self, now: Millis) -> Option<u64> {
        match self.state {
            State::Due(at) if at <= now => {
                self.state = State::Reading;
                // `u64::MAX` asks only for the latest number.
                Some(self.seen.unwrap_or(u64::MAX))
            }
            _ => None,
        }
    }

    /// The read could not be started (the pool refused it): try again next period.
    pub(super) fn retry(&mut self, now: Millis) {
        self.state = State::Due(now.saturating_add(self.period));
    }

    /// A read finished at `now`: the accounts revoked since the last one. A failed read is
    /// logged and tried again next period (locks still take effect at the next login).
    pub(super) fn finished(
        &mut self,
        result: Result<(u64, Vec<String>), AuthError>,
        now: Millis,
    ) -> Vec<String> {
        self.state = State::Due(now.saturating_add(self.period));
        match result {
            Ok((latest, names)) => match self.seen.replace(latest) {
                Some(_) => names,
                None => Vec::new(),
            },
            Err(e) if self.seen.is_none() => {
                tracing::error!(error = %e, "cannot read account revocations; trying again");
                Vec::new()
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read account revocations");
                Vec::new()
            }
        }
    }
}
