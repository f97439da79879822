//! The operators' HTTP endpoint on the control core's ring: multishot accept, a multishot
//! receive and one send per connection, driving the sans-io [`HttpServer`]; its readiness
//! probes run on the control pool and come back through the core's mailbox.

use super::blocking::{mailbox, Mailbox, Post};
use super::bufring::BufRing;
use super::mesh::Waker;
use super::ring::{Completion, Kind, Ring, Tag};
use super::socket::{self, Phase, SendBuffers, Socket, SEND_CHUNK};
use super::timers::Millis;
use crate::metrics::http::{HttpConnId, HttpEvent, HttpServer, ProbeDone};
use crate::metrics::HttpState;
use slab::Slab;
use std::net::TcpListener;
use std::os::fd::{FromRawFd, OwnedFd};

/// Provided receive buffers of the control core (HTTP requests are small and few).
const RECV_BUFFERS: u16 = 64;

struct HttpSocket {
    sock: Socket,
    id: HttpConnId,
}

pub struct HttpSide {
    server: HttpServer,
    listeners: Vec<TcpListener>,
    bufs: BufRing,
    sockets: Slab<HttpSocket>,
    next_generation: u32,
    probes: (Post<ProbeDone>, Mailbox<ProbeDone>),
    send_bufs: SendBuffers,
}

fn now_ms() -> Millis {
    super::clock::now_ms()
}

impl HttpSide {
    pub fn new(
        ring: &Ring,
        listeners: Vec<TcpListener>,
        state: HttpState,
        waker: Waker,
    ) -> std::io::Result<HttpSide> {
        Ok(HttpSide {
            server: HttpServer::new(state),
            listeners,
            bufs: BufRing::register(ring, RECV_BUFFERS)?,
            sockets: Slab::new(),
            next_generation: 1,
            probes: mailbox(waker),
            send_bufs: SendBuffers::default(),
        })
    }

    /// Start accepting.
    pub fn start(&mut self, ring: &mut Ring) {
        for (i, l) in self.listeners.iter().enumerate() {
            socket::arm_accept(ring, l, i);
        }
    }

    pub fn poll_timeout(&self) -> Option<Millis> {
        self.server.poll_timeout()
    }

    pub fn handle_timeouts(&mut self, ring: &mut Ring, now: Millis) {
        if self.server.poll_timeout().is_some_and(|t| t <= now) {
            self.server.handle_timeout(now);
            self.flush(ring);
        }
    }

    /// A finished readiness probe, if one came back.
    pub fn probe_done(&mut self) -> Option<ProbeDone> {
        self.probes.1.try_recv()
    }

    pub fn handle_probe_done(&mut self, ring: &mut Ring, done: ProbeDone, now: Millis) {
        self.server.handle_probe_done(done, now);
        self.flush(ring);
    }

    /// The readiness probes to run on the pool, when a request waits for them.
    pub fn poll_probe(&mut self) -> Option<Box<dyn FnOnce() + Send>> {
        let job = self.server.poll_probe()?;
        let post = self.probes.0.clone();
        Some(Box::new(move || post.send(job.run())))
    }

    pub fn complete(&mut self, ring: &mut Ring, c: Completion) {
        let buffer = c.buffer();
        if buffer.is_some() {
            self.bufs.taken();
        }
        if let Some(tag) = c.tag {
            match tag.kind {
                Kind::Accept => self.accepted(ring, tag, c),
                Kind::Recv => self.received(tag, c, buffer),
                Kind::Send => self.sent(ring, tag, c),
                _ => {}
            }
        }
        if let Some(b) = buffer {
            self.bufs.recycle(b);
        }
        self.flush(ring);
    }

    fn accepted(&mut self, ring: &mut Ring, tag: Tag, c: Completion) {
        let index = tag.index as usize;
        if !c.more() {
            if let Some(l) = self.listeners.get(index) {
                socket::arm_accept(ring, l, index);
            }
        }
        if c.result < 0 {
            tracing::warn!(error = %std::io::Error::from_raw_os_error(-c.result), "http accept failed");
            return;
        }
        // SAFETY: a successful accept's result is a new descriptor nobody else owns.
        #[allow(unsafe_code)]
        let fd = unsafe { OwnedFd::from_raw_fd(c.result) };
        let source = socket::peer_addr(&fd).map(|a| a.ip());
        let Some(id) = self.server.admit(source, now_ms()) else {
            return;
        };
        let generation = self.next_generation;
        self.next_generation = (self.next_generation + 1) & 0x00ff_ffff;
        self.sockets.insert(HttpSocket {
            sock: Socket::new(fd, generation),
            id,
        });
    }

    fn socket(&mut self, tag: Tag) -> Option<&mut HttpSocket> {
        self.sockets
            .get_mut(tag.index as usize)
            .filter(|s| s.sock.generation == tag.generation)
    }

    fn received(&mut self, tag: Tag, c: Completion, buffer: Option<u16>) {
        let now = now_ms();
        let Some(s) = self
            .sockets
            .get_mut(tag.index as usize)
            .filter(|s| s.sock.generation == tag.generation)
        else {
            return;
        };
        if !c.more() {
            s.sock.recv_armed = false;
        }
        match (c.result, buffer) {
            (n, Some(bid)) if n > 0 => {
                self.server
                    .handle_input(s.id, self.bufs.get(bid, n as usize), now);
            }
            (e, _) if e == -libc::ENOBUFS || e == -libc::ECANCELED => {}
            _ => self.server.handle_eof(s.id, now),
        }
    }

    fn sent(&mut self, ring: &mut Ring, tag: Tag, c: Completion) {
        let now = now_ms();
        let Some(s) = self.socket(tag) else { return };
        let Some(buf) = s.sock.sending.take() else {
            return;
        };
        let id = s.id;
        self.send_bufs.give(buf);
        if c.result < 0 {
            // A peer that went away cannot take the rest: close.
            if let Some(s) = self.socket(tag) {
                s.sock.close(ring, tag.index as usize);
            }
            self.server.closed(id);
            return;
        }
        self.server.advance_transmit(id, c.result as usize, now);
    }

    /// Act on the server's events, then send, receive and close what needs it.
    fn flush(&mut self, ring: &mut Ring) {
        while let Some(ev) = self.server.poll_event() {
            let (HttpEvent::Transmit(id) | HttpEvent::ShutdownWrite(id) | HttpEvent::Close(id)) =
                ev;
            let Some(slot) = self
                .sockets
                .iter()
                .find(|(_, s)| s.id == id)
                .map(|(k, _)| k)
            else {
                continue;
            };
            if let (HttpEvent::ShutdownWrite(_), Some(s)) = (ev, self.sockets.get(slot)) {
                s.sock.shutdown_write();
            }
            if let (HttpEvent::Close(_), Some(s)) = (ev, self.sockets.get_mut(slot)) {
                s.sock.close(ring, slot);
                self.server.closed(id);
            }
        }
        let mut freed = Vec::new();
        for (slot, s) in self.sockets.iter_mut() {
            if s.sock.phase == Phase::Closed {
                if s.sock.is_idle() {
                    freed.push(slot);
                }
                continue;
            }
            if s.sock.sending.is_none() {
                let out = self.server.transmit(s.id);
                if !out.is_empty() {
                    let n = out.len().min(SEND_CHUNK);
                    let buf = self.send_bufs.take();
                    let bytes = out.get(..n).unwrap_or_default();
                    if let Err(buf) = s.sock.send(ring, slot, buf, bytes) {
                        self.send_bufs.give(buf);
                    }
                }
            }
            if self.server.wants_read(s.id) {
                s.sock.arm_recv(ring, slot);
            }
            if self.server.is_done(s.id) && s.sock.sending.is_none() {
                s.sock.close(ring, slot);
                self.server.closed(s.id);
                freed.push(slot);
            }
        }
        for slot in freed {
            self.sockets.try_remove(slot);
        }
    }
}
