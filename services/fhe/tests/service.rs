//! The FHE service over real gRPC on port 0, through its typed API and as byte completions (the
//! `Provider` calls and 1 MiB framing the router makes; the CLI test of the root package goes
//! through a real router): key registration
//! (chunked, idempotent, persisted), models, encrypted queries equal to the plaintext model,
//! batches, an LRU smaller than the number of keys, and every kind of bad input with its code.
//!
//! Keys are generated once per test binary (`OnceLock`). One tree inference runs in the default
//! suite (`gbt_query_direct_equals_plaintext`); everything else uses the logistic regression.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

use bytes::Bytes;
use futures::StreamExt;
use tokio::net::TcpListener;
use tonic::Code;
use veilgrid_fhe::{
    ClientKey, FheModel, KeyId, QuantizedModel, builtin_model, dataset::BreastCancer,
    generate_keys, params,
};
use veilgrid_fhe_service::{
    Engine, EngineConfig, FheConfig, FheServiceError, client::FheClient, engine::MAX_BATCH,
};
use veilgrid_kit::Shutdown;
use veilgrid_proto::fhe::v1::{self as pb, fhe_client::FheClient as RawClient};

const LR: &str = "breast-cancer-logreg";
const GBT: &str = "breast-cancer-gbt";

struct Keys {
    client: ClientKey,
    id: KeyId,
    bytes: Bytes,
}

fn make_keys() -> Keys {
    let (client, compressed) = generate_keys().unwrap();
    let bytes = Bytes::from(compressed.to_bytes().unwrap());
    Keys {
        id: compressed.id(),
        client,
        bytes,
    }
}

fn keys_a() -> &'static Keys {
    static K: OnceLock<Keys> = OnceLock::new();
    K.get_or_init(make_keys)
}

fn keys_b() -> &'static Keys {
    static K: OnceLock<Keys> = OnceLock::new();
    K.get_or_init(make_keys)
}

fn model(name: &str) -> FheModel {
    FheModel::compile(builtin_model(name).unwrap()).unwrap()
}

fn data() -> &'static BreastCancer {
    static D: OnceLock<BreastCancer> = OnceLock::new();
    D.get_or_init(|| BreastCancer::load().unwrap())
}

fn test_row(i: usize) -> (Vec<f64>, usize) {
    let r = data().test_rows[i];
    (data().features[r].clone(), data().labels[r])
}

fn plain(m: &FheModel, x: &[f64]) -> veilgrid_fhe::Prediction {
    let p = m.model().predict(x).unwrap();
    veilgrid_fhe::Prediction {
        class: p.class,
        score: p.score,
    }
}

async fn bind() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    (l, url)
}

struct Service {
    url: String,
    engine: Arc<Engine>,
}

async fn start_service(sd: &Shutdown, engine: EngineConfig) -> Service {
    let (l, url) = bind().await;
    let engine = Arc::new(Engine::new(&engine).unwrap());
    let config = FheConfig::default();
    tokio::spawn(veilgrid_fhe_service::run_with_engine(
        engine.clone(),
        l,
        sd.clone(),
        config,
    ));
    // Wait until it answers.
    let mut c = FheClient::direct(&url).unwrap();
    for _ in 0..200 {
        if c.list_models().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Service { url, engine }
}

/// A directory under the system temp dir, removed on drop.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let p =
            std::env::temp_dir().join(format!("veilgrid-fhe-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }

    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn code(e: &FheServiceError) -> Code {
    e.code()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logreg_as_byte_completions_equals_plaintext_and_register_is_idempotent() {
    let sd = Shutdown::new();
    let svc = start_service(&sd, EngineConfig::default()).await;
    let mut c = FheClient::provider(&svc.url).unwrap();
    let k = keys_a();

    // Models and their schema.
    let models = c.list_models().await.unwrap().models;
    let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
    assert!(names.contains(&LR) && names.contains(&GBT), "{names:?}");
    for m in &models {
        assert_eq!(m.n_inputs, 30);
        assert_eq!(m.inputs.len(), 30);
        assert_eq!(m.classes, vec!["malignant", "benign"]);
        assert_eq!(m.inputs[0].name, "mean radius");
        assert!(m.inputs.iter().all(|f| f.min < f.max));
        assert_eq!(m.parameter_set, params::PARAMETER_SET_NAME);
    }
    let lr_info = models.iter().find(|m| m.name == LR).unwrap();
    assert_eq!(lr_info.bootstraps_per_inference, 0);
    assert!(
        models
            .iter()
            .find(|m| m.name == GBT)
            .unwrap()
            .bootstraps_per_inference
            > 0
    );

    // Register through the streaming completion, with progress reaching the total.
    let seen = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let s2 = seen.clone();
    let r = c
        .register_key(k.id, k.bytes.clone(), move |n| {
            s2.fetch_max(n, std::sync::atomic::Ordering::Relaxed);
        })
        .await
        .unwrap();
    assert_eq!(r.key_id.as_ref(), k.id.0);
    assert_eq!(r.stored_bytes, k.bytes.len() as u64);
    assert!(!r.already_registered);
    assert!(seen.load(std::sync::atomic::Ordering::Relaxed) >= k.bytes.len() as u64);
    // Again: idempotent.
    let again = c.register_key(k.id, k.bytes.clone(), |_| {}).await.unwrap();
    assert!(again.already_registered);

    // Encrypted queries as byte completions equal the quantized plaintext model.
    let m = model(LR);
    for i in 0..3 {
        let (x, _) = test_row(i);
        let r = c.predict(&k.client, &m, &x).await.unwrap();
        assert_eq!(r.prediction, plain(&m, &x), "row {i}");
    }
    // A batch, evaluated in parallel, answers each row in order.
    let rows: Vec<Vec<f64>> = (3..9).map(|i| test_row(i).0).collect();
    let out = c.predict_batch(&k.client, &m, &rows).await.unwrap();
    assert_eq!(out.len(), rows.len());
    for (x, r) in rows.iter().zip(&out) {
        assert_eq!(r.prediction, plain(&m, x));
    }
    // Errors keep their codes as byte completions.
    let (q, _) = k.client.encrypt(&m, &rows[0]).unwrap();
    let e = c
        .infer(pb::InferRequest {
            model: "no-such-model".into(),
            key_id: Bytes::copy_from_slice(&k.id.0),
            query: q.to_bytes().unwrap().into(),
        })
        .await
        .unwrap_err();
    assert_eq!(code(&e), Code::NotFound, "{e}");
    sd.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gbt_query_direct_equals_plaintext() {
    let sd = Shutdown::new();
    let svc = start_service(&sd, EngineConfig::default()).await;
    let mut c = FheClient::direct(&svc.url).unwrap();
    let k = keys_a();
    c.register_key(k.id, k.bytes.clone(), |_| {}).await.unwrap();
    let m = model(GBT);
    let (x, _) = test_row(0);
    let r = c.predict(&k.client, &m, &x).await.unwrap();
    assert_eq!(r.prediction, plain(&m, &x));
    sd.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_keys_than_the_cache_holds_and_a_restart_still_answer_everyone() {
    // (No tempfile crate: as a dev-dependency it changes host-side features and forces a
    // second build of tfhe for the tests.)
    let dir = TempDir::new("lru");
    let config = EngineConfig {
        data_dir: Some(dir.path().to_path_buf()),
        cache_bytes: 0, // one decompressed key at a time
        threads: 2,
        ..Default::default()
    };
    let sd = Shutdown::new();
    let svc = start_service(&sd, config.clone()).await;
    assert_eq!(svc.engine.cache().capacity(), 1);
    let mut c = FheClient::direct(&svc.url).unwrap();
    let (a, b) = (keys_a(), keys_b());
    for k in [a, b] {
        c.register_key(k.id, k.bytes.clone(), |_| {}).await.unwrap();
    }
    let stored: Vec<_> = std::fs::read_dir(dir.path().join("keys"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(stored.len(), 2, "{stored:?}");
    assert!(stored.contains(&format!("{}.csk", a.id.to_hex())));
    let m = model(LR);
    // Alternate clients: every query misses the one-key cache and still decrypts right.
    for (i, k) in [a, b, a, b].into_iter().enumerate() {
        let (x, _) = test_row(10 + i);
        let r = c.predict(&k.client, &m, &x).await.unwrap();
        assert_eq!(r.prediction, plain(&m, &x), "query {i}");
        assert_eq!(svc.engine.cache().cached(), 1);
        assert!(svc.engine.cache().contains(&k.id));
    }
    sd.cancel();
    // A new service over the same data directory knows both keys.
    let sd = Shutdown::new();
    let svc = start_service(&sd, config).await;
    let mut c = FheClient::direct(&svc.url).unwrap();
    let (x, _) = test_row(20);
    let r = c.predict(&b.client, &m, &x).await.unwrap();
    assert_eq!(r.prediction, plain(&m, &x));
    let again = c.register_key(a.id, a.bytes.clone(), |_| {}).await.unwrap();
    assert!(again.already_registered);
    sd.cancel();
}

/// `--store postgres://…`: replicas on one database share the key registry. A key
/// registered through one is used by the other and by a restarted one; both
/// registering one key at once succeed; a stored key changed behind the service's back
/// (one byte flipped in SQL) is refused as corrupt (`DATA_LOSS`), never evaluated with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_one_postgres_database_share_keys_and_refuse_a_tampered_one() {
    let Ok(admin) = std::env::var("VEILGRID_TEST_POSTGRES") else {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "skipping the PostgreSQL key registry test: VEILGRID_TEST_POSTGRES is not set (.ci/postgres.sh starts a server and sets it)"
        );
        return;
    };
    let db =
        veilgrid_kit::pg::ScratchDb::create(&admin, &format!("vg_fhe_keys_{}", std::process::id()))
            .unwrap();
    let config = EngineConfig {
        cache_bytes: 0,
        threads: 2,
        store: veilgrid_kit::store_spec::StoreSpec::parse(Some(db.url())).unwrap(),
        ..Default::default()
    };
    let sd = Shutdown::new();
    let one = start_service(&sd, config.clone()).await;
    let two = start_service(&sd, config.clone()).await;
    let (mut c1, mut c2) = (
        FheClient::direct(&one.url).unwrap(),
        FheClient::direct(&two.url).unwrap(),
    );
    let (a, b) = (keys_a(), keys_b());
    let m = model(LR);
    let first = c1
        .register_key(a.id, a.bytes.clone(), |_| {})
        .await
        .unwrap();
    assert!(!first.already_registered);
    let (x, _) = test_row(30);
    let r = c2.predict(&a.client, &m, &x).await.unwrap();
    assert_eq!(
        r.prediction,
        plain(&m, &x),
        "replica two used replica one's key"
    );
    let again = c2
        .register_key(a.id, a.bytes.clone(), |_| {})
        .await
        .unwrap();
    assert!(again.already_registered);
    // Both replicas storing one key at once: both succeed, one row.
    let (r1, r2) = tokio::join!(
        c1.register_key(b.id, b.bytes.clone(), |_| {}),
        c2.register_key(b.id, b.bytes.clone(), |_| {})
    );
    r1.unwrap();
    r2.unwrap();
    sd.cancel();

    // A restarted service on the same database knows both keys.
    let sd = Shutdown::new();
    let three = start_service(&sd, config.clone()).await;
    let mut c3 = FheClient::direct(&three.url).unwrap();
    let (x, _) = test_row(31);
    let r = c3.predict(&b.client, &m, &x).await.unwrap();
    assert_eq!(r.prediction, plain(&m, &x));
    sd.cancel();

    // One byte of key a flipped in the database: a fresh service refuses it.
    let tamper = veilgrid_kit::pg::Pool::connect(db.url(), "fhe-test-tamper", &[]).unwrap();
    let id = a.id.0.to_vec();
    let n = tamper
        .run(move |c| {
            c.execute(
                "UPDATE fhe_keys SET key = set_byte(key, 1000, (get_byte(key, 1000) + 1) % 256) WHERE id = $1",
                &[&id],
            )
            .map_err(veilgrid_kit::pg::pg("tampering"))
        })
        .unwrap();
    assert_eq!(n, 1);
    let sd = Shutdown::new();
    let four = start_service(&sd, config).await;
    let mut c4 = FheClient::direct(&four.url).unwrap();
    let (x, _) = test_row(32);
    let e = c4.predict(&a.client, &m, &x).await.unwrap_err();
    assert_eq!(code(&e), Code::DataLoss, "{e}");
    assert!(e.to_string().contains("corrupt"), "{e}");
    // the untouched key still answers
    let r = c4.predict(&b.client, &m, &x).await.unwrap();
    assert_eq!(r.prediction, plain(&m, &x));
    sd.cancel();
}

/// The shipped logistic regression with its last feature removed: a client with a different
/// idea of the model's inputs (29 instead of 30), under the same model name.
fn model_with_29_inputs() -> FheModel {
    let json = include_str!("../../../crypto/fhe/models/breast_cancer_logreg.quant.json");
    let mut v: serde_json::Value = serde_json::from_str(json).unwrap();
    v["n_features"] = 29.into();
    v.as_object_mut().unwrap().remove("metrics");
    for path in [
        &["feature_names"][..],
        &["quantizer", "min"],
        &["quantizer", "scale"],
        &["linear", "weights"],
    ] {
        let mut node = &mut v;
        for p in path {
            node = &mut node[*p];
        }
        node.as_array_mut().unwrap().pop();
    }
    let q = QuantizedModel::from_json(serde_json::to_vec(&v).unwrap().as_slice()).unwrap();
    FheModel::compile(q).unwrap()
}

/// A client that claims key A's id while encrypting with key B (the id edited inside B's
/// serialized client key, as an attacker could).
fn forged_client(real: &Keys, claimed: &Keys) -> ClientKey {
    let mut bytes = real.client.to_bytes().unwrap().to_vec();
    let pos = bytes.windows(32).position(|w| w == real.id.0).unwrap();
    bytes[pos..pos + 32].copy_from_slice(&claimed.id.0);
    ClientKey::from_bytes(&bytes).unwrap()
}

fn other_params_key_bytes() -> Vec<u8> {
    let config = tfhe::ConfigBuilder::with_custom_parameters(
        tfhe::shortint::parameters::v1_8::V1_8_PARAM_MESSAGE_1_CARRY_1_KS_PBS_TUNIFORM_2M128,
    )
    .use_dedicated_oprf_key(false)
    .build();
    let ck = tfhe::ClientKey::generate(config);
    let sk = tfhe::CompressedServerKey::new(&ck);
    let mut out = vec![];
    tfhe::safe_serialization::safe_serialize(&sk, &mut out, 1 << 30).unwrap();
    out
}

fn other_params_ciphertext_bytes() -> Vec<u8> {
    let ck = tfhe::shortint::ClientKey::new(
        tfhe::shortint::parameters::v1_8::V1_8_PARAM_MESSAGE_1_CARRY_1_KS_PBS_TUNIFORM_2M128,
    );
    let ct = ck.encrypt(1);
    let mut out = vec![];
    tfhe::safe_serialization::safe_serialize(&ct, &mut out, 1 << 20).unwrap();
    out
}

async fn upload_raw(
    url: &str,
    id: &[u8],
    total: u64,
    data: Vec<Bytes>,
) -> Result<pb::RegisterKeyResponse, tonic::Status> {
    let mut raw = RawClient::connect(url.to_owned()).await.unwrap();
    let frames: Vec<pb::RegisterKeyChunk> = data
        .into_iter()
        .enumerate()
        .map(|(i, d)| pb::RegisterKeyChunk {
            key_id: if i == 0 {
                Bytes::copy_from_slice(id)
            } else {
                Bytes::new()
            },
            total_bytes: if i == 0 { total } else { 0 },
            data: d,
        })
        .collect();
    raw.register_key(futures::stream::iter(frames).boxed())
        .await
        .map(|r| r.into_inner())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_get_clear_codes_and_do_not_poison_other_clients() {
    let sd = Shutdown::new();
    let svc = start_service(&sd, EngineConfig::default()).await;
    let mut c = FheClient::direct(&svc.url).unwrap();
    let mut via = FheClient::provider(&svc.url).unwrap();
    let (a, b) = (keys_a(), keys_b());
    c.register_key(a.id, a.bytes.clone(), |_| {}).await.unwrap();
    let m = model(LR);
    let (x, _) = test_row(30);
    let query = |k: &ClientKey, m: &FheModel, x: &[f64]| {
        let (q, _) = k.encrypt(m, x).unwrap();
        Bytes::from(q.to_bytes().unwrap())
    };
    let infer = |model: &str, id: &KeyId, q: Bytes| pb::InferRequest {
        model: model.into(),
        key_id: Bytes::copy_from_slice(&id.0),
        query: q,
    };

    // Wrong model name.
    let e = c
        .infer(infer("breast-cancer-svm", &a.id, query(&a.client, &m, &x)))
        .await
        .unwrap_err();
    assert_eq!(code(&e), Code::NotFound, "{e}");
    assert!(e.to_string().contains("breast-cancer-svm"), "{e}");
    // A query made for the other model.
    let e = c
        .infer(infer(GBT, &a.id, query(&a.client, &m, &x)))
        .await
        .unwrap_err();
    assert_eq!(code(&e), Code::InvalidArgument, "{e}");

    // Wrong input length: the client refuses locally; a client with a 29-input model gets a
    // clear refusal from the service.
    let e = c.predict(&a.client, &m, &x[..29]).await.unwrap_err();
    assert!(
        matches!(
            e,
            FheServiceError::Fhe(veilgrid_fhe::Error::InputLength {
                expected: 30,
                got: 29
            })
        ),
        "{e}"
    );
    let short = model_with_29_inputs();
    let e = c
        .infer(infer(LR, &a.id, query(&a.client, &short, &x[..29])))
        .await
        .unwrap_err();
    assert_eq!(code(&e), Code::InvalidArgument, "{e}");

    // Out of range: finite raw values are clamped on the client (same answer as the clamped
    // plaintext model), NaN is refused before anything is sent.
    let mut far = x.clone();
    far[0] = 1e12;
    far[7] = -1e12;
    let r = c.predict(&a.client, &m, &far).await.unwrap();
    assert_eq!(r.prediction, plain(&m, &far));
    let mut nan = x.clone();
    nan[3] = f64::NAN;
    let e = c.predict(&a.client, &m, &nan).await.unwrap_err();
    assert!(
        matches!(
            e,
            FheServiceError::Fhe(veilgrid_fhe::Error::NonFiniteInput { index: 3 })
        ),
        "{e}"
    );

    // A ciphertext from another key: labelled with B's id but sent under A's id -> refused;
    // B's key was never registered -> NOT_FOUND.
    let e = c
        .infer(infer(LR, &a.id, query(&b.client, &m, &x)))
        .await
        .unwrap_err();
    assert_eq!(code(&e), Code::InvalidArgument, "{e}");
    let e = c
        .infer(infer(LR, &b.id, query(&b.client, &m, &x)))
        .await
        .unwrap_err();
    assert_eq!(code(&e), Code::NotFound, "{e}");
    assert!(e.to_string().contains("register"), "{e}");
    // Forged to carry A's id: undetectable by the service, evaluated, harmless for A.
    let forged = forged_client(b, a);
    let r = c
        .infer(infer(LR, &a.id, query(&forged, &m, &x)))
        .await
        .unwrap();
    assert!(!r.prediction.is_empty());

    // A ciphertext for other parameters, and garbage, in place of a query.
    let e = c
        .infer(infer(LR, &a.id, other_params_ciphertext_bytes().into()))
        .await
        .unwrap_err();
    assert_eq!(code(&e), Code::InvalidArgument, "{e}");
    let e = c
        .infer(infer(
            LR,
            &a.id,
            Bytes::from_static(b"not a ciphertext at all"),
        ))
        .await
        .unwrap_err();
    assert_eq!(code(&e), Code::InvalidArgument, "{e}");
    let e = via
        .infer(infer(LR, &a.id, Bytes::from(vec![0xA5; 4096])))
        .await
        .unwrap_err();
    assert_eq!(code(&e), Code::InvalidArgument, "{e}");
    let e = c
        .infer(infer(
            LR,
            &a.id,
            Bytes::from(vec![0; params::MAX_QUERY_BYTES + 1]),
        ))
        .await
        .unwrap_err();
    assert_eq!(code(&e), Code::ResourceExhausted, "{e}");
    let e = c
        .infer(pb::InferRequest {
            key_id: Bytes::from_static(b"short"),
            ..infer(LR, &a.id, query(&a.client, &m, &x))
        })
        .await
        .unwrap_err();
    assert_eq!(code(&e), Code::InvalidArgument, "{e}");
    // A batch with one bad query is refused with its index; oversized batches are refused.
    let e = c
        .infer_batch(pb::InferBatchRequest {
            model: LR.into(),
            key_id: Bytes::copy_from_slice(&a.id.0),
            queries: vec![query(&a.client, &m, &x), Bytes::from_static(b"junk")],
        })
        .await
        .unwrap_err();
    assert_eq!(code(&e), Code::InvalidArgument, "{e}");
    assert!(e.to_string().contains("query 1"), "{e}");
    let e = c
        .infer_batch(pb::InferBatchRequest {
            model: LR.into(),
            key_id: Bytes::copy_from_slice(&a.id.0),
            queries: vec![query(&a.client, &m, &x); MAX_BATCH + 1],
        })
        .await
        .unwrap_err();
    assert_eq!(code(&e), Code::InvalidArgument, "{e}");

    // Keys: other parameters, garbage, corrupted, truncated, over the limit, unknown id.
    let other = Bytes::from(other_params_key_bytes());
    let e = c
        .register_key(KeyId::of(&other), other, |_| {})
        .await
        .unwrap_err();
    assert_eq!(code(&e), Code::InvalidArgument, "{e}");
    assert!(e.to_string().contains(params::PARAMETER_SET_NAME), "{e}");
    let garbage = Bytes::from(vec![7u8; 100_000]);
    let e = via
        .register_key(KeyId::of(&garbage), garbage, |_| {})
        .await
        .unwrap_err();
    assert_eq!(code(&e), Code::InvalidArgument, "{e}");
    let mut corrupted = b.bytes.to_vec();
    let mid = corrupted.len() / 2;
    corrupted[mid] ^= 1;
    let e = c
        .register_key(b.id, corrupted.into(), |_| {})
        .await
        .unwrap_err();
    assert_eq!(code(&e), Code::InvalidArgument, "{e}");
    let e = upload_raw(
        &svc.url,
        &b.id.0,
        b.bytes.len() as u64,
        vec![b.bytes.slice(..1 << 20)],
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");
    assert!(e.message().contains("truncated"), "{e}");
    let max = params::MAX_COMPRESSED_SERVER_KEY_BYTES as u64;
    let e = upload_raw(&svc.url, &b.id.0, max + 1, vec![Bytes::from_static(b"x")])
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e}");
    let huge = Bytes::from(vec![0u8; max as usize + 1]);
    let e = via
        .register_key(KeyId::of(&huge), huge, |_| {})
        .await
        .unwrap_err();
    assert_eq!(code(&e), Code::ResourceExhausted, "{e}");
    // None of those stored anything: B is still unknown.
    let e = c
        .infer(infer(LR, &b.id, query(&b.client, &m, &x)))
        .await
        .unwrap_err();
    assert_eq!(code(&e), Code::NotFound, "{e}");
    // A request naming another key than the query's label is refused before any key lookup.
    let e = c
        .infer(infer(LR, &KeyId([9; 32]), query(&a.client, &m, &x)))
        .await
        .unwrap_err();
    assert_eq!(code(&e), Code::InvalidArgument, "{e}");

    // After all that, A is served exactly, directly and as byte completions.
    for i in 31..33 {
        let (x, _) = test_row(i);
        assert_eq!(
            c.predict(&a.client, &m, &x).await.unwrap().prediction,
            plain(&m, &x)
        );
        assert_eq!(
            via.predict(&a.client, &m, &x).await.unwrap().prediction,
            plain(&m, &x)
        );
    }
    sd.cancel();
}

/// Service-level numbers without criterion (which cannot be a dev-dependency here, see
/// Cargo.toml): `cargo test -p veilgrid-fhe-service --release -- --ignored --nocapture measure`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "prints timings; slow (several tree inferences)"]
async fn measure_service_latencies() {
    let sd = Shutdown::new();
    let svc = start_service(&sd, EngineConfig::default()).await;
    let k = keys_a();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let t = std::time::Instant::now();
    let _ = make_keys();
    println!("keygen {:.0} ms", ms(t.elapsed()));
    let mut direct = FheClient::direct(&svc.url).unwrap();
    let mut bytes = FheClient::provider(&svc.url).unwrap();
    let t = std::time::Instant::now();
    bytes
        .register_key(k.id, k.bytes.clone(), |_| {})
        .await
        .unwrap();
    println!(
        "first upload of {} bytes (streamed completion, checks, store) {:.0} ms",
        k.bytes.len(),
        ms(t.elapsed())
    );
    let t = std::time::Instant::now();
    direct
        .register_key(k.id, k.bytes.clone(), |_| {})
        .await
        .unwrap();
    println!(
        "re-upload (idempotent, hash only) {:.0} ms",
        ms(t.elapsed())
    );
    for (name, batch) in [(LR, 16usize), (GBT, 4)] {
        let m = model(name);
        let rows: Vec<Vec<f64>> = (0..batch).map(|i| test_row(i).0).collect();
        let t = std::time::Instant::now();
        bytes.predict(&k.client, &m, &rows[0]).await.unwrap();
        println!(
            "{name}: first query (decompresses the key) {:.0} ms",
            ms(t.elapsed())
        );
        for row in &rows[1..3] {
            let r = bytes.predict(&k.client, &m, row).await.unwrap();
            println!(
                "{name}: query end to end {:.1} ms (service eval {:.1} ms), bootstraps per inference {}",
                ms(r.latency),
                ms(r.eval),
                m.bootstraps_per_inference()
            );
        }
        let out = bytes.predict_batch(&k.client, &m, &rows).await.unwrap();
        println!(
            "{name}: batch of {batch} end to end {:.1} ms ({:.1} ms per query; service eval {:.1} ms)",
            ms(out[0].latency),
            ms(out[0].latency) / batch as f64,
            ms(out[0].eval)
        );
    }
    sd.cancel();
}
