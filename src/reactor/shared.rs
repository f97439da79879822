//! What every core shares: the configuration (read-only) and a few atomics. Nothing here is
//! locked; each atomic is written by whoever owns the fact and read by the others.

use super::mesh::Waker;
use crate::config::Config;
use crate::metrics::Registry;
use crate::pty::RunAs;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

pub struct Shared {
    pub config: Arc<Config>,
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
}
