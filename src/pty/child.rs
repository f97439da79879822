//! A running game: its PTY master, its pidfd, and its process group (it is a session leader, so
//! its pgid is its pid). Reaping goes only through `waitid(P_PIDFD)`, never by pid, so a
//! recycled pid can never be waited for or signalled by mistake.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::sys::signal::Signal;

use super::open::set_winsize;
use super::{ExitStatus, WinSize};

/// How long `Drop` lets a hung-up game save before killing it.
const DROP_HANGUP_GRACE_MS: libc::c_int = 100;
/// How long `Drop` waits for a killed game before handing it to a reaper thread.
const DROP_KILL_WAIT_MS: libc::c_int = 1000;

/// A game process running on a PTY.
#[derive(Debug)]
pub struct PtyChild {
    /// Process id, also the process-group and session id (the child called setsid).
    pid: libc::pid_t,
    /// Stable handle on the process for waitid and poll; immune to pid reuse.
    pidfd: OwnedFd,
    /// PTY master, non-blocking, until the reactor takes it over ([`Self::take_master`]).
    master: Option<OwnedFd>,
    /// Exit status once reaped; afterwards the group is never signalled (its id may be reused).
    status: Option<ExitStatus>,
}

impl PtyChild {
    /// The child's pid (= its process-group id).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// A close-on-exec dup of the non-blocking master fd (for tests and tools; the reactor
    /// takes the master itself, since a dup per game would cost a descriptor per player).
    pub fn clone_master(&self) -> io::Result<OwnedFd> {
        self.master()?.try_clone()
    }

    /// Hands the master over; afterwards the new owner resizes through [`super::resize`].
    pub fn take_master(&mut self) -> io::Result<OwnedFd> {
        self.master
            .take()
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EBADF))
    }

    fn master(&self) -> io::Result<&OwnedFd> {
        self.master
            .as_ref()
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EBADF))
    }

    /// The pidfd; it polls readable once the child has exited (then call [`Self::try_wait`]).
    pub fn pidfd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    /// Sets the terminal size (`TIOCSWINSZ`); the kernel sends SIGWINCH to the game.
    pub fn resize(&self, size: WinSize) -> io::Result<()> {
        set_winsize(self.master()?.as_fd(), size)
    }

    /// Sends SIGHUP (then SIGCONT, as a tty hangup does, so a stopped game can save) to the
    /// child's process group.
    pub fn hangup(&self) -> io::Result<()> {
        self.signal(Signal::SIGHUP)?;
        self.signal(Signal::SIGCONT)
    }

    /// Sends `sig` to the child's whole process group. Fails with `ESRCH` once reaped.
    pub fn signal(&self, sig: Signal) -> io::Result<()> {
        if self.status.is_some() {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        // SAFETY: plain syscall. The group id is held by our unreaped child, so it is not reused.
        if unsafe { libc::kill(-self.pid, sig as libc::c_int) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Reaps the child if it has exited, without blocking; the result is cached.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = waitid_pidfd(self.pidfd.as_fd(), libc::WNOHANG)?;
        }
        Ok(self.status)
    }

    /// Builds the handle for a freshly spawned child.
    pub(super) fn new(pid: libc::pid_t, pidfd: OwnedFd, master: OwnedFd) -> Self {
        PtyChild {
            pid,
            pidfd,
            master: Some(master),
            status: None,
        }
    }

    /// Waits up to `ms` for the child to exit and reaps it; true when reaped.
    fn wait_up_to(&mut self, ms: libc::c_int) -> bool {
        let mut pfd = libc::pollfd {
            fd: self.pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd on the stack.
        unsafe { libc::poll(&mut pfd, 1, ms) };
        matches!(self.try_wait(), Ok(Some(_)))
    }
}

impl Drop for PtyChild {
    /// Last resort when the session layer did not reap the game: hang up, give it a moment to
    /// save, kill the group, and reap. Never leaves a zombie; blocks at most ~1.1 s, and only
    /// for a game that ignores SIGHUP.
    fn drop(&mut self) {
        if matches!(self.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = self.hangup();
        if self.wait_up_to(DROP_HANGUP_GRACE_MS) {
            return;
        }
        let _ = self.signal(Signal::SIGKILL);
        if self.wait_up_to(DROP_KILL_WAIT_MS) {
            return;
        }
        // Stuck in uninterruptible sleep: let a thread block in waitid until the kernel lets go.
        let reap = |fd: OwnedFd| {
            let _ = waitid_pidfd(fd.as_fd(), 0);
        };
        match self.pidfd.try_clone() {
            Ok(fd) => {
                let spawned = std::thread::Builder::new()
                    .name("pty-reaper".into())
                    .spawn(move || reap(fd));
                if spawned.is_err() {
                    let _ = waitid_pidfd(self.pidfd.as_fd(), 0);
                }
            }
            Err(_) => {
                let _ = waitid_pidfd(self.pidfd.as_fd(), 0);
            }
        }
    }
}

/// `waitid(P_PIDFD, fd, WEXITED | extra)`; `Ok(None)` when WNOHANG found it still running.
fn waitid_pidfd(fd: BorrowedFd<'_>, extra: libc::c_int) -> io::Result<Option<ExitStatus>> {
    loop {
        // SAFETY: siginfo_t is plain data; all-zero is a valid value.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: valid fd and out-pointer.
        let rc = unsafe {
            libc::waitid(
                libc::P_PIDFD,
                fd.as_raw_fd() as libc::id_t,
                &mut info,
                libc::WEXITED | extra,
            )
        };
        if rc != 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        // SAFETY: waitid filled in a SIGCHLD siginfo (or left it zeroed under WNOHANG).
        let (pid, code, status) = unsafe { (info.si_pid(), info.si_code, info.si_status()) };
        if pid == 0 {
            return Ok(None);
        }
        return Ok(Some(match code {
            libc::CLD_EXITED => ExitStatus::Exited(status),
            _ => ExitStatus::Signaled(status),
        }));
    }
}
