//! Packet seal and open (RFC 4253 §6 framing + the AEAD ciphers) at 64 B, 1 KiB and 32 KiB of
//! channel data, per cipher. Throughput is in payload bytes, so the figures read directly as
//! the per-core ceiling for bulk output (seal) and input (open).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dungeongate::ssh::cipher::{CipherAlg, OpeningKey, SealingKey};
use dungeongate::ssh::msg;
use dungeongate::ssh::transport::packet::{PacketDecoder, PacketEncoder};

/// Channel data sizes: a keystroke-sized packet, a screen update, a full 32 KiB packet.
const SIZES: [usize; 3] = [64, 1024, 32 * 1024];

/// Packets sealed up front for each open batch.
const BATCH: usize = 256;

fn keys(alg: CipherAlg) -> (SealingKey, OpeningKey) {
    let key = vec![0x42u8; alg.key_len()];
    let iv = vec![0x24u8; alg.iv_len()];
    (
        SealingKey::new(alg, &key, &iv).expect("sealing key"),
        OpeningKey::new(alg, &key, &iv).expect("opening key"),
    )
}

/// Appends one CHANNEL_DATA packet carrying `data`.
fn seal_one(enc: &mut PacketEncoder, out: &mut Vec<u8>, data: &[u8]) {
    enc.encode(out, |o| {
        msg::encode_channel_data_header(o, 0, data.len() as u32);
        o.extend_from_slice(data);
    });
}

fn seal(c: &mut Criterion) {
    let mut g = c.benchmark_group("seal");
    for alg in CipherAlg::ALL {
        for size in SIZES {
            let data = vec![0xA5u8; size];
            g.throughput(Throughput::Bytes(size as u64));
            g.bench_with_input(BenchmarkId::new(alg.name(), size), &data, |b, data| {
                let (s, _) = keys(alg);
                let mut enc = PacketEncoder::default();
                enc.install_keys(s, true);
                let mut out = Vec::with_capacity(size + 128);
                b.iter(|| {
                    out.clear();
                    seal_one(&mut enc, &mut out, black_box(data));
                    black_box(&out);
                });
            });
        }
    }
    g.finish();
}

fn open(c: &mut Criterion) {
    let mut g = c.benchmark_group("open");
    for alg in CipherAlg::ALL {
        for size in SIZES {
            let data = vec![0xA5u8; size];
            // BATCH packets with sequence numbers 0.., opened by a fresh decoder each batch.
            let (s, _) = keys(alg);
            let mut enc = PacketEncoder::default();
            enc.install_keys(s, true);
            let mut sealed = Vec::new();
            let mut lens = Vec::with_capacity(BATCH);
            for _ in 0..BATCH {
                let before = sealed.len();
                seal_one(&mut enc, &mut sealed, &data);
                lens.push(sealed.len() - before);
            }
            g.throughput(Throughput::Bytes(size as u64));
            g.bench_function(BenchmarkId::new(alg.name(), size), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    let mut left = iters;
                    while left > 0 {
                        let n = usize::try_from(left.min(BATCH as u64)).unwrap_or(BATCH);
                        let mut buf = sealed.clone();
                        let (_, o) = keys(alg);
                        let mut dec = PacketDecoder::default();
                        dec.install_keys(o, true);
                        let start = Instant::now();
                        let mut at = 0usize;
                        for _ in 0..n {
                            let p = dec
                                .decode(&mut buf[at..])
                                .expect("authentic packet")
                                .expect("complete packet");
                            black_box(&buf[at + p.payload.start..at + p.payload.end]);
                            at += p.wire_len;
                        }
                        total += start.elapsed();
                        left -= n as u64;
                    }
                    total
                });
            });
            black_box(&lens);
        }
    }
    g.finish();
}

criterion_group!(benches, seal, open);
criterion_main!(benches);
