//! Verifiable mode: Pedersen commitments to every entry, one aggregated Bulletproofs range proof
//! per client, blinding factors carried as limbs in the masked vector, and the final opening check.
#![doc = include_str!("../docs/verifiable.md")]

use bulletproofs::{BulletproofGens, PedersenGens, RangeProof};
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{Identity, VartimeMultiscalarMul};
use merlin::Transcript;
use rand_core::{CryptoRng, OsRng, RngCore};
use zeroize::Zeroize;

use crate::error::Error;
use crate::messages::ClientId;
use crate::round::Round;
use crate::wire::{Reader, Writer};

/// Generators of a verifiable round (built once per round, on first use).
pub struct Generators {
    pub(crate) pc: PedersenGens,
    pub(crate) bp: BulletproofGens,
    /// Bulletproofs bit size (8, 16, 32 or 64).
    pub(crate) proof_bits: usize,
    /// Whether `2^B − 1 − x` is proven too (when `B` is not a Bulletproofs bit size).
    pub(crate) pair: bool,
    /// Values in the aggregated proof, padded to a power of two.
    pub(crate) padded: usize,
}

/// Bulletproofs bit size used for `bits`, and whether the complement is proven as well.
pub fn proof_shape(bits: u32) -> (usize, bool) {
    let nb = [8usize, 16, 32, 64]
        .into_iter()
        .find(|&n| n >= bits as usize)
        .unwrap_or(64);
    (nb, nb != bits as usize)
}

impl Generators {
    fn for_round(round: &Round) -> Self {
        let p = round.params();
        let (proof_bits, pair) = proof_shape(p.bits());
        let values = p.length() * if pair { 2 } else { 1 };
        let padded = values.next_power_of_two();
        Self {
            pc: PedersenGens::default(),
            bp: BulletproofGens::new(proof_bits, padded),
            proof_bits,
            pair,
            padded,
        }
    }
}

fn gens(round: &Round) -> &Generators {
    round
        .verify_gens
        .get_or_init(|| Generators::for_round(round))
}

fn transcript(round: &Round, client: ClientId) -> Transcript {
    let mut t = Transcript::new(b"veilgrid/agg/range/v1");
    t.append_message(b"round-digest", round.digest());
    t.append_u64(b"client", client);
    t.append_u64(b"length", round.params().length() as u64);
    t.append_u64(b"bits", u64::from(round.params().bits()));
    t
}

/// A client's commitments (one per entry) and its aggregated range proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    pub(crate) commitments: Vec<CompressedRistretto>,
    pub(crate) proof: Vec<u8>,
}

impl Attachment {
    /// Commitments `C_j = x_j·B + r_j·B̃`.
    pub fn commitments(&self) -> &[CompressedRistretto] {
        &self.commitments
    }
    /// The serialized range proof.
    pub fn proof_bytes(&self) -> &[u8] {
        &self.proof
    }

    /// Encoded size in a round (commitments, length prefix, proof).
    pub fn encoded_len(round: &Round) -> usize {
        round.params().length() * 32 + 4 + Self::proof_len(round)
    }

    /// Size of the aggregated proof: `32·(9 + 2·log2(bits·padded))`.
    pub fn proof_len(round: &Round) -> usize {
        let p = round.params();
        let (nb, pair) = proof_shape(p.bits());
        let padded = (p.length() * if pair { 2 } else { 1 }).next_power_of_two();
        32 * (9 + 2 * (nb * padded).trailing_zeros() as usize)
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        for c in &self.commitments {
            w.bytes(c.as_bytes());
        }
        w.var(&self.proof);
    }

    pub(crate) fn read(r: &mut Reader<'_>, round: &Round) -> Result<Self, Error> {
        let mut commitments = Vec::with_capacity(round.params().length());
        for _ in 0..round.params().length() {
            commitments.push(CompressedRistretto(r.array::<32>()?));
        }
        let proof = r.var(Self::proof_len(round))?.to_vec();
        if proof.len() != Self::proof_len(round) {
            return Err(Error::Malformed {
                what: "range proof",
                reason: "wrong size",
            });
        }
        Ok(Self { commitments, proof })
    }
}

/// Proves `values` (each `< 2^B`, checked by the caller) and returns the attachment and the
/// blinding factors of the entry commitments.
pub(crate) fn prove<R: RngCore + CryptoRng>(
    round: &Round,
    client: ClientId,
    values: &[u64],
    rng: &mut R,
) -> Result<(Attachment, Vec<Scalar>), Error> {
    let g = gens(round);
    let bits = round.params().bits();
    let blindings: Vec<Scalar> = values.iter().map(|_| Scalar::random(rng)).collect();
    let mut all_values = values.to_vec();
    let mut all_blindings = blindings.clone();
    if g.pair {
        let top = (1u64 << bits) - 1;
        all_values.extend(values.iter().map(|&v| top - v));
        all_blindings.extend(blindings.iter().map(|r| -r));
    }
    all_values.resize(g.padded, 0);
    all_blindings.resize(g.padded, Scalar::ZERO);
    let mut t = transcript(round, client);
    let (proof, commitments) = RangeProof::prove_multiple_with_rng(
        &g.bp,
        &g.pc,
        &mut t,
        &all_values,
        &all_blindings,
        g.proof_bits,
        rng,
    )
    .map_err(|_| Error::InvalidParams("range proof generation failed"))?;
    all_blindings.zeroize();
    all_values.zeroize();
    Ok((
        Attachment {
            commitments: commitments[..values.len()].to_vec(),
            proof: proof.to_bytes(),
        },
        blindings,
    ))
}

/// The public statement a client's range proof is about, for verifiers that batch many proofs
/// in one multiscalar multiplication (`veilgrid-zk`'s `BatchVerifier::add_transcript`).
pub struct RangeStatement {
    /// The Merlin transcript as the prover started from it (round digest, client, `L`, `B`).
    pub transcript: Transcript,
    /// The Bulletproofs bit size (8, 16, 32 or 64).
    pub bits: usize,
    /// The commitments the aggregated proof covers: the client's, their complements
    /// `(2^B−1)·B − C_j` when `B` is not a Bulletproofs size, identity padding to a power of two.
    pub padded: Vec<CompressedRistretto>,
    /// The client's entry commitments, decompressed.
    pub points: Vec<RistrettoPoint>,
}

impl std::fmt::Debug for RangeStatement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RangeStatement")
            .field("bits", &self.bits)
            .field("padded", &self.padded.len())
            .finish_non_exhaustive()
    }
}

/// The statement of `client`'s proof in `round` (commitments must decode and be `L` of them).
pub fn range_statement(
    round: &Round,
    client: ClientId,
    att: &Attachment,
) -> Result<RangeStatement, Error> {
    let g = gens(round);
    let bits = round.params().bits();
    if att.commitments.len() != round.params().length() {
        return Err(Error::WrongLength {
            expected: round.params().length(),
            got: att.commitments.len(),
        });
    }
    let points: Vec<RistrettoPoint> = att
        .commitments
        .iter()
        .map(|c| c.decompress())
        .collect::<Option<_>>()
        .ok_or(Error::Malformed {
            what: "commitment",
            reason: "not a Ristretto point",
        })?;
    let mut all = att.commitments.clone();
    if g.pair {
        let top = g.pc.B * Scalar::from((1u64 << bits) - 1);
        all.extend(points.iter().map(|p| (top - p).compress()));
    }
    all.resize(g.padded, RistrettoPoint::identity().compress());
    Ok(RangeStatement {
        transcript: transcript(round, client),
        bits: g.proof_bits,
        padded: all,
        points,
    })
}

/// Verifies a client's range proof; returns the decompressed entry commitments.
pub(crate) fn verify(
    round: &Round,
    client: ClientId,
    att: &Attachment,
) -> Result<Vec<RistrettoPoint>, Error> {
    let g = gens(round);
    let mut st = range_statement(round, client, att)?;
    let proof = RangeProof::from_bytes(&att.proof).map_err(|_| Error::RangeProof(client))?;
    proof
        .verify_multiple_with_rng(
            &g.bp,
            &g.pc,
            &mut st.transcript,
            &st.padded,
            g.proof_bits,
            &mut OsRng,
        )
        .map_err(|_| Error::RangeProof(client))?;
    Ok(st.points)
}

/// Verifies one client's range proof on its own (auditors use it to name the client whose
/// proof fails after a batch failed).
pub fn verify_client(round: &Round, client: ClientId, att: &Attachment) -> Result<(), Error> {
    verify(round, client, att).map(|_| ())
}

/// Splits each blinding factor into `limbs_per_scalar` limbs of `limb_bits` bits.
pub(crate) fn limbs(round: &Round, blindings: &[Scalar]) -> Vec<u64> {
    let w = round.params().limb_bits() as usize;
    let k = round.params().limbs_per_scalar();
    let mut out = Vec::with_capacity(blindings.len() * k);
    for r in blindings {
        let bytes = r.to_bytes();
        for j in 0..k {
            let mut v = 0u64;
            for b in 0..w {
                let bit = j * w + b;
                if bit < 256 && (bytes[bit / 8] >> (bit % 8)) & 1 == 1 {
                    v |= 1 << b;
                }
            }
            out.push(v);
        }
    }
    out
}

/// Recombines summed limbs into the aggregated blinding factors `R_j = Σ_k Λ_{jk}·2^{k·w}`.
pub(crate) fn blinding_sums(round: &Round, limb_sums: &[u64]) -> Vec<Scalar> {
    let w = round.params().limb_bits();
    let k = round.params().limbs_per_scalar();
    let mut pow = Vec::with_capacity(k);
    let base = Scalar::from(1u64 << w);
    let mut acc = Scalar::ONE;
    for _ in 0..k {
        pow.push(acc);
        acc *= base;
    }
    limb_sums
        .chunks(k)
        .map(|ch| ch.iter().zip(&pow).map(|(&l, p)| Scalar::from(l) * p).sum())
        .collect()
}

/// Checks `Σ_i C_ij = X_j·B + R_j·B̃` for every entry `j` at once, with random weights chosen
/// after everything is fixed (a wrong entry passes with probability `1/ℓ`).
pub fn check_opening(
    commitment_sums: &[RistrettoPoint],
    sum: &[u64],
    blindings: &[Scalar],
) -> Result<(), Error> {
    if commitment_sums.len() != sum.len() || sum.len() != blindings.len() {
        return Err(Error::InconsistentRound);
    }
    let pc = PedersenGens::default();
    let weights: Vec<Scalar> = sum.iter().map(|_| Scalar::random(&mut OsRng)).collect();
    let value_total: Scalar = weights
        .iter()
        .zip(sum)
        .map(|(w, &x)| w * Scalar::from(x))
        .sum();
    let blind_total: Scalar = weights.iter().zip(blindings).map(|(w, r)| w * r).sum();
    let scalars = weights.iter().copied().chain([-value_total, -blind_total]);
    let points = commitment_sums.iter().copied().chain([pc.B, pc.B_blinding]);
    let check = RistrettoPoint::vartime_multiscalar_mul(scalars, points);
    if check == RistrettoPoint::identity() {
        Ok(())
    } else {
        Err(Error::InconsistentRound)
    }
}

/// Everything an auditor needs to re-check a verifiable round offline: the round, every counted
/// client's commitments and proof, the sum and the aggregated blinding factors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditTranscript {
    /// Counted clients with their attachments, sorted by client id.
    pub clients: Vec<(ClientId, Attachment)>,
    /// The released sum.
    pub sum: Vec<u64>,
    /// `R_j`, the sum of the counted clients' blinding factors of entry `j`.
    pub blindings: Vec<Scalar>,
}

const AUDIT_TAG: &[u8; 4] = b"VGAA";

impl AuditTranscript {
    /// The transcript of a finished verifiable round from the counted clients' messages (any
    /// order; messages of clients not counted are ignored) and the round's result.
    pub fn from_round(
        messages: &[crate::messages::ClientMessage],
        result: &crate::server::AggregateResult,
    ) -> Result<Self, Error> {
        let blindings = result
            .blindings
            .clone()
            .ok_or(Error::Mode("the round is not verifiable"))?;
        let mut clients = Vec::with_capacity(result.counted.len());
        for &id in &result.counted {
            let msg = messages
                .iter()
                .find(|m| m.client() == id)
                .ok_or(Error::DeclaredSet("no message for a counted client"))?;
            let att = msg
                .attachment()
                .ok_or(Error::Mode("a counted client has no attachment"))?;
            clients.push((id, att.clone()));
        }
        Ok(Self {
            clients,
            sum: result.sum.clone(),
            blindings,
        })
    }

    /// `Σ_i C_ij` over the counted clients, entry by entry (no proof checked).
    pub fn commitment_sums(&self, round: &Round) -> Result<Vec<RistrettoPoint>, Error> {
        let len = round.params().length();
        let mut acc = vec![RistrettoPoint::identity(); len];
        for (_, att) in &self.clients {
            if att.commitments.len() != len {
                return Err(Error::WrongLength {
                    expected: len,
                    got: att.commitments.len(),
                });
            }
            for (a, c) in acc.iter_mut().zip(&att.commitments) {
                *a += c.decompress().ok_or(Error::Malformed {
                    what: "commitment",
                    reason: "not a Ristretto point",
                })?;
            }
        }
        Ok(acc)
    }

    /// Checks that the product of the counted clients' commitments opens to the sum with the
    /// aggregated blinding factors (no range proof checked: see [`verify_client`]).
    pub fn check_opening(&self, round: &Round) -> Result<(), Error> {
        let len = round.params().length();
        if self.sum.len() != len || self.blindings.len() != len {
            return Err(Error::WrongLength {
                expected: len,
                got: self.sum.len(),
            });
        }
        check_opening(&self.commitment_sums(round)?, &self.sum, &self.blindings)
    }

    /// Re-verifies every range proof and the opening of the product of commitments.
    pub fn verify(&self, round: &Round) -> Result<(), Error> {
        if !round.params().is_verifiable() {
            return Err(Error::Mode("the round is not verifiable"));
        }
        let len = round.params().length();
        if self.sum.len() != len || self.blindings.len() != len {
            return Err(Error::WrongLength {
                expected: len,
                got: self.sum.len(),
            });
        }
        if self.clients.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(Error::DeclaredSet("clients not strictly increasing"));
        }
        let mut acc = vec![RistrettoPoint::identity(); len];
        for (id, att) in &self.clients {
            if att.commitments.len() != len {
                return Err(Error::WrongLength {
                    expected: len,
                    got: att.commitments.len(),
                });
            }
            for (a, c) in acc.iter_mut().zip(verify(round, *id, att)?) {
                *a += c;
            }
        }
        check_opening(&acc, &self.sum, &self.blindings)
    }

    /// Canonical bytes.
    pub fn to_bytes(&self, round: &Round) -> Vec<u8> {
        let mut w = Writer::default();
        w.bytes(AUDIT_TAG);
        w.u8(1);
        w.bytes(round.digest());
        w.u32(self.clients.len() as u32);
        for (id, att) in &self.clients {
            w.u64(*id);
            att.write(&mut w);
        }
        w.u32(self.sum.len() as u32);
        for &s in &self.sum {
            w.u64(s);
        }
        for b in &self.blindings {
            w.bytes(b.as_bytes());
        }
        w.0
    }

    /// Decodes a transcript of `round` (size-limited by the round's parameters).
    pub fn from_bytes(round: &Round, bytes: &[u8]) -> Result<Self, Error> {
        let p = round.params();
        let len = p.length();
        let max = 4
            + 1
            + 32
            + 4
            + p.max_clients() as usize * (8 + Attachment::encoded_len(round))
            + 4
            + len * 40;
        if bytes.len() > max {
            return Err(Error::Malformed {
                what: "audit transcript",
                reason: "too long",
            });
        }
        let mut r = Reader::new("audit transcript", bytes);
        r.expect(AUDIT_TAG, "bad tag")?;
        r.expect(&[1], "unknown version")?;
        if &r.array::<32>()? != round.digest() {
            return Err(Error::WrongRound);
        }
        let count = r.u32()? as usize;
        if count > p.max_clients() as usize {
            return Err(Error::TooManyClients(p.max_clients()));
        }
        let mut clients = Vec::with_capacity(count);
        for _ in 0..count {
            let id = r.u64()?;
            clients.push((id, Attachment::read(&mut r, round)?));
        }
        let n = r.u32()? as usize;
        if n != len {
            return Err(Error::WrongLength {
                expected: len,
                got: n,
            });
        }
        let mut sum = Vec::with_capacity(len);
        for _ in 0..len {
            sum.push(r.u64()?);
        }
        let mut blindings = Vec::with_capacity(len);
        for _ in 0..len {
            let s = Option::from(Scalar::from_canonical_bytes(r.array::<32>()?)).ok_or(
                Error::Malformed {
                    what: "audit transcript",
                    reason: "non-canonical scalar",
                },
            )?;
            blindings.push(s);
        }
        r.finish()?;
        Ok(Self {
            clients,
            sum,
            blindings,
        })
    }
}
