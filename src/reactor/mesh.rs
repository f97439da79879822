//! Cross-core messages: bounded single-producer single-consumer queues, and the wake-up that
//! tells the consumer's ring to look at them.
//!
//! The producer pushes, then wakes the consumer's ring: with `IORING_OP_MSG_RING` (a
//! completion posted straight into the other ring, submitted with the producer's next enter,
//! so it costs no system call of its own), or by writing the consumer's eventfd (threads
//! without a ring, and kernels without MSG_RING). The consumer drains every queue on each
//! wake-up. A message pushed before a wake-up is always seen by the drain that the wake-up
//! causes, so none is lost; a drain that finds nothing is harmless.

use super::ring::{Ring, Tag};
use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// Keeps producer and consumer indices on separate cache lines.
#[repr(align(64))]
struct Padded(AtomicUsize);

struct Shared<T> {
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
    /// Next slot to read (written by the consumer).
    head: Padded,
    /// Next slot to write (written by the producer).
    tail: Padded,
}

// SAFETY: a slot is written only by the producer before it publishes `tail`, and read only by
// the consumer after it sees that `tail` (acquire/release); T crosses threads, so T: Send.
#[allow(unsafe_code)]
unsafe impl<T: Send> Sync for Shared<T> {}
#[allow(unsafe_code)]
unsafe impl<T: Send> Send for Shared<T> {}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        let head = self.head.0.load(Ordering::Relaxed);
        let tail = self.tail.0.load(Ordering::Relaxed);
        let cap = self.slots.len();
        for i in head..tail {
            if let Some(slot) = self.slots.get(i % cap) {
                // SAFETY: slots between head and tail hold initialised values nobody read.
                #[allow(unsafe_code)]
                unsafe {
                    (*slot.get()).assume_init_drop();
                }
            }
        }
    }
}

/// The sending end.
pub struct Producer<T> {
    shared: Arc<Shared<T>>,
}

/// The receiving end.
pub struct Consumer<T> {
    shared: Arc<Shared<T>>,
}

/// A queue of `capacity` messages.
pub fn queue<T: Send>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    let capacity = capacity.max(1);
    let slots = (0..capacity)
        .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
        .collect();
    let shared = Arc::new(Shared {
        slots,
        head: Padded(AtomicUsize::new(0)),
        tail: Padded(AtomicUsize::new(0)),
    });
    (
        Producer {
            shared: shared.clone(),
        },
        Consumer { shared },
    )
}

impl<T: Send> Producer<T> {
    /// Queue `item`, or give it back when the queue is full.
    pub fn push(&mut self, item: T) -> Result<(), T> {
        let s = &self.shared;
        let tail = s.tail.0.load(Ordering::Relaxed);
        let head = s.head.0.load(Ordering::Acquire);
        if tail.wrapping_sub(head) >= s.slots.len() {
            return Err(item);
        }
        let Some(slot) = s.slots.get(tail % s.slots.len()) else {
            return Err(item);
        };
        // SAFETY: the slot is free (the consumer has read past it) and only we write it.
        #[allow(unsafe_code)]
        unsafe {
            (*slot.get()).write(item);
        }
        s.tail.0.store(tail.wrapping_add(1), Ordering::Release);
        Ok(())
    }
}

impl<T: Send> Consumer<T> {
    /// The oldest message, if any.
    pub fn pop(&mut self) -> Option<T> {
        let s = &self.shared;
        let head = s.head.0.load(Ordering::Relaxed);
        let tail = s.tail.0.load(Ordering::Acquire);
        if head == tail {
            return None;
        }
        let slot = s.slots.get(head % s.slots.len())?;
        // SAFETY: the producer wrote this slot before publishing a tail past it.
        #[allow(unsafe_code)]
        let item = unsafe { (*slot.get()).assume_init_read() };
        s.head.0.store(head.wrapping_add(1), Ordering::Release);
        Some(item)
    }
}

/// How to wake one core's ring.
#[derive(Clone)]
pub struct Waker {
    /// The target ring's descriptor, when MSG_RING can reach it.
    ring_fd: Option<RawFd>,
    /// The target's eventfd (always there: threads without a ring use it).
    eventfd: Arc<OwnedFd>,
}

impl Waker {
    pub fn new(ring_fd: Option<RawFd>, eventfd: Arc<OwnedFd>) -> Waker {
        Waker { ring_fd, eventfd }
    }

    /// Wake from a thread with a ring: a MSG_RING queued on `ring`, sent with its next enter.
    pub fn wake_from(&self, ring: &mut Ring) {
        match self.ring_fd {
            Some(fd) => {
                let entry = io_uring::opcode::MsgRingData::new(
                    io_uring::types::Fd(fd),
                    0,
                    Tag::WAKE.encode(),
                    None,
                )
                .build()
                .flags(io_uring::squeue::Flags::SKIP_SUCCESS);
                ring.push(entry, Tag::IGNORE);
            }
            None => self.wake(),
        }
    }

    /// Wake from any thread: write the eventfd.
    pub fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writing 8 bytes from a live u64 to an eventfd we own a reference to.
        #[allow(unsafe_code)]
        unsafe {
            libc::write(
                self.eventfd.as_raw_fd(),
                (&one as *const u64).cast(),
                std::mem::size_of::<u64>(),
            );
        }
    }
}

/// A new non-blocking eventfd.
pub fn eventfd() -> std::io::Result<OwnedFd> {
    // SAFETY: eventfd has no pointer arguments; the result is checked.
    #[allow(unsafe_code)]
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor owned by nobody else.
    #[allow(unsafe_code)]
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })
}

/// Reset an eventfd after its wake-up was seen.
pub fn drain_eventfd(fd: &OwnedFd) {
    let mut v: u64 = 0;
    // SAFETY: reading 8 bytes into a live u64; non-blocking, so an empty counter is EAGAIN.
    #[allow(unsafe_code)]
    unsafe {
        libc::read(
            fd.as_raw_fd(),
            (&mut v as *mut u64).cast(),
            std::mem::size_of::<u64>(),
        );
    }
}

/// Wake-ups owed at the end of a turn: one per target however many messages it got.
pub struct PendingWakes {
    wakers: Vec<Waker>,
    owed: Vec<bool>,
}

impl PendingWakes {
    pub fn new(wakers: Vec<Waker>) -> PendingWakes {
        let owed = vec![false; wakers.len()];
        PendingWakes { wakers, owed }
    }

    /// Target `i` has a new message.
    pub fn owe(&mut self, i: usize) {
        if let Some(o) = self.owed.get_mut(i) {
            *o = true;
        }
    }

    /// Queue the owed wake-ups on `ring` (sent with its next enter).
    pub fn send(&mut self, ring: &mut Ring) {
        for (i, owed) in self.owed.iter_mut().enumerate() {
            if std::mem::take(owed) {
                if let Some(w) = self.wakers.get(i) {
                    w.wake_from(ring);
                }
            }
        }
    }
}

/// Set by the signal thread; every core looks at it on each wake-up.
pub type StopFlag = Arc<AtomicBool>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_keeps_order_and_refuses_past_capacity() {
        let (mut p, mut c) = queue::<u32>(3);
        assert!(p.push(1).is_ok());
        assert!(p.push(2).is_ok());
        assert!(p.push(3).is_ok());
        assert_eq!(p.push(4), Err(4));
        assert_eq!(c.pop(), Some(1));
        assert!(p.push(4).is_ok());
        assert_eq!(
            (c.pop(), c.pop(), c.pop(), c.pop()),
            (Some(2), Some(3), Some(4), None)
        );
    }

    #[test]
    fn messages_cross_threads_in_order() {
        let (mut p, mut c) = queue::<u64>(64);
        let n = 200_000u64;
        let t = std::thread::spawn(move || {
            let mut i = 0;
            while i < n {
                if p.push(i).is_ok() {
                    i += 1;
                } else {
                    std::hint::spin_loop();
                }
            }
        });
        let mut expect = 0;
        while expect < n {
            if let Some(v) = c.pop() {
                assert_eq!(v, expect);
                expect += 1;
            }
        }
        t.join().expect("producer");
    }

    #[test]
    fn unread_messages_are_dropped_with_the_queue() {
        let marker = Arc::new(());
        let (mut p, c) = queue::<Arc<()>>(4);
        let _ = p.push(marker.clone());
        let _ = p.push(marker.clone());
        drop((p, c));
        assert_eq!(Arc::strong_count(&marker), 1);
    }

    #[test]
    fn a_msg_ring_wake_up_reaches_the_other_ring() {
        let (tx, rx) = std::sync::mpsc::channel();
        let target = std::thread::spawn(move || {
            let mut ring = Ring::new().expect("ring");
            tx.send(ring.fd()).expect("send fd");
            ring.turn(Some(std::time::Duration::from_secs(10)));
            let mut got = Vec::new();
            ring.take_completions(&mut got);
            got.iter().any(|c| c.tag == Some(Tag::WAKE))
        });
        let fd = rx.recv().expect("fd");
        let mut ring = Ring::new().expect("ring");
        let waker = Waker::new(Some(fd), Arc::new(eventfd().expect("eventfd")));
        // The target may not be waiting yet: the completion waits for it in its queue.
        waker.wake_from(&mut ring);
        ring.turn(Some(std::time::Duration::from_millis(10)));
        assert!(target.join().expect("target"));
    }
}
