//! A player's options (rc) file for the lobby's editor: read it, write it back. The account
//! is always the one the asking lobby is logged in as and the game one of the configuration's
//! (the session fills both in); the file is where a game start would put it
//! ([`crate::game::launch::user_paths`]). The file work blocks (walks, fsync), so it is a job
//! on the blocking pool like the store's; [`crate::game::rcfile`] does it without following
//! anything an escaped game could have planted.

use std::sync::Arc;

use super::accounts::Step;
use super::jobs::Work;
use super::messages::Reply;
use super::{Control, Origin};
use crate::auth;
use crate::config::Config;
use crate::game::rcfile::{self, RcError, MAX_RC_BYTES};
use crate::lobby::OptionsFile;
use crate::pty::RunAs;

/// Told when the request names no game with an options file (a configuration changed under
/// the lobby, say).
const NO_SUCH_GAME: &str = "This game has no options file.";

/// One read or write of an options file: everything the pool thread needs.
pub(super) struct OptionsJob {
    /// The account (the asking lobby's own).
    name: String,
    /// The game whose file it is.
    game_id: String,
    /// Where the game's files are.
    config: Arc<Config>,
    /// Who files are made for (the games user; `None`: the server's own user).
    owner: Option<RunAs>,
    /// The new text, for a write.
    text: Option<String>,
}

/// What came of an [`OptionsJob`].
pub(super) enum OptionsDone {
    /// A read: the file, or what to tell the player.
    Read(Result<OptionsFile, String>),
    /// A write: done, or what to tell the player.
    Written(Result<(), String>),
}

impl Control {
    /// Queue a read (`text: None`) or a write of `name`'s options file of `game_id`; a text
    /// over the cap is refused at once.
    pub(super) fn start_options(
        &mut self,
        origin: Origin,
        name: String,
        game_id: String,
        config: Arc<Config>,
        text: Option<String>,
    ) {
        if text.as_ref().is_some_and(|t| t.len() > MAX_RC_BYTES) {
            let why = format!("An options file can be at most {MAX_RC_BYTES} bytes.");
            return self.reply(origin, Reply::Done(Err(why)));
        }
        let job = OptionsJob {
            name,
            game_id,
            config,
            owner: self.settings.games_user.clone(),
            text,
        };
        self.submit(Step::Options { origin }, Work::Options(Box::new(job)));
    }

    /// An options job finished: answer whoever asked.
    pub(super) fn options_done(&mut self, origin: Origin, done: OptionsDone) {
        let reply = match done {
            OptionsDone::Read(r) => Reply::Options(r),
            OptionsDone::Written(r) => Reply::Done(r),
        };
        self.reply(origin, reply);
    }
}

impl OptionsJob {
    /// The blocking half (on a pool thread).
    pub(super) fn run(self) -> OptionsDone {
        let write = self.text.is_some();
        let game = self
            .config
            .game(&self.game_id)
            .filter(|g| g.rc_file.is_some());
        // The name becomes part of a path (`%u`): account names are letters and digits, and
        // anything else is refused before it gets near one.
        let checked = match game {
            Some(game) if is_plain_name(&self.name) => Ok(game),
            Some(_) => Err("You are not logged in as an account that has options.".to_string()),
            None => Err(NO_SUCH_GAME.to_string()),
        };
        let game = match checked {
            Ok(game) => game,
            Err(why) if write => return OptionsDone::Written(Err(why)),
            Err(why) => return OptionsDone::Read(Err(why)),
        };
        let owner = self.owner.as_ref();
        match &self.text {
            Some(text) => {
                let r = rcfile::write(&self.config, game, &self.name, text.as_bytes(), owner);
                if r.is_ok() {
                    tracing::info!(
                        user = %auth::printable(&self.name),
                        game = %self.game_id,
                        bytes = text.len(),
                        "options file saved"
                    );
                }
                OptionsDone::Written(r.map_err(|e| self.refused(&e)))
            }
            None => {
                let r = rcfile::read(&self.config, game, &self.name, owner).map(|bytes| {
                    let template = game.rc_template.clone();
                    match bytes {
                        Some(bytes) => OptionsFile {
                            text: String::from_utf8_lossy(&bytes).into_owned(),
                            template,
                            exists: true,
                        },
                        None => OptionsFile {
                            text: template.clone().unwrap_or_default(),
                            template,
                            exists: false,
                        },
                    }
                });
                OptionsDone::Read(r.map_err(|e| self.refused(&e)))
            }
        }
    }

    /// Logs why the file was refused (a planted link is worth a warning) and says it to the
    /// player without paths.
    fn refused(&self, e: &RcError) -> String {
        let user = auth::printable(&self.name);
        match e {
            RcError::TooLarge { .. } | RcError::NoRcFile(_) => {
                tracing::info!(%user, game = %self.game_id, error = %e, "options file not edited");
            }
            RcError::Unsafe(_) | RcError::DataDir(_) => {
                tracing::warn!(%user, game = %self.game_id, error = %e, "options file refused");
            }
        }
        e.player_message()
    }
}

/// Letters and digits only, as account names are: nothing that could step out of a path.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
#[path = "options_tests.rs"]
mod tests;
