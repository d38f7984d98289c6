//! The `veilgrid/agg/...` byte completions: decode the prost request (size-limited), run the same
//! logic as the gRPC API, encode the response.

use std::sync::Arc;

use bytes::Bytes;
use prost::Message;
use tonic::Status;
use veilgrid_core::protocol::ProtocolId;
use veilgrid_kit::{
    auth_owners::Owners,
    clock::now_ms,
    provider::{Context, Handler},
};
use veilgrid_proto::aggregation::v1 as pb;

use crate::{grpc::blocking, protocols as p, rounds::Rounds};

/// Completes the aggregation server's protocols ([`p::SERVER_PROTOCOLS`]).
#[derive(Debug)]
pub struct AggregationHandler {
    rounds: Arc<Rounds>,
    max_payload: usize,
    /// Who created each round (kind [`ROUND_KIND`]); `None` = not tracked.
    owners: Option<Arc<Owners>>,
}

/// The ownership kind of an aggregation round in [`Owners`].
pub const ROUND_KIND: &str = "agg/round";

impl AggregationHandler {
    /// A handler over `rounds` refusing payloads above `max_payload` bytes.
    pub fn new(rounds: Arc<Rounds>, max_payload: usize) -> Arc<Self> {
        Arc::new(Self {
            rounds,
            max_payload,
            owners: None,
        })
    }

    /// The same, recording in `owners` the caller that creates each round and letting only
    /// that caller read its result (callers are identified under mutual TLS, see
    /// `veilgrid_kit::auth`; rounds created in plaintext belong to nobody).
    pub fn with_owners(rounds: Arc<Rounds>, max_payload: usize, owners: Arc<Owners>) -> Arc<Self> {
        Arc::new(Self {
            rounds,
            max_payload,
            owners: Some(owners),
        })
    }
}

fn decode<M: Message + Default>(what: &str, payload: &[u8]) -> Result<M, Status> {
    M::decode(payload).map_err(|e| Status::invalid_argument(format!("{what}: {e}")))
}

fn is(ctx: &Context, name: &str) -> bool {
    ctx.protocol == ProtocolId::from_name(name)
}

#[tonic::async_trait]
impl Handler for AggregationHandler {
    async fn complete(&self, ctx: &Context, payload: Bytes) -> Result<Bytes, Status> {
        if payload.len() > self.max_payload {
            return Err(Status::resource_exhausted(format!(
                "aggregation request of {} bytes exceeds the limit of {} bytes",
                payload.len(),
                self.max_payload
            )));
        }
        let r = &self.rounds;
        let out = if is(ctx, p::CREATE_ROUND) {
            let req: pb::CreateRoundRequest = decode("CreateRoundRequest", &payload)?;
            let info = blocking(r, move |r| r.create(&req, now_ms())).await?;
            if let Some(o) = &self.owners {
                o.claim(ROUND_KIND, &info.round_id, ctx.caller.as_ref())?;
            }
            info.encode_to_vec()
        } else if is(ctx, p::GET_ROUND) {
            let req: pb::GetRoundRequest = decode("GetRoundRequest", &payload)?;
            blocking(r, move |r| r.get(&req.round_id, now_ms()))
                .await?
                .encode_to_vec()
        } else if is(ctx, p::SUBMIT) {
            let req: pb::SubmitRequest = decode("SubmitRequest", &payload)?;
            blocking(r, move |r| r.submit(&req, now_ms()))
                .await?
                .encode_to_vec()
        } else if is(ctx, p::MEMBER_WORK) {
            let req: pb::MemberWorkRequest = decode("MemberWorkRequest", &payload)?;
            blocking(r, move |r| r.member_work(&req, now_ms()))
                .await?
                .encode_to_vec()
        } else if is(ctx, p::MEMBER_CHECK) {
            let req: pb::MemberCheckRequest = decode("MemberCheckRequest", &payload)?;
            blocking(r, move |r| r.member_check(&req, now_ms()))
                .await?
                .encode_to_vec()
        } else if is(ctx, p::MEMBER_RESPOND) {
            let req: pb::MemberRespondRequest = decode("MemberRespondRequest", &payload)?;
            blocking(r, move |r| r.member_respond(&req, now_ms()))
                .await?
                .encode_to_vec()
        } else if is(ctx, p::RESULT) {
            let req: pb::ResultRequest = decode("ResultRequest", &payload)?;
            if let Some(o) = &self.owners {
                o.check(ROUND_KIND, &req.round_id, ctx.caller.as_ref())?;
            }
            blocking(r, move |r| r.result(&req.round_id, now_ms()))
                .await?
                .encode_to_vec()
        } else if is(ctx, p::LIST_ROUNDS) {
            let req: pb::ListRoundsRequest = decode("ListRoundsRequest", &payload)?;
            blocking(r, move |r| r.list(&req)).await?.encode_to_vec()
        } else {
            return Err(Status::not_found(format!(
                "the aggregation server does not serve protocol {}",
                ctx.protocol
            )));
        };
        Ok(out.into())
    }
}
