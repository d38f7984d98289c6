//! Negacyclic number-theoretic transform over `Z_P[X]/(X^n + 1)` for a prime `P ≡ 1 (mod 2n)`.
//!
//! Forward: Cooley–Tukey with the powers of a primitive `2n`-th root `ψ` in bit-reversed order
//! (output in bit-reversed order). Inverse: Gentleman–Sande, then a multiplication by `n^-1`.
//! Pointwise products in the transformed domain are products in the ring, whatever the order of
//! the slots, so a uniformly random vector in the transformed domain is a uniformly random ring
//! element: the public randomness of the PRG is sampled there directly.

use crate::modarith::Modulus;

/// Precomputed tables for one `(n, P)`.
#[derive(Clone, Debug)]
pub struct NttPlan {
    n: usize,
    m: Modulus,
    psi_rev: Vec<u64>,
    psi_rev_shoup: Vec<u64>,
    psi_inv_rev: Vec<u64>,
    psi_inv_rev_shoup: Vec<u64>,
    n_inv: u64,
    n_inv_shoup: u64,
}

fn bit_reverse(mut x: usize, bits: u32) -> usize {
    let mut r = 0;
    for _ in 0..bits {
        r = (r << 1) | (x & 1);
        x >>= 1;
    }
    r
}

impl NttPlan {
    /// Builds the plan; `None` if `n` is not a power of two or `P ≢ 1 (mod 2n)`.
    pub fn new(n: usize, m: Modulus) -> Option<Self> {
        if !n.is_power_of_two() || n < 2 {
            return None;
        }
        let p = m.value();
        let two_n = 2 * n as u64;
        if !(p - 1).is_multiple_of(two_n) {
            return None;
        }
        // A primitive 2n-th root of unity: x^((p-1)/2n) for the first x whose n-th power is -1.
        let mut psi = 0;
        for x in 2..p {
            let c = m.pow(x, (p - 1) / two_n);
            if m.pow(c, n as u64) == p - 1 {
                psi = c;
                break;
            }
        }
        if psi == 0 {
            return None;
        }
        let psi_inv = m.inv(psi);
        let bits = n.trailing_zeros();
        let mut psi_rev = vec![0u64; n];
        let mut psi_inv_rev = vec![0u64; n];
        let mut pw = 1u64;
        let mut pw_inv = 1u64;
        for i in 0..n {
            let r = bit_reverse(i, bits);
            psi_rev[r] = pw;
            psi_inv_rev[r] = pw_inv;
            pw = m.mul(pw, psi);
            pw_inv = m.mul(pw_inv, psi_inv);
        }
        let psi_rev_shoup = psi_rev.iter().map(|&w| m.shoup(w)).collect();
        let psi_inv_rev_shoup = psi_inv_rev.iter().map(|&w| m.shoup(w)).collect();
        let n_inv = m.inv(n as u64);
        Some(Self {
            n,
            m,
            psi_rev,
            psi_rev_shoup,
            psi_inv_rev,
            psi_inv_rev_shoup,
            n_inv,
            n_inv_shoup: m.shoup(n_inv),
        })
    }

    /// Ring degree.
    pub fn n(&self) -> usize {
        self.n
    }

    /// The modulus.
    pub fn modulus(&self) -> Modulus {
        self.m
    }

    /// In-place forward transform of a reduced polynomial of `n` coefficients. Harvey's lazy
    /// butterflies keep values in `[0, 4P)` (needs `P < 2^62`); the output is fully reduced.
    pub fn forward(&self, a: &mut [u64]) {
        debug_assert_eq!(a.len(), self.n);
        let m = self.m;
        let two_p = 2 * m.value();
        let mut t = self.n;
        let mut groups = 1;
        while groups < self.n {
            t /= 2;
            for (i, block) in a.chunks_exact_mut(2 * t).enumerate() {
                let w = self.psi_rev[groups + i];
                let ws = self.psi_rev_shoup[groups + i];
                let (lo, hi) = block.split_at_mut(t);
                for (x, y) in lo.iter_mut().zip(hi.iter_mut()) {
                    let mut u = *x;
                    if u >= two_p {
                        u -= two_p;
                    }
                    let v = m.mul_shoup_lazy(*y, w, ws);
                    *x = u + v;
                    *y = u + two_p - v;
                }
            }
            groups *= 2;
        }
        let p = m.value();
        for x in a.iter_mut() {
            let mut v = *x;
            if v >= two_p {
                v -= two_p;
            }
            if v >= p {
                v -= p;
            }
            *x = v;
        }
    }

    /// In-place inverse transform (includes the factor `n^-1`); input reduced, output reduced.
    pub fn inverse(&self, a: &mut [u64]) {
        debug_assert_eq!(a.len(), self.n);
        let m = self.m;
        let two_p = 2 * m.value();
        let mut t = 1;
        let mut groups = self.n;
        while groups > 1 {
            let h = groups / 2;
            for (i, block) in a.chunks_exact_mut(2 * t).enumerate() {
                let w = self.psi_inv_rev[h + i];
                let ws = self.psi_inv_rev_shoup[h + i];
                let (lo, hi) = block.split_at_mut(t);
                for (x, y) in lo.iter_mut().zip(hi.iter_mut()) {
                    // Values stay in [0, 2P).
                    let u = *x;
                    let v = *y;
                    let mut s = u + v;
                    if s >= two_p {
                        s -= two_p;
                    }
                    *x = s;
                    *y = m.mul_shoup_lazy(u + two_p - v, w, ws);
                }
            }
            t *= 2;
            groups = h;
        }
        let p = m.value();
        for x in a.iter_mut() {
            let mut v = m.mul_shoup_lazy(*x, self.n_inv, self.n_inv_shoup);
            if v >= p {
                v -= p;
            }
            *x = v;
        }
    }

    /// `out[i] = a[i] * b[i] mod P`.
    pub fn pointwise(&self, a: &[u64], b: &[u64], out: &mut [u64]) {
        for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
            *o = self.m.mul(x, y);
        }
    }
}

/// Schoolbook negacyclic product, the reference the NTT is tested against.
pub fn negacyclic_schoolbook(m: Modulus, a: &[u64], b: &[u64]) -> Vec<u64> {
    let n = a.len();
    let mut out = vec![0u64; n];
    for (i, &ai) in a.iter().enumerate() {
        for (j, &bj) in b.iter().enumerate() {
            let prod = m.mul(ai, bj);
            let k = i + j;
            if k < n {
                out[k] = m.add(out[k], prod);
            } else {
                out[k - n] = m.sub(out[k - n], prod);
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    fn check(n: usize, p: u64) {
        let m = Modulus::new(p);
        let plan = NttPlan::new(n, m).unwrap();
        let mut rng = StdRng::seed_from_u64(n as u64 ^ p);
        let a: Vec<u64> = (0..n).map(|_| rng.gen_range(0..p)).collect();
        let b: Vec<u64> = (0..n).map(|_| rng.gen_range(0..p)).collect();
        let expected = negacyclic_schoolbook(m, &a, &b);
        let (mut fa, mut fb) = (a.clone(), b.clone());
        plan.forward(&mut fa);
        plan.forward(&mut fb);
        let mut prod = vec![0; n];
        plan.pointwise(&fa, &fb, &mut prod);
        plan.inverse(&mut prod);
        assert_eq!(prod, expected);
        plan.inverse(&mut fa);
        assert_eq!(fa, a);
    }

    #[test]
    fn ntt_product_equals_schoolbook() {
        for p in [65537u64, 1_125_899_906_826_241, 2_305_843_009_213_554_689] {
            for n in [2usize, 8, 64, 256] {
                check(n, p);
            }
        }
    }

    #[test]
    fn rejects_unfriendly_modulus() {
        assert!(NttPlan::new(2048, Modulus::new(65521)).is_none());
        assert!(NttPlan::new(100, Modulus::new(65537)).is_none());
    }
}
