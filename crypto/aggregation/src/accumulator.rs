//! The server's running sum of masked vectors, with lazy modular reduction: sums stay unreduced
//! in `u64` until `⌊(2^64−1)/p⌋ − 1` vectors have been added, then are reduced in one pass.

use crate::modarith::Modulus;
use crate::wire::for_each_packed;

/// A vector sum modulo `p`, reduced lazily.
#[derive(Clone, Debug)]
pub(crate) struct Accumulator {
    m: Modulus,
    vals: Vec<u64>,
    pending: u64,
    max_pending: u64,
}

impl Accumulator {
    /// The zero vector of `len` entries.
    pub(crate) fn new(m: Modulus, len: usize) -> Self {
        Self::from_reduced(m, vec![0; len])
    }

    /// From reduced values.
    pub(crate) fn from_reduced(m: Modulus, vals: Vec<u64>) -> Self {
        Self {
            m,
            vals,
            pending: 0,
            max_pending: u64::MAX / m.value() - 1,
        }
    }

    fn make_room(&mut self) {
        if self.pending >= self.max_pending {
            let m = self.m;
            for v in &mut self.vals {
                *v = m.reduce(*v);
            }
            self.pending = 0;
        }
    }

    /// Adds `values` (each `< p`).
    pub(crate) fn add(&mut self, values: &[u64]) {
        self.make_room();
        for (a, &v) in self.vals.iter_mut().zip(values) {
            *a += v;
        }
        self.pending += 1;
    }

    /// Subtracts `values` (each `< p`).
    pub(crate) fn sub(&mut self, values: &[u64]) {
        self.make_room();
        let p = self.m.value();
        for (a, &v) in self.vals.iter_mut().zip(values) {
            *a += p - v;
        }
        self.pending += 1;
    }

    /// Adds the packed values of `buf` in one pass. If the buffer is malformed or a value is not
    /// below `p`, nothing is added and `false` is returned.
    pub(crate) fn add_packed(&mut self, buf: &[u8], bits: u32) -> bool {
        self.make_room();
        let p = self.m.value();
        let mut bad = false;
        let vals = &mut self.vals;
        let ok = for_each_packed(buf, vals.len(), bits, |i, v| {
            bad |= v >= p;
            vals[i] = vals[i].wrapping_add(v);
        });
        if !ok || bad {
            // Roll back: subtract exactly what was added (wrapping arithmetic undoes it).
            let vals = &mut self.vals;
            for_each_packed(buf, vals.len(), bits, |i, v| {
                vals[i] = vals[i].wrapping_sub(v);
            });
            return false;
        }
        self.pending += 1;
        true
    }

    /// The reduced sum.
    pub(crate) fn reduced(&self) -> Vec<u64> {
        self.vals.iter().map(|&v| self.m.reduce(v)).collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::wire::pack_into;

    #[test]
    fn lazy_sums_match_eager_sums_past_the_reduction_point() {
        let m = Modulus::new(crate::params::P61);
        let mut acc = Accumulator::new(m, 3);
        let mut eager = [0u64; 3];
        let v = [m.value() - 1, 1, m.value() / 2];
        for round in 0..40 {
            if round % 7 == 3 {
                acc.sub(&v);
                for (e, &x) in eager.iter_mut().zip(&v) {
                    *e = m.sub(*e, x);
                }
            } else {
                let mut buf = Vec::new();
                pack_into(&mut buf, &v, 61);
                assert!(acc.add_packed(&buf, 61));
                for (e, &x) in eager.iter_mut().zip(&v) {
                    *e = m.add(*e, x);
                }
            }
            assert_eq!(acc.reduced(), eager.to_vec());
        }
        // A non-canonical value leaves the sum untouched.
        let mut buf = Vec::new();
        pack_into(&mut buf, &[5, m.value(), 7], 61);
        assert!(!acc.add_packed(&buf, 61));
        assert_eq!(acc.reduced(), eager.to_vec());
        acc.add(&[1, 2, 3]);
        assert_eq!(acc.reduced()[2], m.add(eager[2], 3));
    }
}
