//! Message parsing: the typed decoders of the message table on realistic payloads (an
//! OpenSSH-sized KEXINIT, a publickey query, channel open and channel data).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dungeongate::ssh::client::Client;
use dungeongate::ssh::msg::{self, KexInit, KexInitLists, MsgType, UserauthRequest};

/// A KEXINIT with the lists an OpenSSH 9.x client sends.
fn openssh_kexinit() -> Vec<u8> {
    let kex = [
        "sntrup761x25519-sha512@openssh.com",
        "curve25519-sha256",
        "curve25519-sha256@libssh.org",
        "ecdh-sha2-nistp256",
        "ecdh-sha2-nistp384",
        "ecdh-sha2-nistp521",
        "diffie-hellman-group-exchange-sha256",
        "diffie-hellman-group16-sha512",
        "diffie-hellman-group18-sha512",
        "diffie-hellman-group14-sha256",
        "ext-info-c",
        "kex-strict-c-v00@openssh.com",
    ];
    let host_key = [
        "ssh-ed25519-cert-v01@openssh.com",
        "ecdsa-sha2-nistp256-cert-v01@openssh.com",
        "rsa-sha2-512-cert-v01@openssh.com",
        "ssh-ed25519",
        "ecdsa-sha2-nistp256",
        "rsa-sha2-512",
        "rsa-sha2-256",
    ];
    let ciphers = [
        "chacha20-poly1305@openssh.com",
        "aes128-ctr",
        "aes192-ctr",
        "aes256-ctr",
        "aes128-gcm@openssh.com",
        "aes256-gcm@openssh.com",
    ];
    let macs = [
        "umac-64-etm@openssh.com",
        "umac-128-etm@openssh.com",
        "hmac-sha2-256-etm@openssh.com",
        "hmac-sha2-512-etm@openssh.com",
        "hmac-sha1-etm@openssh.com",
        "hmac-sha2-256",
        "hmac-sha2-512",
    ];
    let compression = ["none", "zlib@openssh.com"];
    let mut out = Vec::new();
    msg::encode_kexinit(
        &mut out,
        &[7u8; 16],
        &KexInitLists {
            kex: &kex,
            host_key: &host_key,
            ciphers: &ciphers,
            macs: &macs,
            compression: &compression,
        },
    );
    out
}

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    let kexinit = openssh_kexinit();
    g.throughput(Throughput::Elements(1));
    g.bench_function("kexinit_openssh", |b| {
        b.iter(|| {
            let k = KexInit::decode(black_box(&kexinit)).expect("kexinit");
            black_box(k.kex.contains("curve25519-sha256"));
        })
    });
    let query = Client::key_query("alice", &[0xA1; 32]);
    g.bench_function("userauth_publickey_query", |b| {
        b.iter(|| {
            black_box(
                UserauthRequest::decode(black_box(&query))
                    .expect("request")
                    .user,
            )
        })
    });
    let mut pw = Vec::new();
    msg::encode_userauth_request_password(&mut pw, "alice", "correct horse battery");
    g.bench_function("userauth_password", |b| {
        b.iter(|| {
            black_box(
                UserauthRequest::decode(black_box(&pw))
                    .expect("request")
                    .user,
            )
        })
    });
    let mut open = Vec::new();
    msg::encode_channel_open_session(&mut open, 0, 2 * 1024 * 1024, 32 * 1024);
    g.bench_function("channel_open_session", |b| {
        b.iter(|| {
            black_box(
                msg::decode_channel_open(black_box(&open))
                    .expect("open")
                    .max_packet,
            )
        })
    });
    let mut data = Vec::new();
    msg::encode_channel_data_header(&mut data, 3, 1);
    data.push(b'x');
    g.bench_function("channel_data_keystroke", |b| {
        b.iter(|| {
            black_box(
                msg::decode_channel_data(black_box(&data))
                    .expect("data")
                    .1
                    .len(),
            )
        })
    });
    g.bench_function("msg_type_lookup", |b| {
        b.iter(|| black_box(MsgType::from_u8(black_box(94))))
    });
    g.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
