//! X25519 Diffie-Hellman for `curve25519-sha256` (RFC 8731) and as the classical half of the
//! hybrid methods. The shared value is returned raw (32 bytes); each method encodes it.

use ring::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey, X25519};
use ring::rand::SecureRandom;
use zeroize::Zeroizing;

use super::KexError;

/// Length of an X25519 public key and of the shared value.
pub const KEY_LEN: usize = 32;

/// A fresh ephemeral X25519 key pair, used once.
pub(super) struct Ephemeral {
    /// The private scalar; `ring` consumes it in `agree`, so it is used at most once.
    private: EphemeralPrivateKey,
    /// Our public value, sent to the peer.
    public: [u8; KEY_LEN],
}

impl Ephemeral {
    pub(super) fn generate(rng: &dyn SecureRandom) -> Result<Self, KexError> {
        let private = EphemeralPrivateKey::generate(&X25519, rng).map_err(|_| KexError::Rng)?;
        let pk = private
            .compute_public_key()
            .map_err(|_| KexError::Internal("x25519 public key"))?;
        let public = pk
            .as_ref()
            .try_into()
            .map_err(|_| KexError::Internal("x25519 public key length"))?;
        Ok(Ephemeral { private, public })
    }

    pub(super) fn public(&self) -> &[u8; KEY_LEN] {
        &self.public
    }

    /// X25519(our private, peer public). Rejects a wrong-length peer key and an all-zero
    /// result (a small-order peer point, RFC 7748 §6.1 / RFC 8731 §3).
    pub(super) fn agree(self, peer: &[u8]) -> Result<Zeroizing<[u8; KEY_LEN]>, KexError> {
        if peer.len() != KEY_LEN {
            return Err(KexError::BadPublicKeyLength {
                expected: KEY_LEN,
                got: peer.len(),
            });
        }
        let peer = UnparsedPublicKey::new(&X25519, peer);
        let shared = agreement::agree_ephemeral(self.private, &peer, |s| {
            let mut out = Zeroizing::new([0u8; KEY_LEN]);
            if out.len() == s.len() {
                out.copy_from_slice(s);
            }
            out
        })
        .map_err(|_| KexError::InvalidPublicKey)?;
        if shared.iter().all(|&b| b == 0) {
            return Err(KexError::InvalidPublicKey);
        }
        Ok(shared)
    }
}
