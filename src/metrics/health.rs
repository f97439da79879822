//! Health checks behind `/health`, `/health/live` and `/health/ready`: injectable probes, the
//! built-in per-core heartbeat check, and the JSON report
//! `{status, checks:[{component,status,details,duration_ms}]}`.
//!
//! Liveness answers "should this process be restarted?" (the process runs and every data
//! core's heartbeat is fresh); readiness answers "should it get traffic?" (listeners bound,
//! account store writable, not draining — probes the server provides).

use super::collector::Registry;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A named check. Readiness probes run on a blocking thread (an LMDB commit fsyncs), at most
/// once a second however often they are asked; keep them small all the same: a flag read, a
/// small file write, a tiny LMDB transaction.
#[derive(Clone)]
pub struct Probe {
    /// The `component` field of its report entry.
    component: String,
    /// The check itself (shared: a copy of the probe list goes to the blocking thread).
    check: Arc<dyn Fn() -> ProbeOutcome + Send + Sync>,
}

/// What a probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOutcome {
    /// Whether the component is fine.
    pub healthy: bool,
    /// One line for an operator (no secrets, no user names).
    pub details: String,
}

/// One entry of a report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Check {
    /// What was checked (`process`, `core 3`, `lmdb`, …).
    pub component: String,
    /// `"ok"` or `"fail"`.
    pub status: &'static str,
    /// What the probe said.
    pub details: String,
    /// How long the check took, in milliseconds.
    pub duration_ms: f64,
}

/// The JSON body of `/health/live` and `/health/ready`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    /// `"ok"` when every check is, else `"fail"` (and the response is 503).
    pub status: &'static str,
    /// Every check, in order.
    pub checks: Vec<Check>,
}

/// `status` of a healthy check or report.
pub const OK: &str = "ok";
/// `status` of a failed check or report.
pub const FAIL: &str = "fail";

impl Probe {
    /// A probe named `component` running `check`.
    pub fn new(
        component: impl Into<String>,
        check: impl Fn() -> ProbeOutcome + Send + Sync + 'static,
    ) -> Probe {
        Probe {
            component: component.into(),
            check: Arc::new(check),
        }
    }

    /// Fails while `flag` is set, saying `details_when_set` (e.g. a `draining` flag).
    pub fn flag_unset(
        component: impl Into<String>,
        flag: Arc<AtomicBool>,
        details_when_set: &'static str,
    ) -> Probe {
        Probe::new(component, move || {
            if flag.load(Ordering::Relaxed) {
                ProbeOutcome::fail(details_when_set)
            } else {
                ProbeOutcome::ok("")
            }
        })
    }

    /// Creates, writes and removes a small file in `dir`: fails when the directory (e.g. the
    /// LMDB directory) is not writable or the disk is full. Note: root bypasses permission
    /// bits, so a read-only mount or a full disk is what fails this for a root server.
    pub fn dir_writable(component: impl Into<String>, dir: PathBuf) -> Probe {
        Probe::new(component, move || check_dir_writable(&dir))
    }

    /// Run the probe, timing it.
    pub fn run(&self) -> Check {
        let started = Instant::now();
        let outcome = (self.check)();
        Check {
            component: self.component.clone(),
            status: if outcome.healthy { OK } else { FAIL },
            details: outcome.details,
            duration_ms: millis(started.elapsed()),
        }
    }
}

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probe")
            .field("component", &self.component)
            .finish_non_exhaustive()
    }
}

impl ProbeOutcome {
    /// Healthy, with details.
    pub fn ok(details: impl Into<String>) -> ProbeOutcome {
        ProbeOutcome {
            healthy: true,
            details: details.into(),
        }
    }

    /// Unhealthy, with details.
    pub fn fail(details: impl Into<String>) -> ProbeOutcome {
        ProbeOutcome {
            healthy: false,
            details: details.into(),
        }
    }
}

impl Report {
    /// A report over `checks`: ok only if every check is.
    pub fn from_checks(checks: Vec<Check>) -> Report {
        let ok = checks.iter().all(|c| c.status == OK);
        Report {
            status: if ok { OK } else { FAIL },
            checks,
        }
    }

    /// Whether every check passed.
    pub fn is_ok(&self) -> bool {
        self.status == OK
    }
}

/// `/health/live`: the process (trivially: we are answering), every data core's heartbeat
/// no older than `max_age`, then the extra `probes`.
pub fn live(registry: &Registry, max_age: Duration, probes: &[Probe]) -> Report {
    let mut checks = vec![Check {
        component: "process".into(),
        status: OK,
        details: format!("pid {}", std::process::id()),
        duration_ms: 0.0,
    }];
    for core in registry.cores() {
        let started = Instant::now();
        let age = core.heartbeat_age();
        let fresh = age <= max_age;
        checks.push(Check {
            component: format!("core {}", core.core()),
            status: if fresh { OK } else { FAIL },
            details: format!("heartbeat {} ms ago", age.as_millis()),
            duration_ms: millis(started.elapsed()),
        });
    }
    checks.extend(probes.iter().map(Probe::run));
    Report::from_checks(checks)
}

/// `/health/ready`: the `probes` (listeners, account store, draining).
pub fn ready(probes: &[Probe]) -> Report {
    Report::from_checks(probes.iter().map(Probe::run).collect())
}

/// A duration in milliseconds, to the microsecond.
fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Create, write and remove a small file in `dir`: fails when the directory is not writable
/// or its disk is full.
pub fn check_dir_writable(dir: &std::path::Path) -> ProbeOutcome {
    let path = dir.join(".health-probe");
    match std::fs::write(&path, b"ok").and_then(|()| std::fs::remove_file(&path)) {
        Ok(()) => ProbeOutcome::ok("writable"),
        Err(e) => ProbeOutcome::fail(format!("not writable: {}", e.kind())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::collector::RegistryOptions;

    fn registry(cores: usize) -> Registry {
        Registry::new(RegistryOptions {
            cores,
            game_ids: vec![],
            connections_limit: 10,
            version: "test".into(),
            commit: "abc".into(),
        })
    }

    #[test]
    fn live_is_ok_while_every_core_beats() {
        let r = registry(2);
        for c in r.cores() {
            c.heartbeat();
        }
        let report = live(&r, Duration::from_secs(5), &[]);
        assert!(report.is_ok(), "{report:?}");
        assert_eq!(report.checks.len(), 3);
    }

    #[test]
    fn live_fails_when_one_core_stops_beating() {
        let hour_ago = Instant::now().checked_sub(Duration::from_secs(3600));
        let Some(epoch) = hour_ago else { return };
        let r = Registry::with_epoch(
            RegistryOptions {
                cores: 2,
                game_ids: vec![],
                connections_limit: 10,
                version: "test".into(),
                commit: "abc".into(),
            },
            epoch,
        );
        // Core 0 beats now; core 1 last beat at the epoch, an hour ago.
        if let Some(c) = r.core(0) {
            c.heartbeat();
        }
        let report = live(&r, Duration::from_secs(5), &[]);
        assert!(!report.is_ok());
        let failed: Vec<_> = report
            .checks
            .iter()
            .filter(|c| c.status == FAIL)
            .map(|c| c.component.as_str())
            .collect();
        assert_eq!(failed, ["core 1"]);
    }

    #[test]
    fn ready_fails_while_draining_and_names_the_component() {
        let draining = Arc::new(AtomicBool::new(false));
        let probes = [Probe::flag_unset("shutdown", draining.clone(), "draining")];
        assert!(ready(&probes).is_ok());
        draining.store(true, Ordering::Relaxed);
        let report = ready(&probes);
        assert_eq!(report.status, FAIL);
        assert_eq!(report.checks[0].component, "shutdown");
        assert_eq!(report.checks[0].details, "draining");
    }

    #[test]
    fn a_missing_directory_is_not_writable() {
        let tmp = tempfile::tempdir();
        let Ok(tmp) = tmp else {
            panic!("cannot create a temporary directory")
        };
        let dir = tmp.path().to_path_buf();
        let good = Probe::dir_writable("lmdb", dir.clone());
        let bad = Probe::dir_writable("lmdb", dir.join("does-not-exist"));
        assert_eq!(good.run().status, OK);
        assert_eq!(bad.run().status, FAIL);
    }

    #[test]
    fn the_report_serialises_to_the_documented_shape() {
        let report = ready(&[Probe::new("lmdb", || ProbeOutcome::ok("writable"))]);
        let v = serde_json::to_value(&report).unwrap_or_default();
        assert_eq!(v["status"], "ok");
        assert_eq!(v["checks"][0]["component"], "lmdb");
        assert_eq!(v["checks"][0]["status"], "ok");
        assert_eq!(v["checks"][0]["details"], "writable");
        assert!(v["checks"][0]["duration_ms"].is_number());
    }
}
