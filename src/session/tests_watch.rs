//! Watching, through a real SSH client on virtual time: the watch menu's list and its
//! refresh, a game's screen and output reaching the watcher and nothing of the watcher's
//! reaching the game, falling behind and the re-sync, the way back, and late answers.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use super::harness::*;
use super::tests::guest;
use super::WatchKey;
use crate::watch::{GameRef, Listing};

fn bobs_game() -> Listing {
    Listing {
        game: GameRef {
            core: 1,
            slot: 3,
            generation: 9,
        },
        player: "bob".into(),
        game_id: "nethack".into(),
        game_name: "NetHack 3.6".into(),
        cols: 80,
        rows: 24,
        started_unix: 1_796_000_000,
        last_output_ms: 0,
        watchers: 0,
        detached: false,
    }
}

/// A guest in the watch menu, with bob's game listed.
fn in_watch_menu() -> Harness {
    let mut h = Harness::build(guest(), |_, _| {});
    h.control.listed = vec![bobs_game()];
    h.pump();
    h.type_keys(b"w");
    h.assert_shows("Games being played");
    h.assert_shows("bob");
    h
}

/// The guest watches bob's game; returns the watch.
fn watching() -> (Harness, WatchKey) {
    let mut h = in_watch_menu();
    h.type_keys(b"a");
    let Some(WatchEffect::Watch(watch, game)) = h.watches.last().copied() else {
        panic!("no watch: {:?}", h.watches);
    };
    assert_eq!(game, bobs_game().game);
    (h, watch)
}

#[test]
fn the_watcher_sees_the_screen_at_once_then_the_output_and_never_types_into_the_game() {
    let (mut h, watch) = watching();
    // Output before the screen is not shown (the screen would not match it).
    h.session
        .handle_watch_output(watch, b"\x1b[5;1Hearly", h.now);
    h.pump();
    h.session
        .handle_watch_screen(watch, b"\x1b[H\x1b[2JYou see a fountain.", 80, 24, h.now);
    h.pump();
    h.assert_shows("You see a fountain.");
    assert!(!h.screen().contains("early"));
    h.session
        .handle_watch_output(watch, b"\x1b[2;1HThe newt bites!", h.now);
    h.pump();
    h.assert_shows("The newt bites!");
    // Keys go nowhere: no PTY write, no control request.
    let seen = h.control.seen.len();
    h.type_keys(b"hjkl\x0c\r");
    assert!(h.pty_writes.is_empty());
    assert_eq!(h.control.seen.len(), seen);
    assert_eq!(
        h.metric("spectator_connections_active"),
        "spectator_connections_active 1"
    );
    // q: the watch ends and the menu is back.
    h.type_keys(b"q");
    assert_eq!(
        h.watches.last().copied(),
        Some(WatchEffect::Unwatch(watch, bobs_game().game))
    );
    h.assert_shows("Games being played");
    assert_eq!(
        h.metric("spectator_connections_active"),
        "spectator_connections_active 0"
    );
    // A late chunk for the old watch is dropped.
    h.session.handle_watch_output(watch, b"LATE", h.now);
    h.pump();
    assert!(!h.screen().contains("LATE"));
}

#[test]
fn a_second_watch_has_its_own_key_and_ignores_the_first_ones_screen() {
    let (mut h, first) = watching();
    h.type_keys(b"q");
    h.type_keys(b"a");
    let Some(WatchEffect::Watch(second, _)) = h.watches.last().copied() else {
        panic!("no second watch");
    };
    assert_ne!(first, second);
    h.session
        .handle_watch_screen(first, b"\x1b[H\x1b[2JOLD SCREEN", 80, 24, h.now);
    h.pump();
    assert!(!h.screen().contains("OLD SCREEN"));
    h.session
        .handle_watch_screen(second, b"\x1b[H\x1b[2JNEW SCREEN", 80, 24, h.now);
    h.pump();
    h.assert_shows("NEW SCREEN");
}

#[test]
fn the_game_ending_returns_the_watcher_to_the_menu_with_a_message() {
    let (mut h, watch) = watching();
    h.session
        .handle_watch_screen(watch, b"\x1b[H\x1b[2Jplaying", 80, 24, h.now);
    h.pump();
    h.session
        .handle_watch_ended(watch, "The game you were watching has ended.", h.now);
    h.pump();
    h.assert_shows("The game you were watching has ended.");
    h.assert_shows("Games being played");
    assert_eq!(
        h.metric("spectator_connections_active"),
        "spectator_connections_active 0"
    );
}

#[test]
fn a_stalled_watcher_drops_output_and_is_resynced_once_it_drains() {
    let (mut h, watch) = watching();
    h.session
        .handle_watch_screen(watch, b"\x1b[H\x1b[2Jstart", 80, 24, h.now);
    h.pump();
    h.socket_stalled = true;
    let chunk = vec![b'x'; 4096];
    for _ in 0..64 {
        h.session.handle_watch_output(watch, &chunk, h.now);
    }
    h.pump();
    // Bounded: far less than the 256 KiB offered is held for this watcher.
    assert!(
        h.session.transmit().len() < 128 * 1024,
        "{} bytes queued",
        h.session.transmit().len()
    );
    assert!(!h
        .watches
        .iter()
        .any(|w| matches!(w, WatchEffect::Resync(..))));
    h.socket_stalled = false;
    h.pump();
    assert_eq!(
        h.watches.last().copied(),
        Some(WatchEffect::Resync(watch, bobs_game().game))
    );
    h.session
        .handle_watch_screen(watch, b"\x1b[H\x1b[2Jfresh picture", 80, 24, h.now);
    h.pump();
    h.assert_shows("fresh picture");
}

#[test]
fn a_smaller_watcher_terminal_is_told_so() {
    let (mut h, watch) = watching();
    h.session
        .handle_watch_screen(watch, b"\x1b[H\x1b[2Jbig game", 132, 50, h.now);
    h.pump();
    h.assert_shows("This game is 132x50, your terminal is 80x24");
}

#[test]
fn the_list_is_refreshed_every_second_while_the_menu_is_up_only() {
    let mut h = in_watch_menu();
    let asked = |h: &Harness| h.control.seen.iter().filter(|s| *s == "ListGames").count();
    assert_eq!(asked(&h), 1);
    let mut later = bobs_game();
    later.watchers = 4;
    h.control.listed = vec![later];
    h.advance(1_000);
    assert_eq!(asked(&h), 2);
    let screen = h.screen();
    assert!(screen.contains(" 4 "), "{screen}");
    h.type_keys(b"q");
    h.advance(5_000);
    assert_eq!(asked(&h), 2, "no refresh after leaving the menu");
}

#[test]
fn closing_the_connection_while_watching_ends_the_watch() {
    let (mut h, watch) = watching();
    h.session.handle_socket_closed(h.now);
    h.pump();
    assert_eq!(
        h.watches.last().copied(),
        Some(WatchEffect::Unwatch(watch, bobs_game().game))
    );
    assert_eq!(
        h.metric("spectator_connections_active"),
        "spectator_connections_active 0"
    );
}
