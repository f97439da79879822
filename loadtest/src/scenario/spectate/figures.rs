//! What a spectate run measured, turned into the outcome's figures.

use super::super::echo::Typed;
use super::super::Usage;
use super::follow::Tally;
use crate::proc::TreeSample;
use crate::report::{Better, Outcome};
use crate::stats::{Errors, Latencies, Summary};

/// What every watcher read, added up.
#[derive(Default)]
pub struct Seen {
    /// Lag of the frames the measuring watchers received.
    lags: Latencies,
    /// Frames (sent in the window) they received.
    markers: u64,
    /// Payload bytes they received in the window.
    bytes: u64,
    /// Re-syncs they saw, and how many of them saw any.
    resyncs: u64,
    resynced: u64,
    /// Bytes (SSH packets) the drain-only watchers received in the window.
    sink_bytes: u64,
    /// Connections that ended early.
    pub errors: Errors,
}

impl Seen {
    /// Adds what one watcher read (`measured`: a full client; else drain-only).
    pub fn add(&mut self, measured: bool, t: Tally) {
        self.errors.merge(t.errors);
        if !measured {
            self.sink_bytes += t.bytes;
            return;
        }
        self.lags.merge(t.lags);
        self.markers += t.markers;
        self.bytes += t.bytes;
        self.resyncs += t.resyncs;
        self.resynced += u64::from(t.resyncs > 0);
    }
}

/// Everything a run produced.
pub struct Results {
    /// Games watched (the probe player's included).
    pub games: usize,
    /// Watchers attached, and of them those that measured.
    pub held: u64,
    pub measured: u64,
    /// Attach phase: wall time and login → screen per watcher.
    pub attach_s: f64,
    pub setup: Latencies,
    /// What the watchers read.
    pub seen: Seen,
    /// What the players read of their own games.
    pub player_lags: Latencies,
    /// Frames the measuring watchers should have received.
    pub expected: u64,
    /// CPU over the window, and the machine's busy CPU seconds (all processes).
    pub usage: Usage,
    pub busy_s: Option<f64>,
    /// The server's tree before the watchers attached and after.
    pub before: Option<TreeSample>,
    pub during: Option<TreeSample>,
    /// The probe player's typing, alone and watched.
    pub probe: Option<(Typed, Typed)>,
}

/// Pushes the figures into `out` (with the errors of the probe player into `errors`).
/// Returns the watchers' lag samples, sorted, for the chart.
pub fn push(out: &mut Outcome, r: Results, errors: &mut Errors) -> Vec<u32> {
    out.push("games", r.games as f64, "", Better::Info);
    out.push("watchers", r.held as f64, "", Better::Higher);
    out.push(
        "attach_per_s",
        r.held as f64 / r.attach_s.max(1e-9),
        "watchers/s",
        Better::Higher,
    );
    let (setup, _) = r.setup.finish();
    out.push_p50_p99_ms(["attach_p50_ms", "attach_p99_ms"], &setup);
    let seen = r.seen;
    let (lag, sorted) = seen.lags.finish();
    if lag.count > 0 {
        out.push_p50_p99_ms(["lag_p50_ms", "lag_p99_ms"], &lag);
        out.push("lag_max_ms", ms(lag.max), "ms", Better::Lower);
    }
    let (plag, _) = r.player_lags.finish();
    if plag.count > 0 {
        out.push("player_lag_p99_ms", ms(plag.p99), "ms", Better::Lower);
    }
    if r.expected > 0 {
        let missed = r.expected.saturating_sub(seen.markers) as f64;
        out.push("frames_expected", r.expected as f64, "", Better::Info);
        out.push("frames_received", seen.markers as f64, "", Better::Info);
        out.push(
            "frames_missed_pct",
            missed * 100.0 / r.expected as f64,
            "%",
            Better::Lower,
        );
    }
    out.push("resyncs", seen.resyncs as f64, "", Better::Lower);
    out.push("watchers_resynced", seen.resynced as f64, "", Better::Lower);
    let wall = r.usage.wall_s.max(1e-9);
    if r.measured < r.held {
        out.push("measuring_watchers", r.measured as f64, "", Better::Info);
        out.push(
            "sink_wire_mb_per_s",
            seen.sink_bytes as f64 / 1e6 / wall,
            "MB/s",
            Better::Info,
        );
    }
    // Every watcher of a game is sent the same stream: the measuring watchers' payload,
    // scaled to all of them (the same thing when all measure).
    let mb = seen.bytes as f64 / 1e6 * r.held as f64 / r.measured.max(1) as f64;
    out.push("watcher_mb_per_s", mb / wall, "MB/s", Better::Info);
    push_memory(out, r.before, r.during, r.held);
    if let Some((alone, watched)) = r.probe {
        push_probe(out, alone, watched, errors);
    }
    r.usage.push_into(out, "server_cpu_per_mb_us", mb);
    if let (Some(server), true) = (r.usage.server_cpu_s, r.held > 0) {
        out.push(
            "server_cpu_per_watcher_us_s",
            server * 1e6 / wall / r.held as f64,
            "µs CPU per s",
            Better::Lower,
        );
    }
    if let Some(busy) = r.busy_s {
        // The machine is shared: what else ran in the window competed for the same CPUs.
        let u = &r.usage;
        let ours = u.server_cpu_s.unwrap_or(0.0) + u.game_cpu_s.unwrap_or(0.0) + u.client_cpu_s;
        out.push(
            "others_cpu_pct",
            (busy - ours).max(0.0) * 100.0 / wall,
            "% of a core",
            Better::Info,
        );
    }
    sorted
}

/// Microseconds as milliseconds.
fn ms(us: u32) -> f64 {
    f64::from(us) / 1e3
}

/// Key round trips of the probe player, alone and watched.
fn push_probe(out: &mut Outcome, alone: Typed, watched: Typed, errors: &mut Errors) {
    errors.merge(alone.errors);
    errors.merge(watched.errors);
    let (a, _): (Summary, _) = alone.keys.finish();
    let (w, _): (Summary, _) = watched.keys.finish();
    out.push(
        "key_rtt_p50_us_alone",
        f64::from(a.p50),
        "µs",
        Better::Lower,
    );
    out.push(
        "key_rtt_p99_us_alone",
        f64::from(a.p99),
        "µs",
        Better::Lower,
    );
    out.push(
        "key_rtt_p50_us_watched",
        f64::from(w.p50),
        "µs",
        Better::Lower,
    );
    out.push(
        "key_rtt_p99_us_watched",
        f64::from(w.p99),
        "µs",
        Better::Lower,
    );
    if a.p99 > 0 {
        out.push(
            "key_rtt_p99_watched_ratio",
            f64::from(w.p99) / f64::from(a.p99),
            "x",
            Better::Lower,
        );
    }
}

/// Server memory per watcher: PSS of the server's own processes (games apart) after the
/// watchers attached minus before, over the watchers.
fn push_memory(
    out: &mut Outcome,
    before: Option<TreeSample>,
    during: Option<TreeSample>,
    held: u64,
) {
    let (Some(b), Some(d)) = (before, during) else {
        return;
    };
    if held > 0 {
        let per = d.server_pss_kib.saturating_sub(b.server_pss_kib) as f64 / held as f64;
        out.push("server_pss_per_watcher", per, "KiB", Better::Lower);
    }
    out.push(
        "server_pss_total",
        d.server_pss_kib as f64,
        "KiB",
        Better::Lower,
    );
}
