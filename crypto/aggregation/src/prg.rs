//! Seed-homomorphic PRGs from (ring-)Learning-With-Rounding.
#![doc = include_str!("../docs/prg.md")]

use core::fmt;

use rand_core::{CryptoRng, RngCore};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::modarith::Modulus;
use crate::ntt::NttPlan;
use crate::params::RingSet;
use crate::xof::{fill_uniform, public_stream};

/// A PRG seed: an element of `Z_q^n` (`q = p·p'`) kept as its residues modulo `p` and modulo `p'`.
/// For the ring PRG it is the polynomial `s ∈ R_q`. Zeroized on drop, hidden from `Debug`.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Seed {
    pub(crate) p: Vec<u64>,
    pub(crate) q: Vec<u64>,
}

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Seed(<{} coefficients hidden>)", self.p.len())
    }
}

impl Seed {
    /// A uniformly random seed of `n` coefficients for `set`'s moduli.
    pub fn random<R: RngCore + CryptoRng>(set: RingSet, n: usize, rng: &mut R) -> Self {
        let mut p = vec![0u64; n];
        let mut q = vec![0u64; n];
        fill_uniform(rng, set.output_modulus(), &mut p);
        fill_uniform(rng, set.noise_modulus(), &mut q);
        Self { p, q }
    }

    /// The zero seed of `n` coefficients.
    pub fn zero(n: usize) -> Self {
        Self {
            p: vec![0; n],
            q: vec![0; n],
        }
    }

    /// Builds a seed from residues; `None` unless both have length `n` and are reduced.
    pub fn from_residues(set: RingSet, p: Vec<u64>, q: Vec<u64>) -> Option<Self> {
        let (mp, mq) = (set.output_modulus().value(), set.noise_modulus().value());
        if p.len() != q.len() || p.iter().any(|&v| v >= mp) || q.iter().any(|&v| v >= mq) {
            return None;
        }
        Some(Self { p, q })
    }

    /// Number of coefficients.
    pub fn len(&self) -> usize {
        self.p.len()
    }

    /// `true` for a seed of no coefficients.
    pub fn is_empty(&self) -> bool {
        self.p.is_empty()
    }

    /// `self += other` in `Z_q^n`.
    pub fn add_assign(&mut self, other: &Seed, set: RingSet) {
        let (mp, mq) = (set.output_modulus(), set.noise_modulus());
        for (a, &b) in self.p.iter_mut().zip(&other.p) {
            *a = mp.add(*a, b);
        }
        for (a, &b) in self.q.iter_mut().zip(&other.q) {
            *a = mq.add(*a, b);
        }
    }

    /// Residues modulo `p`.
    pub fn residues_p(&self) -> &[u64] {
        &self.p
    }

    /// Residues modulo `p'`.
    pub fn residues_q(&self) -> &[u64] {
        &self.q
    }
}

/// A PRG `G: Z_q^n → Z_p^L` with `Σ_{i<k} G(s_i) = G(Σ s_i) + e`, every `|e_j| ≤ ⌊k/2⌋`.
pub trait SeedHomomorphicPrg {
    /// Output length `L`.
    fn output_len(&self) -> usize;
    /// Coefficients of a seed.
    fn seed_len(&self) -> usize;
    /// The ring set whose moduli it uses.
    fn ring(&self) -> RingSet;
    /// `G(seed)`, `L` values in `[0, p)`.
    fn expand(&self, seed: &Seed) -> Vec<u64>;
}

/// Rounding `Z_q → Z_p`, `x ↦ ⌊x/p'⌉ mod p`, from the CRT residues of `x`.
struct Rounder {
    mp: Modulus,
    half_q: u64,
    inv_q: u64,
    inv_q_shoup: u64,
}

impl Rounder {
    fn new(set: RingSet) -> Self {
        let mp = set.output_modulus();
        let q = set.noise_modulus().value();
        let inv_q = mp.inv(q % mp.value());
        Self {
            mp,
            half_q: (q - 1) / 2,
            inv_q,
            inv_q_shoup: mp.shoup(inv_q),
        }
    }

    /// `x = xq + p'·k` with `k = (xp − xq)·p'^{-1} mod p`; `⌊x/p'⌉ = k + [xq > (p'−1)/2]`.
    #[inline(always)]
    fn round(&self, xp: u64, xq: u64) -> u64 {
        let k = self
            .mp
            .mul_shoup(self.mp.sub(xp, xq), self.inv_q, self.inv_q_shoup);
        let r = k + u64::from(xq > self.half_q);
        if r == self.mp.value() { 0 } else { r }
    }
}

/// The ring-LWR PRG: `G(s) = (⌊a_j · s⌉_p)_{j < k}` truncated to `L`, `a_j ∈ R_q` public.
pub struct RlwrPrg {
    set: RingSet,
    out_len: usize,
    plan_p: NttPlan,
    plan_q: NttPlan,
    // Public ring elements in the NTT domain, with Shoup precomputation.
    a_p: Vec<Vec<u64>>,
    a_p_shoup: Vec<Vec<u64>>,
    a_q: Vec<Vec<u64>>,
    a_q_shoup: Vec<Vec<u64>>,
    rounder: Rounder,
}

impl fmt::Debug for RlwrPrg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RlwrPrg")
            .field("set", &self.set)
            .field("out_len", &self.out_len)
            .finish_non_exhaustive()
    }
}

fn plans(set: RingSet) -> (NttPlan, NttPlan) {
    let n = set.degree();
    // The constant moduli are NTT-friendly (tested in params), so the plans always exist.
    let make = |m| NttPlan::new(n, m).unwrap_or_else(|| unreachable!("moduli are NTT-friendly"));
    (make(set.output_modulus()), make(set.noise_modulus()))
}

impl RlwrPrg {
    /// Expands the public ring elements for `out_len` outputs from the round digest.
    pub fn new(set: RingSet, round_digest: &[u8; 32], out_len: usize) -> Self {
        let n = set.degree();
        let blocks = out_len.div_ceil(n);
        let (plan_p, plan_q) = plans(set);
        let (mp, mq) = (set.output_modulus(), set.noise_modulus());
        let mut a_p = Vec::with_capacity(blocks);
        let mut a_q = Vec::with_capacity(blocks);
        for j in 0..blocks {
            let mut rng = public_stream(round_digest, b"rlwr-a", j as u64);
            let mut ap = vec![0u64; n];
            let mut aq = vec![0u64; n];
            fill_uniform(&mut rng, mp, &mut ap);
            fill_uniform(&mut rng, mq, &mut aq);
            a_p.push(ap);
            a_q.push(aq);
        }
        let a_p_shoup = a_p
            .iter()
            .map(|v| v.iter().map(|&w| mp.shoup(w)).collect())
            .collect();
        let a_q_shoup = a_q
            .iter()
            .map(|v| v.iter().map(|&w| mq.shoup(w)).collect())
            .collect();
        Self {
            set,
            out_len,
            plan_p,
            plan_q,
            a_p,
            a_p_shoup,
            a_q,
            a_q_shoup,
            rounder: Rounder::new(set),
        }
    }

    /// Public element `a_j` in the coefficient domain, residues mod `p` and `p'` (for tests).
    pub fn public_coefficients(&self, j: usize) -> (Vec<u64>, Vec<u64>) {
        let mut p = self.a_p[j].clone();
        let mut q = self.a_q[j].clone();
        self.plan_p.inverse(&mut p);
        self.plan_q.inverse(&mut q);
        (p, q)
    }

    /// Adds `G(seed)` into `out` (mod `p`), `out.len() == L`. Saves a buffer on the client.
    pub fn expand_add(&self, seed: &Seed, out: &mut [u64]) {
        self.expand_with(seed, out, true);
    }

    fn expand_with(&self, seed: &Seed, out: &mut [u64], add: bool) {
        let n = self.set.degree();
        let mp = self.set.output_modulus();
        let mq = self.set.noise_modulus();
        let mut sp = seed.p.clone();
        let mut sq = seed.q.clone();
        self.plan_p.forward(&mut sp);
        self.plan_q.forward(&mut sq);
        let mut tp = vec![0u64; n];
        let mut tq = vec![0u64; n];
        for (j, chunk) in out.chunks_mut(n).enumerate().take(self.a_p.len()) {
            for (((t, &a), &a_s), &s) in tp
                .iter_mut()
                .zip(&self.a_p[j])
                .zip(&self.a_p_shoup[j])
                .zip(&sp)
            {
                *t = mp.mul_shoup(s, a, a_s);
            }
            for (((t, &a), &a_s), &s) in tq
                .iter_mut()
                .zip(&self.a_q[j])
                .zip(&self.a_q_shoup[j])
                .zip(&sq)
            {
                *t = mq.mul_shoup(s, a, a_s);
            }
            self.plan_p.inverse(&mut tp);
            self.plan_q.inverse(&mut tq);
            for ((o, &xp), &xq) in chunk.iter_mut().zip(&tp).zip(&tq) {
                let g = self.rounder.round(xp, xq);
                *o = if add { mp.add(*o, g) } else { g };
            }
        }
        sp.zeroize();
        sq.zeroize();
        tp.zeroize();
        tq.zeroize();
    }
}

impl SeedHomomorphicPrg for RlwrPrg {
    fn output_len(&self) -> usize {
        self.out_len
    }
    fn seed_len(&self) -> usize {
        self.set.degree()
    }
    fn ring(&self) -> RingSet {
        self.set
    }
    fn expand(&self, seed: &Seed) -> Vec<u64> {
        let mut out = vec![0u64; self.out_len];
        self.expand_with(seed, &mut out, false);
        out
    }
}

/// The plain LWR PRG `G(s) = ⌊A·s⌉_p`, `A ∈ Z_q^{L×n}` public: the reference the ring PRG is
/// tested against (`O(L·n)` work, for small sizes only).
pub struct PlainLwrPrg {
    set: RingSet,
    dim: usize,
    rows_p: Vec<Vec<u64>>,
    rows_q: Vec<Vec<u64>>,
    rounder: Rounder,
}

impl fmt::Debug for PlainLwrPrg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlainLwrPrg")
            .field("set", &self.set)
            .field("dim", &self.dim)
            .field("out_len", &self.rows_p.len())
            .finish_non_exhaustive()
    }
}

impl PlainLwrPrg {
    /// A uniformly random public matrix of `out_len × dim` expanded from the round digest.
    pub fn new(set: RingSet, round_digest: &[u8; 32], dim: usize, out_len: usize) -> Self {
        let (mp, mq) = (set.output_modulus(), set.noise_modulus());
        let mut rows_p = Vec::with_capacity(out_len);
        let mut rows_q = Vec::with_capacity(out_len);
        let mut rng = public_stream(round_digest, b"plain-lwr-A", 0);
        for _ in 0..out_len {
            let mut rp = vec![0u64; dim];
            let mut rq = vec![0u64; dim];
            fill_uniform(&mut rng, mp, &mut rp);
            fill_uniform(&mut rng, mq, &mut rq);
            rows_p.push(rp);
            rows_q.push(rq);
        }
        Self::from_rows(set, rows_p, rows_q)
    }

    /// The PRG of an explicit matrix given by its residues (rows of equal length, reduced).
    pub fn from_rows(set: RingSet, rows_p: Vec<Vec<u64>>, rows_q: Vec<Vec<u64>>) -> Self {
        let dim = rows_p.first().map_or(0, Vec::len);
        Self {
            set,
            dim,
            rows_p,
            rows_q,
            rounder: Rounder::new(set),
        }
    }

    /// The negacyclic matrices of the ring PRG's public elements, stacked: `G_plain = G_ring`.
    pub fn from_ring(ring: &RlwrPrg) -> Self {
        let n = ring.set.degree();
        let (mp, mq) = (ring.set.output_modulus(), ring.set.noise_modulus());
        let mut rows_p = Vec::with_capacity(ring.out_len);
        let mut rows_q = Vec::with_capacity(ring.out_len);
        for j in 0..ring.out_len.div_ceil(n) {
            let (ap, aq) = ring.public_coefficients(j);
            for i in 0..n.min(ring.out_len - j * n) {
                // (a·s)_i = Σ_{k ≤ i} a_{i−k} s_k − Σ_{k > i} a_{n+i−k} s_k.
                let row = |a: &[u64], m: Modulus| -> Vec<u64> {
                    (0..n)
                        .map(|k| {
                            if k <= i {
                                a[i - k]
                            } else {
                                m.neg(a[n + i - k])
                            }
                        })
                        .collect()
                };
                rows_p.push(row(&ap, mp));
                rows_q.push(row(&aq, mq));
            }
        }
        Self::from_rows(ring.set, rows_p, rows_q)
    }
}

impl SeedHomomorphicPrg for PlainLwrPrg {
    fn output_len(&self) -> usize {
        self.rows_p.len()
    }
    fn seed_len(&self) -> usize {
        self.dim
    }
    fn ring(&self) -> RingSet {
        self.set
    }
    fn expand(&self, seed: &Seed) -> Vec<u64> {
        let (mp, mq) = (self.set.output_modulus(), self.set.noise_modulus());
        self.rows_p
            .iter()
            .zip(&self.rows_q)
            .map(|(rp, rq)| {
                let xp = rp
                    .iter()
                    .zip(&seed.p)
                    .fold(0u64, |acc, (&a, &s)| mp.add(acc, mp.mul(a, s)));
                let xq = rq
                    .iter()
                    .zip(&seed.q)
                    .fold(0u64, |acc, (&a, &s)| mq.add(acc, mq.mul(a, s)));
                self.rounder.round(xp, xq)
            })
            .collect()
    }
}

/// The homomorphism error `Σ G(s_i) − G(Σ s_i)` as signed integers (centred modulo `p`).
pub fn homomorphism_error<G: SeedHomomorphicPrg>(prg: &G, seeds: &[Seed]) -> Vec<i64> {
    let set = prg.ring();
    let mp = set.output_modulus();
    let mut sum_seed = Seed::zero(prg.seed_len());
    let mut sum_out = vec![0u64; prg.output_len()];
    for s in seeds {
        sum_seed.add_assign(s, set);
        for (o, g) in sum_out.iter_mut().zip(prg.expand(s)) {
            *o = mp.add(*o, g);
        }
    }
    let g_sum = prg.expand(&sum_seed);
    sum_out
        .iter()
        .zip(g_sum)
        .map(|(&a, b)| {
            let d = mp.sub(a, b);
            if d > mp.value() / 2 {
                d as i64 - mp.value() as i64
            } else {
                d as i64
            }
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use rand::{SeedableRng, rngs::StdRng};

    #[test]
    fn ring_prg_equals_plain_lwr_on_the_negacyclic_matrix() {
        let set = RingSet::R2048P50;
        let ring = RlwrPrg::new(set, &[1u8; 32], 2048 + 100);
        let plain = PlainLwrPrg::from_ring(&ring);
        let mut rng = StdRng::seed_from_u64(1);
        let s = Seed::random(set, 2048, &mut rng);
        assert_eq!(ring.expand(&s), plain.expand(&s));
    }

    #[test]
    fn ring_prg_is_seed_homomorphic_with_error_at_most_half_the_clients() {
        let mut rng = StdRng::seed_from_u64(2);
        for set in RingSet::ALL {
            let prg = RlwrPrg::new(set, &[2u8; 32], 3000);
            for clients in [1usize, 2, 7, 40] {
                let seeds: Vec<Seed> = (0..clients)
                    .map(|_| Seed::random(set, set.degree(), &mut rng))
                    .collect();
                let e = homomorphism_error(&prg, &seeds);
                let bound = (clients / 2) as i64;
                assert!(e.iter().all(|v| v.abs() <= bound), "bound violated");
                if clients >= 2 {
                    // The error is really there (the test would notice a PRG that is linear).
                    assert!(e.iter().any(|&v| v != 0));
                }
            }
        }
    }

    #[test]
    fn plain_lwr_reference_is_seed_homomorphic() {
        let set = RingSet::R2048P50;
        let prg = PlainLwrPrg::new(set, &[3u8; 32], 64, 200);
        let mut rng = StdRng::seed_from_u64(3);
        let seeds: Vec<Seed> = (0..9).map(|_| Seed::random(set, 64, &mut rng)).collect();
        let e = homomorphism_error(&prg, &seeds);
        assert!(e.iter().all(|v| v.abs() <= 4));
        assert!(e.iter().any(|&v| v != 0));
    }

    #[test]
    fn outputs_depend_on_round_and_seed() {
        let set = RingSet::R2048P50;
        let mut rng = StdRng::seed_from_u64(4);
        let s = Seed::random(set, 2048, &mut rng);
        let a = RlwrPrg::new(set, &[5u8; 32], 100).expand(&s);
        let b = RlwrPrg::new(set, &[6u8; 32], 100).expand(&s);
        assert_ne!(a, b);
        let t = Seed::random(set, 2048, &mut rng);
        assert_ne!(a, RlwrPrg::new(set, &[5u8; 32], 100).expand(&t));
        assert!(a.iter().all(|&v| v < set.output_modulus().value()));
        assert_eq!(format!("{s:?}"), "Seed(<2048 coefficients hidden>)");
    }
}
