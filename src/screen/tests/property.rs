//! Random input through the sanitiser, and the NetHack replay through it.

use super::*;

/// xorshift64*: deterministic, so a failure names the seed that reproduces it.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Bytes that steer a terminal parser, weighted so random input reaches deep states: every
/// introducer (7- and 8-bit), terminators, parameters, private markers, intermediates, the
/// finals of dangerous sequences, UTF-8 leads and continuations.
const STEERING: &[u8] = b"\x1b\x1b\x1b[[]P_^X\\\x07\x18\x9b\x9d\x90\x9c\xc2\xe6\xbc\xf0\x9f\
    0123456789;;:??>=< !$\"'#%()cntuhlpqmHJKrbST80@\n\r\x0e\x0f";

fn random_input(rng: &mut Rng) -> Vec<u8> {
    let len = rng.below(400);
    (0..len)
        .map(|_| {
            if rng.below(4) == 0 {
                rng.next() as u8
            } else {
                STEERING[rng.below(STEERING.len())]
            }
        })
        .collect()
}

#[test]
fn random_input_gives_only_drawing_in_any_chunks() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for case in 0..20_000 {
        let input = random_input(&mut rng);
        let whole = sanitise(&input);
        assert_only_drawing(&whole);
        // Drawing already sanitised is left as it is.
        assert_eq!(sanitise(&whole), whole, "case {case}: {input:?}");
        // Chunk boundaries change nothing.
        let mut s = Sanitiser::new();
        let mut out = Vec::new();
        let mut rest = &input[..];
        while !rest.is_empty() {
            let (now, later) = rest.split_at(1 + rng.below(rest.len()));
            s.filter(now, &mut out);
            assert_only_drawing(&out);
            rest = later;
        }
        assert_eq!(out, whole, "case {case}: {input:?}");
    }
}

/// Memory stays bounded on an endless string: nothing of it is kept.
#[test]
fn an_endless_osc_is_skipped_without_buffering() {
    let mut s = Sanitiser::new();
    let mut out = Vec::new();
    s.filter(b"\x1b]52;c;", &mut out);
    for _ in 0..1000 {
        s.filter(&[b'A'; 4096], &mut out);
    }
    s.filter(b"\x07done", &mut out);
    assert_eq!(out, b"done");
    assert!(std::mem::size_of::<Sanitiser>() < 256);
}

/// The replay drawn from the sanitised stream is the replay drawn from the raw one.
#[test]
fn the_replay_sanitised_draws_the_same_screens() {
    let raw = fixture();
    let clean = sanitise(raw);
    assert_only_drawing(&clean);
    let mut before = vt100::Parser::new(24, 80, 0);
    let mut after = vt100::Parser::new(24, 80, 0);
    let mut s = Sanitiser::new();
    let mut out = Vec::new();
    for (i, chunk) in raw.chunks(4093).enumerate() {
        before.process(chunk);
        out.clear();
        s.filter(chunk, &mut out);
        after.process(&out);
        let (b, a) = (before.screen(), after.screen());
        assert_eq!(a.contents_formatted(), b.contents_formatted(), "chunk {i}");
        assert_eq!(a.cursor_position(), b.cursor_position(), "chunk {i}");
    }
    // All that was dropped: the title stack push and the alternate screen switches.
    let dropped = b"\x1b[22;0;0t\x1b[?1049h\x1b[?1049l".len();
    assert_eq!(raw.len() - clean.len(), dropped);
}

/// Random output from a game, at any size and with resizes between, never breaks the model,
/// and its repaint stays drawing-only and redraws it exactly, on avt itself (any code point)
/// and on vt100 (whose width table differs from avt's for exotic code points, so there the
/// input keeps to ASCII, 8-bit controls, invalid bytes and a few wide characters).
#[test]
fn random_input_never_breaks_the_model() {
    let mut rng = Rng(0x0dd_ba11_cafe_f00d);
    for case in 0..4_000 {
        let plain = case % 2 == 0;
        let mut input = random_input(&mut rng);
        if plain {
            // Lead bytes become C1 bytes; with the stray continuations left, nothing decodes.
            input
                .iter_mut()
                .filter(|b| **b >= 0xC0)
                .for_each(|b| *b &= 0x9F);
        }
        if rng.below(2) == 0 {
            input.extend_from_slice("漢🙂".as_bytes());
        }
        let mut model = Screen::new(1 + rng.below(6) as u16, 1 + rng.below(9) as u16);
        let (a, b) = input.split_at(rng.below(input.len() + 1));
        model.feed(a);
        if rng.below(4) == 0 {
            model.resize(1 + rng.below(6) as u16, 1 + rng.below(9) as u16);
        }
        model.feed(b);
        let paint = repaint_of(&model);
        assert_only_drawing(&paint);
        let (rows, cols) = model.size();
        let what = format!("case {case}: {input:?}");
        assert_same_models(&screen(&paint, rows, cols), &model, &what);
        if plain {
            let paint = String::from_utf8_lossy(&paint).replace('\u{FFFD}', REPLACEMENT_STAND_IN);
            assert_same(
                &model,
                vt(paint.as_bytes(), rows, cols).screen(),
                false,
                &what,
            );
        }
    }
}
