//! Writes small seed corpora for every fuzz target: valid messages, packets and sessions to
//! start mutating from. Usage: `cargo run --example gen_corpus -- [corpus dir]` (default
//! `corpus/`, relative to the fuzz crate). Files are named by content hash, so re-running is
//! idempotent.

use dungeongate::ssh::cipher::CipherAlg;
use dungeongate::ssh::client::Client;
use dungeongate::ssh::hostkey::HostKey;
use dungeongate::ssh::kex::{ClientKex, KexAlg};
use dungeongate::ssh::msg::{self, DisconnectReason, KexInitLists, MsgType};
use dungeongate::ssh::transport::packet::PacketEncoder;
use dungeongate::ssh::wire;
use dungeongate_fuzz::{write_record, Op};
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

fn main() -> std::io::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .map_or_else(|| PathBuf::from("corpus"), PathBuf::from);
    let payloads = payloads();
    let mut n = 0;
    n += write_all(&dir.join("wire_msgs"), wire_msgs(&payloads))?;
    n += write_all(&dir.join("packet_decode"), packet_decode(&payloads))?;
    n += write_all(&dir.join("server_input"), server_input())?;
    n += write_all(
        &dir.join("server_after_handshake"),
        after_handshake(&payloads),
    )?;
    println!("wrote {n} seed files under {}", dir.display());
    Ok(())
}

fn write_all(dir: &Path, seeds: Vec<Vec<u8>>) -> std::io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    for s in &seeds {
        let mut h = DefaultHasher::new();
        s.hash(&mut h);
        std::fs::write(dir.join(format!("seed-{:016x}", h.finish())), s)?;
    }
    Ok(seeds.len())
}

fn build(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut v = Vec::new();
    f(&mut v);
    v
}

fn kexinit(kex: &[&str], cipher: &str) -> Vec<u8> {
    build(|o| {
        msg::encode_kexinit(
            o,
            &[7; 16],
            &KexInitLists {
                kex,
                host_key: &["ssh-ed25519"],
                ciphers: &[cipher],
                macs: &["hmac-sha2-256-etm@openssh.com"],
                compression: &["none"],
            },
        )
    })
}

/// The connection-protocol and other payloads a client sends after authentication.
fn session_payloads() -> Vec<Vec<u8>> {
    let req = |name: &str, want: bool, tail: &dyn Fn(&mut Vec<u8>)| {
        build(|o| {
            msg::encode_channel_request_header(o, 0, name, want);
            tail(o);
        })
    };
    let u32s = |vals: &'static [u32]| {
        move |o: &mut Vec<u8>| {
            for v in vals {
                wire::put_u32(o, *v);
            }
        }
    };
    vec![
        build(|o| msg::encode_channel_open_session(o, 1, 1 << 20, 32 * 1024)),
        req("pty-req", true, &|o| {
            wire::put_string(o, b"xterm-256color");
            u32s(&[120, 40, 0, 0])(o);
            wire::put_string(o, &[1, 0, 0, 0, 3, 0]);
        }),
        req("env", true, &|o| {
            wire::put_string(o, b"LANG");
            wire::put_string(o, b"en_US.UTF-8");
        }),
        req("env", false, &|o| {
            wire::put_string(o, b"LD_PRELOAD");
            wire::put_string(o, b"/tmp/x.so");
        }),
        req("shell", true, &|_| {}),
        req("exec", true, &|o| wire::put_string(o, b"nethack -u wizard")),
        req("subsystem", true, &|o| wire::put_string(o, b"sftp")),
        req("window-change", false, &u32s(&[200, 60, 0, 0])),
        req("signal", false, &|o| wire::put_string(o, b"INT")),
        req("x11-req", true, &|o| {
            wire::put_bool(o, false);
            wire::put_string(o, b"MIT-MAGIC-COOKIE-1");
            wire::put_string(o, b"00");
            wire::put_u32(o, 0);
        }),
        build(|o| {
            msg::encode_channel_data_header(o, 0, 5);
            o.extend_from_slice(b"hello");
        }),
        build(|o| {
            msg::begin(o, MsgType::ChannelExtendedData);
            wire::put_u32(o, 0);
            wire::put_u32(o, 1);
            wire::put_string(o, b"err");
        }),
        build(|o| msg::encode_window_adjust(o, 0, 4096)),
        build(|o| msg::encode_window_adjust(o, 0, u32::MAX)),
        build(|o| msg::encode_channel_only(o, MsgType::ChannelEof, 0)),
        build(|o| msg::encode_channel_only(o, MsgType::ChannelClose, 0)),
        build(|o| msg::encode_channel_only(o, MsgType::ChannelSuccess, 0)),
        build(|o| msg::encode_channel_only(o, MsgType::ChannelFailure, 0)),
        build(|o| {
            msg::begin(o, MsgType::GlobalRequest);
            wire::put_string(o, b"keepalive@openssh.com");
            wire::put_bool(o, true);
        }),
        build(|o| {
            msg::begin(o, MsgType::GlobalRequest);
            wire::put_string(o, b"tcpip-forward");
            wire::put_bool(o, true);
            wire::put_string(o, b"0.0.0.0");
            wire::put_u32(o, 80);
        }),
        build(|o| {
            msg::begin(o, MsgType::ChannelOpen);
            wire::put_string(o, b"direct-tcpip");
            u32s(&[2, 65536, 32768])(o);
            wire::put_string(o, b"localhost");
            wire::put_u32(o, 22);
            wire::put_string(o, b"127.0.0.1");
            wire::put_u32(o, 5555);
        }),
        build(|o| msg::encode_ignore(o, b"padding")),
        build(|o| msg::encode_debug(o, "debug text")),
        build(|o| msg::encode_unimplemented(o, 3)),
        build(|o| msg::encode_service_request(o, "ssh-userauth")),
        build(|o| msg::encode_userauth_request_none(o, "fuzzer")),
        build(|o| msg::encode_userauth_request_password(o, "alice", "secret")),
        build(|o| msg::encode_disconnect(o, DisconnectReason::ByApplication, "bye")),
        build(|o| msg::begin(o, MsgType::NewKeys)),
        kexinit(&["curve25519-sha256"], "chacha20-poly1305@openssh.com"),
        vec![200, 1, 2, 3],
        vec![MsgType::ChannelData as u8],
    ]
}

/// Payloads of every phase, for the decoders.
fn payloads() -> Vec<Vec<u8>> {
    let mut v = session_payloads();
    let seed = [3u8; 32];
    v.push(Client::key_query("alice", &seed));
    v.push(kexinit(
        &[
            "mlkem768x25519-sha256",
            "kex-strict-c-v00@openssh.com",
            "ext-info-c",
        ],
        "aes128-gcm@openssh.com,aes256-gcm@openssh.com",
    ));
    for alg in KexAlg::ALL {
        if let Ok((_, q_c)) = ClientKex::new(alg) {
            v.push(build(|o| msg::encode_kex_ecdh_init(o, &q_c)));
        }
    }
    v.push(build(|o| {
        msg::encode_kex_ecdh_reply(o, b"k_s", b"q_s", b"sig")
    }));
    v.push(build(|o| {
        msg::encode_channel_open_confirmation(o, 0, 1, 2, 3)
    }));
    v.push(build(|o| {
        msg::encode_userauth_failure(o, &["publickey", "password"], false)
    }));
    v.push(build(|o| {
        msg::encode_ext_info(o, &[("server-sig-algs", b"ssh-ed25519")])
    }));
    v
}

fn wire_msgs(payloads: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut v = payloads.to_vec();
    v.push(b"SSH-2.0-OpenSSH_9.6p1 Ubuntu-3\r\n".to_vec());
    v.push(Client::key_blob(&[9; 32]));
    if let Ok(k) = HostKey::generate() {
        v.push(k.openssh_public_line().into_bytes());
        v.push(k.to_openssh_private().as_bytes().to_vec());
    }
    v
}

fn packet_decode(payloads: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    for p in payloads.iter().take(12) {
        // Round-trip mode for each cipher.
        for mode in 0..4u8 {
            let mut s = vec![mode, 1];
            s.extend_from_slice(p);
            v.push(s);
        }
        // Decode mode, clear: a real packet.
        let mut s = vec![0, 0];
        PacketEncoder::default().encode(&mut s, |o| o.extend_from_slice(p));
        v.push(s);
    }
    v
}

fn server_input() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    for alg in KexAlg::ALL {
        let Ok((_, q_c)) = ClientKex::new(alg) else {
            continue;
        };
        for cipher in CipherAlg::ALL {
            let mut stream = b"SSH-2.0-OpenSSH_9.6\r\n".to_vec();
            let mut enc = PacketEncoder::default();
            let ki = kexinit(&[alg.name(), "kex-strict-c-v00@openssh.com"], cipher.name());
            enc.encode(&mut stream, |o| o.extend_from_slice(&ki));
            enc.encode(&mut stream, |o| msg::encode_kex_ecdh_init(o, &q_c));
            enc.encode(&mut stream, msg::encode_newkeys);
            let mut s = vec![alg as u8, cipher as u8];
            s.extend_from_slice(&stream);
            v.push(s);
        }
    }
    let mut flood = vec![0, 0x80];
    flood.extend_from_slice(b"SSH-2.0-x\r\n\x00\x03\xff\xf8\x04");
    v.push(flood);
    v.push(b"\x01\x02SSH-1.99-old\r\n".to_vec());
    v
}

fn after_handshake(payloads: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let session = session_payloads();
    let mut v = Vec::new();
    for config in [0u8, 1, 2, 0x05, 0x0a, 0x0f, 0x10, 0x24] {
        // Every payload once, in order.
        let mut s = vec![config];
        for p in &session {
            write_record(&mut s, Op::Payload.byte() | 0x80, p);
        }
        v.push(s);
    }
    let mut ops = vec![0u8];
    write_record(&mut ops, Op::ClientData.byte(), b"keystrokes");
    write_record(&mut ops, Op::ServerSend.byte(), &[0; 300]);
    write_record(&mut ops, Op::Rekey.byte(), b"");
    write_record(&mut ops, Op::ClientData.byte(), b"after rekey");
    write_record(&mut ops, Op::Timeout.byte(), &[0xff; 4]);
    write_record(
        &mut ops,
        Op::PayloadSplit.byte(),
        payloads.first().map_or(&[][..], |p| p),
    );
    write_record(&mut ops, Op::ServerEof.byte(), b"");
    write_record(&mut ops, Op::ServerClose.byte(), b"");
    write_record(&mut ops, Op::Corrupt.byte(), b"\x05");
    write_record(&mut ops, Op::ClientData.byte(), b"x");
    v.push(ops);
    let mut big = vec![1u8];
    write_record(&mut big, Op::ClientData.byte(), &[b'a'; 20_000]);
    write_record(&mut big, Op::Disconnect.byte(), b"");
    v.push(big);
    v
}
