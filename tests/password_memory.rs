//! Password checks at the production argon2 cost do not grow the server's memory: each
//! hashing thread reuses one argon2 memory block (an earlier build grew by ~19 MiB per hash,
//! to ~544 MiB after 28 checks).

mod common;

use common::{RawClient, Server, ALICE, ALICE_PW};

/// argon2id at OWASP's minimum, the default config.
const MEMORY_KIB: u64 = 19_456;
/// Hashing threads.
const MAX_CONCURRENT: u64 = 2;

#[test]
fn twenty_eight_password_logins_keep_the_server_s_memory_flat() {
    let server = Server::start(&[], |cfg| {
        cfg["password"] = serde_json::json!({
            "memory_kib": MEMORY_KIB, "iterations": 2, "parallelism": 1,
            "max_concurrent": MAX_CONCURRENT,
        });
    });
    let login = || drop(RawClient::password_login(&server, ALICE, ALICE_PW));
    // The first logins bring the hashing threads to their steady state.
    for _ in 0..MAX_CONCURRENT {
        login();
    }
    let before = server.rss_bytes();
    for _ in 0..28 {
        login();
    }
    let after = server.rss_bytes();
    let growth = after.saturating_sub(before);
    eprintln!(
        "server RSS {} KiB before 28 password logins, {} KiB after (growth {} KiB)",
        before / 1024,
        after / 1024,
        growth / 1024
    );
    // Every hashing thread may hold one block; nothing may grow per hash.
    let bound = MAX_CONCURRENT * MEMORY_KIB * 1024 + (8 << 20);
    assert!(growth < bound, "RSS grew by {growth} bytes (bound {bound})");
    server.stop();
}
