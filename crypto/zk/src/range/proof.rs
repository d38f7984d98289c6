//! Bulletproofs range proofs (single and aggregated) over Pedersen commitments.

use std::sync::OnceLock;

use bulletproofs::BulletproofGens;
use curve25519_dalek::ristretto::CompressedRistretto;
use curve25519_dalek::scalar::Scalar;
use merlin::Transcript;
use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroize;

use super::bits::BitSize;
use super::context::{RangeContext, StatementKind};
use super::pedersen::{Blinding, Commitment, pedersen_gens};
use crate::Error;
use crate::error::check_len;

/// Most values one aggregated proof covers (the generator tables are sized for it).
pub const MAX_AGGREGATED: usize = 64;
/// Encoding version byte of [`RangeProof::to_bytes`].
const ENCODING_VERSION: u8 = 1;
/// Header of the encoding: version, bit size, value count.
const HEADER_LEN: usize = 3;
/// Largest encoded proof: header + (2·lg(64·64) + 9) 32-byte elements.
pub const MAX_RANGE_PROOF_BYTES: usize = HEADER_LEN + (2 * 12 + 9) * 32;

/// Bulletproofs generators for up to 64 bits × [`MAX_AGGREGATED`] parties (computed once).
pub(crate) fn bp_gens() -> &'static BulletproofGens {
    static GENS: OnceLock<BulletproofGens> = OnceLock::new();
    GENS.get_or_init(|| BulletproofGens::new(64, MAX_AGGREGATED))
}

/// `m` rounded up to a power of two (bulletproofs aggregates `2^k` values).
pub(crate) fn padded_len(m: usize) -> usize {
    m.next_power_of_two()
}

/// Serialized size of a bulletproofs proof of `m` (padded) values of `n` bits.
pub(crate) fn inner_proof_len(n: usize, m_padded: usize) -> usize {
    let lg = (n * m_padded).trailing_zeros() as usize;
    (2 * lg + 9) * 32
}

/// The commitments the proof actually covers: the caller's, then identity points
/// (commitments to 0 with blinding 0) up to a power of two. Padding values are public zeros.
pub(crate) fn padded_commitments(commitments: &[Commitment]) -> Vec<CompressedRistretto> {
    let mut v: Vec<CompressedRistretto> = commitments.iter().map(|c| c.0).collect();
    v.resize(
        padded_len(commitments.len()),
        CompressedRistretto::default(),
    );
    v
}

/// Prove `values[i] ∈ [0, 2^n)` for `V_i = values[i]·B + blindings[i]·B̃`, padded.
pub(crate) fn prove_padded<R: RngCore + CryptoRng>(
    transcript: &mut Transcript,
    bits: BitSize,
    values: &[u64],
    blindings: &[Scalar],
    rng: &mut R,
) -> Result<(bulletproofs::RangeProof, Vec<CompressedRistretto>), Error> {
    let m = padded_len(values.len());
    let mut vals = values.to_vec();
    vals.resize(m, 0);
    let mut blinds = blindings.to_vec();
    blinds.resize(m, Scalar::ZERO);
    let result = bulletproofs::RangeProof::prove_multiple_with_rng(
        bp_gens(),
        pedersen_gens(),
        transcript,
        &vals,
        &blinds,
        bits.bits(),
        rng,
    );
    vals.zeroize();
    blinds.zeroize();
    result.map_err(|_| Error::RangeProofFailed {
        what: "the prover could not build the proof",
    })
}

/// A Bulletproofs range proof that one or more committed values lie in `[0, 2^n)`.
#[derive(Clone)]
pub struct RangeProof {
    bits: BitSize,
    count: usize,
    pub(crate) inner: bulletproofs::RangeProof,
}

impl core::fmt::Debug for RangeProof {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RangeProof")
            .field("bits", &self.bits)
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

pub(crate) fn check_count(count: usize) -> Result<(), Error> {
    if count == 0 {
        return Err(Error::CountMismatch {
            what: "values in a range proof",
            expected: 1,
            actual: 0,
        });
    }
    check_len("values in one range proof", count, MAX_AGGREGATED)
}

impl RangeProof {
    /// Commit to `values` with `blindings` and prove every value is in `[0, 2^bits)`,
    /// bound to `ctx`. Returns the proof and the commitments (one per value, in order).
    pub fn prove(
        ctx: &RangeContext,
        bits: BitSize,
        values: &[u64],
        blindings: &[Blinding],
    ) -> Result<(Self, Vec<Commitment>), Error> {
        Self::prove_with_rng(ctx, bits, values, blindings, &mut rand::thread_rng())
    }

    /// [`prove`](Self::prove) with a caller-supplied CSPRNG.
    pub fn prove_with_rng<R: RngCore + CryptoRng>(
        ctx: &RangeContext,
        bits: BitSize,
        values: &[u64],
        blindings: &[Blinding],
        rng: &mut R,
    ) -> Result<(Self, Vec<Commitment>), Error> {
        check_count(values.len())?;
        if blindings.len() != values.len() {
            return Err(Error::CountMismatch {
                what: "blindings",
                expected: values.len(),
                actual: blindings.len(),
            });
        }
        if !values.iter().all(|&v| bits.fits(v)) {
            return Err(Error::ValueOutOfRange);
        }
        let commitments: Vec<Commitment> = values
            .iter()
            .zip(blindings)
            .map(|(&v, r)| Commitment::commit(v, r))
            .collect();
        let mut transcript = ctx.transcript(StatementKind::Range, bits.bits(), &commitments);
        let scalars: Vec<Scalar> = blindings.iter().map(|b| b.0).collect();
        let (inner, covered) = prove_padded(&mut transcript, bits, values, &scalars, rng)?;
        debug_assert_eq!(covered, padded_commitments(&commitments));
        Ok((
            Self {
                bits,
                count: values.len(),
                inner,
            },
            commitments,
        ))
    }

    /// Verify that every commitment opens to a value in `[0, 2^bits)`, for this `ctx`.
    /// `bits` is the verifier's policy: a proof for another width is refused.
    pub fn verify(
        &self,
        ctx: &RangeContext,
        bits: BitSize,
        commitments: &[Commitment],
    ) -> Result<(), Error> {
        self.check_shape(bits, commitments.len())?;
        let mut transcript = ctx.transcript(StatementKind::Range, bits.bits(), commitments);
        verify_padded(
            &self.inner,
            &mut transcript,
            bits,
            &padded_commitments(commitments),
        )
    }

    pub(crate) fn check_shape(&self, bits: BitSize, count: usize) -> Result<(), Error> {
        if self.bits != bits {
            return Err(Error::RangeProofFailed {
                what: "proof is for another bit size",
            });
        }
        if self.count != count {
            return Err(Error::CountMismatch {
                what: "commitments for this range proof",
                expected: self.count,
                actual: count,
            });
        }
        Ok(())
    }

    pub(crate) fn from_parts(bits: BitSize, count: usize, inner: bulletproofs::RangeProof) -> Self {
        Self { bits, count, inner }
    }

    /// The bit size.
    pub fn bits(&self) -> BitSize {
        self.bits
    }

    /// How many values it covers.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Encoding: `version (1) ‖ bits (1) ‖ count (1) ‖ bulletproofs proof bytes`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let inner = self.inner.to_bytes();
        let mut out = Vec::with_capacity(HEADER_LEN + inner.len());
        out.push(ENCODING_VERSION);
        out.push(self.bits.bits() as u8);
        out.push(self.count as u8);
        out.extend_from_slice(&inner);
        out
    }

    /// Decode (size-limited; the length must be exactly the one the header implies).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        check_len("range proof", bytes.len(), MAX_RANGE_PROOF_BYTES)?;
        let [version, bits, count, rest @ ..] = bytes else {
            return Err(Error::malformed("range proof", "shorter than its header"));
        };
        if *version != ENCODING_VERSION {
            return Err(Error::malformed("range proof", "unknown encoding version"));
        }
        let bits = BitSize::from_bits(u64::from(*bits))?;
        let count = usize::from(*count);
        check_count(count)?;
        let expected = inner_proof_len(bits.bits(), padded_len(count));
        if rest.len() != expected {
            return Err(Error::malformed(
                "range proof",
                format!("{} proof bytes, expected {expected}", rest.len()),
            ));
        }
        let inner = bulletproofs::RangeProof::from_bytes(rest)
            .map_err(|_| Error::malformed("range proof", "invalid point or scalar encoding"))?;
        Ok(Self { bits, count, inner })
    }
}

/// Verify a bulletproofs proof of the padded commitments.
pub(crate) fn verify_padded(
    proof: &bulletproofs::RangeProof,
    transcript: &mut Transcript,
    bits: BitSize,
    padded: &[CompressedRistretto],
) -> Result<(), Error> {
    proof
        .verify_multiple_with_rng(
            bp_gens(),
            pedersen_gens(),
            transcript,
            padded,
            bits.bits(),
            &mut rand::thread_rng(),
        )
        .map_err(|_| Error::RangeProofFailed {
            what: "wrong values, commitments, context or proof bytes",
        })
}
