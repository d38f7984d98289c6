//! What travels: encrypted queries and encrypted predictions, serialized with tfhe-rs'
//! `safe_serialize` (versioned, with a header naming the type) and decoded only through
//! size-limited, conformance-checked `safe_deserialize_conformant`.

use std::io::Cursor;

use serde::{Deserialize, Serialize};
use tfhe::conformance::ParameterSetConformant;
use tfhe::named::Named;
use tfhe::safe_serialization::{safe_deserialize_conformant, safe_serialize};
use tfhe_versionable::{Versionize, VersionsDispatch};

use crate::error::{Error, Result};
use crate::guard::guarded;
use crate::keys::KeyId;
use crate::params::{self, MAX_PREDICTION_BYTES, MAX_QUERY_BYTES};
use crate::plan::FheModel;

/// An encrypted query: one seeded LWE ciphertext list (30 bodies and a 128-bit mask seed for
/// the breast cancer models, 395 bytes serialized), labelled with the model and key it is for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Versionize)]
#[versionize(EncryptedQueryVersions)]
pub struct EncryptedQuery {
    pub(crate) model: String,
    pub(crate) key_id: [u8; 32],
    pub(crate) seed: u128,
    pub(crate) bodies: Vec<u64>,
}

/// Versions of [`EncryptedQuery`] (tfhe-versionable dispatch enum).
#[derive(VersionsDispatch)]
#[allow(dead_code)]
pub enum EncryptedQueryVersions {
    /// First version.
    V0(EncryptedQuery),
}

impl Named for EncryptedQuery {
    const NAME: &'static str = "veilgrid_fhe::EncryptedQuery";
}

/// An encrypted prediction: one LWE ciphertext (k*N + 1 = 2049 u64, ~16 KB) of the score under
/// the client's big key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Versionize)]
#[versionize(EncryptedPredictionVersions)]
pub struct EncryptedPrediction {
    pub(crate) model: String,
    pub(crate) key_id: [u8; 32],
    pub(crate) lwe: Vec<u64>,
}

/// Versions of [`EncryptedPrediction`] (tfhe-versionable dispatch enum).
#[derive(VersionsDispatch)]
#[allow(dead_code)]
pub enum EncryptedPredictionVersions {
    /// First version.
    V0(EncryptedPrediction),
}

impl Named for EncryptedPrediction {
    const NAME: &'static str = "veilgrid_fhe::EncryptedPrediction";
}

/// Expected shape of a query: which model, how many inputs.
#[derive(Clone, Debug)]
pub struct QueryConformance {
    /// Model name the query must carry.
    pub model: String,
    /// Number of ciphertexts.
    pub n_inputs: usize,
}

impl ParameterSetConformant for EncryptedQuery {
    type ParameterSet = QueryConformance;

    fn is_conformant(&self, p: &QueryConformance) -> bool {
        self.model == p.model && self.bodies.len() == p.n_inputs
    }
}

/// Expected shape of a prediction: LWE size of the parameter set.
#[derive(Clone, Copy, Debug)]
pub struct PredictionConformance {
    /// k*N + 1.
    pub lwe_size: usize,
}

impl ParameterSetConformant for EncryptedPrediction {
    type ParameterSet = PredictionConformance;

    fn is_conformant(&self, p: &PredictionConformance) -> bool {
        self.lwe.len() == p.lwe_size
    }
}

fn to_bytes<T: Serialize + Versionize + Named>(
    what: &'static str,
    v: &T,
    max: usize,
) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    safe_serialize(v, &mut out, max as u64).map_err(|e| Error::Decode {
        what,
        reason: format!("serialization failed: {e}"),
    })?;
    Ok(out)
}

fn from_bytes<T>(what: &'static str, bytes: &[u8], max: usize, p: &T::ParameterSet) -> Result<T>
where
    T: serde::de::DeserializeOwned
        + tfhe_versionable::Unversionize
        + Named
        + ParameterSetConformant,
{
    if bytes.len() > max {
        return Err(Error::TooLarge {
            what,
            len: bytes.len(),
            max,
        });
    }
    let mut cursor = Cursor::new(bytes);
    let value = guarded(what, || {
        safe_deserialize_conformant::<T>(&mut cursor, max as u64, p).map_err(|reason| {
            if reason.contains("not conformant") {
                Error::NonConformant {
                    what,
                    params: params::PARAMETER_SET_NAME,
                    reason,
                }
            } else {
                Error::Decode { what, reason }
            }
        })
    })?;
    if cursor.position() != bytes.len() as u64 {
        return Err(Error::Decode {
            what,
            reason: "trailing bytes".into(),
        });
    }
    Ok(value)
}

impl EncryptedQuery {
    /// Name of the model the query is for.
    pub fn model_name(&self) -> &str {
        &self.model
    }

    /// Id of the evaluation key the query is for.
    pub fn key_id(&self) -> KeyId {
        KeyId(self.key_id)
    }

    /// Number of encrypted inputs.
    pub fn len(&self) -> usize {
        self.bodies.len()
    }

    /// True if there are no inputs.
    pub fn is_empty(&self) -> bool {
        self.bodies.is_empty()
    }

    /// Serialize.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        to_bytes("encrypted query", self, MAX_QUERY_BYTES)
    }

    /// Decode a query for `model`: size limit [`MAX_QUERY_BYTES`], tfhe header and version
    /// checks, conformance (model name and number of ciphertexts), no trailing bytes.
    pub fn from_bytes(bytes: &[u8], model: &FheModel) -> Result<Self> {
        let p = QueryConformance {
            model: model.name().to_string(),
            n_inputs: model.model().n_features(),
        };
        from_bytes("encrypted query", bytes, MAX_QUERY_BYTES, &p)
    }
}

impl EncryptedPrediction {
    /// Name of the model that computed it.
    pub fn model_name(&self) -> &str {
        &self.model
    }

    /// Id of the evaluation key it was computed with.
    pub fn key_id(&self) -> KeyId {
        KeyId(self.key_id)
    }

    /// Serialize.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        to_bytes("encrypted prediction", self, MAX_PREDICTION_BYTES)
    }

    /// Decode a prediction: size limit [`MAX_PREDICTION_BYTES`], tfhe header and version
    /// checks, conformance (LWE size k*N + 1), no trailing bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let p = PredictionConformance {
            lwe_size: params::big_lwe_dimension() + 1,
        };
        from_bytes("encrypted prediction", bytes, MAX_PREDICTION_BYTES, &p)
    }
}
