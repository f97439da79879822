//! A data core's traffic with the control core, its wake-ups, timers and the stop.

use super::*;
use crate::reactor::timers::Due;

impl DataCore {
    pub(super) fn ask_control(&mut self, conn: ConnRef, token: Token, request: Request) {
        if let Request::ClaimGame { user, game_id } = &request {
            self.pending_claims
                .insert((conn, token), (user.clone(), game_id.clone()));
        }
        let msg = ToControl {
            core: self.id,
            from: Some((conn, token)),
            request,
        };
        if self.control_backlog.len() >= MAX_CONTROL_BACKLOG {
            // The control core is far behind: say so now rather than queue without bound.
            self.pending_claims.remove(&(conn, token));
            if let Some(c) = self.conn(conn) {
                c.session
                    .handle_control_reply(token, Reply::Unavailable, now_ms());
            }
            return;
        }
        self.send_control(msg);
    }

    pub(super) fn release_claim(&mut self, user: String, game_id: String) {
        // A release is never dropped: without it the account could not start that game again.
        self.send_control(ToControl {
            core: self.id,
            from: None,
            request: Request::ReleaseGame { user, game_id },
        });
    }

    pub(super) fn send_control(&mut self, msg: ToControl) {
        if self.control_backlog.is_empty() {
            match self.to_control.push(msg) {
                Ok(()) => {}
                Err(msg) => self.control_backlog.push_back(msg),
            }
        } else {
            self.control_backlog.push_back(msg);
        }
        self.wakes.owe(self.control_wake);
    }

    pub(super) fn flush_control_backlog(&mut self) {
        while let Some(msg) = self.control_backlog.pop_front() {
            if let Err(msg) = self.to_control.push(msg) {
                self.control_backlog.push_front(msg);
                break;
            }
            self.wakes.owe(self.control_wake);
        }
    }

    pub(super) fn woken(&mut self, tag: Tag, armed: bool) {
        if tag.index == crate::reactor::EVENTFD_INDEX {
            crate::reactor::mesh::drain_eventfd(&self.eventfd);
            // A multishot poll that ended is re-armed.
            if !armed {
                crate::reactor::arm_wake(&mut self.ring, &self.eventfd);
            }
        }
        let now = now_ms();
        while let Some(msg) = self.from_control.pop() {
            match msg {
                FromControl::Reply { conn, token, reply } => {
                    let claim = self.pending_claims.remove(&(conn, token));
                    match self.conn(conn) {
                        Some(c) => {
                            c.session.handle_control_reply(token, reply, now);
                            self.after(conn.slot as usize);
                        }
                        None => {
                            if let (Some((user, game_id)), Reply::Done(Ok(()))) = (claim, &reply) {
                                self.release_claim(user, game_id);
                            }
                        }
                    }
                }
                FromControl::Notice(Notice::EndSessionsOf(name)) => self.end_sessions_of(&name),
                FromControl::Notice(Notice::LockedOut { name, reason }) => {
                    self.locked_out(&name, reason.as_deref());
                }
                FromControl::Notice(Notice::ReportSessions { query }) => {
                    self.report_sessions(query);
                }
                FromControl::Notice(Notice::Kick { session, reason }) => {
                    self.kick(session, &reason)
                }
                FromControl::Notice(Notice::Broadcast(text)) => self.broadcast(&text),
                FromControl::Notice(Notice::Drain(on)) => self.drain(on),
            }
        }
        self.flush_control_backlog();
        self.drain_peers();
        self.recording_reports();
        while let Some(done) = self.spawns.try_recv() {
            self.spawned(done);
        }
    }

    /// Tell every connection's session something, then carry out what each needs (sends,
    /// effects). The slots are listed first: the effects may close connections.
    pub(super) fn each_session(&mut self, mut tell: impl FnMut(&mut Session)) {
        let slots: Vec<usize> = self.conns.iter().map(|(s, _)| s).collect();
        for s in slots {
            if let Some(c) = self.conns.get_mut(s) {
                tell(&mut c.session);
            }
            self.after(s);
        }
    }

    /// A configuration reload: what this core starts from now on (connections, games, the
    /// lobbies it draws, which redraw at once with the new banner and games).
    pub(super) fn reconfigure(&mut self) {
        let (config, epoch) = self.shared.live_config();
        self.config_epoch = epoch;
        self.env.config = config.clone();
        let now = now_ms();
        self.each_session(|session| session.handle_reconfigured(config.clone(), now));
        tracing::debug!(core = self.id, epoch, "configuration reloaded");
    }

    /// The account `name` was locked or deleted: end every connection logged in as it.
    pub(super) fn end_sessions_of(&mut self, name: &str) {
        self.end_sessions_with(
            name,
            "Your account was locked or removed, or its rights changed, by the operator.",
        );
    }

    /// End every connection logged in as `name`, telling it `message`; its games, detached
    /// ones too, are hung up.
    pub(super) fn end_sessions_with(&mut self, name: &str, message: &str) {
        let now = now_ms();
        let slots: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.sock.phase == Phase::Open && c.session.belongs_to(name))
            .map(|(s, _)| s)
            .collect();
        for s in slots {
            if let Some(c) = self.conns.get_mut(s) {
                c.hang_up_games = true;
                c.session.shutdown(message, now);
            }
            self.after(s);
        }
        self.hang_up_detached_of(name, now);
    }

    pub(super) fn fire_timers(&mut self) {
        let now = now_ms();
        while let Some((at, owner)) = self.timers.pop_due(now) {
            match owner {
                TimerOwner::Conn(slot, generation) => {
                    let slot = slot as usize;
                    let Some(conn) = self
                        .conns
                        .get_mut(slot)
                        .filter(|c| c.sock.generation == generation)
                    else {
                        continue;
                    };
                    match crate::reactor::timers::due(at, conn.armed) {
                        Due::Fire => {}
                        Due::Later(t) => {
                            self.timers
                                .push(TimerOwner::Conn(slot as u32, generation), t);
                            continue;
                        }
                        Due::Stale => continue,
                    }
                    conn.armed = None;
                    if conn.session.poll_timeout().is_some_and(|t| t <= now) {
                        conn.session.handle_timeout(now);
                    }
                    self.after(slot);
                }
                TimerOwner::Game(g, generation) => {
                    if let Some(game) = self
                        .games
                        .get_mut(g as usize)
                        .filter(|x| x.generation == generation)
                    {
                        game.kill_if_due(now);
                        self.detach_expired(g as usize, now);
                    }
                }
                TimerOwner::Sampler => match crate::reactor::timers::due(at, self.sample_armed) {
                    Due::Fire => {
                        self.sample_armed = None;
                        self.sample(now);
                    }
                    Due::Later(t) => self.timers.push(TimerOwner::Sampler, t),
                    Due::Stale => {}
                },
                TimerOwner::Core => self.core_tick(now),
            }
        }
    }

    /// The core's own deadlines: a failed accept's retry (the stop's deadline only needs
    /// the wake-up).
    pub(super) fn core_tick(&mut self, now: Millis) {
        if self.accept_retry.is_some_and(|t| t <= now) {
            self.accept_retry = None;
            if self.stopping.is_none() {
                for (i, l) in self.listeners.iter().enumerate() {
                    if let Some(l) = l {
                        socket::arm_accept(&mut self.ring, l, i);
                    }
                }
            }
        }
    }

    /// Busy ratio, heartbeat and buffers in use once a period; arms the next sample.
    pub(super) fn sample(&mut self, now: Millis) {
        let at = Instant::now();
        if at >= self.sampler.next_tick() {
            // Stamped by the core's own loop: a stuck loop stops stamping.
            self.sampler
                .tick(&self.metrics, std::mem::take(&mut self.busy), at);
            self.metrics
                .set_buffer_pool_in_use(self.bufs.in_use() + self.sends_in_flight());
            self.report_games();
            self.flush_recordings();
        }
        let left = self.sampler.next_tick().saturating_duration_since(at);
        let next = now + u64::try_from(left.as_millis()).unwrap_or(SAMPLE_MS).max(1);
        self.timers
            .arm(TimerOwner::Sampler, Some(next), &mut self.sample_armed);
    }

    pub(super) fn sends_in_flight(&self) -> usize {
        self.conns
            .iter()
            .filter(|(_, c)| c.sock.sending.is_some())
            .count()
    }

    /// Stop: no new connections, every session told and its games hung up; the loop ends
    /// once all are gone or the drain's deadline passes.
    pub(super) fn begin_stop(&mut self) {
        let now = now_ms();
        self.stopping = Some(now + DRAIN_MS);
        self.timers.push(TimerOwner::Core, now + DRAIN_MS);
        for (i, l) in self.listeners.iter_mut().enumerate() {
            if l.take().is_some() {
                let target = Tag::new(Kind::Accept, 0, i).encode();
                self.ring.push(
                    io_uring::opcode::AsyncCancel::new(target).build(),
                    Tag::IGNORE,
                );
            }
        }
        self.each_session(|session| {
            session.shutdown(
                "The server is shutting down; your game is being saved.",
                now,
            );
        });
        // Games whose player already left are hung up too.
        let games: Vec<usize> = self.games.iter().map(|(g, _)| g).collect();
        for g in games {
            self.hang_up_game(g, now);
        }
    }
}
