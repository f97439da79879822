//! One io_uring per core: set up with `SINGLE_ISSUER` + `DEFER_TASKRUN` where the kernel has
//! them (completions are then processed only when this thread enters, never by interrupting
//! it), one `io_uring_enter` per loop turn that submits and waits together, and the 64-bit
//! `user_data` layout every operation is tagged with.

use io_uring::{cqueue, squeue, types, IoUring};
use std::io;
use std::time::Duration;

/// Submission queue depth; completions get four times as many slots (multishot operations
/// post many completions per submission).
const SQ_ENTRIES: u32 = 1024;

/// What an operation was for: the top byte of its `user_data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Multishot accept on listener `index`.
    Accept = 1,
    /// Multishot receive on connection `index`.
    Recv = 2,
    /// A send of connection `index`.
    Send = 3,
    /// Readiness (multishot POLLIN) of game `index`'s PTY master.
    PtyRead = 4,
    /// One-shot POLLOUT of game `index`'s PTY master (a write found it full).
    PtyWrite = 5,
    /// Game `index`'s pidfd became readable: the process exited.
    Exit = 6,
    /// Another thread has something for this core (MSG_RING from a core, or the eventfd).
    Wake = 7,
    /// A completion nobody waits for (cancellations, MSG_RING on an old kernel).
    Ignore = 8,
    /// The core's one timeout: the earliest deadline of its timer heap.
    Timer = 9,
}

impl Kind {
    fn from_u8(v: u8) -> Option<Kind> {
        Some(match v {
            1 => Kind::Accept,
            2 => Kind::Recv,
            3 => Kind::Send,
            4 => Kind::PtyRead,
            5 => Kind::PtyWrite,
            6 => Kind::Exit,
            7 => Kind::Wake,
            8 => Kind::Ignore,
            9 => Kind::Timer,
            _ => return None,
        })
    }
}

/// `user_data`: kind (8 bits) | generation (24 bits) | index (32 bits). The generation tells a
/// late completion for a closed slot from one for the slot's next occupant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag {
    pub kind: Kind,
    pub generation: u32,
    pub index: u32,
}

impl Tag {
    pub const WAKE: Tag = Tag {
        kind: Kind::Wake,
        generation: 0,
        index: 0,
    };
    pub const IGNORE: Tag = Tag {
        kind: Kind::Ignore,
        generation: 0,
        index: 0,
    };

    pub fn new(kind: Kind, generation: u32, index: usize) -> Tag {
        Tag {
            kind,
            generation: generation & 0x00ff_ffff,
            index: u32::try_from(index).unwrap_or(u32::MAX),
        }
    }

    pub fn encode(self) -> u64 {
        (u64::from(self.kind as u8) << 56)
            | (u64::from(self.generation & 0x00ff_ffff) << 32)
            | u64::from(self.index)
    }

    pub fn decode(v: u64) -> Option<Tag> {
        Some(Tag {
            kind: Kind::from_u8((v >> 56) as u8)?,
            generation: ((v >> 32) & 0x00ff_ffff) as u32,
            index: (v & 0xffff_ffff) as u32,
        })
    }
}

/// One completion, copied out of the queue.
#[derive(Debug, Clone, Copy)]
pub struct Completion {
    pub tag: Option<Tag>,
    pub result: i32,
    pub flags: u32,
}

impl Completion {
    /// A multishot operation stays armed after this completion.
    pub fn more(&self) -> bool {
        cqueue::more(self.flags)
    }

    /// The provided buffer this completion filled.
    pub fn buffer(&self) -> Option<u16> {
        cqueue::buffer_select(self.flags)
    }
}

/// A core's ring.
pub struct Ring {
    ring: IoUring,
    /// Completions copied out per turn (reused: no allocation per turn).
    pending: Vec<Completion>,
}

/// `io_uring_enter` calls made by every ring of the process (for the per-keystroke and
/// per-login figures in `tests/reactor_alloc.rs`; one relaxed add per call).
pub static ENTERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn count_enter() {
    ENTERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

impl Ring {
    /// A ring for this thread: `SINGLE_ISSUER` + `DEFER_TASKRUN` when the kernel has them
    /// (6.1+), a plain ring otherwise.
    pub fn new() -> io::Result<Ring> {
        let ring = IoUring::builder()
            .setup_cqsize(SQ_ENTRIES * 4)
            .setup_submit_all()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .build(SQ_ENTRIES)
            .or_else(|_| {
                IoUring::builder()
                    .setup_cqsize(SQ_ENTRIES * 4)
                    .build(SQ_ENTRIES)
            })?;
        Ok(Ring {
            ring,
            pending: Vec::with_capacity(SQ_ENTRIES as usize * 4),
        })
    }

    /// The ring's descriptor (the target of other cores' MSG_RING).
    pub fn fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.ring.as_raw_fd()
    }

    pub fn submitter(&self) -> io_uring::Submitter<'_> {
        self.ring.submitter()
    }

    /// Queue `entry` tagged `tag`; submits first when the queue is full.
    pub fn push(&mut self, entry: squeue::Entry, tag: Tag) {
        let entry = entry.user_data(tag.encode());
        loop {
            // SAFETY: every buffer an entry points at is owned by the reactor and outlives the
            // operation (send buffers are held until their completion; the provided buffers
            // live as long as the ring).
            #[allow(unsafe_code)]
            let pushed = unsafe { self.ring.submission().push(&entry) };
            if pushed.is_ok() {
                return;
            }
            count_enter();
            if let Err(e) = self.ring.submit() {
                tracing::error!(error = %e, "io_uring submit failed");
                return;
            }
        }
    }

    /// Submit what is queued and wait for at least one completion, at most `timeout`
    /// (`None`: until something completes); then copy the completions out.
    pub fn turn(&mut self, timeout: Option<Duration>) {
        self.pending.clear();
        // Completions already posted need no wait.
        let ready = !self.ring.completion().is_empty();
        count_enter();
        let result = match (ready, timeout) {
            (true, _) => self.ring.submit(),
            (false, None) => self.ring.submit_and_wait(1),
            (false, Some(t)) => {
                let ts = types::Timespec::from(t);
                let args = types::SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(1, &args)
            }
        };
        if let Err(e) = result {
            match e.raw_os_error() {
                Some(libc::ETIME) | Some(libc::EINTR) | Some(libc::EBUSY) | Some(libc::EAGAIN) => {}
                _ => tracing::error!(error = %e, "io_uring_enter failed"),
            }
        }
        for cqe in self.ring.completion() {
            self.pending.push(Completion {
                tag: Tag::decode(cqe.user_data()),
                result: cqe.result(),
                flags: cqe.flags(),
            });
        }
    }

    /// Swap the last turn's completions into `into` (both vectors keep their capacity, and
    /// the caller can use the rest of its state while going through them).
    pub fn take_completions(&mut self, into: &mut Vec<Completion>) {
        into.clear();
        std::mem::swap(into, &mut self.pending);
    }
}

/// The one timeout SQE a core keeps in the kernel for the earliest deadline of its timer
/// heap. Waiting with a timeout on every enter (`IORING_ENTER_EXT_ARG`) arms and cancels a
/// kernel timer per wake-up, and on a VM each of those is a trapped MSR write; this one stays
/// armed across wake-ups and changes only when an earlier deadline comes up (an update, no
/// extra enter) or when it fires.
pub struct WakeTimer {
    /// The deadline the kernel holds, if any.
    armed: Option<u64>,
    /// Where the kernel reads the timespec from when the SQE is submitted.
    ts: Box<types::Timespec>,
}

impl Default for WakeTimer {
    fn default() -> Self {
        WakeTimer {
            armed: None,
            ts: Box::new(types::Timespec::new()),
        }
    }
}

impl WakeTimer {
    /// Make sure the ring wakes by `at` (milliseconds on the reactor clock, `now` being the
    /// time now). A later deadline needs nothing: the armed one fires early and the next
    /// turn arms the rest.
    pub fn set(&mut self, ring: &mut Ring, at: Option<u64>, now: u64) {
        let Some(at) = at else { return };
        if self.armed.is_some_and(|a| a <= at) {
            return;
        }
        let ms = at.saturating_sub(now);
        *self.ts = types::Timespec::new()
            .sec(ms / 1000)
            .nsec(u32::try_from((ms % 1000) * 1_000_000).unwrap_or(0));
        let ts: *const types::Timespec = &*self.ts;
        let tag = Tag::new(Kind::Timer, 0, 0);
        let entry = match self.armed {
            Some(_) => io_uring::opcode::TimeoutUpdate::new(tag.encode(), ts).build(),
            None => io_uring::opcode::Timeout::new(ts).build(),
        };
        // The update's own completion is not waited for; the timeout's is `tag`.
        let own = if self.armed.is_some() {
            Tag::IGNORE
        } else {
            tag
        };
        ring.push(entry, own);
        self.armed = Some(at);
    }

    /// The timeout completed (it fired, or an update found it gone): arm again next turn.
    pub fn fired(&mut self) {
        self.armed = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip_and_keep_generation_apart_from_index() {
        let t = Tag::new(Kind::Recv, 0x12_3456, 0xdead_beef);
        assert_eq!(Tag::decode(t.encode()), Some(t));
        let u = Tag::new(Kind::Send, 0x12_3457, 0xdead_beef);
        assert_ne!(t.encode(), u.encode());
        assert_eq!(Tag::decode(0), None);
    }

    #[test]
    fn a_nop_completes_in_one_turn() {
        let mut ring = Ring::new().expect("io_uring");
        ring.push(io_uring::opcode::Nop::new().build(), Tag::IGNORE);
        ring.turn(Some(Duration::from_secs(5)));
        let mut got = Vec::new();
        ring.take_completions(&mut got);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].tag, Some(Tag::IGNORE));
    }
}
