//! Prompt flows — log in, register, change password, change e-mail: which fields are asked in
//! which order, how each answer is checked before moving on, and the action a finished form
//! becomes. Passwords are never echoed and are kept in zeroized buffers until handed over.

use zeroize::Zeroizing;

use super::input::Key;
use super::line_edit::{Charset, LineEditor, Reject, MAX_LINE};
use super::screen::{Line, Notice, Style, INDENT};
use super::LobbyAction;

/// The four flows.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum FlowKind {
    /// `l` in the anonymous lobby.
    Login,
    /// `r` in the anonymous lobby.
    Register,
    /// `c` in the logged-in lobby.
    ChangePassword,
    /// `e` in the logged-in lobby.
    ChangeEmail,
}

/// What a key did to the form.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FormStep {
    /// Nothing visible changed.
    Unchanged,
    /// Only the line being typed changed.
    EditLine,
    /// Something else changed (next field, a notice): redraw everything.
    Full,
    /// The user gave up: back to the menu.
    Cancel,
    /// All fields are answered: send this action.
    Submit(LobbyAction),
}

/// A flow in progress.
pub(crate) struct Form {
    /// Which flow this is.
    kind: FlowKind,
    /// Index in `kind.fields()` of the field being typed.
    step: usize,
    /// Answers to the fields before `step`, in order.
    answers: Vec<Zeroizing<String>>,
    /// The answer being typed.
    editor: LineEditor,
    /// A message about the last answer ("passwords do not match"), shown under the fields.
    notice: Option<Notice>,
}

impl Form {
    /// A fresh form for `kind`, on its first field.
    pub(crate) fn new(kind: FlowKind) -> Form {
        let first = kind.fields().first().copied().unwrap_or(Field::Name);
        Form {
            kind,
            step: 0,
            answers: Vec::new(),
            editor: LineEditor::new(first.charset()),
            notice: None,
        }
    }

    /// Applies one key.
    pub(crate) fn key(&mut self, key: Key) -> FormStep {
        let secret = self.field().secret();
        let edited = match key {
            Key::Char(c) => match self.editor.insert(c) {
                Ok(()) => true,
                Err(Reject::NotAscii) => {
                    return self.set_notice(Notice::error(
                        "Only ASCII letters, digits and punctuation can be typed here.",
                    ))
                }
                Err(Reject::TooLong) => {
                    return self.set_notice(Notice::error(&format!(
                        "That is as long as an answer can be ({MAX_LINE} characters)."
                    )))
                }
            },
            Key::Backspace => self.editor.backspace(),
            Key::ClearLine => self.editor.clear(),
            Key::Interrupt | Key::Escape => return FormStep::Cancel,
            Key::Eof if self.editor.is_empty() => return FormStep::Cancel,
            Key::Eof | Key::Move(_) => false,
            Key::Enter => return self.enter(),
        };
        if edited && !secret {
            FormStep::EditLine
        } else {
            FormStep::Unchanged
        }
    }

    /// Draws the form: title, answered fields, the field being typed, the notice.
    /// Returns the lines, the index of the edit line and the cursor column on it.
    pub(crate) fn lines(&self, width: usize) -> (Vec<Line>, usize, usize) {
        let mut lines = Vec::new();
        let mut title = Line::new(width);
        title.push(Style::Plain, INDENT);
        title.push(Style::Title, self.kind.title());
        title.push(Style::Dim, "   (Ctrl-C cancels)");
        lines.push(title);
        lines.push(Line::new(width));
        for (field, answer) in self.kind.fields().iter().zip(self.answers.iter()) {
            let mut line = Line::new(width);
            line.push(Style::Plain, INDENT);
            line.push(Style::Plain, field.label());
            if !field.secret() {
                let shown = if answer.is_empty() {
                    "(none)"
                } else {
                    answer.as_str()
                };
                line.push(Style::Plain, shown);
            }
            lines.push(line);
        }
        let field = self.field();
        let mut edit = Line::new(width);
        edit.push(Style::Plain, INDENT);
        edit.push(Style::Key, field.label());
        edit.set_style(Style::Plain);
        if !field.secret() {
            // Leave the last column free for the cursor.
            let room = width.saturating_sub(edit.width() + 1);
            edit.push_text(self.editor.visible_tail(room));
        }
        let cursor = edit.width();
        let edit_row = lines.len();
        lines.push(edit);
        if let Some(notice) = &self.notice {
            lines.push(Line::new(width));
            lines.push(notice.line(width));
        }
        (lines, edit_row, cursor)
    }

    /// The field being typed.
    fn field(&self) -> Field {
        self.kind
            .fields()
            .get(self.step)
            .copied()
            .unwrap_or(Field::Name)
    }

    /// Shows `notice`; a redraw only if it is new.
    fn set_notice(&mut self, notice: Notice) -> FormStep {
        if self.notice.as_ref() == Some(&notice) {
            return FormStep::Unchanged;
        }
        self.notice = Some(notice);
        FormStep::Full
    }

    /// Enter: check the answer, then move to the next field or finish.
    fn enter(&mut self) -> FormStep {
        let field = self.field();
        let typed = self.editor.as_str();
        match field {
            Field::Name if typed.trim().is_empty() => return FormStep::Cancel,
            Field::Password | Field::NewPassword if typed.is_empty() => {
                if self.kind == FlowKind::Login {
                    return FormStep::Cancel;
                }
                return self.set_notice(Notice::error("The password cannot be empty."));
            }
            Field::PasswordAgain
                if self.answers.last().map(|first| first.as_str()) != Some(typed) =>
            {
                // Forget both and ask for the password again from the first prompt.
                self.editor.clear();
                self.answers.pop();
                self.step = self.step.saturating_sub(1);
                self.notice = Some(Notice::error(
                    "The passwords do not match. Please type them again.",
                ));
                return FormStep::Full;
            }
            Field::RegisterEmail | Field::NewEmail
                if !typed.trim().is_empty() && !looks_like_email(typed.trim()) =>
            {
                // The text stays in the editor so it can be corrected.
                return self.set_notice(Notice::error(
                    "That does not look like an e-mail address (name@example.org).",
                ));
            }
            _ => {}
        }
        let typed = self.editor.take();
        let answer = if field.secret() {
            typed
        } else {
            Zeroizing::new(typed.trim().to_owned())
        };
        self.answers.push(answer);
        self.step += 1;
        self.notice = None;
        self.editor = LineEditor::new(self.field().charset());
        if self.step >= self.kind.fields().len() {
            return FormStep::Submit(self.finish());
        }
        FormStep::Full
    }

    /// Turns the answers into the action for this flow.
    fn finish(&mut self) -> LobbyAction {
        let mut answers = std::mem::take(&mut self.answers).into_iter();
        let mut next = || answers.next().unwrap_or_default();
        let plain = |s: Zeroizing<String>| String::clone(&s);
        let optional = |s: String| if s.is_empty() { None } else { Some(s) };
        match self.kind {
            FlowKind::Login => {
                let name = plain(next());
                LobbyAction::Login {
                    name,
                    password: next(),
                }
            }
            FlowKind::Register => {
                let name = plain(next());
                let password = next();
                let _again = next();
                LobbyAction::Register {
                    name,
                    password,
                    email: optional(plain(next())),
                }
            }
            FlowKind::ChangePassword => LobbyAction::ChangePassword {
                new_password: next(),
            },
            FlowKind::ChangeEmail => LobbyAction::ChangeEmail {
                email: optional(plain(next())),
            },
        }
    }
}

/// One question in a flow.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Field {
    /// Account name (log in, register).
    Name,
    /// Current password (log in) or chosen password (register).
    Password,
    /// A new password (change password).
    NewPassword,
    /// The password once more, to catch typos.
    PasswordAgain,
    /// Optional e-mail when registering.
    RegisterEmail,
    /// The new e-mail; empty removes it.
    NewEmail,
}

impl Field {
    /// The prompt text.
    fn label(self) -> &'static str {
        match self {
            Field::Name => "Name: ",
            Field::Password => "Password: ",
            Field::NewPassword => "New password: ",
            Field::PasswordAgain => "Password again: ",
            Field::RegisterEmail => "E-mail (optional, Enter skips): ",
            Field::NewEmail => "New e-mail (Enter alone removes it): ",
        }
    }

    /// Typed without echo.
    fn secret(self) -> bool {
        matches!(
            self,
            Field::Password | Field::NewPassword | Field::PasswordAgain
        )
    }

    /// What may be typed.
    fn charset(self) -> Charset {
        if self.secret() {
            Charset::Any
        } else {
            Charset::Ascii
        }
    }
}

impl FlowKind {
    /// The questions, in order.
    fn fields(self) -> &'static [Field] {
        match self {
            FlowKind::Login => &[Field::Name, Field::Password],
            FlowKind::Register => &[
                Field::Name,
                Field::Password,
                Field::PasswordAgain,
                Field::RegisterEmail,
            ],
            FlowKind::ChangePassword => &[Field::NewPassword, Field::PasswordAgain],
            FlowKind::ChangeEmail => &[Field::NewEmail],
        }
    }

    /// The heading above the fields.
    fn title(self) -> &'static str {
        match self {
            FlowKind::Login => "Log in",
            FlowKind::Register => "Register a new account",
            FlowKind::ChangePassword => "Change your password",
            FlowKind::ChangeEmail => "Change your e-mail address",
        }
    }
}

/// A light plausibility check; the account store has the final word.
fn looks_like_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty() && !domain.is_empty() && !s.contains(' ') && !domain.contains('@')
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn type_line(form: &mut Form, text: &str) -> FormStep {
        for c in text.chars() {
            let _ = form.key(Key::Char(c));
        }
        form.key(Key::Enter)
    }

    #[test]
    fn login_form_yields_name_and_password() {
        let mut f = Form::new(FlowKind::Login);
        assert_eq!(type_line(&mut f, "  alice "), FormStep::Full);
        match type_line(&mut f, "s3cret") {
            FormStep::Submit(LobbyAction::Login { name, password }) => {
                assert_eq!(name, "alice");
                assert_eq!(password.as_str(), "s3cret");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn empty_name_cancels() {
        let mut f = Form::new(FlowKind::Register);
        assert_eq!(type_line(&mut f, ""), FormStep::Cancel);
    }

    #[test]
    fn typing_a_password_changes_nothing_on_screen() {
        let mut f = Form::new(FlowKind::ChangePassword);
        assert_eq!(f.key(Key::Char('x')), FormStep::Unchanged);
        assert_eq!(f.key(Key::Backspace), FormStep::Unchanged);
    }

    #[test]
    fn mismatched_passwords_go_back_to_the_first_password_prompt() {
        let mut f = Form::new(FlowKind::ChangePassword);
        assert_eq!(type_line(&mut f, "one"), FormStep::Full);
        assert_eq!(type_line(&mut f, "two"), FormStep::Full);
        assert_eq!(f.step, 0);
        assert!(f.answers.is_empty());
        assert!(f.notice.as_ref().is_some_and(|n| n.text.contains("match")));
        assert_eq!(type_line(&mut f, "three"), FormStep::Full);
        match type_line(&mut f, "three") {
            FormStep::Submit(LobbyAction::ChangePassword { new_password }) => {
                assert_eq!(new_password.as_str(), "three");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn empty_new_password_is_refused_with_a_reason() {
        let mut f = Form::new(FlowKind::ChangePassword);
        assert_eq!(type_line(&mut f, ""), FormStep::Full);
        assert_eq!(f.step, 0);
        assert!(f.notice.is_some());
    }

    #[test]
    fn email_is_optional_and_checked_when_given() {
        let mut f = Form::new(FlowKind::ChangeEmail);
        assert_eq!(type_line(&mut f, "not-an-address"), FormStep::Full);
        assert_eq!(f.step, 0);
        assert_eq!(f.editor.as_str(), "not-an-address");
        let _ = f.key(Key::ClearLine);
        match type_line(&mut f, "a@b.org") {
            FormStep::Submit(LobbyAction::ChangeEmail { email }) => {
                assert_eq!(email.as_deref(), Some("a@b.org"));
            }
            other => panic!("unexpected {other:?}"),
        }
        let mut f = Form::new(FlowKind::ChangeEmail);
        match type_line(&mut f, "") {
            FormStep::Submit(LobbyAction::ChangeEmail { email }) => assert_eq!(email, None),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn ctrl_d_cancels_only_on_an_empty_line() {
        let mut f = Form::new(FlowKind::Login);
        assert_eq!(f.key(Key::Char('a')), FormStep::EditLine);
        assert_eq!(f.key(Key::Eof), FormStep::Unchanged);
        assert_eq!(f.key(Key::ClearLine), FormStep::EditLine);
        assert_eq!(f.key(Key::Eof), FormStep::Cancel);
    }

    #[test]
    fn email_check_accepts_plain_addresses_only() {
        assert!(looks_like_email("a@b"));
        assert!(!looks_like_email("@b"));
        assert!(!looks_like_email("a@"));
        assert!(!looks_like_email("a b@c"));
        assert!(!looks_like_email("a@b@c"));
    }
}
