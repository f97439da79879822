//! `loadtest`: measures what an SSH server can take, with an independent client (`russh`, not
//! dungeongate's own SSH core, so a bug on our side cannot hide behind the same bug on theirs).
//!
//! # Layout
//!
//! * [`scenario`]: `storm`, `idle`, `echo`, `throughput`, `spectate` — each bounded in count
//!   and time, with a progress line; one [`report::Outcome`] each.
//! * [`stream_game`]: the game `spectate` watches (`loadtest stream-game`, run by the server).
//! * [`compare`]: starts dungeongate, OpenSSH and dropbear on loopback and runs the scenarios
//!   against each, then prints the side-by-side table with dungeongate/peer ratios.
//! * [`target`]: one server and how to reach it (russh client, credentials, algorithms);
//!   [`net`]: the TCP side (loopback source addresses, `TCP_NODELAY`, `TCP_QUICKACK`).
//! * [`proc`]: server CPU (schedstat) and PSS of its process tree, games apart; client CPU.
//! * [`report`], [`chart`], [`stats`], [`progress`], [`machine`]: output.

mod chart;
mod compare;
mod machine;
mod net;
mod proc;
mod progress;
mod report;
mod scenario;
mod stats;
mod stream_game;
mod target;

use std::net::{SocketAddr, ToSocketAddrs as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use clap::{Parser, Subcommand};

use scenario::{echo, idle, spectate, storm, throughput, Kind, Plan};
use target::{Algorithms, Auth, Target, TargetSpec};

#[derive(Parser)]
#[command(
    name = "loadtest",
    about = "Load an SSH server (dungeongate, OpenSSH, dropbear, any) with an independent client"
)]
struct Cli {
    /// Append one JSON line per result to FILE.
    #[arg(long, global = true)]
    json: Option<PathBuf>,
    /// Write an SVG chart of the latency distributions to FILE.
    #[arg(long, global = true)]
    svg: Option<PathBuf>,
    /// Client worker threads (default: one per CPU).
    #[arg(long, global = true)]
    threads: Option<usize>,
    /// Exit non-zero if any operation failed (for CI).
    #[arg(long, global = true)]
    strict: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Connect → handshake → auth → open a session → close, in a loop.
    Storm {
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        opts: storm::Opts,
    },
    /// Hold many authenticated sessions with a PTY running the game.
    Idle {
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        opts: idle::Opts,
    },
    /// Type at a human rate into an echoing game and measure round trips.
    Echo {
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        opts: echo::Opts,
    },
    /// Receive a bulk stream on one session.
    Throughput {
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        opts: throughput::Opts,
    },
    /// Hostile connections of one kind next to legitimate logins (bounded in time).
    Flood {
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        opts: scenario::flood::Opts,
    },
    /// Watchers of streaming games: lag, missed frames, server CPU and memory per watcher
    /// (dungeongate only).
    Spectate {
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        opts: spectate::Opts,
    },
    /// Start dungeongate, OpenSSH sshd and dropbear on loopback and compare them.
    Compare(compare::Args),
    /// The game `spectate` watches: timed frames on stdout until stdin ends or SIGHUP.
    #[command(hide = true)]
    StreamGame(stream_game::Opts),
}

/// Where the server is and how to log in.
#[derive(Debug, Clone, clap::Args)]
struct TargetArgs {
    /// Server host.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Server port.
    #[arg(long)]
    port: u16,
    /// SSH user.
    #[arg(long)]
    user: String,
    /// Password (or set LOADTEST_PASSWORD).
    #[arg(
        long,
        env = "LOADTEST_PASSWORD",
        hide_env_values = true,
        conflicts_with = "key"
    )]
    password: Option<String>,
    /// OpenSSH private key file (unencrypted).
    #[arg(long)]
    key: Option<PathBuf>,
    /// The server's pid, to read its CPU and memory from /proc.
    #[arg(long)]
    server_pid: Option<i32>,
    /// Command name of the game processes (reported apart from the server); repeatable.
    #[arg(long = "game-comm", default_value = "cat")]
    game_comms: Vec<String>,
    /// Spread connections over this many 127.0.0.x source addresses (loopback targets).
    #[arg(long, default_value_t = 250)]
    sources: usize,
    /// Key exchange algorithms to offer (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "curve25519-sha256")]
    kex: Vec<String>,
    /// Ciphers to offer (comma-separated).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "chacha20-poly1305@openssh.com"
    )]
    cipher: Vec<String>,
    /// Exec command that starts the echoing game.
    #[arg(long, default_value = "cat")]
    echo_command: String,
    /// Exec command that starts the bulk-output game.
    #[arg(long, default_value = "bulk")]
    bulk_command: String,
    /// Seconds allowed for each connection stage or reply.
    #[arg(long, default_value = "10", value_parser = scenario::parse_secs)]
    io_timeout: Duration,
    /// Name for the server in tables and JSON (default: HOST:PORT).
    #[arg(long)]
    label: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Cmd::StreamGame(o) = &cli.cmd {
        // A game in a server's PTY: no runtime, no threads beyond its own.
        return stream_game::run(o);
    }
    raise_nofile();
    let threads = cli.threads.unwrap_or_else(machine::nproc).max(1);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadtest: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("loadtest: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the command; the exit code says whether every scenario produced a result (and, with
/// `--strict`, whether nothing failed).
async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let outcomes = match cli.cmd {
        Cmd::Compare(a) => compare::run(&a).await?,
        Cmd::Storm { target, opts } => single(&target, Kind::Storm, |p| p.storm = opts).await?,
        Cmd::Idle { target, opts } => single(&target, Kind::Idle, |p| p.idle = opts).await?,
        Cmd::Echo { target, opts } => single(&target, Kind::Echo, |p| p.echo = opts).await?,
        Cmd::Flood { target, opts } => {
            let target = Arc::new(build_target(&target)?);
            let o = scenario::flood::run(&target, &opts).await;
            report::print_outcome(&o);
            vec![o]
        }
        Cmd::Throughput { target, opts } => {
            single(&target, Kind::Throughput, |p| p.throughput = opts).await?
        }
        Cmd::Spectate { target, opts } => {
            single(&target, Kind::Spectate, |p| p.spectate = opts).await?
        }
        Cmd::StreamGame(o) => return Ok(stream_game::run(&o)),
    };
    if let Some(path) = &cli.json {
        report::write_json(path, &outcomes).with_context(|| format!("write {}", path.display()))?;
    }
    if let Some(path) = &cli.svg {
        if chart::write_svg(path, &outcomes).with_context(|| format!("write {}", path.display()))? {
            eprintln!("chart: {}", path.display());
        }
    }
    let empty = outcomes.iter().any(|o| o.metrics.is_empty());
    let failed = outcomes.iter().any(|o| o.errors.total() > 0);
    Ok(if empty || outcomes.is_empty() || (cli.strict && failed) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Runs one scenario against a server given on the command line.
async fn single(
    args: &TargetArgs,
    kind: Kind,
    set: impl FnOnce(&mut Plan),
) -> anyhow::Result<Vec<report::Outcome>> {
    let target = Arc::new(build_target(args)?);
    let mut plan = compare::plan(&compare_defaults());
    set(&mut plan);
    let o = scenario::run(kind, &target, &plan).await;
    report::print_outcome(&o);
    Ok(vec![o])
}

/// Placeholder `compare` arguments (only to get a default plan to override).
fn compare_defaults() -> compare::Args {
    compare::Args {
        quick: true,
        servers: Vec::new(),
        scenarios: Vec::new(),
        dungeongate: None,
        dg_cores: None,
        storm_seconds: None,
        idle_sessions: None,
        idle_lobby: false,
        echo_sessions: None,
        echo_seconds: None,
        spectate: compare::SpectateArgs::default(),
    }
}

/// Resolves the address and loads credentials.
fn build_target(a: &TargetArgs) -> anyhow::Result<Target> {
    let addr: SocketAddr = (a.host.as_str(), a.port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| anyhow!("{} resolves to nothing", a.host))?;
    let auth = match (&a.password, &a.key) {
        (_, Some(path)) => Auth::Key(Arc::new(
            russh::keys::load_secret_key(path, None)
                .with_context(|| format!("load key {}", path.display()))?,
        )),
        (Some(pw), None) => Auth::Password(pw.clone()),
        (None, None) => return Err(anyhow!("give --password or --key")),
    };
    Target::new(TargetSpec {
        label: a.label.clone().unwrap_or_else(|| addr.to_string()),
        addr,
        user: a.user.clone(),
        auth,
        sources: a.sources,
        algorithms: Algorithms {
            kex: a.kex.clone(),
            ciphers: a.cipher.clone(),
        },
        io_timeout: a.io_timeout,
        server_pid: a.server_pid,
        game_comms: a.game_comms.clone(),
        echo_command: a.echo_command.clone(),
        bulk_command: a.bulk_command.clone(),
    })
}

/// Raises the open-file limit to the hard limit (servers started by `compare` inherit it).
fn raise_nofile() {
    // SAFETY: getrlimit/setrlimit on a zeroed struct we own.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}
