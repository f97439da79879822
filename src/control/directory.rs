//! The directory of running games for the watch menus: data cores report their games'
//! starts, status and ends; a menu asks for the list. One snapshot is built per change and
//! shared by every menu that asks before the next one.

use crate::watch::{GameList, GameRef, Listing};
use std::collections::BTreeMap;

#[derive(Default)]
pub(super) struct Directory {
    games: BTreeMap<GameRef, Listing>,
    /// The list as last built; `None` after a change.
    snapshot: Option<GameList>,
}

impl Directory {
    pub fn listed(&mut self, listing: Listing) {
        self.games.insert(listing.game, listing);
        self.snapshot = None;
    }

    pub fn status(
        &mut self,
        game: GameRef,
        cols: u16,
        rows: u16,
        last_output_ms: u64,
        watchers: u32,
    ) {
        if let Some(l) = self.games.get_mut(&game) {
            l.cols = cols;
            l.rows = rows;
            l.last_output_ms = last_output_ms;
            l.watchers = watchers;
            self.snapshot = None;
        }
    }

    /// The game's player left it running (or came back to it).
    pub fn detached(&mut self, game: GameRef, detached: bool) {
        if let Some(l) = self.games.get_mut(&game) {
            l.detached = detached;
            self.snapshot = None;
        }
    }

    /// `user`'s running copy of `game_id`, if any.
    pub fn find(&self, user: &str, game_id: &str) -> Option<&Listing> {
        self.games
            .values()
            .find(|l| l.player.eq_ignore_ascii_case(user) && l.game_id == game_id)
    }

    /// Every game `user` runs.
    pub fn of(&self, user: &str) -> Vec<Listing> {
        self.games
            .values()
            .filter(|l| l.player.eq_ignore_ascii_case(user))
            .cloned()
            .collect()
    }

    pub fn unlisted(&mut self, game: GameRef) {
        if self.games.remove(&game).is_some() {
            self.snapshot = None;
        }
    }

    /// Every game, in a shared snapshot.
    pub fn list(&mut self) -> GameList {
        self.snapshot
            .get_or_insert_with(|| self.games.values().cloned().collect())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(core: u16, slot: u32, player: &str) -> Listing {
        Listing {
            game: GameRef {
                core,
                slot,
                generation: 1,
            },
            player: player.into(),
            game_id: "nethack".into(),
            game_name: "NetHack".into(),
            cols: 80,
            rows: 24,
            started_unix: 0,
            last_output_ms: 0,
            watchers: 0,
            detached: false,
        }
    }

    #[test]
    fn games_come_and_go_and_the_snapshot_follows() {
        let mut d = Directory::default();
        d.listed(listing(0, 1, "alice"));
        d.listed(listing(1, 1, "bob"));
        let first = d.list();
        assert_eq!(first.len(), 2);
        // Unchanged: the same snapshot is shared.
        assert!(std::sync::Arc::ptr_eq(&first, &d.list()));
        d.status(first[0].game, 100, 40, 5, 3);
        let second = d.list();
        assert_eq!((second[0].cols, second[0].watchers), (100, 3));
        d.unlisted(first[0].game);
        assert_eq!(d.list().len(), 1);
        // A status for a game already gone is ignored.
        d.status(first[0].game, 1, 1, 1, 1);
        assert_eq!(d.list().len(), 1);
    }

    #[test]
    fn a_players_games_are_found_and_their_detachment_follows() {
        let mut d = Directory::default();
        d.listed(listing(0, 1, "alice"));
        d.listed(listing(1, 2, "bob"));
        let bobs = d.find("bob", "nethack").map(|l| l.game);
        assert_eq!(bobs.map(|g| (g.core, g.slot)), Some((1, 2)));
        assert!(d.find("bob", "other").is_none());
        assert!(d.find("carol", "nethack").is_none());
        let before = d.list();
        d.detached(listing(1, 2, "bob").game, true);
        assert!(!std::sync::Arc::ptr_eq(&before, &d.list()));
        assert!(d.of("bob")[0].detached);
        assert!(!d.of("alice")[0].detached);
        assert!(d.of("carol").is_empty());
    }
}
