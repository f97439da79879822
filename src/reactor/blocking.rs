//! A small bounded pool of threads for work that blocks: LMDB reads and commits, argon2,
//! preparing a game's files and spawning it. Jobs carry their own way back: they push their
//! result to the asking core's mailbox and wake its ring.

use std::collections::VecDeque;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Condvar, Mutex};

type Task = Box<dyn FnOnce() + Send>;

/// The pool: `threads` workers sharing one bounded queue.
pub struct Pool {
    shared: Arc<Queue>,
}

/// The queue the workers take from. Its lock is held only to push or pop a task, never
/// while one runs; it is shared by one submitting thread and its own workers, never between
/// cores.
struct Queue {
    tasks: Mutex<VecDeque<Task>>,
    ready: Condvar,
    capacity: usize,
}

/// The queue was full: the job was not taken.
#[derive(Debug)]
pub struct Busy;

impl Pool {
    /// Start `threads` workers named `name-N` with room for `queue` waiting jobs.
    pub fn new(name: &str, threads: usize, queue: usize) -> std::io::Result<Arc<Pool>> {
        let shared = Arc::new(Queue {
            tasks: Mutex::new(VecDeque::with_capacity(queue.min(1024))),
            ready: Condvar::new(),
            capacity: queue.max(1),
        });
        for i in 0..threads.max(1) {
            let q = shared.clone();
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || worker(&q))?;
        }
        Ok(Arc::new(Pool { shared }))
    }

    /// Whether a job submitted now would be taken (only the submitting thread adds jobs, so
    /// the answer holds until it submits).
    pub fn has_room(&self) -> bool {
        self.shared
            .tasks
            .lock()
            .map(|q| q.len() < self.shared.capacity)
            .unwrap_or(false)
    }

    /// Run `job` on a worker.
    pub fn submit(&self, job: impl FnOnce() + Send + 'static) -> Result<(), Busy> {
        let Ok(mut q) = self.shared.tasks.lock() else {
            return Err(Busy);
        };
        if q.len() >= self.shared.capacity {
            return Err(Busy);
        }
        q.push_back(Box::new(job));
        drop(q);
        self.shared.ready.notify_one();
        Ok(())
    }
}

fn worker(q: &Queue) {
    loop {
        let task = {
            let Ok(mut tasks) = q.tasks.lock() else {
                return;
            };
            loop {
                if let Some(t) = tasks.pop_front() {
                    break t;
                }
                tasks = match q.ready.wait(tasks) {
                    Ok(t) => t,
                    Err(_) => return,
                };
            }
        };
        task();
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

    /// Deliver every item, then wake the core once.
    pub fn send_all(&self, items: impl IntoIterator<Item = T>) {
        let mut any = false;
        for item in items {
            any |= self.tx.send(item).is_ok();
        }
        if any {
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
