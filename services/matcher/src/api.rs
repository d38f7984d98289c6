//! The client-facing protocols, served through the router as byte completions:
//! `veilgrid/match/<rpc>/v1`, payload and completion the prost encodings of the
//! `veilgrid.matching.v1` request and response messages.

use std::sync::Arc;

use bytes::Bytes;
use prost::Message;
use tonic::Status;
use veilgrid_kit::provider::{Context, Handler};
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
    async fn complete(&self, _ctx: &Context, payload: Bytes) -> Result<Bytes, Status> {
        let n = &self.node;
        let out = match self.rpc {
            Rpc::Open => n
                .open(decode("OpenRoundRequest", &payload)?)?
                .encode_to_vec(),
            Rpc::Submit => n
                .submit(decode("SubmitShareRequest", &payload)?)?
                .encode_to_vec(),
            Rpc::Close => {
                n.close(decode("CloseRoundRequest", &payload)?)?;
                pb::CloseRoundResponse {}.encode_to_vec()
            }
            Rpc::Result => n
                .result(decode("ResultRequest", &payload)?)?
                .encode_to_vec(),
            Rpc::Fills => {
                // sealing is CPU work per order: keep it off the async threads, which the
                // MPC of other rounds needs to move its messages
                let req = decode("FillsRequest", &payload)?;
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
