//! The session through a real SSH client, on virtual time: logging in, the lobby, idle
//! limits, the end of a connection. Games from exec, pipelined requests and flow control are
//! in `tests_games.rs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use super::harness::*;
use crate::control::{Reply, Request};
use crate::pty::ExitStatus;
use crate::ssh::client::{ClientAuth, ClientConfig, ClientEvent};
use crate::ssh::msg;

/// A visitor with no account: the anonymous lobby.
pub(super) fn guest() -> ClientConfig {
    ClientConfig::new("visitor", ClientAuth::None)
}

/// Alice, logged in with her password, with a shell but no channel yet.
fn alice_without_channel() -> ClientConfig {
    let mut c = password_client(ALICE, ALICE_PW);
    c.open_session = false;
    c
}

/// Log in from the anonymous lobby's form.
fn lobby_login(h: &mut Harness, name: &str, password: &str) {
    h.type_keys(b"l");
    h.type_keys(format!("{name}\r").as_bytes());
    h.type_keys(format!("{password}\r").as_bytes());
}

#[test]
fn a_registered_user_plays_from_the_lobby_and_is_back_in_it_when_the_game_ends() {
    let mut h = Harness::new(password_client(ALICE, ALICE_PW));
    h.assert_shows("Logged in as: alice");
    assert_eq!(h.logged_in, 1);

    h.type_keys(AMULET_KEY);
    let game = h.running_game();
    let asked = &h.spawner.asked[0];
    assert_eq!(
        (asked.game_id.as_str(), asked.user.as_str(), asked.claimed),
        (AMULET, ALICE, true)
    );
    assert_eq!(asked.terminal.term, "xterm-256color");
    assert_eq!(h.control.claims, vec![(ALICE.into(), AMULET.into())]);

    h.type_keys(b"hello dungeon");
    assert_eq!(h.game_mut(game).typed, b"hello dungeon");
    assert!(h.received_text().contains("hello dungeon"), "no echo");

    h.end_game(game, Some(ExitStatus::Exited(0)));
    h.assert_shows("Your game has ended.");
    h.assert_shows("Logged in as: alice");
    assert!(h.hangups.is_empty());
    assert!(!h.client.events.contains(&ClientEvent::Closed));

    // The lobby works again, and the next game has a key of its own.
    h.control.claims.clear();
    h.type_keys(AMULET_KEY);
    let again = h.running_game();
    assert_eq!(again.channel, game.channel);
    assert_ne!(again, game);
}

#[test]
fn quitting_the_lobby_says_goodbye_and_closes_the_channel_with_status_0() {
    let mut h = Harness::new(password_client(ALICE, ALICE_PW));
    let from = h.client.events.len();
    h.type_keys(b"q");
    h.assert_shows("Goodbye!");
    assert_eq!(
        h.events_since(from),
        &[
            ClientEvent::ExitStatus(0),
            ClientEvent::Eof,
            ClientEvent::Closed
        ]
    );
}

#[test]
fn a_shell_without_a_terminal_is_told_to_use_ssh_t() {
    let mut h = Harness::new(alice_without_channel());
    // Open a channel and ask for the shell before the PTY request the client sends once
    // the channel is confirmed.
    let mut open = Vec::new();
    msg::encode_channel_open_session(&mut open, 0, 1 << 20, 32 * 1024);
    let mut shell = Vec::new();
    msg::encode_channel_request_header(&mut shell, 0, "shell", true);
    h.client.send_raw_payload(&open);
    h.send_raw(&shell);
    assert!(h
        .received_text()
        .starts_with("dungeongate needs a terminal: connect with `ssh -t`.\r\n"));
    assert!(h.client.events.contains(&ClientEvent::ExitStatus(1)));
}

#[test]
fn a_guest_logs_in_from_the_lobby_and_the_connection_then_belongs_to_that_account() {
    let mut h = Harness::new(guest());
    h.assert_shows("Not logged in.");
    assert!(!h.session.belongs_to(ALICE));

    lobby_login(&mut h, ALICE, ALICE_PW);
    h.assert_shows("Logged in as: alice");
    assert!(h.session.belongs_to(ALICE));
    assert!(h.session.belongs_to("Alice"));
    assert!(!h.session.belongs_to(BOB));
    assert!(!h.control.seen.iter().any(|s| s.contains(ALICE_PW)));
}

#[test]
fn belongs_to_matches_the_ssh_user_whatever_the_case() {
    let h = Harness::new(password_client(ALICE, ALICE_PW));
    assert!(h.session.belongs_to("alice"));
    assert!(h.session.belongs_to("ALICE"));
    assert!(!h.session.belongs_to("bob"));
    assert!(!h.session.belongs_to("visitor"));
}

#[test]
fn a_wrong_lobby_password_is_shown_and_the_control_core_being_away_reads_busy() {
    let mut h = Harness::new(guest());
    lobby_login(&mut h, ALICE, "guess");
    h.assert_shows("Wrong name or password.");

    h.control.hold = |r| matches!(r, Request::Login { .. });
    lobby_login(&mut h, ALICE, ALICE_PW);
    let (token, _) = h.control.held.remove(0);
    h.answer_held_with(token, Reply::Unavailable);
    h.assert_shows("The server is busy; try again.");
    assert!(!h.session.belongs_to(ALICE));
}

#[test]
fn a_lobby_answer_that_arrives_after_its_channel_closed_is_dropped() {
    let mut h = Harness::new(guest());
    h.control.hold = |r| matches!(r, Request::Login { .. });
    lobby_login(&mut h, ALICE, ALICE_PW);
    assert_eq!(h.control.held.len(), 1);

    // The client closes that channel and opens another, which gets the same id, and logs in
    // there too: both answers are outstanding.
    h.close_channel(0);
    h.open_channel(1, 1 << 20);
    h.assert_shows("Not logged in.");
    lobby_login(&mut h, BOB, BOB_PW);
    h.assert_shows("Checking your name and password...");
    assert_eq!(h.control.held.len(), 2);

    // The old channel's answer (alice, granted) must not log the new lobby in.
    h.answer_held(0);
    h.assert_shows("Checking your name and password...");
    assert!(!h.session.belongs_to(ALICE));
    // Its own answer does.
    h.answer_held(0);
    h.assert_shows("Logged in as: bob");
    assert!(!h.session.belongs_to(ALICE));
}

#[test]
fn a_lone_escape_cancels_a_prompt_once_input_pauses() {
    let mut h = Harness::new(guest());
    h.type_keys(b"l");
    h.assert_shows("Name:");
    h.type_keys(b"\x1b");
    assert_eq!(h.session.poll_timeout(), Some(h.now + 60));
    h.advance(59);
    h.assert_shows("Name:");
    h.advance(1);
    let screen = h.screen();
    assert!(!screen.contains("Name:"), "{screen}");
    assert!(screen.contains("Register a new account"), "{screen}");
}

#[test]
fn the_lobby_closes_after_its_idle_limit_with_the_goodbye_text() {
    let mut h = Harness::new(password_client(ALICE, ALICE_PW));
    let idle = h.env.config.limits.lobby_idle_seconds * 1000;
    assert_eq!(idle, 1_800_000);
    h.advance(idle / 2);
    h.type_keys(b"x"); // typing postpones it
    let from = h.client.events.len();
    h.advance(idle - 1);
    assert!(h.events_since(from).is_empty());
    h.advance(1);
    assert!(h
        .received_text()
        .ends_with("\r\nIdle in the lobby for 30 min: goodbye.\r\n"));
    assert_eq!(
        h.events_since(from),
        &[
            ClientEvent::ExitStatus(0),
            ClientEvent::Eof,
            ClientEvent::Closed
        ]
    );
    assert!(!h.session.is_closed());
}

#[test]
fn a_short_lobby_idle_limit_is_said_in_seconds() {
    let mut h = Harness::with(password_client(ALICE, ALICE_PW), |c, _| {
        c.limits.lobby_idle_seconds = 90;
    });
    h.advance(90_000);
    assert!(h
        .received_text()
        .ends_with("\r\nIdle in the lobby for 90 s: goodbye.\r\n"));
}

#[test]
fn a_game_is_not_a_lobby_and_never_idles_out() {
    let mut h = Harness::new(password_client(ALICE, ALICE_PW));
    h.type_keys(AMULET_KEY);
    let game = h.running_game();
    h.advance(10 * 3_600_000);
    assert!(h.hangups.is_empty());
    assert!(!h.client.events.contains(&ClientEvent::Closed));
    h.type_keys(b"still here");
    assert_eq!(h.game_mut(game).typed, b"still here");
}

#[test]
fn a_logged_in_connection_that_opens_no_channel_is_disconnected_when_idle() {
    let mut h = Harness::new(alice_without_channel());
    assert_eq!(h.logged_in, 1);
    h.advance(119_999);
    assert!(!h.session.is_closed());
    h.advance(1);
    assert!(h.session.is_closed());
    assert!(h.client.events.contains(&ClientEvent::Disconnected(11)));
    assert_eq!(
        h.client.disconnect_text.as_deref(),
        Some("idle: no session was opened on this connection")
    );
    assert!(!h.session.outcome().offence);
}

#[test]
fn closing_the_last_channel_starts_the_no_channel_idle_limit() {
    let mut h = Harness::new(password_client(ALICE, ALICE_PW));
    h.advance(300_000);
    assert!(!h.session.is_closed(), "a channel is open");
    h.close_channel(0);
    h.advance(119_999);
    assert!(!h.session.is_closed());
    h.open_channel(1, 1 << 20); // a new channel stops it
    h.advance(600_000);
    assert!(!h.session.is_closed());
    h.close_channel(0);
    h.advance(120_000);
    assert!(h.session.is_closed());
}

#[test]
fn shutdown_shows_the_message_hangs_up_the_game_and_disconnects() {
    let mut h = Harness::new(password_client(ALICE, ALICE_PW));
    h.type_keys(AMULET_KEY);
    let game = h.running_game();
    h.session.shutdown("The server is restarting.", h.now);
    h.pump();
    assert_eq!(h.hangups, vec![game]);
    assert!(h
        .received_text()
        .ends_with("\r\n\r\nThe server is restarting.\r\n"));
    assert!(h.client.events.contains(&ClientEvent::Disconnected(11)));
    assert_eq!(
        h.client.disconnect_text.as_deref(),
        Some("The server is restarting.")
    );
    assert!(h.session.is_closed());
    assert_eq!(h.session.poll_timeout(), None);
    assert!(!h.session.wants_read());
}

#[test]
fn the_peer_going_away_hangs_up_the_game() {
    let mut h = Harness::new(password_client(ALICE, ALICE_PW));
    h.type_keys(AMULET_KEY);
    let game = h.running_game();
    h.session.handle_socket_closed(h.now);
    h.pump();
    assert_eq!(h.hangups, vec![game]);
    assert!(h.session.is_closed());
    assert_eq!(h.session.pty_room(game), 0);
}

#[test]
fn refuse_says_why_in_a_disconnect_and_closes() {
    let mut h = Harness::build(password_client(ALICE, ALICE_PW), |_, _| {});
    h.session.refuse("The server is full.");
    h.pump();
    assert!(h.session.is_closed());
    assert!(h.client.events.contains(&ClientEvent::Disconnected(12)));
    assert_eq!(
        h.client.disconnect_text.as_deref(),
        Some("The server is full.")
    );
    assert_eq!(h.session.outcome(), super::Outcome::default());
}

#[test]
fn wrong_passwords_are_an_offence_and_a_later_success_forgives_them() {
    let mut h = Harness::new(password_client(ALICE, "wrong"));
    assert!(matches!(
        h.client.events.last(),
        Some(ClientEvent::AuthFailure(_))
    ));
    let o = h.session.outcome();
    assert!(o.handshake_done && o.offence && !o.logged_in);
    assert_eq!(h.logged_in, 0);

    let mut right = Vec::new();
    msg::encode_userauth_request_password(&mut right, ALICE, ALICE_PW);
    h.send_raw(&right);
    assert!(h.client.events.contains(&ClientEvent::AuthSuccess));
    let o = h.session.outcome();
    assert!(o.logged_in && !o.offence);
    assert_eq!(h.logged_in, 1);
}

#[test]
fn running_out_of_login_grace_is_an_offence() {
    let mut h = Harness::new(password_client(ALICE, "wrong"));
    h.advance(119_000);
    assert!(!h.session.is_closed());
    h.advance(1_000);
    assert!(h.session.is_closed());
    assert!(h.client.events.contains(&ClientEvent::Disconnected(11)));
    let o = h.session.outcome();
    assert!(o.offence && !o.logged_in && o.handshake_done);
}

#[test]
fn a_guest_who_never_authenticates_in_time_is_an_offence_too() {
    let mut cfg = guest();
    cfg.open_session = false;
    let mut h = Harness::build(cfg, |_, _| {});
    // The reactor's control core never answers the `none` attempt.
    h.control.hold = |_| true;
    h.pump();
    h.advance(120_000);
    assert!(h.session.is_closed());
    assert!(h.session.outcome().offence);
}

#[test]
fn a_protocol_error_is_an_offence() {
    let mut h = Harness::new(alice_without_channel());
    let mut data = Vec::new();
    msg::encode_channel_data_header(&mut data, 7, 1);
    data.push(b'x');
    h.send_raw(&data);
    assert!(h.session.is_closed());
    assert!(h.session.outcome().offence);
}

#[test]
fn logged_in_comes_once_and_not_for_a_key_query() {
    let cfg = ClientConfig::new(
        ALICE,
        ClientAuth::Ed25519 {
            seed: KEY_A,
            query_first: true,
        },
    );
    let mut h = Harness::build(cfg, |_, _| {});
    h.control.hold = |_| true;
    h.pump();
    // The query ("may I use this key?") is answered yes: that is no login.
    h.answer_held(0);
    assert!(h.client.events.contains(&ClientEvent::PkOk));
    assert_eq!(h.logged_in, 0);
    assert!(!h.session.outcome().logged_in);
    // The signed request is.
    h.answer_held(0);
    assert!(h.client.events.contains(&ClientEvent::AuthSuccess));
    assert_eq!(h.logged_in, 1);
    assert!(h.session.belongs_to(ALICE));
    h.control.hold = |_| false;
    h.pump();
    assert_eq!(h.logged_in, 1);
    // The two authentication requests: the running games came with the answer.
    assert_eq!(h.control.seen.len(), 2);
}

#[test]
fn an_unanswerable_ssh_authentication_is_denied() {
    let mut h = Harness::build(password_client(ALICE, ALICE_PW), |_, _| {});
    h.control.hold = |_| true;
    h.pump();
    let (token, _) = h.control.held.remove(0);
    h.answer_held_with(token, Reply::Unavailable);
    assert!(matches!(
        h.client.events.last(),
        Some(ClientEvent::AuthFailure(_))
    ));
    assert_eq!(h.logged_in, 0);
}

#[test]
fn terminal_sessions_are_counted_from_the_shell_to_the_channel_close() {
    let mut h = Harness::new(password_client(ALICE, ALICE_PW));
    assert_eq!(
        h.metric("terminal_sessions_active"),
        "terminal_sessions_active 1"
    );
    h.close_channel(0);
    assert_eq!(
        h.metric("terminal_sessions_active"),
        "terminal_sessions_active 0"
    );
    assert!(
        h.metric("terminal_sessions_total")
            .contains("terminal_sessions_total{status=\"success\"} 1"),
        "{}",
        h.metric("terminal_sessions_total")
    );
}
