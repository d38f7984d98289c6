//! Service-level benchmarks of FHE inference, through a real router on loopback (in-process):
//! keygen, key upload (direct gRPC and through the router's streaming completion), per-query
//! latency end to end (encrypt, router, evaluate, decrypt) for 1 and N queries per model.
//! Before criterion runs, a summary prints sizes, bootstraps per inference (plan and tfhe's
//! pbs-stats counter around a query served in this process), the single-PBS latency and the
//! floor `bootstraps x PBS latency / cores` next to the measured latency.
//!
//! `cargo bench -p veilgrid --bench fhe` (release; the dev profile builds tfhe at opt-level 3
//! too, so `cargo bench -p veilgrid --bench fhe --profile dev` gives close numbers without a
//! release build of tfhe).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::{
    hint::black_box,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use tokio::{net::TcpListener, runtime::Runtime};
use veilgrid_fhe::{
    ClientKey, FheModel, KeyId, builtin_model, dataset::BreastCancer, generate_keys,
};
use veilgrid_fhe_service::{Engine, EngineConfig, FheConfig, client::FheClient};
use veilgrid_kit::Shutdown;

const LR: &str = "breast-cancer-logreg";
const GBT: &str = "breast-cancer-gbt";

struct Setup {
    rt: Runtime,
    router: String,
    client: ClientKey,
    id: KeyId,
    key: Bytes,
    rows: Vec<Vec<f64>>,
    _sd: Shutdown,
}

async fn bind() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    (l, url)
}

async fn start_service(sd: &Shutdown, router: Option<String>) -> String {
    let (l, url) = bind().await;
    let engine = Arc::new(Engine::new(&EngineConfig::default()).unwrap());
    let config = FheConfig {
        router: router.clone(),
        ..FheConfig::default()
    };
    tokio::spawn(veilgrid_fhe_service::run_with_engine(
        engine,
        l,
        sd.clone(),
        config,
    ));
    let mut c = match &router {
        Some(r) => FheClient::via_router(r).unwrap(),
        None => FheClient::direct(&url).unwrap(),
    };
    for _ in 0..400 {
        if c.list_models().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    url
}

fn setup() -> Setup {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let sd = Shutdown::new();
    let router = rt.block_on(async {
        let (l, url) = bind().await;
        tokio::spawn(veilgrid_router::run(
            l,
            sd.clone(),
            veilgrid_router::RouterConfig::default(),
        ));
        start_service(&sd, Some(url.clone())).await;
        url
    });
    let (client, compressed) = generate_keys().unwrap();
    let key = Bytes::from(compressed.to_bytes().unwrap());
    let data = BreastCancer::load().unwrap();
    let rows = data
        .test_set()
        .take(16)
        .map(|(_, x, _)| x.to_vec())
        .collect();
    Setup {
        rt,
        router,
        id: compressed.id(),
        client,
        key,
        rows,
        _sd: sd,
    }
}

fn pbs_latency() -> Duration {
    let (ck, sk) = tfhe::shortint::gen_keys(veilgrid_fhe::params::block_parameters());
    let ct = ck.encrypt(1);
    let lut = sk.generate_lookup_table(|x| x ^ 1);
    let _ = sk.apply_lookup_table(&ct, &lut);
    let n = 30;
    let t = Instant::now();
    for _ in 0..n {
        let _ = black_box(sk.apply_lookup_table(black_box(&ct), &lut));
    }
    t.elapsed() / n
}

fn summary(s: &Setup) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut c = FheClient::via_router(&s.router).unwrap();
    println!("\n== FHE service summary ({cores} cores) ==");
    let t = Instant::now();
    let (client, compressed) = generate_keys().unwrap();
    let keygen = t.elapsed();
    drop(client);
    println!(
        "keygen {:.2} s; compressed server key {} bytes; client key {} bytes",
        keygen.as_secs_f64(),
        s.key.len(),
        s.client.to_bytes().unwrap().len()
    );
    let _ = compressed;
    let t = Instant::now();
    let r =
        s.rt.block_on(c.register_key(s.id, s.key.clone(), |_| {}))
            .unwrap();
    assert!(!r.already_registered);
    println!(
        "first upload through the router (stream 1 MiB frames, conformance check, store): {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let pbs = pbs_latency();
    println!(
        "single KS32 PBS, one core alone: {:.2} ms",
        pbs.as_secs_f64() * 1e3
    );
    for name in [LR, GBT] {
        let m = FheModel::compile(builtin_model(name).unwrap()).unwrap();
        // First query decompresses the key (cache miss); then measure.
        s.rt.block_on(c.predict(&s.client, &m, &s.rows[0])).unwrap();
        veilgrid_fhe::reset_pbs_count();
        let r = s.rt.block_on(c.predict(&s.client, &m, &s.rows[1])).unwrap();
        let counted = veilgrid_fhe::pbs_count();
        let q = s
            .client
            .encrypt(&m, &s.rows[0])
            .unwrap()
            .0
            .to_bytes()
            .unwrap()
            .len();
        let floor = pbs.as_secs_f64() * m.bootstraps_per_inference() as f64 / cores as f64;
        println!(
            "{name}: bootstraps {} (pbs-stats {counted}); end to end {:.1} ms (service eval {:.1} ms); \
             floor {:.1} ms -> ratio {:.2}; query {q} bytes",
            m.bootstraps_per_inference(),
            r.latency.as_secs_f64() * 1e3,
            r.eval.as_secs_f64() * 1e3,
            floor * 1e3,
            if floor > 0.0 {
                r.latency.as_secs_f64() / floor
            } else {
                0.0
            },
        );
    }
}

fn benches(c: &mut Criterion) {
    let s = setup();
    // tonic's lazy channels spawn onto the ambient runtime.
    let _rt = s.rt.enter();
    summary(&s);
    let mut g = c.benchmark_group("fhe_service");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    g.bench_function("keygen", |b| b.iter(|| black_box(generate_keys().unwrap())));
    // A fresh in-memory service per upload, so every upload is checked and stored.
    g.bench_function("upload_direct", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let sd = Shutdown::new();
                let url = s.rt.block_on(start_service(&sd, None));
                let mut c = FheClient::direct(&url).unwrap();
                let t = Instant::now();
                s.rt.block_on(c.register_key(s.id, s.key.clone(), |_| {}))
                    .unwrap();
                total += t.elapsed();
                sd.cancel();
            }
            total
        })
    });
    let client = FheClient::via_router(&s.router).unwrap();
    for (name, batch) in [(LR, 16usize), (GBT, 2)] {
        let m = FheModel::compile(builtin_model(name).unwrap()).unwrap();
        g.bench_function(format!("{name}/query_1_via_router"), |b| {
            b.iter(|| {
                let mut c = client.clone();
                s.rt.block_on(c.predict(&s.client, &m, &s.rows[2])).unwrap()
            })
        });
        let rows = s.rows[..batch].to_vec();
        g.bench_function(format!("{name}/batch_{batch}_via_router"), |b| {
            b.iter(|| {
                let mut c = client.clone();
                s.rt.block_on(c.predict_batch(&s.client, &m, &rows))
                    .unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(fhe_service, benches);
criterion_main!(fhe_service);
