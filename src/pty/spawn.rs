//! Starting a game on a PTY slave: `std::process::Command` with a `pre_exec` hook that makes the
//! child a session leader owning the terminal (setsid + TIOCSCTTY), resets signal dispositions,
//! applies rlimits, drops privileges (setgroups → setgid → setuid) and enters the working
//! directory. Everything the hook needs is prepared before fork; the hook itself makes
//! async-signal-safe system calls only.

use std::ffi::CString;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use nix::unistd::geteuid;

use super::child::PtyChild;
use super::identity::{plan_identity, IdentityPlan};
use super::open::open_pty;
use super::rlimit::RlimitPlan;
use super::{PtyError, SpawnSpec};

/// Opens a PTY and starts `spec.program` in it. See the module docs for what the child gets.
pub fn spawn(spec: &SpawnSpec) -> Result<PtyChild, PtyError> {
    let identity = plan_identity(spec.run_as.as_ref())?;
    let rlimits = RlimitPlan::new(&spec.rlimits, geteuid().is_root());
    let cwd = match &spec.cwd {
        Some(dir) => Some(
            CString::new(dir.as_os_str().as_bytes())
                .map_err(|_| PtyError::Nul("working directory"))?,
        ),
        None => None,
    };

    let pair = open_pty(spec.size).map_err(PtyError::Open)?;
    if let Some(id) = &identity {
        // Like sshd: the player's tty belongs to the player, so programs that reopen
        // ttyname(0) work; devpts removes the node when the PTY closes.
        nix::unistd::fchown(&pair.slave, Some(id.uid().into()), None)
            .and_then(|()| {
                nix::sys::stat::fchmod(&pair.slave, nix::sys::stat::Mode::from_bits_truncate(0o620))
            })
            .map_err(|e| PtyError::Open(e.into()))?;
    }

    let stdio = |fd: &OwnedFd| fd.try_clone().map(Stdio::from).map_err(PtyError::Open);
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(stdio(&pair.slave)?)
        .stdout(stdio(&pair.slave)?)
        .stderr(stdio(&pair.slave)?);
    let hook = ChildSetup {
        identity,
        rlimits,
        cwd,
    };
    // SAFETY: `ChildSetup::run` only makes async-signal-safe system calls on data prepared
    // before fork and never allocates, as required between fork and exec.
    unsafe {
        cmd.pre_exec(move || hook.run());
    }
    let child = cmd.spawn().map_err(|source| PtyError::Spawn {
        program: spec.program.clone(),
        source,
    })?;
    // The child has its own copies; the parent must not keep the slave open, or reading the
    // master would never report EIO after the game exits.
    drop(cmd);
    drop(pair.slave);

    let pid = child.id() as libc::pid_t;
    // Dropping std's `Child` neither waits nor kills; the pidfd is the only handle from now on.
    drop(child);
    let pidfd = match pidfd_open(pid) {
        Ok(fd) => fd,
        Err(e) => {
            // Cannot track it safely: kill the group and reap by pid this once.
            // SAFETY: plain syscalls on our own, not yet reaped, child.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
            return Err(PtyError::Pidfd(e));
        }
    };
    Ok(PtyChild::new(pid, pidfd, pair.master))
}

/// What the child does between fork and exec.
struct ChildSetup {
    /// Privilege drop, or `None` when the server already runs as the right (non-root) user.
    identity: Option<IdentityPlan>,
    /// Resource limits to apply while still privileged.
    rlimits: RlimitPlan,
    /// Directory to enter after dropping privileges, so access is checked as the game's user.
    cwd: Option<CString>,
}

/// Signals whose disposition the server may have changed (ignored ones survive exec).
const RESET_SIGNALS: [libc::c_int; 11] = [
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGPIPE,
    libc::SIGCHLD,
    libc::SIGTSTP,
    libc::SIGTTIN,
    libc::SIGTTOU,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

impl ChildSetup {
    /// Runs in the forked child (stdio already dup'ed onto the slave). Async-signal-safe only.
    fn run(&self) -> io::Result<()> {
        // SAFETY: each call is an async-signal-safe syscall with valid arguments.
        unsafe {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            for sig in RESET_SIGNALS {
                libc::signal(sig, libc::SIG_DFL);
            }
            // Any server fd that lacks O_CLOEXEC must not leak into a game.
            libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
        }
        self.rlimits.apply_in_child()?;
        if let Some(id) = &self.identity {
            id.apply_in_child()?;
        }
        if let Some(dir) = &self.cwd {
            // SAFETY: NUL-terminated string prepared before fork.
            if unsafe { libc::chdir(dir.as_ptr()) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

/// `pidfd_open(2)` through `syscall`, close-on-exec by default.
fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0u32) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = libc::c_int::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: the kernel just returned this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
