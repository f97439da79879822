//! Recording games to disk without blocking a core: each data core has one writer thread
//! that owns the open ttyrec files ([`Sink`]s). The core frames a game's output into its
//! [`Recording`] (memory only) and hands the writer batches; opening, writing, rotating,
//! syncing and compressing happen on the writer. One thread per core keeps each file's
//! writes in order. The writer's queue is bounded by the bytes in it: past the bound the core
//! leaves batches in the recordings, whose own bound turns a lasting backlog into a marked
//! gap, never into unbounded memory or a stalled game.

use super::blocking::{Mailbox, Post};
use crate::metrics::CoreMetrics;
use crate::ttyrec::frame::framed_len;
use crate::ttyrec::{Batch, Compression, Preamble, RecordError, Recording, Resync, Sink};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::SystemTime;

/// A recording's name between the core and its writer (never reused on a core).
pub type RecId = u64;

/// Bytes handed to the writer and not written yet, per core, past which batches wait.
const MAX_QUEUED: usize = 16 * 1024 * 1024;
/// A game's pending output is handed over before it passes this much (or at the next tick).
pub const BATCH_BYTES: usize = 64 * 1024;
/// Jobs waiting for the writer. A bounded channel is a preallocated ring (an unbounded one
/// allocates a block every few dozen messages, on the core); writes are held back by the
/// byte bound long before this fills, so only opens and finishes could meet it.
const JOB_QUEUE: usize = 4096;
/// A game that wrote less than this since the last hand-over is quiet (see `flush`), and a
/// quiet game's buffer starts at this size.
const QUIET_BATCH: usize = 4096;
/// Ticks without output after which a game's empty buffer goes back to the pool: an idle
/// game holds no buffer, one that pauses briefly keeps its own.
const RELEASE_AFTER_TICKS: u8 = 10;
/// Buffers kept for reuse, per size class (at most 16 MiB of large ones).
const SPARE_LARGE: usize = 64;
const SPARE_SMALL: usize = 256;

enum Job {
    Open {
        id: RecId,
        dir: PathBuf,
        start: SystemTime,
        compression: Compression,
    },
    Write {
        id: RecId,
        batch: Batch,
    },
    Finish {
        id: RecId,
    },
}

/// What the writer reports back.
pub enum Done {
    /// A batch is on disk; its buffer comes back for reuse.
    Written { bytes: usize, buffer: Vec<u8> },
    /// Recording `id` stopped on an error (its game goes on).
    Failed { id: RecId, error: RecordError },
}

/// One running game's recording, on its core.
pub struct GameRecording {
    pub id: RecId,
    /// Ticks in a row this recording had nothing to hand over.
    quiet_ticks: u8,
    pub rec: Recording,
    player: String,
    game: String,
    server: String,
}

impl GameRecording {
    /// Frame `bytes` (the game's output now); `screen` draws the screen as it was before
    /// them, for a new file's start or after a gap.
    pub fn output(
        &mut self,
        bytes: &[u8],
        rows: u16,
        cols: u16,
        screen: impl FnOnce(&mut Vec<u8>),
    ) {
        let at = SystemTime::now();
        let GameRecording {
            rec,
            player,
            game,
            server,
            ..
        } = self;
        rec.frame(at.into(), bytes, |why, out| {
            if why == Resync::NewFile {
                let preamble = Preamble {
                    player,
                    game,
                    server,
                    start: at,
                    rows,
                    cols,
                };
                out.extend_from_slice(&preamble.bytes());
            }
            screen(out);
        });
    }
}

/// A core's side of its writer.
pub struct Recorder {
    jobs: Option<mpsc::SyncSender<Job>>,
    done: Mailbox<Done>,
    queued: Arc<AtomicUsize>,
    /// Buffers the writer gave back: batch-sized ones for busy games, smaller ones for
    /// quiet games (so a quiet game never holds a batch-sized buffer for long).
    spare_large: Vec<Vec<u8>>,
    spare_small: Vec<Vec<u8>>,
    next_id: RecId,
    thread: Option<std::thread::JoinHandle<()>>,
    metrics: Arc<CoreMetrics>,
}

impl Recorder {
    /// Start the writer thread `name`; its reports come through `post`/`done`.
    pub fn start(
        name: String,
        post: Post<Done>,
        done: Mailbox<Done>,
        metrics: Arc<CoreMetrics>,
    ) -> std::io::Result<Recorder> {
        let (tx, rx) = mpsc::sync_channel(JOB_QUEUE);
        let queued = Arc::new(AtomicUsize::new(0));
        let q = queued.clone();
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || writer(rx, post, q))?;
        Ok(Recorder {
            jobs: Some(tx),
            done,
            queued,
            spare_large: Vec::new(),
            spare_small: Vec::new(),
            next_id: 1,
            thread: Some(thread),
            metrics,
        })
    }

    /// Begin recording a game of `player` (`game` names it) in `dir`; `None` when the
    /// writer is gone.
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        &mut self,
        dir: PathBuf,
        compression: Compression,
        cap: u64,
        player: &str,
        game: &str,
        server: &str,
        rows: u16,
        cols: u16,
    ) -> Option<GameRecording> {
        let id = self.next_id;
        self.next_id += 1;
        let start = SystemTime::now();
        let preamble = Preamble {
            player,
            game,
            server,
            start,
            rows,
            cols,
        }
        .bytes();
        let job = Job::Open {
            id,
            dir,
            start,
            compression,
        };
        // Never blocks the core: with the queue full the game goes unrecorded (and says so).
        if self.jobs.as_ref()?.try_send(job).is_err() {
            tracing::warn!("the recording writer is too far behind; this game is not recorded");
            self.metrics.recording_failed("io");
            return None;
        }
        Some(GameRecording {
            id,
            quiet_ticks: 0,
            rec: Recording::new(cap, start.into(), &preamble),
            player: player.to_owned(),
            game: game.to_owned(),
            server: server.to_owned(),
        })
    }

    /// Frame `bytes` into `r` (see [`GameRecording::output`]). A busy game's batch goes to
    /// the writer before this frame would take it past a batch: its buffer never grows.
    pub fn record(
        &mut self,
        r: &mut GameRecording,
        bytes: &[u8],
        rows: u16,
        cols: u16,
        screen: impl FnOnce(&mut Vec<u8>),
    ) {
        if r.rec.pending() + framed_len(bytes.len()) > BATCH_BYTES {
            self.flush(r);
        }
        r.output(bytes, rows, cols, screen);
    }

    /// Hand the writer what `r` has pending (unless the writer is too far behind: then it
    /// stays, and the recording's own bound applies).
    ///
    /// The recording gets a buffer back from the pool, of its class: batch-sized once the
    /// game has been busy, small while it is quiet. So in a steady game nothing is allocated
    /// (each buffer goes round between the game and the writer, grown once to what a tick
    /// needs), and a game whose output rate wavers around the threshold does not flip between
    /// classes (only an idle game drops back).
    pub fn flush(&mut self, r: &mut GameRecording) {
        if r.rec.pending() == 0 {
            r.quiet_ticks = r.quiet_ticks.saturating_add(1);
            if r.quiet_ticks == RELEASE_AFTER_TICKS {
                if let Some(buffer) = r.rec.release_buffer() {
                    self.keep(buffer);
                }
            }
            return;
        }
        r.quiet_ticks = 0;
        if self.queued.load(Ordering::Relaxed) >= MAX_QUEUED {
            return;
        }
        let busy = r.rec.pending() >= QUIET_BATCH || r.rec.buffer_capacity() >= BATCH_BYTES;
        let spare = if busy {
            self.spare_large
                .pop()
                .unwrap_or_else(|| Vec::with_capacity(BATCH_BYTES))
        } else {
            self.spare_small
                .pop()
                .unwrap_or_else(|| Vec::with_capacity(QUIET_BATCH))
        };
        let batch = r.rec.take(spare);
        if !self.send_write(r.id, batch) {
            // Lost: the recording carries on after a gap it cannot mark (rare: the byte
            // bound holds writes back long before the job queue fills).
            self.metrics.recording_failed("io");
        }
    }

    /// Keep a buffer for reuse in its size class (an oversized one, grown by a burst, is
    /// freed).
    fn keep(&mut self, mut buffer: Vec<u8>) {
        buffer.clear();
        let capacity = buffer.capacity();
        let (pool, max) = if capacity >= BATCH_BYTES {
            (&mut self.spare_large, SPARE_LARGE)
        } else {
            (&mut self.spare_small, SPARE_SMALL)
        };
        if capacity > 0 && capacity <= 4 * BATCH_BYTES && pool.len() < max {
            pool.push(buffer);
        }
    }

    /// Queue a batch for the writer, counted in the byte bound until it is written; false
    /// when the queue did not take it (then it is not counted).
    fn send_write(&mut self, id: RecId, batch: Batch) -> bool {
        let Some(jobs) = &self.jobs else {
            return false;
        };
        let len = batch.len();
        self.queued.fetch_add(len, Ordering::Relaxed);
        if jobs.try_send(Job::Write { id, batch }).is_err() {
            self.queued.fetch_sub(len, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// The game ended: what is pending goes out, then the file is finished.
    pub fn finish(&mut self, mut r: GameRecording) {
        // At the end nothing is left behind for the queue's bound: the game is gone.
        if r.rec.pending() > 0 && !self.send_write(r.id, r.rec.take(Vec::new())) {
            tracing::warn!("the recording writer is too far behind; a recording's end is lost");
        }
        let Some(jobs) = &self.jobs else {
            return;
        };
        if jobs.try_send(Job::Finish { id: r.id }).is_err() {
            // The file stays open until the core stops (then every file is finished).
            tracing::warn!("the recording writer is too far behind; a recording is finished late");
        }
    }

    /// The writer's next report; written bytes are counted and their buffers kept.
    pub fn poll(&mut self) -> Option<(RecId, RecordError)> {
        while let Some(done) = self.done.try_recv() {
            match done {
                Done::Written { bytes, buffer } => {
                    self.metrics.recording_written(bytes);
                    self.keep(buffer);
                }
                Done::Failed { id, error } => {
                    self.metrics.recording_failed(error.kind());
                    return Some((id, error));
                }
            }
        }
        None
    }

    /// Let the writer finish every file and wait for it (the core is stopping).
    pub fn close(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The writer thread: jobs in order until the core hangs up, then every file finished.
fn writer(rx: mpsc::Receiver<Job>, post: Post<Done>, queued: Arc<AtomicUsize>) {
    let mut sinks: HashMap<RecId, Sink> = HashMap::new();
    while let Ok(job) = rx.recv() {
        match job {
            Job::Open {
                id,
                dir,
                start,
                compression,
            } => match Sink::create(&dir, start, compression) {
                Ok(sink) => {
                    sinks.insert(id, sink);
                }
                Err(error) => post.send(Done::Failed { id, error }),
            },
            Job::Write { id, batch } => {
                let len = batch.len();
                // A recording that failed is not written any more (its batches still come
                // back, as empty-handed reports, for their buffers).
                let bytes = match sinks.get_mut(&id).map(|s| s.write_batch(&batch)) {
                    Some(Ok(_)) => len,
                    Some(Err(error)) => {
                        sinks.remove(&id);
                        post.send(Done::Failed { id, error });
                        0
                    }
                    None => 0,
                };
                queued.fetch_sub(len, Ordering::Relaxed);
                post.send(Done::Written {
                    bytes,
                    buffer: batch.into_buffer(),
                });
            }
            Job::Finish { id } => {
                if let Some(sink) = sinks.remove(&id) {
                    if let Err(error) = sink.finish() {
                        post.send(Done::Failed { id, error });
                    }
                }
            }
        }
    }
    for (id, sink) in sinks {
        if let Err(error) = sink.finish() {
            tracing::warn!(recording = id, %error, "a recording could not be finished");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Registry, RegistryOptions};
    use crate::reactor::blocking::mailbox;
    use crate::reactor::mesh::{eventfd, Waker};
    use std::time::{Duration, Instant};

    fn recorder() -> Recorder {
        let registry = Registry::new(RegistryOptions {
            cores: 1,
            game_ids: vec!["g".into()],
            connections_limit: 1,
            version: "test".into(),
            commit: "test".into(),
        });
        let waker = Waker::new(None, Arc::new(eventfd().unwrap()));
        let (post, done) = mailbox(waker);
        Recorder::start("rec-test".into(), post, done, registry.core(0).unwrap()).unwrap()
    }

    /// Until the writer has written every batch and `pooled` buffers are back in the pools
    /// (the writer reports a batch just after it stops counting it).
    fn wait_written(rec: &mut Recorder, pooled: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            assert!(rec.poll().is_none(), "the writer failed");
            let back = rec.spare_small.len() + rec.spare_large.len();
            if rec.queued.load(Ordering::Relaxed) == 0 && back >= pooled {
                return;
            }
            assert!(Instant::now() < deadline, "the writer did not write");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn open(rec: &mut Recorder, dir: &std::path::Path) -> GameRecording {
        rec.open(
            dir.to_path_buf(),
            Compression::None,
            1 << 30,
            "p",
            "g",
            "s",
            24,
            80,
        )
        .unwrap()
    }

    #[test]
    fn a_steady_quiet_game_reuses_its_buffers_and_an_idle_one_gives_its_buffer_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = recorder();
        let mut game = open(&mut rec, dir.path());
        let mut handed = Vec::new();
        for _ in 0..4 {
            game.output(&[b'x'; 300], 24, 80, |_| {});
            rec.flush(&mut game);
            // Quiet: a small buffer, never a batch-sized one.
            assert!(game.rec.buffer_capacity() < BATCH_BYTES);
            handed.push(game.rec.buffer_capacity());
            wait_written(&mut rec, 1);
        }
        // From the second hand-over on, the buffer given is one the writer gave back.
        assert_eq!(rec.spare_small.len(), 1, "{handed:?}");
        assert!(rec.spare_large.is_empty());
        // Nothing more: after RELEASE_AFTER_TICKS empty ticks the game holds no buffer.
        for tick in 1..=RELEASE_AFTER_TICKS {
            assert!(game.rec.buffer_capacity() > 0, "released early, at {tick}");
            rec.flush(&mut game);
        }
        assert_eq!(game.rec.buffer_capacity(), 0);
        assert_eq!(rec.spare_small.len(), 2);
        rec.finish(game);
        rec.close();
    }

    #[test]
    fn a_game_once_busy_keeps_batch_sized_buffers_while_its_output_wavers() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = recorder();
        let mut game = open(&mut rec, dir.path());
        for tick in 0..6 {
            // Over the quiet threshold, then under it, and so on.
            let n = if tick % 2 == 0 { 2 * QUIET_BATCH } else { 100 };
            game.output(&vec![b'x'; n], 24, 80, |_| {});
            rec.flush(&mut game);
            assert!(game.rec.buffer_capacity() >= BATCH_BYTES, "tick {tick}");
            // The first batch's buffer is small; from then on a large one comes back too.
            wait_written(&mut rec, if tick == 0 { 1 } else { 2 });
        }
        // Two batch-sized buffers go round (one with the game, one with the writer).
        assert_eq!(rec.spare_small.len(), 1, "the first batch's buffer");
        assert_eq!(rec.spare_large.len(), 1);
        rec.finish(game);
        rec.close();
    }

    #[test]
    fn a_busy_game_hands_its_batch_over_before_its_buffer_would_grow() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = recorder();
        let mut game = open(&mut rec, dir.path());
        game.output(&[b'x'; QUIET_BATCH], 24, 80, |_| {});
        rec.flush(&mut game);
        let capacity = game.rec.buffer_capacity();
        assert!(capacity >= BATCH_BYTES);
        for _ in 0..3 * BATCH_BYTES / 1000 {
            rec.record(&mut game, &[b'y'; 1000], 24, 80, |_| {});
            assert_eq!(game.rec.buffer_capacity(), capacity);
            assert!(game.rec.pending() <= BATCH_BYTES);
            // Buffers come back as the writer writes (a new one is taken when none has).
            let _ = rec.poll();
        }
        rec.finish(game);
        rec.close();
    }
}
