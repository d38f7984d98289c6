//! Benchmarks of veilgrid-zk: range proofs (prove / verify / batch), log appends,
//! checkpoints and bundle verification. Proof and bundle sizes are printed once.
//! `range_proof_cpu_time` reports thread CPU time rather than wall-clock time.
//!
//! Run: `cargo bench -p veilgrid-zk --bench zk` (release profile).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use veilgrid_core::protocol::ProtocolId;
use veilgrid_core::receipt::{Receipt, request_hash, response_hash};
use veilgrid_core::sign::SigningIdentity;
use veilgrid_zk::log::{MemoryStore, ProofBundle, TransparencyLog, encode_receipt_entry};
use veilgrid_zk::merkle::MerkleTree;
use veilgrid_zk::note::LogSigner;
use veilgrid_zk::range::{BatchVerifier, BitSize, Blinding, RangeContext, RangeProof, domains};

fn ctx() -> RangeContext {
    RangeContext::new(domains::AGG_VERIFIABLE_INPUT).bind_u64(b"round", 1)
}

fn inputs(bits: BitSize, n: usize) -> (Vec<u64>, Vec<Blinding>) {
    let values = (0..n as u64)
        .map(|i| (i.wrapping_mul(0x9e37_79b9_7f4a_7c15)) & bits.max_value())
        .collect();
    (values, (0..n).map(|_| Blinding::random()).collect())
}

fn range_proofs(c: &mut Criterion) {
    let mut g = c.benchmark_group("range_proof");
    g.sample_size(10).measurement_time(Duration::from_secs(4));
    for bits in [BitSize::Bits32, BitSize::Bits64] {
        for n in [1usize, 16, 64] {
            let (values, blindings) = inputs(bits, n);
            let id = format!("{n}x{}bit", bits.bits());
            let (proof, commitments) =
                RangeProof::prove(&ctx(), bits, &values, &blindings).unwrap();
            println!(
                "size: range proof {id}: {} bytes proof + {} bytes commitments",
                proof.to_bytes().len(),
                32 * commitments.len()
            );
            g.bench_function(BenchmarkId::new("prove", &id), |b| {
                b.iter(|| RangeProof::prove(&ctx(), bits, black_box(&values), &blindings).unwrap())
            });
            g.bench_function(BenchmarkId::new("verify", &id), |b| {
                b.iter(|| proof.verify(&ctx(), bits, black_box(&commitments)).unwrap())
            });
        }
    }
    g.finish();
}

/// CPU time this thread has run (`/proc/thread-self/schedstat`, first field, ns), if available.
/// On a shared machine wall-clock times include time spent waiting for a core;
/// CPU time is what the operation itself costs.
fn thread_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    Some(Duration::from_nanos(
        s.split_whitespace().next()?.parse().ok()?,
    ))
}

/// Time `iters` runs of `f` in thread CPU time.
fn cpu_iters(iters: u64, mut f: impl FnMut()) -> Duration {
    let start = thread_cpu().unwrap_or_default();
    for _ in 0..iters {
        f();
    }
    thread_cpu().unwrap_or_default().saturating_sub(start)
}

fn range_proofs_cpu(c: &mut Criterion) {
    if thread_cpu().is_none() {
        println!("note: no /proc/thread-self/schedstat, skipping CPU-time benchmarks");
        return;
    }
    let mut g = c.benchmark_group("range_proof_cpu_time");
    g.sample_size(20).measurement_time(Duration::from_secs(4));
    for bits in [BitSize::Bits32, BitSize::Bits64] {
        let (values, blindings) = inputs(bits, 1);
        let id = format!("1x{}bit", bits.bits());
        let (proof, commitments) = RangeProof::prove(&ctx(), bits, &values, &blindings).unwrap();
        g.bench_function(BenchmarkId::new("prove", &id), |b| {
            b.iter_custom(|iters| {
                cpu_iters(iters, || {
                    black_box(RangeProof::prove(&ctx(), bits, &values, &blindings).unwrap());
                })
            })
        });
        g.bench_function(BenchmarkId::new("verify", &id), |b| {
            b.iter_custom(|iters| {
                cpu_iters(iters, || {
                    proof.verify(&ctx(), bits, black_box(&commitments)).unwrap()
                })
            })
        });
    }
    g.finish();
}

fn batch_verification(c: &mut Criterion) {
    let mut g = c.benchmark_group("range_batch_verify");
    g.sample_size(10).measurement_time(Duration::from_secs(4));
    let bits = BitSize::Bits64;
    let k = 64;
    let proofs: Vec<_> = (0..k)
        .map(|i| {
            let ctx = RangeContext::new(domains::AGG_VERIFIABLE_INPUT).bind_u64(b"client", i);
            let (v, r) = inputs(bits, 1);
            let (p, c) = RangeProof::prove(&ctx, bits, &v, &r).unwrap();
            (ctx, p, c)
        })
        .collect();
    g.throughput(Throughput::Elements(k));
    g.bench_function("64 single 64-bit proofs, one by one", |b| {
        b.iter(|| {
            for (ctx, p, c) in &proofs {
                p.verify(ctx, bits, c).unwrap();
            }
        })
    });
    g.bench_function("64 single 64-bit proofs, batched", |b| {
        b.iter(|| {
            let mut batch = BatchVerifier::new();
            for (ctx, p, c) in &proofs {
                batch.add_range(ctx, bits, c, p).unwrap();
            }
            batch.verify().unwrap()
        })
    });
    g.bench_function("64 single 64-bit proofs, batched (thread CPU time)", |b| {
        b.iter_custom(|iters| {
            cpu_iters(iters, || {
                let mut batch = BatchVerifier::new();
                for (ctx, p, c) in &proofs {
                    batch.add_range(ctx, bits, c, p).unwrap();
                }
                batch.verify().unwrap()
            })
        })
    });
    g.finish();
}

fn receipts(n: u64) -> Vec<Vec<u8>> {
    let provider = SigningIdentity::from_secret_bytes(&[7u8; 32]);
    let protocol = ProtocolId::from_name("veilgrid/echo/v1");
    (0..n)
        .map(|i| {
            let r = Receipt {
                request_hash: request_hash(&protocol, &i.to_le_bytes()),
                response_hash: response_hash(&i.to_be_bytes()),
                provider_id: provider.verifier().to_bytes(),
                protocol_id: protocol,
                price: i,
                currency: "VGC".into(),
                started_at_ms: i,
                finished_at_ms: i + 1,
            };
            encode_receipt_entry(&r.sign(&provider).unwrap()).unwrap()
        })
        .collect()
}

fn signer() -> LogSigner {
    LogSigner::new(
        "veilgrid.bench/log",
        SigningIdentity::from_secret_bytes(&[9u8; 32]),
    )
    .unwrap()
}

fn log_and_bundles(c: &mut Criterion) {
    let batch = receipts(10_000);
    println!("size: one receipt log entry: {} bytes", batch[0].len());
    let mut g = c.benchmark_group("log");
    g.sample_size(10).measurement_time(Duration::from_secs(4));
    g.throughput(Throughput::Elements(batch.len() as u64));
    g.bench_function("append 10k receipts (memory store)", |b| {
        b.iter(|| {
            let mut log = TransparencyLog::open(MemoryStore::new(), signer()).unwrap();
            for r in &batch {
                log.append(r).unwrap();
            }
            log
        })
    });
    g.bench_function("append 10k receipts + 1 checkpoint", |b| {
        b.iter(|| {
            let mut log = TransparencyLog::open(MemoryStore::new(), signer()).unwrap();
            for r in &batch {
                log.append(r).unwrap();
            }
            log.checkpoint().unwrap()
        })
    });

    // A log of 100k receipts for bundles and reopening; a bare 1M-leaf tree for proofs.
    let mut big = TransparencyLog::open(MemoryStore::new(), signer()).unwrap();
    for r in receipts(100_000) {
        big.append(&r).unwrap();
    }
    big.checkpoint().unwrap();
    let bundle_text = big.bundle(54_321).unwrap().to_text();
    println!(
        "size: bundle (tree of {} entries, {} proof hashes): {} bytes",
        big.size(),
        big.bundle(54_321).unwrap().inclusion.len(),
        bundle_text.len()
    );
    let vkey = big.verifier().to_vkey();
    g.throughput(Throughput::Elements(1));
    g.bench_function(
        "bundle parse + verify (receipt signature, checkpoint, inclusion)",
        |b| {
            b.iter(|| {
                let verifier = veilgrid_zk::note::LogVerifier::from_vkey(&vkey).unwrap();
                let bundle = ProofBundle::parse(black_box(bundle_text.as_bytes())).unwrap();
                bundle.verify_receipt(&verifier).unwrap()
            })
        },
    );
    g.throughput(Throughput::Elements(big.size()));
    g.bench_function("reopen (rehash + validate) 100k-entry store", |b| {
        b.iter_batched(
            || big.store().clone(),
            |store| TransparencyLog::open(store, signer()).unwrap(),
            criterion::BatchSize::LargeInput,
        )
    });
    let mut tree = MerkleTree::new();
    for i in 0..1_000_000u64 {
        tree.append(&i.to_le_bytes());
    }
    g.throughput(Throughput::Elements(1));
    g.bench_function("inclusion + consistency proof in a 1M tree", |b| {
        b.iter(|| {
            (
                tree.inclusion_proof(black_box(123_456), 1_000_000).unwrap(),
                tree.consistency_proof(black_box(654_321), 1_000_000)
                    .unwrap(),
            )
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    range_proofs_cpu,
    range_proofs,
    batch_verification,
    log_and_bundles
);
criterion_main!(benches);
