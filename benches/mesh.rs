//! Cross-core wake-up latency: one thread pushes a timestamp into a mesh queue and wakes the
//! other thread's ring (IORING_OP_MSG_RING, and the eventfd path for comparison); the other
//! thread, parked in `io_uring_enter`, pops it and records how long it took to see it.
//! Prints p50 / p99 / max per path (`cargo bench --bench mesh`).

use dungeongate::reactor::mesh::{self, Waker};
use dungeongate::reactor::ring::{Kind, Ring};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SAMPLES: usize = 20_000;

fn main() {
    for (name, use_msg_ring) in [("msg_ring", true), ("eventfd", false)] {
        let mut lat = run(use_msg_ring);
        lat.sort_unstable();
        let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
        println!(
            "mesh wake-up via {name}: p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs ({} samples)",
            pct(0.50).as_secs_f64() * 1e6,
            pct(0.99).as_secs_f64() * 1e6,
            lat[lat.len() - 1].as_secs_f64() * 1e6,
            lat.len()
        );
    }
}

/// One producer, one consumer parked in its ring; returns the wake-up latencies.
fn run(use_msg_ring: bool) -> Vec<Duration> {
    let (mut tx, mut rx) = mesh::queue::<Instant>(1024);
    let eventfd = Arc::new(mesh::eventfd().expect("eventfd"));
    let (fd_tx, fd_rx) = mpsc::channel();
    let (ack_tx, ack_rx) = mpsc::channel::<()>();
    let consumer_eventfd = eventfd.clone();
    let consumer = std::thread::spawn(move || {
        let mut ring = Ring::new().expect("ring");
        fd_tx.send(ring.fd()).expect("fd");
        dungeongate::reactor::arm_wake(&mut ring, &consumer_eventfd);
        let mut got = Vec::new();
        let mut lat = Vec::with_capacity(SAMPLES);
        while lat.len() < SAMPLES {
            ring.turn(Some(Duration::from_secs(5)));
            ring.take_completions(&mut got);
            if got
                .iter()
                .any(|c| c.tag.is_some_and(|t| t.kind == Kind::Wake))
            {
                mesh::drain_eventfd(&consumer_eventfd);
                while let Some(sent) = rx.pop() {
                    lat.push(sent.elapsed());
                    let _ = ack_tx.send(());
                }
            }
            if got.iter().any(|c| {
                c.tag
                    .is_some_and(|t| t.kind == Kind::Wake && !c.more() && t.index == 1)
            }) {
                dungeongate::reactor::arm_wake(&mut ring, &consumer_eventfd);
            }
        }
        lat
    });
    let fd = fd_rx.recv().expect("fd");
    let waker = Waker::new(use_msg_ring.then_some(fd), eventfd);
    let mut ring = Ring::new().expect("ring");
    for _ in 0..SAMPLES {
        // Let the consumer park before the next message, as an idle core would be.
        std::thread::sleep(Duration::from_micros(50));
        tx.push(Instant::now()).expect("queue has room");
        waker.wake_from(&mut ring);
        ring.turn(Some(Duration::ZERO));
        let _ = ack_rx.recv_timeout(Duration::from_secs(5));
    }
    consumer.join().expect("consumer")
}
