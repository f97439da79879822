//! The per-core pool of 4 KiB buffers: take and return in the steady state (no allocation),
//! against a fresh boxed 4 KiB buffer for scale.

use std::hint::black_box;
use std::rc::Rc;

use criterion::{criterion_group, criterion_main, Criterion};
use dungeongate::reactor::pool::{BufferPool, BUF_SIZE};

fn pool(c: &mut Criterion) {
    let mut g = c.benchmark_group("buffer_pool");
    let pool = Rc::new(BufferPool::default());
    drop(pool.take());
    g.bench_function("take_return", |b| {
        b.iter(|| {
            let mut buf = pool.take();
            buf[0] = 1;
            black_box(&buf[..]);
        })
    });
    g.bench_function("take_return_64_held", |b| {
        b.iter(|| {
            let held: Vec<_> = (0..64).map(|_| pool.take()).collect();
            black_box(held.len());
        })
    });
    g.bench_function("fresh_box_for_comparison", |b| {
        b.iter(|| {
            let mut buf = Box::new([0u8; BUF_SIZE]);
            buf[0] = 1;
            black_box(&buf[..]);
        })
    });
    g.finish();
}

criterion_group!(benches, pool);
criterion_main!(benches);
