//! Proofs and audit, as the services run them: the prover's persistent log
//! (SQLite, one transaction and one signed checkpoint per pushed batch), the
//! auditor's offline verification of bundles and of a whole audit directory,
//! and Groth16 prove/verify with the keys the prover sets up.
//!
//! The primitives are benchmarked where they live (numbers in their docs):
//! range proofs 1/16/64 × 32/64 bits, batch verification, the in-memory log
//! and bundle verification in `crypto/zk` (`cargo bench -p veilgrid-zk`);
//! Groth16 setup/prove/verify per circuit at full size with constraint counts
//! and arkworks' raw 2^14-constraint figure in `circuits`
//! (`cargo bench -p veilgrid-circuits --bench circuits`).
//!
//! `cargo bench --bench proofs`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use veilgrid_core::{
    protocol::ProtocolId,
    receipt::{Receipt, request_hash, response_hash},
    sign::SigningIdentity,
};
use veilgrid_prover::{
    Prover,
    audit::{self, CHECKPOINT, CONSISTENCY, ENTRIES, KEYS, LOG_VKEY, PROOFS, entry_file},
    audit_log::AuditLog,
    keys::{KeyRing, dev_specs},
};

fn receipts(from: u64, n: u64, id: &SigningIdentity) -> Vec<(u64, Vec<u8>)> {
    let p = ProtocolId::from_name("veilgrid/echo/v1");
    (from..from + n)
        .map(|seq| {
            let payload = seq.to_be_bytes();
            let r = Receipt {
                request_hash: request_hash(&p, &payload),
                response_hash: response_hash(&payload),
                provider_id: id.verifier().to_bytes(),
                protocol_id: p,
                price: 1,
                currency: "VG".into(),
                started_at_ms: seq,
                finished_at_ms: seq + 1,
            }
            .sign(id)
            .unwrap();
            let mut e = r.receipt.canonical_bytes().unwrap();
            e.extend_from_slice(&r.signature);
            (seq, e)
        })
        .collect()
}

/// The prover's log on disk: pushes of 500 receipts (each: signature checks,
/// appends, cursor and checkpoint in one SQLite transaction).
fn log_append(c: &mut Criterion) {
    let id = SigningIdentity::generate();
    let batches: Vec<Vec<(u64, Vec<u8>)>> =
        (0..20).map(|b| receipts(b * 500 + 1, 500, &id)).collect();
    let mut g = c.benchmark_group("prover_log");
    g.sample_size(10);
    g.throughput(Throughput::Elements(10_000));
    g.bench_function(
        "push 10k receipts in batches of 500 (SQLite, checkpoint per batch)",
        |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let dir = tempfile::tempdir().unwrap();
                    let log = AuditLog::open(Some(dir.path()), "bench.example/log").unwrap();
                    let t = Instant::now();
                    let mut after = 0;
                    for batch in &batches {
                        after = log
                            .append_receipts("router", after, batch)
                            .unwrap()
                            .last_seq;
                    }
                    total += t.elapsed();
                }
                total
            })
        },
    );
    g.finish();
}

/// Build an audit directory: `n` receipts, one clearing proof bound to a logged receipt.
fn audit_dir(n: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let log = std::sync::Arc::new(AuditLog::open(None, "bench.example/log").unwrap());
    let prover = Prover::new(
        log.clone(),
        Some(KeyRing::generate(&dev_specs()[..1]).unwrap()),
        false,
        None,
    );
    let (_, response) = prover
        .prove(&veilgrid_proto::prover::v1::ProveRequest {
            key_name: "clearing-4x4".into(),
            witness_json:
                r#"{"orders":[{"side":"sell","limit":0,"qty":3},{"side":"buy","limit":2,"qty":2}]}"#
                    .into(),
        })
        .unwrap();
    let id = SigningIdentity::generate();
    let mut rs = receipts(1, n - 1, &id);
    let p = ProtocolId::from_name("veilgrid/prove/v1");
    let r = Receipt {
        request_hash: request_hash(&p, b"x"),
        response_hash: response_hash(&response),
        provider_id: id.verifier().to_bytes(),
        protocol_id: p,
        price: 0,
        currency: "VG".into(),
        started_at_ms: 1,
        finished_at_ms: 2,
    }
    .sign(&id)
    .unwrap();
    let mut e = r.receipt.canonical_bytes().unwrap();
    e.extend_from_slice(&r.signature);
    rs.push((n, e));
    log.append_receipts("router", 0, &rs).unwrap();
    let root = dir.path();
    for d in [ENTRIES, CONSISTENCY, KEYS, PROOFS] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join(LOG_VKEY), log.verifier().to_vkey()).unwrap();
    std::fs::write(root.join(CHECKPOINT), log.latest().unwrap().note()).unwrap();
    for (i, b) in log.bundles(0, n as usize, 0).unwrap().iter().enumerate() {
        std::fs::write(root.join(ENTRIES).join(entry_file(i as u64)), b.to_text()).unwrap();
    }
    let keys = prover.verifying_keys().unwrap().keys;
    let mut manifest = Vec::new();
    for k in keys {
        std::fs::write(root.join(KEYS).join(format!("{}.vk", k.name)), &k.key).unwrap();
        manifest.push(serde_json::json!({"name": k.name, "circuit": k.circuit, "vk_id": k.id, "constraints": k.constraints}));
    }
    std::fs::write(
        root.join(KEYS).join("keys.json"),
        serde_json::to_string(&manifest).unwrap(),
    )
    .unwrap();
    std::fs::write(root.join(PROOFS).join("000001.bin"), &response).unwrap();
    dir
}

/// `veilgrid audit verify` on one receipt bundle, and on a directory.
fn bundle_verification(c: &mut Criterion) {
    let mut g = c.benchmark_group("audit_verify");
    g.sample_size(10);
    let dir = audit_dir(1000);
    let one = dir.path().join(ENTRIES).join(entry_file(500));
    let key = std::fs::read_to_string(dir.path().join(LOG_VKEY)).unwrap();
    g.bench_function("one receipt bundle file (log of 1000)", |b| {
        b.iter(|| assert!(audit::verify_path(&one, Some(&key)).unwrap().ok))
    });
    g.throughput(Throughput::Elements(1000));
    g.bench_function(
        BenchmarkId::new("whole directory", "1000 receipts + 1 Groth16 proof"),
        |b| b.iter(|| assert!(audit::verify_path(dir.path(), Some(&key)).unwrap().ok)),
    );
    g.finish();
}

/// Groth16 prove (with the in-circuit check and the self-verification the
/// prover does) and verify with the development keys, per circuit.
fn groth16_dev_keys(c: &mut Criterion) {
    let ring = KeyRing::generate(&dev_specs()).unwrap();
    let keys = ring.verifying_keys().unwrap();
    let mut g = c.benchmark_group("prover_groth16");
    g.sample_size(10);
    for (name, witness) in [
        (
            "clearing-4x4",
            r#"{"orders":[{"side":"sell","limit":0,"qty":3},{"side":"buy","limit":2,"qty":2}]}"#,
        ),
        ("inference-demo-linear", r#"{"features":[9,8,7,6]}"#),
    ] {
        let k = keys.iter().find(|k| k.name == name).unwrap();
        eprintln!(
            "CIRCUIT {name}: {} constraints, vk {} bytes",
            k.constraints,
            k.key.len()
        );
        g.bench_function(
            BenchmarkId::new("prove", format!("{name} ({} constraints)", k.constraints)),
            |b| b.iter(|| ring.prove(name, witness).unwrap()),
        );
        let record = ring.prove(name, witness).unwrap();
        let vk = veilgrid_circuits::groth16::verifying_key_from_bytes(&k.key).unwrap();
        g.bench_function(BenchmarkId::new("verify", name), |b| {
            b.iter(|| veilgrid_prover::keys::verify_record(&record, &vk).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, log_append, bundle_verification, groth16_dev_keys);
criterion_main!(benches);
