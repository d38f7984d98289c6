//! Proofs and audit, full run (issue 6's benchmark list), printed as Markdown
//! tables for `benches/results/proofs.md`:
//!
//! * Bulletproofs range proofs: prove / verify for 1, 16 and 64 values of 32 and
//!   64 bits, proof sizes, and 64 single proofs batch-verified;
//! * Groth16 setup / prove / verify per circuit (the prover's development keys,
//!   the shipped FHE models, a tree ensemble, full-size clearing) with constraint
//!   counts and constraints per second, next to arkworks' raw figure (2^14
//!   squarings) measured in the same run;
//! * the prover's log: append throughput (SQLite on disk and in memory, one
//!   signed checkpoint per pushed batch), entry and bundle sizes;
//! * `audit verify`: one receipt bundle, and a whole directory (1000 receipts,
//!   a Groth16 proof, a verifiable aggregation round).
//!
//! Every figure: median wall-clock time over the repetitions and process CPU
//! time (user + system, all threads, from `/proc/self/stat`) per repetition, so
//! the load of a shared machine can be told apart.
//!
//! `cargo bench --bench proofs` (release), or with the dev profile at opt-level 3:
//! `CARGO_PROFILE_DEV_OPT_LEVEL=3 cargo test --bench proofs -- --bench`.
//! Without `--bench` (plain `cargo test`) every case runs once, small.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    path::Path,
    time::{Duration, Instant},
};

use prost::Message;
use veilgrid_aggregator::math::{
    AuditTranscript, Client, CommitteeMember, Round, RoundParams, ServerCollecting,
};
use veilgrid_circuits::{
    clearing::{self, BookShape, ClearingCircuit, Order, OrderBook, Side},
    field::Fr,
    groth16,
    inference::{self, InferenceCircuit, Model, PrivateInput, Tree, TreeEnsemble},
    reference::Squarings,
};
use veilgrid_core::{
    protocol::ProtocolId,
    receipt::{Receipt, request_hash, response_hash},
    seal::SealKeyPair,
    sign::SigningIdentity,
};
use veilgrid_proto::aggregation::v1 as agg;
use veilgrid_prover::{
    Prover,
    audit::{
        self, AGGREGATION, CHECKPOINT, CONSISTENCY, ENTRIES, KEYS, LOG_VKEY, PROOFS, entry_file,
    },
    audit_log::AuditLog,
    keys::{KeyRing, dev_specs},
};
use veilgrid_zk::range::{BatchVerifier, BitSize, Blinding, RangeContext, RangeProof, domains};

/// User + system CPU seconds of this process (10 ms ticks).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / 100.0
}

/// Median wall time and mean CPU time per repetition of `f`.
struct Timing {
    wall: Duration,
    cpu: Duration,
}

fn time(reps: usize, mut f: impl FnMut()) -> Timing {
    let reps = reps.max(1);
    let mut walls = Vec::with_capacity(reps);
    let c0 = cpu_seconds();
    for _ in 0..reps {
        let t = Instant::now();
        f();
        walls.push(t.elapsed());
    }
    let cpu = (cpu_seconds() - c0) / reps as f64;
    walls.sort();
    Timing {
        wall: walls[reps / 2],
        cpu: Duration::from_secs_f64(cpu.max(0.0)),
    }
}

fn ms(d: Duration) -> String {
    let v = d.as_secs_f64() * 1e3;
    if v >= 100.0 {
        format!("{v:.0} ms")
    } else if v >= 10.0 {
        format!("{v:.1} ms")
    } else {
        format!("{v:.2} ms")
    }
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

struct Run {
    full: bool,
}

impl Run {
    fn reps(&self, n: usize) -> usize {
        if self.full { n } else { 1 }
    }
}

fn range_proofs(run: &Run) {
    println!("\n## Bulletproofs range proofs (load {})\n", load());
    println!("| values × bits | prove wall | prove CPU | verify wall | verify CPU | proof bytes |");
    println!("|---|---|---|---|---|---|");
    let counts: &[usize] = if run.full { &[1, 16, 64] } else { &[1] };
    for &bits in &[BitSize::Bits32, BitSize::Bits64] {
        for &n in counts {
            let ctx = RangeContext::new(domains::AGG_VERIFIABLE_INPUT).bind_u64(b"bench", n as u64);
            let values: Vec<u64> = (0..n as u64)
                .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) & bits.max_value())
                .collect();
            let blindings: Vec<Blinding> = (0..n).map(|_| Blinding::random()).collect();
            let reps = run.reps(if n == 1 {
                60
            } else if n == 16 {
                12
            } else {
                5
            });
            let mut out = None;
            let prove = time(reps, || {
                out = Some(RangeProof::prove(&ctx, bits, &values, &blindings).unwrap());
            });
            let (proof, commitments) = out.unwrap();
            let verify = time(run.reps(if n == 1 { 300 } else { 30 }), || {
                proof.verify(&ctx, bits, &commitments).unwrap();
            });
            println!(
                "| {n} × {} | {} | {} | {} | {} | {} |",
                bits.bits(),
                ms(prove.wall),
                ms(prove.cpu),
                ms(verify.wall),
                ms(verify.cpu),
                proof.to_bytes().len()
            );
        }
    }
    // 64 single 64-bit proofs: one by one, and batched.
    let k = if run.full { 64 } else { 2 };
    let bits = BitSize::Bits64;
    let proofs: Vec<_> = (0..k)
        .map(|i| {
            let ctx = RangeContext::new(domains::AGG_VERIFIABLE_INPUT).bind_u64(b"client", i);
            let (p, c) =
                RangeProof::prove(&ctx, bits, &[i * 1_000_003], &[Blinding::random()]).unwrap();
            (ctx, p, c)
        })
        .collect();
    let single = time(run.reps(10), || {
        for (ctx, p, c) in &proofs {
            p.verify(ctx, bits, c).unwrap();
        }
    });
    let batched = time(run.reps(20), || {
        let mut b = BatchVerifier::new();
        for (ctx, p, c) in &proofs {
            b.add_range(ctx, bits, c, p).unwrap();
        }
        b.verify().unwrap();
    });
    println!(
        "\n{k} single 64-bit proofs: one by one {} wall / {} CPU; batch-verified {} wall / {} CPU ({:.3} ms CPU per proof)",
        ms(single.wall),
        ms(single.cpu),
        ms(batched.wall),
        ms(batched.cpu),
        batched.cpu.as_secs_f64() * 1e3 / k as f64
    );
}

fn trees(n_trees: usize) -> Model {
    let trees = (0..n_trees)
        .map(|t| Tree {
            features: (0..15).map(|i| ((t * 7 + i * 3) % 30) as u32).collect(),
            thresholds: (0..15).map(|i| ((t * 31 + i * 17) % 257) as u32).collect(),
            leaves: (0..16)
                .map(|i| ((t * 101 + i * 977) % 65536) as i64 - 32768)
                .collect(),
        })
        .collect();
    Model {
        n_features: 30,
        input_bits: 8,
        param_bits: 16,
        kind: inference::ModelKind::Trees(TreeEnsemble {
            depth: 4,
            trees,
            base: 0,
            threshold: 0,
        }),
    }
}

fn book(shape: BookShape) -> OrderBook {
    let orders = (0..shape.max_orders)
        .map(|i| Order {
            side: if i % 2 == 0 { Side::Buy } else { Side::Sell },
            limit: ((i * 37) % shape.levels) as u8,
            qty: (i as u32 * 7919) % 1_000_000 + 1,
        })
        .collect();
    OrderBook::with_random_blindings(shape, orders, &mut rand_core::OsRng).unwrap()
}

fn groth16_row<C: groth16::Circuit<Fr> + Clone>(
    run: &Run,
    name: &str,
    constraints: usize,
    blank: C,
    real: C,
    public: &[Fr],
) {
    let mut rng = rand_core::OsRng;
    let setup_reps = run.reps(if constraints > 10_000 { 1 } else { 3 });
    let mut keys = None;
    let setup = time(setup_reps, || {
        keys = Some(groth16::setup(blank.clone(), &mut rng).unwrap());
    });
    let keys = keys.unwrap();
    let mut proof = None;
    let prove = time(run.reps(3), || {
        proof = Some(groth16::prove(&keys.proving_key, real.clone(), &mut rng).unwrap());
    });
    let proof = proof.unwrap();
    let prepared = groth16::PreparedVerifier::new(&keys.verifying_key);
    let verify = time(run.reps(200), || {
        prepared.verify(public, &proof).unwrap();
    });
    let pk = groth16::proving_key_to_bytes(&keys.proving_key)
        .unwrap()
        .len();
    println!(
        "| {name} | {constraints} | {} / {} | {} / {} | {:.0} | {:.0} | {} / {} | {:.1} MB |",
        ms(setup.wall),
        ms(setup.cpu),
        ms(prove.wall),
        ms(prove.cpu),
        constraints as f64 / prove.wall.as_secs_f64(),
        constraints as f64 / prove.cpu.as_secs_f64().max(1e-9),
        ms(verify.wall),
        ms(verify.cpu),
        pk as f64 / 1e6
    );
}

fn groth16_circuits(run: &Run) {
    println!("\n## Groth16 (BN254) per circuit (load {})\n", load());
    println!(
        "| circuit | constraints | setup wall / CPU | prove wall / CPU | constraints/s (wall) | constraints/CPU-s | verify (prepared) wall / CPU | pk |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let n = if run.full { 1 << 14 } else { 1 << 8 };
    let sq = Squarings::new(n, Fr::from(3u64));
    groth16_row(
        run,
        &format!("arkworks raw: 2^{} squarings", n.trailing_zeros()),
        sq.constraints(),
        sq.clone(),
        sq.clone(),
        &sq.public(),
    );
    let mut rng = rand_core::OsRng;
    let mut models: Vec<(String, Model)> = vec![(
        "inference-demo-linear (4 features)".into(),
        veilgrid_prover::keys::demo_model(),
    )];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crypto/fhe/models");
    for f in [
        "breast_cancer_logreg.quant.json",
        "breast_cancer_gbt.quant.json",
    ] {
        if let Ok(bytes) = std::fs::read(dir.join(f)) {
            models.push((
                format!("inference {f}"),
                Model::from_quantized_v1_json(&bytes).unwrap(),
            ));
        }
    }
    if run.full {
        models.push(("inference, 8 trees × depth 4, n = 30".into(), trees(8)));
    }
    for (name, m) in models {
        let n = inference::count_constraints(m.shape()).unwrap();
        let x: Vec<u64> = (0..m.n_features as u64)
            .map(|i| (i * 37) % (1u64 << m.input_bits))
            .collect();
        let real = InferenceCircuit::new(m.clone(), PrivateInput::new(x, &mut rng)).unwrap();
        let public = real.public().to_field_elements();
        groth16_row(
            run,
            &name,
            n,
            InferenceCircuit::blank(m.shape()).unwrap(),
            real,
            &public,
        );
    }
    let shapes: &[BookShape] = if run.full {
        &[
            BookShape {
                max_orders: 4,
                levels: 4,
            },
            BookShape::DEFAULT,
        ]
    } else {
        &[BookShape {
            max_orders: 4,
            levels: 4,
        }]
    };
    for &shape in shapes {
        let n = clearing::count_constraints(shape).unwrap();
        let (real, _) = ClearingCircuit::new(book(shape)).unwrap();
        let public = real.public().to_field_elements();
        groth16_row(
            run,
            &format!("clearing {}×{}", shape.max_orders, shape.levels),
            n,
            ClearingCircuit::blank(shape).unwrap(),
            real,
            &public,
        );
    }
    println!("\nGroth16 proofs are 128 bytes (compressed).");
}

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

fn log_append(run: &Run) {
    println!("\n## The prover's log (load {})\n", load());
    let id = SigningIdentity::generate();
    let total: u64 = if run.full { 20_000 } else { 1000 };
    let batches: Vec<Vec<(u64, Vec<u8>)>> = (0..total / 500)
        .map(|b| receipts(b * 500 + 1, 500, &id))
        .collect();
    for on_disk in [true, false] {
        let t = time(run.reps(3), || {
            let dir = tempfile::tempdir().unwrap();
            let log = AuditLog::open(on_disk.then_some(dir.path()), "bench.example/log").unwrap();
            let mut after = 0;
            for batch in &batches {
                after = log
                    .append_receipts("router", after, batch)
                    .unwrap()
                    .last_seq;
            }
        });
        println!(
            "- append {total} receipts in pushes of 500 (signature check, append, one signed checkpoint per push), {}: {} wall → **{:.0} receipts/s** ({:.0} per CPU-s)",
            if on_disk {
                "SQLite on disk"
            } else {
                "SQLite in memory"
            },
            ms(t.wall),
            total as f64 / t.wall.as_secs_f64(),
            total as f64 / t.cpu.as_secs_f64().max(1e-9),
        );
    }
    println!("- a receipt log entry is {} bytes", batches[0][0].1.len());
}

/// A finished verifiable aggregation round of `clients` clients with `len`
/// entries of `bits` bits, and its `Result` completion.
fn agg_round(tag: u8, clients: usize, len: u32, bits: u32) -> (Round, Vec<u8>) {
    let params = RoundParams::new(len, bits, clients as u32, 3, 1)
        .unwrap()
        .verifiable()
        .unwrap();
    let keys: Vec<SealKeyPair> = (0..3).map(|_| SealKeyPair::generate()).collect();
    let round = Round::new(
        [tag; 32],
        params,
        [tag ^ 0x55; 32],
        keys.iter().map(|k| k.public()).collect(),
    )
    .unwrap();
    let mut rng = rand_core::OsRng;
    let msgs: Vec<_> = (0..clients)
        .map(|i| {
            let x: Vec<u64> = (0..len as u64)
                .map(|j| (i as u64 * 131 + j * 7) % (1 << bits))
                .collect();
            Client::new(&round, i as u64 + 1)
                .encode(&x)
                .unwrap()
                .mask(&mut rng)
                .unwrap()
        })
        .collect();
    let mut server = ServerCollecting::new(&round);
    for m in &msgs {
        server.accept(m).unwrap();
    }
    let mut server = server.close().unwrap();
    for i in [1u16, 2] {
        let mut m = CommitteeMember::new(&round, i, &keys[i as usize - 1]).unwrap();
        for msg in &msgs {
            m.accept_share(msg.client(), msg.sealed_share(i).unwrap())
                .unwrap();
        }
        server
            .accept_member(&m.respond(server.present()).unwrap())
            .unwrap();
    }
    let result = server.finish().unwrap();
    let t = AuditTranscript::from_round(&msgs, &result).unwrap();
    let resp = agg::ResultResponse {
        sum: result.sum.clone(),
        counted: result.counted.clone(),
        members: vec![1, 2],
        blindings: t
            .blindings
            .iter()
            .map(|b| b.as_bytes().to_vec().into())
            .collect(),
        transcript: t.to_bytes(&round).into(),
        excluded: vec![],
    };
    (round, resp.encode_to_vec())
}

fn signed_entry(id: &SigningIdentity, protocol: &str, response: &[u8]) -> Vec<u8> {
    let p = ProtocolId::from_name(protocol);
    let r = Receipt {
        request_hash: request_hash(&p, b"x"),
        response_hash: response_hash(response),
        provider_id: id.verifier().to_bytes(),
        protocol_id: p,
        price: 0,
        currency: "VG".into(),
        started_at_ms: 1,
        finished_at_ms: 2,
    }
    .sign(id)
    .unwrap();
    let mut e = r.receipt.canonical_bytes().unwrap();
    e.extend_from_slice(&r.signature);
    e
}

/// An audit directory: `n` receipts, one clearing proof and one verifiable
/// aggregation round, both bound to logged receipts.
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
    let (round, result) = agg_round(3, 8, 16, 16);
    let id = SigningIdentity::generate();
    let mut rs = receipts(1, n - 2, &id);
    rs.push((n - 1, signed_entry(&id, "veilgrid/prove/v1", &response)));
    rs.push((n, signed_entry(&id, "veilgrid/agg/result/v1", &result)));
    log.append_receipts("router", 0, &rs).unwrap();
    let root = dir.path();
    for d in [ENTRIES, CONSISTENCY, KEYS, PROOFS, AGGREGATION] {
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
    let stem = hex::encode(round.id());
    std::fs::write(
        root.join(AGGREGATION).join(format!("{stem}.round")),
        round.to_bytes(),
    )
    .unwrap();
    std::fs::write(
        root.join(AGGREGATION).join(format!("{stem}.result")),
        &result,
    )
    .unwrap();
    dir
}

fn bundle_verification(run: &Run) {
    println!("\n## audit verify (load {})\n", load());
    let n = if run.full { 1000 } else { 20 };
    let dir = audit_dir(n);
    let key = std::fs::read_to_string(dir.path().join(LOG_VKEY)).unwrap();
    let one = dir.path().join(ENTRIES).join(entry_file(n / 2));
    let bundle_len = std::fs::metadata(&one).unwrap().len();
    let t = time(run.reps(200), || {
        assert!(audit::verify_path(&one, Some(&key)).unwrap().ok)
    });
    println!(
        "- one receipt bundle file (log of {n}; receipt signature, checkpoint signature, inclusion proof): {} wall / {} CPU; the bundle is {bundle_len} bytes",
        ms(t.wall),
        ms(t.cpu)
    );
    let mut items = 0;
    let t = time(run.reps(10), || {
        let r = audit::verify_path(dir.path(), Some(&key)).unwrap();
        assert!(r.ok, "{r:#?}");
        items = r.items.len();
    });
    println!(
        "- whole directory ({n} receipts, 1 clearing Groth16 proof, 1 verifiable aggregation round of 8 clients × 16 entries of 16 bits: 8 range proofs batch-verified + commitment check; {items} items): {} wall / {} CPU",
        ms(t.wall),
        ms(t.cpu)
    );
}

fn main() {
    let run = Run {
        full: std::env::args().any(|a| a == "--bench"),
    };
    println!(
        "# benches/proofs ({}), {} core(s), load {}",
        if run.full { "full run" } else { "smoke run" },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load()
    );
    range_proofs(&run);
    log_append(&run);
    bundle_verification(&run);
    groth16_circuits(&run);
}
