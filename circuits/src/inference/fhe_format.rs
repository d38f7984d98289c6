//! Conversion from `crypto/fhe`'s quantized model files
//! (`veilgrid-quantized-model/v1`, e.g. `crypto/fhe/models/*.quant.json`) into
//! this crate's [`Model`], parsed independently of that crate (no dependency on
//! tfhe): the two crates agree on the file, and `tests/fhe_models.rs` checks that
//! both give the same score and class on every held-out test row.
//!
//! Mapping: FHE class 1 iff `score > 0` becomes `threshold = 1` (`score >= 1`);
//! "go right iff `q[f] > t`" becomes our "right iff `q[f] >= t + 1`", clamped to
//! `[0, 2^B]` (`t + 1 <= 0`: always right; `t + 1 >= 2^B`: always left); trees of any
//! shape up to depth 4 are padded to complete trees (a leaf above the bottom level
//! is repeated under dummy splits); `param_bits` is the smallest width holding
//! every weight or leaf; the FHE bias becomes `bias` / `base`.

use super::model::{
    LinearModel, MAX_DEPTH, MAX_MODEL_JSON_BYTES, MAX_PARAM_BITS, Model, ModelKind, Tree,
    TreeEnsemble,
};
use crate::{Error, Result};
use serde::Deserialize;

/// The format tag this converter reads.
pub const QUANTIZED_V1: &str = "veilgrid-quantized-model/v1";

#[derive(Deserialize)]
struct Quantizer {
    bits: u32,
}

#[derive(Deserialize)]
struct Linear {
    weights: Vec<i64>,
    bias: i64,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Node {
    Split {
        feature: usize,
        threshold: i64,
        left: usize,
        right: usize,
    },
    Leaf {
        value: i64,
    },
}

#[derive(Deserialize)]
struct NodeTree {
    nodes: Vec<Node>,
}

#[derive(Deserialize)]
struct File {
    format: String,
    kind: String,
    n_features: usize,
    quantizer: Quantizer,
    linear: Option<Linear>,
    trees: Option<Vec<NodeTree>>,
    bias: Option<i64>,
}

fn bits_for(values: impl Iterator<Item = i64>) -> Result<u32> {
    let mut bits = 2u32;
    for v in values {
        while bits <= MAX_PARAM_BITS && (v < -(1i64 << (bits - 1)) || v >= 1i64 << (bits - 1)) {
            bits += 1;
        }
    }
    if bits > MAX_PARAM_BITS {
        return Err(Error::invalid(
            "quantized model",
            "a weight or leaf needs more than 32 bits",
        ));
    }
    Ok(bits)
}

fn depth_of(t: &NodeTree, i: usize, d: u32) -> Result<u32> {
    if d > MAX_DEPTH {
        return Err(Error::invalid("quantized model", "tree deeper than 4"));
    }
    match t.nodes.get(i) {
        None => Err(Error::invalid(
            "quantized model",
            "child index out of range",
        )),
        Some(Node::Leaf { .. }) => Ok(d),
        Some(Node::Split { left, right, .. }) => {
            Ok(depth_of(t, *left, d + 1)?.max(depth_of(t, *right, d + 1)?))
        }
    }
}

struct Filler<'a> {
    src: &'a NodeTree,
    depth: u32,
    input_bits: u32,
    n_features: usize,
    out: Tree,
}

impl Filler<'_> {
    /// Fills the complete-tree slot `pos` at `level` from source node `i`.
    fn fill(&mut self, i: usize, level: u32, pos: usize) -> Result<()> {
        let node = self
            .src
            .nodes
            .get(i)
            .ok_or_else(|| Error::invalid("quantized model", "child index out of range"))?;
        if level == self.depth {
            return match node {
                Node::Leaf { value } => {
                    self.out.leaves[pos] = *value;
                    Ok(())
                }
                Node::Split { .. } => Err(Error::invalid("quantized model", "tree too deep")),
            };
        }
        let idx = (1usize << level) - 1 + pos;
        match node {
            Node::Split {
                feature,
                threshold,
                left,
                right,
            } => {
                if *feature >= self.n_features {
                    return Err(Error::invalid(
                        "quantized model",
                        "feature index out of range",
                    ));
                }
                let max = 1i64 << self.input_bits;
                self.out.features[idx] = *feature as u32;
                self.out.thresholds[idx] = threshold.saturating_add(1).clamp(0, max) as u32;
                self.fill(*left, level + 1, 2 * pos)?;
                self.fill(*right, level + 1, 2 * pos + 1)
            }
            Node::Leaf { .. } => {
                // dummy split (always right), the leaf repeated below
                self.out.features[idx] = 0;
                self.out.thresholds[idx] = 0;
                self.fill(i, level + 1, 2 * pos)?;
                self.fill(i, level + 1, 2 * pos + 1)
            }
        }
    }
}

impl Model {
    /// Converts a `veilgrid-quantized-model/v1` file (size-limited) into a [`Model`].
    pub fn from_quantized_v1_json(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_MODEL_JSON_BYTES {
            return Err(Error::TooLarge {
                what: "quantized model file",
                len: bytes.len(),
                max: MAX_MODEL_JSON_BYTES,
            });
        }
        let f: File = serde_json::from_slice(bytes).map_err(|e| Error::Decode {
            what: "quantized model file",
            reason: e.to_string(),
        })?;
        if f.format != QUANTIZED_V1 {
            return Err(Error::invalid(
                "quantized model",
                format!("format {:?}", f.format),
            ));
        }
        let input_bits = f.quantizer.bits;
        let model = match (f.kind.as_str(), f.linear, f.trees) {
            ("linear", Some(l), _) => Model {
                n_features: f.n_features,
                input_bits,
                param_bits: bits_for(l.weights.iter().copied())?,
                kind: ModelKind::Linear(LinearModel {
                    weights: l.weights,
                    bias: l.bias,
                    threshold: 1,
                }),
            },
            ("tree_ensemble", _, Some(trees)) => {
                let mut depth = 1;
                for t in &trees {
                    depth = depth.max(depth_of(t, 0, 0)?);
                }
                let leaves = trees.iter().flat_map(|t| {
                    t.nodes.iter().filter_map(|n| match n {
                        Node::Leaf { value } => Some(*value),
                        Node::Split { .. } => None,
                    })
                });
                let param_bits = bits_for(leaves)?;
                let internal = (1usize << depth) - 1;
                let mut out = Vec::with_capacity(trees.len());
                for t in &trees {
                    let mut filler = Filler {
                        src: t,
                        depth,
                        input_bits,
                        n_features: f.n_features,
                        out: Tree {
                            features: vec![0; internal],
                            thresholds: vec![0; internal],
                            leaves: vec![0; internal + 1],
                        },
                    };
                    filler.fill(0, 0, 0)?;
                    out.push(filler.out);
                }
                Model {
                    n_features: f.n_features,
                    input_bits,
                    param_bits,
                    kind: ModelKind::Trees(TreeEnsemble {
                        depth,
                        trees: out,
                        base: f.bias.unwrap_or(0),
                        threshold: 1,
                    }),
                }
            }
            (kind, _, _) => {
                return Err(Error::invalid(
                    "quantized model",
                    format!("kind {kind:?} without its parameters"),
                ));
            }
        };
        model.validate()?;
        Ok(model)
    }
}
