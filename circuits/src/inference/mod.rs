//! The `inference` circuit: a quantized model's decision on a committed input.
#![doc = include_str!("../../docs/inference.md")]

mod circuit;
mod fhe_format;
mod model;

pub use circuit::{InferenceCircuit, InferencePublic, count_constraints, is_satisfied};
pub use fhe_format::QUANTIZED_V1;
pub use model::{
    InputCommitment, LinearModel, MAX_DEPTH, MAX_FEATURES, MAX_INPUT_BITS, MAX_MODEL_JSON_BYTES,
    MAX_PARAM_BITS, MAX_TREES, Model, ModelKind, ModelShape, PrivateInput, ShapeKind, Tree,
    TreeEnsemble, commit_input,
};
