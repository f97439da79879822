//! `idle`: hold N authenticated sessions with a PTY running the game (or, with `--lobby`,
//! sitting in dungeongate's lobby: a shell request, no game), ramped with a bounded number
//! of logins in flight. Reports how many were held and the server's memory per session (PSS
//! of its process tree, game processes reported apart), and its CPU while they idle.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::storm::ser_secs;
use super::{session, Meter};
use crate::report::{Better, Outcome};
use crate::target::Target;

/// Descriptors a server process holds per session with a PTY at the least: the socket and
/// the PTY master, and for most servers a process handle (pidfd) or pipe.
const FDS_PER_SESSION: u64 = 3;
/// A lobby session holds only its socket.
const FDS_PER_LOBBY_SESSION: u64 = 1;

/// `idle` settings.
#[derive(Debug, Clone, Serialize, clap::Args)]
pub struct Opts {
    /// Sessions to hold.
    #[arg(long = "sessions", default_value_t = 100)]
    pub sessions: usize,
    /// How the sessions are opened.
    #[command(flatten)]
    #[serde(flatten)]
    pub ramp: session::RampOpts,
    /// Seconds to hold the sessions once up (CPU while idle is measured over this).
    #[arg(long = "hold", default_value = "5", value_parser = super::parse_secs)]
    #[serde(serialize_with = "ser_secs")]
    pub hold: Duration,
    /// Sit in the lobby (PTY + shell, no game) instead of running the game.
    #[arg(long = "lobby")]
    #[serde(default)]
    pub lobby: bool,
}

/// Runs the scenario.
pub async fn run(target: &Arc<Target>, o: &Opts) -> Outcome {
    let base_children = target.server_pid.map_or(0, crate::proc::child_count);
    // Say up front when the host, not the server, will stop the ramp.
    let ceiling = target.server_pid.map(crate::proc::SessionCeiling::read);
    let fds = if o.lobby {
        FDS_PER_LOBBY_SESSION
    } else {
        FDS_PER_SESSION
    };
    if let Some(why) = ceiling.and_then(|c| c.shortfall(o.sessions, fds)) {
        eprintln!("note: {why}");
    }
    let before = target.sample(true);
    let ramp = if o.lobby {
        session::ramp_lobby_with_progress(
            target,
            format!("idle (lobby) {}", target.label),
            o.sessions,
            &o.ramp,
        )
        .await
    } else {
        session::ramp_with_progress(
            target,
            format!("idle {}", target.label),
            o.sessions,
            &o.ramp,
        )
        .await
    };
    let held = ramp.sessions.len();
    if !o.lobby {
        // Let every game finish starting (its process appear) before reading memory.
        wait_for_games(target, before.map_or(0, |b| b.game_procs), held).await;
    }
    let meter = Meter::start(target);
    tokio::time::sleep(o.hold).await;
    let during = target.sample(true);
    let usage = meter.stop(target, Instant::now());

    let mut out = Outcome::new(
        &target.label,
        "idle",
        serde_json::to_value(o).unwrap_or_default(),
    );
    out.push("held", held as f64, "sessions", Better::Higher);
    out.push(
        "ramp_per_s",
        held as f64 / ramp.elapsed.as_secs_f64().max(1e-9),
        "sessions/s",
        Better::Higher,
    );
    let (setup, _) = ramp.setup.finish();
    out.push_p50_p99_ms(["setup_p50_ms", "setup_p99_ms"], &setup);
    if let (Some(b), Some(d)) = (before, during) {
        if held > 0 {
            let n = held as f64;
            let server = d.server_pss_kib.saturating_sub(b.server_pss_kib) as f64 / n;
            let game = d.game_pss_kib.saturating_sub(b.game_pss_kib) as f64 / n;
            let procs = d.server_procs.saturating_sub(b.server_procs) as f64 / n;
            let game_procs = d.game_procs.saturating_sub(b.game_procs) as f64 / n;
            out.push("server_pss_per_session", server, "KiB", Better::Lower);
            out.push("game_pss_per_session", game, "KiB", Better::Lower);
            out.push(
                "server_procs_per_session",
                procs,
                "processes",
                Better::Lower,
            );
            out.push(
                "game_procs_per_session",
                game_procs,
                "processes",
                Better::Info,
            );
        }
        out.push(
            "server_pss_total",
            d.server_pss_kib as f64,
            "KiB",
            Better::Lower,
        );
    }
    usage.push_into(
        &mut out,
        "server_cpu_per_session_s",
        held as f64 * usage.wall_s,
    );
    if let Some(c) = ceiling {
        if let Some(nofile) = c.server_nofile {
            out.push("server_nofile_limit", nofile as f64, "fds", Better::Info);
        }
    }
    out.errors = ramp.errors;
    // Closing: dropping the handles ends the connections.
    drop(ramp.sessions);
    target.settle(base_children, Duration::from_secs(10)).await;
    out
}

/// Waits (bounded) until the tree shows `want` more game processes than at the start.
pub(super) async fn wait_for_games(target: &Target, base: u64, want: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        match target.sample(false) {
            Some(s) if s.game_procs.saturating_sub(base) < want as u64 => {}
            _ => break,
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A freshly exec'd game is still faulting in pages for a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
}
