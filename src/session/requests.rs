//! Control-core requests waiting for their answer. Each gets a [`Token`] that is never reused
//! on the connection, and remembers what it was for: the SSH authentication in flight, a
//! lobby of a particular channel (id and serial), or the claim of a particular game. An
//! answer nobody waits for any more is dropped by its caller.

use super::auth::AuthAsk;
use super::channel::ChannelKey;
use super::{Effect, GameKey, Token};
use crate::control::Request;
use std::collections::VecDeque;

/// What an answer is for.
pub(super) enum Pending {
    /// The SSH authentication request the SSH core waits on.
    Auth(AuthAsk),
    /// A lobby's login, registration or change, for that very channel.
    Lobby { channel: ChannelKey, ask: LobbyAsk },
    /// The claim of `game` for `user`: given back if granted once nobody wants it.
    Claim {
        game: GameKey,
        user: String,
        game_id: String,
    },
    /// The running games, for the watch menu of that very channel.
    GameList { channel: ChannelKey },
    /// The player's own running games, for the menu of that very channel.
    MyGames { channel: ChannelKey },
}

/// Which lobby answer method the reply goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LobbyAsk {
    Login,
    Register,
    /// A password or e-mail change.
    Change,
    /// Listing, adding or removing the account's SSH keys.
    Keys,
    /// Reading an options file for the editor.
    OptionsRead,
    /// Saving it.
    OptionsWrite,
    /// The admin screen's list of connections.
    AdminList,
    /// An admin order: kick, broadcast, drain, lock or unlock.
    Admin,
}

#[derive(Default)]
pub(super) struct Requests {
    /// The next token.
    next: u64,
    /// Requests waiting for an answer (a handful at most: one SSH authentication, one lobby
    /// request per channel, one claim).
    waiting: Vec<(Token, Pending)>,
}

impl Requests {
    /// Ask the control core `request`; its answer is for `pending`.
    pub fn ask(&mut self, effects: &mut VecDeque<Effect>, request: Request, pending: Pending) {
        let token = self.token();
        self.waiting.push((token, pending));
        effects.push_back(Effect::Control { token, request });
    }

    /// Tell the control core something whose answer nobody waits for.
    pub fn tell(&mut self, effects: &mut VecDeque<Effect>, request: Request) {
        let token = self.token();
        effects.push_back(Effect::Control { token, request });
    }

    /// What the answer to `token` is for (None: nothing waits for it).
    pub fn take(&mut self, token: Token) -> Option<Pending> {
        let i = self.waiting.iter().position(|(t, _)| *t == token)?;
        Some(self.waiting.swap_remove(i).1)
    }

    /// The connection is over: only claims still matter (a granted one is given back).
    pub fn forget_all_but_claims(&mut self) {
        self.waiting
            .retain(|(_, p)| matches!(p, Pending::Claim { .. }));
    }

    fn token(&mut self) -> Token {
        let t = Token(self.next);
        self.next = self.next.wrapping_add(1);
        t
    }
}
