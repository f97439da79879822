//! The SSH core's events (RFC 4253 key exchange, RFC 4252 authentication, RFC 4254
//! channels), dispatched to the concern that handles them. Events borrow the SSH core's
//! input buffer, so each is turned into owned values (or used in place, for channel data)
//! before anything else of the session is touched.

use super::auth::owned_attempt;
use super::channel::{Channel, ChannelKey, Mode, Taken};
use super::lograte::Verdict;
use super::{Effect, Session};
use crate::ssh::server::{ChannelId, CloseReason, Event};
use std::time::Duration;

impl Session {
    /// Drain the SSH core's events and act on them.
    pub(super) fn process_events(&mut self) {
        while let Some(ev) = self.ssh.poll_event() {
            match ev {
                Event::KexComplete { kex, cipher, first } => {
                    if first {
                        self.handshake_done = true;
                        let took = self.now.saturating_sub(self.accepted_at);
                        self.env
                            .metrics
                            .handshake_done(kex, Duration::from_millis(took));
                    } else {
                        self.env.metrics.kex_done(kex);
                    }
                    tracing::debug!(
                        kex = kex.name(),
                        cipher = cipher.name(),
                        first,
                        "key exchange done"
                    );
                }
                Event::AuthRequest { user, attempt } => {
                    let (user, attempt) = (user.to_owned(), owned_attempt(attempt));
                    self.ask_auth(user, attempt);
                }
                Event::ChannelOpen { channel } => self.channel_opened(channel),
                Event::PtyRequest {
                    channel,
                    term,
                    size,
                } => {
                    let term = term.to_owned();
                    if let Some(ch) = self.channels.get_mut(channel) {
                        ch.tty.set_pty(term, size);
                    }
                }
                Event::Env {
                    channel,
                    name,
                    value,
                } => {
                    let (name, value) = (name.to_owned(), value.to_owned());
                    if let Some(ch) = self.channels.get_mut(channel) {
                        ch.tty.set_env(name, value);
                    }
                }
                Event::Shell { channel } => self.start_shell(channel),
                Event::Exec { channel, command } => {
                    let command = String::from_utf8_lossy(command).trim().to_owned();
                    self.start_exec(channel, &command);
                }
                Event::WindowChange { channel, size } => {
                    if let Some(ch) = self.channels.get_mut(channel) {
                        ch.resize(size, &mut self.effects);
                    }
                }
                Event::Signal { channel, name } => {
                    let game = self.channels.get(channel).and_then(|c| match &c.mode {
                        Mode::Game(g) => Some(g.key),
                        _ => None,
                    });
                    if let (Some(game), Some(signal)) =
                        (game, crate::pty::signal_from_ssh_name(name))
                    {
                        self.effects.push_back(Effect::PtySignal { game, signal });
                    }
                }
                Event::Data { channel, data } => {
                    // The keystroke path: no allocation from here to the PTY write request.
                    self.last_input = self.now;
                    let n = data.len();
                    let taken = match self.channels.get_mut(channel) {
                        Some(ch) => ch.input(data, self.now, &mut self.effects),
                        None => Taken::Consumed,
                    };
                    if taken == Taken::Consumed {
                        self.ssh.channel_consumed(channel, n);
                    }
                    self.drain_actions(channel);
                }
                Event::Eof { .. } => {}
                Event::ChannelClosed { channel } => self.channel_closed(channel),
                Event::Closed { reason } => self.connection_ended(reason),
            }
        }
    }

    /// A session channel was opened: it collects its terminal's description next.
    fn channel_opened(&mut self, id: ChannelId) {
        let serial = self.serial();
        self.channelless_since = None;
        let stale = self
            .channels
            .insert(Channel::new(ChannelKey { id, serial }, self.now));
        if let Some(ch) = stale {
            ch.teardown(&self.env.metrics, self.now, &mut self.effects);
        }
    }

    /// The channel is gone: its game gets its hangup.
    fn channel_closed(&mut self, id: ChannelId) {
        if let Some(ch) = self.channels.remove(id) {
            ch.teardown(&self.env.metrics, self.now, &mut self.effects);
        }
        if self.channels.is_empty() && self.auth.logged_in() {
            self.channelless_since = Some(self.now);
        }
    }

    /// The SSH core ended the connection (a DISCONNECT either way, or an error).
    fn connection_ended(&mut self, reason: CloseReason) {
        let peer_fault = matches!(&reason, CloseReason::Error(e) if e.is_peer_fault());
        let grace_expired = matches!(
            &reason,
            CloseReason::Error(crate::ssh::Error::LoginGraceExpired)
        );
        if peer_fault || grace_expired {
            self.auth.mark_offence();
        }
        if peer_fault {
            match self.env.log_rate.check(self.client_ip(), self.now) {
                Verdict::Log => tracing::info!(?reason, "connection ended"),
                Verdict::LogLast => tracing::info!(
                    ?reason,
                    "connection ended (further lines from this address suppressed for a minute)"
                ),
                Verdict::Suppress => {}
            }
        } else {
            tracing::debug!(?reason, "connection ended");
        }
        self.close();
    }
}
