//! In-memory client/server pairs on virtual time: the whole protocol without a socket.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use super::*;
use crate::ssh::client::{serve, Client, ClientAuth, ClientConfig, ClientEvent, Guess, Reply};
use crate::ssh::msg::DisconnectReason;

const KEY_A: [u8; 32] = [0xA1; 32];
const KEY_B: [u8; 32] = [0xB2; 32];

/// What the test application decides and records.
#[derive(Default)]
struct App {
    /// Users that exist: everyone else is a guest and gets in with `none`.
    registered: Vec<&'static str>,
    /// The one password that works for registered users.
    password: &'static str,
    /// Blobs authorised for registered users.
    keys: Vec<Vec<u8>>,
    /// Echo channel data back, like a game running `cat`.
    echo: bool,
    /// What the application saw, as text.
    log: Vec<String>,
    /// Closed reasons seen.
    closed: Vec<CloseReason>,
    /// Key exchanges seen (first flag).
    kexes: Vec<bool>,
}

impl App {
    /// Decide on one server event and record it.
    fn on_event(&mut self, ev: Event<'_>) -> Reply {
        match ev {
            Event::KexComplete { first, .. } => self.kexes.push(first),
            Event::AuthRequest { user, attempt } => {
                let registered = self.registered.contains(&user);
                let ok = match attempt {
                    AuthAttempt::None => !registered,
                    AuthAttempt::Password(p) => !registered || p == self.password.as_bytes(),
                    AuthAttempt::PublicKey { key_blob, .. } => {
                        !registered || self.keys.iter().any(|k| k == key_blob)
                    }
                };
                let what = match attempt {
                    AuthAttempt::None => "none".to_string(),
                    AuthAttempt::Password(_) => "password".to_string(),
                    AuthAttempt::PublicKey {
                        key_blob, signed, ..
                    } => {
                        let which = if key_blob == Client::key_blob(&KEY_A) {
                            "A"
                        } else if key_blob == Client::key_blob(&KEY_B) {
                            "B"
                        } else {
                            "?"
                        };
                        format!("key {which} signed={signed}")
                    }
                };
                self.log.push(format!("auth {user} {what}"));
                return Reply::Auth(ok);
            }
            Event::ChannelOpen { .. } => self.log.push("open".into()),
            Event::PtyRequest { term, size, .. } => self
                .log
                .push(format!("pty {term} {}x{}", size.cols, size.rows)),
            Event::Shell { .. } => self.log.push("shell".into()),
            Event::Exec { command, .. } => self
                .log
                .push(format!("exec {}", String::from_utf8_lossy(command))),
            Event::Env { name, value, .. } => self.log.push(format!("env {name}={value}")),
            Event::WindowChange { size, .. } => {
                self.log.push(format!("resize {}x{}", size.cols, size.rows))
            }
            Event::Signal { name, .. } => self.log.push(format!("signal {name}")),
            Event::Data { channel, data } => {
                if self.echo {
                    return Reply::Echo(channel, data.to_vec());
                }
            }
            Event::Eof { .. } => self.log.push("eof".into()),
            Event::ChannelClosed { .. } => self.log.push("closed".into()),
            Event::Closed { reason } => self.closed.push(reason),
        }
        Reply::Nothing
    }
}

struct Pair {
    server: ServerConnection,
    client: Client,
    now: Millis,
    app: App,
}

fn settings() -> ServerSettings {
    let mut s = ServerSettings::new(HostKey::generate().unwrap());
    s.auth_banner = Some("welcome\r\n".into());
    s
}

impl Pair {
    fn new(cfg: ClientConfig, settings: ServerSettings, app: App) -> Pair {
        Pair {
            server: ServerConnection::new(Rc::new(settings), 0),
            client: Client::new(cfg),
            now: 0,
            app,
        }
    }

    /// Move bytes both ways until nothing moves.
    fn pump(&mut self) {
        let Pair {
            server,
            client,
            now,
            app,
        } = self;
        let settled = client
            .pump(10_000, |input, out| {
                serve(server, input, *now, |ev| app.on_event(ev), out)
            })
            .expect("pump");
        assert!(settled, "pump did not settle");
    }

    fn authed_and_open(&self) -> bool {
        self.client.events.contains(&ClientEvent::AuthSuccess) && self.client.channel().is_some()
    }
}

fn password_client(user: &str, pw: &str) -> ClientConfig {
    ClientConfig::new(user, ClientAuth::Password(pw.into()))
}

fn alice_app() -> App {
    App {
        registered: vec!["alice"],
        password: "correct horse",
        keys: vec![Client::key_blob(&KEY_A)],
        echo: true,
        ..App::default()
    }
}

#[test]
fn every_kex_and_cipher_pair_logs_in_opens_a_pty_and_echoes() {
    for kex in KexAlg::ALL {
        for cipher in CipherAlg::ALL {
            let mut cfg = password_client("alice", "correct horse");
            cfg.kex = kex;
            cfg.cipher = cipher;
            let mut p = Pair::new(cfg, settings(), alice_app());
            p.pump();
            assert!(
                p.authed_and_open(),
                "{kex:?} {cipher:?}: {:?}",
                p.client.events
            );
            p.client.send_data(b"hello, dungeon");
            p.pump();
            assert_eq!(p.client.received, b"hello, dungeon", "{kex:?} {cipher:?}");
            assert_eq!(p.app.kexes, vec![true]);
            assert!(p.app.log.contains(&"pty xterm-256color 80x24".to_string()));
            assert!(p.client.events.contains(&ClientEvent::ExtInfo));
            assert!(p
                .client
                .events
                .contains(&ClientEvent::Banner("welcome\r\n".into())));
        }
    }
}

#[test]
fn guest_logs_in_with_none_and_registered_user_must_authenticate() {
    let mut p = Pair::new(
        ClientConfig::new("nethack", ClientAuth::None),
        settings(),
        alice_app(),
    );
    p.pump();
    assert!(p.authed_and_open());
    assert_eq!(p.server.user(), Some("nethack"));

    let mut p = Pair::new(
        ClientConfig::new("alice", ClientAuth::None),
        settings(),
        alice_app(),
    );
    p.pump();
    assert!(!p.client.events.contains(&ClientEvent::AuthSuccess));
    assert!(p
        .client
        .events
        .contains(&ClientEvent::AuthFailure("publickey,password".into())));
}

#[test]
fn ed25519_key_logs_in_with_and_without_the_query() {
    for query_first in [true, false] {
        let cfg = ClientConfig::new(
            "alice",
            ClientAuth::Ed25519 {
                seed: KEY_A,
                query_first,
            },
        );
        let mut p = Pair::new(cfg, settings(), alice_app());
        p.pump();
        assert!(p.authed_and_open(), "{:?}", p.client.events);
        assert_eq!(p.client.events.contains(&ClientEvent::PkOk), query_first);
    }
}

#[test]
fn unauthorised_key_is_refused() {
    let cfg = ClientConfig::new(
        "alice",
        ClientAuth::Ed25519 {
            seed: KEY_B,
            query_first: false,
        },
    );
    let mut p = Pair::new(cfg, settings(), alice_app());
    p.pump();
    assert!(!p.client.events.contains(&ClientEvent::AuthSuccess));
}

#[test]
fn pk_ok_for_key_a_then_a_signature_by_key_b_is_not_accepted() {
    let mut cfg = ClientConfig::new("alice", ClientAuth::None);
    cfg.open_session = false;
    let mut p = Pair::new(cfg, settings(), alice_app());
    p.pump();
    p.app.log.clear();
    p.client
        .send_raw_payload(&Client::key_query("alice", &KEY_A));
    p.pump();
    assert!(p.client.events.contains(&ClientEvent::PkOk));
    // Blob of A, signature by B: the core refuses without asking the application.
    let mut forged = Client::key_query("alice", &KEY_A);
    let signed_flag =
        forged.len() - Client::key_blob(&KEY_A).len() - 4 - "ssh-ed25519".len() - 4 - 1;
    forged[signed_flag] = 1; // signed = TRUE
    let by_b = p.client.signed_key_request("alice", &KEY_B);
    let sig_b = {
        let mut r = crate::ssh::wire::Reader::new(&by_b[1..]);
        for _ in 0..3 {
            r.string().unwrap();
        }
        r.bool().unwrap();
        r.string().unwrap();
        r.string().unwrap();
        r.string().unwrap().to_vec()
    };
    crate::ssh::wire::put_string(&mut forged, &sig_b);
    p.client.send_raw_payload(&forged);
    p.pump();
    assert!(!p.client.events.contains(&ClientEvent::AuthSuccess));
    assert_eq!(p.app.log, vec!["auth alice key A signed=false"]);
    // A properly signed request by B names B, and B is not authorised.
    p.client.send_raw_payload(&by_b);
    p.pump();
    assert!(!p.client.events.contains(&ClientEvent::AuthSuccess));
    assert_eq!(p.app.log.last().unwrap(), "auth alice key B signed=true");
}

#[test]
fn user_name_change_mid_auth_asks_about_the_new_user() {
    let mut cfg = ClientConfig::new("alice", ClientAuth::Password("wrong".into()));
    cfg.open_session = false;
    let mut p = Pair::new(cfg, settings(), alice_app());
    p.pump();
    assert!(!p.client.events.contains(&ClientEvent::AuthSuccess));
    let mut req = Vec::new();
    crate::ssh::msg::encode_userauth_request_password(&mut req, "bob", "anything");
    p.client.send_raw_payload(&req);
    p.pump();
    assert_eq!(
        p.app.log,
        vec![
            "auth alice password".to_string(),
            "auth bob password".to_string()
        ]
    );
    assert_eq!(p.server.user(), Some("bob"));
}

#[test]
fn six_wrong_passwords_disconnect() {
    let mut cfg = password_client("alice", "wrong");
    cfg.open_session = false;
    let mut p = Pair::new(cfg, settings(), alice_app());
    p.pump();
    for _ in 0..10 {
        let mut req = Vec::new();
        crate::ssh::msg::encode_userauth_request_password(&mut req, "alice", "still wrong");
        p.client.send_raw_payload(&req);
        p.pump();
    }
    let failures = p
        .client
        .events
        .iter()
        .filter(|e| matches!(e, ClientEvent::AuthFailure(_)))
        .count();
    assert_eq!(failures, 5);
    assert!(p.client.events.contains(&ClientEvent::Disconnected(
        DisconnectReason::NoMoreAuthMethodsAvailable as u32
    )));
    assert!(p.server.is_closed());
}

#[test]
fn strict_kex_ignore_before_kexinit_ends_the_connection() {
    let mut p = Pair::new(
        password_client("alice", "correct horse"),
        settings(),
        alice_app(),
    );
    // The client's first packet is an IGNORE, then its KEXINIT follows on server ident.
    p.client.send_raw_payload(&[2, 0, 0, 0, 0]);
    p.pump();
    assert!(p.server.is_closed());
    assert!(matches!(
        p.app.closed.as_slice(),
        [CloseReason::Error(Error::StrictKex(_))]
    ));
    assert!(!p.client.events.contains(&ClientEvent::KexDone));
}

#[test]
fn strict_kex_debug_during_first_kex_ends_the_connection() {
    let mut p = Pair::new(
        password_client("alice", "correct horse"),
        settings(),
        alice_app(),
    );
    let mut to_client = Vec::new();
    p.server.poll_transmit(&mut to_client);
    p.client.handle_input(&to_client).unwrap();
    // KEXINIT and KEX_ECDH_INIT are queued; a DEBUG now lands inside the first KEX.
    let mut debug = Vec::new();
    crate::ssh::msg::encode_debug(&mut debug, "hi");
    p.client.send_raw_payload(&debug);
    p.pump();
    assert!(p.server.is_closed());
    assert!(matches!(
        p.app.closed.as_slice(),
        [CloseReason::Error(Error::StrictKex(_))]
    ));
}

#[test]
fn without_strict_kex_an_ignore_before_kexinit_is_tolerated() {
    let mut cfg = password_client("alice", "correct horse");
    cfg.strict_kex = false;
    let mut p = Pair::new(cfg, settings(), alice_app());
    p.client.send_raw_payload(&[2, 0, 0, 0, 0]);
    p.pump();
    assert!(p.authed_and_open(), "{:?}", p.app.closed);
}

#[test]
fn client_initiated_rekey_keeps_the_session_working() {
    let mut p = Pair::new(
        password_client("alice", "correct horse"),
        settings(),
        alice_app(),
    );
    p.pump();
    p.client.send_kexinit();
    p.pump();
    assert_eq!(p.app.kexes, vec![true, false]);
    p.client.send_data(b"after rekey");
    p.pump();
    assert_eq!(p.client.received, b"after rekey");
}

#[test]
fn server_rekeys_after_its_byte_limit_while_streaming() {
    let mut s = settings();
    s.rekey_bytes = 64 * 1024;
    let mut p = Pair::new(password_client("alice", "correct horse"), s, alice_app());
    p.pump();
    let data: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut off = 0;
    while off < data.len() {
        off += p.client.send_data(&data[off..(off + 8192).min(data.len())]);
        p.pump();
        let n = p.client.received.len() as u32;
        p.client.adjust_window(n.saturating_sub(0).min(1 << 20));
        p.pump();
        if p.client.received.len() >= data.len() {
            break;
        }
    }
    assert_eq!(p.client.received.len(), data.len());
    assert_eq!(p.client.received, data);
    assert!(p.app.kexes.len() > 10, "kexes: {}", p.app.kexes.len());
}

#[test]
fn server_rekeys_after_an_hour() {
    let mut p = Pair::new(
        password_client("alice", "correct horse"),
        settings(),
        alice_app(),
    );
    p.pump();
    let deadline = p.server.poll_timeout().unwrap();
    assert_eq!(deadline, 3_600_000);
    p.now = deadline;
    p.server.handle_timeout(deadline);
    p.pump();
    assert_eq!(p.app.kexes, vec![true, false]);
}

#[test]
fn login_grace_time_ends_an_unauthenticated_connection() {
    let mut cfg = password_client("alice", "wrong");
    cfg.open_session = false;
    let mut p = Pair::new(cfg, settings(), alice_app());
    p.pump();
    let deadline = p.server.poll_timeout().unwrap();
    assert_eq!(deadline, 120_000);
    p.server.handle_timeout(deadline - 1);
    assert!(!p.server.is_closed());
    p.server.handle_timeout(deadline);
    p.pump();
    assert!(p.server.is_closed());
    assert!(matches!(
        p.app.closed.as_slice(),
        [CloseReason::Error(Error::LoginGraceExpired)]
    ));
}

#[test]
fn packet_length_0xffffffff_before_auth_is_refused_without_buffering() {
    let mut s = ServerConnection::new(Rc::new(settings()), 0);
    s.handle_input(b"SSH-2.0-evil\r\n", 0);
    s.handle_input(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0], 0);
    let ev = s.poll_event();
    assert!(matches!(
        ev,
        Some(Event::Closed {
            reason: CloseReason::Error(Error::PacketTooLong(_))
        })
    ));
    for _ in 0..100 {
        s.handle_input(&[0u8; 65536], 0);
    }
    assert!(s.buffered_input() < 64, "input after close is not kept");
}

#[test]
fn ten_megabyte_identification_line_is_cut_off() {
    let mut s = ServerConnection::new(Rc::new(settings()), 0);
    s.handle_input(b"SSH-2.0-", 0);
    let chunk = vec![b'a'; 4096];
    let mut closed = false;
    for _ in 0..(10 * 1024 * 1024 / 4096) {
        s.handle_input(&chunk, 0);
        while let Some(ev) = s.poll_event() {
            closed |= matches!(ev, Event::Closed { .. });
        }
        assert!(s.buffered_input() <= 4096 + 255);
    }
    assert!(closed);
    let mut out = Vec::new();
    s.poll_transmit(&mut out);
    assert!(out.ends_with(b"Invalid SSH identification string.\r\n"));
}

#[test]
fn window_adjust_of_u32_max_saturates_and_output_continues() {
    let mut p = Pair::new(
        password_client("alice", "correct horse"),
        settings(),
        alice_app(),
    );
    p.pump();
    p.client.adjust_window(u32::MAX);
    p.client.adjust_window(u32::MAX);
    p.pump();
    assert!(!p.server.is_closed());
    let ch = ChannelId(0);
    assert_eq!(p.server.send_window(ch), u32::MAX as usize);
    p.client.send_data(b"still alive");
    p.pump();
    assert_eq!(p.client.received, b"still alive");
}

#[test]
fn forwarding_and_unknown_channel_types_are_refused() {
    let mut p = Pair::new(
        password_client("alice", "correct horse"),
        settings(),
        alice_app(),
    );
    p.pump();
    let mut open = Vec::new();
    crate::ssh::msg::begin(&mut open, crate::ssh::msg::MsgType::ChannelOpen);
    crate::ssh::wire::put_string(&mut open, b"direct-tcpip");
    for v in [5u32, 1000, 1000] {
        crate::ssh::wire::put_u32(&mut open, v);
    }
    crate::ssh::wire::put_string(&mut open, b"localhost");
    crate::ssh::wire::put_u32(&mut open, 22);
    crate::ssh::wire::put_string(&mut open, b"127.0.0.1");
    crate::ssh::wire::put_u32(&mut open, 1);
    p.client.send_raw_payload(&open);
    p.pump();
    assert!(p
        .client
        .events
        .contains(&ClientEvent::ChannelOpenFailure(1)));
    assert!(!p.server.is_closed());
}

#[test]
fn keepalive_global_request_is_answered_and_subsystems_refused() {
    let mut p = Pair::new(
        password_client("alice", "correct horse"),
        settings(),
        alice_app(),
    );
    p.pump();
    p.client.send_raw_payload(&keepalive());
    let ch = p.client.channel().unwrap();
    let mut sub = Vec::new();
    crate::ssh::msg::encode_channel_request_header(&mut sub, ch, "subsystem", true);
    crate::ssh::wire::put_string(&mut sub, b"sftp");
    p.client.send_raw_payload(&sub);
    p.pump();
    assert!(p.client.events.contains(&ClientEvent::GlobalReply));
    assert_eq!(p.client.events.last(), Some(&ClientEvent::RequestFailure));
}

#[test]
fn env_requests_pass_only_term_lang_and_lc() {
    let mut p = Pair::new(
        password_client("alice", "correct horse"),
        settings(),
        alice_app(),
    );
    p.pump();
    let ch = p.client.channel().unwrap();
    for (name, value) in [
        ("LANG", "C.UTF-8"),
        ("LD_PRELOAD", "/evil.so"),
        ("LC_ALL", "C"),
    ] {
        let mut env = Vec::new();
        crate::ssh::msg::encode_channel_request_header(&mut env, ch, "env", false);
        crate::ssh::wire::put_string(&mut env, name.as_bytes());
        crate::ssh::wire::put_string(&mut env, value.as_bytes());
        p.client.send_raw_payload(&env);
    }
    p.pump();
    let envs: Vec<_> = p.app.log.iter().filter(|l| l.starts_with("env")).collect();
    assert_eq!(envs, vec!["env LANG=C.UTF-8", "env LC_ALL=C"]);
}

#[test]
fn window_change_reaches_the_application() {
    let mut p = Pair::new(
        password_client("alice", "correct horse"),
        settings(),
        alice_app(),
    );
    p.pump();
    p.client.window_change(132, 43);
    p.pump();
    assert_eq!(p.app.log.last().unwrap(), "resize 132x43");
}

#[test]
fn data_beyond_the_window_is_a_protocol_error() {
    let mut s = settings();
    s.channel_window = 1000;
    let mut app = alice_app();
    app.echo = false;
    let mut p = Pair::new(password_client("alice", "correct horse"), s, app);
    p.pump();
    let ch = p.client.channel().unwrap();
    let mut data = Vec::new();
    crate::ssh::msg::encode_channel_data_header(&mut data, ch, 1001);
    data.extend_from_slice(&[b'x'; 1001]);
    p.client.send_raw_payload(&data);
    p.pump();
    assert!(p.server.is_closed());
    assert!(p.client.events.contains(&ClientEvent::Disconnected(
        DisconnectReason::ProtocolError as u32
    )));
}

#[test]
fn userauth_before_the_key_exchange_is_unexpected() {
    let mut s = ServerConnection::new(Rc::new(settings()), 0);
    s.handle_input(b"SSH-2.0-x\r\n", 0);
    let mut enc = crate::ssh::transport::packet::PacketEncoder::default();
    let mut buf = Vec::new();
    enc.encode(&mut buf, |o| {
        crate::ssh::msg::encode_userauth_request_none(o, "alice")
    });
    s.handle_input(&buf, 0);
    assert!(matches!(
        s.poll_event(),
        Some(Event::Closed {
            reason: CloseReason::Error(Error::Unexpected { .. })
        })
    ));
}

#[test]
fn a_repeated_userauth_service_request_is_accepted_again() {
    let mut cfg = password_client("alice", "wrong");
    cfg.open_session = false;
    let mut p = Pair::new(cfg, settings(), alice_app());
    p.pump();
    // paramiko asks for the service again before each attempt.
    let mut req = Vec::new();
    crate::ssh::msg::encode_service_request(&mut req, "ssh-userauth");
    p.client.send_raw_payload(&req);
    p.pump();
    assert!(!p.server.is_closed());
    let mut pw = Vec::new();
    crate::ssh::msg::encode_userauth_request_password(&mut pw, "alice", "correct horse");
    p.client.send_raw_payload(&pw);
    p.pump();
    assert_eq!(p.server.user(), Some("alice"));
}

/// A client that sets `first_kex_packet_follows`, advertising `kex_names` and `host_keys` and
/// computing `kex`, with or without strict KEX.
fn guessing_client(
    kex: KexAlg,
    kex_names: &[&'static str],
    host_keys: &[&'static str],
    guess: Guess,
    strict_kex: bool,
) -> ClientConfig {
    let mut cfg = password_client("alice", "correct horse");
    cfg.kex = kex;
    cfg.kex_names = kex_names.to_vec();
    cfg.host_key_names = host_keys.to_vec();
    cfg.guess = Some(guess);
    cfg.strict_kex = strict_kex;
    cfg
}

/// The server's own first choices (RFC 4253 §7 compares these with the client's).
fn server_first_kex() -> KexAlg {
    settings().kex[0]
}

#[test]
fn a_right_guess_is_used_as_the_key_exchange_packet() {
    for strict in [true, false] {
        let first = server_first_kex();
        let cfg = guessing_client(
            first,
            &[first.name(), "curve25519-sha256"],
            &["ssh-ed25519", "rsa-sha2-512"],
            Guess::EcdhInit,
            strict,
        );
        let mut p = Pair::new(cfg, settings(), alice_app());
        p.pump();
        // The client sent one ECDH_INIT only: had the server skipped it, nothing would move.
        assert!(
            p.authed_and_open(),
            "strict={strict}: {:?}",
            p.client.events
        );
    }
}

#[test]
fn a_guess_with_another_first_kex_is_skipped_even_when_that_kex_is_negotiated() {
    // dbclient's case: it prefers curve25519, the server mlkem; negotiation picks curve25519
    // (the client's order wins), yet the guess is wrong and the client sends a second packet.
    for strict in [true, false] {
        let cfg = guessing_client(
            KexAlg::Curve25519Sha256,
            &["curve25519-sha256", server_first_kex().name()],
            &["ssh-ed25519"],
            Guess::EcdhInit,
            strict,
        );
        assert_ne!(server_first_kex(), KexAlg::Curve25519Sha256);
        let mut p = Pair::new(cfg, settings(), alice_app());
        p.pump();
        assert!(
            p.authed_and_open(),
            "strict={strict}: {:?}",
            p.client.events
        );
        assert!(p.app.closed.is_empty(), "{:?}", p.app.closed);
    }
}

#[test]
fn a_guess_with_another_first_host_key_algorithm_is_skipped() {
    for strict in [true, false] {
        let first = server_first_kex();
        let cfg = guessing_client(
            first,
            &[first.name()],
            &["rsa-sha2-512", "ssh-ed25519"],
            Guess::EcdhInit,
            strict,
        );
        let mut p = Pair::new(cfg, settings(), alice_app());
        p.pump();
        assert!(
            p.authed_and_open(),
            "strict={strict}: {:?}",
            p.client.events
        );
    }
}

#[test]
fn a_wrong_guess_of_another_method_s_first_message_is_skipped() {
    // A client that guessed diffie-hellman-group-exchange sends KEX_DH_GEX_REQUEST (34).
    let mut gex_request = vec![34];
    for v in [2048u32, 3072, 8192] {
        gex_request.extend_from_slice(&v.to_be_bytes());
    }
    let cfg = guessing_client(
        KexAlg::Curve25519Sha256,
        &["diffie-hellman-group-exchange-sha256", "curve25519-sha256"],
        &["ssh-ed25519"],
        Guess::Raw(gex_request),
        true,
    );
    let mut p = Pair::new(cfg, settings(), alice_app());
    p.pump();
    assert!(p.authed_and_open(), "{:?}", p.client.events);
}

#[test]
fn a_guessed_packet_of_a_type_no_method_starts_with_ends_the_connection() {
    // Wrong guess: the packet to skip is a NEWKEYS, which no key exchange starts with.
    let cfg = guessing_client(
        KexAlg::Curve25519Sha256,
        &["curve25519-sha256"],
        &["ssh-ed25519"],
        Guess::Raw(vec![21]),
        false,
    );
    let mut p = Pair::new(cfg, settings(), alice_app());
    p.pump();
    assert!(!p.client.events.contains(&ClientEvent::AuthSuccess));
    assert!(p.server.is_closed());
    assert!(matches!(
        p.app.closed.as_slice(),
        [CloseReason::Error(Error::Unexpected { .. })]
    ));

    // Right guess: the packet must be the negotiated method's KEX_ECDH_INIT.
    let first = server_first_kex();
    let cfg = guessing_client(
        first,
        &[first.name()],
        &["ssh-ed25519"],
        Guess::Raw(vec![34, 0, 0, 8, 0]),
        true,
    );
    let mut p = Pair::new(cfg, settings(), alice_app());
    p.pump();
    assert!(!p.client.events.contains(&ClientEvent::AuthSuccess));
    assert!(p.server.is_closed());
}

impl Pair {
    /// Client → server only: the server's output is never read (a peer that does not read
    /// its socket). Events are handled as usual.
    fn feed_server_only(&mut self) {
        let mut bytes = Vec::new();
        self.client.poll_transmit(&mut bytes);
        self.server.handle_input(&bytes, self.now);
        while let Some(ev) = self.server.poll_event() {
            if let Reply::Auth(ok) = self.app.on_event(ev) {
                self.server.auth_reply(ok);
            }
        }
    }
}

fn small_output_cap() -> ServerSettings {
    let mut s = settings();
    s.max_queued_output = 64 * 1024;
    s.output_stall_ms = 30_000;
    // These tests flood on purpose at one instant of virtual time: the control-message rate
    // limit has its own test.
    s.control_per_second = u32::MAX;
    s.control_burst = u32::MAX;
    s
}

#[test]
fn control_messages_past_the_burst_wait_for_the_bucket_to_refill() {
    let mut cfg = password_client("alice", "correct horse");
    cfg.open_session = false;
    let mut s = settings();
    s.control_per_second = 50;
    s.control_burst = 100;
    let mut p = Pair::new(cfg, s, alice_app());
    p.pump();
    let replies = |p: &Pair| {
        p.client
            .events
            .iter()
            .filter(|e| **e == ClientEvent::GlobalReply)
            .count()
    };
    for _ in 0..300 {
        p.client.send_raw_payload(&keepalive());
    }
    p.pump();
    // The handshake and login took some tokens: fewer than 100 are answered at once.
    let first = replies(&p);
    assert!(first > 50 && first < 100, "{first} answered at once");
    assert!(!p.server.is_closed());
    // The deadline is a quarter second's worth of tokens (12 at 50/s, 20 ms each); a second
    // later 50 more have been answered.
    let next = p.server.poll_timeout().unwrap();
    assert!(next <= p.now + 240, "{next}");
    p.now += 1000;
    p.server.handle_timeout(p.now);
    p.pump();
    assert_eq!(replies(&p), first + 50);
    // The bucket never holds more than its burst: the rest comes at 50 a second.
    p.now += 10_000;
    p.server.handle_timeout(p.now);
    p.pump();
    assert_eq!(replies(&p), first + 50 + 100);
    for _ in 0..5 {
        p.now += 1000;
        p.server.handle_timeout(p.now);
        p.pump();
    }
    assert_eq!(replies(&p), 300, "all answered in the end, none dropped");
}

#[test]
fn a_peer_that_never_reads_cannot_grow_queued_output_past_the_cap() {
    let mut cfg = password_client("alice", "correct horse");
    cfg.open_session = false;
    let mut p = Pair::new(cfg, small_output_cap(), alice_app());
    p.pump();
    assert!(p.client.events.contains(&ClientEvent::AuthSuccess));
    // 20,000 keepalives that want a reply, each answered: ~600 KB of answers if nothing held
    // them back.
    for _ in 0..20_000 {
        p.client.send_raw_payload(&keepalive());
    }
    p.feed_server_only();
    let cap = 64 * 1024;
    assert!(p.server.output_over_cap());
    assert!(
        p.server.queued_output() < cap + 1024,
        "{} bytes queued",
        p.server.queued_output()
    );
    assert!(
        p.server.buffered_input() > 0,
        "input should wait, not be lost"
    );
    assert!(!p.server.is_closed());
    // The peer reads again: processing resumes where it stopped, nothing is dropped.
    let mut answered = 0;
    while p.server.buffered_input() > 0 {
        let mut out = Vec::new();
        p.server.poll_transmit(&mut out);
        p.client.handle_input(&out).unwrap();
        while p.server.poll_event().is_some() {}
        answered += 1;
        assert!(answered < 1000, "processing did not resume");
    }
    let mut out = Vec::new();
    p.server.poll_transmit(&mut out);
    p.client.handle_input(&out).unwrap();
    let answered = p
        .client
        .events
        .iter()
        .filter(|e| **e == ClientEvent::GlobalReply)
        .count();
    assert_eq!(answered, 20_000);
}

/// keepalive@openssh.com with want-reply: a request every server must answer.
fn keepalive() -> Vec<u8> {
    let mut p = Vec::new();
    crate::ssh::msg::encode_global_request(&mut p, "keepalive@openssh.com", true);
    p
}

#[test]
fn a_flood_of_unknown_messages_or_service_requests_ends_the_connection() {
    let mut cfg = password_client("alice", "correct horse");
    cfg.open_session = false;
    let mut p = Pair::new(cfg, settings(), alice_app());
    p.pump();
    for _ in 0..64 {
        p.client.send_raw_payload(&[200, 1, 2, 3]);
    }
    p.pump();
    assert!(!p.server.is_closed(), "64 unknown messages are answered");
    p.client.send_raw_payload(&[200, 1, 2, 3]);
    p.pump();
    assert!(p.server.is_closed(), "the 65th ends it");

    let mut cfg = password_client("alice", "correct horse");
    cfg.open_session = false;
    let mut p = Pair::new(cfg, settings(), alice_app());
    p.pump();
    for _ in 0..40 {
        let mut req = Vec::new();
        crate::ssh::msg::encode_service_request(&mut req, "ssh-userauth");
        p.client.send_raw_payload(&req);
    }
    p.pump();
    assert!(p.server.is_closed(), "40 service requests end it");
}

#[test]
fn output_stuck_over_the_cap_past_the_deadline_ends_the_connection() {
    let mut cfg = password_client("alice", "correct horse");
    cfg.open_session = false;
    let mut p = Pair::new(cfg, small_output_cap(), alice_app());
    p.pump();
    for _ in 0..20_000 {
        p.client.send_raw_payload(&keepalive());
    }
    p.feed_server_only();
    assert!(p.server.output_over_cap());
    let deadline = p.server.poll_timeout().unwrap();
    assert_eq!(deadline, p.now + 30_000, "the stall deadline comes first");
    p.server.handle_timeout(deadline - 1);
    assert!(!p.server.is_closed());
    p.server.handle_timeout(deadline);
    assert!(p.server.is_closed());
    while let Some(ev) = p.server.poll_event() {
        p.app.on_event(ev);
    }
    assert!(
        matches!(
            p.app.closed.as_slice(),
            [CloseReason::Error(Error::OutputStalled)]
        ),
        "{:?}",
        p.app.closed
    );
}

#[test]
fn env_requests_are_capped_per_channel_and_values_share_the_term_rule() {
    let mut p = Pair::new(
        password_client("alice", "correct horse"),
        settings(),
        alice_app(),
    );
    p.pump();
    let ch = p.client.channel().unwrap();
    let send_env = |p: &mut Pair, name: &str, value: &str| {
        let mut env = Vec::new();
        crate::ssh::msg::encode_channel_request_header(&mut env, ch, "env", false);
        crate::ssh::wire::put_string(&mut env, name.as_bytes());
        crate::ssh::wire::put_string(&mut env, value.as_bytes());
        p.client.send_raw_payload(&env);
    };
    // Values: printable ASCII, short; the same rule as pty-req's TERM.
    send_env(&mut p, "LANG", "en_US.UTF-8");
    send_env(&mut p, "LC_CTYPE", "\u{1b}]52;c;aGk=\u{7}");
    send_env(&mut p, "LC_TIME", "caf\u{e9}");
    send_env(&mut p, "LC_NUMERIC", &"x".repeat(65));
    send_env(&mut p, "TERM", "xterm 256");
    // An ever new LC_* name each time: only 16 env requests per channel are taken.
    for i in 0..100 {
        let name: String = format!("LC_X{i}")
            .chars()
            .map(|c| {
                if c.is_ascii_digit() {
                    (b'A' + c as u8 - b'0') as char
                } else {
                    c
                }
            })
            .collect();
        send_env(&mut p, &name, "C");
    }
    p.pump();
    let envs: Vec<_> = p.app.log.iter().filter(|l| l.starts_with("env")).collect();
    assert_eq!(envs.len(), 16, "{envs:?}");
    assert_eq!(envs[0], "env LANG=en_US.UTF-8");
}
