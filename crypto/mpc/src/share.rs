//! A party's view of replicated sharings: for each shared value `x = x_0 + x_1 + x_2`
//! (or `x_0 ⊕ x_1 ⊕ x_2`), party `i` keeps the pair `(x_i, x_{i+1})`.
//!
//! Vectors are stored as two word vectors (structure of arrays). Everything here is
//! local: no communication. See `docs/sharing.md`.

use crate::party::PartyId;
use zeroize::Zeroize;

/// This party's components of a vector of arithmetic sharings over `Z_2^64`.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct AVec {
    /// Component `i` of each value.
    pub(crate) a: Vec<u64>,
    /// Component `i+1` of each value.
    pub(crate) b: Vec<u64>,
}

/// This party's components of a vector of binary (XOR) sharings of 64-bit words.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct BVec {
    /// Component `i` of each word.
    pub(crate) a: Vec<u64>,
    /// Component `i+1` of each word.
    pub(crate) b: Vec<u64>,
}

impl Drop for AVec {
    fn drop(&mut self) {
        self.a.zeroize();
        self.b.zeroize();
    }
}

impl Drop for BVec {
    fn drop(&mut self) {
        self.a.zeroize();
        self.b.zeroize();
    }
}

impl std::fmt::Debug for AVec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AVec(<{} secret shares>)", self.a.len())
    }
}

impl std::fmt::Debug for BVec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BVec(<{} secret shares>)", self.a.len())
    }
}

impl AVec {
    /// `n` sharings of zero.
    pub(crate) fn zeros(n: usize) -> Self {
        AVec {
            a: vec![0; n],
            b: vec![0; n],
        }
    }

    /// Number of shared values.
    pub(crate) fn len(&self) -> usize {
        self.a.len()
    }

    /// The sharing of a public vector: component 0 carries the value.
    pub(crate) fn public(me: PartyId, values: &[u64]) -> Self {
        let n = values.len();
        let mut v = AVec::zeros(n);
        match me.index() {
            0 => v.a.copy_from_slice(values),
            2 => v.b.copy_from_slice(values),
            _ => {}
        }
        v
    }

    /// The sharing whose component `j` is `x_j` and whose other components are zero,
    /// built from this party's pair `(own_i, own_{i+1})` of the values `x_j`.
    /// (Component `j` is known to parties `j` and `j-1`; they hold it, the third holds 0.)
    pub(crate) fn component(me: PartyId, j: usize, own_a: &[u64], own_b: &[u64]) -> Self {
        let n = own_a.len();
        let mut v = AVec::zeros(n);
        if me.index() == j {
            v.a.copy_from_slice(own_a);
        }
        if me.next().index() == j {
            v.b.copy_from_slice(own_b);
        }
        v
    }

    /// Element `k` as a one-element vector.
    pub(crate) fn get(&self, k: usize) -> AVec {
        AVec {
            a: vec![self.a[k]],
            b: vec![self.b[k]],
        }
    }

    /// Elements `range`.
    pub(crate) fn slice(&self, range: std::ops::Range<usize>) -> AVec {
        AVec {
            a: self.a[range.clone()].to_vec(),
            b: self.b[range].to_vec(),
        }
    }

    /// Append all elements of `other`.
    pub(crate) fn extend(&mut self, other: &AVec) {
        self.a.extend_from_slice(&other.a);
        self.b.extend_from_slice(&other.b);
    }

    /// `self + other`, elementwise.
    pub(crate) fn add(&self, other: &AVec) -> AVec {
        AVec {
            a: self
                .a
                .iter()
                .zip(&other.a)
                .map(|(x, y)| x.wrapping_add(*y))
                .collect(),
            b: self
                .b
                .iter()
                .zip(&other.b)
                .map(|(x, y)| x.wrapping_add(*y))
                .collect(),
        }
    }

    /// `self − other`, elementwise.
    pub(crate) fn sub(&self, other: &AVec) -> AVec {
        AVec {
            a: self
                .a
                .iter()
                .zip(&other.a)
                .map(|(x, y)| x.wrapping_sub(*y))
                .collect(),
            b: self
                .b
                .iter()
                .zip(&other.b)
                .map(|(x, y)| x.wrapping_sub(*y))
                .collect(),
        }
    }

    /// `c · self` for a public constant `c`.
    pub(crate) fn scale(&self, c: u64) -> AVec {
        AVec {
            a: self.a.iter().map(|x| x.wrapping_mul(c)).collect(),
            b: self.b.iter().map(|x| x.wrapping_mul(c)).collect(),
        }
    }

    /// `self + c` for a public constant `c` added to every element.
    pub(crate) fn add_const(&self, me: PartyId, c: u64) -> AVec {
        let mut v = self.clone();
        match me.index() {
            0 => v.a.iter_mut().for_each(|x| *x = x.wrapping_add(c)),
            2 => v.b.iter_mut().for_each(|x| *x = x.wrapping_add(c)),
            _ => {}
        }
        v
    }

    /// `c − self` for a public constant `c`.
    pub(crate) fn rsub_const(&self, me: PartyId, c: u64) -> AVec {
        AVec::zeros(self.len()).sub(self).add_const(me, c)
    }

    /// The sum of all elements, as a one-element vector.
    pub(crate) fn sum(&self) -> AVec {
        AVec {
            a: vec![self.a.iter().fold(0u64, |s, x| s.wrapping_add(*x))],
            b: vec![self.b.iter().fold(0u64, |s, x| s.wrapping_add(*x))],
        }
    }

    /// `Σ_k w_k · self_k` for public weights.
    pub(crate) fn weighted_sum(&self, w: &[u64]) -> AVec {
        let mut a = 0u64;
        let mut b = 0u64;
        for ((x, y), c) in self.a.iter().zip(&self.b).zip(w) {
            a = a.wrapping_add(x.wrapping_mul(*c));
            b = b.wrapping_add(y.wrapping_mul(*c));
        }
        AVec {
            a: vec![a],
            b: vec![b],
        }
    }
}

impl BVec {
    /// `n` sharings of zero words.
    pub(crate) fn zeros(n: usize) -> Self {
        BVec {
            a: vec![0; n],
            b: vec![0; n],
        }
    }

    /// Number of shared words.
    pub(crate) fn len(&self) -> usize {
        self.a.len()
    }

    /// Words `range`.
    pub(crate) fn slice(&self, range: std::ops::Range<usize>) -> BVec {
        BVec {
            a: self.a[range.clone()].to_vec(),
            b: self.b[range].to_vec(),
        }
    }

    /// Append all words of `other`.
    pub(crate) fn extend(&mut self, other: &BVec) {
        self.a.extend_from_slice(&other.a);
        self.b.extend_from_slice(&other.b);
    }

    /// `self ⊕ other`, wordwise.
    pub(crate) fn xor(&self, other: &BVec) -> BVec {
        BVec {
            a: self.a.iter().zip(&other.a).map(|(x, y)| x ^ y).collect(),
            b: self.b.iter().zip(&other.b).map(|(x, y)| x ^ y).collect(),
        }
    }

    /// `¬self` (XOR with all ones, carried by component 0).
    pub(crate) fn not(&self, me: PartyId) -> BVec {
        let mut v = self.clone();
        match me.index() {
            0 => v.a.iter_mut().for_each(|x| *x = !*x),
            2 => v.b.iter_mut().for_each(|x| *x = !*x),
            _ => {}
        }
        v
    }
}

/// Reconstruct from all three parties' pairs (tests and clients): checks that the two
/// copies of every component agree and returns `x_0 + x_1 + x_2`.
#[cfg(test)]
pub(crate) fn open_arith(views: [&AVec; 3]) -> Vec<u64> {
    let n = views[0].len();
    (0..n)
        .map(|k| {
            for i in 0..3 {
                // party i's b is component i+1 = party (i+1)'s a
                assert_eq!(
                    views[i].b[k],
                    views[(i + 1) % 3].a[k],
                    "inconsistent replicated share"
                );
            }
            views[0].a[k]
                .wrapping_add(views[1].a[k])
                .wrapping_add(views[2].a[k])
        })
        .collect()
}

/// Binary counterpart of [`open_arith`].
#[cfg(test)]
pub(crate) fn open_xor(views: [&BVec; 3]) -> Vec<u64> {
    let n = views[0].len();
    (0..n)
        .map(|k| {
            for i in 0..3 {
                assert_eq!(
                    views[i].b[k],
                    views[(i + 1) % 3].a[k],
                    "inconsistent replicated share"
                );
            }
            views[0].a[k] ^ views[1].a[k] ^ views[2].a[k]
        })
        .collect()
}
