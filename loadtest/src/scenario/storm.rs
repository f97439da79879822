//! `storm`: C concurrent workers loop connect → handshake → auth → open a session → close.
//! Reports completed cycles/s, errors by kind, p50/p99 cycle latency, and the server's CPU
//! per completed login (read from its own CPU time, so the figure survives a noisy machine).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use russh::Disconnect;
use serde::Serialize;

use super::Meter;
use crate::progress::Progress;
use crate::report::{Better, Outcome};
use crate::stats::{Errors, Latencies};
use crate::target::{Failure, Target};

/// `storm` settings.
#[derive(Debug, Clone, Serialize, clap::Args)]
pub struct Opts {
    /// Concurrent workers.
    #[arg(long = "concurrency", default_value_t = 8)]
    pub concurrency: usize,
    /// Stop after this many cycles.
    #[arg(long = "count", default_value_t = 100_000)]
    pub count: u64,
    /// Stop after this many seconds.
    #[arg(long = "duration", default_value = "10", value_parser = super::parse_secs)]
    #[serde(serialize_with = "ser_secs")]
    pub duration: Duration,
}

/// Runs the storm.
pub async fn run(target: &Arc<Target>, o: &Opts) -> Outcome {
    let progress = Progress::start(format!("storm {}", target.label), "logins");
    let base_children = target.server_pid.map_or(0, crate::proc::child_count);
    let meter = Meter::start(target);
    let start = Instant::now();
    let deadline = start + o.duration;
    let claimed = Arc::new(AtomicU64::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..o.concurrency.max(1) {
        let (t, claimed, c, count) = (
            target.clone(),
            claimed.clone(),
            progress.counters.clone(),
            o.count,
        );
        workers.spawn(async move {
            let mut lat = Latencies::default();
            let mut errors = Errors::default();
            while Instant::now() < deadline && claimed.fetch_add(1, Ordering::Relaxed) < count {
                let t0 = Instant::now();
                match cycle(&t).await {
                    Ok(()) => {
                        lat.record(t0.elapsed());
                        c.ok();
                    }
                    Err(f) => {
                        errors.add(&f.kind());
                        c.err();
                    }
                }
            }
            (lat, errors)
        });
    }
    let mut lat = Latencies::default();
    let mut errors = Errors::default();
    while let Some(j) = workers.join_next().await {
        match j {
            Ok((l, e)) => {
                lat.merge(l);
                errors.merge(e);
            }
            Err(_) => errors.add("task-panicked"),
        }
    }
    let wall_end = Instant::now();
    progress.finish().await;
    // Count the server's teardown of the last connections too.
    target.settle(base_children, Duration::from_secs(5)).await;
    let usage = meter.stop(target, wall_end);

    let (summary, sorted) = lat.finish();
    let mut out = Outcome::new(
        &target.label,
        "storm",
        serde_json::to_value(o).unwrap_or_default(),
    );
    let ok = summary.count as f64;
    out.push("cycles", ok, "", Better::Higher);
    out.push(
        "cycles_per_s",
        if usage.wall_s > 0.0 {
            ok / usage.wall_s
        } else {
            0.0
        },
        "1/s",
        Better::Higher,
    );
    out.push_p50_p99_ms(["cycle_p50_ms", "cycle_p99_ms"], &summary);
    usage.push_into(&mut out, "server_cpu_per_login_us", ok);
    if ok > 0.0 {
        out.push(
            "client_cpu_per_login_us",
            usage.client_cpu_s * 1e6 / ok,
            "µs client CPU",
            Better::Info,
        );
    }
    out.errors = errors;
    out.latencies_us = sorted;
    out.latency_label = "storm: connect→auth→session→close cycle";
    out
}

/// One full cycle (also the legitimate login of `flood`).
pub(super) async fn cycle(t: &Target) -> Result<(), Failure> {
    let h = t.login().await?;
    let ch = t.open_session(&h).await?;
    let _ = ch.close().await;
    let _ = h.disconnect(Disconnect::ByApplication, "", "en").await;
    Ok(())
}

/// Serializes a duration as fractional seconds.
pub fn ser_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}
