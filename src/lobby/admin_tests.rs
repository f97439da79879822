//! The admin screen through the whole lobby: keys in, screen (rendered by `vt100`) and
//! actions out.

use crate::admin::{SessionId, SessionInfo, MAX_BROADCAST};
use crate::lobby::tests::Harness;
use crate::lobby::tests::{actions, assert_not_shows, assert_shows, row_of};
use crate::lobby::{LobbyAction, UserInfo};

fn root() -> Option<UserInfo> {
    Some(UserInfo {
        name: "root".into(),
        admin: true,
        running: Vec::new(),
    })
}

fn id(core: u16, slot: u32) -> SessionId {
    SessionId {
        core,
        slot,
        generation: 1,
    }
}

/// Connection `n`: alice-like players on core `n % 2`, every third a guest.
fn session(n: u32) -> SessionInfo {
    SessionInfo {
        id: id((n % 2) as u16, n),
        user: (n % 3 != 0).then(|| format!("player{n}")),
        source: format!("192.0.2.{}", n % 250)
            .parse()
            .unwrap_or([0, 0, 0, 0].into()),
        game: None,
        watching: false,
        idle_ms: u64::from(n) * 1000,
        connected_ms: 3_900_000,
    }
}

/// The selected row's text (the one marked `>`).
fn selected_row(t: &Harness) -> String {
    t.screen()
        .lines()
        .find(|l| l.trim_start().starts_with("> "))
        .unwrap_or_default()
        .to_string()
}

/// `a`, then the list arrives.
fn open(t: &mut Harness, sessions: Vec<SessionInfo>) {
    t.send(b"a");
    assert_eq!(actions(t), vec![LobbyAction::AdminSessions]);
    t.lobby.handle_admin_sessions(Ok(sessions));
    t.flush();
}

/// Answers the order out.
fn answer(t: &mut Harness, r: Result<(), String>) {
    t.lobby.handle_admin_result(r);
    t.flush();
}

#[test]
fn non_admins_are_never_offered_nor_given_the_admin_screen() {
    let mut t = Harness::sized(
        Some(UserInfo {
            name: "alice".into(),
            admin: false,
            running: Vec::new(),
        }),
        80,
        24,
    );
    assert_not_shows(&t, "Admin menu");
    t.send(b"aA");
    assert!(actions(&mut t).is_empty());
    assert_not_shows(&t, "Admin: connections");
    // Answers to admin requests nobody asked change nothing.
    t.lobby.handle_admin_sessions(Ok(vec![session(1)]));
    t.lobby.handle_admin_result(Ok(()));
    t.flush();
    assert_not_shows(&t, "Admin: connections");
    // Nor does a guest get it.
    let mut g = Harness::sized(None, 80, 24);
    g.send(b"a");
    assert!(actions(&mut g).is_empty());
    assert_not_shows(&g, "Admin");
}

#[test]
fn a_lists_every_connection_and_q_goes_back() {
    let mut t = Harness::sized(root(), 80, 24);
    t.send(b"a");
    assert_eq!(actions(&mut t), vec![LobbyAction::AdminSessions]);
    assert_shows(&t, "Loading the connections");
    assert_shows(&t, "Please wait");
    // Input is discarded while the list is out.
    t.send(b"kbldq");
    assert!(actions(&mut t).is_empty());
    assert_shows(&t, "Admin: connections");
    let mut watcher = session(4);
    watcher.watching = true;
    let mut player = session(5);
    player.game = Some("nethack".into());
    t.lobby
        .handle_admin_sessions(Ok(vec![session(3), watcher, player]));
    t.flush();
    assert_shows(&t, "3 connected");
    for header in ["Who", "From", "Doing", "Idle", "Conn", "Id"] {
        assert_shows(&t, header);
    }
    let guest = t.screen().lines().nth(3).unwrap_or_default().to_string();
    assert!(guest.contains("a) (guest)"), "{guest}");
    assert!(guest.contains("192.0.2.3"), "{guest}");
    assert!(guest.contains("1.3.1"), "{guest}");
    assert!(guest.contains("1h05"), "connected: {guest}");
    assert!(guest.contains(" 3s"), "idle: {guest}");
    let watching = t.screen().lines().nth(4).unwrap_or_default().to_string();
    assert!(watching.contains("c) player4"), "{watching}");
    assert!(watching.contains("watching"), "{watching}");
    let playing = t.screen().lines().nth(5).unwrap_or_default().to_string();
    assert!(playing.contains("f) player5"), "{playing}");
    assert!(playing.contains("nethack"), "{playing}");
    assert!(
        selected_row(&t).contains("(guest)"),
        "the first row is selected"
    );
    t.send(b"q");
    assert_shows(&t, "a) Admin menu");
    assert!(actions(&mut t).is_empty());
}

#[test]
fn r_refreshes_and_the_selection_follows_its_connection() {
    let mut t = Harness::sized(root(), 80, 24);
    open(&mut t, vec![session(1), session(2), session(4)]);
    t.send(b"c");
    assert!(selected_row(&t).contains("player2"));
    t.send(b"+");
    assert!(selected_row(&t).contains("player4"));
    t.send(b"-");
    assert!(selected_row(&t).contains("player2"));
    t.send(b"r");
    assert_eq!(actions(&mut t), vec![LobbyAction::AdminSessions]);
    assert_shows(&t, "Please wait");
    // Someone new came in ahead of player2.
    t.lobby
        .handle_admin_sessions(Ok(vec![session(0), session(1), session(2)]));
    t.flush();
    assert!(selected_row(&t).contains("player2"), "{}", t.screen());
    // player2 left: the selection stays in the list.
    t.send(b"r");
    assert_eq!(actions(&mut t), vec![LobbyAction::AdminSessions]);
    t.lobby.handle_admin_sessions(Ok(vec![session(1)]));
    t.flush();
    assert!(selected_row(&t).contains("player1"), "{}", t.screen());
}

#[test]
fn k_kicks_the_selected_connection_after_a_reason_and_a_y() {
    let mut t = Harness::sized(root(), 80, 24);
    open(&mut t, vec![session(1), session(2)]);
    t.send(b"c");
    t.send(b"k");
    assert_shows(&t, "Kicking player2 (0.2.1)");
    assert_shows(&t, "Reason:");
    t.send(b"flooding the");
    t.send(b" lobby");
    assert_shows(&t, "Reason: flooding the lobby");
    t.send(b"\r");
    assert!(actions(&mut t).is_empty(), "nothing before the y");
    assert_shows(&t, "They are told: flooding the lobby");
    assert_shows(&t, "Kick player2 (0.2.1)? y/n");
    t.send(b"y");
    assert_eq!(
        actions(&mut t),
        vec![LobbyAction::AdminKick {
            session: id(0, 2),
            reason: "flooding the lobby".into()
        }]
    );
    assert_shows(&t, "Please wait");
    t.send(b"kcy\r");
    assert!(
        actions(&mut t).is_empty(),
        "input is discarded while waiting"
    );
    answer(&mut t, Ok(()));
    assert_shows(&t, "Kicked player2 (0.2.1)");
    assert_shows(&t, "=>");
}

#[test]
fn a_kick_without_a_reason_uses_the_default_and_anything_but_y_kicks_nobody() {
    let mut t = Harness::sized(root(), 80, 24);
    open(&mut t, vec![session(3)]);
    t.send(b"k\r");
    assert_shows(&t, "They are told an administrator closed the connection.");
    assert_shows(&t, "Kick (guest) (1.3.1)? y/n");
    t.send(b"n");
    assert!(actions(&mut t).is_empty());
    assert_shows(&t, "Nobody was kicked.");
    // Ctrl-C at the reason goes back too.
    t.send(b"kabc\x03");
    assert!(actions(&mut t).is_empty());
    assert_shows(&t, "=>");
    t.send(b"K\ry");
    assert_eq!(
        actions(&mut t),
        vec![LobbyAction::AdminKick {
            session: id(1, 3),
            reason: String::new()
        }]
    );
    // An error is shown as the server said it.
    answer(&mut t, Err("The server is busy; try again.".into()));
    assert_shows(&t, "The server is busy; try again.");
}

#[test]
fn an_empty_list_has_nobody_to_kick() {
    let mut t = Harness::sized(root(), 80, 24);
    open(&mut t, vec![]);
    assert_shows(&t, "No connections.");
    t.send(b"k");
    assert_shows(&t, "There is no connection to kick.");
    assert!(actions(&mut t).is_empty());
}

#[test]
fn b_broadcasts_one_line_capped_and_empty_sends_nothing() {
    let mut t = Harness::sized(root(), 80, 24);
    open(&mut t, vec![session(1)]);
    t.send(b"b\r");
    assert_shows(&t, "Nothing was sent.");
    assert!(actions(&mut t).is_empty());
    t.send(b"b");
    assert_shows(&t, "Message:");
    t.send(b"  Back in 5 minutes  \r");
    assert_eq!(
        actions(&mut t),
        vec![LobbyAction::AdminBroadcast {
            text: "Back in 5 minutes".into()
        }]
    );
    answer(&mut t, Ok(()));
    assert_shows(&t, "Sent: every player's lobby shows it.");
    // Past the cap nothing more is taken, and the line stays on its row.
    t.send(b"b");
    t.send("x".repeat(MAX_BROADCAST + 50).as_bytes());
    assert_shows(&t, "That is as long as this line can be.");
    t.send(b"\r");
    match actions(&mut t).as_slice() {
        [LobbyAction::AdminBroadcast { text }] => assert_eq!(text.len(), MAX_BROADCAST),
        other => panic!("{other:?}"),
    }
}

#[test]
fn l_locks_with_a_reason_and_u_unlocks_and_errors_are_shown_as_is() {
    let mut t = Harness::sized(root(), 80, 24);
    open(&mut t, vec![session(1)]);
    t.send(b"l");
    assert_shows(&t, "Lock account:");
    t.send(b"mallory\r");
    assert_shows(&t, "Locking mallory");
    assert!(actions(&mut t).is_empty());
    t.send(b"cheating\r");
    assert_eq!(
        actions(&mut t),
        vec![LobbyAction::AdminLock {
            name: "mallory".into(),
            locked: true,
            reason: Some("cheating".into())
        }]
    );
    answer(&mut t, Err("There is no account named mallory.".into()));
    assert_shows(&t, "There is no account named mallory.");
    // Without a reason.
    t.send(b"lbob\r\r");
    assert_eq!(
        actions(&mut t),
        vec![LobbyAction::AdminLock {
            name: "bob".into(),
            locked: true,
            reason: None
        }]
    );
    answer(&mut t, Ok(()));
    assert_shows(&t, "Locked bob; its connections are closed.");
    t.send(b"u");
    assert_shows(&t, "Unlock account:");
    t.send(b"bob\r");
    assert_eq!(
        actions(&mut t),
        vec![LobbyAction::AdminLock {
            name: "bob".into(),
            locked: false,
            reason: None
        }]
    );
    answer(&mut t, Ok(()));
    assert_shows(&t, "Unlocked bob.");
    // An empty name does nothing.
    t.send(b"u\r");
    assert_shows(&t, "Nothing was unlocked.");
    t.send(b"l\r");
    assert_shows(&t, "Nothing was locked.");
    assert!(actions(&mut t).is_empty());
}

#[test]
fn d_stops_and_e_allows_new_games_each_after_a_y() {
    let mut t = Harness::sized(root(), 80, 24);
    open(&mut t, vec![session(1)]);
    t.send(b"d");
    assert_shows(&t, "Stop new games on the whole server? y/n");
    t.send(b"x");
    assert_shows(&t, "Nothing changed.");
    assert!(actions(&mut t).is_empty());
    t.send(b"dy");
    assert_eq!(actions(&mut t), vec![LobbyAction::AdminDrain { on: true }]);
    answer(&mut t, Ok(()));
    assert_shows(&t, "New games are stopped");
    t.send(b"e");
    assert_shows(&t, "Allow new games again? y/n");
    t.send(b"Y");
    assert_eq!(actions(&mut t), vec![LobbyAction::AdminDrain { on: false }]);
    answer(&mut t, Ok(()));
    assert_shows(&t, "New games are allowed again.");
}

#[test]
fn a_long_list_is_paged_to_fit_and_letters_pick_on_the_page_shown() {
    let many: Vec<SessionInfo> = (1..=40).map(session).collect();
    let mut t = Harness::sized(root(), 80, 24);
    open(&mut t, many.clone());
    // 24 rows: 16 connections a page, the prompt on the last row.
    assert_shows(&t, "40 connected, page 1 of 3");
    assert_eq!(row_of(&t, "=>"), Some(23), "{}", t.screen());
    assert!(row_of(&t, "1.1.1").is_some());
    assert!(row_of(&t, "0.16.1").is_some());
    assert!(row_of(&t, "1.17.1").is_none());
    t.send(b">");
    assert_shows(&t, "page 2 of 3");
    assert!(row_of(&t, "1.17.1").is_some());
    assert!(selected_row(&t).contains("1.17.1"));
    // The second letter on page 2 is connection 18.
    t.send(b"c");
    assert!(selected_row(&t).contains("0.18.1"), "{}", t.screen());
    t.send(b"<");
    assert_shows(&t, "page 1 of 3");
    // The page's last letter; a letter past the page picks nothing.
    t.send(b"z");
    assert!(selected_row(&t).contains("1.1.1"), "{}", t.screen());
    t.send(b"x");
    assert!(selected_row(&t).contains("0.16.1"), "{}", t.screen());
    // Moving past the page's end turns the page.
    t.send(b"+");
    assert_shows(&t, "page 2 of 3");
    // A taller terminal shows more (up to the row letters), and is redrawn at once.
    t.resize(100, 60);
    assert_shows(&t, "page 1 of 3");
    assert!(row_of(&t, "0.18.1").is_some());
    assert!(row_of(&t, "1.19.1").is_none());
    t.resize(80, 24);
    assert_shows(&t, "page 2 of 3");
}

#[test]
fn hostile_names_game_ids_and_errors_draw_harmlessly() {
    let mut t = Harness::sized(root(), 80, 24);
    let mut evil = session(1);
    evil.user = Some("\x1b[2Jev\x1b]0;pwn\x07il".into());
    evil.game = Some("g\x1b[31m\u{9b}2Jx".into());
    open(&mut t, vec![evil]);
    assert_shows(&t, "[2Jev]0;pwnil");
    assert_shows(&t, "g[31m2Jx");
    t.send(b"k\ry");
    assert_eq!(actions(&mut t).len(), 1);
    answer(&mut t, Err("no\x1b[2J\r\nway".into()));
    assert_shows(&t, "no[2Jway");
    let written = String::from_utf8_lossy(&t.written).into_owned();
    for bad in [
        "\x1b]0;",
        "\x07",
        "\x1b[31m\u{9b}",
        "\u{9b}",
        "\x1b[2Jev",
        "\x1b[2J\r\n",
    ] {
        assert!(!written.contains(bad), "{bad:?} reached the terminal");
    }
}

#[test]
fn a_small_terminal_gets_the_size_screen_and_only_q_or_escape_work() {
    let mut t = Harness::sized(root(), 80, 24);
    open(&mut t, vec![session(1)]);
    t.resize(70, 20);
    assert_shows(&t, "Your terminal is too small.");
    t.send(b"kdy");
    assert!(actions(&mut t).is_empty());
    t.resize(80, 24);
    assert_shows(&t, "Admin: connections");
    assert_shows(&t, "=>");
    t.resize(70, 20);
    t.send(b"q");
    t.resize(80, 24);
    assert_shows(&t, "a) Admin menu");
}

#[test]
fn a_failed_list_says_why_and_r_tries_again() {
    let mut t = Harness::sized(root(), 80, 24);
    t.send(b"a");
    assert_eq!(actions(&mut t), vec![LobbyAction::AdminSessions]);
    t.lobby
        .handle_admin_sessions(Err("The server is busy; try again.".into()));
    t.flush();
    assert_shows(&t, "The server is busy; try again.");
    assert_shows(&t, "could not be listed");
    // An order's answer is not a list's: ignored.
    t.lobby.handle_admin_result(Ok(()));
    t.flush();
    assert_not_shows(&t, "allowed again");
    t.send(b"r");
    assert_eq!(actions(&mut t), vec![LobbyAction::AdminSessions]);
    assert_not_shows(&t, "busy");
    t.lobby.handle_admin_sessions(Ok(vec![session(1)]));
    t.flush();
    assert_shows(&t, "player1");
}

#[test]
fn debug_of_admin_actions_names_the_session_by_its_id() {
    let kick = LobbyAction::AdminKick {
        session: id(1, 42),
        reason: "spam".into(),
    };
    let shown = format!("{kick:?}");
    assert!(shown.contains("1.42.1"), "{shown}");
    assert!(shown.contains("spam"), "{shown}");
}

#[test]
fn an_ipv6_address_is_shown_whole_when_the_terminal_has_room() {
    let mut v6 = session(1);
    v6.source = "2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff"
        .parse()
        .unwrap_or(v6.source);
    let mut t = Harness::sized(root(), 80, 24);
    open(&mut t, vec![v6, session(2)]);
    // At 80 columns it is cut so the other columns keep their places.
    assert_shows(&t, "2001:db8:aaaa:b ");
    assert_not_shows(&t, "ffff");
    t.resize(110, 24);
    assert_shows(&t, "2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff ");
    assert_shows(&t, "1.1.1");
}
