//! The scenarios. Each is bounded in count and time, prints a progress line while it runs,
//! and returns one [`Outcome`] with the server's CPU (from `/proc`) next to the client's own.
//!
//! Adding a scenario: a module with an `Opts` struct and
//! `async fn run(target: &Arc<Target>, opts: &Opts) -> Outcome`, a variant of [`Kind`], a
//! field in [`Plan`], and a line in [`run`].

pub mod echo;
pub mod flood;
pub mod idle;
pub mod session;
pub mod spectate;
pub mod storm;
pub mod throughput;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::proc::{self, TreeSample};
use crate::report::{Better, Outcome};
use crate::target::Target;

/// Which scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Connect → handshake → auth → session → close, as fast as possible.
    Storm,
    /// Hold many authenticated sessions with a PTY running the game.
    Idle,
    /// Sessions typing at a human rate into an echoing game.
    Echo,
    /// One session receiving a bulk stream.
    Throughput,
    /// Watchers of streaming games (dungeongate only).
    Spectate,
}

impl Kind {
    /// The scenarios every server runs, in the order `compare` runs them by default.
    /// `spectate` is not among them: only dungeongate has watching, so it runs when asked.
    pub const ALL: [Kind; 4] = [Kind::Storm, Kind::Idle, Kind::Echo, Kind::Throughput];

    /// Whether a server without watching (OpenSSH, dropbear) can run it.
    pub fn any_server(self) -> bool {
        self != Kind::Spectate
    }
}

/// Settings of every scenario (what `compare` runs against each server).
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// `storm` settings.
    pub storm: storm::Opts,
    /// `idle` settings.
    pub idle: idle::Opts,
    /// `echo` settings.
    pub echo: echo::Opts,
    /// `throughput` settings.
    pub throughput: throughput::Opts,
    /// `spectate` settings.
    pub spectate: spectate::Opts,
}

/// Runs one scenario of `plan` against `target`.
pub async fn run(kind: Kind, target: &Arc<Target>, plan: &Plan) -> Outcome {
    match kind {
        Kind::Storm => storm::run(target, &plan.storm).await,
        Kind::Idle => idle::run(target, &plan.idle).await,
        Kind::Echo => echo::run(target, &plan.echo).await,
        Kind::Throughput => throughput::run(target, &plan.throughput).await,
        Kind::Spectate => spectate::run(target, &plan.spectate).await,
    }
}

/// CPU used by the server, its games and the client over a measured window.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// Wall-clock seconds of the window.
    pub wall_s: f64,
    /// Server CPU seconds (none when no pid was given or the server vanished).
    pub server_cpu_s: Option<f64>,
    /// Game CPU seconds.
    pub game_cpu_s: Option<f64>,
    /// The client's own CPU seconds.
    pub client_cpu_s: f64,
}

/// Starts measuring CPU; [`Meter::stop`] ends the window.
pub struct Meter {
    /// Window start.
    start: Instant,
    /// Server tree at the start.
    server: Option<TreeSample>,
    /// Client CPU at the start.
    client_ns: u64,
}

impl Meter {
    /// Opens a window now.
    pub fn start(target: &Target) -> Meter {
        Meter {
            start: Instant::now(),
            server: target.sample(false),
            client_ns: proc::self_cpu_ns(),
        }
    }

    /// Closes the window; `wall_end` is when the work ended (the CPU reading may be taken
    /// later, after the server settled, so teardown work is counted).
    pub fn stop(self, target: &Target, wall_end: Instant) -> Usage {
        let end = target.sample(false);
        let client_ns = proc::self_cpu_ns();
        let (server_cpu_s, game_cpu_s) = match (self.server, end) {
            (Some(a), Some(b)) => (
                Some(ns_to_s(b.server_cpu_ns.saturating_sub(a.server_cpu_ns))),
                Some(ns_to_s(b.game_cpu_ns.saturating_sub(a.game_cpu_ns))),
            ),
            _ => (None, None),
        };
        Usage {
            wall_s: wall_end.duration_since(self.start).as_secs_f64(),
            server_cpu_s,
            game_cpu_s,
            client_cpu_s: ns_to_s(client_ns.saturating_sub(self.client_ns)),
        }
    }
}

impl Usage {
    /// Adds the CPU figures to an outcome: server and game CPU per operation (`per` names the
    /// operation, `ops` counts them) and utilisation of server, game and client in % of one
    /// core, so a reader sees when the client, not the server, was the limit.
    pub fn push_into(&self, o: &mut Outcome, per: &'static str, ops: f64) {
        if let Some(s) = self.server_cpu_s {
            if ops > 0.0 {
                o.push(per, s * 1e6 / ops, "µs server CPU", Better::Lower);
            }
            o.push(
                "server_cpu_pct",
                pct(s, self.wall_s),
                "% of a core",
                Better::Info,
            );
        }
        if let Some(g) = self.game_cpu_s {
            o.push(
                "game_cpu_pct",
                pct(g, self.wall_s),
                "% of a core",
                Better::Info,
            );
        }
        o.push(
            "client_cpu_pct",
            pct(self.client_cpu_s, self.wall_s),
            "% of a core",
            Better::Info,
        );
    }
}

/// Nanoseconds to seconds.
fn ns_to_s(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// CPU seconds over wall seconds, in percent.
fn pct(cpu: f64, wall: f64) -> f64 {
    if wall > 0.0 {
        cpu / wall * 100.0
    } else {
        0.0
    }
}

/// Seconds as a `Duration` for clap (`--duration 2.5`).
pub fn parse_secs(s: &str) -> Result<Duration, String> {
    let v: f64 = s.parse().map_err(|e| format!("{s:?}: {e}"))?;
    if !(0.0..=86_400.0).contains(&v) {
        return Err(format!("{s:?}: out of range"));
    }
    Ok(Duration::from_secs_f64(v))
}
