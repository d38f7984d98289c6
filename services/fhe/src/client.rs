//! The institution's side: talk to the FHE service directly (gRPC) or through the router (byte
//! completions), register an evaluation key in 1 MiB chunks with progress, and run encrypted
//! queries end to end (encrypt locally, evaluate remotely, decrypt locally).

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use prost::Message;
use tonic::Status;
use veilgrid_core::protocol::ProtocolId;
use veilgrid_fhe::{ClientKey, EncryptedPrediction, FheModel, KeyId, Prediction};
use veilgrid_kit::chunks::{self, CHUNK_SIZE};
use veilgrid_kit::untrusted::GrpcChannel;
use veilgrid_proto::{
    fhe::v1::{self as pb, fhe_client::FheClient as GrpcClient},
    grid::v1::{
        CompletionChunk, CompletionRequest, CompletionResponse, Terms, completion_chunk::Part,
        provider_client::ProviderClient, router_client::RouterClient,
    },
};

use crate::{FheServiceError, MAX_MESSAGE, protocols as p};

/// Deadline given to the router with every completion.
pub const DEADLINE: Duration = Duration::from_secs(600);

/// Largest response decoded (a full batch of predictions: 128 x ~16.5 KB).
pub const MAX_RESPONSE: usize = 64 << 20;

#[derive(Debug, Clone)]
enum Transport {
    Direct(GrpcClient<GrpcChannel>),
    Router(RouterClient<GrpcChannel>),
    Provider(ProviderClient<GrpcChannel>),
}

/// A connection to the FHE service. Cheap to clone.
#[derive(Debug, Clone)]
pub struct FheClient {
    t: Transport,
}

/// One row's decrypted prediction and the time from encryption to decryption.
#[derive(Debug, Clone, Copy)]
pub struct RowResult {
    /// The decrypted prediction.
    pub prediction: Prediction,
    /// Encrypt + send + evaluate + receive + decrypt.
    pub latency: Duration,
    /// Time the service reported for evaluation.
    pub eval: Duration,
}

fn remote(what: &'static str) -> impl FnOnce(Status) -> FheServiceError {
    move |status| FheServiceError::Remote { what, status }
}

fn unreachable_direct() -> Result<CompletionResponse, Status> {
    Err(Status::internal(
        "the direct transport has no byte completions",
    ))
}

fn channel(url: &str) -> Result<GrpcChannel, FheServiceError> {
    Ok(veilgrid_kit::registration::router_channel(url)?)
}

impl FheClient {
    /// Talk to an FHE server's gRPC API at `url`.
    pub fn direct(url: &str) -> Result<Self, FheServiceError> {
        Ok(Self {
            t: Transport::Direct(
                GrpcClient::new(channel(url)?)
                    .max_decoding_message_size(MAX_RESPONSE)
                    .max_encoding_message_size(MAX_RESPONSE),
            ),
        })
    }

    /// [`Self::via_router`] over `security` (mutual TLS with the caller's certificate:
    /// what it registers or creates belongs to that identity).
    pub fn via_router_secure(
        url: &str,
        security: &veilgrid_kit::tls::Security,
    ) -> Result<Self, FheServiceError> {
        Ok(Self {
            t: Transport::Router(
                RouterClient::new(security.channel(url)?)
                    .max_decoding_message_size(MAX_RESPONSE)
                    .max_encoding_message_size(MAX_RESPONSE),
            ),
        })
    }

    /// Talk to the FHE service through the router at `url` (byte completions).
    pub fn via_router(url: &str) -> Result<Self, FheServiceError> {
        Ok(Self {
            t: Transport::Router(
                RouterClient::new(channel(url)?)
                    .max_decoding_message_size(MAX_RESPONSE)
                    .max_encoding_message_size(MAX_RESPONSE),
            ),
        })
    }

    /// Send the byte completions straight to one FHE provider's `Provider` service at `url`
    /// (the calls and framing the router makes, without a router; for tests and trusted
    /// networks).
    pub fn provider(url: &str) -> Result<Self, FheServiceError> {
        Ok(Self {
            t: Transport::Provider(
                ProviderClient::new(channel(url)?)
                    .max_decoding_message_size(MAX_RESPONSE)
                    .max_encoding_message_size(MAX_RESPONSE),
            ),
        })
    }

    fn request(protocol: &str, payload: Bytes) -> CompletionRequest {
        CompletionRequest {
            protocol_id: Bytes::copy_from_slice(ProtocolId::from_name(protocol).as_bytes()),
            payload,
            // Tree batches take seconds per row: a generous deadline instead of the router's
            // default.
            terms: Some(Terms {
                deadline_unix_ms: veilgrid_kit::clock::now_ms() + DEADLINE.as_millis() as u64,
                ..Terms::default()
            }),
            idempotency_id: Bytes::new(),
            target_provider: Bytes::new(),
            stream_length: 0,
        }
    }

    async fn complete<Resp: Message + Default>(
        t: &mut Transport,
        protocol: &'static str,
        req: &impl Message,
    ) -> Result<Resp, FheServiceError> {
        let request = Self::request(protocol, req.encode_to_vec().into());
        let resp = match t {
            Transport::Router(r) => r.complete(request).await,
            Transport::Provider(p) => p.complete(request).await,
            Transport::Direct(_) => {
                return Err(FheServiceError::BadRequest(
                    "byte completions need a router or provider transport".into(),
                ));
            }
        }
        .map_err(remote(protocol))?
        .into_inner();
        Resp::decode(resp.completion).map_err(|e| {
            FheServiceError::BadRequest(format!("undecodable {protocol} completion: {e}"))
        })
    }

    /// Upload the serialized compressed server key `key` (whose SHA-256 is `id`) in 1 MiB
    /// chunks; `progress` is called with the bytes handed to the transport so far.
    pub async fn register_key(
        &mut self,
        id: KeyId,
        key: Bytes,
        progress: impl Fn(u64) + Send + Sync + 'static,
    ) -> Result<pb::RegisterKeyResponse, FheServiceError> {
        let total = key.len() as u64;
        match &mut self.t {
            Transport::Direct(c) => {
                let n = key.len().div_ceil(CHUNK_SIZE).max(1);
                let frames = (0..n).map(move |i| {
                    let data = key.slice(i * CHUNK_SIZE..((i + 1) * CHUNK_SIZE).min(key.len()));
                    progress(((i + 1) * CHUNK_SIZE).min(total as usize) as u64);
                    pb::RegisterKeyChunk {
                        key_id: if i == 0 {
                            Bytes::copy_from_slice(&id.0)
                        } else {
                            Bytes::new()
                        },
                        total_bytes: if i == 0 { total } else { 0 },
                        data,
                    }
                });
                Ok(c.register_key(futures::stream::iter(frames))
                    .await
                    .map_err(remote(p::REGISTER_KEY))?
                    .into_inner())
            }
            t => {
                let payload = pb::RegisterKeyRequest {
                    key_id: Bytes::copy_from_slice(&id.0),
                    compressed_server_key: key,
                }
                .encode_to_vec();
                let frames = chunks::request_frames(Self::request(p::REGISTER_KEY, payload.into()));
                let mut sent = 0u64;
                let stream = futures::stream::iter(frames).inspect(move |f: &CompletionChunk| {
                    if let Some(Part::Data(d)) = &f.part {
                        sent += d.len() as u64;
                        progress(sent.min(total));
                    }
                });
                let resp: CompletionResponse = match t {
                    Transport::Router(r) => {
                        let frames = r
                            .complete_stream(stream)
                            .await
                            .map_err(remote(p::REGISTER_KEY))?
                            .into_inner();
                        chunks::collect_response(frames, MAX_MESSAGE).await
                    }
                    Transport::Provider(pr) => {
                        let frames = pr
                            .complete_stream(stream)
                            .await
                            .map_err(remote(p::REGISTER_KEY))?
                            .into_inner();
                        chunks::collect_response(frames, MAX_MESSAGE).await
                    }
                    Transport::Direct(_) => unreachable_direct(),
                }
                .map_err(remote(p::REGISTER_KEY))?;
                pb::RegisterKeyResponse::decode(resp.completion).map_err(|e| {
                    FheServiceError::BadRequest(format!("undecodable register_key completion: {e}"))
                })
            }
        }
    }

    /// The models served, with their input schema.
    pub async fn list_models(&mut self) -> Result<pb::ListModelsResponse, FheServiceError> {
        let req = pb::ListModelsRequest {};
        match &mut self.t {
            Transport::Direct(c) => Ok(c
                .list_models(req)
                .await
                .map_err(remote(p::LIST_MODELS))?
                .into_inner()),
            t => Self::complete(t, p::LIST_MODELS, &req).await,
        }
    }

    /// Evaluate one serialized encrypted query.
    pub async fn infer(
        &mut self,
        req: pb::InferRequest,
    ) -> Result<pb::InferResponse, FheServiceError> {
        match &mut self.t {
            Transport::Direct(c) => Ok(c.infer(req).await.map_err(remote(p::INFER))?.into_inner()),
            t => Self::complete(t, p::INFER, &req).await,
        }
    }

    /// Evaluate several serialized encrypted queries in one request (in parallel server-side).
    pub async fn infer_batch(
        &mut self,
        req: pb::InferBatchRequest,
    ) -> Result<pb::InferBatchResponse, FheServiceError> {
        match &mut self.t {
            Transport::Direct(c) => Ok(c
                .infer_batch(req)
                .await
                .map_err(remote(p::INFER_BATCH))?
                .into_inner()),
            t => Self::complete(t, p::INFER_BATCH, &req).await,
        }
    }

    /// Encrypt one row of raw feature values under `key` for `model`, have it evaluated, and
    /// decrypt the answer. Scaling and quantization happen here, on the client.
    pub async fn predict(
        &mut self,
        key: &ClientKey,
        model: &FheModel,
        raw: &[f64],
    ) -> Result<RowResult, FheServiceError> {
        let t = Instant::now();
        let (query, pending) = key.encrypt(model, raw)?;
        let resp = self
            .infer(pb::InferRequest {
                model: model.name().to_owned(),
                key_id: Bytes::copy_from_slice(&key.key_id().0),
                query: query.to_bytes()?.into(),
            })
            .await?;
        let answer = EncryptedPrediction::from_bytes(&resp.prediction)?;
        let prediction = pending.decrypt(key, &answer)?;
        Ok(RowResult {
            prediction,
            latency: t.elapsed(),
            eval: Duration::from_micros(resp.eval_micros),
        })
    }

    /// [`FheClient::predict`] for several rows in one `InferBatch` request (evaluated in
    /// parallel); every row's latency is that of the whole batch.
    pub async fn predict_batch(
        &mut self,
        key: &ClientKey,
        model: &FheModel,
        rows: &[Vec<f64>],
    ) -> Result<Vec<RowResult>, FheServiceError> {
        let t = Instant::now();
        let mut queries = Vec::with_capacity(rows.len());
        let mut pendings = Vec::with_capacity(rows.len());
        for row in rows {
            let (q, pending) = key.encrypt(model, row)?;
            queries.push(Bytes::from(q.to_bytes()?));
            pendings.push(pending);
        }
        let resp = self
            .infer_batch(pb::InferBatchRequest {
                model: model.name().to_owned(),
                key_id: Bytes::copy_from_slice(&key.key_id().0),
                queries,
            })
            .await?;
        if resp.predictions.len() != pendings.len() {
            return Err(FheServiceError::BadRequest(format!(
                "the service answered {} of {} queries",
                resp.predictions.len(),
                pendings.len()
            )));
        }
        let mut out = Vec::with_capacity(rows.len());
        for (bytes, pending) in resp.predictions.iter().zip(pendings) {
            let answer = EncryptedPrediction::from_bytes(bytes)?;
            out.push(pending.decrypt(key, &answer)?);
        }
        let latency = t.elapsed();
        Ok(out
            .into_iter()
            .map(|prediction| RowResult {
                prediction,
                latency,
                eval: Duration::from_micros(resp.eval_micros),
            })
            .collect())
    }
}
