//! # The SSH protocol, server side, without I/O
//!
//! Everything here is a pure function of the bytes and the time it is given (the quinn-proto
//! model): no sockets, no clocks, no files, no async runtime. The reactor drives a
//! [`server::ServerConnection`] per TCP connection; tests and fuzzers drive it in memory.
//!
//! - `wire`, `msg`: RFC 4251 encoding and the one message table (RFC 4250).
//! - `transport`: identification exchange and the binary packet protocol (RFC 4253 §4, §6).
//! - `cipher`, `kex`, `hostkey`, `pubkey`: the cryptography (chacha20-poly1305@openssh.com,
//!   AES-GCM; curve25519, ML-KEM-768 and sntrup761 hybrids; ed25519 host keys; user key
//!   signatures), all through audited libraries.
//! - `server`: the connection state machine (KEX, userauth, channels).
//! - `client`: a small client of our own, for in-memory tests, fuzzing and benches.

#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod cipher;
pub mod client;
pub mod error;
pub mod hostkey;
pub mod kex;
pub mod msg;
pub mod pubkey;
pub mod random;
pub mod server;
pub mod transport;
pub mod wire;

pub use error::Error;
