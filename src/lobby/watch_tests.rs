//! The watch menu through the whole lobby: keys in, screen (rendered by `vt100`) and
//! actions out.

use crate::lobby::{GameEntry, Lobby, LobbyAction, LobbyContext, UserInfo};
use crate::watch::{GameList, GameRef, Listing};

struct Term {
    lobby: Lobby,
    term: vt100::Parser,
    written: Vec<u8>,
}

fn context() -> LobbyContext {
    LobbyContext {
        server_id: "test".into(),
        banner: "Welcome to $SERVERID".into(),
        games: vec![GameEntry {
            id: "nethack".into(),
            name: "NetHack".into(),
            key: 'p',
            available: true,
        }],
        players: 0,
        watchers: 0,
        date: "2026-11-29".into(),
    }
}

fn game(n: u32, player: &str, last_output_ms: u64, watchers: u32) -> Listing {
    Listing {
        game: GameRef {
            core: (n % 2) as u16,
            slot: n,
            generation: 7,
        },
        player: player.into(),
        game_name: "NetHack 3.6".into(),
        cols: 80,
        rows: 24,
        started_unix: 1_796_000_000 + u64::from(n) * 60,
        last_output_ms,
        watchers,
    }
}

fn list(games: Vec<Listing>) -> GameList {
    GameList::from(games)
}

impl Term {
    fn new(user: Option<UserInfo>, cols: u16, rows: u16) -> Term {
        let mut t = Term {
            lobby: Lobby::new(context(), user, cols, rows),
            term: vt100::Parser::new(rows, cols, 0),
            written: Vec::new(),
        };
        t.flush();
        t
    }

    fn send(&mut self, bytes: &[u8]) {
        self.lobby.handle_input(bytes);
        self.flush();
    }

    fn flush(&mut self) -> usize {
        let mut out = Vec::new();
        self.lobby.poll_output(&mut out);
        self.term.process(&out);
        self.written.extend_from_slice(&out);
        out.len()
    }

    fn screen(&self) -> String {
        self.term.screen().contents()
    }

    fn actions(&mut self) -> Vec<LobbyAction> {
        std::iter::from_fn(|| self.lobby.poll_action()).collect()
    }

    /// `w`, then the list arrives.
    fn open(&mut self, games: Vec<Listing>, now: u64) {
        self.send(b"w");
        assert_eq!(self.actions(), vec![LobbyAction::ListGames]);
        assert!(self.lobby.wants_game_list());
        self.lobby.handle_game_list(list(games), now);
        self.flush();
    }

    /// The row holding `text`.
    fn row_of(&self, text: &str) -> Option<usize> {
        self.screen().lines().position(|l| l.contains(text))
    }
}

#[test]
fn w_opens_the_list_in_both_lobbies_and_q_goes_back() {
    for user in [
        None,
        Some(UserInfo {
            name: "alice".into(),
            admin: false,
        }),
    ] {
        let mut t = Term::new(user, 80, 24);
        assert!(t.screen().contains("w) Watch games being played"));
        t.open(vec![game(1, "bob", 9_000, 2)], 10_000);
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
    let mut t = Term::new(None, 80, 24);
    t.open(
        vec![game(1, "bob", 0, 0), game(2, "carol", 5_000, 0)],
        10_000,
    );
    // Sorted by idle time: carol (active 5 s ago) first.
    let a = t.row_of("a) carol").expect("carol is row a");
    let b = t.row_of("b) bob").expect("bob is row b");
    assert!(a < b);
    t.send(b"b");
    let bob = game(1, "bob", 0, 0).game;
    assert_eq!(t.actions(), vec![LobbyAction::Watch { game: bob }]);
    // Watching: the lobby draws nothing and asks for no lists; keys other than q do nothing.
    assert!(!t.lobby.wants_game_list());
    t.send(b"hjkl\r");
    assert_eq!(t.flush(), 0);
    assert!(t.actions().is_empty());
    t.send(b"q");
    assert_eq!(
        t.actions(),
        vec![LobbyAction::StopWatching, LobbyAction::ListGames]
    );
    assert!(t.lobby.wants_game_list());
    assert!(t.screen().contains("Games being played"));
}

#[test]
fn the_game_ending_brings_the_watcher_back_with_a_message() {
    let mut t = Term::new(None, 80, 24);
    t.open(vec![game(1, "bob", 0, 0)], 1_000);
    t.send(b"a");
    let _ = t.actions();
    t.lobby
        .handle_watch_ended("The game you were watching has ended.");
    t.flush();
    assert_eq!(t.actions(), vec![LobbyAction::ListGames]);
    assert!(t.screen().contains("The game you were watching has ended."));
}

#[test]
fn columns_sort_both_ways_and_search_filters_by_name() {
    let mut t = Term::new(None, 80, 24);
    t.open(
        vec![
            game(1, "zed", 0, 5),
            game(2, "amy", 0, 1),
            game(3, "mo", 0, 9),
        ],
        1_000,
    );
    t.send(b"1");
    assert!(t.row_of("a) amy").is_some(), "{}", t.screen());
    t.send(b"1");
    assert!(t.row_of("a) zed").is_some(), "{}", t.screen());
    t.send(b"5");
    assert!(
        t.row_of("a) mo").is_some(),
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
    let mut small = Term::new(None, 80, 24);
    small.open(games.clone(), 0);
    let s = small.screen();
    assert!(s.contains("page 1 of"), "{s}");
    assert!(s.lines().count() <= 24);
    small.send(b">");
    assert!(small.screen().contains("page 2 of"));
    small.send(b"<");
    assert!(small.screen().contains("page 1 of"));
    let mut big = Term::new(None, 100, 50);
    big.open(games, 0);
    assert!(big.screen().contains("page 1 of 2"), "{}", big.screen());
}

#[test]
fn star_picks_a_game_and_says_so_when_there_is_none() {
    let mut t = Term::new(None, 80, 24);
    t.open(Vec::new(), 0);
    assert!(t.screen().contains("Nobody is playing right now."));
    t.send(b"*");
    assert!(t.actions().is_empty());
    t.lobby
        .handle_game_list(list(vec![game(4, "bob", 0, 0)]), 5);
    t.send(b"*");
    assert_eq!(
        t.actions(),
        vec![LobbyAction::Watch {
            game: game(4, "bob", 0, 0).game
        }]
    );
}

#[test]
fn a_refresh_redraws_in_place_without_clearing_the_screen() {
    let mut t = Term::new(None, 80, 24);
    t.open(vec![game(1, "bob", 0, 0)], 1_000);
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
    let mut t = Term::new(None, 80, 24);
    t.open(vec![game(1, "evil\x1b]52;c;aGk=\x07", 0, 0)], 0);
    let all = String::from_utf8_lossy(&t.written).into_owned();
    assert!(!all.contains("\x1b]52"), "{all:?}");
}
