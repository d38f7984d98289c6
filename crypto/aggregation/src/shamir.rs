//! Shamir secret sharing over a prime field `F_P`, coefficient-wise on vectors.
#![doc = include_str!("../docs/shamir.md")]

use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroize;

use crate::modarith::Modulus;
use crate::xof::fill_uniform;

/// Shares `secret` (a vector over `F_P`) with threshold `t` among members `1..=m`: for every
/// coordinate a fresh polynomial `f` of degree `t` with `f(0)` the secret coordinate; member `i`
/// gets `f(i)`. Returns `m` share vectors. Needs `m < P`.
pub fn share<R: RngCore + CryptoRng>(
    field: Modulus,
    secret: &[u64],
    threshold: usize,
    members: usize,
    rng: &mut R,
) -> Vec<Vec<u64>> {
    let mut shares = vec![vec![0u64; secret.len()]; members];
    let mut coeffs = vec![0u64; threshold];
    let points: Vec<(u64, u64)> = (1..=members as u64)
        .map(|x| {
            let x = field.reduce(x);
            (x, field.shoup(x))
        })
        .collect();
    for (k, &s) in secret.iter().enumerate() {
        fill_uniform(rng, field, &mut coeffs);
        for (share, &(x, xs)) in shares.iter_mut().zip(&points) {
            // Horner: f(x) = s + c_1 x + … + c_t x^t.
            let mut acc = 0u64;
            for &c in coeffs.iter().rev() {
                acc = field.mul_shoup(field.add(acc, c), x, xs);
            }
            share[k] = field.add(acc, s);
        }
    }
    coeffs.zeroize();
    shares
}

/// Lagrange coefficients `λ_i` with `f(target) = Σ λ_i f(x_i)` for every polynomial of degree
/// `< xs.len()`. `None` if two points coincide (or a point equals another modulo `P`).
pub fn lagrange_coefficients(field: Modulus, xs: &[u64], target: u64) -> Option<Vec<u64>> {
    let mut out = Vec::with_capacity(xs.len());
    for (i, &xi) in xs.iter().enumerate() {
        let mut num = 1u64;
        let mut den = 1u64;
        for (j, &xj) in xs.iter().enumerate() {
            if i == j {
                continue;
            }
            let d = field.sub(field.reduce(xi), field.reduce(xj));
            if d == 0 {
                return None;
            }
            num = field.mul(num, field.sub(field.reduce(target), field.reduce(xj)));
            den = field.mul(den, d);
        }
        out.push(field.mul(num, field.inv(den)));
    }
    Some(out)
}

/// `Σ λ_i · shares_i`, coordinate-wise: the value at the Lagrange coefficients' target.
pub fn combine(field: Modulus, lambdas: &[u64], shares: &[&[u64]]) -> Vec<u64> {
    let len = shares.first().map_or(0, |s| s.len());
    let mut out = vec![0u64; len];
    for (&l, s) in lambdas.iter().zip(shares) {
        let ls = field.shoup(l);
        for (o, &v) in out.iter_mut().zip(s.iter()) {
            *o = field.add(*o, field.mul_shoup(v, l, ls));
        }
    }
    out
}

/// Reconstructs `f(0)` from the shares at `xs` (needs `xs.len() ≥ t + 1`).
pub fn reconstruct(field: Modulus, xs: &[u64], shares: &[&[u64]]) -> Option<Vec<u64>> {
    if xs.len() != shares.len() {
        return None;
    }
    let lambdas = lagrange_coefficients(field, xs, 0)?;
    Some(combine(field, &lambdas, shares))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    const P: Modulus = Modulus::new(1_125_899_906_826_241);

    #[test]
    fn any_t_plus_one_shares_reconstruct() {
        let mut rng = StdRng::seed_from_u64(1);
        let secret: Vec<u64> = (0..50).map(|_| rng.gen_range(0..P.value())).collect();
        let (t, m) = (2usize, 5usize);
        let shares = share(P, &secret, t, m, &mut rng);
        for a in 1..=m {
            for b in a + 1..=m {
                for c in b + 1..=m {
                    let xs = [a as u64, b as u64, c as u64];
                    let sh = [&shares[a - 1][..], &shares[b - 1][..], &shares[c - 1][..]];
                    assert_eq!(reconstruct(P, &xs, &sh).unwrap(), secret);
                }
            }
        }
    }

    #[test]
    fn t_shares_give_a_wrong_answer() {
        let mut rng = StdRng::seed_from_u64(2);
        let secret: Vec<u64> = (0..50).map(|_| rng.gen_range(0..P.value())).collect();
        let shares = share(P, &secret, 2, 5, &mut rng);
        let got = reconstruct(P, &[1, 2], &[&shares[0], &shares[1]]).unwrap();
        assert!(got.iter().zip(&secret).all(|(a, b)| a != b));
    }

    #[test]
    fn sum_of_shares_reconstructs_sum_of_secrets() {
        let mut rng = StdRng::seed_from_u64(3);
        let a: Vec<u64> = (0..20).map(|_| rng.gen_range(0..P.value())).collect();
        let b: Vec<u64> = (0..20).map(|_| rng.gen_range(0..P.value())).collect();
        let sa = share(P, &a, 3, 7, &mut rng);
        let sb = share(P, &b, 3, 7, &mut rng);
        let sums: Vec<Vec<u64>> = sa
            .iter()
            .zip(&sb)
            .map(|(x, y)| x.iter().zip(y).map(|(&u, &v)| P.add(u, v)).collect())
            .collect();
        let xs = [2u64, 4, 5, 7];
        let sh: Vec<&[u64]> = xs.iter().map(|&x| &sums[x as usize - 1][..]).collect();
        let expected: Vec<u64> = a.iter().zip(&b).map(|(&u, &v)| P.add(u, v)).collect();
        assert_eq!(reconstruct(P, &xs, &sh).unwrap(), expected);
    }

    /// Replays a script of values, so that `share` can be driven through every polynomial.
    struct Scripted(Vec<u64>, usize);
    impl RngCore for Scripted {
        fn next_u32(&mut self) -> u32 {
            self.next_u64() as u32
        }
        fn next_u64(&mut self) -> u64 {
            let v = self.0[self.1 % self.0.len()];
            self.1 += 1;
            v
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            for b in dest {
                *b = self.next_u64() as u8;
            }
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }
    impl CryptoRng for Scripted {}

    /// Exhaustive privacy over a small field, through the real `share`: for threshold t = 2, the
    /// joint distribution of any two shares over all random coefficients is exactly uniform on
    /// F_13², for every secret. A sharing of degree < t (or with a coefficient left out) makes the
    /// histogram depend on the secret and fails this test.
    #[test]
    fn any_t_shares_are_uniform_whatever_the_secret() {
        let f = Modulus::new(13);
        for (xa, xb) in [(1usize, 2usize), (2, 5), (4, 5)] {
            for secret in 0..13u64 {
                let mut hist = vec![0u32; 169];
                for c1 in 0..13u64 {
                    for c2 in 0..13u64 {
                        let mut rng = Scripted(vec![c1, c2], 0);
                        let shares = share(f, &[secret], 2, 5, &mut rng);
                        assert_eq!(rng.1, 2, "exactly t random coefficients per coordinate");
                        let (a, b) = (shares[xa - 1][0], shares[xb - 1][0]);
                        hist[(a * 13 + b) as usize] += 1;
                    }
                }
                assert!(hist.iter().all(|&h| h == 1), "two shares must be uniform");
            }
        }
        // ... while three shares determine the secret.
        let mut rng = Scripted(vec![3, 9], 0);
        let shares = share(f, &[11], 2, 5, &mut rng);
        let got = reconstruct(f, &[1, 3, 5], &[&shares[0], &shares[2], &shares[4]]).unwrap();
        assert_eq!(got, vec![11]);
    }

    #[test]
    fn coincident_points_are_refused() {
        assert!(lagrange_coefficients(P, &[1, 1], 0).is_none());
        assert!(reconstruct(P, &[1, 2], &[&[1][..]]).is_none());
    }
}
