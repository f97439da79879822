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

#[test]
fn password_checks_past_the_queue_are_answered_busy_at_once() {
    // One hashing thread, room for two checks in all, and each check slow enough that eight
    // sent at once cannot all fit.
    let server = Server::start(&[], |cfg| {
        cfg["password"] = serde_json::json!({
            "memory_kib": MEMORY_KIB, "iterations": 6, "parallelism": 1,
            "max_concurrent": 1, "max_queued": 2,
        });
    });
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let mut cfg = dungeongate::ssh::client::ClientConfig::new(
                ALICE,
                dungeongate::ssh::client::ClientAuth::Password(ALICE_PW.into()),
            );
            cfg.open_session = false;
            RawClient::connect(server.port, cfg)
        })
        .collect();
    // Drive them all at once: every password request is out before the first is checked.
    let handles: Vec<_> = clients
        .into_iter()
        .map(|mut c| {
            std::thread::spawn(move || {
                c.pump_until(common::IO_TIMEOUT, |cl| {
                    cl.events.iter().any(|e| {
                        matches!(
                            e,
                            dungeongate::ssh::client::ClientEvent::AuthSuccess
                                | dungeongate::ssh::client::ClientEvent::AuthFailure(_)
                        )
                    })
                })
            })
        })
        .collect();
    for h in handles {
        assert!(h.join().expect("client thread"), "a client got no answer");
    }
    let busy = server.metric("auth_failed_logins_total{reason=\"busy\"}");
    let ok = server.metric("auth_login_attempts_total{status=\"success\"}");
    assert!(busy >= 1.0, "no check was answered busy (successes: {ok})");
    assert!(ok >= 1.0, "queued checks must still be answered");
    server.stop();
}
