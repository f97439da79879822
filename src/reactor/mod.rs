//! The only code that does I/O: a hand-rolled io_uring reactor. One thread and one ring per
//! data core (its listeners' accepts, its connections, its games), plus a control core on the
//! same kind of loop (account decisions on a bounded pool, the operators' HTTP endpoint);
//! bounded queues and ring-to-ring wake-ups between them; start-up and graceful shutdown.
//!
//! - `ring`: the ring, one `io_uring_enter` per turn, the `user_data` layout.
//! - `bufring`: the provided 4 KiB receive buffers.
//! - `socket`: one TCP socket's receive, send and way out.
//! - `data`: a data core's loop (sessions, games, timers).
//! - `games`: a core's running games (PTY master, pidfd, hangup grace).
//! - `control_core` / `http`: the control core's loop and its HTTP sockets.
//! - `mesh`: cross-core queues and wake-ups; `blocking`: the bounded thread pools.
//! - `timers`: the per-core timer heap; `probe`: the kernel features checked at start.
//! - `admission`, `listen`, `shared`, `clock`: limits, listening sockets, shared atomics, time.

pub mod admin_socket;
pub mod admission;
pub mod blocking;
pub mod bufring;
pub mod clock;
pub mod control_core;
pub mod data;
pub mod games;
pub mod http;
pub mod listen;
pub mod mesh;
pub mod probe;
pub mod recorder;
pub mod reload;
pub mod ring;
pub mod shared;
pub mod socket;
pub mod timers;
pub mod view;

pub use shared::Shared;

use crate::auth::{PasswordHasher, PasswordParams, Store};
use crate::config::Config;
use crate::metrics::{self, HttpState, Probe, ProbeOutcome, Registry, RegistryOptions};
use crate::session::SessionEnv;
use crate::ssh::hostkey::HostKey;
use crate::ssh::server::ServerSettings;
use mesh::Waker;
use ring::{Kind, Ring, Tag};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, OnceLock};
use thiserror::Error;

/// Depth of each cross-core queue.
const QUEUE_DEPTH: usize = 4096;
/// The tag index of a wake-up through the eventfd (MSG_RING wake-ups use 0).
pub const EVENTFD_INDEX: u32 = 1;
/// Threads that prepare and spawn games, per data core. A spawn is mostly the kernel's work
/// (clone copies the descriptor table, exec tears it down) and its thread waits in
/// CLONE_VFORK meanwhile, so a few run side by side.
const SPAWN_THREADS: usize = 4;
/// Games waiting to be spawned, per data core; past it a start is refused as busy. Large
/// enough that a ramp of a thousand players queues rather than fails (each waits its turn;
/// measured: spawns take ~1–2 ms each under load).
const SPAWN_QUEUE: usize = 4096;

#[derive(Debug, Error)]
pub enum StartError {
    #[error("{0}")]
    DataDir(String),
    #[error("cannot open the account store: {0}")]
    Store(String),
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start a core: {0}")]
    Executor(String),
    #[error("cannot bind the HTTP listener {addr}: {source}")]
    HttpBind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("games are configured to run as {user:?}: {reason}")]
    RunAs { user: String, reason: String },
    /// The kernel lacks what the reactor needs (main exits with status 2).
    #[error("{0}")]
    Unsupported(String),
}

/// A running server: its bound addresses and the means to stop it.
pub struct Server {
    /// Where SSH listens (the real ports when the config said 0), in the config's order.
    pub ssh_addrs: Vec<SocketAddr>,
    /// Where HTTP (/metrics, /health) listens.
    pub http_addrs: Vec<SocketAddr>,
    shared: Arc<Shared>,
    /// Data core threads (joined on shutdown). The control core serves until the process
    /// exits, so late account writes from draining cores still land.
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Ask every core to stop: no new connections, games hung up, bounded drain.
    pub fn stop(&self) {
        self.shared.stop();
    }

    /// Wait for every data core to finish.
    pub fn join(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }

    /// Reload: take what `new` (valid, loaded as at start) may change while running; the
    /// plan says what changed and what waits for a restart.
    pub fn reload(&self, new: Config) -> reload::Plan {
        let running = self.shared.live.load_full();
        let plan = reload::plan(&running, new);
        self.shared.reconfigure(plan.config.clone());
        plan
    }

    pub fn shutdown_flag(&self) -> Arc<Shared> {
        self.shared.clone()
    }
}

/// Raise `RLIMIT_NOFILE` for `max_connections`. When the system will not allow enough, lower
/// `max_connections` to what fits and say so: a player past it then gets "server full" at once,
/// where running out of descriptors would leave connections hanging in the accept queue and
/// games failing to start.
fn fit_fd_limit(max_connections: usize) -> (usize, u64) {
    match crate::pty::fdlimit::raise_for(max_connections) {
        Ok(budget) if budget.limit >= budget.needed => {
            tracing::debug!(limit = budget.limit, "file descriptor limit");
            (max_connections, budget.limit)
        }
        Ok(budget) => {
            let allowed = usize::try_from(budget.connections_allowed())
                .unwrap_or(usize::MAX)
                .min(max_connections);
            tracing::warn!(
                limit = budget.limit,
                needed = budget.needed,
                configured = max_connections,
                max_connections = allowed,
                "RLIMIT_NOFILE is below what limits.max_connections needs with a game each; \
                 connections are admitted up to max_connections (one descriptor each) and \
                 games while descriptors remain (raise the hard limit: ulimit -Hn, systemd \
                 LimitNOFILE=)"
            );
            (allowed, budget.limit)
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read or raise RLIMIT_NOFILE");
            (max_connections, u64::MAX)
        }
    }
}

/// Who runs the games: `run_as` when root; refused when not root and external games would
/// run as the server's own user without the operator saying so. Public for `check-config`,
/// which reports what `start` would decide.
pub fn games_user(config: &Config) -> Result<Option<crate::pty::RunAs>, StartError> {
    if nix::unistd::geteuid().is_root() {
        if crate::pty::suid_dumpable_is_unsafe() {
            return Err(StartError::RunAs {
                user: config.run_as.clone(),
                reason: "fs.suid_dumpable is 1, which would let the game's user ptrace a game \
                         while it still shares the server's memory; set it to 0 or 2 \
                         (sysctl -w fs.suid_dumpable=0)"
                    .into(),
            });
        }
        return crate::pty::lookup_run_as(&config.run_as)
            .map(Some)
            .map_err(|e| StartError::RunAs {
                user: config.run_as.clone(),
                reason: e.to_string(),
            });
    }
    let external = config
        .games
        .iter()
        .any(|g| matches!(g.command, crate::config::GameCommand::Program(_)));
    if external && !config.games_as_server_user {
        return Err(StartError::RunAs {
            user: config.run_as.clone(),
            reason: "the server is not running as root, so games would run as the \
                     server's own user and could read its host key and account store; \
                     start it as root (games then run as run_as), remove the external \
                     games, or set games_as_server_user: true to accept that"
                .into(),
        });
    }
    if external {
        tracing::warn!(
            "not running as root: games run as the server's own user \
             (games_as_server_user: true)"
        );
    }
    Ok(None)
}

/// Start the server: kernel check, data directory, host key, account store, listeners, cores.
pub fn start(mut config: Config) -> Result<Server, StartError> {
    let _ = clock::now_ms();
    let features = probe::check().map_err(|e| StartError::Unsupported(e.0))?;
    let (max_connections, fd_limit) = fit_fd_limit(config.limits.max_connections);
    config.limits.max_connections = max_connections;
    if let Some(nproc) = config.game_limits.processes {
        if nproc < config.limits.max_connections as u64 {
            tracing::warn!(
                processes = nproc,
                max_connections = config.limits.max_connections,
                "game_limits.processes is RLIMIT_NPROC, counted per user over all games of \
                 run_as: games past that many processes will fail to start"
            );
        }
    }
    crate::datadir::ensure(&config.data_dir).map_err(|e| {
        StartError::DataDir(format!(
            "cannot create data_dir {}: {e}",
            config.data_dir.display()
        ))
    })?;
    let host_key =
        crate::datadir::load_or_create_host_key(&config.data_dir).map_err(StartError::DataDir)?;
    let store = Store::open(&crate::datadir::accounts_dir(&config.data_dir))
        .map_err(|e| StartError::Store(e.to_string()))?;
    let hasher = PasswordHasher::new(PasswordParams {
        memory_kib: config.password.memory_kib,
        iterations: config.password.iterations,
        parallelism: config.password.parallelism,
    })
    .map_err(|e| StartError::Store(e.to_string()))?;
    let run_as = games_user(&config)?;

    let cores = config.cores.max(1);
    let registry = Arc::new(Registry::new(RegistryOptions {
        cores,
        game_ids: config.games.iter().map(|g| g.id.clone()).collect(),
        connections_limit: config.limits.max_connections,
        version: env!("CARGO_PKG_VERSION").into(),
        commit: metrics::BUILD_COMMIT.into(),
    }));
    let config = Arc::new(config);
    let shared = Arc::new(Shared {
        live: arc_swap::ArcSwap::new(config.clone()),
        config_epoch: AtomicU64::new(0),
        config,
        run_as,
        connections: AtomicUsize::new(0),
        unauthenticated: AtomicUsize::new(0),
        games: AtomicUsize::new(0),
        fd_limit,
        sources: crate::limits::SourceTable::new(),
        shutdown: Arc::new(AtomicBool::new(false)),
        cores_bound: AtomicUsize::new(0),
        registry,
        wakers: OnceLock::new(),
    });

    // Listeners first, in this thread: port 0 resolves on the first core's bind and the
    // others share it (SO_REUSEPORT).
    let mut ssh_addrs = shared.config.ssh.listen.clone();
    let mut ssh_listeners = Vec::new();
    for _ in 0..cores {
        let (ls, addrs) =
            bind_all(&ssh_addrs).map_err(|(addr, source)| StartError::Bind { addr, source })?;
        ssh_addrs = addrs;
        ssh_listeners.push(ls);
    }
    let (http_listeners, http_addrs) = bind_all(&shared.config.http.listen)
        .map_err(|(addr, source)| StartError::HttpBind { addr, source })?;

    // The mesh: per data core, a queue to the control core and one back.
    let mut to_control_rx = Vec::new();
    let mut from_control_tx = Vec::new();
    let mut core_ends = Vec::new();
    for _ in 0..cores {
        let (tx, rx) = mesh::queue(QUEUE_DEPTH);
        to_control_rx.push(rx);
        let (back_tx, back_rx) = mesh::queue(QUEUE_DEPTH);
        from_control_tx.push(back_tx);
        core_ends.push((tx, back_rx));
    }
    // And between data cores (watching), one queue for each ordered pair.
    let mut peer_tx: Vec<Vec<Option<data::PeerLink>>> = (0..cores)
        .map(|_| (0..cores).map(|_| None).collect())
        .collect();
    let mut peer_rx: Vec<Vec<Option<mesh::Consumer<data::PeerMsg>>>> = (0..cores)
        .map(|_| (0..cores).map(|_| None).collect())
        .collect();
    for from in 0..cores {
        for to in (0..cores).filter(|&t| t != from) {
            let (tx, rx) = mesh::queue(QUEUE_DEPTH);
            if let Some(slot) = peer_tx.get_mut(from).and_then(|v| v.get_mut(to)) {
                *slot = Some(data::PeerLink {
                    tx,
                    backlog: std::collections::VecDeque::new(),
                });
            }
            if let Some(slot) = peer_rx.get_mut(to).and_then(|v| v.get_mut(from)) {
                *slot = Some(rx);
            }
        }
    }
    let mut peer_parts = peer_tx.into_iter().zip(peer_rx);
    let mut eventfds = Vec::new();
    for _ in 0..=cores {
        eventfds.push(Arc::new(
            mesh::eventfd().map_err(|e| StartError::Executor(e.to_string()))?,
        ));
    }

    // Each core makes its ring on its own thread (SINGLE_ISSUER), reports the ring's
    // descriptor, and waits for every core's waker before it starts.
    let (ready_tx, ready_rx) = mpsc::channel::<(usize, Result<i32, String>)>();
    // Each data core says when it is built (its buffers registered): `start` returns only
    // then, so readiness holds from the first probe and a failure is a start error.
    let (built_tx, built_rx) = mpsc::channel::<(usize, Result<(), String>)>();
    let mut go_senders = Vec::new();
    let mut threads = Vec::new();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());

    // The control core is index `cores`.
    {
        let (go_tx, go_rx) = mpsc::channel::<Vec<Waker>>();
        go_senders.push(go_tx);
        let ready = ready_tx.clone();
        let shared_c = shared.clone();
        let eventfd = eventfds[cores].clone();
        let max_concurrent = shared.config.password.max_concurrent;
        let http_state = http_state(&shared, store.clone());
        let control_metrics = shared.registry.control();
        std::thread::Builder::new()
            .name("dg-control".into())
            .spawn(move || {
                let ring = match Ring::new() {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = ready.send((cores, Err(e.to_string())));
                        return;
                    }
                };
                let _ = ready.send((cores, Ok(ring.fd())));
                let Ok(wakers) = go_rx.recv() else { return };
                let run = || -> std::io::Result<()> {
                    let mut settings =
                        crate::control::ControlSettings::from_config(&shared_c.config);
                    settings.games_user = shared_c.run_as.clone();
                    let pool = blocking::Pool::new("dg-accounts", max_concurrent + 2, 4096)?;
                    let own = Waker::new(None, eventfd.clone());
                    let http = http::HttpSide::new(&ring, http_listeners, http_state, own.clone())?;
                    let control = crate::control::Control::new(
                        store,
                        Arc::new(hasher),
                        settings,
                        control_metrics,
                        clock::now_ms(),
                    );
                    let (admin_post, admin) = blocking::mailbox(own.clone());
                    admin_socket::start(&shared_c.config.data_dir, admin_post);
                    let core = control_core::ControlCore::new(control_core::ControlCoreParts {
                        ring,
                        control,
                        pool,
                        admin,
                        jobs: blocking::mailbox(own),
                        from_cores: to_control_rx,
                        to_cores: from_control_tx,
                        wakes: mesh::PendingWakes::new(wakers.into_iter().take(cores).collect()),
                        eventfd,
                        http,
                        shared: shared_c.clone(),
                    });
                    core.run();
                    Ok(())
                };
                if let Err(e) = run() {
                    tracing::error!(error = %e, "the control core could not start");
                }
            })
            .map_err(|e| StartError::Executor(e.to_string()))?;
    }

    for (id, ((to_control, from_control), listeners)) in
        core_ends.into_iter().zip(ssh_listeners).enumerate()
    {
        let (go_tx, go_rx) = mpsc::channel::<Vec<Waker>>();
        go_senders.push(go_tx);
        let ready = ready_tx.clone();
        let built_tx = built_tx.clone();
        let shared_c = shared.clone();
        let key = host_key.clone();
        let eventfd = eventfds[id].clone();
        let pin = (cores <= cpus).then_some(id);
        let (peers, peers_rx) = peer_parts.next().unwrap_or_default();
        let handle = std::thread::Builder::new()
            .name(format!("dg-core-{id}"))
            .spawn(move || {
                if let Some(cpu) = pin {
                    pin_to_cpu(cpu);
                }
                let ring = match Ring::new() {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = ready.send((id, Err(e.to_string())));
                        return;
                    }
                };
                let _ = ready.send((id, Ok(ring.fd())));
                let Ok(wakers) = go_rx.recv() else { return };
                let Some(metrics) = shared_c.registry.core(id) else {
                    return;
                };
                let env = SessionEnv {
                    config: shared_c.config.clone(),
                    ssh: Rc::new(ssh_settings(&shared_c.config, key)),
                    registry: shared_c.registry.clone(),
                    metrics: metrics.clone(),
                    log_rate: Rc::new(crate::session::LogRate::default()),
                };
                let own = Waker::new(None, eventfd.clone());
                let (rec_post, rec_done) = blocking::mailbox(own.clone());
                let built =
                    blocking::Pool::new(&format!("dg-spawn-{id}"), SPAWN_THREADS, SPAWN_QUEUE)
                        .and_then(|spawn_pool| {
                            let recorder = recorder::Recorder::start(
                                format!("dg-rec-{id}"),
                                rec_post,
                                rec_done,
                                metrics.clone(),
                            )?;
                            data::DataCore::new(data::DataCoreParts {
                                id,
                                shared: shared_c.clone(),
                                env,
                                metrics,
                                ring,
                                listeners,
                                to_control,
                                from_control,
                                // Data cores by index, then the control core.
                                wakes: mesh::PendingWakes::new(wakers),
                                eventfd,
                                spawn_pool,
                                spawns: blocking::mailbox(own),
                                peers,
                                peers_rx,
                                recorder,
                            })
                        });
                match built {
                    Ok(core) => {
                        shared_c.cores_bound.fetch_add(1, Ordering::Relaxed);
                        let _ = built_tx.send((id, Ok(())));
                        tracing::debug!(core = id, "core listening");
                        core.run();
                    }
                    Err(e) => {
                        let _ = built_tx.send((id, Err(e.to_string())));
                    }
                }
            })
            .map_err(|e| StartError::Executor(e.to_string()))?;
        threads.push(handle);
    }
    drop(ready_tx);
    drop(built_tx);

    let mut ring_fds = vec![None; cores + 1];
    for _ in 0..=cores {
        match ready_rx.recv() {
            Ok((i, Ok(fd))) => {
                if let Some(slot) = ring_fds.get_mut(i) {
                    *slot = Some(fd);
                }
            }
            Ok((i, Err(e))) => {
                return Err(StartError::Executor(format!("core {i}: {e}")));
            }
            Err(_) => return Err(StartError::Executor("a core died at start".into())),
        }
    }
    let wakers: Vec<Waker> = ring_fds
        .iter()
        .zip(&eventfds)
        .map(|(fd, ev)| Waker::new(fd.filter(|_| features.msg_ring), ev.clone()))
        .collect();
    let _ = shared.wakers.set(wakers.clone());
    for tx in go_senders {
        let _ = tx.send(wakers.clone());
    }
    for _ in 0..cores {
        match built_rx.recv() {
            Ok((_, Ok(()))) => {}
            Ok((i, Err(e))) => return Err(StartError::Executor(format!("core {i}: {e}"))),
            Err(_) => return Err(StartError::Executor("a core died at start".into())),
        }
    }
    Ok(Server {
        ssh_addrs,
        http_addrs,
        shared,
        threads,
    })
}

/// Keep a data core's thread on one CPU (its caches, its interrupts' neighbour).
fn pin_to_cpu(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET stays inside it for cpu < 1024.
    #[allow(unsafe_code)]
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if cpu < 1024 {
            libc::CPU_SET(cpu, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        }
    }
}

/// Keep a multishot poll on the core's eventfd (wake-ups from threads without a ring).
pub fn arm_wake(ring: &mut Ring, eventfd: &OwnedFd) {
    let poll = io_uring::opcode::PollAdd::new(
        io_uring::types::Fd(eventfd.as_raw_fd()),
        libc::POLLIN as u32,
    )
    .multi(true)
    .build();
    ring.push(
        poll,
        Tag {
            kind: Kind::Wake,
            generation: 0,
            index: EVENTFD_INDEX,
        },
    );
}

/// The HTTP endpoint's state: metrics, probes of liveness and readiness.
fn http_state(shared: &Arc<Shared>, store: Store) -> HttpState {
    let mut state = HttpState::new(shared.registry.clone());
    state.metrics_enabled = shared.config.metrics.enabled;
    state.metrics_path = shared.config.metrics.path.clone();
    state.ready_probes.push(Probe::flag_unset(
        "shutdown",
        shared.shutdown.clone(),
        "draining: the server is shutting down",
    ));
    let s = shared.clone();
    state.ready_probes.push(Probe::new("ssh_listener", move || {
        let bound = s.cores_bound.load(Ordering::Relaxed);
        let want = s.config.cores;
        if bound >= want {
            ProbeOutcome::ok(format!("{bound} of {want} cores listening"))
        } else {
            ProbeOutcome::fail(format!("{bound} of {want} cores listening"))
        }
    }));
    // A write transaction can succeed on a full disk by reusing free pages, so the store's
    // directory is also checked for room to grow: one component, two checks.
    let accounts = crate::datadir::accounts_dir(&shared.config.data_dir);
    state.ready_probes.push(Probe::new("lmdb", move || {
        if let Err(e) = store.check_writable() {
            return ProbeOutcome::fail(format!("account store not writable: {e}"));
        }
        metrics::health::check_dir_writable(&accounts)
    }));
    state
}

/// A listening socket on every address of `list`, with the addresses bound (real ports).
fn bind_all(
    list: &[SocketAddr],
) -> Result<(Vec<TcpListener>, Vec<SocketAddr>), (SocketAddr, std::io::Error)> {
    let v6_only = listen::v6_only(list);
    let mut listeners = Vec::new();
    let mut addrs = Vec::new();
    for &addr in list {
        let l = listen::bind(addr, v6_only).map_err(|e| (addr, e))?;
        let local = l.local_addr().map_err(|e| (addr, e))?;
        listeners.push(l);
        addrs.push(local);
    }
    Ok((listeners, addrs))
}

/// SSH settings from the configuration.
fn ssh_settings(config: &Config, host_key: HostKey) -> ServerSettings {
    let mut s = ServerSettings::new(host_key);
    s.kex = config.ssh.kex.clone();
    s.ciphers = config.ssh.ciphers.clone();
    s.max_auth_tries = config.ssh.max_auth_tries;
    s.login_grace_ms = config.ssh.login_grace_seconds.saturating_mul(1000);
    s.rekey_bytes = config.ssh.rekey_bytes;
    s.rekey_interval_ms = config.ssh.rekey_seconds.saturating_mul(1000);
    s.auth_banner = (!config.ssh.auth_banner.is_empty()).then(|| config.ssh.auth_banner.clone());
    s.max_queued_output = config.limits.max_queued_output_bytes;
    s.output_stall_ms = config.limits.output_stall_seconds.saturating_mul(1000);
    s.control_per_second = config.limits.control_messages_per_second;
    s.control_burst = config.limits.control_messages_burst;
    s
}
