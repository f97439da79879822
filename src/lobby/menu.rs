//! The two lobby menus, dgamelaunch style: the anonymous one (`l` log in, `r` register,
//! `q` quit) and the logged-in one (one key per game, `o` edit options, `c` change password,
//! `e` change e-mail, `k` SSH keys, `a` admin for admins, `q` quit). This file decides which key means what and draws the
//! entries; the [`super::Lobby`] acts on the choice.

use super::screen::{sanitize, Line, Notice, Style, INDENT};
use super::{GameEntry, UserInfo};

/// What a menu key asks for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Choice {
    /// `l`: ask for name and password.
    Login,
    /// `r`: create an account.
    Register,
    /// `q` or Ctrl-D: leave.
    Quit,
    /// A game key: play the game at this index of the context's list.
    Play(usize),
    /// `c`: new password twice.
    ChangePassword,
    /// `e`: new e-mail.
    ChangeEmail,
    /// `a`, admins only.
    Admin,
    /// `w`: the watch menu (anonymous or logged in).
    Watch,
    /// `k`: the account's SSH keys.
    Keys,
    /// `o`: edit a game's options file.
    Options,
    /// `r` when logged in with a game still running: back to that game.
    Resume,
}

/// A game of the logged-in player's that is still running (offered by `r`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunningGame {
    pub game_id: String,
    pub name: String,
    /// Its connection dropped (false: it is open on another connection).
    pub detached: bool,
}

/// The choice `key` makes in the menu for `user` (anonymous when `None`).
///
/// The built-in keys win over game keys, so a game given `q` by mistake cannot hide Quit.
/// An upper-case key with no meaning of its own means its lower-case letter (`P` plays, as in
/// dgamelaunch).
pub(crate) fn choose(
    key: char,
    user: Option<&UserInfo>,
    games: &[GameEntry],
    running: Option<&RunningGame>,
) -> Option<Choice> {
    choose_exact(key, user, games, running).or_else(|| {
        let lower = key.to_ascii_lowercase();
        (lower != key)
            .then(|| choose_exact(lower, user, games, running))
            .flatten()
    })
}

/// Draws the menu body: who is logged in, the entries, the notice, and the `=>` prompt last.
/// At most `max_lines` lines; games that do not fit are summarised (their keys still work).
/// Returns the lines and the cursor column on the last one.
pub(crate) fn lines(
    user: Option<&UserInfo>,
    games: &[GameEntry],
    running: Option<&RunningGame>,
    notice: Option<&Notice>,
    width: usize,
    max_lines: usize,
) -> (Vec<Line>, usize) {
    let mut out = Vec::new();
    let mut status = Line::new(width);
    status.push(Style::Plain, INDENT);
    match user {
        Some(u) => {
            status.push(Style::Plain, "Logged in as: ");
            status.push(Style::Title, &sanitize(&u.name));
        }
        None => status.push(Style::Plain, "Not logged in."),
    }
    out.push(status);
    out.push(Line::new(width));

    // Fixed lines besides the game entries: status, blank, blank, notice+blank, prompt.
    let fixed = 4 + if notice.is_some() { 2 } else { 0 };
    match user {
        None => {
            out.push(entry(width, 'l', "Log in", None));
            out.push(entry(width, 'r', "Register a new account", None));
            out.push(entry(width, 'w', "Watch games being played", None));
        }
        Some(u) => {
            if let Some(r) = running {
                let name = sanitize(&r.name);
                let (label, extra) = if r.detached {
                    (format!("Resume your game of {name}"), None)
                } else {
                    (
                        format!("Take over your game of {name}"),
                        Some("(open on another connection)"),
                    )
                };
                out.push(entry(width, 'r', &label, extra));
            }
            let builtins = 6 + usize::from(u.admin) + usize::from(running.is_some());
            let room = max_lines.saturating_sub(fixed + builtins);
            let shown = if games.len() > room {
                room.saturating_sub(1)
            } else {
                games.len()
            };
            for game in games.iter().take(shown) {
                let label = format!("Play {}", sanitize(&game.name));
                let extra = (!game.available).then_some("(unavailable)");
                out.push(entry(width, game.key, &label, extra));
            }
            if shown < games.len() {
                let mut more = Line::new(width);
                more.push(Style::Plain, INDENT);
                more.push(
                    Style::Dim,
                    &format!("... and {} more games", games.len() - shown),
                );
                out.push(more);
            }
            out.push(entry(width, 'w', "Watch games being played", None));
            out.push(entry(width, 'o', "Edit game options", None));
            out.push(entry(width, 'c', "Change password", None));
            out.push(entry(width, 'e', "Change e-mail address", None));
            out.push(entry(width, 'k', "Manage SSH keys", None));
            if u.admin {
                out.push(entry(width, 'a', "Admin menu", None));
            }
        }
    }
    out.push(entry(width, 'q', "Quit", None));
    out.push(Line::new(width));
    if let Some(n) = notice {
        out.push(n.line(width));
        out.push(Line::new(width));
    }
    let mut prompt = Line::new(width);
    prompt.push(Style::Plain, INDENT);
    prompt.push(Style::Key, "=> ");
    let cursor = prompt.width();
    out.push(prompt);
    (out, cursor)
}

/// The choice for exactly `key`.
fn choose_exact(
    key: char,
    user: Option<&UserInfo>,
    games: &[GameEntry],
    running: Option<&RunningGame>,
) -> Option<Choice> {
    match (user, key) {
        (_, 'q') => Some(Choice::Quit),
        (_, 'w') => Some(Choice::Watch),
        (None, 'l') => Some(Choice::Login),
        (None, 'r') => Some(Choice::Register),
        (None, _) => None,
        (Some(_), 'c') => Some(Choice::ChangePassword),
        (Some(_), 'e') => Some(Choice::ChangeEmail),
        (Some(_), 'k') => Some(Choice::Keys),
        (Some(_), 'o') => Some(Choice::Options),
        (Some(u), 'a') if u.admin => Some(Choice::Admin),
        (Some(_), 'r') if running.is_some() => Some(Choice::Resume),
        (Some(_), _) => games.iter().position(|g| g.key == key).map(Choice::Play),
    }
}

/// One menu entry: `  k) Label (extra)`.
fn entry(width: usize, key: char, label: &str, extra: Option<&str>) -> Line {
    let mut line = Line::new(width);
    line.push(Style::Plain, INDENT);
    line.push(Style::Key, &sanitize(&key.to_string()));
    line.push(Style::Plain, ") ");
    line.push(Style::Plain, label);
    if let Some(extra) = extra {
        line.push(Style::Plain, " ");
        line.push(Style::Dim, extra);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn game(key: char, available: bool) -> GameEntry {
        GameEntry {
            id: format!("g{key}"),
            name: format!("Game {key}"),
            key,
            available,
            options: false,
        }
    }

    fn alice(admin: bool) -> UserInfo {
        UserInfo {
            name: "alice".into(),
            admin,
            running: Vec::new(),
        }
    }

    #[test]
    fn anonymous_menu_knows_login_register_and_quit_only() {
        let games = [game('p', true)];
        assert_eq!(choose('l', None, &games, None), Some(Choice::Login));
        assert_eq!(choose('R', None, &games, None), Some(Choice::Register));
        assert_eq!(choose('q', None, &games, None), Some(Choice::Quit));
        assert_eq!(choose('p', None, &games, None), None);
        assert_eq!(choose('c', None, &games, None), None);
        assert_eq!(choose('k', None, &games, None), None, "guests have no keys");
        assert_eq!(
            choose('o', None, &games, None),
            None,
            "guests have no options"
        );
    }

    #[test]
    fn game_keys_work_in_either_case_when_logged_in() {
        let games = [game('p', true), game('d', false)];
        let u = alice(false);
        assert_eq!(choose('p', Some(&u), &games, None), Some(Choice::Play(0)));
        assert_eq!(choose('P', Some(&u), &games, None), Some(Choice::Play(0)));
        assert_eq!(choose('d', Some(&u), &games, None), Some(Choice::Play(1)));
        assert_eq!(choose('l', Some(&u), &games, None), None);
    }

    #[test]
    fn admin_key_is_for_admins_only() {
        assert_eq!(choose('a', Some(&alice(false)), &[], None), None);
        assert_eq!(
            choose('a', Some(&alice(true)), &[], None),
            Some(Choice::Admin)
        );
    }

    #[test]
    fn builtin_keys_win_over_a_game_with_the_same_key() {
        let games = [game('q', true), game('k', true), game('o', true)];
        assert_eq!(
            choose('q', Some(&alice(false)), &games, None),
            Some(Choice::Quit)
        );
        assert_eq!(
            choose('k', Some(&alice(false)), &games, None),
            Some(Choice::Keys)
        );
        assert_eq!(
            choose('K', Some(&alice(false)), &games, None),
            Some(Choice::Keys)
        );
        assert_eq!(
            choose('o', Some(&alice(false)), &games, None),
            Some(Choice::Options)
        );
    }

    #[test]
    fn r_resumes_only_while_a_game_is_running() {
        let games = [game('p', true)];
        let u = alice(false);
        let running = RunningGame {
            game_id: "gp".into(),
            name: "Game p".into(),
            detached: true,
        };
        assert_eq!(choose('r', Some(&u), &games, None), None);
        assert_eq!(
            choose('r', Some(&u), &games, Some(&running)),
            Some(Choice::Resume)
        );
        // Anonymous: `r` still registers.
        assert_eq!(
            choose('r', None, &games, Some(&running)),
            Some(Choice::Register)
        );
        let (shown, _) = lines(Some(&u), &games, Some(&running), None, 80, 24);
        assert!(shown[2].raw().contains("Resume your game of Game p"));
        let attached = RunningGame {
            detached: false,
            ..running
        };
        let (shown, _) = lines(Some(&u), &games, Some(&attached), None, 80, 24);
        assert!(shown[2].raw().contains("Take over your game of Game p"));
        assert!(shown[2].raw().contains("(open on another connection)"));
    }

    #[test]
    fn too_many_games_are_summarised_within_the_line_budget() {
        let games: Vec<GameEntry> = "pbdfghijkmnostuvwxyz"
            .chars()
            .map(|k| game(k, true))
            .collect();
        let (lines, _) = lines(Some(&alice(true)), &games, None, None, 80, 16);
        assert!(lines.len() <= 16, "{} lines", lines.len());
        assert!(lines.iter().any(|l| l.raw().contains("more games")));
    }
}
