//! Admin orders on the control core: the list of every session (asked of every data core and
//! gathered here), kicks, broadcasts, draining, and locks with a reason. The asker is an admin
//! account's lobby (its session checked the account's admin flag, which came from this core's
//! own login answer) or `dungeongate admin` on the server's machine.

use super::jobs::{Change, Done, Work};
use super::messages::{Notice, Reply};
use super::{Control, Millis, Origin};
use crate::admin::{clean_text, SessionId, SessionInfo, MAX_BROADCAST, MAX_REASON};
use crate::auth;

/// How long a session list waits for the cores' reports: a core that does not answer in
/// time (stuck, or stopping) is left out rather than holding the admin up.
pub const SESSIONS_WAIT_MS: Millis = 2_000;

/// A session list being gathered.
pub(super) struct SessionsQuery {
    origin: Origin,
    /// Cores that have not reported yet.
    waiting: usize,
    sessions: Vec<SessionInfo>,
    deadline: Millis,
}

impl Control {
    /// Every core is asked for its sessions; the answer goes out when all have reported, or
    /// at the deadline.
    pub(super) fn admin_sessions(&mut self, origin: Origin, now: Millis) {
        let query = self.next_query;
        self.next_query += 1;
        self.queries.insert(
            query,
            SessionsQuery {
                origin,
                waiting: self.settings.cores.max(1),
                sessions: Vec::new(),
                deadline: now.saturating_add(SESSIONS_WAIT_MS),
            },
        );
        self.notices.push_back(Notice::ReportSessions { query });
    }

    /// One core's sessions for `query`.
    pub(super) fn sessions_reported(&mut self, query: u64, sessions: Vec<SessionInfo>) {
        let Some(q) = self.queries.get_mut(&query) else {
            return;
        };
        q.sessions.extend(sessions);
        q.waiting = q.waiting.saturating_sub(1);
        if q.waiting == 0 {
            self.answer_query(query);
        }
    }

    /// Lists whose deadline passed are answered with what came.
    pub(super) fn expire_queries(&mut self, now: Millis) {
        let due: Vec<u64> = self
            .queries
            .iter()
            .filter(|(_, q)| q.deadline <= now)
            .map(|(k, _)| *k)
            .collect();
        for query in due {
            tracing::warn!(
                query,
                "a core did not report its sessions in time; the list is partial"
            );
            self.answer_query(query);
        }
    }

    /// The earliest deadline of a list being gathered.
    pub(super) fn queries_timeout(&self) -> Option<Millis> {
        self.queries.values().map(|q| q.deadline).min()
    }

    fn answer_query(&mut self, query: u64) {
        if let Some(mut q) = self.queries.remove(&query) {
            q.sessions.sort_by_key(|s| s.id);
            self.reply(q.origin, Reply::Sessions(q.sessions));
        }
    }

    pub(super) fn admin_kick(&mut self, origin: Origin, session: SessionId, reason: &str) {
        let reason = clean_text(reason, MAX_REASON)
            .unwrap_or_else(|| "An administrator closed this connection.".into());
        tracing::info!(%session, %reason, "admin: kick");
        self.notices.push_back(Notice::Kick { session, reason });
        self.reply(origin, Reply::Done(Ok(())));
    }

    pub(super) fn admin_broadcast(&mut self, origin: Origin, text: &str) {
        let Some(text) = clean_text(text, MAX_BROADCAST) else {
            self.reply(origin, Reply::Done(Err("Nothing to send.".into())));
            return;
        };
        tracing::info!(%text, "admin: broadcast");
        self.notices.push_back(Notice::Broadcast(text.into()));
        self.reply(origin, Reply::Done(Ok(())));
    }

    pub(super) fn admin_drain(&mut self, origin: Origin, on: bool) {
        tracing::warn!(on, "admin: draining new games");
        self.notices.push_back(Notice::Drain(on));
        self.reply(origin, Reply::Done(Ok(())));
    }

    pub(super) fn admin_lock(
        &mut self,
        origin: Origin,
        name: String,
        locked: bool,
        reason: Option<String>,
    ) {
        let reason = reason.and_then(|r| clean_text(&r, MAX_REASON));
        let work = Work::Update {
            store: self.store.clone(),
            name: name.clone(),
            change: Change::SetLock {
                locked,
                reason: reason.clone(),
            },
        };
        self.submit(
            super::accounts::Step::AdminLock {
                origin,
                name,
                locked,
                reason,
            },
            work,
        );
    }

    /// The lock job came back: a lock ends the account's sessions with its reason at once
    /// (the revocation watch would too, a moment later and without the reason).
    pub(super) fn admin_locked(
        &mut self,
        origin: Origin,
        name: String,
        locked: bool,
        reason: Option<String>,
        done: Done,
    ) {
        let result = match done {
            Done::Updated { result, .. } => result.map_err(|e| match e {
                auth::AuthError::NotFound(_) => {
                    format!("There is no account named {}.", auth::printable(&name))
                }
                other => format!("Could not change the account: {other}"),
            }),
            _ => Err("The server is busy; try again.".into()),
        };
        if result.is_ok() {
            let who = auth::printable(&name);
            tracing::warn!(user = %who, locked, reason = reason.as_deref().unwrap_or(""), "admin: account lock changed");
            if locked {
                self.notices.push_back(Notice::LockedOut { name, reason });
            }
        }
        self.reply(origin, Reply::Done(result));
    }
}
