//! A matching node's round, as typestates: [`Collecting`] → [`Checked`] → [`Cleared`] →
//! [`Filled`]. Each arrow is a phase that runs as a [`Running`] state machine: the
//! caller moves its messages and feeds the replies back, and gets the next typestate
//! when the phase is over. No step can run out of order, none does I/O.

use crate::binding::{BlindingShares, OrderStatement, check_commitments};
use crate::clearing::{FillState, clear, fills};
use crate::convert::{BitComps, b2a};
use crate::ctx::{Core, Ctx, GateLog, SecurityMode};
use crate::engine::{Chan, Running, Step};
use crate::error::Error;
use crate::message::Phase;
use crate::order::{
    FillShare, LIMIT_SHIFT, OrderId, OrderPayload, QTY_BITS, QTY_SHIFT, limit_bits,
};
use crate::outcome::{ClearingResult, RoundOutcome, accepted_set_hash, order_set_hash};
use crate::party::PartyId;
use crate::prf::{PairSeed, PrfPair, PrfStream};
use crate::share::AVec;
use crate::verify::verify_gates;
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

/// An order's two range proofs, verified when the order arrives (off the lock that
/// guards the book, so a service can verify concurrent submissions in parallel).
/// Tied to the round, the number of levels, the order id and the statement digest;
/// [`Collecting::add_verified`] refuses a verdict made for anything else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProofVerdict {
    round: [u8; 16],
    levels: u32,
    id: OrderId,
    digest: [u8; 32],
    ok: bool,
}

impl ProofVerdict {
    /// Verify `payload`'s range proofs for the round `cfg` (about 0.65 ms).
    pub fn check(cfg: &RoundConfig, payload: &OrderPayload) -> Self {
        let ok = payload
            .statement
            .verify(&cfg.round, &payload.id, cfg.levels)
            .is_ok();
        ProofVerdict {
            round: cfg.round,
            levels: cfg.levels,
            id: payload.id.clone(),
            digest: payload.statement.digest(),
            ok,
        }
    }

    /// Whether both proofs hold.
    pub fn holds(&self) -> bool {
        self.ok
    }
}

/// Phase 0: receiving order shares (local only).
pub struct Collecting {
    cfg: RoundConfig,
    keys: NodeKeys,
    ids: Vec<OrderId>,
    comps: Vec<[u64; 2]>,
    blinds: Vec<BlindingShares>,
    statements: Vec<OrderStatement>,
    /// Whether each order's range proofs verified when it arrived.
    proof_ok: Vec<bool>,
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
            blinds: Vec::new(),
            statements: Vec::new(),
            proof_ok: Vec::new(),
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
    /// The order's range proofs are verified here (see [`ProofVerdict`]); an order
    /// whose proofs fail is kept and dropped by every node at close.
    pub fn add_sequenced(&mut self, seq: u64, payload: &OrderPayload) -> Result<(), Error> {
        let verdict = ProofVerdict::check(&self.cfg, payload);
        self.add_verified(seq, payload, verdict)
    }

    /// [`Collecting::add_sequenced`] with the range proofs already verified by
    /// [`ProofVerdict::check`] (for example on a blocking thread, before taking the
    /// lock that guards this book).
    pub fn add_verified(
        &mut self,
        seq: u64,
        payload: &OrderPayload,
        verdict: ProofVerdict,
    ) -> Result<(), Error> {
        if verdict.round != self.cfg.round
            || verdict.levels != self.cfg.levels
            || verdict.id != payload.id
            || verdict.digest != payload.statement.digest()
        {
            return Err(Error::Misaddressed {
                what: "proof verdict",
                got: verdict.id.to_string(),
                expected: payload.id.to_string(),
            });
        }
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
        self.blinds.push(payload.blinding().clone());
        self.statements.push(payload.statement.clone());
        self.proof_ok.push(verdict.ok);
        self.seqs.push(seq);
        Ok(())
    }

    /// The orders in sequence order (ids, share components, blinding shares and
    /// statements, permuted together).
    fn into_sorted(mut self) -> (RoundConfig, NodeKeys, Book) {
        let mut perm: Vec<usize> = (0..self.ids.len()).collect();
        perm.sort_by_key(|&i| self.seqs[i]);
        let book = Book {
            ids: perm.iter().map(|&i| self.ids[i].clone()).collect(),
            comps: perm.iter().map(|&i| self.comps[i]).collect(),
            blinds: perm.iter().map(|&i| self.blinds[i].clone()).collect(),
            statements: perm.iter().map(|&i| self.statements[i].clone()).collect(),
            proof_ok: perm.iter().map(|&i| self.proof_ok[i]).collect(),
        };
        self.comps.zeroize();
        (self.cfg, self.keys.clone(), book)
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

    /// The round's public parameters.
    pub fn config(&self) -> &RoundConfig {
        &self.cfg
    }

    /// Number of orders so far whose range proofs failed when they arrived (all of
    /// them are dropped with [`DropReason::InvalidRangeProof`] at close).
    pub fn invalid_proofs(&self) -> usize {
        self.proof_ok.iter().filter(|ok| !**ok).count()
    }

    /// Close the book and start the input check (6 steps; more in malicious mode): the
    /// three nodes compare the order lists; the range-proof verdicts recorded when
    /// the orders arrived are used (no verification here); the two holders of every share component compare their copies and
    /// all compare digests of the public statements; orders with any disagreement or
    /// a failing proof are dropped by all nodes. Then the bits are converted to
    /// arithmetic sharings (gates checked in malicious mode) and the commitment check
    /// drops every order whose shared quantity or limit is not its committed value
    /// (`docs/binding.md`).
    pub fn close(self) -> Result<Step<Checked>, Error> {
        let (cfg, keys, book) = self.into_sorted();
        let me = keys.me;
        let core = keys.core(cfg.round, cfg.mode);
        let (chan, slot) = Chan::new();
        let fut = async move {
            let mut ctx = Ctx::new(core, chan, Phase::Inputs);
            let c = check_inputs(&mut ctx, cfg.levels, book).await?;
            let hash = accepted_set_hash(c.ids.iter().zip(&c.statements));
            Ok(Checked {
                core: ctx.into_core(),
                cfg,
                ids: c.ids,
                statements: c.statements,
                dropped: c.dropped,
                bits: c.bits,
                hash,
            })
        };
        Running::start(me, cfg.round, Phase::Inputs, slot, fut)
    }
}

/// The sorted book at close.
struct Book {
    ids: Vec<OrderId>,
    comps: Vec<[u64; 2]>,
    blinds: Vec<BlindingShares>,
    statements: Vec<OrderStatement>,
    proof_ok: Vec<bool>,
}

impl Drop for Book {
    fn drop(&mut self) {
        self.comps.zeroize();
    }
}

/// Why every node dropped an order at the input check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// The two holders of a share component (word or blinding) disagree, or the nodes
    /// received different public statements: an inconsistent client, or a node that
    /// lied about its copy.
    InconsistentSharing,
    /// A range proof does not verify (or does not decode) for its commitment.
    InvalidRangeProof,
    /// The shared quantity or limit is not the committed value.
    CommitmentMismatch,
}

impl std::fmt::Display for DropReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DropReason::InconsistentSharing => "inconsistent sharing",
            DropReason::InvalidRangeProof => "range proof does not verify",
            DropReason::CommitmentMismatch => "shared value is not the committed value",
        })
    }
}

/// Words per order per direction in the copy check: word component, the quantity
/// and limit blinding components (4 words each), the statement digest (4 words).
const COPY_WORDS: usize = 13;

struct InputCheck {
    ids: Vec<OrderId>,
    statements: Vec<OrderStatement>,
    dropped: Vec<(OrderId, DropReason)>,
    bits: AVec,
}

fn bitmap(n: usize, bad: impl Fn(usize) -> bool) -> Vec<u64> {
    let mut m = vec![0u64; n.div_ceil(64)];
    for k in 0..n {
        if bad(k) {
            m[k / 64] |= 1 << (k % 64);
        }
    }
    m
}

fn bit(m: &[u64], k: usize) -> bool {
    m[k / 64] >> (k % 64) & 1 == 1
}

/// Keep elements `keep` of every field of a field-major vector of `n` orders.
fn filter_fields(e: &AVec, n: usize, keep: &[usize]) -> AVec {
    let fields = e.len().checked_div(n).unwrap_or(0);
    let mut out = AVec::zeros(0);
    for f in 0..fields {
        let (a, b) = (&e.a[f * n..(f + 1) * n], &e.b[f * n..(f + 1) * n]);
        out.a.extend(keep.iter().map(|&k| a[k]));
        out.b.extend(keep.iter().map(|&k| b[k]));
    }
    out
}

async fn check_inputs(ctx: &mut Ctx, levels: u32, book: Book) -> Result<InputCheck, Error> {
    let me = ctx.me();
    let ids = book.ids.clone();
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
    // every node verified every statement when it arrived; honest nodes agree
    let proofs_ok = book.proof_ok.clone();
    // my first components are the predecessor's second ones, my second the successor's
    // first; the statement digests must be the same everywhere
    let mut mine_a = Vec::with_capacity(COPY_WORDS * n);
    let mut mine_b = Vec::with_capacity(COPY_WORDS * n);
    for k in 0..n {
        let [mut wq, mut wl] = book.blinds[k].words();
        let d = book.statements[k].digest();
        let dw = d
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]));
        mine_a.push(book.comps[k][0]);
        mine_a.extend_from_slice(&wq[..4]);
        mine_a.extend_from_slice(&wl[..4]);
        mine_a.extend(dw.clone());
        mine_b.push(book.comps[k][1]);
        mine_b.extend_from_slice(&wq[4..]);
        mine_b.extend_from_slice(&wl[4..]);
        mine_b.extend(dw);
        wq.zeroize();
        wl.zeroize();
    }
    let (mut pb, mut na) = ctx
        .exchange(
            mine_a.clone(),
            mine_b.clone(),
            COPY_WORDS * n,
            COPY_WORDS * n,
        )
        .await?;
    let copy_bad = bitmap(n, |k| {
        let r = COPY_WORDS * k..COPY_WORDS * (k + 1);
        pb[r.clone()] != mine_a[r.clone()] || na[r.clone()] != mine_b[r]
    });
    mine_a.zeroize();
    mine_b.zeroize();
    pb.zeroize();
    na.zeroize();
    let proof_bad = bitmap(n, |k| !proofs_ok[k]);
    let nw = n.div_ceil(64);
    let mut flags = copy_bad;
    flags.extend_from_slice(&proof_bad);
    let (bp, bn) = ctx
        .exchange(flags.clone(), flags.clone(), 2 * nw, 2 * nw)
        .await?;
    for k in 0..2 * nw {
        flags[k] |= bp[k] | bn[k];
    }
    let (copy_bad, proof_bad) = flags.split_at(nw);
    let mut dropped = Vec::new();
    let mut kept = Vec::with_capacity(n);
    for (k, id) in ids.iter().enumerate() {
        if bit(copy_bad, k) {
            dropped.push((id.clone(), DropReason::InconsistentSharing));
        } else if bit(proof_bad, k) {
            dropped.push((id.clone(), DropReason::InvalidRangeProof));
        } else {
            kept.push(k);
        }
    }
    let wa: Vec<u64> = kept.iter().map(|&k| book.comps[k][0]).collect();
    let wb: Vec<u64> = kept.iter().map(|&k| book.comps[k][1]).collect();
    let blinds: Vec<BlindingShares> = kept.iter().map(|&k| book.blinds[k].clone()).collect();
    let statements: Vec<OrderStatement> =
        kept.iter().map(|&k| book.statements[k].clone()).collect();
    let kept_ids: Vec<OrderId> = kept.iter().map(|&k| ids[k].clone()).collect();

    // the bits of every order, arithmetic: side, m limit bits, 32 quantity bits
    let m = limit_bits(levels)?;
    let nk = kept.len();
    let mut bits = BitComps::of_words(&wa, &wb, 0);
    for t in 0..m {
        bits.extend(BitComps::of_words(&wa, &wb, LIMIT_SHIFT + t));
    }
    for t in 0..QTY_BITS {
        bits.extend(BitComps::of_words(&wa, &wb, QTY_SHIFT + t));
    }
    let mut wa = wa;
    let mut wb = wb;
    wa.zeroize();
    wb.zeroize();
    let e = b2a(ctx, &bits).await?;
    drop(bits);
    // malicious mode: the conversion's gates are checked before anything depends on them
    verify_gates(ctx).await?;
    let field = |f: usize| e.slice(f * nk..(f + 1) * nk);
    let mut q = AVec::zeros(nk);
    for t in 0..QTY_BITS as usize {
        q = q.add(&field(1 + m as usize + t).scale(1u64 << t));
    }
    let mut l = AVec::zeros(nk);
    for t in 0..m as usize {
        l = l.add(&field(1 + t).scale(1u64 << t));
    }
    let ok = check_commitments(ctx, &q, &l, &blinds, &statements).await?;
    let mut keep = Vec::with_capacity(nk);
    let mut out_ids = Vec::with_capacity(nk);
    let mut out_st = Vec::with_capacity(nk);
    for (j, (id, st)) in kept_ids.into_iter().zip(statements).enumerate() {
        if ok[j] {
            keep.push(j);
            out_ids.push(id);
            out_st.push(st);
        } else {
            dropped.push((id, DropReason::CommitmentMismatch));
        }
    }
    // report drops in submission order
    let pos: std::collections::HashMap<&OrderId, usize> =
        ids.iter().enumerate().map(|(k, id)| (id, k)).collect();
    dropped.sort_by_key(|(id, _)| pos.get(id).copied().unwrap_or(usize::MAX));
    let bits = if keep.len() == nk {
        e
    } else {
        filter_fields(&e, nk, &keep)
    };
    Ok(InputCheck {
        ids: out_ids,
        statements: out_st,
        dropped,
        bits,
    })
}

/// Phase 1 done: the orders every node accepted (their statements verified, their
/// shares consistent and equal to the committed values), the dropped ones with the
/// reason, and the arithmetic sharings of every accepted order's bits.
pub struct Checked {
    core: Core,
    cfg: RoundConfig,
    ids: Vec<OrderId>,
    statements: Vec<OrderStatement>,
    dropped: Vec<(OrderId, DropReason)>,
    /// Field-major: side, `m` limit bits, 32 quantity bits, each for all orders.
    bits: AVec,
    hash: [u8; 32],
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

    /// The public statements (commitments and range proofs) of the accepted orders.
    pub fn statements(&self) -> &[OrderStatement] {
        &self.statements
    }

    /// Dropped orders, in submission order.
    pub fn dropped(&self) -> Vec<OrderId> {
        self.dropped.iter().map(|(i, _)| i.clone()).collect()
    }

    /// Dropped orders with the reason.
    pub fn drop_reasons(&self) -> &[(OrderId, DropReason)] {
        &self.dropped
    }

    /// Hash of the accepted orders and their statements ([`accepted_set_hash`]; goes
    /// into the signed outcome).
    pub fn order_set_hash(&self) -> [u8; 32] {
        self.hash
    }

    /// Start computing the clearing level and volume.
    pub fn start_clearing(mut self) -> Result<Step<Cleared>, Error> {
        let me = self.core.me;
        let cfg = self.cfg;
        let ids = std::mem::take(&mut self.ids);
        let statements = std::mem::take(&mut self.statements);
        let dropped = std::mem::take(&mut self.dropped);
        let bits = std::mem::take(&mut self.bits);
        let hash = self.hash;
        let core = take_core(&mut self.core);
        let (chan, slot) = Chan::new();
        let fut = async move {
            let mut ctx = Ctx::new(core, chan, Phase::Clearing);
            let (result, state) = clear(&mut ctx, cfg.levels, &bits, ids.len()).await?;
            drop(bits);
            Ok(Cleared {
                core: ctx.into_core(),
                cfg,
                ids,
                statements,
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
    statements: Vec<OrderStatement>,
    dropped: Vec<(OrderId, DropReason)>,
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
    pub fn dropped(&self) -> Vec<OrderId> {
        self.dropped.iter().map(|(i, _)| i.clone()).collect()
    }

    /// Orders dropped at the input check, with the reason.
    pub fn drop_reasons(&self) -> &[(OrderId, DropReason)] {
        &self.dropped
    }

    /// The public record of the accepted orders, in submission order: id and statement
    /// (commitments and range proofs). It hashes to the outcome's `order_set_hash`;
    /// an auditor checks it with [`crate::binding::verify_round_record`].
    pub fn public_record(&self) -> Vec<(OrderId, OrderStatement)> {
        self.ids
            .iter()
            .cloned()
            .zip(self.statements.iter().cloned())
            .collect()
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
