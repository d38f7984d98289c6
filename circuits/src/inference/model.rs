//! Quantized models (the format shared with `crypto/fhe`), their hash, and the
//! input commitment. Everything here is plain integer arithmetic; the circuit in
//! `circuit.rs` proves the same computation.

use crate::field::Fr;
use crate::gadgets::pack;
use crate::poseidon::{self, Domain};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Most input features a model may have.
pub const MAX_FEATURES: usize = 64;
/// Most bits per input feature (`B`); features are unsigned `x < 2^B`.
pub const MAX_INPUT_BITS: u32 = 16;
/// Most bits of a linear weight or a tree leaf (signed, two's-complement range).
pub const MAX_PARAM_BITS: u32 = 32;
/// Most trees in an ensemble.
pub const MAX_TREES: usize = 64;
/// Deepest tree.
pub const MAX_DEPTH: u32 = 4;
/// Size limit for a model's JSON encoding.
pub const MAX_MODEL_JSON_BYTES: usize = 1 << 20;

/// A linear / logistic model: `score = Σ w_i·x_i + bias`, class `score >= threshold`.
///
/// A logistic model `σ(w·x + b) >= 1/2` is the linear model with `threshold = 0`;
/// other probability cut-offs `t` map to `threshold = round(logit(t) · scale)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinearModel {
    /// Integer weights, one per feature; each in `[-2^(weight_bits-1), 2^(weight_bits-1))`.
    pub weights: Vec<i64>,
    /// Integer bias (any `i64`).
    pub bias: i64,
    /// Decision threshold (any `i64`).
    pub threshold: i64,
}

/// One complete binary decision tree of the ensemble's depth `D`.
///
/// Internal nodes in breadth-first order (`2^D - 1` of them; node `i` has
/// children `2i + 1` (left) and `2i + 2` (right)); at a node go right iff
/// `x[feature] >= threshold`. Leaves left to right (`2^D`). A shallower tree is
/// padded to depth `D` by repeating a leaf under dummy splits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tree {
    /// Feature index of each internal node (`< n_features`).
    pub features: Vec<u32>,
    /// Threshold of each internal node, in `[0, 2^B]` (`2^B` = always left).
    pub thresholds: Vec<u32>,
    /// Leaf values, each in `[-2^(leaf_bits-1), 2^(leaf_bits-1))`.
    pub leaves: Vec<i64>,
}

/// A tree ensemble: `score = base + Σ_trees leaf`, class `score >= threshold`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeEnsemble {
    /// Depth of every tree (1..=4).
    pub depth: u32,
    /// The trees.
    pub trees: Vec<Tree>,
    /// Constant added to the sum of leaves (any `i64`).
    pub base: i64,
    /// Decision threshold (any `i64`).
    pub threshold: i64,
}

/// The two model kinds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModelKind {
    /// Linear / logistic.
    Linear(LinearModel),
    /// Tree ensemble.
    Trees(TreeEnsemble),
}

/// A quantized integer model: the data format shared with the FHE service.
///
/// JSON: `{"n_features": 30, "input_bits": 8, "param_bits": 16, "kind": "linear",
/// "weights": [..], "bias": .., "threshold": ..}` or with `"kind": "trees", "depth",
/// "trees": [{"features", "thresholds", "leaves"}], "base", "threshold"`.
/// `param_bits` bounds the weights (linear) or the leaves (trees).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Model {
    /// Number of input features `n`.
    pub n_features: usize,
    /// Bits per feature `B`: inputs are integers in `[0, 2^B)`.
    pub input_bits: u32,
    /// Bits of each weight / leaf (signed).
    pub param_bits: u32,
    /// The model itself.
    #[serde(flatten)]
    pub kind: ModelKind,
}

/// The part of a model fixed by a circuit (and so by its verifying key).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ModelShape {
    /// Number of features.
    pub n_features: usize,
    /// Bits per feature.
    pub input_bits: u32,
    /// Bits per weight / leaf.
    pub param_bits: u32,
    /// Linear or trees (with the ensemble's size).
    pub kind: ShapeKind,
}

/// Shape of the model kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ShapeKind {
    /// Linear model.
    Linear,
    /// Ensemble of `n_trees` trees of depth `depth`.
    Trees {
        /// Number of trees.
        n_trees: usize,
        /// Depth of each tree.
        depth: u32,
    },
}

fn check_signed(what: &'static str, v: i64, bits: u32) -> Result<()> {
    let half = 1i64 << (bits - 1);
    if v < -half || v >= half {
        return Err(Error::invalid(
            what,
            format!("{v} outside [-2^{}, 2^{})", bits - 1, bits - 1),
        ));
    }
    Ok(())
}

/// Offset-binary encoding of a signed value of `bits` bits.
fn offset(v: i64, bits: u32) -> u128 {
    (i128::from(v) + (1i128 << (bits - 1))) as u128
}

impl ModelShape {
    /// Checks the shape's own limits.
    pub fn validate(&self) -> Result<()> {
        if self.n_features == 0 || self.n_features > MAX_FEATURES {
            return Err(Error::invalid("model shape", "n_features must be 1..=64"));
        }
        if self.input_bits == 0 || self.input_bits > MAX_INPUT_BITS {
            return Err(Error::invalid("model shape", "input_bits must be 1..=16"));
        }
        if self.param_bits < 2 || self.param_bits > MAX_PARAM_BITS {
            return Err(Error::invalid("model shape", "param_bits must be 2..=32"));
        }
        if let ShapeKind::Trees { n_trees, depth } = self.kind {
            if n_trees == 0 || n_trees > MAX_TREES {
                return Err(Error::invalid("model shape", "n_trees must be 1..=64"));
            }
            if depth == 0 || depth > MAX_DEPTH {
                return Err(Error::invalid("model shape", "depth must be 1..=4"));
            }
        }
        Ok(())
    }

    /// Bits of a feature index (`⌈log2 n⌉`, at least 1).
    pub fn feature_index_bits(&self) -> usize {
        let mut b = 1;
        while (1usize << b) < self.n_features {
            b += 1;
        }
        b
    }

    /// Bits of a tree threshold (`B + 1`, thresholds go up to `2^B`).
    pub fn threshold_bits(&self) -> usize {
        self.input_bits as usize + 1
    }

    /// The shape descriptor hashed first into the model hash:
    /// `kind | n << 8 | B << 16 | param_bits << 24 | n_trees << 32 | depth << 48`.
    pub fn descriptor(&self) -> Fr {
        let (kind, trees, depth) = match self.kind {
            ShapeKind::Linear => (1u128, 0u128, 0u128),
            ShapeKind::Trees { n_trees, depth } => (2, n_trees as u128, u128::from(depth)),
        };
        Fr::from(
            kind | (self.n_features as u128) << 8
                | u128::from(self.input_bits) << 16
                | u128::from(self.param_bits) << 24
                | trees << 32
                | depth << 48,
        )
    }

    /// A model of this shape with every parameter zero (for circuit setup).
    pub fn blank_model(&self) -> Model {
        let kind = match self.kind {
            ShapeKind::Linear => ModelKind::Linear(LinearModel {
                weights: vec![0; self.n_features],
                bias: 0,
                threshold: 0,
            }),
            ShapeKind::Trees { n_trees, depth } => ModelKind::Trees(TreeEnsemble {
                depth,
                trees: vec![
                    Tree {
                        features: vec![0; (1 << depth) - 1],
                        thresholds: vec![0; (1 << depth) - 1],
                        leaves: vec![0; 1 << depth],
                    };
                    n_trees
                ],
                base: 0,
                threshold: 0,
            }),
        };
        Model {
            n_features: self.n_features,
            input_bits: self.input_bits,
            param_bits: self.param_bits,
            kind,
        }
    }
}

impl Model {
    /// Parses and validates a model from JSON (size-limited).
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_MODEL_JSON_BYTES {
            return Err(Error::TooLarge {
                what: "model JSON",
                len: bytes.len(),
                max: MAX_MODEL_JSON_BYTES,
            });
        }
        let m: Model = serde_json::from_slice(bytes).map_err(|e| Error::Decode {
            what: "model JSON",
            reason: e.to_string(),
        })?;
        m.validate()?;
        Ok(m)
    }

    /// The model as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The circuit shape this model needs.
    pub fn shape(&self) -> ModelShape {
        ModelShape {
            n_features: self.n_features,
            input_bits: self.input_bits,
            param_bits: self.param_bits,
            kind: match &self.kind {
                ModelKind::Linear(_) => ShapeKind::Linear,
                ModelKind::Trees(t) => ShapeKind::Trees {
                    n_trees: t.trees.len(),
                    depth: t.depth,
                },
            },
        }
    }

    /// Checks every parameter against the documented ranges.
    pub fn validate(&self) -> Result<()> {
        let shape = self.shape();
        shape.validate()?;
        match &self.kind {
            ModelKind::Linear(m) => {
                if m.weights.len() != self.n_features {
                    return Err(Error::invalid("linear model", "one weight per feature"));
                }
                for &w in &m.weights {
                    check_signed("linear weight", w, self.param_bits)?;
                }
            }
            ModelKind::Trees(e) => {
                let internal = (1usize << e.depth) - 1;
                for t in &e.trees {
                    if t.features.len() != internal
                        || t.thresholds.len() != internal
                        || t.leaves.len() != internal + 1
                    {
                        return Err(Error::invalid(
                            "tree",
                            format!(
                                "depth {} needs {internal} nodes and {} leaves",
                                e.depth,
                                internal + 1
                            ),
                        ));
                    }
                    if t.features.iter().any(|&f| f as usize >= self.n_features) {
                        return Err(Error::invalid("tree", "feature index out of range"));
                    }
                    if t.thresholds.iter().any(|&th| th > 1 << self.input_bits) {
                        return Err(Error::invalid("tree", "threshold above 2^input_bits"));
                    }
                    for &l in &t.leaves {
                        check_signed("tree leaf", l, self.param_bits)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Checks an input vector: `n` features, each `< 2^B`.
    pub fn validate_input(&self, x: &[u64]) -> Result<()> {
        if x.len() != self.n_features {
            return Err(Error::invalid(
                "input",
                format!("{} features, model takes {}", x.len(), self.n_features),
            ));
        }
        if x.iter().any(|&v| v >> self.input_bits != 0) {
            return Err(Error::invalid("input", "feature outside [0, 2^input_bits)"));
        }
        Ok(())
    }

    /// The integer score (`i128`, never overflows for valid models and inputs).
    pub fn score(&self, x: &[u64]) -> Result<i128> {
        self.validate()?;
        self.validate_input(x)?;
        Ok(match &self.kind {
            ModelKind::Linear(m) => {
                m.weights
                    .iter()
                    .zip(x)
                    .map(|(&w, &v)| i128::from(w) * i128::from(v))
                    .sum::<i128>()
                    + i128::from(m.bias)
            }
            ModelKind::Trees(e) => {
                let mut s = i128::from(e.base);
                for t in &e.trees {
                    let mut node = 0usize;
                    for _ in 0..e.depth {
                        let f = t.features[node] as usize;
                        let right = x[f] >= u64::from(t.thresholds[node]);
                        node = 2 * node + if right { 2 } else { 1 };
                    }
                    s += i128::from(t.leaves[node - ((1 << e.depth) - 1)]);
                }
                s
            }
        })
    }

    /// The predicted class: `1` iff `score >= threshold`.
    pub fn predict(&self, x: &[u64]) -> Result<u8> {
        let s = self.score(x)?;
        let th = match &self.kind {
            ModelKind::Linear(m) => m.threshold,
            ModelKind::Trees(e) => e.threshold,
        };
        Ok(u8::from(s >= i128::from(th)))
    }

    /// The packed fields hashed into the model hash, in order (value, width).
    pub(crate) fn hash_fields(&self) -> Vec<(u128, usize)> {
        let shape = self.shape();
        let p = self.param_bits;
        let mut fields = Vec::new();
        match &self.kind {
            ModelKind::Linear(m) => {
                for &w in &m.weights {
                    fields.push((offset(w, p), p as usize));
                }
                fields.push((offset(m.bias, 64), 64));
                fields.push((offset(m.threshold, 64), 64));
            }
            ModelKind::Trees(e) => {
                let fb = shape.feature_index_bits();
                let tb = shape.threshold_bits();
                for t in &e.trees {
                    for (&f, &th) in t.features.iter().zip(&t.thresholds) {
                        fields.push((u128::from(f) << tb | u128::from(th), fb + tb));
                    }
                    for &l in &t.leaves {
                        fields.push((offset(l, p), p as usize));
                    }
                }
                fields.push((offset(e.base, 64), 64));
                fields.push((offset(e.threshold, 64), 64));
            }
        }
        fields
    }

    /// `Poseidon(ModelHash; descriptor, packed parameters)`. Public input of the
    /// inference circuit; publish it with the model.
    pub fn hash(&self) -> Result<Fr> {
        self.validate()?;
        let mut elems = vec![self.shape().descriptor()];
        let packed = pack::pack_native(&self.hash_fields())
            .ok_or_else(|| Error::invalid("model", "parameter does not fit its width"))?;
        elems.extend(packed);
        Ok(poseidon::hash(Domain::ModelHash, &elems))
    }
}

/// An institution's private input: the features and the commitment's blinding.
/// Zeroized on drop; `Debug` hides it.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct PrivateInput {
    /// Quantized features, each `< 2^B`.
    pub features: Vec<u64>,
    /// Uniformly random blinding (hides the input in the commitment).
    pub blinding: Fr,
}

impl core::fmt::Debug for PrivateInput {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("PrivateInput(<hidden>)")
    }
}

impl PrivateInput {
    /// A private input with a fresh blinding from `rng`.
    pub fn new<R: rand_core::RngCore + rand_core::CryptoRng>(
        features: Vec<u64>,
        rng: &mut R,
    ) -> Self {
        use ark_ff::UniformRand;
        Self {
            features,
            blinding: Fr::rand(rng),
        }
    }
}

/// A Poseidon commitment to an input vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InputCommitment(pub Fr);

/// `Poseidon(InputCommitment; pack_B(x_1..x_n), blinding)` — the features packed
/// `B` bits each, little-endian, in chunks of 248 bits, then the blinding.
pub fn commit_input(input: &PrivateInput, input_bits: u32) -> Result<InputCommitment> {
    if input_bits == 0 || input_bits > MAX_INPUT_BITS {
        return Err(Error::invalid("input", "input_bits must be 1..=16"));
    }
    let fields: Vec<(u128, usize)> = input
        .features
        .iter()
        .map(|&v| (u128::from(v), input_bits as usize))
        .collect();
    let mut elems = pack::pack_native(&fields)
        .ok_or_else(|| Error::invalid("input", "feature outside [0, 2^input_bits)"))?;
    elems.push(input.blinding);
    Ok(InputCommitment(poseidon::hash(
        Domain::InputCommitment,
        &elems,
    )))
}
