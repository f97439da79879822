//! A small bounded pool of threads for work that blocks: LMDB reads and commits, argon2,
//! preparing a game's files and spawning it. Jobs carry their own way back: they push their
//! result to the asking core's mailbox and wake its ring.

use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

type Task = Box<dyn FnOnce() + Send>;

/// The pool: `threads` workers sharing one bounded queue.
pub struct Pool {
    tx: SyncSender<Task>,
}

/// The queue was full (or the pool stopped): the job was not taken.
#[derive(Debug)]
pub struct Busy;

impl Pool {
    /// Start `threads` workers named `name-N` with room for `queue` waiting jobs.
    pub fn new(name: &str, threads: usize, queue: usize) -> std::io::Result<Arc<Pool>> {
        let (tx, rx) = mpsc::sync_channel::<Task>(queue);
        // The workers take turns at the receiver; the lock is held only while waiting for a
        // job, never while running one, and no reactor core ever touches it.
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || worker(&rx))?;
        }
        Ok(Arc::new(Pool { tx }))
    }

    /// Run `job` on a worker.
    pub fn submit(&self, job: impl FnOnce() + Send + 'static) -> Result<(), Busy> {
        match self.tx.try_send(Box::new(job)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => Err(Busy),
        }
    }
}

fn worker(rx: &Mutex<Receiver<Task>>) {
    loop {
        let task = {
            let Ok(guard) = rx.lock() else { return };
            guard.recv()
        };
        match task {
            Ok(t) => t(),
            Err(_) => return,
        }
    }
}

/// Results from pool jobs (or other threads) for one core: the core drains it on each wake-up.
pub struct Mailbox<T> {
    rx: Receiver<T>,
}

/// The sending side of a [`Mailbox`]: pushes and wakes the core.
pub struct Post<T> {
    tx: mpsc::Sender<T>,
    waker: super::mesh::Waker,
}

impl<T> Clone for Post<T> {
    fn clone(&self) -> Self {
        Post {
            tx: self.tx.clone(),
            waker: self.waker.clone(),
        }
    }
}

pub fn mailbox<T>(waker: super::mesh::Waker) -> (Post<T>, Mailbox<T>) {
    let (tx, rx) = mpsc::channel();
    (Post { tx, waker }, Mailbox { rx })
}

impl<T> Post<T> {
    /// Deliver `item` and wake the core (its eventfd).
    pub fn send(&self, item: T) {
        if self.tx.send(item).is_ok() {
            self.waker.wake();
        }
    }
}

impl<T> Mailbox<T> {
    pub fn try_recv(&self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_answers_busy_and_jobs_run() {
        let pool = Pool::new("test-pool", 1, 1).expect("pool");
        let (gate_tx, gate_rx) = mpsc::channel::<()>();
        let (done_tx, done_rx) = mpsc::channel::<u32>();
        let (started_tx, started_rx) = mpsc::channel::<()>();
        // Occupy the worker, fill the queue, then one more is refused.
        pool.submit(move || {
            let _ = started_tx.send(());
            let _ = gate_rx.recv();
        })
        .expect("first");
        started_rx.recv().expect("worker took the first job");
        let d = done_tx.clone();
        pool.submit(move || {
            let _ = d.send(1);
        })
        .expect("queued");
        assert!(pool.submit(|| {}).is_err());
        gate_tx.send(()).expect("open gate");
        assert_eq!(done_rx.recv().expect("ran"), 1);
    }
}
