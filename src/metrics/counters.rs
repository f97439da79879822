//! Lock-free metric cells: a counter, a gauge, a float gauge and a fixed-bucket histogram.
//!
//! **One writer per cell.** Every cell belongs to one core (one thread) that writes it; the
//! control core only reads it, at scrape time. A write is therefore a relaxed load followed by
//! a relaxed store — a plain `mov` pair on x86, no locked read-modify-write — and a read is a
//! relaxed load. If two threads ever did write the same cell, increments could be lost (a
//! metric glitch, never undefined behaviour); callers keep to the one-writer rule.
//!
//! Cells are packed; false sharing between cores is avoided one level up: each core's cells
//! live in one [`CachePadded`] block of their own (see `catalogue`), so no cache line holds
//! cells of two writers. Padding every cell instead would multiply memory by eight and make a
//! scrape touch eight times as many lines, for no gain: within a block there is one writer.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Aligns (and so pads) its content to a 64-byte cache line: two `CachePadded` values never
/// share a line, so two cores writing their own blocks never invalidate each other's lines.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct CachePadded<T>(pub T);

impl<T> std::ops::Deref for CachePadded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// A monotonically increasing count (Prometheus counter).
#[derive(Debug, Default)]
pub struct Counter {
    /// The count; wraps at `u64::MAX` (never reached in practice).
    value: AtomicU64,
}

impl Counter {
    /// A counter at zero (usable in `const` array initialisers).
    pub const fn new() -> Self {
        Counter {
            value: AtomicU64::new(0),
        }
    }

    /// Add one.
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    /// Add `n` (single writer: load + store, no locked instruction).
    #[inline]
    pub fn add(&self, n: u64) {
        let v = self.value.load(Ordering::Relaxed);
        self.value.store(v.wrapping_add(n), Ordering::Relaxed);
    }

    /// The current count (any thread).
    #[inline]
    pub fn get(&self) -> u64 {
        self.value.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down (Prometheus gauge), integral.
#[derive(Debug, Default)]
pub struct Gauge {
    /// The current value; signed so that a stray extra `dec` shows as -1, not 2^64-1.
    value: AtomicI64,
}

impl Gauge {
    /// A gauge at zero.
    pub const fn new() -> Self {
        Gauge {
            value: AtomicI64::new(0),
        }
    }

    /// Add one.
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    /// Subtract one.
    #[inline]
    pub fn dec(&self) {
        self.add(-1);
    }

    /// Add `n` (may be negative).
    #[inline]
    pub fn add(&self, n: i64) {
        let v = self.value.load(Ordering::Relaxed);
        self.value.store(v.wrapping_add(n), Ordering::Relaxed);
    }

    /// Replace the value.
    #[inline]
    pub fn set(&self, v: i64) {
        self.value.store(v, Ordering::Relaxed);
    }

    /// The current value (any thread).
    #[inline]
    pub fn get(&self) -> i64 {
        self.value.load(Ordering::Relaxed)
    }
}

/// A gauge holding an `f64` (stored as its bit pattern), for ratios.
#[derive(Debug, Default)]
pub struct FloatGauge {
    /// `f64::to_bits` of the value (0 bits is 0.0).
    bits: AtomicU64,
}

impl FloatGauge {
    /// A gauge at 0.0.
    pub const fn new() -> Self {
        FloatGauge {
            bits: AtomicU64::new(0),
        }
    }

    /// Replace the value.
    #[inline]
    pub fn set(&self, v: f64) {
        self.bits.store(v.to_bits(), Ordering::Relaxed);
    }

    /// The current value (any thread).
    #[inline]
    pub fn get(&self) -> f64 {
        f64::from_bits(self.bits.load(Ordering::Relaxed))
    }
}

/// A histogram of durations over `N` fixed upper bounds (seconds, ascending) plus `+Inf`.
///
/// Buckets hold *non-cumulative* counts (one store per observation); a scrape accumulates
/// them. The total count is the sum of all buckets, so `_count` always equals the `+Inf`
/// bucket even when a scrape races an observation. The sum is kept in integer nanoseconds:
/// exact, and an `add` like any counter.
#[derive(Debug)]
pub struct Histogram<const N: usize> {
    /// Upper bounds in seconds, ascending; a value equal to a bound falls in that bucket
    /// (Prometheus `le` semantics).
    bounds: &'static [f64; N],
    /// `buckets[i]` counts values in `(bounds[i-1], bounds[i]]`.
    buckets: [Counter; N],
    /// Values above the last bound.
    overflow: Counter,
    /// Sum of all observed durations, in nanoseconds (saturating per observation).
    sum_nanos: Counter,
}

impl<const N: usize> Histogram<N> {
    /// An empty histogram over `bounds` (seconds, ascending).
    pub const fn new(bounds: &'static [f64; N]) -> Self {
        Histogram {
            bounds,
            buckets: [const { Counter::new() }; N],
            overflow: Counter::new(),
            sum_nanos: Counter::new(),
        }
    }

    /// Record one duration.
    #[inline]
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        match self.bounds.iter().position(|b| secs <= *b) {
            Some(i) => {
                if let Some(b) = self.buckets.get(i) {
                    b.inc();
                }
            }
            None => self.overflow.inc(),
        }
        self.sum_nanos
            .add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    /// The upper bounds, in seconds.
    pub fn bounds(&self) -> &'static [f64; N] {
        self.bounds
    }

    /// Add this histogram's current state into `acc` (summing cores at scrape time).
    pub fn accumulate(&self, acc: &mut HistogramSnapshot<N>) {
        for (a, b) in acc.buckets.iter_mut().zip(self.buckets.iter()) {
            *a = a.wrapping_add(b.get());
        }
        acc.overflow = acc.overflow.wrapping_add(self.overflow.get());
        acc.sum_nanos = acc.sum_nanos.wrapping_add(self.sum_nanos.get());
    }

    /// This histogram's current state alone.
    pub fn snapshot(&self) -> HistogramSnapshot<N> {
        let mut s = HistogramSnapshot::default();
        self.accumulate(&mut s);
        s
    }
}

/// A read of one or more histograms (summed), ready to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistogramSnapshot<const N: usize> {
    /// Non-cumulative bucket counts, as in [`Histogram`].
    pub buckets: [u64; N],
    /// Count above the last bound.
    pub overflow: u64,
    /// Sum of observations in nanoseconds.
    pub sum_nanos: u64,
}

impl<const N: usize> Default for HistogramSnapshot<N> {
    fn default() -> Self {
        HistogramSnapshot {
            buckets: [0; N],
            overflow: 0,
            sum_nanos: 0,
        }
    }
}

impl<const N: usize> HistogramSnapshot<N> {
    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.buckets
            .iter()
            .fold(self.overflow, |acc, b| acc.wrapping_add(*b))
    }

    /// Sum of observations in seconds.
    pub fn sum_secs(&self) -> f64 {
        self.sum_nanos as f64 / 1e9
    }

    /// Cumulative counts per bound (`le` semantics), as Prometheus exports them.
    pub fn cumulative(&self) -> [u64; N] {
        let mut out = [0; N];
        let mut running = 0u64;
        for (o, b) in out.iter_mut().zip(self.buckets.iter()) {
            running = running.wrapping_add(*b);
            *o = running;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    static BOUNDS: [f64; 3] = [0.01, 0.1, 1.0];

    #[test]
    fn counter_counts_increments_and_additions() {
        let c = Counter::new();
        c.inc();
        c.add(41);
        assert_eq!(c.get(), 42);
    }

    #[test]
    fn gauge_goes_up_down_and_can_be_set() {
        let g = Gauge::new();
        g.inc();
        g.inc();
        g.dec();
        assert_eq!(g.get(), 1);
        g.set(-3);
        assert_eq!(g.get(), -3);
    }

    #[test]
    fn float_gauge_round_trips_its_value() {
        let g = FloatGauge::new();
        assert_eq!(g.get(), 0.0);
        g.set(0.375);
        assert_eq!(g.get(), 0.375);
    }

    #[test]
    fn histogram_puts_values_on_a_bound_into_that_bucket() {
        let h = Histogram::new(&BOUNDS);
        h.observe(Duration::from_millis(10)); // == 0.01 → first bucket
        h.observe(Duration::from_millis(11)); // second
        h.observe(Duration::from_secs(1)); // == 1.0 → third
        h.observe(Duration::from_secs(5)); // overflow
        let s = h.snapshot();
        assert_eq!(s.buckets, [1, 1, 1]);
        assert_eq!(s.overflow, 1);
        assert_eq!(s.cumulative(), [1, 2, 3]);
        assert_eq!(s.count(), 4);
        assert_eq!(s.sum_nanos, 6_021_000_000);
        assert!((s.sum_secs() - 6.021).abs() < 1e-9);
    }

    #[test]
    fn cache_padded_blocks_never_share_a_line() {
        assert_eq!(std::mem::align_of::<CachePadded<Counter>>(), 64);
        assert_eq!(std::mem::size_of::<CachePadded<Counter>>(), 64);
        let v: Vec<CachePadded<Counter>> = (0..2).map(|_| CachePadded(Counter::new())).collect();
        let a = std::ptr::from_ref(&v[0]) as usize;
        let b = std::ptr::from_ref(&v[1]) as usize;
        assert_eq!(a % 64, 0);
        assert_eq!(b - a, 64);
    }

    /// One writer thread per block, a reader summing them all: the sum is exact once the
    /// writers are done, and never exceeds the final total while they run.
    #[test]
    fn writers_on_different_threads_sum_exactly() {
        const THREADS: usize = 4;
        const PER_THREAD: u64 = 200_000;
        struct Block {
            c: Counter,
            h: Histogram<3>,
        }
        let blocks: Arc<Vec<CachePadded<Block>>> = Arc::new(
            (0..THREADS)
                .map(|_| {
                    CachePadded(Block {
                        c: Counter::new(),
                        h: Histogram::new(&BOUNDS),
                    })
                })
                .collect(),
        );
        let writers: Vec<_> = (0..THREADS)
            .map(|i| {
                let blocks = blocks.clone();
                std::thread::spawn(move || {
                    let b = &blocks[i];
                    for n in 0..PER_THREAD {
                        b.c.inc();
                        b.h.observe(Duration::from_millis(n % 3 * 50));
                    }
                })
            })
            .collect();
        let total = THREADS as u64 * PER_THREAD;
        // A concurrent reader sees partial but never excessive sums.
        for _ in 0..1000 {
            let s: u64 = blocks.iter().map(|b| b.c.get()).sum();
            assert!(s <= total);
        }
        for w in writers {
            w.join().expect("writer thread");
        }
        let s: u64 = blocks.iter().map(|b| b.c.get()).sum();
        assert_eq!(s, total);
        let mut acc = HistogramSnapshot::<3>::default();
        for b in blocks.iter() {
            b.h.accumulate(&mut acc);
        }
        assert_eq!(acc.count(), total);
        // n % 3 == 0 → 0 s (first bucket), 1 → 50 ms (second), 2 → 100 ms (second).
        let zeros = THREADS as u64 * PER_THREAD.div_ceil(3);
        assert_eq!(acc.buckets[0], zeros);
        assert_eq!(acc.buckets[1], total - zeros);
        assert_eq!(acc.overflow, 0);
    }
}
