//! `flood`: N hostile connections of one kind, from many loopback source addresses, run next to
//! a loop of legitimate logins for a bounded time. Reports the legitimate logins' success rate
//! and p50/p99, the server's memory (PSS) before, at its peak during and after the flood, and
//! (with `--metrics-port`) the server's refusals by reason.
//!
//! Kinds:
//! * `silent` — connect and send nothing (held until the server closes, then again);
//! * `never-reading` — log in as a guest, then send requests the server must answer
//!   (keepalives that want a reply) and never read a byte;
//! * `guess` — password guessing on the target's user, with wrong passwords, again and again.
//!
//! The hostile clients drive dungeongate's own sans-io SSH client over tokio sockets (they need
//! to misbehave in ways no real client does); the legitimate logins use the harness's
//! independent russh client, as every other scenario does.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dungeongate::ssh::client::{Client, ClientAuth, ClientConfig, ClientEvent};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::storm::{cycle, ser_secs};
use crate::report::{Better, Outcome};
use crate::stats::{Errors, Latencies};
use crate::target::Target;

/// What the hostile connections do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Hostile {
    Silent,
    NeverReading,
    Guess,
}

/// `flood` settings.
#[derive(Debug, Clone, Serialize, clap::Args)]
pub struct Opts {
    /// What the hostile connections do.
    #[arg(long = "hostile", value_enum, default_value = "silent")]
    pub hostile: Hostile,
    /// Hostile connections held at once.
    #[arg(long = "connections", default_value_t = 1000)]
    pub connections: usize,
    /// Source addresses they come from (127.1.x.y, apart from the legitimate ones).
    #[arg(long = "hostile-sources", default_value_t = 500)]
    pub hostile_sources: usize,
    /// Concurrent legitimate login loops.
    #[arg(long = "legit-concurrency", default_value_t = 2)]
    pub legit_concurrency: usize,
    /// How long the flood runs.
    #[arg(long = "duration", default_value = "20", value_parser = super::parse_secs)]
    #[serde(serialize_with = "ser_secs")]
    pub duration: Duration,
    /// The server's HTTP port, to read its refusal counters (optional).
    #[arg(long = "metrics-port")]
    pub metrics_port: Option<u16>,
}

/// Runs the flood.
pub async fn run(target: &Arc<Target>, o: &Opts) -> Outcome {
    let start = Instant::now();
    let deadline = start + o.duration;
    let pss = |t: &Target| t.sample(true).map(|s| s.server_pss_kib as f64 / 1024.0);
    let pss_before = pss(target);
    let metrics_before = match o.metrics_port {
        Some(p) => scrape(target.addr.ip(), p).await,
        None => BTreeMap::new(),
    };
    let opened = Arc::new(AtomicU64::new(0));
    let mut hostile = tokio::task::JoinSet::new();
    for i in 0..o.connections {
        let source = hostile_source(i % o.hostile_sources.max(1));
        let (addr, user, kind, opened) =
            (target.addr, target.user.clone(), o.hostile, opened.clone());
        hostile.spawn(async move {
            while Instant::now() < deadline {
                opened.fetch_add(1, Ordering::Relaxed);
                let _ = tokio::time::timeout_at(
                    deadline.into(),
                    hostile_connection(addr, source, &user, kind),
                )
                .await;
                // A refused or closed connection comes back, a little later.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
    }
    // The legitimate logins run on a runtime of their own (one thread), so that what they
    // measure is the server, not this process's queue of thousands of hostile tasks.
    let legit_target = target.clone();
    let legit_concurrency = o.legit_concurrency.max(1);
    let legit = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        Some(rt.block_on(async move {
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..legit_concurrency {
                let t = legit_target.clone();
                set.spawn(async move {
                    let (mut lat, mut errors, mut ok) =
                        (Latencies::default(), Errors::default(), 0u64);
                    // Give the hostile connections a moment to pile up first.
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    while Instant::now() < deadline {
                        let t0 = Instant::now();
                        match cycle(&t).await {
                            Ok(()) => {
                                ok += 1;
                                lat.record(t0.elapsed());
                            }
                            Err(f) => errors.add(&f.kind()),
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    (lat, errors, ok)
                });
            }
            let (mut lat, mut errors, mut ok) = (Latencies::default(), Errors::default(), 0u64);
            while let Some(j) = set.join_next().await {
                if let Ok((l, e, n)) = j {
                    lat.merge(l);
                    errors.merge(e);
                    ok += n;
                }
            }
            (lat, errors, ok)
        }))
    });
    let mut peak = pss_before.unwrap_or(0.0);
    while Instant::now() < deadline {
        if let Some(p) = pss(target) {
            peak = peak.max(p);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let legit = tokio::task::spawn_blocking(move || legit.join().ok().flatten()).await;
    let (lat, errors, ok) = match legit {
        Ok(Some(r)) => r,
        _ => {
            let mut e = Errors::default();
            e.add("legit-runtime-failed");
            (Latencies::default(), e, 0)
        }
    };
    hostile.abort_all();
    while hostile.join_next().await.is_some() {}
    let metrics_after = match o.metrics_port {
        Some(p) => scrape(target.addr.ip(), p).await,
        None => BTreeMap::new(),
    };
    // Memory after: the server has closed what the flood left behind.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pss_after = pss(target);

    let mut out = Outcome::new(
        &target.label,
        "flood",
        serde_json::to_value(o).unwrap_or_default(),
    );
    let attempts = ok + errors.total();
    let (summary, sorted) = lat.finish();
    out.push("legit_logins", ok as f64, "", Better::Higher);
    out.push(
        "legit_success_pct",
        if attempts > 0 {
            ok as f64 * 100.0 / attempts as f64
        } else {
            0.0
        },
        "%",
        Better::Higher,
    );
    out.push_p50_p99_ms(["legit_p50_ms", "legit_p99_ms"], &summary);
    out.push(
        "hostile_connections_opened",
        opened.load(Ordering::Relaxed) as f64,
        "",
        Better::Info,
    );
    if let Some(b) = pss_before {
        out.push("server_pss_before_mib", b, "MiB", Better::Info);
        out.push("server_pss_peak_mib", peak, "MiB", Better::Lower);
    }
    if let Some(a) = pss_after {
        out.push("server_pss_after_mib", a, "MiB", Better::Info);
    }
    for (series, after) in &metrics_after {
        let before = metrics_before.get(series).copied().unwrap_or(0.0);
        if after - before > 0.0 {
            // Leaked so the table shows them: names are fixed by the server's catalogue.
            let name: &'static str = Box::leak(series.clone().into_boxed_str());
            out.push(name, after - before, "", Better::Info);
        }
    }
    out.errors = errors;
    out.latencies_us = sorted;
    out.latency_label = "flood: legitimate connect→auth→session→close during the flood";
    out
}

/// Hostile source number `i`: 127.1.x.y (never one of the legitimate 127.0.0.x).
fn hostile_source(i: usize) -> IpAddr {
    let n = i as u32 + 1;
    IpAddr::from([127, 1, (n >> 8) as u8, (n & 0xFF) as u8])
}

/// One hostile connection, until the server closes it (or the caller's deadline).
async fn hostile_connection(addr: SocketAddr, source: IpAddr, user: &str, kind: Hostile) {
    let Ok(sock) = tokio::net::TcpSocket::new_v4() else {
        return;
    };
    if sock.bind(SocketAddr::new(source, 0)).is_err() {
        return;
    }
    let Ok(mut stream) = sock.connect(addr).await else {
        return;
    };
    match kind {
        Hostile::Silent => {
            let mut buf = [0u8; 4096];
            while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
        }
        Hostile::NeverReading => {
            let mut cfg = ClientConfig::new("floodguest", ClientAuth::None);
            cfg.open_session = false;
            let mut c = Client::new(cfg);
            if !drive(&mut stream, &mut c, |c| {
                c.events.contains(&ClientEvent::AuthSuccess)
            })
            .await
            {
                return;
            }
            // Requests the server must answer, never reading the answers: the writes stop
            // once the server stops reading us.
            let mut keepalive = Vec::new();
            dungeongate::ssh::msg::encode_global_request(
                &mut keepalive,
                "keepalive@openssh.com",
                true,
            );
            let mut burst = Vec::new();
            for _ in 0..4096 {
                c.send_raw_payload(&keepalive);
            }
            c.poll_transmit(&mut burst);
            loop {
                if stream.write_all(&burst).await.is_err() {
                    return;
                }
                for _ in 0..4096 {
                    c.send_raw_payload(&keepalive);
                }
                burst.clear();
                c.poll_transmit(&mut burst);
            }
        }
        Hostile::Guess => {
            let mut n = 0u32;
            let mut cfg = ClientConfig::new(user, ClientAuth::Password(format!("guess-{n}")));
            cfg.open_session = false;
            let mut c = Client::new(cfg);
            loop {
                let failures = c
                    .events
                    .iter()
                    .filter(|e| matches!(e, ClientEvent::AuthFailure(_)))
                    .count();
                if !drive(&mut stream, &mut c, |c| {
                    c.events
                        .iter()
                        .filter(|e| matches!(e, ClientEvent::AuthFailure(_)))
                        .count()
                        > failures
                })
                .await
                {
                    return;
                }
                n += 1;
                let mut req = Vec::new();
                dungeongate::ssh::msg::encode_userauth_request_password(
                    &mut req,
                    user,
                    &format!("guess-{n}"),
                );
                c.send_raw_payload(&req);
            }
        }
    }
}

/// Moves bytes between `c` and the server until `done` (true) or the connection ends (false).
async fn drive(stream: &mut TcpStream, c: &mut Client, done: impl Fn(&Client) -> bool) -> bool {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let mut out = Vec::new();
        c.poll_transmit(&mut out);
        if !out.is_empty() && stream.write_all(&out).await.is_err() {
            return false;
        }
        if done(c) {
            return true;
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => {
                if c.handle_input(buf.get(..n).unwrap_or_default()).is_err() {
                    return false;
                }
            }
        }
    }
}

/// The server's refusal and failure counters, by series (`name{labels}` → value).
async fn scrape(ip: IpAddr, port: u16) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let Ok(mut s) = TcpStream::connect((ip, port)).await else {
        return out;
    };
    if s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .is_err()
    {
        return out;
    }
    let mut body = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut body)).await;
    for line in body.lines() {
        let wanted = line.starts_with("connections_rejected_total{")
            || line.starts_with("auth_failed_logins_total{");
        if let (true, Some((series, value))) = (wanted, line.rsplit_once(' ')) {
            if let Ok(v) = value.parse::<f64>() {
                out.insert(series.to_owned(), v);
            }
        }
    }
    out
}
