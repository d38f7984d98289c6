//! The models shipped in `crypto/fhe/models/`, compiled into the crate (no file I/O).

use super::{FloatModel, QuantizedModel};
use crate::error::{Error, Result};

/// Names of the built-in models.
pub const MODEL_NAMES: [&str; 2] = ["breast-cancer-logreg", "breast-cancer-gbt"];

const QUANT: [&str; 2] = [
    include_str!("../../models/breast_cancer_logreg.quant.json"),
    include_str!("../../models/breast_cancer_gbt.quant.json"),
];
const FLOAT: [&str; 2] = [
    include_str!("../../models/breast_cancer_logreg.float.json"),
    include_str!("../../models/breast_cancer_gbt.float.json"),
];

fn index(name: &str) -> Result<usize> {
    MODEL_NAMES
        .iter()
        .position(|n| *n == name)
        .ok_or_else(|| Error::UnknownModel(name.to_string()))
}

/// The built-in quantized model of that name.
pub fn builtin_model(name: &str) -> Result<QuantizedModel> {
    QuantizedModel::from_json(QUANT[index(name)?].as_bytes())
}

/// The float model the built-in quantized model of that name was derived from.
pub fn builtin_float_model(name: &str) -> Result<FloatModel> {
    FloatModel::from_json(FLOAT[index(name)?].as_bytes())
}

/// All built-in quantized models.
pub fn builtin_models() -> Result<Vec<QuantizedModel>> {
    MODEL_NAMES.iter().map(|n| builtin_model(n)).collect()
}
