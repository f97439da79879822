//! Scrape-time aggregation: [`Registry`] owns every core's [`CoreMetrics`] and the
//! [`ControlMetrics`], and implements `prometheus::core::Collector` by reading them all and
//! summing the per-core values into one series per label set (except `reactor_core_*{core}`,
//! kept per core to show imbalance). [`Registry::render`] encodes that with the `prometheus`
//! crate's text encoder (exposition format 0.0.4).
//!
//! Nothing here runs on an event: the cores only store into their own cells, and the cost
//! of aggregation is paid once per scrape, on the control core.

use super::catalogue::{ControlMetrics, CoreMetrics, GameMetrics};
use super::counters::HistogramSnapshot;
use super::labels::{
    AuthMethod, ConnStatus, DbOp, Direction, EndReason, FailReason, Outcome, PtyOp, RejectReason,
    SaveOp,
};
use crate::ssh::kex::KexAlg;
use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, MetricFamily, MetricType};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The `commit` label of `service_build_info`: set by `build.rs` from `git rev-parse`,
/// "unknown" when built outside a git checkout.
pub const BUILD_COMMIT: &str = match option_env!("BUILD_GIT_COMMIT") {
    Some(c) => c,
    None => "unknown",
};

/// Label value of the game slot collecting games unknown at start-up.
pub const OTHER_GAME_ID: &str = "_other";

/// What a registry is built from (all known at start-up).
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Number of data cores (one [`CoreMetrics`] each).
    pub cores: usize,
    /// Configured game ids in config order: the `game_id` label values.
    pub game_ids: Vec<String>,
    /// `limits.max_connections`, exported as `ssh_connections_limit`.
    pub connections_limit: usize,
    /// `service_up{version}` / `service_build_info{version}` (use `CARGO_PKG_VERSION`).
    pub version: String,
    /// `service_build_info{commit}` (use [`BUILD_COMMIT`]).
    pub commit: String,
}

/// All metric cells of the process and the means to export them.
pub struct Registry {
    /// Per data core, indexed by core id.
    cores: Vec<Arc<CoreMetrics>>,
    /// The control core's cells.
    control: Arc<ControlMetrics>,
    /// `game_id` label values, config order (same slice every core holds).
    game_ids: Arc<[String]>,
    /// Constant `ssh_connections_limit`.
    connections_limit: f64,
    /// `version` label value.
    version: String,
    /// `commit` label value.
    commit: String,
    /// `service_start_time_seconds` (Unix time).
    start_time: f64,
    /// Heartbeat clock base shared with the cores.
    epoch: Instant,
    /// One descriptor per family, for `Collector::desc` (registration in a
    /// `prometheus::Registry`).
    descs: Vec<Desc>,
}

impl Registry {
    /// Cells for `opts.cores` data cores and the control core, all zero.
    pub fn new(opts: RegistryOptions) -> Registry {
        Registry::with_epoch(opts, Instant::now())
    }

    /// As `new`, with the heartbeat clock starting at `epoch` (tests: a core that never beat
    /// since an epoch long ago is stale).
    pub(crate) fn with_epoch(opts: RegistryOptions, epoch: Instant) -> Registry {
        let game_ids: Arc<[String]> = opts.game_ids.into();
        let cores = (0..opts.cores)
            .map(|i| Arc::new(CoreMetrics::new(i, game_ids.clone(), epoch)))
            .collect();
        let start_time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let descs = FAMILIES
            .iter()
            .filter_map(|f| {
                Desc::new(
                    f.name.to_string(),
                    f.help.to_string(),
                    f.labels.iter().map(|l| l.to_string()).collect(),
                    HashMap::new(),
                )
                .ok()
            })
            .collect();
        Registry {
            cores,
            control: Arc::new(ControlMetrics::default()),
            game_ids,
            connections_limit: opts.connections_limit as f64,
            version: opts.version,
            commit: opts.commit,
            start_time,
            epoch,
            descs,
        }
    }

    /// Core `i`'s cells, to hand to that core at start-up.
    pub fn core(&self, i: usize) -> Option<Arc<CoreMetrics>> {
        self.cores.get(i).cloned()
    }

    /// Every core's cells, by core id.
    pub fn cores(&self) -> &[Arc<CoreMetrics>] {
        &self.cores
    }

    /// Games running on all cores now, read from each core's own gauges (lock-free: each is
    /// written by its core alone), for the banner's player count.
    pub fn games_running(&self) -> u64 {
        self.cores.iter().map(|c| c.games_running()).sum()
    }

    /// Connections watching a game on all cores now (the banner's `$WATCHERS`).
    pub fn watchers_active(&self) -> u64 {
        self.cores.iter().map(|c| c.watchers_active()).sum()
    }

    /// The control core's cells.
    pub fn control(&self) -> Arc<ControlMetrics> {
        self.control.clone()
    }

    /// Configured game ids (the index a `game_*` method takes is a position here).
    pub fn game_ids(&self) -> &[String] {
        &self.game_ids
    }

    /// When the registry was built (the heartbeat clock base).
    pub fn epoch(&self) -> Instant {
        self.epoch
    }

    /// A scrape in Prometheus text format 0.0.4.
    pub fn render(&self) -> String {
        let mut s = String::with_capacity(32 * 1024);
        self.render_into(&mut s);
        s
    }

    /// A scrape appended to `buf` (reuse the buffer across scrapes).
    pub fn render_into(&self, buf: &mut String) {
        let families = self.collect();
        if let Err(e) = prometheus::TextEncoder::new().encode_utf8(&families, buf) {
            tracing::warn!(error = %e, "metrics encoding failed");
        }
    }
}

impl Collector for Registry {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let mut out = Vec::with_capacity(FAMILIES.len());
        self.collect_process(&mut out);
        self.collect_ssh(&mut out);
        self.collect_auth(&mut out);
        self.collect_terminal(&mut out);
        self.collect_games(&mut out);
        self.collect_cores(&mut out);
        out.retain(|f| !f.get_metric().is_empty());
        out
    }
}

// ------------------------------------------------------------------------------------------
// The families: name, help, type and label names, in export order.

/// One metric family of the catalogue.
#[derive(Debug)]
pub struct FamilySpec {
    /// Full metric name (counters end in `_total`, durations in `_seconds`).
    pub name: &'static str,
    /// `# HELP` text.
    pub help: &'static str,
    /// Counter, gauge or histogram.
    pub kind: Kind,
    /// Label names, in the order samples carry them.
    pub labels: &'static [&'static str],
}

/// Metric type of a family (mirrors the exposition format's types we use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

macro_rules! families {
    ($($id:ident = $name:literal, $kind:ident, [$($l:literal),*], $help:literal;)+) => {
        $(const $id: FamilySpec = FamilySpec {
            name: $name,
            help: $help,
            kind: Kind::$kind,
            labels: &[$($l),*],
        };)+
        /// Every family the registry exports (games and cores families appear only when
        /// there is at least one game / core).
        pub const FAMILIES: &[FamilySpec] = &[$($id),+];
    };
}

families! {
    SERVICE_UP = "service_up", Gauge, ["version"], "1 while the server process runs.";
    SERVICE_START = "service_start_time_seconds", Gauge, [],
        "Unix time at which the server started.";
    SERVICE_BUILD = "service_build_info", Gauge, ["version", "commit"],
        "Build of the running server (value is always 1).";
    SSH_CONNS = "ssh_connections_total", Counter, ["status"],
        "SSH connections by outcome: accepted (admitted), rejected (refused by limits), failed (admitted, handshake never completed).";
    SSH_ACTIVE = "ssh_connections_active", Gauge, [], "SSH connections open now.";
    CONNS_REJECTED = "connections_rejected_total", Counter, ["reason"],
        "Connections refused before they were admitted, by the limit that refused them.";
    SSH_LIMIT = "ssh_connections_limit", Gauge, [],
        "Configured maximum of simultaneous connections (limits.max_connections).";
    SSH_DURATION = "ssh_connection_duration_seconds", Histogram, [],
        "Lifetime of closed SSH connections.";
    SSH_HANDSHAKE = "ssh_handshake_duration_seconds", Histogram, [],
        "Time from accept to the end of the first key exchange.";
    SSH_AUTH = "ssh_authentication_attempts_total", Counter, ["method", "status"],
        "SSH user-auth attempts by method and outcome.";
    SSH_BYTES = "ssh_bytes_transferred_total", Counter, ["direction"],
        "Bytes received (in) and sent (out) on SSH sockets.";
    SSH_KEX = "ssh_kex_total", Counter, ["algorithm"],
        "Completed key exchanges (handshakes and re-keys) by algorithm.";
    AUTH_LOGINS = "auth_login_attempts_total", Counter, ["status"],
        "Login decisions against the account store by outcome.";
    AUTH_FAILED = "auth_failed_logins_total", Counter, ["reason"],
        "Refused logins by reason.";
    AUTH_LOCKOUTS = "auth_lockouts_total", Counter, [],
        "Accounts or sources locked out after failed logins.";
    AUTH_REGISTERED = "auth_users_registered_total", Counter, [],
        "Accounts created through the server since it started.";
    AUTH_DB_OPS = "auth_database_operations_total", Counter, ["operation", "status"],
        "Account store (LMDB) operations by kind and outcome.";
    AUTH_DB_DURATION = "auth_database_operation_duration_seconds", Histogram, ["operation"],
        "Duration of account store operations.";
    AUTH_HASH = "auth_password_hash_duration_seconds", Histogram, [],
        "Duration of argon2 password hashes and verifications.";
    TERM_SESSIONS = "terminal_sessions_total", Counter, ["status"],
        "Ended PTY sessions by outcome (failure: ended on a PTY or I/O error).";
    TERM_ACTIVE = "terminal_sessions_active", Gauge, [], "PTY sessions open now.";
    TERM_DURATION = "terminal_session_duration_seconds", Histogram, [],
        "Lifetime of ended PTY sessions.";
    TERM_PTY_OPS = "terminal_pty_operations_total", Counter, ["operation"],
        "PTY operations by kind.";
    TERM_BYTES = "terminal_data_transferred_total", Counter, ["direction"],
        "Bytes written to (in) and read from (out) PTYs.";
    SPECTATORS = "spectator_connections_total", Counter, [],
        "Connections that started watching a game.";
    SPECTATORS_ACTIVE = "spectator_connections_active", Gauge, [],
        "Connections watching a game now.";
    SPECTATED_ACTIVE = "spectating_sessions_active", Gauge, [],
        "Game sessions with at least one watcher now.";
    DETACHED_ACTIVE = "game_sessions_detached", Gauge, [],
        "Games running without their player, waiting for them to log in again.";
    REATTACHED = "game_sessions_reattached_total", Counter, [],
        "Games a player got back on a new connection.";
    RECORD_BYTES = "ttyrec_bytes_written_total", Counter, [],
        "Bytes of game recordings (ttyrec) written to disk.";
    RECORD_ERRORS = "ttyrec_errors_total", Counter, ["kind"],
        "Recordings stopped by an error, by kind (the game goes on unrecorded).";
    GAME_STARTED = "game_sessions_started_total", Counter, ["game_id"],
        "Game sessions started.";
    GAME_ENDED = "game_sessions_ended_total", Counter, ["game_id", "reason"],
        "Game sessions ended by reason (normal, hangup, killed, crashed).";
    GAME_CRASHES = "game_session_crashes_total", Counter, ["game_id"],
        "Game sessions that ended in a crash.";
    GAME_ACTIVE = "game_instances_active", Gauge, ["game_id"], "Game processes running now.";
    GAME_SPAWNS = "game_process_spawns_total", Counter, ["game_id", "status"],
        "Game process spawns by outcome.";
    GAME_SAVES = "game_saves_total", Counter, ["game_id", "operation", "status"],
        "Game saves written and restored, by outcome.";
    CORE_CONNS = "reactor_core_connections", Gauge, ["core"],
        "Connections owned by each data core.";
    CORE_BUSY = "reactor_core_busy_ratio", Gauge, ["core"],
        "Share of the last second each data core spent running tasks and polling I/O.";
    CORE_BUFFERS = "reactor_buffer_pool_in_use", Gauge, ["core"],
        "Buffers of each data core's pool lent out now.";
    CORE_HEARTBEAT = "reactor_core_heartbeat_age_seconds", Gauge, ["core"],
        "Seconds since each data core last reported alive (about 1 s when healthy).";
}

// ------------------------------------------------------------------------------------------
// Reading the cells.

impl Registry {
    fn collect_process(&self, out: &mut Vec<MetricFamily>) {
        let v = self.version.as_str();
        out.push(Fam::new(&SERVICE_UP).gauge(&[v], 1.0).done());
        out.push(Fam::new(&SERVICE_START).gauge(&[], self.start_time).done());
        out.push(
            Fam::new(&SERVICE_BUILD)
                .gauge(&[v, self.commit.as_str()], 1.0)
                .done(),
        );
    }

    fn collect_ssh(&self, out: &mut Vec<MetricFamily>) {
        let mut f = Fam::new(&SSH_CONNS);
        for s in ConnStatus::ALL {
            f = f.counter(&[s.as_str()], self.sum(|c| c.connections[s.index()].get()));
        }
        out.push(f.done());
        let mut f = Fam::new(&CONNS_REJECTED);
        for r in RejectReason::ALL {
            f = f.counter(&[r.as_str()], self.sum(|c| c.rejected[r.index()].get()));
        }
        out.push(f.done());
        out.push(
            Fam::new(&SSH_ACTIVE)
                .gauge(&[], self.sum_i(|c| c.connections_active.get()))
                .done(),
        );
        out.push(
            Fam::new(&SSH_LIMIT)
                .gauge(&[], self.connections_limit)
                .done(),
        );
        let mut h = HistogramSnapshot::default();
        self.cores
            .iter()
            .for_each(|c| c.connection_duration.accumulate(&mut h));
        out.push(Fam::new(&SSH_DURATION).histogram(&[], &h, &SESSION).done());
        let mut h = HistogramSnapshot::default();
        self.cores
            .iter()
            .for_each(|c| c.handshake_duration.accumulate(&mut h));
        out.push(
            Fam::new(&SSH_HANDSHAKE)
                .histogram(&[], &h, &HANDSHAKE)
                .done(),
        );
        let mut f = Fam::new(&SSH_AUTH);
        for m in AuthMethod::ALL {
            for s in Outcome::ALL {
                let v = self.sum(|c| c.auth_attempts[m.index()][s.index()].get());
                f = f.counter(&[m.as_str(), s.as_str()], v);
            }
        }
        out.push(f.done());
        let mut f = Fam::new(&SSH_BYTES);
        for d in Direction::ALL {
            f = f.counter(&[d.as_str()], self.sum(|c| c.bytes[d.index()].get()));
        }
        out.push(f.done());
        let mut f = Fam::new(&SSH_KEX);
        for (i, k) in KexAlg::ALL.iter().enumerate() {
            let v = self.sum(|c| c.kex.get(i).map_or(0, |x| x.get()));
            f = f.counter(&[k.name()], v);
        }
        out.push(f.done());
    }

    fn collect_auth(&self, out: &mut Vec<MetricFamily>) {
        let c = &self.control;
        let mut f = Fam::new(&AUTH_LOGINS);
        for s in Outcome::ALL {
            f = f.counter(&[s.as_str()], c.logins[s.index()].get() as f64);
        }
        out.push(f.done());
        let mut f = Fam::new(&AUTH_FAILED);
        for r in FailReason::ALL {
            f = f.counter(&[r.as_str()], c.failed_logins[r.index()].get() as f64);
        }
        out.push(f.done());
        out.push(
            Fam::new(&AUTH_LOCKOUTS)
                .counter(&[], c.lockouts.get() as f64)
                .done(),
        );
        out.push(
            Fam::new(&AUTH_REGISTERED)
                .counter(&[], c.registered.get() as f64)
                .done(),
        );
        let mut f = Fam::new(&AUTH_DB_OPS);
        for op in DbOp::ALL {
            for s in Outcome::ALL {
                let v = c.db_ops[op.index()][s.index()].get() as f64;
                f = f.counter(&[op.as_str(), s.as_str()], v);
            }
        }
        out.push(f.done());
        let mut f = Fam::new(&AUTH_DB_DURATION);
        for op in DbOp::ALL {
            f = f.histogram(&[op.as_str()], &c.db_duration[op.index()].snapshot(), &DB);
        }
        out.push(f.done());
        out.push(
            Fam::new(&AUTH_HASH)
                .histogram(&[], &c.hash_duration.snapshot(), &HASH)
                .done(),
        );
    }

    fn collect_terminal(&self, out: &mut Vec<MetricFamily>) {
        let mut f = Fam::new(&TERM_SESSIONS);
        for s in Outcome::ALL {
            f = f.counter(
                &[s.as_str()],
                self.sum(|c| c.terminal_sessions[s.index()].get()),
            );
        }
        out.push(f.done());
        out.push(
            Fam::new(&TERM_ACTIVE)
                .gauge(&[], self.sum_i(|c| c.terminal_active.get()))
                .done(),
        );
        let mut h = HistogramSnapshot::default();
        self.cores
            .iter()
            .for_each(|c| c.terminal_duration.accumulate(&mut h));
        out.push(Fam::new(&TERM_DURATION).histogram(&[], &h, &SESSION).done());
        let mut f = Fam::new(&TERM_PTY_OPS);
        for op in PtyOp::ALL {
            f = f.counter(&[op.as_str()], self.sum(|c| c.pty_ops[op.index()].get()));
        }
        out.push(f.done());
        let mut f = Fam::new(&TERM_BYTES);
        for d in Direction::ALL {
            f = f.counter(
                &[d.as_str()],
                self.sum(|c| c.terminal_bytes[d.index()].get()),
            );
        }
        out.push(f.done());
        out.push(
            Fam::new(&SPECTATORS)
                .counter(&[], self.sum(|c| c.spectators.get()))
                .done(),
        );
        out.push(
            Fam::new(&SPECTATORS_ACTIVE)
                .gauge(&[], self.sum_i(|c| c.spectators_active.get()))
                .done(),
        );
        out.push(
            Fam::new(&SPECTATED_ACTIVE)
                .gauge(&[], self.sum_i(|c| c.spectated_active.get()))
                .done(),
        );
        out.push(
            Fam::new(&DETACHED_ACTIVE)
                .gauge(&[], self.sum_i(|c| c.detached_active.get()))
                .done(),
        );
        out.push(
            Fam::new(&REATTACHED)
                .counter(&[], self.sum(|c| c.reattached.get()))
                .done(),
        );
        out.push(
            Fam::new(&RECORD_BYTES)
                .counter(&[], self.sum(|c| c.recorded_bytes.get()))
                .done(),
        );
        let mut f = Fam::new(&RECORD_ERRORS);
        for (i, kind) in super::catalogue::RECORD_ERROR_KINDS.iter().enumerate() {
            f = f.counter(
                &[kind],
                self.sum(|c| c.record_errors.get(i).map_or(0, |x| x.get())),
            );
        }
        out.push(f.done());
    }

    fn collect_games(&self, out: &mut Vec<MetricFamily>) {
        // Slots to export: every configured game, and the overflow slot if it saw anything.
        let configured = self.game_ids.len();
        let other_used = self
            .cores
            .iter()
            .any(|c| c.games.get(configured).is_some_and(GameMetrics::touched));
        let slots: Vec<(usize, &str)> = self
            .game_ids
            .iter()
            .map(String::as_str)
            .enumerate()
            .chain(other_used.then_some((configured, OTHER_GAME_ID)))
            .collect();
        let game_sum = |i: usize, read: &dyn Fn(&GameMetrics) -> u64| -> f64 {
            self.cores
                .iter()
                .filter_map(|c| c.games.get(i))
                .map(read)
                .fold(0u64, u64::wrapping_add) as f64
        };

        let (mut started, mut ended, mut crashes) = (
            Fam::new(&GAME_STARTED),
            Fam::new(&GAME_ENDED),
            Fam::new(&GAME_CRASHES),
        );
        let (mut active, mut spawns, mut saves) = (
            Fam::new(&GAME_ACTIVE),
            Fam::new(&GAME_SPAWNS),
            Fam::new(&GAME_SAVES),
        );
        for &(i, id) in &slots {
            started = started.counter(&[id], game_sum(i, &|g| g.started.get()));
            for r in EndReason::ALL {
                ended = ended.counter(
                    &[id, r.as_str()],
                    game_sum(i, &|g| g.ended[r.index()].get()),
                );
            }
            crashes = crashes.counter(&[id], game_sum(i, &|g| g.crashes.get()));
            let a: i64 = self
                .cores
                .iter()
                .filter_map(|c| c.games.get(i))
                .map(|g| g.active.get())
                .fold(0, i64::wrapping_add);
            active = active.gauge(&[id], a as f64);
            for s in Outcome::ALL {
                spawns = spawns.counter(
                    &[id, s.as_str()],
                    game_sum(i, &|g| g.spawns[s.index()].get()),
                );
            }
            for op in SaveOp::ALL {
                for s in Outcome::ALL {
                    let v = game_sum(i, &|g| g.saves[op.index()][s.index()].get());
                    saves = saves.counter(&[id, op.as_str(), s.as_str()], v);
                }
            }
        }
        out.extend([started, ended, crashes, active, spawns, saves].map(Fam::done));
    }

    fn collect_cores(&self, out: &mut Vec<MetricFamily>) {
        let (mut conns, mut busy, mut buffers, mut beat) = (
            Fam::new(&CORE_CONNS),
            Fam::new(&CORE_BUSY),
            Fam::new(&CORE_BUFFERS),
            Fam::new(&CORE_HEARTBEAT),
        );
        for c in &self.cores {
            let id = c.core.to_string();
            let l = [id.as_str()];
            conns = conns.gauge(&l, c.connections_active.get() as f64);
            busy = busy.gauge(&l, c.busy_ratio.get());
            buffers = buffers.gauge(&l, c.buffers_in_use.get() as f64);
            beat = beat.gauge(&l, c.heartbeat_age().as_secs_f64());
        }
        out.extend([conns, busy, buffers, beat].map(Fam::done));
    }

    /// A counter summed over cores.
    fn sum(&self, read: impl Fn(&CoreMetrics) -> u64) -> f64 {
        self.cores
            .iter()
            .map(|c| read(c))
            .fold(0u64, u64::wrapping_add) as f64
    }

    /// A gauge summed over cores.
    fn sum_i(&self, read: impl Fn(&CoreMetrics) -> i64) -> f64 {
        self.cores
            .iter()
            .map(|c| read(c))
            .fold(0i64, i64::wrapping_add) as f64
    }
}

use super::catalogue::{
    DB_BUCKETS as DB, HANDSHAKE_BUCKETS as HANDSHAKE, HASH_BUCKETS as HASH,
    SESSION_BUCKETS as SESSION,
};

/// Builds one `MetricFamily` sample by sample.
struct Fam {
    /// The spec (label names) the samples follow.
    spec: &'static FamilySpec,
    /// The family being built.
    mf: MetricFamily,
}

impl Fam {
    fn new(spec: &'static FamilySpec) -> Fam {
        let mut mf = MetricFamily::default();
        mf.set_name(spec.name.to_string());
        mf.set_help(spec.help.to_string());
        mf.set_field_type(match spec.kind {
            Kind::Counter => MetricType::COUNTER,
            Kind::Gauge => MetricType::GAUGE,
            Kind::Histogram => MetricType::HISTOGRAM,
        });
        Fam { spec, mf }
    }

    /// A metric carrying `values` for the spec's label names.
    fn metric(&self, values: &[&str]) -> proto::Metric {
        let labels = self
            .spec
            .labels
            .iter()
            .zip(values)
            .map(|(name, value)| {
                let mut p = proto::LabelPair::default();
                p.set_name((*name).to_string());
                p.set_value((*value).to_string());
                p
            })
            .collect();
        let mut m = proto::Metric::default();
        m.set_label(labels);
        m
    }

    fn counter(mut self, labels: &[&str], v: f64) -> Fam {
        let mut m = self.metric(labels);
        let mut c = proto::Counter::default();
        c.set_value(v);
        m.set_counter(c);
        self.mf.mut_metric().push(m);
        self
    }

    fn gauge(mut self, labels: &[&str], v: f64) -> Fam {
        let mut m = self.metric(labels);
        let mut g = proto::Gauge::default();
        g.set_value(v);
        m.set_gauge(g);
        self.mf.mut_metric().push(m);
        self
    }

    fn histogram<const N: usize>(
        mut self,
        labels: &[&str],
        snap: &HistogramSnapshot<N>,
        bounds: &[f64; N],
    ) -> Fam {
        let mut m = self.metric(labels);
        let mut h = proto::Histogram::default();
        h.set_sample_count(snap.count());
        h.set_sample_sum(snap.sum_secs());
        let buckets = bounds
            .iter()
            .zip(snap.cumulative())
            .map(|(le, n)| {
                let mut b = proto::Bucket::default();
                b.set_upper_bound(*le);
                b.set_cumulative_count(n);
                b
            })
            .collect();
        h.set_bucket(buckets);
        m.set_histogram(h);
        self.mf.mut_metric().push(m);
        self
    }

    fn done(self) -> MetricFamily {
        self.mf
    }
}

#[cfg(test)]
#[path = "collector_tests.rs"]
mod tests;
