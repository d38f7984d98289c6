//! The service logic shared by the gRPC API and the byte-completion handler. Every operation
//! loads the round's state from the store, runs one typestate step of `veilgrid-aggregation`
//! (`ServerCollecting::accept`, `close`, `ServerAwaitingMembers::accept_member`, `finish`) and
//! writes the new snapshot back in the same transaction, so a restart loses nothing.

use std::path::Path;

use prost::Message;
use rand_core::{OsRng, RngCore};
use veilgrid_aggregation::{
    ClientMessage, MemberMessage, Round, RoundParams, ServerAwaitingMembers, ServerCollecting,
};
use veilgrid_core::seal::SealPublicKey;
use veilgrid_proto::aggregation::v1 as pb;

use crate::{
    AggError,
    store::{self, RoundRow, Store},
};

/// Round states as stored and reported.
pub mod state {
    /// Clients may submit.
    pub const COLLECTING: &str = "collecting";
    /// The present set is declared; members answer.
    pub const AWAITING: &str = "awaiting_members";
    /// The sum is known.
    pub const FINISHED: &str = "finished";
    /// The round ended without a sum.
    pub const FAILED: &str = "failed";
}

/// Largest committee a round may have through the service.
pub const MAX_COMMITTEE: usize = 64;

/// All rounds of one aggregation server.
pub struct Rounds {
    store: Store,
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

impl Rounds {
    /// Open the rounds kept in `dir` (`None`: in memory).
    pub fn open(dir: Option<&Path>) -> Result<Self, AggError> {
        Ok(Self {
            store: Store::open(dir)?,
        })
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
        if req.deadline_unix_ms <= now {
            return Err(AggError::BadRequest(
                "the deadline has already passed".into(),
            ));
        }
        let keys = req
            .committee_keys
            .iter()
            .map(|k| SealPublicKey::from_bytes(k))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| AggError::BadRequest(format!("committee key: {e}")))?;
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
        };
        store::insert(&self.store.lock(), &row)?;
        tracing::info!(round = %short(&id), "round created");
        Ok(info(&row, &[]))
    }

    fn load(&self, c: &rusqlite::Connection, id: &[u8; 32]) -> Result<RoundRow, AggError> {
        store::get(c, id)?.ok_or_else(|| AggError::NotFound(short(id)))
    }

    /// Close collection if the deadline passed or the round is full (the present set is then
    /// declared and fixed). Returns the row as it is now.
    fn advance(
        &self,
        c: &rusqlite::Connection,
        mut row: RoundRow,
        now: u64,
    ) -> Result<RoundRow, AggError> {
        if row.state != state::COLLECTING {
            return Ok(row);
        }
        let round = parse_round(&row)?;
        if now < row.deadline_ms && row.submitted < round.params().max_clients() {
            return Ok(row);
        }
        let server = ServerCollecting::restore(&round, &row.snapshot)
            .map_err(|_| AggError::CorruptStore("collecting snapshot"))?;
        match server.close() {
            Ok(awaiting) => {
                row.state = state::AWAITING.into();
                row.snapshot = awaiting.snapshot();
            }
            Err(e) => {
                row.state = state::FAILED.into();
                row.error = Some(e.to_string());
            }
        }
        store::update(c, &row)?;
        tracing::info!(round = %short(&row.id), state = %row.state, "collection closed");
        Ok(row)
    }

    /// The round's public description and progress.
    pub fn get(&self, round_id: &[u8], now: u64) -> Result<pb::RoundInfo, AggError> {
        let id = id32("round id", round_id)?;
        let c = self.store.lock();
        let row = self.load(&c, &id)?;
        let row = self.advance(&c, row, now)?;
        let members = answered(&row)?;
        Ok(info(&row, &members))
    }

    /// A client's one message.
    pub fn submit(
        &self,
        req: &pb::SubmitRequest,
        now: u64,
    ) -> Result<pb::SubmitResponse, AggError> {
        let id = id32("round id", &req.round_id)?;
        let mut c = self.store.lock();
        let row = self.load(&c, &id)?;
        let mut row = self.advance(&c, row, now)?;
        if row.state != state::COLLECTING {
            return Err(AggError::State {
                round: short(&id),
                reason: format!("no longer accepts clients (state {})", row.state),
            });
        }
        let round = parse_round(&row)?;
        if req.message.len() != ClientMessage::encoded_len(&round) {
            return Err(AggError::Round(veilgrid_aggregation::Error::Malformed {
                what: "client message",
                reason: "wrong size for this round",
            }));
        }
        let msg = ClientMessage::from_bytes(&round, &req.message)?;
        let mut server = ServerCollecting::restore(&round, &row.snapshot)
            .map_err(|_| AggError::CorruptStore("collecting snapshot"))?;
        server.accept(&msg)?;
        row.snapshot = server.snapshot();
        row.submitted += 1;
        let tx = c.transaction()?;
        for member in 1..=round.params().committee() {
            let sealed = msg
                .sealed_share(member)
                .ok_or(AggError::CorruptStore("sealed share"))?;
            store::insert_share(&tx, &id, msg.client(), member, sealed)?;
        }
        store::update(&tx, &row)?;
        tx.commit()?;
        let row = self.advance(&c, row, now)?;
        Ok(pb::SubmitResponse {
            client: msg.client(),
            submitted: row.submitted,
        })
    }

    /// Closed rounds on whose committee `member_key` sits and which it has not answered.
    pub fn member_work(
        &self,
        req: &pb::MemberWorkRequest,
        now: u64,
    ) -> Result<pb::MemberWorkResponse, AggError> {
        let key = SealPublicKey::from_bytes(&req.member_key)
            .map_err(|e| AggError::BadRequest(format!("member key: {e}")))?;
        let c = self.store.lock();
        for row in store::in_state(&c, state::COLLECTING)? {
            self.advance(&c, row, now)?;
        }
        let mut rounds = Vec::new();
        for row in store::in_state(&c, state::AWAITING)? {
            let round = parse_round(&row)?;
            let Some(pos) = round.committee().iter().position(|k| *k == key) else {
                continue;
            };
            let member = pos as u16 + 1;
            let awaiting = ServerAwaitingMembers::restore(&round, &row.snapshot)
                .map_err(|_| AggError::CorruptStore("awaiting snapshot"))?;
            if awaiting.members().any(|m| m == member) {
                continue;
            }
            let present = awaiting.present();
            let shares = store::shares_for(&c, &row.id, member)?
                .into_iter()
                .filter(|(client, _)| present.contains(*client))
                .map(|(client, sealed)| pb::SealedShare {
                    client,
                    sealed: sealed.into(),
                })
                .collect();
            rounds.push(pb::RoundWork {
                round: row.round.clone().into(),
                member: u32::from(member),
                present_set: present.to_bytes().into(),
                shares,
            });
        }
        Ok(pb::MemberWorkResponse { rounds })
    }

    /// A member's one message. Once `t + 1` members answered the sum is computed and kept.
    pub fn member_respond(
        &self,
        req: &pb::MemberRespondRequest,
        now: u64,
    ) -> Result<pb::MemberRespondResponse, AggError> {
        let id = id32("round id", &req.round_id)?;
        let c = self.store.lock();
        let row = self.load(&c, &id)?;
        let mut row = self.advance(&c, row, now)?;
        if row.state != state::AWAITING {
            return Err(AggError::State {
                round: short(&id),
                reason: format!("does not take member answers (state {})", row.state),
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
        let mut awaiting = ServerAwaitingMembers::restore(&round, &row.snapshot)
            .map_err(|_| AggError::CorruptStore("awaiting snapshot"))?;
        awaiting.accept_member(&msg)?;
        let answered = awaiting.members().count() as u32;
        let needed = u32::from(round.params().threshold()) + 1;
        row.snapshot = awaiting.snapshot();
        if answered >= needed {
            let members: Vec<u32> = awaiting.members().map(u32::from).collect();
            match awaiting.finish() {
                Ok(r) => {
                    row.state = state::FINISHED.into();
                    row.result = Some(
                        pb::ResultResponse {
                            sum: r.sum,
                            counted: r.counted,
                            members,
                        }
                        .encode_to_vec(),
                    );
                }
                Err(e) => {
                    row.state = state::FAILED.into();
                    row.error = Some(e.to_string());
                }
            }
            tracing::info!(round = %short(&id), state = %row.state, "round ended");
        }
        store::update(&c, &row)?;
        Ok(pb::MemberRespondResponse { answered, needed })
    }

    /// The sum, or why there is none (yet).
    pub fn result(&self, round_id: &[u8], now: u64) -> Result<pb::ResultResponse, AggError> {
        let id = id32("round id", round_id)?;
        let c = self.store.lock();
        let row = self.load(&c, &id)?;
        let row = self.advance(&c, row, now)?;
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
            _ => {
                // Let the math say how many members are missing (it releases nothing).
                let round = parse_round(&row)?;
                let awaiting = ServerAwaitingMembers::restore(&round, &row.snapshot)
                    .map_err(|_| AggError::CorruptStore("awaiting snapshot"))?;
                match awaiting.finish() {
                    Err(e) => Err(AggError::Round(e)),
                    Ok(_) => Err(AggError::CorruptStore("finishable round left awaiting")),
                }
            }
        }
    }
}

fn answered(row: &RoundRow) -> Result<Vec<u32>, AggError> {
    if row.state != state::AWAITING {
        return Ok(Vec::new());
    }
    let round = parse_round(row)?;
    let awaiting = ServerAwaitingMembers::restore(&round, &row.snapshot)
        .map_err(|_| AggError::CorruptStore("awaiting snapshot"))?;
    Ok(awaiting.members().map(u32::from).collect())
}

fn info(row: &RoundRow, members: &[u32]) -> pb::RoundInfo {
    pb::RoundInfo {
        round_id: row.id.to_vec().into(),
        round: row.round.clone().into(),
        deadline_unix_ms: row.deadline_ms,
        state: row.state.clone(),
        submitted: row.submitted,
        members_answered: members.to_vec(),
        error: row.error.clone().unwrap_or_default(),
    }
}
