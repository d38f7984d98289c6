//! Integer tree ensembles: `score = bias + sum over trees of the reached leaf`.

use serde::{Deserialize, Serialize};

/// Largest number of nodes in one tree.
pub const MAX_NODES_PER_TREE: usize = 1 << 12;
/// Largest number of trees.
pub const MAX_TREES: usize = 4096;
/// Largest depth accepted by the plaintext model (the FHE evaluator is stricter).
pub const MAX_PLAINTEXT_DEPTH: usize = 32;
/// Largest |leaf value| and |bias|.
pub const MAX_ABS_VALUE: i64 = 1 << 40;

/// One node: a split on a quantized feature, or a leaf.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Node {
    /// Go to `right` iff `q[feature] > threshold`, else to `left`.
    Split {
        /// Feature index.
        feature: usize,
        /// Integer threshold.
        threshold: i64,
        /// Node index when `q[feature] <= threshold`.
        left: usize,
        /// Node index when `q[feature] > threshold`.
        right: usize,
    },
    /// A leaf with its integer contribution to the score.
    Leaf {
        /// Contribution.
        value: i64,
    },
}

/// A binary tree stored as a node list; node 0 is the root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tree {
    /// Nodes; children are indices into this list.
    pub nodes: Vec<Node>,
}

/// Sum of trees plus a bias.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeEnsemble {
    /// The trees.
    pub trees: Vec<Tree>,
    /// Added to the sum of leaves.
    pub bias: i64,
}

impl Tree {
    /// Validate structure: every node reached exactly once from the root (no cycles, no sharing,
    /// no orphans), children in range, features in range, depth bounded. Returns the depth.
    pub(crate) fn validate(&self, n_features: usize) -> std::result::Result<usize, String> {
        let n = self.nodes.len();
        if n == 0 || n > MAX_NODES_PER_TREE {
            return Err(format!(
                "tree has {n} nodes (allowed 1..={MAX_NODES_PER_TREE})"
            ));
        }
        let mut seen = vec![false; n];
        let mut stack = vec![(0usize, 0usize)];
        let mut depth = 0;
        while let Some((i, d)) = stack.pop() {
            if i >= n {
                return Err(format!("child index {i} out of range"));
            }
            if seen[i] {
                return Err(format!("node {i} reached twice"));
            }
            seen[i] = true;
            depth = depth.max(d);
            if d > MAX_PLAINTEXT_DEPTH {
                return Err(format!("deeper than {MAX_PLAINTEXT_DEPTH}"));
            }
            match &self.nodes[i] {
                Node::Split {
                    feature,
                    left,
                    right,
                    ..
                } => {
                    if *feature >= n_features {
                        return Err(format!("node {i} splits on feature {feature}"));
                    }
                    stack.push((*left, d + 1));
                    stack.push((*right, d + 1));
                }
                Node::Leaf { value } => {
                    if value.abs() > MAX_ABS_VALUE {
                        return Err(format!("|leaf {i}| exceeds 2^40"));
                    }
                }
            }
        }
        if let Some(i) = seen.iter().position(|s| !s) {
            return Err(format!("node {i} unreachable from the root"));
        }
        Ok(depth)
    }

    /// The value of the leaf reached by `q` (inputs already checked, tree validated).
    pub fn leaf_value(&self, q: &[u64]) -> i64 {
        let mut i = 0;
        // A validated tree reaches a leaf within MAX_PLAINTEXT_DEPTH steps.
        for _ in 0..=MAX_PLAINTEXT_DEPTH {
            match &self.nodes[i] {
                Node::Leaf { value } => return *value,
                Node::Split {
                    feature,
                    threshold,
                    left,
                    right,
                } => {
                    i = if q[*feature] as i64 > *threshold {
                        *right
                    } else {
                        *left
                    };
                }
            }
        }
        0
    }

    /// Smallest and largest leaf value.
    pub fn leaf_range(&self) -> (i64, i64) {
        let leaves = self.nodes.iter().filter_map(|n| match n {
            Node::Leaf { value } => Some(*value),
            Node::Split { .. } => None,
        });
        leaves.fold((i64::MAX, i64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)))
    }
}

impl TreeEnsemble {
    /// Validate all trees; returns the largest depth.
    pub(crate) fn validate(&self, n_features: usize) -> std::result::Result<usize, String> {
        if self.trees.is_empty() || self.trees.len() > MAX_TREES {
            return Err(format!(
                "{} trees (allowed 1..={MAX_TREES})",
                self.trees.len()
            ));
        }
        if self.bias.abs() > MAX_ABS_VALUE {
            return Err("|bias| exceeds 2^40".into());
        }
        let mut depth = 0;
        for (t, tree) in self.trees.iter().enumerate() {
            depth = depth.max(
                tree.validate(n_features)
                    .map_err(|e| format!("tree {t}: {e}"))?,
            );
        }
        Ok(depth)
    }

    /// The integer score on quantized inputs.
    pub fn score(&self, q: &[u64]) -> i64 {
        self.bias + self.trees.iter().map(|t| t.leaf_value(q)).sum::<i64>()
    }

    /// Smallest and largest score (sum of per-tree extremes, a tight bound for independent trees
    /// and an upper bound in general).
    pub fn score_range(&self) -> (i64, i64) {
        self.trees
            .iter()
            .fold((self.bias, self.bias), |(lo, hi), t| {
                let (a, b) = t.leaf_range();
                (lo + a, hi + b)
            })
    }
}
