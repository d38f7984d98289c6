//! Compiling a quantized model into an FHE evaluation plan: encodings, lookup tables, the
//! bootstrap schedule and the noise budget.
#![doc = include_str!("../docs/trees.md")]

use std::collections::HashMap;

use tfhe::core_crypto::prelude::{
    CiphertextModulus, GlweSize, PolynomialSize, generate_programmable_bootstrap_glwe_lut,
};
use tfhe::shortint::ciphertext::Degree;
use tfhe::shortint::server_key::LookupTableOwned;

use crate::error::{Error, Result};
use crate::model::{ModelKind, Node, QuantizedModel, Tree};
use crate::noise::NoiseReport;
use crate::params;

/// Deepest internal node with a leaf child that the tree evaluator accepts: the selector of
/// such a node has 2-norm sqrt(4d + 1), which must stay <= 5 (the parameter set's noise model).
pub const MAX_GROUP_DEPTH: usize = 6;

/// A quantized model prepared for encrypted evaluation. Cheap to share (`Arc`) between
/// threads; holds no key.
#[derive(Clone, Debug)]
pub struct FheModel {
    model: QuantizedModel,
    /// Scores are decoded in the window `[score_min, score_min + 2^output_bits)`.
    score_min: i64,
    noise: NoiseReport,
    pub(crate) plan: Plan,
}

#[derive(Clone, Debug)]
pub(crate) enum Plan {
    Linear {
        /// Weights as u64 (two's complement), multiplied into ciphertexts mod 2^64.
        weights: Vec<u64>,
        /// bias * Delta, added to the body.
        bias_encoded: u64,
    },
    Trees(TreePlan),
}

#[derive(Clone, Debug)]
pub(crate) struct TreePlan {
    /// Distinct (feature, threshold) comparisons, one bootstrap each.
    pub(crate) comparisons: Vec<Comparison>,
    /// One bootstrap each: selects and outputs the leaves below one internal node.
    pub(crate) groups: Vec<LeafGroup>,
    /// (bias + per-tree shifts) * Delta_out.
    pub(crate) bias_encoded: u64,
}

#[derive(Clone, Debug)]
pub(crate) struct Comparison {
    pub(crate) feature: usize,
    /// i -> [i > threshold] * 2^59, as a table and as a bootstrap accumulator.
    pub(crate) table: Table,
    pub(crate) lut: LookupTableOwned,
}

/// Output (torus value) of a lookup table for each of the 16 bootstrap input slots.
pub(crate) type Table = [u64; 16];

#[derive(Clone, Debug)]
pub(crate) struct LeafGroup {
    /// Conditions on the path from the root to the node: (comparison, went right).
    pub(crate) path: Vec<(usize, bool)>,
    /// The node's own comparison.
    pub(crate) comparison: usize,
    /// u -> leaf value * Delta_out for u = 2d (left leaf) and 2d + 1 (right leaf), else 0.
    pub(crate) table: Table,
    pub(crate) lut: LookupTableOwned,
}

fn lut_size() -> (PolynomialSize, GlweSize) {
    let p = params::block_parameters();
    (
        PolynomialSize(p.polynomial_size.0),
        GlweSize(p.glwe_dimension.0 + 1),
    )
}

/// A lookup table over the 16 bootstrap input slots with arbitrary torus outputs.
fn make_lut(table: Table, degree: u64) -> LookupTableOwned {
    let (n, glwe_size) = lut_size();
    let acc = generate_programmable_bootstrap_glwe_lut(
        n,
        glwe_size,
        table.len(),
        CiphertextModulus::new_native(),
        1u64,
        |i: u64| table.get(i as usize).copied().unwrap_or(0),
    );
    LookupTableOwned {
        acc,
        degree: Degree::new(degree),
    }
}

/// Smallest number of bits b with 2^b > width (at least 1).
fn bits_for_width(width: u128) -> u32 {
    (128 - width.leading_zeros()).max(1)
}

impl FheModel {
    /// Prepare `model` for encrypted evaluation. Fails when the model cannot be evaluated
    /// exactly with this crate's parameter set (score range too wide for the noise, inputs too
    /// wide for a bootstrap, trees too deep).
    pub fn compile(model: QuantizedModel) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidModel {
            model: model.name.clone(),
            reason,
        };
        let (lo, hi) = model.score_range();
        let width = (i128::from(hi) - i128::from(lo)) as u128;
        let output_bits = bits_for_width(width);
        if output_bits > 62 {
            return Err(invalid(format!("score range needs {output_bits} bits")));
        }
        let delta = 1u64 << (64 - output_bits);
        let (plan, noise) = match &model.kind {
            ModelKind::Linear(m) => {
                let noise = NoiseReport::linear(output_bits, m.l1_norm());
                let plan = Plan::Linear {
                    weights: m.weights.iter().map(|&w| w as u64).collect(),
                    bias_encoded: (m.bias as u64).wrapping_mul(delta),
                };
                (plan, noise)
            }
            ModelKind::TreeEnsemble(e) => {
                let pbs_bits = params::pbs_plaintext_modulus().trailing_zeros();
                if model.input_bits() > pbs_bits {
                    return Err(invalid(format!(
                        "tree inputs of {} bits; one bootstrap compares at most {pbs_bits} bits",
                        model.input_bits()
                    )));
                }
                let max_threshold = model.quantizer.max_level() as i64 - 1;
                let mut builder = TreeBuilder::new(delta, max_threshold);
                let mut bias = e.bias;
                for (t, tree) in e.trees.iter().enumerate() {
                    bias += builder
                        .add_tree(tree)
                        .map_err(|r| invalid(format!("tree {t}: {r}")))?;
                }
                let plan = builder.finish(bias);
                let noise = NoiseReport::trees(
                    output_bits,
                    plan.groups.len(),
                    plan.comparisons.len() + plan.groups.len(),
                );
                (Plan::Trees(plan), noise)
            }
        };
        if !noise.is_within_budget() {
            return Err(invalid(format!("noise budget exceeded: {noise:?}")));
        }
        Ok(Self {
            model,
            score_min: lo,
            noise,
            plan,
        })
    }

    /// The quantized model.
    pub fn model(&self) -> &QuantizedModel {
        &self.model
    }

    /// Model name.
    pub fn name(&self) -> &str {
        &self.model.name
    }

    /// Noise budget and bootstrap count.
    pub fn noise_report(&self) -> &NoiseReport {
        &self.noise
    }

    /// Bootstraps per encrypted inference (0 for linear models).
    pub fn bootstraps_per_inference(&self) -> usize {
        self.noise.bootstraps
    }

    /// Of those, how many are comparisons and how many leaf selections.
    pub fn bootstrap_breakdown(&self) -> (usize, usize) {
        match &self.plan {
            Plan::Linear { .. } => (0, 0),
            Plan::Trees(p) => (p.comparisons.len(), p.groups.len()),
        }
    }

    /// log2 of the scaling factor of the query's plaintexts: `64 - output_bits` for linear
    /// models (inputs are encoded at the result's scale), 59 for trees (bootstrap encoding).
    pub(crate) fn input_delta_log2(&self) -> u32 {
        match &self.plan {
            Plan::Linear { .. } => self.noise.log2_delta,
            Plan::Trees(_) => params::pbs_delta_log2(),
        }
    }

    /// Decode a decrypted phase into the integer score.
    pub(crate) fn decode_score(&self, phase: u64) -> i64 {
        let bits = self.noise.output_bits;
        let shift = 64 - bits;
        let half = 1u64 << (shift - 1);
        let modulus = 1i128 << bits;
        let v = i128::from(phase.wrapping_add(half) >> shift);
        let lo = i128::from(self.score_min);
        // Unique score in [lo, lo + 2^bits) congruent to v; inside i64 by construction.
        (lo + (v - lo).rem_euclid(modulus)) as i64
    }
    /// Run the encrypted evaluation's exact arithmetic (encodings, lookup tables, wrapping sums
    /// mod 2^64) on plaintexts, without encryption or noise, and decode the score. Equal to
    /// [`QuantizedModel::score`] for every input: a test checks it on all test rows.
    pub fn simulate(&self, q: &[u64]) -> Result<i64> {
        self.model.quantizer.check_quantized(q)?;
        let in_shift = self.input_delta_log2();
        let encoded: Vec<u64> = q.iter().map(|&x| x.wrapping_shl(in_shift)).collect();
        let phase = match &self.plan {
            Plan::Linear {
                weights,
                bias_encoded,
            } => weights
                .iter()
                .zip(&encoded)
                .fold(*bias_encoded, |acc, (w, x)| {
                    acc.wrapping_add(w.wrapping_mul(*x))
                }),
            Plan::Trees(plan) => {
                let slot = |phase: u64| (phase >> params::pbs_delta_log2()) as usize % 32;
                let lookup = |t: &Table, phase: u64| t.get(slot(phase)).copied().unwrap_or(0);
                let bits: Vec<u64> = plan
                    .comparisons
                    .iter()
                    .map(|c| lookup(&c.table, encoded[c.feature]))
                    .collect();
                let one = 1u64 << params::pbs_delta_log2();
                plan.groups.iter().fold(plan.bias_encoded, |acc, g| {
                    let u = g.path.iter().fold(bits[g.comparison], |u, &(c, right)| {
                        let cond = if right {
                            bits[c]
                        } else {
                            one.wrapping_sub(bits[c])
                        };
                        u.wrapping_add(cond.wrapping_mul(2))
                    });
                    acc.wrapping_add(lookup(&g.table, u))
                })
            }
        };
        Ok(self.decode_score(phase))
    }
}

// ------------------------------------------------------------------------------- trees

struct TreeBuilder {
    delta_out: u64,
    max_threshold: i64,
    comparisons: Vec<Comparison>,
    index: HashMap<(usize, i64), usize>,
    groups: Vec<LeafGroup>,
}

impl TreeBuilder {
    fn new(delta_out: u64, max_threshold: i64) -> Self {
        Self {
            delta_out,
            max_threshold,
            comparisons: vec![],
            index: HashMap::new(),
            groups: vec![],
        }
    }

    fn comparison(&mut self, feature: usize, threshold: i64) -> usize {
        if let Some(&i) = self.index.get(&(feature, threshold)) {
            return i;
        }
        let one = 1u64 << params::pbs_delta_log2();
        let table: Table = std::array::from_fn(|i| if i as i64 > threshold { one } else { 0 });
        let lut = make_lut(table, 1);
        self.comparisons.push(Comparison {
            feature,
            table,
            lut,
        });
        self.index
            .insert((feature, threshold), self.comparisons.len() - 1);
        self.comparisons.len() - 1
    }

    /// Add one tree; returns the constant it contributes to the bias.
    ///
    /// Every leaf value is shifted by the tree's most frequent leaf value `c` (exactly one leaf
    /// is reached, so the score is unchanged when `c` moves to the bias); leaves that become 0
    /// need no output, and a node whose leaf children are all 0 needs no bootstrap.
    fn add_tree(&mut self, tree: &Tree) -> std::result::Result<i64, String> {
        let shift = most_frequent_leaf(tree);
        if let Node::Leaf { value } = tree.nodes[0] {
            return Ok(value);
        }
        // Depth-first walk with the path of (node, went right).
        let mut stack: Vec<(usize, Vec<(usize, bool)>)> = vec![(0, vec![])];
        while let Some((i, path)) = stack.pop() {
            let Node::Split {
                feature,
                threshold,
                left,
                right,
            } = tree.nodes[i]
            else {
                continue;
            };
            if threshold < 0 || threshold > self.max_threshold {
                return Err(format!(
                    "node {i}: threshold {threshold} outside 0..={} (constant comparison)",
                    self.max_threshold
                ));
            }
            let leaf = |c: usize| match tree.nodes[c] {
                Node::Leaf { value } => Some(value - shift),
                Node::Split { .. } => None,
            };
            let (lv, rv) = (leaf(left).unwrap_or(0), leaf(right).unwrap_or(0));
            if lv != 0 || rv != 0 {
                let d = path.len();
                if d > MAX_GROUP_DEPTH {
                    return Err(format!(
                        "leaves below depth {} (max {})",
                        d + 1,
                        MAX_GROUP_DEPTH + 1
                    ));
                }
                let path_cmp: Vec<(usize, bool)> = path
                    .iter()
                    .map(|&(n, right)| match tree.nodes[n] {
                        Node::Split {
                            feature, threshold, ..
                        } => (self.comparison(feature, threshold), right),
                        Node::Leaf { .. } => (usize::MAX, right), // unreachable: paths hold splits
                    })
                    .collect();
                let own = self.comparison(feature, threshold);
                let mut table: Table = [0; 16];
                table[2 * d] = (lv as u64).wrapping_mul(self.delta_out);
                table[2 * d + 1] = (rv as u64).wrapping_mul(self.delta_out);
                let lut = make_lut(table, 2 * d as u64 + 1);
                self.groups.push(LeafGroup {
                    path: path_cmp,
                    comparison: own,
                    table,
                    lut,
                });
            }
            for (child, went_right) in [(left, false), (right, true)] {
                if matches!(tree.nodes[child], Node::Split { .. }) {
                    let mut p = path.clone();
                    p.push((i, went_right));
                    stack.push((child, p));
                }
            }
        }
        Ok(shift)
    }

    fn finish(self, bias: i64) -> TreePlan {
        TreePlan {
            comparisons: self.comparisons,
            groups: self.groups,
            bias_encoded: (bias as u64).wrapping_mul(self.delta_out),
        }
    }
}

/// Most frequent leaf value (smallest on ties).
fn most_frequent_leaf(tree: &Tree) -> i64 {
    let mut counts: HashMap<i64, usize> = HashMap::new();
    for n in &tree.nodes {
        if let Node::Leaf { value } = n {
            *counts.entry(*value).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
        .map_or(0, |(v, _)| v)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::dataset::BreastCancer;
    use crate::model::{LinearModel, TreeEnsemble, builtin_model};

    fn compiled(name: &str) -> FheModel {
        FheModel::compile(builtin_model(name).unwrap()).unwrap()
    }

    #[test]
    fn simulated_encrypted_arithmetic_equals_the_model_on_every_row() {
        let data = BreastCancer::load().unwrap();
        for name in crate::model::MODEL_NAMES {
            let m = compiled(name);
            for row in &data.features {
                let q = m.model().quantizer.quantize(row).unwrap();
                assert_eq!(
                    m.simulate(&q).unwrap(),
                    m.model().score(&q).unwrap(),
                    "{name}"
                );
            }
        }
    }

    #[test]
    fn accumulators_hold_the_tables() {
        let m = compiled("breast-cancer-gbt");
        let Plan::Trees(plan) = &m.plan else {
            panic!("trees")
        };
        let n = params::block_parameters().polynomial_size.0;
        let box_size = n / 16;
        let tables = plan
            .comparisons
            .iter()
            .map(|c| (&c.table, &c.lut))
            .chain(plan.groups.iter().map(|g| (&g.table, &g.lut)));
        for (table, lut) in tables {
            let body = lut.acc.get_body();
            let body = body.as_ref();
            for (i, v) in table.iter().enumerate() {
                assert_eq!(body[i * box_size], *v);
            }
            // the mask of a lookup table is zero (trivial GLWE)
            assert!(lut.acc.get_mask().as_ref().iter().all(|&x| x == 0));
        }
        assert_eq!(params::pbs_plaintext_modulus(), 16);
    }

    #[test]
    fn shipped_models_compile_with_expected_budgets() {
        let lr = compiled("breast-cancer-logreg");
        assert_eq!(lr.bootstraps_per_inference(), 0);
        assert_eq!(lr.noise_report().output_bits, 21);
        assert!(matches!(
            lr.noise_report().bound,
            crate::noise::NoiseBound::Deterministic { log2_bound, log2_half_delta }
                if log2_half_delta - log2_bound > 12.0
        ));
        let gbt = compiled("breast-cancer-gbt");
        assert_eq!(gbt.noise_report().output_bits, 6);
        let (cmp, groups) = gbt.bootstrap_breakdown();
        assert_eq!(cmp + groups, gbt.bootstraps_per_inference());
        // 20 depth-3 trees: at most 45 distinct comparisons and 80 leaf groups
        assert!(cmp <= 45 && (20..=80).contains(&groups), "{cmp} {groups}");
        assert!(gbt.noise_report().log2_p_fail_inference < -120.0);
    }

    #[test]
    fn decode_picks_the_window_representative() {
        let m = compiled("breast-cancer-gbt");
        let (lo, hi) = m.model().score_range();
        let delta_log2 = 64 - m.noise_report().output_bits;
        for s in lo..=hi {
            let phase = (s as u64).wrapping_shl(delta_log2);
            assert_eq!(m.decode_score(phase), s);
            // noise just under Delta/2 either way still decodes
            let near = (1u64 << (delta_log2 - 1)) - 1;
            assert_eq!(m.decode_score(phase.wrapping_add(near)), s);
            assert_eq!(m.decode_score(phase.wrapping_sub(near)), s);
        }
    }

    #[test]
    fn refuses_models_it_cannot_evaluate_exactly() {
        // 5-bit tree inputs do not fit one bootstrap
        let mut m = builtin_model("breast-cancer-gbt").unwrap();
        m.quantizer.bits = 5;
        assert!(matches!(
            FheModel::compile(m),
            Err(Error::InvalidModel { .. })
        ));
        // thresholds that make a comparison constant
        let mut m = builtin_model("breast-cancer-gbt").unwrap();
        if let ModelKind::TreeEnsemble(TreeEnsemble { trees, .. }) = &mut m.kind
            && let Node::Split { threshold, .. } = &mut trees[0].nodes[0]
        {
            *threshold = 15;
        }
        assert!(matches!(
            FheModel::compile(m),
            Err(Error::InvalidModel { .. })
        ));
        // a linear model whose weights amplify noise past Delta/2
        let mut m = builtin_model("breast-cancer-logreg").unwrap();
        m.kind = ModelKind::Linear(LinearModel {
            weights: vec![1 << 30; 30],
            bias: 0,
        });
        let err = FheModel::compile(m).unwrap_err();
        assert!(err.to_string().contains("noise budget"), "{err}");
    }

    #[test]
    fn shifted_leaves_skip_all_zero_groups() {
        // one tree, all leaves equal: a constant, no bootstrap at all
        let mut m = builtin_model("breast-cancer-gbt").unwrap();
        let tree = Tree {
            nodes: vec![
                Node::Split {
                    feature: 0,
                    threshold: 3,
                    left: 1,
                    right: 2,
                },
                Node::Leaf { value: 5 },
                Node::Leaf { value: 5 },
            ],
        };
        m.kind = ModelKind::TreeEnsemble(TreeEnsemble {
            trees: vec![tree],
            bias: -2,
        });
        let f = FheModel::compile(m).unwrap();
        assert_eq!(f.bootstraps_per_inference(), 0);
        assert_eq!(f.simulate(&[0; 30]).unwrap(), 3);
    }
}
