//! The reactor's clock: milliseconds since the process started, the time base handed to the
//! sans-io SSH core.

use std::sync::OnceLock;
use std::time::Instant;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Milliseconds since the first call (made at start-up).
pub fn now_ms() -> u64 {
    let epoch = EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// How long from now until `deadline_ms`.
pub fn until(deadline_ms: u64) -> std::time::Duration {
    std::time::Duration::from_millis(deadline_ms.saturating_sub(now_ms()))
}
