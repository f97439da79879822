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
        Command::Serve => match serve(config) {
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

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour codes only for a person at a terminal: in a file or a journal they are noise,
    // and a log line must carry nothing that acts on the terminal of whoever reads it.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn serve(config: Config) -> anyhow::Result<()> {
    init_logging(&config);
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
            signal_hook::consts::SIGHUP => {
                tracing::warn!("SIGHUP: configuration reload is not implemented yet; ignoring");
            }
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
