//! The inference circuit (see `docs/inference.md`).

use super::model::{Model, ModelKind, ModelShape, PrivateInput, ShapeKind, commit_input};
use crate::field::{Fr, pow2};
use crate::gadgets::{Bit, FrVar, compare, mux, pack, poseidon::hash_var, range};
use crate::poseidon::Domain;
use crate::{Error, Result};
use ark_r1cs_std::{alloc::AllocVar, eq::EqGadget, fields::FieldVar};
use ark_relations::gr1cs::{ConstraintSynthesizer, ConstraintSystemRef, SynthesisError};

/// Bits of the final comparison `score - threshold` (|score| < 2^64, |threshold| <= 2^63).
const SCORE_CMP_BITS: usize = 66;

/// The public inputs, in the order the verifier takes them:
/// `[model_hash, input_commitment, class]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InferencePublic {
    /// Poseidon hash of the model (see [`Model::hash`]).
    pub model_hash: Fr,
    /// Poseidon commitment to the input (see [`super::commit_input`]).
    pub input_commitment: Fr,
    /// Predicted class, 0 or 1.
    pub class: u8,
}

impl InferencePublic {
    /// The field elements the Groth16 verifier takes.
    pub fn to_field_elements(&self) -> Vec<Fr> {
        vec![self.model_hash, self.input_commitment, Fr::from(self.class)]
    }
}

/// The circuit: knowledge of a model with hash `model_hash` and an input opening
/// `input_commitment` such that the model's class on the input is `class`.
#[derive(Clone)]
pub struct InferenceCircuit {
    model: Model,
    input: PrivateInput,
    public: InferencePublic,
}

impl core::fmt::Debug for InferenceCircuit {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("InferenceCircuit")
            .field("shape", &self.model.shape())
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl InferenceCircuit {
    /// A circuit for `shape` with zero witnesses: use it for key generation.
    pub fn blank(shape: ModelShape) -> Result<Self> {
        shape.validate()?;
        Ok(Self {
            model: shape.blank_model(),
            input: PrivateInput {
                features: vec![0; shape.n_features],
                blinding: Fr::from(0u64),
            },
            public: InferencePublic {
                model_hash: Fr::from(0u64),
                input_commitment: Fr::from(0u64),
                class: 0,
            },
        })
    }

    /// The honest prover's circuit: computes the public inputs from the model and input.
    pub fn new(model: Model, input: PrivateInput) -> Result<Self> {
        model.validate()?;
        model.validate_input(&input.features)?;
        let public = InferencePublic {
            model_hash: model.hash()?,
            input_commitment: commit_input(&input, model.input_bits)?.0,
            class: model.predict(&input.features)?,
        };
        Ok(Self {
            model,
            input,
            public,
        })
    }

    /// A circuit with explicitly claimed public inputs (tests of false statements).
    pub fn with_claim(model: Model, input: PrivateInput, public: InferencePublic) -> Self {
        Self {
            model,
            input,
            public,
        }
    }

    /// The public inputs.
    pub fn public(&self) -> InferencePublic {
        self.public
    }

    /// The model's shape (fixes the circuit).
    pub fn shape(&self) -> ModelShape {
        self.model.shape()
    }
}

/// A signed parameter allocated in offset-binary: returns (signed value, bits of offset value).
fn alloc_signed(
    cs: &ConstraintSystemRef<Fr>,
    v: i64,
    bits: usize,
) -> core::result::Result<(FrVar, Vec<Bit>), SynthesisError> {
    let off = (i128::from(v) + (1i128 << (bits - 1))) as u128;
    let (u, b) = range::alloc_uint(cs.clone(), off, bits)?;
    Ok((u - pow2(bits - 1), b))
}

impl ConstraintSynthesizer<Fr> for InferenceCircuit {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> ark_relations::gr1cs::Result<()> {
        let shape = self.model.shape();
        shape
            .validate()
            .map_err(|_| SynthesisError::Unsatisfiable)?;
        let b = shape.input_bits as usize;
        let p = shape.param_bits as usize;

        // Public inputs.
        let model_hash = FrVar::new_input(cs.clone(), || Ok(self.public.model_hash))?;
        let commitment = FrVar::new_input(cs.clone(), || Ok(self.public.input_commitment))?;
        let class = FrVar::new_input(cs.clone(), || Ok(Fr::from(self.public.class)))?;

        // Input: n features of B bits, and the blinding; recompute the commitment.
        if self.input.features.len() != shape.n_features {
            return Err(SynthesisError::Unsatisfiable);
        }
        let mut x = Vec::with_capacity(shape.n_features);
        let mut x_bits = Vec::with_capacity(shape.n_features);
        for &v in &self.input.features {
            let (var, bits) = range::alloc_uint(cs.clone(), u128::from(v), b)?;
            x.push(var);
            x_bits.push(bits);
        }
        let blinding = FrVar::new_witness(cs.clone(), || Ok(self.input.blinding))?;
        let mut com_in = pack::pack_bits(&x_bits);
        com_in.push(blinding);
        hash_var(Domain::InputCommitment, &com_in)?.enforce_equal(&commitment)?;

        // Model parameters (allocated in the same order as `Model::hash_fields`).
        let mut hash_fields: Vec<Vec<Bit>> = Vec::new();
        let (score, threshold) = match (&self.model.kind, shape.kind) {
            (ModelKind::Linear(m), ShapeKind::Linear) => {
                let mut score = FrVar::zero();
                for (w, xi) in m.weights.iter().zip(&x) {
                    let (wv, wb) = alloc_signed(&cs, *w, p)?;
                    hash_fields.push(wb);
                    score += wv * xi;
                }
                let (bias, bb) = alloc_signed(&cs, m.bias, 64)?;
                hash_fields.push(bb);
                let (th, tb) = alloc_signed(&cs, m.threshold, 64)?;
                hash_fields.push(tb);
                (score + bias, th)
            }
            (ModelKind::Trees(e), ShapeKind::Trees { depth, .. }) => {
                let depth = depth as usize;
                let fb = shape.feature_index_bits();
                let tb = shape.threshold_bits();
                let (xs, _) = mux::pad_pow2(&x, fb);
                let mut score = FrVar::zero();
                for t in &e.trees {
                    // Node values v = feature << tb | threshold, range-checked for hashing.
                    let mut nodes = Vec::with_capacity(t.features.len());
                    for (&f, &th) in t.features.iter().zip(&t.thresholds) {
                        let (v, bits) = range::alloc_uint(
                            cs.clone(),
                            u128::from(f) << tb | u128::from(th),
                            fb + tb,
                        )?;
                        nodes.push(v);
                        hash_fields.push(bits);
                    }
                    let mut leaves = Vec::with_capacity(t.leaves.len());
                    for &l in &t.leaves {
                        let (lv, lb) = alloc_signed(&cs, l, p)?;
                        leaves.push(lv);
                        hash_fields.push(lb);
                    }
                    // Walk the path: at level d the node is chosen by the d previous decisions.
                    let mut path: Vec<Bit> = Vec::with_capacity(depth); // path[0] = root decision
                    for d in 0..depth {
                        let level = &nodes[(1 << d) - 1..(1 << (d + 1)) - 1];
                        let sel_bits: Vec<Bit> = path.iter().rev().cloned().collect();
                        let node = mux::select_by_bits(level, &sel_bits)?;
                        let bits = range::to_bits_le(&node, fb + tb)?;
                        let thr = range::from_bits_le(&bits[..tb]);
                        let xf = mux::select_by_bits(&xs, &bits[tb..])?;
                        path.push(compare::is_ge(&xf, &thr, tb)?);
                    }
                    let sel_bits: Vec<Bit> = path.iter().rev().cloned().collect();
                    score += mux::select_by_bits(&leaves, &sel_bits)?;
                }
                let (base, bb) = alloc_signed(&cs, e.base, 64)?;
                hash_fields.push(bb);
                let (th, thb) = alloc_signed(&cs, e.threshold, 64)?;
                hash_fields.push(thb);
                (score + base, th)
            }
            _ => return Err(SynthesisError::Unsatisfiable),
        };

        // Model hash.
        let mut model_in = vec![FrVar::constant(shape.descriptor())];
        model_in.extend(pack::pack_bits(&hash_fields));
        hash_var(Domain::ModelHash, &model_in)?.enforce_equal(&model_hash)?;

        // Decision.
        let decided = compare::is_ge(&score, &threshold, SCORE_CMP_BITS)?;
        FrVar::from(decided).enforce_equal(&class)?;
        Ok(())
    }
}

/// Number of constraints of the inference circuit for `shape`.
pub fn count_constraints(shape: ModelShape) -> Result<usize> {
    let cs = ark_relations::gr1cs::ConstraintSystem::<Fr>::new_ref();
    cs.set_optimization_goal(ark_relations::gr1cs::OptimizationGoal::Constraints);
    InferenceCircuit::blank(shape)?.generate_constraints(cs.clone())?;
    cs.finalize();
    Ok(cs.num_constraints())
}

/// Checks the witness against the circuit without proving (debugging aid).
pub fn is_satisfied(circuit: InferenceCircuit) -> Result<bool> {
    let cs = ark_relations::gr1cs::ConstraintSystem::<Fr>::new_ref();
    circuit.generate_constraints(cs.clone())?;
    cs.is_satisfied().map_err(Error::from)
}
