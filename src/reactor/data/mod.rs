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
use super::ring::{Completion, Kind, Ring, Tag, WakeTimer};
use super::shared::Shared;
use super::socket::{self, Phase, SendBuffers, Socket, CLOSE_LINGER_MS, SEND_CHUNK};
use super::timers::{Millis, TimerOwner, Timers};
use crate::control::{Notice, Reply, Request};
use crate::metrics::{CoreMetrics, Direction, PtyOp, RejectReason, SaveOp};
use crate::pty::PtyChild;
use crate::session::{Effect, GameKey, Session, SessionEnv, SpawnError, Token};
use slab::Slab;
use std::collections::{HashMap, VecDeque};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod admin;
mod cross;
mod play;
mod reattach;
mod watch;

use crate::reactor::view::GameView;
pub use watch::{PeerLink, PeerMsg};

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

/// Told to a player whose game start found the spawn queue full.
const BUSY: &str = "Too many games are starting at once; try again in a moment.";
/// Told to a player whose game would not fit in the descriptor budget.
const FULL: &str = "The server is full for new games right now; try again in a few minutes.";

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
    /// The player's terminal at the start (columns, rows).
    size: (u16, u16),
    key: GameKey,
    game_id: String,
    user: String,
    claimed: bool,
    /// The save backup taken before the start: `Some(ok)` to count in
    /// `game_saves_total{operation="backup"}`, `None` when there was nothing to copy.
    backup: Option<bool>,
    result: Result<PtyChild, SpawnError>,
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
    /// The server ends this connection for good (account locked): its games are hung up,
    /// not left waiting for the player.
    hang_up_games: bool,
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
    /// Queues to every other data core (`None` at this core's own index).
    pub peers: Vec<Option<PeerLink>>,
    /// Queues from every other data core.
    pub peers_rx: Vec<Option<Consumer<PeerMsg>>>,
    /// The core's ttyrec writer.
    pub recorder: crate::reactor::recorder::Recorder,
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
    /// The one timeout SQE in front of `timers`.
    wake_timer: WakeTimer,
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
    /// The reload count of the configuration in force here (see `reactor::reload`).
    config_epoch: u64,
    /// An admin drains the server: new games are refused.
    draining: bool,
    /// Connections recently closed for good (kicked, account locked): a game on its way to
    /// one of them from another core is hung up on arrival, not kept for a return.
    hung_up_conns: VecDeque<ConnRef>,
    /// Games asked of other cores for connections here, not answered yet: the core does not
    /// stop while one may still arrive (it would be dropped in the queue).
    handovers_awaited: usize,
    /// Accept failures since the last warning.
    accept_failures: (Option<Instant>, u64),
    /// Links to the other data cores (watching).
    peers: Vec<Option<PeerLink>>,
    peers_rx: Vec<Option<Consumer<PeerMsg>>>,
    /// This core's watchers of games on other cores.
    watching: HashMap<crate::watch::GameRef, Vec<crate::reactor::view::Watcher>>,
    /// A watched game's output after the sanitiser (reused).
    watch_buf: Vec<u8>,
    /// Watched games' output of this turn, for their watchers at the turn's end.
    fanout: Vec<(crate::watch::GameRef, bytes::Bytes)>,
    /// The control core's index among the wake-ups.
    control_wake: usize,
    /// The ttyrec writer.
    recorder: crate::reactor::recorder::Recorder,
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
            wake_timer: WakeTimer::default(),
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
            config_epoch: 0,
            draining: false,
            hung_up_conns: VecDeque::new(),
            handovers_awaited: 0,
            accept_failures: (None, 0),
            control_wake: p.peers.len(),
            peers: p.peers,
            peers_rx: p.peers_rx,
            watching: HashMap::new(),
            watch_buf: Vec::new(),
            fanout: Vec::new(),
            recorder: p.recorder,
        })
    }

    /// Serve until stopped and drained.
    pub fn run(mut self) {
        for (i, l) in self.listeners.iter().enumerate() {
            if let Some(l) = l {
                socket::arm_accept(&mut self.ring, l, i);
            }
        }
        crate::reactor::arm_wake(&mut self.ring, &self.eventfd);
        self.sample(now_ms());
        loop {
            let now = now_ms();
            let timeout = if self.pending_pumps.is_empty() {
                self.wake_timer.set(&mut self.ring, self.timers.next(), now);
                None
            } else {
                // Output is waiting: look at the ring without sleeping, then go on.
                Some(Duration::ZERO)
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
            self.flush_fanout();
            self.fire_timers();
            if self.shared.config_epoch.load(Ordering::Acquire) != self.config_epoch {
                self.reconfigure();
            }
            if self.shared.shutdown.load(Ordering::Relaxed) && self.stopping.is_none() {
                self.begin_stop();
            }
            if let Some(deadline) = self.stopping {
                let done =
                    self.conns.is_empty() && self.games.is_empty() && self.handovers_awaited == 0;
                if done || now_ms() >= deadline {
                    break;
                }
            }
        }
        self.wakes.send(&mut self.ring);
        self.ring.turn(Some(Duration::ZERO));
        // Every recording on its way to the disk gets there.
        self.recorder.close();
        tracing::debug!(core = self.id, "core stopped");
    }
}

/// Milliseconds on the reactor clock.
fn now_ms() -> Millis {
    crate::reactor::clock::now_ms()
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
            Kind::Timer => self.wake_timer.fired(),
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
        let mut session = Session::new(self.env.clone(), id, peer, now);
        if self.draining {
            session.handle_drain(true, now);
        }
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
            hang_up_games: false,
        });
        if !expects_proxy {
            self.admit(slot, peer, open);
        }
        self.after(slot);
    }

    /// Admit the connection (limits, counts) or refuse it with a DISCONNECT saying why.
    fn admit(&mut self, slot: usize, client: SocketAddr, open: usize) {
        let config = self.env.config.clone();
        let verdict = admission::admit(&self.shared, &config.limits, client.ip(), open, now_ms());
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
            let mut buf = buf;
            buf.drain(..n);
            if let Err(buf) = conn.sock.send_buf(&mut self.ring, slot, buf) {
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
                let bytes = out.get(..n).unwrap_or_default();
                if let Err(buf) = conn.sock.send(&mut self.ring, slot, buf, bytes) {
                    self.send_bufs.give(buf);
                }
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
            let limits = &self.env.config.limits;
            admission::ended(
                &self.shared,
                limits,
                a,
                outcome.logged_in,
                outcome.offence,
                now,
            );
        }
        self.shared.connections.fetch_sub(1, Ordering::Relaxed);
        tracing::debug!(parent: conn.session.span(), "connection closed");
        let games = std::mem::take(&mut conn.games);
        let idle = conn.sock.is_idle();
        let hang_up = conn.hang_up_games;
        if hang_up {
            let r = ConnRef {
                slot: slot as u32,
                generation: conn.sock.generation,
            };
            if self.hung_up_conns.len() >= 64 {
                self.hung_up_conns.pop_front();
            }
            self.hung_up_conns.push_back(r);
        }
        for (_, g) in games {
            self.leave_game(g, now, hang_up);
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
                        g.view.resize(size.cols, size.rows);
                        self.metrics.pty_op(PtyOp::Resize);
                    }
                    if let Some(g) = self.game_slot_of(slot, game) {
                        self.screen_to_all_watchers(g);
                    }
                }
                Effect::Reattach {
                    game,
                    target,
                    take_over,
                    size,
                } => self.reattach(r, game, target, take_over, size),
                Effect::Watch { watch, game } => self.watch(r, watch, game, true),
                Effect::Resync { watch, game } => self.watch(r, watch, game, false),
                Effect::Unwatch { watch, game } => self.unwatch(r, watch, game),
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
                        let hang_up = conn.hang_up_games;
                        self.leave_game(g, now, hang_up);
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
