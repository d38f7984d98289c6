//! Matching MPC benchmarks, all three parties in one process (sequentially, so the
//! times are the sum of the three parties' work; messages go through their byte
//! encoding). `cargo bench -p veilgrid-mpc --bench matching`.
//!
//! * `comparisons`: batched secret comparisons per second (64-bit and the 44-bit
//!   width the auction uses for 1,000 orders);
//! * `clearing` / `fills`: the two phases for 1,000 × 64, 10,000 × 64, 1,000 × 256,
//!   semi-honest and malicious;
//! * bytes per party and steps are printed to stderr once per configuration.
//!
//! `MPC_BENCH_CLOCK=cpu` measures the CPU time of the benchmark thread instead of wall
//! time (from `/proc/thread-self/schedstat`): the in-process run is single-threaded, so
//! this is the total work of the three parties, and it does not change when other
//! processes load the machine.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{BatchSize, Criterion, Throughput, criterion_group};
use rand::{Rng, SeedableRng, rngs::StdRng};
use std::time::Duration;
use veilgrid_mpc::bench_api::{prepare_commitment_check, prepare_comparisons};
use veilgrid_mpc::binding::verify_statements;
use veilgrid_mpc::order::share_order_with_rng;
use veilgrid_mpc::sim::{Traffic, clear_all, collect_and_check, fill_all};
use veilgrid_mpc::{
    NodeKeys, Order, OrderId, OrderPayload, RoundConfig, SecurityMode, Side, comparison_width,
};

const ROUND: [u8; 16] = [7; 16];

fn book(n: usize, levels: u32, seed: u64) -> Vec<[OrderPayload; 3]> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let o = Order {
                side: if rng.r#gen() { Side::Buy } else { Side::Sell },
                limit: rng.gen_range(0..levels),
                qty: rng.gen_range(1..100_000),
            };
            let id = OrderId::new(format!("order-{i}").as_bytes()).unwrap();
            share_order_with_rng(ROUND, &id, &o, levels, &mut rng).unwrap()
        })
        .collect()
}

fn comparisons<M: Measurement + 'static>(c: &mut Criterion<M>) {
    let mut g = c.benchmark_group("comparisons");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    let n = 1 << 16;
    let mut rng = StdRng::seed_from_u64(1);
    for (w, mode) in [
        (64, SecurityMode::SemiHonest),
        (44, SecurityMode::SemiHonest),
        (64, SecurityMode::Malicious),
    ] {
        let vals: Vec<u64> = (0..n).map(|_| rng.r#gen::<u64>() >> (64 - w + 1)).collect();
        let report = || {
            let r = prepare_comparisons(&vals, w, mode).run().unwrap();
            eprintln!(
                "comparisons w={w} {mode:?}: {n} in one batch, {} steps, {:.1} bytes/comparison/party",
                r.traffic.steps,
                r.traffic.max_bytes_per_party() as f64 / n as f64
            );
        };
        g.throughput(Throughput::Elements(n as u64));
        let mut reported = false;
        g.bench_function(format!("{mode:?}/w{w}/65536"), |b| {
            if !std::mem::replace(&mut reported, true) {
                report();
            }
            let prepared = prepare_comparisons(&vals, w, mode);
            b.iter(|| prepared.run().unwrap())
        });
    }
    g.finish();
}

fn auction<M: Measurement + 'static>(c: &mut Criterion<M>) {
    let configs = [
        (1_000usize, 64u32, SecurityMode::SemiHonest),
        (10_000, 64, SecurityMode::SemiHonest),
        (1_000, 256, SecurityMode::SemiHonest),
        (1_000, 64, SecurityMode::Malicious),
        (1_000, 256, SecurityMode::Malicious),
    ];
    let keys = NodeKeys::generate_all();
    let mut g = c.benchmark_group("auction");
    g.sample_size(10).measurement_time(Duration::from_secs(6));
    for (n, levels, mode) in configs {
        let cfg = RoundConfig {
            round: ROUND,
            levels,
            mode,
        };
        // made on first use: every order carries two range proofs, so a book of
        // 10,000 takes a while, and a filtered run should not pay for it
        let book_cell = std::cell::OnceCell::new();
        let payloads = || book_cell.get_or_init(|| book(n, levels, n as u64 + levels as u64));
        let checked = || {
            collect_and_check(cfg, &keys, payloads(), &mut Traffic::default(), &mut |_| {}).unwrap()
        };
        let report = || {
            let mut ti = Traffic::default();
            let ch = collect_and_check(cfg, &keys, payloads(), &mut ti, &mut |_| {}).unwrap();
            let mut tc = Traffic::default();
            let cl = clear_all(ch, &mut tc, &mut |_| {}).unwrap();
            let result = cl[0].result();
            let mut tf = Traffic::default();
            fill_all(cl, &mut tf, &mut |_| {}).unwrap();
            eprintln!(
                "auction {n}x{levels} {mode:?}: {result:?}; comparison width {}; input check {} B/party; \
                 clearing {} steps, {} B/party; fills {} steps, {} B/party",
                comparison_width(n),
                ti.max_bytes_per_party(),
                tc.steps,
                tc.max_bytes_per_party(),
                tf.steps,
                tf.max_bytes_per_party()
            );
        };
        let mut reported = false;
        g.bench_function(format!("clearing/{mode:?}/{n}x{levels}"), |b| {
            if !std::mem::replace(&mut reported, true) {
                report();
            }
            b.iter_batched(
                checked,
                |ch| clear_all(ch, &mut Traffic::default(), &mut |_| {}).unwrap(),
                BatchSize::PerIteration,
            )
        });
        g.bench_function(format!("fills/{mode:?}/{n}x{levels}"), |b| {
            b.iter_batched(
                || clear_all(checked(), &mut Traffic::default(), &mut |_| {}).unwrap(),
                |cl| fill_all(cl, &mut Traffic::default(), &mut |_| {}).unwrap(),
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

/// The range proofs of `docs/binding.md`: the client's two bounded proofs, a node's
/// batch verification of 1,000 orders' proofs, the commitment check of 1,000 orders
/// alone (three parties in one thread), and the whole input phase of 1,000 × 64.
fn binding<M: Measurement + 'static>(c: &mut Criterion<M>) {
    let mut g = c.benchmark_group("binding");
    g.sample_size(10).measurement_time(Duration::from_secs(6));
    let mut rng = StdRng::seed_from_u64(9);
    let o = Order {
        side: Side::Buy,
        limit: 17,
        qty: 12_345,
    };
    let id = OrderId::new(b"order").unwrap();
    g.throughput(Throughput::Elements(1));
    g.bench_function("client_share_and_prove/64", |b| {
        b.iter(|| share_order_with_rng(ROUND, &id, &o, 64, &mut rng).unwrap())
    });
    let n = 1_000;
    let payloads = book(n, 64, 99);
    let ids: Vec<OrderId> = payloads.iter().map(|p| p[0].id.clone()).collect();
    let statements: Vec<_> = payloads.iter().map(|p| p[0].statement.clone()).collect();
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("node_verify_batch/1000", |b| {
        b.iter(|| {
            let ok = verify_statements(&ROUND, 64, &ids, &statements);
            assert!(ok.iter().all(|x| *x));
        })
    });
    let prepared = prepare_commitment_check(n);
    let (_, t) = prepared.run().unwrap();
    eprintln!(
        "commitment check of {n} orders: {} step, {} B/party",
        t.steps,
        t.max_bytes_per_party()
    );
    g.bench_function("commitment_check_3_parties/1000", |b| {
        b.iter(|| {
            let (ok, _) = prepared.run().unwrap();
            assert!(ok.iter().all(|x| *x));
        })
    });
    let keys = NodeKeys::generate_all();
    for mode in [SecurityMode::SemiHonest, SecurityMode::Malicious] {
        let cfg = RoundConfig {
            round: ROUND,
            levels: 64,
            mode,
        };
        let mut t = Traffic::default();
        collect_and_check(cfg, &keys, &payloads, &mut t, &mut |_| {}).unwrap();
        eprintln!(
            "input phase {n}x64 {mode:?}: {} steps, {} B/party",
            t.steps,
            t.max_bytes_per_party()
        );
        g.bench_function(format!("input_phase_3_parties/{mode:?}/1000x64"), |b| {
            b.iter(|| {
                collect_and_check(cfg, &keys, &payloads, &mut Traffic::default(), &mut |_| {})
                    .unwrap()
            })
        });
    }
    g.finish();
}

/// CPU time of this thread, in nanoseconds.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// Thread CPU time as a criterion measurement.
struct CpuTime;

struct CpuFormatter;

impl ValueFormatter for CpuFormatter {
    fn scale_values(&self, ns: f64, values: &mut [f64]) -> &'static str {
        let (f, unit) = if ns < 1e6 {
            (1e-3, "µs cpu")
        } else if ns < 1e9 {
            (1e-6, "ms cpu")
        } else {
            (1e-9, "s cpu")
        };
        values.iter_mut().for_each(|v| *v *= f);
        unit
    }

    fn scale_throughputs(&self, _typical: f64, t: &Throughput, values: &mut [f64]) -> &'static str {
        let per = match *t {
            Throughput::Elements(e)
            | Throughput::Bytes(e)
            | Throughput::BytesDecimal(e)
            | Throughput::Bits(e) => e,
        } as f64;
        values.iter_mut().for_each(|v| *v = per * 1e9 / *v / 1e6);
        "M/s cpu"
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

impl Measurement for CpuTime {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        thread_cpu_ns()
    }

    fn end(&self, i: u64) -> u64 {
        thread_cpu_ns().saturating_sub(i)
    }

    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }

    fn zero(&self) -> u64 {
        0
    }

    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuFormatter
    }
}

criterion_group!(wall, comparisons, auction, binding);
criterion_group! {
    name = cpu;
    config = Criterion::default().with_measurement(CpuTime);
    targets = comparisons, auction, binding
}

fn main() {
    if std::env::var("MPC_BENCH_CLOCK").as_deref() == Ok("cpu") {
        cpu();
    } else {
        wall();
    }
    Criterion::default().configure_from_args().final_summary();
}
