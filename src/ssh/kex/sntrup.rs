//! Streamlined NTRU Prime sntrup761 for `sntrup761x25519-sha512` (OpenSSH `PROTOCOL`,
//! draft-ietf-sshm-ntruprime-ssh).

use ring::rand::SecureRandom;
use zeroize::Zeroizing;

use super::KexError;

/// Encoded public key length.
pub const PUBLIC_KEY_LEN: usize = sntrup761::PUBLIC_KEY_SIZE;
/// Ciphertext length.
pub const CIPHERTEXT_LEN: usize = sntrup761::CIPHERTEXT_SIZE;
/// Shared secret length.
pub const SHARED_LEN: usize = sntrup761::SHARED_SECRET_SIZE;

const _: () = {
    assert!(PUBLIC_KEY_LEN == 1158 && CIPHERTEXT_LEN == 1039 && SHARED_LEN == 32);
};

/// Server side: encapsulate to the client's key. Returns (ciphertext, shared secret).
pub(super) fn encapsulate(
    public: &[u8],
    rng: &dyn SecureRandom,
) -> Result<(Vec<u8>, Zeroizing<[u8; SHARED_LEN]>), KexError> {
    let ek = sntrup761::EncapsulationKey::try_from(public).map_err(|_| {
        KexError::BadPublicKeyLength {
            expected: PUBLIC_KEY_LEN,
            got: public.len(),
        }
    })?;
    let mut seed = Zeroizing::new([0u8; 32]);
    rng.fill(seed.as_mut()).map_err(|_| KexError::Rng)?;
    let (ct, ss) = ek.encapsulate_deterministic(*seed);
    Ok((ct.as_ref().to_vec(), copy_shared(ss.as_ref())))
}

/// Client side: a fresh decapsulation key.
pub(super) struct Decapsulation {
    /// The private key (zeroized on drop by `sntrup761`).
    key: sntrup761::DecapsulationKey,
}

impl Decapsulation {
    /// A fresh key pair and its encoded public key.
    pub(super) fn generate(rng: &dyn SecureRandom) -> Result<(Self, Vec<u8>), KexError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill(seed.as_mut()).map_err(|_| KexError::Rng)?;
        let (pk, key) = sntrup761::generate_key_from_seed(*seed);
        Ok((Decapsulation { key }, pk.as_ref().to_vec()))
    }

    pub(super) fn decapsulate(&self, ct: &[u8]) -> Result<Zeroizing<[u8; SHARED_LEN]>, KexError> {
        let ct = sntrup761::Ciphertext::try_from(ct).map_err(|_| KexError::BadPublicKeyLength {
            expected: CIPHERTEXT_LEN,
            got: ct.len(),
        })?;
        let ss = self.key.decapsulate(&ct);
        Ok(copy_shared(ss.as_ref()))
    }
}

fn copy_shared(ss: &[u8]) -> Zeroizing<[u8; SHARED_LEN]> {
    let mut out = Zeroizing::new([0u8; SHARED_LEN]);
    if ss.len() == SHARED_LEN {
        out.copy_from_slice(ss);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::ssh::kex::tests::hex;

    #[test]
    fn decapsulation_matches_the_nist_known_answer() {
        let lines: Vec<&str> = include_str!("sntrup761_kat0.txt")
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect();
        let key = sntrup761::DecapsulationKey::try_from(&hex(lines[0])[..]).unwrap();
        let d = Decapsulation { key };
        let ss = d.decapsulate(&hex(lines[1])).unwrap();
        assert_eq!(ss[..], hex(lines[2])[..]);
    }
}
