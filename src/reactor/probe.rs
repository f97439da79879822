//! What the reactor needs from the kernel, checked once at start: io_uring itself, provided
//! buffer rings, multishot receive (a real one, on a socket pair) and multishot poll; whether
//! `IORING_OP_MSG_RING` is there (else the cores wake each other through eventfds). When
//! something is missing the server says what and how to get it, and exits with status 2.

use super::bufring::BufRing;
use super::ring::{Kind, Ring, Tag};
use io_uring::{opcode, types, Probe};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// What the kernel offers beyond the minimum.
#[derive(Debug, Clone, Copy)]
pub struct Features {
    /// Cores can wake each other with IORING_OP_MSG_RING (5.18+).
    pub msg_ring: bool,
}

/// Why the reactor cannot run here.
#[derive(Debug)]
pub struct Unsupported(pub String);

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Check the kernel once.
pub fn check() -> Result<Features, Unsupported> {
    let mut ring = Ring::new().map_err(|e| Unsupported(no_io_uring(&e)))?;
    let mut probe = Probe::new();
    ring.submitter().register_probe(&mut probe).map_err(|e| {
        Unsupported(format!(
            "io_uring cannot report its operations ({e}); dungeongate needs Linux 6.0 or later"
        ))
    })?;
    for (code, name) in [
        (opcode::RecvMulti::CODE, "IORING_OP_RECV"),
        (opcode::Send::CODE, "IORING_OP_SEND"),
        (opcode::AcceptMulti::CODE, "IORING_OP_ACCEPT"),
        (opcode::PollAdd::CODE, "IORING_OP_POLL_ADD"),
        (opcode::AsyncCancel::CODE, "IORING_OP_ASYNC_CANCEL"),
    ] {
        if !probe.is_supported(code) {
            return Err(Unsupported(format!(
                "this kernel's io_uring lacks {name}; dungeongate needs Linux 6.0 or later"
            )));
        }
    }
    let msg_ring = probe.is_supported(opcode::MsgRingData::CODE);
    multishot_receive_works(&mut ring)?;
    Ok(Features { msg_ring })
}

/// The message for a kernel where io_uring cannot be set up at all.
fn no_io_uring(e: &std::io::Error) -> String {
    let how = match e.raw_os_error() {
        Some(libc::ENOSYS) => {
            "the kernel has no io_uring (Linux 6.0 or later with CONFIG_IO_URING is needed)"
        }
        Some(libc::EPERM) | Some(libc::EACCES) => {
            "io_uring is switched off for this process: check `sysctl kernel.io_uring_disabled` \
             (0 allows it; 1 allows it only for the group in kernel.io_uring_group) and, in a \
             container, a seccomp profile that blocks io_uring_setup (Docker's default does: \
             run with a profile that allows io_uring_setup, io_uring_enter and \
             io_uring_register)"
        }
        _ => "io_uring could not be set up",
    };
    format!("cannot start the reactor: {how} ({e})")
}

/// A multishot receive into a provided buffer ring, on a socket pair: the feature set the
/// data path is built on (Linux 6.0+).
fn multishot_receive_works(ring: &mut Ring) -> Result<(), Unsupported> {
    let missing = |what: &str| {
        Unsupported(format!(
            "this kernel's io_uring lacks {what}; dungeongate needs Linux 6.0 or later"
        ))
    };
    let bufs = BufRing::register(ring, 2).map_err(|_| missing("provided buffer rings"))?;
    let mut fds = [0; 2];
    // SAFETY: socketpair writes two descriptors into the array; the result is checked.
    #[allow(unsafe_code)]
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if r != 0 {
        return Err(Unsupported(format!(
            "cannot create a socket pair: {}",
            std::io::Error::last_os_error()
        )));
    }
    // SAFETY: two fresh descriptors owned by nobody else.
    #[allow(unsafe_code)]
    let (a, b) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    ring.push(
        opcode::RecvMulti::new(types::Fd(a.as_raw_fd()), super::bufring::GROUP).build(),
        Tag::new(Kind::Recv, 0, 0),
    );
    // SAFETY: writing 2 bytes from a static buffer.
    #[allow(unsafe_code)]
    unsafe {
        libc::write(b.as_raw_fd(), b"ok".as_ptr().cast(), 2);
    }
    let mut got = Vec::new();
    for _ in 0..3 {
        ring.turn(Some(Duration::from_millis(500)));
        ring.take_completions(&mut got);
        if let Some(c) = got
            .iter()
            .find(|c| c.tag.is_some_and(|t| t.kind == Kind::Recv))
        {
            let ok = c.result == 2 && c.buffer().is_some() && c.more();
            drop(bufs);
            return if ok {
                Ok(())
            } else {
                Err(missing("multishot receive"))
            };
        }
    }
    Err(missing("multishot receive"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_machine_has_what_the_reactor_needs() {
        let f = super::check().expect("io_uring features");
        assert!(f.msg_ring);
    }
}
