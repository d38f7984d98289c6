//! What a trader does, through the router only: open a round at the three nodes,
//! share an order and seal each share to its node, close, fetch the signed public
//! outcome (checking all three signatures), and open and reconstruct its fills.

use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use veilgrid_core::{
    protocol::ProtocolId,
    seal::{SealKeyPair, SealPublicKey},
    sign::VerifierKey,
};
use veilgrid_kit::tls::Security;
use veilgrid_kit::untrusted::GrpcChannel;
use veilgrid_mpc::{
    FillShare, Order, OrderId, OrderPayload, OrderStatement, RoundOutcome, reconstruct_fill,
    share_order,
};
use veilgrid_proto::{
    grid::v1::{CompletionRequest, ListProvidersRequest, router_client::RouterClient},
    matching::v1 as pb,
};

use crate::{
    MatchError,
    api::Rpc,
    node::{FILL_INFO, ORDER_INFO, outcome_message, share_aad},
};

/// What a client knows about one node (from the router's provider list).
#[derive(Debug, Clone)]
pub struct NodeKey {
    /// Its provider id (Ed25519 public key).
    pub provider_id: [u8; 32],
    /// Its X25519 key, which order shares are sealed to.
    pub seal_key: SealPublicKey,
}

/// A round's public outcome with the three nodes' signatures checked.
#[derive(Debug, Clone)]
pub struct SignedOutcome {
    /// The decoded outcome.
    pub outcome: RoundOutcome,
    /// The canonical bytes the nodes signed.
    pub bytes: Bytes,
    /// The rate `p_min · ratio^k*` (0 without trade).
    pub rate: f64,
    /// Orders dropped at the input check.
    pub dropped: Vec<Bytes>,
    /// Why each was dropped (same order as `dropped`).
    pub drop_reasons: Vec<String>,
    /// The public record: every accepted order with its statement (commitments and
    /// range proofs), checked to hash to the signed order-set hash.
    pub record: Vec<(OrderId, OrderStatement)>,
}

impl SignedOutcome {
    /// Verify every range proof of the record (one batch) against the signed
    /// outcome: what an auditor does.
    pub fn verify_proofs(&self) -> Result<(), MatchError> {
        veilgrid_mpc::verify_round_record(
            &self.outcome.round,
            self.outcome.levels,
            &self.record,
            &self.outcome.order_set_hash,
        )?;
        Ok(())
    }
}

/// A client of the three matching nodes, through the router.
#[derive(Debug, Clone)]
pub struct MatchClient {
    router: RouterClient<GrpcChannel>,
    nodes: [NodeKey; 3],
}

impl MatchClient {
    /// Talk to the nodes (party order) through the router at `router_url`.
    pub fn new(router_url: &str, nodes: [NodeKey; 3]) -> Result<Self, MatchError> {
        Self::new_secure(router_url, nodes, &Security::Plaintext)
    }

    /// [`Self::new`] over a connection secured by `security` (mutual TLS with the
    /// caller's certificate: the rounds it opens and the orders it submits belong to
    /// that identity, and only it may close them or read their fills).
    pub fn new_secure(
        router_url: &str,
        nodes: [NodeKey; 3],
        security: &Security,
    ) -> Result<Self, MatchError> {
        let channel = security.channel(router_url)?;
        Ok(MatchClient {
            router: RouterClient::new(channel)
                .max_decoding_message_size(64 << 20)
                .max_encoding_message_size(64 << 20),
            nodes,
        })
    }

    /// Find the three nodes through the router: every serving provider of
    /// `veilgrid/match/info/v1` is asked which party it is; exactly one per party
    /// must answer, with the keys the router lists for it.
    pub async fn discover(router_url: &str) -> Result<Self, MatchError> {
        Self::discover_secure(router_url, &Security::Plaintext).await
    }

    /// [`Self::discover`] over a connection secured by `security` (see
    /// [`Self::new_secure`]).
    pub async fn discover_secure(
        router_url: &str,
        security: &Security,
    ) -> Result<Self, MatchError> {
        let channel = security.channel(router_url)?;
        let mut router = RouterClient::new(channel);
        let listed = router
            .list_providers(ListProvidersRequest {
                protocol_id: Bytes::copy_from_slice(
                    ProtocolId::from_name(Rpc::Info.protocol()).as_bytes(),
                ),
            })
            .await
            .map_err(|status| MatchError::Remote {
                what: "listing the matching nodes",
                status,
            })?
            .into_inner();
        let mut found: [Option<NodeKey>; 3] = [None, None, None];
        for p in listed.providers.iter().filter(|p| p.serving) {
            let Some(info) = &p.info else { continue };
            let provider_id: [u8; 32] = info.provider_id.as_ref().try_into().map_err(|_| {
                MatchError::BadRequest("the router lists a malformed provider id".into())
            })?;
            let resp: pb::InfoResponse =
                call_router(&router, &provider_id, Rpc::Info, &pb::InfoRequest {}).await?;
            if resp.seal_public_key != info.seal_public_key || resp.provider_id != info.provider_id
            {
                return Err(MatchError::BadRequest(
                    "a node's keys differ from its registration".into(),
                ));
            }
            let party = resp.party as usize;
            if party >= 3 || found[party].is_some() {
                return Err(MatchError::BadRequest(format!(
                    "two nodes claim party {party}, or it is out of range"
                )));
            }
            found[party] = Some(NodeKey {
                provider_id,
                seal_key: SealPublicKey::from_bytes(&resp.seal_public_key)?,
            });
        }
        let [Some(a), Some(b), Some(c)] = found else {
            return Err(MatchError::Peer {
                party: 0,
                reason: "the router does not list all three matching nodes".into(),
            });
        };
        Self::new_secure(router_url, [a, b, c], security)
    }

    /// The nodes, by party.
    pub fn nodes(&self) -> &[NodeKey; 3] {
        &self.nodes
    }

    /// The rate table and history of cleared rounds, as node 0 keeps them.
    pub async fn rates(&self, numeraire: &str) -> Result<pb::RatesResponse, MatchError> {
        let req = pb::RatesRequest {
            numeraire: numeraire.to_owned(),
        };
        self.call(0, Rpc::Rates, &req).await
    }

    async fn call<Req: Message, Resp: Message + Default>(
        &self,
        party: usize,
        rpc: Rpc,
        req: &Req,
    ) -> Result<Resp, MatchError> {
        call_router(&self.router, &self.nodes[party].provider_id, rpc, req).await
    }
}

async fn call_router<Req: Message, Resp: Message + Default>(
    router: &RouterClient<GrpcChannel>,
    target: &[u8; 32],
    rpc: Rpc,
    req: &Req,
) -> Result<Resp, MatchError> {
    let resp = router
        .clone()
        .complete(CompletionRequest {
            protocol_id: Bytes::copy_from_slice(ProtocolId::from_name(rpc.protocol()).as_bytes()),
            payload: req.encode_to_vec().into(),
            terms: None,
            idempotency_id: Bytes::new(),
            target_provider: Bytes::copy_from_slice(target),
            stream_length: 0,
        })
        .await
        .map_err(|status| MatchError::Remote {
            what: rpc.protocol(),
            status,
        })?
        .into_inner();
    Resp::decode(resp.completion.as_ref()).map_err(|source| MatchError::Decode {
        what: rpc.protocol(),
        source,
    })
}

impl MatchClient {
    /// Open the round at all three nodes.
    pub async fn open(&self, req: &pb::OpenRoundRequest) -> Result<(), MatchError> {
        for p in 0..3 {
            let _: pb::OpenRoundResponse = self.call(p, Rpc::Open, req).await?;
        }
        Ok(())
    }

    /// Share `order`, seal share `i` to node `i` and submit it; fills will be sealed to
    /// `owner`. Returns the order's sequence number (its place in the book).
    pub async fn submit(
        &self,
        round: [u8; 16],
        levels: u32,
        id: &OrderId,
        order: &Order,
        owner: &SealPublicKey,
    ) -> Result<u64, MatchError> {
        let shares = share_order(round, id, order, levels)?;
        self.submit_shares(round, id, &shares, owner).await
    }

    /// Seal share `i` to node `i` and submit it (for callers that shared the order
    /// themselves, e.g. with their own random generator): node 0 first, which numbers
    /// the order and signs the number, then nodes 1 and 2 with that ticket. Returns
    /// the sequence number.
    pub async fn submit_shares(
        &self,
        round: [u8; 16],
        id: &OrderId,
        shares: &[OrderPayload; 3],
        owner: &SealPublicKey,
    ) -> Result<u64, MatchError> {
        let aad = share_aad(&round, id.as_bytes());
        let mut reqs = Vec::with_capacity(3);
        for (p, share) in shares.iter().enumerate() {
            let sealed = self.nodes[p]
                .seal_key
                .seal(ORDER_INFO, &aad, &share.order_bytes())?;
            reqs.push(pb::SubmitShareRequest {
                round_id: Bytes::copy_from_slice(&round),
                order_id: Bytes::copy_from_slice(id.as_bytes()),
                sealed_share: sealed.into(),
                owner_seal_key: Bytes::copy_from_slice(&owner.to_bytes()),
                sequence: 0,
                sequence_ticket: Bytes::new(),
            });
        }
        // node 0 numbers the order; the two others need its signed number
        let first: pb::SubmitShareResponse = self.call(0, Rpc::Submit, &reqs[0]).await?;
        for r in &mut reqs[1..] {
            r.sequence = first.sequence;
            r.sequence_ticket = first.sequence_ticket.clone();
        }
        let (a, b) = futures::join!(
            self.call::<_, pb::SubmitShareResponse>(1, Rpc::Submit, &reqs[1]),
            self.call::<_, pb::SubmitShareResponse>(2, Rpc::Submit, &reqs[2]),
        );
        a?;
        b?;
        Ok(first.sequence)
    }

    /// Register a personal currency at the three nodes (see [`crate::currency`]);
    /// `true` when it is new.
    pub async fn register_currency(&self, c: &pb::Currency) -> Result<bool, MatchError> {
        crate::currency::verify_registration(c)?;
        let req = pb::RegisterCurrencyRequest {
            currency: Some(c.clone()),
        };
        let mut created = false;
        for p in 0..3 {
            let r: pb::RegisterCurrencyResponse = self.call(p, Rpc::Currency, &req).await?;
            created |= r.created;
        }
        Ok(created)
    }

    /// The currencies node 0 knows.
    pub async fn currencies(&self) -> Result<Vec<pb::Currency>, MatchError> {
        let r: pb::CurrenciesResponse = self
            .call(0, Rpc::Currencies, &pb::CurrenciesRequest {})
            .await?;
        Ok(r.currencies)
    }

    /// Close the book at all three nodes (the MPC starts).
    pub async fn close(&self, round: [u8; 16]) -> Result<(), MatchError> {
        let req = pb::CloseRoundRequest {
            round_id: Bytes::copy_from_slice(&round),
        };
        for p in 0..3 {
            let _: pb::CloseRoundResponse = self.call(p, Rpc::Close, &req).await?;
        }
        Ok(())
    }

    /// One node's view of the round.
    pub async fn status(
        &self,
        party: usize,
        round: [u8; 16],
    ) -> Result<pb::ResultResponse, MatchError> {
        let req = pb::ResultRequest {
            round_id: Bytes::copy_from_slice(&round),
            include_record: false,
            record_from: 0,
        };
        self.call(party, Rpc::Result, &req).await
    }

    /// Wait (up to `patience`) until every node has cleared the round and holds all
    /// three signatures; check that the three outcomes are equal and every signature
    /// verifies. An aborted round is an error.
    pub async fn result(
        &self,
        round: [u8; 16],
        patience: Duration,
    ) -> Result<SignedOutcome, MatchError> {
        let until = tokio::time::Instant::now() + patience;
        let mut views = Vec::with_capacity(3);
        for p in 0..3 {
            loop {
                let r = self.status(p, round).await?;
                match pb::RoundStatus::try_from(r.status) {
                    Ok(pb::RoundStatus::Aborted) => return Err(MatchError::Aborted(r.reason)),
                    Ok(pb::RoundStatus::Cleared) if r.signatures.len() == 3 => {
                        views.push(r);
                        break;
                    }
                    _ => {}
                }
                if tokio::time::Instant::now() > until {
                    return Err(MatchError::Aborted(format!(
                        "node {p} did not finish the round within {patience:?}"
                    )));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let first = views.swap_remove(0);
        if views.iter().any(|v| v.outcome != first.outcome) {
            return Err(MatchError::Aborted(
                "the nodes published different outcomes".into(),
            ));
        }
        let msg = outcome_message(&first.outcome);
        for p in 0..3 {
            let sig = first
                .signatures
                .iter()
                .find(|s| s.party as usize == p)
                .ok_or_else(|| MatchError::Aborted(format!("no signature of node {p}")))?;
            VerifierKey::from_bytes(&self.nodes[p].provider_id)?.verify(&msg, &sig.signature)?;
        }
        let outcome = RoundOutcome::from_bytes(&first.outcome)?;
        // the record, from any node, in pages: it must hash to the hash all three signed
        let mut record = Vec::new();
        loop {
            let page = self
                .call::<_, pb::ResultResponse>(
                    0,
                    Rpc::Result,
                    &pb::ResultRequest {
                        round_id: Bytes::copy_from_slice(&round),
                        include_record: true,
                        record_from: record.len() as u32,
                    },
                )
                .await?;
            for r in &page.accepted {
                record.push((
                    OrderId::new(&r.order_id)?,
                    OrderStatement::from_bytes(&r.statement)?,
                ));
            }
            if record.len() >= page.record_total as usize || page.accepted.is_empty() {
                break;
            }
        }
        if veilgrid_mpc::outcome::accepted_set_hash(record.iter().map(|(i, s)| (i, s)))
            != outcome.order_set_hash
        {
            return Err(MatchError::Aborted(
                "node 0's public record does not hash to the signed order-set hash".into(),
            ));
        }
        Ok(SignedOutcome {
            outcome,
            bytes: first.outcome,
            rate: first.rate,
            dropped: first.dropped,
            drop_reasons: first.drop_reasons,
            record,
        })
    }

    /// The fills of the orders submitted with `owner`'s key: each node's share opened
    /// with `owner`, every share component checked against its second copy.
    pub async fn fills(
        &self,
        round: [u8; 16],
        owner: &SealKeyPair,
    ) -> Result<Vec<(OrderId, u64)>, MatchError> {
        let req = pb::FillsRequest {
            round_id: Bytes::copy_from_slice(&round),
            owner_seal_key: Bytes::copy_from_slice(&owner.public().to_bytes()),
        };
        let mut by_order: Vec<(OrderId, Vec<FillShare>)> = Vec::new();
        for p in 0..3 {
            let resp: pb::FillsResponse = self.call(p, Rpc::Fills, &req).await?;
            for f in resp.fills {
                let id = OrderId::new(&f.order_id)?;
                let plain = owner.open(
                    FILL_INFO,
                    &share_aad(&round, id.as_bytes()),
                    &f.sealed_share,
                )?;
                let share = FillShare::from_fill_bytes(&plain)?;
                match by_order.iter_mut().find(|(i, _)| *i == id) {
                    Some((_, v)) => v.push(share),
                    None => by_order.push((id, vec![share])),
                }
            }
        }
        by_order
            .into_iter()
            .map(|(id, shares)| {
                let q = reconstruct_fill(round, &id, &shares)?;
                Ok((id, q))
            })
            .collect()
    }
}

/// The public grid of a round: `p_k = p_min · ratio^k`, `k < levels`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PriceGrid {
    /// Number of levels `P`.
    pub levels: u32,
    /// Price of level 0, QUOTE per BASE.
    pub p_min: f64,
    /// Ratio between neighbouring levels.
    pub ratio: f64,
}

impl MatchClient {
    /// A whole semi-honest round of `base/quote` under a fresh id: open, submit
    /// `orders` in this order (fills sealed to `owner`), close, and wait for the signed
    /// outcome. Returns the round id and the outcome.
    pub async fn run_round(
        &self,
        base: &str,
        quote: &str,
        grid: PriceGrid,
        orders: &[(OrderId, Order)],
        owner: &SealPublicKey,
        patience: Duration,
    ) -> Result<([u8; 16], SignedOutcome), MatchError> {
        let round = fresh_round_id();
        self.open(&pb::OpenRoundRequest {
            round_id: Bytes::copy_from_slice(&round),
            base: base.to_owned(),
            quote: quote.to_owned(),
            levels: grid.levels,
            p_min: grid.p_min,
            ratio: grid.ratio,
            mode: pb::SecurityMode::SemiHonest.into(),
            deadline_unix_ms: 0,
        })
        .await?;
        for (id, o) in orders {
            self.submit(round, grid.levels, id, o, owner).await?;
        }
        self.close(round).await?;
        let out = self.result(round, patience).await?;
        Ok((round, out))
    }
}

/// A fresh random round id.
pub fn fresh_round_id() -> [u8; 16] {
    rand::random()
}
