//! Opening many game sessions with a bounded number of logins in flight (used by `idle` and
//! `echo`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use russh::client::{Handle, Msg};
use russh::Channel;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::progress::{Counters, Progress};
use crate::stats::{Errors, Latencies};
use crate::target::{Client, Target};

/// One authenticated connection with a PTY session running the game.
pub struct Session {
    /// The connection (dropping it closes the connection).
    pub handle: Handle<Client>,
    /// The game's channel.
    pub channel: Channel<Msg>,
}

/// What a ramp produced.
pub struct Ramp {
    /// The sessions that came up.
    pub sessions: Vec<Session>,
    /// Why the others failed.
    pub errors: Errors,
    /// Time from start of login to exec reply, per session.
    pub setup: Latencies,
    /// Wall time of the ramp.
    pub elapsed: Duration,
}

/// How `idle` and `echo` open their sessions.
#[derive(Debug, Clone, serde::Serialize, clap::Args)]
pub struct RampOpts {
    /// Logins in flight during the ramp.
    #[arg(long = "in-flight", default_value_t = 16)]
    pub in_flight: usize,
    /// Seconds allowed for the ramp.
    #[arg(long = "ramp-timeout", default_value = "120", value_parser = super::parse_secs)]
    #[serde(serialize_with = "super::storm::ser_secs")]
    pub ramp_timeout: Duration,
}

/// [`ramp`] of `n` sessions of the target's echoing game, with a progress line titled `title`.
pub async fn ramp_with_progress(
    target: &Arc<Target>,
    title: String,
    n: usize,
    opts: &RampOpts,
) -> Ramp {
    ramp_titled(target, title, n, opts, Some(&target.echo_command)).await
}

/// [`ramp`] of `n` lobby sessions (PTY + shell, no game), with a progress line.
pub async fn ramp_lobby_with_progress(
    target: &Arc<Target>,
    title: String,
    n: usize,
    opts: &RampOpts,
) -> Ramp {
    ramp_titled(target, title, n, opts, None).await
}

async fn ramp_titled(
    target: &Arc<Target>,
    title: String,
    n: usize,
    opts: &RampOpts,
    command: Option<&str>,
) -> Ramp {
    let progress = Progress::start(title, "sessions");
    let ramp = ramp(
        target,
        n,
        opts.in_flight,
        opts.ramp_timeout,
        command,
        &progress.counters,
    )
    .await;
    progress.finish().await;
    ramp
}

/// Opens `n` sessions running `command` (`None`: a shell, i.e. dungeongate's lobby), at most
/// `in_flight` logins at once, giving up on those not started within `within`.
pub async fn ramp(
    target: &Arc<Target>,
    n: usize,
    in_flight: usize,
    within: Duration,
    command: Option<&str>,
    counters: &Arc<Counters>,
) -> Ramp {
    let start = Instant::now();
    let deadline = start + within;
    let gate = Arc::new(Semaphore::new(in_flight.max(1)));
    let mut set = JoinSet::new();
    for _ in 0..n {
        let (t, gate, c, cmd) = (
            target.clone(),
            gate.clone(),
            counters.clone(),
            command.map(str::to_owned),
        );
        set.spawn(async move {
            let Ok(_permit) = gate.acquire_owned().await else {
                return None;
            };
            if Instant::now() >= deadline {
                return None;
            }
            let t0 = Instant::now();
            let res = async {
                let handle = t.login().await?;
                let channel = match &cmd {
                    Some(cmd) => t.open_game(&handle, cmd).await?,
                    None => t.open_shell(&handle).await?,
                };
                Ok::<_, crate::target::Failure>(Session { handle, channel })
            }
            .await;
            match &res {
                Ok(_) => c.ok(),
                Err(_) => c.err(),
            }
            Some((res, t0.elapsed()))
        });
    }
    let mut out = Ramp {
        sessions: Vec::with_capacity(n),
        errors: Errors::default(),
        setup: Latencies::default(),
        elapsed: Duration::ZERO,
    };
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(Some((Ok(s), took))) => {
                out.setup.record(took);
                out.sessions.push(s);
            }
            Ok(Some((Err(f), _))) => out.errors.add(&f.kind()),
            Ok(None) => out.errors.add("ramp-deadline"),
            Err(_) => out.errors.add("task-panicked"),
        }
    }
    out.elapsed = start.elapsed();
    out
}
