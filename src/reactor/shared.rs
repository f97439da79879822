//! What every core shares: the configuration (read-only) and a few atomics. Nothing here is
//! locked; each atomic is written by whoever owns the fact and read by the others.

use super::mesh::Waker;
use crate::config::Config;
use crate::metrics::Registry;
use crate::pty::RunAs;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

pub struct Shared {
    /// The configuration the server started with (what is fixed for its life).
    pub config: Arc<Config>,
    /// The configuration in force, republished by each reload ([`Shared::reconfigure`]).
    pub live: arc_swap::ArcSwap<Config>,
    /// Counts reloads: a core that sees it move takes [`Shared::live`].
    pub config_epoch: AtomicU64,
    /// Account the games run as (when the server is root).
    pub run_as: Option<RunAs>,
    /// Connections open on all cores, for `limits.max_connections`.
    pub connections: AtomicUsize,
    /// Of those, not yet logged in (MaxStartups).
    pub unauthenticated: AtomicUsize,
    /// Games running or being started on all cores (each holds descriptors: see
    /// `pty::fdlimit::game_fits`).
    pub games: AtomicUsize,
    /// The descriptor limit in force (`RLIMIT_NOFILE`), for the game budget.
    pub fd_limit: u64,
    /// Per-source connection counts and penalties, shared lock-free by every core.
    pub sources: crate::limits::SourceTable,
    /// Set by [`Shared::stop`]; every core looks at it on each wake-up.
    pub shutdown: Arc<AtomicBool>,
    /// Data cores whose SSH listeners are bound (readiness).
    pub cores_bound: AtomicUsize,
    /// Every core's metric cells, read by the control core at scrape time.
    pub registry: Arc<Registry>,
    /// How to wake each core (data cores, then the control core), once all are up.
    pub wakers: OnceLock<Vec<Waker>>,
}

impl Shared {
    /// Ask every core to stop, and wake them so they see it now.
    pub fn stop(&self) {
        self.shutdown.store(true, Ordering::Relaxed);
        if let Some(w) = self.wakers.get() {
            for w in w {
                w.wake();
            }
        }
    }

    /// Publish `config` (already planned by [`super::reload::plan`]) and wake every core to
    /// take it.
    pub fn reconfigure(&self, config: Config) {
        self.live.store(Arc::new(config));
        self.config_epoch.fetch_add(1, Ordering::Release);
        if let Some(w) = self.wakers.get() {
            for w in w {
                w.wake();
            }
        }
    }

    /// The configuration in force and its reload count, for a core that saw the count move.
    pub fn live_config(&self) -> (Arc<Config>, u64) {
        let epoch = self.config_epoch.load(Ordering::Acquire);
        (self.live.load_full(), epoch)
    }
}
