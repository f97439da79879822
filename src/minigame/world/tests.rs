//! Tests for the pure game rules.

use super::*;

fn corridor() -> World {
    // Floor on row 1 from x = 0 to 5; stairs before the amulet so both outcomes show.
    let mut map = vec![b'#'; W * H];
    map[idx(0, 1)..=idx(5, 1)].fill(b'.');
    World {
        map,
        seen: vec![false; W * H],
        player: (1, 1),
        stairs: (3, 1),
        amulet: Some((5, 1)),
        piles: vec![((2, 1), 7)],
        gold: 0,
        moves: 0,
    }
}

#[test]
fn every_floor_cell_and_object_is_reachable_from_the_start() {
    for seed in 0..40 {
        let w = World::generate(&mut Rng::new(seed));
        let dist = distances(&w.map, w.player);
        for (i, &cell) in w.map.iter().enumerate() {
            assert_eq!(cell == b'.', dist[i].is_some(), "seed {seed} cell {i}");
        }
        let amulet = w.amulet.expect("an amulet is placed");
        assert_eq!(w.piles.len(), PILES);
        assert_ne!(w.stairs, w.player);
        for p in [w.stairs, amulet]
            .iter()
            .chain(w.piles.iter().map(|(p, _)| p))
        {
            assert!(
                dist[idx(p.0, p.1)].is_some(),
                "seed {seed}: {p:?} unreachable"
            );
        }
        assert!((0..W).all(|x| !w.is_floor(x, 0) && !w.is_floor(x, H - 1)));
        assert!((0..H).all(|y| !w.is_floor(0, y) && !w.is_floor(W - 1, y)));
    }
}

#[test]
fn different_seeds_give_different_maps() {
    let a = World::generate(&mut Rng::new(1));
    let b = World::generate(&mut Rng::new(2));
    assert_ne!(a.map, b.map);
}

#[test]
fn walls_and_the_map_edge_block_without_costing_a_move() {
    let mut w = corridor();
    assert_eq!(w.step(0, -1), Outcome::Blocked);
    assert_eq!(w.step(-1, 0), Outcome::Moved);
    assert_eq!(w.step(-1, 0), Outcome::Blocked);
    assert_eq!((w.player, w.moves), ((0, 1), 1));
}

#[test]
fn gold_amulet_and_stairs_play_out_in_order() {
    let mut w = corridor();
    assert_eq!(w.step(1, 0), Outcome::Gold(7));
    assert_eq!((w.gold, w.piles.len()), (7, 0));
    assert_eq!(w.step(1, 0), Outcome::NeedAmulet);
    assert_eq!(w.step(1, 0), Outcome::Moved);
    assert_eq!(w.step(1, 0), Outcome::Amulet);
    assert_eq!(w.amulet, None);
    assert_eq!(w.step(-1, 0), Outcome::Moved);
    assert_eq!(w.step(-1, 0), Outcome::Won);
    assert_eq!(w.moves, 6);
}

#[test]
fn moving_reveals_nearby_cells() {
    let mut w = corridor();
    assert!(!w.seen(4, 1));
    w.step(1, 0);
    assert!(w.seen(4, 1) && !w.seen(5, 1));
}

#[test]
fn save_and_load_round_trip_after_playing() {
    let mut w = World::generate(&mut Rng::new(7));
    for (dx, dy) in [(1, 0), (0, 1), (-1, 0), (0, -1), (1, 1), (-1, -1)].repeat(5) {
        w.step(dx, dy);
    }
    assert_eq!(World::from_save(&w.to_save()), Ok(w.clone()));
    let mut carried = corridor();
    carried.step(1, 0);
    carried.amulet = None;
    assert_eq!(World::from_save(&carried.to_save()), Ok(carried));
}

#[test]
fn corrupt_saves_are_rejected() {
    let good = World::generate(&mut Rng::new(3)).to_save();
    let (wx, wy) = (1, 0); // a border wall
    let cases = [
        String::new(),
        good.replace("amulet-run 1", "amulet-run 2"),
        good[..good.len() / 2].to_owned(),
        good.clone() + "#\n",
        good.replacen("gold 0", "gold -4", 1),
        good.replacen("moves 0", "moves 99999999999", 1),
        good.replacen("player", "wizard", 1),
        good.replacen("map\nW", "map\nX", 1)
            .replacen("map\n#", "map\nX", 1),
        good.replacen("map\n", "map\n\n", 1),
        {
            let (head, _) = good.split_once('\n').unwrap_or_default();
            let rest = good.lines().skip(2).collect::<Vec<_>>().join("\n");
            format!("{head}\nplayer {wx} {wy}\n{rest}\n")
        },
    ];
    for (i, text) in cases.iter().enumerate() {
        assert!(World::from_save(text).is_err(), "case {i} accepted");
    }
}

#[test]
fn keys_decode_letters_numpad_and_escape_sequences() {
    let keys = parse_keys(b"h9\x1b[A\x1bOD\x1b[5~\x1b[Hq\x1bx\x1b[");
    let dirs: Vec<_> = keys.iter().map(|k| k.direction()).collect();
    assert_eq!(
        dirs,
        [
            Some((-1, 0)),
            Some((1, -1)),
            Some((0, -1)),
            Some((-1, 0)),
            Some((1, -1)),
            Some((-1, -1)),
            None,
            None
        ]
    );
    assert_eq!(keys.get(6), Some(&Key::Char(b'q')));
    assert_eq!(keys.get(7), Some(&Key::Char(b'x')));
}
