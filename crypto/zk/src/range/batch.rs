//! Batch verification of many range proofs in one multiscalar multiplication.
//!
//! bulletproofs 5.0 verifies one (aggregated) proof per call: it folds the
//! range-proof and inner-product checks into one equation `Σ s_k·P_k = 0` over
//! `A, S, T₁, T₂, Lᵢ, Rᵢ, B, B̃, G, H, V`. It has no API to batch several
//! proofs, so this module replays each proof's Fiat–Shamir transcript exactly
//! as the crate does (same labels, same order, same point validation),
//! computes the same scalars, multiplies each proof's equation by an
//! independent random weight `ρ` and adds them up. The `G`, `H`, `B`, `B̃`
//! terms of all proofs then share bases, so `k` proofs of `n·m` bits cost
//! one MSM of `2·n·m + k·(2·lg(n·m) + 4 + m)` points instead of `k` MSMs of
//! `2·n·m + 2·lg(n·m) + 6 + m` points.
//!
//! Soundness: if any proof's equation is non-zero, the weighted sum is zero
//! with probability at most `1/ℓ ≈ 2^-252` over the choice of the `ρ`.
//! On failure, each proof is rechecked on its own with the crate's verifier to
//! name the first one that fails; the crate's verifier is the reference.

use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use merlin::Transcript;
use rand_core::{CryptoRng, RngCore};

use super::bits::BitSize;
use super::bounded::{BoundedProof, derived_commitments};
use super::context::{RangeContext, StatementKind};
use super::generators::{GENS_PER_PARTY, vector_gens};
use super::pedersen::{Commitment, pedersen_gens};
use super::proof::{RangeProof, inner_proof_len, padded_commitments, verify_padded};
use crate::Error;

/// The fields of a bulletproofs range proof, read from its byte encoding.
struct ProofFields {
    a_point: CompressedRistretto,
    s_point: CompressedRistretto,
    t1: CompressedRistretto,
    t2: CompressedRistretto,
    t_x: Scalar,
    t_x_blinding: Scalar,
    e_blinding: Scalar,
    l_vec: Vec<CompressedRistretto>,
    r_vec: Vec<CompressedRistretto>,
    a: Scalar,
    b: Scalar,
}

fn read_point(bytes: &[u8], i: usize) -> Result<CompressedRistretto, Error> {
    bytes
        .get(i * 32..(i + 1) * 32)
        .and_then(|s| <[u8; 32]>::try_from(s).ok())
        .map(CompressedRistretto)
        .ok_or_else(|| Error::malformed("range proof", "truncated"))
}

fn read_scalar(bytes: &[u8], i: usize) -> Result<Scalar, Error> {
    let arr = read_point(bytes, i)?.0;
    Option::from(Scalar::from_canonical_bytes(arr))
        .ok_or_else(|| Error::malformed("range proof", "non-canonical scalar"))
}

impl ProofFields {
    /// Layout (bulletproofs `RangeProof::to_bytes`): `A S T₁ T₂ t_x t̃_x ẽ (Lᵢ Rᵢ)* a b`.
    fn parse(bytes: &[u8]) -> Result<Self, Error> {
        if !bytes.len().is_multiple_of(32) || bytes.len() < 9 * 32 {
            return Err(Error::malformed("range proof", "bad length"));
        }
        let elems = bytes.len() / 32;
        let lg = (elems - 9) / 2;
        if elems != 2 * lg + 9 {
            return Err(Error::malformed("range proof", "bad length"));
        }
        let mut l_vec = Vec::with_capacity(lg);
        let mut r_vec = Vec::with_capacity(lg);
        for i in 0..lg {
            l_vec.push(read_point(bytes, 7 + 2 * i)?);
            r_vec.push(read_point(bytes, 8 + 2 * i)?);
        }
        Ok(Self {
            a_point: read_point(bytes, 0)?,
            s_point: read_point(bytes, 1)?,
            t1: read_point(bytes, 2)?,
            t2: read_point(bytes, 3)?,
            t_x: read_scalar(bytes, 4)?,
            t_x_blinding: read_scalar(bytes, 5)?,
            e_blinding: read_scalar(bytes, 6)?,
            l_vec,
            r_vec,
            a: read_scalar(bytes, 7 + 2 * lg)?,
            b: read_scalar(bytes, 8 + 2 * lg)?,
        })
    }
}

/// One statement waiting in the batch.
struct Item {
    transcript: Transcript,
    bits: BitSize,
    padded: Vec<CompressedRistretto>,
    proof: bulletproofs::RangeProof,
    fields: ProofFields,
}

/// Collects range and bounded proofs and verifies them together.
#[derive(Default)]
pub struct BatchVerifier {
    items: Vec<Item>,
}

impl core::fmt::Debug for BatchVerifier {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BatchVerifier")
            .field("items", &self.items.len())
            .finish()
    }
}

fn challenge(t: &mut Transcript, label: &'static [u8]) -> Scalar {
    let mut buf = [0u8; 64];
    t.challenge_bytes(label, &mut buf);
    Scalar::from_bytes_mod_order_wide(&buf)
}

fn validate_and_append(
    t: &mut Transcript,
    label: &'static [u8],
    p: &CompressedRistretto,
) -> Result<(), ()> {
    if p.is_identity() {
        return Err(());
    }
    t.append_message(label, p.as_bytes());
    Ok(())
}

/// `Σ_{i<n} x^i`.
fn sum_of_powers(x: &Scalar, n: usize) -> Scalar {
    let mut acc = Scalar::ZERO;
    let mut p = Scalar::ONE;
    for _ in 0..n {
        acc += p;
        p *= x;
    }
    acc
}

/// Accumulated scalars of the combined equation.
struct Accumulator {
    g: Vec<Scalar>,
    h: Vec<Scalar>,
    b: Scalar,
    b_blinding: Scalar,
    max_n: usize,
    max_m: usize,
    scalars: Vec<Scalar>,
    points: Vec<CompressedRistretto>,
}

impl BatchVerifier {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of proofs queued.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether no proof is queued.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    fn push(
        &mut self,
        transcript: Transcript,
        bits: BitSize,
        padded: Vec<CompressedRistretto>,
        proof: &RangeProof,
    ) -> Result<(), Error> {
        let fields = ProofFields::parse(&proof.inner.to_bytes())?;
        self.items.push(Item {
            transcript,
            bits,
            padded,
            proof: proof.inner.clone(),
            fields,
        });
        Ok(())
    }

    /// Queue the statement "every commitment opens to a value in `[0, 2^bits)`" (see [`RangeProof::verify`]).
    pub fn add_range(
        &mut self,
        ctx: &RangeContext,
        bits: BitSize,
        commitments: &[Commitment],
        proof: &RangeProof,
    ) -> Result<(), Error> {
        proof.check_shape(bits, commitments.len())?;
        let transcript = ctx.transcript(StatementKind::Range, bits.bits(), commitments);
        self.push(transcript, bits, padded_commitments(commitments), proof)
    }

    /// Queue the statement "every commitment opens to a value in `[min, max]`" (see [`BoundedProof::verify`]).
    pub fn add_bounded(
        &mut self,
        ctx: &RangeContext,
        bits: BitSize,
        min: u64,
        max: u64,
        commitments: &[Commitment],
        proof: &BoundedProof,
    ) -> Result<(), Error> {
        if min > max || !bits.fits(max - min) {
            return Err(Error::InvalidRange {
                min,
                max,
                bits: bits.bits() as u64,
            });
        }
        proof.inner().check_shape(bits, commitments.len() * 2)?;
        let derived = derived_commitments(min, max, commitments)?;
        let transcript = ctx.transcript(
            StatementKind::Bounded { min, max },
            bits.bits(),
            commitments,
        );
        self.push(
            transcript,
            bits,
            padded_commitments(&derived),
            proof.inner(),
        )
    }

    /// Queue a bulletproofs range proof made by another protocol with its own
    /// Fiat–Shamir transcript (e.g. the aggregation service's verifiable mode,
    /// `"veilgrid/agg/range/v1"`): `transcript` is the caller's transcript in the
    /// state the prover started from (every public value already bound),
    /// `padded` the commitments exactly as the prover aggregated them (a power of
    /// two, at most [`MAX_AGGREGATED`](super::MAX_AGGREGATED)), `proof` the
    /// crate's `RangeProof::to_bytes`. Statements over more values than that
    /// cannot join a batch: verify them on their own.
    pub fn add_transcript(
        &mut self,
        transcript: Transcript,
        bits: BitSize,
        padded: Vec<CompressedRistretto>,
        proof: &[u8],
    ) -> Result<(), Error> {
        let m = padded.len();
        if m == 0 || !m.is_power_of_two() || m > super::MAX_AGGREGATED {
            return Err(Error::malformed(
                "range statement",
                format!(
                    "{m} commitments: a batch takes a power of two up to {}",
                    super::MAX_AGGREGATED
                ),
            ));
        }
        if proof.len() != inner_proof_len(bits.bits(), m) {
            return Err(Error::malformed(
                "range proof",
                "wrong size for the statement",
            ));
        }
        let inner = bulletproofs::RangeProof::from_bytes(proof)
            .map_err(|_| Error::malformed("range proof", "invalid point or scalar encoding"))?;
        let fields = ProofFields::parse(proof)?;
        self.items.push(Item {
            transcript,
            bits,
            padded,
            proof: inner,
            fields,
        });
        Ok(())
    }

    /// Verify every queued proof. On failure, names the first proof that fails
    /// ([`Error::BatchItemFailed`] with its position in the order of adding).
    pub fn verify(self) -> Result<(), Error> {
        self.verify_with_rng(&mut rand::thread_rng())
    }

    /// [`verify`](Self::verify) with a caller-supplied CSPRNG for the batching weights.
    pub fn verify_with_rng<R: RngCore + CryptoRng>(self, rng: &mut R) -> Result<(), Error> {
        if self.combined_check(rng).is_ok() {
            return Ok(());
        }
        // Find the culprit with the crate's own verifier.
        for (index, item) in self.items.into_iter().enumerate() {
            let mut t = item.transcript;
            if verify_padded(&item.proof, &mut t, item.bits, &item.padded).is_err() {
                return Err(Error::BatchItemFailed { index });
            }
        }
        // Every proof verified on its own: the crate's verifier is the reference.
        Ok(())
    }

    /// The single combined equation over all queued proofs (no fallback).
    pub(crate) fn combined_check<R: RngCore + CryptoRng>(&self, rng: &mut R) -> Result<(), ()> {
        let mut acc = Accumulator {
            g: vec![Scalar::ZERO; GENS_PER_PARTY * GENS_PER_PARTY],
            h: vec![Scalar::ZERO; GENS_PER_PARTY * GENS_PER_PARTY],
            b: Scalar::ZERO,
            b_blinding: Scalar::ZERO,
            max_n: 0,
            max_m: 0,
            scalars: Vec::new(),
            points: Vec::new(),
        };
        for item in &self.items {
            let weight = Scalar::random(rng);
            let c = Scalar::random(rng);
            add_item(&mut acc, item, weight, c)?;
        }
        let gens = vector_gens();
        let pc = pedersen_gens();
        let mut scalars = acc.scalars;
        let mut points: Vec<Option<RistrettoPoint>> = acc
            .points
            .iter()
            .map(CompressedRistretto::decompress)
            .collect();
        scalars.push(acc.b);
        points.push(Some(pc.B));
        scalars.push(acc.b_blinding);
        points.push(Some(pc.B_blinding));
        for j in 0..acc.max_m {
            for i in 0..acc.max_n {
                scalars.push(acc.g[j * GENS_PER_PARTY + i]);
                points.push(Some(gens.g[j][i]));
                scalars.push(acc.h[j * GENS_PER_PARTY + i]);
                points.push(Some(gens.h[j][i]));
            }
        }
        let sum = RistrettoPoint::optional_multiscalar_mul(scalars, points).ok_or(())?;
        if sum.is_identity() { Ok(()) } else { Err(()) }
    }
}

/// Replay one proof's transcript and add its weighted equation to `acc`.
fn add_item(acc: &mut Accumulator, item: &Item, weight: Scalar, c: Scalar) -> Result<(), ()> {
    let p = &item.fields;
    let n = item.bits.bits();
    let m = item.padded.len();
    let nm = n * m;
    let lg = p.l_vec.len();
    if m > GENS_PER_PARTY || lg >= 32 || nm != 1 << lg || p.r_vec.len() != lg {
        return Err(());
    }
    let mut t = item.transcript.clone();

    // Range proof transcript (bulletproofs RangeProof::verify_multiple_with_rng).
    t.append_message(b"dom-sep", b"rangeproof v1");
    t.append_u64(b"n", n as u64);
    t.append_u64(b"m", m as u64);
    for v in &item.padded {
        t.append_message(b"V", v.as_bytes());
    }
    validate_and_append(&mut t, b"A", &p.a_point)?;
    validate_and_append(&mut t, b"S", &p.s_point)?;
    let y = challenge(&mut t, b"y");
    let z = challenge(&mut t, b"z");
    validate_and_append(&mut t, b"T_1", &p.t1)?;
    validate_and_append(&mut t, b"T_2", &p.t2)?;
    let x = challenge(&mut t, b"x");
    t.append_message(b"t_x", p.t_x.as_bytes());
    t.append_message(b"t_x_blinding", p.t_x_blinding.as_bytes());
    t.append_message(b"e_blinding", p.e_blinding.as_bytes());
    let w = challenge(&mut t, b"w");

    // Inner-product proof transcript (InnerProductProof::verification_scalars).
    t.append_message(b"dom-sep", b"ipp v1");
    t.append_u64(b"n", nm as u64);
    let mut u = Vec::with_capacity(lg);
    for (l, r) in p.l_vec.iter().zip(&p.r_vec) {
        validate_and_append(&mut t, b"L", l)?;
        validate_and_append(&mut t, b"R", r)?;
        u.push(challenge(&mut t, b"u"));
    }
    let mut u_inv = u.clone();
    let all_inv = Scalar::batch_invert(&mut u_inv);
    let u_sq: Vec<Scalar> = u.iter().map(|x| x * x).collect();
    let u_inv_sq: Vec<Scalar> = u_inv.iter().map(|x| x * x).collect();
    // s_k = Π_j u_j^{±1}; built as in the crate: s_0 = 1/Π u, s_k = s_{k - 2^⌊lg k⌋}·u²_{lg - 1 - ⌊lg k⌋}.
    let mut s = Vec::with_capacity(nm);
    s.push(all_inv);
    for k in 1..nm {
        let lg_k = (usize::BITS - 1 - k.leading_zeros()) as usize;
        let prev = 1usize << lg_k;
        s.push(s[k - prev] * u_sq[(lg - 1) - lg_k]);
    }

    let zz = z * z;
    let delta = (z - zz) * sum_of_powers(&y, nm)
        - zz * z * sum_of_powers(&Scalar::from(2u64), n) * sum_of_powers(&z, m);

    // Dynamic bases.
    let wc = weight * c;
    acc.scalars.push(weight);
    acc.points.push(p.a_point);
    acc.scalars.push(weight * x);
    acc.points.push(p.s_point);
    acc.scalars.push(wc * x);
    acc.points.push(p.t1);
    acc.scalars.push(wc * x * x);
    acc.points.push(p.t2);
    for (k, (l, r)) in p.l_vec.iter().zip(&p.r_vec).enumerate() {
        acc.scalars.push(weight * u_sq[k]);
        acc.points.push(*l);
        acc.scalars.push(weight * u_inv_sq[k]);
        acc.points.push(*r);
    }
    let mut z_j = Scalar::ONE;
    for v in &item.padded {
        acc.scalars.push(wc * zz * z_j);
        acc.points.push(*v);
        z_j *= z;
    }

    // Shared bases.
    acc.b_blinding += weight * (-p.e_blinding - c * p.t_x_blinding);
    acc.b += weight * (w * (p.t_x - p.a * p.b) + c * (delta - p.t_x));
    let y_inv = y.invert();
    let mut y_inv_k = Scalar::ONE;
    let mut z_party = Scalar::ONE;
    for j in 0..m {
        let mut two_i = Scalar::ONE;
        for i in 0..n {
            let k = j * n + i;
            let idx = j * GENS_PER_PARTY + i;
            acc.g[idx] += weight * (-z - p.a * s[k]);
            acc.h[idx] += weight * (z + y_inv_k * (zz * z_party * two_i - p.b * s[nm - 1 - k]));
            y_inv_k *= y_inv;
            two_i += two_i;
        }
        z_party *= z;
    }
    acc.max_n = acc.max_n.max(n);
    acc.max_m = acc.max_m.max(m);
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::super::domains;
    use super::super::proof::prove_padded;
    use super::*;
    use crate::range::Blinding;

    fn ctx(i: u64) -> RangeContext {
        RangeContext::new(domains::AGG_VERIFIABLE_INPUT).bind_u64(b"i", i)
    }

    /// The combined equation itself (not the per-proof fallback) accepts valid batches
    /// of mixed widths and sizes: this is what checks the replayed transcript, the
    /// scalars and the rederived `H` generators against the crate.
    #[test]
    fn combined_equation_accepts_valid_mixed_batches() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut batch = BatchVerifier::new();
        for (i, (bits, n)) in [
            (BitSize::Bits8, 1usize),
            (BitSize::Bits16, 2),
            (BitSize::Bits32, 3),
            (BitSize::Bits64, 1),
            (BitSize::Bits64, 8),
            (BitSize::Bits32, 16),
        ]
        .into_iter()
        .enumerate()
        {
            let vals: Vec<u64> = (0..n as u64)
                .map(|v| (v * 37 + 5) & bits.max_value())
                .collect();
            let r: Vec<Blinding> = (0..n).map(|_| Blinding::random()).collect();
            let (p, c) = RangeProof::prove(&ctx(i as u64), bits, &vals, &r).unwrap();
            batch.add_range(&ctx(i as u64), bits, &c, &p).unwrap();
            // A batch of one is the crate's own equation (times a weight).
            let mut one = BatchVerifier::new();
            one.add_range(&ctx(i as u64), bits, &c, &p).unwrap();
            assert!(
                one.combined_check(&mut rng).is_ok(),
                "single {bits:?} x {n}"
            );
        }
        let (bp, bc) = BoundedProof::prove(
            &ctx(50),
            BitSize::Bits16,
            10,
            1000,
            &[10, 999, 500],
            &[Blinding::random(), Blinding::random(), Blinding::random()],
        )
        .unwrap();
        batch
            .add_bounded(&ctx(50), BitSize::Bits16, 10, 1000, &bc, &bp)
            .unwrap();
        assert!(batch.combined_check(&mut rng).is_ok());
    }

    #[test]
    fn combined_equation_rejects_a_proof_of_an_out_of_range_value() {
        // Bypass the prover's range check: a proof for 2^32 + 5 in 32 bits.
        let mut rng = StdRng::seed_from_u64(2);
        let bits = BitSize::Bits32;
        let r = Blinding::random();
        let value = (1u64 << 32) + 5;
        let c = Commitment::commit(value, &r);
        let mut t = ctx(1).transcript(StatementKind::Range, 32, &[c]);
        let (inner, _) = prove_padded(&mut t, bits, &[value], &[r.0], &mut rng).unwrap();
        let proof = RangeProof::from_parts(bits, 1, inner);
        assert!(proof.verify(&ctx(1), bits, &[c]).is_err());
        let mut batch = BatchVerifier::new();
        batch.add_range(&ctx(1), bits, &[c], &proof).unwrap();
        assert!(batch.combined_check(&mut rng).is_err());
        // Also when hidden among valid proofs.
        let mut batch = BatchVerifier::new();
        for i in 0..3 {
            let rr = [Blinding::random()];
            let (p, cc) = RangeProof::prove(&ctx(10 + i), bits, &[i], &rr).unwrap();
            batch.add_range(&ctx(10 + i), bits, &cc, &p).unwrap();
        }
        batch.add_range(&ctx(1), bits, &[c], &proof).unwrap();
        assert!(batch.combined_check(&mut rng).is_err());
        assert_eq!(batch.verify(), Err(Error::BatchItemFailed { index: 3 }));
    }

    #[test]
    fn combined_equation_rejects_each_altered_field() {
        let mut rng = StdRng::seed_from_u64(3);
        let r = [Blinding::random(), Blinding::random()];
        let (p, c) = RangeProof::prove(&ctx(7), BitSize::Bits16, &[1, 2], &r).unwrap();
        let bytes = p.inner.to_bytes();
        // One flipped bit in each 32-byte element (points may stop decoding: also a rejection).
        for elem in 0..bytes.len() / 32 {
            let mut b = bytes.clone();
            b[elem * 32 + 1] ^= 0x10;
            let Ok(inner) = bulletproofs::RangeProof::from_bytes(&b) else {
                continue;
            };
            let bad = RangeProof::from_parts(BitSize::Bits16, 2, inner);
            let mut batch = BatchVerifier::new();
            if batch.add_range(&ctx(7), BitSize::Bits16, &c, &bad).is_ok() {
                assert!(batch.combined_check(&mut rng).is_err(), "element {elem}");
            }
        }
    }
}
