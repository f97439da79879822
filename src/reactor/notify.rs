//! A single-threaded wake-up flag: one task waits, any code on the same core signals.
//! (Per-core state only; nothing here crosses cores.)

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// Signalled state plus the waiting task's waker.
#[derive(Default)]
pub struct Notify {
    /// A signal arrived that no wait consumed yet.
    signalled: Cell<bool>,
    /// The task waiting, if any.
    waker: RefCell<Option<Waker>>,
}

impl Notify {
    /// Wake the waiter (or let its next wait return at once).
    pub fn signal(&self) {
        self.signalled.set(true);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    /// Wait for the next signal (returns at once if one is pending).
    pub fn wait(&self) -> Wait<'_> {
        Wait { notify: self }
    }
}

pub struct Wait<'a> {
    notify: &'a Notify,
}

impl Future for Wait<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.notify.signalled.replace(false) {
            return Poll::Ready(());
        }
        *self.notify.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}
