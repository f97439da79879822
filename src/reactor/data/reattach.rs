//! Games that outlive their player's connection, and players coming back to them.
//!
//! When a player's connection drops, the game is detached, not hung up: it keeps running
//! (read, recorded, watchable) for its `detach_grace_seconds`, then gets its hangup and
//! saves. A login of the same account asks the control core for the game (a `ClaimGame`
//! answered `Running`), and its session asks for it here ([`Effect::Reattach`]).
//!
//! The game moves to the core of the connection that wants it: the core that has it takes
//! it off its ring and out of its tables and sends the whole [`Game`] (process, PTY master,
//! screen model) over the mesh; the receiving core arms it on its own ring and attaches it
//! to the connection, whose terminal gets the screen from the model. A game is only ever
//! on one core's ring, so nothing about it is shared. What does not move: its recording
//! (each core's writer owns its files; the file ends and the new core starts the next one)
//! and its watchers (told to choose the game again: it has a new name on its new core).
//!
//! [`Effect::Reattach`]: crate::session::Effect::Reattach

use super::*;
use crate::pty::WinSize;
use crate::reactor::view::game_ref;
use crate::watch::GameRef;

/// Told when the game is not where the directory said (it ended, or it is moving to another
/// login's core this very moment).
const ENDED: &str = "Your game is no longer there (it ended, or another login just took it); \
                     press r again if it is still offered.";
/// Told when the game is saving after its hangup.
const SAVING: &str = "Your game is saving; try again in a moment.";
/// Told when another connection has the game (and taking it over was not asked).
const ATTACHED: &str = "Your game is open on another connection.";
/// Told to the connection whose game another login took over.
const TAKEN_OVER: &str = "Your game was taken over by a new login of your account.";

/// Who asked for a game: a connection on a core, its game key and its terminal.
#[derive(Debug, Clone, Copy)]
pub struct Reattacher {
    pub core: usize,
    pub conn: ConnRef,
    pub key: GameKey,
    pub size: WinSize,
}

impl DataCore {
    /// Game `g`'s player left (the connection or the channel went away). `hang_up`: the
    /// server ends it (stopping, the account locked); otherwise it waits detached for its
    /// grace, when it has one.
    pub(super) fn leave_game(&mut self, g: usize, now: Millis, hang_up: bool) {
        let Some(game) = self.games.get_mut(g) else {
            return;
        };
        let grace_ms = game.detach_grace_ms;
        if hang_up || grace_ms == 0 || self.stopping.is_some() || game.hung_up || game.exited {
            return self.hang_up_game(g, now);
        }
        // This core's share of the server's cap (rounded up, so a small cap still keeps one).
        let limits = &self.env.config.limits;
        let share = limits
            .max_detached_games
            .div_ceil(self.env.config.cores.max(1));
        let detached_here = self
            .games
            .iter()
            .filter(|(_, x)| x.detached_until.is_some())
            .count();
        if detached_here >= share {
            if let Some(game) = self.games.get(g) {
                tracing::warn!(parent: &game.span, cap = limits.max_detached_games, "too many games wait for their players; this one is hung up");
            }
            return self.hang_up_game(g, now);
        }
        let Some(game) = self.games.get_mut(g) else {
            return;
        };
        game.owner = None;
        let at = now.saturating_add(grace_ms);
        game.detached_until = Some(at);
        self.timers
            .push(TimerOwner::Game(g as u32, game.generation), at);
        tracing::info!(parent: &game.span, grace_s = grace_ms / 1000, "player left; the game waits for them");
        let game = game_ref(self.id, g, game.generation);
        self.tell_control(Request::GameDetached {
            game,
            detached: true,
        });
        self.metrics.game_detached(true);
    }

    /// A game timer came up: a detached game whose grace ran out is hung up.
    pub(super) fn detach_expired(&mut self, g: usize, now: Millis) {
        let Some(game) = self.games.get_mut(g) else {
            return;
        };
        if game.detached_until.is_some_and(|t| t <= now) {
            tracing::info!(parent: &game.span, "nobody came back for the game; hanging it up");
            self.hang_up_game(g, now);
        }
    }

    /// The account `name` was locked or removed: its detached games are hung up too.
    pub(super) fn hang_up_detached_of(&mut self, name: &str, now: Millis) {
        let detached: Vec<usize> = self
            .games
            .iter()
            .filter(|(_, game)| {
                game.detached_until.is_some() && game.user.eq_ignore_ascii_case(name)
            })
            .map(|(g, _)| g)
            .collect();
        for g in detached {
            self.hang_up_game(g, now);
        }
    }

    /// Effect::Reattach of the connection `r`: the game comes from its core (this one or
    /// another) to this one.
    pub(super) fn reattach(
        &mut self,
        r: ConnRef,
        key: GameKey,
        target: GameRef,
        take_over: bool,
        size: WinSize,
    ) {
        let to = Reattacher {
            core: self.id,
            conn: r,
            key,
            size,
        };
        if self.stopping.is_some() {
            return self.not_reattached(to, SAVING);
        }
        if usize::from(target.core) == self.id {
            match self.release_game(target, take_over) {
                Ok(game) => self.adopt(to, game),
                Err(why) => self.not_reattached(to, why),
            }
            return;
        }
        self.handovers_awaited += 1;
        self.send_peer(
            usize::from(target.core),
            PeerMsg::HandOver {
                target,
                take_over,
                to,
            },
        );
    }

    /// Another core asks for game `target` for its connection `to`.
    pub(super) fn hand_over(&mut self, target: GameRef, take_over: bool, to: Reattacher) {
        // A stopping server hangs games up (they save); none leaves for a core that may be
        // gone before it arrives.
        let stopping = self.stopping.is_some() || self.shared.shutdown.load(Ordering::Relaxed);
        let released = if stopping {
            Err(SAVING)
        } else {
            self.release_game(target, take_over)
        };
        let msg = match released {
            Ok(game) => PeerMsg::HandedOver { to, game },
            Err(why) => PeerMsg::NotHandedOver { to, why },
        };
        self.send_peer(to.core, msg);
    }

    /// Take game `target` out of this core for a new owner: off the ring and every table,
    /// its watchers and its recording ended. Its connection, when it has one and
    /// `take_over`, is told why and closed (the game is not hung up).
    fn release_game(
        &mut self,
        target: GameRef,
        take_over: bool,
    ) -> Result<Box<Game>, &'static str> {
        self.flush_fanout();
        let now = now_ms();
        let Some((g, game)) = self.local_game(target) else {
            return Err(ENDED);
        };
        if game.exited || game.hung_up {
            return Err(SAVING);
        }
        let (key, owner) = (game.key, game.owner);
        if let Some(r) = owner.filter(|r| self.alive(*r)) {
            if !take_over {
                return Err(ATTACHED);
            }
            if let Some(conn) = self.conn(r) {
                // Out of the connection's games first, so the hangup its closing asks for
                // finds nothing to hang up.
                conn.games.retain(|(k, _)| *k != key);
                conn.session.shutdown(TAKEN_OVER, now);
            }
            self.after(r.slot as usize);
        }
        // Read what is waiting: that output belongs to the old screen (and its recording).
        if self.games.get(g).is_some_and(|x| x.readable) {
            self.pump(g);
        }
        self.end_watching_moved(g);
        let Some(game) = self.games.get_mut(g) else {
            return Err(ENDED);
        };
        if game.detached_until.take().is_some() {
            self.metrics.game_detached(false);
        }
        game.owner = None;
        if let Some(rec) = game.recording.take() {
            self.recorder.finish(rec);
        }
        game.disarm(&mut self.ring, g);
        let mut game = Box::new(self.games.remove(g));
        self.pending_pumps.retain(|p| *p != g);
        self.shared.games.fetch_sub(1, Ordering::Relaxed);
        self.metrics.game_moved(game.game_idx, false);
        game.read_poll_armed = false;
        game.write_waiting = false;
        tracing::info!(parent: &game.span, "game handed over to its player's new connection");
        Ok(game)
    }

    /// Game `game` arrived for the connection `to`: armed here, recorded and listed anew,
    /// and attached, its screen drawn from the model (or detached again when the connection
    /// went meanwhile).
    pub(super) fn adopt(&mut self, to: Reattacher, mut game: Box<Game>) {
        let now = now_ms();
        self.shared.games.fetch_add(1, Ordering::Relaxed);
        game.game_idx = self.metrics.game_index(&game.game_id);
        self.metrics.game_moved(game.game_idx, true);
        game.generation = self.generation();
        game.key = to.key;
        game.owner = None;
        game.span = tracing::info_span!(
            "game",
            core = self.id,
            game = %game.game_id,
            account = %crate::auth::printable(&game.user)
        );
        // Whatever is waiting is read at once (the new read poll reports it too).
        game.readable = true;
        if (game.view.cols, game.view.rows) != (to.size.cols, to.size.rows) {
            if let Err(e) = crate::pty::resize(&game.master, to.size) {
                tracing::debug!(error = %e, "pty resize failed");
            }
            game.view.resize(to.size.cols, to.size.rows);
            self.metrics.pty_op(PtyOp::Resize);
        }
        game.view.local.clear();
        game.view.remote.iter_mut().for_each(|n| *n = 0);
        let g = self.games.insert(*game);
        self.start_recording(g);
        self.list_game(g);
        if let Some(game) = self.games.get_mut(g) {
            game.arm(&mut self.ring, g);
        }
        let Some(conn) = self.conn(to.conn) else {
            // The player went again while the game was on its way: kept for them, unless the
            // connection was closed for good (kicked, locked).
            let hang_up = self.hung_up_conns.contains(&to.conn);
            self.leave_game(g, now, hang_up);
            return;
        };
        conn.games.push((to.key, g));
        conn.session.handle_spawned(to.key, Ok(()), now);
        if let Some(game) = self.games.get_mut(g) {
            game.owner = Some(to.conn);
        }
        let screen = self.games.get(g).map(|x| x.view.repaint());
        if let (Some(conn), Some(screen)) = (self.conn(to.conn), screen) {
            conn.session.handle_pty_output(to.key, &screen, now);
        }
        if let Some(game) = self.games.get(g) {
            tracing::info!(parent: &game.span, "player back in their game");
        }
        self.metrics.game_reattached();
        self.after(to.conn.slot as usize);
    }

    /// The game could not be had: the connection `to` is told why.
    pub(super) fn not_reattached(&mut self, to: Reattacher, why: &'static str) {
        let now = now_ms();
        if let Some(conn) = self.conn(to.conn) {
            conn.session
                .handle_spawned(to.key, Err(SpawnError::NotResumed(why.into())), now);
            self.after(to.conn.slot as usize);
        }
    }
}
