//! One TCP socket as the reactor drives it, whatever speaks on it (an SSH session on a data
//! core, an HTTP exchange on the control core): the multishot receive, the one send in
//! flight, and the way out (flush with a deadline, half-close, linger, close).

use super::bufring::GROUP;
use super::ring::{Kind, Ring, Tag};
use io_uring::{opcode, types};
use std::os::fd::{AsRawFd, OwnedFd};

/// The most bytes handed to one send.
pub const SEND_CHUNK: usize = 64 * 1024;
/// How long a closing connection keeps reading (and dropping) what the peer still sends, so
/// the kernel does not answer unread input with RST and lose our last words (the DISCONNECT
/// saying why).
pub const CLOSE_LINGER_MS: u64 = 2_000;

/// Where a socket is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Talking.
    Open,
    /// The other side of the protocol is done: the last bytes go out until `until`.
    Flushing { until: u64 },
    /// Our side is shut; reading and dropping until the peer closes or `until`.
    Draining { until: u64 },
    /// Closed; the slot waits for its send to complete.
    Closed,
}

pub struct Socket {
    pub fd: Option<OwnedFd>,
    /// Slot generation (part of every operation's tag).
    pub generation: u32,
    /// The multishot receive is armed.
    pub recv_armed: bool,
    /// Bytes of the send in flight (the kernel reads them until its completion).
    pub sending: Option<Vec<u8>>,
    pub phase: Phase,
}

impl Socket {
    pub fn new(fd: OwnedFd, generation: u32) -> Socket {
        Socket {
            fd: Some(fd),
            generation,
            recv_armed: false,
            sending: None,
            phase: Phase::Open,
        }
    }

    fn raw(&self) -> Option<types::Fd> {
        self.fd.as_ref().map(|f| types::Fd(f.as_raw_fd()))
    }

    /// Arm the multishot receive into the core's provided buffers.
    pub fn arm_recv(&mut self, ring: &mut Ring, slot: usize) {
        if self.recv_armed || self.phase == Phase::Closed {
            return;
        }
        let Some(fd) = self.raw() else { return };
        ring.push(
            opcode::RecvMulti::new(fd, GROUP).build(),
            Tag::new(Kind::Recv, self.generation, slot),
        );
        self.recv_armed = true;
    }

    /// Stop the multishot receive (input is held back).
    pub fn cancel_recv(&mut self, ring: &mut Ring, slot: usize) {
        if !self.recv_armed {
            return;
        }
        let target = Tag::new(Kind::Recv, self.generation, slot).encode();
        ring.push(opcode::AsyncCancel::new(target).build(), Tag::IGNORE);
        // Completions may still arrive until the cancellation's; they are handled as usual.
        self.recv_armed = false;
    }

    /// Send `bytes` (moved into `buf`, a buffer from the core's free list).
    /// A closed socket hands the buffer back.
    pub fn send(
        &mut self,
        ring: &mut Ring,
        slot: usize,
        mut buf: Vec<u8>,
        bytes: &[u8],
    ) -> Result<(), Vec<u8>> {
        buf.clear();
        buf.extend_from_slice(bytes);
        self.send_buf(ring, slot, buf)
    }

    /// Send all of `buf` (the one send in flight); a closed socket hands it back.
    pub fn send_buf(&mut self, ring: &mut Ring, slot: usize, buf: Vec<u8>) -> Result<(), Vec<u8>> {
        let Some(fd) = self.raw() else {
            return Err(buf);
        };
        let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
        ring.push(
            opcode::Send::new(fd, buf.as_ptr(), len)
                .flags(libc::MSG_NOSIGNAL)
                .build(),
            Tag::new(Kind::Send, self.generation, slot),
        );
        self.sending = Some(buf);
        Ok(())
    }

    /// Send what the socket takes now without waiting: the bytes written (0 when it is
    /// full), or the error that ended the connection.
    pub fn send_now(&self, bytes: &[u8]) -> std::io::Result<usize> {
        let Some(fd) = &self.fd else {
            return Ok(0);
        };
        // SAFETY: sending from a live slice; MSG_DONTWAIT never blocks, MSG_NOSIGNAL turns
        // SIGPIPE into EPIPE.
        #[allow(unsafe_code)]
        let n = unsafe {
            libc::send(
                fd.as_raw_fd(),
                bytes.as_ptr().cast(),
                bytes.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = std::io::Error::last_os_error();
        match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted => Ok(0),
            _ => Err(e),
        }
    }

    /// Shut our sending side (the peer reads EOF after our last bytes).
    pub fn shutdown_write(&self) {
        if let Some(fd) = &self.fd {
            // SAFETY: plain syscall on a descriptor we own.
            #[allow(unsafe_code)]
            unsafe {
                libc::shutdown(fd.as_raw_fd(), libc::SHUT_WR);
            }
        }
    }

    /// Close: both directions shut (so a send or receive in flight completes), the receive
    /// cancelled, the descriptor closed.
    pub fn close(&mut self, ring: &mut Ring, slot: usize) {
        if let Some(fd) = &self.fd {
            // SAFETY: plain syscall on a descriptor we own.
            #[allow(unsafe_code)]
            unsafe {
                libc::shutdown(fd.as_raw_fd(), libc::SHUT_RDWR);
            }
        }
        self.cancel_recv(ring, slot);
        self.fd = None;
        self.phase = Phase::Closed;
    }

    /// Nothing of the kernel's refers to this slot's memory any more.
    pub fn is_idle(&self) -> bool {
        self.sending.is_none()
    }
}

/// The peer's address of a connected socket.
pub fn peer_addr(fd: &OwnedFd) -> Option<std::net::SocketAddr> {
    let mut storage: libc::sockaddr_storage =
        // SAFETY: all-zero is a valid sockaddr_storage.
        unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: storage and len are valid for writing; the kernel writes at most len bytes.
    #[allow(unsafe_code)]
    let r = unsafe {
        libc::getpeername(
            fd.as_raw_fd(),
            (&mut storage as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return None;
    }
    from_sockaddr(&storage)
}

fn from_sockaddr(s: &libc::sockaddr_storage) -> Option<std::net::SocketAddr> {
    match i32::from(s.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            #[allow(unsafe_code)]
            let a = unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some((ip, u16::from_be(a.sin_port)).into())
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            #[allow(unsafe_code)]
            let a = unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(std::net::SocketAddr::V6(std::net::SocketAddrV6::new(
                ip,
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Turn Nagle off: keystrokes and their echoes are small and must not wait.
pub fn set_nodelay(fd: &OwnedFd) {
    let one: libc::c_int = 1;
    // SAFETY: setsockopt with a pointer to a live c_int and its size.
    #[allow(unsafe_code)]
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Accept connections on `listener` with a multishot accept.
pub fn arm_accept(ring: &mut Ring, listener: &impl AsRawFd, index: usize) {
    ring.push(
        opcode::AcceptMulti::new(types::Fd(listener.as_raw_fd()))
            .flags(libc::SOCK_CLOEXEC)
            .build(),
        Tag::new(Kind::Accept, 0, index),
    );
}

/// A free list of send buffers, so a steady stream of sends allocates nothing and an idle
/// connection holds no buffer.
#[derive(Default)]
pub struct SendBuffers {
    free: Vec<Vec<u8>>,
}

impl SendBuffers {
    /// Buffers kept for reuse at most; more are freed.
    const KEEP: usize = 256;
    /// A buffer that grew past this is freed rather than kept.
    const KEEP_CAPACITY: usize = SEND_CHUNK;

    pub fn take(&mut self) -> Vec<u8> {
        self.free.pop().unwrap_or_default()
    }

    pub fn give(&mut self, mut buf: Vec<u8>) {
        if self.free.len() < Self::KEEP && buf.capacity() <= Self::KEEP_CAPACITY {
            buf.clear();
            self.free.push(buf);
        }
    }
}
