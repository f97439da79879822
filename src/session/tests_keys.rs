//! SSH keys through a real SSH client: the keys screen asks about the lobby's own account,
//! and a guest who logged in with a key may bind it to the account it registers.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use super::harness::*;
use super::tests::guest;
use crate::auth::key_fingerprint;
use crate::ssh::client::{Client, ClientAuth, ClientConfig};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// The seed of a key nobody has registered.
const KEY_B: [u8; 32] = [0xB2; 32];

/// A visitor with no account whose client logs in with `KEY_B`, querying first (as OpenSSH).
fn guest_with_key() -> ClientConfig {
    ClientConfig::new(
        "visitor",
        ClientAuth::Ed25519 {
            seed: KEY_B,
            query_first: true,
        },
    )
}

/// Register `name` from the anonymous lobby.
fn register(h: &mut Harness, name: &str) {
    h.type_keys(b"r");
    for answer in [name, "pw-for-a-test", "pw-for-a-test", ""] {
        h.type_keys(format!("{answer}\r").as_bytes());
    }
}

#[test]
fn a_guest_who_logged_in_with_a_key_binds_it_to_the_account_it_registers() {
    let mut h = Harness::new(guest_with_key());
    h.assert_shows("Register a new account");
    register(&mut h, "carol");
    let fp = key_fingerprint(&Client::key_blob(&KEY_B));
    h.assert_shows(&format!("Bind the key {fp}"));
    h.assert_shows("your client offered to this account? (y/n)");
    assert!(!h.control.keys.iter().any(|(n, _)| n == "carol"));
    h.type_keys(b"y");
    h.assert_shows("Your key is bound");
    assert!(
        h.control.seen.iter().any(|r| r == "AddKey(carol)"),
        "{:?}",
        h.control.seen
    );
    assert!(h
        .control
        .keys
        .contains(&("carol".to_string(), Client::key_blob(&KEY_B))));
}

#[test]
fn a_guest_who_logged_in_without_a_key_is_not_asked() {
    let mut h = Harness::new(guest());
    register(&mut h, "dave");
    h.assert_shows("Welcome, dave! Your account is ready.");
    assert!(!h.screen().contains("Bind the key"));
    assert!(!h.control.seen.iter().any(|r| r.starts_with("AddKey")));
}

#[test]
fn the_keys_screen_asks_about_the_account_the_lobby_is_logged_in_as() {
    // The SSH name is a guest's; the lobby logs in as alice: her keys, nobody else's.
    let mut h = Harness::new(guest_with_key());
    h.type_keys(b"l");
    h.type_keys(format!("{ALICE}\r{ALICE_PW}\r").as_bytes());
    h.assert_shows("Logged in as: alice");
    h.type_keys(b"k");
    h.assert_shows("Your SSH keys");
    h.assert_shows(&key_fingerprint(&Client::key_blob(&KEY_A)));
    assert!(h.control.seen.iter().any(|r| r == "ListKeys(alice)"));
    let line = format!(
        "ssh-ed25519 {} alice@desk",
        STANDARD.encode(Client::key_blob(&KEY_B))
    );
    h.type_keys(b"a");
    h.type_keys(format!("{line}\r").as_bytes());
    h.assert_shows("Added key");
    assert!(h.control.seen.iter().any(|r| r == "AddKey(alice)"));
    assert!(h
        .control
        .keys
        .contains(&(ALICE.to_string(), Client::key_blob(&KEY_B))));
    // No bind offer after a lobby login, and the guest key went to no account unasked.
    assert!(!h.control.keys.iter().any(|(n, _)| n == "visitor"));
}
