//! Reading one game's stream (as a watcher or as its player) and tallying what the
//! measurement window saw: markers sent in the window, their lag, bytes received in it, and
//! repaints after the first (re-syncs of a watcher that fell behind).

use std::sync::atomic::{AtomicU64, Ordering};

use russh::client::Msg;
use russh::{Channel, ChannelMsg};
use tokio::sync::watch;

use super::markers::{Found, Scanner};
use crate::stats::{Errors, Latencies};
use crate::stream_game::monotonic_ns;

/// The measurement window, on CLOCK_MONOTONIC: shared by every reader, set by the scenario.
#[derive(Debug)]
pub struct Window {
    /// Start in ns; 0 while the watchers attach.
    start: AtomicU64,
    /// End in ns; `u64::MAX` until the window closes.
    end: AtomicU64,
}

impl Default for Window {
    fn default() -> Self {
        Window {
            start: AtomicU64::new(0),
            end: AtomicU64::new(u64::MAX),
        }
    }
}

impl Window {
    /// Opens the window now.
    pub fn open(&self) {
        self.start.store(monotonic_ns(), Ordering::Relaxed);
    }

    /// Closes the window now.
    pub fn close(&self) {
        self.end.store(monotonic_ns(), Ordering::Relaxed);
    }

    /// Whether `ns` falls inside the window.
    pub fn holds(&self, ns: u64) -> bool {
        let start = self.start.load(Ordering::Relaxed);
        start != 0 && ns >= start && ns < self.end.load(Ordering::Relaxed)
    }

    /// Whether the window has opened by `ns`.
    fn opened_by(&self, ns: u64) -> bool {
        let start = self.start.load(Ordering::Relaxed);
        start != 0 && ns >= start
    }
}

/// What one reader saw.
#[derive(Debug, Default)]
pub struct Tally {
    /// Lag (receive − send) of markers sent in the window.
    pub lags: Latencies,
    /// Markers sent in the window and received.
    pub markers: u64,
    /// Bytes received in the window.
    pub bytes: u64,
    /// Repaints received after the first, from the window's start on.
    pub resyncs: u64,
    /// Repaints received at all (the first is the screen on attach).
    pub repaints: u64,
    /// Failures (the connection closing early).
    pub errors: Errors,
}

/// A reader's state between reads.
#[derive(Debug, Default)]
pub struct Follow {
    scanner: Scanner,
    /// Send time of the newest marker counted: a repaint shows the latest frame's marker
    /// again, which is not a new frame.
    newest: u64,
    pub tally: Tally,
}

impl Follow {
    /// Takes in `data`, received now.
    pub fn feed(&mut self, data: &[u8], window: &Window) {
        let now = monotonic_ns();
        if window.holds(now) {
            self.tally.bytes += data.len() as u64;
        }
        let (newest, tally) = (&mut self.newest, &mut self.tally);
        self.scanner.feed(data, |found| match found {
            Found::Marker(sent) if sent > *newest => {
                *newest = sent;
                if window.holds(sent) {
                    tally.markers += 1;
                    tally
                        .lags
                        .record(std::time::Duration::from_nanos(now.saturating_sub(sent)));
                }
            }
            Found::Marker(_) => {}
            Found::Repaint => {
                tally.repaints += 1;
                if tally.repaints > 1 && window.opened_by(now) {
                    tally.resyncs += 1;
                }
            }
        });
    }

    /// Reads `ch` until `stop` turns true or the channel ends (an error unless stopping).
    pub async fn run(
        mut self,
        ch: &mut Channel<Msg>,
        window: &Window,
        mut stop: watch::Receiver<bool>,
    ) -> Tally {
        loop {
            if *stop.borrow() {
                break;
            }
            tokio::select! {
                msg = ch.wait() => match msg {
                    Some(ChannelMsg::Data { data }) => self.feed(&data, window),
                    Some(ChannelMsg::Eof | ChannelMsg::Close) | None => {
                        if !*stop.borrow() {
                            self.tally.errors.add("closed:watching");
                        }
                        break;
                    }
                    Some(_) => {}
                },
                changed = stop.changed() => if changed.is_err() {
                    break;
                },
            }
        }
        self.tally
    }
}

#[cfg(test)]
mod tests {
    use super::super::markers::REPAINT;
    use super::*;

    fn marker(ns: u64) -> Vec<u8> {
        format!("\x1b[1;1H@T{ns:020}@\x1b[K").into_bytes()
    }

    #[test]
    fn only_frames_sent_in_the_window_count_once_each_and_later_repaints_are_resyncs() {
        let window = Window::default();
        let mut f = Follow::default();
        f.feed(REPAINT, &window);
        f.feed(&marker(1), &window);
        window.open();
        let sent = monotonic_ns();
        f.feed(&marker(sent), &window);
        // A re-sync repaints the screen, whose top line is the same frame's marker.
        let mut resync = REPAINT.to_vec();
        resync.extend_from_slice(&marker(sent));
        f.feed(&resync, &window);
        f.feed(&marker(sent + 1), &window);
        window.close();
        f.feed(&marker(monotonic_ns() + 1), &window);
        let t = f.tally;
        assert_eq!((t.markers, t.repaints, t.resyncs), (2, 2, 1));
        assert_eq!(t.lags.finish().0.count, 2);
        assert!(t.bytes > 0);
    }
}
