//! A matching node's round, as typestates: [`Collecting`] → [`Checked`] → [`Cleared`] →
//! [`Filled`]. Each arrow is a phase that runs as a [`Running`] state machine: the
//! caller moves its messages and feeds the replies back, and gets the next typestate
//! when the phase is over. No step can run out of order, none does I/O.

use crate::clearing::{FillState, clear, fills};
use crate::ctx::{Core, Ctx, GateLog, SecurityMode};
use crate::engine::{Chan, Running, Step};
use crate::error::Error;
use crate::message::Phase;
use crate::order::{FillShare, OrderId, OrderPayload, limit_bits};
use crate::outcome::{ClearingResult, RoundOutcome, order_set_hash};
use crate::party::PartyId;
use crate::prf::{PairSeed, PrfPair, PrfStream};
use std::collections::HashSet;
use zeroize::Zeroize;

/// Most orders one round accepts.
pub const MAX_ORDERS: usize = 100_000;

/// A node's long-term PRF seeds: `with_prev` is shared with party `i−1`, `with_next`
/// with party `i+1`. Each node draws the seed it shares with its successor
/// ([`PairSeed::random`]) and sends it over the private, authenticated node-to-node
/// channel; per-round keys are derived from the seeds and the round id.
#[derive(Clone, Debug)]
pub struct NodeKeys {
    me: PartyId,
    with_prev: PairSeed,
    with_next: PairSeed,
}

impl NodeKeys {
    /// Keys of party `me` from its two seeds.
    pub fn new(me: PartyId, with_prev: PairSeed, with_next: PairSeed) -> Self {
        NodeKeys {
            me,
            with_prev,
            with_next,
        }
    }

    /// Consistent keys for all three parties (in-process runs, tests, benches).
    pub fn generate_all() -> [NodeKeys; 3] {
        let seeds = [PairSeed::random(), PairSeed::random(), PairSeed::random()];
        PartyId::ALL.map(|p| NodeKeys {
            me: p,
            with_prev: seeds[p.index()].clone(),
            with_next: seeds[p.next().index()].clone(),
        })
    }

    /// This node's party index.
    pub fn party(&self) -> PartyId {
        self.me
    }

    /// The per-round state of this party: PRF streams keyed by the seeds and the round.
    pub(crate) fn core(&self, round: [u8; 16], mode: SecurityMode) -> Core {
        Core {
            me: self.me,
            round,
            prf: PrfPair {
                with_prev: PrfStream::new(&self.with_prev, &round, b"round"),
                with_next: PrfStream::new(&self.with_next, &round, b"round"),
            },
            mode,
            log: GateLog::default(),
            #[cfg(test)]
            attack: None,
        }
    }
}

/// Public parameters of one auction round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoundConfig {
    /// Round id (the same at all three nodes; fresh per round).
    pub round: [u8; 16],
    /// Number of price levels `P`, `1..=256`.
    pub levels: u32,
    /// Semi-honest or malicious security.
    pub mode: SecurityMode,
}

/// Phase 0: receiving order shares (local only).
pub struct Collecting {
    cfg: RoundConfig,
    keys: NodeKeys,
    ids: Vec<OrderId>,
    comps: Vec<[u64; 2]>,
    seen: HashSet<OrderId>,
    /// Submission sequence number of each order (the book is sorted by it at close).
    seqs: Vec<u64>,
    seqs_seen: HashSet<u64>,
}

impl std::fmt::Debug for Collecting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Collecting({} orders, <secret shares>)", self.ids.len())
    }
}

impl Drop for Collecting {
    fn drop(&mut self) {
        self.comps.zeroize();
    }
}

impl Collecting {
    /// Start a round at this node.
    pub fn new(cfg: RoundConfig, keys: &NodeKeys) -> Result<Self, Error> {
        limit_bits(cfg.levels)?;
        Ok(Collecting {
            cfg,
            keys: keys.clone(),
            ids: Vec::new(),
            comps: Vec::new(),
            seen: HashSet::new(),
            seqs: Vec::new(),
            seqs_seen: HashSet::new(),
        })
    }

    /// Add the next order share, in submission order (the same order at all nodes):
    /// its sequence number is one more than the largest so far.
    /// Checks the round, the recipient and that the id is new.
    pub fn add_order(&mut self, payload: &OrderPayload) -> Result<(), Error> {
        let next = self.seqs.iter().max().map_or(0, |m| m.saturating_add(1));
        self.add_sequenced(next, payload)
    }

    /// Add an order share with the sequence number one place assigned to it (the
    /// matching service's node 0): shares may arrive in any order, the book is sorted
    /// by sequence number when it closes, so the three nodes agree on submission order
    /// even when clients submit concurrently. A number used twice is refused.
    pub fn add_sequenced(&mut self, seq: u64, payload: &OrderPayload) -> Result<(), Error> {
        if payload.round != self.cfg.round {
            return Err(Error::Misaddressed {
                what: "round",
                got: hex::encode(payload.round),
                expected: hex::encode(self.cfg.round),
            });
        }
        if payload.party != self.keys.me {
            return Err(Error::Misaddressed {
                what: "party",
                got: payload.party.to_string(),
                expected: self.keys.me.to_string(),
            });
        }
        if self.ids.len() >= MAX_ORDERS {
            return Err(Error::TooManyOrders { max: MAX_ORDERS });
        }
        if self.seen.contains(&payload.id) {
            return Err(Error::DuplicateOrder(payload.id.to_string()));
        }
        if !self.seqs_seen.insert(seq) {
            return Err(Error::DuplicateSequence(seq));
        }
        self.seen.insert(payload.id.clone());
        self.ids.push(payload.id.clone());
        self.comps.push(payload.comps());
        self.seqs.push(seq);
        Ok(())
    }

    /// The orders in sequence order (ids and share components, permuted together).
    fn into_sorted(mut self) -> (RoundConfig, NodeKeys, Vec<OrderId>, Vec<[u64; 2]>) {
        let mut perm: Vec<usize> = (0..self.ids.len()).collect();
        perm.sort_by_key(|&i| self.seqs[i]);
        let ids = perm.iter().map(|&i| self.ids[i].clone()).collect();
        let comps = perm.iter().map(|&i| self.comps[i]).collect();
        self.comps.zeroize();
        (self.cfg, self.keys.clone(), ids, comps)
    }

    /// Decode and add an order share (the plaintext of the sealed payload).
    pub fn add_order_bytes(&mut self, bytes: &[u8]) -> Result<OrderId, Error> {
        let p = OrderPayload::from_order_bytes(bytes)?;
        self.add_order(&p)?;
        Ok(p.id.clone())
    }

    /// Number of orders so far.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// No orders yet.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Close the book and start the input check (3 steps): the three nodes compare the
    /// order lists, then the two holders of every share component compare their copies;
    /// orders with any disagreement are dropped by all nodes.
    pub fn close(self) -> Result<Step<Checked>, Error> {
        let (cfg, keys, ids, comps) = self.into_sorted();
        let me = keys.me;
        let core = keys.core(cfg.round, cfg.mode);
        let (chan, slot) = Chan::new();
        let fut = async move {
            let mut ctx = Ctx::new(core, chan, Phase::Inputs);
            let (accepted, dropped, words_a, words_b) = check_inputs(&mut ctx, ids, comps).await?;
            let hash = order_set_hash(&accepted);
            Ok(Checked {
                core: ctx.into_core(),
                cfg,
                ids: accepted,
                dropped,
                words_a,
                words_b,
                hash,
            })
        };
        Running::start(me, cfg.round, Phase::Inputs, slot, fut)
    }
}

type InputCheck = (Vec<OrderId>, Vec<OrderId>, Vec<u64>, Vec<u64>);

async fn check_inputs(
    ctx: &mut Ctx,
    ids: Vec<OrderId>,
    mut comps: Vec<[u64; 2]>,
) -> Result<InputCheck, Error> {
    let me = ctx.me();
    let h = order_set_hash(&ids);
    let hw: Vec<u64> = h
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect();
    let (hp, hn) = ctx.exchange(hw.clone(), hw.clone(), 4, 4).await?;
    if hp != hw {
        return Err(Error::OrderSetMismatch { with: me.prev() });
    }
    if hn != hw {
        return Err(Error::OrderSetMismatch { with: me.next() });
    }
    let n = ids.len();
    // my first component is the predecessor's second, my second the successor's first
    let mine_a: Vec<u64> = comps.iter().map(|c| c[0]).collect();
    let mine_b: Vec<u64> = comps.iter().map(|c| c[1]).collect();
    comps.zeroize();
    let (pb, na) = ctx.exchange(mine_a.clone(), mine_b.clone(), n, n).await?;
    let nw = n.div_ceil(64);
    let mut bad = vec![0u64; nw];
    for k in 0..n {
        if pb[k] != mine_a[k] || na[k] != mine_b[k] {
            bad[k / 64] |= 1 << (k % 64);
        }
    }
    let (bp, bn) = ctx.exchange(bad.clone(), bad.clone(), nw, nw).await?;
    for k in 0..nw {
        bad[k] |= bp[k] | bn[k];
    }
    let mut accepted = Vec::with_capacity(n);
    let mut dropped = Vec::new();
    let mut wa = Vec::with_capacity(n);
    let mut wb = Vec::with_capacity(n);
    for (k, id) in ids.into_iter().enumerate() {
        if bad[k / 64] >> (k % 64) & 1 == 1 {
            dropped.push(id);
        } else {
            accepted.push(id);
            wa.push(mine_a[k]);
            wb.push(mine_b[k]);
        }
    }
    Ok((accepted, dropped, wa, wb))
}

/// Phase 1 done: the orders every node accepted, and those dropped because the two
/// holders of one of their share components disagreed (an inconsistent client sharing,
/// or a node that lied about its copy).
pub struct Checked {
    core: Core,
    cfg: RoundConfig,
    ids: Vec<OrderId>,
    dropped: Vec<OrderId>,
    words_a: Vec<u64>,
    words_b: Vec<u64>,
    hash: [u8; 32],
}

impl Drop for Checked {
    fn drop(&mut self) {
        self.words_a.zeroize();
        self.words_b.zeroize();
    }
}

impl std::fmt::Debug for Checked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Checked({} orders, {} dropped)",
            self.ids.len(),
            self.dropped.len()
        )
    }
}

impl Checked {
    /// Accepted orders, in submission order.
    pub fn accepted(&self) -> &[OrderId] {
        &self.ids
    }

    /// Dropped orders.
    pub fn dropped(&self) -> &[OrderId] {
        &self.dropped
    }

    /// Hash of the accepted order list (goes into the signed outcome).
    pub fn order_set_hash(&self) -> [u8; 32] {
        self.hash
    }

    /// Start computing the clearing level and volume.
    pub fn start_clearing(mut self) -> Result<Step<Cleared>, Error> {
        let me = self.core.me;
        let cfg = self.cfg;
        let ids = std::mem::take(&mut self.ids);
        let dropped = std::mem::take(&mut self.dropped);
        let words_a = std::mem::take(&mut self.words_a);
        let words_b = std::mem::take(&mut self.words_b);
        let hash = self.hash;
        let core = take_core(&mut self.core);
        let (chan, slot) = Chan::new();
        let fut = async move {
            let mut ctx = Ctx::new(core, chan, Phase::Clearing);
            let mut words_a = words_a;
            let mut words_b = words_b;
            let r = clear(&mut ctx, cfg.levels, &words_a, &words_b).await;
            words_a.zeroize();
            words_b.zeroize();
            let (result, state) = r?;
            Ok(Cleared {
                core: ctx.into_core(),
                cfg,
                ids,
                dropped,
                hash,
                result,
                state,
            })
        };
        Running::start(me, cfg.round, Phase::Clearing, slot, fut)
    }
}

/// Move the core out of a typestate value that is being consumed.
fn take_core(core: &mut Core) -> Core {
    let dummy = PairSeed::from_bytes([0; 32]);
    std::mem::replace(
        core,
        Core {
            me: core.me,
            round: core.round,
            prf: PrfPair {
                with_prev: PrfStream::new(&dummy, &[0; 16], b"spent"),
                with_next: PrfStream::new(&dummy, &[0; 16], b"spent"),
            },
            mode: core.mode,
            log: GateLog::default(),
            #[cfg(test)]
            attack: None,
        },
    )
}

/// Phase 2 done: the public result is known to this node.
pub struct Cleared {
    core: Core,
    cfg: RoundConfig,
    ids: Vec<OrderId>,
    dropped: Vec<OrderId>,
    hash: [u8; 32],
    result: ClearingResult,
    state: FillState,
}

impl std::fmt::Debug for Cleared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cleared({:?})", self.result)
    }
}

impl Cleared {
    /// `k*` and `V`, or no trade.
    pub fn result(&self) -> ClearingResult {
        self.result
    }

    /// Orders dropped at the input check.
    pub fn dropped(&self) -> &[OrderId] {
        &self.dropped
    }

    /// The public outcome to sign, for the pair `base`/`quote`.
    pub fn outcome(&self, base: &str, quote: &str) -> RoundOutcome {
        RoundOutcome {
            round: self.cfg.round,
            base: base.to_string(),
            quote: quote.to_string(),
            levels: self.cfg.levels,
            result: self.result,
            order_set_hash: self.hash,
        }
    }

    /// Start computing the fills (immediately done when there is no trade: every fill is 0).
    pub fn start_fills(mut self) -> Result<Step<Filled>, Error> {
        let me = self.core.me;
        let cfg = self.cfg;
        let ids = std::mem::take(&mut self.ids);
        let result = self.result;
        let state = std::mem::replace(&mut self.state, FillState::empty());
        let core = take_core(&mut self.core);
        let (chan, slot) = Chan::new();
        let fut = async move {
            let mut ctx = Ctx::new(core, chan, Phase::Fills);
            let f = fills(&mut ctx, &state, result).await?;
            let shares = ids
                .into_iter()
                .enumerate()
                .map(|(k, id)| {
                    let comps = if k < f.len() {
                        [f.a[k], f.b[k]]
                    } else {
                        [0, 0]
                    };
                    FillShare::new(cfg.round, id, me, comps)
                })
                .collect();
            Ok(Filled { shares, result })
        };
        Running::start(me, cfg.round, Phase::Fills, slot, fut)
    }
}

/// Phase 3 done: this node's share of every accepted order's fill, to seal to the owner.
#[derive(Debug)]
pub struct Filled {
    shares: Vec<FillShare>,
    result: ClearingResult,
}

impl Filled {
    /// One share per accepted order, in submission order.
    pub fn shares(&self) -> &[FillShare] {
        &self.shares
    }

    /// Take the shares.
    pub fn into_shares(self) -> Vec<FillShare> {
        self.shares
    }

    /// The public result again.
    pub fn result(&self) -> ClearingResult {
        self.result
    }
}
