//! Input rules for account names, passwords and e-mail addresses.
//!
//! Names end up on NetHack's command line (`-u NAME`), in file names (per-user dirs, rc files,
//! ttyrec paths) and in SSH user names, so they are kept to ASCII letters and digits: no `-`
//! (NetHack parses `-u` values starting with `-` as options), no `/` or `.`. A few names are
//! reserved because they are the conventional SSH entry points to the anonymous lobby.

use thiserror::Error;

/// Longest account name, in characters (dgamelaunch and NetHack's PL_NSIZ keep names short).
pub const MAX_NAME_LEN: usize = 20;
/// Shortest accepted password, in bytes.
pub const MIN_PASSWORD_LEN: usize = 6;
/// Longest accepted password, in bytes (bounds the argon2 input and the SSH packet we accept).
pub const MAX_PASSWORD_LEN: usize = 128;
/// Longest accepted e-mail address, in bytes (RFC 5321 path limit).
pub const MAX_EMAIL_LEN: usize = 254;
/// Names that can never be registered (compared case-insensitively): SSH user names that must
/// keep leading to the anonymous lobby.
pub const RESERVED_NAMES: &[&str] = &[
    "guest",
    "nethack",
    "root",
    "admin",
    "anonymous",
    "games",
    "sysop",
];

/// Why a name was refused. `Display` completes "name 'x' is not valid: …".
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    /// Zero-length name.
    #[error("it is empty")]
    Empty,
    /// Longer than [`MAX_NAME_LEN`].
    #[error("at most {MAX_NAME_LEN} characters")]
    TooLong,
    /// First character is not an ASCII letter.
    #[error("it must start with a letter")]
    FirstNotLetter,
    /// Contains something other than ASCII letters and digits.
    #[error("only letters and digits")]
    BadCharacter,
    /// One of [`RESERVED_NAMES`].
    #[error("this name is reserved")]
    Reserved,
}

/// Why a password was refused. Never contains the password itself.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PasswordRuleError {
    /// Shorter than [`MIN_PASSWORD_LEN`] bytes.
    #[error("password too short: at least {MIN_PASSWORD_LEN} characters")]
    TooShort,
    /// Longer than [`MAX_PASSWORD_LEN`] bytes.
    #[error("password too long: at most {MAX_PASSWORD_LEN} bytes")]
    TooLong,
    /// Contains a control character (would not survive a terminal round trip).
    #[error("password must not contain control characters")]
    ControlCharacter,
}

/// Why an e-mail address was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EmailError {
    /// Longer than [`MAX_EMAIL_LEN`] bytes.
    #[error("e-mail address too long: at most {MAX_EMAIL_LEN} bytes")]
    TooLong,
    /// Contains whitespace or a control character.
    #[error("e-mail address must not contain spaces or control characters")]
    BadCharacter,
    /// Not of the shape `local@domain.tld`.
    #[error("e-mail address must look like name@example.org")]
    BadShape,
}

/// Checks an account name: ASCII letter first, then letters/digits, 1..=20 characters, not
/// reserved.
pub fn validate_name(name: &str) -> Result<(), NameError> {
    check_name_shape(name)?;
    if is_reserved(name) {
        return Err(NameError::Reserved);
    }
    Ok(())
}

/// Checks a new password: 6..=128 bytes, no control characters.
pub fn validate_password(pw: &str) -> Result<(), PasswordRuleError> {
    if pw.len() < MIN_PASSWORD_LEN {
        return Err(PasswordRuleError::TooShort);
    }
    if pw.len() > MAX_PASSWORD_LEN {
        return Err(PasswordRuleError::TooLong);
    }
    if pw.chars().any(char::is_control) {
        return Err(PasswordRuleError::ControlCharacter);
    }
    Ok(())
}

/// Checks the basic shape of an e-mail address: `local@domain` with a dot inside the domain,
/// at most 254 bytes, no whitespace or control characters.
pub fn validate_email(e: &str) -> Result<(), EmailError> {
    if e.len() > MAX_EMAIL_LEN {
        return Err(EmailError::TooLong);
    }
    if e.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(EmailError::BadCharacter);
    }
    let Some((local, domain)) = e.split_once('@') else {
        return Err(EmailError::BadShape);
    };
    let domain_ok = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !domain.contains('@');
    if local.is_empty() || !domain_ok {
        return Err(EmailError::BadShape);
    }
    Ok(())
}

/// Whether `name` is one of [`RESERVED_NAMES`], ignoring case.
pub fn is_reserved(name: &str) -> bool {
    RESERVED_NAMES.iter().any(|r| r.eq_ignore_ascii_case(name))
}

/// Shape rules only (no reserved-name check): what a stored name can look like, so the store
/// can refuse lookups of impossible names without touching LMDB.
pub(crate) fn check_name_shape(name: &str) -> Result<(), NameError> {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return Err(NameError::Empty);
    };
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong);
    }
    if !first.is_ascii_alphabetic() {
        return Err(NameError::FirstNotLetter);
    }
    if !chars.all(|c| c.is_ascii_alphanumeric()) {
        return Err(NameError::BadCharacter);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_rules_accept_and_refuse_as_documented() {
        let cases: &[(&str, Result<(), NameError>)] = &[
            ("alice", Ok(())),
            ("A", Ok(())),
            ("Bob2000", Ok(())),
            ("abcdefghijklmnopqrst", Ok(())),
            ("abcdefghijklmnopqrstu", Err(NameError::TooLong)),
            ("", Err(NameError::Empty)),
            ("2bob", Err(NameError::FirstNotLetter)),
            ("-u", Err(NameError::FirstNotLetter)),
            ("x-y", Err(NameError::BadCharacter)),
            ("a b", Err(NameError::BadCharacter)),
            ("a/b", Err(NameError::BadCharacter)),
            ("a.b", Err(NameError::BadCharacter)),
            ("ali\u{e9}", Err(NameError::BadCharacter)),
            ("\u{e9}lie", Err(NameError::FirstNotLetter)),
            ("guest", Err(NameError::Reserved)),
            ("NetHack", Err(NameError::Reserved)),
            ("ROOT", Err(NameError::Reserved)),
            ("admin", Err(NameError::Reserved)),
            ("anonymous", Err(NameError::Reserved)),
            ("games", Err(NameError::Reserved)),
            ("SysOp", Err(NameError::Reserved)),
            ("guests", Ok(())),
        ];
        for (name, want) in cases {
            assert_eq!(&validate_name(name), want, "name {name:?}");
        }
    }

    #[test]
    fn password_rules_accept_and_refuse_as_documented() {
        let long_ok = "x".repeat(MAX_PASSWORD_LEN);
        let too_long = "x".repeat(MAX_PASSWORD_LEN + 1);
        let cases: &[(&str, Result<(), PasswordRuleError>)] = &[
            ("secret", Ok(())),
            ("correct horse battery staple", Ok(())),
            ("p\u{e4}ssw\u{f6}rd", Ok(())),
            (&long_ok, Ok(())),
            ("12345", Err(PasswordRuleError::TooShort)),
            ("", Err(PasswordRuleError::TooShort)),
            (&too_long, Err(PasswordRuleError::TooLong)),
            ("secret\n", Err(PasswordRuleError::ControlCharacter)),
            ("sec\x1bret", Err(PasswordRuleError::ControlCharacter)),
            ("secret\0", Err(PasswordRuleError::ControlCharacter)),
        ];
        for (pw, want) in cases {
            assert_eq!(&validate_password(pw), want, "password of len {}", pw.len());
        }
    }

    #[test]
    fn email_rules_accept_and_refuse_as_documented() {
        let long = format!("{}@example.org", "a".repeat(MAX_EMAIL_LEN));
        let cases: &[(&str, Result<(), EmailError>)] = &[
            ("alice@example.org", Ok(())),
            ("a.b+tag@mail.example.co.uk", Ok(())),
            ("alice@example", Err(EmailError::BadShape)),
            ("alice", Err(EmailError::BadShape)),
            ("@example.org", Err(EmailError::BadShape)),
            ("alice@.org", Err(EmailError::BadShape)),
            ("alice@example.", Err(EmailError::BadShape)),
            ("alice@exa..mple", Err(EmailError::BadShape)),
            ("a@b@example.org", Err(EmailError::BadShape)),
            ("alice @example.org", Err(EmailError::BadCharacter)),
            ("alice@example.org\r\n", Err(EmailError::BadCharacter)),
            (&long, Err(EmailError::TooLong)),
        ];
        for (e, want) in cases {
            assert_eq!(&validate_email(e), want, "email {e:?}");
        }
    }
}

/// `text` as it may appear in a log line or on someone else's screen: control characters
/// (ANSI escapes, newlines that would forge log lines) and bidirectional overrides (which
/// reorder what follows them) become `?`; at most 64 characters.
pub fn printable(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(64)
        .map(|c| if is_unsafe_to_show(c) { '?' } else { c })
        .collect();
    if text.chars().nth(64).is_some() {
        out.push('…');
    }
    out
}

fn is_unsafe_to_show(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

#[cfg(test)]
mod printable_tests {
    use super::printable;

    #[test]
    fn control_and_bidi_characters_never_reach_a_log_line() {
        assert_eq!(printable("alice"), "alice");
        assert_eq!(
            printable("evil\x1b[31mred\nFAKE LOG"),
            "evil?[31mred?FAKE LOG"
        );
        assert_eq!(printable("abc\u{202e}fed"), "abc?fed");
        assert_eq!(printable("x\u{2067}y\u{200f}"), "x?y?");
        assert_eq!(printable(&"a".repeat(100)).chars().count(), 65);
    }
}
