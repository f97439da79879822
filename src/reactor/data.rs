//! A data core: one thread, one ring, one loop. It owns its listeners' accepts, its
//! connections (each a [`Session`] on a [`Socket`]), its games' PTYs and pidfds, its timers
//! and its provided buffers; it turns completions into `handle_*` calls and effects into
//! submissions or plain system calls. Nothing here is shared with another core except
//! through the mesh queues and the atomics of [`Shared`].

use super::admission::{self, Admitted};
use super::blocking::{Mailbox, Pool, Post};
use super::bufring::BufRing;
use super::games::{self, ConnRef, Game, Read, Write};
use super::mesh::{Consumer, PendingWakes, Producer};
use super::ring::{Completion, Kind, Ring, Tag};
use super::shared::Shared;
use super::socket::{self, Phase, SendBuffers, Socket, CLOSE_LINGER_MS, SEND_CHUNK};
use super::timers::{Millis, TimerOwner, Timers};
use crate::control::{Notice, Reply, Request};
use crate::metrics::{CoreMetrics, Direction, PtyOp, RejectReason};
use crate::pty::PtyChild;
use crate::session::{Effect, GameKey, Session, SessionEnv, Token};
use slab::Slab;
use std::collections::{HashMap, VecDeque};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Provided receive buffers per core (4 KiB each).
const RECV_BUFFERS: u16 = 512;
/// Reads of one game's output per turn before the others get theirs.
const READS_PER_TURN: usize = 8;
/// How long a stopping core waits for its connections and games.
const DRAIN_MS: u64 = 15_000;
/// The sampler's period.
const SAMPLE_MS: u64 = 1_000;
/// Requests waiting locally when the queue to the control core is full; past it a request is
/// answered "unavailable" at once.
const MAX_CONTROL_BACKLOG: usize = 4096;

/// A request to the control core.
pub struct ToControl {
    /// The asking core.
    pub core: usize,
    /// The asking connection, and its token: `None` for requests that want no answer.
    pub from: Option<(ConnRef, Token)>,
    pub request: Request,
}

/// What the control core sends a data core.
pub enum FromControl {
    Reply {
        conn: ConnRef,
        token: Token,
        reply: Reply,
    },
    Notice(Notice),
}

/// A game spawn's result, from the blocking pool.
pub struct SpawnDone {
    conn: ConnRef,
    key: GameKey,
    game_id: String,
    user: String,
    claimed: bool,
    result: Result<PtyChild, String>,
}

/// One connection.
struct Conn {
    sock: Socket,
    session: Session,
    /// The socket's peer (a load balancer when the PROXY protocol is on).
    peer: SocketAddr,
    /// Bytes of a PROXY header still being received (`Some` until complete).
    proxy: Option<Vec<u8>>,
    /// Its place in the per-source counts (None when refused).
    admitted: Option<Admitted>,
    /// Refused at once by a limit.
    rejected: bool,
    /// The session's deadline the timer heap holds for it.
    armed: Option<Millis>,
    /// Its games: key and slot in the core's game table.
    games: Vec<(GameKey, usize)>,
    accepted_at: Instant,
    /// Counted as logged in (the per-source counts were told).
    logged_in: bool,
}

/// What a data core starts with.
pub struct DataCoreParts {
    pub id: usize,
    pub shared: Arc<Shared>,
    pub env: SessionEnv,
    pub metrics: Arc<CoreMetrics>,
    pub ring: Ring,
    pub listeners: Vec<TcpListener>,
    pub to_control: Producer<ToControl>,
    pub from_control: Consumer<FromControl>,
    pub wakes: PendingWakes,
    pub eventfd: Arc<OwnedFd>,
    pub spawn_pool: Arc<Pool>,
    pub spawns: (Post<SpawnDone>, Mailbox<SpawnDone>),
}

pub struct DataCore {
    id: usize,
    shared: Arc<Shared>,
    env: SessionEnv,
    metrics: Arc<CoreMetrics>,
    ring: Ring,
    bufs: BufRing,
    listeners: Vec<Option<TcpListener>>,
    conns: Slab<Conn>,
    games: Slab<Game>,
    /// Generation of the next connection or game (tags tell a slot's occupants apart).
    next_generation: u32,
    timers: Timers,
    to_control: Producer<ToControl>,
    /// Requests the full control queue did not take yet (bounded; see MAX_CONTROL_BACKLOG).
    control_backlog: VecDeque<ToControl>,
    from_control: Consumer<FromControl>,
    /// Granted-or-not claims in flight, so a claim answered after its connection left is
    /// given back.
    pending_claims: HashMap<(ConnRef, Token), (String, String)>,
    wakes: PendingWakes,
    eventfd: Arc<OwnedFd>,
    spawn_pool: Arc<Pool>,
    spawn_post: Post<SpawnDone>,
    spawns: Mailbox<SpawnDone>,
    send_bufs: SendBuffers,
    /// Where PTY output is read into before it goes to a session.
    scratch: Vec<u8>,
    completions: Vec<Completion>,
    /// Games with output left after their turn's reads.
    pending_pumps: Vec<usize>,
    /// Set when the core began stopping: the drain's deadline.
    stopping: Option<Millis>,
    /// The next accept retry after the multishot accept ended on an error.
    accept_retry: Option<Millis>,
    /// Time spent outside the ring's wait since the last sample.
    busy: Duration,
    /// When the last wait ended.
    awake_since: Instant,
    /// Busy ratio and heartbeat, once a period.
    sampler: crate::metrics::Sampler,
    /// The sampler's next tick in the timer heap.
    sample_armed: Option<Millis>,
    /// Accept failures since the last warning.
    accept_failures: (Option<Instant>, u64),
}

impl DataCore {
    pub fn new(p: DataCoreParts) -> std::io::Result<DataCore> {
        let bufs = BufRing::register(&p.ring, RECV_BUFFERS)?;
        let (spawn_post, spawns) = p.spawns;
        let sampler = crate::metrics::Sampler::new(
            &p.metrics,
            crate::metrics::sampler::PERIOD,
            Instant::now(),
        );
        Ok(DataCore {
            id: p.id,
            shared: p.shared,
            env: p.env,
            metrics: p.metrics,
            ring: p.ring,
            bufs,
            listeners: p.listeners.into_iter().map(Some).collect(),
            conns: Slab::with_capacity(1024),
            games: Slab::with_capacity(64),
            next_generation: 1,
            timers: Timers::with_capacity(4096),
            to_control: p.to_control,
            control_backlog: VecDeque::new(),
            from_control: p.from_control,
            pending_claims: HashMap::new(),
            wakes: p.wakes,
            eventfd: p.eventfd,
            spawn_pool: p.spawn_pool,
            spawn_post,
            spawns,
            send_bufs: SendBuffers::default(),
            scratch: vec![0; games::READ_CHUNK],
            completions: Vec::with_capacity(4096),
            pending_pumps: Vec::new(),
            stopping: None,
            accept_retry: None,
            busy: Duration::ZERO,
            awake_since: Instant::now(),
            sampler,
            sample_armed: None,
            accept_failures: (None, 0),
        })
    }

    /// Serve until stopped and drained.
    pub fn run(mut self) {
        for (i, l) in self.listeners.iter().enumerate() {
            if let Some(l) = l {
                socket::arm_accept(&mut self.ring, l, i);
            }
        }
        super::arm_wake(&mut self.ring, &self.eventfd);
        self.core_tick(now_ms());
        loop {
            let now = now_ms();
            let timeout = if !self.pending_pumps.is_empty() {
                Some(Duration::ZERO)
            } else {
                self.timers
                    .next()
                    .map(|t| Duration::from_millis(t.saturating_sub(now)))
            };
            self.wakes.send(&mut self.ring);
            let waits = Instant::now();
            self.busy += waits.saturating_duration_since(self.awake_since);
            self.ring.turn(timeout);
            self.awake_since = Instant::now();
            let mut completions = std::mem::take(&mut self.completions);
            self.ring.take_completions(&mut completions);
            for c in &completions {
                self.complete(*c);
            }
            self.completions = completions;
            self.run_pumps();
            self.fire_timers();
            if self.shared.shutdown.load(Ordering::Relaxed) && self.stopping.is_none() {
                self.begin_stop();
            }
            if let Some(deadline) = self.stopping {
                let done = self.conns.is_empty() && self.games.is_empty();
                if done || now_ms() >= deadline {
                    break;
                }
            }
        }
        self.wakes.send(&mut self.ring);
        self.ring.turn(Some(Duration::ZERO));
        tracing::debug!(core = self.id, "core stopped");
    }
}

/// Milliseconds on the reactor clock.
fn now_ms() -> Millis {
    super::clock::now_ms()
}

impl DataCore {
    fn generation(&mut self) -> u32 {
        let g = self.next_generation;
        self.next_generation = (g + 1) & 0x00ff_ffff;
        if self.next_generation == 0 {
            self.next_generation = 1;
        }
        g
    }

    /// The connection `r` names, if it is still that one.
    fn conn(&mut self, r: ConnRef) -> Option<&mut Conn> {
        self.conns
            .get_mut(r.slot as usize)
            .filter(|c| c.sock.generation == r.generation)
    }

    fn complete(&mut self, c: Completion) {
        // A receive's buffer goes back to the ring whatever became of its connection.
        let buffer = c.buffer();
        if buffer.is_some() {
            self.bufs.taken();
        }
        let Some(tag) = c.tag else {
            if let Some(b) = buffer {
                self.bufs.recycle(b);
            }
            return;
        };
        match tag.kind {
            Kind::Accept => self.accepted(tag, c),
            Kind::Recv => self.received(tag, c, buffer),
            Kind::Send => self.sent(tag, c),
            Kind::PtyRead => self.pty_readable(tag, c),
            Kind::PtyWrite => self.pty_writable(tag),
            Kind::Exit => self.game_exited(tag),
            Kind::Wake => self.woken(tag, c.more()),
            Kind::Ignore => {}
        }
        if let Some(b) = buffer {
            self.bufs.recycle(b);
        }
    }

    // ----- accepting -----

    fn accepted(&mut self, tag: Tag, c: Completion) {
        let index = tag.index as usize;
        if !c.more() && self.stopping.is_none() {
            // The multishot accept ended (an error, or the kernel's own reasons): re-arm,
            // after a pause when it failed so EMFILE cannot spin the core.
            if c.result < 0 {
                let at = now_ms() + 10;
                self.accept_retry = Some(at);
                self.timers.push(TimerOwner::Core, at);
            } else if let Some(Some(l)) = self.listeners.get(index) {
                socket::arm_accept(&mut self.ring, l, index);
            }
        }
        if c.result < 0 {
            self.accept_failed(std::io::Error::from_raw_os_error(-c.result));
            return;
        }
        // SAFETY: a successful accept's result is a new descriptor that nobody else owns.
        #[allow(unsafe_code)]
        let fd = unsafe { OwnedFd::from_raw_fd(c.result) };
        if self.stopping.is_some() {
            return;
        }
        self.start_conn(fd);
    }

    /// Accept fails in bursts (EMFILE, ENFILE, ENOBUFS): one warning per 10 s, with a count.
    fn accept_failed(&mut self, e: std::io::Error) {
        let (last, count) = &mut self.accept_failures;
        *count += 1;
        if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
            tracing::warn!(error = %e, failures = *count, "accept failed");
            *last = Some(Instant::now());
            *count = 0;
        }
    }

    fn start_conn(&mut self, fd: OwnedFd) {
        let peer = socket::peer_addr(&fd).unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        socket::set_nodelay(&fd);
        let open = self.shared.connections.fetch_add(1, Ordering::Relaxed) + 1;
        let now = now_ms();
        let generation = self.generation();
        let slot = self.conns.vacant_key();
        let id = ((self.id as u64) << 48) | slot as u64;
        let session = Session::new(self.env.clone(), id, peer, now);
        let expects_proxy = self.env.config.ssh.proxy_protocol_from.contains(peer.ip());
        self.conns.insert(Conn {
            sock: Socket::new(fd, generation),
            session,
            peer,
            proxy: expects_proxy.then(Vec::new),
            admitted: None,
            rejected: false,
            armed: None,
            games: Vec::new(),
            accepted_at: Instant::now(),
            logged_in: false,
        });
        if !expects_proxy {
            self.admit(slot, peer, open);
        }
        self.after(slot);
    }

    /// Admit the connection (limits, counts) or refuse it with a DISCONNECT saying why.
    fn admit(&mut self, slot: usize, client: SocketAddr, open: usize) {
        let verdict = admission::admit(&self.shared, client.ip(), open, now_ms());
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        match verdict {
            Ok(a) => {
                conn.admitted = Some(a);
                self.metrics.conn_accepted();
            }
            Err(r) => {
                self.metrics.conn_rejected(r.reason);
                conn.rejected = true;
                tracing::debug!(peer = %conn.peer, reason = r.reason.as_str(), "connection refused");
                conn.session.refuse(&r.message);
            }
        }
    }

    // ----- socket input and output -----

    fn received(&mut self, tag: Tag, c: Completion, buffer: Option<u16>) {
        let slot = tag.index as usize;
        let now = now_ms();
        let Some(conn) = self
            .conns
            .get_mut(slot)
            .filter(|c| c.sock.generation == tag.generation)
        else {
            return;
        };
        if !c.more() {
            conn.sock.recv_armed = false;
        }
        let phase = conn.sock.phase;
        match c.result {
            n if n > 0 => {
                let n = n as usize;
                self.metrics.bytes(Direction::In, n);
                let Some(bid) = buffer else { return };
                if phase != Phase::Open {
                    // Closing: what the peer still sends is read and dropped.
                    self.after(slot);
                    return;
                }
                if conn.proxy.is_some() {
                    self.proxy_input(slot, bid, n);
                } else {
                    conn.session.handle_socket(self.bufs.get(bid, n), now);
                }
            }
            // ENOBUFS: out of provided buffers for a moment (they come back this turn);
            // ECANCELED: our own cancellation. Re-armed below when the session wants input.
            e if e == -libc::ENOBUFS || e == -libc::ECANCELED => {}
            // The peer closed its side (0) or the socket failed.
            _ => match phase {
                Phase::Draining { .. } => {
                    self.close_conn(slot);
                    return;
                }
                Phase::Closed => return,
                Phase::Open | Phase::Flushing { .. } => {
                    tracing::debug!(peer = %conn.peer, "peer closed the socket");
                    conn.session.handle_socket_closed(now);
                }
            },
        }
        self.after(slot);
    }

    /// Bytes of an expected PROXY header (and whatever follows it).
    fn proxy_input(&mut self, slot: usize, bid: u16, n: usize) {
        let bytes = self.bufs.get(bid, n);
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        let Some(buf) = conn.proxy.as_mut() else {
            return;
        };
        buf.extend_from_slice(bytes);
        match crate::proxy::parse(buf) {
            Ok(None) => {}
            Ok(Some(header)) => {
                let rest = buf.split_off(header.len.min(buf.len()));
                conn.proxy = None;
                let client = header.source.unwrap_or(conn.peer);
                if header.source.is_some() {
                    conn.session.set_client(client);
                }
                let open = self.shared.connections.load(Ordering::Relaxed);
                self.admit(slot, client, open);
                if let Some(conn) = self.conns.get_mut(slot) {
                    if !conn.rejected && !rest.is_empty() {
                        conn.session.handle_socket(&rest, now_ms());
                    }
                }
            }
            Err(e) => {
                conn.proxy = None;
                tracing::info!(peer = %conn.peer, error = %e, "connection from a PROXY protocol source refused");
                self.metrics.conn_rejected(RejectReason::ProxyHeader);
                conn.rejected = true;
                self.close_conn(slot);
            }
        }
    }

    fn sent(&mut self, tag: Tag, c: Completion) {
        let slot = tag.index as usize;
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        if conn.sock.generation != tag.generation {
            return;
        }
        let Some(buf) = conn.sock.sending.take() else {
            return;
        };
        if c.result < 0 {
            self.send_bufs.give(buf);
            if conn.sock.phase == Phase::Closed {
                self.conns.remove(slot);
                return;
            }
            // The peer is gone (EPIPE, ECONNRESET): nothing more can reach it.
            tracing::debug!(peer = %conn.peer, error = %std::io::Error::from_raw_os_error(-c.result), "send failed");
            conn.session.handle_socket_closed(now_ms());
            self.close_conn(slot);
            return;
        }
        let n = (c.result as usize).min(buf.len());
        self.metrics.bytes(Direction::Out, n);
        if conn.sock.phase == Phase::Closed {
            self.send_bufs.give(buf);
            self.conns.remove(slot);
            return;
        }
        if n < buf.len() {
            // A short send: the rest goes first, from the same buffer.
            let rest_start = n;
            let mut buf = buf;
            buf.drain(..rest_start);
            let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
            if let Some(fd) = conn.sock.fd.as_ref() {
                use std::os::fd::AsRawFd;
                self.ring.push(
                    io_uring::opcode::Send::new(
                        io_uring::types::Fd(fd.as_raw_fd()),
                        buf.as_ptr(),
                        len,
                    )
                    .flags(libc::MSG_NOSIGNAL)
                    .build(),
                    Tag::new(Kind::Send, conn.sock.generation, slot),
                );
                conn.sock.sending = Some(buf);
            } else {
                self.send_bufs.give(buf);
            }
            return;
        }
        self.send_bufs.give(buf);
        self.after(slot);
    }

    /// After anything happened to a connection: carry out its session's effects, move game
    /// output, send, (re)arm the receive and the timer, and follow the way out.
    fn after(&mut self, slot: usize) {
        self.run_effects(slot);
        self.pump_conn_games(slot);
        // Effects of the output just delivered (none today, but cheap to honour).
        self.run_effects(slot);
        let now = now_ms();
        let stall_ms = self
            .env
            .config
            .limits
            .output_stall_seconds
            .saturating_mul(1000);
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        if conn.sock.phase == Phase::Closed {
            return;
        }
        // Send what the session sealed. A socket with room takes it at once with a plain
        // send(2) straight from the session's buffer: no copy, and no completion that would
        // wake the loop again. Only what a full socket leaves over goes through io_uring (a
        // copy, one send in flight), which waits in the kernel for room.
        if conn.sock.sending.is_none() && !conn.session.transmit().is_empty() {
            match conn.sock.send_now(conn.session.transmit()) {
                Ok(n) => {
                    self.metrics.bytes(Direction::Out, n);
                    conn.session.advance_transmit(n);
                }
                Err(e) => {
                    tracing::debug!(peer = %conn.peer, error = %e, "send failed");
                    conn.session.handle_socket_closed(now);
                    self.close_conn(slot);
                    return;
                }
            }
            let out = conn.session.transmit();
            if !out.is_empty() {
                let n = out.len().min(SEND_CHUNK);
                let buf = self.send_bufs.take();
                conn.sock
                    .send(&mut self.ring, slot, buf, out.get(..n).unwrap_or_default());
                conn.session.advance_transmit(n);
            }
        }
        // The way out.
        if conn.sock.phase == Phase::Open && conn.session.is_closed() {
            conn.sock.phase = Phase::Flushing {
                until: now.saturating_add(stall_ms),
            };
        }
        let mut deadline = conn.session.poll_timeout();
        match conn.sock.phase {
            Phase::Open => {
                if conn.session.wants_read() {
                    conn.sock.arm_recv(&mut self.ring, slot);
                } else {
                    conn.sock.cancel_recv(&mut self.ring, slot);
                }
            }
            Phase::Flushing { until } => {
                if conn.sock.sending.is_none() && conn.session.transmit().is_empty() {
                    conn.sock.shutdown_write();
                    let until = now.saturating_add(CLOSE_LINGER_MS);
                    conn.sock.phase = Phase::Draining { until };
                    conn.sock.arm_recv(&mut self.ring, slot);
                    deadline = Some(until);
                } else if now >= until {
                    tracing::debug!(peer = %conn.peer, "closing connection could not flush in time; dropped");
                    self.close_conn(slot);
                    return;
                } else {
                    deadline = Some(until);
                }
            }
            Phase::Draining { until } => {
                if now >= until {
                    self.close_conn(slot);
                    return;
                }
                conn.sock.arm_recv(&mut self.ring, slot);
                deadline = Some(until);
            }
            Phase::Closed => return,
        }
        let owner = TimerOwner::Conn(slot as u32, conn.sock.generation);
        self.timers.arm(owner, deadline, &mut conn.armed);
    }

    /// The connection is over: account for it and close the socket. The slot is freed now,
    /// or when its send in flight completes.
    fn close_conn(&mut self, slot: usize) {
        let now = now_ms();
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        if conn.sock.phase == Phase::Closed {
            return;
        }
        if !conn.session.is_closed() {
            conn.session.handle_socket_closed(now);
        }
        conn.sock.close(&mut self.ring, slot);
        // The session's last effects: its games' hangups.
        self.run_effects(slot);
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        let outcome = conn.session.outcome();
        if !conn.rejected {
            if !outcome.handshake_done {
                self.metrics.conn_failed();
            }
            self.metrics.conn_closed(conn.accepted_at.elapsed());
        }
        if let Some(a) = conn.admitted.take() {
            admission::ended(&self.shared, a, outcome.logged_in, outcome.offence, now);
        }
        self.shared.connections.fetch_sub(1, Ordering::Relaxed);
        tracing::debug!(parent: conn.session.span(), "connection closed");
        let games = std::mem::take(&mut conn.games);
        let idle = conn.sock.is_idle();
        for (_, g) in games {
            self.hang_up_game(g, now);
        }
        if idle {
            self.conns.remove(slot);
        }
    }

    fn run_effects(&mut self, slot: usize) {
        let now = now_ms();
        loop {
            let Some(conn) = self.conns.get_mut(slot) else {
                return;
            };
            let Some(effect) = conn.session.poll_effect() else {
                return;
            };
            let r = ConnRef {
                slot: slot as u32,
                generation: conn.sock.generation,
            };
            match effect {
                Effect::Control { token, request } => self.ask_control(r, token, request),
                Effect::Spawn {
                    game,
                    game_id,
                    user,
                    terminal,
                    claimed,
                } => self.spawn(r, game, game_id, user, terminal, claimed),
                Effect::PtyWrite { game } => self.write_input(slot, game),
                Effect::PtyResize { game, size } => {
                    if let Some(g) = self.game_of(slot, game) {
                        if let Err(e) = crate::pty::resize(&g.master, size) {
                            tracing::debug!(error = %e, "pty resize failed");
                        }
                        self.metrics.pty_op(PtyOp::Resize);
                    }
                }
                Effect::PtySignal { game, signal } => {
                    if let Some(g) = self.game_of(slot, game) {
                        g.signal(signal);
                    }
                }
                Effect::Hangup { game } => {
                    let Some(conn) = self.conns.get_mut(slot) else {
                        return;
                    };
                    if let Some(i) = conn.games.iter().position(|(k, _)| *k == game) {
                        let (_, g) = conn.games.swap_remove(i);
                        self.hang_up_game(g, now);
                    }
                }
                Effect::LoggedIn => {
                    if !conn.logged_in {
                        conn.logged_in = true;
                        if let Some(a) = conn.admitted {
                            admission::logged_in(&self.shared, a);
                        }
                    }
                }
            }
        }
    }
}

// ----- games -----
impl DataCore {
    /// The game `key` of the connection in `slot`.
    fn game_of(&mut self, slot: usize, key: GameKey) -> Option<&mut Game> {
        let conn = self.conns.get(slot)?;
        let (_, g) = conn.games.iter().find(|(k, _)| *k == key)?;
        self.games.get_mut(*g)
    }

    fn game_slot_of(&self, slot: usize, key: GameKey) -> Option<usize> {
        let conn = self.conns.get(slot)?;
        conn.games.iter().find(|(k, _)| *k == key).map(|(_, g)| *g)
    }

    /// Write the session's pending input for `key` to its PTY, as much as it takes now.
    fn write_input(&mut self, slot: usize, key: GameKey) {
        let Some(g) = self.game_slot_of(slot, key) else {
            return;
        };
        let now = now_ms();
        loop {
            let (Some(conn), Some(game)) = (self.conns.get_mut(slot), self.games.get_mut(g)) else {
                return;
            };
            let data = conn.session.pty_input(key);
            if data.is_empty() || game.write_waiting {
                return;
            }
            let n = match games::write(&game.master, data) {
                Write::Wrote(n) => {
                    games::count(&self.metrics, Direction::In, n);
                    n
                }
                Write::Full => {
                    game.arm_write(&mut self.ring, g);
                    return;
                }
                // The terminal is gone (the game is ending): the input is dropped.
                Write::Gone => data.len(),
            };
            conn.session.handle_pty_written(key, n, now);
        }
    }

    fn pty_writable(&mut self, tag: Tag) {
        let g = tag.index as usize;
        let Some(game) = self
            .games
            .get_mut(g)
            .filter(|x| x.generation == tag.generation)
        else {
            return;
        };
        game.write_waiting = false;
        let (key, owner) = (game.key, game.owner);
        if let Some(r) = owner {
            if self.conn(r).is_some() {
                self.write_input(r.slot as usize, key);
                self.after(r.slot as usize);
            }
        }
    }

    fn pty_readable(&mut self, tag: Tag, c: Completion) {
        let g = tag.index as usize;
        let Some(game) = self
            .games
            .get_mut(g)
            .filter(|x| x.generation == tag.generation)
        else {
            return;
        };
        if !c.more() {
            game.read_poll_armed = false;
        }
        if c.result >= 0 {
            game.readable = true;
        }
        if !game.read_poll_armed && !game.pty_closed && !game.exited {
            game.arm_read(&mut self.ring, g);
        }
        let owner = game.owner;
        self.pump_or_after(owner, g);
    }

    /// Game `g` has output: through its player's connection (which sends it too), or
    /// straight to the bin when it has none.
    fn pump_or_after(&mut self, owner: Option<ConnRef>, g: usize) {
        match owner {
            Some(r) if self.alive(r) => self.after(r.slot as usize),
            _ => self.pump(g),
        }
    }

    fn alive(&self, r: ConnRef) -> bool {
        self.conns
            .get(r.slot as usize)
            .is_some_and(|c| c.sock.generation == r.generation)
    }

    /// Move output of the connection's games to its session, as far as it has room.
    fn pump_conn_games(&mut self, slot: usize) {
        let Some(conn) = self.conns.get(slot) else {
            return;
        };
        // At most a few games per connection: index loop, no allocation.
        for i in 0..conn.games.len() {
            let Some(&(_, g)) = self.conns.get(slot).and_then(|c| c.games.get(i)) else {
                break;
            };
            self.pump(g);
        }
    }

    /// Read game `g`'s waiting output into its session (or drop it once it has none).
    fn pump(&mut self, g: usize) {
        let now = now_ms();
        for _ in 0..READS_PER_TURN {
            let Some(game) = self.games.get_mut(g) else {
                return;
            };
            if !game.readable {
                break;
            }
            let owner = game
                .owner
                .filter(|r| {
                    self.conns
                        .get(r.slot as usize)
                        .is_some_and(|c| c.sock.generation == r.generation)
                })
                .map(|r| r.slot as usize);
            let room = match owner {
                Some(s) => self
                    .conns
                    .get(s)
                    .map_or(0, |c| c.session.pty_room(game.key)),
                // Nobody to show it to: keep draining so the game is not stuck while it saves.
                None => games::READ_CHUNK,
            };
            if room == 0 {
                return;
            }
            let want = room.min(games::READ_CHUNK);
            let Some(buf) = self.scratch.get_mut(..want) else {
                return;
            };
            match games::read(&game.master, buf) {
                Read::Data(n) => {
                    games::count(&self.metrics, Direction::Out, n);
                    let key = game.key;
                    if let (Some(s), Some(out)) = (owner, self.scratch.get(..n)) {
                        if let Some(conn) = self.conns.get_mut(s) {
                            conn.session.handle_pty_output(key, out, now);
                        }
                    }
                }
                Read::Empty => game.readable = false,
                Read::Closed => {
                    game.readable = false;
                    game.pty_closed = true;
                }
            }
        }
        let Some(game) = self.games.get(g) else {
            return;
        };
        if game.readable {
            // More is waiting: the other connections go first, then another round.
            if !self.pending_pumps.contains(&g) {
                self.pending_pumps.push(g);
            }
        } else if game.exited {
            self.finish_game(g);
        }
    }

    fn run_pumps(&mut self) {
        if self.pending_pumps.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending_pumps);
        for &g in &pending {
            let owner = self.games.get(g).and_then(|x| x.owner);
            self.pump_or_after(owner, g);
        }
        // Keep the capacity (the list is refilled by the pumps just run).
        let mut pending = pending;
        pending.clear();
        if self.pending_pumps.is_empty() {
            self.pending_pumps = pending;
        }
    }

    fn game_exited(&mut self, tag: Tag) {
        let g = tag.index as usize;
        let Some(game) = self
            .games
            .get_mut(g)
            .filter(|x| x.generation == tag.generation)
        else {
            return;
        };
        game.exited = true;
        // Its last output (a goodbye, a tombstone) still reaches the player: finished once
        // read, unless nobody takes it.
        game.readable = true;
        let owner = game.owner;
        self.pump_or_after(owner, g);
    }

    /// The game exited and its output is read: reap it, count it, give back its claim and
    /// tell its session.
    fn finish_game(&mut self, g: usize) {
        if !self.games.contains(g) {
            return;
        }
        let mut game = self.games.remove(g);
        game.exited = true;
        game.disarm(&mut self.ring, g);
        let status = game.reap(&self.metrics);
        if game.claimed {
            self.release_claim(game.user.clone(), game.game_id.clone());
        }
        if let Some(r) = game.owner {
            let now = now_ms();
            if let Some(conn) = self.conn(r) {
                conn.games.retain(|(_, s)| *s != g);
                conn.session.handle_game_ended(game.key, status, now);
                self.after(r.slot as usize);
            }
        }
        self.pending_pumps.retain(|p| *p != g);
    }

    fn hang_up_game(&mut self, g: usize, now: Millis) {
        let Some(game) = self.games.get_mut(g) else {
            return;
        };
        if let Some(at) = game.hang_up(now) {
            self.timers
                .push(TimerOwner::Game(g as u32, game.generation), at);
        }
        // Its output is now read and dropped until it exits.
        if game.readable {
            self.pump(g);
        }
    }

    fn spawn(
        &mut self,
        conn: ConnRef,
        key: GameKey,
        game_id: String,
        user: String,
        terminal: crate::game::TerminalInfo,
        claimed: bool,
    ) {
        let config = self.env.config.clone();
        let run_as = self.shared.run_as.clone();
        let post = self.spawn_post.clone();
        let (gid, u) = (game_id.clone(), user.clone());
        let job = move || {
            let result = match config.games.iter().find(|g| g.id == gid) {
                None => Err(format!("no game {gid}")),
                // File-system preparation and clone/exec can block: off the reactor.
                Some(game) => crate::game::prepare(&config, game, &u, &terminal, run_as.as_ref())
                    .map_err(|e| e.to_string())
                    .and_then(|spec| crate::pty::spawn(&spec).map_err(|e| e.to_string())),
            };
            post.send(SpawnDone {
                conn,
                key,
                game_id: gid,
                user: u,
                claimed,
                result,
            });
        };
        if self.spawn_pool.submit(job).is_err() {
            self.spawned(SpawnDone {
                conn,
                key,
                game_id,
                user,
                claimed,
                result: Err("too many games are starting at once".into()),
            });
        }
    }

    fn spawned(&mut self, done: SpawnDone) {
        let now = now_ms();
        let game_idx = self.metrics.game_index(&done.game_id);
        self.metrics.game_spawned(game_idx, done.result.is_ok());
        let alive = self.conn(done.conn).is_some();
        let mut child = match done.result {
            Ok(c) => c,
            Err(e) => {
                if done.claimed {
                    self.release_claim(done.user, done.game_id);
                }
                if let Some(conn) = self.conn(done.conn) {
                    conn.session.handle_spawned(done.key, Err(e), now);
                    self.after(done.conn.slot as usize);
                }
                return;
            }
        };
        let master = match child.take_master() {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "game session setup failed");
                if done.claimed {
                    self.release_claim(done.user, done.game_id);
                }
                if let Some(conn) = self.conn(done.conn) {
                    conn.session.handle_spawned(
                        done.key,
                        Err("The game could not be started.".into()),
                        now,
                    );
                    self.after(done.conn.slot as usize);
                }
                return;
            }
        };
        let generation = self.generation();
        let span = tracing::info_span!(
            "game",
            core = self.id,
            game = %done.game_id,
            account = %crate::auth::printable(&done.user)
        );
        let g = self.games.insert(Game {
            generation,
            key: done.key,
            owner: alive.then_some(done.conn),
            child,
            master,
            readable: false,
            write_waiting: false,
            read_poll_armed: false,
            exited: false,
            pty_closed: false,
            hung_up: false,
            kill_at: None,
            game_id: done.game_id,
            user: done.user,
            claimed: done.claimed,
            game_idx,
            span,
        });
        self.metrics.pty_op(PtyOp::Open);
        if let Some(game) = self.games.get_mut(g) {
            game.arm(&mut self.ring, g);
        }
        match self.conn(done.conn) {
            Some(conn) => {
                conn.games.push((done.key, g));
                conn.session.handle_spawned(done.key, Ok(()), now);
                if let Some(game) = self.games.get(g) {
                    tracing::debug!(parent: &game.span, "game process running");
                }
                self.after(done.conn.slot as usize);
            }
            // The player left while it was starting: hang it up like any other.
            None => self.hang_up_game(g, now),
        }
    }
}

// ----- the control core, wake-ups, timers, stopping -----
impl DataCore {
    fn ask_control(&mut self, conn: ConnRef, token: Token, request: Request) {
        if let Request::ClaimGame { user, game_id } = &request {
            self.pending_claims
                .insert((conn, token), (user.clone(), game_id.clone()));
        }
        let msg = ToControl {
            core: self.id,
            from: Some((conn, token)),
            request,
        };
        if self.control_backlog.len() >= MAX_CONTROL_BACKLOG {
            // The control core is far behind: say so now rather than queue without bound.
            self.pending_claims.remove(&(conn, token));
            if let Some(c) = self.conn(conn) {
                c.session
                    .handle_control_reply(token, Reply::Unavailable, now_ms());
            }
            return;
        }
        self.send_control(msg);
    }

    fn release_claim(&mut self, user: String, game_id: String) {
        // A release is never dropped: without it the account could not start that game again.
        self.send_control(ToControl {
            core: self.id,
            from: None,
            request: Request::ReleaseGame { user, game_id },
        });
    }

    fn send_control(&mut self, msg: ToControl) {
        if self.control_backlog.is_empty() {
            match self.to_control.push(msg) {
                Ok(()) => {}
                Err(msg) => self.control_backlog.push_back(msg),
            }
        } else {
            self.control_backlog.push_back(msg);
        }
        self.wakes.owe(0);
    }

    fn flush_control_backlog(&mut self) {
        while let Some(msg) = self.control_backlog.pop_front() {
            if let Err(msg) = self.to_control.push(msg) {
                self.control_backlog.push_front(msg);
                break;
            }
            self.wakes.owe(0);
        }
    }

    fn woken(&mut self, tag: Tag, armed: bool) {
        if tag.index == super::EVENTFD_INDEX {
            super::mesh::drain_eventfd(&self.eventfd);
            // A multishot poll that ended is re-armed.
            if !armed {
                super::arm_wake(&mut self.ring, &self.eventfd);
            }
        }
        let now = now_ms();
        while let Some(msg) = self.from_control.pop() {
            match msg {
                FromControl::Reply { conn, token, reply } => {
                    let claim = self.pending_claims.remove(&(conn, token));
                    match self.conn(conn) {
                        Some(c) => {
                            c.session.handle_control_reply(token, reply, now);
                            self.after(conn.slot as usize);
                        }
                        None => {
                            if let (Some((user, game_id)), Reply::Done(Ok(()))) = (claim, &reply) {
                                self.release_claim(user, game_id);
                            }
                        }
                    }
                }
                FromControl::Notice(Notice::EndSessionsOf(name)) => self.end_sessions_of(&name),
            }
        }
        self.flush_control_backlog();
        while let Some(done) = self.spawns.try_recv() {
            self.spawned(done);
        }
    }

    /// The account `name` was locked or deleted: end every connection logged in as it.
    fn end_sessions_of(&mut self, name: &str) {
        let now = now_ms();
        let slots: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.sock.phase == Phase::Open && c.session.belongs_to(name))
            .map(|(s, _)| s)
            .collect();
        for s in slots {
            if let Some(c) = self.conns.get_mut(s) {
                c.session
                    .shutdown("Your account was locked or removed by the operator.", now);
            }
            self.after(s);
        }
    }

    fn fire_timers(&mut self) {
        let now = now_ms();
        while let Some((at, owner)) = self.timers.pop_due(now) {
            match owner {
                TimerOwner::Conn(slot, generation) => {
                    let slot = slot as usize;
                    let Some(conn) = self
                        .conns
                        .get_mut(slot)
                        .filter(|c| c.sock.generation == generation)
                    else {
                        continue;
                    };
                    if conn.armed != Some(at) {
                        // Superseded by an earlier deadline (already handled) or none.
                        continue;
                    }
                    conn.armed = None;
                    if conn.session.poll_timeout().is_some_and(|t| t <= now) {
                        conn.session.handle_timeout(now);
                    }
                    self.after(slot);
                }
                TimerOwner::Game(g, generation) => {
                    if let Some(game) = self
                        .games
                        .get_mut(g as usize)
                        .filter(|x| x.generation == generation)
                    {
                        game.kill_if_due(now);
                    }
                }
                TimerOwner::Core => {
                    if self.sample_armed == Some(at) {
                        self.sample_armed = None;
                    }
                    self.core_tick(now);
                }
            }
        }
    }

    /// The core's own periodic work: the sampler, a failed accept's retry.
    fn core_tick(&mut self, now: Millis) {
        if self.accept_retry.is_some_and(|t| t <= now) {
            self.accept_retry = None;
            if self.stopping.is_none() {
                for (i, l) in self.listeners.iter().enumerate() {
                    if let Some(l) = l {
                        socket::arm_accept(&mut self.ring, l, i);
                    }
                }
            }
        }
        let at = Instant::now();
        if at >= self.sampler.next_tick() {
            // Stamped by the core's own loop: a stuck loop stops stamping.
            self.sampler
                .tick(&self.metrics, std::mem::take(&mut self.busy), at);
            self.metrics
                .set_buffer_pool_in_use(self.bufs.in_use() + self.sends_in_flight());
        }
        let left = self.sampler.next_tick().saturating_duration_since(at);
        let next = now + u64::try_from(left.as_millis()).unwrap_or(SAMPLE_MS).max(1);
        self.timers
            .arm(TimerOwner::Core, Some(next), &mut self.sample_armed);
    }

    fn sends_in_flight(&self) -> usize {
        self.conns
            .iter()
            .filter(|(_, c)| c.sock.sending.is_some())
            .count()
    }

    /// Stop: no new connections, every session told and its games hung up; the loop ends
    /// once all are gone or the drain's deadline passes.
    fn begin_stop(&mut self) {
        let now = now_ms();
        self.stopping = Some(now + DRAIN_MS);
        self.timers.push(TimerOwner::Core, now + DRAIN_MS);
        for (i, l) in self.listeners.iter_mut().enumerate() {
            if l.take().is_some() {
                let target = Tag::new(Kind::Accept, 0, i).encode();
                self.ring.push(
                    io_uring::opcode::AsyncCancel::new(target).build(),
                    Tag::IGNORE,
                );
            }
        }
        let slots: Vec<usize> = self.conns.iter().map(|(s, _)| s).collect();
        for s in slots {
            if let Some(c) = self.conns.get_mut(s) {
                c.session.shutdown(
                    "The server is shutting down; your game is being saved.",
                    now,
                );
            }
            self.after(s);
        }
        // Games whose player already left are hung up too.
        let games: Vec<usize> = self.games.iter().map(|(g, _)| g).collect();
        for g in games {
            self.hang_up_game(g, now);
        }
    }
}
