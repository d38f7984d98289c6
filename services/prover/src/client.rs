//! Callers of the prover (auditors, tools): straight over gRPC or as byte
//! completions through the router.

use bytes::Bytes;
use prost::Message;
use tonic::Status;
use veilgrid_core::protocol::ProtocolId;
use veilgrid_kit::untrusted::GrpcChannel;
use veilgrid_proto::{
    grid::v1::{CompletionRequest, router_client::RouterClient},
    prover::v1::{self as pb, prover_client::ProverClient as GrpcClient},
};

use crate::{ProverError, protocols as p};

/// Largest response accepted.
pub const MAX_RESPONSE: usize = 8 << 20;

#[derive(Debug, Clone)]
enum Transport {
    Direct(GrpcClient<GrpcChannel>),
    Router(RouterClient<GrpcChannel>),
}

/// A prover client.
#[derive(Debug, Clone)]
pub struct ProverClient {
    t: Transport,
}

fn channel(url: &str) -> Result<GrpcChannel, ProverError> {
    Ok(veilgrid_kit::registration::router_channel(url)?)
}

fn remote(what: &'static str) -> impl FnOnce(Status) -> ProverError {
    move |status| ProverError::Remote { what, status }
}

macro_rules! dispatch {
    ($self:ident, $what:literal, $proto:expr, $method:ident, $req:expr) => {{
        let req = $req;
        match &mut $self.t {
            Transport::Direct(c) => c
                .$method(req)
                .await
                .map(|r| r.into_inner())
                .map_err(remote($what)),
            Transport::Router(r) => complete(r, $proto, &req).await.map_err(remote($what)),
        }
    }};
}

async fn complete<Resp: Message + Default>(
    router: &mut RouterClient<GrpcChannel>,
    protocol: &str,
    req: &impl Message,
) -> Result<Resp, Status> {
    let resp = router
        .complete(CompletionRequest {
            protocol_id: Bytes::copy_from_slice(ProtocolId::from_name(protocol).as_bytes()),
            payload: req.encode_to_vec().into(),
            terms: None,
            idempotency_id: Bytes::new(),
            target_provider: Bytes::new(),
            stream_length: 0,
        })
        .await?
        .into_inner();
    if resp.completion.len() > MAX_RESPONSE {
        return Err(Status::resource_exhausted("completion too large"));
    }
    Resp::decode(resp.completion)
        .map_err(|e| Status::internal(format!("undecodable {protocol} completion: {e}")))
}

impl ProverClient {
    /// Talk to a prover's gRPC API at `url`.
    pub fn direct(url: &str) -> Result<Self, ProverError> {
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
    ) -> Result<Self, ProverError> {
        Ok(Self {
            t: Transport::Router(
                RouterClient::new(security.channel(url)?)
                    .max_decoding_message_size(MAX_RESPONSE)
                    .max_encoding_message_size(MAX_RESPONSE),
            ),
        })
    }

    /// Reach the prover through the router at `url` (byte completions).
    pub fn via_router(url: &str) -> Result<Self, ProverError> {
        Ok(Self {
            t: Transport::Router(
                RouterClient::new(channel(url)?)
                    .max_decoding_message_size(MAX_RESPONSE)
                    .max_encoding_message_size(MAX_RESPONSE),
            ),
        })
    }

    /// A checkpoint (`tree_size` 0 = latest; `oldest` = the first one).
    pub async fn checkpoint(
        &mut self,
        tree_size: u64,
        oldest: bool,
    ) -> Result<pb::GetCheckpointResponse, ProverError> {
        dispatch!(
            self,
            "GetCheckpoint",
            p::CHECKPOINT,
            get_checkpoint,
            pb::GetCheckpointRequest { tree_size, oldest }
        )
    }

    /// An inclusion proof.
    pub async fn inclusion(
        &mut self,
        index: u64,
        tree_size: u64,
    ) -> Result<pb::GetInclusionProofResponse, ProverError> {
        dispatch!(
            self,
            "GetInclusionProof",
            p::INCLUSION,
            get_inclusion_proof,
            pb::GetInclusionProofRequest { index, tree_size }
        )
    }

    /// A consistency bundle.
    pub async fn consistency(
        &mut self,
        older_size: u64,
        newer_size: u64,
    ) -> Result<pb::GetConsistencyProofResponse, ProverError> {
        dispatch!(
            self,
            "GetConsistencyProof",
            p::CONSISTENCY,
            get_consistency_proof,
            pb::GetConsistencyProofRequest {
                older_size,
                newer_size
            }
        )
    }

    /// Bundles of `[from, from + count)` against the checkpoint of `tree_size`.
    pub async fn bundles(
        &mut self,
        from_index: u64,
        count: u32,
        tree_size: u64,
    ) -> Result<pb::GetBundlesResponse, ProverError> {
        dispatch!(
            self,
            "GetBundles",
            p::BUNDLES,
            get_bundles,
            pb::GetBundlesRequest {
                from_index,
                count,
                tree_size
            }
        )
    }

    /// The verifying keys.
    pub async fn verifying_keys(&mut self) -> Result<pb::GetVerifyingKeysResponse, ProverError> {
        dispatch!(
            self,
            "GetVerifyingKeys",
            p::KEYS,
            get_verifying_keys,
            pb::GetVerifyingKeysRequest {}
        )
    }

    /// Prove with key `key_name`.
    pub async fn prove(
        &mut self,
        key_name: &str,
        witness_json: &str,
    ) -> Result<pb::ProveResponse, ProverError> {
        dispatch!(
            self,
            "Prove",
            p::PROVE,
            prove,
            pb::ProveRequest {
                key_name: key_name.to_owned(),
                witness_json: witness_json.to_owned()
            }
        )
    }

    /// Proofs with id > `after`.
    pub async fn proofs(
        &mut self,
        after: u64,
        limit: u32,
    ) -> Result<pb::ListProofsResponse, ProverError> {
        dispatch!(
            self,
            "ListProofs",
            p::PROOFS,
            list_proofs,
            pb::ListProofsRequest { after, limit }
        )
    }

    /// Key `key_name`'s proving key and model (to prove locally).
    pub async fn proving_key(
        &mut self,
        key_name: &str,
    ) -> Result<pb::GetProvingKeyResponse, ProverError> {
        dispatch!(
            self,
            "GetProvingKey",
            p::PROVING_KEY,
            get_proving_key,
            pb::GetProvingKeyRequest {
                key_name: key_name.to_owned()
            }
        )
    }

    /// Hand a locally made proof to the prover to be kept and logged.
    pub async fn submit_proof(
        &mut self,
        record: pb::ProofRecord,
    ) -> Result<pb::ProveResponse, ProverError> {
        dispatch!(
            self,
            "SubmitProof",
            p::SUBMIT,
            submit_proof,
            pb::SubmitProofRequest {
                record: Some(record)
            }
        )
    }

    /// The raw completion of `payload` for `protocol` through the router (`None`
    /// when this client talks to the prover directly): auditors keep the exact
    /// bytes, whose hash the provider's receipt covers.
    pub async fn router_completion(
        &mut self,
        protocol: &str,
        payload: Vec<u8>,
    ) -> Result<Option<Bytes>, Status> {
        let Transport::Router(router) = &mut self.t else {
            return Ok(None);
        };
        let resp = router
            .complete(CompletionRequest {
                protocol_id: Bytes::copy_from_slice(ProtocolId::from_name(protocol).as_bytes()),
                payload: payload.into(),
                terms: None,
                idempotency_id: Bytes::new(),
                target_provider: Bytes::new(),
                stream_length: 0,
            })
            .await?
            .into_inner();
        if resp.completion.len() > MAX_RESPONSE {
            return Err(Status::resource_exhausted("completion too large"));
        }
        Ok(Some(resp.completion))
    }
}
