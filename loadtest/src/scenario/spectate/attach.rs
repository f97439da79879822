//! The attach phase: `watchers` watchers per game (round robin over the games, so each
//! game's watchers arrive over the whole phase), at most `attach_rate` started per second
//! and `attach_in_flight` logins at once. Each attached watcher then reads until told to
//! stop, as a full client ([`super::watcher`]) or drain-only ([`super::sink`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;

use super::follow::{Tally, Window};
use super::{sink, watcher, Opts};
use crate::progress::{Counters, Progress};
use crate::stats::{Errors, Latencies};
use crate::target::Target;

/// The watchers once attached: their reading tasks and what the attach phase saw.
pub struct Attached {
    /// One task per attached watcher: (whether it measured, what it read).
    pub tasks: JoinSet<Option<(bool, Tally)>>,
    /// Watchers attached per game index.
    pub per_game: HashMap<usize, u64>,
    /// Of those, the ones that measure (decrypt and read markers).
    pub measuring: HashMap<usize, u64>,
    /// Login → screen, per watcher.
    pub setup: Latencies,
    /// Why the others did not attach.
    pub errors: Errors,
    /// Wall time of the attach phase.
    pub elapsed: Duration,
}

impl Attached {
    /// Watchers attached.
    pub fn held(&self) -> u64 {
        self.per_game.values().sum()
    }
}

/// What one watcher's task tells the phase once it attached, or why it did not.
type Report = (usize, bool, Result<Duration, String>);

/// Attaches the watchers of `games` ((index, player name) each). Returns once every watcher
/// attached or failed; the attached ones go on reading until `stop`.
pub async fn all(
    target: &Arc<Target>,
    games: &[(usize, String)],
    o: &Opts,
    window: &Arc<Window>,
    stop: &watch::Receiver<bool>,
) -> Attached {
    let total = o.watchers * games.len();
    let progress = Progress::start(format!("spectate {} attach", target.label), "watchers");
    let (tx, mut rx) = mpsc::unbounded_channel::<Report>();
    let gate = Arc::new(Semaphore::new(o.attach_in_flight.max(1)));
    let start = tokio::time::Instant::now();
    let deadline = start + o.attach_timeout;
    let mut tasks = JoinSet::new();
    for (k, (game, player)) in games.iter().cycle().take(total).enumerate() {
        let due = if o.attach_rate > 0.0 {
            start + Duration::from_secs_f64(k as f64 / o.attach_rate)
        } else {
            start
        };
        let one = One {
            target: target.clone(),
            game: *game,
            player: player.clone(),
            guest: format!("w{k}"),
            measures: measures(k / games.len(), o.watchers, o.lag_sample),
            window: window.clone(),
            counters: progress.counters.clone(),
        };
        let (gate, tx, stop) = (gate.clone(), tx.clone(), stop.clone());
        tasks.spawn(async move {
            tokio::time::sleep_until(due.min(deadline)).await;
            let permit = gate.acquire_owned().await;
            if permit.is_err() || tokio::time::Instant::now() >= deadline {
                let _ = tx.send((one.game, one.measures, Err("attach-deadline".into())));
                return None;
            }
            one.run(tx, permit.ok(), stop).await
        });
    }
    drop(tx);
    let mut a = Attached {
        tasks,
        per_game: HashMap::new(),
        measuring: HashMap::new(),
        setup: Latencies::default(),
        errors: Errors::default(),
        elapsed: Duration::ZERO,
    };
    // One report per watcher (every stage of an attach is bounded by the I/O timeout).
    for _ in 0..total {
        match rx.recv().await {
            Some((game, measures, Ok(took))) => {
                a.setup.record(took);
                *a.per_game.entry(game).or_default() += 1;
                if measures {
                    *a.measuring.entry(game).or_default() += 1;
                }
            }
            Some((_, _, Err(kind))) => a.errors.add(&kind),
            None => break,
        }
    }
    a.elapsed = start.elapsed();
    progress.finish().await;
    a
}

/// One watcher to attach.
struct One {
    target: Arc<Target>,
    /// The game's index and its player's name.
    game: usize,
    player: String,
    /// Its guest login name.
    guest: String,
    /// Full client (true) or drain-only.
    measures: bool,
    window: Arc<Window>,
    counters: Arc<Counters>,
}

impl One {
    /// Attaches, reports, releases its login slot, then reads until `stop`.
    async fn run(
        self,
        tx: mpsc::UnboundedSender<Report>,
        permit: Option<tokio::sync::OwnedSemaphorePermit>,
        stop: watch::Receiver<bool>,
    ) -> Option<(bool, Tally)> {
        let (t, w) = (&self.target, &self.window);
        let t0 = Instant::now();
        let attached = if self.measures {
            watcher::attach(t, &self.guest, &self.player, w)
                .await
                .map(Ok)
        } else {
            sink::attach(t, &self.guest, &self.player).await.map(Err)
        };
        drop(permit);
        let attached = match attached {
            Ok(a) => a,
            Err(f) => {
                self.counters.err();
                let why = format!("watcher:{}", f.kind());
                let _ = tx.send((self.game, self.measures, Err(why)));
                return None;
            }
        };
        self.counters.ok();
        let _ = tx.send((self.game, self.measures, Ok(t0.elapsed())));
        // The phase counts reports until every sender is gone: this one is done.
        drop(tx);
        let tally = match attached {
            Ok(watcher::Watcher {
                handle,
                mut channel,
                follow,
            }) => {
                let tally = follow.run(&mut channel, w, stop).await;
                drop(handle);
                tally
            }
            Err(stream) => sink::drain(stream, w, stop).await,
        };
        Some((self.measures, tally))
    }
}

/// Whether watcher `j` (of `per_game`) of a game measures: all of them when `sample` is 0,
/// else `sample` of them spread evenly over the attach order.
pub fn measures(j: usize, per_game: usize, sample: usize) -> bool {
    sample == 0 || sample >= per_game || (j + 1) * sample / per_game > j * sample / per_game
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lag_sample_picks_that_many_watchers_spread_over_the_attach_order() {
        let picked: Vec<usize> = (0..1000).filter(|&j| measures(j, 1000, 4)).collect();
        assert_eq!(picked, vec![249, 499, 749, 999]);
        assert_eq!((0..7).filter(|&j| measures(j, 7, 3)).count(), 3);
        assert!((0..10).all(|j| measures(j, 10, 0)));
        assert!((0..10).all(|j| measures(j, 10, 50)));
    }
}
