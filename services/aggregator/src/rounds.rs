//! The service logic shared by the gRPC API and the byte-completion handler. Every operation
//! loads the round's state from the store, runs one typestate step of `veilgrid-aggregation`
//! (`ServerCollecting::accept`, `close`, `ServerAwaitingMembers::accept_member`, `finish`) and
//! writes the new snapshot back in the same transaction, so a restart loses nothing.

use std::{collections::BTreeSet, path::Path, sync::mpsc};

use prost::Message;
use rand_core::{OsRng, RngCore};
use veilgrid_aggregation::{
    AuditTranscript, ClientMessage, MemberMessage, Round, RoundParams, ServerAwaitingMembers,
    ServerCollecting,
};
use veilgrid_core::{seal::SealPublicKey, sign::VerifierKey};
use veilgrid_proto::aggregation::v1 as pb;

use crate::{
    AggError, signing,
    store::{self, RoundRow, RoundStore, RoundTx, SqliteRounds},
};

/// Round states as stored and reported.
pub mod state {
    /// Clients may submit.
    pub const COLLECTING: &str = "collecting";
    /// Collection closed; members open their shares and report bad ones before the set is
    /// declared.
    pub const CHECKING: &str = "checking";
    /// The present set is declared; members answer.
    pub const AWAITING: &str = "awaiting_members";
    /// The sum is known.
    pub const FINISHED: &str = "finished";
    /// The round ended without a sum.
    pub const FAILED: &str = "failed";
}

/// Largest committee a round may have through the service.
pub const MAX_COMMITTEE: usize = 64;

/// Member deadline when the request gives none: the clients' deadline plus this, ms.
pub const DEFAULT_MEMBER_WINDOW_MS: u64 = 60_000;

/// Share-check window when the request gives none, ms.
pub const DEFAULT_CHECK_WINDOW_MS: u64 = 2_000;

/// All rounds of one aggregation server.
pub struct Rounds {
    store: Box<dyn RoundStore>,
}

impl std::fmt::Debug for Rounds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rounds").finish_non_exhaustive()
    }
}

fn short(id: &[u8; 32]) -> String {
    hex::encode(&id[..8])
}

/// A 32-byte field of a request.
pub(crate) fn id32(what: &str, b: &[u8]) -> Result<[u8; 32], AggError> {
    b.try_into()
        .map_err(|_| AggError::BadRequest(format!("{what} must be 32 bytes, got {}", b.len())))
}

fn parse_round(row: &RoundRow) -> Result<Round, AggError> {
    Round::from_bytes(&row.round).map_err(|_| AggError::CorruptStore("round"))
}

fn collecting<'r>(round: &'r Round, row: &RoundRow) -> Result<ServerCollecting<'r>, AggError> {
    ServerCollecting::restore(round, &row.snapshot)
        .map_err(|_| AggError::CorruptStore("collecting snapshot"))
}

fn awaiting<'r>(round: &'r Round, row: &RoundRow) -> Result<ServerAwaitingMembers<'r>, AggError> {
    ServerAwaitingMembers::restore(round, &row.snapshot)
        .map_err(|_| AggError::CorruptStore("awaiting snapshot"))
}

fn member_index(round: &Round, member: u32) -> Result<u16, AggError> {
    u16::try_from(member)
        .ok()
        .filter(|&m| m >= 1 && m <= round.params().committee())
        .ok_or(AggError::Round(veilgrid_aggregation::Error::UnknownMember(
            member.min(u32::from(u16::MAX)) as u16,
        )))
}

impl Rounds {
    /// Open the rounds kept in `dir` (`None`: in memory).
    pub fn open(dir: Option<&Path>) -> Result<Self, AggError> {
        Ok(Self::with_store(Box::new(SqliteRounds::open(dir)?)))
    }

    /// Open the rounds in the store `--store` names (`sqlite:DIR`, `postgres://…`; by
    /// default the embedded store in `data_dir`, see [`store::open`]).
    pub fn open_store(
        spec: &veilgrid_kit::store_spec::StoreSpec,
        data_dir: Option<&Path>,
    ) -> Result<Self, AggError> {
        Ok(Self::with_store(store::open(spec, data_dir)?))
    }

    /// The rounds kept in `store`.
    pub fn with_store(store: Box<dyn RoundStore>) -> Self {
        Self { store }
    }

    /// Run one step in one transaction of the store. Its writes are committed even when it
    /// then refuses the request (a round moved along its deadlines before a late client was
    /// turned away stays moved); a failure of the store itself rolls it back.
    fn step<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn RoundTx) -> Result<T, AggError> + Send + 'static,
    ) -> Result<T, AggError> {
        let (answer, answered) = mpsc::sync_channel(1);
        self.store.atomically(Box::new(move |tx| match f(tx) {
            Err(e) if e.is_store_failure() => Err(e),
            r => {
                let _ = answer.send(r);
                Ok(())
            }
        }))?;
        answered
            .try_recv()
            .unwrap_or(Err(AggError::CorruptStore("round step without an answer")))
    }

    /// Create a round.
    pub fn create(
        &self,
        req: &pb::CreateRoundRequest,
        now: u64,
    ) -> Result<pb::RoundInfo, AggError> {
        if req.committee_keys.is_empty() || req.committee_keys.len() > MAX_COMMITTEE {
            return Err(AggError::BadRequest(format!(
                "a round needs 1 to {MAX_COMMITTEE} committee keys, got {}",
                req.committee_keys.len()
            )));
        }
        if req.committee_signing_keys.len() != req.committee_keys.len() {
            return Err(AggError::BadRequest(format!(
                "one signing key per committee member: {} sealing keys, {} signing keys",
                req.committee_keys.len(),
                req.committee_signing_keys.len()
            )));
        }
        if req.deadline_unix_ms <= now {
            return Err(AggError::BadRequest(
                "the deadline has already passed".into(),
            ));
        }
        let check_window = match req.check_window_ms {
            0 => DEFAULT_CHECK_WINDOW_MS,
            w => u64::from(w),
        };
        let member_deadline = match req.member_deadline_unix_ms {
            0 => req
                .deadline_unix_ms
                .saturating_add(DEFAULT_MEMBER_WINDOW_MS),
            d => d,
        };
        if member_deadline <= req.deadline_unix_ms.saturating_add(check_window) {
            return Err(AggError::BadRequest(
                "the member deadline must come after the clients' deadline plus the check window"
                    .into(),
            ));
        }
        let keys = req
            .committee_keys
            .iter()
            .map(|k| SealPublicKey::from_bytes(k))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| AggError::BadRequest(format!("committee key: {e}")))?;
        let mut signers = Vec::with_capacity(32 * keys.len());
        for k in &req.committee_signing_keys {
            let v = VerifierKey::from_bytes(k)
                .map_err(|e| AggError::BadRequest(format!("committee signing key: {e}")))?;
            signers.extend_from_slice(&v.to_bytes());
        }
        let threshold = u16::try_from(req.threshold)
            .map_err(|_| AggError::BadRequest("threshold too large".into()))?;
        let mut params = RoundParams::new(
            req.length,
            req.bits,
            req.max_clients,
            keys.len() as u16,
            threshold,
        )?;
        if req.min_clients > 1 {
            params = params.with_min_clients(req.min_clients)?;
        }
        if req.verifiable {
            params = params.verifiable()?;
        }
        let mut id = [0u8; 32];
        let mut seed = [0u8; 32];
        OsRng.fill_bytes(&mut id);
        OsRng.fill_bytes(&mut seed);
        let round = Round::new(id, params, seed, keys)?;
        let row = RoundRow {
            id,
            round: round.to_bytes(),
            deadline_ms: req.deadline_unix_ms,
            state: state::COLLECTING.into(),
            snapshot: ServerCollecting::new(&round).snapshot(),
            submitted: 0,
            result: None,
            error: None,
            signers,
            member_deadline_ms: member_deadline,
            check_window_ms: check_window,
            check_deadline_ms: 0,
            excluded: Vec::new(),
        };
        let row = self.step(move |tx| {
            tx.insert(&row)?;
            Ok(row)
        })?;
        tracing::info!(round = %short(&id), verifiable = req.verifiable, "round created");
        Ok(info(&row, &[], &[]))
    }

    /// The round's public description and progress.
    pub fn get(&self, round_id: &[u8], now: u64) -> Result<pb::RoundInfo, AggError> {
        let id = id32("round id", round_id)?;
        self.step(move |tx| {
            let row = load(tx, &id)?;
            let row = advance(tx, row, now)?;
            let members = answered(&row)?;
            let checked: Vec<u32> = if row.state == state::CHECKING {
                tx.checks(&id)?
                    .into_iter()
                    .map(|(m, _)| u32::from(m))
                    .collect()
            } else {
                Vec::new()
            };
            Ok(info(&row, &members, &checked))
        })
    }

    /// A client's one message.
    pub fn submit(
        &self,
        req: &pb::SubmitRequest,
        now: u64,
    ) -> Result<pb::SubmitResponse, AggError> {
        let id = id32("round id", &req.round_id)?;
        let req = req.clone();
        self.step(move |tx| {
            let row = load(tx, &id)?;
            let mut row = advance(tx, row, now)?;
            if row.state != state::COLLECTING {
                return Err(AggError::State {
                    round: short(&id),
                    reason: format!(
                        "the clients' deadline has passed or the round is full: no longer accepts clients (state {})",
                        row.state
                    ),
                });
            }
            let round = parse_round(&row)?;
            if req.message.len() != ClientMessage::encoded_len(&round) {
                return Err(AggError::Round(veilgrid_aggregation::Error::Malformed {
                    what: "client message",
                    reason: "wrong size for this round (wrong vector length, or another round's message)",
                }));
            }
            let msg = ClientMessage::from_bytes(&round, &req.message)?;
            let mut server = collecting(&round, &row)?;
            server.accept(&msg)?;
            row.snapshot = server.snapshot();
            row.submitted += 1;
            for member in 1..=round.params().committee() {
                let sealed = msg
                    .sealed_share(member)
                    .ok_or(AggError::CorruptStore("sealed share"))?;
                tx.insert_share(&id, msg.client(), member, sealed, row.submitted)?;
            }
            // Kept until the set is declared (a member may report the client's share as bad, and
            // excluding it needs its masked vector); in verifiable rounds, for the audit transcript.
            tx.insert_message(&id, msg.client(), &req.message)?;
            tx.update(&row)?;
            let row = advance(tx, row, now)?;
            Ok(pb::SubmitResponse {
                client: msg.client(),
                submitted: row.submitted,
            })
        })
    }

    /// Rounds on whose committee `member_key` sits with work for it: shares to open while the
    /// round collects (state `collecting`), share checks (state `checking`; `checked` once
    /// reported) and answers (state `awaiting_members`, not yet answered). For a round the request holds a
    /// cursor of, only the shares that arrived after it are sent.
    pub fn member_work(
        &self,
        req: &pb::MemberWorkRequest,
        now: u64,
    ) -> Result<pb::MemberWorkResponse, AggError> {
        let key = SealPublicKey::from_bytes(&req.member_key)
            .map_err(|e| AggError::BadRequest(format!("member key: {e}")))?;
        let held = req.held.clone();
        let after = move |id: &[u8; 32]| {
            held.iter()
                .filter(|h| h.round_id.as_ref() == id)
                .map(|h| h.seq)
                .max()
                .unwrap_or(0)
        };
        self.step(move |tx| {
            let mut active = Vec::new();
            for row in tx.active()? {
                active.push(advance(tx, row, now)?);
            }
            let mut rounds = Vec::new();
            for st in [state::COLLECTING, state::CHECKING, state::AWAITING] {
                for row in active.iter().filter(|r| r.state == st) {
                    let round = parse_round(row)?;
                    let Some(pos) = round.committee().iter().position(|k| *k == key) else {
                        continue;
                    };
                    let member = pos as u16 + 1;
                    let (phase, present_set) = match st {
                        state::COLLECTING => ("collect", Vec::new()),
                        state::CHECKING => {
                            let done = tx.checks(&row.id)?.iter().any(|(m, _)| *m == member);
                            // "checked": nothing to do until the set is declared; listed so the
                            // member keeps the shares it opened.
                            (if done { "checked" } else { "check" }, Vec::new())
                        }
                        _ => {
                            let awaiting = awaiting(&round, row)?;
                            if awaiting.members().any(|m| m == member) {
                                continue;
                            }
                            ("answer", awaiting.present().to_bytes())
                        }
                    };
                    let shares = tx
                        .shares_for(&row.id, member, after(&row.id))?
                        .into_iter()
                        .map(|(client, sealed, seq)| pb::SealedShare {
                            client,
                            sealed: sealed.into(),
                            seq,
                        })
                        .collect();
                    rounds.push(pb::RoundWork {
                        round: row.round.clone().into(),
                        member: u32::from(member),
                        present_set: present_set.into(),
                        shares,
                        phase: phase.into(),
                    });
                }
            }
            Ok(pb::MemberWorkResponse { rounds })
        })
    }

    /// A member's signed report of the clients whose shares did not open. Reported clients are
    /// excluded when the set is declared; the round goes on for the others.
    pub fn member_check(
        &self,
        req: &pb::MemberCheckRequest,
        now: u64,
    ) -> Result<pb::MemberCheckResponse, AggError> {
        let id = id32("round id", &req.round_id)?;
        let req = req.clone();
        self.step(move |tx| {
        let row = load(tx, &id)?;
        let row = advance(tx, row, now)?;
        if row.state != state::CHECKING {
            return Err(AggError::State {
                round: short(&id),
                reason: format!(
                    "does not take share reports (state {}; reports are taken between the clients' deadline and the end of the check window)",
                    row.state
                ),
            });
        }
        let round = parse_round(&row)?;
        let member = member_index(&round, req.member)?;
        let bad: Vec<u64> = req.bad.iter().map(|b| b.client).collect();
        if bad.windows(2).any(|w| w[0] >= w[1]) {
            return Err(AggError::BadRequest(
                "reported clients must be strictly increasing".into(),
            ));
        }
        signing::verify(
            &row.signers,
            member,
            "share report",
            &signing::check_bytes(&id, member, &bad),
            &req.signature,
        )?;
        let accepted: BTreeSet<u64> = collecting(&round, &row)?.clients().collect();
        if let Some(c) = bad.iter().find(|c| !accepted.contains(c)) {
            return Err(AggError::BadRequest(format!(
                "member {member} reports client {c}, which the round did not accept"
            )));
        }
        if tx.checks(&id)?.iter().any(|(m, _)| *m == member) {
            return Err(AggError::DuplicateCheck(member));
        }
        tx.insert_check(&id, member, &bad, &req.signature)?;
        for b in &req.bad {
            tracing::warn!(round = %short(&id), member, client = b.client, reason = %b.reason, "bad share reported");
        }
        let checked = tx.checks(&id)?.len() as u32;
        advance(tx, row, now)?;
        Ok(pb::MemberCheckResponse { checked })
        })
    }

    /// A member's one message. Once `t + 1` members answered the sum is computed and kept.
    pub fn member_respond(
        &self,
        req: &pb::MemberRespondRequest,
        now: u64,
    ) -> Result<pb::MemberRespondResponse, AggError> {
        let id = id32("round id", &req.round_id)?;
        let req = req.clone();
        self.step(move |tx| {
            let row = load(tx, &id)?;
            let mut row = advance(tx, row, now)?;
            if row.state != state::AWAITING {
                let late = now >= row.member_deadline_ms;
                return Err(AggError::State {
                    round: short(&id),
                    reason: if late {
                        format!(
                            "the member deadline has passed: late answers are ignored (state {})",
                            row.state
                        )
                    } else {
                        format!("does not take member answers (state {})", row.state)
                    },
                });
            }
            let round = parse_round(&row)?;
            if req.message.len() != MemberMessage::encoded_len(&round) {
                return Err(AggError::Round(veilgrid_aggregation::Error::Malformed {
                    what: "member message",
                    reason: "wrong size for this round",
                }));
            }
            let msg = MemberMessage::from_bytes(&round, &req.message)?;
            let member = member_index(&round, u32::from(msg.member()))?;
            signing::verify(
                &row.signers,
                member,
                "answer",
                &signing::answer_bytes(&id, &req.message),
                &req.signature,
            )?;
            let mut awaiting = awaiting(&round, &row)?;
            awaiting.accept_member(&msg)?;
            let answered = awaiting.members().count() as u32;
            let needed = u32::from(round.params().threshold()) + 1;
            row.snapshot = awaiting.snapshot();
            if answered >= needed {
                let members: Vec<u32> = awaiting.members().map(u32::from).collect();
                match awaiting.finish() {
                    Ok(r) => {
                        let (blindings, transcript) = match &r.blindings {
                            Some(b) => {
                                let msgs = tx
                                    .messages(&id)?
                                    .iter()
                                    .map(|m| ClientMessage::from_bytes(&round, m))
                                    .collect::<Result<Vec<_>, _>>()
                                    .map_err(|_| AggError::CorruptStore("client message"))?;
                                let t = AuditTranscript::from_round(&msgs, &r)?;
                                (
                                    b.iter()
                                        .map(|s| bytes::Bytes::copy_from_slice(s.as_bytes()))
                                        .collect(),
                                    t.to_bytes(&round).into(),
                                )
                            }
                            None => (Vec::new(), Default::default()),
                        };
                        row.state = state::FINISHED.into();
                        row.result = Some(
                            pb::ResultResponse {
                                sum: r.sum,
                                counted: r.counted,
                                members,
                                blindings,
                                transcript,
                                excluded: row.excluded.clone(),
                            }
                            .encode_to_vec(),
                        );
                    }
                    Err(e) => {
                        row.state = state::FAILED.into();
                        row.error = Some(e.to_string());
                    }
                }
                tx.delete_messages(&id)?;
                tracing::info!(round = %short(&id), state = %row.state, "round ended");
            }
            tx.update(&row)?;
            Ok(pb::MemberRespondResponse { answered, needed })
        })
    }

    /// The sum, or why there is none (yet).
    pub fn result(&self, round_id: &[u8], now: u64) -> Result<pb::ResultResponse, AggError> {
        let id = id32("round id", round_id)?;
        self.step(move |tx| {
            let row = load(tx, &id)?;
            let row = advance(tx, row, now)?;
            match row.state.as_str() {
                state::FINISHED => {
                    let bytes = row
                        .result
                        .as_deref()
                        .ok_or(AggError::CorruptStore("result"))?;
                    pb::ResultResponse::decode(bytes).map_err(|_| AggError::CorruptStore("result"))
                }
                state::FAILED => Err(AggError::State {
                    round: short(&id),
                    reason: format!(
                        "failed, no sum is released: {}",
                        row.error.as_deref().unwrap_or("unknown")
                    ),
                }),
                state::COLLECTING => Err(AggError::State {
                    round: short(&id),
                    reason: format!("still collecting ({} clients so far)", row.submitted),
                }),
                state::CHECKING => Err(AggError::State {
                    round: short(&id),
                    reason: format!(
                        "members are checking their shares ({} clients accepted)",
                        row.submitted
                    ),
                }),
                _ => {
                    // Let the math say how many members are missing (it releases nothing).
                    let round = parse_round(&row)?;
                    match awaiting(&round, &row)?.finish() {
                        Err(e) => Err(AggError::Round(e)),
                        Ok(_) => Err(AggError::CorruptStore("finishable round left awaiting")),
                    }
                }
            }
        })
    }

    /// Finished rounds after `after_round_id` (by id), for auditors.
    pub fn list(&self, req: &pb::ListRoundsRequest) -> Result<pb::ListRoundsResponse, AggError> {
        if !req.after_round_id.is_empty() {
            id32("after_round_id", &req.after_round_id)?;
        }
        let limit = match req.limit {
            0 => 100,
            n => (n as usize).min(1000),
        };
        let verifiable_only = req.verifiable_only;
        let mut after = req.after_round_id.to_vec();
        self.step(move |tx| {
            let mut rounds = Vec::new();
            // Filtering may drop rows: page through the store until `limit` are kept.
            loop {
                let rows = tx.in_state_after(state::FINISHED, &after, limit)?;
                let Some(last) = rows.last() else { break };
                after = last.id.to_vec();
                let full = rows.len() == limit;
                for row in rows {
                    let i = info(&row, &[], &[]);
                    if (!verifiable_only || i.verifiable) && rounds.len() < limit {
                        rounds.push(i);
                    }
                }
                if !full || rounds.len() >= limit {
                    break;
                }
            }
            Ok(pb::ListRoundsResponse { rounds })
        })
    }
}

fn answered(row: &RoundRow) -> Result<Vec<u32>, AggError> {
    if row.state != state::AWAITING {
        return Ok(Vec::new());
    }
    let round = parse_round(row)?;
    Ok(awaiting(&round, row)?.members().map(u32::from).collect())
}

fn info(row: &RoundRow, members: &[u32], checked: &[u32]) -> pb::RoundInfo {
    let verifiable = Round::from_bytes(&row.round)
        .map(|r| r.params().is_verifiable())
        .unwrap_or(false);
    pb::RoundInfo {
        round_id: row.id.to_vec().into(),
        round: row.round.clone().into(),
        deadline_unix_ms: row.deadline_ms,
        state: row.state.clone(),
        submitted: row.submitted,
        members_answered: members.to_vec(),
        error: row.error.clone().unwrap_or_default(),
        member_deadline_unix_ms: row.member_deadline_ms,
        verifiable,
        excluded: row.excluded.clone(),
        check_deadline_unix_ms: row.check_deadline_ms,
        members_checked: checked.to_vec(),
    }
}

fn load(tx: &mut dyn RoundTx, id: &[u8; 32]) -> Result<RoundRow, AggError> {
    tx.get(id)?.ok_or_else(|| AggError::NotFound(short(id)))
}

/// Move the round along its deadlines: close collection at the clients' deadline or when
/// `N` clients arrived; declare the set (excluding reported clients) when every member
/// reported on its shares or the check window ended; fail a round still short of `t + 1`
/// answers at the member deadline. Returns the row as it is now.
fn advance(tx: &mut dyn RoundTx, mut row: RoundRow, now: u64) -> Result<RoundRow, AggError> {
    loop {
        match row.state.as_str() {
            state::COLLECTING => {
                let round = parse_round(&row)?;
                if now < row.deadline_ms && row.submitted < round.params().max_clients() {
                    return Ok(row);
                }
                row.state = state::CHECKING.into();
                row.check_deadline_ms = now.saturating_add(row.check_window_ms);
                tx.update(&row)?;
                tracing::info!(round = %short(&row.id), clients = row.submitted, "collection closed");
            }
            state::CHECKING => {
                let round = parse_round(&row)?;
                let checks = tx.checks(&row.id)?;
                let all = checks.len() == usize::from(round.params().committee());
                let too_few = row.submitted < round.params().min_clients();
                if !(all || too_few || now >= row.check_deadline_ms) {
                    return Ok(row);
                }
                row = declare(tx, row, &round, &checks)?;
            }
            state::AWAITING => {
                if now < row.member_deadline_ms {
                    return Ok(row);
                }
                let round = parse_round(&row)?;
                let have = awaiting(&round, &row)?.members().count();
                row.state = state::FAILED.into();
                row.error = Some(format!(
                    "the member deadline passed with {have} of the {} member answers needed; no sum is released",
                    round.params().threshold() + 1
                ));
                tx.update(&row)?;
                tracing::info!(round = %short(&row.id), "member deadline passed");
                return Ok(row);
            }
            _ => return Ok(row),
        }
    }
}

/// Exclude the clients reported bad by a member, then declare the present set.
fn declare(
    tx: &mut dyn RoundTx,
    mut row: RoundRow,
    round: &Round,
    checks: &[(u16, Vec<u64>)],
) -> Result<RoundRow, AggError> {
    let mut server = collecting(round, &row)?;
    let accepted: BTreeSet<u64> = server.clients().collect();
    let bad: BTreeSet<u64> = checks
        .iter()
        .flat_map(|(_, b)| b.iter().copied())
        .filter(|c| accepted.contains(c))
        .collect();
    for &client in &bad {
        let bytes = tx
            .message(&row.id, client)?
            .ok_or(AggError::CorruptStore("client message"))?;
        let msg = ClientMessage::from_bytes(round, &bytes)
            .map_err(|_| AggError::CorruptStore("client message"))?;
        server.exclude(&msg)?;
    }
    row.excluded = bad.into_iter().collect();
    match server.close() {
        Ok(awaiting) => {
            row.state = state::AWAITING.into();
            row.snapshot = awaiting.snapshot();
        }
        Err(e) => {
            row.state = state::FAILED.into();
            row.error = Some(format!("{e}; no sum is released"));
        }
    }
    if !round.params().is_verifiable() || row.state == state::FAILED {
        tx.delete_messages(&row.id)?;
    }
    tx.update(&row)?;
    tracing::info!(
        round = %short(&row.id),
        state = %row.state,
        excluded = row.excluded.len(),
        "client set declared"
    );
    Ok(row)
}
