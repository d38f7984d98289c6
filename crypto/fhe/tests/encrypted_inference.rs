//! Encrypted inference end to end (keys, queries, evaluation, decryption) and bad input.
//!
//! Keys are generated once per test binary (`OnceLock`). Tests that bootstrap hold
//! `BOOTSTRAP_LOCK` so that tfhe's process-wide `pbs-stats` counter is exact where it is read.
//! All test rows for the tree model (slow): `cargo test -p veilgrid-fhe --release -- --ignored`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Mutex, MutexGuard, OnceLock};

use veilgrid_fhe::dataset::BreastCancer;
use veilgrid_fhe::params::{
    self, MAX_COMPRESSED_SERVER_KEY_BYTES, MAX_PREDICTION_BYTES, MAX_QUERY_BYTES,
};
use veilgrid_fhe::{
    ClientKey, CompressedServerKey, EncryptedPrediction, EncryptedQuery, Error, FheModel, KeyId,
    ServerKey, builtin_model, evaluate, evaluate_batch, generate_keys,
};

struct Keys {
    client: ClientKey,
    compressed: CompressedServerKey,
    compressed_bytes: Vec<u8>,
    server: ServerKey,
}

fn make_keys() -> Keys {
    let (client, compressed) = generate_keys().unwrap();
    let compressed_bytes = compressed.to_bytes().unwrap();
    let server = compressed.decompress().unwrap();
    Keys {
        client,
        compressed,
        compressed_bytes,
        server,
    }
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(make_keys)
}

/// A second, independent client (for wrong-key tests).
fn other_keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(make_keys)
}

fn model(name: &str) -> &'static FheModel {
    static MODELS: OnceLock<Vec<FheModel>> = OnceLock::new();
    let all = MODELS.get_or_init(|| {
        veilgrid_fhe::model::MODEL_NAMES
            .iter()
            .map(|n| FheModel::compile(builtin_model(n).unwrap()).unwrap())
            .collect()
    });
    all.iter().find(|m| m.name() == name).unwrap()
}

fn data() -> &'static BreastCancer {
    static DATA: OnceLock<BreastCancer> = OnceLock::new();
    DATA.get_or_init(|| BreastCancer::load().unwrap())
}

fn bootstrap_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

const LR: &str = "breast-cancer-logreg";
const GBT: &str = "breast-cancer-gbt";

/// Encrypt, send as bytes, evaluate, return as bytes, decrypt.
fn round_trip(k: &Keys, m: &FheModel, row: &[f64]) -> (veilgrid_fhe::Prediction, i64) {
    let (query, pending) = k.client.encrypt(m, row).unwrap();
    let query = EncryptedQuery::from_bytes(&query.to_bytes().unwrap(), m).unwrap();
    let answer = evaluate(&k.server, m, &query).unwrap();
    let answer = EncryptedPrediction::from_bytes(&answer.to_bytes().unwrap()).unwrap();
    pending.decrypt_with_noise(&k.client, &answer).unwrap()
}

#[test]
fn logreg_encrypted_equals_plaintext_on_every_test_row() {
    let k = keys();
    let m = model(LR);
    let bound = 5449f64 * 2f64.powi(17); // docs/noise.md: sum|W| * 2^17
    let mut correct = 0;
    for (_, x, label) in data().test_set() {
        let plain = m.model().predict(x).unwrap();
        let (enc, noise) = round_trip(k, m, x);
        assert_eq!((enc.class, enc.score), (plain.class, plain.score));
        assert!(
            (noise.unsigned_abs() as f64) <= bound,
            "noise {noise} over the proven bound"
        );
        correct += usize::from(enc.class == label);
    }
    let acc = correct as f64 / data().test_rows.len() as f64;
    assert!((acc - m.model().metrics.as_ref().unwrap().test_accuracy).abs() < 1e-12);
}

#[test]
fn gbt_encrypted_equals_plaintext_and_counts_bootstraps() {
    let k = keys();
    let m = model(GBT);
    // A malignant and a benign test row.
    let rows: Vec<_> = data().test_set().collect();
    let picks = [
        rows.iter().find(|r| r.2 == 0).unwrap(),
        rows.iter().find(|r| r.2 == 1).unwrap(),
    ];
    let sigma =
        (m.bootstrap_breakdown().1 as f64 * veilgrid_fhe::noise::pbs_output_variance()).sqrt();
    for (_, x, _) in picks {
        let plain = m.model().predict(x).unwrap();
        let _guard = bootstrap_lock();
        veilgrid_fhe::reset_pbs_count();
        let (enc, noise) = round_trip(k, m, x);
        let counted = veilgrid_fhe::pbs_count();
        assert_eq!((enc.class, enc.score), (plain.class, plain.score));
        assert_eq!(
            counted as usize,
            m.bootstraps_per_inference(),
            "tfhe pbs-stats vs plan"
        );
        // Output noise as analysed: far below Delta/2 = 2^57 (10 sigma is ~2^56).
        assert!(
            (noise.unsigned_abs() as f64) < 10.0 * sigma,
            "noise 2^{:.1}",
            (noise as f64).abs().log2()
        );
    }
    // The linear model bootstraps zero times.
    let _guard = bootstrap_lock();
    veilgrid_fhe::reset_pbs_count();
    round_trip(k, model(LR), data().test_set().next().unwrap().1);
    assert_eq!(veilgrid_fhe::pbs_count(), 0);
}

#[test]
#[ignore = "slow: every test row through the encrypted tree ensemble (~1 s each)"]
fn gbt_encrypted_equals_plaintext_on_every_test_row() {
    let k = keys();
    let m = model(GBT);
    let rows: Vec<(usize, &[f64], usize)> = data().test_set().collect();
    let queries: Vec<_> = rows
        .iter()
        .map(|(_, x, _)| k.client.encrypt(m, x).unwrap())
        .collect();
    let (qs, pendings): (Vec<_>, Vec<_>) = queries.into_iter().unzip();
    let _guard = bootstrap_lock();
    let answers = evaluate_batch(&k.server, m, &qs);
    let mut correct = 0;
    for (((_, x, label), pending), answer) in rows.iter().zip(pendings).zip(answers) {
        let enc = pending.decrypt(&k.client, &answer.unwrap()).unwrap();
        let plain = m.model().predict(x).unwrap();
        assert_eq!((enc.class, enc.score), (plain.class, plain.score));
        correct += usize::from(enc.class == *label);
    }
    let acc = correct as f64 / rows.len() as f64;
    assert!((acc - m.model().metrics.as_ref().unwrap().test_accuracy).abs() < 1e-12);
}

#[test]
fn batch_evaluates_each_query_independently() {
    let k = keys();
    let m = model(GBT);
    let rows: Vec<_> = data().test_set().skip(10).take(3).collect();
    let mut queries = vec![];
    let mut pendings = vec![];
    for (_, x, _) in &rows {
        let (q, p) = k.client.encrypt(m, x).unwrap();
        queries.push(q);
        pendings.push(p);
    }
    // A query for another model in the middle of the batch fails alone.
    let (bad, _) = k.client.encrypt(model(LR), rows[0].1).unwrap();
    queries.insert(1, bad);
    let _guard = bootstrap_lock();
    let mut answers = evaluate_batch(&k.server, m, &queries);
    assert!(matches!(
        answers.remove(1),
        Err(Error::ModelMismatch { .. })
    ));
    for (((_, x, _), pending), answer) in rows.iter().zip(pendings).zip(answers) {
        let enc = pending.decrypt(&k.client, &answer.unwrap()).unwrap();
        assert_eq!(enc.score, m.model().predict(x).unwrap().score);
    }
}

#[test]
fn server_key_round_trips_and_its_id_is_the_hash_of_its_bytes() {
    let k = keys();
    assert_eq!(k.compressed.id(), KeyId::of(&k.compressed_bytes));
    assert_eq!(k.client.key_id(), k.compressed.id());
    assert_eq!(k.server.id(), k.compressed.id());
    // Serialization is deterministic: re-registering the same key gives the same id.
    assert_eq!(k.compressed.to_bytes().unwrap(), k.compressed_bytes);
    let again = CompressedServerKey::from_bytes(&k.compressed_bytes).unwrap();
    assert_eq!(again.id(), k.compressed.id());
    assert_eq!(again.serialized_len(), k.compressed_bytes.len());
    assert_eq!(KeyId::from_hex(&again.id().to_hex()).unwrap(), again.id());
    assert!(k.compressed_bytes.len() < MAX_COMPRESSED_SERVER_KEY_BYTES);
    assert!(matches!(KeyId::from_hex("zz"), Err(Error::BadKeyId)));
}

#[test]
fn bad_server_keys_are_rejected_without_panicking() {
    let good = &keys().compressed_bytes;
    // garbage
    let r = CompressedServerKey::from_bytes(b"definitely not a key");
    assert!(matches!(r, Err(Error::Decode { .. })), "{r:?}");
    // truncated
    let r = CompressedServerKey::from_bytes(&good[..good.len() / 2]);
    assert!(matches!(r, Err(Error::Decode { .. })), "{r:?}");
    // one byte appended
    let mut longer = good.clone();
    longer.push(0);
    let r = CompressedServerKey::from_bytes(&longer);
    assert!(matches!(r, Err(Error::Decode { .. })), "{r:?}");
    // over the size limit: refused before parsing
    let huge = vec![0u8; MAX_COMPRESSED_SERVER_KEY_BYTES + 1];
    let r = CompressedServerKey::from_bytes(&huge);
    assert!(matches!(r, Err(Error::TooLarge { .. })), "{r:?}");
    // another tfhe type (a client key) where a server key is expected
    let r = CompressedServerKey::from_bytes(&keys().client.to_bytes().unwrap());
    assert!(matches!(r, Err(Error::Decode { .. })), "{r:?}");
    // Corruption anywhere: never a panic; structural corruption (header, lengths) is a decode
    // error, corruption inside key material is caught by the announced key id.
    let id = keys().compressed.id();
    for at in [0, 9, 40, 120, 1000, good.len() / 2, good.len() - 9] {
        let mut corrupt = good.clone();
        for b in corrupt.iter_mut().skip(at).take(8) {
            *b ^= 0xa5;
        }
        let _ = CompressedServerKey::from_bytes(&corrupt);
        let r = CompressedServerKey::from_bytes_with_id(&corrupt, id);
        assert!(matches!(r, Err(Error::KeyIdMismatch { .. })), "{at}: {r:?}");
    }
    assert_eq!(
        CompressedServerKey::from_bytes_with_id(good, id)
            .unwrap()
            .id(),
        id
    );
    let r = CompressedServerKey::from_bytes(&good[..40]);
    assert!(matches!(r, Err(Error::Decode { .. })), "{r:?}");
}

fn foreign_key_bytes(config: tfhe::Config) -> Vec<u8> {
    let ck = tfhe::ClientKey::generate(config);
    let sk = tfhe::CompressedServerKey::new(&ck);
    let mut out = vec![];
    tfhe::safe_serialization::safe_serialize(&sk, &mut out, 1 << 30).unwrap();
    out
}

#[test]
fn server_keys_for_other_parameters_are_not_conformant() {
    // Another parameter set (message 1, carry 1).
    let other = tfhe::ConfigBuilder::with_custom_parameters(
        tfhe::shortint::parameters::v1_8::V1_8_PARAM_MESSAGE_1_CARRY_1_KS_PBS_TUNIFORM_2M128,
    )
    .use_dedicated_oprf_key(false)
    .build();
    let r = CompressedServerKey::from_bytes(&foreign_key_bytes(other));
    assert!(matches!(r, Err(Error::NonConformant { .. })), "{r:?}");
    // Our parameter set with tfhe's default dedicated OPRF key: extra material, and a third
    // larger, so refused by the size limit before parsing.
    let with_oprf = tfhe::ConfigBuilder::with_custom_parameters(params::block_parameters()).build();
    let r = CompressedServerKey::from_bytes(&foreign_key_bytes(with_oprf));
    assert!(matches!(r, Err(Error::TooLarge { .. })), "{r:?}");
}

#[test]
fn bad_inputs_get_typed_errors() {
    let k = keys();
    for name in [LR, GBT] {
        let m = model(name);
        let r = k.client.encrypt(m, &[1.0; 29]);
        assert!(matches!(
            r,
            Err(Error::InputLength {
                expected: 30,
                got: 29
            })
        ));
        let mut row = data().features[0].clone();
        row[3] = f64::NAN;
        assert!(matches!(
            k.client.encrypt(m, &row),
            Err(Error::NonFiniteInput { index: 3 })
        ));
        let max = m.model().quantizer.max_level();
        let mut q = vec![0u64; 30];
        q[7] = max + 1;
        assert!(matches!(
            k.client.encrypt_quantized(m, &q),
            Err(Error::QuantizedInputOutOfRange { index: 7, .. })
        ));
        // Out-of-range raw values are clamped, as documented: same as the extreme level.
        let mut far = data().features[0].clone();
        far[0] = 1e9;
        let mut edge = far.clone();
        edge[0] = m.model().quantizer.dequantize(0, max).unwrap();
        assert_eq!(
            m.model().quantizer.quantize(&far).unwrap(),
            m.model().quantizer.quantize(&edge).unwrap()
        );
    }
    // A clamped out-of-range row still evaluates exactly.
    let m = model(LR);
    let mut far = data().features[1].clone();
    far[2] = -1e9;
    far[20] = 1e9;
    assert_eq!(round_trip(k, m, &far).0, {
        let p = m.model().predict(&far).unwrap();
        veilgrid_fhe::Prediction {
            class: p.class,
            score: p.score,
        }
    });
}

#[test]
fn bad_queries_are_rejected() {
    let k = keys();
    let m = model(LR);
    let (query, _) = k.client.encrypt(m, &data().features[0]).unwrap();
    let bytes = query.to_bytes().unwrap();
    assert!(bytes.len() < 1024, "seeded query is small: {}", bytes.len());
    // garbage, truncated, trailing, oversized
    assert!(matches!(
        EncryptedQuery::from_bytes(b"garbage", m),
        Err(Error::Decode { .. })
    ));
    assert!(matches!(
        EncryptedQuery::from_bytes(&bytes[..bytes.len() - 3], m),
        Err(Error::Decode { .. })
    ));
    let mut longer = bytes.clone();
    longer.push(1);
    assert!(matches!(
        EncryptedQuery::from_bytes(&longer, m),
        Err(Error::Decode { .. })
    ));
    let huge = vec![0u8; MAX_QUERY_BYTES + 1];
    assert!(matches!(
        EncryptedQuery::from_bytes(&huge, m),
        Err(Error::TooLarge { .. })
    ));
    // decoded for the wrong model: not conformant (name / number of ciphertexts)
    let r = EncryptedQuery::from_bytes(&bytes, model(GBT));
    assert!(matches!(r, Err(Error::NonConformant { .. })), "{r:?}");
    // a prediction where a query is expected: wrong type in the header
    let answer = evaluate(&k.server, m, &query).unwrap();
    let r = EncryptedQuery::from_bytes(&answer.to_bytes().unwrap(), m);
    assert!(matches!(r, Err(Error::Decode { .. })), "{r:?}");
    // evaluated by the wrong model or with another registered key
    assert!(matches!(
        evaluate(&k.server, model(GBT), &query),
        Err(Error::ModelMismatch { .. })
    ));
    assert!(matches!(
        evaluate(&other_keys().server, m, &query),
        Err(Error::KeyMismatch { .. })
    ));
}

#[test]
fn bad_predictions_are_rejected() {
    let k = keys();
    let m = model(LR);
    let (query, pending) = k.client.encrypt(m, &data().features[0]).unwrap();
    let answer = evaluate(&k.server, m, &query).unwrap();
    let bytes = answer.to_bytes().unwrap();
    assert!(matches!(
        EncryptedPrediction::from_bytes(&bytes[..100]),
        Err(Error::Decode { .. })
    ));
    let huge = vec![0u8; MAX_PREDICTION_BYTES + 1];
    assert!(matches!(
        EncryptedPrediction::from_bytes(&huge),
        Err(Error::TooLarge { .. })
    ));
    // an answer for another model cannot be decrypted with this pending query
    let (other_query, _) = k.client.encrypt(model(GBT), &data().features[0]).unwrap();
    let (_, other_pending) = k.client.encrypt(model(GBT), &data().features[0]).unwrap();
    let _ = other_query;
    assert!(matches!(
        other_pending.decrypt(&k.client, &answer),
        Err(Error::ModelMismatch { .. })
    ));
    // another client's key is refused by the pending query
    assert!(matches!(
        pending.decrypt(&other_keys().client, &answer),
        Err(Error::KeyMismatch { .. })
    ));
}

/// A client that claims key A's id while encrypting with key B (forged by editing the key id
/// inside B's serialized client key, as an attacker could).
fn forged_client(real: &Keys, claimed: &Keys) -> ClientKey {
    let mut bytes = real.client.to_bytes().unwrap().to_vec();
    let id = real.client.key_id().0;
    let pos = bytes.windows(32).position(|w| w == id).unwrap();
    bytes[pos..pos + 32].copy_from_slice(&claimed.client.key_id().0);
    ClientKey::from_bytes(&bytes).unwrap()
}

#[test]
fn ciphertexts_under_another_key_are_undetectable_but_harmless() {
    let a = keys();
    let b = other_keys();
    let forged = forged_client(b, a);
    assert_eq!(forged.key_id(), a.client.key_id());
    let m = model(GBT);
    let x = &data().features[data().test_rows[0]];
    let (query, pending) = forged.encrypt(m, x).unwrap();
    // The service cannot tell: evaluation with A's key succeeds and returns a well-formed answer.
    let _guard = bootstrap_lock();
    let answer = evaluate(&a.server, m, &query).unwrap();
    drop(_guard);
    // Decrypting gives some score in the model's window, with no crash; the key owner A
    // cannot read B's query either (A's decryption of B's query is unrelated to the input).
    let p = pending.decrypt(&forged, &answer).unwrap();
    let (lo, hi) = m.model().score_range();
    assert!(p.class < 2 && p.score >= lo && p.score < lo + 64 && hi - lo < 64);
}

#[test]
fn queries_are_randomized_and_only_the_client_key_decrypts() {
    let k = keys();
    let m = model(LR);
    let x = &data().features[5];
    let (q1, p1) = k.client.encrypt(m, x).unwrap();
    let (q2, _) = k.client.encrypt(m, x).unwrap();
    // Same input, different ciphertexts (fresh seed and noise).
    assert_ne!(q1.to_bytes().unwrap(), q2.to_bytes().unwrap());
    let answer = evaluate(&k.server, m, &q1).unwrap();
    let truth = m.model().predict(x).unwrap().score;
    // Another client's secret key (forged to pass the label check) does not recover the score.
    let stranger = forged_client(other_keys(), k);
    let (_, p_stranger) = stranger.encrypt(m, x).unwrap();
    let (wrong, noise) = p_stranger.decrypt_with_noise(&stranger, &answer).unwrap();
    let right = p1.decrypt(&k.client, &answer).unwrap();
    assert_eq!(right.score, truth);
    // A wrong key yields a uniformly random phase: its "noise" is not within the proven bound
    // (probability of the contrary ~ 2^-12), and the score is not the true one.
    assert!(wrong.score != truth || noise.unsigned_abs() > 5449 << 17);
    // Debug output never shows key material.
    let dbg = format!("{:?}", k.client);
    assert!(dbg.starts_with("ClientKey") && dbg.len() < 100, "{dbg}");
}

#[test]
fn client_key_round_trips_through_bytes() {
    let k = keys();
    let bytes = k.client.to_bytes().unwrap();
    let back = ClientKey::from_bytes(&bytes).unwrap();
    assert_eq!(back.key_id(), k.client.key_id());
    let m = model(LR);
    let x = &data().features[9];
    let (q, pending) = back.encrypt(m, x).unwrap();
    let answer = evaluate(&k.server, m, &q).unwrap();
    assert_eq!(
        pending.decrypt(&k.client, &answer).unwrap().score,
        m.model().predict(x).unwrap().score
    );
    assert!(matches!(
        ClientKey::from_bytes(b"nope"),
        Err(Error::Decode { .. })
    ));
    assert!(matches!(
        ClientKey::from_bytes(&vec![0u8; params::MAX_CLIENT_KEY_BYTES + 1]),
        Err(Error::TooLarge { .. })
    ));
}
