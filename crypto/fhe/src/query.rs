//! Client side: encrypt a query, then decrypt the prediction it comes back as.
//!
//! [`ClientKey::encrypt`] returns the [`EncryptedQuery`] to send and a [`PendingPrediction`]
//! that is the only way to decrypt the answer: it consumes itself, checks that the answer is
//! for the same model and key, and decodes the score in the model's window.

use tfhe::core_crypto::commons::math::random::{CompressionSeed, Seed};
use tfhe::core_crypto::prelude::LweCiphertext;
use tfhe::core_crypto::prelude::{
    CiphertextModulus, LweCiphertextCount, LweSize, PlaintextList, SeededLweCiphertextList,
    decrypt_lwe_ciphertext, encrypt_seeded_lwe_ciphertext_list, new_seeder,
};

use crate::error::{Error, Result};
use crate::keys::{ClientKey, KeyId};
use crate::model::QuantizedModel;
use crate::params;
use crate::plan::FheModel;
use crate::wire::{EncryptedPrediction, EncryptedQuery};

/// A prediction decrypted by the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prediction {
    /// Class index as in the dataset's labels.
    pub class: usize,
    /// The model's integer score (class 1 iff score > 0).
    pub score: i64,
}

/// Client-side state of one query in flight: what is needed to decrypt its answer.
#[derive(Debug)]
#[must_use = "a pending prediction is the only way to decrypt the answer"]
pub struct PendingPrediction {
    model: FheModel,
    key_id: KeyId,
}

impl ClientKey {
    /// Quantize raw feature values (clamping finite values to the quantizer's range, refusing
    /// NaN/infinity and wrong lengths) and encrypt them for `model`.
    pub fn encrypt(
        &self,
        model: &FheModel,
        raw: &[f64],
    ) -> Result<(EncryptedQuery, PendingPrediction)> {
        let q = model.model().quantizer.quantize(raw)?;
        self.encrypt_quantized(model, &q)
    }

    /// Encrypt already-quantized inputs (refused when out of range or of the wrong length).
    ///
    /// Each input becomes one LWE ciphertext under the big key (dimension k*N = 2048) with the
    /// parameter set's fresh noise (TUniform, bound 2^17). The list is seeded: only the 30 bodies
    /// and one 128-bit seed travel; the masks are regenerated from the seed by the server.
    pub fn encrypt_quantized(
        &self,
        model: &FheModel,
        q: &[u64],
    ) -> Result<(EncryptedQuery, PendingPrediction)> {
        model.model().quantizer.check_quantized(q)?;
        let (key, noise) = self.encryption_key()?;
        let shift = model.input_delta_log2();
        let plaintexts = PlaintextList::from_container(
            q.iter()
                .map(|&x| x.wrapping_shl(shift))
                .collect::<Vec<u64>>(),
        );
        let mut seeder = new_seeder();
        let seed = seeder.seed();
        let mut list = SeededLweCiphertextList::new(
            0u64,
            LweSize(params::big_lwe_dimension() + 1),
            LweCiphertextCount(q.len()),
            CompressionSeed::from(seed),
            CiphertextModulus::new_native(),
        );
        encrypt_seeded_lwe_ciphertext_list(&key, &mut list, &plaintexts, noise, seeder.as_mut());
        let query = EncryptedQuery {
            model: model.name().to_string(),
            key_id: self.key_id().0,
            seed: seed.0,
            bodies: list.into_container(),
        };
        Ok((
            query,
            PendingPrediction {
                model: model.clone(),
                key_id: self.key_id(),
            },
        ))
    }
}

impl PendingPrediction {
    /// The model the query was made for.
    pub fn model(&self) -> &QuantizedModel {
        self.model.model()
    }

    /// Decrypt the answer. Refuses answers for another model or key (by their labels; an answer
    /// computed with another key under the right label decrypts to a meaningless score, which
    /// cannot be detected).
    pub fn decrypt(self, key: &ClientKey, answer: &EncryptedPrediction) -> Result<Prediction> {
        self.decrypt_with_noise(key, answer).map(|(p, _)| p)
    }

    /// [`PendingPrediction::decrypt`], also returning the decrypted noise `phase - score * Delta`
    /// (signed, in u64 torus units) for diagnostics: the analysis in `docs/noise.md` bounds it.
    pub fn decrypt_with_noise(
        self,
        key: &ClientKey,
        answer: &EncryptedPrediction,
    ) -> Result<(Prediction, i64)> {
        if answer.model != self.model.name() {
            return Err(Error::ModelMismatch {
                query: self.model.name().to_string(),
                model: answer.model.clone(),
            });
        }
        if answer.key_id != self.key_id.0 || key.key_id() != self.key_id {
            return Err(Error::KeyMismatch {
                query: self.key_id.to_hex(),
                key: KeyId(answer.key_id).to_hex(),
            });
        }
        let expected = params::big_lwe_dimension() + 1;
        if answer.lwe.len() != expected {
            return Err(Error::NonConformant {
                what: "encrypted prediction",
                params: params::PARAMETER_SET_NAME,
                reason: format!("LWE size {}, expected {expected}", answer.lwe.len()),
            });
        }
        let (secret, _) = key.encryption_key()?;
        let ct =
            LweCiphertext::from_container(answer.lwe.as_slice(), CiphertextModulus::new_native());
        let phase = decrypt_lwe_ciphertext(&secret, &ct).0;
        let score = self.model.decode_score(phase);
        let delta_log2 = self.model.noise_report().log2_delta;
        let noise = phase.wrapping_sub((score as u64).wrapping_shl(delta_log2)) as i64;
        Ok((
            Prediction {
                class: QuantizedModel::class_of(score),
                score,
            },
            noise,
        ))
    }
}

/// Reconstruct the seeded list of a query (server side).
pub(crate) fn query_ciphertexts(query: &EncryptedQuery) -> SeededLweCiphertextList<Vec<u64>> {
    SeededLweCiphertextList::from_container(
        query.bodies.clone(),
        LweSize(params::big_lwe_dimension() + 1),
        CompressionSeed::from(Seed(query.seed)),
        CiphertextModulus::new_native(),
    )
}
