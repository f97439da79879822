//! The control core's concerns that are not I/O: the messages data cores exchange with it,
//! and every account decision, as a synchronous state machine the reactor drives.
//!
//! ```text
//! reactor ── handle_request(origin, req, now) ─▶ Control ── poll_reply() ──▶ (origin, reply)
//!         ── handle_job_done(done, now) ───────▶         ── poll_job() ────▶ Job (pool thread:
//!         ── handle_timeout(now) ──────────────▶         ── poll_notice() ─▶ Notice   job.run())
//!                                                        ── poll_timeout()
//! ```
//!
//! Nothing here blocks: every LMDB transaction and every argon2 run is a [`Job`] the reactor
//! runs on its blocking pool ([`Job::run`]) and hands back ([`Control::handle_job_done`]).
//! What needs the control core's own state (the throttle before and after a password check,
//! the running-games set, the metric cells, the hashing queue) happens in `handle_*` on the
//! control thread. argon2 jobs are capped: at most `max_concurrent` are handed out at once and
//! at most `max_queued` are running or waiting, past which the answer is "busy" (a password
//! flood costs at most `max_concurrent` hashes of memory). LMDB-only jobs are not capped by
//! the hash slots; requests in progress are (`max_pending`).
//!
//! - `messages`: [`Request`], [`Reply`], [`Notice`] (they cross threads, so all owned).
//! - `accounts`: what each request does, step by step.
//! - `jobs`: [`Job`] and [`JobDone`], the blocking work.
//! - `revocations`: the once-a-second look for accounts locked or deleted (by the CLI, say)
//!   whose sessions must end.
//! - `keys`: listing, adding and removing an account's SSH keys (the lobby's `k` screen).
//! - `options`: reading and writing a player's options file (the lobby's `o` editor), file
//!   work that runs as a job like the store's.

mod accounts;
mod admin;
mod directory;
mod jobs;
mod keys;
pub mod messages;
mod options;
mod revocations;

pub use jobs::{Job, JobDone};
pub use messages::{NewKey, Notice, Reply, Request, SshAttempt, SshOutcome};

use crate::auth::{PasswordHasher, Store};
use crate::config::Config;
use crate::limits::throttle::{Throttle, ThrottleRules};
use crate::limits::SourceGrouping;
use crate::metrics::ControlMetrics;
use crate::ssh::server::Millis;
use accounts::Step;
use jobs::{OpId, Work};
use revocations::Revocations;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

/// Who asked: opaque to [`Control`], chosen by the reactor (it encodes core, connection and
/// token), echoed with the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Origin(pub u64);

/// How often the control core looks for accounts locked or deleted.
pub const REVOCATION_POLL_MS: Millis = 1000;

/// The control core's knobs, mostly from the configuration ([`ControlSettings::from_config`]).
#[derive(Debug, Clone)]
pub struct ControlSettings {
    /// argon2 jobs handed out at once (`password.max_concurrent`; each holds its memory).
    pub max_concurrent: usize,
    /// argon2 jobs running or waiting (`password.max_queued`); past it: "busy".
    pub max_queued: usize,
    /// Failure backoff per account and per source, registrations per source.
    pub throttle: ThrottleRules,
    /// Lock an account after this many failures in a row (0: never; the backoff still runs).
    pub lock_after_failures: u32,
    /// What counts as one source (the configured prefix lengths).
    pub grouping: SourceGrouping,
    /// Requests in progress (waiting for a job) at once; more are answered
    /// [`Reply::Unavailable`] at once, so the operation table is bounded whatever the data
    /// cores send.
    pub max_pending: usize,
    /// Data cores (an admin session list waits for this many reports).
    pub cores: usize,
    /// How often to look for revoked accounts ([`REVOCATION_POLL_MS`]).
    pub revocation_poll_ms: Millis,
    /// Who the files the options editor writes belong to: the games user when the server is
    /// root (looked up at start, so not from the configuration alone), `None` for the
    /// server's own user.
    pub games_user: Option<crate::pty::RunAs>,
}

impl ControlSettings {
    /// The settings `config` asks for. `max_pending` allows two requests in progress per
    /// allowed connection (a session asks one thing at a time).
    pub fn from_config(config: &Config) -> ControlSettings {
        let limits = &config.limits;
        ControlSettings {
            max_concurrent: config.password.max_concurrent,
            max_queued: config.password.max_queued,
            throttle: limits.throttle_rules(),
            lock_after_failures: limits.lock_account_after_failures,
            grouping: limits.source_grouping,
            max_pending: limits.max_connections.saturating_mul(2).max(16),
            cores: config.cores,
            revocation_poll_ms: REVOCATION_POLL_MS,
            games_user: None,
        }
    }
}

/// Every account decision of the server; lives on the control core (one owner, no locks).
pub struct Control {
    /// The account store; cloned into each LMDB job, never touched here.
    store: Store,
    /// argon2 with the configured costs; cloned into each hash job.
    hasher: Arc<PasswordHasher>,
    /// Caps and rules.
    settings: ControlSettings,
    /// `auth_*` metric families (written only here, on the control thread).
    metrics: Arc<ControlMetrics>,
    /// Failure backoff per account and per source, registrations per source.
    throttle: Throttle,
    /// (account, game id) of every game running on any core.
    running_games: HashSet<(String, String)>,
    /// Operations waiting for a job's result, by id.
    ops: HashMap<OpId, Step>,
    /// The next operation id (never reused).
    next_op: OpId,
    /// LMDB jobs ready to be handed out (not capped by the hash slots).
    lmdb_jobs: VecDeque<Job>,
    /// argon2 jobs waiting for a hash slot.
    hash_jobs: VecDeque<Job>,
    /// argon2 jobs handed out and not back yet (≤ `max_concurrent`).
    hashing: usize,
    /// Jobs of any kind handed out and not back yet.
    in_flight: usize,
    /// Answers for the reactor to route.
    replies: VecDeque<(Origin, Reply)>,
    /// Notices for the reactor to send to every data core.
    notices: VecDeque<Notice>,
    /// Accounts with a lock job in flight (one lock per account, however many failures).
    locking: HashSet<String>,
    /// The revocation watch's state.
    revocations: Revocations,
    /// Every running game, for the watch menus.
    directory: directory::Directory,
    /// Admin session lists being gathered from the cores, by query id.
    queries: HashMap<u64, admin::SessionsQuery>,
    next_query: u64,
}

impl Control {
    /// A control core over `store`; the first revocation read is due at `now`.
    pub fn new(
        store: Store,
        hasher: Arc<PasswordHasher>,
        settings: ControlSettings,
        metrics: Arc<ControlMetrics>,
        now: Millis,
    ) -> Control {
        Control {
            store,
            hasher,
            throttle: Throttle::new(settings.throttle),
            revocations: Revocations::new(now, settings.revocation_poll_ms),
            settings,
            metrics,
            running_games: HashSet::new(),
            ops: HashMap::new(),
            next_op: 0,
            lmdb_jobs: VecDeque::new(),
            hash_jobs: VecDeque::new(),
            hashing: 0,
            in_flight: 0,
            replies: VecDeque::new(),
            notices: VecDeque::new(),
            locking: HashSet::new(),
            directory: directory::Directory::default(),
            queries: HashMap::new(),
            next_query: 0,
        }
    }

    /// A configuration reload: the new limits from now on (argon2's cost and pool are fixed
    /// for the process's life; counts so far stay).
    pub fn reconfigure(&mut self, settings: ControlSettings) {
        self.throttle.set_rules(settings.throttle);
        // Who games run as is decided at start (the reload's settings do not know it).
        self.settings = ControlSettings {
            max_concurrent: self.settings.max_concurrent,
            max_queued: self.settings.max_queued,
            games_user: self.settings.games_user.clone(),
            ..settings
        };
    }

    /// A data core asks `request` for `origin`. The answer comes out of
    /// [`Self::poll_reply`], at once or after jobs have run. (`now` is for symmetry: every
    /// time-dependent decision is taken when a job's result comes back.)
    pub fn handle_request(&mut self, origin: Origin, request: Request, now: Millis) {
        let instant = matches!(
            request,
            Request::ClaimGame { .. }
                | Request::ReleaseGame { .. }
                | Request::ListGames
                | Request::GameListed(_)
                | Request::GameStatus { .. }
                | Request::GameUnlisted(_)
                | Request::GameDetached { .. }
                | Request::AdminSessions
                | Request::AdminKick { .. }
                | Request::AdminBroadcast { .. }
                | Request::AdminDrain { .. }
                | Request::SessionsReport { .. }
                | Request::GamesOf { .. }
        );
        if !instant && self.ops.len() >= self.settings.max_pending {
            tracing::warn!(?request, "control core has too many requests in progress");
            self.reply(origin, Reply::Unavailable);
            return;
        }
        self.start(origin, request, now);
    }

    /// Blocking work to run on the pool (then give the result to
    /// [`Self::handle_job_done`]). LMDB jobs first; argon2 jobs only while fewer than
    /// `max_concurrent` are out.
    #[must_use]
    pub fn poll_job(&mut self) -> Option<Job> {
        let job = match self.lmdb_jobs.pop_front() {
            Some(job) => job,
            None if self.hashing < self.settings.max_concurrent.max(1) => {
                let job = self.hash_jobs.pop_front()?;
                self.hashing += 1;
                job
            }
            None => return None,
        };
        self.in_flight += 1;
        Some(job)
    }

    /// A job handed out by [`Self::poll_job`] has run (or was refused: [`Job::refused`]).
    pub fn handle_job_done(&mut self, done: JobDone, now: Millis) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if done.hashed {
            self.hashing = self.hashing.saturating_sub(1);
        }
        let Some(step) = self.ops.remove(&done.op) else {
            tracing::error!(op = done.op, "control: result of an unknown job");
            return;
        };
        self.resume(step, done.done, now);
    }

    /// An answer to route back to whoever asked.
    #[must_use]
    pub fn poll_reply(&mut self) -> Option<(Origin, Reply)> {
        self.replies.pop_front()
    }

    /// Something every data core must hear (send each notice to each of them).
    #[must_use]
    pub fn poll_notice(&mut self) -> Option<Notice> {
        self.notices.pop_front()
    }

    /// When [`Self::handle_timeout`] wants to run next (the next revocation check); `None`
    /// while a check is in flight.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Millis> {
        [self.revocations.poll_timeout(), self.queries_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Time passed: start the revocation check when it is due.
    pub fn handle_timeout(&mut self, now: Millis) {
        self.expire_queries(now);
        if let Some(after) = self.revocations.start(now) {
            let work = Work::Revocations {
                store: self.store.clone(),
                after,
            };
            self.submit(Step::Revocations, work);
        }
    }

    /// Jobs handed out by [`Self::poll_job`] and not given back yet (wait for 0 before
    /// closing the store at shutdown).
    pub fn jobs_in_flight(&self) -> usize {
        self.in_flight
    }

    /// Queue `work` for the operation `step`: argon2 jobs wait for a hash slot, the rest are
    /// ready at once. The caller has checked the hashing queue's bound.
    fn submit(&mut self, step: Step, work: Work) {
        let op = self.next_op;
        self.next_op += 1;
        self.ops.insert(op, step);
        let job = Job { op, work };
        if job.hashes() {
            self.hash_jobs.push_back(job);
        } else {
            self.lmdb_jobs.push_back(job);
        }
    }

    /// Whether the hashing queue (running + waiting) is full.
    fn hash_queue_full(&self) -> bool {
        self.hashing + self.hash_jobs.len() >= self.settings.max_queued
    }

    fn reply(&mut self, origin: Origin, reply: Reply) {
        self.replies.push_back((origin, reply));
    }
}

#[cfg(test)]
mod tests;
