//! The watch menu: every running game on every core, one row each (player, game, terminal
//! size, idle time, watchers, start), refreshed by the caller about once a second and drawn in
//! place so it does not flicker.
//!
//! Keys: a row's letter watches it (`a`–`z` without `q`), `>`/space and `<` page, `1`–`6`
//! sort by that column (again: reverse), `/` searches player and game names, `*` picks a
//! random game, `q` (or Ctrl-D) goes back to the main menu.

use super::line_edit::{Charset, LineEditor};
use super::screen::{sanitize, Line, Notice, Style, INDENT};
use super::Key;
use crate::watch::{GameList, GameRef, Listing};
use std::cmp::Ordering;

/// Row letters: `q` is taken by "back".
const ROW_KEYS: &str = "abcdefghijklmnoprstuvwxyz";
/// Lines besides the rows: title, blank, header, blank, notice, help, prompt.
const FIXED_LINES: usize = 7;

/// A column of the table, in display order (its number is its sort key).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Column {
    Player,
    Game,
    Size,
    Idle,
    Watchers,
    Started,
}

const COLUMNS: [(Column, &str, usize); 6] = [
    (Column::Player, "Player", 16),
    (Column::Game, "Game", 18),
    (Column::Size, "Size", 8),
    (Column::Idle, "Idle", 7),
    (Column::Watchers, "Watchers", 9),
    (Column::Started, "Started (UTC)", 16),
];

/// What a key in the watch menu asks for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum WatchStep {
    /// Nothing to redraw.
    Unchanged,
    /// Redraw the menu.
    Redraw,
    /// Watch this game.
    Watch(GameRef),
    /// Back to the main menu.
    Back,
}

/// The watch menu's state.
pub(crate) struct WatchMenu {
    /// The latest list, as given.
    list: GameList,
    /// The reactor clock when it was given (idle times are computed against it).
    now_ms: u64,
    /// Sort column and whether it is reversed.
    sort: (Column, bool),
    /// The page shown (0-based).
    page: usize,
    /// Only games whose player or game name contains this (lower case).
    filter: Option<String>,
    /// The search being typed.
    searching: Option<LineEditor>,
    pub(crate) notice: Option<Notice>,
}

impl WatchMenu {
    pub(crate) fn new(notice: Option<Notice>) -> WatchMenu {
        WatchMenu {
            list: GameList::from(Vec::new()),
            now_ms: 0,
            sort: (Column::Idle, false),
            page: 0,
            filter: None,
            searching: None,
            notice,
        }
    }

    /// A fresh list; returns whether what is shown changed.
    pub(crate) fn set_list(&mut self, list: GameList, now_ms: u64) -> bool {
        let changed = list != self.list || self.now_ms / 1000 != now_ms / 1000;
        self.list = list;
        self.now_ms = now_ms;
        changed
    }

    /// Whether a search is being typed (the cursor is on its line).
    pub(crate) fn is_searching(&self) -> bool {
        self.searching.is_some()
    }

    /// Acts on a key; `rows` is the terminal height (for paging).
    pub(crate) fn key(&mut self, key: Key, rows: usize) -> WatchStep {
        if let Some(editor) = &mut self.searching {
            return match key {
                Key::Char(c) => {
                    let _ = editor.insert(c);
                    WatchStep::Redraw
                }
                Key::Backspace => {
                    editor.backspace();
                    WatchStep::Redraw
                }
                Key::ClearLine => {
                    editor.clear();
                    WatchStep::Redraw
                }
                Key::Enter => {
                    let text = editor.as_str().trim().to_lowercase();
                    self.filter = (!text.is_empty()).then_some(text);
                    self.searching = None;
                    self.page = 0;
                    WatchStep::Redraw
                }
                Key::Escape | Key::Interrupt | Key::Eof => {
                    self.searching = None;
                    WatchStep::Redraw
                }
                Key::Move(_) => WatchStep::Unchanged,
            };
        }
        let c = match key {
            Key::Char(c) => c,
            Key::Eof | Key::Escape => return WatchStep::Back,
            _ => return WatchStep::Unchanged,
        };
        let per_page = per_page(rows);
        let shown = self.sorted();
        let pages = shown.len().div_ceil(per_page).max(1);
        match c {
            'q' | 'Q' => WatchStep::Back,
            '>' | ' ' => self.turn(pages, (self.page + 1).min(pages - 1)),
            '<' => self.turn(pages, self.page.saturating_sub(1)),
            '/' => {
                self.searching = Some(LineEditor::new(Charset::Ascii));
                WatchStep::Redraw
            }
            '*' => match pick(shown.len(), self.now_ms) {
                Some(i) => shown
                    .get(i)
                    .map_or(WatchStep::Unchanged, |l| WatchStep::Watch(l.game)),
                None => self.say("Nobody is playing right now."),
            },
            '1'..='6' => {
                let i = usize::from(c as u8 - b'1');
                let Some(&(column, _, _)) = COLUMNS.get(i) else {
                    return WatchStep::Unchanged;
                };
                self.sort = if self.sort.0 == column {
                    (column, !self.sort.1)
                } else {
                    (column, false)
                };
                self.page = 0;
                WatchStep::Redraw
            }
            c => {
                let Some(row) = ROW_KEYS.find(c.to_ascii_lowercase()) else {
                    return WatchStep::Unchanged;
                };
                match shown.get(self.page.min(pages - 1) * per_page + row) {
                    Some(l) if row < per_page => WatchStep::Watch(l.game),
                    _ => WatchStep::Unchanged,
                }
            }
        }
    }

    fn turn(&mut self, pages: usize, page: usize) -> WatchStep {
        let page = page.min(pages - 1);
        if page == self.page {
            return WatchStep::Unchanged;
        }
        self.page = page;
        WatchStep::Redraw
    }

    fn say(&mut self, text: &str) -> WatchStep {
        self.notice = Some(Notice::info(text));
        WatchStep::Redraw
    }

    /// The games shown, filtered and sorted.
    fn sorted(&self) -> Vec<&Listing> {
        let mut shown: Vec<&Listing> = self
            .list
            .iter()
            .filter(|l| {
                self.filter.as_deref().is_none_or(|f| {
                    l.player.to_lowercase().contains(f) || l.game_name.to_lowercase().contains(f)
                })
            })
            .collect();
        let (column, reversed) = self.sort;
        shown.sort_by(|a, b| {
            let o = compare(column, a, b).then_with(|| a.player.cmp(&b.player));
            if reversed {
                o.reverse()
            } else {
                o
            }
        });
        shown
    }

    /// The menu's lines for a `width`×`rows` terminal, and the cursor (row, column).
    pub(crate) fn lines(&self, width: usize, rows: usize) -> (Vec<Line>, (usize, usize)) {
        let per_page = per_page(rows);
        let shown = self.sorted();
        let pages = shown.len().div_ceil(per_page).max(1);
        let page = self.page.min(pages - 1);
        let mut out = Vec::new();
        let mut title = Line::new(width);
        title.push(Style::Plain, INDENT);
        title.push(Style::Title, "Games being played");
        let mut counts = format!("   {} games", shown.len());
        if let Some(f) = &self.filter {
            counts.push_str(&format!(" matching \"{}\"", sanitize(f)));
        }
        if pages > 1 {
            counts.push_str(&format!(", page {} of {pages}", page + 1));
        }
        title.push(Style::Dim, &counts);
        out.push(title);
        out.push(Line::new(width));
        let mut header = Line::new(width);
        header.push(Style::Plain, INDENT);
        header.push(Style::Plain, "   ");
        for (i, &(column, name, w)) in COLUMNS.iter().enumerate() {
            let mark = match self.sort {
                (c, false) if c == column => "^",
                (c, true) if c == column => "v",
                _ => " ",
            };
            header.push(Style::Key, &format!("{}", i + 1));
            header.push(Style::Title, &pad(&format!("{name}{mark}"), w - 1));
        }
        out.push(header);
        let keys = ROW_KEYS.chars();
        for (l, key) in shown.iter().skip(page * per_page).take(per_page).zip(keys) {
            out.push(self.row(width, key, l));
        }
        if shown.is_empty() {
            let mut none = Line::new(width);
            none.push(Style::Plain, INDENT);
            none.push(Style::Dim, "Nobody is playing right now.");
            out.push(none);
        }
        out.push(Line::new(width));
        out.push(match &self.notice {
            Some(n) => n.line(width),
            None => Line::new(width),
        });
        let mut help = Line::new(width);
        help.push(Style::Plain, INDENT);
        help.push(
            Style::Dim,
            "letter: watch  >/< page  1-6 sort  / search  * random  q back",
        );
        out.push(help);
        let mut prompt = Line::new(width);
        prompt.push(Style::Plain, INDENT);
        let col = match &self.searching {
            Some(editor) => {
                prompt.push(Style::Key, "Search: ");
                let room = width.saturating_sub(prompt.width() + 1);
                prompt.push(Style::Plain, editor.visible_tail(room));
                prompt.width()
            }
            None => {
                prompt.push(Style::Key, "=> ");
                prompt.width()
            }
        };
        out.push(prompt);
        let cursor = (out.len() - 1, col);
        (out, cursor)
    }

    fn row(&self, width: usize, key: char, l: &Listing) -> Line {
        let idle_s = self.now_ms.saturating_sub(l.last_output_ms) / 1000;
        let cells = [
            sanitize(&l.player),
            sanitize(&l.game_name),
            format!("{}x{}", l.cols, l.rows),
            duration(idle_s),
            l.watchers.to_string(),
            started(l.started_unix),
        ];
        let mut line = Line::new(width);
        line.push(Style::Plain, INDENT);
        line.push(Style::Key, &key.to_string());
        line.push(Style::Plain, ") ");
        for (cell, &(_, _, w)) in cells.iter().zip(COLUMNS.iter()) {
            line.push(Style::Plain, &pad(cell, w));
        }
        line
    }
}

/// Rows of games that fit a terminal `rows` high (at least one, at most the row keys).
fn per_page(rows: usize) -> usize {
    rows.saturating_sub(FIXED_LINES).clamp(1, ROW_KEYS.len())
}

fn compare(column: Column, a: &Listing, b: &Listing) -> Ordering {
    match column {
        Column::Player => a.player.to_lowercase().cmp(&b.player.to_lowercase()),
        Column::Game => a.game_name.cmp(&b.game_name),
        Column::Size => (a.cols, a.rows).cmp(&(b.cols, b.rows)),
        // Most recently active first.
        Column::Idle => b.last_output_ms.cmp(&a.last_output_ms),
        Column::Watchers => b.watchers.cmp(&a.watchers),
        Column::Started => a.started_unix.cmp(&b.started_unix),
    }
}

/// A "random" index below `n`: the lobby has no random source, so the clock is mixed
/// (splitmix64), which is plenty for picking a game to watch.
fn pick(n: usize, now_ms: u64) -> Option<usize> {
    if n == 0 {
        return None;
    }
    let mut z = now_ms.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    usize::try_from(z % n as u64).ok()
}

/// `text` cut or padded to `w` columns, with one space after it.
pub(super) fn pad(text: &str, w: usize) -> String {
    let cut: String = text.chars().take(w.saturating_sub(1)).collect();
    format!("{cut:<w$}")
}

/// `42s`, `7m`, `3h05`, `2d`.
pub(super) fn duration(s: u64) -> String {
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h{:02}", s / 3600, s % 3600 / 60),
        _ => format!("{}d", s / 86400),
    }
}

/// `2026-11-29 21:04` (UTC).
fn started(unix: u64) -> String {
    let hm = unix % 86400;
    format!(
        "{} {:02}:{:02}",
        crate::date::utc_date(unix),
        hm / 3600,
        hm % 3600 / 60
    )
}

#[cfg(test)]
#[path = "watch_tests.rs"]
mod tests;
