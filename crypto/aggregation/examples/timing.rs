//! Rough per-step timings of one client and one member (run with --release).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use std::time::Instant;

/// CPU time of this thread in nanoseconds (first field of /proc/thread-self/schedstat), so that
/// the figures are not inflated by other processes on a shared machine.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

struct Clock(Instant, u64);
impl Clock {
    fn start() -> Self {
        Clock(Instant::now(), cpu_ns())
    }
    fn report(&self, what: &str, reps: u32) {
        let wall = self.0.elapsed() / reps;
        let cpu = std::time::Duration::from_nanos((cpu_ns() - self.1) / reps as u64);
        println!("{what:<40} cpu {cpu:>12.3?}   wall {wall:>12.3?}");
    }
}

use rand_core::OsRng;
use veilgrid_aggregation::*;
use veilgrid_core::seal::SealKeyPair;

fn main() {
    let len: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let n: usize = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let keys: Vec<SealKeyPair> = (0..5).map(|_| SealKeyPair::generate()).collect();
    let params = RoundParams::new(len as u32, 16, 1000, 5, 2).unwrap();
    let round = Round::new(
        [1; 32],
        params,
        [2; 32],
        keys.iter().map(|k| k.public()).collect(),
    )
    .unwrap();
    let t = Clock::start();
    let _ = round.prg();
    t.report(&format!("public randomness expansion L={len}"), 1);
    let x = vec![5u64; len];
    let set = round.params().ring();
    let mut rng = rand::thread_rng();
    let seed = Seed::random(set, set.degree(), &mut rng);
    let t = Clock::start();
    for _ in 0..10 {
        std::hint::black_box(round.prg().expand(&seed));
    }
    t.report("PRG expansion", 10);
    let t = Clock::start();
    for _ in 0..10 {
        std::hint::black_box(veilgrid_aggregation::shamir::share(
            set.output_modulus(),
            seed.residues_p(),
            2,
            5,
            &mut rng,
        ));
        std::hint::black_box(veilgrid_aggregation::shamir::share(
            set.noise_modulus(),
            seed.residues_q(),
            2,
            5,
            &mut rng,
        ));
    }
    t.report("Shamir sharing", 10);
    let pk = keys[0].public();
    let payload = vec![0u8; round.share_payload_len()];
    let t = Clock::start();
    let mut sealed = Vec::new();
    for _ in 0..20 {
        sealed = pk.seal(b"i", b"a", &payload).unwrap();
    }
    t.report("one seal", 20);
    let t = Clock::start();
    for _ in 0..20 {
        std::hint::black_box(keys[0].open(b"i", b"a", &sealed).unwrap());
    }
    t.report("one open", 20);
    let t = Clock::start();
    let mut msgs = Vec::new();
    for i in 0..n {
        msgs.push(
            Client::new(&round, i as u64)
                .encode(&x)
                .unwrap()
                .mask(&mut OsRng)
                .unwrap(),
        );
    }
    t.report("client mask", n as u32);
    let t = Clock::start();
    let mut member = CommitteeMember::new(&round, 1, &keys[0]).unwrap();
    for m in &msgs {
        member
            .accept_share(m.client(), m.sealed_share(1).unwrap())
            .unwrap();
    }
    t.report("member accept_share", n as u32);
    let present = PresentSet::new(&round, (0..n as u64).collect()).unwrap();
    let t = Clock::start();
    let ans = member.respond(&present).unwrap();
    t.report(&format!("member respond for {n}"), 1);
    let bytes: Vec<Vec<u8>> = msgs.iter().map(|m| m.to_bytes(&round)).collect();
    let t = Clock::start();
    for b in &bytes {
        std::hint::black_box(ClientMessage::from_bytes(&round, b).unwrap());
    }
    t.report("server: decode one client message", n as u32);
    let t = Clock::start();
    let mut server = ServerCollecting::new(&round);
    for m in &msgs {
        server.accept(m).unwrap();
    }
    t.report("server: accept (add) one message", n as u32);
    let t = Clock::start();
    let mut server2 = ServerCollecting::new(&round);
    for b in &bytes {
        server2.accept_bytes(b).unwrap();
    }
    t.report("server: accept_bytes (decode+add) one", n as u32);
    let mut server = server.close().unwrap();
    server.accept_member(&ans).unwrap();
    for i in [2u16, 3] {
        let mut member = CommitteeMember::new(&round, i, &keys[i as usize - 1]).unwrap();
        for m in &msgs {
            member
                .accept_share(m.client(), m.sealed_share(i).unwrap())
                .unwrap();
        }
        server
            .accept_member(&member.respond(&present).unwrap())
            .unwrap();
    }
    let t = Clock::start();
    let result = server.finish().unwrap();
    t.report("server: finish (reconstruct, expand, decode)", 1);
    assert_eq!(result.sum[0], 5 * n as u64);
}
