//! Native (out-of-circuit) Poseidon permutation and the fixed-length sponge hash
//! that every commitment in this crate uses.

use super::{FULL_ROUNDS, PARTIAL_ROUNDS, WIDTH, mds, round_constants};
use crate::field::Fr;
use ark_ff::Field;

/// Domain separation: the first word of every sponge is
/// `domain * 2^64 + input_length` (the Poseidon paper's capacity-IV convention
/// for fixed-length hashing), so two hashes with different purposes or lengths
/// never share a state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Domain {
    /// `commit(x_1..x_n, blinding)` of an inference input.
    InputCommitment = 1,
    /// The hash of a quantized model's parameters.
    ModelHash = 2,
    /// `commit(orders, blinding)` of an order book.
    BookCommitment = 3,
    /// `commit(fills, blinding)` of a clearing's fills.
    FillsCommitment = 4,
}

impl Domain {
    /// The capacity IV for `len` absorbed elements.
    pub fn iv(self, len: usize) -> Fr {
        Fr::from(self as u64) * Fr::from(1u128 << 64) + Fr::from(len as u64)
    }
}

fn sbox(x: Fr) -> Fr {
    let x2 = x.square();
    x2.square() * x
}

/// The Poseidon permutation (ARK, S-box, MDS per round; the first and last
/// `R_F / 2` rounds are full, the middle `R_P` rounds apply the S-box to lane 0).
pub fn permute(state: &mut [Fr; WIDTH]) {
    let ark = round_constants();
    let m = mds();
    let half = FULL_ROUNDS / 2;
    for (r, rc) in ark.iter().enumerate() {
        for (s, c) in state.iter_mut().zip(rc) {
            *s += c;
        }
        let full = r < half || r >= half + PARTIAL_ROUNDS;
        if full {
            for s in state.iter_mut() {
                *s = sbox(*s);
            }
        } else {
            state[0] = sbox(state[0]);
        }
        let old = *state;
        for (i, out) in state.iter_mut().enumerate() {
            *out = m[i]
                .iter()
                .zip(old.iter())
                .fold(Fr::from(0u64), |acc, (a, b)| acc + *a * b);
        }
    }
}

/// Fixed-length sponge hash: state `[iv, 0, 0]`, absorb two elements at a time
/// by addition into lanes 1 and 2 (the last block zero-padded; the length is in
/// the IV), permute after each block, output lane 1.
pub fn hash(domain: Domain, inputs: &[Fr]) -> Fr {
    let mut state = [domain.iv(inputs.len()), Fr::from(0u64), Fr::from(0u64)];
    if inputs.is_empty() {
        permute(&mut state);
    }
    for block in inputs.chunks(2) {
        for (lane, x) in block.iter().enumerate() {
            state[1 + lane] += x;
        }
        permute(&mut state);
    }
    state[1]
}
