//! The games running on a core: each one's PTY master (non-blocking, plain `read`/`write`,
//! readiness from a multishot poll), its pidfd (a one-shot poll that fires at exit), and
//! whose session it belongs to. A game outlives its player's connection: after the hangup it
//! keeps running (its output read and dropped) until it has saved and exited, or is killed
//! after a grace period.

use super::ring::{Kind, Ring, Tag};
use crate::metrics::{CoreMetrics, Direction, EndReason, PtyOp, SaveOp};
use crate::pty::{ExitStatus, PtyChild, Signal};
use crate::session::GameKey;
use io_uring::{opcode, types};
use std::os::fd::{AsRawFd, OwnedFd};

/// How long a game gets to save after SIGHUP before SIGKILL.
pub const HANGUP_GRACE_MS: u64 = 10_000;
/// Largest single read from a PTY.
pub const READ_CHUNK: usize = 16 * 1024;

/// A connection slot and its generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnRef {
    pub slot: u32,
    pub generation: u32,
}

/// One running game.
pub struct Game {
    pub generation: u32,
    /// Its key in its session.
    pub key: GameKey,
    /// The session it belongs to (none while detached, and after the hangup).
    pub owner: Option<ConnRef>,
    pub child: PtyChild,
    pub master: OwnedFd,
    /// Readiness was reported and the master has not been read empty since.
    pub readable: bool,
    /// A one-shot POLLOUT is armed (a write found the PTY full).
    pub write_waiting: bool,
    /// The multishot read poll is armed.
    pub read_poll_armed: bool,
    /// The process exited (its pidfd polled readable).
    pub exited: bool,
    /// Reading found the terminal closed (EIO: every slave descriptor is gone).
    pub pty_closed: bool,
    /// Its player left and it waits for them until then (reactor clock); hung up after.
    pub detached_until: Option<u64>,
    /// How long it waits for its player after a drop (its game's setting when it started:
    /// a reload that removes the game does not take the grace away from a running one).
    pub detach_grace_ms: u64,
    /// SIGHUP was sent; SIGKILL follows at `kill_at`.
    pub hung_up: bool,
    pub kill_at: Option<u64>,
    /// For the release of its claim and the logs.
    pub game_id: String,
    pub user: String,
    /// A `ClaimGame` was granted for it: release it when it ends.
    pub claimed: bool,
    /// Its slot in the per-game metric families.
    pub game_idx: usize,
    /// Log context: conn, game, account.
    pub span: tracing::Span,
    /// Its screen model and watchers.
    pub view: super::view::GameView,
    /// When it started (seconds since the Unix epoch), for the watch menu.
    pub started_unix: u64,
    /// Its ttyrec, while it is being recorded.
    pub recording: Option<super::recorder::GameRecording>,
}

impl Game {
    /// Arm the read poll and the exit poll.
    pub fn arm(&mut self, ring: &mut Ring, slot: usize) {
        self.arm_read(ring, slot);
        let exit = opcode::PollAdd::new(
            types::Fd(self.child.pidfd().as_raw_fd()),
            libc::POLLIN as u32,
        )
        .build();
        ring.push(exit, Tag::new(Kind::Exit, self.generation, slot));
    }

    pub fn arm_read(&mut self, ring: &mut Ring, slot: usize) {
        if self.read_poll_armed || self.pty_closed {
            return;
        }
        let poll = opcode::PollAdd::new(types::Fd(self.master.as_raw_fd()), libc::POLLIN as u32)
            .multi(true)
            .build();
        ring.push(poll, Tag::new(Kind::PtyRead, self.generation, slot));
        self.read_poll_armed = true;
    }

    /// Wait for room to write.
    pub fn arm_write(&mut self, ring: &mut Ring, slot: usize) {
        if self.write_waiting {
            return;
        }
        let poll =
            opcode::PollAdd::new(types::Fd(self.master.as_raw_fd()), libc::POLLOUT as u32).build();
        ring.push(poll, Tag::new(Kind::PtyWrite, self.generation, slot));
        self.write_waiting = true;
    }

    /// Cancel the polls still armed (the game is being removed).
    pub fn disarm(&mut self, ring: &mut Ring, slot: usize) {
        for (armed, kind) in [
            (self.read_poll_armed, Kind::PtyRead),
            (self.write_waiting, Kind::PtyWrite),
            (!self.exited, Kind::Exit),
        ] {
            if armed {
                let target = Tag::new(kind, self.generation, slot).encode();
                ring.push(opcode::PollRemove::new(target).build(), Tag::IGNORE);
            }
        }
    }

    /// SIGHUP the game so it saves; SIGKILL follows after [`HANGUP_GRACE_MS`].
    pub fn hang_up(&mut self, now: u64) -> Option<u64> {
        self.owner = None;
        if self.hung_up || self.exited {
            return None;
        }
        self.hung_up = true;
        let _e = self.span.enter();
        if let Err(e) = self.child.hangup() {
            tracing::debug!(error = %e, "hangup failed");
        }
        let at = now.saturating_add(HANGUP_GRACE_MS);
        self.kill_at = Some(at);
        Some(at)
    }

    /// The grace after the hangup ran out.
    pub fn kill_if_due(&mut self, now: u64) {
        if self.exited || self.kill_at.is_none_or(|t| t > now) {
            return;
        }
        self.kill_at = None;
        let _e = self.span.enter();
        tracing::warn!(game = %self.game_id, "game ignored SIGHUP; killing it");
        let _ = self.child.signal(Signal::SIGKILL);
    }

    /// Forward a signal from the player.
    pub fn signal(&self, sig: Signal) {
        let _ = self.child.signal(sig);
    }

    /// Reap the exited child and count its end.
    pub fn reap(&mut self, metrics: &CoreMetrics) -> Option<ExitStatus> {
        let status = match self.child.try_wait() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(parent: &self.span, error = %e, "waiting for the game failed");
                None
            }
        };
        metrics.pty_op(PtyOp::Close);
        let reason = end_reason(status, self.hung_up);
        metrics.game_ended(self.game_idx, reason);
        if self.hung_up && reason == EndReason::Hangup {
            // A game that exits cleanly after SIGHUP has done its hangup save.
            metrics.game_save(self.game_idx, SaveOp::Save, true);
        }
        tracing::info!(parent: &self.span, ?status, "game ended");
        status
    }
}

/// What a non-blocking read of a game's output found.
pub enum Read {
    /// `n` bytes.
    Data(usize),
    /// Nothing now.
    Empty,
    /// The terminal is closed.
    Closed,
}

/// Read what is waiting on the master into `buf`.
pub fn read(master: &OwnedFd, buf: &mut [u8]) -> Read {
    match crate::pty::read_master(master, buf) {
        Ok(0) => Read::Closed,
        Ok(n) => Read::Data(n),
        Err(e) if not_now(&e) => Read::Empty,
        // EIO once every slave descriptor is closed.
        Err(_) => Read::Closed,
    }
}

/// What a non-blocking write of player input did.
pub enum Write {
    Wrote(usize),
    /// The PTY is full: wait for POLLOUT.
    Full,
    /// The terminal is gone: drop the input.
    Gone,
}

pub fn write(master: &OwnedFd, data: &[u8]) -> Write {
    match crate::pty::write_master(master, data) {
        Ok(0) => Write::Full,
        Ok(n) => Write::Wrote(n),
        Err(e) if not_now(&e) => Write::Full,
        Err(_) => Write::Gone,
    }
}

/// Count bytes going through a PTY.
pub fn count(metrics: &CoreMetrics, direction: Direction, n: usize) {
    metrics.pty_op(match direction {
        Direction::In => PtyOp::Write,
        Direction::Out => PtyOp::Read,
    });
    metrics.terminal_bytes(direction, n);
}

/// A plain read or write on the non-blocking master that could not be done now.
fn not_now(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
    )
}

/// Why a game ended, from its exit status and whether we hung it up.
pub fn end_reason(status: Option<ExitStatus>, hung_up: bool) -> EndReason {
    const SIGHUP: i32 = 1;
    const SIGKILL: i32 = 9;
    const SIGTERM: i32 = 15;
    match status {
        Some(ExitStatus::Exited(_)) if hung_up => EndReason::Hangup,
        Some(ExitStatus::Exited(_)) => EndReason::Normal,
        Some(ExitStatus::Signaled(SIGHUP)) => EndReason::Hangup,
        Some(ExitStatus::Signaled(SIGKILL)) | Some(ExitStatus::Signaled(SIGTERM)) => {
            EndReason::Killed
        }
        Some(ExitStatus::Signaled(_)) | None => EndReason::Crashed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_reasons_follow_the_status_and_the_hangup() {
        assert_eq!(
            end_reason(Some(ExitStatus::Exited(0)), false),
            EndReason::Normal
        );
        assert_eq!(
            end_reason(Some(ExitStatus::Exited(0)), true),
            EndReason::Hangup
        );
        assert_eq!(
            end_reason(Some(ExitStatus::Signaled(1)), false),
            EndReason::Hangup
        );
        assert_eq!(
            end_reason(Some(ExitStatus::Signaled(9)), true),
            EndReason::Killed
        );
        assert_eq!(
            end_reason(Some(ExitStatus::Signaled(11)), false),
            EndReason::Crashed
        );
        assert_eq!(end_reason(None, false), EndReason::Crashed);
    }
}
