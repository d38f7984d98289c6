//! A committee member: a provider of its own (own [`Identity`], so its lease publishes the X25519
//! key clients seal shares to) that asks the aggregation service for closed rounds it sits on,
//! opens its shares, and sends its one answer per round.
//!
//! Two kinds of work, both signed with the member's Ed25519 identity:
//! * **check** (after collection closes): open every sealed share addressed to it and report
//!   the clients whose shares do not open (`MemberCheck`), so the server excludes those clients
//!   before declaring the set instead of the round failing;
//! * **answer**: the share sum over the declared set (`MemberRespond`), once per round.
//!
//! The member keeps the rounds it answered, so it never answers a round twice (a second answer
//! over a different set would let the server subtract the two and learn a client's seed share).

use std::{collections::HashSet, sync::Arc, sync::Mutex, time::Duration};

use bytes::Bytes;
use tonic::Status;
use veilgrid_aggregation::{CommitteeMember, MemberMessage, PresentSet, Round};
use veilgrid_kit::{
    Shutdown,
    identity::Identity,
    provider::{Context, Handler, ProviderConfig, ProviderService},
};
use veilgrid_proto::aggregation::v1 as pb;

use crate::{AggError, client::AggClient, protocols, signing};

/// One committee member.
pub struct Member {
    identity: Arc<Identity>,
    aggregator: AggClient,
    answered: Mutex<HashSet<[u8; 32]>>,
    checked: Mutex<HashSet<[u8; 32]>>,
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member")
            .field("provider", &hex::encode(&self.identity.provider_id()[..8]))
            .finish_non_exhaustive()
    }
}

/// What one round's work came to.
#[derive(Debug)]
pub enum Outcome {
    /// The member reported on its shares (the clients whose shares did not open).
    Checked([u8; 32], Vec<u64>),
    /// The member answered the round.
    Answered([u8; 32]),
    /// The member could not answer (e.g. a declared client's share did not open).
    Refused([u8; 32], AggError),
}

struct MemberHandler {
    key: Bytes,
}

#[tonic::async_trait]
impl Handler for MemberHandler {
    async fn complete(&self, _: &Context, _: Bytes) -> Result<Bytes, Status> {
        Ok(self.key.clone())
    }
}

impl Member {
    /// A member with `identity`, reaching the aggregation service through `aggregator`.
    pub fn new(identity: Arc<Identity>, aggregator: AggClient) -> Arc<Self> {
        Arc::new(Self {
            identity,
            aggregator,
            answered: Mutex::new(HashSet::new()),
            checked: Mutex::new(HashSet::new()),
        })
    }

    /// The member's Ed25519 key (its provider id): reports and answers are signed with it.
    pub fn signing_key(&self) -> [u8; 32] {
        self.identity.provider_id()
    }

    /// The member's public sealing key.
    pub fn seal_key(&self) -> veilgrid_core::seal::SealPublicKey {
        self.identity.seal_public()
    }

    /// The provider to register with the router (protocol [`protocols::MEMBER`]), so the
    /// member's sealing key is published in its lease.
    pub fn provider(&self, name: &str) -> ProviderService {
        ProviderService::builder(
            self.identity.clone(),
            ProviderConfig {
                name: name.into(),
                ..ProviderConfig::default()
            },
        )
        .protocol(
            protocols::MEMBER,
            0,
            Arc::new(MemberHandler {
                key: Bytes::copy_from_slice(&self.identity.seal_public().to_bytes()),
            }),
        )
        .build()
    }

    /// Fetch pending rounds once and answer each.
    pub async fn work_once(&self) -> Result<Vec<Outcome>, AggError> {
        let mut agg = self.aggregator.clone();
        let work = agg
            .member_work(&self.identity.seal_public())
            .await
            .map_err(|status| AggError::Remote {
                what: "fetching member work",
                status,
            })?;
        let mut out = Vec::new();
        for w in work.rounds {
            let round = Round::from_bytes(&w.round)?;
            let id = *round.id();
            if w.phase == "check" {
                if lock(&self.checked).contains(&id) {
                    continue;
                }
                out.push(self.check(&mut agg, &round, &w).await);
                continue;
            }
            if lock(&self.answered).contains(&id) {
                continue;
            }
            match self.answer(&round, &w) {
                Ok(msg) => {
                    // Remember before sending: never produce a second answer for this round.
                    lock(&self.answered).insert(id);
                    let message = msg.to_bytes(&round);
                    let signature = signing::sign(
                        &self.identity.signing,
                        &signing::answer_bytes(&id, &message),
                    );
                    let req = pb::MemberRespondRequest {
                        round_id: Bytes::copy_from_slice(&id),
                        message: message.into(),
                        signature: Bytes::copy_from_slice(&signature),
                    };
                    match agg.member_respond(req).await {
                        Ok(_) => out.push(Outcome::Answered(id)),
                        Err(status) => out.push(Outcome::Refused(
                            id,
                            AggError::Remote {
                                what: "sending the member answer",
                                status,
                            },
                        )),
                    }
                }
                Err(e) => out.push(Outcome::Refused(id, e)),
            }
        }
        Ok(out)
    }

    /// Open every share addressed to this member and send the signed report of the bad ones.
    async fn check(&self, agg: &mut AggClient, round: &Round, w: &pb::RoundWork) -> Outcome {
        let id = *round.id();
        let bad = match self.open_all(round, w) {
            Ok(bad) => bad,
            Err(e) => return Outcome::Refused(id, e),
        };
        let Ok(member) = u16::try_from(w.member) else {
            return Outcome::Refused(id, AggError::BadRequest("member index out of range".into()));
        };
        let clients: Vec<u64> = bad.iter().map(|b| b.client).collect();
        let signature = signing::sign(
            &self.identity.signing,
            &signing::check_bytes(&id, member, &clients),
        );
        let req = pb::MemberCheckRequest {
            round_id: Bytes::copy_from_slice(&id),
            member: w.member,
            bad,
            signature: Bytes::copy_from_slice(&signature),
        };
        match agg.member_check(req).await {
            Ok(_) => {
                lock(&self.checked).insert(id);
                Outcome::Checked(id, clients)
            }
            Err(status) => Outcome::Refused(
                id,
                AggError::Remote {
                    what: "sending the share report",
                    status,
                },
            ),
        }
    }

    /// The clients (strictly increasing) whose shares do not open for this member.
    fn open_all(&self, round: &Round, w: &pb::RoundWork) -> Result<Vec<pb::BadShare>, AggError> {
        let index = u16::try_from(w.member)
            .map_err(|_| AggError::BadRequest("member index out of range".into()))?;
        let mut member = CommitteeMember::new(round, index, &self.identity.sealing)?;
        let mut shares: Vec<&pb::SealedShare> = w.shares.iter().collect();
        shares.sort_by_key(|s| s.client);
        let mut bad: Vec<pb::BadShare> = Vec::new();
        for s in shares {
            if bad.last().is_some_and(|b| b.client == s.client) {
                continue;
            }
            match member.accept_share(s.client, &s.sealed) {
                Ok(()) => {}
                Err(e @ veilgrid_aggregation::Error::BadSharePayload { .. }) => {
                    bad.push(pb::BadShare {
                        client: s.client,
                        reason: e.to_string(),
                    })
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(bad)
    }

    fn answer(&self, round: &Round, w: &pb::RoundWork) -> Result<MemberMessage, AggError> {
        let index = u16::try_from(w.member)
            .map_err(|_| AggError::BadRequest("member index out of range".into()))?;
        let mut member = CommitteeMember::new(round, index, &self.identity.sealing)?;
        let present = PresentSet::from_bytes(round, &w.present_set)?;
        for s in &w.shares {
            member.accept_share(s.client, &s.sealed)?;
        }
        Ok(member.respond(&present)?)
    }

    /// Poll for work every `every` until `shutdown`.
    pub async fn run(self: Arc<Self>, every: Duration, shutdown: Shutdown) {
        loop {
            match self.work_once().await {
                Ok(outcomes) => {
                    for o in outcomes {
                        match o {
                            Outcome::Checked(id, bad) => {
                                tracing::info!(round = %hex::encode(&id[..8]), bad = bad.len(), "member checked its shares")
                            }
                            Outcome::Answered(id) => {
                                tracing::info!(round = %hex::encode(&id[..8]), "member answered")
                            }
                            Outcome::Refused(id, e) => {
                                tracing::warn!(round = %hex::encode(&id[..8]), error = %e, "member refused")
                            }
                        }
                    }
                }
                Err(e) => tracing::debug!(error = %e, "member poll failed"),
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    }
}

fn lock(m: &Mutex<HashSet<[u8; 32]>>) -> std::sync::MutexGuard<'_, HashSet<[u8; 32]>> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
