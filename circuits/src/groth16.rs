//! Groth16 over BN254: key generation, proving, verification, key identifiers
//! and size-limited, validated (de)serialization.
#![doc = include_str!("../docs/groth16.md")]

use crate::field::Fr;
use crate::{Error, Result};
use ark_bn254::Bn254;
use ark_relations::gr1cs::ConstraintSynthesizer;
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize, Compress, Validate};
use ark_snark::SNARK;
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};

/// A Groth16 proof over BN254 (128 bytes compressed).
pub type Proof = ark_groth16::Proof<Bn254>;
/// A Groth16 verifying key over BN254.
pub type VerifyingKey = ark_groth16::VerifyingKey<Bn254>;
/// A Groth16 proving key over BN254.
pub type ProvingKey = ark_groth16::ProvingKey<Bn254>;

/// What [`setup`] and [`prove`] take: any arkworks circuit over BN254's scalar
/// field (re-exported so callers need not depend on `ark-relations`).
pub use ark_relations::gr1cs::ConstraintSynthesizer as Circuit;

/// Compressed proof size in bytes.
pub const PROOF_BYTES: usize = 128;
/// Largest verifying key accepted by [`verifying_key_from_bytes`] (enough for 1,000 public inputs).
pub const MAX_VERIFYING_KEY_BYTES: usize = 64 * 1024;
/// Largest proving key accepted by [`proving_key_from_bytes`].
pub const MAX_PROVING_KEY_BYTES: usize = 256 * 1024 * 1024;
/// Domain-separation prefix of [`VerifyingKeyId`].
pub const VK_ID_DOMAIN: &[u8] = b"veilgrid/circuits/groth16-bn254-vk/v1\0";

/// Identifies a verifying key: `SHA-256(VK_ID_DOMAIN ‖ compressed canonical
/// serialization)`. Receipts pin this id; verifiers refuse any other key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VerifyingKeyId(pub [u8; 32]);

impl VerifyingKeyId {
    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses lower- or upper-case hex of exactly 32 bytes.
    pub fn from_hex(s: &str) -> Result<Self> {
        if s.len() != 64 {
            return Err(Error::Decode {
                what: "verifying key id",
                reason: "expected 64 hex digits".into(),
            });
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|e| Error::Decode {
            what: "verifying key id",
            reason: e.to_string(),
        })?;
        Ok(Self(out))
    }
}

/// A circuit's key pair.
#[derive(Clone)]
pub struct Keys {
    /// The prover's key (large; keep it with the prover).
    pub proving_key: ProvingKey,
    /// The verifier's key (publish it; pin its id).
    pub verifying_key: VerifyingKey,
}

impl core::fmt::Debug for Keys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Keys")
            .field(
                "verifying_key_id",
                &verifying_key_id(&self.verifying_key).to_hex(),
            )
            .finish_non_exhaustive()
    }
}

/// Circuit-specific key generation. The randomness ("toxic waste") must come from
/// a CSPRNG and be forgotten; whoever knows it can forge proofs. A single-party
/// setup is for development: production keys need a multi-party phase-2
/// ceremony (see the crate docs). Tests pass a seeded RNG.
pub fn setup<C, R>(circuit: C, rng: &mut R) -> Result<Keys>
where
    C: ConstraintSynthesizer<Fr>,
    R: RngCore + CryptoRng,
{
    let (pk, vk) = ark_groth16::Groth16::<Bn254>::circuit_specific_setup(circuit, rng)
        .map_err(|e| Error::Synthesis(e.to_string()))?;
    Ok(Keys {
        proving_key: pk,
        verifying_key: vk,
    })
}

/// Proves the statement of `circuit`. The circuit is synthesized once; if its
/// witness does not satisfy it (a false statement), no proof is produced and
/// [`Error::Unsatisfied`] is returned instead of a proof that would not verify.
pub fn prove<C, R>(pk: &ProvingKey, circuit: C, rng: &mut R) -> Result<Proof>
where
    C: ConstraintSynthesizer<Fr>,
    R: RngCore + CryptoRng,
{
    use ark_ff::UniformRand;
    use ark_relations::gr1cs::{
        ConstraintSystem, OptimizationGoal, R1CS_PREDICATE_LABEL, SynthesisMode,
    };
    let cs = ConstraintSystem::<Fr>::new_ref();
    cs.set_optimization_goal(OptimizationGoal::Constraints);
    cs.set_mode(SynthesisMode::Prove {
        construct_matrices: true,
        generate_lc_assignments: false,
    });
    circuit.generate_constraints(cs.clone())?;
    cs.finalize();
    if !cs.is_satisfied()? {
        return Err(Error::Unsatisfied {
            circuit: core::any::type_name::<C>(),
        });
    }
    let matrices = cs.to_matrices()?;
    let r1cs = matrices
        .get(R1CS_PREDICATE_LABEL)
        .ok_or_else(|| Error::Synthesis("no R1CS matrices".into()))?;
    let num_inputs = cs.num_instance_variables();
    let num_constraints = cs.num_constraints();
    let full_assignment = [cs.instance_assignment()?, cs.witness_assignment()?].concat();
    let r = Fr::rand(rng);
    let s = Fr::rand(rng);
    ark_groth16::Groth16::<Bn254>::create_proof_with_reduction_and_matrices(
        pk,
        r,
        s,
        r1cs,
        num_inputs,
        num_constraints,
        &full_assignment,
    )
    .map_err(|e| Error::Synthesis(e.to_string()))
}

/// Verifies `proof` for `public_inputs` (in the circuit's documented order).
/// (Prepares the key each call; use [`PreparedVerifier`] to verify many proofs.)
pub fn verify(vk: &VerifyingKey, public_inputs: &[Fr], proof: &Proof) -> Result<()> {
    if public_inputs.len() + 1 != vk.gamma_abc_g1.len() {
        return Err(Error::ProofRejected("wrong number of public inputs"));
    }
    PreparedVerifier {
        pvk: ark_groth16::prepare_verifying_key(vk),
        id: VerifyingKeyId([0; 32]),
    }
    .verify(public_inputs, proof)
}

/// A verifying key prepared once for many verifications (`e(α, β)` and the
/// G2 line coefficients precomputed), with its id.
#[derive(Clone)]
pub struct PreparedVerifier {
    pvk: ark_groth16::PreparedVerifyingKey<Bn254>,
    id: VerifyingKeyId,
}

impl core::fmt::Debug for PreparedVerifier {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PreparedVerifier")
            .field("id", &self.id.to_hex())
            .finish_non_exhaustive()
    }
}

impl PreparedVerifier {
    /// Prepares `vk`.
    pub fn new(vk: &VerifyingKey) -> Self {
        Self {
            pvk: ark_groth16::prepare_verifying_key(vk),
            id: verifying_key_id(vk),
        }
    }

    /// Prepares `vk` after checking that it is the pinned key.
    pub fn pinned(pinned: &VerifyingKeyId, vk: &VerifyingKey) -> Result<Self> {
        let v = Self::new(vk);
        if v.id != *pinned {
            return Err(Error::WrongVerifyingKey {
                expected: pinned.to_hex(),
                actual: v.id.to_hex(),
            });
        }
        Ok(v)
    }

    /// The key's id.
    pub fn id(&self) -> VerifyingKeyId {
        self.id
    }

    /// Verifies `proof` for `public_inputs`.
    pub fn verify(&self, public_inputs: &[Fr], proof: &Proof) -> Result<()> {
        if public_inputs.len() + 1 != self.pvk.vk.gamma_abc_g1.len() {
            return Err(Error::ProofRejected("wrong number of public inputs"));
        }
        match ark_groth16::Groth16::<Bn254>::verify_with_processed_vk(
            &self.pvk,
            public_inputs,
            proof,
        ) {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::ProofRejected("pairing check failed")),
            Err(e) => Err(Error::Synthesis(e.to_string())),
        }
    }
}

/// Like [`verify`], but first checks that the key is the pinned one.
pub fn verify_pinned(
    pinned: &VerifyingKeyId,
    vk: &VerifyingKey,
    public_inputs: &[Fr],
    proof: &Proof,
) -> Result<()> {
    let actual = verifying_key_id(vk);
    if actual != *pinned {
        return Err(Error::WrongVerifyingKey {
            expected: pinned.to_hex(),
            actual: actual.to_hex(),
        });
    }
    verify(vk, public_inputs, proof)
}

fn ser<T: CanonicalSerialize>(what: &'static str, v: &T) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(v.compressed_size());
    v.serialize_compressed(&mut out)
        .map_err(|e| Error::Decode {
            what,
            reason: e.to_string(),
        })?;
    Ok(out)
}

fn de<T: CanonicalDeserialize>(what: &'static str, bytes: &[u8], max: usize) -> Result<T> {
    if bytes.len() > max {
        return Err(Error::TooLarge {
            what,
            len: bytes.len(),
            max,
        });
    }
    let mut reader = bytes;
    let v = T::deserialize_with_mode(&mut reader, Compress::Yes, Validate::Yes).map_err(|e| {
        Error::Decode {
            what,
            reason: e.to_string(),
        }
    })?;
    if !reader.is_empty() {
        return Err(Error::Decode {
            what,
            reason: format!("{} trailing bytes", reader.len()),
        });
    }
    Ok(v)
}

/// The verifying key's id (hash of its canonical compressed serialization).
pub fn verifying_key_id(vk: &VerifyingKey) -> VerifyingKeyId {
    let mut h = Sha256::new();
    h.update(VK_ID_DOMAIN);
    // Serializing into a Vec cannot fail for a well-formed key.
    h.update(verifying_key_to_bytes(vk).unwrap_or_default());
    VerifyingKeyId(h.finalize().into())
}

/// Canonical compressed encoding of a verifying key.
pub fn verifying_key_to_bytes(vk: &VerifyingKey) -> Result<Vec<u8>> {
    ser("verifying key", vk)
}

/// Decodes a verifying key: size-limited, points checked on the curve and in the
/// prime-order subgroup, no trailing bytes.
pub fn verifying_key_from_bytes(bytes: &[u8]) -> Result<VerifyingKey> {
    de("verifying key", bytes, MAX_VERIFYING_KEY_BYTES)
}

/// Canonical compressed encoding of a proving key.
pub fn proving_key_to_bytes(pk: &ProvingKey) -> Result<Vec<u8>> {
    ser("proving key", pk)
}

/// Decodes a proving key (size-limited and validated; slow for large keys).
pub fn proving_key_from_bytes(bytes: &[u8]) -> Result<ProvingKey> {
    de("proving key", bytes, MAX_PROVING_KEY_BYTES)
}

/// Canonical compressed encoding of a proof (128 bytes).
pub fn proof_to_bytes(proof: &Proof) -> Result<Vec<u8>> {
    ser("proof", proof)
}

/// Decodes a proof: exactly 128 bytes, points validated.
pub fn proof_from_bytes(bytes: &[u8]) -> Result<Proof> {
    if bytes.len() != PROOF_BYTES {
        return Err(Error::Decode {
            what: "proof",
            reason: format!("{} bytes, expected {PROOF_BYTES}", bytes.len()),
        });
    }
    de("proof", bytes, PROOF_BYTES)
}

/// Encodes public inputs as 32-byte canonical little-endian field elements.
pub fn public_inputs_to_bytes(inputs: &[Fr]) -> Vec<u8> {
    inputs.iter().flat_map(crate::field::fr_to_bytes).collect()
}

/// Decodes public inputs (at most `max` of them; each canonical, `< p`).
pub fn public_inputs_from_bytes(bytes: &[u8], max: usize) -> Result<Vec<Fr>> {
    if !bytes.len().is_multiple_of(32) {
        return Err(Error::Decode {
            what: "public inputs",
            reason: "length is not a multiple of 32".into(),
        });
    }
    if bytes.len() / 32 > max {
        return Err(Error::TooLarge {
            what: "public inputs",
            len: bytes.len(),
            max: max * 32,
        });
    }
    bytes
        .chunks_exact(32)
        .map(|c| {
            let mut a = [0u8; 32];
            a.copy_from_slice(c);
            crate::field::fr_from_bytes(&a)
        })
        .collect()
}
