//! The options editor through a real SSH client: the requests name the account the lobby is
//! logged in as (not the SSH name) and the game chosen, and answers reach that lobby.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use super::harness::*;
use super::tests::guest;

#[test]
fn the_options_editor_reads_and_writes_the_file_of_the_account_the_lobby_is_logged_in_as() {
    // The SSH name is a guest's; the lobby logs in as bob: his file, nobody else's.
    let mut h = Harness::new(guest());
    h.control
        .options
        .push((ALICE.into(), "nethack".into(), "alice's own\n".into()));
    h.type_keys(b"l");
    h.type_keys(format!("{BOB}\r{BOB_PW}\r").as_bytes());
    h.assert_shows("Logged in as: bob");
    h.type_keys(b"o");
    // The default configuration: NetHack is the one game with an rc file.
    h.assert_shows("Options for NetHack");
    h.assert_shows("no NetHack options file yet");
    assert!(
        h.control.seen.iter().any(|r| r == "ReadOptions(bob)"),
        "{:?}",
        h.control.seen
    );
    assert!(!h.screen().contains("alice's own"));
    h.type_keys(b"aOPTIONS=bob\r\x03s");
    h.assert_shows("Your NetHack options were saved.");
    assert!(h.control.seen.iter().any(|r| r == "WriteOptions(bob)"));
    assert!(h.control.options.contains(&(
        BOB.into(),
        "nethack".into(),
        "OPTIONS=default\nOPTIONS=bob\n".into()
    )));
    // Alice's file was not touched.
    assert!(h
        .control
        .options
        .contains(&(ALICE.into(), "nethack".into(), "alice's own\n".into())));
}

#[test]
fn a_guest_lobby_asks_for_no_options() {
    let mut h = Harness::new(guest());
    h.assert_shows("Register a new account");
    h.type_keys(b"o");
    assert!(!h.control.seen.iter().any(|r| r.contains("Options")));
}
