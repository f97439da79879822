//! Coming back to a running game, through a real SSH client on virtual time: the lobby's
//! offer, re-attaching a detached game (from the offer, by starting the game again, by exec),
//! taking over one open on another connection, and the refusals.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use super::harness::*;
use crate::ssh::client::ClientEvent;
use crate::watch::{GameRef, Listing};

const TARGET: GameRef = GameRef {
    core: 1,
    slot: 7,
    generation: 42,
};

/// Alice's Amulet Run, running on core 1.
fn alices_game(detached: bool) -> Listing {
    Listing {
        game: TARGET,
        player: ALICE.into(),
        game_id: AMULET.into(),
        game_name: "Amulet Run".into(),
        cols: 80,
        rows: 24,
        started_unix: 1_796_000_000,
        last_output_ms: 0,
        watchers: 0,
        detached,
    }
}

/// Alice in her lobby, with her game listed as running.
fn alice_with_running_game(detached: bool) -> Harness {
    let mut h = Harness::build(password_client(ALICE, ALICE_PW), |_, _| {});
    h.control.listed = vec![alices_game(detached)];
    h.pump();
    h
}

#[test]
fn the_lobby_offers_a_detached_game_and_r_brings_its_screen_back() {
    let mut h = alice_with_running_game(true);
    // Offered from the login's answer: no request of its own.
    assert!(!h.control.seen.iter().any(|r| r.starts_with("GamesOf")));
    h.assert_shows("r) Resume your game of Amulet Run");
    h.type_keys(b"r");
    assert_eq!(h.reattaches.len(), 1);
    let (key, target, take_over, size) = h.reattaches[0];
    assert_eq!((target, take_over), (TARGET, false));
    assert_eq!((size.cols, size.rows), (80, 24));
    // No new claim, no spawn: the running game is the one the player gets.
    assert!(h.spawner.asked.is_empty());
    h.assert_shows("T:1234 the game you left");
    // Keys go to the game.
    h.type_keys(b"hjkl");
    assert_eq!(h.game_mut(key).typed, b"hjkl");
}

#[test]
fn starting_the_same_game_again_resumes_it_too() {
    let mut h = alice_with_running_game(true);
    h.type_keys(AMULET_KEY);
    assert_eq!(h.reattaches.len(), 1);
    assert!(h.spawner.asked.is_empty());
    h.assert_shows("T:1234");
}

#[test]
fn an_exec_of_the_game_resumes_it_but_does_not_take_it_from_another_connection() {
    let mut h = Harness::build(alice_exec(AMULET), |_, _| {});
    h.control.listed = vec![alices_game(true)];
    h.pump();
    assert_eq!(h.reattaches.len(), 1);
    assert!(!h.reattaches[0].2);
    assert!(h.received_text().contains("T:1234"));

    // Open elsewhere: nobody to ask, so refused with the way to take it over.
    let mut h = Harness::build(alice_exec(AMULET), |_, _| {});
    h.control.listed = vec![alices_game(false)];
    h.pump();
    assert!(h.reattaches.is_empty());
    assert!(h.spawner.asked.is_empty());
    let text = h.received_text();
    assert!(text.contains("You already have Amulet Run running on another connection"));
    assert!(text.contains("press r in the lobby to take it over"));
    assert!(h.client.events.contains(&ClientEvent::ExitStatus(1)));
}

#[test]
fn a_game_open_elsewhere_is_taken_over_only_when_the_player_says_so() {
    let mut h = alice_with_running_game(false);
    h.assert_shows("r) Take over your game of Amulet Run");
    h.type_keys(b"r");
    h.assert_shows("open on another connection");
    h.assert_shows("t) Take it over here");
    assert!(h.reattaches.is_empty());
    // Back: the menu again, nothing asked.
    h.type_keys(b"b");
    h.assert_shows("Logged in as: alice");
    assert!(h.reattaches.is_empty());
    // Again, and take it over.
    h.type_keys(b"r");
    h.type_keys(b"t");
    assert_eq!(h.reattaches.len(), 1);
    assert_eq!((h.reattaches[0].1, h.reattaches[0].2), (TARGET, true));
    h.assert_shows("T:1234");
}

#[test]
fn a_game_that_cannot_be_had_brings_the_menu_back_with_the_reason() {
    let mut h = alice_with_running_game(true);
    h.refuse_reattach = Some("Your game is saving; try again in a moment.".into());
    h.type_keys(b"r");
    h.assert_shows("Your game is saving; try again in a moment.");
    h.assert_shows("Logged in as: alice");
    assert!(!h.session.is_closed());
    // The offer is asked for again (the game may be gone now).
    let asked = h
        .control
        .seen
        .iter()
        .filter(|r| *r == "GamesOf(alice)")
        .count();
    assert_eq!(asked, 1);
}

#[test]
fn without_a_running_game_r_does_nothing_and_the_game_starts_as_usual() {
    let mut h = Harness::new(password_client(ALICE, ALICE_PW));
    assert!(!h.screen().contains("r) Resume"));
    h.type_keys(b"r");
    assert!(h.reattaches.is_empty());
    h.type_keys(AMULET_KEY);
    assert_eq!(h.spawner.asked.len(), 1);
    assert!(h.reattaches.is_empty());
}

#[test]
fn another_players_game_is_never_offered() {
    let mut h = Harness::build(password_client(ALICE, ALICE_PW), |_, _| {});
    let mut bobs = alices_game(true);
    bobs.player = BOB.into();
    h.control.listed = vec![bobs];
    h.pump();
    assert!(!h.screen().contains("Resume"));
    h.type_keys(AMULET_KEY);
    assert!(h.reattaches.is_empty());
    assert_eq!(h.spawner.asked.len(), 1);
}

#[test]
fn a_reattached_game_left_again_is_handed_back_to_the_reactor() {
    let mut h = alice_with_running_game(true);
    h.type_keys(b"r");
    let key = h.reattaches[0].0;
    let from = h.client.events.len();
    h.session.handle_socket_closed(h.now);
    h.pump();
    assert_eq!(h.hangups, vec![key]);
    assert!(!h.events_since(from).contains(&ClientEvent::ExitStatus(0)));
}

#[test]
fn a_game_a_reload_removed_from_the_configuration_is_still_resumed() {
    let mut h = Harness::build(password_client(ALICE, ALICE_PW), |c, _| {
        c.games.retain(|g| g.id != AMULET);
    });
    h.control.listed = vec![alices_game(true)];
    h.pump();
    h.assert_shows("r) Resume your game of Amulet Run");
    h.type_keys(b"r");
    assert_eq!(h.reattaches.len(), 1);
    assert!(h.spawner.asked.is_empty());
    h.assert_shows("T:1234");
}
