//! User public keys for `publickey` authentication (RFC 4252 §7): key blobs, signature blobs
//! and `authorized_keys`-style lines, for Ed25519 (RFC 8709), ECDSA P-256 (RFC 5656 §3) and
//! RSA with SHA-2 (RFC 8332). Plain `ssh-rsa` (SHA-1) signatures are refused, as are RSA keys
//! under 2048 bits. Verification uses `ring`.

use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use thiserror::Error;

use crate::ssh::wire::{Reader, WireError};

/// A user key or signature was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PubkeyError {
    /// The peer broke the protocol: a blob does not decode.
    #[error("malformed key or signature: {0}")]
    Malformed(#[from] WireError),
    /// A blob decodes but its contents are not a valid key of its type.
    #[error("invalid key: {0}")]
    InvalidKey(&'static str),
    /// The peer asked for an algorithm we do not offer.
    #[error("unsupported public key algorithm {0:?}")]
    Unsupported(String),
    /// `ssh-rsa` signatures use SHA-1, which we refuse.
    #[error("ssh-rsa (SHA-1) signatures are not accepted; use rsa-sha2-256 or rsa-sha2-512")]
    Sha1Refused,
    /// The algorithm named in the request, the key blob and the signature blob disagree.
    #[error("signature algorithm does not match the key")]
    AlgorithmMismatch,
    /// RSA modulus outside 2048..=8192 bits.
    #[error("RSA key of {0} bits is not accepted (2048 to 8192 bits)")]
    RsaKeySize(usize),
    /// The signature does not verify.
    #[error("signature verification failed")]
    BadSignature,
    /// An `authorized_keys`-style line could not be parsed.
    #[error("not a public key line: {0}")]
    BadLine(&'static str),
}

/// A signature algorithm accepted for user authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserKeyAlg {
    Ed25519,
    EcdsaP256,
    RsaSha256,
    RsaSha512,
}

impl UserKeyAlg {
    /// Every accepted algorithm, in the order for the `server-sig-algs` extension (RFC 8308).
    pub const ALL: [UserKeyAlg; 4] = [
        UserKeyAlg::Ed25519,
        UserKeyAlg::EcdsaP256,
        UserKeyAlg::RsaSha512,
        UserKeyAlg::RsaSha256,
    ];

    /// The signature algorithm name (in USERAUTH_REQUEST and in the signature blob).
    pub fn name(self) -> &'static str {
        match self {
            UserKeyAlg::Ed25519 => ED25519,
            UserKeyAlg::EcdsaP256 => ECDSA_P256,
            UserKeyAlg::RsaSha256 => "rsa-sha2-256",
            UserKeyAlg::RsaSha512 => "rsa-sha2-512",
        }
    }

    /// The key type named inside the key blob (`ssh-rsa` for both RSA algorithms).
    pub fn key_type(self) -> &'static str {
        match self {
            UserKeyAlg::Ed25519 => ED25519,
            UserKeyAlg::EcdsaP256 => ECDSA_P256,
            UserKeyAlg::RsaSha256 | UserKeyAlg::RsaSha512 => SSH_RSA,
        }
    }

    /// Look up a signature algorithm name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// The key type string at the start of a key blob.
pub fn key_type_of_blob(blob: &[u8]) -> Result<&str, PubkeyError> {
    Ok(Reader::new(blob).utf8()?)
}

/// Check that the algorithm a client names in its request can be used with its key blob,
/// and that the blob is a well-formed key of that type.
pub fn check_alg_matches_blob(sig_alg: &str, blob: &[u8]) -> Result<UserKeyAlg, PubkeyError> {
    let alg = match UserKeyAlg::from_name(sig_alg) {
        Some(a) => a,
        None if sig_alg == SSH_RSA => return Err(PubkeyError::Sha1Refused),
        None => return Err(PubkeyError::Unsupported(sig_alg.to_owned())),
    };
    if key_type_of_blob(blob)? != alg.key_type() {
        return Err(PubkeyError::AlgorithmMismatch);
    }
    parse_key(blob)?;
    Ok(alg)
}

/// Verify `signature_blob` (`string alg || string sig`) over `signed_data` with `key_blob`.
pub fn verify(
    sig_alg: UserKeyAlg,
    key_blob: &[u8],
    signature_blob: &[u8],
    signed_data: &[u8],
) -> Result<(), PubkeyError> {
    let key = parse_key(key_blob)?;
    let mut r = Reader::new(signature_blob);
    if r.utf8()? != sig_alg.name() {
        return Err(PubkeyError::AlgorithmMismatch);
    }
    let sig = r.string()?;
    r.finish()?;
    match (sig_alg, key) {
        (UserKeyAlg::Ed25519, Key::Ed25519(pk)) => UnparsedPublicKey::new(&signature::ED25519, pk)
            .verify(signed_data, sig)
            .map_err(|_| PubkeyError::BadSignature),
        (UserKeyAlg::EcdsaP256, Key::EcdsaP256(q)) => {
            let fixed = ecdsa_signature_to_fixed(sig)?;
            UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, q)
                .verify(signed_data, &fixed)
                .map_err(|_| PubkeyError::BadSignature)
        }
        (UserKeyAlg::RsaSha256 | UserKeyAlg::RsaSha512, Key::Rsa { n, e }) => {
            let params = if sig_alg == UserKeyAlg::RsaSha256 {
                &signature::RSA_PKCS1_2048_8192_SHA256
            } else {
                &signature::RSA_PKCS1_2048_8192_SHA512
            };
            // Some signers drop leading zero bytes of the signature; pad back to |n|.
            if sig.len() > n.len() {
                return Err(PubkeyError::BadSignature);
            }
            let mut padded = vec![0u8; n.len() - sig.len()];
            padded.extend_from_slice(sig);
            RsaPublicKeyComponents { n, e }
                .verify(params, signed_data, &padded)
                .map_err(|_| PubkeyError::BadSignature)
        }
        _ => Err(PubkeyError::AlgorithmMismatch),
    }
}

/// Parse `type base64 [comment]` as in `authorized_keys` / `.pub` files (no options prefix).
/// Returns the key type, the decoded blob (checked to be a well-formed key of that type) and
/// the comment (possibly empty).
///
/// The account store's parser ([`crate::auth::parse_public_key_line`], on `ssh-key`) does
/// the work, so a line means the same here as in `user key add` and the lobby; its answer
/// is then checked against what [`verify`] accepts.
pub fn parse_authorized_key_line(line: &str) -> Result<(String, Vec<u8>, String), PubkeyError> {
    use crate::auth::KeyError;
    let key = crate::auth::parse_public_key_line(line).map_err(|e| match e {
        KeyError::UnsupportedType(t) => PubkeyError::Unsupported(t),
        KeyError::TypeMismatch { .. } => PubkeyError::AlgorithmMismatch,
        KeyError::RsaTooSmall(bits) | KeyError::RsaTooLarge(bits) => PubkeyError::RsaKeySize(bits),
        KeyError::TooLong => PubkeyError::BadLine("line too long"),
        KeyError::Empty => PubkeyError::BadLine("empty line or comment"),
        KeyError::PrivateKey => PubkeyError::BadLine("a private key, not a public one"),
        KeyError::MissingData => PubkeyError::BadLine("missing key data"),
        KeyError::BadBase64 => PubkeyError::BadLine("key data is not base64"),
        KeyError::Malformed { what, .. } => PubkeyError::InvalidKey(what),
    })?;
    parse_key(&key.blob)?;
    Ok((key.key_type, key.blob, key.comment))
}

/// `SHA256:…` fingerprint of a key blob, as `ssh-keygen -l` prints it.
pub fn fingerprint_sha256(blob: &[u8]) -> String {
    crate::ssh::hostkey::fingerprint_sha256(blob)
}

const ED25519: &str = "ssh-ed25519";
const ECDSA_P256: &str = "ecdsa-sha2-nistp256";
const SSH_RSA: &str = "ssh-rsa";
/// Length of a P-256 scalar (each of r and s).
const P256_SCALAR_LEN: usize = 32;

/// A decoded key blob, borrowing from it.
enum Key<'a> {
    /// The 32-byte public key.
    Ed25519(&'a [u8]),
    /// The uncompressed SEC1 point (65 bytes starting with 4).
    EcdsaP256(&'a [u8]),
    /// Modulus and exponent, big-endian, leading zeros stripped.
    Rsa { n: &'a [u8], e: &'a [u8] },
}

/// Decode and sanity-check a key blob of a supported type; trailing bytes are an error.
fn parse_key(blob: &[u8]) -> Result<Key<'_>, PubkeyError> {
    let mut r = Reader::new(blob);
    let key_type = r.utf8()?;
    let key = match key_type {
        ED25519 => {
            let pk = r.string()?;
            if pk.len() != 32 {
                return Err(PubkeyError::InvalidKey("ed25519 key must be 32 bytes"));
            }
            Key::Ed25519(pk)
        }
        ECDSA_P256 => {
            if r.string()? != b"nistp256" {
                return Err(PubkeyError::InvalidKey("curve is not nistp256"));
            }
            let q = r.string()?;
            if q.len() != 65 || q.first() != Some(&4) {
                return Err(PubkeyError::InvalidKey("not an uncompressed P-256 point"));
            }
            Key::EcdsaP256(q)
        }
        SSH_RSA => {
            let e = positive_mpint(r.mpint()?)?;
            let n = positive_mpint(r.mpint()?)?;
            let bits = bit_len(n);
            if !(2048..=8192).contains(&bits) {
                return Err(PubkeyError::RsaKeySize(bits));
            }
            if e.is_empty() || e.len() > 4 {
                return Err(PubkeyError::InvalidKey("RSA exponent out of range"));
            }
            Key::Rsa { n, e }
        }
        other => return Err(PubkeyError::Unsupported(other.to_owned())),
    };
    r.finish()?;
    Ok(key)
}

/// An `mpint` that must be non-negative, with leading zero bytes stripped.
fn positive_mpint(v: &[u8]) -> Result<&[u8], PubkeyError> {
    if v.first().is_some_and(|&b| b & 0x80 != 0) {
        return Err(PubkeyError::InvalidKey("negative integer"));
    }
    let start = v.iter().position(|&b| b != 0).unwrap_or(v.len());
    Ok(v.get(start..).unwrap_or_default())
}

/// Bits in a big-endian unsigned integer without leading zero bytes.
fn bit_len(v: &[u8]) -> usize {
    match v.first() {
        None => 0,
        Some(&b) => v.len() * 8 - b.leading_zeros() as usize,
    }
}

/// RFC 5656 §3.1.2: the signature is `mpint r || mpint s`; ring wants `r || s`, 32 bytes each.
fn ecdsa_signature_to_fixed(sig: &[u8]) -> Result<[u8; 2 * P256_SCALAR_LEN], PubkeyError> {
    let mut r = Reader::new(sig);
    let sr = positive_mpint(r.mpint()?)?;
    let ss = positive_mpint(r.mpint()?)?;
    r.finish()?;
    let mut out = [0u8; 2 * P256_SCALAR_LEN];
    let (out_r, out_s) = out.split_at_mut(P256_SCALAR_LEN);
    for (dst, src) in [(out_r, sr), (out_s, ss)] {
        let pad = P256_SCALAR_LEN
            .checked_sub(src.len())
            .ok_or(PubkeyError::BadSignature)?;
        dst.get_mut(pad..)
            .ok_or(PubkeyError::BadSignature)?
            .copy_from_slice(src);
    }
    Ok(out)
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
    use crate::ssh::wire;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};

    fn sig_blob(name: &str, sig: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        wire::put_string(&mut b, name.as_bytes());
        wire::put_string(&mut b, sig);
        b
    }

    fn ed25519_key() -> (Ed25519KeyPair, Vec<u8>) {
        let rng = SystemRandom::new();
        let doc = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let kp = Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap();
        let mut blob = Vec::new();
        wire::put_string(&mut blob, b"ssh-ed25519");
        wire::put_string(&mut blob, kp.public_key().as_ref());
        (kp, blob)
    }

    fn ecdsa_key() -> (EcdsaKeyPair, Vec<u8>) {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let doc = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        let kp = EcdsaKeyPair::from_pkcs8(alg, doc.as_ref(), &rng).unwrap();
        let mut blob = Vec::new();
        wire::put_string(&mut blob, b"ecdsa-sha2-nistp256");
        wire::put_string(&mut blob, b"nistp256");
        wire::put_string(&mut blob, kp.public_key().as_ref());
        (kp, blob)
    }

    fn ecdsa_sign(kp: &EcdsaKeyPair, data: &[u8]) -> Vec<u8> {
        let sig = kp.sign(&SystemRandom::new(), data).unwrap();
        let (r, s) = sig.as_ref().split_at(32);
        let mut inner = Vec::new();
        wire::put_mpint_unsigned(&mut inner, r);
        wire::put_mpint_unsigned(&mut inner, s);
        sig_blob("ecdsa-sha2-nistp256", &inner)
    }

    #[test]
    fn ed25519_signature_verifies_and_tampering_fails() {
        let (kp, blob) = ed25519_key();
        let (_, other) = ed25519_key();
        let sig = sig_blob("ssh-ed25519", kp.sign(b"session data").as_ref());
        verify(UserKeyAlg::Ed25519, &blob, &sig, b"session data").unwrap();
        let bad = verify(UserKeyAlg::Ed25519, &blob, &sig, b"session dat4");
        assert_eq!(bad, Err(PubkeyError::BadSignature));
        let wrong_key = verify(UserKeyAlg::Ed25519, &other, &sig, b"session data");
        assert_eq!(wrong_key, Err(PubkeyError::BadSignature));
    }

    #[test]
    fn ecdsa_signature_verifies_and_tampering_fails() {
        let (kp, blob) = ecdsa_key();
        let (_, other) = ecdsa_key();
        // Many signatures, so r and s with and without a high bit (sign byte) both occur.
        for i in 0..16u8 {
            let data = [b'x', i];
            let sig = ecdsa_sign(&kp, &data);
            verify(UserKeyAlg::EcdsaP256, &blob, &sig, &data).unwrap();
            let bad = verify(UserKeyAlg::EcdsaP256, &blob, &sig, b"other");
            assert_eq!(bad, Err(PubkeyError::BadSignature));
            let wrong_key = verify(UserKeyAlg::EcdsaP256, &other, &sig, &data);
            assert_eq!(wrong_key, Err(PubkeyError::BadSignature));
        }
    }

    #[test]
    fn ecdsa_signature_integers_are_converted_to_fixed_width() {
        let mut inner = Vec::new();
        wire::put_mpint_unsigned(&mut inner, &[0xff; 32]); // encoded with a 0 sign byte
        wire::put_mpint_unsigned(&mut inner, &[0, 0, 5]); // encoded as one byte
        let fixed = ecdsa_signature_to_fixed(&inner).unwrap();
        assert_eq!(fixed[..32], [0xff; 32]);
        assert_eq!(fixed[32..63], [0; 31]);
        assert_eq!(fixed[63], 5);
        let mut too_long = Vec::new();
        wire::put_mpint_unsigned(&mut too_long, &[1; 33]);
        wire::put_mpint_unsigned(&mut too_long, &[1]);
        assert!(ecdsa_signature_to_fixed(&too_long).is_err());
        let mut negative = Vec::new();
        wire::put_string(&mut negative, &[0x80, 1]);
        wire::put_mpint_unsigned(&mut negative, &[1]);
        assert!(ecdsa_signature_to_fixed(&negative).is_err());
    }

    #[test]
    fn trailing_bytes_and_wrong_names_in_blobs_are_rejected() {
        let (kp, blob) = ed25519_key();
        let sig = sig_blob("ssh-ed25519", kp.sign(b"d").as_ref());
        let mut long_sig = sig.clone();
        long_sig.push(0);
        assert_eq!(
            verify(UserKeyAlg::Ed25519, &blob, &long_sig, b"d"),
            Err(PubkeyError::Malformed(WireError::TrailingBytes(1)))
        );
        let mut long_blob = blob.clone();
        long_blob.push(0);
        assert_eq!(
            verify(UserKeyAlg::Ed25519, &long_blob, &sig, b"d"),
            Err(PubkeyError::Malformed(WireError::TrailingBytes(1)))
        );
        let renamed = sig_blob("ecdsa-sha2-nistp256", kp.sign(b"d").as_ref());
        assert_eq!(
            verify(UserKeyAlg::Ed25519, &blob, &renamed, b"d"),
            Err(PubkeyError::AlgorithmMismatch)
        );
        assert_eq!(
            verify(UserKeyAlg::EcdsaP256, &blob, &renamed, b"d"),
            Err(PubkeyError::AlgorithmMismatch)
        );
        for cut in 0..sig.len() {
            assert!(verify(UserKeyAlg::Ed25519, &blob, &sig[..cut], b"d").is_err());
        }
        for cut in 0..blob.len() {
            assert!(verify(UserKeyAlg::Ed25519, &blob[..cut], &sig, b"d").is_err());
        }
    }

    #[test]
    fn algorithm_names_are_checked_against_the_key_blob() {
        let (_, ed) = ed25519_key();
        let (_, ec) = ecdsa_key();
        assert_eq!(
            check_alg_matches_blob("ssh-ed25519", &ed),
            Ok(UserKeyAlg::Ed25519)
        );
        assert_eq!(
            check_alg_matches_blob("ecdsa-sha2-nistp256", &ec),
            Ok(UserKeyAlg::EcdsaP256)
        );
        assert_eq!(
            check_alg_matches_blob("rsa-sha2-256", &ed),
            Err(PubkeyError::AlgorithmMismatch)
        );
        assert_eq!(
            check_alg_matches_blob("ssh-rsa", &ed),
            Err(PubkeyError::Sha1Refused)
        );
        assert_eq!(
            check_alg_matches_blob("ssh-dss", &ed),
            Err(PubkeyError::Unsupported("ssh-dss".into()))
        );
        assert_eq!(key_type_of_blob(&ec), Ok("ecdsa-sha2-nistp256"));
        for a in UserKeyAlg::ALL {
            assert_eq!(UserKeyAlg::from_name(a.name()), Some(a));
        }
    }

    #[test]
    fn authorized_key_lines_are_validated() {
        let (_, ed) = ed25519_key();
        let b64 = STANDARD.encode(&ed);
        let (t, blob, c) =
            parse_authorized_key_line(&format!("  ssh-ed25519   {b64}  my laptop key \n")).unwrap();
        assert_eq!(
            (t.as_str(), blob, c.as_str()),
            ("ssh-ed25519", ed.clone(), "my laptop key")
        );
        let (_, _, c) = parse_authorized_key_line(&format!("ssh-ed25519 {b64}")).unwrap();
        assert_eq!(c, "");
        assert_eq!(
            parse_authorized_key_line(&format!("ecdsa-sha2-nistp256 {b64}")),
            Err(PubkeyError::AlgorithmMismatch)
        );
        assert!(parse_authorized_key_line("ssh-ed25519 !!!notbase64").is_err());
        assert!(parse_authorized_key_line("ssh-ed25519").is_err());
        assert!(parse_authorized_key_line("# a comment").is_err());
        assert!(parse_authorized_key_line("").is_err());
        assert_eq!(
            parse_authorized_key_line(&format!("ssh-dss {b64}")),
            Err(PubkeyError::Unsupported("ssh-dss".into()))
        );
        let short = STANDARD.encode(&ed[..ed.len() - 1]);
        assert!(parse_authorized_key_line(&format!("ssh-ed25519 {short}")).is_err());
    }
}
