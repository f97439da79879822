//! One timer source per core: a min-heap of (deadline, what) behind the single wait of each
//! loop turn (`io_uring_enter` with a timeout), so timers cost no submission at all.
//!
//! Entries are never removed early: each owner remembers the deadline it armed. A deadline
//! that moves earlier pushes a new entry; one that moves later pushes nothing, and when the
//! old entry comes up the caller pushes it again at the owner's new deadline (an entry
//! earlier than what the owner armed is a stale one: skipped).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Milliseconds on the reactor clock.
pub type Millis = u64;

/// Whose deadline an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TimerOwner {
    /// A connection (slot, generation).
    Conn(u32, u32),
    /// A game (slot, generation): the SIGKILL after a hangup's grace.
    Game(u32, u32),
    /// The core's sampler (busy ratio, heartbeat), armed like a connection's deadline.
    Sampler,
    /// The core's one-off deadlines (an accept retry, the end of the drain).
    Core,
}

/// What an entry that came up means for its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// The owner's deadline: act now.
    Fire,
    /// The owner's deadline moved later: the entry goes back in at this time.
    Later(Millis),
    /// Superseded by an earlier entry (already handled), or the owner wants none.
    Stale,
}

/// An entry due at `at` came up; the owner has `armed` (see [`Timers::arm`]).
pub fn due(at: Millis, armed: Option<Millis>) -> Due {
    match armed {
        Some(t) if t == at => Due::Fire,
        Some(t) if t > at => Due::Later(t),
        _ => Due::Stale,
    }
}

#[derive(Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(Millis, TimerOwner)>>,
}

impl Timers {
    pub fn with_capacity(n: usize) -> Timers {
        Timers {
            heap: BinaryHeap::with_capacity(n),
        }
    }

    /// Arm `owner` at `at`. `armed` is the deadline the owner armed before (None: none),
    /// updated to the one now in force.
    pub fn arm(&mut self, owner: TimerOwner, at: Option<Millis>, armed: &mut Option<Millis>) {
        match (at, *armed) {
            (None, _) => *armed = None,
            (Some(t), Some(old)) if old <= t => *armed = Some(t),
            (Some(t), _) => {
                self.heap.push(Reverse((t, owner)));
                *armed = Some(t);
            }
        }
    }

    /// Arm `owner` at `at` with no bookkeeping (one-off deadlines).
    pub fn push(&mut self, owner: TimerOwner, at: Millis) {
        self.heap.push(Reverse((at, owner)));
    }

    /// The earliest entry's deadline.
    pub fn next(&self) -> Option<Millis> {
        self.heap.peek().map(|Reverse((t, _))| *t)
    }

    /// Take an entry due at `now`; the caller checks it against what the owner armed.
    pub fn pop_due(&mut self, now: Millis) -> Option<(Millis, TimerOwner)> {
        match self.heap.peek() {
            Some(Reverse((t, _))) if *t <= now => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earlier_deadlines_push_and_later_ones_wait_for_the_old_entry() {
        let mut t = Timers::default();
        let mut armed = None;
        let owner = TimerOwner::Conn(1, 1);
        t.arm(owner, Some(100), &mut armed);
        t.arm(owner, Some(200), &mut armed);
        assert_eq!(t.len(), 1);
        assert_eq!(armed, Some(200));
        t.arm(owner, Some(50), &mut armed);
        assert_eq!(t.len(), 2);
        assert_eq!(t.next(), Some(50));
        assert_eq!(t.pop_due(49), None);
        assert_eq!(t.pop_due(60), Some((50, owner)));
        assert_eq!(t.pop_due(60), None);
    }

    #[test]
    fn a_deadline_moved_later_fires_at_its_new_time_and_is_not_lost() {
        let mut t = Timers::default();
        let mut armed = None;
        let owner = TimerOwner::Conn(3, 7);
        t.arm(owner, Some(100), &mut armed);
        // Activity moved the deadline later: no new entry.
        t.arm(owner, Some(400), &mut armed);
        let (at, _) = t.pop_due(100).expect("the old entry comes up");
        assert_eq!(due(at, armed), Due::Later(400));
        t.push(owner, 400);
        assert_eq!(t.pop_due(399), None);
        let (at, _) = t.pop_due(400).expect("fires at its new time");
        assert_eq!(due(at, armed), Due::Fire);
        // An entry older than an earlier deadline that already fired is stale.
        assert_eq!(due(50, Some(20)), Due::Stale);
        assert_eq!(due(50, None), Due::Stale);
    }
}
