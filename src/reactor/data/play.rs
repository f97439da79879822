//! A data core's games: spawning on the pool, moving output and input between a game's PTY
//! and its session, the exit, the hangup.

use super::*;

impl DataCore {
    /// The game `key` of the connection in `slot`.
    pub(super) fn game_of(&mut self, slot: usize, key: GameKey) -> Option<&mut Game> {
        let conn = self.conns.get(slot)?;
        let (_, g) = conn.games.iter().find(|(k, _)| *k == key)?;
        self.games.get_mut(*g)
    }

    pub(super) fn game_slot_of(&self, slot: usize, key: GameKey) -> Option<usize> {
        let conn = self.conns.get(slot)?;
        conn.games.iter().find(|(k, _)| *k == key).map(|(_, g)| *g)
    }

    /// Write the session's pending input for `key` to its PTY, as much as it takes now.
    pub(super) fn write_input(&mut self, slot: usize, key: GameKey) {
        let Some(g) = self.game_slot_of(slot, key) else {
            return;
        };
        let now = now_ms();
        loop {
            let (Some(conn), Some(game)) = (self.conns.get_mut(slot), self.games.get_mut(g)) else {
                return;
            };
            let data = conn.session.pty_input(key);
            if data.is_empty() || game.write_waiting {
                return;
            }
            let n = match games::write(&game.master, data) {
                Write::Wrote(n) => {
                    games::count(&self.metrics, Direction::In, n);
                    n
                }
                Write::Full => {
                    game.arm_write(&mut self.ring, g);
                    return;
                }
                // The terminal is gone (the game is ending): the input is dropped.
                Write::Gone => data.len(),
            };
            conn.session.handle_pty_written(key, n, now);
        }
    }

    /// The game a completion names, if it is still that one.
    fn game_at(&mut self, tag: Tag) -> Option<&mut Game> {
        self.games
            .get_mut(tag.index as usize)
            .filter(|x| x.generation == tag.generation)
    }

    pub(super) fn pty_writable(&mut self, tag: Tag) {
        let Some(game) = self.game_at(tag) else {
            return;
        };
        game.write_waiting = false;
        let (key, owner) = (game.key, game.owner);
        if let Some(r) = owner {
            if self.conn(r).is_some() {
                self.write_input(r.slot as usize, key);
                self.after(r.slot as usize);
            }
        }
    }

    pub(super) fn pty_readable(&mut self, tag: Tag, c: Completion) {
        let g = tag.index as usize;
        // Not `game_at`: the ring is borrowed below while the game is.
        let Some(game) = self
            .games
            .get_mut(g)
            .filter(|x| x.generation == tag.generation)
        else {
            return;
        };
        if !c.more() {
            game.read_poll_armed = false;
        }
        if c.result >= 0 {
            game.readable = true;
        }
        if !game.read_poll_armed && !game.pty_closed && !game.exited {
            game.arm_read(&mut self.ring, g);
        }
        let owner = game.owner;
        self.pump_or_after(owner, g);
    }

    /// Game `g` has output: through its player's connection (which sends it too), or
    /// straight to the bin when it has none.
    pub(super) fn pump_or_after(&mut self, owner: Option<ConnRef>, g: usize) {
        match owner {
            Some(r) if self.alive(r) => self.after(r.slot as usize),
            _ => self.pump(g),
        }
    }

    pub(super) fn alive(&self, r: ConnRef) -> bool {
        self.conns
            .get(r.slot as usize)
            .is_some_and(|c| c.sock.generation == r.generation)
    }

    /// Move output of the connection's games to its session, as far as it has room.
    pub(super) fn pump_conn_games(&mut self, slot: usize) {
        let Some(conn) = self.conns.get(slot) else {
            return;
        };
        // At most a few games per connection: index loop, no allocation.
        for i in 0..conn.games.len() {
            let Some(&(_, g)) = self.conns.get(slot).and_then(|c| c.games.get(i)) else {
                break;
            };
            self.pump(g);
        }
    }

    /// Read game `g`'s waiting output into its session (or drop it once it has none).
    pub(super) fn pump(&mut self, g: usize) {
        let now = now_ms();
        for _ in 0..READS_PER_TURN {
            let Some(game) = self.games.get_mut(g) else {
                return;
            };
            if !game.readable {
                break;
            }
            let owner = game
                .owner
                .filter(|r| {
                    self.conns
                        .get(r.slot as usize)
                        .is_some_and(|c| c.sock.generation == r.generation)
                })
                .map(|r| r.slot as usize);
            let room = match owner {
                Some(s) => self
                    .conns
                    .get(s)
                    .map_or(0, |c| c.session.pty_room(game.key)),
                // Nobody to show it to: keep draining so the game is not stuck while it saves.
                None => games::READ_CHUNK,
            };
            if room == 0 {
                return;
            }
            let want = room.min(games::READ_CHUNK);
            let Some(buf) = self.scratch.get_mut(..want) else {
                return;
            };
            match games::read(&game.master, buf) {
                Read::Data(n) => {
                    games::count(&self.metrics, Direction::Out, n);
                    let key = game.key;
                    if let (Some(s), Some(out)) = (owner, self.scratch.get(..n)) {
                        if let Some(conn) = self.conns.get_mut(s) {
                            conn.session.handle_pty_output(key, out, now);
                        }
                    }
                    self.game_output(g, n, now);
                }
                Read::Empty => game.readable = false,
                Read::Closed => {
                    game.readable = false;
                    game.pty_closed = true;
                }
            }
        }
        let Some(game) = self.games.get(g) else {
            return;
        };
        if game.readable {
            // More is waiting: the other connections go first, then another round.
            if !self.pending_pumps.contains(&g) {
                self.pending_pumps.push(g);
            }
        } else if game.exited {
            self.finish_game(g);
        }
    }

    pub(super) fn run_pumps(&mut self) {
        if self.pending_pumps.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending_pumps);
        for &g in &pending {
            let owner = self.games.get(g).and_then(|x| x.owner);
            self.pump_or_after(owner, g);
        }
        // Keep the capacity (the list is refilled by the pumps just run).
        let mut pending = pending;
        pending.clear();
        if self.pending_pumps.is_empty() {
            self.pending_pumps = pending;
        }
    }

    pub(super) fn game_exited(&mut self, tag: Tag) {
        let g = tag.index as usize;
        let Some(game) = self.game_at(tag) else {
            return;
        };
        game.exited = true;
        // Its last output (a goodbye, a tombstone) still reaches the player: finished once
        // read, unless nobody takes it.
        game.readable = true;
        let owner = game.owner;
        self.pump_or_after(owner, g);
    }

    /// The game exited and its output is read: reap it, count it, give back its claim and
    /// tell its session.
    pub(super) fn finish_game(&mut self, g: usize) {
        if !self.games.contains(g) {
            return;
        }
        self.end_watching(g);
        let mut game = self.games.remove(g);
        if game.detached_until.take().is_some() {
            self.metrics.game_detached(false);
        }
        if let Some(r) = game.recording.take() {
            self.recorder.finish(r);
        }
        self.shared.games.fetch_sub(1, Ordering::Relaxed);
        game.exited = true;
        game.disarm(&mut self.ring, g);
        let status = game.reap(&self.metrics);
        if game.claimed {
            self.release_claim(game.user.clone(), game.game_id.clone());
        }
        if let Some(r) = game.owner {
            let now = now_ms();
            if let Some(conn) = self.conn(r) {
                conn.games.retain(|(_, s)| *s != g);
                conn.session.handle_game_ended(game.key, status, now);
                self.after(r.slot as usize);
            }
        }
        self.pending_pumps.retain(|p| *p != g);
    }

    pub(super) fn hang_up_game(&mut self, g: usize, now: Millis) {
        let Some(game) = self.games.get_mut(g) else {
            return;
        };
        if game.detached_until.take().is_some() {
            self.metrics.game_detached(false);
        }
        if let Some(at) = game.hang_up(now) {
            self.timers
                .push(TimerOwner::Game(g as u32, game.generation), at);
        }
        // Its output is now read and dropped until it exits.
        if game.readable {
            self.pump(g);
        }
    }

    pub(super) fn spawn(
        &mut self,
        conn: ConnRef,
        key: GameKey,
        game_id: String,
        user: String,
        terminal: crate::game::TerminalInfo,
        claimed: bool,
    ) {
        let size = (terminal.size.cols, terminal.size.rows);
        if self.draining {
            // Not a failed spawn (nothing was tried): the claim goes back, the player is told.
            if claimed {
                self.release_claim(user, game_id);
            }
            let now = now_ms();
            if let Some(c) = self.conn(conn) {
                let refused = Err(SpawnError::NoRoom(super::admin::MAINTENANCE.into()));
                c.session.handle_spawned(key, refused, now);
                self.after(conn.slot as usize);
            }
            return;
        }
        let games = self.shared.games.fetch_add(1, Ordering::Relaxed);
        let open = self.shared.connections.load(Ordering::Relaxed);
        let no_room = if crate::pty::fdlimit::game_fits(self.shared.fd_limit, open, games) {
            let config = self.env.config.clone();
            let run_as = self.shared.run_as.clone();
            let post = self.spawn_post.clone();
            let (gid, u) = (game_id.clone(), user.clone());
            let job = move || {
                let mut backup = None;
                let result = match config.game(&gid) {
                    None => Err(format!("no game {gid}")),
                    // File-system preparation and clone/exec can block: off the reactor.
                    Some(game) => {
                        backup = crate::game::saves::backup_before_start(
                            &config,
                            game,
                            &u,
                            run_as.as_ref(),
                        );
                        crate::game::prepare(&config, game, &u, &terminal, run_as.as_ref())
                            .map_err(|e| e.to_string())
                            .and_then(|spec| crate::pty::spawn(&spec).map_err(|e| e.to_string()))
                    }
                }
                .map_err(SpawnError::Failed);
                post.send(SpawnDone {
                    conn,
                    size,
                    key,
                    game_id: gid,
                    user: u,
                    claimed,
                    backup,
                    result,
                });
            };
            self.spawn_pool.submit(job).err().map(|_| BUSY)
        } else {
            tracing::warn!(
                connections = open,
                games,
                "no descriptors left for another game (RLIMIT_NOFILE); start refused"
            );
            Some(FULL)
        };
        if let Some(text) = no_room {
            self.spawned(SpawnDone {
                conn,
                size,
                key,
                game_id,
                user,
                claimed,
                backup: None,
                result: Err(SpawnError::NoRoom(text.into())),
            });
        }
    }

    pub(super) fn spawned(&mut self, done: SpawnDone) {
        let now = now_ms();
        let game_idx = self.metrics.game_index(&done.game_id);
        if let Some(ok) = done.backup {
            // Counted here: the pool thread that took it may not write this core's counters.
            self.metrics.game_save(game_idx, SaveOp::Backup, ok);
        }
        self.metrics.game_spawned(game_idx, done.result.is_ok());
        let alive = self.conn(done.conn).is_some();
        let taken = done.result.and_then(|mut child| match child.take_master() {
            Ok(master) => Ok((child, master)),
            Err(e) => Err(SpawnError::Failed(format!("no PTY master: {e}"))),
        });
        let (child, master) = match taken {
            Ok(c) => c,
            Err(e) => {
                // Counted when the start was asked for; it never ran.
                self.shared.games.fetch_sub(1, Ordering::Relaxed);
                if done.claimed {
                    self.release_claim(done.user, done.game_id);
                }
                if let Some(conn) = self.conn(done.conn) {
                    conn.session.handle_spawned(done.key, Err(e), now);
                    self.after(done.conn.slot as usize);
                }
                return;
            }
        };
        let generation = self.generation();
        let span = tracing::info_span!(
            "game",
            core = self.id,
            game = %done.game_id,
            account = %crate::auth::printable(&done.user)
        );
        let g = self.games.insert(Game {
            generation,
            key: done.key,
            owner: alive.then_some(done.conn),
            child,
            master,
            readable: false,
            write_waiting: false,
            read_poll_armed: false,
            exited: false,
            pty_closed: false,
            hung_up: false,
            detached_until: None,
            // Only a claimed game (one copy per account) can be found again: a game that
            // allows several copies is started anew each time, so keeping one would waste it.
            detach_grace_ms: match self.env.config.game(&done.game_id) {
                Some(c) if done.claimed => c.detach_grace_seconds.saturating_mul(1000),
                _ => 0,
            },
            kill_at: None,
            game_id: done.game_id,
            user: done.user,
            claimed: done.claimed,
            game_idx,
            span,
            view: GameView::new(done.size.0, done.size.1, self.peers.len(), now),
            started_unix: crate::auth::now_unix(),
            recording: None,
        });
        self.start_recording(g);
        self.metrics.pty_op(PtyOp::Open);
        self.list_game(g);
        if let Some(game) = self.games.get_mut(g) {
            game.arm(&mut self.ring, g);
        }
        match self.conn(done.conn) {
            Some(conn) => {
                conn.games.push((done.key, g));
                conn.session.handle_spawned(done.key, Ok(()), now);
                if let Some(game) = self.games.get(g) {
                    tracing::debug!(parent: &game.span, "game process running");
                }
                self.after(done.conn.slot as usize);
            }
            // The player left while it was starting: hang it up like any other.
            None => self.hang_up_game(g, now),
        }
    }
}
