//! The admin screen (`a` in the logged-in menu, offered to admin accounts only): every
//! connection on the server as the control core gathers it from the data cores (who, from
//! where, playing or watching what, idle and connected times, and the `core.slot.generation`
//! id that `dungeongate admin kick` takes), and the orders an operator gives from a terminal:
//! kick the selected connection (after a reason and a `y`), one broadcast line for every
//! player, lock or unlock an account, stop new games or allow them again (each after a `y`).
//!
//! Keys: a row's letter or `+`/`-` select, `>`/space and `<` page, `r` refreshes, `k` kicks,
//! `b` broadcasts, `l`/`u` lock/unlock, `d`/`e` stop/allow new games, `q` back. The row
//! letters leave out the screen's own keys, and `k` kicks rather than moving up (the keys
//! screen's `j`/`k`): a kick is the thing this screen is for, so it gets the obvious key.
//!
//! Names, game ids and reasons come from other players and are sanitised when drawn; what
//! the admin types is printable ASCII. One request at a time: while one is out, input is
//! discarded. The lobby opens this screen for an admin only, and the session checks the
//! account again before it asks the control core anything.

use super::line_edit::{Charset, LineEditor, Reject};
use super::screen::{sanitize, Frame, Line, Notice, Style, INDENT};
use super::watch::{duration, pad};
use super::{Dirty, Key, Lobby, LobbyAction, Mode};
use crate::admin::{SessionId, SessionInfo, MAX_BROADCAST, MAX_REASON};

/// Row letters: `b d e k l q r u` are the screen's own keys.
const ROW_KEYS: &str = "acfghijmnopstvwxyz";
/// Lines besides the rows: title, blank, header, blank, notice, two help lines, prompt.
const FIXED_LINES: usize = 8;
/// Column widths (each with its trailing space) at 80 columns; the rest goes to the id.
const WHO_WIDTH: usize = 14;
const FROM_WIDTH: usize = 16;
const DOING_WIDTH: usize = 14;
const TIME_WIDTH: usize = 6;
/// How an account name prompt's line is capped (account names are far shorter).
const NAME_MAX: usize = 64;
/// What a connection without an account shows as its user.
const GUEST: &str = "(guest)";

/// What a key did on the admin screen.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AdminStep {
    /// Nothing visible changed.
    Unchanged,
    /// Only the line being typed changed.
    EditLine,
    /// Redraw the screen.
    Redraw,
    /// Back to the main menu.
    Back,
    /// Send this request; the screen waits for its answer.
    Send(LobbyAction),
}

/// The request out, and what its success is called.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Waiting {
    /// The connection list.
    List,
    /// A kick of the connection so labelled.
    Kick(String),
    Broadcast,
    /// Locking this account.
    Lock(String),
    /// Unlocking this account.
    Unlock(String),
    /// Stopping (`true`) or allowing new games.
    Drain(bool),
}

/// The connection a kick is about, fixed when `k` was pressed (the list cannot change
/// under the prompt: a refresh is a request, and none is made while a prompt is up).
struct Target {
    id: SessionId,
    /// Who and the id, sanitised, for the question and the answer.
    label: String,
}

/// What the prompt line is doing.
enum Prompt {
    /// Screen keys.
    Browse,
    /// Why the target is kicked (empty: the server's default reason).
    KickReason { target: Target, editor: LineEditor },
    /// "Kick …? y/n".
    ConfirmKick { target: Target, reason: String },
    /// The broadcast line.
    Broadcast(LineEditor),
    /// The account to lock.
    LockName(LineEditor),
    /// Why it is locked (empty: no reason).
    LockReason { name: String, editor: LineEditor },
    /// The account to unlock.
    UnlockName(LineEditor),
    /// Stop (`true`) or allow new games? y/n.
    ConfirmDrain(bool),
}

/// The admin screen's state.
pub(crate) struct AdminMenu {
    /// The connections, once the control core has sent them (kept in its order: by id).
    sessions: Option<Vec<SessionInfo>>,
    /// The selected row's index in `sessions`; the page shown is the one holding it.
    selected: usize,
    /// What the prompt line does.
    prompt: Prompt,
    /// The request out, if any (input is discarded meanwhile).
    waiting: Option<Waiting>,
    /// The line under the list: the last answer, or what the prompt is asking for.
    notice: Option<Notice>,
}

impl AdminMenu {
    /// A screen waiting for its list: the caller sends [`LobbyAction::AdminSessions`].
    pub(crate) fn new() -> AdminMenu {
        AdminMenu {
            sessions: None,
            selected: 0,
            prompt: Prompt::Browse,
            waiting: Some(Waiting::List),
            notice: None,
        }
    }

    /// The answer to a list request. Returns whether the screen changed (false when no list
    /// was waited for). The selection stays on the same connection when it is still there.
    pub(crate) fn listed(&mut self, r: Result<Vec<SessionInfo>, String>) -> bool {
        if self.waiting != Some(Waiting::List) {
            return false;
        }
        self.waiting = None;
        match r {
            Ok(sessions) => {
                let kept = self
                    .selected_session()
                    .and_then(|old| sessions.iter().position(|s| s.id == old.id));
                self.selected = kept.unwrap_or(self.selected);
                self.sessions = Some(sessions);
                self.clamp_selection();
            }
            Err(message) => self.notice = Some(Notice::error(&message)),
        }
        true
    }

    /// The answer to an order (kick, broadcast, lock, unlock, drain): done, or the error
    /// text as the server gave it. Returns whether the screen changed.
    pub(crate) fn done(&mut self, r: Result<(), String>) -> bool {
        let Some(waiting) = self.waiting.take_if(|w| *w != Waiting::List) else {
            return false;
        };
        self.notice = Some(match r {
            Ok(()) => Notice::info(&match waiting {
                Waiting::Kick(label) => format!("Kicked {label}; r refreshes the list."),
                Waiting::Broadcast => "Sent: every player's lobby shows it.".to_string(),
                Waiting::Lock(name) => format!("Locked {name}; its connections are closed."),
                Waiting::Unlock(name) => format!("Unlocked {name}."),
                Waiting::Drain(true) => {
                    "New games are stopped (running games go on); e allows them again.".into()
                }
                Waiting::Drain(false) | Waiting::List => "New games are allowed again.".into(),
            }),
            Err(message) => Notice::error(&message),
        });
        true
    }

    /// Whether the screen's own keys are in use (not a prompt): `q` then means back.
    pub(crate) fn is_browsing(&self) -> bool {
        matches!(self.prompt, Prompt::Browse)
    }

    /// Acts on a key; `rows` is the terminal height (for paging).
    pub(crate) fn key(&mut self, key: Key, rows: usize) -> AdminStep {
        if self.waiting.is_some() {
            return AdminStep::Unchanged;
        }
        match &self.prompt {
            Prompt::Browse => self.browse_key(key, rows),
            Prompt::ConfirmKick { .. } => self.confirm_kick(key),
            Prompt::ConfirmDrain(on) => {
                let on = *on;
                self.prompt = Prompt::Browse;
                match key {
                    Key::Char('y' | 'Y') => {
                        self.send(Waiting::Drain(on), LobbyAction::AdminDrain { on })
                    }
                    // Anything else changes nothing: stopping a server's games needs a "y".
                    _ => self.say_info("Nothing changed."),
                }
            }
            Prompt::KickReason { .. }
            | Prompt::Broadcast(_)
            | Prompt::LockName(_)
            | Prompt::LockReason { .. }
            | Prompt::UnlockName(_) => self.edit_key(key),
        }
    }

    /// The whole screen for a `width`×`rows` terminal (drawn without the banner).
    pub(crate) fn frame(&self, width: usize, rows: usize) -> Frame {
        let (lines, (row, col), editing) = self.lines(width, rows);
        Frame {
            lines,
            cursor: Some((row, col)),
            edit_row: editing.then_some(row),
            flowing: false,
        }
    }

    /// The screen's lines, the cursor (row, column), and whether the cursor's line is being
    /// typed on (redrawn alone on each edit).
    fn lines(&self, width: usize, rows: usize) -> (Vec<Line>, (usize, usize), bool) {
        let per_page = per_page(rows);
        let count = self.sessions.as_ref().map_or(0, Vec::len);
        let pages = count.div_ceil(per_page).max(1);
        let page = (self.selected / per_page).min(pages - 1);
        let shown = self.sessions.as_deref().unwrap_or_default();
        let shown = shown.get(page * per_page..).unwrap_or_default();
        let shown = shown.get(..per_page).unwrap_or(shown);
        // An IPv6 address (up to 39 characters) gets what a wider terminal has to spare.
        let longest = shown.iter().map(|s| s.source.to_string().len() + 1).max();
        let from_width = longest
            .unwrap_or(0)
            .clamp(FROM_WIDTH, FROM_WIDTH + width.saturating_sub(80));
        let mut out = Vec::new();
        let mut title = Line::new(width);
        title.push(Style::Plain, INDENT);
        title.push(Style::Title, "Admin: connections");
        if self.sessions.is_some() {
            let mut counts = format!("   {count} connected");
            if pages > 1 {
                counts.push_str(&format!(", page {} of {pages}", page + 1));
            }
            title.push(Style::Dim, &counts);
        }
        out.push(title);
        out.push(Line::new(width));
        let mut header = Line::new(width);
        header.push(Style::Plain, INDENT);
        header.push(Style::Plain, "     ");
        header.set_style(Style::Title);
        for (name, w) in [
            ("Who", WHO_WIDTH),
            ("From", from_width),
            ("Doing", DOING_WIDTH),
            ("Idle", TIME_WIDTH),
            ("Conn", TIME_WIDTH),
            ("Id", 0),
        ] {
            header.push_text(&pad(name, w.max(name.len() + 1)));
        }
        out.push(header);
        match &self.sessions {
            None => {
                let text = if self.waiting == Some(Waiting::List) {
                    "Loading the connections..."
                } else {
                    "The connections could not be listed; r tries again, q goes back."
                };
                out.push(dim_line(width, text));
            }
            Some(sessions) if sessions.is_empty() => {
                out.push(dim_line(width, "No connections."));
            }
            Some(_) => {
                for ((i, s), key) in (page * per_page..).zip(shown).zip(ROW_KEYS.chars()) {
                    out.push(row(width, from_width, key, i == self.selected, s));
                }
            }
        }
        out.push(Line::new(width));
        out.push(match &self.notice {
            Some(n) => n.line(width),
            None => Line::new(width),
        });
        let (help, help2) = self.help();
        out.push(dim_line(width, help));
        out.push(dim_line(width, help2));
        let (prompt, editing) = self.prompt_line(width);
        let cursor = (out.len(), prompt.width());
        out.push(prompt);
        (out, cursor, editing)
    }

    /// The prompt line, and whether it is a line being typed.
    fn prompt_line(&self, width: usize) -> (Line, bool) {
        let mut line = Line::new(width);
        line.push(Style::Plain, INDENT);
        if self.waiting.is_some() {
            line.push(Style::Title, "Please wait...");
            return (line, false);
        }
        let (label, editor) = match &self.prompt {
            Prompt::Browse => ("=> ".to_string(), None),
            Prompt::KickReason { editor, .. } | Prompt::LockReason { editor, .. } => {
                ("Reason: ".to_string(), Some(editor))
            }
            Prompt::ConfirmKick { target, .. } => (format!("Kick {}? y/n ", target.label), None),
            Prompt::Broadcast(editor) => ("Message: ".to_string(), Some(editor)),
            Prompt::LockName(editor) => ("Lock account: ".to_string(), Some(editor)),
            Prompt::UnlockName(editor) => ("Unlock account: ".to_string(), Some(editor)),
            Prompt::ConfirmDrain(true) => ("Stop new games on the whole server? y/n ".into(), None),
            Prompt::ConfirmDrain(false) => ("Allow new games again? y/n ".to_string(), None),
        };
        line.push(Style::Key, &label);
        if let Some(editor) = editor {
            line.set_style(Style::Plain);
            // Leave the last column free for the cursor; show the end of a long line.
            let room = width.saturating_sub(line.width() + 1);
            line.push_text(&sanitize(editor.visible_tail(room)));
        }
        (line, editor.is_some())
    }

    /// The two help lines for the current prompt.
    fn help(&self) -> (&'static str, &'static str) {
        match self.prompt {
            Prompt::Browse => (
                "letter or +/- select  >/< page  r refresh  k kick  q back",
                "b broadcast  l lock  u unlock  d stop new games  e allow new games",
            ),
            Prompt::KickReason { .. } | Prompt::LockName(_) => {
                ("Enter goes on  Ctrl-U clears  Esc cancels", "")
            }
            Prompt::Broadcast(_) | Prompt::LockReason { .. } | Prompt::UnlockName(_) => {
                ("Enter sends  Ctrl-U clears  Esc cancels", "")
            }
            Prompt::ConfirmKick { .. } | Prompt::ConfirmDrain(_) => {
                ("y goes ahead, any other key cancels", "")
            }
        }
    }

    /// A key on the list: select, page, refresh, or open a prompt.
    fn browse_key(&mut self, key: Key, rows: usize) -> AdminStep {
        let c = match key {
            Key::Char(c) => c.to_ascii_lowercase(),
            Key::Eof | Key::Escape => return AdminStep::Back,
            _ => return AdminStep::Unchanged,
        };
        let count = self.sessions.as_ref().map_or(0, Vec::len);
        let per_page = per_page(rows);
        let page = self.selected / per_page;
        match c {
            'q' => AdminStep::Back,
            'r' => self.send(Waiting::List, LobbyAction::AdminSessions),
            'k' => {
                let Some(s) = self.selected_session() else {
                    return self.say_error("There is no connection to kick.");
                };
                let target = Target {
                    id: s.id,
                    label: format!("{} ({})", who(s), s.id),
                };
                self.notice = Some(Notice::info(&format!(
                    "Kicking {}: the reason they are shown, or Enter for the default.",
                    target.label
                )));
                let editor = LineEditor::with_max(Charset::Ascii, MAX_REASON);
                self.prompt = Prompt::KickReason { target, editor };
                AdminStep::Redraw
            }
            'b' => self.ask(
                Prompt::Broadcast(LineEditor::with_max(Charset::Ascii, MAX_BROADCAST)),
                "One line for every player's lobby (players in a game see it when back).",
            ),
            'l' => self.ask(
                Prompt::LockName(LineEditor::with_max(Charset::Ascii, NAME_MAX)),
                "Which account to lock? Its connections are closed.",
            ),
            'u' => self.ask(
                Prompt::UnlockName(LineEditor::with_max(Charset::Ascii, NAME_MAX)),
                "Which account to unlock?",
            ),
            'd' => self.ask(
                Prompt::ConfirmDrain(true),
                "No new game can start anywhere until e; running games go on.",
            ),
            'e' => self.ask(Prompt::ConfirmDrain(false), "New games may start again."),
            '+' => self.select(self.selected.saturating_add(1)),
            '-' => self.select(self.selected.saturating_sub(1)),
            '>' | ' ' if (page + 1) * per_page < count => self.select((page + 1) * per_page),
            '<' if page > 0 => self.select((page - 1) * per_page),
            c => match ROW_KEYS.find(c) {
                Some(row) if row < per_page && page * per_page + row < count => {
                    self.select(page * per_page + row)
                }
                _ => AdminStep::Unchanged,
            },
        }
    }

    /// A key while a line is typed.
    fn edit_key(&mut self, key: Key) -> AdminStep {
        let Some(editor) = self.editor_mut() else {
            return AdminStep::Unchanged;
        };
        match key {
            Key::Char(c) => match editor.insert(c) {
                Ok(()) => AdminStep::EditLine,
                Err(Reject::NotAscii) => {
                    self.say_error("Only ASCII letters, digits and punctuation can be typed here.")
                }
                Err(Reject::TooLong) => self.say_error("That is as long as this line can be."),
            },
            Key::Backspace => changed(editor.backspace()),
            Key::ClearLine => changed(editor.clear()),
            Key::Enter => self.submit_line(),
            Key::Escape | Key::Interrupt => self.cancel_prompt(),
            Key::Eof if editor.is_empty() => self.cancel_prompt(),
            Key::Eof | Key::Move(_) => AdminStep::Unchanged,
        }
    }

    /// Enter on a typed line: on to the next question, or the request.
    fn submit_line(&mut self) -> AdminStep {
        let text = |editor: &LineEditor| editor.as_str().trim().to_owned();
        match std::mem::replace(&mut self.prompt, Prompt::Browse) {
            Prompt::KickReason { target, editor } => {
                let reason = text(&editor);
                // The control core puts in its default for an empty reason.
                let told = if reason.is_empty() {
                    "They are told an administrator closed the connection.".to_string()
                } else {
                    format!("They are told: {reason}")
                };
                self.notice = Some(Notice::info(&told));
                self.prompt = Prompt::ConfirmKick { target, reason };
                AdminStep::Redraw
            }
            Prompt::Broadcast(editor) => match text(&editor) {
                t if t.is_empty() => self.say_info("Nothing was sent."),
                t => self.send(Waiting::Broadcast, LobbyAction::AdminBroadcast { text: t }),
            },
            Prompt::LockName(editor) => match text(&editor) {
                name if name.is_empty() => self.say_info("Nothing was locked."),
                name => {
                    self.notice = Some(Notice::info(&format!(
                        "Locking {name}: a reason its connections are shown, or Enter for none."
                    )));
                    let editor = LineEditor::with_max(Charset::Ascii, MAX_REASON);
                    self.prompt = Prompt::LockReason { name, editor };
                    AdminStep::Redraw
                }
            },
            Prompt::LockReason { name, editor } => {
                let reason = Some(text(&editor)).filter(|r| !r.is_empty());
                let action = LobbyAction::AdminLock {
                    name: name.clone(),
                    locked: true,
                    reason,
                };
                self.send(Waiting::Lock(name), action)
            }
            Prompt::UnlockName(editor) => match text(&editor) {
                name if name.is_empty() => self.say_info("Nothing was unlocked."),
                name => {
                    let action = LobbyAction::AdminLock {
                        name: name.clone(),
                        locked: false,
                        reason: None,
                    };
                    self.send(Waiting::Unlock(name), action)
                }
            },
            other => {
                self.prompt = other;
                AdminStep::Unchanged
            }
        }
    }

    /// A key at "Kick …? y/n".
    fn confirm_kick(&mut self, key: Key) -> AdminStep {
        let Prompt::ConfirmKick { target, reason } =
            std::mem::replace(&mut self.prompt, Prompt::Browse)
        else {
            return AdminStep::Unchanged;
        };
        match key {
            Key::Char('y' | 'Y') => {
                let action = LobbyAction::AdminKick {
                    session: target.id,
                    reason,
                };
                self.send(Waiting::Kick(target.label), action)
            }
            // Anything else kicks nobody: closing someone's connection needs a "y".
            _ => self.say_info("Nobody was kicked."),
        }
    }

    /// The editor of the prompt being typed, if one is.
    fn editor_mut(&mut self) -> Option<&mut LineEditor> {
        match &mut self.prompt {
            Prompt::KickReason { editor, .. }
            | Prompt::LockReason { editor, .. }
            | Prompt::Broadcast(editor)
            | Prompt::LockName(editor)
            | Prompt::UnlockName(editor) => Some(editor),
            Prompt::Browse | Prompt::ConfirmKick { .. } | Prompt::ConfirmDrain(_) => None,
        }
    }

    /// Opens `prompt`, saying what it is for.
    fn ask(&mut self, prompt: Prompt, explain: &str) -> AdminStep {
        self.prompt = prompt;
        self.say_info(explain)
    }

    /// Sends `action` and waits for its answer.
    fn send(&mut self, waiting: Waiting, action: LobbyAction) -> AdminStep {
        self.prompt = Prompt::Browse;
        self.notice = None;
        self.waiting = Some(waiting);
        AdminStep::Send(action)
    }

    /// Back to the list from a prompt, nothing done.
    fn cancel_prompt(&mut self) -> AdminStep {
        self.prompt = Prompt::Browse;
        self.notice = None;
        AdminStep::Redraw
    }

    fn select(&mut self, index: usize) -> AdminStep {
        let before = self.selected;
        self.selected = index;
        self.clamp_selection();
        if self.selected == before {
            AdminStep::Unchanged
        } else {
            AdminStep::Redraw
        }
    }

    fn clamp_selection(&mut self) {
        let count = self.sessions.as_ref().map_or(0, Vec::len);
        self.selected = self.selected.min(count.saturating_sub(1));
    }

    fn selected_session(&self) -> Option<&SessionInfo> {
        self.sessions.as_ref()?.get(self.selected)
    }

    fn say_error(&mut self, text: &str) -> AdminStep {
        self.notice = Some(Notice::error(text));
        AdminStep::Redraw
    }

    fn say_info(&mut self, text: &str) -> AdminStep {
        self.notice = Some(Notice::info(text));
        AdminStep::Redraw
    }
}

/// The lobby's side of the admin screen: opening it, its keys, its answers.
impl Lobby {
    /// Answer to [`LobbyAction::AdminSessions`]: every connection, or why not (shown as
    /// is). Ignored unless the admin screen waits for a list.
    pub fn handle_admin_sessions(&mut self, r: Result<Vec<SessionInfo>, String>) {
        if let Mode::Admin(menu) = &mut self.mode {
            if menu.listed(r) {
                self.mark(Dirty::Full);
            }
        }
    }

    /// Answer to [`LobbyAction::AdminKick`], [`LobbyAction::AdminBroadcast`],
    /// [`LobbyAction::AdminDrain`] and [`LobbyAction::AdminLock`]: done, or the server's
    /// error text (shown as is). Ignored unless the admin screen waits for one of them.
    pub fn handle_admin_result(&mut self, r: Result<(), String>) {
        if let Mode::Admin(menu) = &mut self.mode {
            if menu.done(r) {
                self.mark(Dirty::Full);
            }
        }
    }

    /// `a` in the logged-in menu: the admin screen, waiting for its list. Only for an admin
    /// account (the menu offers `a` to admins only; checked here too, so no other way in
    /// opens it).
    pub(super) fn open_admin(&mut self) {
        if !self.user.as_ref().is_some_and(|u| u.admin) {
            return;
        }
        self.notice = None;
        self.mode = Mode::Admin(Box::new(AdminMenu::new()));
        self.actions.push_back(LobbyAction::AdminSessions);
        self.mark(Dirty::Full);
    }

    /// A key on the admin screen. Below the minimum size only Escape, Ctrl-C and Ctrl-D
    /// reach it, and `q` on the list (as on the watch and keys screens).
    pub(super) fn admin_key(&mut self, key: Key, too_small: bool) {
        let rows = usize::from(self.rows);
        let Mode::Admin(menu) = &mut self.mode else {
            return;
        };
        let escapes = matches!(key, Key::Eof | Key::Escape | Key::Interrupt)
            || (menu.is_browsing() && matches!(key, Key::Char('q' | 'Q')));
        if too_small && !escapes {
            return;
        }
        match menu.key(key, rows) {
            AdminStep::Unchanged => {}
            AdminStep::EditLine => self.mark(Dirty::EditLine),
            AdminStep::Redraw => self.mark(Dirty::Refresh),
            AdminStep::Back => self.back_to_menu(None),
            AdminStep::Send(action) => {
                self.actions.push_back(action);
                self.mark(Dirty::Refresh);
            }
        }
    }
}

/// Rows of connections that fit a terminal `rows` high (at least one, at most the letters).
fn per_page(rows: usize) -> usize {
    rows.saturating_sub(FIXED_LINES).clamp(1, ROW_KEYS.len())
}

/// The account a connection is logged in as, sanitised, or that it has none.
fn who(s: &SessionInfo) -> String {
    s.user
        .as_deref()
        .map_or_else(|| GUEST.to_string(), sanitize)
}

/// One connection's row: marker, letter, who, from, doing, idle, connected, id.
fn row(width: usize, from_width: usize, key: char, selected: bool, s: &SessionInfo) -> Line {
    let doing = match (&s.game, s.watching) {
        (Some(game), true) => format!("watching {}", sanitize(game)),
        (None, true) => "watching".to_string(),
        (Some(game), false) => sanitize(game),
        (None, false) => "-".to_string(),
    };
    let mut line = Line::new(width);
    line.push(Style::Plain, INDENT);
    line.push(Style::Key, if selected { "> " } else { "  " });
    line.push(Style::Key, &key.to_string());
    line.push(Style::Plain, ") ");
    let who_style = if s.user.is_some() {
        Style::Plain
    } else {
        Style::Dim
    };
    line.push(who_style, &pad(&who(s), WHO_WIDTH));
    line.push(Style::Plain, &pad(&s.source.to_string(), from_width));
    line.push_text(&pad(&doing, DOING_WIDTH));
    line.push_text(&pad(&duration(s.idle_ms / 1000), TIME_WIDTH));
    line.push_text(&pad(&duration(s.connected_ms / 1000), TIME_WIDTH));
    line.push_text(&s.id.to_string());
    line
}

/// An indented line of faint text.
fn dim_line(width: usize, text: &str) -> Line {
    let mut line = Line::new(width);
    line.push(Style::Plain, INDENT);
    line.push(Style::Dim, text);
    line
}

/// A redraw of the typed line when an edit changed it.
fn changed(did: bool) -> AdminStep {
    if did {
        AdminStep::EditLine
    } else {
        AdminStep::Unchanged
    }
}

#[cfg(test)]
#[path = "admin_tests.rs"]
mod tests;
