//! Behaviour tests for the whole lobby: bytes in, actions and a rendered screen out. The
//! screen is rendered with the `vt100` crate so assertions are about what a player sees.

use super::*;

/// A lobby wired to an emulated terminal.
pub(in crate::lobby) struct Harness {
    /// The lobby under test.
    pub(in crate::lobby) lobby: Lobby,
    /// The terminal the output is rendered into.
    term: vt100::Parser,
    /// Every byte the lobby wrote, to search for leaks.
    pub(in crate::lobby) written: Vec<u8>,
}

impl Harness {
    fn new(user: Option<UserInfo>) -> Harness {
        Harness::sized(user, 80, 24)
    }

    pub(in crate::lobby) fn sized(user: Option<UserInfo>, cols: u16, rows: u16) -> Harness {
        let mut h = Harness {
            lobby: Lobby::new(context(), user, cols, rows),
            term: vt100::Parser::new(rows, cols, 0),
            written: Vec::new(),
        };
        h.flush();
        h
    }

    /// Types `bytes` in one chunk and renders the result.
    pub(in crate::lobby) fn send(&mut self, bytes: &[u8]) {
        self.lobby.handle_input(bytes);
        self.flush();
    }

    /// Types a line followed by Enter (CR, as terminals send it).
    fn line(&mut self, text: &str) {
        self.send(text.as_bytes());
        self.send(b"\r");
    }

    pub(in crate::lobby) fn resize(&mut self, cols: u16, rows: u16) {
        self.term.screen_mut().set_size(rows, cols);
        self.lobby.handle_resize(cols, rows);
        self.flush();
    }

    /// Moves pending output into the terminal; returns how many bytes there were.
    pub(in crate::lobby) fn flush(&mut self) -> usize {
        let mut out = Vec::new();
        self.lobby.poll_output(&mut out);
        self.term.process(&out);
        self.written.extend_from_slice(&out);
        out.len()
    }

    pub(in crate::lobby) fn screen(&self) -> String {
        self.term.screen().contents()
    }

    fn row(&self, n: u16) -> String {
        let cols = self.term.screen().size().1;
        self.term
            .screen()
            .rows(0, cols)
            .nth(usize::from(n))
            .unwrap_or_default()
    }

    /// The row the text is on, if it is on screen.
    fn find_row(&self, text: &str) -> Option<u16> {
        (0..self.term.screen().size().0).find(|&r| self.row(r).contains(text))
    }

    /// The next action, past the logged-in lobby's questions for the player's running
    /// games (tested on their own).
    pub(in crate::lobby) fn action(&mut self) -> Option<LobbyAction> {
        loop {
            match self.lobby.poll_action() {
                Some(LobbyAction::ListMyGames) => continue,
                other => return other,
            }
        }
    }

    fn assert_shows(&self, text: &str) {
        let screen = self.screen();
        assert!(screen.contains(text), "{text:?} not on screen:\n{screen}");
    }

    fn assert_not_shows(&self, text: &str) {
        let screen = self.screen();
        assert!(!screen.contains(text), "{text:?} on screen:\n{screen}");
    }
}

pub(in crate::lobby) fn context() -> LobbyContext {
    LobbyContext {
        server_id: "testgate".into(),
        banner: "\x1b[1mWelcome to $SERVERID, $USERNAME!\x1b[0m\n$DATE: $PLAYERS playing, $WATCHERS watching".into(),
        games: vec![
            GameEntry {
                id: "nh".into(),
                name: "NetHack 3.6".into(),
                key: 'p',
                available: true,
                options: true,
            },
            GameEntry {
                id: "crawl".into(),
                name: "Crawl".into(),
                key: 'd',
                available: false,
                options: false,
            },
        ],
        players: 7,
        watchers: 2,
        date: "2025-06-01".into(),
    }
}

fn alice() -> UserInfo {
    UserInfo {
        name: "alice".into(),
        admin: false,
        running: Vec::new(),
    }
}

fn password_of(action: &LobbyAction) -> Option<&str> {
    match action {
        LobbyAction::Login { password, .. } | LobbyAction::Register { password, .. } => {
            Some(password.as_str())
        }
        LobbyAction::ChangePassword { new_password } => Some(new_password.as_str()),
        _ => None,
    }
}

#[test]
fn a_new_anonymous_lobby_draws_banner_and_anonymous_menu() {
    let h = Harness::new(None);
    assert!(h.row(0).contains("Welcome to testgate, guest!"));
    h.assert_shows("Not logged in.");
    h.assert_shows("l) Log in");
    h.assert_shows("r) Register a new account");
    h.assert_shows("q) Quit");
    h.assert_not_shows("Play");
    assert!(h.written.starts_with(b"\x1b[0m"));
}

#[test]
fn banner_substitutes_every_variable() {
    let h = Harness::new(Some(alice()));
    assert!(
        h.row(0).contains("Welcome to testgate, alice!"),
        "{}",
        h.row(0)
    );
    assert!(h.row(1).contains("2025-06-01: 7 playing, 2 watching"));
}

#[test]
fn banner_colour_reaches_the_terminal() {
    let h = Harness::new(None);
    let cell = h.term.screen().cell(0, 0);
    assert!(cell.is_some_and(|c| c.bold()));
}

#[test]
fn logged_in_menu_lists_games_and_marks_unavailable_ones() {
    let h = Harness::new(Some(alice()));
    h.assert_shows("Logged in as: alice");
    let nethack = h.find_row("p) Play NetHack 3.6");
    assert!(nethack.is_some());
    let crawl = h.find_row("d) Play Crawl (unavailable)");
    assert!(crawl.is_some());
    assert!(!h.row(nethack.unwrap_or_default()).contains("unavailable"));
    h.assert_shows("c) Change password");
    h.assert_shows("e) Change e-mail address");
    h.assert_not_shows("a) Admin");
}

#[test]
fn menu_cursor_rests_after_the_prompt_arrow() {
    let h = Harness::new(None);
    let (row, col) = h.term.screen().cursor_position();
    assert!(h.row(row).trim_end().ends_with("=>"), "{:?}", h.row(row));
    assert_eq!(usize::from(col), h.row(row).trim_end().len() + 1);
}

#[test]
fn login_flow_sends_name_and_password_and_success_shows_the_logged_in_menu() {
    let mut h = Harness::new(None);
    h.send(b"l");
    h.assert_shows("Log in");
    h.assert_shows("Name:");
    h.line("alice");
    h.assert_shows("Name: alice");
    h.assert_shows("Password:");
    h.line("hunter22");
    let action = h.action();
    assert!(
        matches!(&action, Some(LobbyAction::Login { name, password })
            if name == "alice" && password.as_str() == "hunter22"),
        "{action:?}"
    );
    assert!(h.action().is_none());
    h.assert_shows("Checking your name and password...");
    assert!(h.term.screen().hide_cursor());
    h.lobby.handle_login_result(Ok(alice()));
    h.flush();
    h.assert_shows("Logged in as: alice");
    h.assert_shows("p) Play NetHack 3.6");
    assert!(!h.term.screen().hide_cursor());
    assert_eq!(h.lobby.user(), Some(&alice()));
}

#[test]
fn failed_login_returns_to_the_anonymous_menu_with_the_reason() {
    let mut h = Harness::new(None);
    h.send(b"l");
    h.line("alice");
    h.line("wrong");
    assert!(matches!(h.action(), Some(LobbyAction::Login { .. })));
    h.lobby
        .handle_login_result(Err("Wrong name or password.".into()));
    h.flush();
    h.assert_shows("Wrong name or password.");
    h.assert_shows("l) Log in");
    assert!(h.lobby.user().is_none());
}

#[test]
fn three_failed_logins_on_one_connection_end_the_lobby() {
    let mut h = Harness::new(None);
    for attempt in 0..3 {
        h.send(b"l");
        h.line("alice");
        h.line("wrong");
        assert!(matches!(h.action(), Some(LobbyAction::Login { .. })));
        h.lobby
            .handle_login_result(Err("Wrong name or password.".into()));
        h.flush();
        if attempt < 2 {
            h.assert_shows("Wrong name or password.");
        }
    }
    assert_eq!(h.action(), Some(LobbyAction::Quit));
    assert!(h.lobby.is_finished());
    h.assert_shows("Too many failed logins.");
}

#[test]
fn the_failed_login_limit_is_the_operators_to_set() {
    let mut h = Harness::new(None);
    h.lobby.set_attempt_limits(1, 3);
    h.send(b"l");
    h.line("alice");
    h.line("wrong");
    assert!(matches!(h.action(), Some(LobbyAction::Login { .. })));
    h.lobby
        .handle_login_result(Err("Wrong name or password.".into()));
    assert_eq!(h.action(), Some(LobbyAction::Quit));
}

#[test]
fn three_failed_registrations_on_one_connection_end_the_lobby() {
    let mut h = Harness::new(None);
    for _ in 0..3 {
        h.send(b"r");
        h.line("bob");
        h.line("first-secret");
        h.line("first-secret");
        h.line("");
        assert!(matches!(h.action(), Some(LobbyAction::Register { .. })));
        h.lobby
            .handle_register_result(Err("The name 'bob' is taken.".into()));
        h.flush();
    }
    assert_eq!(h.action(), Some(LobbyAction::Quit));
    h.assert_shows("Too many failed registrations.");
}

#[test]
fn register_with_mismatched_passwords_asks_again_then_succeeds() {
    let mut h = Harness::new(None);
    h.send(b"r");
    h.assert_shows("Register a new account");
    h.line("bob");
    h.line("first-secret");
    h.line("other-secret");
    h.assert_shows("The passwords do not match");
    assert!(h.action().is_none());
    // Back on the first password prompt, not the second.
    let (row, _) = h.term.screen().cursor_position();
    assert!(h.row(row).contains("Password: "), "{:?}", h.row(row));
    assert!(!h.row(row).contains("again"));
    h.line("good-secret");
    h.assert_not_shows("do not match");
    h.line("good-secret");
    h.assert_shows("E-mail (optional, Enter skips):");
    h.line("");
    let action = h.action();
    assert!(
        matches!(&action, Some(LobbyAction::Register { name, password, email })
            if name == "bob" && password.as_str() == "good-secret" && email.is_none()),
        "{action:?}"
    );
    h.assert_shows("Creating your account...");
    h.lobby.handle_register_result(Ok(UserInfo {
        name: "bob".into(),
        admin: false,
        running: Vec::new(),
    }));
    h.flush();
    h.assert_shows("Logged in as: bob");
    h.assert_shows("Welcome, bob! Your account is ready.");
    assert_eq!(h.lobby.user().map(|u| u.name.as_str()), Some("bob"));
}

#[test]
fn register_passes_an_email_when_one_is_given() {
    let mut h = Harness::new(None);
    h.send(b"r");
    h.line("bob");
    h.line("pw");
    h.line("pw");
    h.line("bob@example.org");
    let action = h.action();
    assert!(
        matches!(&action, Some(LobbyAction::Register { email: Some(e), .. }) if e == "bob@example.org"),
        "{action:?}"
    );
}

#[test]
fn failed_registration_shows_the_reason_in_the_anonymous_menu() {
    let mut h = Harness::new(None);
    h.send(b"r");
    h.line("bob");
    h.line("pw");
    h.line("pw");
    h.line("");
    assert!(h.action().is_some());
    h.lobby
        .handle_register_result(Err("That name is taken.".into()));
    h.flush();
    h.assert_shows("That name is taken.");
    h.assert_shows("Not logged in.");
}

#[test]
fn passwords_never_appear_in_the_output() {
    let mut h = Harness::new(None);
    h.send(b"r");
    h.line("bob");
    h.line("Sekr1tPass");
    h.line("Sekr1tPasX");
    h.line("Sekr1tPass");
    h.line("Sekr1tPass");
    h.line("");
    let action = h.action();
    assert_eq!(action.as_ref().and_then(password_of), Some("Sekr1tPass"));
    h.lobby.handle_register_result(Ok(alice()));
    h.flush();
    h.send(b"c");
    h.line("NewPassw0rd");
    h.line("NewPassw0rd");
    assert_eq!(
        h.action().as_ref().and_then(password_of),
        Some("NewPassw0rd")
    );
    let written = String::from_utf8_lossy(&h.written);
    for secret in ["Sekr1t", "PasX", "NewPassw0rd", "Passw0"] {
        assert!(!written.contains(secret), "{secret} leaked");
    }
    assert!(!written.contains('*'), "no echo at all, not even stars");
}

#[test]
fn typing_a_password_writes_nothing_at_all() {
    let mut h = Harness::new(None);
    h.send(b"l");
    h.line("alice");
    assert_eq!(h.flush(), 0);
    for b in b"secret\x7f\x15x" {
        h.lobby.handle_input(&[*b]);
        assert_eq!(h.flush(), 0, "output after byte {b:#x}");
    }
}

#[test]
fn debug_output_redacts_passwords() {
    let mut h = Harness::new(None);
    h.send(b"l");
    h.line("alice");
    h.send(b"topsecret");
    let lobby_debug = format!("{:?}", h.lobby);
    assert!(!lobby_debug.contains("topsecret"), "{lobby_debug}");
    h.send(b"\r");
    let action = h.action();
    let debug = format!("{action:?}");
    assert!(debug.contains("alice"));
    assert!(!debug.contains("topsecret"), "{debug}");
    assert!(debug.contains("redacted"));
    let change = LobbyAction::ChangePassword {
        new_password: Zeroizing::new("s3cr3t".into()),
    };
    assert!(!format!("{change:?}").contains("s3cr3t"));
}

/// A session exercising menus, prompts, escapes, line endings and edits.
const SESSION: &[u8] =
    b"\x1b[A\x1bOBx\x1b[1;5Cr\x1b]11;rgb:0/0/0\x07b\xc3\xa9ob\x7f\x08ob\r\npw1\r\0pw1\rme@x.org\n";

#[test]
fn byte_at_a_time_input_equals_whole_chunk_input() {
    let mut whole = Harness::new(None);
    whole.send(SESSION);
    let mut single = Harness::new(None);
    for b in SESSION {
        single.send(&[*b]);
    }
    assert_eq!(whole.screen(), single.screen());
    assert_eq!(
        whole.term.screen().cursor_position(),
        single.term.screen().cursor_position()
    );
    let a = whole.action();
    let b = single.action();
    assert_eq!(a, b);
    assert!(
        matches!(&a, Some(LobbyAction::Register { name, password, email })
            if name == "bob" && password.as_str() == "pw1" && email.as_deref() == Some("me@x.org")),
        "{a:?}"
    );
}

#[test]
fn arrow_and_other_sequences_are_not_read_as_menu_keys() {
    let mut h = Harness::new(None);
    let before = h.screen();
    // Final bytes `q`, `l`, `r` would be menu keys if misread.
    h.send(b"\x1bOq\x1b[?25l\x1b[1;2r\x1b[A\x1b[B\x1b[C\x1b[D\x1bOA\x1b[3~");
    assert!(h.action().is_none());
    assert!(!h.lobby.is_finished());
    assert_eq!(h.screen(), before);
    // Split in the middle, the sequence is still swallowed.
    h.send(b"\x1b");
    h.send(b"[");
    h.send(b"1;5");
    h.send(b"q");
    assert!(h.action().is_none());
    assert_eq!(h.screen(), before);
}

#[test]
fn arrow_keys_in_a_prompt_do_not_type_anything() {
    let mut h = Harness::new(None);
    h.send(b"l");
    h.send(b"al\x1b[D\x1b[Dice");
    h.assert_shows("Name: alice");
}

#[test]
fn small_terminal_gets_a_size_message_and_resize_brings_the_menu_back() {
    let mut h = Harness::sized(None, 60, 20);
    h.assert_shows("needs at least 80x24, yours is 60x20");
    h.assert_not_shows("Log in");
    // Menu keys other than quit do nothing while too small.
    h.send(b"l");
    h.assert_shows("yours is 60x20");
    h.resize(79, 30);
    h.assert_shows("yours is 79x30");
    h.resize(80, 24);
    h.assert_not_shows("too small");
    h.assert_shows("l) Log in");
    h.resize(100, 10);
    h.assert_shows("yours is 100x10");
    h.send(b"q");
    assert_eq!(h.action(), Some(LobbyAction::Quit));
}

#[test]
fn tiny_terminal_still_shows_the_size_in_readable_text() {
    let h = Harness::sized(None, 20, 5);
    let text: String = h.screen().split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(text.contains("20x5"), "{text}");
}

#[test]
fn shrinking_during_a_prompt_keeps_what_was_typed() {
    let mut h = Harness::new(None);
    h.send(b"l");
    h.send(b"ali");
    h.resize(40, 10);
    h.assert_shows("too small");
    h.send(b"zzz");
    h.resize(80, 24);
    h.assert_shows("Name: ali");
    h.assert_not_shows("zzz");
    h.send(b"ce\r");
    h.assert_shows("Name: alice");
}

#[test]
fn every_resize_redraws_the_screen() {
    let mut h = Harness::new(None);
    assert_eq!(h.flush(), 0);
    h.lobby.handle_resize(80, 24);
    assert!(h.flush() > 0);
    h.lobby.handle_resize(120, 40);
    assert!(h.flush() > 0);
    h.term.screen_mut().set_size(40, 120);
    h.lobby.handle_resize(120, 40);
    h.flush();
    h.assert_shows("l) Log in");
}

#[test]
fn long_banner_makes_room_for_the_menu() {
    let mut ctx = context();
    ctx.banner = (0..40).map(|i| format!("banner line {i}\n")).collect();
    let mut h = Harness::new(Some(alice()));
    h.lobby.handle_context(ctx);
    h.flush();
    h.assert_shows("banner line 0");
    h.assert_shows("q) Quit");
    h.assert_shows("=>");
    let long = "x".repeat(200);
    let mut ctx = context();
    ctx.banner = long;
    h.lobby.handle_context(ctx);
    h.flush();
    assert_eq!(h.row(0).len(), 80);
    assert!(!h.row(1).contains('x'), "banner line must not wrap");
}

#[test]
fn unavailable_game_cannot_be_played() {
    let mut h = Harness::new(Some(alice()));
    h.send(b"d");
    assert!(h.action().is_none());
    h.assert_shows("Crawl is unavailable right now.");
    h.assert_shows("Logged in as: alice");
}

#[test]
fn playing_a_game_hands_over_the_terminal_until_the_game_ends() {
    let mut h = Harness::new(Some(alice()));
    h.send(b"P");
    assert_eq!(
        h.action(),
        Some(LobbyAction::Play {
            game_id: "nh".into()
        })
    );
    // While the game runs the lobby neither reads nor draws.
    h.send(b"q");
    assert!(h.action().is_none());
    assert!(!h.lobby.is_finished());
    h.lobby.handle_resize(100, 30);
    assert_eq!(h.flush(), 0);
    h.term.screen_mut().set_size(30, 100);
    h.term.process(b"\x1b[?25l\x1b[5;5Hgame junk\x1b[1;31m");
    h.lobby.handle_game_ended("Your game was saved.".into());
    h.flush();
    h.assert_shows("Your game was saved.");
    h.assert_shows("p) Play NetHack 3.6");
    h.assert_not_shows("game junk");
    assert!(!h.term.screen().hide_cursor());
    h.send(b"q");
    assert_eq!(h.action(), Some(LobbyAction::Quit));
}

#[test]
fn refused_play_shows_why() {
    let mut h = Harness::new(Some(alice()));
    h.send(b"p");
    assert!(h.action().is_some());
    h.lobby
        .handle_play_refused("Server full: 500/500 players.".into());
    h.flush();
    h.assert_shows("Server full: 500/500 players.");
    h.assert_shows("Logged in as: alice");
}

#[test]
fn ctrl_c_cancels_a_prompt_back_to_the_menu() {
    let mut h = Harness::new(None);
    h.send(b"r");
    h.line("bob");
    h.send(b"half-typed\x03");
    h.assert_shows("l) Log in");
    h.assert_not_shows("Name:");
    assert!(h.action().is_none());
    // A fresh form starts empty.
    h.send(b"r");
    h.assert_not_shows("bob");
}

#[test]
fn escape_cancels_a_prompt_once_input_pauses() {
    let mut h = Harness::new(Some(alice()));
    h.send(b"e");
    h.assert_shows("New e-mail");
    assert!(
        !h.lobby.wants_input_idle(),
        "nothing pending after a plain key"
    );
    h.send(b"\x1b");
    h.assert_shows("New e-mail");
    assert!(h.lobby.wants_input_idle(), "a lone ESC waits for a pause");
    h.lobby.handle_input_idle();
    assert!(!h.lobby.wants_input_idle());
    h.flush();
    h.assert_shows("c) Change password");
    assert!(h.action().is_none());
}

#[test]
fn escape_followed_by_a_key_cancels_then_acts_on_the_key() {
    let mut h = Harness::new(None);
    h.send(b"\x1b[A");
    assert!(
        !h.lobby.wants_input_idle(),
        "a whole arrow key needs no pause"
    );
    h.send(b"l\x1bq");
    assert_eq!(h.action(), Some(LobbyAction::Quit));
}

#[test]
fn input_is_discarded_while_an_answer_is_pending() {
    let mut h = Harness::new(None);
    h.send(b"l");
    h.line("alice");
    h.line("pw");
    assert!(h.action().is_some());
    h.send(b"q\x03\x04r\r");
    assert!(h.action().is_none());
    h.assert_shows("Checking");
    h.lobby.handle_login_result(Ok(alice()));
    h.flush();
    h.assert_shows("Logged in as: alice");
    assert!(!h.lobby.is_finished());
}

#[test]
fn answers_nobody_asked_for_are_ignored() {
    let mut h = Harness::new(None);
    h.lobby.handle_login_result(Ok(alice()));
    h.lobby.handle_register_result(Ok(alice()));
    h.lobby.handle_change_result(Ok(()));
    h.lobby.handle_game_ended("saved".into());
    assert!(h.lobby.user().is_none());
    assert_eq!(h.flush(), 0);
}

#[test]
fn q_and_ctrl_d_quit_from_the_menu() {
    for key in [&b"q"[..], b"Q", b"\x04"] {
        let mut h = Harness::new(None);
        h.send(key);
        assert_eq!(h.action(), Some(LobbyAction::Quit));
        assert!(h.lobby.is_finished());
        h.assert_shows("Goodbye!");
        h.send(b"l");
        assert!(h.action().is_none());
        assert_eq!(h.flush(), 0);
    }
}

#[test]
fn ctrl_d_in_a_prompt_cancels_only_when_the_line_is_empty() {
    let mut h = Harness::new(None);
    h.send(b"l");
    h.send(b"al\x04");
    h.assert_shows("Name: al");
    h.send(b"\x15\x04");
    h.assert_shows("l) Log in");
    assert!(!h.lobby.is_finished());
}

#[test]
fn change_password_requires_two_matching_entries() {
    let mut h = Harness::new(Some(alice()));
    h.send(b"c");
    h.assert_shows("Change your password");
    h.line("abc");
    h.line("abd");
    h.assert_shows("The passwords do not match");
    h.line("abc");
    h.line("abc");
    assert_eq!(
        h.action(),
        Some(LobbyAction::ChangePassword {
            new_password: Zeroizing::new("abc".into())
        })
    );
    h.assert_shows("Changing your password...");
    h.lobby.handle_change_result(Ok(()));
    h.flush();
    h.assert_shows("Your password has been changed.");
}

#[test]
fn change_email_can_set_or_remove_the_address() {
    let mut h = Harness::new(Some(alice()));
    h.send(b"e");
    h.line("alice@example.org");
    assert_eq!(
        h.action(),
        Some(LobbyAction::ChangeEmail {
            email: Some("alice@example.org".into())
        })
    );
    h.lobby
        .handle_change_result(Err("The store is busy.".into()));
    h.flush();
    h.assert_shows("The store is busy.");
    h.send(b"e\r");
    assert_eq!(h.action(), Some(LobbyAction::ChangeEmail { email: None }));
    h.lobby.handle_change_result(Ok(()));
    h.flush();
    h.assert_shows("Your e-mail address has been removed.");
}

#[test]
fn non_ascii_in_a_name_is_refused_with_a_reason_and_nothing_garbled() {
    let mut h = Harness::new(None);
    h.send(b"l");
    h.send("al\u{e9}\u{1F600}x".as_bytes());
    h.assert_shows("Name: alx");
    h.assert_shows("Only ASCII");
    h.send(b"\r");
    h.assert_shows("Name: alx");
    h.assert_not_shows("Only ASCII");
}

#[test]
fn control_bytes_in_a_prompt_are_ignored() {
    let mut h = Harness::new(None);
    h.send(b"l");
    h.send(b"a\x01\x02\x07\x09\x0b\x0c\x0e\x1a\x1cb");
    h.assert_shows("Name: ab");
}

#[test]
fn backspace_and_ctrl_u_edit_the_visible_line() {
    let mut h = Harness::new(None);
    h.send(b"l");
    h.send(b"bobby\x7f\x08");
    h.assert_shows("Name: bob");
    h.assert_not_shows("bobb");
    h.send(b"\x15carol");
    h.assert_shows("Name: carol");
    h.assert_not_shows("bob");
}

#[test]
fn very_long_input_is_capped_and_stays_on_one_line() {
    let mut h = Harness::new(None);
    h.send(b"l");
    let name_row = h.find_row("Name:");
    h.send(&[b'n'; 300]);
    h.assert_shows("as long as an answer can be");
    assert_eq!(h.find_row("Name:"), name_row);
    h.send(b"\r");
    h.line("pw");
    let action = h.action();
    assert!(
        matches!(&action, Some(LobbyAction::Login { name, .. }) if name.len() == 128),
        "{action:?}"
    );
}

#[test]
fn nothing_is_written_when_nothing_changed() {
    let mut h = Harness::new(Some(alice()));
    assert_eq!(h.flush(), 0);
    h.send(b"z");
    assert_eq!(h.flush(), 0);
    h.lobby.handle_context(context());
    assert_eq!(h.flush(), 0);
}

#[test]
fn new_context_redraws_the_menu_with_new_counts_and_games() {
    let mut h = Harness::new(Some(alice()));
    let mut ctx = context();
    ctx.players = 42;
    if let Some(g) = ctx.games.get_mut(1) {
        g.available = true;
    }
    h.lobby.handle_context(ctx);
    h.flush();
    h.assert_shows("42 playing");
    h.assert_not_shows("unavailable");
    h.send(b"d");
    assert_eq!(
        h.action(),
        Some(LobbyAction::Play {
            game_id: "crawl".into()
        })
    );
}

#[test]
fn admins_see_the_admin_entry() {
    let mut h = Harness::new(Some(UserInfo {
        name: "root".into(),
        admin: true,
        running: Vec::new(),
    }));
    h.assert_shows("a) Admin menu");
    h.send(b"a");
    h.assert_shows("Admin: connections");
    assert_eq!(h.action(), Some(LobbyAction::AdminSessions));
}

#[test]
fn caller_text_cannot_inject_escape_sequences() {
    let mut ctx = context();
    if let Some(g) = ctx.games.first_mut() {
        g.name = "Evil\x1b[2J\x1b[HGame".into();
    }
    let mut h = Harness::new(Some(alice()));
    h.lobby.handle_context(ctx);
    h.flush();
    h.assert_shows("Play Evil[2J[HGame");
    h.assert_shows("Logged in as: alice");
    h.lobby.handle_resize(80, 24);
    h.send(b"p");
    h.lobby.handle_play_refused("bad\r\n\x1b[31mthing".into());
    h.flush();
    h.assert_shows("bad[31mthing");
}

#[test]
fn unknown_terminal_size_is_taken_as_80x24() {
    let mut lobby = Lobby::new(context(), None, 0, 0);
    let mut term = vt100::Parser::new(24, 80, 0);
    let mut out = Vec::new();
    lobby.poll_output(&mut out);
    term.process(&out);
    assert!(term.screen().contents().contains("l) Log in"));
    lobby.handle_resize(0, 0);
    out.clear();
    lobby.poll_output(&mut out);
    term.process(&out);
    assert!(term.screen().contents().contains("l) Log in"));
}

#[test]
fn new_context_during_a_prompt_redraws_and_keeps_the_typed_text() {
    let mut h = Harness::new(None);
    h.send(b"l");
    h.send(b"ali");
    let mut ctx = context();
    ctx.banner = "one\ntwo\nthree\n$PLAYERS now".into();
    ctx.players = 9;
    h.lobby.handle_context(ctx);
    h.flush();
    h.assert_shows("9 now");
    h.send(b"ce");
    // The edit line moved down with the taller banner, and edits land on it.
    h.assert_shows("Name: alice");
    let (row, _) = h.term.screen().cursor_position();
    assert!(h.row(row).contains("Name: alice"));
}

fn alices_nethack(detached: bool) -> crate::watch::Listing {
    crate::watch::Listing {
        game: GameRef {
            core: 1,
            slot: 2,
            generation: 3,
        },
        player: "alice".into(),
        game_id: "nh".into(),
        game_name: "NetHack 3.6".into(),
        cols: 80,
        rows: 24,
        started_unix: 0,
        last_output_ms: 0,
        watchers: 0,
        detached,
    }
}

#[test]
fn a_logged_in_lobby_offers_the_games_its_login_found_and_asks_again_after_a_game() {
    let with_game = UserInfo {
        running: vec![alices_nethack(true)],
        ..alice()
    };
    let h = Harness::new(Some(with_game));
    h.assert_shows("r) Resume your game of NetHack 3.6");

    let mut h = Harness::new(Some(alice()));
    assert_eq!(h.lobby.poll_action(), None);
    h.assert_not_shows("Resume");
    // Someone else's game in an answer is not offered.
    let mut bobs = alices_nethack(true);
    bobs.player = "bob".into();
    h.lobby.handle_my_games(&[bobs]);
    h.flush();
    h.assert_not_shows("Resume");
    h.lobby.handle_my_games(&[alices_nethack(true)]);
    h.flush();
    h.assert_shows("r) Resume your game of NetHack 3.6");
    h.send(b"r");
    assert_eq!(
        h.action(),
        Some(LobbyAction::Play {
            game_id: "nh".into()
        })
    );
    // Back from the game: asked again.
    h.lobby.handle_game_ended("Your game was saved.".into());
    assert_eq!(h.lobby.poll_action(), Some(LobbyAction::ListMyGames));
}

#[test]
fn a_lobby_login_offers_the_games_its_answer_names() {
    let mut h = Harness::new(None);
    assert_eq!(h.lobby.poll_action(), None);
    h.send(b"l");
    h.line("alice");
    h.line("secret");
    assert!(matches!(
        h.lobby.poll_action(),
        Some(LobbyAction::Login { .. })
    ));
    h.lobby.handle_login_result(Ok(UserInfo {
        running: vec![alices_nethack(true)],
        ..alice()
    }));
    h.flush();
    assert_eq!(h.lobby.poll_action(), None);
    h.assert_shows("r) Resume your game of NetHack 3.6");
}

#[test]
fn the_take_over_question_takes_over_on_t_and_goes_back_on_b() {
    let mut h = Harness::new(Some(alice()));
    h.lobby.handle_my_games(&[alices_nethack(false)]);
    h.flush();
    h.assert_shows("r) Take over your game of NetHack 3.6 (open on another connection)");
    h.send(b"r");
    assert!(matches!(h.action(), Some(LobbyAction::Play { .. })));
    h.lobby.handle_take_over_offer(&alices_nethack(false));
    h.flush();
    h.assert_shows("Your game of NetHack 3.6 is open on another connection.");
    // Other keys do nothing.
    h.send(b"x");
    assert_eq!(h.action(), None);
    h.send(b"b");
    h.assert_shows("Logged in as: alice");
    assert_eq!(h.action(), None);
    h.send(b"r");
    let _ = h.action();
    h.lobby.handle_take_over_offer(&alices_nethack(false));
    h.send(b"t");
    assert_eq!(
        h.action(),
        Some(LobbyAction::TakeOver {
            game_id: "nh".into(),
            game: alices_nethack(false).game,
        })
    );
    h.flush();
    h.assert_shows("Starting the game...");
}

#[test]
fn a_hostile_game_name_in_the_offer_is_shown_harmless() {
    let mut h = Harness::new(Some(alice()));
    let mut evil = alices_nethack(false);
    evil.game_name = "Net\x1b]52;c;aGk=\x07Hack\x1b[2J".into();
    h.lobby.handle_my_games(&[evil.clone()]);
    h.flush();
    h.send(b"r");
    h.lobby.handle_take_over_offer(&evil);
    h.flush();
    let written = String::from_utf8_lossy(&h.written);
    assert!(!written.contains("\x1b]52"), "OSC 52 reached the terminal");
    assert!(!written.contains("\x07"));
}

#[test]
fn a_running_game_a_reload_took_off_the_menu_can_still_be_resumed() {
    let mut gone = alices_nethack(true);
    gone.game_id = "removed".into();
    gone.game_name = "Removed Game".into();
    let mut h = Harness::new(Some(UserInfo {
        running: vec![gone],
        ..alice()
    }));
    h.assert_shows("r) Resume your game of Removed Game");
    h.send(b"r");
    assert_eq!(
        h.action(),
        Some(LobbyAction::Play {
            game_id: "removed".into()
        })
    );
}

// Helpers the sub-screens' tests share (`watch_tests`, `keys_tests`, `options_tests`,
// `admin_tests`).

/// Every action waiting, past the questions for running games.
pub(in crate::lobby) fn actions(t: &mut Harness) -> Vec<LobbyAction> {
    std::iter::from_fn(|| t.action()).collect()
}

pub(in crate::lobby) fn assert_shows(t: &Harness, text: &str) {
    let s = t.screen();
    assert!(s.contains(text), "{text:?} not on screen:\n{s}");
}

pub(in crate::lobby) fn assert_not_shows(t: &Harness, text: &str) {
    let s = t.screen();
    assert!(!s.contains(text), "{text:?} on screen:\n{s}");
}

/// The screen row holding `text`.
pub(in crate::lobby) fn row_of(t: &Harness, text: &str) -> Option<usize> {
    t.screen().lines().position(|l| l.contains(text))
}
