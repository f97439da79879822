//! `spectate` (dungeongate only: the peers have no watching): G players each run a game that
//! streams frames, W watchers per game attach through the lobby's watch menu, and what the
//! watchers receive is measured over a fixed window once every watcher is attached.
//!
//! * Lag: each frame of the stream game (`loadtest stream-game`) carries its send time
//!   (CLOCK_MONOTONIC, shared with this client); a watcher records `now − sent` per frame.
//! * Missed frames: a frame counts if it was sent inside the window; the player's own count
//!   of the game's frames is what every watcher of that game should have received. A
//!   watcher that fell behind drops output and is re-synced from the server's screen model;
//!   each re-sync shows as a repaint on its stream and is counted.
//! * Server CPU per MB delivered to watchers, and server memory (PSS) per watcher: from
//!   before the watchers attached to after.
//! * `--idle`: the games emit nothing (the players run the echo game and type nothing):
//!   what an idle watcher costs in memory and CPU.
//! * `--probe-player`: one more player runs the echo game and types 10 keys/s. Its key round
//!   trip is measured first with nobody watching, then over the window with W watchers on
//!   *its* game (so every echo is fanned out to them). With `--games 0` that is all that
//!   runs; otherwise the stream games and their watchers run next to it.
//!
//! Players are accounts named `PREFIX0000`, `PREFIX0001`, … with the target's credentials
//! (`compare` creates them); watchers are guests (`none` auth) named `w0`, `w1`, ….
//! Watchers attach at a bounded rate with a bounded number of logins in flight; SO_REUSEPORT
//! spreads their connections over the server's cores.

mod follow;
mod markers;
mod players;
mod watcher;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;

use super::echo::{self, Typed};
use super::session::Session;
use super::storm::ser_secs;
use super::{idle, Meter};
use crate::progress::Progress;
use crate::report::{Better, Outcome};
use crate::stats::{Errors, Latencies};
use crate::target::Target;
use follow::{Follow, Tally, Window};

/// Quiet after the watchers attached before memory is read.
const SETTLE: Duration = Duration::from_secs(1);
/// The same for idle watchers: dungeongate gives a quiet connection's buffers back after
/// 2 s, and that is the state an idle watcher is in.
const IDLE_SETTLE: Duration = Duration::from_secs(3);
/// How long after the window closes frames sent in it may still arrive.
const GRACE: Duration = Duration::from_secs(2);
/// The probe player's typing rate (a person) and line length.
const PROBE_PERIOD: Duration = Duration::from_millis(100);
const PROBE_LINE: usize = 32;

/// `spectate` settings.
#[derive(Debug, Clone, Serialize, clap::Args)]
pub struct Opts {
    /// Games (players), each watched by `--watchers` watchers.
    #[arg(long = "games", default_value_t = 1)]
    pub games: usize,
    /// Watchers per game.
    #[arg(long = "watchers", default_value_t = 100)]
    pub watchers: usize,
    /// Frames per second of the stream game. `compare` registers the game with it; against
    /// a server you started it is only recorded (configure the game to match).
    #[arg(long = "hz", default_value_t = 10.0)]
    pub hz: f64,
    /// Bytes per frame of the stream game (as `--hz`).
    #[arg(long = "bytes", default_value_t = 200)]
    pub bytes: usize,
    /// Seconds measured once every watcher is attached.
    #[arg(long = "window", default_value = "20", value_parser = super::parse_secs)]
    #[serde(serialize_with = "ser_secs")]
    pub window: Duration,
    /// Watcher logins in flight while attaching.
    #[arg(long = "attach-in-flight", default_value_t = 32)]
    pub attach_in_flight: usize,
    /// Watchers started per second at most (0: no limit but `--attach-in-flight`).
    #[arg(long = "attach-rate", default_value_t = 500.0)]
    pub attach_rate: f64,
    /// Seconds allowed for attaching (watchers not started by then are given up).
    #[arg(long = "attach-timeout", default_value = "120", value_parser = super::parse_secs)]
    #[serde(serialize_with = "ser_secs")]
    pub attach_timeout: Duration,
    /// Watch games that emit nothing (the echo game, nobody typing): idle watcher cost.
    #[arg(long = "idle")]
    pub idle: bool,
    /// One more player types into the echo game; its key round trip is measured alone, then
    /// with `--watchers` watching it.
    #[arg(long = "probe-player")]
    pub probe_player: bool,
    /// Exec command (game id) of the stream game.
    #[arg(long = "stream-command", default_value = "stream")]
    pub stream_command: String,
    /// Player account names: this prefix and a 4-digit number, from 0000.
    #[arg(long = "player-prefix", default_value = "sp")]
    pub player_prefix: String,
}

/// The watchers once attached: their reading tasks and what the attach phase saw.
struct Attached {
    /// One task per attached watcher: (game index, what it read).
    tasks: JoinSet<Option<(usize, Tally)>>,
    /// Watchers attached per game index.
    per_game: HashMap<usize, u64>,
    /// Login → screen, per watcher.
    setup: Latencies,
    /// Why the others did not attach.
    errors: Errors,
    /// Wall time of the attach phase.
    elapsed: Duration,
}

/// Runs the scenario.
pub async fn run(target: &Arc<Target>, o: &Opts) -> Outcome {
    let mut out = Outcome::new(
        &target.label,
        if o.idle { "spectate_idle" } else { "spectate" },
        serde_json::to_value(o).unwrap_or_default(),
    );
    let base_children = target.server_pid.map_or(0, crate::proc::child_count);
    let probe_index = o.probe_player.then_some(o.games);
    let game_command = if o.idle {
        &target.echo_command
    } else {
        &o.stream_command
    };
    let mut games: Vec<(String, String)> = (0..o.games)
        .map(|i| (player_name(&o.player_prefix, i), game_command.clone()))
        .collect();
    if let Some(i) = probe_index {
        games.push((
            player_name(&o.player_prefix, i),
            target.echo_command.clone(),
        ));
    }
    note_descriptor_ceiling(target, o.watchers * games.len() + games.len());
    let procs_before = target.sample(false).map_or(0, |s| s.game_procs);
    let (started, mut errors) = players::start(target, games).await;
    if started.is_empty() {
        out.errors = errors;
        return out;
    }
    idle::wait_for_games(target, procs_before, started.len()).await;

    // Every player reads its game for as long as the watchers do (the probe player reads
    // only its echoes, as it types).
    let window = Arc::new(Window::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut watched: Vec<(usize, String)> = Vec::new();
    let mut probe: Option<Session> = None;
    let mut followers = JoinSet::new();
    for p in started {
        watched.push((p.index, p.name));
        if Some(p.index) == probe_index {
            probe = Some(p.session);
            continue;
        }
        let (w, stop, mut s) = (window.clone(), stop_rx.clone(), p.session);
        followers.spawn(async move {
            let tally = Follow::default().run(&mut s.channel, &w, stop).await;
            (p.index, tally, s.handle)
        });
    }
    let alone = match probe.as_mut() {
        Some(s) => Some(type_for(target, s, o.window, "alone").await),
        None => None,
    };

    tokio::time::sleep(SETTLE).await;
    let before = target.sample(true);
    let attached = attach_all(target, &watched, o, &window, &stop_rx).await;
    tokio::time::sleep(if o.idle { IDLE_SETTLE } else { SETTLE }).await;
    let during = target.sample(true);

    eprintln!(
        "[spectate {}] {} watchers on {} games; measuring {:.0} s",
        target.label,
        attached.setup_count(),
        watched.len(),
        o.window.as_secs_f64()
    );
    window.open();
    let meter = Meter::start(target);
    let typed_watched = match probe.as_mut() {
        Some(s) => Some(type_for(target, s, o.window, "watched").await),
        None => {
            tokio::time::sleep(o.window).await;
            None
        }
    };
    window.close();
    let usage = meter.stop(target, Instant::now());
    tokio::time::sleep(GRACE).await;
    let _ = stop_tx.send(true);

    let mut sent: HashMap<usize, u64> = HashMap::new();
    let mut player_lags = Latencies::default();
    let mut handles = Vec::new();
    while let Some(j) = followers.join_next().await {
        match j {
            Ok((index, tally, handle)) => {
                sent.insert(index, tally.markers);
                player_lags.merge(tally.lags);
                errors.merge(tally.errors);
                handles.push(handle);
            }
            Err(_) => errors.add("task-panicked"),
        }
    }
    let expected: u64 = attached
        .per_game
        .iter()
        .map(|(g, n)| n * sent.get(g).copied().unwrap_or(0))
        .sum();
    let Attached {
        mut tasks,
        per_game,
        setup,
        errors: attach_errors,
        elapsed,
    } = attached;
    errors.merge(attach_errors);
    let mut seen = Seen::default();
    while let Some(j) = tasks.join_next().await {
        match j {
            Ok(Some((_, tally))) => seen.add(tally),
            Ok(None) => {}
            Err(_) => errors.add("task-panicked"),
        }
    }
    errors.merge(std::mem::take(&mut seen.errors));

    let held: u64 = per_game.values().sum();
    out.push("games", watched.len() as f64, "", Better::Info);
    out.push("watchers", held as f64, "", Better::Higher);
    out.push(
        "attach_per_s",
        held as f64 / elapsed.as_secs_f64().max(1e-9),
        "watchers/s",
        Better::Higher,
    );
    let (setup, _) = setup.finish();
    out.push_p50_p99_ms(["attach_p50_ms", "attach_p99_ms"], &setup);
    let (lag, sorted) = std::mem::take(&mut seen.lags).finish();
    if lag.count > 0 {
        out.push_p50_p99_ms(["lag_p50_ms", "lag_p99_ms"], &lag);
        out.push("lag_max_ms", f64::from(lag.max) / 1e3, "ms", Better::Lower);
    }
    let (plag, _) = player_lags.finish();
    if plag.count > 0 {
        out.push(
            "player_lag_p99_ms",
            f64::from(plag.p99) / 1e3,
            "ms",
            Better::Lower,
        );
    }
    if expected > 0 {
        out.push("frames_expected", expected as f64, "", Better::Info);
        out.push("frames_received", seen.markers as f64, "", Better::Info);
        out.push(
            "frames_missed_pct",
            expected.saturating_sub(seen.markers) as f64 * 100.0 / expected as f64,
            "%",
            Better::Lower,
        );
    }
    out.push("resyncs", seen.resyncs as f64, "", Better::Lower);
    out.push("watchers_resynced", seen.resynced as f64, "", Better::Lower);
    let mb = seen.bytes as f64 / 1e6;
    out.push(
        "watcher_mb_per_s",
        mb / usage.wall_s.max(1e-9),
        "MB/s",
        Better::Info,
    );
    push_memory(&mut out, before, during, held);
    if let (Some(a), Some(w)) = (alone, typed_watched) {
        push_probe(&mut out, a, w, &mut errors);
    }
    usage.push_into(&mut out, "server_cpu_per_mb_us", mb);
    if held > 0 {
        out.push(
            "server_cpu_per_watcher_us_s",
            usage.server_cpu_s.unwrap_or(0.0) * 1e6 / usage.wall_s.max(1e-9) / held as f64,
            "µs CPU per s",
            Better::Lower,
        );
    }
    out.errors = errors;
    out.latencies_us = sorted;
    out.latency_label = "spectate: watcher lag (frame sent → received)";
    drop(probe);
    drop(handles);
    target.settle(base_children, Duration::from_secs(10)).await;
    out
}

/// Account name of player `i`: fixed width, so no name is part of another and a search for
/// one finds only its game.
pub fn player_name(prefix: &str, i: usize) -> String {
    format!("{prefix}{i:04}")
}

/// What every watcher saw, added up.
#[derive(Default)]
struct Seen {
    lags: Latencies,
    markers: u64,
    bytes: u64,
    resyncs: u64,
    /// Watchers re-synced at least once.
    resynced: u64,
    errors: Errors,
}

impl Seen {
    fn add(&mut self, t: Tally) {
        self.lags.merge(t.lags);
        self.markers += t.markers;
        self.bytes += t.bytes;
        self.resyncs += t.resyncs;
        self.resynced += u64::from(t.resyncs > 0);
        self.errors.merge(t.errors);
    }
}

impl Attached {
    fn setup_count(&self) -> u64 {
        self.per_game.values().sum()
    }
}

/// Attaches `o.watchers` watchers to each game (round robin over the games, so each game's
/// watchers come over the whole attach phase), at most `attach_rate` starts per second and
/// `attach_in_flight` at once. Returns once every watcher attached or failed; the attached
/// ones go on reading until `stop`.
async fn attach_all(
    target: &Arc<Target>,
    games: &[(usize, String)],
    o: &Opts,
    window: &Arc<Window>,
    stop: &watch::Receiver<bool>,
) -> Attached {
    let total = o.watchers * games.len();
    let progress = Progress::start(format!("spectate {} attach", target.label), "watchers");
    let (tx, mut rx) = mpsc::unbounded_channel::<(usize, Result<Duration, String>)>();
    let gate = Arc::new(Semaphore::new(o.attach_in_flight.max(1)));
    let start = tokio::time::Instant::now();
    let deadline = start + o.attach_timeout;
    let mut tasks = JoinSet::new();
    for (k, (game, player)) in games.iter().cycle().take(total).enumerate() {
        let due = if o.attach_rate > 0.0 {
            start + Duration::from_secs_f64(k as f64 / o.attach_rate)
        } else {
            start
        };
        let (t, gate, tx, window, stop, c) = (
            target.clone(),
            gate.clone(),
            tx.clone(),
            window.clone(),
            stop.clone(),
            progress.counters.clone(),
        );
        let (game, player) = (*game, player.clone());
        tasks.spawn(async move {
            tokio::time::sleep_until(due.min(deadline)).await;
            let permit = gate.acquire_owned().await;
            if permit.is_err() || tokio::time::Instant::now() >= deadline {
                let _ = tx.send((game, Err("attach-deadline".into())));
                return None;
            }
            let t0 = Instant::now();
            match watcher::attach(&t, &format!("w{k}"), &player, &window).await {
                Ok(w) => {
                    drop(permit);
                    c.ok();
                    let _ = tx.send((game, Ok(t0.elapsed())));
                    drop(tx);
                    let watcher::Watcher {
                        handle,
                        mut channel,
                        follow,
                    } = w;
                    let tally = follow.run(&mut channel, &window, stop).await;
                    drop(handle);
                    Some((game, tally))
                }
                Err(f) => {
                    c.err();
                    let _ = tx.send((game, Err(format!("watcher:{}", f.kind()))));
                    None
                }
            }
        });
    }
    drop(tx);
    let mut a = Attached {
        tasks,
        per_game: HashMap::new(),
        setup: Latencies::default(),
        errors: Errors::default(),
        elapsed: Duration::ZERO,
    };
    // One message per watcher (every stage of an attach is bounded by the I/O timeout).
    for _ in 0..total {
        match rx.recv().await {
            Some((game, Ok(took))) => {
                a.setup.record(took);
                *a.per_game.entry(game).or_default() += 1;
            }
            Some((_, Err(kind))) => a.errors.add(&kind),
            None => break,
        }
    }
    a.elapsed = start.elapsed();
    progress.finish().await;
    a
}

/// The probe player types for `seconds` (after draining what its game printed).
async fn type_for(target: &Target, s: &mut Session, seconds: Duration, phase: &str) -> Typed {
    let progress = Progress::start(format!("spectate {} probe {phase}", target.label), "keys");
    echo::drain_quiet(
        &mut s.channel,
        Duration::from_millis(150),
        Duration::from_millis(450),
    )
    .await;
    let first = tokio::time::Instant::now();
    let typed = echo::type_keys(
        &mut s.channel,
        first,
        first + seconds,
        PROBE_PERIOD,
        PROBE_LINE,
        target.io_timeout,
        &progress.counters,
    )
    .await;
    progress.finish().await;
    typed
}

/// Key round trips of the probe player, alone and watched.
fn push_probe(out: &mut Outcome, alone: Typed, watched: Typed, errors: &mut Errors) {
    let (a, _) = alone.keys.finish();
    let (w, _) = watched.keys.finish();
    errors.merge(alone.errors);
    errors.merge(watched.errors);
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
    before: Option<crate::proc::TreeSample>,
    during: Option<crate::proc::TreeSample>,
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

/// Says up front when the server's descriptor limit cannot hold `connections` (a watcher
/// holds one descriptor on the server: its socket).
fn note_descriptor_ceiling(target: &Target, connections: usize) {
    let Some(pid) = target.server_pid else {
        return;
    };
    if let Some(nofile) = crate::proc::SessionCeiling::read(pid).server_nofile {
        if nofile < connections as u64 + 64 {
            eprintln!(
                "note: the server's RLIMIT_NOFILE is {nofile}: {connections} connections will \
                 not fit (raise the hard limit with `ulimit -Hn` as root)"
            );
        }
    }
}
