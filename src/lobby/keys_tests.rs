//! The keys screen and the bind-at-registration question through the whole lobby: keys in,
//! screen (rendered by `vt100`) and actions out.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::MAX_PASTE;
use crate::auth::{key_fingerprint, MAX_KEYS_PER_ACCOUNT};
use crate::lobby::tests::Harness;
use crate::lobby::tests::{actions, assert_not_shows, assert_shows, row_of};
use crate::lobby::{KeyEntry, LobbyAction, UserInfo};

fn alice() -> Option<UserInfo> {
    Some(UserInfo {
        name: "alice".into(),
        admin: false,
        running: Vec::new(),
    })
}

/// A well-formed ssh-ed25519 key blob made of byte `n`.
fn blob(n: u8) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&11u32.to_be_bytes());
    b.extend_from_slice(b"ssh-ed25519");
    b.extend_from_slice(&32u32.to_be_bytes());
    b.extend_from_slice(&[n; 32]);
    b
}

/// The `.pub` line of key `n`.
fn line(n: u8, comment: &str) -> String {
    format!("ssh-ed25519 {} {comment}", STANDARD.encode(blob(n)))
}

fn entry(n: u8, comment: &str, added_unix: u64) -> KeyEntry {
    KeyEntry {
        key_type: "ssh-ed25519".into(),
        fingerprint: key_fingerprint(&blob(n)),
        comment: comment.into(),
        added_unix,
    }
}

/// `k`, then the list arrives.
fn open(t: &mut Harness, keys: Vec<KeyEntry>) {
    t.send(b"k");
    assert_eq!(actions(t), vec![LobbyAction::ListKeys]);
    t.lobby.handle_keys_result(Ok(keys));
    t.flush();
}

#[test]
fn k_lists_the_keys_with_type_fingerprint_date_and_comment_and_q_goes_back() {
    let mut t = Harness::sized(alice(), 80, 24);
    assert_shows(&t, "k) Manage SSH keys");
    t.send(b"k");
    assert_eq!(actions(&mut t), vec![LobbyAction::ListKeys]);
    assert_shows(&t, "Loading your keys");
    // Nothing is acted on until the list is there.
    t.send(b"ad");
    assert!(actions(&mut t).is_empty());
    t.lobby.handle_keys_result(Ok(vec![
        entry(1, "alice@laptop", 1_796_000_000),
        entry(2, "old", 0),
    ]));
    t.flush();
    assert_shows(&t, "Your SSH keys");
    assert_shows(&t, "2 of at most 16");
    assert_shows(&t, &key_fingerprint(&blob(1)));
    assert_shows(&t, &key_fingerprint(&blob(2)));
    assert_shows(&t, "ssh-ed25519");
    assert_shows(&t, "alice@laptop");
    assert_shows(&t, "added 2026-11-30");
    // A record from before the date was kept.
    assert_shows(&t, "added —");
    assert_not_shows(&t, "Loading");
    t.send(b"q");
    assert_shows(&t, "k) Manage SSH keys");
    assert!(actions(&mut t).is_empty());
}

#[test]
fn an_account_without_keys_is_told_how_to_add_one() {
    let mut t = Harness::sized(alice(), 80, 24);
    open(&mut t, vec![]);
    assert_shows(&t, "No SSH keys yet");
    t.send(b"d");
    assert_shows(&t, "There is no key to remove.");
    assert!(actions(&mut t).is_empty());
}

#[test]
fn a_pasted_key_line_is_sent_and_the_new_list_is_shown() {
    let mut t = Harness::sized(alice(), 80, 24);
    open(&mut t, vec![entry(1, "laptop", 1)]);
    t.send(b"a");
    assert_shows(&t, "Paste one public key line");
    assert_shows(&t, "Key:");
    let pasted = line(2, "desk top");
    t.send(pasted.as_bytes());
    // The end of the line being typed is shown.
    assert_shows(&t, "desk top");
    t.send(b"\r");
    assert_eq!(
        actions(&mut t),
        vec![LobbyAction::AddKey {
            line: pasted.clone()
        }]
    );
    assert_shows(&t, "Please wait");
    t.send(b"dy");
    assert!(
        actions(&mut t).is_empty(),
        "input is discarded while waiting"
    );
    t.lobby
        .handle_keys_result(Ok(vec![entry(1, "laptop", 1), entry(2, "desk top", 2)]));
    t.flush();
    assert_shows(&t, &format!("Added key {}.", key_fingerprint(&blob(2))));
    assert_shows(&t, "desk top");
    assert_shows(&t, "=>");
}

#[test]
fn garbage_duplicates_and_over_long_lines_are_refused_with_one_line_messages() {
    let mut t = Harness::sized(alice(), 80, 24);
    open(&mut t, vec![entry(1, "laptop", 1)]);
    t.send(b"a");
    t.send(b"hello world\r");
    assert_shows(&t, "Not added: unsupported key type 'hello'");
    // Still at the prompt, emptied, ready for another try.
    assert_shows(&t, "Key:");
    assert_not_shows(&t, "Key: hello");
    t.send(b"ssh-ed25519 !!!\r");
    assert_shows(&t, "Not added: key data is not valid base64.");
    t.send(b"ssh-ed25519 AAAA\r");
    assert_shows(&t, "Not added: malformed ssh-ed25519 key");
    t.send(format!("{}\r", line(1, "again")).as_bytes());
    assert_shows(
        &t,
        &format!("Already on your account: {}", key_fingerprint(&blob(1))),
    );
    // A paste longer than any key line: said once, and Enter adds nothing.
    t.send("A".repeat(MAX_PASTE + 100).as_bytes());
    assert_shows(&t, "That is longer than any public key line");
    t.send(b"\r");
    assert_shows(&t, "too long to be a public key");
    assert!(actions(&mut t).is_empty());
    // Escape leaves the prompt (after the pause that tells it from an arrow key).
    t.send(b"\x1b");
    t.lobby.handle_input_idle();
    t.flush();
    assert_shows(&t, "=>");
    assert!(actions(&mut t).is_empty());
}

#[test]
fn a_pasted_private_key_is_swallowed_unechoed_and_its_lines_are_not_commands() {
    let mut t = Harness::sized(alice(), 80, 24);
    open(&mut t, vec![entry(1, "laptop", 1), entry(2, "desk", 2)]);
    t.send(b"a");
    let body = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW";
    // Lines that would mean "remove, yes" or "quit" if they reached the list.
    let private = format!(
        "-----BEGIN OPENSSH PRIVATE KEY-----\n{body}\nd\ny\nq\n-----END OPENSSH PRIVATE KEY-----\n"
    );
    let before = t.written.len();
    t.send(private.as_bytes());
    assert!(actions(&mut t).is_empty(), "nothing was sent");
    let shown = String::from_utf8_lossy(&t.written[before..]).into_owned();
    assert!(!shown.contains(body), "the private key was echoed");
    assert_shows(&t, "That was a private key");
    assert_shows(&t, "Key:");
    // Both keys are still listed and the prompt still takes a public line.
    assert_shows(&t, "2 of at most 16");
    t.send(format!("{}\r", line(3, "")).as_bytes());
    assert!(matches!(
        actions(&mut t).as_slice(),
        [LobbyAction::AddKey { .. }]
    ));
}

#[test]
fn the_key_limit_is_said_before_a_paste() {
    let mut t = Harness::sized(alice(), 80, 24);
    let full: Vec<KeyEntry> = (0..MAX_KEYS_PER_ACCOUNT)
        .map(|i| entry(u8::try_from(i).unwrap_or(0), "k", 1))
        .collect();
    open(&mut t, full);
    t.send(b"a");
    assert_shows(&t, "An account can have at most 16 keys");
    assert_not_shows(&t, "Key:");
}

#[test]
fn a_list_that_cannot_be_read_says_so_and_q_still_goes_back() {
    let mut t = Harness::sized(alice(), 80, 24);
    t.send(b"k");
    assert_eq!(actions(&mut t), vec![LobbyAction::ListKeys]);
    t.lobby.handle_keys_result(Err(
        "The account store is unavailable; try again later.".into()
    ));
    t.flush();
    assert_shows(&t, "The account store is unavailable");
    assert_shows(&t, "Your keys could not be listed");
    assert_not_shows(&t, "Loading");
    t.send(b"q");
    assert_shows(&t, "k) Manage SSH keys");
}

#[test]
fn a_refused_add_keeps_the_prompt_for_another_try() {
    let mut t = Harness::sized(alice(), 80, 24);
    open(&mut t, vec![]);
    t.send(b"a");
    t.send(format!("{}\r", line(4, "x")).as_bytes());
    assert_eq!(actions(&mut t).len(), 1);
    t.lobby
        .handle_keys_result(Err("The server is busy; try again.".into()));
    t.flush();
    assert_shows(&t, "The server is busy; try again.");
    assert_shows(&t, "Key:");
    t.send(format!("{}\r", line(4, "x")).as_bytes());
    assert_eq!(actions(&mut t).len(), 1);
}

#[test]
fn removing_a_key_needs_a_selection_and_a_deliberate_y() {
    let mut t = Harness::sized(alice(), 80, 24);
    open(
        &mut t,
        vec![entry(1, "one", 1), entry(2, "two", 2), entry(3, "three", 3)],
    );
    let fp2 = key_fingerprint(&blob(2));
    assert!(t.screen().contains(">  1) ssh-ed25519"));
    t.send(b"j");
    let marked = row_of(&t, ">  2)").expect("the second key is selected");
    assert_eq!(row_of(&t, &fp2), Some(marked));
    t.send(b"d");
    assert_shows(&t, &format!("Remove key 2 ({fp2})? y/n"));
    t.send(b"n");
    assert_shows(&t, "Nothing was removed.");
    assert!(actions(&mut t).is_empty());
    // `x` works too, and the number keys select directly.
    t.send(b"3");
    assert!(row_of(&t, ">  3)").is_some());
    t.send(b"k");
    t.send(b"x");
    t.send(b"y");
    assert_eq!(
        actions(&mut t),
        vec![LobbyAction::RemoveKey {
            fingerprint: fp2.clone()
        }]
    );
    t.lobby
        .handle_keys_result(Ok(vec![entry(1, "one", 1), entry(3, "three", 3)]));
    t.flush();
    assert_shows(&t, &format!("Removed key {fp2}."));
    assert_not_shows(&t, "two");
    // The selection stays within the shorter list.
    t.send(b"jjjd");
    assert_shows(&t, "Remove key 2 (");
}

#[test]
fn hostile_comments_are_drawn_sanitised() {
    let mut t = Harness::sized(alice(), 80, 24);
    let hostile = "evil\x1b[2J\x1b]0;pwned\x07\u{9b}31mred\r\nline";
    let mut key = entry(1, hostile, 1);
    key.key_type = "ssh-ed25519\x1b[5m".into();
    let before = t.written.len();
    open(&mut t, vec![key]);
    let written = &t.written[before..];
    let find = |needle: &[u8]| written.windows(needle.len()).any(|w| w == needle);
    assert!(!find(b"\x1b[2J\x1b]"), "a clear-screen from the comment");
    assert!(!find(b"\x1b]0;pwned"), "a title change from the comment");
    assert!(!find("\u{9b}".as_bytes()), "a C1 control from the comment");
    assert!(!find(b"\x1b[5m"), "blink from the key type");
    assert_shows(&t, "evil[2J]0;pwned31mredline");
    assert_shows(&t, "Your SSH keys");
}

#[test]
fn many_keys_scroll_to_keep_the_selection_in_view() {
    let mut t = Harness::sized(alice(), 80, 24);
    let keys: Vec<KeyEntry> = (1..=12).map(|i| entry(i, &format!("c{i}"), 1)).collect();
    open(&mut t, keys);
    assert_shows(&t, "showing 1-9");
    assert_not_shows(&t, "c12");
    t.send(b"9jjj");
    assert_shows(&t, "showing 4-12");
    assert!(row_of(&t, "> 12)").is_some());
    assert_shows(&t, "c12");
    assert!(t.screen().lines().count() <= 24);
}

/// The anonymous lobby, registered as carol; returns the harness at the moment the
/// registration succeeded.
fn registered(offered: Option<String>) -> Harness {
    let mut t = Harness::sized(None, 80, 24);
    t.lobby.set_offered_key(offered);
    t.send(b"r");
    for answer in ["carol", "pw-carol-1", "pw-carol-1", ""] {
        t.send(answer.as_bytes());
        t.send(b"\r");
    }
    assert!(matches!(
        actions(&mut t).as_slice(),
        [LobbyAction::Register { .. }]
    ));
    t.lobby.handle_register_result(Ok(UserInfo {
        name: "carol".into(),
        admin: false,
        running: Vec::new(),
    }));
    t.flush();
    t
}

#[test]
fn after_registering_a_guest_is_asked_to_bind_the_key_it_logged_in_with() {
    let fp = key_fingerprint(&blob(7));
    let mut t = registered(Some(fp.clone()));
    assert_shows(&t, "Welcome, carol!");
    assert_shows(&t, &format!("Bind the key {fp}"));
    assert_shows(&t, "your client offered to this account? (y/n)");
    t.send(b"p");
    assert!(actions(&mut t).is_empty(), "only y or n answers");
    t.send(b"y");
    assert_eq!(actions(&mut t), vec![LobbyAction::BindOfferedKey]);
    assert_shows(&t, "Binding your key...");
    t.lobby.handle_keys_result(Ok(vec![entry(7, "", 5)]));
    t.flush();
    assert_shows(&t, "Your key is bound");
    assert_shows(&t, "Logged in as: carol");
}

#[test]
fn declining_the_offer_binds_nothing_and_shows_the_welcome() {
    let mut t = registered(Some(key_fingerprint(&blob(7))));
    t.send(b"n");
    assert!(actions(&mut t).is_empty());
    assert_shows(&t, "Welcome, carol! Your account is ready.");
    assert_shows(&t, "Logged in as: carol");
    // A failed bind says so and leaves the account as it is.
    let mut t = registered(Some(key_fingerprint(&blob(7))));
    t.send(b"Y");
    assert_eq!(actions(&mut t), vec![LobbyAction::BindOfferedKey]);
    t.lobby
        .handle_keys_result(Err("The server is busy; try again.".into()));
    t.flush();
    assert_shows(&t, "The key was not bound: The server is busy");
}

#[test]
fn without_an_offered_key_registration_goes_straight_to_the_menu() {
    let t = registered(None);
    assert_shows(&t, "Welcome, carol! Your account is ready.");
    assert_not_shows(&t, "Bind the key");
}
