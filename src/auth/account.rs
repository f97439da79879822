//! The account record as stored in LMDB (one JSON document per account).
//!
//! Forward compatibility: every field added after the first release carries
//! `#[serde(default)]`, and fields this version does not know are kept in `extra` so an older
//! binary's read-modify-write (`Store::update`) does not drop what a newer one wrote.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::keys::key_fingerprint;

/// Most SSH keys a player may have on an account when adding them from the lobby: it bounds
/// the account record (a key line is at most ~1.7 KiB) and the keys compared at each key
/// login. The operator's `user key add` is not held to it.
pub const MAX_KEYS_PER_ACCOUNT: usize = 16;

/// One registered player.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    /// The name as the player typed it at registration (display form); the store key is its
    /// lowercase form, so lookups are case-insensitive.
    pub name: String,
    /// Optional contact address, shown to admins only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// argon2id PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`); secret-adjacent, so
    /// `Debug` redacts it.
    pub password_phc: String,
    /// Admins see the admin menu and may run admin actions from the lobby.
    #[serde(default)]
    pub admin: bool,
    /// A locked account cannot log in (password or key) until an admin unlocks it.
    #[serde(default)]
    pub locked: bool,
    /// Why an admin locked it (shown to its sessions as they end, and by `user list`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_reason: Option<String>,
    /// Registration time (seconds since the Unix epoch), shown by `user list`.
    #[serde(default)]
    pub created_unix: u64,
    /// SSH public keys that may log in as this account.
    #[serde(default)]
    pub keys: Vec<AuthorizedKey>,
    /// Fields written by a newer version of the server, preserved verbatim on update.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Account {
    /// A fresh, unlocked, non-admin account with no e-mail and no keys.
    pub fn new(name: &str, password_phc: String, created_unix: u64) -> Account {
        Account {
            name: name.to_owned(),
            email: None,
            password_phc,
            admin: false,
            locked: false,
            lock_reason: None,
            created_unix,
            keys: Vec::new(),
            extra: serde_json::Map::new(),
        }
    }

    /// The key under which this account is stored: the lowercase name.
    pub fn key(&self) -> String {
        self.name.to_ascii_lowercase()
    }

    /// Whether `blob` (an SSH wire public key blob) is one of this account's keys.
    pub fn has_key(&self, blob: &[u8]) -> bool {
        self.keys.iter().any(|k| k.blob == blob)
    }
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("name", &self.name)
            .field("email", &self.email)
            .field("password_phc", &"<redacted>")
            .field("admin", &self.admin)
            .field("locked", &self.locked)
            .field("created_unix", &self.created_unix)
            .field("keys", &self.keys)
            .field("extra_fields", &self.extra.len())
            .finish()
    }
}

/// One `authorized_keys`-style public key bound to an account.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizedKey {
    /// SSH key type name: `ssh-ed25519`, `ecdsa-sha2-nistp256` or `ssh-rsa`.
    pub key_type: String,
    /// The SSH wire-format public key blob (RFC 4253 §6.6), compared byte-for-byte with the
    /// key a client offers; stored as base64 in the JSON record.
    #[serde(with = "blob_base64")]
    pub blob: Vec<u8>,
    /// Free-form comment from the key line (often `user@host`), shown in key listings.
    #[serde(default)]
    pub comment: String,
    /// When the key was added (seconds since the Unix epoch).
    #[serde(default)]
    pub added_unix: u64,
}

impl AuthorizedKey {
    /// `SHA256:…` fingerprint, as OpenSSH prints it.
    pub fn fingerprint(&self) -> String {
        key_fingerprint(&self.blob)
    }
}

impl fmt::Debug for AuthorizedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizedKey")
            .field("key_type", &self.key_type)
            .field("fingerprint", &self.fingerprint())
            .field("comment", &self.comment)
            .field("added_unix", &self.added_unix)
            .finish()
    }
}

/// Serde adapter: `Vec<u8>` as a standard base64 string.
mod blob_base64 {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(blob: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(blob))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Account {
        let mut a = Account::new(
            "Alice",
            "$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA".into(),
            7,
        );
        a.keys.push(AuthorizedKey {
            key_type: "ssh-ed25519".into(),
            blob: vec![0, 0, 0, 11, 1, 2, 3],
            comment: "alice@laptop".into(),
            added_unix: 9,
        });
        a
    }

    #[test]
    fn debug_output_redacts_the_password_hash() {
        let text = format!("{:?}", sample());
        assert!(!text.contains("argon2id"), "{text}");
        assert!(text.contains("<redacted>"));
        assert!(text.contains("Alice"));
    }

    #[test]
    fn record_round_trips_through_json() {
        let a = sample();
        let json = serde_json::to_vec(&a).unwrap();
        let back: Account = serde_json::from_slice(&json).unwrap();
        assert_eq!(a, back);
    }

    #[test]
    fn old_record_without_optional_fields_still_decodes() {
        let json = br#"{"name":"bob","password_phc":"x"}"#;
        let a: Account = serde_json::from_slice(json).unwrap();
        assert_eq!(a.name, "bob");
        assert!(!a.admin && !a.locked && a.keys.is_empty() && a.email.is_none());
    }

    #[test]
    fn unknown_fields_from_a_newer_version_survive_a_round_trip() {
        let json = br#"{"name":"bob","password_phc":"x","totp":{"secret_ref":3}}"#;
        let a: Account = serde_json::from_slice(json).unwrap();
        let again = serde_json::to_string(&a).unwrap();
        assert!(again.contains(r#""totp":{"secret_ref":3}"#), "{again}");
    }
}
