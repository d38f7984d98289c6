//! FHE benchmarks: key generation, key upload (decode + conformance) and decompression,
//! encryption, per-inference latency for each model, batch throughput, decryption; plus a
//! summary with sizes, bootstraps per inference (plan and tfhe's pbs-stats counter), the
//! single-bootstrap latency and the floor `bootstraps x PBS latency / cores`.
//!
//! `CARGO_TARGET_DIR=... cargo bench -p veilgrid-fhe --bench fhe`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use veilgrid_fhe::dataset::BreastCancer;
use veilgrid_fhe::{
    ClientKey, CompressedServerKey, FheModel, ServerKey, builtin_model, evaluate, evaluate_batch,
    generate_keys,
};

struct Setup {
    client: ClientKey,
    compressed: CompressedServerKey,
    compressed_bytes: Vec<u8>,
    server: ServerKey,
    lr: FheModel,
    gbt: FheModel,
    data: BreastCancer,
}

fn setup() -> Setup {
    let (client, compressed) = generate_keys().unwrap();
    let compressed_bytes = compressed.to_bytes().unwrap();
    let server = compressed.decompress().unwrap();
    Setup {
        client,
        compressed,
        compressed_bytes,
        server,
        lr: FheModel::compile(builtin_model("breast-cancer-logreg").unwrap()).unwrap(),
        gbt: FheModel::compile(builtin_model("breast-cancer-gbt").unwrap()).unwrap(),
        data: BreastCancer::load().unwrap(),
    }
}

/// Mean latency of one KS32 keyswitch + bootstrap with the crate's parameter set: on one
/// core alone, and per bootstrap per core when every core runs bootstraps at once (memory
/// bandwidth is shared: each bootstrap streams the 60 MB Fourier bootstrapping key).
fn pbs_latency(cores: usize) -> (Duration, Duration) {
    let (ck, sk) = tfhe::shortint::gen_keys(veilgrid_fhe::params::block_parameters());
    let ct = ck.encrypt(1);
    let lut = sk.generate_lookup_table(|x| x ^ 1);
    let _ = sk.apply_lookup_table(&ct, &lut); // warm up
    let n = 40;
    let t = Instant::now();
    for _ in 0..n {
        let _ = black_box(sk.apply_lookup_table(black_box(&ct), &lut));
    }
    let alone = t.elapsed() / n;
    let t = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..cores {
            s.spawn(|| {
                for _ in 0..n {
                    let _ = black_box(sk.apply_lookup_table(black_box(&ct), &lut));
                }
            });
        }
    });
    (alone, t.elapsed() / n)
}

fn median_latency(f: impl Fn()) -> Duration {
    let mut v: Vec<Duration> = (0..5)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    v.sort();
    v[2]
}

fn summary(s: &Setup) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (pbs, pbs_all_cores) = pbs_latency(cores);
    let row = &s.data.features[s.data.test_rows[0]];
    let (q, _) = s.client.encrypt(&s.gbt, row).unwrap();
    let answer = evaluate(&s.server, &s.gbt, &q).unwrap();
    println!("\n== veilgrid-fhe summary ({cores} cores) ==");
    println!(
        "parameter set            {}",
        veilgrid_fhe::params::PARAMETER_SET_NAME
    );
    println!(
        "compressed server key    {} bytes",
        s.compressed_bytes.len()
    );
    println!(
        "decompressed server key  {} bytes (BSK Fourier + KSK u32)",
        ServerKey::size_bytes()
    );
    println!(
        "client key               {} bytes",
        s.client.to_bytes().unwrap().len()
    );
    println!(
        "query (30 features)      {} bytes",
        q.to_bytes().unwrap().len()
    );
    println!(
        "prediction               {} bytes",
        answer.to_bytes().unwrap().len()
    );
    println!("single KS32 PBS, 1 core  {:.2} ms", pbs.as_secs_f64() * 1e3);
    println!(
        "PBS with all {cores} cores busy {:.2} ms per bootstrap per core",
        pbs_all_cores.as_secs_f64() * 1e3
    );
    for m in [&s.lr, &s.gbt] {
        let (q, _) = s.client.encrypt(m, row).unwrap();
        veilgrid_fhe::reset_pbs_count();
        evaluate(&s.server, m, &q).unwrap();
        let counted = veilgrid_fhe::pbs_count();
        let latency = median_latency(|| {
            black_box(evaluate(&s.server, m, &q).unwrap());
        });
        let (cmp, groups) = m.bootstrap_breakdown();
        let floor = pbs.as_secs_f64() * m.bootstraps_per_inference() as f64 / cores as f64;
        let floor_busy =
            pbs_all_cores.as_secs_f64() * m.bootstraps_per_inference() as f64 / cores as f64;
        println!(
            "{:<24} bootstraps {} (plan: {} comparisons + {} leaf groups; pbs-stats counted {}), \
             latency {:.2} ms, floor {:.2} ms (ratio {:.2}), floor with all cores busy {:.2} ms \
             (ratio {:.2})",
            m.name(),
            m.bootstraps_per_inference(),
            cmp,
            groups,
            counted,
            latency.as_secs_f64() * 1e3,
            floor * 1e3,
            if floor > 0.0 {
                latency.as_secs_f64() / floor
            } else {
                f64::NAN
            },
            floor_busy * 1e3,
            if floor_busy > 0.0 {
                latency.as_secs_f64() / floor_busy
            } else {
                f64::NAN
            },
        );
        let r = m.noise_report();
        println!(
            "{:<24} output bits {}, noise bound {:?}, log2 p_fail/inference {:.1}",
            "", r.output_bits, r.bound, r.log2_p_fail_inference
        );
    }
    println!();
}

fn benches(c: &mut Criterion) {
    let s = setup();
    summary(&s);
    let row = s.data.features[s.data.test_rows[0]].clone();

    let mut g = c.benchmark_group("keys");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.bench_function("keygen (client + compressed server key)", |b| {
        b.iter(|| black_box(generate_keys().unwrap()))
    });
    g.bench_function(
        "upload: from_bytes (limit + safe_deserialize_conformant)",
        |b| b.iter(|| black_box(CompressedServerKey::from_bytes(&s.compressed_bytes).unwrap())),
    );
    g.bench_function("decompress server key", |b| {
        b.iter(|| black_box(s.compressed.decompress().unwrap()))
    });
    g.finish();

    let mut g = c.benchmark_group("logreg");
    g.bench_function("encrypt", |b| {
        b.iter(|| black_box(s.client.encrypt(&s.lr, &row).unwrap()))
    });
    let (q, _) = s.client.encrypt(&s.lr, &row).unwrap();
    g.bench_function("evaluate (1 query)", |b| {
        b.iter(|| black_box(evaluate(&s.server, &s.lr, &q).unwrap()))
    });
    let answer = evaluate(&s.server, &s.lr, &q).unwrap();
    g.bench_function("decrypt", |b| {
        b.iter_batched(
            || s.client.encrypt(&s.lr, &row).unwrap().1,
            |pending| black_box(pending.decrypt(&s.client, &answer).unwrap()),
            BatchSize::SmallInput,
        )
    });
    let batch: Vec<_> = (0..16)
        .map(|_| s.client.encrypt(&s.lr, &row).unwrap().0)
        .collect();
    g.bench_function("evaluate batch of 16", |b| {
        b.iter(|| black_box(evaluate_batch(&s.server, &s.lr, &batch)))
    });
    g.finish();

    let mut g = c.benchmark_group("gbt");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.bench_function("encrypt", |b| {
        b.iter(|| black_box(s.client.encrypt(&s.gbt, &row).unwrap()))
    });
    let (q, _) = s.client.encrypt(&s.gbt, &row).unwrap();
    g.bench_function("evaluate (1 query)", |b| {
        b.iter(|| black_box(evaluate(&s.server, &s.gbt, &q).unwrap()))
    });
    let batch: Vec<_> = (0..4)
        .map(|_| s.client.encrypt(&s.gbt, &row).unwrap().0)
        .collect();
    g.bench_function("evaluate batch of 4", |b| {
        b.iter(|| black_box(evaluate_batch(&s.server, &s.gbt, &batch)))
    });
    g.finish();
}

criterion_group!(fhe, benches);
criterion_main!(fhe);
