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
    (0..k)
        .map(|i| ((n - i) as f64 / (k - i) as f64).log2())
        .sum()
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
    Plan {
        open,
        gate_triple,
        pairs,
    }
}

/// The ring operations the check needs: `Z_2^64` or 64 lanes of `GF(2)`.
trait Ring {
    fn sub(a: u64, b: u64) -> u64;
    fn mul(a: u64, b: u64) -> u64;
}

struct Arith;
struct Bits;

impl Ring for Arith {
    #[inline]
    fn sub(a: u64, b: u64) -> u64 {
        a.wrapping_sub(b)
    }
    #[inline]
    fn mul(a: u64, b: u64) -> u64 {
        a.wrapping_mul(b)
    }
}

impl Ring for Bits {
    #[inline]
    fn sub(a: u64, b: u64) -> u64 {
        a ^ b
    }
    #[inline]
    fn mul(a: u64, b: u64) -> u64 {
        a & b
    }
}

/// This party's components of one triple, stored together for cache-friendly gathers:
/// `[a_i, a_{i+1}, b_i, b_{i+1}, c_i, c_{i+1}]`.
type Triple = [u64; 6];

/// One gate: this party's components `[x_i, x_{i+1}, y_i, y_{i+1}, z_i, z_{i+1}]`.
fn gate(x: &[u64], xb: &[u64], y: &[u64], yb: &[u64], z: &[u64], zb: &[u64], g: usize) -> Triple {
    [x[g], xb[g], y[g], yb[g], z[g], zb[g]]
}

/// Values to open for checking `(x, y, z)` with triple `t`: `ρ = x − a`, `σ = y − b`.
#[inline]
fn push_rho_sigma<R: Ring>(g: &Triple, t: &Triple, oa: &mut Vec<u64>, ob: &mut Vec<u64>) {
    oa.push(R::sub(g[0], t[0]));
    ob.push(R::sub(g[1], t[1]));
    oa.push(R::sub(g[2], t[2]));
    ob.push(R::sub(g[3], t[3]));
}

/// This party's components of `z − c − σ·a − ρ·b − ρσ` (must be a sharing of zero).
#[inline]
fn check_value<R: Ring>(me: usize, g: &Triple, t: &Triple, rho: u64, sig: u64) -> (u64, u64) {
    let rs = R::mul(rho, sig);
    let mut ea = R::sub(
        R::sub(R::sub(g[4], t[4]), R::mul(sig, t[0])),
        R::mul(rho, t[2]),
    );
    let mut eb = R::sub(
        R::sub(R::sub(g[5], t[5]), R::mul(sig, t[1])),
        R::mul(rho, t[3]),
    );
    match me {
        0 => ea = R::sub(ea, rs),
        2 => eb = R::sub(eb, rs),
        _ => {}
    }
    (ea, eb)
}

/// Everything one ring's check needs between the opening and the zero test.
struct Side {
    triples: Vec<Triple>,
    plan: Plan,
}

impl Side {
    /// Append the values to open: the cut triples' `a, b, c`, then `ρ, σ` of every
    /// bucket check and every gate check.
    fn to_open<R: Ring>(&self, gates: &[Triple], oa: &mut Vec<u64>, ob: &mut Vec<u64>) {
        for &k in &self.plan.open {
            let t = &self.triples[k];
            for j in 0..3 {
                oa.push(t[2 * j]);
                ob.push(t[2 * j + 1]);
            }
        }
        for &(o, k) in &self.plan.pairs {
            push_rho_sigma::<R>(&self.triples[o], &self.triples[k], oa, ob);
        }
        for (g, &t) in gates.iter().zip(&self.plan.gate_triple) {
            push_rho_sigma::<R>(g, &self.triples[t], oa, ob);
        }
    }

    fn open_len(&self) -> usize {
        3 * self.plan.open.len() + 2 * self.plan.pairs.len() + 2 * self.plan.gate_triple.len()
    }

    /// Check the opened triples and append the zero-test components.
    fn zeros<R: Ring>(
        &self,
        me: usize,
        gates: &[Triple],
        opened: &[u64],
        za: &mut Vec<u64>,
        zb: &mut Vec<u64>,
    ) -> Result<(), Error> {
        let oc = self.plan.open.len();
        for k in 0..oc {
            let (a, b, c) = (opened[3 * k], opened[3 * k + 1], opened[3 * k + 2]);
            if R::mul(a, b) != c {
                return Err(Error::VerificationFailed(
                    "an opened triple is not a product",
                ));
            }
        }
        let mut off = 3 * oc;
        for &(o, k) in &self.plan.pairs {
            let (ea, eb) = check_value::<R>(
                me,
                &self.triples[o],
                &self.triples[k],
                opened[off],
                opened[off + 1],
            );
            za.push(ea);
            zb.push(eb);
            off += 2;
        }
        for (g, &t) in gates.iter().zip(&self.plan.gate_triple) {
            let (ea, eb) = check_value::<R>(me, g, &self.triples[t], opened[off], opened[off + 1]);
            za.push(ea);
            zb.push(eb);
            off += 2;
        }
        Ok(())
    }
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
    let (ba, ca, bka) = if na == 0 {
        (2, 0, 0)
    } else {
        bucket_parameters(na, 1)
    };
    let (bb, cb, bkb) = if nb == 0 {
        (2, 0, 0)
    } else {
        bucket_parameters(nb, 64)
    };
    let ta = bka * ba + ca;
    let tb = bkb * bb + cb;

    // 1. random triples (not logged: they are what is being checked)
    let (a0, a1) = ctx.core.prf.random_pair(ta);
    let (b0, b1) = ctx.core.prf.random_pair(ta);
    let x = AVec { a: a0, b: a1 };
    let y = AVec { a: b0, b: b1 };
    let (p0, p1) = ctx.core.prf.random_pair(tb);
    let (q0, q1) = ctx.core.prf.random_pair(tb);
    let p = BVec { a: p0, b: p1 };
    let q = BVec { a: q0, b: q1 };
    let mut batch = Batch::new(SecurityMode::SemiHonest);
    let rc = batch.mul(&x, &y);
    let rcb = batch.and(&p, &q);
    let out = ctx.run(batch).await?;
    let z = out.arith(&rc);
    let zq = out.bin(&rcb);
    let arith_triples: Vec<Triple> = (0..ta)
        .map(|k| gate(&x.a, &x.b, &y.a, &y.b, &z.a, &z.b, k))
        .collect();
    let bin_triples: Vec<Triple> = (0..tb)
        .map(|k| gate(&p.a, &p.b, &q.a, &q.b, &zq.a, &zq.b, k))
        .collect();
    drop((x, y, z, p, q, zq));
    let GateLog {
        ax,
        ay,
        az,
        bx,
        by,
        bz,
    } = log;
    let arith_gates: Vec<Triple> = (0..na)
        .map(|g| gate(&ax.a, &ax.b, &ay.a, &ay.b, &az.a, &az.b, g))
        .collect();
    let bin_gates: Vec<Triple> = (0..nb)
        .map(|g| gate(&bx.a, &bx.b, &by.a, &by.b, &bz.a, &bz.b, g))
        .collect();
    drop((ax, ay, az, bx, by, bz));

    // 2. coins, fixed only after the gates and triples are
    let seed = ctx.coin_toss(b"verify").await?;
    // Move the triples into their random order once (one random read each); from here
    // on buckets are contiguous and every pass is sequential.
    let shuffle = |t: Vec<Triple>, label: &[u8]| -> Vec<Triple> {
        permutation(&seed, &round, label, t.len())
            .into_iter()
            .map(|k| t[k])
            .collect()
    };
    let arith_triples = shuffle(arith_triples, b"arith");
    let bin_triples = shuffle(bin_triples, b"binary");
    let ident = |n: usize| (0..n).collect::<Vec<usize>>();
    let sa = Side {
        triples: arith_triples,
        plan: plan(&ident(ta), na, ba, ca, bka),
    };
    let sb = Side {
        triples: bin_triples,
        plan: plan(&ident(tb), nb, bb, cb, bkb),
    };

    // 3. one opening step: the cut triples, and ρ, σ of every check
    let mut oa = AVec {
        a: Vec::with_capacity(sa.open_len()),
        b: Vec::with_capacity(sa.open_len()),
    };
    sa.to_open::<Arith>(&arith_gates, &mut oa.a, &mut oa.b);
    let mut ob = BVec {
        a: Vec::with_capacity(sb.open_len()),
        b: Vec::with_capacity(sb.open_len()),
    };
    sb.to_open::<Bits>(&bin_gates, &mut ob.a, &mut ob.b);
    let (va, vb) = ctx.open(&oa, &ob).await?;
    drop((oa, ob));

    // 4. z − c − σ·a − ρ·b − ρσ must be zero for every check
    let mut za = AVec {
        a: Vec::with_capacity(na + sa.plan.pairs.len()),
        b: Vec::with_capacity(na + sa.plan.pairs.len()),
    };
    sa.zeros::<Arith>(me.index(), &arith_gates, &va, &mut za.a, &mut za.b)?;
    let mut zb = BVec {
        a: Vec::with_capacity(nb + sb.plan.pairs.len()),
        b: Vec::with_capacity(nb + sb.plan.pairs.len()),
    };
    sb.zeros::<Bits>(me.index(), &bin_gates, &vb, &mut zb.a, &mut zb.b)?;

    // 5. all zero, without sending them
    ctx.check_zero(&za, &zb).await
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::needless_range_loop
)]
mod tests {
    use super::*;

    #[test]
    fn parameters_meet_the_bound() {
        for (gates, lanes) in [
            (1, 1),
            (100, 64),
            (5_000, 1),
            (250_000, 1),
            (30_000, 64),
            (2_000_000, 64),
        ] {
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
