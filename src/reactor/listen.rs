//! Listening sockets: one per configured address on every core (SO_REUSEPORT spreads the
//! connections), IPv4 and IPv6.
//!
//! An IPv6 socket is dual-stack (IPv4 clients arrive as `::ffff:a.b.c.d`) unless the same list
//! also names an IPv4 address: then it is IPv6-only, so that `0.0.0.0:22` and `[::]:22` can be
//! bound side by side, as OpenSSH does with its two `ListenAddress` lines.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Queue of connections the kernel has completed and we have not yet accepted. Large, so a
/// login storm is not refused by the kernel before our own limits see it (the kernel caps it
/// at `net.core.somaxconn`).
const BACKLOG: libc::c_int = 4096;

/// Whether IPv6 sockets of this list must be IPv6-only (see the module comment).
pub fn v6_only(list: &[SocketAddr]) -> bool {
    list.iter().any(SocketAddr::is_ipv4)
}

/// A non-blocking listening TCP socket on `addr`, sharing the port with the other cores.
pub fn bind(addr: SocketAddr, v6_only: bool) -> io::Result<TcpListener> {
    let domain = if addr.is_ipv6() {
        libc::AF_INET6
    } else {
        libc::AF_INET
    };
    // SAFETY: socket(2) with constant arguments; the descriptor is owned at once.
    let fd = unsafe {
        libc::socket(
            domain,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    set_flag(&fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, true)?;
    set_flag(&fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, true)?;
    if addr.is_ipv6() {
        set_flag(&fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, v6_only)?;
    }
    let (storage, len) = sockaddr(addr);
    // SAFETY: `storage` holds a valid sockaddr of `len` bytes for `addr`'s family.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            std::ptr::from_ref(&storage).cast::<libc::sockaddr>(),
            len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: listen(2) on a descriptor we own.
    if unsafe { libc::listen(fd.as_raw_fd(), BACKLOG) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(TcpListener::from(fd))
}

fn set_flag(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, on: bool) -> io::Result<()> {
    let v: libc::c_int = on.into();
    // SAFETY: setsockopt(2) reads an int of the size given.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            std::ptr::from_ref(&v).cast::<libc::c_void>(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `addr` as a C socket address and its length, for `bind(2)` and `connect(2)` (also used
/// by tests that bind a client to a chosen loopback source).
pub fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: an all-zero sockaddr_storage is valid.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*a.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write(std::ptr::from_mut(&mut storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { std::ptr::write(std::ptr::from_mut(&mut storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;

    fn ipv6_loopback_works() -> bool {
        TcpListener::bind("[::1]:0").is_ok()
    }

    fn round_trip(listener: &TcpListener, to: SocketAddr) {
        let mut c = TcpStream::connect(to).unwrap();
        listener.set_nonblocking(false).unwrap();
        let (mut s, _) = listener.accept().unwrap();
        c.write_all(b"ping").unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ping");
    }

    #[test]
    fn two_sockets_share_a_port_like_two_cores() {
        let a = bind("127.0.0.1:0".parse().unwrap(), false).unwrap();
        let port = a.local_addr().unwrap().port();
        let b = bind(SocketAddr::from(([127, 0, 0, 1], port)), false).unwrap();
        assert_eq!(b.local_addr().unwrap().port(), port);
    }

    #[test]
    fn a_lone_ipv6_wildcard_is_dual_stack() {
        if !ipv6_loopback_works() {
            return; // no IPv6 on this host: nothing to check
        }
        let l = bind("[::]:0".parse().unwrap(), false).unwrap();
        let port = l.local_addr().unwrap().port();
        round_trip(&l, SocketAddr::from(([127, 0, 0, 1], port)));
        round_trip(&l, format!("[::1]:{port}").parse().unwrap());
    }

    #[test]
    fn ipv4_and_ipv6_wildcards_bind_side_by_side() {
        if !ipv6_loopback_works() {
            return;
        }
        let list: Vec<SocketAddr> = vec!["0.0.0.0:0".parse().unwrap(), "[::]:0".parse().unwrap()];
        assert!(v6_only(&list));
        let v4 = bind(list[0], v6_only(&list)).unwrap();
        let port = v4.local_addr().unwrap().port();
        let v6 = bind(format!("[::]:{port}").parse().unwrap(), v6_only(&list)).unwrap();
        round_trip(&v4, SocketAddr::from(([127, 0, 0, 1], port)));
        round_trip(&v6, format!("[::1]:{port}").parse().unwrap());
    }
}
