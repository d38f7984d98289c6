//! The prover's calls as byte completions through the router ([`crate::protocols`]):
//! decode the prost request (size-limited), run the same call as the gRPC API,
//! encode the response.

use bytes::Bytes;
use prost::Message;
use tonic::Status;
use veilgrid_core::protocol::ProtocolId;
use veilgrid_kit::provider::{Context, Handler};
use veilgrid_proto::prover::v1 as pb;

use crate::{
    api::{Prover, blocking},
    protocols as p,
};

/// Largest request payload (a `ProveRequest` carries at most a 1 MiB witness).
pub const MAX_PAYLOAD: usize = (1 << 20) + 4096;

/// Completes the prover's protocols.
#[derive(Debug, Clone)]
pub struct ProverHandler {
    prover: Prover,
}

impl ProverHandler {
    /// A handler over `prover`.
    pub fn new(prover: Prover) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self { prover })
    }
}

fn decode<M: Message + Default>(what: &str, payload: &[u8]) -> Result<M, Status> {
    M::decode(payload).map_err(|e| Status::invalid_argument(format!("{what}: {e}")))
}

#[tonic::async_trait]
impl Handler for ProverHandler {
    async fn complete(&self, ctx: &Context, payload: Bytes) -> Result<Bytes, Status> {
        if payload.len() > MAX_PAYLOAD {
            return Err(Status::resource_exhausted(format!(
                "prover request of {} bytes exceeds the limit of {MAX_PAYLOAD} bytes",
                payload.len()
            )));
        }
        let pr = self.prover.clone();
        let is = |name: &str| ctx.protocol == ProtocolId::from_name(name);
        let out: Vec<u8> = if is(p::CHECKPOINT) {
            let r: pb::GetCheckpointRequest = decode("GetCheckpointRequest", &payload)?;
            blocking(move || pr.checkpoint(&r)).await?.encode_to_vec()
        } else if is(p::INCLUSION) {
            let r: pb::GetInclusionProofRequest = decode("GetInclusionProofRequest", &payload)?;
            blocking(move || pr.inclusion(&r)).await?.encode_to_vec()
        } else if is(p::CONSISTENCY) {
            let r: pb::GetConsistencyProofRequest = decode("GetConsistencyProofRequest", &payload)?;
            blocking(move || pr.consistency(&r)).await?.encode_to_vec()
        } else if is(p::BUNDLES) {
            let r: pb::GetBundlesRequest = decode("GetBundlesRequest", &payload)?;
            blocking(move || pr.bundles(&r)).await?.encode_to_vec()
        } else if is(p::KEYS) {
            blocking(move || pr.verifying_keys()).await?.encode_to_vec()
        } else if is(p::PROOFS) {
            let r: pb::ListProofsRequest = decode("ListProofsRequest", &payload)?;
            blocking(move || pr.proofs(&r)).await?.encode_to_vec()
        } else if is(p::PROVE) {
            let r: pb::ProveRequest = decode("ProveRequest", &payload)?;
            blocking(move || pr.prove(&r)).await?.1
        } else if is(p::PROVING_KEY) {
            let r: pb::GetProvingKeyRequest = decode("GetProvingKeyRequest", &payload)?;
            blocking(move || pr.proving_key(&r)).await?.encode_to_vec()
        } else if is(p::SUBMIT) {
            let r: pb::SubmitProofRequest = decode("SubmitProofRequest", &payload)?;
            blocking(move || pr.submit(&r)).await?.1
        } else {
            return Err(Status::unimplemented("not a prover protocol"));
        };
        Ok(out.into())
    }
}
