//! Groth16 setup / prove / verify for each circuit, with constraint counts and
//! constraints per second, next to arkworks' raw figure: the same prover on a
//! synthetic circuit of 2^14 multiplication constraints (a chain of squarings).
//!
//! `cargo bench -p veilgrid-circuits --bench circuits`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ark_r1cs_std::{alloc::AllocVar, fields::FieldVar, fields::fp::FpVar};
use ark_relations::gr1cs::{ConstraintSynthesizer, ConstraintSystemRef};
use ark_std::rand::{Rng, SeedableRng, rngs::StdRng};
use criterion::{Criterion, criterion_group, criterion_main};
use std::time::{Duration, Instant};
use veilgrid_circuits::clearing::{self, BookShape, ClearingCircuit, Order, OrderBook, Side};
use veilgrid_circuits::field::Fr;
use veilgrid_circuits::groth16;
use veilgrid_circuits::inference::{
    self, InferenceCircuit, LinearModel, Model, ModelKind, PrivateInput, Tree, TreeEnsemble,
};

/// `x_{i+1} = x_i^2`, `n` constraints, one public input (the last value).
#[derive(Clone)]
struct Squarings {
    n: usize,
    x0: Fr,
}

impl ConstraintSynthesizer<Fr> for Squarings {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> ark_relations::gr1cs::Result<()> {
        let mut v = self.x0;
        for _ in 0..self.n {
            v = v * v;
        }
        let out = FpVar::new_input(cs.clone(), || Ok(v))?;
        let mut x = FpVar::new_witness(cs.clone(), || Ok(self.x0))?;
        for _ in 0..self.n - 1 {
            x = x.square()?;
        }
        use ark_r1cs_std::eq::EqGadget;
        x.square()?.enforce_equal(&out)?;
        Ok(())
    }
}

/// User + system CPU time of this process (all threads), from `/proc/self/stat`
/// (clock ticks of 10 ms; callers average over repetitions). 0 if unavailable.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // fields after the parenthesized command name; utime and stime are 14 and 15
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn linear_model(rng: &mut StdRng) -> Model {
    Model {
        n_features: 30,
        input_bits: 8,
        param_bits: 16,
        kind: ModelKind::Linear(LinearModel {
            weights: (0..30).map(|_| rng.gen_range(-32768..32768)).collect(),
            bias: rng.gen_range(-1_000_000..1_000_000),
            threshold: 0,
        }),
    }
}

fn tree_model(rng: &mut StdRng) -> Model {
    let trees = (0..8)
        .map(|_| Tree {
            features: (0..15).map(|_| rng.gen_range(0..30)).collect(),
            thresholds: (0..15).map(|_| rng.gen_range(0..=256)).collect(),
            leaves: (0..16).map(|_| rng.gen_range(-32768..32768)).collect(),
        })
        .collect();
    Model {
        n_features: 30,
        input_bits: 8,
        param_bits: 16,
        kind: ModelKind::Trees(TreeEnsemble {
            depth: 4,
            trees,
            base: 0,
            threshold: 0,
        }),
    }
}

fn book(rng: &mut StdRng) -> OrderBook {
    let orders = (0..64)
        .map(|_| Order {
            side: if rng.gen_bool(0.5) {
                Side::Buy
            } else {
                Side::Sell
            },
            limit: rng.gen_range(0..64),
            qty: rng.gen_range(1..1_000_000),
        })
        .collect();
    OrderBook::with_random_blindings(BookShape::DEFAULT, orders, rng).unwrap()
}

fn bench_circuit<C: ConstraintSynthesizer<Fr> + Clone>(
    c: &mut Criterion,
    name: &str,
    constraints: usize,
    blank: C,
    real: C,
    public: Vec<Fr>,
) {
    let mut rng = StdRng::seed_from_u64(7);
    let mut g = c.benchmark_group(format!("groth16/{name}"));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.bench_function("setup", |b| {
        b.iter(|| groth16::setup(blank.clone(), &mut rng).unwrap())
    });
    let keys = groth16::setup(blank.clone(), &mut rng).unwrap();
    g.bench_function("prove", |b| {
        b.iter(|| groth16::prove(&keys.proving_key, real.clone(), &mut rng).unwrap())
    });
    let proof = groth16::prove(&keys.proving_key, real.clone(), &mut rng).unwrap();
    g.bench_function("verify", |b| {
        b.iter(|| groth16::verify(&keys.verifying_key, &public, &proof).unwrap())
    });
    let prepared = groth16::PreparedVerifier::new(&keys.verifying_key);
    g.bench_function("verify_prepared", |b| {
        b.iter(|| prepared.verify(&public, &proof).unwrap())
    });
    g.finish();
    // timed proofs for the constraints/s line, in wall-clock and in process CPU
    // time (all threads): the CPU figure does not depend on other load.
    let reps = 3;
    let (t, c) = (Instant::now(), cpu_seconds());
    for _ in 0..reps {
        groth16::prove(&keys.proving_key, real.clone(), &mut rng).unwrap();
    }
    let per = t.elapsed().as_secs_f64() / f64::from(reps);
    let cpu = (cpu_seconds() - c) / f64::from(reps);
    let prepared = groth16::PreparedVerifier::new(&keys.verifying_key);
    let vreps = 300;
    let (t, c) = (Instant::now(), cpu_seconds());
    for _ in 0..vreps {
        prepared.verify(&public, &proof).unwrap();
    }
    let vwall = t.elapsed().as_secs_f64() / f64::from(vreps);
    let vcpu = (cpu_seconds() - c) / f64::from(vreps);
    let vk_len = groth16::verifying_key_to_bytes(&keys.verifying_key)
        .unwrap()
        .len();
    let pk_len = groth16::proving_key_to_bytes(&keys.proving_key)
        .unwrap()
        .len();
    println!(
        "CIRCUIT {name}: {constraints} constraints | prove wall {per:.3} s ({:.0} constraints/s), cpu {cpu:.3} s ({:.0} constraints/cpu-s) | verify (prepared) wall {:.2} ms, cpu {:.2} ms | vk {vk_len} B, pk {pk_len} B, proof 128 B",
        constraints as f64 / per,
        constraints as f64 / cpu,
        vwall * 1e3,
        vcpu * 1e3,
    );
}

fn benches(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(1);

    // arkworks raw figure: 2^14 squarings
    let n = 1 << 14;
    let sq = Squarings {
        n,
        x0: Fr::from(3u64),
    };
    let mut v = sq.x0;
    for _ in 0..n {
        v = v * v;
    }
    bench_circuit(c, "raw_squarings_2^14", n, sq.clone(), sq, vec![v]);

    let lm = linear_model(&mut rng);
    let n_lin = inference::count_constraints(lm.shape()).unwrap();
    let x: Vec<u64> = (0..30).map(|_| rng.gen_range(0..256)).collect();
    let real = InferenceCircuit::new(lm.clone(), PrivateInput::new(x, &mut rng)).unwrap();
    let public = real.public().to_field_elements();
    bench_circuit(
        c,
        "inference_linear_30x8b",
        n_lin,
        InferenceCircuit::blank(lm.shape()).unwrap(),
        real,
        public,
    );

    let tm = tree_model(&mut rng);
    let n_tree = inference::count_constraints(tm.shape()).unwrap();
    let x: Vec<u64> = (0..30).map(|_| rng.gen_range(0..256)).collect();
    let real = InferenceCircuit::new(tm.clone(), PrivateInput::new(x, &mut rng)).unwrap();
    let public = real.public().to_field_elements();
    bench_circuit(
        c,
        "inference_trees_8xd4_30x8b",
        n_tree,
        InferenceCircuit::blank(tm.shape()).unwrap(),
        real,
        public,
    );

    let n_clear = clearing::count_constraints(BookShape::DEFAULT).unwrap();
    let (real, _) = ClearingCircuit::new(book(&mut rng)).unwrap();
    let public = real.public().to_field_elements();
    bench_circuit(
        c,
        "clearing_64x64",
        n_clear,
        ClearingCircuit::blank(BookShape::DEFAULT).unwrap(),
        real,
        public,
    );
}

criterion_group!(circuits, benches);
criterion_main!(circuits);
