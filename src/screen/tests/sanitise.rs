//! `Sanitiser`: one test per hostile sequence, each also fed split in two at every byte and
//! one byte at a time; and what must come through unchanged.

use super::*;

/// `input` through one sanitiser in the given pieces.
fn pieces(input: &[u8], cuts: &[usize]) -> Vec<u8> {
    let mut s = Sanitiser::new();
    let mut out = Vec::new();
    let mut from = 0;
    for &to in cuts.iter().chain([&input.len()]) {
        s.filter(&input[from..to], &mut out);
        from = to;
    }
    out
}

/// `input` gives `expected` whole, split in two at every byte, and a byte at a time.
#[track_caller]
fn gives(input: &[u8], expected: &[u8]) {
    let show = |b: &[u8]| String::from_utf8_lossy(b).escape_debug().to_string();
    assert_eq!(show(&pieces(input, &[])), show(expected), "whole");
    for at in 0..=input.len() {
        assert_eq!(show(&pieces(input, &[at])), show(expected), "split at {at}");
    }
    let every: Vec<usize> = (1..input.len()).collect();
    assert_eq!(show(&pieces(input, &every)), show(expected), "byte by byte");
    assert_only_drawing(expected);
}

/// `seq` between two letters leaves just the letters.
#[track_caller]
fn dropped(seq: &[u8]) {
    let mut input = b"A".to_vec();
    input.extend_from_slice(seq);
    input.push(b'B');
    gives(&input, b"AB");
}

macro_rules! drops {
    ($($name:ident: $($seq:expr),+;)*) => {$(
        #[test]
        fn $name() {
            $(dropped($seq);)+
        }
    )*};
}

drops! {
    osc_52_clipboard_write: b"\x1b]52;c;aGVsbG8=\x07", b"\x1b]52;c;aGVsbG8=\x1b\\",
        b"\x1b]52;p;?\x07";
    osc_titles: b"\x1b]0;pwned\x07", b"\x1b]1;icon\x1b\\", b"\x1b]2;title\x07";
    osc_palette_and_colours: b"\x1b]4;1;rgb:ff/00/00\x1b\\", b"\x1b]10;?\x07", b"\x1b]11;#000\x07",
        b"\x1b]104\x07", b"\x1b]12;red\x07";
    dcs_decrqss: b"\x1bP$qm\x1b\\", b"\x1bP$q\"p\x1b\\";
    dcs_sixel: b"\x1bPq#0;2;0;0;0#0~~@@vv@@~~$-\x1b\\";
    dcs_tmux_passthrough: b"\x1bPtmux;\x1b\x1b]52;c;aGk=\x07\x1b\\";
    dcs_is_not_ended_by_bel: b"\x1bP+q544e\x07still inside\x1b\\";
    apc_pm_sos: b"\x1b_Gf=100,a=T;AAAA\x1b\\", b"\x1b^private\x1b\\", b"\x1bXstring\x1b\\";
    device_attributes: b"\x1b[c", b"\x1b[0c", b"\x1b[>c", b"\x1b[>0c", b"\x1b[=c", b"\x1bZ";
    device_status: b"\x1b[5n", b"\x1b[6n", b"\x1b[?6n", b"\x1b[?15n";
    decrqm: b"\x1b[?1049$p", b"\x1b[4$p";
    window_ops: b"\x1b[18t", b"\x1b[8;100;300t", b"\x1b[22;0;0t", b"\x1b[23;0;0t", b"\x1b[21t",
        b"\x1b[3;0;0t", b"\x1b[14t";
    mouse_modes: b"\x1b[?1000h", b"\x1b[?1002h", b"\x1b[?1003h", b"\x1b[?1006h", b"\x1b[?1015h",
        b"\x1b[?9h", b"\x1b[?1000;1006h";
    paste_and_focus: b"\x1b[?2004h", b"\x1b[?1004h";
    keypad_and_cursor_keys: b"\x1b[?1h", b"\x1b=", b"\x1b>", b"\x1b[?66h";
    alternate_screen: b"\x1b[?1049h", b"\x1b[?1049l", b"\x1b[?47h", b"\x1b[?1047h", b"\x1b[?1048h";
    keyboard_protocols: b"\x1b[>1u", b"\x1b[=1;1u", b"\x1b[<u", b"\x1b[?u", b"\x1b[>4;2m";
    ansi_modes_other_than_insert: b"\x1b[2h", b"\x1b[12l", b"\x1b[20h";
    resets_and_conformance: b"\x1b[!p", b"\x1b[62;1\"p", b"\x1b F", b"\x1b G", b"\x1b%@", b"\x1b%G";
    other_escapes: b"\x1b#8", b"\x1b#6", b"\x1bH", b"\x1bN", b"\x1bn", b"\x1b(A", b"\x1b*0",
        b"\x1b[2 q", b"\x1b[3J", b"\x1b[s", b"\x1b[u", b"\x1b[5i", b"\x1b[g";
    mouse_highlight_is_not_sd: b"\x1b[1;2;3;4;5T", b"\x1b[?1S";
    c1_8bit: b"\x9b6n", b"\x9b?1000h", b"\x9d52;c;aGk=\x07", b"\x90$qm\x1b\\", b"\x9f_\x1b\\",
        b"\x9e^\x1b\\", b"\x98X\x1b\\", b"\x9c", b"\x84", b"\x85", b"\x8d";
    c1_utf8_encoded: b"\xc2\x9b6n", b"\xc2\x9d0;t\xc2\x9c", b"\xc2\x90$q\xc2\x9c", b"\xc2\x85";
    bel_and_other_c0: b"\x07", b"\x00", b"\x05", b"\x0b", b"\x0c", b"\x7f";
    cancelled_sequences: b"\x1b[1;2\x18", b"\x1b[?25\x1a", b"\x1b(\x18";
    overlong_parameter_lists: &[b"\x1b[".as_slice(), &b"1;".repeat(40), b"H"].concat();
}

#[test]
fn reset_keeps_only_its_drawing() {
    gives(
        b"A\x1bcB",
        &[b"A", super::super::RIS_DRAWING, b"B"].concat(),
    );
}

#[test]
fn drawing_passes() {
    for seq in [
        &b"plain text, \xc3\xa9 \xe6\xbc\xa2 \xf0\x9f\x99\x82"[..],
        b"\x08\t\n\r\x0e\x0f",
        b"\x1b[A\x1b[2B\x1b[3C\x1b[D\x1b[E\x1b[F\x1b[7G\x1b[5d\x1b[I\x1b[Z",
        b"\x1b[H\x1b[12;40H\x1b[;5H",
        b"\x1b[J\x1b[1J\x1b[2J\x1b[K\x1b[1K\x1b[2K\x1b[5X",
        b"\x1b[3@\x1b[P\x1b[2L\x1b[M\x1b[S\x1b[2T\x1b[3b",
        b"\x1b[2;20r\x1b[r",
        b"\x1b[m\x1b[0;1;4;5;7m\x1b[38;5;196m\x1b[48;2;1;2;3m\x1b[38:2::1:2:3m",
        b"\x1b[?25l\x1b[?25h\x1b[4h\x1b[4l",
        b"\x1b(0\x1b(B\x1b)0\x1b)B\x1b7\x1b8\x1bD\x1bE\x1bM",
    ] {
        gives(seq, seq);
    }
}

#[test]
fn drawing_is_spelled_one_way() {
    gives(b"\x1b[3;4f", b"\x1b[3;4H"); // HVP is CUP
    gives(b"\x1b[9`", b"\x1b[9G"); // HPA is CHA
    gives(b"\x1b[0012;00005H", b"\x1b[12;5H");
    gives(
        b"\x1b[99999999C\x1b[70000b\x1b[600b",
        b"\x1b[9999C\x1b[512b\x1b[512b",
    );
    gives(b"\x1b[?25;1000h\x1b[?1049;25l", b"\x1b[?25h\x1b[?25l");
    gives(b"\x1b[4;20h", b"\x1b[4h");
}

/// A string nobody ends is ended by the next escape sequence, which is read as usual.
#[test]
fn an_unterminated_string_ends_at_the_next_escape() {
    gives(b"A\x1b]0;no end\x1b[2JB", b"A\x1b[2JB");
    gives(b"A\x1bPq#0;no end\x1b(0B", b"A\x1b(0B");
}

#[test]
fn controls_inside_a_sequence_still_act() {
    gives(b"\x1b[1\n;2H", b"\n\x1b[1;2H");
    gives(b"\x1b[1\x07;2H", b"\x1b[1;2H");
    gives(b"\x1b[1\x1b[2J", b"\x1b[2J");
}

#[test]
fn invalid_utf8_is_replaced_and_never_eats_an_escape() {
    gives(b"a\xffb", "a\u{FFFD}b".as_bytes());
    gives(b"a\xe6\xbc\x1b[2Jb", "a\u{FFFD}\x1b[2Jb".as_bytes());
    // A surrogate: ED is a lead byte A0 cannot follow, A0 cannot lead; 80 is a stray C1.
    gives(b"\xed\xa0\x80", "\u{FFFD}\u{FFFD}".as_bytes());
}

/// What each chunk gives is whole: a partial sequence or character waits for the rest, so a
/// watcher attaching between chunks starts at rest.
#[test]
fn output_never_ends_inside_a_sequence() {
    let mut s = Sanitiser::new();
    let mut out = Vec::new();
    for (chunk, now) in [
        (&b"ab\x1b["[..], &b"ab"[..]),
        (b"12;4", b""),
        (b"Hc\xe6", b"\x1b[12;4Hc"),
        (b"\xbc", b""),
        (b"\xa2", "漢".as_bytes()),
    ] {
        out.clear();
        s.filter(chunk, &mut out);
        assert_eq!(out, now, "after {chunk:?}");
    }
}
