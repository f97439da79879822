//! The admin screen through a real SSH client: an admin's orders reach the control core with
//! what was chosen and typed, the answers come back to that lobby, and a lobby that is not
//! an admin's asks nothing, whatever it sends.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use super::harness::*;
use super::tests::guest;
use crate::admin::{SessionId, SessionInfo};
use crate::control::{Reply, Request};
use crate::lobby::LobbyAction;

fn connection(slot: u32, user: Option<&str>) -> SessionInfo {
    SessionInfo {
        id: SessionId {
            core: 1,
            slot,
            generation: 4,
        },
        user: user.map(str::to_owned),
        source: "198.51.100.9".parse().unwrap(),
        game: Some("amulet".into()),
        watching: false,
        idle_ms: 2_000,
        connected_ms: 60_000,
    }
}

/// Admin orders (not the list) are held for the test to look at.
fn hold_orders(r: &Request) -> bool {
    matches!(
        r,
        Request::AdminKick { .. }
            | Request::AdminBroadcast { .. }
            | Request::AdminDrain { .. }
            | Request::AdminLock { .. }
    )
}

/// Alice, an admin, logged in with her password, on the admin screen.
fn admin_screen() -> Harness {
    let mut h = Harness::build(password_client(ALICE, ALICE_PW), |_, _| {});
    h.control.admins = vec![ALICE.into()];
    h.control.sessions = vec![connection(1, Some(ALICE)), connection(2, Some("bob"))];
    h.control.hold = hold_orders;
    h.pump();
    h.assert_shows("a) Admin menu");
    h.type_keys(b"a");
    h.assert_shows("Admin: connections");
    h
}

/// The one order held, taken out and answered as the fake control core does.
fn take_order(h: &mut Harness) -> Request {
    assert_eq!(h.control.held.len(), 1, "{:?}", h.control.seen);
    let (token, request) = h.control.held.remove(0);
    let reply = h.control.answer(&request);
    h.answer_held_with(token, reply);
    request
}

fn admin_requests(h: &Harness) -> Vec<&String> {
    h.control
        .seen
        .iter()
        .filter(|r| r.starts_with("Admin"))
        .collect()
}

#[test]
fn an_admins_orders_reach_the_control_core_with_what_was_chosen_and_typed() {
    let mut h = admin_screen();
    assert!(h.control.seen.iter().any(|r| r == "AdminSessions"));
    h.assert_shows("1.2.4");
    h.assert_shows("198.51.100.9");
    h.assert_shows("amulet");

    // Kick bob (the second row, letter c) with a reason.
    h.type_keys(b"ck");
    h.type_keys(b"go to bed\r");
    h.assert_shows("Kick bob (1.2.4)? y/n");
    h.type_keys(b"y");
    match take_order(&mut h) {
        Request::AdminKick { session, reason } => {
            assert_eq!(session, connection(2, None).id);
            assert_eq!(reason, "go to bed");
        }
        other => panic!("{other:?}"),
    }
    h.assert_shows("Kicked bob (1.2.4)");

    h.type_keys(b"bBack in 5 minutes\r");
    match take_order(&mut h) {
        Request::AdminBroadcast { text } => assert_eq!(text, "Back in 5 minutes"),
        other => panic!("{other:?}"),
    }
    h.assert_shows("Sent: every player's lobby shows it.");

    h.type_keys(b"lbob\rcheating\r");
    match take_order(&mut h) {
        Request::AdminLock {
            name,
            locked,
            reason,
        } => {
            assert_eq!(name, "bob");
            assert!(locked);
            assert_eq!(reason.as_deref(), Some("cheating"));
        }
        other => panic!("{other:?}"),
    }
    h.assert_shows("Locked bob");

    h.type_keys(b"ubob\r");
    match take_order(&mut h) {
        Request::AdminLock {
            name,
            locked,
            reason,
        } => {
            assert_eq!(name, "bob");
            assert!(!locked);
            assert_eq!(reason, None);
        }
        other => panic!("{other:?}"),
    }
    h.assert_shows("Unlocked bob.");

    h.type_keys(b"dy");
    match take_order(&mut h) {
        Request::AdminDrain { on } => assert!(on),
        other => panic!("{other:?}"),
    }
    h.assert_shows("New games are stopped");

    h.type_keys(b"ey");
    match take_order(&mut h) {
        Request::AdminDrain { on } => assert!(!on),
        other => panic!("{other:?}"),
    }
    h.assert_shows("New games are allowed again.");
}

#[test]
fn an_answer_the_control_core_could_not_give_says_the_server_is_busy() {
    let mut h = admin_screen();
    h.type_keys(b"dy");
    let (token, _) = h.control.held.remove(0);
    h.answer_held_with(token, Reply::Unavailable);
    h.assert_shows("The server is busy; try again.");
    // And a list that could not be gathered says so too.
    h.control.hold = |r| matches!(r, Request::AdminSessions);
    h.type_keys(b"r");
    let (token, _) = h.control.held.remove(0);
    h.answer_held_with(token, Reply::Unavailable);
    h.assert_shows("The server is busy; try again.");
    h.assert_shows("1.2.4");
}

#[test]
fn a_guest_who_logs_in_as_an_admin_in_the_lobby_gets_the_admin_screen() {
    let mut h = Harness::build(guest(), |_, _| {});
    h.control.admins = vec![ALICE.into()];
    h.pump();
    h.type_keys(b"a");
    assert!(admin_requests(&h).is_empty());
    h.type_keys(b"l");
    h.type_keys(format!("{ALICE}\r{ALICE_PW}\r").as_bytes());
    h.assert_shows("a) Admin menu");
    h.type_keys(b"a");
    assert_eq!(admin_requests(&h), vec!["AdminSessions"]);
    h.assert_shows("No connections.");
}

#[test]
fn a_lobby_that_is_not_an_admins_asks_nothing_whatever_it_sends() {
    let mut h = Harness::new(password_client(BOB, BOB_PW));
    h.assert_shows("Logged in as: bob");
    assert!(!h.screen().contains("Admin menu"));
    h.type_keys(b"aA");
    assert!(admin_requests(&h).is_empty());
    // Even an admin action the lobby never makes for bob is refused by the session.
    let id = h.session.channels.ids().next().unwrap();
    for action in [
        LobbyAction::AdminSessions,
        LobbyAction::AdminKick {
            session: connection(1, None).id,
            reason: String::new(),
        },
        LobbyAction::AdminBroadcast { text: "hi".into() },
        LobbyAction::AdminDrain { on: true },
        LobbyAction::AdminLock {
            name: ALICE.into(),
            locked: true,
            reason: None,
        },
    ] {
        h.session.admin_action(id, action);
        h.pump();
    }
    assert!(admin_requests(&h).is_empty(), "{:?}", h.control.seen);
    h.assert_shows("Logged in as: bob");
}
