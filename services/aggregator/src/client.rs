//! Callers of the aggregation service: round owners, clients and committee members, either
//! straight over gRPC or as byte completions through the router. Also builds a client's one
//! message from a round description.

use bytes::Bytes;
use prost::Message;
use rand_core::OsRng;
use tonic::Status;
use veilgrid_aggregation::{Client, Round};
use veilgrid_core::{protocol::ProtocolId, seal::SealPublicKey};
use veilgrid_kit::untrusted::GrpcChannel;
use veilgrid_proto::{
    aggregation::v1::{self as pb, aggregation_client::AggregationClient},
    grid::v1::{CompletionRequest, ListProvidersRequest, router_client::RouterClient},
};

use crate::{AggError, protocols as p};

/// Largest completion decoded from the router.
pub const MAX_COMPLETION: usize = 64 << 20;

#[derive(Debug, Clone)]
enum Transport {
    Direct(AggregationClient<GrpcChannel>),
    Router(RouterClient<GrpcChannel>),
}

/// A connection to the aggregation service. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AggClient {
    t: Transport,
}

fn channel(url: &str) -> Result<GrpcChannel, AggError> {
    Ok(veilgrid_kit::registration::router_channel(url)?)
}

impl AggClient {
    /// Talk to an aggregation server's gRPC API at `url`.
    pub fn direct(url: &str) -> Result<Self, AggError> {
        Ok(Self {
            t: Transport::Direct(
                AggregationClient::new(channel(url)?)
                    .max_decoding_message_size(MAX_COMPLETION)
                    .max_encoding_message_size(MAX_COMPLETION),
            ),
        })
    }

    /// [`AggClient::via_router`] over a connection secured by `security` (mutual TLS: the
    /// router learns this caller's identity from its certificate).
    pub fn via_router_secure(
        url: &str,
        security: &veilgrid_kit::tls::Security,
    ) -> Result<Self, AggError> {
        Ok(Self {
            t: Transport::Router(
                RouterClient::new(security.channel(url)?)
                    .max_decoding_message_size(MAX_COMPLETION)
                    .max_encoding_message_size(MAX_COMPLETION),
            ),
        })
    }

    /// Talk to the aggregation service through the router at `url` (byte completions).
    pub fn via_router(url: &str) -> Result<Self, AggError> {
        Ok(Self {
            t: Transport::Router(
                RouterClient::new(channel(url)?)
                    .max_decoding_message_size(MAX_COMPLETION)
                    .max_encoding_message_size(MAX_COMPLETION),
            ),
        })
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
        if resp.completion.len() > MAX_COMPLETION {
            return Err(Status::resource_exhausted("completion too large"));
        }
        Resp::decode(resp.completion)
            .map_err(|e| Status::internal(format!("undecodable {protocol} completion: {e}")))
    }

    /// Create a round.
    pub async fn create_round(
        &mut self,
        req: pb::CreateRoundRequest,
    ) -> Result<pb::RoundInfo, Status> {
        match &mut self.t {
            Transport::Direct(c) => Ok(c.create_round(req).await?.into_inner()),
            Transport::Router(r) => Self::complete(r, p::CREATE_ROUND, &req).await,
        }
    }

    /// A round's description and progress.
    pub async fn get_round(&mut self, round_id: &[u8]) -> Result<pb::RoundInfo, Status> {
        let req = pb::GetRoundRequest {
            round_id: Bytes::copy_from_slice(round_id),
        };
        match &mut self.t {
            Transport::Direct(c) => Ok(c.get_round(req).await?.into_inner()),
            Transport::Router(r) => Self::complete(r, p::GET_ROUND, &req).await,
        }
    }

    /// Send a client's message.
    pub async fn submit(&mut self, req: pb::SubmitRequest) -> Result<pb::SubmitResponse, Status> {
        match &mut self.t {
            Transport::Direct(c) => Ok(c.submit(req).await?.into_inner()),
            Transport::Router(r) => Self::complete(r, p::SUBMIT, &req).await,
        }
    }

    /// A member's pending rounds, with every share addressed to it.
    pub async fn member_work(
        &mut self,
        member_key: &SealPublicKey,
    ) -> Result<pb::MemberWorkResponse, Status> {
        self.member_work_after(member_key, Vec::new()).await
    }

    /// A member's pending rounds; for the rounds in `held`, only the shares after the cursor.
    pub async fn member_work_after(
        &mut self,
        member_key: &SealPublicKey,
        held: Vec<pb::ShareCursor>,
    ) -> Result<pb::MemberWorkResponse, Status> {
        let req = pb::MemberWorkRequest {
            member_key: Bytes::copy_from_slice(&member_key.to_bytes()),
            held,
        };
        match &mut self.t {
            Transport::Direct(c) => Ok(c.member_work(req).await?.into_inner()),
            Transport::Router(r) => Self::complete(r, p::MEMBER_WORK, &req).await,
        }
    }

    /// Send a member's share report.
    pub async fn member_check(
        &mut self,
        req: pb::MemberCheckRequest,
    ) -> Result<pb::MemberCheckResponse, Status> {
        match &mut self.t {
            Transport::Direct(c) => Ok(c.member_check(req).await?.into_inner()),
            Transport::Router(r) => Self::complete(r, p::MEMBER_CHECK, &req).await,
        }
    }

    /// Send a member's answer.
    pub async fn member_respond(
        &mut self,
        req: pb::MemberRespondRequest,
    ) -> Result<pb::MemberRespondResponse, Status> {
        match &mut self.t {
            Transport::Direct(c) => Ok(c.member_respond(req).await?.into_inner()),
            Transport::Router(r) => Self::complete(r, p::MEMBER_RESPOND, &req).await,
        }
    }

    /// The round's sum.
    pub async fn result(&mut self, round_id: &[u8]) -> Result<pb::ResultResponse, Status> {
        let req = pb::ResultRequest {
            round_id: Bytes::copy_from_slice(round_id),
        };
        match &mut self.t {
            Transport::Direct(c) => Ok(c.result(req).await?.into_inner()),
            Transport::Router(r) => Self::complete(r, p::RESULT, &req).await,
        }
    }

    /// Finished rounds after `after` (by id), for auditors.
    pub async fn list_rounds(
        &mut self,
        req: pb::ListRoundsRequest,
    ) -> Result<pb::ListRoundsResponse, Status> {
        match &mut self.t {
            Transport::Direct(c) => Ok(c.list_rounds(req).await?.into_inner()),
            Transport::Router(r) => Self::complete(r, p::LIST_ROUNDS, &req).await,
        }
    }
}

/// A committee member's public keys, as its router lease publishes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitteeKeys {
    /// X25519 key clients seal its shares to.
    pub seal: Bytes,
    /// Ed25519 key (provider id) its reports and answers are signed with.
    pub signing: Bytes,
}

impl CommitteeKeys {
    /// Fill the committee fields of a round request from `members`, in order.
    pub fn fill(members: &[CommitteeKeys], req: &mut pb::CreateRoundRequest) {
        req.committee_keys = members.iter().map(|k| k.seal.clone()).collect();
        req.committee_signing_keys = members.iter().map(|k| k.signing.clone()).collect();
    }
}

/// The keys of the committee members registered with the router (protocol [`p::MEMBER`]), in a
/// stable order (by provider id), at most `max`. The router only lists leases the provider
/// signed, so the two keys of one member belong together.
pub async fn committee_keys(router_url: &str, max: usize) -> Result<Vec<CommitteeKeys>, AggError> {
    committee_keys_secure(router_url, max, &veilgrid_kit::tls::Security::Plaintext).await
}

/// [`committee_keys`] over a connection secured by `security` (a mutual-TLS router).
pub async fn committee_keys_secure(
    router_url: &str,
    max: usize,
    security: &veilgrid_kit::tls::Security,
) -> Result<Vec<CommitteeKeys>, AggError> {
    let mut router = RouterClient::new(security.channel(router_url)?);
    let list = router
        .list_providers(ListProvidersRequest {
            protocol_id: Bytes::copy_from_slice(ProtocolId::from_name(p::MEMBER).as_bytes()),
        })
        .await
        .map_err(|status| AggError::Remote {
            what: "listing committee members",
            status,
        })?
        .into_inner();
    let mut members: Vec<_> = list
        .providers
        .into_iter()
        .filter(|s| s.serving)
        .filter_map(|s| s.info)
        .collect();
    members.sort_by(|a, b| a.provider_id.cmp(&b.provider_id));
    Ok(members
        .into_iter()
        .take(max)
        .map(|i| CommitteeKeys {
            seal: i.seal_public_key,
            signing: i.provider_id,
        })
        .collect())
}

/// A client's one message for the round described by `info`: `input` masked, its seed shared and
/// each share sealed to its member's key. Only public data leaves this function.
pub fn build_submission(
    info: &pb::RoundInfo,
    client: u64,
    input: &[u64],
) -> Result<pb::SubmitRequest, AggError> {
    let round = Round::from_bytes(&info.round)?;
    if round.id()[..] != info.round_id[..] {
        return Err(AggError::BadRequest(
            "round description does not match the round id".into(),
        ));
    }
    let msg = Client::new(&round, client)
        .encode(input)?
        .mask(&mut OsRng)?;
    Ok(pb::SubmitRequest {
        round_id: info.round_id.clone(),
        message: msg.to_bytes(&round).into(),
    })
}
