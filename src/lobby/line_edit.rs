//! The one-line text editor behind every lobby prompt: insert at the end, backspace, Ctrl-U,
//! a length cap, a character-set check, and zeroized storage (it holds passwords).

use zeroize::Zeroizing;

/// Longest answer a prompt accepts, in bytes.
pub(crate) const MAX_LINE: usize = 128;

/// Which characters a prompt accepts.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Charset {
    /// Printable ASCII only (names, e-mail addresses): what we echo must draw predictably.
    Ascii,
    /// Any printable character (passwords, which are never echoed).
    Any,
}

/// Why a character was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Reject {
    /// Not printable ASCII in an ASCII-only prompt.
    NotAscii,
    /// The line is already as long as the editor allows ([`MAX_LINE`] unless set otherwise).
    TooLong,
}

/// A line being typed.
pub(crate) struct LineEditor {
    /// The text so far; allocated once at full size so no reallocation leaves copies behind.
    text: Zeroizing<String>,
    /// Which characters are accepted.
    charset: Charset,
    /// Longest text accepted, in bytes.
    max: usize,
}

impl LineEditor {
    /// An empty line accepting `charset`, up to [`MAX_LINE`] bytes.
    pub(crate) fn new(charset: Charset) -> LineEditor {
        LineEditor::with_max(charset, MAX_LINE)
    }

    /// An empty line accepting `charset`, up to `max` bytes (a pasted SSH key line is longer
    /// than any name or password).
    pub(crate) fn with_max(charset: Charset, max: usize) -> LineEditor {
        LineEditor {
            text: Zeroizing::new(String::with_capacity(max)),
            charset,
            max,
        }
    }

    /// Appends `c`; `Ok(())` when the text changed.
    pub(crate) fn insert(&mut self, c: char) -> Result<(), Reject> {
        if c.is_control() {
            // The decoder never sends these; refuse quietly rather than store them.
            return Err(Reject::NotAscii);
        }
        if self.charset == Charset::Ascii && !(c.is_ascii_graphic() || c == ' ') {
            return Err(Reject::NotAscii);
        }
        if self.text.len() + c.len_utf8() > self.max {
            return Err(Reject::TooLong);
        }
        self.text.push(c);
        Ok(())
    }

    /// Removes the last character; true when there was one.
    pub(crate) fn backspace(&mut self) -> bool {
        self.text.pop().is_some()
    }

    /// Empties the line (Ctrl-U); true when it was not empty.
    pub(crate) fn clear(&mut self) -> bool {
        let had = !self.text.is_empty();
        // `clear` keeps the buffer; overwrite the bytes first so nothing stays behind.
        zeroize::Zeroize::zeroize(&mut *self.text);
        self.text.reserve(self.max);
        had
    }

    /// The text typed so far.
    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    /// The longest text accepted, in bytes.
    pub(crate) fn max(&self) -> usize {
        self.max
    }

    /// True when nothing has been typed.
    pub(crate) fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Hands the text over and leaves the editor empty.
    pub(crate) fn take(&mut self) -> Zeroizing<String> {
        std::mem::replace(
            &mut self.text,
            Zeroizing::new(String::with_capacity(self.max)),
        )
    }

    /// The last characters of the text that fit in `width` columns (one column per char).
    pub(crate) fn visible_tail(&self, width: usize) -> &str {
        let count = self.text.chars().count();
        let skip = count.saturating_sub(width);
        match self.text.char_indices().nth(skip) {
            Some((at, _)) => self.text.get(at..).unwrap_or_default(),
            None => "",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typing_and_backspace_edit_the_end_of_the_line() {
        let mut e = LineEditor::new(Charset::Ascii);
        for c in "alicx".chars() {
            assert_eq!(e.insert(c), Ok(()));
        }
        assert!(e.backspace());
        assert_eq!(e.insert('e'), Ok(()));
        assert_eq!(e.as_str(), "alice");
        assert_eq!(&*e.take(), "alice");
        assert!(e.is_empty());
        assert!(!e.backspace());
    }

    #[test]
    fn ascii_prompt_refuses_non_ascii() {
        let mut e = LineEditor::new(Charset::Ascii);
        assert_eq!(e.insert('é'), Err(Reject::NotAscii));
        assert_eq!(e.insert('\u{1b}'), Err(Reject::NotAscii));
        assert!(e.is_empty());
    }

    #[test]
    fn password_prompt_accepts_unicode_and_backspace_removes_a_whole_character() {
        let mut e = LineEditor::new(Charset::Any);
        assert_eq!(e.insert('a'), Ok(()));
        assert_eq!(e.insert('😀'), Ok(()));
        assert!(e.backspace());
        assert_eq!(e.as_str(), "a");
    }

    #[test]
    fn line_length_is_capped() {
        let mut e = LineEditor::new(Charset::Ascii);
        for _ in 0..MAX_LINE {
            assert_eq!(e.insert('x'), Ok(()));
        }
        assert_eq!(e.insert('x'), Err(Reject::TooLong));
        assert_eq!(e.as_str().len(), MAX_LINE);
    }

    #[test]
    fn a_longer_cap_can_be_chosen() {
        let mut e = LineEditor::with_max(Charset::Any, MAX_LINE * 4);
        for _ in 0..MAX_LINE * 4 {
            assert_eq!(e.insert('x'), Ok(()));
        }
        assert_eq!(e.insert('x'), Err(Reject::TooLong));
        e.clear();
        assert_eq!(e.insert('y'), Ok(()));
    }

    #[test]
    fn ctrl_u_empties_the_line() {
        let mut e = LineEditor::new(Charset::Any);
        assert!(!e.clear());
        assert_eq!(e.insert('s'), Ok(()));
        assert!(e.clear());
        assert!(e.is_empty());
        assert_eq!(e.insert('t'), Ok(()));
        assert_eq!(e.as_str(), "t");
    }

    #[test]
    fn visible_tail_keeps_the_end_of_a_long_line() {
        let mut e = LineEditor::new(Charset::Ascii);
        for c in "abcdef".chars() {
            assert_eq!(e.insert(c), Ok(()));
        }
        assert_eq!(e.visible_tail(3), "def");
        assert_eq!(e.visible_tail(10), "abcdef");
        assert_eq!(e.visible_tail(0), "");
    }
}
