//! Attaching one watcher the way a person does: log in as a guest (`none` auth, a name that
//! is no account), get the lobby in an 80×24 PTY, `w` for the watch menu, `/` + the player's
//! name + Enter to filter the list down to that player's game, then `a` (its row) once the
//! row is shown. Attached when the game's screen (a repaint) arrives.

use std::time::Duration;

use russh::client::{Handle, Msg};
use russh::{Channel, ChannelMsg};

use super::follow::{Follow, Window};
use crate::target::{Client, Failure, Target};

/// How long to wait for the screen after pressing the row's letter before pressing it again
/// (a key that came before the list did is ignored by the menu; once watching, the lobby
/// ignores everything but `q`, so pressing again is harmless).
const PRESS_AGAIN: Duration = Duration::from_millis(1500);

/// An attached watcher.
pub struct Watcher {
    /// The connection (dropping it closes the connection).
    pub handle: Handle<Client>,
    /// The lobby channel, now showing the game.
    pub channel: Channel<Msg>,
    /// What was read since the row was chosen (the screen on attach included).
    pub follow: Follow,
}

/// Attaches guest `guest` to the game of `player`.
pub async fn attach(
    t: &Target,
    guest: &str,
    player: &str,
    window: &Window,
) -> Result<Watcher, Failure> {
    let handle = t.login_as(guest, None).await?;
    let mut channel = t.open_shell(&handle).await?;
    send(&channel, b"w".to_vec()).await?;
    send(&channel, format!("/{player}\r").into_bytes()).await?;
    // The row: the letter, ") ", then the player's name (the search prompt and the title
    // show the name too, but never after ") ").
    wait_for(t, &mut channel, format!(") {player}").as_bytes()).await?;
    let mut follow = Follow::default();
    let deadline = tokio::time::Instant::now() + t.io_timeout;
    loop {
        send(&channel, b"a".to_vec()).await?;
        let retry = (tokio::time::Instant::now() + PRESS_AGAIN).min(deadline);
        loop {
            match tokio::time::timeout_at(retry, channel.wait()).await {
                Ok(Some(ChannelMsg::Data { data })) => {
                    follow.feed(&data, window);
                    if follow.tally.repaints > 0 {
                        return Ok(Watcher {
                            handle,
                            channel,
                            follow,
                        });
                    }
                }
                Ok(Some(ChannelMsg::Eof | ChannelMsg::Close) | None) => {
                    return Err(Failure::Closed("watch"))
                }
                Ok(Some(_)) => {}
                Err(_) => break,
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Failure::Timeout("screen"));
        }
    }
}

/// Types `keys` on the lobby channel.
async fn send(ch: &Channel<Msg>, keys: Vec<u8>) -> Result<(), Failure> {
    ch.data_bytes(keys)
        .await
        .map_err(|_| Failure::Closed("lobby"))
}

/// Reads until `needle` has been received (it may be split across reads).
async fn wait_for(t: &Target, ch: &mut Channel<Msg>, needle: &[u8]) -> Result<(), Failure> {
    let deadline = tokio::time::Instant::now() + t.io_timeout;
    let mut tail: Vec<u8> = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, ch.wait()).await {
            Ok(Some(ChannelMsg::Data { data })) => {
                tail.extend_from_slice(&data);
                if tail.windows(needle.len()).any(|w| w == needle) {
                    return Ok(());
                }
                // Only a needle's length minus one can begin a match in the next read.
                let keep = needle.len().saturating_sub(1).min(tail.len());
                tail.drain(..tail.len() - keep);
            }
            Ok(Some(ChannelMsg::Eof | ChannelMsg::Close) | None) => {
                return Err(Failure::Closed("menu"))
            }
            Ok(Some(_)) => {}
            Err(_) => return Err(Failure::Timeout("menu")),
        }
    }
}
