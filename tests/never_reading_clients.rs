//! Clients that send messages the server must answer and never read the answers cannot grow
//! the server's memory past the per-connection output cap, before or after authentication,
//! and a normal login keeps working meanwhile. Past `output_stall_seconds` they are closed.

mod common;

use common::{RawClient, Server, ALICE, ALICE_PW, IO_TIMEOUT};
use dungeongate::ssh::client::{ClientAuth, ClientConfig, ClientEvent};
use dungeongate::ssh::msg;
use std::io::Write;
use std::time::{Duration, Instant};

/// Hostile connections of each kind.
const PER_KIND: usize = 8;
/// Bytes of requests each one sends (about as many bytes of answers, were they all queued).
const FLOOD_BYTES: usize = 8 << 20;
/// The configured output cap.
const CAP: usize = 256 * 1024;

/// A connection brought to `ready`, then flooded with `payload` from a thread that writes
/// until the server stops reading (a blocked write for 5 s) and never reads a byte.
fn flood(port: u16, auth: ClientAuth, user: &str, payload: &[u8]) -> std::thread::JoinHandle<()> {
    let mut cfg = ClientConfig::new(user, auth);
    cfg.open_session = false;
    let mut c = RawClient::connect_small_receive_buffer(port, cfg);
    let ready = c.pump_until(IO_TIMEOUT, |cl| {
        cl.events
            .iter()
            .any(|e| matches!(e, ClientEvent::AuthSuccess | ClientEvent::AuthFailure(_)))
    });
    assert!(
        ready,
        "hostile client did not get through auth: {:?}",
        c.client.events
    );
    let mut bytes = Vec::with_capacity(FLOOD_BYTES + 4096);
    while bytes.len() < FLOOD_BYTES {
        c.client.send_raw_payload(payload);
        c.client.poll_transmit(&mut bytes);
    }
    let mut sock = c.into_socket();
    std::thread::spawn(move || {
        sock.set_write_timeout(Some(Duration::from_secs(5)))
            .expect("write timeout");
        let mut sent = 0;
        while sent < bytes.len() {
            match sock.write(&bytes[sent..]) {
                Ok(0) | Err(_) => break, // blocked for 5 s, or closed: either way, done
                Ok(n) => sent += n,
            }
        }
        // Keep the socket (unread) until the server closes it or the test ends.
        std::thread::sleep(Duration::from_secs(30));
        drop(sock);
    })
}

#[test]
fn never_reading_clients_are_bounded_and_do_not_stop_a_normal_login() {
    let mut server = Server::start(&[], |cfg| {
        cfg["limits"]["max_queued_output_bytes"] = serde_json::json!(CAP);
        cfg["limits"]["output_stall_seconds"] = serde_json::json!(4);
        // This test is about the output cap: the control-message rate limit, which would
        // stop these clients first, is lifted.
        cfg["limits"]["control_messages_per_second"] = serde_json::json!(1_000_000);
        cfg["limits"]["control_messages_burst"] = serde_json::json!(1_000_000);
    });
    let rss_before = server.rss_bytes();
    let mut threads = Vec::new();
    for _ in 0..PER_KIND {
        // After authentication: keepalives that want a reply (answered without limit).
        let mut keepalive = Vec::new();
        msg::encode_global_request(&mut keepalive, "keepalive@openssh.com", true);
        threads.push(flood(server.port, ClientAuth::None, "guest", &keepalive));
        // Before authentication: the userauth service requested again and again (answered
        // until the core closes the connection after 32).
        let mut req = Vec::new();
        msg::encode_service_request(&mut req, "ssh-userauth");
        threads.push(flood(server.port, ClientAuth::None, ALICE, &req));
    }
    // While they push, a normal login works.
    let started = Instant::now();
    let mut peak = rss_before;
    while started.elapsed() < Duration::from_secs(3) {
        // A normal login, during the flood (panics with the server's log if it fails).
        drop(RawClient::password_login(&server, ALICE, ALICE_PW));
        peak = peak.max(server.rss_bytes());
    }
    let connections = 2 * PER_KIND;
    // Each hostile connection may hold its output cap, a full input buffer (264 KiB) and a
    // packet in flight; allow 32 MiB for everything else (allocator slack, threads).
    let bound = connections * (CAP + 264 * 1024 + 64 * 1024) + (32 << 20);
    let growth = peak.saturating_sub(rss_before) as usize;
    eprintln!(
        "server RSS before {} KiB, peak during the flood {} KiB, growth {} KiB, bound {} KiB",
        rss_before / 1024,
        peak / 1024,
        growth / 1024,
        bound / 1024
    );
    assert!(
        growth < bound,
        "RSS grew by {growth} bytes with {connections} never-reading clients (bound {bound})"
    );
    // Past the stall deadline (4 s) and the flush deadline (4 s more) they are all gone.
    let gone = common::wait_until(Duration::from_secs(60), || {
        peak = peak.max(server.rss_bytes());
        (server.metric("ssh_connections_active") == 0.0).then_some(())
    });
    let growth = peak.saturating_sub(rss_before) as usize;
    eprintln!(
        "closed {:?} after the flood began; RSS peak {} KiB (growth {} KiB)",
        started.elapsed(),
        peak / 1024,
        growth / 1024
    );
    assert!(growth < bound, "RSS grew by {growth} bytes (bound {bound})");
    assert!(
        gone.is_some(),
        "never-reading clients still connected: {}\n{}",
        server.metric("ssh_connections_active"),
        server.log_tail()
    );
    server.assert_alive("after the flood");
    drop(threads);
    server.stop();
}
