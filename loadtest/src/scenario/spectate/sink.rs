//! Drain-only watchers (`--lag-sample`): attached through the lobby exactly as a
//! [`super::watcher`] is, then they only read their socket and count bytes, without
//! decrypting. On a 2-core machine the russh client decrypting and dispatching 10,000
//! streams costs about twice the server's CPU, so with every watcher a full client the
//! machine measures the client; with most watchers draining and a sample decrypting (whose
//! lag is measured), the server's fan-out is what is measured. To the server a drain-only
//! watcher is an ordinary connection that reads as fast as data comes.
//!
//! A watcher that no longer reads SSH cannot return the channel window, so it hands the
//! server nearly 4 GiB of window once attached (dungeongate sends no keepalives, and at a
//! game's rate no rekey falls due within a run). The attach uses dungeongate's own sans-io
//! client (the hostile clients of `flood` use it too); the sampled watchers keep the
//! independent russh client, so the protocol path a bug could hide in is still checked.

use std::time::Duration;

use dungeongate::ssh::client::{Client, ClientAuth, ClientConfig, ClientEvent};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

use super::follow::{Tally, Window};
use super::markers::REPAINT;
use crate::stream_game::monotonic_ns;
use crate::target::{Failure, Target};

/// Window handed to the server once attached: what the channel may carry unread.
const OPEN_WINDOW: u32 = u32::MAX - (1 << 20);

/// As in [`super::watcher`]: how long before the row's letter is pressed again.
const PRESS_AGAIN: Duration = Duration::from_millis(1500);

/// Logs guest `guest` in, opens the lobby and starts watching `player`'s game. Returns the
/// socket, past the repaint.
pub async fn attach(t: &Target, guest: &str, player: &str) -> Result<TcpStream, Failure> {
    let mut stream = t.connect().await?;
    let mut c = Client::new(ClientConfig::new(guest, ClientAuth::None));
    let until = Instant::now() + t.io_timeout;
    // Logged in with the lobby drawn (the client asks for an 80×24 PTY and a shell).
    let up = drive(&mut stream, &mut c, until, |c| !c.received.is_empty()).await?;
    if c.events
        .iter()
        .any(|e| matches!(e, ClientEvent::AuthFailure(_)))
    {
        return Err(Failure::AuthRefused);
    }
    if !up {
        return Err(Failure::Timeout("lobby"));
    }
    c.received.clear();
    c.send_data(b"w");
    c.send_data(format!("/{player}\r").as_bytes());
    let row = format!(") {player}").into_bytes();
    let until = Instant::now() + t.io_timeout;
    if !drive(&mut stream, &mut c, until, |c| seen(c, &row)).await? {
        return Err(Failure::Timeout("menu"));
    }
    let deadline = Instant::now() + t.io_timeout;
    loop {
        c.send_data(b"a");
        let retry = (Instant::now() + PRESS_AGAIN).min(deadline);
        if drive(&mut stream, &mut c, retry, |c| seen(c, REPAINT)).await? {
            break;
        }
        if Instant::now() >= deadline {
            return Err(Failure::Timeout("screen"));
        }
    }
    c.adjust_window(OPEN_WINDOW);
    let mut out = Vec::new();
    c.poll_transmit(&mut out);
    stream
        .write_all(&out)
        .await
        .map_err(|_| Failure::Closed("watch"))?;
    Ok(stream.into_inner())
}

/// Reads until `stop`, counting the bytes received in the window (SSH packets as sent).
pub async fn drain(
    mut stream: TcpStream,
    window: &Window,
    mut stop: watch::Receiver<bool>,
) -> Tally {
    let mut tally = Tally::default();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if *stop.borrow() {
            break;
        }
        tokio::select! {
            r = stream.read(&mut buf) => match r {
                Ok(n) if n > 0 => {
                    if window.holds(monotonic_ns()) {
                        tally.bytes += n as u64;
                    }
                }
                _ => {
                    if !*stop.borrow() {
                        tally.errors.add("closed:watching");
                    }
                    break;
                }
            },
            changed = stop.changed() => if changed.is_err() {
                break;
            },
        }
    }
    tally
}

/// Whether `needle` has arrived on the channel; keeps only the tail that may begin it.
fn seen(c: &mut Client, needle: &[u8]) -> bool {
    if c.received.windows(needle.len()).any(|w| w == needle) {
        c.received.clear();
        return true;
    }
    let keep = needle.len().saturating_sub(1).min(c.received.len());
    c.received.drain(..c.received.len() - keep);
    false
}

/// Moves bytes between `c` and the server until `done` (true) or `until` passes (false).
async fn drive<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    c: &mut Client,
    until: Instant,
    mut done: impl FnMut(&mut Client) -> bool,
) -> Result<bool, Failure> {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let mut out = Vec::new();
        c.poll_transmit(&mut out);
        if !out.is_empty() && s.write_all(&out).await.is_err() {
            return Err(Failure::Closed("lobby"));
        }
        if done(c) {
            return Ok(true);
        }
        match tokio::time::timeout_at(until, s.read(&mut buf)).await {
            Err(_) => return Ok(false),
            Ok(Ok(0) | Err(_)) => return Err(Failure::Closed("lobby")),
            Ok(Ok(n)) => {
                if c.handle_input(buf.get(..n).unwrap_or_default()).is_err() {
                    return Err(Failure::Closed("protocol"));
                }
            }
        }
    }
}
