//! The client-facing protocols, served through the router as byte completions:
//! `veilgrid/match/<rpc>/v1`, payload and completion the prost encodings of the
//! `veilgrid.matching.v1` request and response messages.
//!
//! Under mutual TLS every call comes with the caller's identity (the router vouches
//! for it, `veilgrid_kit::auth`), and what a caller creates belongs to it
//! ([`Owners`]): the round it opens (only it may close it), each order it submits
//! (nobody else may submit under that order id in that round) and the key its fills
//! are sealed to (nobody else may submit orders with it or ask for its fills). Another
//! caller gets `PERMISSION_DENIED`. In a plaintext grid nobody is identified and these
//! checks let every call through.

use std::sync::Arc;

use bytes::Bytes;
use prost::Message;
use tonic::Status;
use veilgrid_kit::{
    auth_owners::Owners,
    provider::{Context, Handler},
};
use veilgrid_proto::matching::v1 as pb;

use crate::{MatchError, node::Node};

/// The calls a client makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rpc {
    /// `OpenRound`.
    Open,
    /// `SubmitShare`.
    Submit,
    /// `CloseRound`.
    Close,
    /// `Result`.
    Result,
    /// `Fills`.
    Fills,
    /// `Info`.
    Info,
    /// `Rates`.
    Rates,
    /// `RegisterCurrency`.
    Currency,
    /// `Currencies`.
    Currencies,
}

impl Rpc {
    /// All of them.
    pub const ALL: [Rpc; 9] = [
        Rpc::Open,
        Rpc::Submit,
        Rpc::Close,
        Rpc::Result,
        Rpc::Fills,
        Rpc::Info,
        Rpc::Rates,
        Rpc::Currency,
        Rpc::Currencies,
    ];

    /// The protocol name, `veilgrid/match/<rpc>/v1`.
    pub fn protocol(self) -> &'static str {
        match self {
            Rpc::Open => "veilgrid/match/open/v1",
            Rpc::Submit => "veilgrid/match/submit/v1",
            Rpc::Close => "veilgrid/match/close/v1",
            Rpc::Result => "veilgrid/match/result/v1",
            Rpc::Fills => "veilgrid/match/fills/v1",
            Rpc::Info => "veilgrid/match/info/v1",
            Rpc::Rates => "veilgrid/match/rates/v1",
            Rpc::Currency => "veilgrid/match/currency/v1",
            Rpc::Currencies => "veilgrid/match/currencies/v1",
        }
    }
}

/// The ownership kind of a round (by its 16-byte id): its opener closes it.
pub const ROUND_KIND: &str = "match/round";
/// The ownership kind of an order (by round id ‖ order id).
pub const ORDER_KIND: &str = "match/order";
/// The ownership kind of a trader's fill key (the X25519 key fills are sealed to).
pub const OWNER_KEY_KIND: &str = "match/owner-key";

fn order_key(round: &[u8], order: &[u8]) -> Vec<u8> {
    let mut k = round.to_vec();
    k.extend_from_slice(order);
    k
}

/// The handler of one protocol at one node.
pub(crate) struct Api {
    pub(crate) node: Arc<Node>,
    pub(crate) rpc: Rpc,
}

fn decode<M: Message + Default>(what: &'static str, b: &Bytes) -> Result<M, MatchError> {
    M::decode(b.as_ref()).map_err(|source| MatchError::Decode { what, source })
}

#[tonic::async_trait]
impl Handler for Api {
    async fn complete(&self, ctx: &Context, payload: Bytes) -> Result<Bytes, Status> {
        let n = &self.node;
        let owners: &Owners = &n.owners;
        let caller = ctx.caller.as_ref();
        let out = match self.rpc {
            Rpc::Open => {
                let req: pb::OpenRoundRequest = decode("OpenRoundRequest", &payload)?;
                owners.claim(ROUND_KIND, &req.round_id, caller)?;
                n.open(req)?.encode_to_vec()
            }
            Rpc::Submit => {
                let req: pb::SubmitShareRequest = decode("SubmitShareRequest", &payload)?;
                owners.claim(OWNER_KEY_KIND, &req.owner_seal_key, caller)?;
                owners.claim(ORDER_KIND, &order_key(&req.round_id, &req.order_id), caller)?;
                // opening the share and verifying its range proofs is CPU work: keep it
                // off the async threads
                let node = n.clone();
                tokio::task::spawn_blocking(move || node.submit(req))
                    .await
                    .map_err(|e| MatchError::Aborted(format!("verifying the order: {e}")))??
                    .encode_to_vec()
            }
            Rpc::Close => {
                let req: pb::CloseRoundRequest = decode("CloseRoundRequest", &payload)?;
                owners.check(ROUND_KIND, &req.round_id, caller)?;
                n.close(req)?;
                pb::CloseRoundResponse {}.encode_to_vec()
            }
            Rpc::Result => n
                .result(decode("ResultRequest", &payload)?)?
                .encode_to_vec(),
            Rpc::Fills => {
                // sealing is CPU work per order: keep it off the async threads, which the
                // MPC of other rounds needs to move its messages
                let req: pb::FillsRequest = decode("FillsRequest", &payload)?;
                owners.check(OWNER_KEY_KIND, &req.owner_seal_key, caller)?;
                let node = n.clone();
                tokio::task::spawn_blocking(move || node.fills(req))
                    .await
                    .map_err(|e| MatchError::Aborted(format!("sealing the fills: {e}")))??
                    .encode_to_vec()
            }
            Rpc::Info => {
                let _: pb::InfoRequest = decode("InfoRequest", &payload)?;
                n.info().encode_to_vec()
            }
            Rpc::Rates => n.rates(decode("RatesRequest", &payload)?)?.encode_to_vec(),
            Rpc::Currency => n
                .register_currency(decode("RegisterCurrencyRequest", &payload)?)?
                .encode_to_vec(),
            Rpc::Currencies => {
                let _: pb::CurrenciesRequest = decode("CurrenciesRequest", &payload)?;
                n.list_currencies().encode_to_vec()
            }
        };
        Ok(out.into())
    }
}
