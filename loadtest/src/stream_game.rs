//! `loadtest stream-game` (hidden): the game the `spectate` scenario's players run. It draws
//! NetHack-like frames into its terminal at a steady rate: each frame puts a send-time marker
//! on the top line, then redraws a few map fragments (cursor moves, some SGR colour) and the
//! status line, like a game redrawing after a move.
//!
//! The marker, `@T` + 20 decimal digits of `CLOCK_MONOTONIC` nanoseconds + `@`, is printable
//! text so it survives dungeongate's watcher sanitiser and sits in its screen model (a
//! watcher re-synced from the model sees the latest frame's marker again). The client reads
//! the same clock: game and client run on one machine, so `now − T` is the frame's lag.
//!
//! It runs until its input ends (EOF or an error: the PTY was closed) or SIGHUP, and then
//! exits with status 0. It never writes `ESC[2J`, so a clear on a watcher's stream can only
//! be the server's repaint.

use std::io::{Read as _, Write as _};
use std::os::fd::AsFd as _;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Set by SIGHUP or the end of input; the frame loop ends when it sees it.
static STOP: AtomicBool = AtomicBool::new(false);

/// Longest sleep between two looks at [`STOP`], so a slow or still game exits promptly.
const POLL: Duration = Duration::from_millis(100);

/// Map glyphs the frames are drawn with.
const GLYPHS: &[u8] = b".......####|-+@d<>%$?!";

/// `stream-game` settings.
#[derive(Debug, Clone, clap::Args)]
pub struct Opts {
    /// Frames per second (0: draw one frame, then stay still).
    #[arg(long, default_value_t = 10.0)]
    pub hz: f64,
    /// Bytes per frame (at least the marker and the status line).
    #[arg(long, default_value_t = 200)]
    pub bytes: usize,
}

/// Runs the game on stdin/stdout.
pub fn run(o: &Opts) -> ExitCode {
    watch_for_hangup();
    // A dup of stdout, unbuffered: one write(2) per frame, so a frame is never split by us.
    let mut out = match std::io::stdout().as_fd().try_clone_to_owned() {
        Ok(fd) => std::fs::File::from(fd),
        Err(e) => {
            eprintln!("stream-game: stdout: {e}");
            return ExitCode::FAILURE;
        }
    };
    let period = (o.hz > 0.0).then(|| Duration::from_secs_f64(1.0 / o.hz.min(10_000.0)));
    let mut frame = Vec::with_capacity(o.bytes + 64);
    let mut next = Instant::now();
    for n in 0u64.. {
        if STOP.load(Ordering::Relaxed) {
            break;
        }
        draw(&mut frame, n, o.bytes);
        if out.write_all(&frame).is_err() {
            break;
        }
        let Some(period) = period else {
            while !STOP.load(Ordering::Relaxed) {
                std::thread::sleep(POLL);
            }
            break;
        };
        next += period;
        let now = Instant::now();
        if next < now {
            // Blocked on a full terminal: carry on from now rather than burst to catch up.
            next = now;
        }
        while let Some(left) = next.checked_duration_since(Instant::now()) {
            if STOP.load(Ordering::Relaxed) || left.is_zero() {
                break;
            }
            std::thread::sleep(left.min(POLL));
        }
    }
    ExitCode::SUCCESS
}

/// Sets [`STOP`] on SIGHUP and when stdin ends.
fn watch_for_hangup() {
    extern "C" fn on_hup(_: libc::c_int) {
        STOP.store(true, Ordering::Relaxed);
    }
    // SAFETY: the handler only stores to an atomic (async-signal-safe).
    unsafe {
        libc::signal(
            libc::SIGHUP,
            on_hup as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
    }
    std::thread::spawn(|| {
        let mut buf = [0u8; 256];
        let mut stdin = std::io::stdin().lock();
        while let Ok(n) = stdin.read(&mut buf) {
            if n == 0 {
                break;
            }
        }
        STOP.store(true, Ordering::Relaxed);
    });
}

/// CLOCK_MONOTONIC in nanoseconds (the clock the spectate client reads too).
pub fn monotonic_ns() -> u64 {
    // SAFETY: clock_gettime writes into the zeroed timespec we own.
    let ts = unsafe {
        let mut ts: libc::timespec = std::mem::zeroed();
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
        ts
    };
    u64::try_from(ts.tv_sec)
        .unwrap_or(0)
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::try_from(ts.tv_nsec).unwrap_or(0))
}

/// Frame `n` into `out`: the marker line, map fragments up to about `bytes`, the status line.
fn draw(out: &mut Vec<u8>, n: u64, bytes: usize) {
    out.clear();
    let _ = write!(out, "\x1b[1;1H@T{:020}@\x1b[K", monotonic_ns());
    let status = format!(
        "\x1b[23;1HDlvl:{}  $:{}  HP:{}(16) Pw:7(7) AC:6  T:{n}\x1b[K",
        1 + n / 500 % 40,
        n % 1000,
        4 + n % 13
    );
    let mut rng = Rng(n.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    while out.len() + status.len() < bytes {
        let row = 2 + rng.below(21);
        let len = 4 + rng.below(12);
        let col = 1 + rng.below(80 - len);
        let _ = write!(out, "\x1b[{row};{col}H");
        let colour = rng.below(3) == 0;
        if colour {
            let _ = write!(out, "\x1b[1;3{}m", 1 + rng.below(6));
        }
        for _ in 0..len {
            let g = GLYPHS.get(rng.below(GLYPHS.len() as u64) as usize);
            out.push(g.copied().unwrap_or(b'.'));
        }
        if colour {
            out.extend_from_slice(b"\x1b[0m");
        }
    }
    out.extend_from_slice(status.as_bytes());
}

/// xorshift64: varied but reproducible frames, no dependency.
struct Rng(u64);

impl Rng {
    /// A number below `n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_starts_with_the_marker_and_keeps_near_its_size() {
        let mut f = Vec::new();
        draw(&mut f, 7, 200);
        assert!(f.starts_with(b"\x1b[1;1H@T"), "{f:?}");
        assert_eq!(f.get(28), Some(&b'@'), "{:?}", String::from_utf8_lossy(&f));
        assert!((200..260).contains(&f.len()), "{}", f.len());
        assert!(!f.windows(4).any(|w| w == b"\x1b[2J"));
    }

    #[test]
    fn the_clock_moves_forward() {
        let a = monotonic_ns();
        std::thread::sleep(Duration::from_millis(1));
        assert!(monotonic_ns() > a);
    }
}
