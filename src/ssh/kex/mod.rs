//! Key exchange methods, exchange hash and key derivation (RFC 4253 §7.2 and §8).
//!
//! Methods, in the order we advertise them:
//! * `mlkem768x25519-sha256` — ML-KEM-768 + X25519 hybrid (draft-ietf-sshm-mlkem-hybrid-kex);
//! * `sntrup761x25519-sha512` and its `@openssh.com` alias — sntrup761 + X25519 hybrid
//!   (OpenSSH `PROTOCOL`, draft-ietf-sshm-ntruprime-ssh);
//! * `curve25519-sha256` and its `@libssh.org` alias — X25519 (RFC 8731).
//!
//! For the hybrids the client sends `C_PK = kem_public || x25519_public` and the server replies
//! `S_REPLY = kem_ciphertext || x25519_public`; the shared secret is
//! `K = string(HASH(kem_secret || x25519_secret))`. For curve25519 `K = mpint(X25519(..))`.
//! [`SharedSecret`] holds `K` already encoded that way, so the exchange hash and the key
//! derivation just append its bytes.

pub mod curve25519;
pub mod mlkem;
pub mod sntrup;

use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::ssh::wire;

/// A key exchange could not complete.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum KexError {
    /// The peer broke the protocol: its public value / ciphertext has the wrong length.
    #[error("peer's key exchange value is {got} bytes, expected {expected}")]
    BadPublicKeyLength { expected: usize, got: usize },
    /// The peer broke the protocol: its value is not a valid key (e.g. a small-order X25519
    /// point giving an all-zero secret, or an ML-KEM key failing the FIPS 203 modulus check).
    #[error("peer's key exchange value is invalid")]
    InvalidPublicKey,
    /// The system random number generator failed.
    #[error("random number generator failed")]
    Rng,
    /// Our bug.
    #[error("internal key exchange error: {0}")]
    Internal(&'static str),
}

/// A negotiated key exchange method (RFC 4253 §7.1 `kex_algorithms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KexAlg {
    MlKem768X25519Sha256,
    Sntrup761X25519Sha512,
    Sntrup761X25519Sha512OpenSsh,
    Curve25519Sha256,
    Curve25519Sha256LibSsh,
}

/// The hash a method uses for the exchange hash and key derivation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlg {
    Sha256,
    Sha512,
}

/// The shared secret `K`, encoded as it enters the exchange hash and key derivation
/// (`mpint` for curve25519, `string` for the hybrids). Zeroized on drop, never printed.
pub struct SharedSecret(Zeroizing<Vec<u8>>);

/// What the server sends back and keeps after its half of the exchange.
#[derive(Debug)]
pub struct KexOutput {
    /// `Q_S` / `S_REPLY`: goes into the KEX reply message and the exchange hash.
    pub server_public: Vec<u8>,
    /// `K`, for the exchange hash and key derivation.
    pub shared_secret: SharedSecret,
}

/// The client's half of an exchange in progress (for tests, fuzzers and the load client).
pub struct ClientKex {
    /// Which method, to know how to split the reply and hash the secrets.
    alg: KexAlg,
    /// Our ephemeral X25519 key, used by every method.
    x25519: curve25519::Ephemeral,
    /// The post-quantum private key, for hybrid methods.
    kem: ClientKem,
}

/// Everything the exchange hash covers (RFC 4253 §8, RFC 5656 §4 layout).
#[derive(Debug, Clone, Copy)]
pub struct ExchangeHashInput<'a> {
    /// Client identification string, without CR LF.
    pub v_c: &'a [u8],
    /// Server identification string, without CR LF.
    pub v_s: &'a [u8],
    /// Client's KEXINIT payload, including the message number.
    pub i_c: &'a [u8],
    /// Server's KEXINIT payload, including the message number.
    pub i_s: &'a [u8],
    /// Server host key blob.
    pub k_s: &'a [u8],
    /// Client's ephemeral public value.
    pub q_c: &'a [u8],
    /// Server's ephemeral public value (or KEM ciphertext || X25519 public).
    pub q_s: &'a [u8],
    /// The shared secret.
    pub k: &'a SharedSecret,
}

impl KexAlg {
    /// Every supported method, in server preference order (post-quantum first).
    pub const ALL: [KexAlg; 5] = [
        KexAlg::MlKem768X25519Sha256,
        KexAlg::Sntrup761X25519Sha512,
        KexAlg::Sntrup761X25519Sha512OpenSsh,
        KexAlg::Curve25519Sha256,
        KexAlg::Curve25519Sha256LibSsh,
    ];

    /// The method name used in KEXINIT.
    pub fn name(self) -> &'static str {
        match self {
            KexAlg::MlKem768X25519Sha256 => "mlkem768x25519-sha256",
            KexAlg::Sntrup761X25519Sha512 => "sntrup761x25519-sha512",
            KexAlg::Sntrup761X25519Sha512OpenSsh => "sntrup761x25519-sha512@openssh.com",
            KexAlg::Curve25519Sha256 => "curve25519-sha256",
            KexAlg::Curve25519Sha256LibSsh => "curve25519-sha256@libssh.org",
        }
    }

    /// Look up a name from a KEXINIT name-list.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// Whether the method resists a quantum adversary recording the session today.
    pub fn is_post_quantum(self) -> bool {
        !matches!(
            self,
            KexAlg::Curve25519Sha256 | KexAlg::Curve25519Sha256LibSsh
        )
    }

    /// The hash for the exchange hash and key derivation.
    pub fn hash(self) -> HashAlg {
        match self {
            KexAlg::Sntrup761X25519Sha512 | KexAlg::Sntrup761X25519Sha512OpenSsh => HashAlg::Sha512,
            _ => HashAlg::Sha256,
        }
    }

    /// Length of the exchange hash `H` (and so of the session id).
    pub fn hash_len(self) -> usize {
        self.hash().output_len()
    }

    /// Exact length of the client's `Q_C`.
    pub fn client_public_len(self) -> usize {
        self.kem_public_len() + curve25519::KEY_LEN
    }

    /// Exact length of the server's `Q_S`.
    pub fn server_public_len(self) -> usize {
        self.kem_ciphertext_len() + curve25519::KEY_LEN
    }

    fn kem_public_len(self) -> usize {
        match self.kem() {
            Kem::None => 0,
            Kem::MlKem768 => mlkem::PUBLIC_KEY_LEN,
            Kem::Sntrup761 => sntrup::PUBLIC_KEY_LEN,
        }
    }

    fn kem_ciphertext_len(self) -> usize {
        match self.kem() {
            Kem::None => 0,
            Kem::MlKem768 => mlkem::CIPHERTEXT_LEN,
            Kem::Sntrup761 => sntrup::CIPHERTEXT_LEN,
        }
    }

    fn kem(self) -> Kem {
        match self {
            KexAlg::MlKem768X25519Sha256 => Kem::MlKem768,
            KexAlg::Sntrup761X25519Sha512 | KexAlg::Sntrup761X25519Sha512OpenSsh => Kem::Sntrup761,
            KexAlg::Curve25519Sha256 | KexAlg::Curve25519Sha256LibSsh => Kem::None,
        }
    }
}

impl HashAlg {
    /// Output length in bytes.
    pub fn output_len(self) -> usize {
        self.ring().output_len()
    }

    fn ring(self) -> &'static digest::Algorithm {
        match self {
            HashAlg::Sha256 => &digest::SHA256,
            HashAlg::Sha512 => &digest::SHA512,
        }
    }
}

impl SharedSecret {
    /// `K` as encoded for hashing (mpint or string, including the length prefix).
    pub fn as_encoded(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedSecret(<redacted>)")
    }
}

/// The server's half: given the client's `Q_C`, produce `Q_S` and `K`.
pub fn server_respond(alg: KexAlg, client_public: &[u8]) -> Result<KexOutput, KexError> {
    server_respond_with_rng(alg, client_public, &SystemRandom::new())
}

/// [`server_respond`] with an explicit random source (known-answer tests).
pub fn server_respond_with_rng(
    alg: KexAlg,
    client_public: &[u8],
    rng: &dyn SecureRandom,
) -> Result<KexOutput, KexError> {
    if client_public.len() != alg.client_public_len() {
        return Err(KexError::BadPublicKeyLength {
            expected: alg.client_public_len(),
            got: client_public.len(),
        });
    }
    let (kem_public, x_public) = client_public.split_at(alg.kem_public_len());
    let x = curve25519::Ephemeral::generate(rng)?;
    let mut server_public = Vec::with_capacity(alg.server_public_len());
    let kem_secret = match alg.kem() {
        Kem::None => None,
        Kem::MlKem768 => {
            let (ct, ss) = mlkem::encapsulate(kem_public, rng)?;
            server_public.extend_from_slice(&ct);
            Some(ss)
        }
        Kem::Sntrup761 => {
            let (ct, ss) = sntrup::encapsulate(kem_public, rng)?;
            server_public.extend_from_slice(&ct);
            Some(ss)
        }
    };
    server_public.extend_from_slice(x.public());
    let x_secret = x.agree(x_public)?;
    let shared_secret = encode_secret(alg, kem_secret.as_deref().map(|s| &s[..]), &x_secret[..]);
    Ok(KexOutput {
        server_public,
        shared_secret,
    })
}

impl ClientKex {
    /// Start a client exchange: returns the state and `Q_C` to send.
    pub fn new(alg: KexAlg) -> Result<(ClientKex, Vec<u8>), KexError> {
        Self::new_with_rng(alg, &SystemRandom::new())
    }

    /// [`ClientKex::new`] with an explicit random source.
    pub fn new_with_rng(
        alg: KexAlg,
        rng: &dyn SecureRandom,
    ) -> Result<(ClientKex, Vec<u8>), KexError> {
        let mut public = Vec::with_capacity(alg.client_public_len());
        let kem = match alg.kem() {
            Kem::None => ClientKem::None,
            Kem::MlKem768 => {
                let (d, pk) = mlkem::Decapsulation::generate(rng)?;
                public.extend_from_slice(&pk);
                ClientKem::MlKem768(Box::new(d))
            }
            Kem::Sntrup761 => {
                let (d, pk) = sntrup::Decapsulation::generate(rng)?;
                public.extend_from_slice(&pk);
                ClientKem::Sntrup761(Box::new(d))
            }
        };
        let x25519 = curve25519::Ephemeral::generate(rng)?;
        public.extend_from_slice(x25519.public());
        Ok((ClientKex { alg, x25519, kem }, public))
    }

    /// The negotiated method.
    pub fn alg(&self) -> KexAlg {
        self.alg
    }

    /// Finish with the server's `Q_S`, producing `K`.
    pub fn finish(self, server_public: &[u8]) -> Result<SharedSecret, KexError> {
        let alg = self.alg;
        if server_public.len() != alg.server_public_len() {
            return Err(KexError::BadPublicKeyLength {
                expected: alg.server_public_len(),
                got: server_public.len(),
            });
        }
        let (ct, x_public) = server_public.split_at(alg.kem_ciphertext_len());
        let kem_secret = match &self.kem {
            ClientKem::None => None,
            ClientKem::MlKem768(d) => Some(d.decapsulate(ct)?),
            ClientKem::Sntrup761(d) => Some(d.decapsulate(ct)?),
        };
        let x_secret = self.x25519.agree(x_public)?;
        Ok(encode_secret(
            alg,
            kem_secret.as_deref().map(|s| &s[..]),
            &x_secret[..],
        ))
    }
}

impl std::fmt::Debug for ClientKex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientKex")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// The exchange hash `H = HASH(string V_C || string V_S || string I_C || string I_S ||
/// string K_S || string Q_C || string Q_S || K)`.
pub fn exchange_hash(alg: KexAlg, input: &ExchangeHashInput<'_>) -> Vec<u8> {
    let mut ctx = digest::Context::new(alg.hash().ring());
    for field in [
        input.v_c, input.v_s, input.i_c, input.i_s, input.k_s, input.q_c, input.q_s,
    ] {
        ctx.update(&u32::try_from(field.len()).unwrap_or(u32::MAX).to_be_bytes());
        ctx.update(field);
    }
    ctx.update(input.k.as_encoded());
    ctx.finish().as_ref().to_vec()
}

/// Key derivation (RFC 4253 §7.2): `K1 = HASH(K || H || letter || session_id)`,
/// `Kn = HASH(K || H || K1 || .. || Kn-1)`, concatenated and cut to `len` bytes.
/// `letter` is `b'A'`..=`b'F'`.
pub fn derive_key(
    alg: KexAlg,
    k: &SharedSecret,
    h: &[u8],
    letter: u8,
    session_id: &[u8],
    len: usize,
) -> Zeroizing<Vec<u8>> {
    let hash = alg.hash().ring();
    let block = hash.output_len();
    // Reserve the whole output up front so no reallocation leaves key bytes behind.
    let mut out = Zeroizing::new(Vec::with_capacity(len.div_ceil(block).max(1) * block));
    let mut ctx = digest::Context::new(hash);
    ctx.update(k.as_encoded());
    ctx.update(h);
    ctx.update(&[letter]);
    ctx.update(session_id);
    out.extend_from_slice(ctx.finish().as_ref());
    while out.len() < len {
        let mut ctx = digest::Context::new(hash);
        ctx.update(k.as_encoded());
        ctx.update(h);
        ctx.update(&out);
        out.extend_from_slice(ctx.finish().as_ref());
    }
    out.truncate(len);
    out
}

/// Which KEM a method combines with X25519.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kem {
    None,
    MlKem768,
    Sntrup761,
}

/// The client's KEM private key, if any.
enum ClientKem {
    None,
    MlKem768(Box<mlkem::Decapsulation>),
    Sntrup761(Box<sntrup::Decapsulation>),
}

/// Encode `K`: `mpint(x25519)` for curve25519 (RFC 8731 §3), otherwise
/// `string(HASH(kem_secret || x25519))`.
fn encode_secret(alg: KexAlg, kem_secret: Option<&[u8]>, x_secret: &[u8]) -> SharedSecret {
    match kem_secret {
        None => {
            // 4-byte length + optional sign byte + 32 bytes: reserve so nothing reallocates.
            let mut out = Zeroizing::new(Vec::with_capacity(4 + 1 + x_secret.len()));
            wire::put_mpint_unsigned(&mut out, x_secret);
            SharedSecret(out)
        }
        Some(kem) => {
            let mut ctx = digest::Context::new(alg.hash().ring());
            ctx.update(kem);
            ctx.update(x_secret);
            let d = ctx.finish();
            let mut out = Zeroizing::new(Vec::with_capacity(4 + d.as_ref().len()));
            wire::put_string(&mut out, d.as_ref());
            SharedSecret(out)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    /// Decode a hex string (test vectors; also used by the submodules' tests).
    pub(super) fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn client_and_server_agree_for_every_method() {
        for alg in KexAlg::ALL {
            let (client, q_c) = ClientKex::new(alg).unwrap();
            assert_eq!(q_c.len(), alg.client_public_len(), "{alg:?}");
            let out = server_respond(alg, &q_c).unwrap();
            assert_eq!(out.server_public.len(), alg.server_public_len(), "{alg:?}");
            let k = client.finish(&out.server_public).unwrap();
            assert_eq!(k.as_encoded(), out.shared_secret.as_encoded(), "{alg:?}");
        }
    }

    #[test]
    fn hybrid_secrets_are_strings_of_the_method_hash() {
        for alg in KexAlg::ALL.into_iter().filter(|a| a.is_post_quantum()) {
            let (_, q_c) = ClientKex::new(alg).unwrap();
            let out = server_respond(alg, &q_c).unwrap();
            let k = out.shared_secret.as_encoded();
            let mut r = wire::Reader::new(k);
            assert_eq!(r.string().unwrap().len(), alg.hash_len(), "{alg:?}");
            r.finish().unwrap();
        }
    }

    #[test]
    fn a_tampered_kem_ciphertext_gives_a_different_secret() {
        for alg in [KexAlg::MlKem768X25519Sha256, KexAlg::Sntrup761X25519Sha512] {
            let (client, q_c) = ClientKex::new(alg).unwrap();
            let mut out = server_respond(alg, &q_c).unwrap();
            out.server_public[10] ^= 1;
            let k = client.finish(&out.server_public).unwrap();
            assert_ne!(k.as_encoded(), out.shared_secret.as_encoded(), "{alg:?}");
        }
    }

    #[test]
    fn wrong_length_public_values_are_rejected_by_both_sides() {
        for alg in KexAlg::ALL {
            let (_, q_c) = ClientKex::new(alg).unwrap();
            for bad in [&q_c[..q_c.len() - 1], &[q_c.as_slice(), &[0]].concat()[..]] {
                assert!(matches!(
                    server_respond(alg, bad),
                    Err(KexError::BadPublicKeyLength { .. })
                ));
            }
            let out = server_respond(alg, &q_c).unwrap();
            let (client, _) = ClientKex::new(alg).unwrap();
            let short = &out.server_public[1..];
            assert!(matches!(
                client.finish(short),
                Err(KexError::BadPublicKeyLength { .. })
            ));
        }
    }

    #[test]
    fn an_all_zero_x25519_result_is_rejected() {
        // u = 0 and u = 1 are small-order points: X25519 with them is all zeros.
        for alg in KexAlg::ALL {
            let (_, mut q_c) = ClientKex::new(alg).unwrap();
            let n = q_c.len();
            for u in [0u8, 1] {
                q_c[n - 32..].fill(0);
                q_c[n - 32] = u;
                assert_eq!(
                    server_respond(alg, &q_c).err(),
                    Some(KexError::InvalidPublicKey),
                    "{alg:?} u={u}"
                );
            }
            let (client, q_c) = ClientKex::new(alg).unwrap();
            let mut s = server_respond(alg, &q_c).unwrap().server_public;
            let n = s.len();
            s[n - 32..].fill(0);
            assert_eq!(client.finish(&s).err(), Some(KexError::InvalidPublicKey));
        }
    }

    #[test]
    fn an_mlkem_public_key_failing_the_modulus_check_is_rejected() {
        let alg = KexAlg::MlKem768X25519Sha256;
        let (_, mut q_c) = ClientKex::new(alg).unwrap();
        // The first 12-bit coefficient set to 4095 >= q = 3329.
        q_c[0] = 0xff;
        q_c[1] |= 0x0f;
        assert_eq!(
            server_respond(alg, &q_c).err(),
            Some(KexError::InvalidPublicKey)
        );
    }

    #[test]
    #[allow(deprecated)]
    fn curve25519_matches_rfc7748_and_encodes_k_as_mpint() {
        // RFC 7748 §6.1: Alice's private key, Bob's public key, and their shared secret.
        let alice_sk = hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
        let alice_pk = hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
        let bob_pk = hex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
        let shared = hex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
        let rng = ring::test::rand::FixedSliceRandom { bytes: &alice_sk };
        let out = server_respond_with_rng(KexAlg::Curve25519Sha256, &bob_pk, &rng).unwrap();
        assert_eq!(out.server_public, alice_pk);
        // 0x4a has its top bit clear: mpint is the 32 bytes with a 4-byte length.
        let mut expected = vec![0, 0, 0, 32];
        expected.extend_from_slice(&shared);
        assert_eq!(out.shared_secret.as_encoded(), expected);
    }

    #[test]
    fn exchange_hash_covers_every_field_in_rfc4253_order() {
        let alg = KexAlg::Curve25519Sha256;
        let k = encode_secret(alg, None, &[0x80; 32]);
        let fields: [&[u8]; 7] = [
            b"SSH-2.0-c",
            b"SSH-2.0-s",
            b"\x14ic",
            b"\x14is",
            b"ks",
            b"qc",
            b"qs",
        ];
        let input = |f: [&'static [u8]; 7]| {
            (
                f,
                ExchangeHashInput {
                    v_c: f[0],
                    v_s: f[1],
                    i_c: f[2],
                    i_s: f[3],
                    k_s: f[4],
                    q_c: f[5],
                    q_s: f[6],
                    k: &k,
                },
            )
        };
        let (_, inp) = input(fields);
        let h = exchange_hash(alg, &inp);
        let mut buf = Vec::new();
        for f in fields {
            wire::put_string(&mut buf, f);
        }
        wire::put_mpint_unsigned(&mut buf, &[0x80; 32]);
        assert_eq!(h, digest::digest(&digest::SHA256, &buf).as_ref());
        // Swapping any two adjacent fields changes H.
        for i in 0..6 {
            let mut f = fields;
            f.swap(i, i + 1);
            assert_ne!(exchange_hash(alg, &input(f).1), h, "swap {i}");
        }
        assert_eq!(exchange_hash(KexAlg::Sntrup761X25519Sha512, &inp).len(), 64);
    }

    #[test]
    fn derive_key_extends_past_one_hash_output() {
        let alg = KexAlg::Curve25519Sha256;
        let k = encode_secret(alg, None, &[7; 32]);
        let h = [1u8; 32];
        let sid = [2u8; 32];
        let key = derive_key(alg, &k, &h, b'C', &sid, 64);
        assert_eq!(key.len(), 64);
        let k1 = digest::digest(&digest::SHA256, &[k.as_encoded(), &h, b"C", &sid].concat());
        let k2 = digest::digest(&digest::SHA256, &[k.as_encoded(), &h, k1.as_ref()].concat());
        assert_eq!(&key[..32], k1.as_ref());
        assert_eq!(&key[32..], k2.as_ref());
        let k3 = digest::digest(
            &digest::SHA256,
            &[k.as_encoded(), &h, k1.as_ref(), k2.as_ref()].concat(),
        );
        let long = derive_key(alg, &k, &h, b'C', &sid, 80);
        assert_eq!(&long[..64], &key[..]);
        assert_eq!(&long[64..], &k3.as_ref()[..16]);
        assert_eq!(&derive_key(alg, &k, &h, b'C', &sid, 12)[..], &key[..12]);
        assert_ne!(
            derive_key(alg, &k, &h, b'D', &sid, 12),
            derive_key(alg, &k, &h, b'C', &sid, 12)
        );
    }

    #[test]
    fn names_round_trip_and_post_quantum_methods_come_first() {
        for alg in KexAlg::ALL {
            assert_eq!(KexAlg::from_name(alg.name()), Some(alg));
        }
        assert_eq!(KexAlg::from_name("diffie-hellman-group14-sha256"), None);
        let pq: Vec<bool> = KexAlg::ALL.iter().map(|a| a.is_post_quantum()).collect();
        assert_eq!(pq, [true, true, true, false, false]);
        assert_eq!(KexAlg::Sntrup761X25519Sha512.hash_len(), 64);
        assert_eq!(KexAlg::MlKem768X25519Sha256.hash_len(), 32);
    }

    #[test]
    fn shared_secret_debug_is_redacted() {
        let k = encode_secret(KexAlg::Curve25519Sha256, None, &[0x42; 32]);
        let d = format!("{k:?}");
        assert!(!d.contains("66") && d.contains("redacted"), "{d}");
    }
}
