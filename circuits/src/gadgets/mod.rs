//! R1CS gadgets, one per file (arkworks style). Each documents its constraint cost.
//!
//! All gadgets work over [`crate::field::Fr`]; values are [`FpVar`]s and [`Boolean`]s
//! from `ark-r1cs-std`.

pub mod compare;
pub mod mux;
pub mod pack;
pub mod poseidon;
pub mod range;

use crate::field::Fr;
use ark_r1cs_std::{boolean::Boolean, fields::fp::FpVar};

/// A field-element variable of the BN254 scalar field.
pub type FrVar = FpVar<Fr>;
/// A boolean variable over the BN254 scalar field.
pub type Bit = Boolean<Fr>;
