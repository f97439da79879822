//! The players whose games are watched: registered accounts (one per game, so the watch
//! menu's search finds exactly one game by the player's name), each logged in with the
//! target's credentials and running a game by `exec` in an 80×24 PTY.

use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::scenario::session::Session;
use crate::stats::Errors;
use crate::target::Target;

/// Logins in flight while the players start (they are few).
const IN_FLIGHT: usize = 8;

/// One started player (index `i`).
pub struct Player {
    /// Its index (the game number).
    pub index: usize,
    /// Its account name.
    pub name: String,
    /// Its connection and game channel.
    pub session: Session,
}

/// Starts one player per `(name, command)`; returns those that started (in index order)
/// and why the others did not.
pub async fn start(target: &Arc<Target>, games: Vec<(String, String)>) -> (Vec<Player>, Errors) {
    let gate = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut set = JoinSet::new();
    for (index, (name, command)) in games.into_iter().enumerate() {
        let (t, gate) = (target.clone(), gate.clone());
        set.spawn(async move {
            let _permit = gate.acquire_owned().await;
            let res = async {
                let handle = t.login_as(&name, Some(&t.auth)).await?;
                let channel = t.open_game(&handle, &command).await?;
                Ok::<_, crate::target::Failure>(Session { handle, channel })
            }
            .await;
            (index, name, res)
        });
    }
    let mut players = Vec::new();
    let mut errors = Errors::default();
    while let Some(j) = set.join_next().await {
        match j {
            Ok((index, name, Ok(session))) => players.push(Player {
                index,
                name,
                session,
            }),
            Ok((_, _, Err(f))) => errors.add(&format!("player:{}", f.kind())),
            Err(_) => errors.add("task-panicked"),
        }
    }
    players.sort_by_key(|p| p.index);
    (players, errors)
}
