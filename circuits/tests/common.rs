//! Shared fixtures for the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ark_std::rand::{SeedableRng, rngs::StdRng};
use veilgrid_circuits::inference::{LinearModel, Model, ModelKind, Tree, TreeEnsemble};

/// A deterministic RNG for tests only (never for production keys).
pub(crate) fn test_rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// A small linear model with negative weights, bias and threshold.
pub(crate) fn small_linear() -> Model {
    Model {
        n_features: 4,
        input_bits: 8,
        param_bits: 16,
        kind: ModelKind::Linear(LinearModel {
            weights: vec![3, -7, 12, -20],
            bias: -20,
            threshold: -1500,
        }),
    }
}

/// A small tree ensemble (3 trees of depth 3 over 5 features of 4 bits).
pub(crate) fn small_trees() -> Model {
    let mk = |seed: u32| Tree {
        features: (0..7).map(|i| (i * 3 + seed) % 5).collect(),
        thresholds: (0..7).map(|i| (i * 5 + seed * 3) % 17).collect(),
        leaves: (0..8)
            .map(|i| (i64::from(seed) * 37 + i * 101) % 400 - 200)
            .collect(),
    };
    Model {
        n_features: 5,
        input_bits: 4,
        param_bits: 12,
        kind: ModelKind::Trees(TreeEnsemble {
            depth: 3,
            trees: vec![mk(1), mk(2), mk(3)],
            base: -17,
            threshold: 0,
        }),
    }
}
