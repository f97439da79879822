//! The server's Ed25519 host key (RFC 8709): generation, the unencrypted
//! `openssh-key-v1` private key file (OpenSSH `PROTOCOL.key`), the public key blob and line,
//! signatures over the exchange hash, and the SHA-256 fingerprint.
//!
//! Only unencrypted files are read: the server starts unattended, so there is no passphrase
//! to ask for. The file format (its structure, check values, padding, the public key written
//! twice) is the `ssh-key` crate's; signing keys come from `ring`, which also checks that
//! the private seed and the public key belong together.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use ssh_key::private::{Ed25519Keypair, Ed25519PrivateKey, KeypairData};
use ssh_key::public::{Ed25519PublicKey, KeyData};
use ssh_key::{HashAlg, LineEnding, PrivateKey, PublicKey};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::ssh::wire::{self, WireError};

/// Algorithm (and key type) name of Ed25519 host keys.
pub const ED25519: &str = "ssh-ed25519";

/// A host key could not be created or loaded.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum HostKeyError {
    /// The file is not an OpenSSH private key or is damaged.
    #[error("not a valid OpenSSH private key: {0}")]
    Format(&'static str),
    /// A field inside the key file could not be decoded.
    #[error("not a valid OpenSSH private key: {0}")]
    Wire(#[from] WireError),
    /// The key is protected by a passphrase, which an unattended server cannot supply.
    #[error("the private key is encrypted; store it without a passphrase")]
    Encrypted,
    /// The key is of a type we cannot use as a host key.
    #[error("unsupported host key type {0:?} (only ssh-ed25519)")]
    UnsupportedKeyType(String),
    /// The private and public halves do not belong together.
    #[error("the private key does not match its public key")]
    Inconsistent,
    /// The system random number generator failed.
    #[error("random number generator failed")]
    Rng,
}

/// An Ed25519 host key pair.
pub struct HostKey {
    /// The 32-byte private seed, kept to write the key file back out.
    seed: Zeroizing<[u8; SEED_LEN]>,
    /// The expanded signing key.
    pair: Ed25519KeyPair,
    /// Free-text comment stored in the key file (often `user@host`).
    comment: String,
}

impl Clone for HostKey {
    /// Each data core gets its own copy (no sharing between cores).
    fn clone(&self) -> Self {
        let pair = match Ed25519KeyPair::from_seed_unchecked(self.seed.as_ref()) {
            Ok(p) => p,
            // The seed produced a key pair once; it cannot fail to again.
            Err(_) => unreachable_pair(),
        };
        HostKey {
            seed: self.seed.clone(),
            pair,
            comment: self.comment.clone(),
        }
    }
}

#[allow(clippy::panic)]
#[cold]
fn unreachable_pair() -> Ed25519KeyPair {
    panic!("an ed25519 seed that worked once was rejected")
}

impl HostKey {
    /// A fresh random key.
    pub fn generate() -> Result<Self, HostKeyError> {
        let mut seed = Zeroizing::new([0u8; SEED_LEN]);
        SystemRandom::new()
            .fill(seed.as_mut())
            .map_err(|_| HostKeyError::Rng)?;
        let pair = Ed25519KeyPair::from_seed_unchecked(seed.as_ref())
            .map_err(|_| HostKeyError::Inconsistent)?;
        Ok(HostKey {
            seed,
            pair,
            comment: String::new(),
        })
    }

    /// Parse an unencrypted `-----BEGIN OPENSSH PRIVATE KEY-----` file.
    ///
    /// The armour is taken off here, ignoring all whitespace inside it: `ssh-key`'s own PEM
    /// reader insists on 70-column lines, and files that were re-wrapped or got CR LF line
    /// ends loaded before (and still should).
    pub fn from_openssh_private(text: &str) -> Result<Self, HostKeyError> {
        let body = text
            .trim()
            .strip_prefix(BEGIN)
            .and_then(|t| t.strip_suffix(END))
            .ok_or(HostKeyError::Format("missing BEGIN/END lines"))?;
        let b64: Zeroizing<String> =
            Zeroizing::new(body.chars().filter(|c| !c.is_ascii_whitespace()).collect());
        let raw = Zeroizing::new(
            STANDARD
                .decode(b64.as_bytes())
                .map_err(|_| HostKeyError::Format("bad base64"))?,
        );
        decode_key_file(&raw)
    }

    /// The unencrypted OpenSSH private key file, as `ssh-keygen` writes it.
    pub fn to_openssh_private(&self) -> Zeroizing<String> {
        let keypair = Ed25519Keypair {
            public: Ed25519PublicKey(self.public_key_bytes()),
            private: Ed25519PrivateKey::from_bytes(&self.seed),
        };
        // An unencrypted Ed25519 key always encodes; an empty result would fail to load and
        // be noticed at once (the server re-reads the file it wrote).
        PrivateKey::new(KeypairData::Ed25519(keypair), self.comment.as_str())
            .and_then(|k| k.to_openssh(LineEnding::LF))
            .unwrap_or_default()
    }

    /// The host key blob `K_S`: `string "ssh-ed25519" || string pk`.
    pub fn public_blob(&self) -> Vec<u8> {
        let mut blob = Vec::with_capacity(4 + ED25519.len() + 4 + 32);
        wire::put_string(&mut blob, ED25519.as_bytes());
        wire::put_string(&mut blob, self.pair.public_key().as_ref());
        blob
    }

    /// `ssh-ed25519 AAAA… [comment]`, the `.pub` / `known_hosts` form.
    pub fn openssh_public_line(&self) -> String {
        // Encoding an Ed25519 public key cannot fail; the fallback is the bare type.
        self.public_key()
            .to_openssh()
            .unwrap_or_else(|_| ED25519.to_owned())
    }

    /// Host key algorithm name for KEXINIT.
    pub fn algorithm_name(&self) -> &'static str {
        ED25519
    }

    /// Sign `data` (the exchange hash); returns `string "ssh-ed25519" || string sig`.
    pub fn sign(&self, data: &[u8]) -> Vec<u8> {
        let sig = self.pair.sign(data);
        let mut blob = Vec::with_capacity(4 + ED25519.len() + 4 + sig.as_ref().len());
        wire::put_string(&mut blob, ED25519.as_bytes());
        wire::put_string(&mut blob, sig.as_ref());
        blob
    }

    /// `SHA256:…` as `ssh-keygen -l` prints it.
    pub fn fingerprint_sha256(&self) -> String {
        self.public_key().fingerprint(HashAlg::Sha256).to_string()
    }

    /// The comment stored with the key.
    pub fn comment(&self) -> &str {
        &self.comment
    }

    /// Replace the comment written to the key file.
    pub fn set_comment(&mut self, comment: &str) {
        comment.clone_into(&mut self.comment);
    }

    /// The 32-byte Ed25519 public key.
    fn public_key_bytes(&self) -> [u8; PUBLIC_LEN] {
        let mut pk = [0u8; PUBLIC_LEN];
        pk.copy_from_slice(self.pair.public_key().as_ref());
        pk
    }

    /// The public half with its comment, as `ssh-key` writes and fingerprints it.
    fn public_key(&self) -> PublicKey {
        let data = KeyData::Ed25519(Ed25519PublicKey(self.public_key_bytes()));
        PublicKey::new(data, self.comment.as_str())
    }
}

impl std::fmt::Debug for HostKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostKey")
            .field("algorithm", &ED25519)
            .field("fingerprint", &self.fingerprint_sha256())
            .finish_non_exhaustive()
    }
}

/// `SHA256:` followed by unpadded base64 of SHA-256 over a public key blob.
pub fn fingerprint_sha256(blob: &[u8]) -> String {
    crate::auth::key_fingerprint(blob)
}

const BEGIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";
const END: &str = "-----END OPENSSH PRIVATE KEY-----";
const SEED_LEN: usize = 32;
const PUBLIC_LEN: usize = 32;

/// Decode the binary `openssh-key-v1` structure (`ssh-key` checks magic, cipher, key count,
/// check values, padding and that the public key inside matches the one outside).
fn decode_key_file(raw: &[u8]) -> Result<HostKey, HostKeyError> {
    let key = PrivateKey::from_bytes(raw).map_err(file_error)?;
    if key.is_encrypted() {
        return Err(HostKeyError::Encrypted);
    }
    let Some(pair) = key.key_data().ed25519() else {
        return Err(HostKeyError::UnsupportedKeyType(
            key.algorithm().as_str().to_owned(),
        ));
    };
    let seed = Zeroizing::new(pair.private.to_bytes());
    // ring checks that the seed yields this public key (ssh-key cannot without its ed25519
    // feature, which would pull in a second Ed25519 implementation).
    let ring_pair = Ed25519KeyPair::from_seed_and_public_key(seed.as_ref(), pair.public.as_ref())
        .map_err(|_| HostKeyError::Inconsistent)?;
    Ok(HostKey {
        seed,
        pair: ring_pair,
        comment: key.comment().to_owned(),
    })
}

/// What an `ssh-key` decoding error means for a host key file.
fn file_error(e: ssh_key::Error) -> HostKeyError {
    match e {
        ssh_key::Error::Encrypted => HostKeyError::Encrypted,
        ssh_key::Error::PublicKey => HostKeyError::Inconsistent,
        // Check values that differ, or key halves that disagree inside the private section.
        ssh_key::Error::Crypto => HostKeyError::Format("damaged private section"),
        ssh_key::Error::TrailingData { .. } => HostKeyError::Format("trailing bytes"),
        ssh_key::Error::FormatEncoding => HostKeyError::Format("bad magic or padding"),
        ssh_key::Error::AlgorithmUnknown | ssh_key::Error::AlgorithmUnsupported { .. } => {
            HostKeyError::Format("unknown key type")
        }
        _ => HostKeyError::Format("damaged or truncated key file"),
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests {
    use super::*;
    use crate::ssh::wire::Reader;

    #[test]
    fn private_key_round_trips_and_signs_identically() {
        let mut key = HostKey::generate().unwrap();
        key.set_comment("c");
        let again = HostKey::from_openssh_private(&key.to_openssh_private()).unwrap();
        assert_eq!(again.public_blob(), key.public_blob());
        assert_eq!(again.comment(), "c");
        assert_eq!(again.sign(b"hash"), key.sign(b"hash"));
        assert_ne!(
            HostKey::generate().unwrap().public_blob(),
            key.public_blob()
        );
    }

    #[test]
    fn signature_blob_verifies_with_the_public_key() {
        let key = HostKey::generate().unwrap();
        let sig = key.sign(b"exchange hash");
        let mut r = Reader::new(&sig);
        assert_eq!(r.utf8().unwrap(), ED25519);
        let raw = r.string().unwrap();
        r.finish().unwrap();
        let blob = key.public_blob();
        let mut b = Reader::new(&blob);
        b.string().unwrap();
        let pk = b.string().unwrap();
        let v = ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, pk);
        v.verify(b"exchange hash", raw).unwrap();
        assert!(v.verify(b"exchange hasH", raw).is_err());
    }

    #[test]
    fn damaged_key_files_are_errors_not_panics() {
        let text = HostKey::generate().unwrap().to_openssh_private();
        let lines: Vec<&str> = text.lines().collect();
        let body: String = lines[1..lines.len() - 1].concat();
        let raw = STANDARD.decode(&body).unwrap();
        for cut in 0..raw.len() {
            assert!(decode_key_file(&raw[..cut]).is_err(), "cut at {cut}");
        }
        for i in 0..raw.len() {
            let mut bad = raw.clone();
            bad[i] ^= 0x01;
            // Flipping a check byte or the comment may still decode; nothing may panic, and a
            // flipped key byte must never give a key that differs silently.
            if let Ok(k) = decode_key_file(&bad) {
                let good = decode_key_file(&raw).unwrap();
                assert_eq!(k.public_blob(), good.public_blob(), "byte {i}");
            }
        }
        assert!(HostKey::from_openssh_private("hello").is_err());
        assert!(HostKey::from_openssh_private(&format!("{BEGIN}\n!!!\n{END}")).is_err());
    }

    #[test]
    fn debug_output_shows_the_fingerprint_not_the_seed() {
        let key = HostKey::generate().unwrap();
        let d = format!("{key:?}");
        assert!(d.contains(&key.fingerprint_sha256()));
        assert!(!d.contains(&format!("{:?}", &key.seed[..4])), "{d}");
        assert!(key.fingerprint_sha256().starts_with("SHA256:"));
        assert_eq!(key.fingerprint_sha256().len(), 7 + 43);
    }
}
