//! Matching MPC benchmarks, all three parties in one process (sequentially, so the
//! times are the sum of the three parties' work; messages go through their byte
//! encoding). `cargo bench -p veilgrid-mpc --bench matching`.
//!
//! * `comparisons`: batched secret comparisons per second (64-bit and the 44-bit
//!   width the auction uses for 1,000 orders);
//! * `clearing` / `fills`: the two phases for 1,000 × 64, 10,000 × 64, 1,000 × 256,
//!   semi-honest and malicious;
//! * bytes per party and steps are printed to stderr once per configuration.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use rand::{Rng, SeedableRng, rngs::StdRng};
use std::time::Duration;
use veilgrid_mpc::bench_api::prepare_comparisons;
use veilgrid_mpc::order::share_order_with_rng;
use veilgrid_mpc::sim::{Traffic, clear_all, collect_and_check, fill_all};
use veilgrid_mpc::{NodeKeys, Order, OrderId, OrderPayload, RoundConfig, SecurityMode, Side, comparison_width};

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

fn comparisons(c: &mut Criterion) {
    let mut g = c.benchmark_group("comparisons");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    let n = 1 << 16;
    let mut rng = StdRng::seed_from_u64(1);
    for (w, mode) in [(64, SecurityMode::SemiHonest), (44, SecurityMode::SemiHonest), (64, SecurityMode::Malicious)] {
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

fn auction(c: &mut Criterion) {
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
        let cfg = RoundConfig { round: ROUND, levels, mode };
        let payloads = book(n, levels, n as u64 + levels as u64);
        let checked = || collect_and_check(cfg, &keys, &payloads, &mut Traffic::default(), &mut |_| {}).unwrap();
        let report = || {
            let mut ti = Traffic::default();
            let ch = collect_and_check(cfg, &keys, &payloads, &mut ti, &mut |_| {}).unwrap();
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
            b.iter_batched(checked, |ch| clear_all(ch, &mut Traffic::default(), &mut |_| {}).unwrap(), BatchSize::PerIteration)
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

criterion_group!(benches, comparisons, auction);
criterion_main!(benches);
