//! Drawing a model's screen from its cells, for a watcher who attaches.
//!
//! Rendered from the cells rather than with avt's own `dump()` so the output is ours to keep
//! safe and small: one SGR per change of rendition, blank tails skipped, and DEC line drawing
//! already turned into the Unicode box-drawing characters the cells hold (a watcher's terminal
//! needs no charset to show them). avt's `dump()` is used only to read back the state it keeps
//! private (scroll region, charsets, insert mode, rendition), which the live stream after the
//! repaint relies on: a game that switched G0 to line drawing and is mid-wall when a watcher
//! attaches goes on drawing `q`s that must come out as `─`.

use avt::parser::{Function, SgrOps};
use avt::terminal::Terminal;
use avt::{Charset, Color, Pen};

use super::csi::push_decimal;

/// The state the live stream continues from, as far as drawing goes.
#[derive(Debug)]
struct Continuation {
    margins: Option<(u16, u16)>,
    g0_drawing: bool,
    g1_drawing: bool,
    shifted_out: bool,
    insert: bool,
    pen: Pen,
}

pub(super) fn repaint(term: &Terminal, out: &mut Vec<u8>) {
    let (cols, _) = term.size();
    // Whatever the watcher's terminal held: default rendition, ASCII in G0 and G1, the full
    // scroll region, the cursor hidden while painting, then home and clear.
    out.extend_from_slice(b"\x1b[0m\x1b(B\x1b)B\x0f\x1b[r\x1b[?25l\x1b[H\x1b[2J");
    let mut pen = Pen::default();
    for (row, line) in term.view().enumerate() {
        let cells = line.cells();
        let cells = &cells[..cells.len().min(cols)];
        // Cleared cells with the default rendition are already what the clear left.
        let Some(last) = cells.iter().rposition(|c| !c.is_default()) else {
            continue;
        };
        cup(out, row, 0);
        for cell in &cells[..=last] {
            // The right half of a wide character: the terminal fills it when the left half
            // is printed.
            if cell.width() == 0 {
                continue;
            }
            if *cell.pen() != pen {
                pen = *cell.pen();
                sgr(out, &pen);
            }
            push_char(out, cell.char());
        }
    }

    let next = continuation(term);
    if let Some((top, bottom)) = next.margins {
        // Before the cursor: DECSTBM homes it.
        out.extend_from_slice(b"\x1b[");
        push_decimal(out, top);
        out.push(b';');
        push_decimal(out, bottom);
        out.push(b'r');
    }
    let cursor = term.cursor();
    if cursor.col < cols {
        cup(out, cursor.row, cursor.col);
    } else {
        pending_wrap(term, cursor.row, cols, out);
    }
    // After every print: these change what the next characters mean.
    if next.g0_drawing {
        out.extend_from_slice(b"\x1b(0");
    }
    if next.g1_drawing {
        out.extend_from_slice(b"\x1b)0");
    }
    if next.shifted_out {
        out.push(0x0E);
    }
    if next.insert {
        out.extend_from_slice(b"\x1b[4h");
    }
    sgr(out, &next.pen);
    if cursor.visible {
        out.extend_from_slice(b"\x1b[?25h");
    }
}

/// The cursor sits past the last column, where a terminal goes after printing there (the next
/// character wraps). No sequence puts it there, so the last character of the row is printed
/// again, as the game did.
fn pending_wrap(term: &Terminal, row: usize, cols: usize, out: &mut Vec<u8>) {
    let Some(cells) = term.view().nth(row).map(|l| l.cells()) else {
        return;
    };
    // The last column may be the right half of a wide character: print the whole of it.
    let at = match cells.get(cols - 1) {
        Some(c) if c.width() == 0 => cols.saturating_sub(2),
        _ => cols - 1,
    };
    if let Some(cell) = cells.get(at) {
        cup(out, row, at);
        sgr(out, cell.pen());
        push_char(out, cell.char());
    }
}

/// Reads the state avt keeps private from its `dump()`: the dump ends with the current
/// rendition (its last SGR), the scroll region, charsets and modes that differ from a reset.
fn continuation(term: &Terminal) -> Continuation {
    let mut next = Continuation {
        margins: None,
        g0_drawing: false,
        g1_drawing: false,
        shifted_out: false,
        insert: false,
        pen: Pen::default(),
    };
    let mut last_sgr = None;
    for op in term.dump() {
        match op {
            Function::Decstbm(top, bottom) => next.margins = Some((top, bottom)),
            Function::Gzd4(set) => next.g0_drawing = set == Charset::Drawing,
            Function::G1d4(set) => next.g1_drawing = set == Charset::Drawing,
            Function::So => next.shifted_out = true,
            // Insert mode is the only ANSI mode the sanitiser lets through.
            Function::Sm(_) => next.insert = true,
            Function::Sgr(ops) => last_sgr = Some(ops),
            _ => {}
        }
    }
    if let Some(ops) = last_sgr {
        next.pen = pen_of(ops);
    }
    next
}

/// avt's SGR operations are opaque; running them on a one-cell terminal and printing a space
/// turns them into a `Pen` that can be read.
fn pen_of(ops: SgrOps) -> Pen {
    let mut probe = Terminal::new((1, 1), Some(0));
    probe.execute(Function::Sgr(ops));
    probe.execute(Function::Print(' '));
    let cell = probe
        .view()
        .next()
        .and_then(|line| line.cells().first().copied());
    cell.map_or_else(Pen::default, |c| *c.pen())
}

fn cup(out: &mut Vec<u8>, row: usize, col: usize) {
    out.extend_from_slice(b"\x1b[");
    push_decimal(out, clamp(row + 1));
    out.push(b';');
    push_decimal(out, clamp(col + 1));
    out.push(b'H');
}

fn clamp(v: usize) -> u16 {
    u16::try_from(v).unwrap_or(u16::MAX)
}

/// A complete rendition, from a reset: one sequence says it all, whatever came before.
fn sgr(out: &mut Vec<u8>, pen: &Pen) {
    out.extend_from_slice(b"\x1b[0");
    for (on, code) in [
        (pen.is_bold(), b'1'),
        (pen.is_faint(), b'2'),
        (pen.is_italic(), b'3'),
        (pen.is_underline(), b'4'),
        (pen.is_blink(), b'5'),
        (pen.is_inverse(), b'7'),
        (pen.is_strikethrough(), b'9'),
    ] {
        if on {
            out.extend_from_slice(&[b';', code]);
        }
    }
    if let Some(c) = pen.foreground() {
        colour(out, c, 30);
    }
    if let Some(c) = pen.background() {
        colour(out, c, 40);
    }
    out.push(b'm');
}

/// Colours in the most widely understood spelling: 30–37/90–97 for the 16 basic colours,
/// `38;5;n` and `38;2;r;g;b` (semicolons, not colons) above them.
fn colour(out: &mut Vec<u8>, c: Color, base: u16) {
    out.push(b';');
    match c {
        Color::Indexed(n) if n < 8 => push_decimal(out, base + u16::from(n)),
        Color::Indexed(n) if n < 16 => push_decimal(out, base + 60 + u16::from(n - 8)),
        Color::Indexed(n) => {
            push_decimal(out, base + 8);
            out.extend_from_slice(b";5;");
            push_decimal(out, u16::from(n));
        }
        Color::RGB(rgb) => {
            push_decimal(out, base + 8);
            out.extend_from_slice(b";2");
            for v in [rgb.r, rgb.g, rgb.b] {
                out.push(b';');
                push_decimal(out, u16::from(v));
            }
        }
    }
}

/// Cells hold what avt printed, which is never a control; if one ever were, a space keeps the
/// repaint to printable text.
fn push_char(out: &mut Vec<u8>, c: char) {
    let c = if c.is_control() { ' ' } else { c };
    let mut buf = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}
