//! The service logic shared by the gRPC API and the byte completions: models, the key store,
//! the key cache and the evaluation pool.
//!
//! Every piece of FHE work (checking an uploaded key, decompressing one, evaluating queries) runs
//! on a dedicated rayon pool, never on the async runtime: the async side hands a closure to the
//! pool and awaits a oneshot channel. tfhe-rs' high-level API keeps the server key in a
//! thread-local that each worker would have to install; `veilgrid_fhe` takes the caller's key
//! explicitly instead (`evaluate(&key, ..)`), so every worker evaluates with exactly the key of
//! the query it runs and nothing from one client's query stays behind in a worker for the next.
//! A batch fans out over the same pool (`evaluate_batch` is a rayon `par_iter`), and the
//! bootstraps inside one tree inference do too.

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    sync::Arc,
    time::Instant,
};

use veilgrid_fhe::{
    CompressedServerKey, EncryptedQuery, FheModel, KeyId, ServerKey, builtin_models,
    model::ModelKind, params,
};
use veilgrid_proto::fhe::v1 as pb;

use tonic::Status;
use veilgrid_kit::{auth::Caller, auth_owners::Owners};

use crate::{FheServiceError, cache::KeyCache, store::KeyStore};

/// The ownership kind of a registered evaluation key in [`Owners`]: under mutual TLS a key
/// belongs to the identity that registered it, and only that identity may query with it
/// (or register it again).
pub const KEY_KIND: &str = "fhe/key";

/// Most queries in one batch (128 answers of ~16.5 KB stay within the router's 4 MiB unary
/// message limit).
pub const MAX_BATCH: usize = 128;

/// Settings of the engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where compressed keys are stored by default (`<data_dir>/keys`); `None` = in memory.
    pub data_dir: Option<std::path::PathBuf>,
    /// Memory for decompressed keys, bytes (each ~90 MB; at least one key is always kept).
    pub cache_bytes: usize,
    /// Worker threads of the evaluation pool; 0 = one per core.
    pub threads: usize,
    /// Where compressed keys and their owners live instead (`--store`: `sqlite:DIR`, or
    /// a PostgreSQL database shared by replicas; see `store.rs`).
    pub store: veilgrid_kit::store_spec::StoreSpec,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            data_dir: None,
            cache_bytes: 4 * ServerKey::size_bytes(),
            threads: 0,
            store: veilgrid_kit::store_spec::StoreSpec::Default,
        }
    }
}

/// Models, keys and the evaluation pool. Shared (`Arc`) by the gRPC API and the handler.
pub struct Engine {
    models: Vec<FheModel>,
    store: KeyStore,
    cache: KeyCache,
    pool: rayon::ThreadPool,
    owners: Owners,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("models", &self.models.len())
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

fn key_id(bytes: &[u8]) -> Result<KeyId, FheServiceError> {
    let arr: [u8; 32] = bytes.try_into().map_err(|_| {
        FheServiceError::BadRequest(format!("key_id must be 32 bytes, got {}", bytes.len()))
    })?;
    Ok(KeyId(arr))
}

impl Engine {
    /// Compile the built-in models, open the key store, start the pool.
    pub fn new(config: &EngineConfig) -> Result<Self, FheServiceError> {
        let models = builtin_models()?
            .into_iter()
            .map(FheModel::compile)
            .collect::<Result<Vec<_>, _>>()?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(config.threads)
            .thread_name(|i| format!("fhe-eval-{i}"))
            .build()
            .map_err(|e| FheServiceError::Pool(e.to_string()))?;
        Ok(Self {
            models,
            store: KeyStore::open(&config.store, config.data_dir.as_deref())?,
            cache: KeyCache::with_budget(config.cache_bytes),
            pool,
            // with a shared store, ownership is shared too
            owners: Owners::open_store(&config.store, config.data_dir.as_deref())?,
        })
    }

    /// Refuse `caller` (`PERMISSION_DENIED`) unless it owns key `key_id` or nobody does
    /// (a key registered in a plaintext grid, or one not registered at all: the evaluation
    /// then reports the unknown key itself).
    pub fn check_key_owner(&self, key_id: &[u8], caller: Option<&Caller>) -> Result<(), Status> {
        self.owners.check(KEY_KIND, key_id, caller)
    }

    /// Record that `caller` registered key `key_id` (a no-op for the same caller again;
    /// `PERMISSION_DENIED` if another identity registered it first).
    pub fn claim_key(&self, key_id: &[u8], caller: Option<&Caller>) -> Result<(), Status> {
        self.owners.claim(KEY_KIND, key_id, caller)
    }

    /// The decompressed-key cache (for tests and diagnostics).
    pub fn cache(&self) -> &KeyCache {
        &self.cache
    }

    /// Run `f` on the evaluation pool and wait for it without blocking the async runtime.
    /// A panic inside `f` becomes an error; the worker survives.
    pub async fn on_pool<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Engine) -> Result<T, FheServiceError> + Send + 'static,
    ) -> Result<T, FheServiceError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let me = self.clone();
        self.pool.spawn(move || {
            let r = catch_unwind(AssertUnwindSafe(|| f(&me))).unwrap_or_else(|_| {
                Err(FheServiceError::Pool("an evaluation task panicked".into()))
            });
            let _ = tx.send(r);
        });
        rx.await
            .map_err(|_| FheServiceError::Pool("the evaluation pool stopped".into()))?
    }

    fn model(&self, name: &str) -> Result<&FheModel, FheServiceError> {
        self.models
            .iter()
            .find(|m| m.name() == name)
            .ok_or_else(|| FheServiceError::UnknownModel(name.to_owned()))
    }

    /// The models served, with their input schema.
    pub fn list_models(&self) -> pb::ListModelsResponse {
        let models = self
            .models
            .iter()
            .map(|m| {
                let q = m.model();
                let max = q.quantizer.max_level();
                pb::ModelInfo {
                    name: m.name().to_owned(),
                    kind: match q.kind {
                        ModelKind::Linear(_) => "linear".into(),
                        ModelKind::TreeEnsemble(_) => "tree_ensemble".into(),
                    },
                    n_inputs: q.n_features() as u32,
                    classes: q.classes.clone(),
                    inputs: (0..q.n_features())
                        .map(|i| pb::InputFeature {
                            name: q.feature_names.get(i).cloned().unwrap_or_default(),
                            min: q.quantizer.dequantize(i, 0).unwrap_or_default(),
                            max: q.quantizer.dequantize(i, max).unwrap_or_default(),
                        })
                        .collect(),
                    input_bits: q.input_bits(),
                    bootstraps_per_inference: m.bootstraps_per_inference() as u32,
                    parameter_set: params::PARAMETER_SET_NAME.into(),
                }
            })
            .collect();
        pb::ListModelsResponse { models }
    }

    /// Check an uploaded key (blocking; size limit, id = SHA-256 of the bytes, tfhe conformance
    /// against the service's parameter set) and store it. Nothing is stored unless every check
    /// passes; registering a stored key again changes nothing.
    pub fn register_key(
        &self,
        announced_id: &[u8],
        bytes: &[u8],
    ) -> Result<pb::RegisterKeyResponse, FheServiceError> {
        let id = key_id(announced_id)?;
        let max = params::MAX_COMPRESSED_SERVER_KEY_BYTES;
        if bytes.len() > max {
            return Err(FheServiceError::TooLarge {
                what: "compressed server key",
                len: bytes.len() as u64,
                max: max as u64,
            });
        }
        let already = self.store.contains(&id)? && KeyId::of(bytes) == id;
        if !already {
            let key = CompressedServerKey::from_bytes_with_id(bytes, id)?;
            self.store.put(&key.id(), bytes)?;
            tracing::info!(key = %id, bytes = bytes.len(), "registered an evaluation key");
        }
        Ok(pb::RegisterKeyResponse {
            key_id: id.0.to_vec().into(),
            stored_bytes: bytes.len() as u64,
            already_registered: already,
            parameter_set: params::PARAMETER_SET_NAME.into(),
        })
    }

    /// The decompressed key `id` (blocking: from the cache, or loaded from the store and
    /// decompressed).
    fn server_key(&self, id: &KeyId) -> Result<Arc<ServerKey>, FheServiceError> {
        self.cache.get_or_load(id, || {
            let t = Instant::now();
            let key = self.store.get(id)?.decompress()?;
            tracing::debug!(key = %id, ms = t.elapsed().as_millis() as u64, "decompressed a key");
            Ok(key)
        })
    }

    fn decode_queries(
        &self,
        model: &FheModel,
        id: &KeyId,
        queries: &[impl AsRef<[u8]>],
    ) -> Result<Vec<EncryptedQuery>, FheServiceError> {
        queries
            .iter()
            .enumerate()
            .map(|(i, bytes)| {
                let q = EncryptedQuery::from_bytes(bytes.as_ref(), model)
                    .map_err(|e| FheServiceError::Fhe(e).with_context(queries.len(), i))?;
                if q.key_id() != *id {
                    return Err(FheServiceError::BadRequest(format!(
                        "{}the query was encrypted for key {}, but the request names key {}",
                        index_prefix(queries.len(), i),
                        q.key_id(),
                        id
                    )));
                }
                Ok(q)
            })
            .collect()
    }

    /// Evaluate one query (blocking; run it with [`Engine::on_pool`]).
    pub fn infer(&self, req: &pb::InferRequest) -> Result<pb::InferResponse, FheServiceError> {
        let model = self.model(&req.model)?;
        let id = key_id(&req.key_id)?;
        let query = self
            .decode_queries(model, &id, std::slice::from_ref(&req.query))?
            .pop()
            .ok_or_else(|| FheServiceError::BadRequest("no query".into()))?;
        let key = self.server_key(&id)?;
        let t = Instant::now();
        let answer = veilgrid_fhe::evaluate(&key, model, &query)?;
        let eval_micros = t.elapsed().as_micros() as u64;
        Ok(pb::InferResponse {
            prediction: answer.to_bytes()?.into(),
            eval_micros,
        })
    }

    /// Evaluate a batch in parallel on the pool (blocking; run it with [`Engine::on_pool`]).
    /// Every query is decoded and checked before any is evaluated; one bad query refuses the
    /// batch with its index in the message.
    pub fn infer_batch(
        &self,
        req: &pb::InferBatchRequest,
    ) -> Result<pb::InferBatchResponse, FheServiceError> {
        let model = self.model(&req.model)?;
        let id = key_id(&req.key_id)?;
        if req.queries.is_empty() {
            return Err(FheServiceError::BadRequest("an empty batch".into()));
        }
        if req.queries.len() > MAX_BATCH {
            return Err(FheServiceError::BadRequest(format!(
                "a batch holds at most {MAX_BATCH} queries, got {}",
                req.queries.len()
            )));
        }
        let queries = self.decode_queries(model, &id, &req.queries)?;
        let key = self.server_key(&id)?;
        let t = Instant::now();
        let answers = veilgrid_fhe::evaluate_batch(&key, model, &queries);
        let eval_micros = t.elapsed().as_micros() as u64;
        let predictions = answers
            .into_iter()
            .map(|a| Ok(a?.to_bytes()?.into()))
            .collect::<Result<Vec<_>, FheServiceError>>()?;
        Ok(pb::InferBatchResponse {
            predictions,
            eval_micros,
        })
    }
}

fn index_prefix(n: usize, i: usize) -> String {
    if n > 1 {
        format!("query {i}: ")
    } else {
        String::new()
    }
}

impl FheServiceError {
    fn with_context(self, n: usize, i: usize) -> Self {
        if n > 1 {
            FheServiceError::BadRequest(format!("query {i}: {self}"))
        } else {
            self
        }
    }
}
