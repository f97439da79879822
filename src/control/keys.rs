//! An account's SSH keys, for the lobby's `k` screen and the key a guest binds right after
//! registering: list, add, remove. The account is always the one the asking lobby is logged
//! in as (the session fills the name in). A line or an offered blob is checked here, on the
//! control thread (parsing is microseconds); the store's read-modify-write runs on the
//! blocking pool and decides duplicates and the key limit inside its write transaction, so
//! two sessions of one account cannot race past them. The next SSH login reads the account
//! afresh, so a change counts at once.

use std::time::Duration;

use super::accounts::Step;
use super::jobs::{KeyOp, Work};
use super::messages::{NewKey, Reply};
use super::{Control, Origin};
use crate::auth::{self, AuthError, AuthorizedKey, Store, MAX_KEYS_PER_ACCOUNT};
use crate::lobby::KeyEntry;
use crate::metrics::DbOp;

/// The comment of a key bound at registration (a client does not send its key's comment).
const OFFERED_COMMENT: &str = "bound at registration";

/// Why a key job did not do what was asked.
#[derive(Debug)]
pub(super) enum KeysRefused {
    /// The account is gone (deleted by the CLI meanwhile).
    NoAccount,
    /// The key (this fingerprint) is on the account already.
    Duplicate(String),
    /// The account has [`MAX_KEYS_PER_ACCOUNT`] keys.
    Full,
    /// The store failed.
    Store(AuthError),
}

impl KeysRefused {
    /// What the lobby shows.
    fn message(&self) -> String {
        match self {
            KeysRefused::NoAccount => "Your account no longer exists.".into(),
            KeysRefused::Duplicate(fp) => format!("Already on your account: {fp}"),
            KeysRefused::Full => {
                format!(
                    "An account can have at most {MAX_KEYS_PER_ACCOUNT} keys: remove one first."
                )
            }
            KeysRefused::Store(_) => "The account store is unavailable; try again later.".into(),
        }
    }
}

impl Control {
    /// Queue a key job for `name`.
    pub(super) fn start_keys(&mut self, origin: Origin, name: String, op: KeyOp) {
        let write = !matches!(op, KeyOp::List);
        let work = Work::Keys {
            store: self.store.clone(),
            name,
            op,
        };
        self.submit(Step::Keys { origin, write }, work);
    }

    /// Check a key to add (answered at once when it is no key we accept), then queue it.
    pub(super) fn start_add_key(&mut self, origin: Origin, name: String, key: NewKey) {
        let parsed = match key {
            NewKey::Line(line) => auth::parse_public_key_line(&line),
            NewKey::Offered(blob) => auth::authorized_key_from_blob(&blob).map(|mut k| {
                k.comment = OFFERED_COMMENT.into();
                k
            }),
        };
        match parsed {
            Ok(key) => self.start_keys(origin, name, KeyOp::Add(key)),
            Err(e) => self.reply(origin, Reply::Keys(Err(format!("Not added: {e}.")))),
        }
    }

    /// A key job finished: count it, answer with the keys or the reason.
    pub(super) fn keys_done(
        &mut self,
        origin: Origin,
        write: bool,
        result: Result<Vec<AuthorizedKey>, KeysRefused>,
        took: Duration,
    ) {
        let op = if write { DbOp::Update } else { DbOp::Get };
        let store_ok = !matches!(result, Err(KeysRefused::Store(_)));
        self.metrics.db_op(op, store_ok, took);
        let reply = match result {
            Ok(keys) => Ok(keys.iter().map(entry).collect()),
            Err(refused) => {
                if let KeysRefused::Store(e) = &refused {
                    tracing::error!(error = %e, "SSH key request failed in the store");
                }
                Err(refused.message())
            }
        };
        self.reply(origin, Reply::Keys(reply));
    }
}

/// The blocking half: read or change `name`'s keys in the store; the keys afterwards.
pub(super) fn run(store: &Store, name: &str, op: KeyOp) -> Result<Vec<AuthorizedKey>, KeysRefused> {
    match op {
        KeyOp::List => match store.get(name) {
            Ok(Some(account)) => Ok(account.keys),
            Ok(None) => Err(KeysRefused::NoAccount),
            Err(e) => Err(KeysRefused::Store(e)),
        },
        KeyOp::Add(mut key) => {
            key.added_unix = auth::now_unix();
            let fingerprint = key.fingerprint();
            let mut refused = None;
            // A refused add writes the record back unchanged: rare (the lobby checks both
            // conditions first), and one transaction keeps the check and the change together.
            let account = store
                .update(name, |a| {
                    if a.has_key(&key.blob) {
                        refused = Some(KeysRefused::Duplicate(fingerprint.clone()));
                    } else if a.keys.len() >= MAX_KEYS_PER_ACCOUNT {
                        refused = Some(KeysRefused::Full);
                    } else {
                        a.keys.push(key);
                    }
                })
                .map_err(store_refusal)?;
            if let Some(r) = refused {
                return Err(r);
            }
            tracing::info!(user = %auth::printable(name), %fingerprint, "SSH key added");
            Ok(account.keys)
        }
        KeyOp::Remove(fingerprint) => {
            let mut removed = false;
            let account = store
                .update(name, |a| {
                    let before = a.keys.len();
                    a.keys.retain(|k| k.fingerprint() != fingerprint);
                    removed = a.keys.len() != before;
                })
                .map_err(store_refusal)?;
            if removed {
                tracing::info!(user = %auth::printable(name), %fingerprint, "SSH key removed");
            }
            Ok(account.keys)
        }
    }
}

/// A store error, with "no such account" told apart.
fn store_refusal(e: AuthError) -> KeysRefused {
    match e {
        AuthError::NotFound(_) => KeysRefused::NoAccount,
        e => KeysRefused::Store(e),
    }
}

/// What the keys screen shows of a key.
fn entry(k: &AuthorizedKey) -> KeyEntry {
    KeyEntry {
        key_type: k.key_type.clone(),
        fingerprint: k.fingerprint(),
        comment: k.comment.clone(),
        added_unix: k.added_unix,
    }
}

#[cfg(test)]
#[path = "keys_tests.rs"]
mod tests;
