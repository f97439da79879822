//! The probe player (`--probe-player`): one more account runs the echo game and types at a
//! person's rate, first with nobody watching, then while the watchers watch its game.
//!
//! It runs on a thread of its own with its own single-threaded runtime, and logs in there, so
//! its connection's I/O is handled there too. On the shared runtime its echo would wait in the
//! client behind the thousand watcher messages each keystroke fans out to (a burst the
//! client takes milliseconds to read): that would be the client's delay, not the server's.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use super::super::echo::{self, Typed};
use crate::progress::Progress;
use crate::target::{Failure, Target};

/// The probe player's typing rate (a person) and line length.
const PERIOD: Duration = Duration::from_millis(100);
const LINE: usize = 32;

/// A running probe player.
pub struct Probe {
    /// Its second typing phase starts when this is sent (or dropped).
    go: Option<oneshot::Sender<()>>,
    /// The first phase's result (nobody watching).
    alone: Option<oneshot::Receiver<Typed>>,
    /// The second phase's result.
    watched: Option<oneshot::Receiver<Typed>>,
}

impl Probe {
    /// Logs `player` in on its own thread and starts `command`; returns once the game runs.
    pub async fn start(
        target: &Arc<Target>,
        player: String,
        command: String,
        seconds: Duration,
    ) -> Result<Probe, String> {
        let (ready_tx, ready_rx) = oneshot::channel::<Result<(), String>>();
        let (alone_tx, alone_rx) = oneshot::channel();
        let (go_tx, go_rx) = oneshot::channel::<()>();
        let (watched_tx, watched_rx) = oneshot::channel();
        let t = target.clone();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("probe-runtime:{e}"))?;
        std::thread::Builder::new()
            .name("probe-player".into())
            .spawn(move || {
                rt.block_on(async move {
                    let started = async {
                        let h = t.login_as(&player, Some(&t.auth)).await?;
                        let ch = t.open_game(&h, &command).await?;
                        Ok::<_, Failure>((h, ch))
                    }
                    .await;
                    let (handle, mut ch) = match started {
                        Ok(s) => {
                            let _ = ready_tx.send(Ok(()));
                            s
                        }
                        Err(f) => {
                            let _ = ready_tx.send(Err(format!("probe:{}", f.kind())));
                            return;
                        }
                    };
                    let _ = alone_tx.send(type_for(&t, &mut ch, seconds, "alone").await);
                    let _ = go_rx.await;
                    let _ = watched_tx.send(type_for(&t, &mut ch, seconds, "watched").await);
                    drop(ch);
                    drop(handle);
                });
            })
            .map_err(|e| format!("probe-thread:{e}"))?;
        match ready_rx.await {
            Ok(Ok(())) => Ok(Probe {
                go: Some(go_tx),
                alone: Some(alone_rx),
                watched: Some(watched_rx),
            }),
            Ok(Err(kind)) => Err(kind),
            Err(_) => Err("probe-thread-ended".into()),
        }
    }

    /// Waits for the first phase (nobody watching).
    pub async fn alone(&mut self) -> Option<Typed> {
        self.alone.take()?.await.ok()
    }

    /// Starts the second phase and waits for it.
    pub async fn watched(&mut self) -> Option<Typed> {
        if let Some(go) = self.go.take() {
            let _ = go.send(());
        }
        self.watched.take()?.await.ok()
    }
}

/// Types for `seconds` (after draining what the game printed).
async fn type_for(
    target: &Target,
    ch: &mut russh::Channel<russh::client::Msg>,
    seconds: Duration,
    phase: &str,
) -> Typed {
    let progress = Progress::start(format!("spectate {} probe {phase}", target.label), "keys");
    echo::drain_quiet(ch, Duration::from_millis(150), Duration::from_millis(450)).await;
    let first = tokio::time::Instant::now();
    let typed = echo::type_keys(
        ch,
        first,
        first + seconds,
        PERIOD,
        LINE,
        target.io_timeout,
        &progress.counters,
    )
    .await;
    progress.finish().await;
    typed
}
