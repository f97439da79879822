//! `echo`: N sessions typing at a human rate into an echoing game (`cat` in a PTY).
//!
//! Every session types a letter per tick (default 10 keys/s) and waits for its echo, which the
//! PTY's line discipline sends back (canonical mode, `ECHO` on: the defaults of every server
//! here). Every `line` keys it types Enter instead; that round trip also goes through the game:
//! the PTY echoes `\r\n` and `cat` writes the line back. Key and line round trips are reported
//! apart, in µs. Replies are matched by byte count; a reply that does not come within the I/O
//! timeout is an error and the session resynchronises by draining.

use std::sync::Arc;
use std::time::{Duration, Instant};

use russh::client::Msg;
use russh::{Channel, ChannelMsg};
use serde::Serialize;

use super::storm::ser_secs;
use super::{session, Meter};
use crate::progress::{Counters, Progress};
use crate::report::{Better, Outcome};
use crate::stats::{Errors, Latencies};
use crate::target::Target;

/// `echo` settings.
#[derive(Debug, Clone, Serialize, clap::Args)]
pub struct Opts {
    /// Typing sessions.
    #[arg(long = "sessions", default_value_t = 50)]
    pub sessions: usize,
    /// Keys per second per session.
    #[arg(long = "rate", default_value_t = 10.0)]
    pub rate: f64,
    /// Seconds of typing (after all sessions are up).
    #[arg(long = "duration", default_value = "10", value_parser = super::parse_secs)]
    #[serde(serialize_with = "ser_secs")]
    pub duration: Duration,
    /// Letters per line before Enter.
    #[arg(long = "line", default_value_t = 32)]
    pub line: usize,
    /// How the sessions are opened.
    #[command(flatten)]
    #[serde(flatten)]
    pub ramp: session::RampOpts,
}

/// What one typing session measured.
#[derive(Default)]
pub(super) struct Typed {
    /// Letter round trips.
    pub(super) keys: Latencies,
    /// Enter round trips (through the game).
    pub(super) lines: Latencies,
    /// Failures.
    pub(super) errors: Errors,
}

/// Runs the scenario.
pub async fn run(target: &Arc<Target>, o: &Opts) -> Outcome {
    let base_children = target.server_pid.map_or(0, crate::proc::child_count);
    let ramp = session::ramp_with_progress(
        target,
        format!("echo {} ramp", target.label),
        o.sessions,
        &o.ramp,
    )
    .await;
    let held = ramp.sessions.len();

    let progress = Progress::start(format!("echo {} typing", target.label), "keys");
    // Everyone drains its start-up output first, then typing starts at one instant, each
    // session offset by a fraction of the key period so keys are spread evenly in time.
    let start = tokio::time::Instant::now() + Duration::from_millis(500);
    let deadline = start + o.duration;
    let period = Duration::from_secs_f64(1.0 / o.rate.max(0.001));
    let mut set = tokio::task::JoinSet::new();
    for (i, s) in ramp.sessions.into_iter().enumerate() {
        let phase = period.mul_f64(i as f64 / held.max(1) as f64);
        let (c, line, io) = (progress.counters.clone(), o.line.max(1), target.io_timeout);
        set.spawn(async move {
            let mut ch = s.channel;
            drain_quiet(
                &mut ch,
                Duration::from_millis(150),
                Duration::from_millis(450),
            )
            .await;
            let typed = type_keys(&mut ch, start + phase, deadline, period, line, io, &c).await;
            (typed, s.handle)
        });
    }
    tokio::time::sleep_until(start).await;
    let meter = Meter::start(target);
    let mut keys = Latencies::default();
    let mut lines = Latencies::default();
    let mut errors = ramp.errors;
    let mut handles = Vec::with_capacity(held);
    while let Some(j) = set.join_next().await {
        match j {
            Ok((t, h)) => {
                keys.merge(t.keys);
                lines.merge(t.lines);
                errors.merge(t.errors);
                handles.push(h);
            }
            Err(_) => errors.add("task-panicked"),
        }
    }
    let usage = meter.stop(target, Instant::now());
    progress.finish().await;
    drop(handles);

    let (k, sorted) = keys.finish();
    let (l, _) = lines.finish();
    let typed = (k.count + l.count) as f64;
    let mut out = Outcome::new(
        &target.label,
        "echo",
        serde_json::to_value(o).unwrap_or_default(),
    );
    out.push("sessions", held as f64, "", Better::Higher);
    out.push(
        "keys_per_s",
        typed / usage.wall_s.max(1e-9),
        "1/s",
        Better::Higher,
    );
    out.push("key_rtt_p50_us", f64::from(k.p50), "µs", Better::Lower);
    out.push("key_rtt_p90_us", f64::from(k.p90), "µs", Better::Lower);
    out.push("key_rtt_p99_us", f64::from(k.p99), "µs", Better::Lower);
    out.push("key_rtt_p999_us", f64::from(k.p999), "µs", Better::Lower);
    out.push("key_rtt_max_us", f64::from(k.max), "µs", Better::Lower);
    out.push("line_rtt_p50_us", f64::from(l.p50), "µs", Better::Lower);
    out.push("line_rtt_p99_us", f64::from(l.p99), "µs", Better::Lower);
    usage.push_into(&mut out, "server_cpu_per_key_us", typed);
    out.errors = errors;
    out.latencies_us = sorted;
    out.latency_label = "echo: keystroke round trip";
    target.settle(base_children, Duration::from_secs(10)).await;
    out
}

/// Types until `deadline`: a letter per tick, Enter every `line` letters (also the
/// `spectate` scenario's watched player).
pub(super) async fn type_keys(
    ch: &mut Channel<Msg>,
    first: tokio::time::Instant,
    deadline: tokio::time::Instant,
    period: Duration,
    line: usize,
    io_timeout: Duration,
    c: &Counters,
) -> Typed {
    const LETTERS: &[u8; 26] = b"abcdefghijklmnopqrstuvwxyz";
    let mut out = Typed::default();
    let mut tick = tokio::time::interval_at(first, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut in_line = 0usize;
    loop {
        tick.tick().await;
        if tokio::time::Instant::now() >= deadline {
            break;
        }
        let (key, expect, is_line): (&'static [u8], usize, bool) = if in_line >= line {
            // PTY echo "\r\n", then cat's copy of the line plus "\r\n".
            let e = 2 + in_line + 2;
            in_line = 0;
            (b"\r", e, true)
        } else {
            let i = in_line % LETTERS.len();
            in_line += 1;
            (LETTERS.get(i..=i).unwrap_or(b"x"), 1, false)
        };
        let t0 = Instant::now();
        if ch.data_bytes(key).await.is_err() {
            out.errors.add("closed:echo");
            c.err();
            break;
        }
        match read_bytes(ch, expect, io_timeout).await {
            Ok(()) => {
                if is_line {
                    out.lines.record(t0.elapsed());
                } else {
                    out.keys.record(t0.elapsed());
                }
                c.ok();
            }
            Err(kind) => {
                out.errors.add(kind);
                c.err();
                if kind == "closed:echo" {
                    break;
                }
                drain_quiet(ch, Duration::from_millis(200), Duration::from_secs(2)).await;
                in_line = 0;
                let _ = ch.data_bytes(&b"\r"[..]).await;
                drain_quiet(ch, Duration::from_millis(200), Duration::from_secs(2)).await;
            }
        }
    }
    out
}

/// Reads until `n` data bytes have arrived.
async fn read_bytes(
    ch: &mut Channel<Msg>,
    n: usize,
    io_timeout: Duration,
) -> Result<(), &'static str> {
    let deadline = tokio::time::Instant::now() + io_timeout;
    let mut got = 0usize;
    let debug = std::env::var_os("LOADTEST_DEBUG").is_some();
    let mut seen = Vec::new();
    while got < n {
        match tokio::time::timeout_at(deadline, ch.wait()).await {
            Ok(Some(ChannelMsg::Data { data })) => {
                got += data.len();
                if debug {
                    seen.extend_from_slice(&data);
                }
            }
            Err(_) if debug => {
                eprintln!(
                    "echo timeout: want {n} bytes, got {got}: {:?}",
                    String::from_utf8_lossy(&seen)
                );
                return Err("timeout:echo");
            }
            Ok(Some(ChannelMsg::Eof | ChannelMsg::Close) | None) => return Err("closed:echo"),
            Ok(Some(_)) => {}
            Err(_) => return Err("timeout:echo"),
        }
    }
    Ok(())
}

/// Discards output until none has come for `quiet` (or `max` passed).
pub(super) async fn drain_quiet(ch: &mut Channel<Msg>, quiet: Duration, max: Duration) {
    let end = tokio::time::Instant::now() + max;
    loop {
        let until = (tokio::time::Instant::now() + quiet).min(end);
        match tokio::time::timeout_at(until, ch.wait()).await {
            Ok(Some(ChannelMsg::Eof | ChannelMsg::Close) | None) | Err(_) => return,
            Ok(Some(_)) => {}
        }
        if tokio::time::Instant::now() >= end {
            return;
        }
    }
}
