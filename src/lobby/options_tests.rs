//! The options editor through the whole lobby: keys in, screen (rendered by `vt100`) and
//! actions out.

use super::{OptionsFile, MAX_FILE_BYTES, MAX_LINES, MAX_LINE_BYTES};
use crate::lobby::tests::{actions, assert_not_shows, assert_shows};
use crate::lobby::tests::{context, Harness};
use crate::lobby::{GameEntry, LobbyAction, LobbyContext, UserInfo};

fn alice() -> Option<UserInfo> {
    Some(UserInfo {
        name: "alice".into(),
        admin: false,
        running: Vec::new(),
    })
}

/// The screen line holding `text`.
fn line_with(t: &Harness, text: &str) -> String {
    t.screen()
        .lines()
        .find(|l| l.contains(text))
        .unwrap_or_default()
        .to_string()
}

fn file(text: &str) -> OptionsFile {
    OptionsFile {
        text: text.into(),
        template: Some("OPTIONS=color\nOPTIONS=!autopickup\n".into()),
        exists: true,
    }
}

/// `o` (the test context has one game with options: NetHack), then the file arrives.
fn open(t: &mut Harness, f: OptionsFile) {
    t.send(b"o");
    assert_eq!(
        actions(t),
        vec![LobbyAction::ReadOptions {
            game_id: "nh".into()
        }]
    );
    t.lobby.handle_options_read(Ok(f));
    t.flush();
}

/// A lobby at 80x24 with NetHack's file open.
fn editing(text: &str) -> Harness {
    let mut t = Harness::sized(alice(), 80, 24);
    open(&mut t, file(text));
    t
}

/// `s`: the text sent, answered `r`.
fn save(t: &mut Harness, r: Result<(), String>) -> String {
    t.send(b"s");
    let text = match actions(t).as_slice() {
        [LobbyAction::WriteOptions { game_id, text }] => {
            assert_eq!(game_id, "nh");
            text.clone()
        }
        other => panic!("expected one WriteOptions, got {other:?}"),
    };
    t.lobby.handle_options_saved(r);
    t.flush();
    text
}

fn numbered(n: usize) -> String {
    (1..=n).map(|i| format!("OPTIONS=line{i}\n")).collect()
}

#[test]
fn o_opens_the_one_game_with_options_and_shows_numbered_lines() {
    let mut t = Harness::sized(alice(), 80, 24);
    assert_shows(&t, "o) Edit game options");
    t.send(b"o");
    assert_eq!(
        actions(&mut t),
        vec![LobbyAction::ReadOptions {
            game_id: "nh".into()
        }]
    );
    assert_shows(&t, "Loading your options");
    // Keys pressed while the file comes are dropped, not acted on later.
    t.send(b"dddq");
    assert!(actions(&mut t).is_empty());
    t.lobby
        .handle_options_read(Ok(file("OPTIONS=color\n# a comment\n")));
    t.flush();
    assert_shows(&t, "Options for NetHack 3.6");
    assert_shows(&t, "2 lines, 26 of 65536 bytes");
    assert!(
        line_with(&t, "OPTIONS=color").contains("> "),
        "{}",
        t.screen()
    );
    assert!(line_with(&t, "OPTIONS=color").contains("1  OPTIONS=color"));
    assert!(line_with(&t, "# a comment").contains("2  # a comment"));
    assert_shows(&t, "e edit");
    assert_not_shows(&t, "(changed)");
    t.send(b"q");
    assert_shows(&t, "Logged in as: alice");
    assert!(actions(&mut t).is_empty());
}

#[test]
fn a_file_that_could_not_be_read_says_why_in_the_menu() {
    let mut t = Harness::sized(alice(), 80, 24);
    t.send(b"o");
    let _ = actions(&mut t);
    t.lobby
        .handle_options_read(Err("Your options file is a symbolic link".into()));
    t.flush();
    assert_shows(&t, "Your options file is a symbolic link");
    assert_shows(&t, "Logged in as: alice");
}

#[test]
fn without_a_game_with_options_o_says_so() {
    let mut t = Harness::sized(alice(), 80, 24);
    let mut ctx = context();
    for g in &mut ctx.games {
        g.options = false;
    }
    t.lobby.handle_context(ctx);
    t.flush();
    t.send(b"o");
    assert!(actions(&mut t).is_empty());
    assert_shows(&t, "None of the games here has an options file to edit.");
}

#[test]
fn guests_have_no_options_key() {
    let mut t = Harness::sized(None, 80, 24);
    assert_not_shows(&t, "Edit game options");
    t.send(b"o");
    assert!(actions(&mut t).is_empty());
}

#[test]
fn with_several_games_the_player_picks_one_and_games_without_options_are_not_offered() {
    let mut t = Harness::sized(alice(), 80, 24);
    let mut ctx: LobbyContext = context();
    ctx.games.push(GameEntry {
        id: "ang".into(),
        name: "Angband".into(),
        key: 'b',
        available: true,
        options: true,
    });
    t.lobby.handle_context(ctx);
    t.flush();
    t.send(b"o");
    assert!(actions(&mut t).is_empty());
    assert_shows(&t, "Edit the options of which game?");
    assert_shows(&t, "1) NetHack 3.6");
    assert_shows(&t, "2) Angband");
    assert_not_shows(&t, "Crawl");
    t.send(b"7");
    assert!(actions(&mut t).is_empty());
    t.send(b"2");
    assert_eq!(
        actions(&mut t),
        vec![LobbyAction::ReadOptions {
            game_id: "ang".into()
        }]
    );
    t.lobby.handle_options_read(Ok(file("x\n")));
    t.flush();
    assert_shows(&t, "Options for Angband");
    // q from the list goes back too.
    t.send(b"q");
    t.send(b"o");
    assert_shows(&t, "Edit the options of which game?");
    t.send(b"q");
    assert_shows(&t, "Logged in as: alice");
}

#[test]
fn j_k_arrows_paging_and_home_end_move_and_scroll() {
    let mut t = editing(&numbered(50));
    assert_shows(&t, "OPTIONS=line19");
    assert_not_shows(&t, "OPTIONS=line20");
    t.send(b"jj");
    assert!(line_with(&t, "OPTIONS=line3").contains("> "));
    t.send(b"\x1b[A");
    assert!(line_with(&t, "OPTIONS=line2").contains("> "));
    t.send(b"k\x1bOB\x1bOB");
    assert!(line_with(&t, "OPTIONS=line3").contains("> "));
    // End: the last line at the bottom, the first gone.
    t.send(b"\x1b[F");
    assert!(line_with(&t, "OPTIONS=line50").contains("> "));
    assert_not_shows(&t, "OPTIONS=line1\n");
    assert_not_shows(&t, "OPTIONS=line31");
    t.send(b"\x1b[5~");
    assert!(
        line_with(&t, "OPTIONS=line32").contains("> "),
        "{}",
        t.screen()
    );
    t.send(b"\x1b[H");
    assert!(line_with(&t, "OPTIONS=line1").contains("> "));
    t.send(b"\x1b[6~");
    assert!(line_with(&t, "OPTIONS=line19").contains("> "));
    t.send(b"G");
    assert!(line_with(&t, "OPTIONS=line50").contains("> "));
    t.send(b"g");
    assert!(line_with(&t, "OPTIONS=line1").contains("> "));
    // Moving past either end stays there.
    t.send(b"kkk");
    assert!(line_with(&t, "OPTIONS=line1").contains("> "));
    assert!(actions(&mut t).is_empty());
}

#[test]
fn e_edits_the_line_enter_keeps_it_and_esc_leaves_it_as_it_was() {
    let mut t = editing("OPTIONS=color\nname:x\n");
    t.send(b"j\r");
    assert_shows(&t, "Line 2: name:x");
    t.send(b"\x7fbob\r");
    assert!(line_with(&t, "name:bob").contains("2  name:bob"));
    assert_shows(&t, "(changed)");
    t.send(b"e");
    t.send(b"\x15gone");
    assert_shows(&t, "Line 2: gone");
    t.send(b"\x1b");
    t.lobby.handle_input_idle();
    t.flush();
    assert_shows(&t, "name:bob");
    assert_not_shows(&t, "gone");
    let text = save(&mut t, Ok(()));
    assert_eq!(text, "OPTIONS=color\nname:bob\n");
    assert_shows(&t, "Your NetHack 3.6 options were saved.");
    assert_not_shows(&t, "(changed)");
}

#[test]
fn i_and_a_insert_lines_and_a_pasted_block_lands_line_by_line() {
    let mut t = editing("middle\n");
    t.send(b"i");
    assert_shows(&t, "New line 1:");
    t.send(b"first\r");
    // Enter opened the next line at once.
    assert_shows(&t, "New line 2:");
    t.send(b"\x1b");
    t.lobby.handle_input_idle();
    t.flush();
    t.send(b"ja");
    t.send(b"after1\nafter2\nafter3\n");
    t.send(b"\x03");
    assert_eq!(
        save(&mut t, Ok(())),
        "first\nmiddle\nafter1\nafter2\nafter3\n"
    );
}

#[test]
fn an_empty_file_takes_its_first_line_with_e_or_enter() {
    let mut t = editing("");
    assert_shows(&t, "(no lines: i adds one)");
    t.send(b"\rOPTIONS=color\r\x03");
    assert_eq!(save(&mut t, Ok(())), "OPTIONS=color\n");
}

#[test]
fn d_deletes_and_u_takes_changes_back_one_by_one() {
    let mut t = editing("a\nb\nc\n");
    t.send(b"jd");
    assert_not_shows(&t, "  b\n");
    assert!(line_with(&t, "3 lines").is_empty());
    assert_shows(&t, "2 lines");
    t.send(b"e\x15C\r");
    t.send(b"u");
    assert_shows(&t, "The last change was taken back.");
    t.send(b"u");
    assert_shows(&t, "3 lines");
    assert_not_shows(&t, "(changed)");
    t.send(b"u");
    assert_shows(&t, "There is nothing to undo.");
    assert_eq!(save(&mut t, Ok(())), "a\nb\nc\n");
    // Deleting every line, then the empty file has nothing to delete.
    t.send(b"ddd");
    assert_shows(&t, "(no lines: i adds one)");
    t.send(b"d");
    assert_shows(&t, "There is no line to delete.");
}

#[test]
fn a_failed_save_keeps_the_changes_and_says_why() {
    let mut t = editing("a\n");
    t.send(b"dd");
    let _ = save(&mut t, Err("the disk is full".into()));
    assert_shows(&t, "Not saved: the disk is full");
    assert_shows(&t, "(changed)");
}

#[test]
fn keys_are_dropped_while_a_save_is_out() {
    let mut t = editing("a\n");
    t.send(b"s");
    assert_eq!(actions(&mut t).len(), 1);
    assert_shows(&t, "Saving...");
    t.send(b"ddq");
    assert!(actions(&mut t).is_empty());
    t.lobby.handle_options_saved(Ok(()));
    t.flush();
    assert_shows(&t, "1  a");
    // An answer nobody waits for is ignored.
    t.lobby.handle_options_saved(Err("late".into()));
    t.flush();
    assert_not_shows(&t, "late");
}

#[test]
fn q_with_changes_asks_to_save_first() {
    let mut t = editing("a\n");
    t.send(b"d");
    t.send(b"q");
    assert_shows(&t, "Save your changes first? (y/n)");
    // Esc: back to editing, nothing lost.
    t.send(b"\x1b");
    t.lobby.handle_input_idle();
    t.flush();
    assert_shows(&t, "(changed)");
    // n: leave without saving.
    t.send(b"qn");
    assert!(actions(&mut t).is_empty());
    assert_shows(&t, "Your NetHack 3.6 options were not changed.");
    // y: save, then leave once saved.
    open(&mut t, file("a\n"));
    t.send(b"dqy");
    assert_eq!(
        actions(&mut t),
        vec![LobbyAction::WriteOptions {
            game_id: "nh".into(),
            text: String::new()
        }]
    );
    t.lobby.handle_options_saved(Ok(()));
    t.flush();
    assert_shows(&t, "Logged in as: alice");
    assert_shows(&t, "Your NetHack 3.6 options were saved.");
}

#[test]
fn r_puts_the_defaults_back_after_a_y_and_u_undoes_it() {
    let mut t = editing("mine\n");
    t.send(b"R");
    assert_shows(
        &t,
        "Replace every line with NetHack 3.6's default options? (y/n)",
    );
    t.send(b"n");
    assert_shows(&t, "Nothing was changed.");
    assert_shows(&t, "mine");
    t.send(b"r");
    assert_shows(&t, "That key does nothing here");
    t.send(b"Ry");
    assert_shows(&t, "OPTIONS=!autopickup");
    assert_not_shows(&t, "mine");
    assert_shows(&t, "(changed)");
    t.send(b"u");
    assert_shows(&t, "mine");
    t.send(b"Ry");
    assert_eq!(save(&mut t, Ok(())), "OPTIONS=color\nOPTIONS=!autopickup\n");
}

#[test]
fn r_without_defaults_says_so() {
    let mut t = Harness::sized(alice(), 80, 24);
    t.send(b"o");
    let _ = actions(&mut t);
    t.lobby.handle_options_read(Ok(OptionsFile {
        text: "x\n".into(),
        template: None,
        exists: true,
    }));
    t.flush();
    t.send(b"R");
    assert_shows(&t, "has no default options to restore");
}

#[test]
fn a_missing_file_shows_the_defaults_and_s_saves_them() {
    let mut t = Harness::sized(alice(), 80, 24);
    t.send(b"o");
    let _ = actions(&mut t);
    t.lobby.handle_options_read(Ok(OptionsFile {
        text: "OPTIONS=color\n".into(),
        template: Some("OPTIONS=color\n".into()),
        exists: false,
    }));
    t.flush();
    assert_shows(&t, "no NetHack 3.6 options file yet");
    assert_eq!(save(&mut t, Ok(())), "OPTIONS=color\n");
}

#[test]
fn a_line_longer_than_the_cap_is_refused_with_a_message() {
    let mut t = editing("");
    t.send(b"i");
    t.send(&vec![b'x'; MAX_LINE_BYTES + 5]);
    assert_shows(
        &t,
        &format!("A line can be at most {MAX_LINE_BYTES} bytes."),
    );
    t.send(b"\r\x03");
    let text = save(&mut t, Ok(()));
    assert_eq!(text.len(), MAX_LINE_BYTES + 1);
}

#[test]
fn the_line_count_cap_refuses_another_line() {
    let mut t = editing(&"x\n".repeat(MAX_LINES));
    t.send(b"a");
    assert_shows(&t, &format!("at most {MAX_LINES} lines"));
    t.send(b"i");
    assert_shows(&t, &format!("at most {MAX_LINES} lines"));
    assert!(actions(&mut t).is_empty());
}

#[test]
fn the_file_size_cap_stops_typing_and_new_lines() {
    // 63 lines of 1023 bytes + 1 newline each, and one of 1000: 24 bytes left.
    let mut text = format!("{}\n", "y".repeat(1023)).repeat(63);
    text.push_str(&"z".repeat(1000));
    text.push('\n');
    let left = MAX_FILE_BYTES - text.len();
    let mut t = editing(&text);
    t.send(b"G");
    t.send(b"a");
    t.send(&vec![b'w'; left + 10]);
    assert_shows(&t, "The file can be at most 65536 bytes");
    t.send(b"\r");
    // Exactly full now: no room for even an empty line.
    assert_shows(&t, "The file is at its size limit");
    let saved = save(&mut t, Ok(()));
    assert_eq!(saved.len(), MAX_FILE_BYTES);
}

#[test]
fn a_file_past_the_caps_is_not_opened() {
    let mut t = Harness::sized(alice(), 80, 24);
    t.send(b"o");
    let _ = actions(&mut t);
    t.lobby
        .handle_options_read(Ok(file(&"\n".repeat(MAX_LINES + 1))));
    t.flush();
    assert_shows(&t, "too large to edit here");
    assert_shows(&t, "Logged in as: alice");
}

#[test]
fn hostile_bytes_in_the_file_are_drawn_harmlessly() {
    let hostile = "OPTIONS=color\x1b]52;c;ZWNobyBoaQ==\x07\n\x1b[2J\x1b[?1049h\u{9b}31m\n\
                   name:\u{202e}evil\u{4e00}e\u{301}\r\n\ttab\x7f\n";
    let mut t = Harness::sized(alice(), 80, 24);
    let before = t.written.len();
    open(&mut t, file(hostile));
    let drawn = String::from_utf8_lossy(&t.written[before..]).into_owned();
    for bad in [
        "\x1b]",
        "\x07",
        "\x1b[?1049h",
        "\u{9b}",
        "\u{202e}",
        "\u{4e00}",
        "\r\n",
        "\x7f",
    ] {
        assert!(!drawn.contains(bad), "{bad:?} reached the terminal");
    }
    assert_shows(&t, "OPTIONS=color^[]52;c;ZWNobyBoaQ==^G");
    assert_shows(&t, "^[[2J^[[?1049h?31m");
    assert_shows(&t, "name:?evil?e?^M");
    assert_shows(&t, " tab^?");
    // Untouched lines are written back as they were.
    assert_eq!(save(&mut t, Ok(())), hostile);
    // Edited, a line keeps only what can be typed, and says so.
    t.send(b"e");
    assert_shows(&t, "were left out of this line");
    assert_shows(&t, "Line 1: OPTIONS=color]52;c;ZWNobyBoaQ==");
}

#[test]
fn typed_control_keys_and_escapes_only_ever_edit_text() {
    let mut t = editing("a\n");
    // Browsing: `:` and `!` are no commands; then `s` saves the file as it is (the only
    // thing it can do) and `h` is no command either.
    t.send(b":!");
    assert_shows(&t, "That key does nothing here");
    assert!(actions(&mut t).is_empty());
    assert_eq!(save(&mut t, Ok(())), "a\n");
    t.send(b"h");
    assert_shows(&t, "That key does nothing here");
    // Ctrl-R/T/Z/\ and pasted escape sequences do nothing at all.
    t.send(b"\x12\x14\x1a\x1c\x1b[201~\x1b]0;x\x07");
    assert_shows(&t, "1  a");
    assert!(actions(&mut t).is_empty());
    // Typing: the same keys are text, or nothing.
    t.send(b"e\x15:!sh\x12\x14\x1a\x1c\x1b[2~\x1b[3~\r");
    assert!(actions(&mut t).is_empty());
    assert_eq!(save(&mut t, Ok(())), ":!sh\n");
    // Characters that are not one column wide are refused.
    t.send("e\u{4e00}\u{202e}".as_bytes());
    assert_shows(&t, "Only characters one column wide can be typed here.");
    assert_shows(&t, "Line 1: :!sh");
}

#[test]
fn resizing_redraws_and_a_tiny_terminal_only_leaves() {
    let mut t = editing(&numbered(60));
    t.resize(100, 40);
    assert_shows(&t, "OPTIONS=line35");
    t.send(b"G");
    t.resize(80, 24);
    assert!(
        line_with(&t, "OPTIONS=line60").contains("> "),
        "{}",
        t.screen()
    );
    t.resize(60, 10);
    assert_shows(&t, "Your terminal is too small.");
    t.send(b"d");
    t.resize(80, 24);
    assert_shows(&t, "60 lines");
    t.resize(60, 10);
    t.send(b"q");
    assert_shows(&t, "Your terminal is too small.");
    t.resize(80, 24);
    assert_shows(&t, "Logged in as: alice");
}

#[test]
fn a_long_line_is_cut_with_a_marker_and_its_end_shown_while_typing() {
    let long = format!("start{}END", "x".repeat(200));
    let mut t = editing(&format!("{long}\n"));
    let row = line_with(&t, "start");
    assert!(row.trim_end().ends_with('>'), "{row:?}");
    assert!(!row.contains("END"));
    t.send(b"e");
    assert!(line_with(&t, "Line 1:").trim_end().ends_with("END"));
}
