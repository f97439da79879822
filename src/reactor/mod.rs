//! The only code that touches glommio: one executor per data core (each with its own
//! SO_REUSEPORT listener, connections, buffer pool and games) plus a control executor for
//! accounts; the cross-core channels between them; start-up and graceful shutdown.

pub mod admission;
pub mod clock;
pub mod conn;
pub mod control;
pub mod core;
pub mod idle;
pub mod listen;
pub mod lograte;
pub mod notify;
pub mod pool;
pub mod terminal;

use self::control::{ControlState, Envelope, ReplyEnvelope};
use self::core::{Core, Shared};
use crate::auth::{PasswordHasher, PasswordParams, Store};
use crate::config::Config;
use crate::metrics::{self, HttpState, Probe, ProbeOutcome, Registry, RegistryOptions};
use crate::ssh::hostkey::HostKey;
use crate::ssh::server::ServerSettings;
use glommio::channels::shared_channel::{self, SharedReceiver, SharedSender};
use glommio::{Latency, LocalExecutorBuilder, Placement, PoolPlacement, Shares};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;
use thiserror::Error;

/// Queue depth of each cross-core channel.
const CHANNEL_DEPTH: usize = 1024;

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
    #[error("cannot start executor: {0}")]
    Executor(String),
    #[error("cannot bind the HTTP listener {addr}: {source}")]
    HttpBind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("games are configured to run as {user:?}: {reason}")]
    RunAs { user: String, reason: String },
}

/// A running server: its bound addresses and the means to stop it.
pub struct Server {
    /// Where SSH listens (the real ports when the config said 0), in the config's order.
    pub ssh_addrs: Vec<SocketAddr>,
    /// Where HTTP (/metrics, /health) listens.
    pub http_addrs: Vec<SocketAddr>,
    shared: Arc<Shared>,
    /// Data core executors (joined on shutdown).
    threads: Vec<glommio::ExecutorJoinHandle<()>>,
    /// The control executor: it serves until the process exits, so late account writes
    /// from draining cores still land.
    _control: glommio::ExecutorJoinHandle<()>,
}

impl Server {
    /// Ask every core to stop: no new connections, games hung up, bounded drain.
    pub fn stop(&self) {
        self.shared.shutdown.store(true, Ordering::Relaxed);
    }

    /// Wait for every core to finish.
    pub fn join(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }

    pub fn shutdown_flag(&self) -> Arc<Shared> {
        self.shared.clone()
    }
}

/// Raise `RLIMIT_NOFILE` for `max_connections`. When the system will not allow enough, lower
/// `max_connections` to what fits and say so: a player past it then gets "server full" at once,
/// where running out of descriptors would leave connections hanging in the accept queue and
/// games failing to start.
fn fit_fd_limit(max_connections: usize) -> usize {
    match crate::pty::fdlimit::raise_for(max_connections) {
        Ok(budget) if budget.limit >= budget.needed => {
            tracing::debug!(limit = budget.limit, "file descriptor limit");
            max_connections
        }
        Ok(budget) => {
            let allowed = usize::try_from(budget.connections_allowed()).unwrap_or(usize::MAX);
            tracing::warn!(
                limit = budget.limit,
                needed = budget.needed,
                configured = max_connections,
                max_connections = allowed,
                "RLIMIT_NOFILE is below what limits.max_connections needs; max_connections \
                 lowered to fit (raise the hard limit: ulimit -Hn, systemd LimitNOFILE=)"
            );
            allowed
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read or raise RLIMIT_NOFILE");
            max_connections
        }
    }
}

/// Start the server: data directory, host key, account store, executors, listeners.
pub fn start(mut config: Config) -> Result<Server, StartError> {
    let _ = clock::now_ms();
    config.limits.max_connections = fit_fd_limit(config.limits.max_connections);
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
    let run_as = if nix::unistd::geteuid().is_root() {
        if crate::pty::suid_dumpable_is_unsafe() {
            return Err(StartError::RunAs {
                user: config.run_as.clone(),
                reason: "fs.suid_dumpable is 1, which would let the game's user ptrace a game \
                         while it still shares the server's memory; set it to 0 or 2 \
                         (sysctl -w fs.suid_dumpable=0)"
                    .into(),
            });
        }
        Some(
            crate::pty::lookup_run_as(&config.run_as).map_err(|e| StartError::RunAs {
                user: config.run_as.clone(),
                reason: e.to_string(),
            })?,
        )
    } else {
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
        None
    };

    let cores = config.cores;
    let registry = Arc::new(Registry::new(RegistryOptions {
        cores,
        game_ids: config.games.iter().map(|g| g.id.clone()).collect(),
        connections_limit: config.limits.max_connections,
        version: env!("CARGO_PKG_VERSION").into(),
        commit: metrics::BUILD_COMMIT.into(),
    }));
    let shared = Arc::new(Shared {
        config: Arc::new(config),
        run_as,
        connections: AtomicUsize::new(0),
        unauthenticated: AtomicUsize::new(0),
        sources: crate::limits::SourceTable::new(),
        shutdown: Arc::new(AtomicBool::new(false)),
        cores_bound: AtomicUsize::new(0),
        registry,
    });

    // Channels: each data core → control (requests) and control → each data core (replies).
    let mut request_rx: Vec<SharedReceiver<Envelope>> = Vec::new();
    let mut request_tx: Vec<SharedSender<Envelope>> = Vec::new();
    let mut reply_rx: Vec<SharedReceiver<ReplyEnvelope>> = Vec::new();
    let mut reply_tx: Vec<SharedSender<ReplyEnvelope>> = Vec::new();
    for _ in 0..cores {
        let (tx, rx) = shared_channel::new_bounded(CHANNEL_DEPTH);
        request_tx.push(tx);
        request_rx.push(rx);
        let (tx, rx) = shared_channel::new_bounded(CHANNEL_DEPTH);
        reply_tx.push(tx);
        reply_rx.push(rx);
    }

    let mut threads = Vec::new();
    let (http_tx, http_rx) = mpsc::channel();
    let control = spawn_control(
        store,
        Arc::new(hasher),
        shared.clone(),
        request_rx,
        reply_tx,
        http_tx,
    )?;
    let http_addrs = match http_rx.recv() {
        Ok(Ok(a)) => a,
        Ok(Err((addr, source))) => return Err(StartError::HttpBind { addr, source }),
        Err(_) => {
            return Err(StartError::Executor(
                "the control core died at start".into(),
            ))
        }
    };

    // Data cores bind one after the other so that port 0 resolves once and all share it.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut addrs = shared.config.ssh.listen.clone();
    for (id, (req_tx, rep_rx)) in request_tx.into_iter().zip(reply_rx).enumerate() {
        let (bound_tx, bound_rx) = mpsc::channel();
        let placement = if cores <= cpus {
            Placement::Fixed(id)
        } else {
            Placement::Unbound
        };
        let shared_c = shared.clone();
        let key = host_key.clone();
        let want = addrs.clone();
        let handle = LocalExecutorBuilder::new(placement)
            .name(&format!("dg-core-{id}"))
            .blocking_thread_pool_placement(PoolPlacement::Unbound(2))
            .spawn(move || run_data_core(id, shared_c, key, want, req_tx, rep_rx, bound_tx))
            .map_err(|e| StartError::Executor(e.to_string()))?;
        threads.push(handle);
        match bound_rx.recv() {
            Ok(Ok(a)) => addrs = a,
            Ok(Err((addr, source))) => return Err(StartError::Bind { addr, source }),
            Err(_) => return Err(StartError::Executor(format!("core {id} died at start"))),
        }
    }
    Ok(Server {
        ssh_addrs: addrs,
        http_addrs,
        shared,
        threads,
        _control: control,
    })
}

fn spawn_control(
    store: Store,
    hasher: Arc<PasswordHasher>,
    shared: Arc<Shared>,
    requests: Vec<SharedReceiver<Envelope>>,
    replies: Vec<SharedSender<ReplyEnvelope>>,
    http_bound: mpsc::Sender<BindResult>,
) -> Result<glommio::ExecutorJoinHandle<()>, StartError> {
    let max_concurrent = shared.config.password.max_concurrent;
    LocalExecutorBuilder::new(Placement::Unbound)
        .name("dg-control")
        .blocking_thread_pool_placement(PoolPlacement::Unbound(max_concurrent))
        .spawn(move || async move {
            match bind_all(&shared.config.http.listen) {
                Ok((listeners, locals)) => {
                    let _ = http_bound.send(Ok(locals));
                    let state = Rc::new(http_state(&shared, store.clone()));
                    for listener in listeners {
                        glommio::spawn_local(metrics::serve(listener, state.clone())).detach();
                    }
                }
                Err(e) => {
                    let _ = http_bound.send(Err(e));
                    return;
                }
            }
            let limits = &shared.config.limits;
            let state = Rc::new(ControlState {
                store,
                hasher,
                hash_slots: glommio::sync::Semaphore::new(max_concurrent as u64),
                hash_queue: std::cell::Cell::new(0),
                max_hash_queue: shared.config.password.max_queued,
                throttle: std::cell::RefCell::new(crate::limits::throttle::Throttle::new(
                    limits.throttle_rules(),
                )),
                lock_after_failures: limits.lock_account_after_failures,
                running_games: std::cell::RefCell::new(std::collections::HashSet::new()),
                grouping: limits.source_grouping,
                metrics: shared.registry.control(),
            });
            let tq = glommio::executor().create_task_queue(
                Shares::default(),
                Latency::Matters(Duration::from_millis(1)),
                "control-requests",
            );
            // One server task per data core; each connects its own pair of channel ends so
            // no core waits on another's start-up.
            let mut tasks = Vec::new();
            let senders = Rc::new(std::cell::RefCell::new(Vec::new()));
            glommio::spawn_local(control::watch_revocations(
                state.store.clone(),
                senders.clone(),
            ))
            .detach();
            for (rx, tx) in requests.into_iter().zip(replies) {
                let state = state.clone();
                let senders = senders.clone();
                let task = glommio::spawn_local_into(
                    async move {
                        // Both ends at once: connecting waits for the peer's matching end.
                        let (tx, rx) = futures_lite::future::zip(tx.connect(), rx.connect()).await;
                        let tx = Rc::new(tx);
                        senders.borrow_mut().push(tx.clone());
                        control::serve(state, rx, tx).await;
                    },
                    tq,
                );
                if let Ok(t) = task {
                    tasks.push(t);
                }
            }
            for t in tasks {
                t.await;
            }
        })
        .map_err(|e| StartError::Executor(e.to_string()))
}

/// The HTTP endpoint's state: the registry and the readiness probes.
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

/// What binding a list of addresses gave: the addresses bound (real ports), or the one that
/// failed and why.
type BindResult = Result<Vec<SocketAddr>, (SocketAddr, std::io::Error)>;

/// Listeners on every address of `list` for this executor, with their bound addresses.
fn bind_all(
    list: &[SocketAddr],
) -> Result<(Vec<glommio::net::TcpListener>, Vec<SocketAddr>), (SocketAddr, std::io::Error)> {
    use std::os::fd::{FromRawFd, IntoRawFd};
    let v6_only = listen::v6_only(list);
    let mut listeners = Vec::with_capacity(list.len());
    let mut locals = Vec::with_capacity(list.len());
    for &addr in list {
        let std_listener = listen::bind(addr, v6_only).map_err(|e| (addr, e))?;
        locals.push(std_listener.local_addr().unwrap_or(addr));
        // SAFETY: the descriptor moves out of the std listener into glommio's, which owns
        // and closes it.
        listeners
            .push(unsafe { glommio::net::TcpListener::from_raw_fd(std_listener.into_raw_fd()) });
    }
    Ok((listeners, locals))
}

#[allow(clippy::too_many_arguments)]
async fn run_data_core(
    id: usize,
    shared: Arc<Shared>,
    host_key: HostKey,
    addrs: Vec<SocketAddr>,
    requests: SharedSender<Envelope>,
    replies: SharedReceiver<ReplyEnvelope>,
    bound: mpsc::Sender<BindResult>,
) {
    let (listeners, locals) = match bind_all(&addrs) {
        Ok(l) => l,
        Err(e) => {
            let _ = bound.send(Err(e));
            return;
        }
    };
    let Some(metrics) = shared.registry.core(id) else {
        let first = addrs.first().copied().unwrap_or(([0, 0, 0, 0], 0).into());
        let _ = bound.send(Err((
            first,
            std::io::Error::other("no metrics for this core"),
        )));
        return;
    };
    shared.cores_bound.fetch_add(1, Ordering::Relaxed);
    let _ = bound.send(Ok(locals.clone()));
    let settings = Rc::new(ssh_settings(&shared.config, host_key));
    let (to_control, replies) =
        futures_lite::future::zip(requests.connect(), replies.connect()).await;
    let core = Core::new(id, shared, metrics.clone(), settings, to_control);
    let pool = core.pool.clone();
    glommio::spawn_local(metrics::sampler::run(
        metrics,
        metrics::sampler::PERIOD,
        move |m| m.set_buffer_pool_in_use(pool.in_use()),
        // Keeps beating while draining: liveness holds, readiness reports the drain.
        || false,
    ))
    .detach();
    let tq = glommio::executor().create_task_queue(
        Shares::default(),
        Latency::Matters(Duration::from_millis(1)),
        "control-replies",
    );
    if let Ok(t) = glommio::spawn_local_into(core.clone().dispatch_replies(replies), tq) {
        t.detach();
    }
    tracing::debug!(core = id, addrs = ?locals, "core listening");
    let loops: Vec<_> = listeners
        .into_iter()
        .map(|l| glommio::spawn_local(core.clone().accept_loop(l)))
        .collect();
    for l in loops {
        l.await;
    }
    core.shut_down_connections().await;
    tracing::debug!(core = id, "core stopped");
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
