//! What the log says about who a connection is: only a completed login names a user, and
//! nothing a client chooses can act on the terminal of whoever reads the log.

mod common;

use base64::Engine as _;
use common::{RawClient, Server, ALICE, IO_TIMEOUT};
use dungeongate::ssh::client::{Client, ClientAuth, ClientConfig, ClientEvent};

const SEED: [u8; 32] = [7; 32];

/// The log lines of the connection whose log context names `peer_port`.
fn lines_of(server: &Server, peer_port: u16) -> Vec<String> {
    let needle = format!("127.0.0.1:{peer_port}");
    server
        .log_text()
        .lines()
        .filter(|l| l.contains(&needle))
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_key_query_answered_yes_does_not_make_the_connection_that_user_s() {
    let server = Server::start(&[], |cfg| {
        cfg["log"] = serde_json::json!({"format": "text", "level": "debug"});
    });
    let blob = Client::key_blob(&SEED);
    let line = format!(
        "ssh-ed25519 {} probe-key\n",
        base64::engine::general_purpose::STANDARD.encode(&blob)
    );
    let key_file = server.dir().join("probe.pub");
    std::fs::write(&key_file, line).expect("write key");
    server.cli(
        &[
            "user",
            "key",
            "add",
            ALICE,
            key_file.to_str().expect("utf-8"),
        ],
        "",
    );

    // Someone holding only alice's public key asks "may I use it?" and goes away.
    let mut cfg = ClientConfig::new(ALICE, ClientAuth::None);
    cfg.open_session = false;
    let mut c = RawClient::connect(server.port, cfg);
    let port = c.local_port();
    assert!(c.pump_until(IO_TIMEOUT, |cl| cl
        .events
        .iter()
        .any(|e| matches!(e, ClientEvent::AuthFailure(_)))));
    c.send_raw(&Client::key_query(ALICE, &SEED));
    assert!(c.pump_until(IO_TIMEOUT, |cl| cl.events.contains(&ClientEvent::PkOk)));
    drop(c);
    let gone = common::wait_until(IO_TIMEOUT, || {
        lines_of(&server, port)
            .iter()
            .any(|l| l.contains("connection closed"))
            .then_some(())
    });
    assert!(gone.is_some(), "{}", server.log_tail());
    let lines = lines_of(&server, port);
    assert!(
        lines.iter().all(|l| !l.contains("user=")),
        "a key query named the connection's user:\n{}",
        lines.join("\n")
    );
    server.stop();
}

#[test]
fn a_hostile_guest_name_reaches_the_log_defused_and_the_log_has_no_colour_codes() {
    let server = Server::start(&[], |_| {});
    // Control characters in a user name are refused by the SSH layer; a bidirectional
    // override is not a control character, and would reorder what a reader sees.
    let name = "evil\u{202e}gnp.exe";
    let mut cfg = ClientConfig::new(name, ClientAuth::None);
    cfg.open_session = false;
    let mut c = RawClient::connect(server.port, cfg);
    let port = c.local_port();
    assert!(c.pump_until(IO_TIMEOUT, |cl| cl
        .events
        .contains(&ClientEvent::AuthSuccess)));
    // A protocol error (data on a channel that does not exist) ends it with an info line.
    let mut p = Vec::new();
    dungeongate::ssh::msg::encode_channel_data_header(&mut p, 77, 1);
    p.push(b'x');
    c.send_raw(&p);
    let _ = c.pump_until(IO_TIMEOUT, |_| false);
    let ended = common::wait_until(IO_TIMEOUT, || {
        lines_of(&server, port)
            .iter()
            .any(|l| l.contains("connection ended"))
            .then_some(())
    });
    assert!(ended.is_some(), "{}", server.log_tail());
    let log = server.log_text();
    assert!(!log.contains('\u{1b}'), "escape codes in the log:\n{log}");
    assert!(
        !log.contains('\u{202e}'),
        "bidi override in the log:\n{log}"
    );
    assert!(log.contains("evil?gnp.exe"), "{log}");
    server.stop();
}
