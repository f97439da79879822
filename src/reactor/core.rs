//! One data core: its listener, its connections, its buffer pool, and its line to the
//! control core. Everything here is `Rc`/`RefCell`: nothing is shared with other cores except
//! the immutable configuration and the connection-count atomic.

use super::conn::Conn;
use super::control::{Envelope, Reply, ReplyEnvelope, Request};
use super::notify::Notify;
use super::pool::BufferPool;
use crate::config::Config;
use crate::metrics::{CoreMetrics, Registry};
use crate::pty::RunAs;
use crate::ssh::server::ServerSettings;
use glommio::channels::shared_channel::{ConnectedReceiver, ConnectedSender};
use glommio::net::TcpListener;
use slab::Slab;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What all cores share (read-only, or atomics).
pub struct Shared {
    pub config: Arc<Config>,
    /// Account the games run as (when the server is root).
    pub run_as: Option<RunAs>,
    /// Connections open on all cores, for `limits.max_connections`.
    pub connections: AtomicUsize,
    /// Of those, not yet logged in (MaxStartups).
    pub unauthenticated: AtomicUsize,
    /// Per-source connection counts and penalties, shared lock-free by every core.
    pub sources: crate::limits::SourceTable,
    /// Set by the signal thread; cores poll it (and /health/ready reports draining).
    pub shutdown: Arc<AtomicBool>,
    /// Data cores whose SSH listener is bound (readiness).
    pub cores_bound: AtomicUsize,
    /// Every core's metric cells, read by the control core at scrape time.
    pub registry: Arc<Registry>,
}

/// A pending control-core answer.
#[derive(Default)]
struct ReplySlot {
    reply: RefCell<Option<Reply>>,
    ready: Notify,
}

pub struct Core {
    /// This core's index.
    pub id: usize,
    pub shared: Arc<Shared>,
    /// SSH settings (host key, algorithms) built for this core.
    pub ssh_settings: Rc<ServerSettings>,
    /// Transient I/O buffers.
    pub pool: Rc<BufferPool>,
    /// This core's metric cells (written only here).
    pub metrics: Arc<CoreMetrics>,
    /// Open connections.
    pub conns: RefCell<Slab<Weak<Conn>>>,
    /// Requests to the control core.
    to_control: ConnectedSender<Envelope>,
    /// Requests waiting for their answer.
    pending: RefCell<HashMap<u64, Rc<ReplySlot>>>,
    /// Next request number.
    next_request: Cell<u64>,
    /// Per-source log rate limiting.
    pub log_rate: super::lograte::LogRate,
    /// A latency-sensitive task queue: tasks that wait on another thread (the blocking pool
    /// spawning games) run here, or glommio lets their wake-up wait up to ~100 ms.
    pub urgent: glommio::TaskQueueHandle,
    /// Games running on this core (for $PLAYERS).
    pub games_running: Rc<Cell<usize>>,
}

impl Core {
    pub fn new(
        id: usize,
        shared: Arc<Shared>,
        metrics: Arc<CoreMetrics>,
        ssh_settings: Rc<ServerSettings>,
        to_control: ConnectedSender<Envelope>,
    ) -> Rc<Core> {
        Rc::new(Core {
            id,
            metrics,
            shared,
            ssh_settings,
            pool: Rc::new(BufferPool::default()),
            conns: RefCell::new(Slab::new()),
            to_control,
            pending: RefCell::new(HashMap::new()),
            next_request: Cell::new(0),
            games_running: Rc::new(Cell::new(0)),
            log_rate: super::lograte::LogRate::default(),
            urgent: glommio::executor().create_task_queue(
                glommio::Shares::default(),
                glommio::Latency::Matters(Duration::from_millis(1)),
                "urgent",
            ),
        })
    }

    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Ask the control core; `None` if it is gone (shutting down).
    pub async fn request(&self, request: Request) -> Option<Reply> {
        let id = self.next_request.get();
        self.next_request.set(id.wrapping_add(1));
        let slot = Rc::new(ReplySlot::default());
        self.pending.borrow_mut().insert(id, slot.clone());
        let sent = self
            .to_control
            .send(Envelope {
                core: self.id,
                id,
                request,
            })
            .await;
        if sent.is_err() {
            self.pending.borrow_mut().remove(&id);
            return None;
        }
        slot.ready.wait().await;
        let reply = slot.reply.borrow_mut().take();
        reply
    }

    /// Route control-core answers to their waiting requests (runs on a latency-sensitive
    /// task queue: cross-core wake-ups are otherwise slow in glommio).
    pub async fn dispatch_replies(self: Rc<Self>, replies: ConnectedReceiver<ReplyEnvelope>) {
        while let Some(r) = recv_polled(&replies).await {
            if r.id == super::control::NOTICE {
                if let super::control::Reply::EndSessionsOf(name) = r.reply {
                    self.end_sessions_of(&name);
                }
                continue;
            }
            if let Some(slot) = self.pending.borrow_mut().remove(&r.id) {
                *slot.reply.borrow_mut() = Some(r.reply);
                slot.ready.signal();
            }
        }
    }

    /// Every connection of this core still alive (a copy: acting on one may close it).
    fn live_conns(&self) -> Vec<Rc<Conn>> {
        self.conns
            .borrow()
            .iter()
            .filter_map(|(_, w)| w.upgrade())
            .collect()
    }

    /// The account `name` was locked or deleted: end every connection logged in as it (at
    /// the SSH level or in a lobby) or playing as it; their games get the hangup and save.
    fn end_sessions_of(&self, name: &str) {
        for c in self.live_conns() {
            if c.belongs_to(name) {
                c.shutdown("Your account was locked or removed by the operator.");
            }
        }
    }

    /// Accept connections on one listener until shutdown.
    pub async fn accept_loop(self: Rc<Self>, listener: TcpListener) {
        // Accept fails in bursts (EMFILE, ENFILE, ENOBUFS): one warning per 10 s, with a count.
        let mut last_warning: Option<std::time::Instant> = None;
        let mut unreported = 0u64;
        loop {
            let accepted =
                futures_lite::future::or(async { Some(listener.accept().await) }, async {
                    self.wait_shutdown().await;
                    None
                })
                .await;
            let Some(result) = accepted else { break };
            let stream = match result {
                Ok(s) => s,
                Err(e) => {
                    unreported += 1;
                    if last_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                        tracing::warn!(error = %e, failures = unreported, "accept failed");
                        last_warning = Some(std::time::Instant::now());
                        unreported = 0;
                    }
                    glommio::timer::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            Conn::start(self.clone(), stream);
        }
    }

    async fn wait_shutdown(&self) {
        while !self.shared.shutdown.load(Ordering::Relaxed) {
            glommio::timer::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Tell every connection the server is stopping, hang up games, wait (bounded) for them.
    pub async fn shut_down_connections(&self) {
        let conns = self.live_conns();
        for c in &conns {
            c.shutdown("The server is shutting down; your game is being saved.");
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while std::time::Instant::now() < deadline
            && (self.games_running.get() > 0 || !self.conns.borrow().is_empty())
        {
            glommio::timer::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// How often a cross-core receiver looks at its queue even without a wake-up.
const RECV_POLL: Duration = Duration::from_millis(250);

/// Receive from a cross-core channel, re-checking the queue every `RECV_POLL`.
///
/// glommio 0.9's shared-channel receive pops the queue and, finding it empty, registers its
/// waker afterwards; a message pushed in between wakes nobody. CI hit it once under heavy
/// load: an SSH authentication waited 30 s for a control-core answer that was already queued.
/// Re-checking the queue bounds such a lost wake-up to a quarter second. Dropping a pending
/// `recv` takes nothing off the queue, so racing it against a timer is safe.
pub async fn recv_polled<T: Send + Sized>(rx: &ConnectedReceiver<T>) -> Option<T> {
    loop {
        let got = futures_lite::future::or(async { Some(rx.recv().await) }, async {
            glommio::timer::sleep(RECV_POLL).await;
            None
        })
        .await;
        if let Some(item) = got {
            return item;
        }
    }
}
