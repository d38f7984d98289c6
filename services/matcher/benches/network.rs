//! The matching nodes' MPC over the network, without the rest of the program: a
//! router and the three nodes in one process on loopback (each node its own port,
//! node-to-node gRPC streams between them), N clients each sharing, sealing and
//! submitting one order through the router. Built twice from this one file: the
//! program's `cargo bench --bench matching` and, without the FHE stack,
//! `cargo bench -p veilgrid-matcher --bench network`.
//!
//! Environment: `MATCH_BENCH_CONFIGS` (default `1000x64,1000x64m,1000x256`; `m` =
//! malicious mode; add `10000x64` for the large book), `MATCH_BENCH_REPS` (default 3),
//! `MATCH_BENCH_CONCURRENCY` (default 32).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use bytes::Bytes;
use futures::{StreamExt, stream};
use rand::{Rng, SeedableRng, rngs::StdRng};
use tokio::net::TcpListener;
use veilgrid_core::seal::SealKeyPair;
use veilgrid_kit::Shutdown;
use veilgrid_matcher::{
    client::{MatchClient, fresh_round_id},
    veilgrid_mpc::{
        NodeKeys, Order, OrderId, RoundConfig, SecurityMode, Side, plain::clear_plain, share_order,
        sim::run_round,
    },
};
use veilgrid_proto::matching::v1 as pb;

struct Grid {
    router_url: String,
    shutdown: Shutdown,
}

impl Grid {
    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn start_grid() -> Grid {
    let shutdown = Shutdown::new();
    let rl = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let router_url = format!("http://{}", rl.local_addr().unwrap());
    let config = veilgrid_router::RouterConfig {
        health_interval: Duration::from_millis(500),
        ..veilgrid_router::RouterConfig::default()
    };
    tokio::spawn(veilgrid_router::run(rl, shutdown.clone(), config));
    Grid {
        router_url,
        shutdown,
    }
}

struct Config {
    orders: usize,
    levels: u32,
    malicious: bool,
}

fn configs() -> Vec<Config> {
    let spec =
        std::env::var("MATCH_BENCH_CONFIGS").unwrap_or_else(|_| "1000x64,1000x64m,1000x256".into());
    spec.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            let malicious = s.ends_with('m');
            let s = s.trim_end_matches('m');
            let (n, p) = s.split_once('x').expect("configs are NxP or NxPm");
            Config {
                orders: n.parse().expect("N"),
                levels: p.parse().expect("P"),
                malicious,
            }
        })
        .collect()
}

/// CPU time (user + system) of this process so far, in seconds (Linux; 0 elsewhere):
/// the three nodes' and the router's work together, which a loaded machine does not
/// inflate the way it inflates wall time.
fn process_cpu_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // fields after the command name (which is in parentheses): utime is the 12th, stime the 13th
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted
    let reps = env_usize("MATCH_BENCH_REPS", 3);
    let concurrency = env_usize("MATCH_BENCH_CONCURRENCY", 32);
    let g = start_grid().await;
    veilgrid_matcher::local::start(&g.router_url, None, "VG", g.shutdown.clone())
        .await
        .unwrap();
    let mut client = None;
    for _ in 0..200 {
        if let Ok(c) = MatchClient::discover(&g.router_url).await {
            client = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let c = client.expect("three matching nodes");
    for id in ["ALC", "BOB"] {
        let issuer = veilgrid_core::sign::SigningIdentity::generate();
        c.register_currency(
            &veilgrid_matcher::currency::sign_registration(&issuer, id, id).unwrap(),
        )
        .await
        .unwrap();
    }
    println!(
        "matching end to end over loopback: router + 3 nodes in one process, {} cores, {concurrency} clients at a time",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mut rng = StdRng::seed_from_u64(5);
    for cfg in configs() {
        let mode = if cfg.malicious {
            "malicious"
        } else {
            "semi-honest"
        };
        let mut rows: Vec<[f64; 10]> = Vec::new();
        for rep in 0..reps {
            let book: Vec<Order> = (0..cfg.orders)
                .map(|_| Order {
                    side: if rng.r#gen() { Side::Buy } else { Side::Sell },
                    limit: rng.gen_range(0..cfg.levels),
                    qty: rng.gen_range(1..100_000),
                })
                .collect();
            let owners: Vec<SealKeyPair> =
                (0..cfg.orders).map(|_| SealKeyPair::generate()).collect();
            let round = fresh_round_id();
            c.open(&pb::OpenRoundRequest {
                round_id: Bytes::copy_from_slice(&round),
                base: "ALC".into(),
                quote: "BOB".into(),
                levels: cfg.levels,
                p_min: 0.5,
                ratio: 1.02,
                mode: if cfg.malicious {
                    pb::SecurityMode::Malicious.into()
                } else {
                    pb::SecurityMode::SemiHonest.into()
                },
                deadline_unix_ms: 0,
            })
            .await
            .unwrap();
            // each client shares and seals its own order; node 0 numbers them
            let t = Instant::now();
            let seqs: Vec<u64> = stream::iter(book.iter().zip(&owners).enumerate())
                .map(|(i, (o, owner))| {
                    let c = c.clone();
                    async move {
                        let id = OrderId::new(format!("client-{i}").as_bytes()).unwrap();
                        c.submit(round, cfg.levels, &id, o, &owner.public())
                            .await
                            .unwrap()
                    }
                })
                .buffered(concurrency)
                .collect()
                .await;
            let upload = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let cpu0 = process_cpu_secs();
            c.close(round).await.unwrap();
            let out = c.result(round, Duration::from_secs(600)).await.unwrap();
            let to_result = t.elapsed().as_secs_f64();
            let cpu = process_cpu_secs() - cpu0;
            // the book in node 0's order, against the plaintext rule
            let mut by_seq: Vec<(u64, usize)> = seqs.iter().copied().zip(0..).collect();
            by_seq.sort();
            let ordered: Vec<Order> = by_seq.iter().map(|&(_, i)| book[i]).collect();
            let want = clear_plain(cfg.levels, &ordered);
            assert_eq!(out.outcome.result, want.clearing, "MPC = plaintext rule");
            // the same book in process (three parties in one thread, no network): the
            // CPU the MPC itself needs in this build, to compare with the round's
            let sim_cpu = {
                let sim_round = fresh_round_id();
                let payloads: Vec<_> = ordered
                    .iter()
                    .enumerate()
                    .map(|(i, o)| {
                        let id = OrderId::new(format!("s{i}").as_bytes()).unwrap();
                        share_order(sim_round, &id, o, cfg.levels).unwrap()
                    })
                    .collect();
                let rc = RoundConfig {
                    round: sim_round,
                    levels: cfg.levels,
                    mode: if cfg.malicious {
                        SecurityMode::Malicious
                    } else {
                        SecurityMode::SemiHonest
                    },
                };
                let c0 = process_cpu_secs();
                let r = run_round(rc, &NodeKeys::generate_all(), &payloads).unwrap();
                assert_eq!(r.result, want.clearing);
                process_cpu_secs() - c0
            };
            println!(
                "    same book in process (3 parties, one thread): CPU {:.0} ms",
                sim_cpu * 1e3
            );
            let t = Instant::now();
            let k = by_seq[0].1;
            let fills = c.fills(round, &owners[k]).await.unwrap();
            let fills_fetch = t.elapsed().as_secs_f64();
            assert_eq!(fills[0].1, want.fills[0]);
            // the nodes' own phase costs (the slowest node per phase)
            let mut cost = [0f64; 6];
            for p in 0..3 {
                let s = c.status(p, round).await.unwrap();
                let v = [
                    s.check_us as f64 / 1e3,
                    s.clearing_us as f64 / 1e3,
                    s.fills_us as f64 / 1e3,
                    s.check_bytes as f64,
                    s.clearing_bytes as f64,
                    s.fills_bytes as f64,
                ];
                for (a, b) in cost.iter_mut().zip(v) {
                    *a = a.max(b);
                }
            }
            println!(
                "  {}x{} {mode} rep {rep}: upload {:.2} s ({:.0} orders/s); MPC at the nodes: check {:.1} ms, \
                 clearing {:.1} ms, fills {:.1} ms; bytes sent per node: check {:.0} kB, clearing {:.0} kB, \
                 fills {:.0} kB; close→signed outcome {:.1} ms (CPU of the 3 nodes and the router {:.0} ms); one owner's fills {:.1} ms",
                cfg.orders,
                cfg.levels,
                upload,
                cfg.orders as f64 / upload,
                cost[0],
                cost[1],
                cost[2],
                cost[3] / 1e3,
                cost[4] / 1e3,
                cost[5] / 1e3,
                to_result * 1e3,
                cpu * 1e3,
                fills_fetch * 1e3
            );
            rows.push([
                upload,
                cost[0],
                cost[1],
                cost[2],
                cost[3],
                cost[4],
                cost[5],
                to_result * 1e3,
                fills_fetch * 1e3,
                cpu * 1e3,
            ]);
        }
        let col = |j: usize| median(rows.iter().map(|r| r[j]).collect());
        println!(
            "{}x{} {mode} (median of {reps}): upload {:.2} s ({:.0} orders/s) | check {:.1} ms | clearing {:.1} ms | \
             fills {:.1} ms | {:.2} MB sent per node | close→outcome {:.1} ms, CPU {:.0} ms",
            cfg.orders,
            cfg.levels,
            col(0),
            cfg.orders as f64 / col(0),
            col(1),
            col(2),
            col(3),
            (col(4) + col(5) + col(6)) / 1e6,
            col(7),
            col(9)
        );
    }
    g.stop().await;
}
