//! ANSI (ECMA-48) drawing for the lobby: SGR colours (§8.3.117), cursor positioning (CUP),
//! erase (ED/EL), and a small frame model — lines of at most `cols` visible characters plus a
//! cursor — rendered as a full redraw or as one redrawn line.
//!
//! Every line is placed with an absolute CUP, never by newline, so the screen cannot scroll
//! and nothing written by a game before us can shift the layout. Widths count one column per
//! character; the lobby's own text is ASCII and caller text is sanitised first.

use std::fmt::Write as _;

/// The smallest terminal the menus are drawn on.
pub(crate) const MIN_COLS: u16 = 80;
/// The smallest terminal the menus are drawn on.
pub(crate) const MIN_ROWS: u16 = 24;

/// Resets what a game may have left behind (attributes, scroll region, hidden cursor) and clears.
const RESET_AND_CLEAR: &str = "\x1b[0m\x1b[r\x1b[?25h\x1b[H\x1b[2J";
/// Hides the cursor (DECTCEM) on screens with nothing to type.
const HIDE_CURSOR: &str = "\x1b[?25l";
/// Back to default attributes.
const SGR_RESET: &str = "\x1b[0m";

/// The few looks the lobby uses.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Style {
    /// Default attributes.
    Plain,
    /// The operator's banner: cyan.
    Banner,
    /// A menu key: bold yellow.
    Key,
    /// A heading: bold.
    Title,
    /// A good-news message: green.
    Info,
    /// A problem: bold red.
    Error,
    /// Secondary text such as "(unavailable)": faint.
    Dim,
}

impl Style {
    /// The SGR sequence that selects this look from any previous one.
    fn sgr(self) -> &'static str {
        match self {
            Style::Plain => "\x1b[0m",
            Style::Banner => "\x1b[0;36m",
            Style::Key => "\x1b[0;1;33m",
            Style::Title => "\x1b[0;1m",
            Style::Info => "\x1b[0;32m",
            Style::Error => "\x1b[0;1;31m",
            Style::Dim => "\x1b[0;2m",
        }
    }
}

/// A one-line message under a menu or a form.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct Notice {
    /// The message, already sanitised.
    pub(crate) text: String,
    /// Drawn as a problem (red) rather than as news (green).
    pub(crate) error: bool,
}

impl Notice {
    /// Good news, e.g. "your password has been changed".
    pub(crate) fn info(text: &str) -> Notice {
        Notice {
            text: sanitize(text),
            error: false,
        }
    }

    /// A problem, e.g. "wrong password".
    pub(crate) fn error(text: &str) -> Notice {
        Notice {
            text: sanitize(text),
            error: true,
        }
    }

    /// The notice drawn as an indented line.
    pub(crate) fn line(&self, width: usize) -> Line {
        let mut line = Line::new(width);
        let style = if self.error {
            Style::Error
        } else {
            Style::Info
        };
        line.push(Style::Plain, INDENT);
        line.push(style, &self.text);
        line
    }
}

/// Left margin of menu and form text.
pub(crate) const INDENT: &str = "  ";

/// One screen line: bytes to write (text and SGR) and the visible width used so far.
#[derive(Clone, Default, Debug)]
pub(crate) struct Line {
    /// Text and SGR sequences, ready to write.
    bytes: String,
    /// Visible characters written so far.
    width: usize,
    /// The terminal width: text beyond it is cut.
    max: usize,
    /// The look currently selected, to skip redundant SGR.
    style: Option<Style>,
    /// Some SGR was written, so the line must end with a reset.
    styled: bool,
}

impl Line {
    /// An empty line on a terminal `max` columns wide.
    pub(crate) fn new(max: usize) -> Line {
        Line {
            max,
            ..Line::default()
        }
    }

    /// Appends sanitised `text` in `style`, cut at the terminal width.
    pub(crate) fn push(&mut self, style: Style, text: &str) {
        self.set_style(style);
        self.push_text(text);
    }

    /// Selects `style` for the text that follows.
    pub(crate) fn set_style(&mut self, style: Style) {
        if self.style != Some(style) && !(self.style.is_none() && style == Style::Plain) {
            self.bytes.push_str(style.sgr());
            self.styled = true;
        }
        self.style = Some(style);
    }

    /// Appends sanitised `text` in the current style, cut at the terminal width.
    pub(crate) fn push_text(&mut self, text: &str) {
        for c in text.chars() {
            if self.width >= self.max {
                break;
            }
            self.bytes.push(c);
            self.width += 1;
        }
    }

    /// Appends a raw SGR sequence the caller has checked (operator colour in the banner).
    pub(crate) fn push_sgr(&mut self, sgr: &str) {
        self.bytes.push_str(sgr);
        self.styled = true;
        self.style = None;
    }

    /// Visible characters on the line.
    pub(crate) fn width(&self) -> usize {
        self.width
    }

    /// The bytes written so far, for tests.
    #[cfg(test)]
    pub(crate) fn raw(&self) -> &str {
        &self.bytes
    }

    /// Writes the line at the cursor, ending with default attributes.
    fn write_to(&self, out: &mut String) {
        out.push_str(&self.bytes);
        if self.styled {
            out.push_str(SGR_RESET);
        }
    }
}

/// A whole screen: lines from the top row down, and where the cursor rests.
#[derive(Default, Debug)]
pub(crate) struct Frame {
    /// Rows from the top; never more than the terminal has.
    pub(crate) lines: Vec<Line>,
    /// Row index (0-based) and column (0-based) of the cursor; `None` hides it.
    pub(crate) cursor: Option<(usize, usize)>,
    /// Row index of the line the user is typing on, redrawn alone on each edit.
    pub(crate) edit_row: Option<usize>,
    /// Write the lines one after another with CR LF instead of placing them: for the
    /// "terminal too small" screen, whose text must wrap rather than be cut.
    pub(crate) flowing: bool,
}

impl Frame {
    /// Clears the terminal and draws every line.
    pub(crate) fn render_full(&self, out: &mut Vec<u8>) {
        let mut s = String::from(RESET_AND_CLEAR);
        for (row, line) in self.lines.iter().enumerate() {
            if self.flowing {
                if row > 0 {
                    s.push_str("\r\n");
                }
            } else {
                move_to(&mut s, row, 0);
            }
            line.write_to(&mut s);
        }
        self.place_cursor(&mut s);
        out.extend_from_slice(s.as_bytes());
    }

    /// Draws every line over what is on the screen, erasing each line's rest and everything
    /// below the last: a refresh that does not flicker.
    pub(crate) fn render_in_place(&self, out: &mut Vec<u8>) {
        if self.flowing {
            return self.render_full(out);
        }
        let mut s = String::from(SGR_RESET);
        for (row, line) in self.lines.iter().enumerate() {
            move_to(&mut s, row, 0);
            line.write_to(&mut s);
            s.push_str("\x1b[K");
        }
        // From the end of the last line: everything below it.
        s.push_str("\x1b[J");
        self.place_cursor(&mut s);
        out.extend_from_slice(s.as_bytes());
    }

    /// Redraws only the edit line and puts the cursor back; a full redraw if there is none.
    pub(crate) fn render_edit_line(&self, out: &mut Vec<u8>) {
        let Some((row, line)) = self
            .edit_row
            .and_then(|row| self.lines.get(row).map(|line| (row, line)))
        else {
            self.render_full(out);
            return;
        };
        let mut s = String::new();
        move_to(&mut s, row, 0);
        s.push_str(SGR_RESET);
        s.push_str("\x1b[2K");
        line.write_to(&mut s);
        self.place_cursor(&mut s);
        out.extend_from_slice(s.as_bytes());
    }

    /// Moves the cursor to its resting place, or hides it.
    fn place_cursor(&self, s: &mut String) {
        match self.cursor {
            Some((row, col)) => move_to(s, row, col),
            None if !self.flowing => s.push_str(HIDE_CURSOR),
            None => {}
        }
    }
}

/// Removes control characters (C0, DEL, C1, so also ESC) from caller text; tabs become spaces.
pub(crate) fn sanitize(text: &str) -> String {
    text.chars()
        .filter_map(|c| match c {
            '\t' => Some(' '),
            c if c.is_control() => None,
            c => Some(c),
        })
        .collect()
}

/// Appends CUP to the 0-based `row`/`col`.
fn move_to(s: &mut String, row: usize, col: usize) {
    // Writing to a String cannot fail.
    let _ = write!(
        s,
        "\x1b[{};{}H",
        row.saturating_add(1),
        col.saturating_add(1)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_cut_at_the_terminal_width() {
        let mut line = Line::new(5);
        line.push(Style::Plain, "abc");
        line.push(Style::Key, "defgh");
        assert_eq!(line.width(), 5);
        let mut s = String::new();
        line.write_to(&mut s);
        assert_eq!(s, "abc\x1b[0;1;33mde\x1b[0m");
    }

    #[test]
    fn sanitize_removes_escape_and_other_controls() {
        assert_eq!(sanitize("a\x1b[2Jb\u{9b}c\td\r\n"), "a[2Jbc d");
    }

    #[test]
    fn full_render_clears_and_places_lines_and_cursor() {
        let mut first = Line::new(80);
        first.push(Style::Plain, "hello");
        let frame = Frame {
            lines: vec![first, Line::new(80)],
            cursor: Some((1, 4)),
            edit_row: None,
            flowing: false,
        };
        let mut out = Vec::new();
        frame.render_full(&mut out);
        let s = String::from_utf8(out).unwrap_or_default();
        assert!(s.starts_with(RESET_AND_CLEAR));
        assert!(s.contains("\x1b[1;1Hhello"));
        assert!(s.ends_with("\x1b[2;5H"));
    }
}
