//! The SSH keys screen (`k` in the logged-in menu): the account's keys (type, SHA-256
//! fingerprint, comment, date added), `a` to add one by pasting an OpenSSH public key line,
//! `d`/`x` to remove the selected one after a y/n, `q` back. Also the question a guest gets
//! right after registering when their SSH client logged in with a key: bind it to the new
//! account?
//!
//! A pasted line is checked here first ([`crate::auth::parse_public_key_line`], pure) so a
//! mistake is named at once; the control core checks it again and has the final word
//! (duplicates and the key limit are decided in the store's write transaction). A pasted
//! private key is recognised by its first line and the rest of it is swallowed, unechoed,
//! until its last line: none of it lands in the list as key presses.
//!
//! One request at a time: while the list, an add or a removal is out, input is discarded.

use super::line_edit::{Charset, LineEditor, Reject};
use super::screen::{sanitize, Frame, Line, Notice, Style, INDENT};
use super::{Dirty, Key, Lobby, LobbyAction, Mode, Pending};
use crate::auth::{key_fingerprint, parse_public_key_line, KeyError, MAX_KEYS_PER_ACCOUNT};

/// Longest line the add prompt takes, in bytes: an 8192-bit RSA key line is ~1.4 KiB and a
/// comment at most 256 bytes, so anything longer is not a key we could accept.
pub(crate) const MAX_PASTE: usize = 8 * 1024;
/// Lines besides the keys: title, blank, blank, notice, help, prompt.
const FIXED_LINES: usize = 6;
/// Lines per key: type and fingerprint; date added and comment.
const LINES_PER_KEY: usize = 2;
/// Width of the type column (`ecdsa-sha2-nistp256` and a space).
const TYPE_WIDTH: usize = 20;

/// One SSH key of the logged-in account, as the keys screen shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyEntry {
    /// `ssh-ed25519`, `ecdsa-sha2-nistp256` or `ssh-rsa`.
    pub key_type: String,
    /// `SHA256:…`, as `ssh-keygen -l` prints it; also names the key in a removal.
    pub fingerprint: String,
    /// The key line's comment (untrusted text: sanitised when drawn).
    pub comment: String,
    /// When it was added (seconds since the Unix epoch); 0 for records from before the date
    /// was kept, shown as "—".
    pub added_unix: u64,
}

/// What a key did on the keys screen.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum KeysStep {
    /// Nothing visible changed.
    Unchanged,
    /// Only the line being typed changed.
    EditLine,
    /// Redraw the screen.
    Redraw,
    /// Back to the main menu.
    Back,
    /// Send this request; the screen waits for [`KeysMenu::answered`].
    Send(LobbyAction),
}

/// The request the screen is waiting for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Waiting {
    /// The list.
    List,
    /// Adding the key with this fingerprint.
    Add(String),
    /// Removing the key with this fingerprint.
    Remove(String),
}

/// What the prompt line is doing.
enum Prompt {
    /// Menu keys.
    Browse,
    /// A key line is being pasted or typed. `overflow`: more was typed than fits, so the
    /// line is not a whole key whatever it ends with.
    Adding { editor: LineEditor, overflow: bool },
    /// A private key was pasted: its lines are read (never shown) and dropped until its
    /// `-----END` line. Only the line in progress is kept, zeroized when dropped.
    SwallowingPrivateKey { editor: LineEditor },
    /// "Remove key N?" for the key at this index.
    ConfirmRemove(usize),
}

/// The keys screen's state.
pub(crate) struct KeysMenu {
    /// The keys, once the control core has sent them.
    keys: Option<Vec<KeyEntry>>,
    /// The selected key's index (kept within the list).
    selected: usize,
    /// What the prompt line does.
    prompt: Prompt,
    /// The request out, if any (input is discarded meanwhile).
    waiting: Option<Waiting>,
    /// The line under the list.
    notice: Option<Notice>,
}

impl KeysMenu {
    /// A screen waiting for its list: the caller sends [`LobbyAction::ListKeys`].
    pub(crate) fn new() -> KeysMenu {
        KeysMenu {
            keys: None,
            selected: 0,
            prompt: Prompt::Browse,
            waiting: Some(Waiting::List),
            notice: None,
        }
    }

    /// The control core's answer to the request out: the account's keys now, or why not.
    /// Returns whether the screen changed (false when nothing was waited for).
    pub(crate) fn answered(&mut self, r: Result<Vec<KeyEntry>, String>) -> bool {
        let Some(waiting) = self.waiting.take() else {
            return false;
        };
        match r {
            Ok(keys) => {
                self.notice = match waiting {
                    Waiting::List => None,
                    Waiting::Add(fp) => Some(Notice::info(&format!("Added key {fp}."))),
                    Waiting::Remove(fp) => Some(Notice::info(&format!("Removed key {fp}."))),
                };
                self.keys = Some(keys);
                self.prompt = Prompt::Browse;
            }
            Err(message) => {
                self.notice = Some(Notice::error(&message));
                // A refused add stays at the prompt (emptied) so another line can be pasted;
                // anything else goes back to the list.
                self.prompt = match (waiting, std::mem::replace(&mut self.prompt, Prompt::Browse)) {
                    (Waiting::Add(_), Prompt::Adding { mut editor, .. }) => {
                        editor.clear();
                        Prompt::Adding {
                            editor,
                            overflow: false,
                        }
                    }
                    _ => Prompt::Browse,
                };
            }
        }
        self.clamp_selection();
        true
    }

    /// Acts on a key.
    pub(crate) fn key(&mut self, key: Key) -> KeysStep {
        if self.waiting.is_some() {
            return KeysStep::Unchanged;
        }
        match &mut self.prompt {
            Prompt::Browse => self.browse_key(key),
            Prompt::Adding { .. } => self.adding_key(key),
            Prompt::SwallowingPrivateKey { editor } => match key {
                Key::Escape | Key::Interrupt => self.cancel_prompt(),
                Key::Enter => {
                    let last = editor.as_str().trim_start().starts_with("-----END");
                    editor.clear();
                    if !last {
                        return KeysStep::Unchanged;
                    }
                    self.prompt = Prompt::Adding {
                        editor: LineEditor::with_max(Charset::Any, MAX_PASTE),
                        overflow: false,
                    };
                    self.say_error(
                        "That was a private key: nothing of it was kept. Paste the .pub line instead.",
                    )
                }
                Key::Char(c) => {
                    // A line too long to be a PEM line is not kept whole; it only needs to be
                    // recognised if it is the END line, which is short.
                    let _ = editor.insert(c);
                    KeysStep::Unchanged
                }
                Key::Backspace | Key::ClearLine | Key::Eof | Key::Move(_) => KeysStep::Unchanged,
            },
            Prompt::ConfirmRemove(index) => {
                let index = *index;
                match key {
                    Key::Char('y' | 'Y') => {
                        let Some(fp) = self.fingerprint_at(index) else {
                            return self.cancel_prompt();
                        };
                        self.prompt = Prompt::Browse;
                        self.notice = None;
                        self.waiting = Some(Waiting::Remove(fp.clone()));
                        KeysStep::Send(LobbyAction::RemoveKey { fingerprint: fp })
                    }
                    // Anything else keeps the key: a removal needs a deliberate "y".
                    _ => {
                        self.prompt = Prompt::Browse;
                        self.say_info("Nothing was removed.")
                    }
                }
            }
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

    /// The screen's lines for a `width`×`rows` terminal, the cursor (row, column), and
    /// whether the cursor's line is a line being typed (redrawn alone on each edit).
    fn lines(&self, width: usize, rows: usize) -> (Vec<Line>, (usize, usize), bool) {
        let mut out = Vec::new();
        let mut title = Line::new(width);
        title.push(Style::Plain, INDENT);
        title.push(Style::Title, "Your SSH keys");
        let visible = visible_keys(rows);
        let top = self.top(visible);
        if let Some(keys) = &self.keys {
            let mut counts = format!("   {} of at most {MAX_KEYS_PER_ACCOUNT}", keys.len());
            if keys.len() > visible {
                let last = (top + visible).min(keys.len());
                counts.push_str(&format!(", showing {}-{last}", top + 1));
            }
            title.push(Style::Dim, &counts);
        }
        out.push(title);
        out.push(Line::new(width));
        match &self.keys {
            None => {
                // No list: still coming, or it could not be read (the notice says why).
                let text = if self.waiting == Some(Waiting::List) {
                    "Loading your keys..."
                } else {
                    "Your keys could not be listed; q goes back."
                };
                let mut line = Line::new(width);
                line.push(Style::Plain, INDENT);
                line.push(Style::Dim, text);
                out.push(line);
            }
            Some(keys) if keys.is_empty() => {
                let mut line = Line::new(width);
                line.push(Style::Plain, INDENT);
                line.push(
                    Style::Dim,
                    "No SSH keys yet: press a and paste your public key (~/.ssh/id_ed25519.pub).",
                );
                out.push(line);
            }
            Some(keys) => {
                for (i, k) in keys.iter().enumerate().skip(top).take(visible) {
                    let (first, second) = self.key_lines(width, i, k);
                    out.push(first);
                    out.push(second);
                }
            }
        }
        out.push(Line::new(width));
        out.push(match &self.notice {
            Some(n) => n.line(width),
            None => Line::new(width),
        });
        let mut help = Line::new(width);
        help.push(Style::Plain, INDENT);
        help.push(Style::Dim, self.help());
        out.push(help);
        let mut prompt = Line::new(width);
        prompt.push(Style::Plain, INDENT);
        let editing = match (&self.waiting, &self.prompt) {
            (Some(_), _) => {
                prompt.push(Style::Title, "Please wait...");
                false
            }
            (None, Prompt::Browse) => {
                prompt.push(Style::Key, "=> ");
                false
            }
            (None, Prompt::Adding { editor, .. }) => {
                prompt.push(Style::Key, "Key: ");
                prompt.set_style(Style::Plain);
                // Leave the last column free for the cursor; show the end of a long line.
                let room = width.saturating_sub(prompt.width() + 1);
                prompt.push_text(&sanitize(editor.visible_tail(room)));
                true
            }
            (None, Prompt::SwallowingPrivateKey { .. }) => {
                prompt.push(Style::Error, "Skipping a private key... ");
                false
            }
            (None, Prompt::ConfirmRemove(i)) => {
                let fp = self.fingerprint_at(*i).unwrap_or_default();
                prompt.push(Style::Key, &format!("Remove key {} ({fp})? y/n ", i + 1));
                false
            }
        };
        let cursor = (out.len(), prompt.width());
        out.push(prompt);
        (out, cursor, editing)
    }

    /// A key in the list: select, add, remove, back.
    fn browse_key(&mut self, key: Key) -> KeysStep {
        let c = match key {
            Key::Char(c) => c,
            Key::Eof | Key::Escape => return KeysStep::Back,
            _ => return KeysStep::Unchanged,
        };
        let count = self.keys.as_ref().map_or(0, Vec::len);
        match c.to_ascii_lowercase() {
            'q' => KeysStep::Back,
            'a' => {
                if count >= MAX_KEYS_PER_ACCOUNT {
                    return self.say_error(&format!(
                        "An account can have at most {MAX_KEYS_PER_ACCOUNT} keys: remove one first."
                    ));
                }
                self.notice = Some(Notice::info(
                    "Paste one public key line (ssh-ed25519 AAAA... comment). Enter adds it, Esc cancels.",
                ));
                self.prompt = Prompt::Adding {
                    editor: LineEditor::with_max(Charset::Any, MAX_PASTE),
                    overflow: false,
                };
                KeysStep::Redraw
            }
            'd' | 'x' => {
                if count == 0 {
                    return self.say_error("There is no key to remove.");
                }
                self.notice = None;
                self.prompt = Prompt::ConfirmRemove(self.selected);
                KeysStep::Redraw
            }
            'j' | '+' => self.select(self.selected.saturating_add(1)),
            'k' | '-' => self.select(self.selected.saturating_sub(1)),
            '1'..='9' => {
                let n = usize::from(c as u8 - b'1');
                if n < count {
                    self.select(n)
                } else {
                    KeysStep::Unchanged
                }
            }
            _ => KeysStep::Unchanged,
        }
    }

    /// A key while a line is being pasted or typed.
    fn adding_key(&mut self, key: Key) -> KeysStep {
        let Prompt::Adding { editor, overflow } = &mut self.prompt else {
            return KeysStep::Unchanged;
        };
        match key {
            Key::Char(c) => match editor.insert(c) {
                Ok(()) => KeysStep::EditLine,
                Err(Reject::TooLong) => {
                    let first = !*overflow;
                    *overflow = true;
                    if first {
                        self.say_error(&format!(
                            "That is longer than any public key line ({MAX_PASTE} characters)."
                        ))
                    } else {
                        KeysStep::Unchanged
                    }
                }
                // Control characters never come from the decoder; nothing to show.
                Err(Reject::NotAscii) => KeysStep::Unchanged,
            },
            Key::Backspace => {
                if editor.backspace() {
                    KeysStep::EditLine
                } else {
                    KeysStep::Unchanged
                }
            }
            Key::ClearLine => {
                *overflow = false;
                if editor.clear() {
                    KeysStep::EditLine
                } else {
                    KeysStep::Unchanged
                }
            }
            Key::Escape | Key::Interrupt => self.cancel_prompt(),
            Key::Eof if editor.is_empty() => self.cancel_prompt(),
            Key::Eof | Key::Move(_) => KeysStep::Unchanged,
            Key::Enter => self.submit_line(),
        }
    }

    /// Enter at the add prompt: check the line, then send it (or say what is wrong and let
    /// the player paste again).
    fn submit_line(&mut self) -> KeysStep {
        let Prompt::Adding { editor, overflow } = &mut self.prompt else {
            return KeysStep::Unchanged;
        };
        if std::mem::take(overflow) {
            editor.clear();
            return self.say_error(&format!(
                "That line was too long to be a public key (at most {MAX_PASTE} characters); nothing was added."
            ));
        }
        let line = editor.as_str().trim().to_owned();
        if line.is_empty() {
            return self.cancel_prompt();
        }
        let parsed = parse_public_key_line(&line);
        editor.clear();
        let key = match parsed {
            Ok(key) => key,
            Err(KeyError::PrivateKey) => {
                let editor = LineEditor::with_max(Charset::Any, MAX_PASTE);
                self.prompt = Prompt::SwallowingPrivateKey { editor };
                return self.say_error(
                    "That is a private key: never share it. Skipping it (Esc stops)...",
                );
            }
            Err(e) => return self.say_error(&format!("Not added: {e}.")),
        };
        let fp = key_fingerprint(&key.blob);
        let keys = self.keys.as_deref().unwrap_or_default();
        if keys.iter().any(|k| k.fingerprint == fp) {
            return self.say_error(&format!("Already on your account: {fp}"));
        }
        self.notice = None;
        self.waiting = Some(Waiting::Add(fp));
        KeysStep::Send(LobbyAction::AddKey { line })
    }

    /// Back to the list from a prompt, saying nothing changed.
    fn cancel_prompt(&mut self) -> KeysStep {
        self.prompt = Prompt::Browse;
        self.notice = None;
        KeysStep::Redraw
    }

    /// Moves the selection to `index` (kept within the list).
    fn select(&mut self, index: usize) -> KeysStep {
        let before = self.selected;
        self.selected = index;
        self.clamp_selection();
        if self.selected == before {
            KeysStep::Unchanged
        } else {
            KeysStep::Redraw
        }
    }

    fn clamp_selection(&mut self) {
        let count = self.keys.as_ref().map_or(0, Vec::len);
        self.selected = self.selected.min(count.saturating_sub(1));
    }

    fn say_error(&mut self, text: &str) -> KeysStep {
        self.notice = Some(Notice::error(text));
        KeysStep::Redraw
    }

    fn say_info(&mut self, text: &str) -> KeysStep {
        self.notice = Some(Notice::info(text));
        KeysStep::Redraw
    }

    fn fingerprint_at(&self, index: usize) -> Option<String> {
        self.keys
            .as_ref()?
            .get(index)
            .map(|k| k.fingerprint.clone())
    }

    /// The first key shown so that the selected one is visible.
    fn top(&self, visible: usize) -> usize {
        (self.selected + 1).saturating_sub(visible)
    }

    /// The help line for the current prompt.
    fn help(&self) -> &'static str {
        match self.prompt {
            Prompt::Browse => "a add  d remove  j/k or 1-9 select  q back",
            Prompt::Adding { .. } => "Enter adds  Ctrl-U clears  Esc cancels",
            Prompt::SwallowingPrivateKey { .. } => "Esc stops",
            Prompt::ConfirmRemove(_) => "y removes the key, any other key keeps it",
        }
    }

    /// The two lines of key `i`: marker, number, type and fingerprint; date and comment.
    fn key_lines(&self, width: usize, i: usize, k: &KeyEntry) -> (Line, Line) {
        let mut first = Line::new(width);
        first.push(Style::Plain, INDENT);
        first.push(Style::Key, if i == self.selected { "> " } else { "  " });
        first.push(Style::Key, &format!("{:>2}", i + 1));
        first.push(Style::Plain, ") ");
        first.push(Style::Plain, &pad(&sanitize(&k.key_type), TYPE_WIDTH));
        first.push(Style::Plain, &sanitize(&k.fingerprint));
        let mut second = Line::new(width);
        second.push(Style::Plain, INDENT);
        second.push(Style::Plain, "        ");
        let added = match k.added_unix {
            0 => "—".to_string(),
            t => crate::date::utc_date(t),
        };
        second.push(Style::Dim, &format!("added {added:<10}  "));
        second.push(Style::Plain, &sanitize(&k.comment));
        (first, second)
    }
}

/// The question after registration: bind the key the client logged in with?
pub(crate) struct KeyOffer {
    /// The offered key's fingerprint, shown in the question.
    pub(crate) fingerprint: String,
    /// The welcome line registration would have shown, shown above the question and kept
    /// for the menu when the answer is no.
    pub(crate) welcome: String,
}

/// The answer to the [`KeyOffer`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum OfferStep {
    /// Not an answer.
    Unchanged,
    /// Yes: bind it.
    Bind,
    /// No.
    Decline,
}

impl KeyOffer {
    /// `y` binds, `n`, Escape, Ctrl-C or Ctrl-D declines; anything else asks again.
    pub(crate) fn key(&self, key: Key) -> OfferStep {
        match key {
            Key::Char('y' | 'Y') => OfferStep::Bind,
            Key::Char('n' | 'N') | Key::Escape | Key::Interrupt | Key::Eof => OfferStep::Decline,
            _ => OfferStep::Unchanged,
        }
    }

    /// The body under the banner, the index of the cursor's line (the last) and the cursor
    /// column, and false: nothing is typed on it.
    pub(crate) fn body(&self, width: usize) -> (Vec<Line>, Option<usize>, usize, bool) {
        let lines = self.lines(width);
        let last = lines.len().checked_sub(1);
        let col = lines.last().map_or(0, Line::width);
        (lines, last, col, false)
    }

    /// The body's lines.
    fn lines(&self, width: usize) -> Vec<Line> {
        let mut welcome = Line::new(width);
        welcome.push(Style::Plain, INDENT);
        welcome.push(Style::Info, &sanitize(&self.welcome));
        let mut explain = Line::new(width);
        explain.push(Style::Plain, INDENT);
        explain.push(
            Style::Plain,
            "Your SSH client logged in with a key. Bound to your account, it logs you in",
        );
        let mut explain2 = Line::new(width);
        explain2.push(Style::Plain, INDENT);
        explain2.push(
            Style::Plain,
            "from now on without a password (k in the menu manages your keys).",
        );
        // The question in two lines: a fingerprint alone is 50 columns.
        let mut ask = Line::new(width);
        ask.push(Style::Plain, INDENT);
        ask.push(
            Style::Key,
            &format!("Bind the key {}", sanitize(&self.fingerprint)),
        );
        let mut ask2 = Line::new(width);
        ask2.push(Style::Plain, INDENT);
        ask2.push(Style::Key, "your client offered to this account? (y/n) ");
        vec![
            welcome,
            Line::new(width),
            explain,
            explain2,
            Line::new(width),
            ask,
            ask2,
        ]
    }
}

/// The lobby's side of the keys screen and the offer: entering, keys, answers.
impl Lobby {
    /// The guest's SSH client logged in with the key of this `SHA256:…` fingerprint: after a
    /// registration on this lobby, the player is asked whether to bind it to the new account.
    pub fn set_offered_key(&mut self, fingerprint: Option<String>) {
        self.offered_key = fingerprint;
    }

    /// Answer to [`LobbyAction::ListKeys`], [`LobbyAction::AddKey`], [`LobbyAction::RemoveKey`]
    /// (the account's keys now, or why not) and [`LobbyAction::BindOfferedKey`]. Ignored
    /// unless one of them is pending.
    pub fn handle_keys_result(&mut self, r: Result<Vec<KeyEntry>, String>) {
        match &mut self.mode {
            Mode::Keys(menu) => {
                let changed = menu.answered(r);
                if changed {
                    self.mark(Dirty::Full);
                }
            }
            Mode::Waiting(Pending::BindKey) => {
                let notice = match r {
                    Ok(_) => Notice::info("Your key is bound: it logs you in from now on."),
                    Err(message) => Notice::error(&format!("The key was not bound: {message}")),
                };
                self.back_to_menu(Some(notice));
            }
            _ => {}
        }
    }

    /// `k` in the logged-in menu: the keys screen, waiting for its list.
    pub(super) fn open_keys(&mut self) {
        self.notice = None;
        self.mode = Mode::Keys(Box::new(KeysMenu::new()));
        self.actions.push_back(LobbyAction::ListKeys);
        self.mark(Dirty::Full);
    }

    /// Registered: ask about the offered key if there is one (once), else the menu with
    /// `welcome`.
    pub(super) fn offer_key_or_welcome(&mut self, welcome: String) {
        match self.offered_key.take() {
            Some(fingerprint) => {
                let offer = KeyOffer {
                    fingerprint,
                    welcome,
                };
                self.mode = Mode::KeyOffer(offer);
                self.mark(Dirty::Full);
            }
            None => self.back_to_menu(Some(Notice::info(&welcome))),
        }
    }

    /// A key on the keys screen or at the offer. Below the minimum size only `q`, Ctrl-D and
    /// Escape reach the keys screen (as in the watch menu).
    pub(super) fn keys_key(&mut self, key: Key, too_small: bool) {
        match &mut self.mode {
            Mode::Keys(menu) => {
                if too_small && !matches!(key, Key::Char('q' | 'Q') | Key::Eof | Key::Escape) {
                    return;
                }
                match menu.key(key) {
                    KeysStep::Unchanged => {}
                    KeysStep::EditLine => self.mark(Dirty::EditLine),
                    KeysStep::Redraw => self.mark(Dirty::Refresh),
                    KeysStep::Back => self.back_to_menu(None),
                    KeysStep::Send(action) => {
                        self.actions.push_back(action);
                        self.mark(Dirty::Refresh);
                    }
                }
            }
            Mode::KeyOffer(offer) => match offer.key(key) {
                OfferStep::Unchanged => {}
                OfferStep::Bind => {
                    self.actions.push_back(LobbyAction::BindOfferedKey);
                    self.mode = Mode::Waiting(Pending::BindKey);
                    self.mark(Dirty::Full);
                }
                OfferStep::Decline => {
                    let welcome = Notice::info(&offer.welcome);
                    self.back_to_menu(Some(welcome));
                }
            },
            _ => {}
        }
    }
}

/// How many keys fit a terminal `rows` high (at least one).
fn visible_keys(rows: usize) -> usize {
    (rows.saturating_sub(FIXED_LINES) / LINES_PER_KEY).max(1)
}

/// `text` cut or padded to `w` columns, with one space after it.
fn pad(text: &str, w: usize) -> String {
    let cut: String = text.chars().take(w.saturating_sub(1)).collect();
    format!("{cut:<w$}")
}

#[cfg(test)]
#[path = "keys_tests.rs"]
mod tests;
