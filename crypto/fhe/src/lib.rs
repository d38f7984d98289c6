//! TFHE model evaluation for Veilgrid (tfhe-rs 1.8): quantized models, keys, encrypted
//! inference. No I/O: models come in as bytes (or are the built-in ones compiled in), keys and
//! ciphertexts go out and come in as bytes.
//!
//! # Flow
//!
//! ```text
//! client                                             service
//! ------                                             -------
//! (ck, csk) = generate_keys()
//! csk.to_bytes()  ---------- register ---------->    CompressedServerKey::from_bytes(bytes)
//!                                                      (size limit, safe_deserialize_conformant)
//!                                                    key id = SHA-256(bytes); store compressed
//!                                                    sk = csk.decompress()   (lazily, cached)
//! (query, pending) = ck.encrypt(&model, &raw)
//! query.to_bytes() ---------- infer ------------>    EncryptedQuery::from_bytes(bytes, &model)
//!                                                    evaluate(&sk, &model, &query)
//!                  <--------- answer ------------    answer.to_bytes()
//! EncryptedPrediction::from_bytes(bytes)
//! pending.decrypt(&ck, &answer) -> Prediction { class, score }
//! ```
//!
//! The service never holds a client key; the client key never leaves the client.
//!
//! # Models
//!
//! [`model::builtin_model`] gives the two shipped models (`breast-cancer-logreg`,
//! `breast-cancer-gbt`); [`FheModel::compile`] prepares one for encrypted evaluation and checks
//! its noise budget. See the `docs/` chapters included in the module documentation:
//! [`params`] (parameter set), [`model`] (quantization), [`noise`] (noise analysis of the
//! leveled linear evaluation), [`plan`] (tree evaluation).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod dataset;
mod error;
pub mod eval;
mod guard;
pub mod keys;
pub mod model;
pub mod noise;
pub mod params;
pub mod plan;
pub mod query;
pub mod wire;

pub use error::{Error, Result};
pub use eval::{evaluate, evaluate_batch};
pub use keys::{ClientKey, CompressedServerKey, KeyId, ServerKey, generate_keys};
pub use model::{QuantizedModel, builtin_model, builtin_models};
pub use plan::FheModel;
pub use query::{PendingPrediction, Prediction};
pub use wire::{EncryptedPrediction, EncryptedQuery};

/// Bootstraps performed by this process so far (tfhe-rs `pbs-stats` counter, process-wide).
pub fn pbs_count() -> u64 {
    tfhe::get_pbs_count()
}

/// Reset the process-wide bootstrap counter.
pub fn reset_pbs_count() {
    tfhe::reset_pbs_count()
}
