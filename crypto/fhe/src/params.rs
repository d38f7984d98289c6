//! The one tfhe-rs parameter set this crate uses, and the byte limits derived from it.
#![doc = include_str!("../docs/parameters.md")]

use tfhe::shortint::parameters::KeySwitch32PBSParameters;
use tfhe::shortint::parameters::v1_8::V1_8_PARAM_MESSAGE_2_CARRY_2_KS32_PBS_TUNIFORM_2M128;

/// Versioned tfhe-rs name of the parameter set (pinned: a tfhe upgrade cannot change it silently).
pub const PARAMETER_SET_NAME: &str = "V1_8_PARAM_MESSAGE_2_CARRY_2_KS32_PBS_TUNIFORM_2M128";

/// log2 of the failure probability of one bootstrap, as published with the parameter set.
pub const LOG2_P_FAIL_PER_PBS: f64 = -129.581;

/// The parameter set: 2 message bits + 2 carry bits, KS32 atomic pattern (key switch to a
/// 32-bit LWE), TUniform noise, 128-bit security, p_fail <= 2^-128 per bootstrap.
pub fn block_parameters() -> KeySwitch32PBSParameters {
    V1_8_PARAM_MESSAGE_2_CARRY_2_KS32_PBS_TUNIFORM_2M128
}

/// The tfhe high-level configuration used for key generation and for conformance checks of
/// uploaded keys: our block parameters, no dedicated OPRF key, no compression, no noise
/// squashing, no compact public key. The server key therefore holds exactly one key-switching
/// key and one bootstrapping key.
pub fn config() -> tfhe::Config {
    tfhe::ConfigBuilder::with_custom_parameters(block_parameters())
        .use_dedicated_oprf_key(false)
        .build()
}

/// Dimension of the LWE key that encrypts queries and results: the GLWE secret key seen as an
/// LWE key, `k * N` (the "big" key of the KS-PBS atomic pattern).
pub fn big_lwe_dimension() -> usize {
    let p = block_parameters();
    p.glwe_dimension.0 * p.polynomial_size.0
}

/// Number of plaintext slots seen by a bootstrap: message modulus x carry modulus (16).
pub fn pbs_plaintext_modulus() -> u64 {
    let p = block_parameters();
    p.message_modulus.0 * p.carry_modulus.0
}

/// log2 of the scaling factor of the bootstrap input encoding: one padding bit, then
/// log2(16) = 4 message+carry bits, so Delta = 2^64 / (2 * 16) = 2^59.
pub fn pbs_delta_log2() -> u32 {
    64 - 1 - pbs_plaintext_modulus().trailing_zeros()
}

/// log2 of the bound B of the TUniform noise of fresh encryptions under the big key
/// (`glwe_noise_distribution`): every fresh error e satisfies |e| <= 2^B.
pub fn fresh_noise_bound_log2() -> u32 {
    match block_parameters().glwe_noise_distribution {
        tfhe::core_crypto::commons::parameters::DynamicDistribution::TUniform(t) => t.bound_log2(),
        // Not reachable with the pinned parameter set (checked by a unit test).
        tfhe::core_crypto::commons::parameters::DynamicDistribution::Gaussian(_) => 64,
    }
}

/// Upper bound on the bytes of a serialized compressed server key (measured 30.1 MB,
/// limit with headroom; anything larger is refused before decoding).
pub const MAX_COMPRESSED_SERVER_KEY_BYTES: usize = 40 << 20;
/// Upper bound on the bytes of a serialized client key (measured 20 KB).
pub const MAX_CLIENT_KEY_BYTES: usize = 1 << 20;
/// Upper bound on the bytes of one serialized encrypted query (a few hundred bytes for 30
/// features; the limit allows models with up to a few thousand inputs).
pub const MAX_QUERY_BYTES: usize = 64 << 10;
/// Upper bound on the bytes of one serialized encrypted prediction (one LWE ciphertext, ~16 KB).
pub const MAX_PREDICTION_BYTES: usize = 64 << 10;
/// Upper bound on a model file (JSON).
pub const MAX_MODEL_JSON_BYTES: usize = 4 << 20;
