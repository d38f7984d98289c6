//! The Bulletproofs vector generators `G_{j,i}`, `H_{j,i}` for the batch verifier.
//!
//! bulletproofs 5.0 derives party `j`'s generators from a SHAKE256 stream:
//! `SHAKE256("GeneratorsChain" ‖ label)` with `label = 'G' ‖ LE32(j)` (or `'H'`),
//! each point = `RistrettoPoint::from_uniform_bytes(next 64 bytes)`. The crate
//! exposes `G` but not `H` to other crates, so the batch verifier rederives both
//! here the same way; a test checks the `G` table against the crate's, and every
//! batch-verification test checks `H` (a wrong `H` rejects every valid proof).

use std::sync::OnceLock;

use curve25519_dalek::ristretto::RistrettoPoint;
use sha3::Shake256;
use sha3::digest::{ExtendableOutput, Update, XofReader};

use super::proof::MAX_AGGREGATED;

/// Generators per party (the largest bit size).
pub(crate) const GENS_PER_PARTY: usize = 64;

/// Generator tables: `g[j][i]`, `h[j][i]` for party `j < 64` and bit `i < 64`.
pub(crate) struct VectorGens {
    pub(crate) g: Vec<Vec<RistrettoPoint>>,
    pub(crate) h: Vec<Vec<RistrettoPoint>>,
}

/// The first `count` points of the chain labelled `label`.
pub(crate) fn chain(label: &[u8], count: usize) -> Vec<RistrettoPoint> {
    let mut shake = Shake256::default();
    shake.update(b"GeneratorsChain");
    shake.update(label);
    let mut reader = shake.finalize_xof();
    (0..count)
        .map(|_| {
            let mut uniform = [0u8; 64];
            reader.read(&mut uniform);
            RistrettoPoint::from_uniform_bytes(&uniform)
        })
        .collect()
}

fn party_label(kind: u8, party: usize) -> [u8; 5] {
    let mut label = [kind, 0, 0, 0, 0];
    label[1..].copy_from_slice(&(party as u32).to_le_bytes());
    label
}

/// The tables, computed once.
pub(crate) fn vector_gens() -> &'static VectorGens {
    static GENS: OnceLock<VectorGens> = OnceLock::new();
    GENS.get_or_init(|| {
        // G is public in bulletproofs: reuse its table rather than recomputing it.
        let bp = super::proof::bp_gens();
        VectorGens {
            g: (0..MAX_AGGREGATED)
                .map(|j| bp.share(j).G(GENS_PER_PARTY).copied().collect())
                .collect(),
            h: (0..MAX_AGGREGATED)
                .map(|j| chain(&party_label(b'H', j), GENS_PER_PARTY))
                .collect(),
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn derivation_matches_the_crates_public_g_generators() {
        let bp = super::super::proof::bp_gens();
        for j in [0usize, 1, 7, 63] {
            let ours = chain(&party_label(b'G', j), GENS_PER_PARTY);
            let theirs: Vec<RistrettoPoint> = bp.share(j).G(GENS_PER_PARTY).copied().collect();
            assert_eq!(ours, theirs, "party {j}");
        }
        // H differs from G (different label), as it must.
        assert_ne!(
            chain(&party_label(b'H', 0), 1),
            chain(&party_label(b'G', 0), 1)
        );
    }
}
