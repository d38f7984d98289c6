//! The float models the quantized ones were derived from (for accuracy comparisons only).

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::params::MAX_MODEL_JSON_BYTES;

/// File format tag of float models.
pub const FLOAT_FORMAT: &str = "veilgrid-float-model/v1";

/// One node of a float tree.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum FloatNode {
    /// Go to `right` iff `x[feature] > threshold`.
    Split {
        /// Feature index.
        feature: usize,
        /// Threshold on the raw feature.
        threshold: f64,
        /// Child when `x[feature] <= threshold`.
        left: usize,
        /// Child when `x[feature] > threshold`.
        right: usize,
    },
    /// Leaf contribution (learning rate already applied).
    Leaf {
        /// Contribution.
        value: f64,
    },
}

/// A float tree; node 0 is the root.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct FloatTree {
    /// Nodes.
    pub nodes: Vec<FloatNode>,
}

/// What the float model computes on raw features.
#[derive(Clone, Debug, PartialEq)]
pub enum FloatModelKind {
    /// `w . x + b`.
    Linear {
        /// Weights on raw features (standardization folded in).
        weights: Vec<f64>,
        /// Bias.
        bias: f64,
    },
    /// `bias + sum of reached leaves`.
    TreeEnsemble {
        /// Trees.
        trees: Vec<FloatTree>,
        /// Initial raw prediction.
        bias: f64,
    },
}

/// A float model on raw features.
#[derive(Clone, Debug, PartialEq)]
pub struct FloatModel {
    /// Model name (same as the quantized model's).
    pub name: String,
    /// Number of raw features.
    pub n_features: usize,
    /// The computation.
    pub kind: FloatModelKind,
    /// Accuracy recorded by the training script on the test rows.
    pub test_accuracy: Option<f64>,
}

#[derive(Deserialize)]
struct RawLinear {
    weights: Vec<f64>,
    bias: f64,
}

#[derive(Deserialize)]
struct RawMetrics {
    test_accuracy: f64,
}

#[derive(Deserialize)]
struct RawFloat {
    format: String,
    name: String,
    n_features: usize,
    linear: Option<RawLinear>,
    trees: Option<Vec<FloatTree>>,
    bias: Option<f64>,
    metrics: Option<RawMetrics>,
}

impl FloatModel {
    /// Parse a float model file (`veilgrid-float-model/v1`).
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_MODEL_JSON_BYTES {
            return Err(Error::TooLarge {
                what: "model file",
                len: bytes.len(),
                max: MAX_MODEL_JSON_BYTES,
            });
        }
        let raw: RawFloat =
            serde_json::from_slice(bytes).map_err(|e| Error::ModelFormat(e.to_string()))?;
        let invalid = |reason: &str| Error::InvalidModel {
            model: raw.name.clone(),
            reason: reason.to_string(),
        };
        if raw.format != FLOAT_FORMAT {
            return Err(invalid("not a veilgrid-float-model/v1 file"));
        }
        let kind = match (raw.linear, raw.trees) {
            (Some(l), None) if l.weights.len() == raw.n_features => FloatModelKind::Linear {
                weights: l.weights,
                bias: l.bias,
            },
            (None, Some(trees)) => {
                for t in &trees {
                    check_float_tree(t, raw.n_features).map_err(|e| invalid(&e))?;
                }
                FloatModelKind::TreeEnsemble {
                    trees,
                    bias: raw.bias.unwrap_or(0.0),
                }
            }
            _ => {
                return Err(invalid(
                    "needs `linear` with n_features weights, or `trees`",
                ));
            }
        };
        Ok(Self {
            name: raw.name,
            n_features: raw.n_features,
            kind,
            test_accuracy: raw.metrics.map(|m| m.test_accuracy),
        })
    }

    /// Raw score on raw features.
    pub fn score(&self, x: &[f64]) -> Result<f64> {
        if x.len() != self.n_features {
            return Err(Error::InputLength {
                expected: self.n_features,
                got: x.len(),
            });
        }
        Ok(match &self.kind {
            FloatModelKind::Linear { weights, bias } => {
                weights.iter().zip(x).map(|(w, v)| w * v).sum::<f64>() + bias
            }
            FloatModelKind::TreeEnsemble { trees, bias } => {
                bias + trees.iter().map(|t| float_leaf(t, x)).sum::<f64>()
            }
        })
    }

    /// Class 1 iff score > 0.
    pub fn predict(&self, x: &[f64]) -> Result<usize> {
        Ok(usize::from(self.score(x)? > 0.0))
    }
}

fn check_float_tree(t: &FloatTree, n_features: usize) -> std::result::Result<(), String> {
    let n = t.nodes.len();
    if n == 0 || n > super::tree::MAX_NODES_PER_TREE {
        return Err("bad tree size".into());
    }
    let mut seen = vec![false; n];
    let mut stack = vec![(0usize, 0usize)];
    while let Some((i, d)) = stack.pop() {
        if i >= n || seen[i] || d > super::tree::MAX_PLAINTEXT_DEPTH {
            return Err("malformed tree".into());
        }
        seen[i] = true;
        if let FloatNode::Split {
            feature,
            left,
            right,
            ..
        } = &t.nodes[i]
        {
            if *feature >= n_features {
                return Err("feature out of range".into());
            }
            stack.push((*left, d + 1));
            stack.push((*right, d + 1));
        }
    }
    Ok(())
}

fn float_leaf(t: &FloatTree, x: &[f64]) -> f64 {
    let mut i = 0;
    for _ in 0..=super::tree::MAX_PLAINTEXT_DEPTH {
        match &t.nodes[i] {
            FloatNode::Leaf { value } => return *value,
            FloatNode::Split {
                feature,
                threshold,
                left,
                right,
            } => {
                // sklearn compares float32 features with the threshold.
                let v = f64::from(x[*feature] as f32);
                i = if v > *threshold { *right } else { *left };
            }
        }
    }
    0.0
}
