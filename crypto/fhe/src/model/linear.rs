//! Integer linear model: `score = weights . q + bias`.

use serde::{Deserialize, Serialize};

/// Largest |weight| accepted (keeps every score far inside i64).
pub const MAX_ABS_WEIGHT: i64 = 1 << 31;
/// Largest |bias| accepted.
pub const MAX_ABS_BIAS: i64 = 1 << 60;

/// Integer weights over quantized inputs and an integer bias.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinearModel {
    /// One weight per input feature.
    pub weights: Vec<i64>,
    /// Added to the dot product.
    pub bias: i64,
}

impl LinearModel {
    pub(crate) fn validate(&self, n_features: usize) -> std::result::Result<(), String> {
        if self.weights.len() != n_features {
            return Err(format!(
                "{} weights for {} features",
                self.weights.len(),
                n_features
            ));
        }
        if let Some(i) = self.weights.iter().position(|w| w.abs() > MAX_ABS_WEIGHT) {
            return Err(format!("|weight[{i}]| exceeds 2^31"));
        }
        if self.bias.abs() > MAX_ABS_BIAS {
            return Err("|bias| exceeds 2^60".into());
        }
        Ok(())
    }

    /// The integer score on quantized inputs (inputs already checked by the caller).
    pub fn score(&self, q: &[u64]) -> i64 {
        self.weights
            .iter()
            .zip(q)
            .map(|(&w, &x)| w * x as i64)
            .sum::<i64>()
            + self.bias
    }

    /// Smallest and largest score over all inputs in `0..=max_level`.
    pub fn score_range(&self, max_level: u64) -> (i64, i64) {
        let m = max_level as i64;
        let lo: i64 = self.weights.iter().filter(|w| **w < 0).map(|w| w * m).sum();
        let hi: i64 = self.weights.iter().filter(|w| **w > 0).map(|w| w * m).sum();
        (lo + self.bias, hi + self.bias)
    }

    /// Sum of |weights|: the factor by which fresh encryption noise grows in the leveled
    /// evaluation (see `docs/noise.md`).
    pub fn l1_norm(&self) -> u64 {
        self.weights.iter().map(|w| w.unsigned_abs()).sum()
    }
}
