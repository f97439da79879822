//! The watch menu through the whole lobby: keys in, screen (rendered by `vt100`) and
//! actions out.

use crate::lobby::tests::Harness;
use crate::lobby::tests::{actions, row_of};
use crate::lobby::{LobbyAction, UserInfo};
use crate::watch::{GameList, GameRef, Listing};

fn game(n: u32, player: &str, last_output_ms: u64, watchers: u32) -> Listing {
    Listing {
        game: GameRef {
            core: (n % 2) as u16,
            slot: n,
            generation: 7,
        },
        player: player.into(),
        game_id: "nethack".into(),
        game_name: "NetHack 3.6".into(),
        cols: 80,
        rows: 24,
        started_unix: 1_796_000_000 + u64::from(n) * 60,
        last_output_ms,
        watchers,
        detached: false,
    }
}

fn list(games: Vec<Listing>) -> GameList {
    GameList::from(games)
}

/// `w`, then the list arrives.
fn open(t: &mut Harness, games: Vec<Listing>, now: u64) {
    t.send(b"w");
    assert_eq!(actions(t), vec![LobbyAction::ListGames]);
    assert!(t.lobby.wants_game_list());
    t.lobby.handle_game_list(list(games), now);
    t.flush();
}

#[test]
fn w_opens_the_list_in_both_lobbies_and_q_goes_back() {
    for user in [
        None,
        Some(UserInfo {
            name: "alice".into(),
            admin: false,
            running: Vec::new(),
        }),
    ] {
        let mut t = Harness::sized(user, 80, 24);
        assert!(t.screen().contains("w) Watch games being played"));
        open(&mut t, vec![game(1, "bob", 9_000, 2)], 10_000);
        let s = t.screen();
        assert!(s.contains("Games being played"), "{s}");
        assert!(s.contains("bob"), "{s}");
        assert!(s.contains("80x24"), "{s}");
        assert!(s.contains("1s"), "idle time: {s}");
        t.send(b"q");
        assert!(!t.lobby.wants_game_list());
        assert!(t.screen().contains("Watch games being played"));
    }
}

#[test]
fn a_row_letter_watches_that_game_and_q_comes_back_to_the_list() {
    let mut t = Harness::sized(None, 80, 24);
    open(
        &mut t,
        vec![game(1, "bob", 0, 0), game(2, "carol", 5_000, 0)],
        10_000,
    );
    // Sorted by idle time: carol (active 5 s ago) first.
    let a = row_of(&t, "a) carol").expect("carol is row a");
    let b = row_of(&t, "b) bob").expect("bob is row b");
    assert!(a < b);
    t.send(b"b");
    let bob = game(1, "bob", 0, 0).game;
    assert_eq!(actions(&mut t), vec![LobbyAction::Watch { game: bob }]);
    // Watching: the lobby draws nothing and asks for no lists; keys other than q do nothing.
    assert!(!t.lobby.wants_game_list());
    t.send(b"hjkl\r");
    assert_eq!(t.flush(), 0);
    assert!(actions(&mut t).is_empty());
    t.send(b"q");
    assert_eq!(
        actions(&mut t),
        vec![LobbyAction::StopWatching, LobbyAction::ListGames]
    );
    assert!(t.lobby.wants_game_list());
    assert!(t.screen().contains("Games being played"));
}

#[test]
fn the_game_ending_brings_the_watcher_back_with_a_message() {
    let mut t = Harness::sized(None, 80, 24);
    open(&mut t, vec![game(1, "bob", 0, 0)], 1_000);
    t.send(b"a");
    let _ = actions(&mut t);
    t.lobby
        .handle_watch_ended("The game you were watching has ended.");
    t.flush();
    assert_eq!(actions(&mut t), vec![LobbyAction::ListGames]);
    assert!(t.screen().contains("The game you were watching has ended."));
}

#[test]
fn columns_sort_both_ways_and_search_filters_by_name() {
    let mut t = Harness::sized(None, 80, 24);
    open(
        &mut t,
        vec![
            game(1, "zed", 0, 5),
            game(2, "amy", 0, 1),
            game(3, "mo", 0, 9),
        ],
        1_000,
    );
    t.send(b"1");
    assert!(row_of(&t, "a) amy").is_some(), "{}", t.screen());
    t.send(b"1");
    assert!(row_of(&t, "a) zed").is_some(), "{}", t.screen());
    t.send(b"5");
    assert!(
        row_of(&t, "a) mo").is_some(),
        "most watchers first: {}",
        t.screen()
    );
    t.send(b"/ze\r");
    let s = t.screen();
    assert!(s.contains("zed") && !s.contains("amy"), "{s}");
    assert!(s.contains("matching \"ze\""), "{s}");
    // An empty search shows everyone again.
    t.send(b"/\r");
    assert!(t.screen().contains("amy"));
}

#[test]
fn pages_fit_the_terminal_and_a_bigger_one_shows_more() {
    let games: Vec<Listing> = (0..40)
        .map(|i| game(i, &format!("p{i:02}"), 0, 0))
        .collect();
    let mut small = Harness::sized(None, 80, 24);
    open(&mut small, games.clone(), 0);
    let s = small.screen();
    assert!(s.contains("page 1 of"), "{s}");
    assert!(s.lines().count() <= 24);
    small.send(b">");
    assert!(small.screen().contains("page 2 of"));
    small.send(b"<");
    assert!(small.screen().contains("page 1 of"));
    let mut big = Harness::sized(None, 100, 50);
    open(&mut big, games, 0);
    assert!(big.screen().contains("page 1 of 2"), "{}", big.screen());
}

#[test]
fn star_picks_a_game_and_says_so_when_there_is_none() {
    let mut t = Harness::sized(None, 80, 24);
    open(&mut t, Vec::new(), 0);
    assert!(t.screen().contains("Nobody is playing right now."));
    t.send(b"*");
    assert!(actions(&mut t).is_empty());
    t.lobby
        .handle_game_list(list(vec![game(4, "bob", 0, 0)]), 5);
    t.send(b"*");
    assert_eq!(
        actions(&mut t),
        vec![LobbyAction::Watch {
            game: game(4, "bob", 0, 0).game
        }]
    );
}

#[test]
fn a_refresh_redraws_in_place_without_clearing_the_screen() {
    let mut t = Harness::sized(None, 80, 24);
    open(&mut t, vec![game(1, "bob", 0, 0)], 1_000);
    let before = t.written.len();
    t.lobby
        .handle_game_list(list(vec![game(1, "bob", 0, 3)]), 2_500);
    assert!(t.flush() > 0);
    let refresh = String::from_utf8_lossy(&t.written[before..]).into_owned();
    assert!(
        !refresh.contains("\x1b[2J"),
        "a refresh must not clear: {refresh:?}"
    );
    assert!(t.screen().contains("bob"));
    // Nothing changed (same list, same second): nothing is drawn.
    t.lobby
        .handle_game_list(list(vec![game(1, "bob", 0, 3)]), 2_600);
    assert_eq!(t.flush(), 0);
}

#[test]
fn player_names_cannot_inject_escape_sequences() {
    let mut t = Harness::sized(None, 80, 24);
    open(&mut t, vec![game(1, "evil\x1b]52;c;aGk=\x07", 0, 0)], 0);
    let all = String::from_utf8_lossy(&t.written).into_owned();
    assert!(!all.contains("\x1b]52"), "{all:?}");
}
