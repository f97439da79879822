//! Watching: the watch menu's list of games (asked of the control core when the menu opens
//! and about once a second while it is up), a chosen game's screen and output on the
//! watcher's channel, the re-sync of a watcher that fell behind, and the way back.
//!
//! Nothing a watcher types reaches the game: the lobby, in its watching state, only decides
//! when to stop.

use super::channel::{Channel, ChannelKey};
use super::requests::Pending;
use super::{Effect, Session, WatchKey};
use crate::control::{Reply, Request};
use crate::ssh::server::{ChannelId, Millis};
use crate::watch::{GameRef, REFRESH_MS};

impl Session {
    /// The game `watch` shows: its screen now (`cols`×`rows`), replacing what was queued.
    pub fn handle_watch_screen(
        &mut self,
        watch: WatchKey,
        screen: &[u8],
        cols: u16,
        rows: u16,
        now: Millis,
    ) {
        self.now = now;
        if self.closed {
            return;
        }
        self.moved(now);
        if let Some(ch) = self
            .channels
            .get_mut(watch.channel)
            .filter(|c| c.is_watching(watch))
        {
            ch.watch_screen(&mut self.ssh, screen, cols, rows);
        }
    }

    /// Output of the game `watch` shows (already made safe for a watcher's terminal). A
    /// watcher too far behind drops it and is re-synced once its queue drains.
    pub fn handle_watch_output(&mut self, watch: WatchKey, bytes: &[u8], now: Millis) {
        self.now = now;
        if self.closed {
            return;
        }
        self.moved(now);
        let backlog = self.ssh.transmit().len();
        let Some(ch) = self
            .channels
            .get_mut(watch.channel)
            .filter(|c| c.is_watching(watch))
        else {
            return;
        };
        if !ch.watch_output(&mut self.ssh, bytes, backlog) {
            self.behind = true;
            self.resync_drained();
        }
    }

    /// Output of the game `watch` shows was lost on its way: the watcher is re-synced (once
    /// its queue drains).
    pub fn handle_watch_gap(&mut self, watch: WatchKey, now: Millis) {
        self.now = now;
        if self.closed {
            return;
        }
        if let Some(ch) = self
            .channels
            .get_mut(watch.channel)
            .filter(|c| c.is_watching(watch))
        {
            ch.fell_behind();
            self.behind = true;
            self.resync_drained();
        }
    }

    /// The game `watch` shows ended (or was not found): back to the watch menu, saying so.
    pub fn handle_watch_ended(&mut self, watch: WatchKey, message: &str, now: Millis) {
        self.now = now;
        if self.closed {
            return;
        }
        let span = self.span.clone();
        let _in = span.enter();
        let stopped = self.channels.step(watch.channel, |ch| {
            if !ch.is_watching(watch) {
                return (ch, false);
            }
            let (mut ch, _) = ch.stop_watching();
            if let Some(l) = ch.lobby_mut() {
                l.handle_watch_ended(message);
            }
            (ch, true)
        });
        if stopped == Some(true) {
            self.env.metrics.spectator_left();
            self.drain_actions(watch.channel);
        }
        self.run();
    }

    /// The lobby of channel `id` chose `game`.
    pub(super) fn start_watching(&mut self, id: ChannelId, game: GameRef) {
        let watch = WatchKey {
            channel: id,
            serial: self.serial(),
        };
        let started = self.channels.step(id, |ch| {
            let ch = ch.into_watching(watch, game);
            let on = ch.is_watching(watch);
            (ch, on)
        });
        if started == Some(true) {
            self.env.metrics.spectator_joined();
            tracing::debug!(core = game.core, "watching a game");
            self.effects.push_back(Effect::Watch { watch, game });
        }
    }

    /// The watcher on channel `id` pressed `q`.
    pub(super) fn stop_watching(&mut self, id: ChannelId) {
        if let Some(Some((watch, game))) = self.channels.step(id, Channel::stop_watching) {
            self.env.metrics.spectator_left();
            self.effects.push_back(Effect::Unwatch { watch, game });
        }
    }

    /// The watch menu of channel `id` wants the list of games (unless it is on its way).
    pub(super) fn ask_game_list(&mut self, id: ChannelId) {
        let Some(ch) = self.channels.get_mut(id) else {
            return;
        };
        ch.tty.list_due = None;
        if ch.tty.list_asked {
            return;
        }
        ch.tty.list_asked = true;
        let channel = ch.tty.key;
        self.requests.ask(
            &mut self.effects,
            Request::ListGames,
            Pending::GameList { channel },
        );
    }

    /// The control core's list of games, for the watch menu of `channel`; the next one is
    /// asked for a second later while the menu is up.
    pub(super) fn list_answered(&mut self, channel: ChannelKey, reply: Reply) {
        let now = self.now;
        let Some(ch) = self.channels.get_key_mut(channel) else {
            return;
        };
        ch.tty.list_asked = false;
        let Some(lobby) = ch.lobby_mut() else {
            return;
        };
        if let Reply::Games(list) = reply {
            lobby.handle_game_list(list, now);
        }
        if lobby.wants_game_list() {
            ch.tty.list_due = Some(now.saturating_add(REFRESH_MS));
        }
    }

    /// Watch menus whose list is due: ask again.
    pub(super) fn refresh_lists(&mut self, now: Millis) {
        loop {
            let Some(id) = self.channels.lists_due(now).next() else {
                break;
            };
            let wanted = self
                .channels
                .get_mut(id)
                .and_then(Channel::lobby_mut)
                .is_some_and(|l| l.wants_game_list());
            if wanted {
                self.ask_game_list(id);
            } else if let Some(ch) = self.channels.get_mut(id) {
                ch.tty.list_due = None;
            }
        }
    }

    /// Watchers that fell behind and whose queues have drained ask for a fresh screen.
    pub(super) fn resync_drained(&mut self) {
        let backlog = self.ssh.transmit().len();
        let mut still_behind = false;
        let ids: Vec<ChannelId> = self.channels.ids().collect();
        for id in ids {
            let Some(ch) = self.channels.get_mut(id) else {
                continue;
            };
            match ch.wants_resync(backlog) {
                Some((watch, game)) => self.effects.push_back(Effect::Resync { watch, game }),
                None => still_behind |= ch.is_behind(),
            }
        }
        self.behind = still_behind;
    }
}
