//! `throughput`: one session receiving a bulk stream (the bulk game writes `/dev/zero` into its
//! PTY); MB/s over the window, and the server's CPU per GB so the figure can be read against the
//! cipher's ceiling.

use std::sync::Arc;
use std::time::{Duration, Instant};

use russh::{ChannelMsg, Disconnect};
use serde::Serialize;

use super::storm::ser_secs;
use super::Meter;
use crate::progress::Progress;
use crate::report::{Better, Outcome};
use crate::stats::Errors;
use crate::target::{Algorithms, Target};

/// `throughput` settings.
#[derive(Debug, Clone, Serialize, clap::Args)]
pub struct Opts {
    /// Seconds to receive.
    #[arg(long = "duration", default_value = "5", value_parser = super::parse_secs)]
    #[serde(serialize_with = "ser_secs")]
    pub duration: Duration,
    /// Ciphers to offer, most preferred first (comma-separated).
    #[arg(
        long = "ciphers",
        value_delimiter = ',',
        default_value = "aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com"
    )]
    pub ciphers: Vec<String>,
    /// Exec the bulk command without a PTY (measures the SSH path without the kernel's tty
    /// layer; a server that always uses a PTY still does).
    #[arg(long = "no-pty")]
    pub no_pty: bool,
}

/// Runs the scenario.
pub async fn run(target: &Arc<Target>, o: &Opts) -> Outcome {
    let base_children = target.server_pid.map_or(0, crate::proc::child_count);
    let name = if o.no_pty {
        "throughput_nopty"
    } else {
        "throughput"
    };
    let mut out = Outcome::new(
        &target.label,
        name,
        serde_json::to_value(o).unwrap_or_default(),
    );
    let algs = Algorithms {
        kex: vec!["curve25519-sha256".into()],
        ciphers: o.ciphers.clone(),
    };
    let t = match target.with_algorithms(&algs) {
        Ok(t) => t,
        Err(e) => {
            out.errors.add(&format!("config: {e}"));
            return out;
        }
    };
    let progress = Progress::start(format!("throughput {}", target.label), "MB");
    let mut errors = Errors::default();
    let mut bytes = 0u64;
    let mut window = None;
    match receive(&t, o.duration, !o.no_pty, &progress, &mut bytes).await {
        Ok(w) => window = Some(w),
        Err(kind) => errors.add(&kind),
    }
    progress.finish().await;
    if let Some(usage) = window {
        let mb_s = bytes as f64 / 1e6 / usage.wall_s.max(1e-9);
        out.push("mb_per_s", mb_s, "MB/s", Better::Higher);
        let gb = bytes as f64 / 1e9;
        usage.push_into(&mut out, "server_cpu_per_mb_us", gb * 1e3);
        if let Some(g) = usage.game_cpu_s {
            out.push("game_cpu_s", g, "s", Better::Info);
        }
    }
    out.errors = errors;
    t.settle(base_children, Duration::from_secs(5)).await;
    out
}

/// Logs in, starts the bulk game, and counts bytes for `duration` after the first one.
async fn receive(
    t: &Target,
    duration: Duration,
    pty: bool,
    progress: &Progress,
    bytes: &mut u64,
) -> Result<super::Usage, String> {
    let h = t.login().await.map_err(|f| f.kind())?;
    let mut ch = t
        .open_exec(&h, &t.bulk_command, pty)
        .await
        .map_err(|f| f.kind())?;
    // The window starts at the first byte.
    loop {
        match tokio::time::timeout(t.io_timeout, ch.wait()).await {
            Ok(Some(ChannelMsg::Data { .. })) => break,
            Ok(Some(ChannelMsg::Eof | ChannelMsg::Close) | None) => {
                return Err("closed:bulk".into())
            }
            Ok(Some(_)) => {}
            Err(_) => return Err("timeout:bulk".into()),
        }
    }
    let meter = Meter::start(t);
    let deadline = tokio::time::Instant::now() + duration;
    let mut reported = 0u64;
    loop {
        match tokio::time::timeout_at(deadline, ch.wait()).await {
            Ok(Some(ChannelMsg::Data { data })) => {
                *bytes += data.len() as u64;
                let mb = *bytes / 1_000_000;
                if mb > reported {
                    progress.counters.add(mb - reported);
                    reported = mb;
                }
            }
            Ok(Some(ChannelMsg::Eof | ChannelMsg::Close) | None) => {
                return Err("closed:bulk".into())
            }
            Ok(Some(_)) => {}
            Err(_) => break,
        }
    }
    // Read the CPU before hanging up: the game's exit would move its CPU into the server's
    // reaped-children total.
    let usage = meter.stop(t, Instant::now());
    let _ = h.disconnect(Disconnect::ByApplication, "", "en").await;
    drop(ch);
    drop(h);
    Ok(usage)
}
