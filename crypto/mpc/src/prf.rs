//! The pairwise PRF: AES-128 in counter mode, keyed per pair of parties and per round.
//!
//! Party `i` shares seed `κ_i` with its predecessor and `κ_{i+1}` with its successor.
//! For each auction round both holders of a seed derive the same AES key
//! `SHA-256("veilgrid/mpc/prf/v1" ‖ seed ‖ round id ‖ label)[..16]` and read the same
//! key stream; all three parties run the same program on the same public sizes, so the
//! two copies of every stream stay in step. See `docs/sharing.md`.

use aes::Aes128;
use aes::cipher::{BlockEncrypt, KeyInit, generic_array::GenericArray};
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use std::fmt;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A 32-byte seed shared by two parties (secret; zeroized on drop, hidden in `Debug`).
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct PairSeed([u8; 32]);

impl PairSeed {
    /// A fresh random seed from the operating system.
    pub fn random() -> Self {
        let mut s = [0u8; 32];
        OsRng.fill_bytes(&mut s);
        PairSeed(s)
    }

    /// A seed from bytes (e.g. agreed over the authenticated node-to-node channel).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        PairSeed(bytes)
    }

    /// The seed bytes (to send to the other holder over a private channel).
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }
}

impl fmt::Debug for PairSeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PairSeed(<secret>)")
    }
}

/// One key stream of the PRF: AES-128(key, counter) for counter = 0, 1, 2, ...
pub(crate) struct PrfStream {
    cipher: Aes128,
    counter: u128,
    /// The second half of the last block, when only its first half was used.
    spare: Option<u64>,
}

/// How many AES blocks are encrypted per call to the cipher (lets AES-NI pipeline).
const BATCH_BLOCKS: usize = 64;

impl PrfStream {
    /// The stream for `seed` in round `round` with a domain `label`.
    pub(crate) fn new(seed: &PairSeed, round: &[u8; 16], label: &[u8]) -> Self {
        let mut h = Sha256::new();
        h.update(b"veilgrid/mpc/prf/v1");
        h.update(seed.0);
        h.update(round);
        h.update((label.len() as u32).to_le_bytes());
        h.update(label);
        let mut digest: [u8; 32] = h.finalize().into();
        let cipher = Aes128::new(GenericArray::from_slice(&digest[..16]));
        digest.zeroize();
        PrfStream {
            cipher,
            counter: 0,
            spare: None,
        }
    }

    /// Fill `out` with the next words of the stream.
    pub(crate) fn fill(&mut self, mut out: &mut [u64]) {
        if out.is_empty() {
            return;
        }
        if let Some(w) = self.spare.take() {
            out[0] = w;
            out = &mut out[1..];
        }
        let mut blocks = [GenericArray::<u8, aes::cipher::consts::U16>::default(); BATCH_BLOCKS];
        let mut chunks = out.chunks_mut(2 * BATCH_BLOCKS);
        for chunk in &mut chunks {
            let nblocks = chunk.len().div_ceil(2);
            for b in blocks.iter_mut().take(nblocks) {
                b.copy_from_slice(&self.counter.to_le_bytes());
                self.counter = self.counter.wrapping_add(1);
            }
            self.cipher.encrypt_blocks(&mut blocks[..nblocks]);
            for (k, w) in chunk.iter_mut().enumerate() {
                let b = &blocks[k / 2];
                let off = (k % 2) * 8;
                let mut bytes = [0u8; 8];
                bytes.copy_from_slice(&b[off..off + 8]);
                *w = u64::from_le_bytes(bytes);
            }
            if chunk.len() % 2 == 1 {
                let b = &blocks[nblocks - 1];
                let mut bytes = [0u8; 8];
                bytes.copy_from_slice(&b[8..16]);
                self.spare = Some(u64::from_le_bytes(bytes));
            }
        }
        for b in blocks.iter_mut() {
            b.zeroize();
        }
    }

    /// `n` fresh words.
    pub(crate) fn words(&mut self, n: usize) -> Vec<u64> {
        let mut v = vec![0u64; n];
        self.fill(&mut v);
        v
    }
}

/// The two streams a party holds: `with_prev` (seed `κ_i`, shared with party `i-1`)
/// and `with_next` (seed `κ_{i+1}`, shared with party `i+1`).
pub(crate) struct PrfPair {
    pub(crate) with_prev: PrfStream,
    pub(crate) with_next: PrfStream,
}

impl PrfPair {
    /// Arithmetic zero sharing: `α_i = F(κ_i) − F(κ_{i+1})`, so `Σ α_i = 0`.
    #[cfg(test)]
    pub(crate) fn zero_arith(&mut self, n: usize) -> Vec<u64> {
        let mut a = self.with_prev.words(n);
        let b = self.with_next.words(n);
        for (x, y) in a.iter_mut().zip(&b) {
            *x = x.wrapping_sub(*y);
        }
        a
    }

    /// `t += α` elementwise for a fresh arithmetic zero sharing `α` (no allocation).
    pub(crate) fn mask_arith(&mut self, t: &mut [u64]) {
        let mut p = [0u64; 256];
        let mut q = [0u64; 256];
        for chunk in t.chunks_mut(256) {
            let k = chunk.len();
            self.with_prev.fill(&mut p[..k]);
            self.with_next.fill(&mut q[..k]);
            for ((x, a), b) in chunk.iter_mut().zip(&p).zip(&q) {
                *x = x.wrapping_add(a.wrapping_sub(*b));
            }
        }
        p.zeroize();
        q.zeroize();
    }

    /// `t ⊕= α` for a fresh binary zero sharing `α` (no allocation).
    pub(crate) fn mask_xor(&mut self, t: &mut [u64]) {
        let mut p = [0u64; 256];
        let mut q = [0u64; 256];
        for chunk in t.chunks_mut(256) {
            let k = chunk.len();
            self.with_prev.fill(&mut p[..k]);
            self.with_next.fill(&mut q[..k]);
            for ((x, a), b) in chunk.iter_mut().zip(&p).zip(&q) {
                *x ^= a ^ b;
            }
        }
        p.zeroize();
        q.zeroize();
    }

    /// Binary zero sharing: `α_i = F(κ_i) ⊕ F(κ_{i+1})`.
    #[cfg(test)]
    pub(crate) fn zero_xor(&mut self, n: usize) -> Vec<u64> {
        let mut a = self.with_prev.words(n);
        let b = self.with_next.words(n);
        for (x, y) in a.iter_mut().zip(&b) {
            *x ^= *y;
        }
        a
    }

    /// A random replicated sharing without communication: component `j = F(κ_j)`.
    /// Returns this party's pair (component `i`, component `i+1`).
    pub(crate) fn random_pair(&mut self, n: usize) -> (Vec<u64>, Vec<u64>) {
        (self.with_prev.words(n), self.with_next.words(n))
    }
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
    fn same_seed_same_stream_different_round_different_stream() {
        let seed = PairSeed::random();
        let mut a = PrfStream::new(&seed, &[1; 16], b"x");
        let mut b = PrfStream::new(&seed, &[1; 16], b"x");
        let mut c = PrfStream::new(&seed, &[2; 16], b"x");
        let mut d = PrfStream::new(&seed, &[1; 16], b"y");
        let wa = a.words(1000);
        // Reading in odd-sized pieces gives the same stream.
        let mut wb = b.words(3);
        wb.extend(b.words(130));
        wb.extend(b.words(1));
        wb.extend(b.words(0));
        wb.extend(b.words(866));
        assert_eq!(wa, wb);
        assert_ne!(wa, c.words(1000));
        assert_ne!(wa, d.words(1000));
    }

    #[test]
    fn zero_sharings_sum_to_zero() {
        let seeds = [PairSeed::random(), PairSeed::random(), PairSeed::random()];
        let r = [7u8; 16];
        let mut pairs: Vec<PrfPair> = (0..3)
            .map(|i| PrfPair {
                with_prev: PrfStream::new(&seeds[i], &r, b"z"),
                with_next: PrfStream::new(&seeds[(i + 1) % 3], &r, b"z"),
            })
            .collect();
        let z: Vec<Vec<u64>> = pairs.iter_mut().map(|p| p.zero_arith(100)).collect();
        for k in 0..100 {
            assert_eq!(z[0][k].wrapping_add(z[1][k]).wrapping_add(z[2][k]), 0);
            assert_ne!(z[0][k], 0);
        }
        let x: Vec<Vec<u64>> = pairs.iter_mut().map(|p| p.zero_xor(100)).collect();
        for k in 0..100 {
            assert_eq!(x[0][k] ^ x[1][k] ^ x[2][k], 0);
        }
    }

    #[test]
    fn seed_debug_is_hidden() {
        let s = PairSeed::from_bytes([0xAB; 32]);
        assert!(!format!("{s:?}").to_lowercase().contains("ab"));
    }
}
