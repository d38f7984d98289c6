//! Arithmetic modulo a prime below 2^62 (fits the lazy sums used by the NTT and the accumulators).

/// A prime modulus `P < 2^62` with helpers. All inputs are expected reduced (`< P`) unless said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Modulus {
    p: u64,
}

impl Modulus {
    /// Wraps `p`. The caller guarantees that `p` is an odd prime with `2 < p < 2^62`
    /// (checked by [`Modulus::is_probable_prime`] in the tests of every constant modulus).
    pub const fn new(p: u64) -> Self {
        Self { p }
    }

    /// The modulus itself.
    #[inline(always)]
    pub const fn value(self) -> u64 {
        self.p
    }

    /// `a + b mod P`.
    #[inline(always)]
    pub fn add(self, a: u64, b: u64) -> u64 {
        let s = a + b;
        if s >= self.p { s - self.p } else { s }
    }

    /// `a - b mod P`.
    #[inline(always)]
    pub fn sub(self, a: u64, b: u64) -> u64 {
        if a >= b { a - b } else { a + self.p - b }
    }

    /// `-a mod P`.
    #[inline(always)]
    pub fn neg(self, a: u64) -> u64 {
        if a == 0 { 0 } else { self.p - a }
    }

    /// `a * b mod P` through a 128-bit product.
    #[inline(always)]
    pub fn mul(self, a: u64, b: u64) -> u64 {
        ((a as u128 * b as u128) % self.p as u128) as u64
    }

    /// Precomputation for [`Modulus::mul_shoup`]: `floor(w * 2^64 / P)`.
    #[inline(always)]
    pub fn shoup(self, w: u64) -> u64 {
        (((w as u128) << 64) / self.p as u128) as u64
    }

    /// `a * w mod P` with `w_shoup = self.shoup(w)`; `a < 2^64`, result fully reduced.
    #[inline(always)]
    pub fn mul_shoup(self, a: u64, w: u64, w_shoup: u64) -> u64 {
        let q = ((a as u128 * w_shoup as u128) >> 64) as u64;
        let r = a.wrapping_mul(w).wrapping_sub(q.wrapping_mul(self.p));
        if r >= self.p { r - self.p } else { r }
    }

    /// `a * w mod P` in `[0, 2P)` (Harvey's lazy form), any `a < 2^64`.
    #[inline(always)]
    pub fn mul_shoup_lazy(self, a: u64, w: u64, w_shoup: u64) -> u64 {
        let q = ((a as u128 * w_shoup as u128) >> 64) as u64;
        a.wrapping_mul(w).wrapping_sub(q.wrapping_mul(self.p))
    }

    /// `a^e mod P`.
    pub fn pow(self, mut a: u64, mut e: u64) -> u64 {
        let mut r = 1u64;
        a %= self.p;
        while e > 0 {
            if e & 1 == 1 {
                r = self.mul(r, a);
            }
            a = self.mul(a, a);
            e >>= 1;
        }
        r
    }

    /// `a^-1 mod P` (Fermat); `inv(0) = 0`.
    pub fn inv(self, a: u64) -> u64 {
        self.pow(a, self.p - 2)
    }

    /// Reduces any `u64`.
    #[inline(always)]
    pub fn reduce(self, a: u64) -> u64 {
        a % self.p
    }

    /// Reduces a signed integer.
    pub fn from_i64(self, a: i64) -> u64 {
        let r = a.rem_euclid(self.p as i64);
        r as u64
    }

    /// Miller–Rabin with the first twelve primes as bases: deterministic for all `u64`.
    pub fn is_probable_prime(n: u64) -> bool {
        if n < 2 {
            return false;
        }
        const BASES: [u64; 12] = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37];
        for &b in &BASES {
            if n.is_multiple_of(b) {
                return n == b;
            }
        }
        let m = Modulus::new(n);
        let mut d = n - 1;
        let mut s = 0;
        while d.is_multiple_of(2) {
            d /= 2;
            s += 1;
        }
        'outer: for &a in &BASES {
            let mut x = m.pow(a, d);
            if x == 1 || x == n - 1 {
                continue;
            }
            for _ in 0..s - 1 {
                x = m.mul(x, x);
                if x == n - 1 {
                    continue 'outer;
                }
            }
            return false;
        }
        true
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn shoup_matches_plain_multiplication() {
        let m = Modulus::new(1_125_899_906_826_241);
        let mut x = 0x1234_5678_9abc_def1u64;
        for _ in 0..1000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let a = x % m.value();
            let w = (x >> 7) % m.value();
            assert_eq!(m.mul_shoup(a, w, m.shoup(w)), m.mul(a, w));
        }
    }

    #[test]
    fn inverse_and_primality() {
        assert!(Modulus::is_probable_prime(65537));
        assert!(!Modulus::is_probable_prime(65537 * 3));
        let m = Modulus::new(65537);
        for a in [1u64, 2, 3, 1000, 65536] {
            assert_eq!(m.mul(a, m.inv(a)), 1);
        }
        assert_eq!(m.from_i64(-1), 65536);
    }
}
