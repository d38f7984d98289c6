//! Quantized integer models (what the FHE evaluator and the Groth16 circuits compute) and the
//! float models they were derived from.
#![doc = include_str!("../../docs/quantization.md")]

mod builtin;
mod float;
mod linear;
mod quantizer;
mod tree;

pub use builtin::{MODEL_NAMES, builtin_float_model, builtin_model, builtin_models};
pub use float::{FLOAT_FORMAT, FloatModel, FloatModelKind, FloatNode, FloatTree};
pub use linear::{LinearModel, MAX_ABS_BIAS, MAX_ABS_WEIGHT};
pub use quantizer::Quantizer;
pub use tree::{
    MAX_ABS_VALUE, MAX_NODES_PER_TREE, MAX_PLAINTEXT_DEPTH, MAX_TREES, Node, Tree, TreeEnsemble,
};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::params::MAX_MODEL_JSON_BYTES;

/// File format tag of quantized models.
pub const QUANTIZED_FORMAT: &str = "veilgrid-quantized-model/v1";

/// What a quantized model computes from the quantized inputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelKind {
    /// `score = weights . q + bias`.
    Linear(LinearModel),
    /// `score = bias + sum of reached leaves`.
    TreeEnsemble(TreeEnsemble),
}

/// Numbers the training script recorded on the held-out split (cross-checked by tests).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelMetrics {
    /// Accuracy of this quantized model on the test rows.
    pub test_accuracy: f64,
    /// Accuracy of the float model on the same rows.
    pub float_test_accuracy: f64,
    /// Predicted class per test row, in `split.json` order.
    pub test_predictions: Vec<usize>,
    /// Integer score per test row.
    pub test_scores: Vec<i64>,
}

/// A prediction computed in the clear.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlainPrediction {
    /// Class index as in the dataset's labels (here 0 = malignant, 1 = benign).
    pub class: usize,
    /// Integer score; class 1 iff score > 0.
    pub score: i64,
}

/// A quantized binary classifier over unsigned B-bit inputs.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantizedModel {
    /// Model name, e.g. `breast-cancer-logreg`.
    pub name: String,
    /// Class names, index = label.
    pub classes: Vec<String>,
    /// Feature names, in input order.
    pub feature_names: Vec<String>,
    /// Raw-to-integer input quantizer.
    pub quantizer: Quantizer,
    /// The integer computation.
    pub kind: ModelKind,
    /// Recorded evaluation numbers, if the file has them.
    pub metrics: Option<ModelMetrics>,
}

#[derive(Deserialize)]
struct RawModel {
    format: String,
    name: String,
    kind: String,
    classes: Vec<String>,
    n_features: usize,
    #[serde(default)]
    feature_names: Vec<String>,
    quantizer: Quantizer,
    linear: Option<LinearModel>,
    trees: Option<Vec<Tree>>,
    bias: Option<i64>,
    metrics: Option<ModelMetrics>,
}

/// Largest number of input features.
pub const MAX_FEATURES: usize = 4096;

impl QuantizedModel {
    /// Parse and validate a quantized model file (JSON, format `veilgrid-quantized-model/v1`).
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_MODEL_JSON_BYTES {
            return Err(Error::TooLarge {
                what: "model file",
                len: bytes.len(),
                max: MAX_MODEL_JSON_BYTES,
            });
        }
        let raw: RawModel =
            serde_json::from_slice(bytes).map_err(|e| Error::ModelFormat(e.to_string()))?;
        let invalid = |reason: String| Error::InvalidModel {
            model: raw.name.clone(),
            reason,
        };
        if raw.format != QUANTIZED_FORMAT {
            return Err(invalid(format!(
                "format {:?}, expected {QUANTIZED_FORMAT:?}",
                raw.format
            )));
        }
        if raw.classes.len() != 2 {
            return Err(invalid(format!(
                "{} classes; only binary models",
                raw.classes.len()
            )));
        }
        if raw.n_features == 0 || raw.n_features > MAX_FEATURES {
            return Err(invalid(format!("{} features", raw.n_features)));
        }
        if raw.quantizer.len() != raw.n_features {
            return Err(invalid("quantizer length differs from n_features".into()));
        }
        if !raw.feature_names.is_empty() && raw.feature_names.len() != raw.n_features {
            return Err(invalid(
                "feature_names length differs from n_features".into(),
            ));
        }
        raw.quantizer.validate().map_err(&invalid)?;
        let kind = match (raw.kind.as_str(), &raw.linear, &raw.trees) {
            ("linear", Some(linear), None) => {
                linear.validate(raw.n_features).map_err(&invalid)?;
                ModelKind::Linear(linear.clone())
            }
            ("tree_ensemble", None, Some(trees)) => {
                let ensemble = TreeEnsemble {
                    trees: trees.clone(),
                    bias: raw.bias.unwrap_or(0),
                };
                ensemble.validate(raw.n_features).map_err(&invalid)?;
                ModelKind::TreeEnsemble(ensemble)
            }
            (kind, _, _) => {
                return Err(invalid(format!(
                    "kind {kind:?} needs exactly one of `linear` (linear) or `trees` (tree_ensemble)"
                )));
            }
        };
        let feature_names = if raw.feature_names.is_empty() {
            (0..raw.n_features).map(|i| format!("x{i}")).collect()
        } else {
            raw.feature_names
        };
        Ok(Self {
            name: raw.name,
            classes: raw.classes,
            feature_names,
            quantizer: raw.quantizer,
            kind,
            metrics: raw.metrics,
        })
    }

    /// Number of input features.
    pub fn n_features(&self) -> usize {
        self.quantizer.len()
    }

    /// Number of classes (always 2 for now).
    pub fn n_classes(&self) -> usize {
        self.classes.len()
    }

    /// Bits per quantized input.
    pub fn input_bits(&self) -> u32 {
        self.quantizer.bits
    }

    /// Decision rule shared by every model and the circuits: class 1 iff score > 0.
    pub fn class_of(score: i64) -> usize {
        usize::from(score > 0)
    }

    /// Integer score of already-quantized inputs (checked: length and range).
    pub fn score(&self, q: &[u64]) -> Result<i64> {
        self.quantizer.check_quantized(q)?;
        Ok(match &self.kind {
            ModelKind::Linear(m) => m.score(q),
            ModelKind::TreeEnsemble(m) => m.score(q),
        })
    }

    /// Quantize raw features and predict in the clear.
    pub fn predict(&self, raw: &[f64]) -> Result<PlainPrediction> {
        let q = self.quantizer.quantize(raw)?;
        let score = self.score(&q)?;
        Ok(PlainPrediction {
            class: Self::class_of(score),
            score,
        })
    }

    /// Smallest and largest possible score.
    pub fn score_range(&self) -> (i64, i64) {
        match &self.kind {
            ModelKind::Linear(m) => m.score_range(self.quantizer.max_level()),
            ModelKind::TreeEnsemble(m) => m.score_range(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::dataset::BreastCancer;

    #[test]
    fn rust_reproduces_the_training_script_on_the_test_rows() {
        let data = BreastCancer::load().unwrap();
        assert_eq!(
            (data.features.len(), data.n_features(), data.test_rows.len()),
            (569, 30, 114)
        );
        for name in MODEL_NAMES {
            let m = builtin_model(name).unwrap();
            let metrics = m.metrics.clone().unwrap();
            let mut correct = 0;
            for (k, (_, x, label)) in data.test_set().enumerate() {
                let p = m.predict(x).unwrap();
                assert_eq!(p.score, metrics.test_scores[k], "{name} row {k}");
                assert_eq!(p.class, metrics.test_predictions[k], "{name} row {k}");
                correct += usize::from(p.class == label);
            }
            let acc = correct as f64 / data.test_rows.len() as f64;
            assert!((acc - metrics.test_accuracy).abs() < 1e-12, "{name}: {acc}");
            // float model: same accuracy as recorded, and quantized within 1 point of it
            let f = builtin_float_model(name).unwrap();
            let fcorrect = data
                .test_set()
                .filter(|(_, x, l)| f.predict(x).unwrap() == *l)
                .count();
            let facc = fcorrect as f64 / data.test_rows.len() as f64;
            assert!(
                (facc - metrics.float_test_accuracy).abs() < 1e-12,
                "{name}: float {facc}"
            );
            assert!(
                (acc - facc).abs() <= 0.01,
                "{name}: quantized {acc} vs float {facc}"
            );
        }
    }

    fn tiny(trees: &str) -> String {
        format!(
            r#"{{"format":"veilgrid-quantized-model/v1","name":"t","kind":"tree_ensemble",
            "classes":["a","b"],"n_features":2,
            "quantizer":{{"bits":4,"min":[0,0],"scale":[1,1]}},"trees":{trees},"bias":0}}"#
        )
    }

    #[test]
    fn parses_a_small_tree_model() {
        let m = QuantizedModel::from_json(
            tiny(r#"[{"nodes":[{"feature":1,"threshold":7,"left":1,"right":2},{"value":-3},{"value":4}]}]"#)
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(m.score(&[0, 7]).unwrap(), -3);
        assert_eq!(m.score(&[0, 8]).unwrap(), 4);
        assert_eq!(m.score_range(), (-3, 4));
        assert_eq!(m.feature_names, vec!["x0", "x1"]);
    }

    #[test]
    fn rejects_malformed_models() {
        let bad_trees = [
            // cycle
            r#"[{"nodes":[{"feature":0,"threshold":1,"left":0,"right":1},{"value":1}]}]"#,
            // shared child
            r#"[{"nodes":[{"feature":0,"threshold":1,"left":1,"right":1},{"value":1}]}]"#,
            // orphan node
            r#"[{"nodes":[{"value":1},{"value":2}]}]"#,
            // child out of range
            r#"[{"nodes":[{"feature":0,"threshold":1,"left":1,"right":9},{"value":1}]}]"#,
            // feature out of range
            r#"[{"nodes":[{"feature":2,"threshold":1,"left":1,"right":2},{"value":1},{"value":1}]}]"#,
            // empty tree, no trees
            r#"[{"nodes":[]}]"#,
            r#"[]"#,
        ];
        for t in bad_trees {
            let r = QuantizedModel::from_json(tiny(t).as_bytes());
            assert!(matches!(r, Err(Error::InvalidModel { .. })), "{t}: {r:?}");
        }
        let good = tiny(r#"[{"nodes":[{"value":1}]}]"#);
        assert!(QuantizedModel::from_json(good.as_bytes()).is_ok());
        for (from, to) in [
            ("quantized-model/v1", "quantized-model/v9"),
            (r#"["a","b"]"#, r#"["a","b","c"]"#),
            (r#""bits":4"#, r#""bits":0"#),
            (r#""scale":[1,1]"#, r#""scale":[1,-1]"#),
            (r#""n_features":2"#, r#""n_features":3"#),
            (r#""kind":"tree_ensemble""#, r#""kind":"linear""#),
        ] {
            let r = QuantizedModel::from_json(good.replace(from, to).as_bytes());
            assert!(matches!(r, Err(Error::InvalidModel { .. })), "{to}: {r:?}");
        }
        assert!(matches!(
            QuantizedModel::from_json(b"{not json"),
            Err(Error::ModelFormat(_))
        ));
        let huge = vec![b' '; crate::params::MAX_MODEL_JSON_BYTES + 1];
        assert!(matches!(
            QuantizedModel::from_json(&huge),
            Err(Error::TooLarge { .. })
        ));
        assert!(matches!(builtin_model("nope"), Err(Error::UnknownModel(_))));
    }
}
