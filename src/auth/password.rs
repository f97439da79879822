//! Password hashing with argon2id (RFC 9106), stored as PHC strings.
//!
//! Verification uses the parameters recorded in the stored PHC string, so hashes made with
//! older (weaker or stronger) settings keep working after the configured parameters change.
//! An unknown user is verified against a precomputed dummy hash with the configured
//! parameters, so "no such user" and "wrong password" cost the same time.

use std::cell::RefCell;
use std::fmt;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use thiserror::Error;

/// Salt length of new hashes (bytes).
const SALT_LEN: usize = 16;

thread_local! {
    /// This thread's argon2 memory, kept between hashes: allocating (and, through malloc's
    /// per-thread arenas, keeping) ~19 MiB per hash made the server's memory grow with every
    /// password check. Each hashing thread owns one block set, grown to the largest cost seen.
    static ARGON2_MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Run argon2 with this thread's reusable memory.
fn argon2_into(argon2: &Argon2<'_>, password: &[u8], salt: &[u8], out: &mut [u8]) -> bool {
    ARGON2_MEMORY.with(|memory| {
        let mut memory = memory.borrow_mut();
        let need = argon2.params().block_count();
        if memory.len() < need {
            memory.resize(need, Block::default());
        }
        let blocks = memory.get_mut(..need).unwrap_or_default();
        argon2
            .hash_password_into_with_memory(password, salt, out, blocks)
            .is_ok()
    })
}

/// Equality of two byte strings in time that depends on their lengths only.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Highest argon2 memory cost (KiB) a stored hash may ask for before verification refuses to
/// run it: a corrupted or hostile record must not make the server allocate gigabytes.
const MAX_VERIFY_MEMORY_KIB: u32 = 1024 * 1024;
/// Highest argon2 iteration count a stored hash may ask for (same reason).
const MAX_VERIFY_ITERATIONS: u32 = 64;
/// Highest argon2 parallelism a stored hash may ask for (same reason).
const MAX_VERIFY_PARALLELISM: u32 = 64;

/// argon2id cost parameters (OWASP's recommended minimum is the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordParams {
    /// Memory cost in KiB (default 19456 = 19 MiB).
    pub memory_kib: u32,
    /// Number of passes over memory (default 2).
    pub iterations: u32,
    /// Lanes (default 1: the server parallelises across logins, not within one).
    pub parallelism: u32,
}

impl Default for PasswordParams {
    fn default() -> Self {
        PasswordParams {
            memory_kib: Params::DEFAULT_M_COST,
            iterations: Params::DEFAULT_T_COST,
            parallelism: Params::DEFAULT_P_COST,
        }
    }
}

/// Why hashing failed (bad parameters, RNG failure, over-long input). Never contains the
/// password.
#[derive(Debug, Error)]
pub enum PasswordError {
    /// The configured argon2 parameters are out of range.
    #[error(
        "invalid argon2 parameters (m={memory_kib} KiB, t={iterations}, p={parallelism}): {reason}"
    )]
    BadParams {
        /// Configured memory cost.
        memory_kib: u32,
        /// Configured iterations.
        iterations: u32,
        /// Configured parallelism.
        parallelism: u32,
        /// What argon2 objected to.
        reason: argon2::Error,
    },
    /// argon2 or the salt RNG failed while hashing.
    #[error("password hashing failed: {0}")]
    Hash(argon2::password_hash::Error),
}

/// Hashes and verifies passwords with fixed argon2id parameters. Cheap to share (`Send +
/// Sync`); each call allocates its own argon2 memory.
pub struct PasswordHasher {
    /// The configured argon2id context (no secret/pepper) used for new hashes.
    argon2: Argon2<'static>,
    /// The parameters `argon2` was built from, for reporting.
    params: PasswordParams,
    /// A PHC hash of a random throwaway password with the configured parameters: the target
    /// of verification for unknown users, so they cost as much as a wrong password.
    dummy_phc: String,
}

impl PasswordHasher {
    /// Builds a hasher; validates `params` and precomputes the dummy hash (one full argon2
    /// run).
    pub fn new(params: PasswordParams) -> Result<Self, PasswordError> {
        let argon_params = Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            None,
        )
        .map_err(|reason| PasswordError::BadParams {
            memory_kib: params.memory_kib,
            iterations: params.iterations,
            parallelism: params.parallelism,
            reason,
        })?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, argon_params);
        // The dummy's password does not matter: `verify(None, ..)` returns false whatever
        // the outcome; only the cost of the work has to match a real account's.
        let dummy_phc = Self::hash_with(&argon2, b"dungeongate-unknown-user")?;
        // Made once at start, usually on a thread that hashes nothing else: give it back.
        ARGON2_MEMORY.with(|m| *m.borrow_mut() = Vec::new());
        Ok(PasswordHasher {
            argon2,
            params,
            dummy_phc,
        })
    }

    /// The parameters new hashes are made with.
    pub fn params(&self) -> PasswordParams {
        self.params
    }

    /// Hashes `password` into an argon2id PHC string with a random 16-byte salt.
    pub fn hash(&self, password: &str) -> Result<String, PasswordError> {
        Self::hash_with(&self.argon2, password.as_bytes())
    }

    fn hash_with(argon2: &Argon2<'_>, password: &[u8]) -> Result<String, PasswordError> {
        let mut salt = [0u8; SALT_LEN];
        crate::ssh::random::fill(&mut salt);
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        if !argon2_into(argon2, password, &salt, &mut out) {
            return Err(PasswordError::Hash(argon2::password_hash::Error::Crypto));
        }
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(argon2.params()).map_err(PasswordError::Hash)?,
            salt: Some(Salt::new(&salt).map_err(|e| PasswordError::Hash(e.into()))?),
            hash: Some(Output::new(&out).map_err(|e| PasswordError::Hash(e.into()))?),
        };
        Ok(phc.to_string())
    }

    /// Whether `password` matches `phc`. `None` (unknown user) runs a full verification
    /// against the dummy hash and returns `false`. A malformed PHC string, or one asking for
    /// absurd costs, also runs the dummy verification and returns `false`.
    pub fn verify(&self, phc: Option<&str>, password: &str) -> bool {
        let Some(phc) = phc else {
            self.burn(password);
            return false;
        };
        let Ok(parsed) = PasswordHash::new(phc) else {
            self.burn(password);
            return false;
        };
        if !costs_are_sane(&parsed) {
            self.burn(password);
            return false;
        }
        Self::check(&parsed, password.as_bytes()).unwrap_or(false)
    }

    /// Re-hash with the algorithm, version, parameters and salt recorded in `parsed` and
    /// compare with its output in constant time; `None` when the record is unusable.
    fn check(parsed: &PasswordHash, password: &[u8]) -> Option<bool> {
        let algorithm = Algorithm::try_from(parsed.algorithm.as_str()).ok()?;
        let version = Version::try_from(parsed.version.unwrap_or(Version::V0x13.into())).ok()?;
        let params = Params::try_from(parsed).ok()?;
        let salt = parsed.salt.as_ref()?;
        let expected = parsed.hash.as_ref()?;
        let argon2 = Argon2::new(algorithm, version, params);
        let mut out = [0u8; Output::MAX_LENGTH];
        let out = out.get_mut(..expected.len())?;
        if !argon2_into(&argon2, password, salt, out) {
            return None;
        }
        Some(constant_time_eq(out, expected.as_bytes()))
    }

    /// Spends one verification's worth of work and discards the result.
    fn burn(&self, password: &str) {
        if let Ok(parsed) = PasswordHash::new(&self.dummy_phc) {
            let _ = Self::check(&parsed, password.as_bytes());
        }
    }
}

impl fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

/// Whether the costs a stored PHC string asks for are within what we are willing to run.
fn costs_are_sane(parsed: &PasswordHash) -> bool {
    match Params::try_from(parsed) {
        Ok(p) => {
            p.m_cost() <= MAX_VERIFY_MEMORY_KIB
                && p.t_cost() <= MAX_VERIFY_ITERATIONS
                && p.p_cost() <= MAX_VERIFY_PARALLELISM
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small parameters so tests stay fast; production defaults are tested once below.
    pub(crate) const FAST: PasswordParams = PasswordParams {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    #[test]
    fn hashes_from_the_argon2_crate_itself_still_verify() {
        use argon2::password_hash::PasswordHasher as _;
        let h = PasswordHasher::new(FAST).unwrap();
        let params = Params::new(FAST.memory_kib, FAST.iterations, FAST.parallelism, None).unwrap();
        let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"hunter22")
            .unwrap()
            .to_string();
        assert!(h.verify(Some(&theirs), "hunter22"));
        assert!(!h.verify(Some(&theirs), "hunter23"));
    }

    #[test]
    fn one_thread_reuses_one_argon2_memory_block() {
        std::thread::spawn(|| {
            let h = PasswordHasher::new(PasswordParams::default()).unwrap();
            let phc = h.hash("hunter22").unwrap();
            let blocks = || ARGON2_MEMORY.with(|m| (m.borrow().len(), m.borrow().as_ptr()));
            let first = blocks();
            assert_eq!(first.0, PasswordParams::default().memory_kib as usize);
            for _ in 0..3 {
                assert!(h.verify(Some(&phc), "hunter22"));
                assert_eq!(blocks(), first, "the memory was allocated again");
            }
        })
        .join()
        .unwrap();
    }

    #[test]
    fn right_password_verifies() {
        let h = PasswordHasher::new(FAST).unwrap();
        let phc = h.hash("hunter22").unwrap();
        assert!(h.verify(Some(&phc), "hunter22"));
    }

    #[test]
    fn wrong_password_is_rejected() {
        let h = PasswordHasher::new(FAST).unwrap();
        let phc = h.hash("hunter22").unwrap();
        assert!(!h.verify(Some(&phc), "hunter23"));
        assert!(!h.verify(Some(&phc), ""));
    }

    #[test]
    fn unknown_user_is_rejected() {
        let h = PasswordHasher::new(FAST).unwrap();
        assert!(!h.verify(None, "hunter22"));
        assert!(!h.verify(None, ""));
    }

    #[test]
    fn garbage_phc_is_rejected() {
        let h = PasswordHasher::new(FAST).unwrap();
        assert!(!h.verify(Some("not a phc string"), "hunter22"));
        assert!(!h.verify(Some(""), "hunter22"));
    }

    #[test]
    fn phc_with_absurd_memory_cost_is_rejected_without_running_it() {
        let h = PasswordHasher::new(FAST).unwrap();
        let phc = h.hash("hunter22").unwrap();
        let hostile = phc.replace("m=64,", "m=4000000000,");
        assert_ne!(hostile, phc);
        assert!(!h.verify(Some(&hostile), "hunter22"));
    }

    #[test]
    fn phc_records_argon2id_and_the_configured_params() {
        let params = PasswordParams {
            memory_kib: 96,
            iterations: 3,
            parallelism: 2,
        };
        let h = PasswordHasher::new(params).unwrap();
        let phc = h.hash("hunter22").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=96,t=3,p=2$"), "{phc}");
        let parsed = PasswordHash::new(&phc).unwrap();
        assert_eq!(parsed.salt.map(|s| s.len()), Some(16));
    }

    #[test]
    fn same_password_hashes_differently_each_time() {
        let h = PasswordHasher::new(FAST).unwrap();
        assert_ne!(h.hash("hunter22").unwrap(), h.hash("hunter22").unwrap());
    }

    #[test]
    fn hash_made_with_weaker_params_still_verifies_after_params_change() {
        let old = PasswordHasher::new(FAST).unwrap();
        let phc = old.hash("hunter22").unwrap();
        let new = PasswordHasher::new(PasswordParams {
            memory_kib: 256,
            iterations: 2,
            parallelism: 1,
        })
        .unwrap();
        assert!(new.verify(Some(&phc), "hunter22"));
        assert!(!new.verify(Some(&phc), "hunter21"));
    }

    #[test]
    fn invalid_params_are_refused() {
        let bad = PasswordParams {
            memory_kib: 64,
            iterations: 0,
            parallelism: 1,
        };
        assert!(matches!(
            PasswordHasher::new(bad),
            Err(PasswordError::BadParams { .. })
        ));
    }

    #[test]
    fn default_params_hash_and_verify() {
        let h = PasswordHasher::new(PasswordParams::default()).unwrap();
        let phc = h.hash("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(h.verify(Some(&phc), "correct horse"));
        assert!(!h.verify(Some(&phc), "correct horsf"));
    }

    #[test]
    fn hasher_can_be_shared_across_threads() {
        fn check<T: Send + Sync>() {}
        check::<PasswordHasher>();
    }

    #[test]
    fn debug_output_does_not_show_the_dummy_hash() {
        let h = PasswordHasher::new(FAST).unwrap();
        assert!(!format!("{h:?}").contains("argon2id"));
    }
}
