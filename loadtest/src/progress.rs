//! The progress line printed to stderr while a scenario runs: elapsed time, operations done,
//! their rate, and errors. On a terminal it redraws one line; in a log (CI) it prints a line
//! every few seconds.

use std::io::{IsTerminal as _, Write as _};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Counters the workers bump and the progress task reads.
#[derive(Debug, Default)]
pub struct Counters {
    /// Operations completed (cycles, sessions, keys, bytes — whatever `unit` says).
    pub done: AtomicU64,
    /// Failures.
    pub errors: AtomicU64,
    /// Set when the run is over, to stop the progress task.
    stop: AtomicBool,
}

impl Counters {
    /// One more operation done.
    pub fn ok(&self) {
        self.done.fetch_add(1, Ordering::Relaxed);
    }

    /// `n` more units done.
    pub fn add(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
    }

    /// One more failure.
    pub fn err(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }
}

/// A running progress line; [`Progress::finish`] ends it.
pub struct Progress {
    /// Shared with the workers.
    pub counters: Arc<Counters>,
    /// The printing task.
    task: tokio::task::JoinHandle<()>,
}

impl Progress {
    /// Starts printing `label` progress, counting `unit`s.
    pub fn start(label: String, unit: &'static str) -> Progress {
        let counters = Arc::new(Counters::default());
        let c = counters.clone();
        let task = tokio::spawn(async move {
            let tty = std::io::stderr().is_terminal();
            let every = if tty { 1 } else { 5 };
            let start = Instant::now();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut last = 0u64;
            let mut n = 0u64;
            tick.tick().await;
            loop {
                tick.tick().await;
                if c.stop.load(Ordering::Relaxed) {
                    break;
                }
                n += 1;
                let done = c.done.load(Ordering::Relaxed);
                let rate = done.saturating_sub(last);
                last = done;
                if n % every != 0 {
                    continue;
                }
                let line = format!(
                    "[{label}] {:>5.1}s  {done} {unit} ({rate}/s)  errors {}",
                    start.elapsed().as_secs_f64(),
                    c.errors.load(Ordering::Relaxed)
                );
                let mut err = std::io::stderr().lock();
                if tty {
                    let _ = write!(err, "\r\x1b[K{line}");
                } else {
                    let _ = writeln!(err, "{line}");
                }
                let _ = err.flush();
            }
            if tty {
                let _ = write!(std::io::stderr(), "\r\x1b[K");
            }
        });
        Progress { counters, task }
    }

    /// Stops and clears the line.
    pub async fn finish(self) {
        self.counters.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
    }
}
