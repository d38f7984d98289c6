//! The `veilgrid/fhe/...` byte completions: decode the prost request (size-limited by the
//! provider), run the same logic as the gRPC API on the evaluation pool, encode the response.

use std::sync::Arc;

use bytes::Bytes;
use prost::Message;
use tonic::Status;
use veilgrid_core::protocol::ProtocolId;
use veilgrid_kit::provider::{Context, Handler};
use veilgrid_proto::fhe::v1 as pb;

use crate::{engine::Engine, protocols as p};

/// Completes the FHE service's protocols ([`p::PROTOCOLS`]).
#[derive(Debug)]
pub struct FheHandler {
    engine: Arc<Engine>,
}

impl FheHandler {
    /// A handler over `engine`.
    pub fn new(engine: Arc<Engine>) -> Arc<Self> {
        Arc::new(Self { engine })
    }
}

fn decode<M: Message + Default>(what: &str, payload: Bytes) -> Result<M, Status> {
    M::decode(payload).map_err(|e| Status::invalid_argument(format!("{what}: {e}")))
}

fn is(ctx: &Context, name: &str) -> bool {
    ctx.protocol == ProtocolId::from_name(name)
}

#[tonic::async_trait]
impl Handler for FheHandler {
    async fn complete(&self, ctx: &Context, payload: Bytes) -> Result<Bytes, Status> {
        let e = &self.engine;
        let out = if is(ctx, p::REGISTER_KEY) {
            let req: pb::RegisterKeyRequest = decode("RegisterKeyRequest", payload)?;
            e.check_key_owner(&req.key_id, ctx.caller.as_ref())?;
            let resp = e
                .on_pool(move |e| e.register_key(&req.key_id, &req.compressed_server_key))
                .await?;
            e.claim_key(&resp.key_id, ctx.caller.as_ref())?;
            resp.encode_to_vec()
        } else if is(ctx, p::LIST_MODELS) {
            let _: pb::ListModelsRequest = decode("ListModelsRequest", payload)?;
            e.list_models().encode_to_vec()
        } else if is(ctx, p::INFER) {
            let req: pb::InferRequest = decode("InferRequest", payload)?;
            e.check_key_owner(&req.key_id, ctx.caller.as_ref())?;
            e.on_pool(move |e| e.infer(&req)).await?.encode_to_vec()
        } else if is(ctx, p::INFER_BATCH) {
            let req: pb::InferBatchRequest = decode("InferBatchRequest", payload)?;
            e.check_key_owner(&req.key_id, ctx.caller.as_ref())?;
            e.on_pool(move |e| e.infer_batch(&req))
                .await?
                .encode_to_vec()
        } else {
            return Err(Status::not_found(format!(
                "the FHE service does not serve protocol {}",
                ctx.protocol
            )));
        };
        Ok(out.into())
    }
}
