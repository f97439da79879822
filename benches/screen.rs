//! Terminal emulators as a running game's screen model, on the NetHack replay in
//! benches/data: MB/s fed (in 4 KiB chunks, as PTY reads arrive), heap held per model at
//! 80×24 and 132×50 after the replay (printed first), and the cost of rendering the screen
//! back to bytes for a watcher who attaches. The sanitiser's own throughput is measured too.
//!
//! `cargo bench --bench screen`; `--features bench-alacritty` adds alacritty_terminal.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};

use criterion::{BatchSize, Criterion, Throughput};
use dungeongate::screen::{Sanitiser, Screen};

const REPLAY: &[u8] = include_bytes!("data/nethack-replay.bin");
const CHUNK: usize = 4096;

/// Counts live heap bytes, only while `COUNTING` is set (the timed runs pay one load).
struct Counting;
static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(n: usize) {
    if COUNTING.load(Relaxed) {
        let now = LIVE.fetch_add(n, Relaxed) + n;
        PEAK.fetch_max(now, Relaxed);
    }
}

fn shrank(n: usize) {
    if COUNTING.load(Relaxed) {
        LIVE.fetch_sub(n, Relaxed);
    }
}

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        shrank(layout.size());
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        grew(new);
        shrank(layout.size());
        unsafe { System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// One candidate: build, feed raw game output, render the screen back (if it can).
trait Model {
    const NAME: &'static str;
    fn new(rows: u16, cols: u16) -> Self;
    fn feed(&mut self, bytes: &[u8]);
    /// Appends the screen as bytes; false if the crate has no renderer of its own.
    fn render(&self, out: &mut Vec<u8>) -> bool;
}

impl Model for Screen {
    const NAME: &'static str = "screen::Screen (sanitiser + avt 0.18)";
    fn new(rows: u16, cols: u16) -> Self {
        Screen::new(rows, cols)
    }
    fn feed(&mut self, bytes: &[u8]) {
        Screen::feed(self, bytes)
    }
    fn render(&self, out: &mut Vec<u8>) -> bool {
        self.repaint(out);
        true
    }
}

/// avt as it comes: `Vt::feed_str` (text only, so UTF-8 split across reads is carried).
struct Avt(avt::Vt, Vec<u8>);

impl Model for Avt {
    const NAME: &'static str = "avt 0.18 (Vt::feed_str, dump)";
    fn new(rows: u16, cols: u16) -> Self {
        let vt = avt::Vt::builder()
            .size(usize::from(cols), usize::from(rows))
            .scrollback_limit(0)
            .build();
        Avt(vt, Vec::new())
    }
    fn feed(&mut self, bytes: &[u8]) {
        self.1.extend_from_slice(bytes);
        let valid = match std::str::from_utf8(&self.1) {
            Ok(_) => self.1.len(),
            Err(e) => e.valid_up_to(),
        };
        let text = String::from_utf8_lossy(&self.1[..valid]);
        self.0.feed_str(&text);
        self.1.drain(..valid);
    }
    fn render(&self, out: &mut Vec<u8>) -> bool {
        out.extend_from_slice(self.0.dump().as_bytes());
        true
    }
}

impl Model for vt100::Parser {
    const NAME: &'static str = "vt100 0.16 (contents_formatted)";
    fn new(rows: u16, cols: u16) -> Self {
        vt100::Parser::new(rows, cols, 0)
    }
    fn feed(&mut self, bytes: &[u8]) {
        self.process(bytes)
    }
    fn render(&self, out: &mut Vec<u8>) -> bool {
        out.extend_from_slice(&self.screen().contents_formatted());
        out.extend_from_slice(&self.screen().cursor_state_formatted());
        true
    }
}

#[cfg(feature = "bench-alacritty")]
mod alacritty {
    use alacritty_terminal::event::VoidListener;
    use alacritty_terminal::term::{test::TermSize, Config, Term};
    use alacritty_terminal::vte::ansi::Processor;

    pub struct Alacritty(Term<VoidListener>, Processor);

    impl super::Model for Alacritty {
        const NAME: &'static str = "alacritty_terminal 0.26 (no renderer)";
        fn new(rows: u16, cols: u16) -> Self {
            let config = Config {
                scrolling_history: 0,
                ..Config::default()
            };
            let size = TermSize::new(usize::from(cols), usize::from(rows));
            Alacritty(Term::new(config, &size, VoidListener), Processor::new())
        }
        fn feed(&mut self, bytes: &[u8]) {
            self.1.advance(&mut self.0, bytes)
        }
        fn render(&self, _: &mut Vec<u8>) -> bool {
            false
        }
    }
}

fn replay<M: Model>(m: &mut M) {
    REPLAY.chunks(CHUNK).for_each(|c| m.feed(black_box(c)));
}

/// Heap held by a fresh model and after the replay, and the peak while feeding it.
fn memory<M: Model>() {
    for (rows, cols) in [(24, 80), (50, 132)] {
        COUNTING.store(true, Relaxed);
        let base = LIVE.load(Relaxed);
        let mut m = M::new(rows, cols);
        let fresh = LIVE.load(Relaxed) - base;
        PEAK.store(LIVE.load(Relaxed), Relaxed);
        replay(&mut m);
        let held = LIVE.load(Relaxed) - base;
        let peak = PEAK.load(Relaxed) - base;
        drop(m);
        COUNTING.store(false, Relaxed);
        println!(
            "memory {:40} {rows}x{cols}: new {:6.1} KiB, after replay {:6.1} KiB, peak {:6.1} KiB",
            M::NAME,
            fresh as f64 / 1024.0,
            held as f64 / 1024.0,
            peak as f64 / 1024.0
        );
    }
}

fn feed<M: Model>(c: &mut Criterion) {
    let mut g = c.benchmark_group("screen/feed");
    g.throughput(Throughput::Bytes(REPLAY.len() as u64));
    g.bench_function(M::NAME, |b| {
        b.iter_batched_ref(|| M::new(24, 80), replay, BatchSize::SmallInput)
    });
    g.finish();
}

/// Rendering the screen after half the replay (a map with walls, status lines and colour).
fn render<M: Model>(c: &mut Criterion) {
    let mut m = M::new(24, 80);
    REPLAY[..REPLAY.len() / 2]
        .chunks(CHUNK)
        .for_each(|c| m.feed(c));
    let mut out = Vec::new();
    if !m.render(&mut out) {
        println!(
            "render {}: none; a repaint would be written from its cells",
            M::NAME
        );
        return;
    }
    println!("render {}: {} bytes", M::NAME, out.len());
    c.bench_function(&format!("screen/render/{}", M::NAME), |b| {
        b.iter(|| {
            out.clear();
            m.render(&mut out);
            black_box(&out);
        })
    });
}

fn sanitise(c: &mut Criterion) {
    let mut g = c.benchmark_group("screen/sanitise");
    g.throughput(Throughput::Bytes(REPLAY.len() as u64));
    let mut out = Vec::with_capacity(REPLAY.len());
    g.bench_function("Sanitiser::filter", |b| {
        b.iter(|| {
            let mut s = Sanitiser::new();
            out.clear();
            REPLAY
                .chunks(CHUNK)
                .for_each(|c| s.filter(black_box(c), &mut out));
            black_box(&out);
        })
    });
    g.finish();
}

fn main() {
    memory::<Screen>();
    memory::<Avt>();
    memory::<vt100::Parser>();
    #[cfg(feature = "bench-alacritty")]
    memory::<alacritty::Alacritty>();

    let mut c = Criterion::default().configure_from_args();
    feed::<Screen>(&mut c);
    feed::<Avt>(&mut c);
    feed::<vt100::Parser>(&mut c);
    #[cfg(feature = "bench-alacritty")]
    feed::<alacritty::Alacritty>(&mut c);
    sanitise(&mut c);
    render::<Screen>(&mut c);
    render::<Avt>(&mut c);
    render::<vt100::Parser>(&mut c);
    #[cfg(feature = "bench-alacritty")]
    render::<alacritty::Alacritty>(&mut c);
    c.final_summary();
}
