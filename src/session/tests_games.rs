//! Games through a real SSH client, on virtual time: exec and its refusals, late answers
//! that must not land on a newer channel, input held while a game starts, flow control of
//! game output, one game per connection.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use super::harness::*;
use super::{SpawnError, MAX_TRANSMIT_BACKLOG};
use crate::control::Request;
use crate::pty::{ExitStatus, Signal};
use crate::ssh::client::{ClientAuth, ClientConfig, ClientEvent};
use crate::ssh::msg;
use crate::ssh::server::ChannelId;
use crate::ssh::wire;

/// Alice executing `command` on a channel she opens herself (see [`Harness::open_channel`]).
fn alice_exec_later(command: &str) -> ClientConfig {
    let mut c = alice_exec(command);
    c.open_session = false;
    c
}

fn holds_claims(r: &Request) -> bool {
    matches!(r, Request::ClaimGame { .. })
}

#[test]
fn exec_of_a_game_starts_it_directly_and_its_exit_status_ends_the_channel() {
    let mut h = Harness::new(alice_exec(AMULET));
    let game = h.running_game();
    assert_eq!(game.channel, ChannelId(0));
    assert_eq!(h.spawner.asked[0].user, ALICE);
    assert!(h.spawner.asked[0].claimed);

    h.type_keys(b"go west");
    assert!(h.received_text().contains("go west"));
    let from = h.client.events.len();
    h.end_game(game, Some(ExitStatus::Exited(3)));
    assert_eq!(
        h.events_since(from),
        &[
            ClientEvent::ExitStatus(3),
            ClientEvent::Eof,
            ClientEvent::Closed
        ]
    );
    assert!(h.hangups.is_empty());
    assert!(!h.session.is_closed());
}

#[test]
fn a_game_killed_by_a_signal_ends_exec_with_128_plus_the_signal_and_an_unknown_end_with_255() {
    let mut h = Harness::new(alice_exec(AMULET));
    let game = h.running_game();
    h.end_game(game, Some(ExitStatus::Signaled(9)));
    assert!(h.client.events.contains(&ClientEvent::ExitStatus(137)));

    let mut h = Harness::new(alice_exec(AMULET));
    let game = h.running_game();
    h.end_game(game, None);
    assert!(h.client.events.contains(&ClientEvent::ExitStatus(255)));
}

#[test]
fn exec_of_an_unknown_game_is_refused_with_the_list_of_games() {
    let mut h = Harness::new(alice_exec("rogue\x1b[2J"));
    assert_eq!(
        h.received_text(),
        "'rogue[2J' is not a game here. Games: nethack, amulet. Or connect without a command \
         for the lobby.\r\n"
    );
    assert!(h.client.events.ends_with(&[
        ClientEvent::ExitStatus(1),
        ClientEvent::Eof,
        ClientEvent::Closed
    ]));
    assert!(h.spawner.asked.is_empty());
    assert!(h.control.claims.is_empty());
    h.close_channel(0);
    assert!(h.metric("terminal_sessions_active").ends_with(" 0"));
}

#[test]
fn a_guest_cannot_exec_a_game() {
    let mut cfg = ClientConfig::new("visitor", ClientAuth::None);
    cfg.command = Some(AMULET.into());
    let h = Harness::new(cfg);
    assert_eq!(
        h.received_text(),
        "Guests cannot play: log in as a registered user, or connect without a command to \
         register.\r\n"
    );
    assert!(h.client.events.contains(&ClientEvent::ExitStatus(1)));
    assert!(h.spawner.asked.is_empty());
}

#[test]
fn exec_of_a_game_that_is_not_installed_is_refused() {
    let h = Harness::new(alice_exec("nethack"));
    assert_eq!(
        h.received_text(),
        "NetHack is not installed on this server.\r\n"
    );
    assert!(h.client.events.contains(&ClientEvent::ExitStatus(1)));
}

#[test]
fn exec_without_a_pty_is_told_games_need_a_terminal() {
    let mut h = Harness::new(alice_exec_later(AMULET));
    // The exec goes out right behind the open, before the PTY request the client sends once
    // the channel is confirmed.
    let mut open = Vec::new();
    msg::encode_channel_open_session(&mut open, 0, 1 << 20, 32 * 1024);
    let mut exec = Vec::new();
    msg::encode_channel_request_header(&mut exec, 0, "exec", true);
    wire::put_string(&mut exec, AMULET.as_bytes());
    h.client.send_raw_payload(&open);
    h.send_raw(&exec);
    assert_eq!(
        h.received_text(),
        "Games need a terminal: connect with `ssh -t`.\r\n"
    );
    assert!(h.client.events.contains(&ClientEvent::ExitStatus(1)));
    assert!(h.spawner.asked.is_empty());
}

#[test]
fn a_pipelined_exec_close_open_exec_hangs_up_the_late_first_game_and_plays_the_second() {
    let mut h = Harness::build(alice_exec(AMULET), |c, _| {
        c.games[1].concurrent_per_account = true;
    });
    h.spawner.defer = true;
    h.pump();
    let first = h.spawner.pending[0].game;
    assert!(!h.spawner.pending[0].claimed);

    // Close channel 0 and open a new one (it gets id 0 again) in one flight; the client
    // execs the game again as soon as the new channel is confirmed.
    let mut close = Vec::new();
    msg::encode_channel_only(&mut close, msg::MsgType::ChannelClose, 0);
    let mut open = Vec::new();
    msg::encode_channel_open_session(&mut open, 1, 1 << 20, 32 * 1024);
    h.client.send_raw_payload(&close);
    h.send_raw(&open);
    assert_eq!(h.spawner.pending.len(), 2);
    let second = h.spawner.pending[1].game;
    assert_eq!(second.channel, first.channel);
    assert_ne!(second, first);
    assert!(h.hangups.is_empty(), "nothing runs yet");

    // The first spawn's answer arrives late: that game is hung up, not attached.
    h.answer_spawn(0, Ok(()));
    assert_eq!(h.hangups, vec![first]);
    assert_eq!(h.session.pty_room(first), 0);
    h.type_keys(b"early");
    assert!(h.game_mut(first).typed.is_empty());

    // The second attaches normally, with what was typed meanwhile.
    h.answer_spawn(0, Ok(()));
    assert_eq!(h.running_game(), second);
    h.type_keys(b" and later");
    assert_eq!(h.game_mut(second).typed, b"early and later");
    assert!(h.game_mut(first).typed.is_empty());
    assert_eq!(h.hangups, vec![first]);
}

#[test]
fn a_game_output_or_end_for_an_old_game_key_reaches_nobody() {
    let mut h = Harness::new(password_client(ALICE, ALICE_PW));
    h.type_keys(AMULET_KEY);
    let old = h.running_game();
    h.end_game(old, Some(ExitStatus::Exited(0)));
    h.control.claims.clear();
    h.type_keys(AMULET_KEY);
    let new = h.running_game();
    let seen = h.client.received.len();
    h.session.handle_pty_output(old, b"ghost", h.now);
    h.session.handle_pty_written(old, 1, h.now);
    h.session
        .handle_game_ended(old, Some(ExitStatus::Exited(0)), h.now);
    h.pump();
    assert_eq!(h.client.received.len(), seen);
    assert_eq!(h.running_game(), new);
    assert!(h.session.pty_room(new) > 0);
}

#[test]
fn a_granted_claim_that_arrives_after_the_channel_closed_is_released() {
    let mut h = Harness::build(alice_exec(AMULET), |_, _| {});
    h.control.hold = holds_claims;
    h.pump();
    assert_eq!(h.control.held.len(), 1);
    h.close_channel(0);
    h.answer_held(0);
    assert_eq!(
        h.control.seen.last().map(String::as_str),
        Some("ReleaseGame(alice)")
    );
    assert!(h.control.claims.is_empty());
    assert!(h.spawner.asked.is_empty());
    assert!(h.hangups.is_empty());
}

#[test]
fn a_granted_claim_that_arrives_after_the_connection_ended_is_released() {
    let mut h = Harness::build(alice_exec(AMULET), |_, _| {});
    h.control.hold = holds_claims;
    h.pump();
    h.session.handle_socket_closed(h.now);
    h.answer_held(0);
    assert_eq!(
        h.control.seen.last().map(String::as_str),
        Some("ReleaseGame(alice)")
    );
    assert!(h.control.claims.is_empty());
    assert!(h.spawner.asked.is_empty());
}

#[test]
fn a_game_the_account_already_plays_elsewhere_is_refused() {
    let mut h = Harness::build(password_client(ALICE, ALICE_PW), |_, _| {});
    h.control.claims.push((ALICE.into(), AMULET.into()));
    h.pump();
    h.type_keys(AMULET_KEY);
    h.assert_shows("You already have Amulet Run (built in) running");
    assert!(h.spawner.asked.is_empty());
    // The lobby is back: the next try works once the other copy is gone.
    h.control.claims.clear();
    h.type_keys(AMULET_KEY);
    h.running_game();
}

#[test]
fn input_typed_while_the_game_starts_reaches_it_once_it_runs() {
    let mut h = Harness::build(alice_exec(AMULET), |_, s| s.channel_window = 64);
    h.spawner.defer = true;
    h.pump();
    assert_eq!(h.client.send_window, 64);
    let keys = [b'k'; 40];
    h.type_keys(&keys);
    // Held, not acknowledged: the window bounds it.
    assert_eq!(h.client.send_window, 24);
    h.answer_spawn(0, Ok(()));
    let game = h.running_game();
    assert_eq!(h.game_mut(game).typed, keys);
    assert_eq!(h.pty_writes, vec![game]);
    assert_eq!(h.client.send_window, 64, "written, then acknowledged");
    assert!(h.received_text().contains(&"k".repeat(40)));
}

#[test]
fn a_failed_spawn_acknowledges_held_input_and_shows_the_refusal_in_the_lobby() {
    let mut h = Harness::build(password_client(ALICE, ALICE_PW), |_, s| {
        s.channel_window = 64
    });
    h.spawner.defer = true;
    h.pump();
    h.type_keys(AMULET_KEY);
    h.type_keys(&[b'x'; 40]);
    assert_eq!(h.client.send_window, 64 - 41);
    h.answer_spawn(
        0,
        Err(SpawnError::Failed("exec failed: no such file".into())),
    );
    h.assert_shows("The game could not be started; the operator has been told.");
    assert_eq!(h.client.send_window, 64);
    assert!(h.games.is_empty() && h.hangups.is_empty());
}

#[test]
fn a_game_refused_for_lack_of_room_says_so_in_the_lobby() {
    let mut h = Harness::build(password_client(ALICE, ALICE_PW), |_, _| {});
    h.spawner.defer = true;
    h.pump();
    h.type_keys(AMULET_KEY);
    h.answer_spawn(
        0,
        Err(SpawnError::NoRoom(
            "The server is full for new games right now.".into(),
        )),
    );
    h.assert_shows("The server is full for new games right now.");
    assert!(h.games.is_empty() && h.hangups.is_empty());
}

#[test]
fn a_failed_spawn_from_exec_ends_the_channel_with_status_1() {
    let mut h = Harness::build(alice_exec(AMULET), |_, _| {});
    h.spawner.fail = Some("fork failed".into());
    h.pump();
    assert_eq!(
        h.received_text(),
        "The game could not be started; the operator has been told.\r\n"
    );
    assert!(h.client.events.contains(&ClientEvent::ExitStatus(1)));
}

#[test]
fn a_spawn_answered_after_the_connection_ended_is_hung_up() {
    let mut h = Harness::build(alice_exec(AMULET), |_, _| {});
    h.spawner.defer = true;
    h.pump();
    let game = h.spawner.pending[0].game;
    h.session.handle_socket_closed(h.now);
    h.pump();
    assert!(h.hangups.is_empty(), "nothing ran yet");
    h.answer_spawn(0, Ok(()));
    assert_eq!(h.hangups, vec![game]);
}

#[test]
fn game_output_waits_for_the_client_window_and_arrives_in_order() {
    let mut h = Harness::new(alice_exec_later(AMULET));
    h.open_channel(0, 1000);
    let game = h.running_game();
    let output: Vec<u8> = (0..5000u32).map(|i| b'a' + (i % 26) as u8).collect();
    h.game_prints(game, &output);
    assert_eq!(h.client.received, output[..1000]);
    assert_eq!(h.session.pty_room(game), 0);
    assert_eq!(h.game_mut(game).output.len(), 4000, "left in the PTY");

    h.client.adjust_window(1500);
    h.pump();
    assert_eq!(h.client.received, output[..2500]);
    h.client.adjust_window(100_000);
    h.pump();
    assert_eq!(h.client.received, output);
    assert_eq!(h.session.pty_room(game), 100_000 - 2500);
}

#[test]
fn output_that_no_longer_fits_waits_on_the_channel_ahead_of_newer_output() {
    let mut h = Harness::new(alice_exec_later(AMULET));
    h.open_channel(0, 1000);
    let game = h.running_game();
    // More than the room (a key exchange or the window took it while the read was in
    // flight): the rest waits on the channel, and the PTY is not read meanwhile.
    let first: Vec<u8> = (0..3000u32).map(|i| b'0' + (i % 10) as u8).collect();
    h.session.handle_pty_output(game, &first, h.now);
    h.pump();
    assert_eq!(h.client.received, first[..1000]);
    h.game_prints(game, b"LATER");
    h.client.adjust_window(1500);
    h.pump();
    assert_eq!(h.session.pty_room(game), 0, "queued output goes first");
    assert_eq!(h.client.received, first[..2500]);
    h.client.adjust_window(1000);
    h.pump();
    let mut all = first.clone();
    all.extend_from_slice(b"LATER");
    assert_eq!(h.client.received, all);
}

#[test]
fn game_output_is_held_while_the_socket_is_behind() {
    let mut h = Harness::new(alice_exec(AMULET));
    let game = h.running_game();
    h.socket_stalled = true;
    let output: Vec<u8> = (0..600_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    h.game_prints(game, &output);
    assert!(h.session.transmit().len() >= MAX_TRANSMIT_BACKLOG);
    assert_eq!(h.session.pty_room(game), 0);
    assert!(!h.game_mut(game).output.is_empty(), "the PTY is not read");
    h.socket_stalled = false;
    h.pump();
    assert_eq!(h.client.received.len(), 600_000);
    assert_eq!(h.client.received, output);
}

#[test]
fn a_second_game_on_another_channel_of_the_connection_is_refused() {
    let mut h = Harness::new(password_client(ALICE, ALICE_PW));
    h.type_keys(AMULET_KEY);
    let game = h.running_game();
    h.open_channel(1, 1 << 20); // a second shell: its lobby
    h.control.claims.clear();
    h.type_keys(AMULET_KEY); // typed into the new channel's lobby
    h.assert_shows("One game per connection");
    assert_eq!(h.spawner.asked.len(), 1);
    assert_eq!(h.running_game(), game);
}

#[test]
fn a_second_exec_while_a_game_runs_is_refused() {
    let mut h = Harness::build(alice_exec(AMULET), |c, _| {
        c.games[1].concurrent_per_account = true;
    });
    h.pump();
    let game = h.running_game();
    h.open_channel(1, 1 << 20); // the client execs the game again on it
    assert!(h
        .received_text()
        .ends_with("One game per connection: finish the game on your other session first.\r\n"));
    assert!(h.client.events.contains(&ClientEvent::ExitStatus(1)));
    assert_eq!(h.running_game(), game);
    assert_eq!(h.spawner.asked.len(), 1);
}

#[test]
fn window_changes_and_signals_reach_the_running_game() {
    let mut h = Harness::new(alice_exec(AMULET));
    let game = h.running_game();
    h.client.window_change(132, 43);
    h.pump();
    assert_eq!(h.resizes.len(), 1);
    assert_eq!((h.resizes[0].1.cols, h.resizes[0].1.rows), (132, 43));
    assert_eq!(h.resizes[0].0, game);

    let mut sig = Vec::new();
    msg::encode_channel_request_header(&mut sig, 0, "signal", false);
    wire::put_string(&mut sig, b"INT");
    h.send_raw(&sig);
    assert_eq!(h.signals, vec![(game, Signal::SIGINT)]);
}

#[test]
fn a_resize_while_the_game_starts_reaches_it_once_it_runs() {
    let mut h = Harness::build(alice_exec(AMULET), |_, _| {});
    h.spawner.defer = true;
    h.pump();
    let spawned_with = h.spawner.pending[0].terminal.size;
    assert_eq!((spawned_with.cols, spawned_with.rows), (80, 24));
    h.client.window_change(100, 30);
    h.pump();
    assert!(h.resizes.is_empty());
    h.answer_spawn(0, Ok(()));
    let game = h.running_game();
    assert_eq!(h.resizes.len(), 1);
    assert_eq!(h.resizes[0].0, game);
    assert_eq!((h.resizes[0].1.cols, h.resizes[0].1.rows), (100, 30));
}

#[test]
fn input_for_a_full_pty_waits_without_more_write_requests() {
    let mut h = Harness::with(alice_exec(AMULET), |_, s| s.channel_window = 64);
    let game = h.running_game();
    h.game_mut(game).full = true;
    h.type_keys(b"abc");
    h.type_keys(b"def");
    assert_eq!(h.pty_writes, vec![game], "one request while input waits");
    assert_eq!(h.session.pty_input(game), b"abcdef");
    assert_eq!(
        h.client.send_window,
        64 - 6,
        "not acknowledged before it is written"
    );

    h.game_mut(game).full = false;
    h.pump();
    assert_eq!(h.game_mut(game).typed, b"abcdef");
    assert!(h.session.pty_input(game).is_empty());
    h.type_keys(b"g");
    assert_eq!(h.pty_writes, vec![game, game]);
    // A partial write leaves the rest first in line.
    h.game_mut(game).full = true;
    h.type_keys(b"hijk");
    h.session.handle_pty_written(game, 2, h.now);
    assert_eq!(h.session.pty_input(game), b"jk");
}

#[test]
fn closing_the_channel_hangs_up_its_game() {
    let mut h = Harness::new(alice_exec(AMULET));
    let game = h.running_game();
    h.close_channel(0);
    assert_eq!(h.hangups, vec![game]);
    assert_eq!(h.session.pty_room(game), 0);
    assert!(h.session.pty_input(game).is_empty());
    assert!(!h.session.is_closed());
}

#[test]
fn the_game_ending_before_its_start_completed_gives_back_held_input() {
    let mut h = Harness::build(alice_exec(AMULET), |_, s| s.channel_window = 64);
    h.spawner.defer = true;
    h.pump();
    let game = h.spawner.pending[0].game;
    h.type_keys(&[b'z'; 40]);
    assert_eq!(h.client.send_window, 24);
    h.end_game(game, Some(ExitStatus::Exited(0)));
    assert_eq!(h.client.send_window, 64);
    assert!(h.client.events.contains(&ClientEvent::ExitStatus(0)));
}

#[test]
fn a_quiet_connection_gives_its_buffers_back_and_typing_afterwards_still_echoes() {
    let mut h = Harness::new(password_client(ALICE, ALICE_PW));
    h.type_keys(AMULET_KEY);
    let game = h.running_game();
    h.type_keys(b"abc");
    assert!(
        h.session.buffer_capacity() > 0,
        "a busy connection keeps its buffers"
    );
    h.advance(super::TRIM_AFTER_MS - 1);
    assert!(
        h.session.buffer_capacity() > 0,
        "trimmed before the quiet time ran out"
    );
    h.advance(2);
    assert_eq!(
        h.session.buffer_capacity(),
        0,
        "a quiet connection holds no buffer"
    );
    h.type_keys(b"xyz");
    assert_eq!(h.game_mut(game).typed, b"abcxyz");
    assert!(h.received_text().contains("xyz"), "no echo after the trim");
}
