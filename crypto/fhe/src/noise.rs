//! Noise budgets of the two evaluation methods.
#![doc = include_str!("../docs/noise.md")]

use tfhe::core_crypto::commons::noise_formulas::lwe_programmable_bootstrap::pbs_variance_132_bits_security_tuniform_fft_mul;
use tfhe::core_crypto::prelude::{
    DecompositionBaseLog, DecompositionLevelCount, GlweDimension, LweDimension, PolynomialSize,
};

use crate::params;

/// Required log2 failure probability of decoding one result (same target as one bootstrap).
pub const TARGET_LOG2_P_FAIL: f64 = -128.0;

/// Mantissa bits of the f64 FFT used by tfhe's bootstrap (enters tfhe's variance formula).
const FFT_MANTISSA_BITS: f64 = 53.0;

/// Variance of the output noise of one bootstrap, in units of the u64 torus (2^-64), from
/// tfhe-rs' own formula for TUniform keys and f64 FFT.
pub fn pbs_output_variance() -> f64 {
    let p = params::block_parameters();
    let torus_variance = pbs_variance_132_bits_security_tuniform_fft_mul(
        LweDimension(p.lwe_dimension.0),
        GlweDimension(p.glwe_dimension.0),
        PolynomialSize(p.polynomial_size.0),
        DecompositionBaseLog(p.pbs_base_log.0),
        DecompositionLevelCount(p.pbs_level.0),
        FFT_MANTISSA_BITS,
        2f64.powi(64),
    );
    torus_variance.0 * 2f64.powi(128)
}

/// `log2` of the tail bound `P(|X| >= z*sigma) <= 2 exp(-z^2 / 2)` of a centred Gaussian.
pub fn log2_gaussian_tail(z: f64) -> f64 {
    1.0 - z * z / (2.0 * std::f64::consts::LN_2)
}

/// How the decryption of a result is known to be correct.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum NoiseBound {
    /// Leveled linear evaluation on fresh TUniform encryptions: the noise is bounded with
    /// certainty, `|e| <= 2^log2_bound`, and decoding is exact whenever the bound is below half
    /// the scaling factor. Failure probability 0.
    Deterministic {
        /// log2 of the worst-case |noise| of the result.
        log2_bound: f64,
        /// log2 of half the scaling factor Delta / 2.
        log2_half_delta: f64,
    },
    /// Sum of `terms` independent bootstrap outputs: Gaussian with the variance of tfhe-rs'
    /// formula; failure probability bounded by the Gaussian tail.
    Gaussian {
        /// Bootstrap outputs summed into the result.
        terms: usize,
        /// log2 of the standard deviation of the result's noise (u64 torus units).
        log2_sigma: f64,
        /// Half the scaling factor divided by sigma.
        z: f64,
        /// log2 of the bound on the probability of a wrong decoding.
        log2_p_fail: f64,
    },
}

/// The encoding of a model's result and why it decodes correctly.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NoiseReport {
    /// The score is decrypted modulo 2^output_bits.
    pub output_bits: u32,
    /// The result's scaling factor is 2^(64 - output_bits).
    pub log2_delta: u32,
    /// The bound on the result's noise.
    pub bound: NoiseBound,
    /// Bootstraps per inference (0 for linear models).
    pub bootstraps: usize,
    /// Union bound over the inference: bootstraps x 2^-129.58 + result decoding.
    pub log2_p_fail_inference: f64,
}

impl NoiseReport {
    /// Linear model: `l1` = sum of |weights|, fresh noise bound 2^B of the parameter set.
    pub(crate) fn linear(output_bits: u32, l1: u64) -> Self {
        let log2_bound = ((l1.max(1)) as f64).log2() + f64::from(params::fresh_noise_bound_log2());
        Self {
            output_bits,
            log2_delta: 64 - output_bits,
            bound: NoiseBound::Deterministic {
                log2_bound,
                log2_half_delta: f64::from(63 - output_bits),
            },
            bootstraps: 0,
            log2_p_fail_inference: f64::NEG_INFINITY,
        }
    }

    /// Tree ensemble: `terms` bootstrap outputs summed, `bootstraps` in all.
    pub(crate) fn trees(output_bits: u32, terms: usize, bootstraps: usize) -> Self {
        let sigma = (terms.max(1) as f64 * pbs_output_variance()).sqrt();
        let z = 2f64.powi(63 - output_bits as i32) / sigma;
        let log2_p_fail = log2_gaussian_tail(z);
        let per_pbs = 2f64.powf(params::LOG2_P_FAIL_PER_PBS);
        let total = bootstraps as f64 * per_pbs + 2f64.powf(log2_p_fail);
        Self {
            output_bits,
            log2_delta: 64 - output_bits,
            bound: NoiseBound::Gaussian {
                terms,
                log2_sigma: sigma.log2(),
                z,
                log2_p_fail,
            },
            bootstraps,
            log2_p_fail_inference: total.log2(),
        }
    }

    /// True when the result decodes correctly (with certainty, or with failure probability at
    /// most 2^-128).
    pub fn is_within_budget(&self) -> bool {
        match self.bound {
            NoiseBound::Deterministic {
                log2_bound,
                log2_half_delta,
            } => log2_bound < log2_half_delta,
            NoiseBound::Gaussian { log2_p_fail, .. } => log2_p_fail <= TARGET_LOG2_P_FAIL,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn pbs_output_noise_matches_hand_computation() {
        // docs/noise.md: sigma ~ 2^49.17 for n = 918, N = 2048, k = 1, B = 2^23, l = 1.
        let log2_sigma = pbs_output_variance().sqrt().log2();
        assert!(
            (log2_sigma - 49.17).abs() < 0.05,
            "log2 sigma = {log2_sigma}"
        );
    }

    #[test]
    fn gaussian_tail_bound() {
        // z = 13.4 gives just below 2^-128.
        assert!(log2_gaussian_tail(13.4) < -128.0);
        assert!(log2_gaussian_tail(13.3) > -128.0);
    }

    #[test]
    fn budgets() {
        assert!(NoiseReport::linear(22, 30 * 511).is_within_budget());
        // 2^17 fresh noise times 2^25 weight mass cannot fit under 2^(63-22).
        assert!(!NoiseReport::linear(22, 1 << 25).is_within_budget());
        assert!(NoiseReport::trees(6, 80, 125).is_within_budget());
        // 8 output bits with 80 terms is only ~2^-28: refused.
        assert!(!NoiseReport::trees(8, 80, 125).is_within_budget());
    }
}
