//! One running game: its PTY (driven through io_uring by glommio), its child (tracked by
//! pidfd), its input queue and its viewers.
//!
//! Output flows only as fast as the player's viewer takes it: the reader asks the viewer for
//! room before each read, so a slow SSH client backs up into the PTY and the game blocks on
//! its own writes — nothing piles up in memory. Input is queued up to the SSH channel window
//! (the client cannot send more) and acknowledged to the viewer once written to the PTY, which
//! is what refills the client's window.

use crate::metrics::{CoreMetrics, Direction, EndReason, PtyOp, SaveOp};
use crate::pty::{ExitStatus, PtyChild, Signal, WinSize};
use crate::reactor::notify::Notify;
use glommio::io::BufferedFile;
use std::cell::{Cell, RefCell};
use std::os::fd::{FromRawFd, IntoRawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

/// Largest single read from the PTY.
const READ_CHUNK: usize = 16 * 1024;
/// How long a game gets to save after SIGHUP before SIGKILL.
const HANGUP_GRACE: Duration = Duration::from_secs(10);

/// Where a game is counted: the core's running-games count and its metric cells.
pub struct Accounting {
    /// The core's count of running games.
    pub running: Rc<Cell<usize>>,
    /// The core's metric cells.
    pub metrics: Arc<CoreMetrics>,
    /// This game's slot in the per-game metric families.
    pub game_idx: usize,
    /// Run once the game has exited and been reaped (gives back its claim on the game).
    pub on_end: Option<Box<dyn FnOnce()>>,
}

/// Someone watching (and for the player, typing into) a game.
pub trait Viewer {
    /// Bytes this viewer can take now; 0 holds the game's output back.
    fn room(&self) -> usize;
    /// Game output.
    fn deliver(&self, data: &[u8]);
    /// `n` bytes of this viewer's input reached the game.
    fn input_consumed(&self, n: usize);
    /// The game is over.
    fn ended(&self, status: Option<ExitStatus>);
}

/// A running game.
pub struct GameSession {
    /// Which configured game.
    pub game_id: String,
    /// Who plays it.
    pub user: String,
    /// The child process; `None` after reaping.
    child: RefCell<PtyChild>,
    /// The PTY master, read and written through io_uring.
    pty: BufferedFile,
    /// The player's viewer (spectators join here later).
    player: RefCell<Option<Rc<dyn Viewer>>>,
    /// Player input not yet written to the PTY.
    input: RefCell<Vec<u8>>,
    /// Wakes the input writer.
    input_ready: Notify,
    /// Wakes the output reader when a viewer has room again.
    output_room: Notify,
    /// SIGHUP was sent (the player left or the server is stopping).
    hung_up: Cell<bool>,
    /// The game has exited and was reaped.
    finished: Cell<bool>,
    /// The core's count of running games, decremented when this one ends.
    running: Rc<Cell<usize>>,
    /// The owning core's metric cells.
    metrics: Arc<CoreMetrics>,
    /// This game's slot in the per-game metric families.
    game_idx: usize,
    /// See [`Accounting::on_end`].
    on_end: RefCell<Option<Box<dyn FnOnce()>>>,
}

impl GameSession {
    /// Take over a spawned child and start its I/O tasks on this core.
    pub fn start(
        game_id: String,
        user: String,
        child: PtyChild,
        player: Rc<dyn Viewer>,
        accounting: Accounting,
        span: tracing::Span,
    ) -> std::io::Result<Rc<GameSession>> {
        let Accounting {
            running,
            metrics,
            game_idx,
            on_end,
        } = accounting;
        let mut child = child;
        let pty = match child.take_master() {
            Ok(master) => file_from_owned(master),
            Err(e) => {
                // No game session after all: whatever waits for its end hears of it now.
                if let Some(f) = on_end {
                    f();
                }
                return Err(e);
            }
        };
        let session = Rc::new(GameSession {
            game_id,
            user,
            child: RefCell::new(child),
            pty,
            player: RefCell::new(Some(player)),
            input: RefCell::new(Vec::with_capacity(1024)),
            input_ready: Notify::default(),
            output_room: Notify::default(),
            hung_up: Cell::new(false),
            finished: Cell::new(false),
            running,
            metrics,
            game_idx,
            on_end: RefCell::new(on_end),
        });
        session.running.set(session.running.get() + 1);
        session.metrics.pty_op(PtyOp::Open);
        glommio::spawn_local(run_output(session.clone()).instrument(span.clone())).detach();
        glommio::spawn_local(run_input(session.clone()).instrument(span)).detach();
        Ok(session)
    }

    /// Player keystrokes; written to the PTY in order and acknowledged through
    /// [`Viewer::input_consumed`]. Returns false when the game is over and the input was
    /// dropped (the caller acknowledges it itself: no callback runs from inside this call).
    pub fn write_input(&self, data: &[u8]) -> bool {
        if self.finished.get() {
            return false;
        }
        self.input.borrow_mut().extend_from_slice(data);
        self.input_ready.signal();
        true
    }

    /// A viewer may have room again.
    pub fn output_room(&self) {
        self.output_room.signal();
    }

    /// The player's terminal changed size.
    pub fn resize(&self, size: WinSize) {
        if let Err(e) = crate::pty::resize(&self.pty, size) {
            tracing::debug!(error = %e, "pty resize failed");
        }
    }

    /// Forward a signal from the player (SSH `signal` request).
    pub fn signal(&self, sig: Signal) {
        let _ = self.child.borrow().signal(sig);
    }

    /// The player went away: SIGHUP the game so it saves, SIGKILL after a grace period.
    pub fn hang_up(self: &Rc<Self>) {
        self.player.borrow_mut().take();
        if self.hung_up.replace(true) || self.finished.get() {
            return;
        }
        if let Err(e) = self.child.borrow().hangup() {
            tracing::debug!(error = %e, "hangup failed");
        }
        let me = self.clone();
        let span = tracing::Span::current();
        glommio::spawn_local(
            async move {
            glommio::timer::sleep(HANGUP_GRACE).await;
            if !me.finished.get() {
                tracing::warn!(game = %me.game_id, user = %me.user, "game ignored SIGHUP; killing it");
                let _ = me.child.borrow().signal(Signal::SIGKILL);
            }
        }
            .instrument(span),
        )
        .detach();
        self.output_room.signal();
        self.input_ready.signal();
    }

    /// Player input written to the PTY: counted.
    fn wrote(&self, n: usize) {
        self.metrics.pty_op(PtyOp::Write);
        self.metrics.terminal_bytes(Direction::In, n);
    }

    /// Game output read from the PTY: counted, then handed to the player.
    fn deliver(&self, output: &[u8]) {
        self.metrics.pty_op(PtyOp::Read);
        self.metrics.terminal_bytes(Direction::Out, output.len());
        if let Some(p) = self.player() {
            p.deliver(output);
        }
    }

    pub fn is_finished(&self) -> bool {
        self.finished.get()
    }

    fn player(&self) -> Option<Rc<dyn Viewer>> {
        self.player.borrow().clone()
    }
}

fn file_from_owned(fd: std::os::fd::OwnedFd) -> BufferedFile {
    let raw = fd.into_raw_fd();
    // SAFETY: `raw` comes from an OwnedFd we just released, so it is open and owned by no one
    // else; BufferedFile closes it on drop.
    #[allow(unsafe_code)]
    unsafe {
        BufferedFile::from_raw_fd(raw)
    }
}

/// What a non-blocking read of the game's output found.
enum ReadyRead {
    /// Output was there and went to the player.
    Delivered,
    /// Nothing to read now.
    Empty,
    /// The terminal is closed: the game (and its children) exited.
    Ended,
}

thread_local! {
    /// Where [`read_ready`] reads into: one per core, since output is copied into the SSH
    /// transmit buffer before the next read.
    static OUTPUT_SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_CHUNK]);
}

/// A plain read or write on the non-blocking master that could not be done now (the terminal
/// is empty or full, or a signal interrupted it): io_uring waits for it instead.
fn not_now(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
    )
}

/// Reads up to `want` bytes of output that is already waiting, without waiting.
fn read_ready(s: &GameSession, want: usize) -> ReadyRead {
    OUTPUT_SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        let buf = match scratch.get_mut(..want) {
            Some(b) => b,
            None => return ReadyRead::Empty,
        };
        match crate::pty::read_master(&s.pty, buf) {
            Ok(0) => ReadyRead::Ended,
            Ok(n) => {
                s.deliver(buf.get(..n).unwrap_or_default());
                ReadyRead::Delivered
            }
            Err(e) if not_now(&e) => ReadyRead::Empty,
            // EIO once every slave fd is closed.
            Err(_) => ReadyRead::Ended,
        }
    })
}

/// Copy game output to the player, as fast as the player takes it; then reap the child.
async fn run_output(s: Rc<GameSession>) {
    loop {
        let room = match s.player() {
            Some(p) => p.room(),
            // No viewer: keep draining so the game is not stuck while it saves.
            None => READ_CHUNK,
        };
        if room == 0 {
            s.output_room.wait().await;
            continue;
        }
        let want = room.min(READ_CHUNK);
        // Output that is already there is read with a plain read(2) on the non-blocking
        // master: while a game streams, that spares an io_uring submission, completion and
        // wake-up per chunk. Only an empty terminal takes the io_uring read, which waits.
        match read_ready(&s, want) {
            ReadyRead::Delivered => {
                // A game that never pauses must not keep the core from its other tasks.
                glommio::yield_if_needed().await;
                continue;
            }
            ReadyRead::Ended => break,
            ReadyRead::Empty => {}
        }
        match s.pty.read_at(0, want).await {
            Ok(buf) if buf.is_empty() => break,
            Ok(buf) => s.deliver(&buf),
            Err(e) if is_transient(&e) => transient_pause().await,
            // EIO: every slave fd is closed, i.e. the game (and its children) exited.
            Err(_) => break,
        }
    }
    let status = reap(&s).await;
    s.finished.set(true);
    s.running.set(s.running.get().saturating_sub(1));
    s.metrics.pty_op(PtyOp::Close);
    let reason = end_reason(status, s.hung_up.get());
    s.metrics.game_ended(s.game_idx, reason);
    if s.hung_up.get() && reason == EndReason::Hangup {
        // A game that exits cleanly after SIGHUP has done its hangup save.
        s.metrics.game_save(s.game_idx, SaveOp::Save, true);
    }
    s.input_ready.signal();
    tracing::info!(?status, "game ended");
    if let Some(f) = s.on_end.borrow_mut().take() {
        f();
    }
    if let Some(p) = s.player.borrow_mut().take() {
        p.ended(status);
    }
}

/// Why a game ended, from its exit status and whether we hung it up.
fn end_reason(status: Option<ExitStatus>, hung_up: bool) -> EndReason {
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

/// Errors after which the same operation is simply tried again.
fn is_transient(e: &glommio::GlommioError<()>) -> bool {
    let io: std::io::Error = match e {
        glommio::GlommioError::IoError(io) => std::io::Error::new(io.kind(), ""),
        glommio::GlommioError::EnhancedIoError { source, .. } => {
            std::io::Error::new(source.kind(), "")
        }
        _ => return false,
    };
    matches!(
        io.kind(),
        std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock
    )
}

/// A short pause before retrying, so a persistent EAGAIN cannot spin the core.
async fn transient_pause() {
    glommio::timer::sleep(Duration::from_millis(1)).await;
}

/// Wait for the child to exit after its terminal closed. The PTY closes when the game exits,
/// so this normally succeeds at once; a game that closed its terminal but lives on is polled.
async fn reap(s: &GameSession) -> Option<ExitStatus> {
    let mut delay = Duration::from_millis(5);
    loop {
        match s.child.borrow_mut().try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "waiting for the game failed");
                return None;
            }
        }
        glommio::timer::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(1));
    }
}

/// Write queued player input to the PTY, acknowledging it to the player as it goes.
async fn run_input(s: Rc<GameSession>) {
    // Swapped with the session's queue so both keep their capacity.
    let mut pending = Vec::with_capacity(1024);
    loop {
        if s.finished.get() {
            return;
        }
        pending.clear();
        std::mem::swap(&mut *s.input.borrow_mut(), &mut pending);
        if pending.is_empty() {
            s.input_ready.wait().await;
            continue;
        }
        let total = pending.len();
        let mut off = 0;
        while off < total && !s.finished.get() {
            let rest = pending.get(off..).unwrap_or_default();
            // Keystrokes nearly always fit at once: a plain write on the non-blocking master
            // costs one system call, where an io_uring write costs a submission, a completion
            // and a wake-up of this task. Only a full terminal takes the io_uring path.
            match crate::pty::write_master(&s.pty, rest) {
                Ok(n) if n > 0 => {
                    off += n;
                    s.wrote(n);
                    continue;
                }
                Err(e) if not_now(&e) => {}
                _ => break,
            }
            // glommio takes an owned buffer per write (io_uring needs it to outlive the call).
            match s.pty.write_at(rest.to_vec(), 0).await {
                Ok(n) if n > 0 => {
                    off += n;
                    s.wrote(n);
                }
                // io_uring reports EINTR now and then on PTY writes; the bytes were not
                // written, so write them again rather than lose the player's keystrokes.
                Err(e) if is_transient(&e) => transient_pause().await,
                _ => break,
            }
        }
        if let Some(p) = s.player() {
            p.input_consumed(total);
        }
    }
}
