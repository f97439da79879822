//! Latency samples and error tallies collected by the scenario workers.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

/// Latency samples in microseconds, merged from every worker at the end of a run.
#[derive(Debug, Default, Clone)]
pub struct Latencies {
    /// One entry per completed operation (cycle, keystroke).
    samples_us: Vec<u32>,
}

/// Percentiles of a [`Latencies`] set, in microseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Summary {
    /// Number of samples.
    pub count: u64,
    /// Median.
    pub p50: u32,
    /// 90th percentile.
    pub p90: u32,
    /// 99th percentile.
    pub p99: u32,
    /// 99.9th percentile.
    pub p999: u32,
    /// Largest sample.
    pub max: u32,
}

impl Latencies {
    /// Records one operation's duration (saturating at ~71 minutes).
    pub fn record(&mut self, d: Duration) {
        self.samples_us
            .push(u32::try_from(d.as_micros()).unwrap_or(u32::MAX));
    }

    /// Appends another worker's samples.
    pub fn merge(&mut self, other: Latencies) {
        self.samples_us.extend(other.samples_us);
    }

    /// Sorts the samples and returns their percentiles plus the sorted samples (for charts).
    pub fn finish(mut self) -> (Summary, Vec<u32>) {
        self.samples_us.sort_unstable();
        let s = &self.samples_us;
        let summary = Summary {
            count: s.len() as u64,
            p50: percentile(s, 50.0),
            p90: percentile(s, 90.0),
            p99: percentile(s, 99.0),
            p999: percentile(s, 99.9),
            max: s.last().copied().unwrap_or(0),
        };
        (summary, self.samples_us)
    }
}

/// Nearest-rank percentile of sorted samples (0 when empty).
pub fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    // Integer per-mille arithmetic: 99.9 % of 1000 samples is exactly rank 999.
    let per_mille = (p * 10.0).round() as usize;
    let rank = (per_mille * sorted.len()).div_ceil(1000);
    let idx = rank.clamp(1, sorted.len()) - 1;
    sorted.get(idx).copied().unwrap_or(0)
}

/// Counts of failures by kind (`connect`, `handshake`, `auth-refused`, `timeout:echo`, ...).
#[derive(Debug, Default, Clone, Serialize)]
pub struct Errors(BTreeMap<String, u64>);

impl Errors {
    /// Counts one failure of `kind`.
    pub fn add(&mut self, kind: &str) {
        *self.0.entry(kind.to_owned()).or_default() += 1;
    }

    /// Adds another worker's counts.
    pub fn merge(&mut self, other: Errors) {
        for (k, v) in other.0 {
            *self.0.entry(k).or_default() += v;
        }
    }

    /// Total failures.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// `kind=count` pairs, for the table.
    pub fn describe(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let mut l = Latencies::default();
        for us in 1..=1000u64 {
            l.record(Duration::from_micros(us));
        }
        let (s, sorted) = l.finish();
        assert_eq!(
            (s.count, s.p50, s.p90, s.p99, s.p999, s.max),
            (1000, 500, 900, 990, 999, 1000)
        );
        assert_eq!(sorted.first(), Some(&1));
    }

    #[test]
    fn an_empty_set_summarises_to_zeroes() {
        let (s, _) = Latencies::default().finish();
        assert_eq!((s.count, s.p50, s.max), (0, 0, 0));
    }

    #[test]
    fn merged_errors_add_up_by_kind() {
        let mut a = Errors::default();
        a.add("connect");
        let mut b = Errors::default();
        b.add("connect");
        b.add("auth-refused");
        a.merge(b);
        assert_eq!(a.total(), 3);
        assert_eq!(a.describe(), "auth-refused=1 connect=2");
    }
}
