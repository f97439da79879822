//! The server's Ed25519 host key (RFC 8709): generation, the unencrypted
//! `openssh-key-v1` private key file (OpenSSH `PROTOCOL.key`), the public key blob and line,
//! signatures over the exchange hash, and the SHA-256 fingerprint.
//!
//! Only unencrypted files are read: the server starts unattended, so there is no passphrase
//! to ask for. Signing keys come from `ring`.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine as _;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::ssh::wire::{self, Reader, WireError};

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
        let mut check = [0u8; 4];
        // A failed RNG only weakens the (non-secret) decryption check value.
        let _ = SystemRandom::new().fill(&mut check);
        let public = self.public_blob();
        let pk = self.pair.public_key().as_ref();

        let mut private = Zeroizing::new(Vec::with_capacity(256));
        private.extend_from_slice(&check);
        private.extend_from_slice(&check);
        wire::put_string(&mut private, ED25519.as_bytes());
        wire::put_string(&mut private, pk);
        wire::put_u32(&mut private, (SEED_LEN + pk.len()) as u32);
        private.extend_from_slice(self.seed.as_ref());
        private.extend_from_slice(pk);
        wire::put_string(&mut private, self.comment.as_bytes());
        let mut pad = 1u8;
        while private.len() % PRIVATE_BLOCK != 0 {
            private.push(pad);
            pad = pad.wrapping_add(1);
        }

        let mut file = Zeroizing::new(Vec::with_capacity(private.len() + 128));
        file.extend_from_slice(MAGIC);
        wire::put_string(&mut file, b"none");
        wire::put_string(&mut file, b"none");
        wire::put_string(&mut file, b"");
        wire::put_u32(&mut file, 1);
        wire::put_string(&mut file, &public);
        wire::put_string(&mut file, &private);

        let b64 = Zeroizing::new(STANDARD.encode(&file[..]));
        let mut out = Zeroizing::new(String::with_capacity(b64.len() + 128));
        out.push_str(BEGIN);
        out.push('\n');
        for line in b64.as_bytes().chunks(LINE_LEN) {
            out.push_str(std::str::from_utf8(line).unwrap_or_default());
            out.push('\n');
        }
        out.push_str(END);
        out.push('\n');
        out
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
        let mut line = format!("{ED25519} {}", STANDARD.encode(self.public_blob()));
        if !self.comment.is_empty() {
            line.push(' ');
            line.push_str(&self.comment);
        }
        line
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
        fingerprint_sha256(&self.public_blob())
    }

    /// The comment stored with the key.
    pub fn comment(&self) -> &str {
        &self.comment
    }

    /// Replace the comment written to the key file.
    pub fn set_comment(&mut self, comment: &str) {
        comment.clone_into(&mut self.comment);
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
    let d = ring::digest::digest(&ring::digest::SHA256, blob);
    format!("SHA256:{}", STANDARD_NO_PAD.encode(d.as_ref()))
}

const BEGIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";
const END: &str = "-----END OPENSSH PRIVATE KEY-----";
/// `AUTH_MAGIC` of `PROTOCOL.key`, including its NUL.
const MAGIC: &[u8] = b"openssh-key-v1\0";
/// Base64 line width `ssh-keygen` uses.
const LINE_LEN: usize = 70;
/// The private section is padded to the cipher block size, 8 for "none".
const PRIVATE_BLOCK: usize = 8;
const SEED_LEN: usize = 32;
const PUBLIC_LEN: usize = 32;

/// Decode the binary `openssh-key-v1` structure.
fn decode_key_file(raw: &[u8]) -> Result<HostKey, HostKeyError> {
    let mut r = Reader::new(raw);
    if r.bytes(MAGIC.len(), "magic")? != MAGIC {
        return Err(HostKeyError::Format("bad magic"));
    }
    let cipher = r.string()?;
    let kdf = r.string()?;
    let _kdf_options = r.string()?;
    if cipher != b"none" || kdf != b"none" {
        return Err(HostKeyError::Encrypted);
    }
    if r.u32()? != 1 {
        return Err(HostKeyError::Format("expected exactly one key"));
    }
    let public_blob = r.string()?;
    let private = r.string()?;
    r.finish()?;
    if private.len() % PRIVATE_BLOCK != 0 {
        return Err(HostKeyError::Format("private section not padded"));
    }

    let mut p = Reader::new(private);
    if p.u32()? != p.u32()? {
        return Err(HostKeyError::Format("check values differ"));
    }
    let key_type = p.string()?;
    if key_type != ED25519.as_bytes() {
        return Err(HostKeyError::UnsupportedKeyType(
            String::from_utf8_lossy(key_type).into_owned(),
        ));
    }
    let pk = p.string()?;
    let sk = p.string()?;
    let comment = String::from_utf8_lossy(p.string()?).into_owned();
    let padding = p.rest();
    let padding_ok = padding
        .iter()
        .zip(1u8..)
        .all(|(&b, expected)| b == expected);
    if !padding_ok || padding.len() >= PRIVATE_BLOCK {
        return Err(HostKeyError::Format("bad padding"));
    }
    if pk.len() != PUBLIC_LEN || sk.len() != SEED_LEN + PUBLIC_LEN {
        return Err(HostKeyError::Format("bad ed25519 key length"));
    }
    let (seed_bytes, pk_copy) = sk.split_at(SEED_LEN);
    if pk_copy != pk {
        return Err(HostKeyError::Inconsistent);
    }
    let mut seed = Zeroizing::new([0u8; SEED_LEN]);
    seed.copy_from_slice(seed_bytes);
    let pair = Ed25519KeyPair::from_seed_and_public_key(seed.as_ref(), pk)
        .map_err(|_| HostKeyError::Inconsistent)?;
    let key = HostKey {
        seed,
        pair,
        comment,
    };
    if key.public_blob() != public_blob {
        return Err(HostKeyError::Inconsistent);
    }
    Ok(key)
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
