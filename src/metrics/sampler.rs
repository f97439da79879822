//! The per-core sampler: once a period (1 s), a small task on each data core measures how
//! busy the core was and stamps its heartbeat.
//!
//! **Busy ratio** = executor run time in the period / wall time of the period. glommio's
//! `executor_stats().total_runtime()` counts time spent running tasks and polling io_uring,
//! and excludes time parked waiting for events; `executor_stats()` *resets* the stats it
//! returns, so this sampler must be the only caller on its executor.
//!
//! **Heartbeat**: the stamp is written by a task of the core itself, so a core whose task
//! loop is stuck (a blocking call, an endless loop) stops stamping and `/health/live` fails
//! it once the stamp is older than its tolerance.

use super::catalogue::CoreMetrics;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The default sampling period.
pub const PERIOD: Duration = Duration::from_secs(1);

/// Sample `metrics` every `period` on the current glommio executor until `stop()` is true.
/// `on_tick` runs each period after the built-in samples (e.g. to publish the buffer pool's
/// occupancy with `set_buffer_pool_in_use`). Spawn it once per data core:
/// `glommio::spawn_local(sampler::run(m, PERIOD, move |m| ..., stop)).detach()`.
pub async fn run(
    metrics: Arc<CoreMetrics>,
    period: Duration,
    on_tick: impl Fn(&CoreMetrics),
    stop: impl Fn() -> bool,
) {
    // Reset the executor's counters so the first period measures only itself.
    let _ = glommio::executor().executor_stats();
    let mut last = Instant::now();
    metrics.heartbeat();
    while !stop() {
        glommio::timer::sleep(period).await;
        let now = Instant::now();
        let wall = now.saturating_duration_since(last);
        last = now;
        let busy = glommio::executor().executor_stats().total_runtime();
        metrics.set_busy_ratio(ratio(busy, wall));
        on_tick(&metrics);
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
    use std::cell::Cell;
    use std::rc::Rc;

    #[test]
    fn ratio_of_an_empty_period_is_zero() {
        assert_eq!(ratio(Duration::from_millis(5), Duration::ZERO), 0.0);
        assert_eq!(
            ratio(Duration::from_millis(250), Duration::from_secs(1)),
            0.25
        );
    }

    /// The sampler stamps the heartbeat, runs the tick hook and sees a core that spins.
    #[test]
    fn the_sampler_beats_and_measures_a_busy_core() {
        let reg = Registry::new(RegistryOptions {
            cores: 1,
            game_ids: vec![],
            connections_limit: 1,
            version: "t".into(),
            commit: "t".into(),
        });
        let Some(m) = reg.core(0) else {
            panic!("core 0 exists");
        };
        let m2 = m.clone();
        let ex = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound).spawn(
            move || async move {
                let ticks = Rc::new(Cell::new(0u32));
                let t = ticks.clone();
                let sampler = glommio::spawn_local(run(
                    m2,
                    Duration::from_millis(50),
                    move |m| {
                        t.set(t.get() + 1);
                        m.set_buffer_pool_in_use(7);
                    },
                    {
                        let ticks = ticks.clone();
                        move || ticks.get() >= 1
                    },
                ));
                // Let the sampler start its first period, then keep the executor busy (no
                // awaits) through it.
                futures_lite::future::yield_now().await;
                let spin_until = Instant::now() + Duration::from_millis(120);
                while Instant::now() < spin_until {
                    std::hint::spin_loop();
                }
                sampler.await;
                ticks.get()
            },
        );
        let ticks = ex.and_then(|h| h.join());
        assert!(matches!(ticks, Ok(1)), "{ticks:?}");
        assert!(m.busy_ratio.get() > 0.0);
        assert_eq!(m.buffers_in_use.get(), 7);
        assert!(m.heartbeat_age() < Duration::from_secs(3600));
    }
}
