//! `Screen`: the model against vt100, and its repaint drawn on a fresh terminal.

use super::*;

/// Cut points through the replay, including the middle of sequences and characters.
fn cuts() -> Vec<usize> {
    let len = fixture().len();
    let mut cuts: Vec<usize> = (1..=12).map(|i| len * i / 13).collect();
    // The first map drawn, a cut inside `ESC [ 1 7 ; 4 5 H`-like sequences, and the end.
    cuts.extend([3_100, 3_101, 3_102, len]);
    cuts
}

/// Repaints the model, draws that on a fresh vt100 and checks it holds the model's screen;
/// also checks the repaint uses only what the sanitiser lets through.
#[track_caller]
fn assert_repaints(model: &Screen, what: &str) -> Vec<u8> {
    let (rows, cols) = model.size();
    let bytes = repaint_of(model);
    assert_same(model, vt(&bytes, rows, cols).screen(), false, what);
    assert_only_drawing(&bytes);
    assert_eq!(
        sanitise(&bytes),
        bytes,
        "{what}: the sanitiser changed a repaint"
    );
    bytes
}

#[test]
fn the_replay_is_drawn_as_vt100_draws_it_and_repainted_exactly() {
    let raw = fixture();
    for cut in cuts() {
        let model = screen(&raw[..cut], 24, 80);
        let what = format!("cut at {cut}");
        // Independent reading of the same bytes (line drawing aside, which vt100 lacks).
        assert_same(&model, vt(&raw[..cut], 24, 80).screen(), true, &what);
        assert_repaints(&model, &what);
    }
}

#[test]
fn the_replay_draws_walls_with_box_characters() {
    let raw = fixture();
    // Up to the first room's top wall, drawn as `ESC ( 0 l q q … k ESC ( B`.
    let wall = raw
        .windows(4)
        .position(|w| w == b"\x1b(0l")
        .expect("a wall");
    let model = screen(&raw[..wall + 20], 24, 80);
    let text = model
        .terminal()
        .view()
        .map(|l| l.text())
        .collect::<String>();
    assert!(text.contains("┌───") && text.contains("─┐"), "{text}");
    assert!(!text.contains("lqq"), "walls left as letters: {text}");
}

/// A watcher who attaches at any point and then gets the live stream sees what one who watched
/// from the start sees. The watcher is a Screen here: vt100 has no line drawing, and a
/// watcher attaching mid-wall depends on the charset the repaint restores.
#[test]
fn a_watcher_attaching_mid_stream_ends_where_the_stream_does() {
    let raw = fixture();
    let whole = screen(raw, 24, 80);
    for cut in cuts() {
        let model = screen(&raw[..cut], 24, 80);
        let mut watcher = screen(&repaint_of(&model), 24, 80);
        watcher.feed(&raw[cut..]);
        assert_same_models(&watcher, &whole, &format!("attached at {cut}"));
        // And on vt100, after its own reading of the whole sanitised stream.
        let mut late = vt(&repaint_of(&model), 24, 80);
        late.process(&sanitise(&raw[cut..]));
        let early = vt(&sanitise(raw), 24, 80);
        assert_eq!(
            late.screen().contents(),
            early.screen().contents(),
            "at {cut}"
        );
    }
}

#[test]
fn feeding_in_any_chunks_is_feeding_at_once() {
    let raw = fixture();
    let whole = screen(raw, 24, 80);
    for size in [1, 7, 4096] {
        let mut s = Screen::new(24, 80);
        raw.chunks(size).for_each(|c| s.feed(c));
        assert_same_models(&s, &whole, &format!("chunks of {size}"));
    }
    let mut out = Vec::new();
    let mut s = Screen::new(24, 80);
    raw.chunks(999).for_each(|c| s.feed_and_filter(c, &mut out));
    assert_same_models(&s, &whole, "feed_and_filter");
    assert_eq!(out, sanitise(raw), "feed_and_filter's watcher bytes");
}

#[test]
fn colours_and_attributes_survive_a_repaint() {
    let mut bytes = Vec::new();
    for n in 0..8 {
        bytes.extend(format!("\x1b[{};{}mA\x1b[{}mB", 30 + n, 40 + (7 - n), 90 + n).bytes());
    }
    bytes.extend(b"\x1b[0m\r\n\x1b[1;4;7mbui\x1b[0;2;3mfi\x1b[0m");
    bytes.extend(b"\x1b[38;5;196;48;5;21mx\x1b[38;2;1;2;3;48;2;250;128;7my\x1b[0m");
    bytes.extend(b"\x1b[38;2;9;8;7mz\x1b[39;49m plain\x1b[7m");
    let model = screen(&bytes, 24, 80);
    assert_same(&model, vt(&bytes, 24, 80).screen(), false, "colours");
    assert_repaints(&model, "colours");
    // The rendition in force (inverse) is carried to what follows the repaint.
    let mut watcher = vt(&repaint_of(&model), 24, 80);
    watcher.process(b"!");
    let cell = watcher
        .screen()
        .cell(1, 14)
        .map(|c| (c.contents(), c.inverse()));
    assert_eq!(cell, Some(("!", true)));
    // The colon spelling of truecolour (vt100 reads only semicolons) is read and repainted.
    let model = screen(b"\x1b[38:2::9:8:7mz", 2, 4);
    let pen = model.terminal().view().next().map(|l| *l.cells()[0].pen());
    assert_eq!(
        pen.and_then(|p| p.foreground()),
        Some(avt::Color::rgb(9, 8, 7))
    );
    let paint = assert_repaints(&model, "colon truecolour");
    let want = b"\x1b[0;38;2;9;8;7m";
    assert!(paint.windows(want.len()).any(|w| w == want), "{paint:?}");
}

#[test]
fn wide_characters_survive_a_repaint() {
    let bytes = "漢字 🙂x\r\n\x1b[2;79H語\x1b[3;80H字".as_bytes();
    let model = screen(bytes, 5, 80);
    assert_same(&model, vt(bytes, 5, 80).screen(), false, "wide");
    assert_repaints(&model, "wide");
}

#[test]
fn dec_line_drawing_is_repainted_as_the_glyphs() {
    let bytes = b"\x1b(0lqk\x1b(B ok\r\n\x1b)0\x0exj\x0f!\x1b(0";
    let model = screen(bytes, 4, 20);
    let lines: Vec<String> = model.terminal().view().map(|l| l.text()).collect();
    assert_eq!(lines[0].trim_end(), "┌─┐ ok");
    assert_eq!(lines[1].trim_end(), "│┘!");
    let paint = assert_repaints(&model, "drawing");
    assert!(String::from_utf8_lossy(&paint).contains("┌─┐ ok"));
    // G0 is still line drawing and G1 too: what comes next must still draw walls.
    let mut watcher = screen(&paint, 4, 20);
    watcher.feed(b"qq\x0eq");
    let text: Vec<String> = watcher.terminal().view().map(|l| l.text()).collect();
    assert!(text[1].starts_with("│┘!───"), "{text:?}");
}

#[test]
fn the_cursor_ends_where_it_was_and_as_visible() {
    for (bytes, what) in [
        (&b"abc\x1b[5;10H\x1b[?25l"[..], "hidden"),
        (b"abc\x1b[?25l\x1b[?25h\x1b[24;80H", "shown, bottom right"),
    ] {
        let model = screen(bytes, 24, 80);
        assert_same(&model, vt(bytes, 24, 80).screen(), false, what);
        assert_repaints(&model, what);
    }
}

/// After a character in the last column the next one wraps; the repaint leaves the watcher's
/// cursor in that same pending state.
#[test]
fn a_pending_wrap_is_carried_over() {
    let full = [b'='; 10];
    for tail in [&b""[..], "漢".as_bytes()] {
        let mut bytes = full[..10 - tail.len().min(2)].to_vec();
        bytes.extend_from_slice(tail);
        let model = screen(&bytes, 3, 10);
        let mut watcher = vt(&repaint_of(&model), 3, 10);
        let mut direct = vt(&bytes, 3, 10);
        watcher.process(b"X");
        direct.process(b"X");
        assert_eq!(watcher.screen().contents(), direct.screen().contents());
        assert_eq!(watcher.screen().cursor_position(), (1, 1));
    }
}

#[test]
fn the_scroll_region_is_carried_over() {
    let bytes = b"1\r\n2\r\n3\r\n4\r\n5\r\n6\x1b[2;4r\x1b[4;1H";
    let model = screen(bytes, 6, 10);
    let paint = assert_repaints(&model, "region");
    let mut watcher = vt(&paint, 6, 10);
    let mut direct = vt(bytes, 6, 10);
    watcher.process(b"\nA\nB");
    direct.process(b"\nA\nB");
    assert_eq!(watcher.screen().contents(), direct.screen().contents());
}

#[test]
fn resizing_keeps_a_drawable_screen() {
    let raw = fixture();
    let mut model = screen(&raw[..raw.len() / 3], 24, 80);
    model.resize(50, 132);
    assert_eq!(model.size(), (50, 132));
    assert_repaints(&model, "grown");
    model.resize(10, 20);
    assert_repaints(&model, "shrunk");
    model.resize(0, 0);
    assert_eq!(model.size(), (1, 2));
    model.feed("\x1b[5;5Hxyz漢\r\n漢".as_bytes());
    assert_repaints(&model, "1x2");
    model.resize(3, 1);
    assert_eq!(model.size(), (3, 2));
    assert_eq!(Screen::new(0, 7).size(), (1, 7));
}

/// No scrollback is kept: a game printing a million lines holds one screen.
#[test]
fn scrolled_lines_are_not_kept() {
    let mut model = Screen::new(24, 80);
    model.feed(&b"line\n".repeat(200_000));
    assert_eq!(model.terminal().lines().count(), 24);
}

/// What the game must not do to the model: resize it in-band, or switch it to a buffer the
/// watchers never see.
#[test]
fn the_model_ignores_what_watchers_never_get() {
    let model = screen(b"main\x1b[8;5;5t\x1b[?1049halt\x1b]0;title\x07", 24, 80);
    assert_eq!(model.size(), (24, 80));
    let first = model.terminal().view().next().map(|l| l.text());
    assert_eq!(first.as_deref().map(str::trim_end), Some("mainalt"));
}
