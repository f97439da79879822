//! One server-side key exchange per method, two ways:
//!
//! * `kex_server/*`: the server's crypto for one exchange: `server_respond` (ephemeral X25519,
//!   plus the KEM encapsulation for the hybrids), the exchange hash, the host key signature,
//!   and the six derived keys turned into packet ciphers. The client's half is prepared outside
//!   the timing.
//! * `login_server/*`: a whole login driven in memory — `ServerConnection` against the crate's
//!   test client with an ed25519 user key, through KEXINIT, key exchange, NEWKEYS, publickey
//!   auth (signature verified) and a session with a PTY and a shell — timing only the server's
//!   calls (`handle_input`, `poll_event`, `auth_reply`, `poll_transmit`). Its inverse is the
//!   per-core ceiling on key-authenticated logins/s, before any socket or process work.

use std::hint::black_box;
use std::rc::Rc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use dungeongate::ssh::cipher::{CipherAlg, OpeningKey, SealingKey};
use dungeongate::ssh::client::{serve, Client, ClientAuth, ClientConfig, ClientEvent, Reply};
use dungeongate::ssh::hostkey::HostKey;
use dungeongate::ssh::kex::{self, ClientKex, ExchangeHashInput, KexAlg};
use dungeongate::ssh::server::{Event, ServerConnection, ServerSettings};

/// One method of each family (the `@` aliases compute the same thing).
const METHODS: [KexAlg; 3] = [
    KexAlg::Curve25519Sha256,
    KexAlg::MlKem768X25519Sha256,
    KexAlg::Sntrup761X25519Sha512,
];

fn kex_server(c: &mut Criterion) {
    let mut g = c.benchmark_group("kex_server");
    let host = HostKey::generate().expect("host key");
    let k_s = host.public_blob();
    let (v_c, v_s) = (
        b"SSH-2.0-OpenSSH_9.2".as_slice(),
        b"SSH-2.0-dungeongate".as_slice(),
    );
    let (i_c, i_s) = (vec![20u8; 1100], vec![20u8; 300]);
    for alg in METHODS {
        g.bench_function(BenchmarkId::from_parameter(alg.name()), |b| {
            b.iter_batched(
                || ClientKex::new(alg).expect("client kex").1,
                |q_c| {
                    let out = kex::server_respond(alg, &q_c).expect("respond");
                    let h = kex::exchange_hash(
                        alg,
                        &ExchangeHashInput {
                            v_c,
                            v_s,
                            i_c: &i_c,
                            i_s: &i_s,
                            k_s: &k_s,
                            q_c: &q_c,
                            q_s: &out.server_public,
                            k: &out.shared_secret,
                        },
                    );
                    let sig = host.sign(&h);
                    let cipher = CipherAlg::ChaCha20Poly1305;
                    let d =
                        |letter, len| kex::derive_key(alg, &out.shared_secret, &h, letter, &h, len);
                    let (iv_c, iv_s) = (d(b'A', cipher.iv_len()), d(b'B', cipher.iv_len()));
                    let (k_c, k_sv) = (d(b'C', cipher.key_len()), d(b'D', cipher.key_len()));
                    let _ = (d(b'E', 0), d(b'F', 0));
                    let open = OpeningKey::new(cipher, &k_c, &iv_c).expect("opening");
                    let seal = SealingKey::new(cipher, &k_sv, &iv_s).expect("sealing");
                    black_box((sig, open, seal));
                },
                criterion::BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

fn login_server(c: &mut Criterion) {
    let mut g = c.benchmark_group("login_server");
    g.sample_size(30);
    let settings = Rc::new(ServerSettings::new(HostKey::generate().expect("host key")));
    for alg in METHODS {
        g.bench_function(BenchmarkId::from_parameter(alg.name()), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += one_login(&settings, alg);
                }
                total
            })
        });
    }
    g.finish();
}

/// Runs one login to an open session; returns the time spent inside the server.
fn one_login(settings: &Rc<ServerSettings>, alg: KexAlg) -> Duration {
    let mut cfg = ClientConfig::new(
        "bench",
        ClientAuth::Ed25519 {
            seed: [0xA1; 32],
            query_first: false,
        },
    );
    cfg.kex = alg;
    let mut client = Client::new(cfg);
    let mut spent = Duration::ZERO;
    let t = Instant::now();
    let mut server = ServerConnection::new(settings.clone(), 0);
    spent += t.elapsed();
    client
        .pump(1000, |to_server, to_client| {
            let t = Instant::now();
            let events = serve(&mut server, to_server, 0, accept_logins, to_client);
            spent += t.elapsed();
            events
        })
        .expect("pump");
    assert!(
        client.events.contains(&ClientEvent::AuthSuccess) && client.channel().is_some(),
        "login did not complete: {:?}",
        client.events
    );
    black_box(server);
    spent
}

/// The application's part of a login: every authentication request is accepted.
fn accept_logins(event: Event<'_>) -> Reply {
    match event {
        Event::AuthRequest { .. } => Reply::Auth(true),
        _ => Reply::Nothing,
    }
}

criterion_group!(benches, kex_server, login_server);
criterion_main!(benches);
