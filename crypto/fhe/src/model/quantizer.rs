//! Per-feature uniform input quantizer: raw f64 features to unsigned B-bit integers.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// `q_i = clamp(floor((x_i - min_i) / scale_i + 0.5), 0, 2^bits - 1)`.
///
/// Finite values outside the training range are **clamped** to the nearest end (a measurement
/// larger than any seen in training is treated as the largest level); NaN and infinities are
/// **refused**. Already-quantized inputs given directly (see
/// [`Quantizer::check_quantized`]) are refused when out of range, never clamped, since a value
/// out of range there is a caller bug rather than an unusual measurement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Quantizer {
    /// Bits per quantized input, B.
    pub bits: u32,
    /// Per-feature offset.
    pub min: Vec<f64>,
    /// Per-feature step (positive).
    pub scale: Vec<f64>,
}

impl Quantizer {
    /// Largest quantized value, `2^bits - 1`.
    pub fn max_level(&self) -> u64 {
        (1u64 << self.bits) - 1
    }

    /// Number of features.
    pub fn len(&self) -> usize {
        self.min.len()
    }

    /// True if the quantizer has no features.
    pub fn is_empty(&self) -> bool {
        self.min.is_empty()
    }

    pub(crate) fn validate(&self) -> std::result::Result<(), String> {
        if self.bits == 0 || self.bits > 16 {
            return Err(format!("input bits {} outside 1..=16", self.bits));
        }
        if self.min.len() != self.scale.len() {
            return Err("quantizer min and scale lengths differ".into());
        }
        if let Some(i) = self.min.iter().position(|m| !m.is_finite()) {
            return Err(format!("quantizer min[{i}] is not finite"));
        }
        if let Some(i) = self.scale.iter().position(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(format!(
                "quantizer scale[{i}] is not a positive finite number"
            ));
        }
        Ok(())
    }

    /// Quantize one row of raw features (clamping finite out-of-range values).
    pub fn quantize(&self, raw: &[f64]) -> Result<Vec<u64>> {
        if raw.len() != self.len() {
            return Err(Error::InputLength {
                expected: self.len(),
                got: raw.len(),
            });
        }
        let max = self.max_level() as f64;
        raw.iter()
            .zip(self.min.iter().zip(&self.scale))
            .enumerate()
            .map(|(index, (&x, (&min, &scale)))| {
                if !x.is_finite() {
                    return Err(Error::NonFiniteInput { index });
                }
                let level = ((x - min) / scale + 0.5).floor().clamp(0.0, max);
                // In range [0, 2^16) after the clamp, so the cast is exact.
                Ok(level as u64)
            })
            .collect()
    }

    /// Check a row of already-quantized inputs (length and range; refused, never clamped).
    pub fn check_quantized(&self, q: &[u64]) -> Result<()> {
        if q.len() != self.len() {
            return Err(Error::InputLength {
                expected: self.len(),
                got: q.len(),
            });
        }
        let max = self.max_level();
        match q.iter().position(|&v| v > max) {
            Some(index) => Err(Error::QuantizedInputOutOfRange {
                index,
                value: q[index],
                max,
            }),
            None => Ok(()),
        }
    }

    /// The raw value at the centre of level `q` of feature `i` (for documentation and tests).
    pub fn dequantize(&self, i: usize, q: u64) -> Option<f64> {
        Some(self.min.get(i)? + self.scale.get(i)? * q as f64)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn q() -> Quantizer {
        Quantizer {
            bits: 4,
            min: vec![0.0, -1.0],
            scale: vec![1.0, 0.5],
        }
    }

    #[test]
    fn rounds_half_up_and_clamps() {
        let q = q();
        assert_eq!(q.quantize(&[2.5, -1.0]).unwrap(), vec![3, 0]);
        assert_eq!(q.quantize(&[2.49, -0.76]).unwrap(), vec![2, 0]);
        assert_eq!(q.quantize(&[-7.0, 100.0]).unwrap(), vec![0, 15]);
        assert_eq!(q.quantize(&[15.4, 6.5]).unwrap(), vec![15, 15]);
    }

    #[test]
    fn refuses_bad_inputs() {
        let q = q();
        assert!(matches!(
            q.quantize(&[1.0]),
            Err(Error::InputLength {
                expected: 2,
                got: 1
            })
        ));
        assert!(matches!(
            q.quantize(&[1.0, f64::NAN]),
            Err(Error::NonFiniteInput { index: 1 })
        ));
        assert!(matches!(
            q.quantize(&[f64::INFINITY, 0.0]),
            Err(Error::NonFiniteInput { index: 0 })
        ));
        assert!(matches!(
            q.check_quantized(&[3, 16]),
            Err(Error::QuantizedInputOutOfRange {
                index: 1,
                value: 16,
                max: 15
            })
        ));
        assert!(q.check_quantized(&[0, 15]).is_ok());
        assert!(matches!(
            q.check_quantized(&[0, 1, 2]),
            Err(Error::InputLength { .. })
        ));
    }

    #[test]
    fn validation_rejects_degenerate_quantizers() {
        let mut bad = q();
        bad.scale[1] = 0.0;
        assert!(bad.validate().is_err());
        let mut bad = q();
        bad.bits = 0;
        assert!(bad.validate().is_err());
        let mut bad = q();
        bad.min.push(1.0);
        assert!(bad.validate().is_err());
        assert!(q().validate().is_ok());
    }
}
