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
//!   runs; otherwise the stream games and their watchers run next to it. It has a thread and
//!   runtime of its own (see [`probe`]).
//! * `--lag-sample N`: only N watchers per game run the full (russh) client and measure; the
//!   others drain their socket without decrypting (see [`sink`]), so that on a small machine
//!   the client's own CPU does not become what is measured. Frame counts and lag then come
//!   from the sample; MB delivered is the sample's payload scaled to every watcher (each
//!   watcher of a game is sent the same stream).
//!
//! Players are accounts named `PREFIX0000`, `PREFIX0001`, … with the target's credentials
//! (`compare` creates them); watchers are guests (`none` auth) named `w0`, `w1`, ….
//! Watchers attach at a bounded rate with a bounded number of logins in flight; SO_REUSEPORT
//! spreads their connections over the server's cores.

mod attach;
mod figures;
mod follow;
mod markers;
mod players;
mod probe;
mod sink;
mod watcher;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use russh::client::Handle;
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::storm::ser_secs;
use super::{idle, Meter};
use crate::report::Outcome;
use crate::stats::{Errors, Latencies};
use crate::target::{Client, Target};
use figures::{Results, Seen};
use follow::{Follow, Tally, Window};
use probe::Probe;

/// Quiet after the watchers attached before memory is read.
const SETTLE: Duration = Duration::from_secs(1);
/// The same for idle watchers: dungeongate gives a quiet connection's buffers back after
/// 2 s, and that is the state an idle watcher is in.
const IDLE_SETTLE: Duration = Duration::from_secs(3);
/// How long after the window closes frames sent in it may still arrive.
const GRACE: Duration = Duration::from_secs(2);

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
    /// Watchers per game that decrypt and measure; the rest only drain their socket
    /// (0: every watcher measures).
    #[arg(long = "lag-sample", default_value_t = 0)]
    pub lag_sample: usize,
    /// Exec command (game id) of the stream game.
    #[arg(long = "stream-command", default_value = "stream")]
    pub stream_command: String,
    /// Player account names: this prefix and a 4-digit number, from 0000.
    #[arg(long = "player-prefix", default_value = "sp")]
    pub player_prefix: String,
}

/// The players once their games run.
struct Cast {
    /// Every watched game: (index, player name).
    watched: Vec<(usize, String)>,
    /// The stream players, each reading its game until stop: (index, what it read, its
    /// connection).
    followers: JoinSet<(usize, Tally, Handle<Client>)>,
    /// The probe player, if asked for.
    probe: Option<Probe>,
}

/// Runs the scenario.
pub async fn run(target: &Arc<Target>, o: &Opts) -> Outcome {
    let mut out = Outcome::new(
        &target.label,
        if o.idle { "spectate_idle" } else { "spectate" },
        serde_json::to_value(o).unwrap_or_default(),
    );
    let base_children = target.server_pid.map_or(0, crate::proc::child_count);
    let window = Arc::new(Window::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut errors = Errors::default();
    let Some(mut cast) = start_players(target, o, &window, &stop_rx, &mut errors).await else {
        out.errors = errors;
        return out;
    };
    let alone = match cast.probe.as_mut() {
        Some(p) => p.alone().await,
        None => None,
    };

    tokio::time::sleep(SETTLE).await;
    let before = target.sample(true);
    let attached = attach::all(target, &cast.watched, o, &window, &stop_rx).await;
    tokio::time::sleep(if o.idle { IDLE_SETTLE } else { SETTLE }).await;
    let during = target.sample(true);

    eprintln!(
        "[spectate {}] {} watchers on {} games; measuring {:.0} s",
        target.label,
        attached.held(),
        cast.watched.len(),
        o.window.as_secs_f64()
    );
    window.open();
    let meter = Meter::start(target);
    let busy_before = crate::proc::machine_busy_ns();
    let watched = match cast.probe.as_mut() {
        Some(p) => p.watched().await,
        None => {
            tokio::time::sleep(o.window).await;
            None
        }
    };
    window.close();
    let usage = meter.stop(target, Instant::now());
    let busy_s = busy_before
        .zip(crate::proc::machine_busy_ns())
        .map(|(a, b)| b.saturating_sub(a) as f64 / 1e9);
    // Frames sent in the window that are still on their way.
    tokio::time::sleep(GRACE).await;
    let _ = stop_tx.send(true);

    let (sent, player_lags, handles) = collect_players(&mut cast.followers, &mut errors).await;
    let held = attached.held();
    let measured: u64 = attached.measuring.values().sum();
    let expected = attached
        .measuring
        .iter()
        .map(|(g, n)| n * sent.get(g).copied().unwrap_or(0))
        .sum();
    let mut tasks = attached.tasks;
    errors.merge(attached.errors);
    let mut seen = Seen::default();
    while let Some(j) = tasks.join_next().await {
        match j {
            Ok(Some((measured, tally))) => seen.add(measured, tally),
            Ok(None) => {}
            Err(_) => errors.add("task-panicked"),
        }
    }
    errors.merge(std::mem::take(&mut seen.errors));
    let results = Results {
        games: cast.watched.len(),
        held,
        measured,
        attach_s: attached.elapsed.as_secs_f64(),
        setup: attached.setup,
        seen,
        player_lags,
        expected,
        usage,
        busy_s,
        before,
        during,
        probe: alone.zip(watched),
    };
    out.latencies_us = figures::push(&mut out, results, &mut errors);
    out.latency_label = "spectate: watcher lag (frame sent → received)";
    out.errors = errors;
    drop(cast);
    drop(handles);
    target.settle(base_children, Duration::from_secs(10)).await;
    out
}

/// Account name of player `i`: fixed width, so no name is part of another and a search for
/// one finds only its game.
pub fn player_name(prefix: &str, i: usize) -> String {
    format!("{prefix}{i:04}")
}

/// Starts the players (and the probe player) and waits for their games to run; each stream
/// player then reads its game until `stop`. `None` when no game runs.
async fn start_players(
    target: &Arc<Target>,
    o: &Opts,
    window: &Arc<Window>,
    stop: &watch::Receiver<bool>,
    errors: &mut Errors,
) -> Option<Cast> {
    let command = if o.idle {
        &target.echo_command
    } else {
        &o.stream_command
    };
    let games: Vec<(String, String)> = (0..o.games)
        .map(|i| (player_name(&o.player_prefix, i), command.clone()))
        .collect();
    let all_games = games.len() + usize::from(o.probe_player);
    note_descriptor_ceiling(target, (o.watchers + 1) * all_games);
    let procs_before = target.sample(false).map_or(0, |s| s.game_procs);
    let (started, failed) = players::start(target, games).await;
    errors.merge(failed);
    let mut cast = Cast {
        watched: Vec::new(),
        followers: JoinSet::new(),
        probe: None,
    };
    if o.probe_player {
        // The probe's game is numbered after the stream games.
        let (i, name) = (o.games, player_name(&o.player_prefix, o.games));
        let cmd = target.echo_command.clone();
        match Probe::start(target, name.clone(), cmd, o.window).await {
            Ok(p) => {
                cast.probe = Some(p);
                cast.watched.push((i, name));
            }
            Err(kind) => errors.add(&kind),
        }
    }
    for p in started {
        cast.watched.push((p.index, p.name));
        let (w, stop, mut s) = (window.clone(), stop.clone(), p.session);
        cast.followers.spawn(async move {
            let tally = Follow::default().run(&mut s.channel, &w, stop).await;
            (p.index, tally, s.handle)
        });
    }
    if cast.watched.is_empty() {
        return None;
    }
    idle::wait_for_games(target, procs_before, cast.watched.len()).await;
    Some(cast)
}

/// The players' reading: frames each game sent in the window (by index), the players' own
/// lag, and their connections (to close once everything is counted).
async fn collect_players(
    followers: &mut JoinSet<(usize, Tally, Handle<Client>)>,
    errors: &mut Errors,
) -> (HashMap<usize, u64>, Latencies, Vec<Handle<Client>>) {
    let mut sent = HashMap::new();
    let mut lags = Latencies::default();
    let mut handles = Vec::new();
    while let Some(j) = followers.join_next().await {
        match j {
            Ok((index, tally, handle)) => {
                sent.insert(index, tally.markers);
                lags.merge(tally.lags);
                errors.merge(tally.errors);
                handles.push(handle);
            }
            Err(_) => errors.add("task-panicked"),
        }
    }
    (sent, lags, handles)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn player_names_never_contain_each_other() {
        let a = player_name("sp", 1);
        let b = player_name("sp", 10);
        assert_eq!((a.as_str(), b.as_str()), ("sp0001", "sp0010"));
        assert!(!b.contains(&a) && !a.contains(&b));
    }
}
