//! The `dungeongate` command: `serve` (the default), `user …`, `ttyrec …`, `check-config`,
//! and the built-in games (`builtin-game NAME`, run by the server inside a PTY).

use anyhow::Context;
use clap::{Parser, Subcommand};
use dungeongate::config::{Config, LogFormat};
use dungeongate::{reactor, usercli};
use std::path::PathBuf;
use std::process::ExitCode;

/// mimalloc gives freed memory back to the system on its own (pages purged shortly after
/// they empty), where glibc's malloc keeps it: 10,000 lobby sessions that went quiet and
/// gave their buffers back measured 14.4 KiB PSS each with glibc and ~8 with malloc_trim,
/// which stalled a core 15–30 ms per call on a large heap. See README "Performance".
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "dungeongate", version, about = "Terminal games over plain ssh")]
struct Cli {
    /// Configuration file (default: ./config.yaml if present, else the built-in default).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Manage accounts (safe while the server runs).
    User {
        #[command(subcommand)]
        cmd: usercli::UserCommand,
    },
    /// Orders for the running server (through its admin socket; run as its user).
    Admin {
        #[command(subcommand)]
        cmd: dungeongate::admincli::AdminCommand,
    },
    /// Inspect game recordings (needs no configuration).
    Ttyrec {
        #[command(subcommand)]
        cmd: dungeongate::ttyrec::cli::TtyrecCommand,
    },
    /// Validate the configuration and check what `serve` would find on this machine (run_as,
    /// data and recording directories, games); exit 2 for a bad file, 1 when serve would not
    /// start.
    CheckConfig,
    /// Run a built-in game on this terminal (used by the server).
    #[command(hide = true)]
    BuiltinGame {
        name: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// Exit code for configuration errors.
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::BuiltinGame { name, args }) = &cli.command {
        return match name.as_str() {
            "amulet" => match dungeongate::minigame::run(args) {
                Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
                Err(e) => {
                    eprintln!("amulet: {e}");
                    ExitCode::FAILURE
                }
            },
            other => {
                eprintln!("no built-in game named {other:?}");
                ExitCode::from(EXIT_CONFIG)
            }
        };
    }
    if let Some(Command::Ttyrec { cmd }) = &cli.command {
        return dungeongate::ttyrec::cli::run(cmd);
    }
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("dungeongate: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => match serve(config, cli.config.clone()) {
            Err(e) if is_unsupported(&e) => {
                eprintln!("dungeongate: {e:#}");
                return ExitCode::from(EXIT_CONFIG);
            }
            other => other,
        },
        Command::User {
            cmd: usercli::UserCommand::Saves(args),
        } => usercli::saves::run(args, &config),
        Command::User { cmd } => {
            let params = dungeongate::auth::PasswordParams {
                memory_kib: config.password.memory_kib,
                iterations: config.password.iterations,
                parallelism: config.password.parallelism,
            };
            let dir = dungeongate::datadir::accounts_dir(&config.data_dir);
            dungeongate::datadir::ensure(&config.data_dir)
                .with_context(|| format!("cannot create {}", config.data_dir.display()))
                .and_then(|()| usercli::run(cmd, &dir, params))
        }
        Command::Admin { cmd } => {
            dungeongate::admincli::run(cmd, &config.data_dir, &mut std::io::stdout().lock())
        }
        Command::CheckConfig => {
            println!(
                "configuration is valid: ssh {}, http {}, {} data cores, {} games",
                list(&config.ssh.listen),
                list(&config.http.listen),
                config.cores,
                config.games.len()
            );
            let report = dungeongate::config::check::check(&config);
            for finding in &report.findings {
                println!("{finding}");
            }
            println!("{}", report.summary());
            // Status 1, as `serve` exits when it cannot start; 2 stays "the file is wrong".
            if report.count(dungeongate::config::check::Level::Error) > 0 {
                return ExitCode::FAILURE;
            }
            Ok(())
        }
        Command::BuiltinGame { .. } | Command::Ttyrec { .. } => Ok(()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dungeongate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Sets the log level anew (a configuration reload).
type SetLogLevel = Box<dyn Fn(&str) -> Result<(), String>>;

fn init_logging(config: &Config) -> SetLogLevel {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    // Colour codes only for a person at a terminal: in a file or a journal they are noise,
    // and a log line must carry nothing that acts on the terminal of whoever reads it.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let registry = tracing_subscriber::registry().with(filter);
    match config.log.format {
        LogFormat::Json => registry.with(fmt.json()).init(),
        LogFormat::Text => registry.with(fmt).init(),
    }
    Box::new(move |level: &str| {
        let filter = tracing_subscriber::EnvFilter::try_new(level).map_err(|e| e.to_string())?;
        handle.reload(filter).map_err(|e| e.to_string())
    })
}

/// SIGHUP: read the configuration file again, as at start; a valid one takes effect for
/// what can change while running, an invalid one changes nothing.
fn reload(server: &reactor::Server, path: Option<&std::path::Path>, set_level: &SetLogLevel) {
    let new = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("configuration reload refused, the running configuration stays: {e}");
            return;
        }
    };
    let plan = server.reload(new);
    for key in &plan.needs_restart {
        tracing::warn!(key = %key, "configuration changed, but this takes effect only after a restart");
    }
    if plan.changed.contains(&"log.level") {
        if let Err(e) = set_level(&plan.config.log.level) {
            tracing::warn!(error = %e, "the new log level could not be applied");
        }
    }
    tracing::info!(changed = ?plan.changed, "configuration reloaded");
}

fn serve(config: Config, path: Option<std::path::PathBuf>) -> anyhow::Result<()> {
    let set_level = init_logging(&config);
    // Block the signals we handle before any thread starts, so they reach the waiter below.
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ])
    .context("cannot install signal handlers")?;
    let server = reactor::start(config).context("cannot start")?;
    for addr in &server.ssh_addrs {
        println!("ssh listening on {addr}");
    }
    for addr in &server.http_addrs {
        println!("http listening on {addr}");
    }
    tracing::info!(addrs = ?server.ssh_addrs, "dungeongate started");
    for sig in signals.forever() {
        match sig {
            signal_hook::consts::SIGHUP => reload(&server, path.as_deref(), &set_level),
            _ => {
                tracing::info!("shutting down");
                server.stop();
                break;
            }
        }
    }
    server.join();
    Ok(())
}

/// The kernel lacks what the reactor needs: said, and exit status 2 like a bad config.
fn is_unsupported(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<reactor::StartError>(),
        Some(reactor::StartError::Unsupported(_))
    )
}

/// Addresses as `a, b, c`.
fn list(addrs: &[std::net::SocketAddr]) -> String {
    addrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
