//! The metrics catalogue (SPEC §3) as cells: [`CoreMetrics`] for what a data core records,
//! [`ControlMetrics`] for what the control core records. Each is one cache-line-aligned block
//! written by its own thread only (see `counters` for the one-writer rule); the control core
//! reads them all at scrape time (`collector`).
//!
//! The methods are named after the event they record, so the reactor calls
//! `metrics.conn_accepted()` where a connection is accepted and the mapping from event to
//! family lives here, in one place. Histogram buckets are fixed and listed below.

use super::counters::{Counter, FloatGauge, Gauge, Histogram};
use super::labels::{
    AuthMethod, ConnStatus, DbOp, Direction, EndReason, FailReason, Outcome, PtyOp, RejectReason,
    SaveOp,
};
use crate::ssh::kex::KexAlg;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The `kind` label of `ttyrec_errors_total` (as `RecordError::kind` names them; `io` last,
/// it takes anything unknown).
pub const RECORD_ERROR_KINDS: [&str; 6] = [
    "disk_full",
    "permission",
    "symlink",
    "unsafe",
    "no_free_name",
    "io",
];

/// `ssh_connection_duration_seconds`, `terminal_session_duration_seconds`: 1 s … 1 day.
pub static SESSION_BUCKETS: [f64; 13] = [
    1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 43200.0, 86400.0,
];
/// `ssh_handshake_duration_seconds` (accept → first NEWKEYS): 1 ms … 10 s. Local
/// handshakes cost ~0.1–1 ms of CPU; the upper buckets catch slow peers and overload.
pub static HANDSHAKE_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// `auth_database_operation_duration_seconds`: 10 µs … 1 s (LMDB reads are µs, a synced
/// write is ms).
pub static DB_BUCKETS: [f64; 13] = [
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1,
    1.0,
];
/// `auth_password_hash_duration_seconds`: 5 ms … 2.5 s, dense around argon2id's ~20 ms.
pub static HASH_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Seconds-histogram types of the catalogue (bucket counts fixed by the arrays above).
pub type SessionHistogram = Histogram<13>;
pub type HandshakeHistogram = Histogram<13>;
pub type DbHistogram = Histogram<13>;
pub type HashHistogram = Histogram<11>;

/// Everything one data core records. Written only by that core's thread.
///
/// Call pairing: every `conn_accepted` is matched by one `conn_closed`; `conn_failed` is an
/// extra mark on an accepted connection that never finished its handshake; `conn_rejected`
/// stands alone (a refused connection is neither active nor closed). The same holds for
/// `terminal_session_started`/`_ended`, `spectator_joined`/`_left`,
/// `spectating_session_started`/`_ended`, and a successful `game_spawned`/`game_ended`.
#[derive(Debug)]
#[repr(align(64))]
pub struct CoreMetrics {
    /// This core's index (the `core` label of `reactor_core_*`).
    pub(super) core: usize,
    /// Clock base of the heartbeat, shared by all cores of a registry.
    pub(super) epoch: Instant,
    /// Configured game ids in config order (the `game_id` label values), for `game_index`.
    pub(super) game_ids: Arc<[String]>,
    /// `ssh_connections_total{status}`.
    pub(super) connections: [Counter; ConnStatus::COUNT],
    /// `connections_rejected_total{reason}`.
    pub(super) rejected: [Counter; RejectReason::COUNT],
    /// `ssh_connections_active`, and `reactor_core_connections{core}` (the same number).
    pub(super) connections_active: Gauge,
    /// `ssh_connection_duration_seconds`.
    pub(super) connection_duration: SessionHistogram,
    /// `ssh_handshake_duration_seconds`.
    pub(super) handshake_duration: HandshakeHistogram,
    /// `ssh_authentication_attempts_total{method,status}`.
    pub(super) auth_attempts: [[Counter; Outcome::COUNT]; AuthMethod::COUNT],
    /// `ssh_bytes_transferred_total{direction}`.
    pub(super) bytes: [Counter; Direction::COUNT],
    /// `ssh_kex_total{algorithm}`, indexed like `KexAlg::ALL`.
    pub(super) kex: [Counter; KexAlg::ALL.len()],
    /// `terminal_sessions_total{status}` (counted when a session ends).
    pub(super) terminal_sessions: [Counter; Outcome::COUNT],
    /// `terminal_sessions_active`.
    pub(super) terminal_active: Gauge,
    /// `terminal_session_duration_seconds`.
    pub(super) terminal_duration: SessionHistogram,
    /// `terminal_pty_operations_total{operation}`.
    pub(super) pty_ops: [Counter; PtyOp::COUNT],
    /// `terminal_data_transferred_total{direction}`.
    pub(super) terminal_bytes: [Counter; Direction::COUNT],
    /// `spectator_connections_total`.
    pub(super) spectators: Counter,
    /// `spectator_connections_active`.
    pub(super) spectators_active: Gauge,
    /// `spectating_sessions_active` (game sessions on this core with at least one watcher).
    pub(super) spectated_active: Gauge,
    /// `game_sessions_detached` (games on this core waiting for their player to come back).
    pub(super) detached_active: Gauge,
    /// `game_sessions_reattached_total`.
    pub(super) reattached: Counter,
    /// `ttyrec_bytes_written_total`.
    pub(super) recorded_bytes: Counter,
    /// `ttyrec_errors_total{kind}`, in [`RECORD_ERROR_KINDS`] order.
    pub(super) record_errors: [Counter; RECORD_ERROR_KINDS.len()],
    /// `reactor_core_busy_ratio{core}`.
    pub(super) busy_ratio: FloatGauge,
    /// `reactor_buffer_pool_in_use{core}`.
    pub(super) buffers_in_use: Gauge,
    /// Last heartbeat, in ms since `epoch`: `/health/live` fails a core whose beat is stale.
    pub(super) heartbeat_ms: AtomicU64,
    /// Per configured game, in config order; one extra slot at the end collects games not
    /// known at start-up (added by a reload), exported as `game_id="_other"` when non-zero.
    pub(super) games: Box<[GameMetrics]>,
}

/// The game families for one game on one core.
#[derive(Debug, Default)]
pub(super) struct GameMetrics {
    /// `game_sessions_started_total{game_id}`.
    pub(super) started: Counter,
    /// `game_sessions_ended_total{game_id,reason}`.
    pub(super) ended: [Counter; EndReason::COUNT],
    /// `game_session_crashes_total{game_id}`.
    pub(super) crashes: Counter,
    /// `game_instances_active{game_id}`.
    pub(super) active: Gauge,
    /// `game_process_spawns_total{game_id,status}`.
    pub(super) spawns: [Counter; Outcome::COUNT],
    /// `game_saves_total{game_id,operation,status}`.
    pub(super) saves: [[Counter; Outcome::COUNT]; SaveOp::COUNT],
}

impl GameMetrics {
    /// Whether any event was recorded here (the overflow slot is exported only then).
    pub(super) fn touched(&self) -> bool {
        self.spawns
            .iter()
            .chain(self.ended.iter())
            .chain(self.saves.iter().flatten())
            .any(|c| c.get() != 0)
    }
}

impl CoreMetrics {
    /// Cells for core `core` with `games` configured games (built by `Registry::new`).
    pub(super) fn new(core: usize, game_ids: Arc<[String]>, epoch: Instant) -> Self {
        let games = game_ids.len();
        CoreMetrics {
            core,
            epoch,
            game_ids,
            connections: Default::default(),
            rejected: Default::default(),
            connections_active: Gauge::new(),
            connection_duration: Histogram::new(&SESSION_BUCKETS),
            handshake_duration: Histogram::new(&HANDSHAKE_BUCKETS),
            auth_attempts: Default::default(),
            bytes: Default::default(),
            kex: Default::default(),
            terminal_sessions: Default::default(),
            terminal_active: Gauge::new(),
            terminal_duration: Histogram::new(&SESSION_BUCKETS),
            pty_ops: Default::default(),
            terminal_bytes: Default::default(),
            spectators: Counter::new(),
            spectators_active: Gauge::new(),
            spectated_active: Gauge::new(),
            detached_active: Gauge::new(),
            reattached: Counter::new(),
            recorded_bytes: Counter::new(),
            record_errors: Default::default(),
            busy_ratio: FloatGauge::new(),
            buffers_in_use: Gauge::new(),
            heartbeat_ms: AtomicU64::new(0),
            games: (0..=games).map(|_| GameMetrics::default()).collect(),
        }
    }

    /// This core's index.
    pub fn core(&self) -> usize {
        self.core
    }

    // --- SSH connections -------------------------------------------------------------

    /// A TCP connection was admitted: `ssh_connections_total{status="accepted"}`,
    /// `ssh_connections_active` +1.
    #[inline]
    pub fn conn_accepted(&self) {
        self.connections[ConnStatus::Accepted.index()].inc();
        self.connections_active.inc();
    }

    /// A connection was refused by policy (server full, limits, deny list) and never
    /// admitted: `ssh_connections_total{status="rejected"}`. Not followed by `conn_closed`.
    #[inline]
    pub fn conn_rejected(&self, why: RejectReason) {
        self.connections[ConnStatus::Rejected.index()].inc();
        self.rejected[why.index()].inc();
    }

    /// An admitted connection ended before its handshake completed:
    /// `ssh_connections_total{status="failed"}`. Still call `conn_closed` for it.
    #[inline]
    pub fn conn_failed(&self) {
        self.connections[ConnStatus::Failed.index()].inc();
    }

    /// An admitted connection ended after `lived`: `ssh_connections_active` −1,
    /// `ssh_connection_duration_seconds`.
    #[inline]
    pub fn conn_closed(&self, lived: Duration) {
        self.connections_active.dec();
        self.connection_duration.observe(lived);
    }

    /// The first key exchange of a connection finished (NEWKEYS both ways), `took` after
    /// accept: `ssh_handshake_duration_seconds` and `ssh_kex_total{algorithm}`.
    #[inline]
    pub fn handshake_done(&self, kex: KexAlg, took: Duration) {
        self.handshake_duration.observe(took);
        self.kex_done(kex);
    }

    /// A re-key finished: `ssh_kex_total{algorithm}` only.
    #[inline]
    pub fn kex_done(&self, kex: KexAlg) {
        if let Some(i) = KexAlg::ALL.iter().position(|k| *k == kex) {
            if let Some(c) = self.kex.get(i) {
                c.inc();
            }
        }
    }

    /// An SSH user-auth request was answered: `ssh_authentication_attempts_total`.
    /// Unsigned public-key queries ("may I use this key?") are not attempts; don't count them.
    #[inline]
    pub fn auth_attempt(&self, method: AuthMethod, success: bool) {
        self.auth_attempts[method.index()][Outcome::from_ok(success).index()].inc();
    }

    /// `n` bytes crossed the socket: `ssh_bytes_transferred_total{direction}`.
    #[inline]
    pub fn bytes(&self, direction: Direction, n: usize) {
        self.bytes[direction.index()].add(n as u64);
    }

    // --- terminals -------------------------------------------------------------------

    /// A PTY session began (PTY opened for a shell/exec channel): `terminal_sessions_active`.
    #[inline]
    pub fn terminal_session_started(&self) {
        self.terminal_active.inc();
    }

    /// A PTY session ended after `lived`; `ok` unless it ended on an error (PTY or I/O
    /// failure): `terminal_sessions_total{status}`, `terminal_sessions_active` −1,
    /// `terminal_session_duration_seconds`.
    #[inline]
    pub fn terminal_session_ended(&self, lived: Duration, ok: bool) {
        self.terminal_sessions[Outcome::from_ok(ok).index()].inc();
        self.terminal_active.dec();
        self.terminal_duration.observe(lived);
    }

    /// One PTY operation: `terminal_pty_operations_total{operation}`.
    #[inline]
    pub fn pty_op(&self, op: PtyOp) {
        self.pty_ops[op.index()].inc();
    }

    /// `n` bytes to (`In`) or from (`Out`) a PTY: `terminal_data_transferred_total`.
    #[inline]
    pub fn terminal_bytes(&self, direction: Direction, n: usize) {
        self.terminal_bytes[direction.index()].add(n as u64);
    }

    // --- spectating ------------------------------------------------------------------

    /// A connection (on this core) started watching a game: `spectator_connections_total`,
    /// `spectator_connections_active` +1.
    #[inline]
    pub fn spectator_joined(&self) {
        self.spectators.inc();
        self.spectators_active.inc();
    }

    /// Bytes of recordings written to disk by this core's writer.
    #[inline]
    pub fn recording_written(&self, bytes: usize) {
        self.recorded_bytes.add(bytes as u64);
    }

    /// A recording stopped on an error of `kind` (one of [`RECORD_ERROR_KINDS`]; anything
    /// else counts as `io`).
    pub fn recording_failed(&self, kind: &str) {
        let i = RECORD_ERROR_KINDS
            .iter()
            .position(|k| *k == kind)
            .unwrap_or(RECORD_ERROR_KINDS.len() - 1);
        if let Some(c) = self.record_errors.get(i) {
            c.inc();
        }
    }

    /// Connections on this core watching a game now.
    pub fn watchers_active(&self) -> u64 {
        u64::try_from(self.spectators_active.get()).unwrap_or(0)
    }

    /// A watcher (on this core) stopped watching: `spectator_connections_active` −1.
    #[inline]
    pub fn spectator_left(&self) {
        self.spectators_active.dec();
    }

    /// A game session on this core got its first watcher: `spectating_sessions_active` +1.
    #[inline]
    pub fn spectating_session_started(&self) {
        self.spectated_active.inc();
    }

    /// A game session on this core lost its last watcher (or ended while watched).
    #[inline]
    pub fn spectating_session_ended(&self) {
        self.spectated_active.dec();
    }

    // --- games -----------------------------------------------------------------------

    /// A game on this core lost its player and waits for them (`true`), or stopped waiting
    /// (re-attached, moved, or hung up): `game_sessions_detached` ±1.
    #[inline]
    pub fn game_detached(&self, detached: bool) {
        if detached {
            self.detached_active.inc();
        } else {
            self.detached_active.dec();
        }
    }

    /// A player got their running game back on a new connection.
    #[inline]
    pub fn game_reattached(&self) {
        self.reattached.inc();
    }

    /// The index of game `id` for the `game_*` methods (config order at start-up); a game
    /// unknown at start-up maps to the overflow slot (`game_id="_other"`).
    pub fn game_index(&self, id: &str) -> usize {
        self.game_ids
            .iter()
            .position(|g| g == id)
            .unwrap_or(self.games.len().saturating_sub(1))
    }

    /// A game process was spawned (`ok`) or could not be:
    /// `game_process_spawns_total{status}`; on success also `game_sessions_started_total`
    /// and `game_instances_active` +1.
    #[inline]
    pub fn game_spawned(&self, game: usize, ok: bool) {
        let g = self.game(game);
        g.spawns[Outcome::from_ok(ok).index()].inc();
        if ok {
            g.started.inc();
            g.active.inc();
        }
    }

    /// A spawned game ended: `game_sessions_ended_total{reason}`, `game_instances_active`
    /// −1, and for `Crashed` also `game_session_crashes_total`.
    #[inline]
    pub fn game_ended(&self, game: usize, reason: EndReason) {
        let g = self.game(game);
        g.ended[reason.index()].inc();
        g.active.dec();
        if reason == EndReason::Crashed {
            g.crashes.inc();
        }
    }

    /// A running game moved to another core (`arrived` false here, true there): its
    /// `game_instances_active` count moves with it, so each core counts what it runs.
    #[inline]
    pub fn game_moved(&self, game: usize, arrived: bool) {
        let g = self.game(game);
        if arrived {
            g.active.inc();
        } else {
            g.active.dec();
        }
    }

    /// Games running on this core now (every game, the overflow slot included).
    pub fn games_running(&self) -> u64 {
        let n: i64 = self.games.iter().map(|g| g.active.get()).sum();
        u64::try_from(n).unwrap_or(0)
    }

    /// A save was written or restored: `game_saves_total{operation,status}`.
    #[inline]
    pub fn game_save(&self, game: usize, op: SaveOp, ok: bool) {
        self.game(game).saves[op.index()][Outcome::from_ok(ok).index()].inc();
    }

    // --- the core itself -------------------------------------------------------------

    /// Buffers of the core's pool lent out now: `reactor_buffer_pool_in_use{core}`.
    #[inline]
    pub fn set_buffer_pool_in_use(&self, n: usize) {
        self.buffers_in_use
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Share of the last sampling period the executor spent running tasks and polling I/O
    /// (0..=1): `reactor_core_busy_ratio{core}`. Set by the core's `Sampler`.
    #[inline]
    pub fn set_busy_ratio(&self, ratio: f64) {
        let r = if ratio.is_finite() {
            ratio.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.busy_ratio.set(r);
    }

    /// The core is alive now (stamped about once a second by the core's `Sampler`).
    #[inline]
    pub fn heartbeat(&self) {
        self.heartbeat_at(self.epoch.elapsed());
    }

    /// The core was alive at `since_epoch` (for tests: a heartbeat in the past).
    pub fn heartbeat_at(&self, since_epoch: Duration) {
        let ms = u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX);
        self.heartbeat_ms.store(ms, Ordering::Relaxed);
    }

    /// Time since the last heartbeat (since the registry was built, if none yet).
    pub fn heartbeat_age(&self) -> Duration {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(now.saturating_sub(self.heartbeat_ms.load(Ordering::Relaxed)))
    }

    /// Game `i`'s cells, or the overflow slot for an index out of range.
    #[inline]
    fn game(&self, i: usize) -> &GameMetrics {
        match self.games.get(i) {
            Some(g) => g,
            None => self.overflow_game(),
        }
    }

    /// The slot for games unknown at start-up (always present: `games` has `n + 1` slots).
    fn overflow_game(&self) -> &GameMetrics {
        static EMPTY: GameMetrics = GameMetrics {
            started: Counter::new(),
            ended: [const { Counter::new() }; EndReason::COUNT],
            crashes: Counter::new(),
            active: Gauge::new(),
            spawns: [const { Counter::new() }; Outcome::COUNT],
            saves: [const { [const { Counter::new() }; Outcome::COUNT] }; SaveOp::COUNT],
        };
        self.games.last().unwrap_or(&EMPTY)
    }
}

/// What the control core records (account decisions, LMDB, argon2). Written only by the
/// control core's thread: a pool job times itself and the control core records the figure
/// when the job's result comes back.
#[derive(Debug)]
#[repr(align(64))]
pub struct ControlMetrics {
    /// `auth_login_attempts_total{status}`: account-store login decisions (SSH password or
    /// key for a registered name, lobby login); guests logging in with `none` are not here.
    pub(super) logins: [Counter; Outcome::COUNT],
    /// `auth_failed_logins_total{reason}`.
    pub(super) failed_logins: [Counter; FailReason::COUNT],
    /// `auth_lockouts_total`: an account or a source was locked out (penalty triggered).
    pub(super) lockouts: Counter,
    /// `auth_users_registered_total`: accounts created through the server since it started
    /// (a counter, so `rate()` shows sign-ups; the CLI's `user add` is another process).
    pub(super) registered: Counter,
    /// `auth_database_operations_total{operation,status}`.
    pub(super) db_ops: [[Counter; Outcome::COUNT]; DbOp::COUNT],
    /// `auth_database_operation_duration_seconds{operation}`.
    pub(super) db_duration: [DbHistogram; DbOp::COUNT],
    /// `auth_password_hash_duration_seconds` (hash and verify alike).
    pub(super) hash_duration: HashHistogram,
}

impl Default for ControlMetrics {
    fn default() -> Self {
        ControlMetrics {
            logins: Default::default(),
            failed_logins: Default::default(),
            lockouts: Counter::new(),
            registered: Counter::new(),
            db_ops: Default::default(),
            db_duration: [const { Histogram::new(&DB_BUCKETS) }; DbOp::COUNT],
            hash_duration: Histogram::new(&HASH_BUCKETS),
        }
    }
}

impl ControlMetrics {
    /// A login decision granted access: `auth_login_attempts_total{status="success"}`.
    #[inline]
    pub fn login_succeeded(&self) {
        self.logins[Outcome::Success.index()].inc();
    }

    /// A login decision refused access: `auth_login_attempts_total{status="failure"}` and
    /// `auth_failed_logins_total{reason}`.
    #[inline]
    pub fn login_failed(&self, reason: FailReason) {
        self.logins[Outcome::Failure.index()].inc();
        self.failed_logins[reason.index()].inc();
    }

    /// An account or source was locked out: `auth_lockouts_total`.
    #[inline]
    pub fn lockout(&self) {
        self.lockouts.inc();
    }

    /// An account was created: `auth_users_registered_total`.
    #[inline]
    pub fn user_registered(&self) {
        self.registered.inc();
    }

    /// One account-store operation: `auth_database_operations_total{operation,status}` and
    /// `auth_database_operation_duration_seconds{operation}`.
    #[inline]
    pub fn db_op(&self, op: DbOp, ok: bool, took: Duration) {
        self.db_ops[op.index()][Outcome::from_ok(ok).index()].inc();
        self.db_duration[op.index()].observe(took);
    }

    /// One argon2 hash or verify took `took`: `auth_password_hash_duration_seconds`.
    #[inline]
    pub fn password_hash(&self, took: Duration) {
        self.hash_duration.observe(took);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn core() -> CoreMetrics {
        CoreMetrics::new(0, ids(), Instant::now())
    }

    fn ids() -> Arc<[String]> {
        vec!["nethack".to_string(), "cat".to_string()].into()
    }

    #[test]
    fn an_accepted_connection_is_active_until_closed() {
        let m = core();
        m.conn_accepted();
        assert_eq!(m.connections_active.get(), 1);
        m.conn_failed();
        m.conn_closed(Duration::from_secs(2));
        assert_eq!(m.connections_active.get(), 0);
        assert_eq!(m.connections[ConnStatus::Accepted.index()].get(), 1);
        assert_eq!(m.connections[ConnStatus::Failed.index()].get(), 1);
        assert_eq!(m.connection_duration.snapshot().count(), 1);
    }

    #[test]
    fn a_rejected_connection_is_never_active() {
        let m = core();
        m.conn_rejected(RejectReason::Full);
        assert_eq!(m.connections_active.get(), 0);
        assert_eq!(m.connections[ConnStatus::Rejected.index()].get(), 1);
    }

    #[test]
    fn a_handshake_counts_its_kex_algorithm_and_a_rekey_counts_again() {
        let m = core();
        m.handshake_done(KexAlg::Curve25519Sha256, Duration::from_millis(3));
        m.kex_done(KexAlg::Curve25519Sha256);
        let i = KexAlg::ALL
            .iter()
            .position(|k| *k == KexAlg::Curve25519Sha256)
            .unwrap_or(usize::MAX);
        assert_eq!(m.kex.get(i).map(Counter::get), Some(2));
        assert_eq!(m.handshake_duration.snapshot().count(), 1);
    }

    #[test]
    fn a_crash_ends_the_instance_and_counts_as_a_crash() {
        let m = core();
        m.game_spawned(1, true);
        m.game_spawned(1, false);
        assert_eq!(m.games[1].active.get(), 1);
        m.game_ended(1, EndReason::Crashed);
        assert_eq!(m.games[1].active.get(), 0);
        assert_eq!(m.games[1].crashes.get(), 1);
        assert_eq!(m.games[1].started.get(), 1);
        assert_eq!(m.games[1].spawns[Outcome::Failure.index()].get(), 1);
        m.game_ended(1, EndReason::Normal);
        assert_eq!(m.games[1].crashes.get(), 1);
    }

    #[test]
    fn an_unknown_game_goes_to_the_overflow_slot() {
        let m = core();
        assert_eq!(m.game_index("cat"), 1);
        let other = m.game_index("added-by-reload");
        assert_eq!(other, 2);
        m.game_spawned(other, true);
        m.game_spawned(99, true);
        assert_eq!(m.games[2].started.get(), 2);
    }

    #[test]
    fn a_stale_heartbeat_shows_its_age() {
        let m = CoreMetrics::new(0, ids(), Instant::now() - Duration::from_secs(60));
        m.heartbeat_at(Duration::from_secs(50));
        let age = m.heartbeat_age();
        assert!(age >= Duration::from_secs(10) && age < Duration::from_secs(20));
        m.heartbeat();
        assert!(m.heartbeat_age() < Duration::from_secs(10));
    }

    #[test]
    fn busy_ratio_is_clamped_to_a_fraction() {
        let m = core();
        m.set_busy_ratio(1.7);
        assert_eq!(m.busy_ratio.get(), 1.0);
        m.set_busy_ratio(f64::NAN);
        assert_eq!(m.busy_ratio.get(), 0.0);
    }

    #[test]
    fn a_failed_login_counts_the_attempt_and_its_reason() {
        let c = ControlMetrics::default();
        c.login_failed(FailReason::WrongPassword);
        c.login_succeeded();
        assert_eq!(c.logins[Outcome::Failure.index()].get(), 1);
        assert_eq!(c.logins[Outcome::Success.index()].get(), 1);
        assert_eq!(c.failed_logins[FailReason::WrongPassword.index()].get(), 1);
        c.db_op(DbOp::Get, true, Duration::from_micros(30));
        assert_eq!(c.db_duration[DbOp::Get.index()].snapshot().count(), 1);
    }
}
