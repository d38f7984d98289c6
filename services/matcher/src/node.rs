//! One matching node: its rounds, and the task that drives a closed round's MPC
//! phases over the node-to-node streams.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use bytes::Bytes;
use veilgrid_core::{seal::SealPublicKey, sign::VerifierKey};
use veilgrid_kit::{
    auth_owners::Owners, clock::now_ms, identity::Identity, provider::ProviderConfig,
    registration::RegistrationConfig, tls::Security,
};
use veilgrid_mpc::{
    ClearingResult, Collecting, NodeKeys, OrderId, OrderPayload, ProofVerdict, RoundConfig,
    RoundOutcome, SecurityMode, Step,
};
use veilgrid_proto::matching::v1 as pb;

use crate::{
    MatchError,
    net::{Inbox, Links},
};

/// HPKE `info` of an order share sealed to a node.
pub const ORDER_INFO: &[u8] = b"veilgrid/match/order/v1";
/// HPKE `info` of a fill share sealed to an order's owner.
pub const FILL_INFO: &[u8] = b"veilgrid/match/fill/v1";
/// Domain tag of a node's signature over the outcome bytes.
pub const OUTCOME_TAG: &[u8] = b"veilgrid/match/outcome/v1\0";
/// Longest currency id.
pub const MAX_CURRENCY_LEN: usize = crate::currency::MAX_ID_LEN;
/// Most accepted orders of the public record in one `Result` response (about 1.3 MB).
pub const MAX_RECORD_PAGE: usize = 1_000;
/// Domain tag of node 0's signature over an order's sequence number.
pub const SEQUENCE_TAG: &[u8] = b"veilgrid/match/seq/v1\0";

/// The message node 0 signs to fix an order's place in the book:
/// `SEQUENCE_TAG ‖ round ‖ seq (8 bytes, big-endian) ‖ order id`.
pub fn sequence_message(round: &[u8; 16], seq: u64, order: &[u8]) -> Vec<u8> {
    let mut m = SEQUENCE_TAG.to_vec();
    m.extend_from_slice(round);
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(order);
    m
}

/// The `aad` of a sealed share: `round ‖ order id`.
pub fn share_aad(round: &[u8; 16], order: &[u8]) -> Vec<u8> {
    let mut a = round.to_vec();
    a.extend_from_slice(order);
    a
}

/// The message a node signs: `OUTCOME_TAG ‖ outcome bytes`.
pub fn outcome_message(outcome: &[u8]) -> Vec<u8> {
    let mut m = OUTCOME_TAG.to_vec();
    m.extend_from_slice(outcome);
    m
}

/// The service name of party `p`'s node: its provider name, and under mutual TLS the
/// name its certificate must carry (`veilgrid ca issue --service matcher-<p>`).
pub fn party_name(p: u8) -> String {
    format!("matcher-{p}")
}

/// Where one of the three nodes is reached, and who it is.
#[derive(Debug, Clone)]
pub struct NodeAddress {
    /// Its gRPC URL (for the node-to-node streams).
    pub url: String,
    /// Its Ed25519 provider id.
    pub provider_id: [u8; 32],
}

/// Settings of one node.
#[derive(Debug, Clone)]
pub struct MatcherConfig {
    /// This node's identity (provider id, sealing key).
    pub identity: Arc<Identity>,
    /// This node's PRF seeds (its party index is `keys.party()`).
    pub keys: NodeKeys,
    /// All three nodes, by party index (this node's own entry is not dialled).
    pub nodes: [NodeAddress; 3],
    /// How long to wait for the other nodes' messages of one step before aborting.
    pub peer_timeout: Duration,
    /// Name, currency and limits of the node's provider.
    pub provider: ProviderConfig,
    /// Register with this router (endpoint = this node's URL); `None` = don't.
    pub register: Option<RegistrationConfig>,
    /// The numeraire of the rate table when a request names none.
    pub numeraire: String,
    /// Where the node keeps its state across restarts (the registered currencies,
    /// `currencies.pb`); `None`: memory only.
    pub data_dir: Option<std::path::PathBuf>,
    /// Fault injection (tests and demos of the abort path; `None` in production):
    /// this node corrupts MPC messages it sends, see [`Fault`].
    pub fault: Option<Fault>,
    /// Plaintext, or mutual TLS with this node's certificate ([`party_name`]) for its
    /// server, its registration and its links to the two other nodes, which must
    /// present the certificates of their parties (`veilgrid_kit::tls`).
    pub security: Security,
}

/// A deliberately misbehaving node, for the fault tests: at step `step` of
/// `phase` (and, with `every_later_step`, at every later step of that phase too) it
/// does `action` to the messages it sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// The phase whose messages are affected.
    pub phase: veilgrid_mpc::Phase,
    /// The first affected step.
    pub step: u32,
    /// Keep going at every later step of the phase.
    pub every_later_step: bool,
    /// What the node does.
    pub action: FaultAction,
}

/// What a faulty node does to a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultAction {
    /// Flip the lowest bit of the first word. The node keeps its own shares unchanged,
    /// so the value it sends disagrees with what it holds: a wrong share value.
    Corrupt,
    /// Send nothing and wait forever, as a node that hangs mid-round (a test then kills it).
    Stall,
}

impl Fault {
    fn applies(&self, m: &veilgrid_mpc::Message) -> bool {
        m.phase == self.phase
            && (m.step == self.step || (self.every_later_step && m.step > self.step))
    }
}

/// Wall time (µs) and bytes sent per phase: input check, clearing, fills.
#[derive(Debug, Clone, Copy, Default)]
struct PhaseCost {
    us: [u64; 3],
    bytes: [u64; 3],
}

enum State {
    Open(Box<Collecting>),
    Running,
    Cleared {
        outcome: Bytes,
        result: ClearingResult,
        signature: Bytes,
        /// This node's fill share of every accepted order (zeroized on drop), sealed
        /// to the owner on request.
        fills: Vec<veilgrid_mpc::FillShare>,
        dropped: Vec<(OrderId, veilgrid_mpc::DropReason)>,
        /// The public record: accepted orders and their statements.
        record: Vec<(OrderId, veilgrid_mpc::OrderStatement)>,
        cost: PhaseCost,
    },
    Aborted(String),
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            State::Open(_) => "open",
            State::Running => "running",
            State::Cleared { .. } => "cleared",
            State::Aborted(_) => "aborted",
        }
    }
}

struct Round {
    base: String,
    quote: String,
    p_min: f64,
    ratio: f64,
    deadline_ms: u64,
    owners: HashMap<OrderId, [u8; 32]>,
    /// Node 0 only: the next sequence number it hands out.
    next_seq: u64,
    state: State,
}

/// A matching node.
pub struct Node {
    pub(crate) config: MatcherConfig,
    rounds: Mutex<HashMap<[u8; 16], Round>>,
    inboxes: Mutex<HashMap<[u8; 16], Arc<Inbox>>>,
    history: Mutex<Vec<pb::PairClearing>>,
    currencies: Mutex<crate::currency::Registry>,
    /// Who opened each round and submitted each order (under mutual TLS), see `api`.
    pub(crate) owners: Owners,
}

fn round_id(b: &[u8]) -> Result<[u8; 16], MatchError> {
    b.try_into()
        .map_err(|_| MatchError::BadRequest(format!("round id must be 16 bytes, got {}", b.len())))
}

impl Node {
    /// A node with no rounds (and the currencies kept in its data directory).
    pub fn new(config: MatcherConfig) -> Result<Arc<Self>, MatchError> {
        let currencies = match &config.data_dir {
            Some(d) => crate::currency::Registry::open(&config.numeraire, d)?,
            None => crate::currency::Registry::with_numeraire(&config.numeraire),
        };
        let owners = Owners::open(config.data_dir.as_deref())?;
        Ok(Arc::new(Node {
            owners,
            config,
            currencies: Mutex::new(currencies),
            rounds: Mutex::new(HashMap::new()),
            inboxes: Mutex::new(HashMap::new()),
            history: Mutex::new(Vec::new()),
        }))
    }

    /// This node's party index.
    pub fn party(&self) -> u8 {
        self.config.keys.party().as_u8()
    }

    fn rounds(&self) -> MutexGuard<'_, HashMap<[u8; 16], Round>> {
        self.rounds.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn inbox(&self, round: [u8; 16]) -> Arc<Inbox> {
        self.inboxes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(round)
            .or_default()
            .clone()
    }

    /// `OpenRound`.
    pub fn open(&self, req: pb::OpenRoundRequest) -> Result<pb::OpenRoundResponse, MatchError> {
        let round = round_id(&req.round_id)?;
        for c in [&req.base, &req.quote] {
            if c.is_empty() || c.len() > MAX_CURRENCY_LEN {
                return Err(MatchError::BadRequest(format!(
                    "currency ids are 1..={MAX_CURRENCY_LEN} bytes"
                )));
            }
        }
        if req.base == req.quote {
            return Err(MatchError::BadRequest("BASE and QUOTE must differ".into()));
        }
        {
            let reg = self.currencies();
            for c in [&req.base, &req.quote] {
                if !reg.contains(c) {
                    return Err(MatchError::UnknownCurrency(c.clone()));
                }
            }
        }
        if !(req.p_min.is_finite() && req.p_min > 0.0 && req.ratio.is_finite() && req.ratio > 0.0) {
            return Err(MatchError::BadRequest(
                "p_min and ratio must be positive".into(),
            ));
        }
        let mode = match pb::SecurityMode::try_from(req.mode) {
            Ok(pb::SecurityMode::SemiHonest) => SecurityMode::SemiHonest,
            Ok(pb::SecurityMode::Malicious) => SecurityMode::Malicious,
            Err(_) => return Err(MatchError::BadRequest("unknown security mode".into())),
        };
        let cfg = RoundConfig {
            round,
            levels: req.levels,
            mode,
        };
        let collecting = Collecting::new(cfg, &self.config.keys)?;
        let mut rounds = self.rounds();
        if rounds.contains_key(&round) {
            return Err(MatchError::RoundExists(hex::encode(round)));
        }
        rounds.insert(
            round,
            Round {
                base: req.base,
                quote: req.quote,
                p_min: req.p_min,
                ratio: req.ratio,
                deadline_ms: req.deadline_unix_ms,
                owners: HashMap::new(),
                next_seq: 0,
                state: State::Open(Box::new(collecting)),
            },
        );
        Ok(pb::OpenRoundResponse {
            round_id: req.round_id,
            party: self.party().into(),
        })
    }

    /// `SubmitShare`: open the share with this node's sealing key and add it.
    pub fn submit(
        &self,
        req: pb::SubmitShareRequest,
    ) -> Result<pb::SubmitShareResponse, MatchError> {
        let round = round_id(&req.round_id)?;
        let owner = SealPublicKey::from_bytes(&req.owner_seal_key)?.to_bytes();
        let plain = self.config.identity.sealing.open(
            ORDER_INFO,
            &share_aad(&round, &req.order_id),
            &req.sealed_share,
        )?;
        let payload = OrderPayload::from_order_bytes(&plain)?;
        if payload.id.as_bytes() != req.order_id.as_ref() {
            return Err(MatchError::BadRequest(
                "the sealed share names another order".into(),
            ));
        }
        // verify the range proofs (~0.65 ms) before taking the rounds lock, so
        // concurrent submissions verify in parallel and close only re-checks copies
        let cfg = match self.rounds().get(&round).map(|r| &r.state) {
            Some(State::Open(c)) => Some(*c.config()),
            _ => None,
        };
        let verdict = cfg.map(|cfg| ProofVerdict::check(&cfg, &payload));
        let mut rounds = self.rounds();
        let r = rounds
            .get_mut(&round)
            .ok_or_else(|| MatchError::UnknownRound(hex::encode(round)))?;
        if r.deadline_ms != 0 && now_ms() > r.deadline_ms {
            return Err(MatchError::DeadlinePassed);
        }
        let State::Open(c) = &mut r.state else {
            return Err(MatchError::WrongState {
                round: hex::encode(round),
                state: r.state.name(),
                action: "submit",
            });
        };
        // node 0 numbers the orders in its arrival order and signs the number; the
        // others take the number from node 0's ticket
        let (seq, ticket) = if self.party() == 0 {
            let seq = r.next_seq;
            let ticket =
                self.config
                    .identity
                    .signing
                    .sign(&sequence_message(&round, seq, &req.order_id));
            (seq, Bytes::copy_from_slice(&ticket))
        } else {
            let seq = req.sequence;
            VerifierKey::from_bytes(&self.config.nodes[0].provider_id)?
                .verify_named(
                    "node 0's sequence ticket",
                    &sequence_message(&round, seq, &req.order_id),
                    &req.sequence_ticket,
                )
                .map_err(|e| {
                    MatchError::BadRequest(format!(
                        "submit to node 0 first: it numbers the orders ({e})"
                    ))
                })?;
            (seq, req.sequence_ticket.clone())
        };
        match verdict {
            Some(v) => c.add_verified(seq, &payload, v)?,
            None => c.add_sequenced(seq, &payload)?,
        }
        if self.party() == 0 {
            r.next_seq += 1;
        }
        r.owners.insert(payload.id.clone(), owner);
        Ok(pb::SubmitShareResponse {
            position: (c.len() - 1) as u32,
            sequence: seq,
            sequence_ticket: ticket,
        })
    }

    fn currencies(&self) -> MutexGuard<'_, crate::currency::Registry> {
        self.currencies.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `RegisterCurrency`.
    pub fn register_currency(
        &self,
        req: pb::RegisterCurrencyRequest,
    ) -> Result<pb::RegisterCurrencyResponse, MatchError> {
        let c = req
            .currency
            .ok_or_else(|| MatchError::BadRequest("no currency in the request".into()))?;
        let created = self.currencies().register(c)?;
        Ok(pb::RegisterCurrencyResponse { created })
    }

    /// `Currencies`.
    pub fn list_currencies(&self) -> pb::CurrenciesResponse {
        pb::CurrenciesResponse {
            currencies: self.currencies().all(),
        }
    }

    /// `CloseRound`: start the MPC in the background.
    pub fn close(self: &Arc<Self>, req: pb::CloseRoundRequest) -> Result<(), MatchError> {
        let round = round_id(&req.round_id)?;
        let (collecting, base, quote) = {
            let mut rounds = self.rounds();
            let r = rounds
                .get_mut(&round)
                .ok_or_else(|| MatchError::UnknownRound(hex::encode(round)))?;
            if !matches!(r.state, State::Open(_)) {
                return Err(MatchError::WrongState {
                    round: hex::encode(round),
                    state: r.state.name(),
                    action: "close",
                });
            }
            let State::Open(c) = std::mem::replace(&mut r.state, State::Running) else {
                return Err(MatchError::Aborted("lost the book".into()));
            };
            (c, r.base.clone(), r.quote.clone())
        };
        let node = self.clone();
        tokio::spawn(async move {
            let inbox = node.inbox(round);
            let links = match Links::connect(&node, round).await {
                Ok(l) => Some(l),
                Err(e) => {
                    node.finish(round, Err(e));
                    return;
                }
            };
            let r = node
                .run_mpc(*collecting, &base, &quote, links.as_ref(), &inbox)
                .await;
            if let (Err(e), Some(l)) = (&r, &links) {
                l.send_abort(&e.to_string()).await;
            }
            node.finish(round, r);
        });
        Ok(())
    }

    async fn run_mpc(
        &self,
        collecting: Collecting,
        base: &str,
        quote: &str,
        links: Option<&Links>,
        inbox: &Inbox,
    ) -> Result<State, MatchError> {
        let links = links.ok_or_else(|| MatchError::Aborted("no links".into()))?;
        let t = self.config.peer_timeout;
        let mut cost = PhaseCost::default();
        let mut mark = (std::time::Instant::now(), 0u64);
        let mut lap = |k: usize| {
            let now = (std::time::Instant::now(), links.bytes_sent());
            cost.us[k] = now.0.duration_since(mark.0).as_micros() as u64;
            cost.bytes[k] = now.1 - mark.1;
            mark = now;
        };
        let checked = drive(collecting.close()?, self.config.fault, links, inbox, t).await?;
        lap(0);
        let cleared = drive(
            checked.start_clearing()?,
            self.config.fault,
            links,
            inbox,
            t,
        )
        .await?;
        lap(1);
        let outcome: RoundOutcome = cleared.outcome(base, quote);
        let outcome = Bytes::from(outcome.to_bytes()?);
        let signature = Bytes::copy_from_slice(
            &self
                .config
                .identity
                .signing
                .sign(&outcome_message(&outcome)),
        );
        links
            .send_signature(pb::NodeSignature {
                party: self.party().into(),
                provider_id: Bytes::copy_from_slice(&self.config.identity.provider_id()),
                signature: signature.clone(),
            })
            .await?;
        let result = cleared.result();
        let dropped = cleared.drop_reasons().to_vec();
        let record = cleared.public_record();
        // (the fills time includes signing the outcome and sending the signature)
        let filled = drive(cleared.start_fills()?, self.config.fault, links, inbox, t).await?;
        lap(2);
        // the fill shares are sealed to their owners when the owners ask (`fills`), not
        // here: sealing is one X25519 operation per order, 0.1–0.4 ms each, and done
        // here it held the runtime's threads while the other nodes still needed them
        // to receive the last fills step (benches/results/matching.md)
        let fills = filled.into_shares();
        Ok(State::Cleared {
            outcome,
            result,
            signature,
            fills,
            dropped,
            record,
            cost,
        })
    }

    fn finish(&self, round: [u8; 16], r: Result<State, MatchError>) {
        let state = match r {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(round = %hex::encode(round), party = self.party(), error = %e, "round aborted");
                State::Aborted(e.to_string())
            }
        };
        let mut rounds = self.rounds();
        let Some(r) = rounds.get_mut(&round) else {
            return;
        };
        if let State::Cleared {
            result: ClearingResult::Trade { level, volume },
            ..
        } = &state
        {
            self.history
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(pb::PairClearing {
                    round_id: Bytes::copy_from_slice(&round),
                    base: r.base.clone(),
                    quote: r.quote.clone(),
                    rate: r.p_min * r.ratio.powi(*level as i32),
                    volume: *volume,
                    level: *level,
                    cleared_at_ms: now_ms(),
                });
        }
        r.state = state;
    }

    /// `Info`.
    pub fn info(&self) -> pb::InfoResponse {
        pb::InfoResponse {
            party: self.party().into(),
            provider_id: Bytes::copy_from_slice(&self.config.identity.provider_id()),
            seal_public_key: Bytes::copy_from_slice(&self.config.identity.seal_public().to_bytes()),
        }
    }

    /// `Rates`: the table fitted to the latest cleared round of each pair.
    pub fn rates(&self, req: pb::RatesRequest) -> Result<pb::RatesResponse, MatchError> {
        let numeraire = if req.numeraire.is_empty() {
            self.config.numeraire.clone()
        } else {
            req.numeraire
        };
        let history = self
            .history
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let fitted = crate::rates::fit(&numeraire, &crate::rates::latest_per_pair(&history))?;
        Ok(pb::RatesResponse {
            numeraire: fitted.numeraire.clone(),
            rates: fitted
                .log_values
                .iter()
                .map(|(c, v)| pb::CurrencyRate {
                    currency: c.clone(),
                    log_value: *v,
                    value: v.exp(),
                })
                .collect(),
            cycles: fitted
                .cycles
                .iter()
                .map(|c| pb::CycleResidual {
                    currencies: c.currencies.clone(),
                    log_residual: c.log_residual,
                })
                .collect(),
            history,
        })
    }

    /// `Result`.
    pub fn result(&self, req: pb::ResultRequest) -> Result<pb::ResultResponse, MatchError> {
        let round = round_id(&req.round_id)?;
        let rounds = self.rounds();
        let r = rounds
            .get(&round)
            .ok_or_else(|| MatchError::UnknownRound(hex::encode(round)))?;
        let mut resp = pb::ResultResponse::default();
        match &r.state {
            State::Open(_) => resp.status = pb::RoundStatus::Open.into(),
            State::Running => resp.status = pb::RoundStatus::Running.into(),
            State::Aborted(reason) => {
                resp.status = pb::RoundStatus::Aborted.into();
                resp.reason = reason.clone();
            }
            State::Cleared {
                outcome,
                result,
                signature,
                dropped,
                record,
                cost,
                ..
            } => {
                resp.status = pb::RoundStatus::Cleared.into();
                [resp.check_us, resp.clearing_us, resp.fills_us] = cost.us;
                [resp.check_bytes, resp.clearing_bytes, resp.fills_bytes] = cost.bytes;
                resp.outcome = outcome.clone();
                let mut sigs = self.inbox(round).signatures();
                sigs[self.party() as usize] = Some(signature.clone());
                for (p, s) in sigs.into_iter().enumerate() {
                    if let Some(s) = s {
                        resp.signatures.push(pb::NodeSignature {
                            party: p as u32,
                            provider_id: Bytes::copy_from_slice(&self.config.nodes[p].provider_id),
                            signature: s,
                        });
                    }
                }
                if let ClearingResult::Trade { level, volume } = result {
                    resp.cross = true;
                    resp.level = *level;
                    resp.volume = *volume;
                    resp.rate = r.p_min * r.ratio.powi(*level as i32);
                }
                resp.dropped = dropped
                    .iter()
                    .map(|(d, _)| Bytes::copy_from_slice(d.as_bytes()))
                    .collect();
                resp.drop_reasons = dropped.iter().map(|(_, r)| r.to_string()).collect();
                resp.record_total = record.len() as u32;
                if req.include_record {
                    resp.accepted = record
                        .iter()
                        .skip(req.record_from as usize)
                        .take(MAX_RECORD_PAGE)
                        .map(|(id, st)| pb::OrderRecord {
                            order_id: Bytes::copy_from_slice(id.as_bytes()),
                            statement: Bytes::from(st.to_bytes()),
                        })
                        .collect();
                }
            }
        }
        Ok(resp)
    }

    /// `Fills`: this node's fill shares of the orders submitted with this owner key,
    /// each sealed to the owner now (one HPKE seal per order; run it off the async
    /// threads, see `api`).
    pub fn fills(&self, req: pb::FillsRequest) -> Result<pb::FillsResponse, MatchError> {
        let round = round_id(&req.round_id)?;
        let owner_key = SealPublicKey::from_bytes(&req.owner_seal_key)?;
        let owner = owner_key.to_bytes();
        let mine: Vec<veilgrid_mpc::FillShare> = {
            let rounds = self.rounds();
            let r = rounds
                .get(&round)
                .ok_or_else(|| MatchError::UnknownRound(hex::encode(round)))?;
            let State::Cleared { fills, .. } = &r.state else {
                return Err(MatchError::WrongState {
                    round: hex::encode(round),
                    state: r.state.name(),
                    action: "return fills",
                });
            };
            fills
                .iter()
                .filter(|s| r.owners.get(&s.id) == Some(&owner))
                .cloned()
                .collect()
        };
        let mut out = Vec::with_capacity(mine.len());
        for s in &mine {
            let plain = zeroize::Zeroizing::new(s.fill_bytes());
            let sealed = owner_key.seal(FILL_INFO, &share_aad(&round, s.id.as_bytes()), &plain)?;
            out.push(pb::SealedFill {
                order_id: Bytes::copy_from_slice(s.id.as_bytes()),
                sealed_share: Bytes::from(sealed),
            });
        }
        Ok(pb::FillsResponse {
            party: self.party().into(),
            fills: out,
        })
    }
}

/// Steps that receive at least this many words are computed on the blocking pool.
const BLOCKING_STEP_WORDS: usize = 1 << 14;

/// Run one phase to its end over the links.
async fn drive<T: Send + 'static>(
    mut step: Step<T>,
    fault: Option<Fault>,
    links: &Links,
    inbox: &Inbox,
    timeout: Duration,
) -> Result<T, MatchError> {
    // where a phase's wall time goes: handing messages to the streams, waiting for the
    // neighbours' messages, computing (logged at debug level)
    let (mut ts, mut tw, mut tc, mut steps) = (0u64, 0u64, 0u64, 0u32);
    let t0 = std::time::Instant::now();
    loop {
        match step {
            Step::Done(t) => {
                tracing::debug!(
                    party = links.party(),
                    steps,
                    send_us = ts,
                    wait_us = tw,
                    compute_us = tc,
                    total_us = t0.elapsed().as_micros() as u64,
                    "MPC phase done"
                );
                return Ok(t);
            }
            Step::Pending(mut r) => {
                steps += 1;
                let a = std::time::Instant::now();
                for mut m in r.take_outgoing() {
                    match fault {
                        Some(f) if f.applies(&m) && f.action == FaultAction::Stall => {
                            std::future::pending::<()>().await;
                        }
                        Some(f) if f.applies(&m) => {
                            if let Some(w) = m.words.first_mut() {
                                *w ^= 1;
                            }
                        }
                        _ => {}
                    }
                    links.send(&m).await?;
                }
                let b = std::time::Instant::now();
                let incoming = inbox.recv(r.phase(), r.step(), timeout).await?;
                let c = std::time::Instant::now();
                // a large step computes for milliseconds (malicious mode: tens): do it
                // off the async threads, which must keep moving this and the other
                // nodes' stream data (HTTP/2 window updates) meanwhile
                // (the input phase verifies every order's range proofs and computes the
                // commitment check: ~0.8 ms per order whatever the message size)
                let words: usize = incoming.iter().map(|m| m.words.len()).sum();
                let heavy =
                    words >= BLOCKING_STEP_WORDS || r.phase() == veilgrid_mpc::Phase::Inputs;
                step = if heavy {
                    tokio::task::spawn_blocking(move || r.deliver(incoming))
                        .await
                        .map_err(|e| MatchError::Aborted(format!("MPC step: {e}")))??
                } else {
                    r.deliver(incoming)?
                };
                ts += (b - a).as_micros() as u64;
                tw += (c - b).as_micros() as u64;
                tc += c.elapsed().as_micros() as u64;
            }
        }
    }
}
