//! Observability: per-core lock-free metric cells, the Prometheus collector that sums them at
//! scrape time, and the operators' HTTP endpoint (`/metrics`, `/health*`) on the control core.
//!
//! - `counters`: counter, gauge, histogram cells; one writer each, relaxed atomics.
//! - `labels`: the fixed label values (enums indexing arrays of cells).
//! - `catalogue`: [`CoreMetrics`] / [`ControlMetrics`], the SPEC §3 families as cells, with a
//!   method per event (`conn_accepted`, `handshake_done`, `game_ended`, …).
//! - `collector`: [`Registry`], a `prometheus::core::Collector` and the text rendering.
//! - `sampler`: per core, turns the loop's busy time into the busy ratio and stamps the
//!   heartbeat.
//! - `health`: probes and the JSON health reports.
//! - `http`: the HTTP/1.1 server, sans-io (`httparse`): bytes and time in, bytes out.
//! - `parse`: reading a scrape back (tests, load harness).
//!
//! No event crosses a core and nothing locks: a core stores into its own cache-line-aligned
//! block; the control core reads every block when scraped.

pub mod catalogue;
pub mod collector;
pub mod counters;
pub mod health;
pub mod http;
pub mod labels;
pub mod parse;
pub mod sampler;

pub use catalogue::{ControlMetrics, CoreMetrics};
pub use collector::{Registry, RegistryOptions, BUILD_COMMIT};
pub use health::{Check, Probe, ProbeOutcome, Report};
pub use http::{
    HttpConnId, HttpEvent, HttpLimits, HttpServer, HttpState, ProbeDone, ProbeJob,
    METRICS_CONTENT_TYPE,
};
pub use labels::{
    AuthMethod, ConnStatus, DbOp, Direction, EndReason, FailReason, Outcome, PtyOp, RejectReason,
    SaveOp,
};
pub use sampler::Sampler;
