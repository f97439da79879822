//! Tests for `screen`. The model is checked against vt100 (another emulator, a dev-dependency),
//! never against itself, except where only a charset-aware terminal can tell (vt100 has no
//! DEC line drawing).

mod property;
mod repaint;
mod sanitise;

use super::{Sanitiser, Screen};

/// The NetHack replay (see benches/data/README.md): character creation, ~1,600 turns, death.
pub(super) fn fixture() -> &'static [u8] {
    include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/benches/data/nethack-replay.bin"
    ))
}

pub(super) fn vt(bytes: &[u8], rows: u16, cols: u16) -> vt100::Parser {
    let mut p = vt100::Parser::new(rows, cols, 0);
    p.process(bytes);
    p
}

pub(super) fn screen(bytes: &[u8], rows: u16, cols: u16) -> Screen {
    let mut s = Screen::new(rows, cols);
    s.feed(bytes);
    s
}

pub(super) fn sanitise(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    Sanitiser::new().filter(bytes, &mut out);
    out
}

pub(super) fn repaint_of(s: &Screen) -> Vec<u8> {
    let mut out = Vec::new();
    s.repaint(&mut out);
    out
}

/// vt100 discards U+FFFD (it takes it for its own decoding error), which real terminals show;
/// a repaint holding one is given to vt100 with this in its place.
pub(super) const REPLACEMENT_STAND_IN: &str = "¿";

/// vt100's colour for avt's (`None` is the default colour in both).
fn colour(c: Option<avt::Color>) -> vt100::Color {
    match c {
        None => vt100::Color::Default,
        Some(avt::Color::Indexed(n)) => vt100::Color::Idx(n),
        Some(avt::Color::RGB(c)) => vt100::Color::Rgb(c.r, c.g, c.b),
    }
}

/// The model's screen, cell by cell (text, width, colours, bold, faint, italic, underline,
/// inverse) and its cursor, against a vt100 screen of the same size. With `ascii_drawing`,
/// vt100's plain letter may stand where the model has the DEC line-drawing glyph for it
/// (vt100 ignores `ESC ( 0`; the raw stream is drawn that way there).
#[track_caller]
pub(super) fn assert_same(model: &Screen, vt: &vt100::Screen, ascii_drawing: bool, what: &str) {
    let (rows, cols) = model.size();
    assert_eq!(vt.size(), (rows, cols), "{what}: size");
    let term = model.terminal();
    for (r, line) in term.view().enumerate() {
        for (c, cell) in line.cells().iter().enumerate() {
            let (r16, c16) = (r as u16, c as u16);
            let Some(v) = vt.cell(r16, c16) else {
                panic!("{what}: vt100 has no cell {r},{c}");
            };
            let at = format!("{what}: cell {r},{c} (model {cell:?}, vt100 {v:?})");
            if cell.width() == 0 {
                assert!(v.is_wide_continuation(), "{at}: wide continuation");
                continue;
            }
            assert_eq!(cell.width() == 2, v.is_wide(), "{at}: width");
            let theirs = v.contents().chars().next().unwrap_or(' ');
            let ours = cell.char();
            let drawn = ascii_drawing && avt::Charset::Drawing.translate(theirs) == ours;
            let replaced = ours == '\u{FFFD}' && REPLACEMENT_STAND_IN.starts_with(theirs);
            assert!(ours == theirs || drawn || replaced, "{at}: text");
            let pen = cell.pen();
            assert_eq!(colour(pen.foreground()), v.fgcolor(), "{at}: fg");
            assert_eq!(colour(pen.background()), v.bgcolor(), "{at}: bg");
            assert_eq!(pen.is_bold(), v.bold(), "{at}: bold");
            assert_eq!(pen.is_faint(), v.dim(), "{at}: faint");
            assert_eq!(pen.is_italic(), v.italic(), "{at}: italic");
            assert_eq!(pen.is_underline(), v.underline(), "{at}: underline");
            assert_eq!(pen.is_inverse(), v.inverse(), "{at}: inverse");
        }
    }
    let cursor = term.cursor();
    let (row, col) = vt.cursor_position();
    assert_eq!(row, cursor.row as u16, "{what}: cursor row");
    // Past the last column (a wrap pending) vt100 says the last column, or one past it after
    // a wide character.
    let pending = cursor.col >= usize::from(cols) && col + 1 >= cols;
    assert!(
        pending || usize::from(col) == cursor.col,
        "{what}: cursor {col} {cursor:?}"
    );
    assert_eq!(
        !cursor.visible,
        vt.hide_cursor(),
        "{what}: cursor visibility"
    );
}

/// Cell text and pens of two models (for properties only a charset-aware terminal shows).
#[track_caller]
pub(super) fn assert_same_models(a: &Screen, b: &Screen, what: &str) {
    let (ta, tb) = (a.terminal(), b.terminal());
    for (r, (la, lb)) in ta.view().zip(tb.view()).enumerate() {
        assert_eq!(
            la.cells(),
            lb.cells(),
            "{what}: row {r}: {:?} / {:?}",
            la.text(),
            lb.text()
        );
    }
    assert_eq!(ta.cursor(), tb.cursor(), "{what}: cursor");
}

/// Checks, independently of the sanitiser's code, that `out` can only draw: valid UTF-8, no
/// C1 code points, no C0 but BS HT LF CR SO SI, and every ESC one of the allowed sequences.
#[track_caller]
pub(super) fn assert_only_drawing(out: &[u8]) {
    let text = std::str::from_utf8(out).expect("output is UTF-8");
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                let intro = chars.next();
                match intro {
                    Some('[') => {
                        let mut body = String::new();
                        let fin = loop {
                            match chars.next() {
                                Some(p @ ('0'..='9' | ';' | ':' | '?')) => body.push(p),
                                Some(f) => break f,
                                None => panic!("unterminated CSI in {out:?}"),
                            }
                        };
                        let ok = match (body.strip_prefix('?'), fin) {
                            (Some(modes), 'h' | 'l') => modes == "25",
                            (Some(_), _) => false,
                            (None, 'h' | 'l') => body == "4",
                            (None, 'J' | 'K') => matches!(body.as_str(), "" | "0" | "1" | "2"),
                            (None, f) => "ABCDEFGHIXZdmr@PLMSTb".contains(f),
                        };
                        assert!(ok, "forbidden CSI {body:?}{fin:?} in {out:?}");
                        assert!(fin == 'm' || !body.contains(':'), "colon outside SGR");
                    }
                    Some('(' | ')') => {
                        let set = chars.next();
                        assert!(matches!(set, Some('0' | 'B')), "charset {set:?} in {out:?}");
                    }
                    Some('7' | '8' | 'D' | 'E' | 'M') => {}
                    other => panic!("forbidden ESC {other:?} in {out:?}"),
                }
            }
            '\x08' | '\t' | '\n' | '\r' | '\x0e' | '\x0f' => {}
            c if c.is_control() => panic!("forbidden control {c:?} in {out:?}"),
            _ => {}
        }
    }
}
