//! Watching on a data core: the games it runs keep a screen model and send their output
//! (sanitised once per chunk) to their watchers — those on this core directly, every other
//! core with watchers once, as a shared chunk over the mesh, where that core copies it to its
//! own watchers. A watcher that falls behind drops output and is re-synced from the screen
//! model; the player never waits for a watcher.

use super::*;
use crate::reactor::view::{game_ref, Watcher};
use crate::session::WatchKey;
use crate::watch::{GameRef, Listing};
use bytes::Bytes;

/// Told to watchers when the game ends.
const GAME_ENDED: &str = "The game you were watching has ended.";
/// Told to a watcher whose game was gone before it attached.
const GAME_GONE: &str = "That game is no longer running.";
/// Told to watchers when the game's player comes back on another connection: the game
/// moves to that connection's core and is listed anew.
const GAME_MOVED: &str = "The player reconnected; choose the game again to keep watching.";

/// What data cores send each other about watching.
pub enum PeerMsg {
    /// A watcher on the sending core wants `game` (on the receiving core): answer with its
    /// screen, or `Gone`. `new`: one more watcher (false: a re-sync of one already counted).
    Attach {
        game: GameRef,
        watcher: Watcher,
        new: bool,
    },
    /// One watcher of `game` on the sending core left.
    Detach { game: GameRef },
    /// `game`'s screen, for one watcher on the receiving core, or (`None`) for all of them.
    Screen {
        game: GameRef,
        watcher: Option<Watcher>,
        cols: u16,
        rows: u16,
        bytes: Bytes,
    },
    /// Output of `game`, already sanitised.
    Output { game: GameRef, chunk: Bytes },
    /// Output of `game` for the receiving core was dropped (the queue was full): its watchers
    /// re-sync.
    Gap { game: GameRef },
    /// `game` ended, or moved (`why` is told to its watchers).
    Ended { game: GameRef, why: &'static str },
    /// A player's connection on the sending core wants its game `target` (on the receiving
    /// core): answer `HandedOver` or `NotHandedOver`.
    HandOver {
        target: GameRef,
        take_over: bool,
        to: super::reattach::Reattacher,
    },
    /// The game asked for, off the sending core's ring, for the receiving core to run.
    HandedOver {
        to: super::reattach::Reattacher,
        game: Box<Game>,
    },
    /// The game asked for could not be had (`why` is told to the player).
    NotHandedOver {
        to: super::reattach::Reattacher,
        why: &'static str,
    },
    /// The game a watcher asked for is not running.
    Gone { watcher: Watcher },
}

/// The link to another data core: its queue, and what did not fit yet.
pub struct PeerLink {
    pub tx: Producer<PeerMsg>,
    pub backlog: VecDeque<PeerMsg>,
}

impl DataCore {
    pub(super) fn local_game(&mut self, game: GameRef) -> Option<(usize, &mut Game)> {
        if usize::from(game.core) != self.id {
            return None;
        }
        let slot = game.slot as usize;
        self.games
            .get_mut(slot)
            .filter(|g| g.generation == game.generation)
            .map(|g| (slot, g))
    }

    /// Effect::Watch / Effect::Resync of the connection `r`.
    pub(super) fn watch(&mut self, r: ConnRef, watch: WatchKey, game: GameRef, new: bool) {
        self.flush_fanout();
        let watcher = Watcher { conn: r, watch };
        if usize::from(game.core) == self.id {
            let now = now_ms();
            let Some((_, g)) = self.local_game(game) else {
                if let Some(c) = self.conn(r) {
                    c.session.handle_watch_ended(watch, GAME_GONE, now);
                }
                return;
            };
            let was = g.view.watched();
            if new {
                g.view.local.push(watcher);
            }
            let screen = g.view.repaint();
            let (cols, rows) = (g.view.cols, g.view.rows);
            self.spectated(was, true);
            if let Some(c) = self.conn(r) {
                c.session
                    .handle_watch_screen(watch, &screen, cols, rows, now);
            }
            return;
        }
        if new {
            self.watching.entry(game).or_default().push(watcher);
        }
        self.send_peer(
            usize::from(game.core),
            PeerMsg::Attach { game, watcher, new },
        );
    }

    /// Effect::Unwatch of the connection `r`.
    pub(super) fn unwatch(&mut self, r: ConnRef, watch: WatchKey, game: GameRef) {
        let watcher = Watcher { conn: r, watch };
        if usize::from(game.core) == self.id {
            if let Some((_, g)) = self.local_game(game) {
                let was = g.view.watched();
                g.view.local.retain(|w| *w != watcher);
                let now = g.view.watched();
                self.spectated(was, now);
            }
            return;
        }
        let Some(list) = self.watching.get_mut(&game) else {
            return;
        };
        let before = list.len();
        list.retain(|w| *w != watcher);
        let left = before != list.len();
        if list.is_empty() {
            self.watching.remove(&game);
        }
        if left {
            self.send_peer(usize::from(game.core), PeerMsg::Detach { game });
        }
    }

    /// `n` bytes of game `g`'s output are in the scratch buffer: the screen model takes
    /// them, and the watchers, if any, a sanitised copy.
    pub(super) fn game_output(&mut self, g: usize, n: usize, now: Millis) {
        let Some(game) = self.games.get_mut(g) else {
            return;
        };
        let Some(bytes) = self.scratch.get(..n) else {
            return;
        };
        // Recorded first: a new file's first frames draw the screen as it was before these
        // bytes.
        if let Some(r) = &mut game.recording {
            let view = &game.view;
            self.recorder
                .record(r, bytes, view.rows, view.cols, |out| view.repaint_into(out));
        }
        if !game.view.output(bytes, now, &mut self.watch_buf) || self.watch_buf.is_empty() {
            return;
        }
        // The watchers get it at the end of the turn, after the player's own send: a game
        // with a thousand watchers must not make its player wait for them.
        let game_ref = game_ref(self.id, g, game.generation);
        self.fanout
            .push((game_ref, Bytes::copy_from_slice(&self.watch_buf)));
    }

    /// Output of watched games, held back this turn, goes to their watchers. Also run before
    /// anything that gives a watcher a fresh screen (an attach, a resize, the end), so the
    /// screen always comes after the output it already shows.
    pub(super) fn flush_fanout(&mut self) {
        if self.fanout.is_empty() {
            return;
        }
        let now = now_ms();
        let fanout = std::mem::take(&mut self.fanout);
        for (game_ref, chunk) in &fanout {
            let Some((_, game)) = self.local_game(*game_ref) else {
                continue;
            };
            // Copies: the sessions' effects (a watcher leaving) change the lists meanwhile.
            let local = game.view.local.clone();
            let cores = game.view.watching_cores();
            for w in &local {
                if let Some(c) = self.conn(w.conn) {
                    c.session.handle_watch_output(w.watch, chunk, now);
                }
            }
            self.after_watchers(&local);
            for core in cores {
                self.send_output(
                    core,
                    PeerMsg::Output {
                        game: *game_ref,
                        chunk: chunk.clone(),
                    },
                );
            }
        }
        // Keep the list's capacity for the next turn.
        let mut fanout = fanout;
        fanout.clear();
        if self.fanout.is_empty() {
            self.fanout = fanout;
        }
    }

    /// Carry out what the watchers' sessions need after being fed (sends, mostly). Effects
    /// may change watcher lists, so this runs after the list was walked.
    fn after_watchers(&mut self, watchers: &[Watcher]) {
        for w in watchers {
            if self.alive(w.conn) {
                self.after(w.conn.slot as usize);
            }
        }
    }

    /// The game `g`'s size changed: every watcher gets its screen again.
    pub(super) fn screen_to_all_watchers(&mut self, g: usize) {
        self.flush_fanout();
        let now = now_ms();
        let Some(game) = self.games.get(g) else {
            return;
        };
        if !game.view.watched() {
            return;
        }
        let game_ref = game_ref(self.id, g, game.generation);
        let screen = game.view.repaint();
        let (cols, rows) = (game.view.cols, game.view.rows);
        let local = game.view.local.clone();
        let cores = game.view.watching_cores();
        for w in &local {
            if let Some(c) = self.conn(w.conn) {
                c.session
                    .handle_watch_screen(w.watch, &screen, cols, rows, now);
            }
        }
        self.after_watchers(&local);
        let bytes = Bytes::from(screen);
        for core in cores {
            self.send_peer(
                core,
                PeerMsg::Screen {
                    game: game_ref,
                    watcher: None,
                    cols,
                    rows,
                    bytes: bytes.clone(),
                },
            );
        }
    }

    /// A game started: its recording begins (when recordings are on).
    pub(super) fn start_recording(&mut self, g: usize) {
        let config = self.env.config.clone();
        let rc = &config.recording;
        let Some(game) = self.games.get_mut(g) else {
            return;
        };
        if !rc.enabled {
            return;
        }
        let name = config
            .game(&game.game_id)
            .map_or(game.game_id.as_str(), |c| c.name.as_str());
        // Names are validated (letters and digits; ids from the config): safe path parts.
        let dir = rc.dir.join(&game.user).join(&game.game_id);
        game.recording = self.recorder.open(
            dir,
            rc.compress,
            rc.max_file_bytes,
            &game.user,
            name,
            &config.server_id,
            game.view.rows,
            game.view.cols,
        );
    }

    /// Once a tick: every recording's pending output goes to the writer.
    pub(super) fn flush_recordings(&mut self) {
        for (_, game) in self.games.iter_mut() {
            if let Some(r) = &mut game.recording {
                self.recorder.flush(r);
            }
        }
    }

    /// The writer's reports: a recording that failed stops (its game goes on).
    pub(super) fn recording_reports(&mut self) {
        while let Some((id, error)) = self.recorder.poll() {
            let found = self
                .games
                .iter_mut()
                .find(|(_, g)| g.recording.as_ref().is_some_and(|r| r.id == id));
            match found {
                Some((_, game)) => {
                    game.recording = None;
                    tracing::warn!(parent: &game.span, %error, "recording stopped; the game goes on unrecorded");
                }
                None => tracing::warn!(%error, "a finished recording could not be completed"),
            }
        }
    }

    /// A game started: the watch menus learn of it.
    pub(super) fn list_game(&mut self, g: usize) {
        let Some(game) = self.games.get(g) else {
            return;
        };
        let game_name = self
            .env
            .config
            .game(&game.game_id)
            .map_or_else(|| game.game_id.clone(), |c| c.name.clone());
        let listing = Listing {
            game: game_ref(self.id, g, game.generation),
            player: game.user.clone(),
            game_id: game.game_id.clone(),
            game_name,
            cols: game.view.cols,
            rows: game.view.rows,
            started_unix: game.started_unix,
            last_output_ms: game.view.last_output_ms,
            watchers: 0,
            detached: game.detached_until.is_some(),
        };
        self.tell_control(Request::GameListed(Box::new(listing)));
    }

    /// Game `g` is ending: its watchers go back to their menus, the menus forget it.
    pub(super) fn end_watching(&mut self, g: usize) {
        self.end_watching_with(g, GAME_ENDED);
    }

    /// Game `g` moves to another core: watched and listed there anew.
    pub(super) fn end_watching_moved(&mut self, g: usize) {
        self.end_watching_with(g, GAME_MOVED);
    }

    fn end_watching_with(&mut self, g: usize, why: &'static str) {
        self.flush_fanout();
        let now = now_ms();
        let Some(game) = self.games.get_mut(g) else {
            return;
        };
        let game_ref = game_ref(self.id, g, game.generation);
        let was = game.view.watched();
        let local = std::mem::take(&mut game.view.local);
        let cores = game.view.watching_cores();
        for w in &local {
            if let Some(c) = self.conn(w.conn) {
                c.session.handle_watch_ended(w.watch, why, now);
            }
        }
        self.after_watchers(&local);
        for core in cores {
            self.send_peer(
                core,
                PeerMsg::Ended {
                    game: game_ref,
                    why,
                },
            );
        }
        self.spectated(was, false);
        self.tell_control(Request::GameUnlisted(game_ref));
    }

    /// Once a period: games whose size, activity or watchers changed are reported (an index
    /// walk: the report goes out while the game table is not borrowed, and nothing is
    /// allocated for it).
    pub(super) fn report_games(&mut self) {
        let mut next = 0;
        while let Some(g) = (next..self.games.capacity()).find(|&g| self.games.contains(g)) {
            next = g + 1;
            let Some(game) = self.games.get_mut(g) else {
                continue;
            };
            if let Some((cols, rows, _, watchers)) = game.view.status_changed() {
                let request = Request::GameStatus {
                    game: game_ref(self.id, g, game.generation),
                    cols,
                    rows,
                    last_output_ms: game.view.last_output_ms,
                    watchers,
                };
                self.tell_control(request);
            }
        }
    }

    /// A game on this core gained its first watcher or lost its last.
    fn spectated(&self, was: bool, now: bool) {
        match (was, now) {
            (false, true) => self.metrics.spectating_session_started(),
            (true, false) => self.metrics.spectating_session_ended(),
            _ => {}
        }
    }

    pub(super) fn tell_control(&mut self, request: Request) {
        self.send_control(ToControl {
            core: self.id,
            from: None,
            request,
        });
    }

    /// A message for core `core`, queued in order behind what waits for it.
    pub(super) fn send_peer(&mut self, core: usize, msg: PeerMsg) {
        let Some(Some(link)) = self.peers.get_mut(core) else {
            return;
        };
        if link.backlog.is_empty() {
            if let Err(msg) = link.tx.push(msg) {
                link.backlog.push_back(msg);
            }
        } else {
            link.backlog.push_back(msg);
        }
        self.wakes.owe(core);
    }

    /// Output for core `core`: dropped when that core is behind (its watchers then re-sync
    /// from the screen), so a slow core never makes the queue grow without bound.
    fn send_output(&mut self, core: usize, msg: PeerMsg) {
        let Some(Some(link)) = self.peers.get_mut(core) else {
            return;
        };
        let game = match &msg {
            PeerMsg::Output { game, .. } => *game,
            _ => return self.send_peer(core, msg),
        };
        if link.backlog.is_empty() && link.tx.push(msg).is_ok() {
            self.wakes.owe(core);
            return;
        }
        let gap_queued = link
            .backlog
            .iter()
            .any(|m| matches!(m, PeerMsg::Gap { game: g2 } if *g2 == game));
        if !gap_queued {
            link.backlog.push_back(PeerMsg::Gap { game });
        }
        self.wakes.owe(core);
    }

    pub(super) fn flush_peer_backlogs(&mut self) {
        for core in 0..self.peers.len() {
            let Some(Some(link)) = self.peers.get_mut(core) else {
                continue;
            };
            let mut sent = false;
            while let Some(msg) = link.backlog.pop_front() {
                if let Err(msg) = link.tx.push(msg) {
                    link.backlog.push_front(msg);
                    break;
                }
                sent = true;
            }
            if sent {
                self.wakes.owe(core);
            }
        }
    }

    /// Messages from the other data cores.
    pub(super) fn drain_peers(&mut self) {
        for core in 0..self.peers_rx.len() {
            while let Some(msg) = self
                .peers_rx
                .get_mut(core)
                .and_then(Option::as_mut)
                .and_then(Consumer::pop)
            {
                self.peer_message(core, msg);
            }
        }
        self.flush_peer_backlogs();
    }

    fn peer_message(&mut self, from: usize, msg: PeerMsg) {
        let now = now_ms();
        match msg {
            PeerMsg::Attach { game, watcher, new } => {
                self.flush_fanout();
                let Some((_, g)) = self.local_game(game) else {
                    return self.send_peer(from, PeerMsg::Gone { watcher });
                };
                let was = g.view.watched();
                if new {
                    if let Some(n) = g.view.remote.get_mut(from) {
                        *n += 1;
                    }
                }
                let bytes = Bytes::from(g.view.repaint());
                let (cols, rows) = (g.view.cols, g.view.rows);
                self.spectated(was, true);
                self.send_peer(
                    from,
                    PeerMsg::Screen {
                        game,
                        watcher: Some(watcher),
                        cols,
                        rows,
                        bytes,
                    },
                );
            }
            PeerMsg::Detach { game } => {
                if let Some((_, g)) = self.local_game(game) {
                    let was = g.view.watched();
                    if let Some(n) = g.view.remote.get_mut(from) {
                        *n = n.saturating_sub(1);
                    }
                    let now = g.view.watched();
                    self.spectated(was, now);
                }
            }
            PeerMsg::Screen {
                game,
                watcher,
                cols,
                rows,
                bytes,
            } => {
                let targets: Vec<Watcher> = match watcher {
                    Some(w) => vec![w],
                    None => self.watching.get(&game).cloned().unwrap_or_default(),
                };
                for w in &targets {
                    if let Some(c) = self.conn(w.conn) {
                        c.session
                            .handle_watch_screen(w.watch, &bytes, cols, rows, now);
                    }
                }
                self.after_watchers(&targets);
            }
            PeerMsg::Output { game, chunk } => {
                // A copy: the sessions' effects (a watcher leaving) change the list meanwhile.
                let Some(list) = self.watching.get(&game).cloned() else {
                    return;
                };
                for w in &list {
                    if let Some(c) = self.conn(w.conn) {
                        c.session.handle_watch_output(w.watch, &chunk, now);
                    }
                }
                self.after_watchers(&list);
            }
            PeerMsg::Gap { game } => {
                let list = self.watching.get(&game).cloned().unwrap_or_default();
                for w in &list {
                    if let Some(c) = self.conn(w.conn) {
                        c.session.handle_watch_gap(w.watch, now);
                    }
                }
                self.after_watchers(&list);
            }
            PeerMsg::Ended { game, why } => {
                let list = self.watching.remove(&game).unwrap_or_default();
                for w in &list {
                    if let Some(c) = self.conn(w.conn) {
                        c.session.handle_watch_ended(w.watch, why, now);
                    }
                }
                self.after_watchers(&list);
            }
            PeerMsg::HandOver {
                target,
                take_over,
                to,
            } => self.hand_over(target, take_over, to),
            PeerMsg::HandedOver { to, game } => {
                self.handovers_awaited = self.handovers_awaited.saturating_sub(1);
                self.adopt(to, game);
            }
            PeerMsg::NotHandedOver { to, why } => {
                self.handovers_awaited = self.handovers_awaited.saturating_sub(1);
                self.not_reattached(to, why);
            }
            PeerMsg::Gone { watcher } => {
                for list in self.watching.values_mut() {
                    list.retain(|w| *w != watcher);
                }
                self.watching.retain(|_, l| !l.is_empty());
                if let Some(c) = self.conn(watcher.conn) {
                    c.session.handle_watch_ended(watcher.watch, GAME_GONE, now);
                }
                self.after_watchers(&[watcher]);
            }
        }
    }
}
