//! ML-KEM-768 (FIPS 203) for `mlkem768x25519-sha256` (draft-ietf-sshm-mlkem-hybrid-kex).

use ml_kem::{Decapsulate, KeyExport};
use ring::rand::SecureRandom;
use zeroize::{Zeroize, Zeroizing};

use super::KexError;

/// Encoded encapsulation (public) key length.
pub const PUBLIC_KEY_LEN: usize = 1184;
/// Ciphertext length.
pub const CIPHERTEXT_LEN: usize = 1088;
/// Shared secret length.
pub const SHARED_LEN: usize = 32;

/// Server side: encapsulate to the client's key. Returns (ciphertext, shared secret).
/// The key is checked as FIPS 203 §7.2 requires (coefficients reduced mod q).
pub(super) fn encapsulate(
    public: &[u8],
    rng: &dyn SecureRandom,
) -> Result<(Vec<u8>, Zeroizing<[u8; SHARED_LEN]>), KexError> {
    let encoded =
        ml_kem::array::Array::try_from(public).map_err(|_| KexError::BadPublicKeyLength {
            expected: PUBLIC_KEY_LEN,
            got: public.len(),
        })?;
    let ek = ml_kem::ml_kem_768::EncapsulationKey::new(&encoded)
        .map_err(|_| KexError::InvalidPublicKey)?;
    let mut m = Zeroizing::new([0u8; 32]);
    rng.fill(m.as_mut()).map_err(|_| KexError::Rng)?;
    let (ct, mut ss) = ek.encapsulate_deterministic(&ml_kem::B32::from(*m));
    let shared = copy_shared(&ss);
    ss.as_mut_slice().zeroize();
    Ok((ct.to_vec(), shared))
}

/// Client side: a fresh decapsulation key.
pub(super) struct Decapsulation {
    /// The private key (zeroized on drop by `ml-kem`).
    key: ml_kem::ml_kem_768::DecapsulationKey,
}

impl Decapsulation {
    /// A fresh key pair and its encoded public key.
    pub(super) fn generate(rng: &dyn SecureRandom) -> Result<(Self, Vec<u8>), KexError> {
        let mut seed = Zeroizing::new([0u8; 64]);
        rng.fill(seed.as_mut()).map_err(|_| KexError::Rng)?;
        let key = ml_kem::ml_kem_768::DecapsulationKey::from_seed(ml_kem::Seed::from(*seed));
        let public = key.encapsulation_key().to_bytes().to_vec();
        Ok((Decapsulation { key }, public))
    }

    pub(super) fn decapsulate(&self, ct: &[u8]) -> Result<Zeroizing<[u8; SHARED_LEN]>, KexError> {
        let mut ss = self
            .key
            .decapsulate_slice(ct)
            .map_err(|_| KexError::BadPublicKeyLength {
                expected: CIPHERTEXT_LEN,
                got: ct.len(),
            })?;
        let shared = copy_shared(&ss);
        ss.as_mut_slice().zeroize();
        Ok(shared)
    }
}

fn copy_shared(ss: &[u8]) -> Zeroizing<[u8; SHARED_LEN]> {
    let mut out = Zeroizing::new([0u8; SHARED_LEN]);
    if ss.len() == SHARED_LEN {
        out.copy_from_slice(ss);
    }
    out
}

/// Checked at compile time so a crate upgrade that changes sizes fails loudly.
const _: () = {
    assert!(PUBLIC_KEY_LEN == 1184 && CIPHERTEXT_LEN == 1088);
};
