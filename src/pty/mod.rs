//! Pseudo-terminals for games (Linux only): open a PTY pair, run a program on its slave side as a
//! session leader with the slave as controlling terminal, and track the child by pidfd.
//!
//! The master fd is `O_NONBLOCK` so an io_uring read on it waits by poll instead of parking a
//! kernel worker thread per idle PTY. Signals names follow RFC 4254 §6.10 (`signal` requests).
//! A game never runs as root: when the server is root, [`SpawnSpec::run_as`] is mandatory and
//! uid 0 / gid 0 are refused.

mod child;
pub mod fdlimit;
mod identity;
mod open;
mod rlimit;
mod spawn;

use std::ffi::OsString;
use std::path::PathBuf;

pub use child::PtyChild;
pub use identity::{game_groups, lookup_run_as, suid_dumpable_is_unsafe};
pub use nix::sys::signal::Signal;
pub use spawn::spawn;

/// One `write(2)` to a PTY master, however the master is held. The masters this module opens
/// are non-blocking, so this never waits: a full terminal is `WouldBlock`.
pub fn write_master(master: &impl std::os::fd::AsRawFd, data: &[u8]) -> std::io::Result<usize> {
    // SAFETY: `master` owns an open descriptor and is borrowed for the whole call.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(master.as_raw_fd()) };
    nix::unistd::write(fd, data).map_err(std::io::Error::from)
}

/// One `read(2)` from a PTY master, however the master is held; never waits (the masters this
/// module opens are non-blocking): no output yet is `WouldBlock`, a closed terminal `EIO`.
pub fn read_master(master: &impl std::os::fd::AsRawFd, buf: &mut [u8]) -> std::io::Result<usize> {
    // SAFETY: `master` owns an open descriptor and is borrowed for the whole call.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(master.as_raw_fd()) };
    nix::unistd::read(fd, buf).map_err(std::io::Error::from)
}

/// Sets the terminal size of a PTY through its master (`TIOCSWINSZ`), however the master is
/// held (the reactor's game table); the kernel sends SIGWINCH to the game.
pub fn resize(master: &impl std::os::fd::AsRawFd, size: WinSize) -> std::io::Result<()> {
    // SAFETY: `master` owns an open descriptor and is borrowed for the whole call.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(master.as_raw_fd()) };
    open::set_winsize(fd, size)
}

/// Terminal size as carried by an SSH `pty-req` / `window-change` (RFC 4254 §6.2, §6.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WinSize {
    /// Width in character cells; what curses programs lay out against.
    pub cols: u16,
    /// Height in character cells.
    pub rows: u16,
    /// Width in pixels (0 when the client does not say); passed through for sixel-aware programs.
    pub px_width: u16,
    /// Height in pixels (0 when unknown).
    pub px_height: u16,
}

/// Resource limits applied in the child before exec; `None` leaves the inherited limit alone.
/// Each `Some` value becomes both the soft and the hard limit, so the game cannot raise it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rlimits {
    /// `RLIMIT_CORE`: 0 stops crashing games from littering core files.
    pub core_bytes: Option<u64>,
    /// `RLIMIT_CPU`: bounds a runaway game's CPU time.
    pub cpu_seconds: Option<u64>,
    /// `RLIMIT_NPROC`: bounds fork bombs of the game's user.
    pub nproc: Option<u64>,
    /// `RLIMIT_AS`: bounds a game's address space.
    pub address_space_bytes: Option<u64>,
}

/// The unprivileged account a game runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    /// User id passed to `setuid` in the child.
    pub uid: u32,
    /// Primary group id passed to `setgid` in the child.
    pub gid: u32,
    /// Login name; used to look up supplementary groups (`getgrouplist`).
    pub name: String,
    /// Home directory from passwd; callers typically put it in `HOME`.
    pub home: PathBuf,
}

/// Everything needed to start one game in a fresh PTY.
#[derive(Debug, Clone)]
pub struct SpawnSpec {
    /// Program to execute (absolute path recommended; otherwise looked up in `env`'s `PATH`).
    pub program: PathBuf,
    /// Arguments after argv\[0\].
    pub args: Vec<OsString>,
    /// The child's complete environment: it is cleared and set exactly to this.
    pub env: Vec<(OsString, OsString)>,
    /// Working directory, entered after dropping privileges; `None` inherits the server's.
    pub cwd: Option<PathBuf>,
    /// Initial window size, set before exec so the game's first draw fits.
    pub size: WinSize,
    /// Account to run as; mandatory when the server runs as root.
    pub run_as: Option<RunAs>,
    /// Resource limits applied before exec.
    pub rlimits: Rlimits,
}

/// How a game process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Normal exit with this status code.
    Exited(i32),
    /// Killed by this signal number.
    Signaled(i32),
}

/// Errors from opening a PTY or starting a game in it.
#[derive(Debug, thiserror::Error)]
pub enum PtyError {
    /// Opening or configuring the PTY pair failed.
    #[error("cannot open a pty: {0}")]
    Open(#[source] std::io::Error),
    /// The server runs as root and no `run_as` account was given.
    #[error(
        "refusing to run a game as root: the server runs as root, so a run_as user is required"
    )]
    RootWithoutRunAs,
    /// The `run_as` account is root (uid 0), in group 0, or has group 0 as a supplementary group.
    #[error("refusing to run a game as root: run_as account {name:?} has uid 0 or gid 0")]
    RunAsRoot {
        /// The offending account name.
        name: String,
    },
    /// Switching to another user needs root and the server is not root.
    #[error("cannot switch to user {name:?}: the server is not running as root")]
    NotPermitted {
        /// The requested account name.
        name: String,
    },
    /// No such user in passwd.
    #[error("unknown user {0:?}")]
    UnknownUser(String),
    /// The passwd or group database could not be read.
    #[error("user database lookup failed: {0}")]
    Lookup(#[source] nix::Error),
    /// A path or name contains a NUL byte and cannot be passed to the kernel.
    #[error("{0} contains a NUL byte")]
    Nul(&'static str),
    /// clone/exec or a pre-exec step (setsid, TIOCSCTTY, rlimits, setuid, chdir) failed.
    #[error("cannot start {program:?}: {source}")]
    Spawn {
        /// The program that failed to start.
        program: PathBuf,
        /// The OS error from the failing step.
        #[source]
        source: std::io::Error,
    },
    /// `pidfd_open` on the new child failed (the child has been killed).
    #[error("pidfd_open failed: {0}")]
    Pidfd(#[source] std::io::Error),
}

/// Maps an RFC 4254 §6.10 signal name (without the `SIG` prefix) to a signal.
pub fn signal_from_ssh_name(name: &str) -> Option<Signal> {
    Some(match name {
        "ABRT" => Signal::SIGABRT,
        "ALRM" => Signal::SIGALRM,
        "FPE" => Signal::SIGFPE,
        "HUP" => Signal::SIGHUP,
        "ILL" => Signal::SIGILL,
        "INT" => Signal::SIGINT,
        "KILL" => Signal::SIGKILL,
        "PIPE" => Signal::SIGPIPE,
        "QUIT" => Signal::SIGQUIT,
        "SEGV" => Signal::SIGSEGV,
        "TERM" => Signal::SIGTERM,
        "USR1" => Signal::SIGUSR1,
        "USR2" => Signal::SIGUSR2,
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
