//! Malicious mode: every multiplication and AND gate recorded during a phase is checked
//! before anything computed from it is opened. See `docs/security.md`.
//!
//! Triples `(a, b, c = a·b)` are produced with the same semi-honest multiplication
//! (a cheating party can only add an error to `c`); the parties toss coins, open `C`
//! random triples completely (cut and choose) and split the rest into buckets of `B`:
//! the first triple of each bucket is checked against the `B−1` others, then used to
//! check one gate `(x, y, z)`. A check opens `ρ = x − a`, `σ = y − b` and verifies
//! `z − c − σ·a − ρ·b − ρσ = 0` (with `⊕`/`∧` for binary gates): it passes only if the
//! two errors are equal. The same code runs over `Z_2^64` and over 64 independent
//! lanes of `GF(2)`.

use crate::ctx::{Batch, Ctx, GateLog, SecurityMode};
use crate::error::Error;
use crate::prf::{PairSeed, PrfStream};
use crate::share::{AVec, BVec};

/// Statistical security parameter of the checks.
pub const STAT_SECURITY: f64 = 40.0;
/// The checks use at least this many buckets (unused ones are simply discarded).
const MIN_BUCKETS: usize = 1 << 12;

/// `log2 binom(n, k)`.
fn log2_binom(n: usize, k: usize) -> f64 {
    (0..k).map(|i| ((n - i) as f64 / (k - i) as f64).log2()).sum()
}

/// Bucket size `B` and number `C` of opened triples for `gates` gates in `lanes`
/// independent lanes, and the number of buckets used:
/// the cheating probability is at most `lanes / binom(N·B, B)` (see `docs/security.md`).
pub fn bucket_parameters(gates: usize, lanes: u32) -> (usize, usize, usize) {
    let buckets = gates.max(MIN_BUCKETS);
    let need = STAT_SECURITY + 1.0 + f64::from(lanes).log2();
    let mut b = 2;
    while log2_binom(buckets * b, b) < need {
        b += 1;
    }
    (b, b, buckets)
}

/// A uniformly random permutation of `0..n` from a seed (Fisher–Yates).
fn permutation(seed: &[u8; 32], round: &[u8; 16], label: &[u8], n: usize) -> Vec<usize> {
    let mut s = PrfStream::new(&PairSeed::from_bytes(*seed), round, label);
    let mut p: Vec<usize> = (0..n).collect();
    let r = s.words(n);
    for i in (1..n).rev() {
        let j = ((u128::from(r[i]) * (i as u128 + 1)) >> 64) as usize;
        p.swap(i, j);
    }
    p
}

/// Which triple checks what: `open` are the indices opened completely; `out[g]` is the
/// triple that checks gate `g`; `(out, other)` pairs are the bucket checks.
struct Plan {
    open: Vec<usize>,
    gate_triple: Vec<usize>,
    pairs: Vec<(usize, usize)>,
}

fn plan(perm: &[usize], gates: usize, b: usize, c: usize, buckets: usize) -> Plan {
    let open = perm[..c].to_vec();
    let rest = &perm[c..];
    let mut gate_triple = Vec::with_capacity(gates);
    let mut pairs = Vec::with_capacity(buckets * (b - 1));
    for j in 0..buckets {
        let bucket = &rest[j * b..(j + 1) * b];
        if j < gates {
            gate_triple.push(bucket[0]);
        }
        for &o in &bucket[1..] {
            pairs.push((bucket[0], o));
        }
    }
    Plan { open, gate_triple, pairs }
}

fn pick_a(v: &AVec, idx: impl Iterator<Item = usize>) -> AVec {
    let mut out = AVec::zeros(0);
    for i in idx {
        out.push(v.a[i], v.b[i]);
    }
    out
}

fn pick_b(v: &BVec, idx: impl Iterator<Item = usize>) -> BVec {
    let mut out = BVec::zeros(0);
    for i in idx {
        out.a.push(v.a[i]);
        out.b.push(v.b[i]);
    }
    out
}

/// Check every gate in the log (malicious mode only; a no-op otherwise). 5 steps.
pub(crate) async fn verify_gates(ctx: &mut Ctx) -> Result<(), Error> {
    if ctx.mode() != SecurityMode::Malicious || ctx.core.log.is_empty() {
        return Ok(());
    }
    let log = std::mem::take(&mut ctx.core.log);
    let me = ctx.me();
    let round = ctx.core.round;
    let na = log.az.len();
    let nb = log.bz.len();
    let (ba, ca, bka) = if na == 0 { (2, 0, 0) } else { bucket_parameters(na, 1) };
    let (bb, cb, bkb) = if nb == 0 { (2, 0, 0) } else { bucket_parameters(nb, 64) };
    let ta = bka * ba + ca;
    let tb = bkb * bb + cb;

    // 1. random triples (not logged: they are what is being checked)
    let (a0, a1) = ctx.core.prf.random_pair(ta);
    let (b0, b1) = ctx.core.prf.random_pair(ta);
    let ta_a = AVec { a: a0, b: a1 };
    let ta_b = AVec { a: b0, b: b1 };
    let (x0, x1) = ctx.core.prf.random_pair(tb);
    let (y0, y1) = ctx.core.prf.random_pair(tb);
    let tb_a = BVec { a: x0, b: x1 };
    let tb_b = BVec { a: y0, b: y1 };
    let mut batch = Batch::new(SecurityMode::SemiHonest);
    let rc = batch.mul(&ta_a, &ta_b);
    let rcb = batch.and(&tb_a, &tb_b);
    let out = ctx.run(batch).await?;
    let ta_c = out.arith(&rc);
    let tb_c = out.bin(&rcb);

    // 2. coins, fixed only after the gates and triples are
    let seed = ctx.coin_toss(b"verify").await?;
    let pa = plan(&permutation(&seed, &round, b"arith", ta), na, ba, ca, bka);
    let pb = plan(&permutation(&seed, &round, b"binary", tb), nb, bb, cb, bkb);

    // 3. one opening step: the cut triples, and ρ, σ of every check
    let GateLog { ax, ay, az, bx, by, bz } = log;
    let mut open_a = AVec::zeros(0);
    for v in [&ta_a, &ta_b, &ta_c] {
        open_a.extend(&pick_a(v, pa.open.iter().copied()));
    }
    let (pl, pr): (Vec<usize>, Vec<usize>) = pa.pairs.iter().copied().unzip();
    let rho_pairs = pick_a(&ta_a, pl.iter().copied()).sub(&pick_a(&ta_a, pr.iter().copied()));
    let sig_pairs = pick_a(&ta_b, pl.iter().copied()).sub(&pick_a(&ta_b, pr.iter().copied()));
    let rho_gates = ax.sub(&pick_a(&ta_a, pa.gate_triple.iter().copied()));
    let sig_gates = ay.sub(&pick_a(&ta_b, pa.gate_triple.iter().copied()));
    for v in [&rho_pairs, &sig_pairs, &rho_gates, &sig_gates] {
        open_a.extend(v);
    }
    let mut open_b = BVec::zeros(0);
    for v in [&tb_a, &tb_b, &tb_c] {
        open_b.extend(&pick_b(v, pb.open.iter().copied()));
    }
    let (ql, qr): (Vec<usize>, Vec<usize>) = pb.pairs.iter().copied().unzip();
    let rho_pairs_b = pick_b(&tb_a, ql.iter().copied()).xor(&pick_b(&tb_a, qr.iter().copied()));
    let sig_pairs_b = pick_b(&tb_b, ql.iter().copied()).xor(&pick_b(&tb_b, qr.iter().copied()));
    let rho_gates_b = bx.xor(&pick_b(&tb_a, pb.gate_triple.iter().copied()));
    let sig_gates_b = by.xor(&pick_b(&tb_b, pb.gate_triple.iter().copied()));
    for v in [&rho_pairs_b, &sig_pairs_b, &rho_gates_b, &sig_gates_b] {
        open_b.extend(v);
    }
    let (va, vb) = ctx.open(&open_a, &open_b).await?;

    // the opened triples must be products
    let oc = pa.open.len();
    for k in 0..oc {
        if va[k].wrapping_mul(va[oc + k]) != va[2 * oc + k] {
            return Err(Error::VerificationFailed("an opened arithmetic triple is not a product"));
        }
    }
    let ocb = pb.open.len();
    for k in 0..ocb {
        if vb[k] & vb[ocb + k] != vb[2 * ocb + k] {
            return Err(Error::VerificationFailed("an opened binary triple is not a product"));
        }
    }

    // 4. z − c − σ·a − ρ·b − ρσ must be zero for every check
    let np = pa.pairs.len();
    let ng = pa.gate_triple.len();
    let base = 3 * oc;
    let (rp, sp) = (&va[base..base + np], &va[base + np..base + 2 * np]);
    let (rg, sg) = (&va[base + 2 * np..base + 2 * np + ng], &va[base + 2 * np + ng..base + 2 * np + 2 * ng]);
    let mut zero_a = AVec::zeros(0);
    let check_a = |z: &AVec, c: &AVec, a: &AVec, b: &AVec, rho: &[u64], sig: &[u64], out: &mut AVec| {
        for k in 0..z.len() {
            let rs = rho[k].wrapping_mul(sig[k]);
            let mut ea = z.a[k].wrapping_sub(c.a[k]).wrapping_sub(sig[k].wrapping_mul(a.a[k])).wrapping_sub(rho[k].wrapping_mul(b.a[k]));
            let mut eb = z.b[k].wrapping_sub(c.b[k]).wrapping_sub(sig[k].wrapping_mul(a.b[k])).wrapping_sub(rho[k].wrapping_mul(b.b[k]));
            match me.index() {
                0 => ea = ea.wrapping_sub(rs),
                2 => eb = eb.wrapping_sub(rs),
                _ => {}
            }
            out.push(ea, eb);
        }
    };
    let z_p = pick_a(&ta_c, pl.iter().copied());
    let c_p = pick_a(&ta_c, pr.iter().copied());
    let a_p = pick_a(&ta_a, pr.iter().copied());
    let b_p = pick_a(&ta_b, pr.iter().copied());
    check_a(&z_p, &c_p, &a_p, &b_p, rp, sp, &mut zero_a);
    let c_g = pick_a(&ta_c, pa.gate_triple.iter().copied());
    let a_g = pick_a(&ta_a, pa.gate_triple.iter().copied());
    let b_g = pick_a(&ta_b, pa.gate_triple.iter().copied());
    check_a(&az, &c_g, &a_g, &b_g, rg, sg, &mut zero_a);

    let npb = pb.pairs.len();
    let ngb = pb.gate_triple.len();
    let base = 3 * ocb;
    let (rpb, spb) = (&vb[base..base + npb], &vb[base + npb..base + 2 * npb]);
    let (rgb, sgb) = (&vb[base + 2 * npb..base + 2 * npb + ngb], &vb[base + 2 * npb + ngb..base + 2 * npb + 2 * ngb]);
    let mut zero_b = BVec::zeros(0);
    let check_b = |z: &BVec, c: &BVec, a: &BVec, b: &BVec, rho: &[u64], sig: &[u64], out: &mut BVec| {
        for k in 0..z.len() {
            let rs = rho[k] & sig[k];
            let mut ea = z.a[k] ^ c.a[k] ^ (sig[k] & a.a[k]) ^ (rho[k] & b.a[k]);
            let mut eb = z.b[k] ^ c.b[k] ^ (sig[k] & a.b[k]) ^ (rho[k] & b.b[k]);
            match me.index() {
                0 => ea ^= rs,
                2 => eb ^= rs,
                _ => {}
            }
            out.a.push(ea);
            out.b.push(eb);
        }
    };
    let z_pb = pick_b(&tb_c, ql.iter().copied());
    let c_pb = pick_b(&tb_c, qr.iter().copied());
    let a_pb = pick_b(&tb_a, qr.iter().copied());
    let b_pb = pick_b(&tb_b, qr.iter().copied());
    check_b(&z_pb, &c_pb, &a_pb, &b_pb, rpb, spb, &mut zero_b);
    let c_gb = pick_b(&tb_c, pb.gate_triple.iter().copied());
    let a_gb = pick_b(&tb_a, pb.gate_triple.iter().copied());
    let b_gb = pick_b(&tb_b, pb.gate_triple.iter().copied());
    check_b(&bz, &c_gb, &a_gb, &b_gb, rgb, sgb, &mut zero_b);

    // 5. all zero, without sending them
    ctx.check_zero(&zero_a, &zero_b).await
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn parameters_meet_the_bound() {
        for (gates, lanes) in [(1, 1), (100, 64), (5_000, 1), (250_000, 1), (30_000, 64), (2_000_000, 64)] {
            let (b, c, n) = bucket_parameters(gates, lanes);
            assert!(n >= gates);
            assert_eq!(b, c);
            assert!(log2_binom(n * b, b) >= 41.0 + f64::from(lanes).log2());
            assert!(b == 2 || log2_binom(n * (b - 1), b - 1) < 41.0 + f64::from(lanes).log2());
        }
        assert_eq!(bucket_parameters(250_000, 1).0, 3);
    }

    #[test]
    fn permutation_is_a_permutation() {
        let p = permutation(&[1; 32], &[0; 16], b"x", 1000);
        let mut s = p.clone();
        s.sort();
        assert_eq!(s, (0..1000).collect::<Vec<_>>());
        assert_ne!(p, (0..1000).collect::<Vec<_>>());
        assert_ne!(p, permutation(&[2; 32], &[0; 16], b"x", 1000));
    }
}
