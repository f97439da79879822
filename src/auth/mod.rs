//! Accounts: the LMDB account store, argon2id passwords, name/e-mail/password rules and
//! OpenSSH `authorized_keys` lines.
//!
//! Everything here is plain blocking code: argon2 costs ~20 ms of CPU and an LMDB write waits
//! for fsync, so the server calls these functions from its blocking thread pool, never from a
//! reactor core. The `dungeongate user …` CLI ([`crate::usercli`]) opens the same store from
//! another process while the server runs; LMDB makes that safe, and every [`Store`] operation
//! uses a fresh transaction so each side sees the other's committed writes.

mod account;
mod keys;
mod names;
mod password;
mod store;

pub use account::{Account, AuthorizedKey, MAX_KEYS_PER_ACCOUNT};
pub use keys::{
    authorized_key_from_blob, key_fingerprint, parse_authorized_key, parse_public_key_line,
    KeyError, MAX_KEY_LINE_LEN,
};
pub use names::{
    is_reserved, printable, validate_email, validate_name, validate_password, EmailError,
    NameError, PasswordRuleError, MAX_EMAIL_LEN, MAX_NAME_LEN, MAX_PASSWORD_LEN, MIN_PASSWORD_LEN,
    RESERVED_NAMES,
};
pub use password::{PasswordError, PasswordHasher, PasswordParams};
pub use store::{AuthError, Store, MAP_SIZE};

/// Seconds since the Unix epoch, for `created_unix` / `added_unix` stamps (0 if the clock is
/// before 1970, which only a broken machine reports).
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
