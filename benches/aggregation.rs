//! One-shot aggregation (issue 4): client, committee member and server compute, and bytes per
//! message, for N = 1000 clients and L ∈ {10^3, 10^4, 10^5}, next to the plaintext sum of the same
//! vectors (the floor).
//!
//! Run: `cargo bench --bench aggregation` (release profile), or without the release build of
//! every dependency: `CARGO_PROFILE_DEV_OPT_LEVEL=3 cargo test --bench aggregation --no-run`,
//! then the printed binary with `--bench` (dependencies are at opt-level 3 in the dev profile
//! already). `VG_AGG_BENCH_LENGTHS=1000,10000` runs a subset, `VG_AGG_BENCH_VERIFIABLE=1` adds
//! the verifiable-mode measurements. `benches/aggregation_secagg.sh` runs it next to Flower's
//! SecAgg+.
//!
//! The committee member is measured in its two parts: `member_open_share`, opening and checking
//! one sealed share payload, which a member does as each client's message arrives while the
//! round collects (N of them per round, spread over the collection window), and
//! `member_answer_N1000`, its one message at the end of the round (the running share sum over
//! the declared set, encoded); `member_answer_N1000_10_left_out` when 10 clients whose shares it
//! opened are left out of the set (each costs one more opening).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use rand::{Rng, SeedableRng, rngs::OsRng, rngs::StdRng};

use veilgrid_aggregator::math::*;
use veilgrid_core::seal::SealKeyPair;

const N: usize = 1000;
const BITS: u32 = 16;
const M: u16 = 5;
const T: u16 = 2;

fn lengths() -> Vec<usize> {
    std::env::var("VG_AGG_BENCH_LENGTHS")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 10_000, 100_000])
}

struct Fixture {
    round: Round,
    keys: Vec<SealKeyPair>,
    inputs: Vec<Vec<u64>>,
    messages: Vec<Vec<u8>>,
}

fn fixture(len: usize) -> Fixture {
    let keys: Vec<SealKeyPair> = (0..M).map(|_| SealKeyPair::generate()).collect();
    let params = RoundParams::new(len as u32, BITS, N as u32, M, T).unwrap();
    let round = Round::new(
        [len as u8; 32],
        params,
        [7; 32],
        keys.iter().map(|k| k.public()).collect(),
    )
    .unwrap();
    let mut rng = StdRng::seed_from_u64(len as u64);
    let inputs: Vec<Vec<u64>> = (0..N)
        .map(|_| (0..len).map(|_| rng.gen_range(0..1u64 << BITS)).collect())
        .collect();
    let messages = inputs
        .iter()
        .enumerate()
        .map(|(i, x)| {
            Client::new(&round, i as u64)
                .encode(x)
                .unwrap()
                .mask(&mut OsRng)
                .unwrap()
                .to_bytes(&round)
        })
        .collect();
    Fixture {
        round,
        keys,
        inputs,
        messages,
    }
}

fn bench(c: &mut Criterion) {
    for len in lengths() {
        let start = Instant::now();
        let f = fixture(len);
        eprintln!(
            "[setup L={len}: {:.1?} for {N} client messages]",
            start.elapsed()
        );
        let round = &f.round;
        let parsed: Vec<ClientMessage> = f
            .messages
            .iter()
            .map(|b| ClientMessage::from_bytes(round, b).unwrap())
            .collect();
        let present = PresentSet::new(round, (0..N as u64).collect()).unwrap();
        let member_msg = |i: u16| {
            let mut m = CommitteeMember::new(round, i, &f.keys[i as usize - 1]).unwrap();
            for msg in &parsed {
                m.accept_share(msg.client(), msg.sealed_share(i).unwrap())
                    .unwrap();
            }
            m.respond(&present).unwrap()
        };
        let answers: Vec<MemberMessage> = (1..=T + 1).map(member_msg).collect();

        println!(
            "bytes L={len}: client message {} (masked vector {}, {} sealed shares of {}), member message {}, plaintext vector {}",
            ClientMessage::encoded_len(round),
            (round.params().masked_length() * round.params().ring().output_bits() as usize)
                .div_ceil(8),
            M,
            round.sealed_share_len(),
            MemberMessage::encoded_len(round),
            len * 8
        );

        let mut g = c.benchmark_group(format!("agg_L{len}"));
        g.sample_size(10);
        g.warm_up_time(Duration::from_millis(500));
        g.measurement_time(Duration::from_secs(if len >= 100_000 { 20 } else { 5 }));

        // Client: encode + mask + share + seal, and the message's canonical bytes.
        g.bench_function("client", |b| {
            b.iter(|| {
                let msg = Client::new(round, 1)
                    .encode(&f.inputs[1])
                    .unwrap()
                    .mask(&mut OsRng)
                    .unwrap();
                black_box(msg.to_bytes(round))
            })
        });

        if len == lengths()[0] {
            // Committee member (independent of L). During the round: open one sealed payload,
            // check it, add its share to the running sum.
            let mut k = 0usize;
            g.bench_function("member_open_share", |b| {
                b.iter_batched(
                    || {
                        k = (k + 1) % N;
                        (CommitteeMember::new(round, 1, &f.keys[0]).unwrap(), k)
                    },
                    |(mut m, k)| {
                        let msg = &parsed[k];
                        m.accept_share(msg.client(), msg.sealed_share(1).unwrap())
                            .unwrap();
                        black_box(m)
                    },
                    BatchSize::SmallInput,
                )
            });
            // End of the round: the one message over the declared set, from the opened shares.
            // Timed by hand (median of 15 runs): each run needs a member that has opened all
            // N shares (0.1 s of setup), which criterion's batched setup would repeat
            // thousands of times.
            let most = PresentSet::new(round, (10..N as u64).collect()).unwrap();
            for (name, set) in [
                ("member_answer_N1000", &present),
                ("member_answer_N1000_10_left_out", &most),
            ] {
                let mut times: Vec<Duration> = (0..15)
                    .map(|_| {
                        let mut m = CommitteeMember::new(round, 1, &f.keys[0]).unwrap();
                        for msg in &parsed {
                            m.accept_share(msg.client(), msg.sealed_share(1).unwrap())
                                .unwrap();
                        }
                        let held = m.suspend();
                        let start = Instant::now();
                        let m = CommitteeMember::resume(round, 1, &f.keys[0], held).unwrap();
                        black_box(m.respond(set).unwrap().to_bytes(round));
                        start.elapsed()
                    })
                    .collect();
                times.sort();
                println!(
                    "{name}: median {:.3?} (min {:.3?}, max {:.3?}, 15 runs, wall)",
                    times[7], times[0], times[14]
                );
            }
        }

        // Server: decode N messages, sum, reconstruct from t+1 members, expand G once, decode.
        g.bench_function("server_N1000", |b| {
            b.iter(|| {
                let mut s = ServerCollecting::new(round);
                for bytes in &f.messages {
                    s.accept_bytes(bytes).unwrap();
                }
                let mut s = s.close().unwrap();
                for a in &answers {
                    s.accept_member(a).unwrap();
                }
                black_box(s.finish().unwrap())
            })
        });
        g.bench_function("server_finish_only", |b| {
            b.iter_batched(
                || {
                    let mut s = ServerCollecting::new(round);
                    for m in &parsed {
                        s.accept(m).unwrap();
                    }
                    let mut s = s.close().unwrap();
                    for a in &answers {
                        s.accept_member(a).unwrap();
                    }
                    s
                },
                |s| black_box(s.finish().unwrap()),
                BatchSize::LargeInput,
            )
        });

        // The floor: summing the same plaintext vectors.
        g.bench_function("plaintext_sum_N1000", |b| {
            b.iter(|| {
                let mut acc = vec![0u64; len];
                for x in &f.inputs {
                    for (a, v) in acc.iter_mut().zip(x) {
                        *a += v;
                    }
                }
                black_box(acc)
            })
        });
        g.finish();

        // Correctness of what was measured.
        let mut s = ServerCollecting::new(round);
        for m in &parsed {
            s.accept(m).unwrap();
        }
        let mut s = s.close().unwrap();
        for a in &answers {
            s.accept_member(a).unwrap();
        }
        let sum = s.finish().unwrap().sum;
        let mut expected = vec![0u64; len];
        for x in &f.inputs {
            for (a, v) in expected.iter_mut().zip(x) {
                *a += v;
            }
        }
        assert_eq!(sum, expected);
    }
    if std::env::var("VG_AGG_BENCH_VERIFIABLE").is_ok() {
        verifiable(c);
    }
}

/// Verifiable mode: client proving time, server verification time per client and the final
/// opening check, by L (single timed runs: proofs at L = 4096 take seconds). Printed, not
/// sampled by criterion.
fn verifiable(_c: &mut Criterion) {
    for len in [16usize, 256, 1024, 4096] {
        let keys: Vec<SealKeyPair> = (0..3).map(|_| SealKeyPair::generate()).collect();
        let params = RoundParams::new(len as u32, 16, 100, 3, 1)
            .unwrap()
            .verifiable()
            .unwrap();
        let round = Round::new(
            [9; 32],
            params,
            [9; 32],
            keys.iter().map(|k| k.public()).collect(),
        )
        .unwrap();
        let x = vec![12345u64; len];
        let start = Instant::now();
        let first = Client::new(&round, 0)
            .encode(&x)
            .unwrap()
            .mask(&mut OsRng)
            .unwrap();
        let with_gens = start.elapsed();
        let start = Instant::now();
        let second = Client::new(&round, 1)
            .encode(&x)
            .unwrap()
            .mask(&mut OsRng)
            .unwrap();
        let client = start.elapsed();
        let mut server = ServerCollecting::new(&round);
        let start = Instant::now();
        server.accept(&first).unwrap();
        let verify = start.elapsed();
        server.accept(&second).unwrap();
        let mut server = server.close().unwrap();
        for i in [1u16, 2] {
            let mut m = CommitteeMember::new(&round, i, &keys[i as usize - 1]).unwrap();
            for msg in [&first, &second] {
                m.accept_share(msg.client(), msg.sealed_share(i).unwrap())
                    .unwrap();
            }
            server
                .accept_member(&m.respond(server.present()).unwrap())
                .unwrap();
        }
        let start = Instant::now();
        let result = server.finish().unwrap();
        let finish = start.elapsed();
        assert_eq!(result.sum, vec![2 * 12345; len]);
        println!(
            "verifiable L={len}: client {client:.1?} (first, with generators: {with_gens:.1?}), \
             server verify per client {verify:.1?}, finish (2 clients) {finish:.1?}, \
             message {} bytes (masked {} entries, proof {} bytes)",
            ClientMessage::encoded_len(&round),
            round.params().masked_length(),
            veilgrid_aggregator::math::verifiable::Attachment::proof_len(&round),
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
