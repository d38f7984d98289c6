//! Public randomness: ChaCha20 keyed by SHA-256 of a domain label, the round digest and a label.
//!
//! `rand_chacha::ChaCha20Rng` has a documented, stable output stream, so every party of the round
//! expands the same public ring elements from the same round.

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};

use crate::modarith::Modulus;

/// A deterministic stream for `(round digest, label, stream)`.
pub fn public_stream(round_digest: &[u8; 32], label: &[u8], stream: u64) -> ChaCha20Rng {
    let mut h = Sha256::new();
    h.update(b"veilgrid/agg/public-randomness/v1");
    h.update(round_digest);
    h.update((label.len() as u64).to_le_bytes());
    h.update(label);
    let key: [u8; 32] = h.finalize().into();
    let mut rng = ChaCha20Rng::from_seed(key);
    rng.set_stream(stream);
    rng
}

/// Fills `out` with values uniform in `[0, P)` by rejection sampling on `ceil(log2 P)` bits.
pub fn fill_uniform<R: RngCore>(rng: &mut R, m: Modulus, out: &mut [u64]) {
    let p = m.value();
    let mask = u64::MAX >> (p - 1).leading_zeros();
    for o in out.iter_mut() {
        loop {
            let v = rng.next_u64() & mask;
            if v < p {
                *o = v;
                break;
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_deterministic_and_separated() {
        let d = [7u8; 32];
        let m = Modulus::new(65537);
        let mut a = vec![0u64; 64];
        let mut b = vec![0u64; 64];
        fill_uniform(&mut public_stream(&d, b"x", 0), m, &mut a);
        fill_uniform(&mut public_stream(&d, b"x", 0), m, &mut b);
        assert_eq!(a, b);
        fill_uniform(&mut public_stream(&d, b"x", 1), m, &mut b);
        assert_ne!(a, b);
        fill_uniform(&mut public_stream(&d, b"y", 0), m, &mut b);
        assert_ne!(a, b);
        assert!(a.iter().all(|&v| v < 65537));
    }
}
