//! Recording games to disk without blocking a core: each data core has one writer thread
//! that owns the open ttyrec files ([`Sink`]s). The core frames a game's output into its
//! [`Recording`] (memory only) and hands the writer batches; opening, writing, rotating,
//! syncing and compressing happen on the writer. One thread per core keeps each file's
//! writes in order. The writer's queue is bounded by the bytes in it: past the bound the core
//! leaves batches in the recordings, whose own bound turns a lasting backlog into a marked
//! gap, never into unbounded memory or a stalled game.

use super::blocking::{Mailbox, Post};
use crate::metrics::CoreMetrics;
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
/// A game's pending output is handed over once it reaches this much (or at the next tick).
pub const BATCH_BYTES: usize = 64 * 1024;
/// Jobs waiting for the writer. A bounded channel is a preallocated ring (an unbounded one
/// allocates a block every few dozen messages, on the core); writes are held back by the
/// byte bound long before this fills, so only opens and finishes could meet it.
const JOB_QUEUE: usize = 4096;
/// A game that wrote less than this since the last hand-over is quiet (see `flush`).
const QUIET_BATCH: usize = 4096;

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
    spare: Vec<Vec<u8>>,
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
            spare: Vec::new(),
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
            rec: Recording::new(cap, start.into(), &preamble),
            player: player.to_owned(),
            game: game.to_owned(),
            server: server.to_owned(),
        })
    }

    /// Hand the writer what `r` has pending (unless the writer is too far behind: then it
    /// stays, and the recording's own bound applies).
    pub fn flush(&mut self, r: &mut GameRecording) {
        if r.rec.pending() == 0 || self.queued.load(Ordering::Relaxed) >= MAX_QUEUED {
            return;
        }
        // A busy game gets a recycled buffer (no regrowth, no allocation); a quiet one an
        // empty one, so thousands of idle games hold no batch-sized buffers.
        let spare = if r.rec.pending() >= QUIET_BATCH {
            self.buffer()
        } else {
            Vec::new()
        };
        let batch = r.rec.take(spare);
        if !self.send_write(r.id, batch) {
            // Lost: the recording carries on after a gap it cannot mark (rare: the byte
            // bound holds writes back long before the job queue fills).
            self.metrics.recording_failed("io");
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

    /// A buffer for the next batch: one the writer gave back, or a new one of batch size (so
    /// frames do not regrow it step by step).
    fn buffer(&mut self) -> Vec<u8> {
        self.spare
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(BATCH_BYTES))
    }

    /// The writer's next report; written bytes are counted and their buffers kept.
    pub fn poll(&mut self) -> Option<(RecId, RecordError)> {
        while let Some(done) = self.done.try_recv() {
            match done {
                Done::Written { bytes, mut buffer } => {
                    self.metrics.recording_written(bytes);
                    if self.spare.len() < 64 && buffer.capacity() <= 4 * BATCH_BYTES {
                        buffer.clear();
                        self.spare.push(buffer);
                    }
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
