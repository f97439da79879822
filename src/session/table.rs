//! The session channels of one connection, found by id (SSH events), by id and serial (a
//! control-core answer) or by game (PTY output, spawn results, game ends). A channel id is
//! reused by the SSH core once its channel is gone; the serials are not, so a lookup by key
//! never finds a newer channel.
//!
//! Slots are kept in a small vector (a connection has at most `max_channels`): a channel is
//! taken out of its slot and put back in the same call ([`Channels::step`]), which is how a
//! state machine that moves by value lives in a table.

use super::channel::{Channel, ChannelKey, Mode};
use super::GameKey;
use crate::ssh::server::{ChannelId, Millis, ServerConnection};

#[derive(Default)]
pub(super) struct Channels {
    /// Open channels; `None` is a free slot.
    slots: Vec<Option<Channel>>,
}

impl Channels {
    /// Give back the empty buffers of every channel (the connection is quiet).
    pub fn release_idle_buffers(&mut self) {
        for ch in self.slots.iter_mut().flatten() {
            ch.release_idle_buffers();
        }
    }

    /// Add a channel just opened. A channel still recorded under the same id (which the SSH
    /// core never allows) is returned, for the caller to tear down.
    pub fn insert(&mut self, ch: Channel) -> Option<Channel> {
        let old = self.remove(ch.tty.key.id);
        match self.slots.iter_mut().find(|s| s.is_none()) {
            Some(slot) => *slot = Some(ch),
            None => self.slots.push(Some(ch)),
        }
        old
    }

    /// Take out the channel open on `id`.
    pub fn remove(&mut self, id: ChannelId) -> Option<Channel> {
        self.slots
            .iter_mut()
            .find(|s| s.as_ref().is_some_and(|c| c.tty.key.id == id))
            .and_then(Option::take)
    }

    /// Every channel, taken out (the connection is closing).
    pub fn drain(&mut self) -> impl Iterator<Item = Channel> + '_ {
        self.slots.iter_mut().filter_map(Option::take)
    }

    pub fn is_empty(&self) -> bool {
        self.slots.iter().all(Option::is_none)
    }

    pub fn get(&self, id: ChannelId) -> Option<&Channel> {
        self.iter().find(|c| c.tty.key.id == id)
    }

    pub fn get_mut(&mut self, id: ChannelId) -> Option<&mut Channel> {
        self.iter_mut().find(|c| c.tty.key.id == id)
    }

    /// The channel `key` names, if that very channel is still open.
    pub fn get_key_mut(&mut self, key: ChannelKey) -> Option<&mut Channel> {
        self.iter_mut().find(|c| c.tty.key == key)
    }

    /// The channel where `game` is starting or running.
    pub fn with_game(&self, game: GameKey) -> Option<&Channel> {
        self.iter()
            .find(|c| c.tty.key.id == game.channel && c.has_game(game))
    }

    /// The channel where `game` is starting or running.
    pub fn with_game_mut(&mut self, game: GameKey) -> Option<&mut Channel> {
        self.iter_mut()
            .find(|c| c.tty.key.id == game.channel && c.has_game(game))
    }

    /// The channel where `game` runs (not merely starting).
    pub fn running(&self, game: GameKey) -> Option<&Channel> {
        self.with_game(game)
            .filter(|c| matches!(c.mode, Mode::Game(_)))
    }

    /// The channel where `game` runs (not merely starting).
    pub fn running_mut(&mut self, game: GameKey) -> Option<&mut Channel> {
        self.with_game_mut(game)
            .filter(|c| matches!(c.mode, Mode::Game(_)))
    }

    /// Move the channel open on `id` to its next state; `None` when there is none.
    pub fn step<R>(&mut self, id: ChannelId, f: impl FnOnce(Channel) -> (Channel, R)) -> Option<R> {
        let slot = self
            .slots
            .iter_mut()
            .find(|s| s.as_ref().is_some_and(|c| c.tty.key.id == id))?;
        Self::step_slot(slot, f)
    }

    /// Move the channel where `game` is starting or running to its next state.
    pub fn step_game<R>(
        &mut self,
        game: GameKey,
        f: impl FnOnce(Channel) -> (Channel, R),
    ) -> Option<R> {
        let slot = self.slots.iter_mut().find(|s| {
            s.as_ref()
                .is_some_and(|c| c.tty.key.id == game.channel && c.has_game(game))
        })?;
        Self::step_slot(slot, f)
    }

    /// The one place a channel leaves its slot and comes back.
    fn step_slot<R>(
        slot: &mut Option<Channel>,
        f: impl FnOnce(Channel) -> (Channel, R),
    ) -> Option<R> {
        let ch = slot.take()?;
        let (ch, r) = f(ch);
        *slot = Some(ch);
        Some(r)
    }

    /// Send what every channel has queued, as the windows allow (closing those that are
    /// done).
    pub fn flush(&mut self, ssh: &mut ServerConnection) {
        for slot in &mut self.slots {
            let closed_now = slot.as_mut().is_some_and(|c| c.flush(ssh));
            if closed_now {
                Self::step_slot(slot, |c| (c.into_closing(), ()));
            }
        }
    }

    /// Queue `text` on every channel (the server is going away).
    /// Every channel's lobby (also one kept while its game runs or it watches).
    pub fn for_each_lobby(&mut self, mut f: impl FnMut(&mut crate::lobby::Lobby)) {
        for c in self.iter_mut() {
            if let Some(l) = c.lobby_any_mut() {
                f(l);
            }
        }
    }

    pub fn queue_text_everywhere(&mut self, text: &[u8]) {
        for c in self.iter_mut() {
            c.tty.queue_output(text);
        }
    }

    /// Whether a game is starting or running on any channel.
    pub fn any_game(&self) -> bool {
        self.iter().any(Channel::busy_with_game)
    }

    /// Whether any channel is logged in as, or plays as, `name`.
    pub fn any_account(&self, name: &str) -> bool {
        self.iter()
            .any(|c| c.account().is_some_and(|a| a.eq_ignore_ascii_case(name)))
    }

    /// The earliest time since which a lobby has had no input.
    pub fn lobby_idle_since(&self) -> Option<Millis> {
        self.iter()
            .filter_map(|c| c.tty.lobby_idle_since(&c.mode))
            .min()
    }

    /// Channels whose lobby has been idle since `cutoff` or earlier.
    pub fn idle_lobbies(&self, cutoff: Millis) -> impl Iterator<Item = ChannelId> + '_ {
        self.iter()
            .filter(move |c| {
                c.tty
                    .lobby_idle_since(&c.mode)
                    .is_some_and(|since| since <= cutoff)
            })
            .map(|c| c.tty.key.id)
    }

    /// The earliest refresh of a watch menu's list.
    pub fn next_list_refresh(&self) -> Option<Millis> {
        self.iter().filter_map(|c| c.tty.list_due).min()
    }

    /// Channels whose watch menu's list is due at `now`.
    pub fn lists_due(&self, now: Millis) -> impl Iterator<Item = ChannelId> + '_ {
        self.iter()
            .filter(move |c| c.tty.list_due.is_some_and(|t| t <= now))
            .map(|c| c.tty.key.id)
    }

    /// Channels watching a game (for the re-sync of those that fell behind).
    pub fn ids(&self) -> impl Iterator<Item = ChannelId> + '_ {
        self.iter().map(|c| c.tty.key.id)
    }

    /// The earliest lobby input pause to wait for.
    pub fn next_input_pause(&self) -> Option<Millis> {
        self.iter().filter_map(Channel::input_pause_at).min()
    }

    /// A channel whose input pause is due at `now`, if any.
    pub fn input_pause_due(&self, now: Millis) -> Option<ChannelId> {
        self.iter()
            .find(|c| c.input_pause_at().is_some_and(|t| t <= now))
            .map(|c| c.tty.key.id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Channel> {
        self.slots.iter().flatten()
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = &mut Channel> {
        self.slots.iter_mut().flatten()
    }
}
