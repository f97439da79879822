//! The control core on the same reactor: account decisions ([`Control`]) whose blocking work
//! (LMDB, argon2) runs on a bounded pool and comes back through the ring, the notices every
//! data core must hear, and the operators' HTTP endpoint.

use super::blocking::{Mailbox, Pool, Post};
use super::data::{FromControl, ToControl};
use super::games::ConnRef;
use super::http::HttpSide;
use super::mesh::{Consumer, PendingWakes, Producer};
use super::ring::{Completion, Kind, Ring, Tag};
use super::timers::Millis;
use crate::control::{Control, JobDone, Origin};
use crate::session::Token;
use slab::Slab;
use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

pub struct ControlCoreParts {
    pub ring: Ring,
    pub control: Control,
    pub pool: Arc<Pool>,
    pub jobs: (Post<JobDone>, Mailbox<JobDone>),
    pub from_cores: Vec<Consumer<ToControl>>,
    pub to_cores: Vec<Producer<FromControl>>,
    pub wakes: PendingWakes,
    pub eventfd: Arc<OwnedFd>,
    pub http: HttpSide,
    /// Orders from `dungeongate admin` (the admin socket's thread).
    pub admin: Mailbox<super::admin_socket::AdminAsk>,
    /// For the configuration reloads.
    pub shared: Arc<super::shared::Shared>,
}

pub struct ControlCore {
    ring: Ring,
    control: Control,
    pool: Arc<Pool>,
    job_post: Post<JobDone>,
    jobs: Mailbox<JobDone>,
    from_cores: Vec<Consumer<ToControl>>,
    to_cores: Vec<Producer<FromControl>>,
    /// Messages a full queue did not take yet, per data core (retried every turn; replies
    /// are never dropped).
    backlog: Vec<VecDeque<FromControl>>,
    wakes: PendingWakes,
    eventfd: Arc<OwnedFd>,
    /// Who asked each request in progress.
    origins: Slab<Asker>,
    admin: Mailbox<super::admin_socket::AdminAsk>,
    http: HttpSide,
    completions: Vec<Completion>,
    shared: Arc<super::shared::Shared>,
    /// The reload count of the configuration in force here.
    config_epoch: u64,
}

/// Who waits for an answer.
enum Asker {
    /// A session on a data core.
    Session(usize, ConnRef, Token),
    /// `dungeongate admin`, through the admin socket's thread.
    Admin(std::sync::mpsc::SyncSender<crate::control::Reply>),
}

fn now_ms() -> Millis {
    super::clock::now_ms()
}

impl ControlCore {
    pub fn new(p: ControlCoreParts) -> ControlCore {
        let (job_post, jobs) = p.jobs;
        let cores = p.to_cores.len();
        ControlCore {
            ring: p.ring,
            control: p.control,
            pool: p.pool,
            job_post,
            jobs,
            from_cores: p.from_cores,
            to_cores: p.to_cores,
            backlog: (0..cores).map(|_| VecDeque::new()).collect(),
            wakes: p.wakes,
            eventfd: p.eventfd,
            origins: Slab::new(),
            http: p.http,
            completions: Vec::with_capacity(1024),
            shared: p.shared,
            config_epoch: 0,
            admin: p.admin,
        }
    }

    /// Serve until the process exits (late account writes from draining cores still land).
    pub fn run(mut self) {
        super::arm_wake(&mut self.ring, &self.eventfd);
        self.http.start(&mut self.ring);
        loop {
            let now = now_ms();
            let next = [self.control.poll_timeout(), self.http.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            let timeout = next.map(|t| Duration::from_millis(t.saturating_sub(now)));
            self.wakes.send(&mut self.ring);
            self.ring.turn(timeout);
            let mut completions = std::mem::take(&mut self.completions);
            self.ring.take_completions(&mut completions);
            for c in &completions {
                match c.tag {
                    Some(tag) if tag.kind == Kind::Wake => self.woken(tag, c.more()),
                    Some(tag) if tag.kind == Kind::Ignore => {}
                    _ => self.http.complete(&mut self.ring, *c),
                }
            }
            self.completions = completions;
            let now = now_ms();
            if self.control.poll_timeout().is_some_and(|t| t <= now) {
                self.control.handle_timeout(now);
            }
            self.http.handle_timeouts(&mut self.ring, now);
            if self.shared.config_epoch.load(Ordering::Acquire) != self.config_epoch {
                let (config, epoch) = self.shared.live_config();
                self.config_epoch = epoch;
                self.control
                    .reconfigure(crate::control::ControlSettings::from_config(&config));
            }
            self.pump();
        }
    }

    fn woken(&mut self, tag: Tag, armed: bool) {
        if tag.index == super::EVENTFD_INDEX {
            super::mesh::drain_eventfd(&self.eventfd);
            if !armed {
                super::arm_wake(&mut self.ring, &self.eventfd);
            }
        }
        let now = now_ms();
        for core in 0..self.from_cores.len() {
            while let Some(msg) = self.from_cores.get_mut(core).and_then(|q| q.pop()) {
                let origin = match msg.from {
                    Some((conn, token)) => {
                        Origin(self.origins.insert(Asker::Session(msg.core, conn, token)) as u64)
                    }
                    None => Origin(u64::MAX),
                };
                self.control.handle_request(origin, msg.request, now);
            }
        }
        while let Some(ask) = self.admin.try_recv() {
            let origin = Origin(self.origins.insert(Asker::Admin(ask.answer)) as u64);
            self.control.handle_request(origin, ask.request, now);
        }
        while let Some(done) = self.jobs.try_recv() {
            self.control.handle_job_done(done, now);
        }
        while let Some(report) = self.http.probe_done() {
            self.http.handle_probe_done(&mut self.ring, report, now);
        }
    }

    /// Hand out jobs, route replies and notices. LMDB jobs of one turn share one trip to the
    /// pool (each is microseconds; the trip, two thread wake-ups, costs more); each argon2
    /// job gets its own, so they run side by side.
    fn pump(&mut self) {
        let (mut lmdb, mut hashing) = (Vec::new(), Vec::new());
        while let Some(job) = self.control.poll_job() {
            if job.is_hashing() {
                hashing.push(job);
            } else {
                lmdb.push(job);
            }
        }
        let now = now_ms();
        if !lmdb.is_empty() {
            if self.pool.has_room() {
                let post = self.job_post.clone();
                let batch = move || post.send_all(lmdb.into_iter().map(crate::control::Job::run));
                let _ = self.pool.submit(batch);
            } else {
                // Answered "unavailable" rather than lost.
                for job in lmdb {
                    self.control.handle_job_done(job.refused(), now);
                }
            }
        }
        for job in hashing {
            if self.pool.has_room() {
                let post = self.job_post.clone();
                let _ = self.pool.submit(move || post.send(job.run()));
            } else {
                self.control.handle_job_done(job.refused(), now);
            }
        }
        while let Some(probe) = self.http.poll_probe() {
            if self.pool.submit(probe).is_err() {
                tracing::warn!("the control pool refused a readiness probe");
            }
        }
        while let Some((origin, reply)) = self.control.poll_reply() {
            let Ok(key) = usize::try_from(origin.0) else {
                continue;
            };
            match self.origins.try_remove(key) {
                Some(Asker::Session(core, conn, token)) => {
                    self.send_to_core(core, FromControl::Reply { conn, token, reply });
                }
                // The admin socket's thread waits for it (or gave up: then nobody reads it).
                Some(Asker::Admin(answer)) => {
                    let _ = answer.send(reply);
                }
                // A request that wanted no answer (a game's release).
                None => {}
            }
        }
        while let Some(notice) = self.control.poll_notice() {
            for core in 0..self.to_cores.len() {
                self.send_to_core(core, FromControl::Notice(notice.clone()));
            }
        }
        for core in 0..self.backlog.len() {
            while let Some(msg) = self.backlog.get_mut(core).and_then(|b| b.pop_front()) {
                let Some(q) = self.to_cores.get_mut(core) else {
                    break;
                };
                if let Err(msg) = q.push(msg) {
                    if let Some(b) = self.backlog.get_mut(core) {
                        b.push_front(msg);
                    }
                    break;
                }
                self.wakes.owe(core);
            }
        }
    }

    fn send_to_core(&mut self, core: usize, msg: FromControl) {
        let Some(q) = self.to_cores.get_mut(core) else {
            return;
        };
        let backlogged = self.backlog.get(core).is_some_and(|b| !b.is_empty());
        if backlogged {
            if let Some(b) = self.backlog.get_mut(core) {
                b.push_back(msg);
            }
        } else if let Err(msg) = q.push(msg) {
            if let Some(b) = self.backlog.get_mut(core) {
                b.push_back(msg);
            }
        }
        self.wakes.owe(core);
    }
}
