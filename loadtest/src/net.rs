//! TCP for the client side: spread over loopback source addresses and acknowledge at once.
//!
//! Two lessons from measuring OpenSSH and dropbear on loopback:
//! * Debian's dropbear refuses a 6th unauthenticated connection from one source address, so a
//!   client opening many connections binds each socket to one of several `127.0.0.x`
//!   addresses (all of `127.0.0.0/8` is local on Linux).
//! * A server that writes one SSH message in two segments with Nagle on (OpenSSH during the
//!   handshake) waits for the client's ACK; with delayed ACK that costs ~40 ms per exchange.
//!   The client sets `TCP_NODELAY` and re-arms `TCP_QUICKACK` after every read (the kernel
//!   drops quick-ACK mode on its own), so it acknowledges at once.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd as _;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};

/// Opens a TCP connection to `addr`, bound to `source` when given, with `TCP_NODELAY` and
/// quick ACKs.
pub async fn connect(addr: SocketAddr, source: Option<IpAddr>) -> io::Result<QuickAckStream> {
    let sock = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if let Some(ip) = source {
        sock.bind(SocketAddr::new(ip, 0))?;
    }
    let stream = sock.connect(addr).await?;
    stream.set_nodelay(true)?;
    set_quickack(&stream);
    Ok(QuickAckStream { inner: stream })
}

/// Source addresses for `count` loopback aliases (`127.0.0.2` upwards), or none when `addr` is
/// not loopback or `count` is 0.
pub fn loopback_sources(addr: &SocketAddr, count: usize) -> Vec<IpAddr> {
    if !addr.ip().is_loopback() || !addr.is_ipv4() {
        return Vec::new();
    }
    (0..count.min(250))
        .filter_map(|i| u8::try_from(i + 2).ok())
        .map(|last| IpAddr::from([127, 0, 0, last]))
        .collect()
}

/// A TCP stream that re-arms `TCP_QUICKACK` after every read.
pub struct QuickAckStream {
    /// The connected socket.
    inner: TcpStream,
}

impl QuickAckStream {
    /// The plain socket, for a reader that no longer answers anything (quick ACKs would
    /// only cost it a system call per read).
    pub fn into_inner(self) -> TcpStream {
        self.inner
    }
}

impl AsyncRead for QuickAckStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(res, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            set_quickack(&self.inner);
        }
        res
    }
}

impl AsyncWrite for QuickAckStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Asks the kernel to acknowledge received data at once. Best effort: a failure only costs
/// latency, so it is ignored.
fn set_quickack(stream: &TcpStream) {
    let one: libc::c_int = 1;
    // SAFETY: a valid socket fd, a pointer to a live c_int and its exact size.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            std::ptr::addr_of!(one).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_targets_get_distinct_sources_starting_at_127_0_0_2() {
        let addr: SocketAddr = "127.0.0.1:22".parse().expect("addr");
        let s = loopback_sources(&addr, 3);
        assert_eq!(
            s,
            vec![
                IpAddr::from([127, 0, 0, 2]),
                IpAddr::from([127, 0, 0, 3]),
                IpAddr::from([127, 0, 0, 4])
            ]
        );
    }

    #[test]
    fn remote_targets_get_no_source_binding() {
        let addr: SocketAddr = "192.0.2.1:22".parse().expect("addr");
        assert!(loopback_sources(&addr, 10).is_empty());
    }

    #[tokio::test]
    async fn a_connection_from_a_loopback_alias_reaches_the_listener() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let src = loopback_sources(&addr, 5)[4];
        let (client, accepted) = tokio::join!(connect(addr, Some(src)), listener.accept());
        let (_server, peer) = accepted.expect("accept");
        client.expect("connect");
        assert_eq!(peer.ip(), src);
    }
}
