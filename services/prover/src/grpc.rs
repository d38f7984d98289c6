//! The typed gRPC API `veilgrid.prover.v1.Prover`.

use tonic::{Request, Response, Status};
use veilgrid_proto::prover::v1::{self as pb, prover_server};

use crate::api::{Prover, blocking};

/// The gRPC service over a [`Prover`].
#[derive(Debug, Clone)]
pub struct ProverService {
    /// The state.
    pub prover: Prover,
}

macro_rules! call {
    ($self:ident, $req:ident, $method:ident) => {{
        let p = $self.prover.clone();
        let r = $req.into_inner();
        Ok(Response::new(blocking(move || p.$method(&r)).await?))
    }};
}

#[tonic::async_trait]
impl prover_server::Prover for ProverService {
    async fn append_receipts(
        &self,
        req: Request<pb::AppendReceiptsRequest>,
    ) -> Result<Response<pb::AppendReceiptsResponse>, Status> {
        call!(self, req, append_receipts)
    }

    async fn get_checkpoint(
        &self,
        req: Request<pb::GetCheckpointRequest>,
    ) -> Result<Response<pb::GetCheckpointResponse>, Status> {
        call!(self, req, checkpoint)
    }

    async fn get_inclusion_proof(
        &self,
        req: Request<pb::GetInclusionProofRequest>,
    ) -> Result<Response<pb::GetInclusionProofResponse>, Status> {
        call!(self, req, inclusion)
    }

    async fn get_consistency_proof(
        &self,
        req: Request<pb::GetConsistencyProofRequest>,
    ) -> Result<Response<pb::GetConsistencyProofResponse>, Status> {
        call!(self, req, consistency)
    }

    async fn get_bundles(
        &self,
        req: Request<pb::GetBundlesRequest>,
    ) -> Result<Response<pb::GetBundlesResponse>, Status> {
        call!(self, req, bundles)
    }

    async fn get_verifying_keys(
        &self,
        _req: Request<pb::GetVerifyingKeysRequest>,
    ) -> Result<Response<pb::GetVerifyingKeysResponse>, Status> {
        let p = self.prover.clone();
        Ok(Response::new(blocking(move || p.verifying_keys()).await?))
    }

    async fn prove(
        &self,
        req: Request<pb::ProveRequest>,
    ) -> Result<Response<pb::ProveResponse>, Status> {
        let p = self.prover.clone();
        let r = req.into_inner();
        Ok(Response::new(blocking(move || p.prove(&r)).await?.0))
    }

    async fn list_proofs(
        &self,
        req: Request<pb::ListProofsRequest>,
    ) -> Result<Response<pb::ListProofsResponse>, Status> {
        call!(self, req, proofs)
    }

    async fn get_proving_key(
        &self,
        req: Request<pb::GetProvingKeyRequest>,
    ) -> Result<Response<pb::GetProvingKeyResponse>, Status> {
        call!(self, req, proving_key)
    }

    async fn submit_proof(
        &self,
        req: Request<pb::SubmitProofRequest>,
    ) -> Result<Response<pb::ProveResponse>, Status> {
        let p = self.prover.clone();
        let r = req.into_inner();
        Ok(Response::new(blocking(move || p.submit(&r)).await?.0))
    }
}
