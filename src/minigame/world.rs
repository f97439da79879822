//! Amulet run rules, free of I/O: map generation (a maze with a few rooms), moves, key
//! decoding, and the plain-text save format.

/// Map width in cells (the full 80-column screen).
pub const W: usize = 80;
/// Map height in cells (24 rows minus message, status and key-hint lines).
pub const H: usize = 21;
const SAVE_HEADER: &str = "amulet-run 1";
const PILES: usize = 9;

/// The whole game state; exactly what a save file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct World {
    /// Row-major `W*H` cells: `b'#'` wall or `b'.'` floor.
    map: Vec<u8>,
    /// Cells the player has seen (fog of war), same indexing as `map`.
    seen: Vec<bool>,
    /// Player position (x, y).
    pub player: (usize, usize),
    /// The way out.
    pub stairs: (usize, usize),
    /// Where the amulet lies; `None` once the player carries it.
    pub amulet: Option<(usize, usize)>,
    /// Gold piles still on the floor: position and amount.
    pub piles: Vec<((usize, usize), u32)>,
    /// Gold carried.
    pub gold: u32,
    /// Successful moves so far.
    pub moves: u32,
}

/// What a move did, for the message line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Walked into a wall; nothing changed.
    Blocked,
    /// Moved onto an empty cell.
    Moved,
    /// Picked up this much gold.
    Gold(u32),
    /// Picked up the amulet.
    Amulet,
    /// Reached the stairs without the amulet.
    NeedAmulet,
    /// Reached the stairs with the amulet.
    Won,
}

/// Why a save file was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("corrupt save file: {0}")]
pub struct SaveError(&'static str);

/// One decoded key press.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// A plain byte (letters, digits, control characters).
    Char(u8),
    /// A movement key from an escape sequence (arrows, keypad Home/End/PgUp/PgDn).
    Dir(i32, i32),
}

impl Key {
    /// The direction this key moves in: hjklyubn, keypad digits 1-9, arrows.
    pub fn direction(self) -> Option<(i32, i32)> {
        let c = match self {
            Key::Dir(dx, dy) => return Some((dx, dy)),
            Key::Char(c) => c,
        };
        Some(match c {
            b'h' | b'4' => (-1, 0),
            b'l' | b'6' => (1, 0),
            b'k' | b'8' => (0, -1),
            b'j' | b'2' => (0, 1),
            b'y' | b'7' => (-1, -1),
            b'u' | b'9' => (1, -1),
            b'b' | b'1' => (-1, 1),
            b'n' | b'3' => (1, 1),
            _ => return None,
        })
    }
}

/// Splits raw terminal input into keys; unknown escape sequences are dropped.
pub fn parse_keys(mut input: &[u8]) -> Vec<Key> {
    let mut keys = Vec::new();
    while let Some((&first, rest)) = input.split_first() {
        input = rest;
        if first != 0x1b {
            keys.push(Key::Char(first));
            continue;
        }
        // ESC [ or ESC O, optional digits, final byte.
        let Some((b'[' | b'O', rest)) = input.split_first() else {
            continue;
        };
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let Some(&fin) = rest.get(digits) else {
            input = &[];
            continue;
        };
        input = rest.get(digits + 1..).unwrap_or(&[]);
        let dir = match (rest.get(..digits).unwrap_or_default(), fin) {
            (_, b'A') => (0, -1),
            (_, b'B') => (0, 1),
            (_, b'C') => (1, 0),
            (_, b'D') => (-1, 0),
            (b"" | b"1" | b"7", b'H' | b'~') => (-1, -1),
            (b"" | b"4" | b"8", b'F' | b'~') => (-1, 1),
            (b"5", b'~') => (1, -1),
            (b"6", b'~') => (1, 1),
            _ => continue,
        };
        keys.push(Key::Dir(dir.0, dir.1));
    }
    keys
}

/// A small xorshift64* generator; games need variety, not cryptography.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeds the generator (any seed works, 0 included).
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15 | 1)
    }

    /// A number in `0..n` (`n` must be > 0).
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n.max(1)
    }
}

impl World {
    /// A fresh random level: a perfect maze on odd cells, widened by rooms and a few extra
    /// openings (carving only adds floor, so everything stays connected).
    pub fn generate(rng: &mut Rng) -> World {
        let mut map = vec![b'#'; W * H];
        let (cw, ch) = ((W - 2) / 2, (H - 1) / 2);
        let mut visited = vec![false; cw * ch];
        let mut stack = vec![(0, 0)];
        visited[0] = true;
        map[idx(1, 1)] = b'.';
        while let Some(&(cx, cy)) = stack.last() {
            let options: Vec<(usize, usize)> = [(0i32, -1i32), (0, 1), (-1, 0), (1, 0)]
                .iter()
                .filter_map(|&(dx, dy)| {
                    let nx = usize::try_from(cx as i32 + dx).ok().filter(|&x| x < cw)?;
                    let ny = usize::try_from(cy as i32 + dy).ok().filter(|&y| y < ch)?;
                    (!visited[ny * cw + nx]).then_some((nx, ny))
                })
                .collect();
            if options.is_empty() {
                stack.pop();
                continue;
            }
            let (nx, ny) = options[rng.below(options.len())];
            visited[ny * cw + nx] = true;
            map[idx(2 * nx + 1, 2 * ny + 1)] = b'.';
            map[idx(cx + nx + 1, cy + ny + 1)] = b'.';
            stack.push((nx, ny));
        }
        for _ in 0..7 {
            let (w, h) = (3 + rng.below(8), 3 + rng.below(3));
            let (x0, y0) = (1 + rng.below(W - 2 - w), 1 + rng.below(H - 2 - h));
            for y in y0..y0 + h {
                map[idx(x0, y)..idx(x0 + w, y)].fill(b'.');
            }
        }
        for _ in 0..60 {
            let (x, y) = (1 + rng.below(W - 3), 1 + rng.below(H - 2));
            map[idx(x, y)] = b'.';
        }
        let mut floors: Vec<(usize, usize)> = (0..W * H)
            .filter(|&i| map[i] == b'.')
            .map(|i| (i % W, i / W))
            .collect();
        for i in (1..floors.len()).rev() {
            floors.swap(i, rng.below(i + 1));
        }
        let player = floors[0];
        let dist = distances(&map, player);
        let far = |p: &(usize, usize)| dist[idx(p.0, p.1)].unwrap_or(0);
        let max = floors.iter().map(far).max().unwrap_or(0);
        let stairs = floors
            .iter()
            .copied()
            .find(|p| far(p) == max)
            .unwrap_or(player);
        let mut rest = floors[1..].iter().copied().filter(|&p| p != stairs);
        let amulet = rest.by_ref().find(|p| far(p) >= max / 2);
        let piles = rest
            .take(PILES)
            .map(|p| (p, 5 + rng.below(46) as u32))
            .collect();
        let mut world = World {
            seen: vec![false; W * H],
            map,
            player,
            stairs,
            amulet,
            piles,
            gold: 0,
            moves: 0,
        };
        world.reveal();
        world
    }

    /// True for floor cells, false for walls and anything off the map.
    pub fn is_floor(&self, x: usize, y: usize) -> bool {
        x < W && y < H && self.map[idx(x, y)] == b'.'
    }

    /// True if the player has seen this cell.
    pub fn seen(&self, x: usize, y: usize) -> bool {
        x < W && y < H && self.seen[idx(x, y)]
    }

    /// Tries to move the player by (dx, dy) and reports what happened.
    pub fn step(&mut self, dx: i32, dy: i32) -> Outcome {
        let next = usize::try_from(self.player.0 as i32 + dx)
            .ok()
            .zip(usize::try_from(self.player.1 as i32 + dy).ok());
        let Some(pos) = next.filter(|&(x, y)| self.is_floor(x, y)) else {
            return Outcome::Blocked;
        };
        self.player = pos;
        self.moves = self.moves.saturating_add(1);
        self.reveal();
        if let Some(i) = self.piles.iter().position(|p| p.0 == pos) {
            let amount = self.piles.swap_remove(i).1;
            self.gold = self.gold.saturating_add(amount);
            return Outcome::Gold(amount);
        }
        if self.amulet == Some(pos) {
            self.amulet = None;
            return Outcome::Amulet;
        }
        match (pos == self.stairs, self.amulet.is_none()) {
            (true, true) => Outcome::Won,
            (true, false) => Outcome::NeedAmulet,
            _ => Outcome::Moved,
        }
    }

    /// Serialises the game (text; `#`/`.` seen, `W`/`f` unseen wall/floor).
    pub fn to_save(&self) -> String {
        let mut s = format!(
            "{SAVE_HEADER}\nplayer {} {}\nstairs {} {}\ngold {}\nmoves {}\n",
            self.player.0, self.player.1, self.stairs.0, self.stairs.1, self.gold, self.moves
        );
        if let Some((x, y)) = self.amulet {
            s += &format!("amulet {x} {y}\n");
        }
        for ((x, y), n) in &self.piles {
            s += &format!("pile {x} {y} {n}\n");
        }
        s += "map\n";
        for (i, (&c, &seen)) in self.map.iter().zip(&self.seen).enumerate() {
            s.push(match (c, seen) {
                (b'#', true) => '#',
                (b'#', false) => 'W',
                (_, true) => '.',
                _ => 'f',
            });
            if i % W == W - 1 {
                s.push('\n');
            }
        }
        s
    }

    /// Parses and validates a save written by [`World::to_save`].
    pub fn from_save(text: &str) -> Result<World, SaveError> {
        let mut lines = text.lines();
        if lines.next() != Some(SAVE_HEADER) {
            return Err(SaveError("unknown header"));
        }
        let (mut player, mut stairs, mut amulet, mut piles) = (None, None, None, Vec::new());
        let (mut gold, mut moves) = (0, 0);
        for line in lines.by_ref() {
            let mut words = line.split(' ');
            let key = words.next().unwrap_or_default();
            if key == "map" {
                break;
            }
            let nums: Option<Vec<u32>> = words.map(|w| w.parse().ok()).collect();
            let nums = nums.ok_or(SaveError("bad number"))?;
            let at = |x: &u32, y: &u32| Some((*x as usize, *y as usize));
            match (key, nums.as_slice()) {
                ("player", [x, y]) => player = at(x, y),
                ("stairs", [x, y]) => stairs = at(x, y),
                ("amulet", [x, y]) => amulet = at(x, y),
                ("pile", [x, y, n]) => piles.push(((*x as usize, *y as usize), *n)),
                ("gold", [n]) => gold = *n,
                ("moves", [n]) => moves = *n,
                _ => return Err(SaveError("unknown line")),
            }
        }
        let (mut map, mut seen) = (Vec::with_capacity(W * H), Vec::with_capacity(W * H));
        for line in lines.by_ref().take(H) {
            if line.len() != W {
                return Err(SaveError("map row has the wrong width"));
            }
            for c in line.bytes() {
                let (cell, s) = match c {
                    b'#' => (b'#', true),
                    b'W' => (b'#', false),
                    b'.' => (b'.', true),
                    b'f' => (b'.', false),
                    _ => return Err(SaveError("unknown map cell")),
                };
                map.push(cell);
                seen.push(s);
            }
        }
        if map.len() != W * H || lines.next().is_some() {
            return Err(SaveError("map has the wrong height"));
        }
        let world = World {
            map,
            seen,
            player: player.ok_or(SaveError("no player"))?,
            stairs: stairs.ok_or(SaveError("no stairs"))?,
            amulet,
            piles,
            gold,
            moves,
        };
        let on_floor = |p: &(usize, usize)| world.is_floor(p.0, p.1);
        let items_ok =
            world.piles.iter().all(|(p, _)| on_floor(p)) && world.amulet.iter().all(on_floor);
        if !on_floor(&world.player) || !on_floor(&world.stairs) || !items_ok {
            return Err(SaveError("object outside the floor"));
        }
        Ok(world)
    }

    /// Marks everything within two cells of the player as seen.
    fn reveal(&mut self) {
        let (px, py) = self.player;
        for y in py.saturating_sub(2)..(py + 3).min(H) {
            for x in px.saturating_sub(2)..(px + 3).min(W) {
                self.seen[idx(x, y)] = true;
            }
        }
    }
}

fn idx(x: usize, y: usize) -> usize {
    y * W + x
}

/// Breadth-first walking distance (8 directions) from `from` to every cell; `None` = unreachable.
fn distances(map: &[u8], from: (usize, usize)) -> Vec<Option<u32>> {
    let mut dist = vec![None; W * H];
    let mut queue = std::collections::VecDeque::from([from]);
    dist[idx(from.0, from.1)] = Some(0);
    while let Some((x, y)) = queue.pop_front() {
        let d = dist[idx(x, y)].unwrap_or(0);
        for ny in y.saturating_sub(1)..(y + 2).min(H) {
            for nx in x.saturating_sub(1)..(x + 2).min(W) {
                if map[idx(nx, ny)] == b'.' && dist[idx(nx, ny)].is_none() {
                    dist[idx(nx, ny)] = Some(d + 1);
                    queue.push_back((nx, ny));
                }
            }
        }
    }
    dist
}

#[cfg(test)]
mod tests;
