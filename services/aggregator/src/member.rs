//! A committee member: a provider of its own (own [`Identity`], so its lease publishes the X25519
//! key clients seal shares to) that asks the aggregation service for the rounds it sits on,
//! opens its shares, and sends its one answer per round.
//!
//! Three kinds of work, the last two signed with the member's Ed25519 identity:
//! * **collect** (while the round takes clients): open the shares that arrived since the last
//!   poll, on the blocking pool, and add them to a running sum ([`HeldShares`], zeroized on
//!   drop); the member sends the highest share sequence number it holds, so each share crosses
//!   the wire and is opened once. Shares that do not open are remembered as bad;
//! * **check** (after collection closes): open what is left and report the clients whose shares
//!   do not open (`MemberCheck`), so the server excludes those clients before declaring the set
//!   instead of the round failing;
//! * **answer**: the share sum over the declared set (`MemberRespond`), once per round: the
//!   running sum minus the (normally no) opened shares of clients left out of the set.
//!
//! The opened state lives in the member's memory only (no secret on disk). A member that
//! restarts mid-round has no cursor, so the service sends it every share again (it keeps them
//! sealed in its store) and the member opens them at its next poll: the round still completes,
//! that member just pays the opening at once.
//!
//! The member keeps the rounds it answered, so it never answers a round twice (a second answer
//! over a different set would let the server subtract the two and learn a client's seed share).

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::Arc,
    sync::Mutex,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use bytes::Bytes;
use tonic::Status;
use veilgrid_aggregation::{CommitteeMember, HeldShares, MemberMessage, PresentSet, Round};
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
    held: Mutex<HashMap<[u8; 32], Held>>,
    opened: AtomicU64,
}

/// What the member holds of one round between polls.
struct Held {
    round: Round,
    index: u16,
    shares: HeldShares,
    /// Highest share sequence number seen.
    seq: u64,
    /// Clients whose shares did not open, with why.
    bad: BTreeMap<u64, String>,
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
    /// While the round collects, the member opened this many newly arrived shares.
    Collected([u8; 32], usize),
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
            held: Mutex::new(HashMap::new()),
            opened: AtomicU64::new(0),
        })
    }

    /// How many sealed shares this member has opened (each share is opened once, when it
    /// arrives, unless its client is left out of the declared set, or the member restarted).
    pub fn shares_opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
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

    /// Fetch pending rounds once: open the shares that arrived since the last poll, then check
    /// or answer where the round is at that step.
    pub async fn work_once(&self) -> Result<Vec<Outcome>, AggError> {
        let mut agg = self.aggregator.clone();
        let cursors = held_lock(&self.held)
            .iter()
            .map(|(id, h)| pb::ShareCursor {
                round_id: Bytes::copy_from_slice(id),
                seq: h.seq,
            })
            .collect();
        let work = agg
            .member_work_after(&self.identity.seal_public(), cursors)
            .await
            .map_err(|status| AggError::Remote {
                what: "fetching member work",
                status,
            })?;
        // Rounds no longer listed are over (or answered): drop what is held of them.
        let mut live = HashSet::new();
        for w in &work.rounds {
            if let Ok(round) = Round::from_bytes(&w.round) {
                live.insert(*round.id());
            }
        }
        held_lock(&self.held).retain(|id, _| live.contains(id));
        let mut out = Vec::new();
        for w in work.rounds {
            let round = Round::from_bytes(&w.round)?;
            let id = *round.id();
            if lock(&self.answered).contains(&id) {
                continue;
            }
            let opened = match self.open_new(round, &w).await {
                Ok(n) => n,
                Err(e) => {
                    out.push(Outcome::Refused(id, e));
                    continue;
                }
            };
            match w.phase.as_str() {
                "collect" if opened > 0 => out.push(Outcome::Collected(id, opened)),
                "check" if !lock(&self.checked).contains(&id) => {
                    out.push(self.check(&mut agg, &id, &w).await)
                }
                "answer" => out.push(self.answer(&mut agg, &id, &w).await),
                _ => {}
            }
        }
        Ok(out)
    }

    /// Opens the shares of `w` this member does not hold yet (on the blocking pool) and adds them
    /// to the round's running sum; the number opened.
    async fn open_new(&self, round: Round, w: &pb::RoundWork) -> Result<usize, AggError> {
        let index = u16::try_from(w.member)
            .map_err(|_| AggError::BadRequest("member index out of range".into()))?;
        let id = *round.id();
        let taken = held_lock(&self.held).remove(&id);
        let held = match taken {
            Some(h) if h.index == index && h.round.digest() == round.digest() => h,
            _ => Held {
                shares: CommitteeMember::new(&round, index, &self.identity.sealing)?.suspend(),
                round,
                index,
                seq: 0,
                bad: BTreeMap::new(),
            },
        };
        let mut shares: Vec<pb::SealedShare> = w
            .shares
            .iter()
            .filter(|s| s.seq > held.seq)
            .cloned()
            .collect();
        if shares.is_empty() {
            held_lock(&self.held).insert(id, held);
            return Ok(0);
        }
        shares.sort_by_key(|s| (s.seq, s.client));
        let identity = self.identity.clone();
        let (held, opened) =
            tokio::task::spawn_blocking(move || open_batch(&identity, held, shares))
                .await
                .map_err(|e| AggError::BadRequest(format!("opening shares: {e}")))??;
        self.opened.fetch_add(opened as u64, Ordering::Relaxed);
        held_lock(&self.held).insert(id, held);
        Ok(opened)
    }

    /// Send the signed report of the shares that did not open.
    async fn check(&self, agg: &mut AggClient, id: &[u8; 32], w: &pb::RoundWork) -> Outcome {
        let id = *id;
        let Ok(member) = u16::try_from(w.member) else {
            return Outcome::Refused(id, AggError::BadRequest("member index out of range".into()));
        };
        let bad: Vec<pb::BadShare> = match held_lock(&self.held).get(&id) {
            Some(h) => h
                .bad
                .iter()
                .map(|(&client, reason)| pb::BadShare {
                    client,
                    reason: reason.clone(),
                })
                .collect(),
            None => Vec::new(),
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

    /// The one answer: the running sum over the declared set, signed and sent.
    async fn answer(&self, agg: &mut AggClient, id: &[u8; 32], w: &pb::RoundWork) -> Outcome {
        let id = *id;
        let Some(held) = held_lock(&self.held).remove(&id) else {
            return Outcome::Refused(id, AggError::BadRequest("no shares held".into()));
        };
        // The held state is consumed by the answer (a refused answer drops it too: the next
        // poll fetches and opens the round's shares again).
        let round = match Round::from_bytes(&w.round) {
            Ok(r) => r,
            Err(e) => return Outcome::Refused(id, e.into()),
        };
        let msg = match self.respond(held, w) {
            Ok(msg) => msg,
            Err(e) => return Outcome::Refused(id, e),
        };
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
            Ok(_) => Outcome::Answered(id),
            Err(status) => Outcome::Refused(
                id,
                AggError::Remote {
                    what: "sending the member answer",
                    status,
                },
            ),
        }
    }

    fn respond(&self, held: Held, w: &pb::RoundWork) -> Result<MemberMessage, AggError> {
        let present = PresentSet::from_bytes(&held.round, &w.present_set)?;
        let member =
            CommitteeMember::resume(&held.round, held.index, &self.identity.sealing, held.shares)?;
        Ok(member.respond(&present)?)
    }

    /// Poll for work every `every` until `shutdown`.
    pub async fn run(self: Arc<Self>, every: Duration, shutdown: Shutdown) {
        loop {
            match self.work_once().await {
                Ok(outcomes) => {
                    for o in outcomes {
                        match o {
                            Outcome::Collected(id, n) => {
                                tracing::debug!(round = %hex::encode(&id[..8]), opened = n, "member opened new shares")
                            }
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

/// Opens `shares` (sorted by arrival) into `held`; the state back and the number opened.
fn open_batch(
    identity: &Identity,
    held: Held,
    shares: Vec<pb::SealedShare>,
) -> Result<(Held, usize), AggError> {
    let Held {
        round,
        index,
        shares: kept,
        mut seq,
        mut bad,
    } = held;
    let mut member = CommitteeMember::resume(&round, index, &identity.sealing, kept)?;
    let mut opened = 0;
    for s in &shares {
        seq = seq.max(s.seq);
        if bad.contains_key(&s.client) || member.holds(s.client) {
            continue;
        }
        match member.accept_share(s.client, &s.sealed) {
            Ok(()) => opened += 1,
            Err(e @ veilgrid_aggregation::Error::BadSharePayload { .. }) => {
                bad.insert(s.client, e.to_string());
            }
            Err(e) => return Err(e.into()),
        }
    }
    let shares = member.suspend();
    Ok((
        Held {
            round,
            index,
            shares,
            seq,
            bad,
        },
        opened,
    ))
}

fn held_lock(
    m: &Mutex<HashMap<[u8; 32], Held>>,
) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Held>> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn lock(m: &Mutex<HashSet<[u8; 32]>>) -> std::sync::MutexGuard<'_, HashSet<[u8; 32]>> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
