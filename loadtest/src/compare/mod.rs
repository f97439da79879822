//! `compare`: start dungeongate, OpenSSH `sshd` and dropbear on loopback with equivalent
//! settings (see [`servers`]), run the same scenarios against each in turn, and print one
//! table with the ratios dungeongate/peer. A peer that is not installed (or cannot run
//! without root) is reported and skipped; the rest are measured. `spectate` runs against
//! dungeongate alone (the peers have no watching) and only when asked for.

pub mod servers;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::ValueEnum as _;
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::PrivateKey;

use crate::report::{self, Outcome};
use crate::scenario::session::RampOpts;
use crate::scenario::{self, echo, idle, spectate, storm, throughput, Kind, Plan};
use crate::target::{Algorithms, Auth, Target, TargetSpec};
use servers::{Env, Skip, BENCH_USER};

/// `compare` options.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Short run (under 2 minutes on a 2-core machine): fewer sessions, shorter windows.
    #[arg(long)]
    pub quick: bool,
    /// Servers to measure, in order (the first is the one ratios are taken for).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "dungeongate,openssh,dropbear"
    )]
    pub servers: Vec<servers::Kind>,
    /// Scenarios to run (default: all but spectate, which only dungeongate can run).
    #[arg(long, value_delimiter = ',')]
    pub scenarios: Vec<Kind>,
    /// The dungeongate binary (default: next to this binary; under `cargo run` it is built
    /// first with the same profile).
    #[arg(long)]
    pub dungeongate: Option<PathBuf>,
    /// dungeongate's `cores` setting (default: auto).
    #[arg(long)]
    pub dg_cores: Option<usize>,
    /// Override: storm seconds.
    #[arg(long, value_parser = scenario::parse_secs)]
    pub storm_seconds: Option<Duration>,
    /// Override: idle sessions.
    #[arg(long)]
    pub idle_sessions: Option<usize>,
    /// Idle sessions sit in a shell (dungeongate's lobby) instead of running the game.
    #[arg(long)]
    pub idle_lobby: bool,
    /// Override: echo sessions.
    #[arg(long)]
    pub echo_sessions: Option<usize>,
    /// Override: echo seconds.
    #[arg(long, value_parser = scenario::parse_secs)]
    pub echo_seconds: Option<Duration>,
    /// `spectate` settings.
    #[command(flatten)]
    pub spectate: SpectateArgs,
}

/// `compare` options of the `spectate` scenario (overrides of the plan).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SpectateArgs {
    /// Override: spectate games (players).
    #[arg(long = "spectate-games")]
    pub games: Option<usize>,
    /// Override: spectate watchers per game.
    #[arg(long = "spectate-watchers")]
    pub watchers: Option<usize>,
    /// Override: frames per second of the stream game.
    #[arg(long = "spectate-hz")]
    pub hz: Option<f64>,
    /// Override: bytes per frame of the stream game.
    #[arg(long = "spectate-bytes")]
    pub bytes: Option<usize>,
    /// Override: seconds measured once the watchers are attached.
    #[arg(long = "spectate-window", value_parser = scenario::parse_secs)]
    pub window: Option<Duration>,
    /// Override: watchers started per second while attaching.
    #[arg(long = "spectate-attach-rate")]
    pub attach_rate: Option<f64>,
    /// Override: watcher logins in flight while attaching.
    #[arg(long = "spectate-in-flight")]
    pub in_flight: Option<usize>,
    /// Override: watchers per game that decrypt and measure (the rest drain; 0: all).
    #[arg(long = "spectate-lag-sample")]
    pub lag_sample: Option<usize>,
    /// Watch games that emit nothing (idle watcher memory).
    #[arg(long = "spectate-idle")]
    pub idle: bool,
    /// One more player types into a watched echo game: key RTT alone and watched.
    #[arg(long = "spectate-probe-player", visible_alias = "probe-player")]
    pub probe_player: bool,
}

/// The plan for `--quick` or the full run, with overrides applied.
pub fn plan(a: &Args) -> Plan {
    let s = |secs: u64| Duration::from_secs(secs);
    let mut p = if a.quick {
        Plan {
            storm: storm::Opts {
                concurrency: 8,
                count: 100_000,
                duration: s(5),
            },
            idle: idle::Opts {
                sessions: 200,
                ramp: RampOpts {
                    in_flight: 16,
                    ramp_timeout: s(25),
                },
                hold: s(2),
                lobby: false,
            },
            echo: echo::Opts {
                sessions: 100,
                rate: 10.0,
                duration: s(5),
                line: 32,
                ramp: RampOpts {
                    in_flight: 16,
                    ramp_timeout: s(25),
                },
            },
            throughput: throughput::Opts {
                duration: s(3),
                ciphers: default_bulk_ciphers(),
                no_pty: false,
            },
            spectate: spectate_plan(200, s(5), s(30)),
        }
    } else {
        Plan {
            storm: storm::Opts {
                concurrency: 16,
                count: 1_000_000,
                duration: s(20),
            },
            idle: idle::Opts {
                sessions: 1000,
                ramp: RampOpts {
                    in_flight: 16,
                    ramp_timeout: s(120),
                },
                hold: s(5),
                lobby: false,
            },
            echo: echo::Opts {
                sessions: 500,
                rate: 10.0,
                duration: s(20),
                line: 32,
                ramp: RampOpts {
                    in_flight: 16,
                    ramp_timeout: s(120),
                },
            },
            throughput: throughput::Opts {
                duration: s(10),
                ciphers: default_bulk_ciphers(),
                no_pty: false,
            },
            spectate: spectate_plan(1000, s(20), s(120)),
        }
    };
    if let Some(d) = a.storm_seconds {
        p.storm.duration = d;
    }
    if let Some(n) = a.idle_sessions {
        p.idle.sessions = n;
    }
    p.idle.lobby = a.idle_lobby;
    if let Some(n) = a.echo_sessions {
        p.echo.sessions = n;
    }
    if let Some(d) = a.echo_seconds {
        p.echo.duration = d;
    }
    let (sp, o) = (&mut p.spectate, &a.spectate);
    sp.games = o.games.unwrap_or(sp.games);
    sp.watchers = o.watchers.unwrap_or(sp.watchers);
    sp.hz = o.hz.unwrap_or(sp.hz);
    sp.bytes = o.bytes.unwrap_or(sp.bytes);
    sp.window = o.window.unwrap_or(sp.window);
    sp.attach_rate = o.attach_rate.unwrap_or(sp.attach_rate);
    sp.attach_in_flight = o.in_flight.unwrap_or(sp.attach_in_flight);
    sp.lag_sample = o.lag_sample.unwrap_or(sp.lag_sample);
    sp.idle = o.idle;
    sp.probe_player = o.probe_player;
    p
}

/// One game at 10 frames/s of 200 bytes (a busy NetHack screen) with `watchers` watchers.
fn spectate_plan(watchers: usize, window: Duration, attach_timeout: Duration) -> spectate::Opts {
    spectate::Opts {
        games: 1,
        watchers,
        hz: 10.0,
        bytes: 200,
        window,
        attach_in_flight: 32,
        attach_rate: 500.0,
        attach_timeout,
        idle: false,
        probe_player: false,
        lag_sample: 0,
        stream_command: servers::STREAM_GAME.to_owned(),
        player_prefix: servers::PLAYER_PREFIX.to_owned(),
    }
}

/// Runs the comparison; returns every outcome (already printed one by one) after printing
/// the side-by-side table.
pub async fn run(a: &Args) -> anyhow::Result<Vec<Outcome>> {
    let plan = plan(a);
    let kinds: Vec<Kind> = if a.scenarios.is_empty() {
        Kind::ALL.to_vec()
    } else {
        a.scenarios.clone()
    };
    let key = Arc::new(new_ed25519_key()?);
    let env = Env {
        public_key: key.public_key().to_openssh()?,
        dungeongate: find_dungeongate(a.dungeongate.clone())?,
        dg_cores: a.dg_cores,
        // The spectate players' accounts (one more for the probe player) and the stream
        // game, only when spectate runs: a hundred accounts take a few seconds to create.
        spectate: kinds.contains(&Kind::Spectate).then(|| servers::Spectate {
            players: plan.spectate.games + 1,
            hz: plan.spectate.hz,
            bytes: plan.spectate.bytes,
        }),
    };
    // Timed from here: building the server (under `cargo run`) is not part of the run.
    let started = Instant::now();
    println!("{}", crate::machine::facts_line());
    println!(
        "client: russh 0.63 (ring), curve25519-sha256, chacha20-poly1305 (throughput: {}), \
         ed25519 user key, TCP_NODELAY + TCP_QUICKACK, sources 127.0.0.2-251",
        plan.throughput.ciphers.join(",")
    );
    let mut outcomes = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    for kind in &a.servers {
        let label = kind.label();
        // The scenarios this server can run; a peer with none (only `spectate` asked for)
        // is not even started.
        let (runs, cannot): (Vec<Kind>, Vec<Kind>) = kinds
            .iter()
            .partition(|k| k.any_server() || *kind == servers::Kind::Dungeongate);
        for k in &cannot {
            let line = format!(
                "{label}: {} not run: it has no watching (dungeongate only)",
                k.to_possible_value()
                    .map_or_else(|| format!("{k:?}"), |v| v.get_name().to_owned())
            );
            println!("{line}");
            notes.push(line);
        }
        if runs.is_empty() {
            continue;
        }
        let server = match tokio::task::block_in_place(|| servers::start(*kind, &env)) {
            Ok(s) => s,
            Err(Skip::Missing(why)) => {
                let line = format!("{label}: not measured: {why}");
                println!("{line}");
                notes.push(line);
                continue;
            }
            Err(Skip::Failed(e)) => {
                let line = format!("{label}: failed to start: {e:#}");
                println!("{line}");
                notes.push(line);
                continue;
            }
        };
        println!(
            "{}: {} on {} (pid {})",
            server.kind.label(),
            server.version,
            server.addr,
            server.pid
        );
        let target = Arc::new(Target::new(TargetSpec {
            label: label.to_owned(),
            addr: server.addr,
            user: BENCH_USER.to_owned(),
            auth: Auth::Key(key.clone()),
            sources: 250,
            algorithms: Algorithms::default(),
            io_timeout: Duration::from_secs(10),
            server_pid: Some(server.pid),
            // `loadtest` is the stream game (this binary, run by dungeongate for spectate).
            game_comms: vec!["cat".to_owned(), "loadtest".to_owned()],
            echo_command: "cat".to_owned(),
            bulk_command: "bulk".to_owned(),
        })?);
        for k in &runs {
            let o = scenario::run(*k, &target, &plan).await;
            report::print_outcome(&o);
            outcomes.push(o);
        }
        tokio::task::block_in_place(|| drop(server));
    }
    let first = a
        .servers
        .first()
        .map_or("dungeongate", |k| k.label())
        .to_owned();
    let all: Vec<String> = a.servers.iter().map(|k| k.label().to_owned()).collect();
    println!();
    println!(
        "== compare{} ({:.0} s){}",
        if a.quick { " --quick" } else { "" },
        started.elapsed().as_secs_f64(),
        if !notes.is_empty() {
            format!("; {}", notes.join("; "))
        } else {
            String::new()
        }
    );
    print!("{}", report::comparison_table(&outcomes, &all, &first));
    Ok(outcomes)
}

/// The throughput scenario's cipher preference: fastest first; every server here has GCM
/// or falls back to chacha20-poly1305.
fn default_bulk_ciphers() -> Vec<String> {
    vec![
        "aes128-gcm@openssh.com".into(),
        "aes256-gcm@openssh.com".into(),
        "chacha20-poly1305@openssh.com".into(),
    ]
}

/// A fresh ed25519 client key (seed from the kernel's CSPRNG).
fn new_ed25519_key() -> anyhow::Result<PrivateKey> {
    use std::io::Read as _;
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut seed)?;
    let key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    seed.fill(0);
    Ok(key)
}

/// Locates (and under `cargo run`, builds) the dungeongate binary.
fn find_dungeongate(given: Option<PathBuf>) -> anyhow::Result<Option<PathBuf>> {
    if let Some(p) = given {
        return Ok(Some(p));
    }
    let exe = std::env::current_exe()?;
    let Some(dir) = exe.parent() else {
        return Ok(None);
    };
    let sibling = dir.join("dungeongate");
    // Under `cargo run -p loadtest`, cargo builds only this package: build the server with the
    // same profile (a no-op when it is up to date) so the comparison never runs a stale binary.
    if let (Ok(cargo), Ok(manifest)) = (std::env::var("CARGO"), std::env::var("CARGO_MANIFEST_DIR"))
    {
        let release = dir.file_name().is_some_and(|n| n == "release");
        let mut cmd = std::process::Command::new(cargo);
        cmd.args(["build", "--bin", "dungeongate"]);
        if release {
            cmd.arg("--release");
        }
        let workspace = PathBuf::from(manifest)
            .parent()
            .map(PathBuf::from)
            .unwrap_or_default();
        eprintln!(
            "building dungeongate ({})",
            if release { "release" } else { "debug" }
        );
        let status = cmd.current_dir(workspace).status()?;
        if !status.success() {
            if !sibling.exists() {
                anyhow::bail!("cargo build --bin dungeongate failed ({status})");
            }
            eprintln!(
                "warning: cargo build --bin dungeongate failed ({status}); measuring the \
                 existing {} (it may be stale)",
                sibling.display()
            );
        }
    }
    Ok(sibling.exists().then_some(sibling))
}
