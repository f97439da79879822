//! Randomness for cookies and padding-free nonces: the operating system's generator via ring.

use ring::rand::{SecureRandom, SystemRandom};

/// Fill `buf` with random bytes. The OS generator does not fail on Linux once booted; if it
/// ever did, a zero cookie is harmless (the cookie only adds freshness to the hash).
pub fn fill(buf: &mut [u8]) {
    let _ = SystemRandom::new().fill(buf);
}
