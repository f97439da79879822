//! The options editor (`o` in the logged-in menu): the player's rc file of one game, edited
//! line by line inside the lobby.
//!
//! It is built in rather than an external editor in restricted mode because it cannot open
//! another file, run a command or reach a shell by construction: it has no such command, it
//! only ever holds one file's text in memory, and reading and writing that file is the
//! server's business (`LobbyAction::ReadOptions` / `WriteOptions`, for the account the lobby
//! is logged in as and a game id from the menu; nothing typed names a path or a user).
//!
//! Keys: `j`/`k` or the arrow keys move, Page Up/Down and Home/End (or `g`/`G`) jump, `e` or
//! Enter edits the line, `i`/`a` insert a line before/after it (Enter keeps a line and opens
//! the next, so a pasted block lands as lines; Esc stops), `d` deletes it, `u` undoes, `s`
//! saves, `R` puts the game's default options back (after a `y`), `q` leaves (asking about
//! unsaved changes).
//!
//! Text is printable only: the key decoder never passes control characters or escape
//! sequences, and characters that are not one column wide (wide, combining, bidirectional
//! controls) are refused, so what is drawn is what is stored. The file may hold anything the
//! game (or the player through it) wrote: its lines are drawn with control characters in
//! caret notation (`^[`) and other oddities as `?`, never raw. Sizes are capped
//! ([`MAX_FILE_BYTES`], [`MAX_LINE_BYTES`], [`MAX_LINES`]); an edit past a cap is refused with
//! a one-line reason.

use std::collections::VecDeque;

use unicode_width::UnicodeWidthChar;

use super::input::Move;
use super::line_edit::{Charset, LineEditor, Reject};
use super::screen::{sanitize, Frame, Line, Notice, Style, INDENT};
use super::{Dirty, Key, Lobby, LobbyAction, Mode};

/// Largest options file the editor takes: the server's own cap on reading and writing one.
pub const MAX_FILE_BYTES: usize = crate::game::rcfile::MAX_RC_BYTES;
/// Longest line that can be typed or edited, in bytes.
pub const MAX_LINE_BYTES: usize = 1024;
/// Most lines a file may have in the editor.
pub const MAX_LINES: usize = 2000;
/// Changes `u` can take back (fewer when they hold more than [`MAX_FILE_BYTES`] of text).
const MAX_UNDO: usize = 100;
/// Lines besides the file's: title, blank, notice, help, prompt.
const FIXED_LINES: usize = 5;
/// Width of the line-number column (2000 lines at most: four digits).
const NUMBER_WIDTH: usize = 4;
/// The help line while browsing.
const BROWSE_HELP: &str =
    "j/k move  e edit  i/a insert  d delete  u undo  s save  R default  q quit";

/// A game's options file, as the server read it for the editor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OptionsFile {
    /// The file's text (bytes that are not UTF-8 replaced by U+FFFD); the game's default
    /// options when the player has no file yet.
    pub text: String,
    /// The game's default options (its `rc_template`), which `R` puts back.
    pub template: Option<String>,
    /// False when the player has no file yet.
    pub exists: bool,
}

/// What a key did on the options screens.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum OptionsStep {
    /// Nothing visible changed.
    Unchanged,
    /// Only the line being typed changed.
    EditLine,
    /// Redraw the screen.
    Redraw,
    /// Back to the main menu, with this message under it.
    Back(Option<Notice>),
    /// Send this request; the screen waits for its answer.
    Send(LobbyAction),
}

/// The options screens' state: choosing a game, loading its file, editing it.
pub(crate) struct OptionsScreen {
    /// Which of the three is up.
    stage: Stage,
    /// The message line.
    notice: Option<Notice>,
}

/// The screens of the options flow.
enum Stage {
    /// Several games have options: which one? (id, name) of each, in menu order.
    Pick(Vec<(String, String)>),
    /// The file of this game (id, name) was asked for.
    Loading(String, String),
    /// The file is being edited.
    Editing(Box<Editor>),
}

/// One game's file being edited.
struct Editor {
    /// The game's id, for the save request.
    game_id: String,
    /// The game's name, for titles.
    name: String,
    /// The file's lines, without their line ends.
    lines: Vec<String>,
    /// The size the file would have if written now (every line plus its newline).
    bytes: usize,
    /// What `R` puts back.
    template: Option<String>,
    /// The line the commands act on (`lines.len()` never; 0 in an empty file).
    cursor: usize,
    /// The first line shown.
    top: usize,
    /// What the bottom line is doing.
    prompt: Prompt,
    /// Changes to take back, oldest first.
    undo: VecDeque<Undo>,
    /// Bytes of text the undo entries hold.
    undo_bytes: usize,
    /// `undo.len()` when the text was last as on disk; `None` once that state cannot come
    /// back by undoing.
    clean_at: Option<usize>,
    /// A save is out; `true` when the editor closes once it is done.
    saving: Option<bool>,
}

/// What the bottom line is doing.
enum Prompt {
    /// Commands.
    Browse,
    /// A line is being typed: the existing line `index` (`insert` false) or a new line to go
    /// in at `index`.
    Typing {
        editor: LineEditor,
        index: usize,
        insert: bool,
    },
    /// "Replace every line with the defaults?"
    ConfirmRestore,
    /// "Save your changes first?" (on the way out).
    ConfirmQuit,
}

/// One change, as what takes it back.
enum Undo {
    /// Line `index` was this before.
    Set { index: usize, old: String },
    /// A line was inserted at `index`.
    Inserted { index: usize },
    /// This line was deleted from `index`.
    Deleted { index: usize, line: String },
    /// Every line was replaced (the defaults restored); these were the lines.
    Replaced { old: Vec<String> },
}

impl Undo {
    /// Bytes of text the entry keeps.
    fn bytes(&self) -> usize {
        match self {
            Undo::Set { old, .. } | Undo::Deleted { line: old, .. } => old.len(),
            Undo::Inserted { .. } => 0,
            Undo::Replaced { old } => old.iter().map(String::len).sum(),
        }
    }
}

impl OptionsScreen {
    /// The screen for `games` (id, name) that have options files: the file itself at once
    /// when there is one game (the step to send comes back), a list to pick from otherwise.
    pub(crate) fn open(games: Vec<(String, String)>) -> (OptionsScreen, OptionsStep) {
        let mut screen = OptionsScreen {
            stage: Stage::Pick(Vec::new()),
            notice: None,
        };
        let step = match <[(String, String); 1]>::try_from(games) {
            Ok([(id, name)]) => screen.load(id, name),
            Err(games) => {
                screen.stage = Stage::Pick(games);
                OptionsStep::Redraw
            }
        };
        (screen, step)
    }

    /// The file asked for has come (or could not be read). Returns what to do: redraw (the
    /// editor is up), or back to the menu with the reason. Ignored (`Unchanged`) unless a
    /// file was being loaded.
    pub(crate) fn loaded(&mut self, r: Result<OptionsFile, String>) -> OptionsStep {
        let Stage::Loading(game_id, name) = &self.stage else {
            return OptionsStep::Unchanged;
        };
        let file = match r {
            Ok(file) => file,
            Err(why) => return OptionsStep::Back(Some(Notice::error(&why))),
        };
        let lines = split_lines(&file.text);
        let bytes = size_of(&lines);
        if bytes > MAX_FILE_BYTES || lines.len() > MAX_LINES {
            let why = format!(
                "Your {name} options file is too large to edit here ({} lines, {bytes} bytes; \
                 at most {MAX_LINES} lines and {MAX_FILE_BYTES} bytes).",
                lines.len()
            );
            return OptionsStep::Back(Some(Notice::error(&why)));
        }
        self.notice = (!file.exists).then(|| {
            Notice::info(&format!(
                "You have no {name} options file yet: these are the defaults, s saves them as yours."
            ))
        });
        self.stage = Stage::Editing(Box::new(Editor {
            game_id: game_id.clone(),
            name: name.clone(),
            lines,
            bytes,
            template: file.template,
            cursor: 0,
            top: 0,
            prompt: Prompt::Browse,
            undo: VecDeque::new(),
            undo_bytes: 0,
            // A file not there yet counts as unchanged: the game's start would make it with
            // these very defaults.
            clean_at: Some(0),
            saving: None,
        }));
        OptionsStep::Redraw
    }

    /// The answer to a save. Returns what to do next; `Unchanged` unless a save was out.
    pub(crate) fn saved(&mut self, r: Result<(), String>) -> OptionsStep {
        let Stage::Editing(ed) = &mut self.stage else {
            return OptionsStep::Unchanged;
        };
        let Some(leave) = ed.saving.take() else {
            return OptionsStep::Unchanged;
        };
        match r {
            Ok(()) => {
                ed.clean_at = Some(ed.undo.len());
                let text = format!("Your {} options were saved.", ed.name);
                if leave {
                    return OptionsStep::Back(Some(Notice::info(&text)));
                }
                self.notice = Some(Notice::info(&text));
            }
            Err(why) => {
                self.notice = Some(Notice::error(&format!("Not saved: {why}")));
            }
        }
        OptionsStep::Redraw
    }

    /// Acts on a key; `rows` is the terminal height (for paging and scrolling).
    pub(crate) fn key(&mut self, key: Key, rows: usize) -> OptionsStep {
        match &mut self.stage {
            Stage::Pick(games) => match key {
                Key::Char(c @ '1'..='9') => {
                    let index = usize::from(c as u8 - b'1');
                    match games.get(index) {
                        Some((id, name)) => {
                            let (id, name) = (id.clone(), name.clone());
                            self.load(id, name)
                        }
                        None => OptionsStep::Unchanged,
                    }
                }
                Key::Char('q' | 'Q') | Key::Escape | Key::Interrupt | Key::Eof => {
                    OptionsStep::Back(None)
                }
                _ => OptionsStep::Unchanged,
            },
            // One request at a time: keys pressed meanwhile are dropped.
            Stage::Loading(..) => OptionsStep::Unchanged,
            Stage::Editing(ed) => {
                if ed.saving.is_some() {
                    return OptionsStep::Unchanged;
                }
                let visible = visible_lines(rows);
                let step = ed.key(key, visible, &mut self.notice);
                ed.scroll(visible);
                step
            }
        }
    }

    /// The whole screen for a `width`×`rows` terminal (drawn without the banner).
    pub(crate) fn frame(&self, width: usize, rows: usize) -> Frame {
        let mut body = Vec::new();
        let (prompt, cursor_col, typing) = match &self.stage {
            Stage::Pick(games) => {
                body.push(title(width, "Edit the options of which game?", None));
                body.push(Line::new(width));
                for (i, (_, name)) in games.iter().take(9).enumerate() {
                    let mut line = Line::new(width);
                    line.push(Style::Plain, INDENT);
                    line.push(Style::Key, &(i + 1).to_string());
                    line.push(Style::Plain, ") ");
                    line.push(Style::Plain, &sanitize(name));
                    body.push(line);
                }
                let (prompt, col) = prompt_line(width, Style::Key, "=> ");
                (prompt, col, false)
            }
            Stage::Loading(_, name) => {
                body.push(title(
                    width,
                    &format!("Options for {}", sanitize(name)),
                    None,
                ));
                body.push(Line::new(width));
                let mut line = Line::new(width);
                line.push(Style::Plain, INDENT);
                line.push(Style::Dim, "Loading your options...");
                body.push(line);
                let (prompt, col) = prompt_line(width, Style::Title, "Please wait...");
                (prompt, col, false)
            }
            Stage::Editing(ed) => {
                body.push(ed.title(width));
                body.push(Line::new(width));
                body.extend(ed.file_lines(width, visible_lines(rows)));
                ed.prompt(width)
            }
        };
        let help = match &self.stage {
            Stage::Pick(_) => "1-9 choose  q back",
            Stage::Loading(..) => "",
            Stage::Editing(ed) => ed.help(),
        };
        // The notice, help and prompt sit on the last three rows whatever the body's length.
        body.truncate(rows.saturating_sub(3));
        while body.len() < rows.saturating_sub(3) {
            body.push(Line::new(width));
        }
        body.push(match &self.notice {
            Some(n) => n.line(width),
            None => Line::new(width),
        });
        let mut help_line = Line::new(width);
        help_line.push(Style::Plain, INDENT);
        help_line.push(Style::Dim, help);
        body.push(help_line);
        let row = body.len();
        body.push(prompt);
        Frame {
            lines: body,
            cursor: Some((row, cursor_col)),
            edit_row: typing.then_some(row),
            flowing: false,
        }
    }

    /// Asks for the file of game `id`.
    fn load(&mut self, id: String, name: String) -> OptionsStep {
        self.notice = None;
        self.stage = Stage::Loading(id.clone(), name);
        OptionsStep::Send(LobbyAction::ReadOptions { game_id: id })
    }
}

impl Editor {
    /// A key while the file is up.
    fn key(&mut self, key: Key, visible: usize, notice: &mut Option<Notice>) -> OptionsStep {
        match &mut self.prompt {
            Prompt::Browse => self.browse_key(key, visible, notice),
            Prompt::Typing { .. } => self.typing_key(key, notice),
            Prompt::ConfirmRestore => {
                self.prompt = Prompt::Browse;
                let Some(template) = self.template.as_deref().filter(|_| key_is_yes(key)) else {
                    *notice = Some(Notice::info("Nothing was changed."));
                    return OptionsStep::Redraw;
                };
                let new = split_lines(template);
                let old = std::mem::replace(&mut self.lines, new);
                self.bytes = size_of(&self.lines);
                self.cursor = 0;
                self.record(Undo::Replaced { old });
                *notice = Some(Notice::info(&format!(
                    "{}'s default options are back: s saves them, u takes them back.",
                    self.name
                )));
                OptionsStep::Redraw
            }
            Prompt::ConfirmQuit => match key {
                Key::Char('y' | 'Y') => {
                    self.prompt = Prompt::Browse;
                    self.save(true, notice)
                }
                Key::Char('n' | 'N') => OptionsStep::Back(Some(Notice::info(&format!(
                    "Your {} options were not changed.",
                    self.name
                )))),
                _ => {
                    self.prompt = Prompt::Browse;
                    *notice = None;
                    OptionsStep::Redraw
                }
            },
        }
    }

    /// A command key.
    fn browse_key(&mut self, key: Key, visible: usize, notice: &mut Option<Notice>) -> OptionsStep {
        let last = self.lines.len().saturating_sub(1);
        let page = visible.saturating_sub(1).max(1);
        let c = match key {
            Key::Move(m) => {
                let to = match m {
                    Move::Up => self.cursor.saturating_sub(1),
                    Move::Down => self.cursor.saturating_add(1),
                    Move::PageUp => self.cursor.saturating_sub(page),
                    Move::PageDown => self.cursor.saturating_add(page),
                    Move::Home => 0,
                    Move::End => last,
                };
                return self.go(to);
            }
            Key::Enter => 'e',
            Key::Escape | Key::Interrupt | Key::Eof => 'q',
            Key::Char(c) => c,
            Key::Backspace | Key::ClearLine => return OptionsStep::Unchanged,
        };
        *notice = None;
        match c {
            'j' => self.go(self.cursor.saturating_add(1)),
            'k' => self.go(self.cursor.saturating_sub(1)),
            'g' => self.go(0),
            'G' => self.go(last),
            'e' if self.lines.is_empty() => self.start_insert(0, notice),
            'e' => self.start_edit(notice),
            'i' => self.start_insert(self.cursor, notice),
            'a' => self.start_insert((self.cursor + 1).min(self.lines.len()), notice),
            'd' => self.delete(notice),
            'u' => self.undo_last(notice),
            's' => self.save(false, notice),
            'R' => {
                if self.template.is_none() {
                    *notice = Some(Notice::error(&format!(
                        "{} has no default options to restore.",
                        self.name
                    )));
                } else {
                    self.prompt = Prompt::ConfirmRestore;
                }
                OptionsStep::Redraw
            }
            'q' if self.changed() => {
                self.prompt = Prompt::ConfirmQuit;
                OptionsStep::Redraw
            }
            'q' => OptionsStep::Back(None),
            _ => {
                *notice = Some(Notice::error(
                    "That key does nothing here: the keys are listed below.",
                ));
                OptionsStep::Redraw
            }
        }
    }

    /// A key while a line is typed: Enter keeps it, Esc or Ctrl-C drops it.
    fn typing_key(&mut self, key: Key, notice: &mut Option<Notice>) -> OptionsStep {
        let Prompt::Typing {
            editor,
            index,
            insert,
        } = &mut self.prompt
        else {
            return OptionsStep::Unchanged;
        };
        match key {
            Key::Char(c) => {
                if c.width() != Some(1) {
                    *notice = Some(Notice::error(
                        "Only characters one column wide can be typed here.",
                    ));
                    return OptionsStep::Redraw;
                }
                match editor.insert(c) {
                    Ok(()) => OptionsStep::EditLine,
                    Err(Reject::TooLong) => {
                        *notice = Some(Notice::error(&too_long_reason(editor.max())));
                        OptionsStep::Redraw
                    }
                    // The decoder never sends control characters.
                    Err(Reject::NotAscii) => OptionsStep::Unchanged,
                }
            }
            Key::Backspace => {
                if editor.backspace() {
                    OptionsStep::EditLine
                } else {
                    OptionsStep::Unchanged
                }
            }
            Key::ClearLine => {
                if editor.clear() {
                    OptionsStep::EditLine
                } else {
                    OptionsStep::Unchanged
                }
            }
            Key::Escape | Key::Interrupt => {
                self.prompt = Prompt::Browse;
                *notice = None;
                OptionsStep::Redraw
            }
            Key::Eof | Key::Move(_) => OptionsStep::Unchanged,
            Key::Enter => {
                let (index, insert) = (*index, *insert);
                let text = editor.as_str().to_owned();
                *notice = None;
                if insert {
                    self.insert_line(index, text);
                    // The next line goes in after it: a pasted block lands line by line.
                    self.prompt = Prompt::Browse;
                    self.start_insert(index + 1, notice);
                } else {
                    self.set_line(index, text);
                    self.prompt = Prompt::Browse;
                }
                OptionsStep::Redraw
            }
        }
    }

    /// Moves the cursor to line `to` (kept within the file).
    fn go(&mut self, to: usize) -> OptionsStep {
        let to = to.min(self.lines.len().saturating_sub(1));
        if to == self.cursor {
            return OptionsStep::Unchanged;
        }
        self.cursor = to;
        OptionsStep::Redraw
    }

    /// `e`: the current line in the line editor, without what cannot be typed.
    fn start_edit(&mut self, notice: &mut Option<Notice>) -> OptionsStep {
        let Some(old) = self.lines.get(self.cursor) else {
            return OptionsStep::Unchanged;
        };
        if old.len() > MAX_LINE_BYTES {
            *notice = Some(Notice::error(&format!(
                "This line is longer than {MAX_LINE_BYTES} bytes: d deletes it, it cannot be edited here."
            )));
            return OptionsStep::Redraw;
        }
        // The other lines' bytes, this line's newline: what is left is this line's room.
        let room = MAX_FILE_BYTES.saturating_sub(self.bytes - old.len());
        let mut editor = LineEditor::with_max(Charset::Any, MAX_LINE_BYTES.min(room));
        let mut dropped = false;
        for c in old.chars() {
            let c = if c == '\t' { ' ' } else { c };
            if c.width() != Some(1) || editor.insert(c).is_err() {
                dropped = true;
            }
        }
        if dropped {
            *notice = Some(Notice::info(
                "Characters that cannot be shown were left out of this line (Esc keeps it as it was).",
            ));
        }
        self.prompt = Prompt::Typing {
            editor,
            index: self.cursor,
            insert: false,
        };
        OptionsStep::Redraw
    }

    /// `i`, `a`: an empty line to type, to go in at `index`, when the caps leave room.
    fn start_insert(&mut self, index: usize, notice: &mut Option<Notice>) -> OptionsStep {
        if self.lines.len() >= MAX_LINES {
            *notice = Some(Notice::error(&format!(
                "A file can have at most {MAX_LINES} lines here."
            )));
            return OptionsStep::Redraw;
        }
        // The new line's newline must fit too.
        if self.bytes + 1 > MAX_FILE_BYTES {
            *notice = Some(Notice::error(&format!(
                "The file is at its size limit ({MAX_FILE_BYTES} bytes)."
            )));
            return OptionsStep::Redraw;
        }
        let room = MAX_FILE_BYTES - (self.bytes + 1);
        self.prompt = Prompt::Typing {
            editor: LineEditor::with_max(Charset::Any, MAX_LINE_BYTES.min(room)),
            index,
            insert: true,
        };
        OptionsStep::Redraw
    }

    /// `d`: the current line goes.
    fn delete(&mut self, notice: &mut Option<Notice>) -> OptionsStep {
        if self.cursor >= self.lines.len() {
            *notice = Some(Notice::error("There is no line to delete."));
            return OptionsStep::Redraw;
        }
        let line = self.lines.remove(self.cursor);
        self.bytes -= line.len() + 1;
        let index = self.cursor;
        self.cursor = self.cursor.min(self.lines.len().saturating_sub(1));
        self.record(Undo::Deleted { index, line });
        OptionsStep::Redraw
    }

    /// Line `index` becomes `text` (no change is recorded when it is the same).
    fn set_line(&mut self, index: usize, text: String) {
        let Some(slot) = self.lines.get_mut(index) else {
            return;
        };
        if *slot == text {
            return;
        }
        self.bytes = self.bytes - slot.len() + text.len();
        let old = std::mem::replace(slot, text);
        self.cursor = index;
        self.record(Undo::Set { index, old });
    }

    /// `text` goes in as line `index`.
    fn insert_line(&mut self, index: usize, text: String) {
        let index = index.min(self.lines.len());
        self.bytes += text.len() + 1;
        self.lines.insert(index, text);
        self.cursor = index;
        self.record(Undo::Inserted { index });
    }

    /// Remembers a change for `u`, forgetting the oldest past the caps.
    fn record(&mut self, change: Undo) {
        // A state that was undone cannot come back, so neither can its being saved.
        if self.clean_at.is_some_and(|c| c > self.undo.len()) {
            self.clean_at = None;
        }
        self.undo_bytes += change.bytes();
        self.undo.push_back(change);
        while self.undo.len() > MAX_UNDO || self.undo_bytes > MAX_FILE_BYTES {
            let Some(old) = self.undo.pop_front() else {
                break;
            };
            self.undo_bytes -= old.bytes();
            self.clean_at = self.clean_at.and_then(|c| c.checked_sub(1));
        }
    }

    /// `u`: takes the last change back.
    fn undo_last(&mut self, notice: &mut Option<Notice>) -> OptionsStep {
        let Some(change) = self.undo.pop_back() else {
            *notice = Some(Notice::error("There is nothing to undo."));
            return OptionsStep::Redraw;
        };
        self.undo_bytes -= change.bytes();
        match change {
            Undo::Set { index, old } => {
                if let Some(slot) = self.lines.get_mut(index) {
                    *slot = old;
                }
                self.cursor = index;
            }
            Undo::Inserted { index } => {
                if index < self.lines.len() {
                    self.lines.remove(index);
                }
                self.cursor = index;
            }
            Undo::Deleted { index, line } => {
                let index = index.min(self.lines.len());
                self.lines.insert(index, line);
                self.cursor = index;
            }
            Undo::Replaced { old } => {
                self.lines = old;
                self.cursor = 0;
            }
        }
        self.bytes = size_of(&self.lines);
        self.cursor = self.cursor.min(self.lines.len().saturating_sub(1));
        *notice = Some(Notice::info("The last change was taken back."));
        OptionsStep::Redraw
    }

    /// `s` (or `y` on the way out): sends the text; `leave` closes the editor once saved.
    fn save(&mut self, leave: bool, notice: &mut Option<Notice>) -> OptionsStep {
        *notice = None;
        self.saving = Some(leave);
        OptionsStep::Send(LobbyAction::WriteOptions {
            game_id: self.game_id.clone(),
            text: join_lines(&self.lines),
        })
    }

    /// Whether the text differs from the file on disk.
    fn changed(&self) -> bool {
        self.clean_at != Some(self.undo.len())
    }

    /// Keeps the cursor's line among the `visible` lines shown.
    fn scroll(&mut self, visible: usize) {
        self.top = first_shown(self.top, self.cursor, visible, self.lines.len());
    }

    /// The title: the game, the size, whether there are unsaved changes.
    fn title(&self, width: usize) -> Line {
        let size = format!(
            "   {} lines, {} of {MAX_FILE_BYTES} bytes",
            self.lines.len(),
            self.bytes
        );
        let mut line = title(
            width,
            &format!("Options for {}", sanitize(&self.name)),
            Some(&size),
        );
        if self.changed() {
            line.push(Style::Key, "   (changed)");
        }
        line
    }

    /// The file's lines that fit `visible` rows: number, marker on the cursor's line, text.
    fn file_lines(&self, width: usize, visible: usize) -> Vec<Line> {
        if self.lines.is_empty() {
            let mut line = Line::new(width);
            line.push(Style::Plain, INDENT);
            line.push(Style::Dim, "(no lines: i adds one)");
            return vec![line];
        }
        let top = first_shown(self.top, self.cursor, visible, self.lines.len());
        let text_width = width.saturating_sub(INDENT.len() + 2 + NUMBER_WIDTH + 2);
        self.lines
            .iter()
            .enumerate()
            .skip(top)
            .take(visible)
            .map(|(i, text)| {
                let here = i == self.cursor;
                let mut line = Line::new(width);
                line.push(Style::Plain, INDENT);
                line.push(Style::Key, if here { "> " } else { "  " });
                let number = format!("{:>NUMBER_WIDTH$}  ", i + 1);
                line.push(if here { Style::Title } else { Style::Dim }, &number);
                line.push(Style::Plain, &shown(text, text_width));
                line
            })
            .collect()
    }

    /// The bottom line, the cursor's column on it, and whether a line is typed there.
    fn prompt(&self, width: usize) -> (Line, usize, bool) {
        if self.saving.is_some() {
            let (line, col) = prompt_line(width, Style::Title, "Saving...");
            return (line, col, false);
        }
        match &self.prompt {
            Prompt::Browse => {
                let (line, col) = prompt_line(width, Style::Key, "=> ");
                (line, col, false)
            }
            Prompt::Typing {
                editor,
                index,
                insert,
            } => {
                let label = if *insert {
                    format!("New line {}: ", index + 1)
                } else {
                    format!("Line {}: ", index + 1)
                };
                let (mut line, _) = prompt_line(width, Style::Key, &label);
                line.set_style(Style::Plain);
                // The last column stays free for the cursor; a long line shows its end.
                let room = width.saturating_sub(line.width() + 1);
                line.push_text(&sanitize(editor.visible_tail(room)));
                let col = line.width();
                (line, col, true)
            }
            Prompt::ConfirmRestore => {
                let text = format!(
                    "Replace every line with {}'s default options? (y/n) ",
                    sanitize(&self.name)
                );
                let (line, col) = prompt_line(width, Style::Key, &text);
                (line, col, false)
            }
            Prompt::ConfirmQuit => {
                let (line, col) = prompt_line(width, Style::Key, "Save your changes first? (y/n) ");
                (line, col, false)
            }
        }
    }

    /// The help line for what the bottom line is doing.
    fn help(&self) -> &'static str {
        match (&self.prompt, self.saving) {
            (_, Some(_)) => "",
            (Prompt::Browse, None) => BROWSE_HELP,
            (Prompt::Typing { insert: true, .. }, None) => {
                "Enter keeps the line and opens the next  Esc stops  Ctrl-U clears"
            }
            (Prompt::Typing { insert: false, .. }, None) => {
                "Enter keeps the line  Esc leaves it as it was  Ctrl-U clears"
            }
            (Prompt::ConfirmRestore, None) => "y replaces the file's lines (not saved until s)",
            (Prompt::ConfirmQuit, None) => "y saves and leaves  n leaves without saving  Esc stays",
        }
    }
}

/// The lobby's side of the options screens: entering, keys, answers.
impl Lobby {
    /// Answer to [`LobbyAction::ReadOptions`]: the file, or why it cannot be edited (shown
    /// in the menu). Ignored unless a file is being loaded.
    pub fn handle_options_read(&mut self, r: Result<OptionsFile, String>) {
        if let Mode::Options(screen) = &mut self.mode {
            let step = screen.loaded(r);
            self.options_step(step);
        }
    }

    /// Answer to [`LobbyAction::WriteOptions`]: saved, or why not. Ignored unless a save is
    /// out.
    pub fn handle_options_saved(&mut self, r: Result<(), String>) {
        if let Mode::Options(screen) = &mut self.mode {
            let step = screen.saved(r);
            self.options_step(step);
        }
    }

    /// `o` in the logged-in menu: the games with an options file to pick from (or that one
    /// game's file at once); a notice when no game has one.
    pub(super) fn open_options(&mut self) {
        let games: Vec<(String, String)> = self
            .ctx
            .games
            .iter()
            .filter(|g| g.options)
            .map(|g| (g.id.clone(), g.name.clone()))
            .collect();
        if games.is_empty() {
            return self.show_notice(Notice::error(
                "None of the games here has an options file to edit.",
            ));
        }
        self.notice = None;
        let (screen, step) = OptionsScreen::open(games);
        self.mode = Mode::Options(Box::new(screen));
        self.mark(Dirty::Full);
        self.options_step(step);
    }

    /// A key on the options screens. Below the minimum size only the keys that leave work,
    /// as on the other screens.
    pub(super) fn options_key(&mut self, key: Key, too_small: bool) {
        let rows = usize::from(self.rows);
        let Mode::Options(screen) = &mut self.mode else {
            return;
        };
        if too_small && !matches!(key, Key::Char('q' | 'Q') | Key::Eof | Key::Escape) {
            return;
        }
        let step = screen.key(key, rows);
        self.options_step(step);
    }

    /// Carries out what the options screen asked for.
    fn options_step(&mut self, step: OptionsStep) {
        match step {
            OptionsStep::Unchanged => {}
            OptionsStep::EditLine => self.mark(Dirty::EditLine),
            OptionsStep::Redraw => self.mark(Dirty::Refresh),
            OptionsStep::Back(notice) => self.back_to_menu(notice),
            OptionsStep::Send(action) => {
                self.actions.push_back(action);
                self.mark(Dirty::Refresh);
            }
        }
    }
}

/// The heading line: `text` in bold, then `extra` dimmed.
fn title(width: usize, text: &str, extra: Option<&str>) -> Line {
    let mut line = Line::new(width);
    line.push(Style::Plain, INDENT);
    line.push(Style::Title, text);
    if let Some(extra) = extra {
        line.push(Style::Dim, extra);
    }
    line
}

/// A bottom line holding `text`, and the column after it.
fn prompt_line(width: usize, style: Style, text: &str) -> (Line, usize) {
    let mut line = Line::new(width);
    line.push(Style::Plain, INDENT);
    line.push(style, text);
    let col = line.width();
    (line, col)
}

/// How many of the file's lines fit a terminal `rows` high (at least one).
fn visible_lines(rows: usize) -> usize {
    rows.saturating_sub(FIXED_LINES).max(1)
}

/// The first line to show so that `cursor` is among the `visible` shown, moving as little as
/// possible from `top`.
fn first_shown(top: usize, cursor: usize, visible: usize, len: usize) -> usize {
    let top = if cursor < top {
        cursor
    } else if cursor >= top + visible {
        cursor + 1 - visible
    } else {
        top
    };
    // No empty rows under the last line while there are lines above the top.
    top.min(len.saturating_sub(visible))
}

/// `y` answers yes; anything else is no.
fn key_is_yes(key: Key) -> bool {
    matches!(key, Key::Char('y' | 'Y'))
}

/// Why a line cannot grow, given the cap its editor was made with.
fn too_long_reason(max: usize) -> String {
    if max >= MAX_LINE_BYTES {
        format!("A line can be at most {MAX_LINE_BYTES} bytes.")
    } else {
        format!("The file can be at most {MAX_FILE_BYTES} bytes: this line cannot grow.")
    }
}

/// The text's lines (a last line end does not start another line).
fn split_lines(text: &str) -> Vec<String> {
    if text.is_empty() {
        return Vec::new();
    }
    let text = text.strip_suffix('\n').unwrap_or(text);
    text.split('\n').map(str::to_owned).collect()
}

/// The file's text: every line ended by a newline.
fn join_lines(lines: &[String]) -> String {
    let mut text = String::with_capacity(size_of(lines));
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    text
}

/// The bytes `lines` take in a file.
fn size_of(lines: &[String]) -> usize {
    lines.iter().map(|l| l.len() + 1).sum()
}

/// A line of the file as it is drawn, at most `max` columns: control characters in caret
/// notation (`^[`, `^?`), anything not one column wide as `?`, a tab as a space, and `>` at
/// the end when there is more than fits. Nothing of the file reaches the terminal raw.
fn shown(text: &str, max: usize) -> String {
    let mut out = String::new();
    let mut cols = 0;
    let mut push = |s: &str, n: usize| -> bool {
        if cols + n > max {
            return false;
        }
        out.push_str(s);
        cols += n;
        true
    };
    let mut complete = true;
    for c in text.chars() {
        let mut buf = [0u8; 4];
        let fits = match c {
            '\t' => push(" ", 1),
            '\u{7f}' => push("^?", 2),
            c if (c as u32) < 0x20 => {
                let caret = [b'^', c as u8 + 0x40];
                push(std::str::from_utf8(&caret).unwrap_or("?"), 2)
            }
            c if c.is_control() || c.width() != Some(1) => push("?", 1),
            c => push(c.encode_utf8(&mut buf), 1),
        };
        if !fits {
            complete = false;
            break;
        }
    }
    if !complete && max > 0 {
        // Make room for the marker: drop the last character shown.
        let mut shown: Vec<char> = out.chars().collect();
        while shown.len() >= max {
            shown.pop();
        }
        out = shown.into_iter().collect();
        out.push('>');
    }
    out
}

#[cfg(test)]
#[path = "options_tests.rs"]
mod tests;
