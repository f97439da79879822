//! Starting a game on a PTY slave with `clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD)`, the way
//! `posix_spawn` starts a process: the child borrows the server's memory until it calls
//! `execve`, so starting a game costs the same whether the server holds ten sessions or ten
//! thousand. A `fork` would copy the page tables of the whole server first (and throw the copy
//! away at `execve`), which with thousands of sessions took most of a core.
//!
//! The child makes itself a session leader owning the terminal (setsid + TIOCSCTTY), puts the
//! slave on stdin/stdout/stderr, resets every signal disposition and the signal mask, applies
//! rlimits, drops privileges (setgroups → setgid → setuid) and enters the working directory,
//! then execs. Everything it needs is prepared beforehand; it only makes system calls.
//!
//! Sharing memory with the parent adds two rules to the usual ones between fork and exec:
//! - Signals are blocked in the parent thread around `clone`, so no handler of the server can
//!   run on the child's stack before the child has reset the dispositions.
//! - Credentials change through raw system calls: glibc's `setuid` family would broadcast the
//!   change to every thread it knows of, which here are the server's threads.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;
use std::ptr;

use nix::unistd::geteuid;

use super::child::PtyChild;
use super::identity::{plan_identity, IdentityPlan};
use super::open::open_pty;
use super::rlimit::RlimitPlan;
use super::{PtyError, SpawnSpec};

// The raw set*id system calls used in the child take 32-bit ids only on 64-bit ABIs (32-bit
// x86 and ARM need their *32 variants), and the sigaction layout below is that of these two.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("pty::spawn supports x86_64 and aarch64 Linux only");

/// Stack of the child between clone and exec: it runs a few system call wrappers only.
const CHILD_STACK_BYTES: usize = 64 * 1024;
/// `PATH` used to find a bare program name when the game's environment has none.
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

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
    let candidates = exec_candidates(spec)?;
    let argv = CStringArray::new(
        std::iter::once(spec.program.as_os_str().to_owned()).chain(spec.args.iter().cloned()),
        "argument",
    )?;
    let envp = CStringArray::new(
        spec.env.iter().map(|(k, v)| {
            let mut kv = k.clone();
            kv.push("=");
            kv.push(v);
            kv
        }),
        "environment",
    )?;

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

    let setup = ChildSetup {
        slave: pair.slave.as_raw_fd(),
        identity: identity.as_ref(),
        rlimits: &rlimits,
        cwd: cwd.as_ref(),
        candidates: &candidates,
        argv: &argv,
        envp: &envp,
        failure: Failure::default(),
    };
    let (pid, pidfd) = clone_and_exec(&setup).map_err(|source| PtyError::Spawn {
        program: spec.program.clone(),
        source,
    })?;
    // The parent must not keep the slave open, or reading the master would never report EIO
    // after the game exits.
    drop(pair.slave);
    Ok(PtyChild::new(pid, pidfd, pair.master))
}

/// The paths to try exec'ing, in order: `spec.program` itself when it has a slash, else that
/// name in each directory of the game's `PATH`, as `execvp` would. A relative `PATH` entry is
/// taken from the game's working directory, where the child will be when it execs. The child
/// tries them in turn, so permissions are judged as the game's user, not the server's.
fn exec_candidates(spec: &SpawnSpec) -> Result<Vec<CString>, PtyError> {
    let name = spec.program.as_os_str();
    if name.as_bytes().contains(&b'/') {
        return CString::new(name.as_bytes())
            .map(|p| vec![p])
            .map_err(|_| PtyError::Nul("program path"));
    }
    let path = spec
        .env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map_or(OsStr::new(DEFAULT_PATH), |(_, v)| v.as_os_str());
    path.as_bytes()
        .split(|b| *b == b':')
        .filter(|dir| !dir.is_empty())
        .map(|dir| {
            let dir = Path::new(OsStr::from_bytes(dir));
            let full = match &spec.cwd {
                Some(cwd) if dir.is_relative() => cwd.join(dir).join(name),
                _ => dir.join(name),
            };
            CString::new(full.into_os_string().into_vec()).map_err(|_| PtyError::Nul("PATH"))
        })
        .collect()
}

/// NUL-terminated strings and the NULL-terminated pointer array `execve` takes.
struct CStringArray {
    _strings: Vec<CString>,
    pointers: Vec<*const libc::c_char>,
}

impl CStringArray {
    fn new(items: impl Iterator<Item = OsString>, what: &'static str) -> Result<Self, PtyError> {
        let strings = items
            .map(|s| CString::new(s.into_vec()).map_err(|_| PtyError::Nul(what)))
            .collect::<Result<Vec<_>, _>>()?;
        let pointers = strings
            .iter()
            .map(|s| s.as_ptr())
            .chain(std::iter::once(ptr::null()))
            .collect();
        Ok(CStringArray {
            _strings: strings,
            pointers,
        })
    }

    fn as_ptr(&self) -> *const *const libc::c_char {
        self.pointers.as_ptr()
    }
}

/// Everything the child reads, prepared by the parent, plus where it reports a failure.
struct ChildSetup<'a> {
    /// The PTY slave, to become stdin/stdout/stderr and the controlling terminal.
    slave: libc::c_int,
    /// Privilege drop, or `None` when the server already runs as the right (non-root) user.
    identity: Option<&'a IdentityPlan>,
    /// Resource limits to apply while still privileged.
    rlimits: &'a RlimitPlan,
    /// Directory to enter after dropping privileges, so access is checked as the game's user.
    cwd: Option<&'a CString>,
    /// Paths to exec, tried in order (see [`exec_candidates`]).
    candidates: &'a [CString],
    argv: &'a CStringArray,
    envp: &'a CStringArray,
    /// Written by the child when a step fails (the parent reads it once the child is gone:
    /// with `CLONE_VFORK` the parent resumes only after `execve` or `_exit`).
    failure: Failure,
}

/// The errno of the step that failed in the child; 0 when exec succeeded.
#[derive(Default)]
struct Failure {
    errno: std::sync::atomic::AtomicI32,
}

/// Clones the child, which runs [`child_main`] until `execve`; returns its pid and pidfd.
fn clone_and_exec(setup: &ChildSetup<'_>) -> io::Result<(libc::pid_t, OwnedFd)> {
    use std::sync::atomic::Ordering;

    let mut stack = vec![0u8; CHILD_STACK_BYTES];
    // The stack grows down: hand clone the 16-byte aligned top.
    let top = stack.as_mut_ptr().wrapping_add(CHILD_STACK_BYTES);
    let top = top.wrapping_sub(top as usize % 16);
    let mut pidfd: libc::c_int = -1;

    let saved = set_signal_mask(u64::MAX)?;
    // SAFETY: `child_main` only reads `setup` (alive: this thread is suspended until the
    // child execs or exits) and makes raw system calls on its own stack, which lives until
    // after clone returns. CLONE_PIDFD stores a close-on-exec pidfd in `pidfd`.
    let pid = unsafe {
        libc::clone(
            child_main,
            top.cast(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD | libc::SIGCHLD,
            ptr::from_ref(setup).cast_mut().cast(),
            &mut pidfd as *mut libc::c_int,
        )
    };
    let clone_error = io::Error::last_os_error();
    let _ = set_signal_mask(saved);
    drop(stack);
    if pid < 0 {
        return Err(clone_error);
    }
    // SAFETY: the kernel just stored a new descriptor here; nothing else owns it.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    let errno = setup.failure.errno.load(Ordering::Acquire);
    if errno != 0 {
        // The child has exited already (it reported, then called _exit); reap it.
        // SAFETY: waiting for our own child by pid, once.
        unsafe { libc::waitpid(pid, ptr::null_mut(), 0) };
        return Err(io::Error::from_raw_os_error(errno));
    }
    Ok((pid, pidfd))
}

/// Signals are numbered 1..NSIG; Linux has 64.
const LAST_SIGNAL: libc::c_int = 64;

/// The child, from clone to execve. Never returns: execs or `_exit(127)`.
extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the parent's `ChildSetup`, alive while the parent is suspended.
    let setup = unsafe { &*arg.cast_const().cast::<ChildSetup<'_>>() };
    let errno = match setup.prepare() {
        Ok(()) => setup.exec(),
        Err(e) => e.raw_os_error().unwrap_or(libc::EIO),
    };
    setup
        .failure
        .errno
        .store(errno.max(1), std::sync::atomic::Ordering::Release);
    // SAFETY: ends the child without running any of the parent's exit handlers.
    unsafe { libc::_exit(127) }
}

impl ChildSetup<'_> {
    /// Execs the first candidate that can be; returns the errno to report when none can: as
    /// `execvp` does, EACCES from any candidate wins over a later "not found".
    fn exec(&self) -> libc::c_int {
        let mut denied = false;
        let mut last = libc::ENOENT;
        for program in self.candidates {
            // SAFETY: NUL-terminated strings and NULL-terminated arrays built by the parent.
            unsafe {
                libc::execve(program.as_ptr(), self.argv.as_ptr(), self.envp.as_ptr());
            }
            last = io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO);
            match last {
                libc::EACCES => denied = true,
                libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ELOOP => {}
                _ => return last,
            }
        }
        if denied {
            libc::EACCES
        } else {
            last
        }
    }

    /// Every step before execve. Runs in the cloned child: system calls only.
    fn prepare(&self) -> io::Result<()> {
        // SAFETY: each call is a plain system call with valid arguments.
        unsafe {
            // Handlers and ignored signals of the server are not the game's business: all
            // back to default (signals are still blocked, so none can run meanwhile).
            for sig in 1..=LAST_SIGNAL {
                if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                    set_default_disposition(sig);
                }
            }
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            for fd in 0..=2 {
                // dup2 onto itself (a slave that got fd 0–2) keeps close-on-exec: clear it.
                if libc::dup2(self.slave, fd) < 0 || libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            if libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            // Any server fd that lacks O_CLOEXEC must not leak into a game. Before Linux 5.11
            // there is no CLOSE_RANGE_CLOEXEC: close them, in the child's own copy of the
            // descriptor table (no CLONE_FILES), instead.
            if libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            ) != 0
                && libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) != 0
            {
                return Err(io::Error::last_os_error());
            }
            // Ambient capabilities survive exec for a non-root user (a server given
            // CAP_NET_BIND_SERVICE by systemd would pass it to every game). EINVAL: a kernel
            // older than 4.3 has none.
            if libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL,
                0,
                0,
                0,
            ) != 0
                && io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL)
            {
                return Err(io::Error::last_os_error());
            }
        }
        self.rlimits.apply_in_child()?;
        if let Some(id) = self.identity {
            id.apply_in_child()?;
        }
        if let Some(dir) = self.cwd {
            // SAFETY: NUL-terminated string prepared by the parent.
            if unsafe { libc::chdir(dir.as_ptr()) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        set_signal_mask(0).map(|_| ())
    }
}

/// The kernel's `struct sigaction` on x86-64 and aarch64 (not glibc's, which is larger).
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

/// `SIG_DFL` for `sig`, through the raw system call: glibc's `sigaction` refuses the two
/// real-time signals it reserves, which a parent may still have left ignored.
fn set_default_disposition(sig: libc::c_int) {
    let action = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    // SAFETY: valid pointer to a kernel sigaction of the size passed; no old action wanted.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            sig,
            &action as *const KernelSigaction,
            ptr::null_mut::<KernelSigaction>(),
            std::mem::size_of::<u64>(),
        );
    }
}

/// Sets this thread's signal mask (a kernel `sigset_t`, one bit per signal) and returns the
/// previous one. A raw system call: glibc's wrapper refuses to block the two signals it uses
/// internally, and the spawn must block every signal.
fn set_signal_mask(mask: u64) -> io::Result<u64> {
    let mut old: u64 = 0;
    // SAFETY: valid pointers to 8-byte sets, the size the kernel's sigset_t has.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &mask as *const u64,
            &mut old as *mut u64,
            std::mem::size_of::<u64>(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(old)
}
