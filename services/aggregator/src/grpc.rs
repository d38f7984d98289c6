//! The typed gRPC API (`veilgrid.aggregation.v1.Aggregation`).

use std::sync::Arc;

use tonic::{Request, Response, Status};
use veilgrid_kit::clock::now_ms;
use veilgrid_proto::aggregation::v1::{self as pb, aggregation_server::Aggregation};

use crate::rounds::Rounds;

/// The gRPC service over the shared [`Rounds`].
#[derive(Debug, Clone)]
pub struct AggregationService {
    pub(crate) rounds: Arc<Rounds>,
}

/// Run a blocking store operation off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    rounds: &Arc<Rounds>,
    f: impl FnOnce(&Rounds) -> Result<T, crate::AggError> + Send + 'static,
) -> Result<T, Status> {
    let rounds = rounds.clone();
    tokio::task::spawn_blocking(move || f(&rounds))
        .await
        .map_err(|e| Status::internal(format!("aggregation task: {e}")))?
        .map_err(Status::from)
}

#[tonic::async_trait]
impl Aggregation for AggregationService {
    async fn create_round(
        &self,
        request: Request<pb::CreateRoundRequest>,
    ) -> Result<Response<pb::RoundInfo>, Status> {
        let req = request.into_inner();
        blocking(&self.rounds, move |r| r.create(&req, now_ms()))
            .await
            .map(Response::new)
    }

    async fn get_round(
        &self,
        request: Request<pb::GetRoundRequest>,
    ) -> Result<Response<pb::RoundInfo>, Status> {
        let req = request.into_inner();
        blocking(&self.rounds, move |r| r.get(&req.round_id, now_ms()))
            .await
            .map(Response::new)
    }

    async fn submit(
        &self,
        request: Request<pb::SubmitRequest>,
    ) -> Result<Response<pb::SubmitResponse>, Status> {
        let req = request.into_inner();
        blocking(&self.rounds, move |r| r.submit(&req, now_ms()))
            .await
            .map(Response::new)
    }

    async fn member_work(
        &self,
        request: Request<pb::MemberWorkRequest>,
    ) -> Result<Response<pb::MemberWorkResponse>, Status> {
        let req = request.into_inner();
        blocking(&self.rounds, move |r| r.member_work(&req, now_ms()))
            .await
            .map(Response::new)
    }

    async fn member_check(
        &self,
        request: Request<pb::MemberCheckRequest>,
    ) -> Result<Response<pb::MemberCheckResponse>, Status> {
        let req = request.into_inner();
        blocking(&self.rounds, move |r| r.member_check(&req, now_ms()))
            .await
            .map(Response::new)
    }

    async fn member_respond(
        &self,
        request: Request<pb::MemberRespondRequest>,
    ) -> Result<Response<pb::MemberRespondResponse>, Status> {
        let req = request.into_inner();
        blocking(&self.rounds, move |r| r.member_respond(&req, now_ms()))
            .await
            .map(Response::new)
    }

    async fn result(
        &self,
        request: Request<pb::ResultRequest>,
    ) -> Result<Response<pb::ResultResponse>, Status> {
        let req = request.into_inner();
        blocking(&self.rounds, move |r| r.result(&req.round_id, now_ms()))
            .await
            .map(Response::new)
    }

    async fn list_rounds(
        &self,
        request: Request<pb::ListRoundsRequest>,
    ) -> Result<Response<pb::ListRoundsResponse>, Status> {
        let req = request.into_inner();
        blocking(&self.rounds, move |r| r.list(&req))
            .await
            .map(Response::new)
    }
}
