//! The per-core sampler: once a period (1 s) each core's loop reports how long it was busy,
//! and the sampler turns that into the busy ratio and stamps the core's heartbeat.
//!
//! **Busy ratio** = time the loop spent working in the period / wall time of the period. The
//! reactor measures the work itself (everything but the wait inside `io_uring_enter`) and
//! passes the sum since the last tick.
//!
//! **Heartbeat**: the stamp is written by the core's own loop, so a core that is stuck (a
//! blocking call, an endless loop) stops stamping and `/health/live` fails it once the stamp
//! is older than its tolerance.

use super::catalogue::CoreMetrics;
use std::time::{Duration, Instant};

/// The default sampling period.
pub const PERIOD: Duration = Duration::from_secs(1);

/// One core's sampler. Plain data: the core's loop owns it and calls [`Sampler::tick`] when
/// [`Sampler::next_tick`] has come.
#[derive(Debug, Clone)]
pub struct Sampler {
    /// Time between ticks.
    period: Duration,
    /// When the current period started (the last tick, or the start).
    last: Instant,
}

impl Sampler {
    /// Start sampling at `now` (stamps the heartbeat: the core is alive).
    pub fn new(metrics: &CoreMetrics, period: Duration, now: Instant) -> Sampler {
        metrics.heartbeat();
        Sampler { period, last: now }
    }

    /// When the next tick is due.
    pub fn next_tick(&self) -> Instant {
        self.last + self.period
    }

    /// The period ended at `now` and the core was busy for `busy` of it: publish the busy
    /// ratio and stamp the heartbeat. Call it from the core's own loop (that is what the
    /// heartbeat proves).
    pub fn tick(&mut self, metrics: &CoreMetrics, busy: Duration, now: Instant) {
        let wall = now.saturating_duration_since(self.last);
        self.last = now;
        metrics.set_busy_ratio(ratio(busy, wall));
        metrics.heartbeat();
    }
}

/// `busy / wall`, 0 for an empty period.
fn ratio(busy: Duration, wall: Duration) -> f64 {
    if wall.is_zero() {
        0.0
    } else {
        busy.as_secs_f64() / wall.as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::collector::{Registry, RegistryOptions};

    fn options() -> RegistryOptions {
        RegistryOptions {
            cores: 1,
            game_ids: vec![],
            connections_limit: 1,
            version: "t".into(),
            commit: "t".into(),
        }
    }

    #[test]
    fn ratio_of_an_empty_period_is_zero() {
        assert_eq!(ratio(Duration::from_millis(5), Duration::ZERO), 0.0);
        assert_eq!(
            ratio(Duration::from_millis(250), Duration::from_secs(1)),
            0.25
        );
    }

    /// A core a quarter busy over a period reads 0.25.
    #[test]
    fn a_tick_publishes_the_share_of_the_period_spent_busy() {
        let reg = Registry::new(options());
        let Some(m) = reg.core(0) else {
            panic!("core 0 exists");
        };
        let start = Instant::now();
        let mut s = Sampler::new(&m, PERIOD, start);
        assert_eq!(s.next_tick(), start + PERIOD);
        s.tick(&m, Duration::from_millis(250), start + PERIOD);
        assert_eq!(m.busy_ratio.get(), 0.25);
        assert_eq!(s.next_tick(), start + 2 * PERIOD);
        // A late tick is measured against the wall time since the last one (2 s here), not
        // the nominal period.
        s.tick(&m, Duration::from_secs(1), start + 3 * PERIOD);
        assert_eq!(m.busy_ratio.get(), 0.5);
        // A tick at the same instant has no period to measure.
        s.tick(&m, Duration::from_millis(1), start + 3 * PERIOD);
        assert_eq!(m.busy_ratio.get(), 0.0);
    }

    /// A core silent for an hour fails the heartbeat; starting and every tick stamp it.
    #[test]
    fn starting_and_every_tick_stamp_the_heartbeat() {
        let Some(hour_ago) = Instant::now().checked_sub(Duration::from_secs(3600)) else {
            return;
        };
        let reg = Registry::with_epoch(options(), hour_ago);
        let Some(m) = reg.core(0) else {
            panic!("core 0 exists");
        };
        assert!(m.heartbeat_age() >= Duration::from_secs(3500));
        let mut s = Sampler::new(&m, PERIOD, Instant::now());
        assert!(m.heartbeat_age() < Duration::from_secs(60));
        m.heartbeat_at(Duration::ZERO);
        assert!(m.heartbeat_age() >= Duration::from_secs(3500));
        s.tick(&m, Duration::ZERO, Instant::now());
        assert!(m.heartbeat_age() < Duration::from_secs(60));
    }
}
