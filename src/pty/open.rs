//! Opening a PTY pair: `/dev/ptmx` master (`O_RDWR|O_NOCTTY|O_CLOEXEC`, then `O_NONBLOCK`),
//! unlock, slave via `TIOCGPTPEER` (Linux ≥ 4.13, no path lookup in /dev/pts), cooked mode
//! with `IUTF8`, and the initial window size.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::termios::{tcgetattr, tcsetattr, InputFlags, SetArg};

use super::WinSize;

/// Both ends of a fresh PTY.
pub(super) struct PtyPair {
    /// Kept by the server; non-blocking, close-on-exec.
    pub master: OwnedFd,
    /// Handed to the child as stdin/stdout/stderr; close-on-exec in the parent.
    pub slave: OwnedFd,
}

/// Opens a PTY pair in cooked UTF-8 mode with the given window size.
pub(super) fn open_pty(size: WinSize) -> io::Result<PtyPair> {
    let master: OwnedFd = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
        .open("/dev/ptmx")?
        .into();
    unlock(master.as_fd())?;
    let slave = open_peer(master.as_fd())?;

    // Kernel defaults are the usual cooked mode (ICANON, ECHO, ISIG, ICRNL, OPOST|ONLCR);
    // add IUTF8 so the line discipline erases whole UTF-8 characters.
    let mut tio = tcgetattr(&slave).map_err(io::Error::from)?;
    tio.input_flags |= InputFlags::IUTF8;
    tcsetattr(&slave, SetArg::TCSANOW, &tio).map_err(io::Error::from)?;

    set_winsize(master.as_fd(), size)?;

    let flags = fcntl(&master, FcntlArg::F_GETFL).map_err(io::Error::from)?;
    let flags = OFlag::from_bits_retain(flags) | OFlag::O_NONBLOCK;
    fcntl(&master, FcntlArg::F_SETFL(flags)).map_err(io::Error::from)?;
    Ok(PtyPair { master, slave })
}

/// `TIOCSWINSZ`: sets the terminal size; the kernel sends SIGWINCH to the foreground group.
pub(super) fn set_winsize(fd: BorrowedFd<'_>, size: WinSize) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: size.px_width,
        ws_ypixel: size.px_height,
    };
    // SAFETY: fd is a valid open descriptor and `ws` outlives the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `TIOCSPTLCK 0` (what `unlockpt` does).
fn unlock(master: BorrowedFd<'_>) -> io::Result<()> {
    let zero: libc::c_int = 0;
    // SAFETY: valid fd; the kernel reads one int from the pointer.
    let rc = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &zero) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `TIOCGPTPEER`: opens the slave that belongs to this master without a path lookup.
fn open_peer(master: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: valid fd; TIOCGPTPEER takes the open flags by value and returns a new fd.
    let fd = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the ioctl returned a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
