//! Running the three parties in one process: for tests, benchmarks and demos. The
//! messages still go through their byte encoding, so the counts are what a network
//! would carry.

use crate::engine::Step;
use crate::error::Error;
use crate::message::{DEFAULT_MAX_WORDS, Message};
use crate::node::{Checked, Cleared, Collecting, Filled, NodeKeys, RoundConfig};
use crate::order::{FillShare, OrderPayload};
use crate::outcome::ClearingResult;
use crate::party::PartyId;

/// What crossed the (simulated) network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Bytes sent by each party (encoded messages).
    pub bytes_sent: [u64; 3],
    /// Communication steps.
    pub steps: u32,
}

impl Traffic {
    /// Largest number of bytes any one party sent.
    pub fn max_bytes_per_party(&self) -> u64 {
        self.bytes_sent.iter().copied().max().unwrap_or(0)
    }

    fn add(&mut self, o: &Traffic) {
        for i in 0..3 {
            self.bytes_sent[i] += o.bytes_sent[i];
        }
        self.steps += o.steps;
    }
}

/// Errors raised by parties during an in-process phase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartyErrors(pub Vec<(PartyId, Error)>);

impl std::fmt::Display for PartyErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (p, e) in &self.0 {
            write!(f, "party {p}: {e}; ")?;
        }
        Ok(())
    }
}

impl std::error::Error for PartyErrors {}

impl From<Error> for PartyErrors {
    fn from(e: Error) -> Self {
        PartyErrors(vec![(PartyId::ALL[0], e)])
    }
}

/// Drive one phase at all three parties to its end. `tamper` sees every message (after
/// encoding and decoding) before delivery and may change it.
pub fn run_phase<T: 'static>(
    parties: [Step<T>; 3],
    traffic: &mut Traffic,
    tamper: &mut dyn FnMut(&mut Message),
) -> Result<[T; 3], PartyErrors> {
    let mut state: Vec<Step<T>> = parties.into_iter().collect();
    loop {
        if state.iter().all(|s| matches!(s, Step::Done(_))) {
            let mut done = Vec::with_capacity(3);
            for s in state {
                if let Step::Done(t) = s {
                    done.push(t);
                }
            }
            return done
                .try_into()
                .map_err(|_| PartyErrors(vec![(PartyId::ALL[0], Error::State("lost a party"))]));
        }
        let mut inboxes: [Vec<Message>; 3] = Default::default();
        for (i, s) in state.iter_mut().enumerate() {
            match s {
                Step::Pending(r) => {
                    for m in r.take_outgoing() {
                        let bytes = m.to_bytes();
                        traffic.bytes_sent[i] += bytes.len() as u64;
                        let mut m = Message::from_bytes(&bytes, DEFAULT_MAX_WORDS)
                            .map_err(|e| PartyErrors(vec![(PartyId::ALL[i], e)]))?;
                        tamper(&mut m);
                        inboxes[m.to.index()].push(m);
                    }
                }
                Step::Done(_) => {
                    return Err(PartyErrors(vec![(
                        PartyId::ALL[i],
                        Error::State("party finished early"),
                    )]));
                }
            }
        }
        traffic.steps += 1;
        let mut next = Vec::with_capacity(3);
        let mut errors = Vec::new();
        for (i, (s, inbox)) in state.into_iter().zip(inboxes).enumerate() {
            if let Step::Pending(r) = s {
                match r.deliver(inbox) {
                    Ok(st) => next.push(st),
                    Err(e) => errors.push((PartyId::ALL[i], e)),
                }
            }
        }
        if !errors.is_empty() {
            return Err(PartyErrors(errors));
        }
        state = next;
    }
}

/// Everything a complete in-process round produced.
#[derive(Debug)]
pub struct RoundRun {
    /// The public result (the same at every node).
    pub result: ClearingResult,
    /// Each node's fill shares, per node, in submission order of the accepted orders.
    pub fill_shares: [Vec<FillShare>; 3],
    /// Orders dropped at the input check.
    pub dropped: Vec<crate::order::OrderId>,
    /// The same with the reason.
    pub drop_reasons: Vec<(crate::order::OrderId, crate::node::DropReason)>,
    /// The public record: accepted orders and their statements (commitments, proofs).
    pub record: Vec<(crate::order::OrderId, crate::binding::OrderStatement)>,
    /// The order-set hash of the signed outcome (covers the record).
    pub order_set_hash: [u8; 32],
    /// Traffic of the input check.
    pub inputs: Traffic,
    /// Traffic of the clearing.
    pub clearing: Traffic,
    /// Traffic of the fills.
    pub fills: Traffic,
}

/// Collect the payloads (index `i` of each triple goes to node `i`) and run the input
/// check; returns the three `Checked` states.
pub fn collect_and_check(
    cfg: RoundConfig,
    keys: &[NodeKeys; 3],
    payloads: &[[OrderPayload; 3]],
    traffic: &mut Traffic,
    tamper: &mut dyn FnMut(&mut Message),
) -> Result<[Checked; 3], PartyErrors> {
    let mut nodes = Vec::with_capacity(3);
    for k in keys {
        let mut c = Collecting::new(cfg, k)?;
        for p in payloads {
            c.add_order(&p[k.party().index()])?;
        }
        nodes.push(c.close()?);
    }
    let nodes: [Step<Checked>; 3] = nodes.try_into().map_err(|_| Error::State("three nodes"))?;
    run_phase(nodes, traffic, tamper)
}

/// Run the clearing phase at all three nodes.
pub fn clear_all(
    checked: [Checked; 3],
    traffic: &mut Traffic,
    tamper: &mut dyn FnMut(&mut Message),
) -> Result<[Cleared; 3], PartyErrors> {
    let [a, b, c] = checked;
    run_phase(
        [
            a.start_clearing()?,
            b.start_clearing()?,
            c.start_clearing()?,
        ],
        traffic,
        tamper,
    )
}

/// Run the fills phase at all three nodes.
pub fn fill_all(
    cleared: [Cleared; 3],
    traffic: &mut Traffic,
    tamper: &mut dyn FnMut(&mut Message),
) -> Result<[Filled; 3], PartyErrors> {
    let [a, b, c] = cleared;
    run_phase(
        [a.start_fills()?, b.start_fills()?, c.start_fills()?],
        traffic,
        tamper,
    )
}

/// A whole round in process, with an optional message tamperer.
pub fn run_round_with(
    cfg: RoundConfig,
    keys: &[NodeKeys; 3],
    payloads: &[[OrderPayload; 3]],
    tamper: &mut dyn FnMut(&mut Message),
) -> Result<RoundRun, PartyErrors> {
    let mut inputs = Traffic::default();
    let checked = collect_and_check(cfg, keys, payloads, &mut inputs, tamper)?;
    let dropped = checked[0].dropped();
    let drop_reasons = checked[0].drop_reasons().to_vec();
    let order_set_hash = checked[0].order_set_hash();
    if checked.iter().any(|c| c.order_set_hash() != order_set_hash) {
        return Err(Error::State("nodes disagree on the accepted orders").into());
    }
    let mut clearing = Traffic::default();
    let cleared = clear_all(checked, &mut clearing, tamper)?;
    let result = cleared[0].result();
    if cleared.iter().any(|c| c.result() != result) {
        return Err(Error::State("nodes disagree on the result").into());
    }
    let record = cleared[0].public_record();
    let mut fills = Traffic::default();
    let [f0, f1, f2] = fill_all(cleared, &mut fills, tamper)?;
    Ok(RoundRun {
        result,
        fill_shares: [f0.into_shares(), f1.into_shares(), f2.into_shares()],
        dropped,
        drop_reasons,
        record,
        order_set_hash,
        inputs,
        clearing,
        fills,
    })
}

/// A whole round in process.
pub fn run_round(
    cfg: RoundConfig,
    keys: &[NodeKeys; 3],
    payloads: &[[OrderPayload; 3]],
) -> Result<RoundRun, PartyErrors> {
    run_round_with(cfg, keys, payloads, &mut |_| {})
}

impl RoundRun {
    /// Reconstruct every accepted order's fill the way its owner would.
    pub fn reconstruct_fills(&self, round: [u8; 16]) -> Result<Vec<u64>, Error> {
        let n = self.fill_shares[0].len();
        (0..n)
            .map(|k| {
                let shares = [
                    self.fill_shares[0][k].clone(),
                    self.fill_shares[1][k].clone(),
                    self.fill_shares[2][k].clone(),
                ];
                crate::order::reconstruct_fill(round, &shares[0].id.clone(), &shares)
            })
            .collect()
    }

    /// Total traffic of the round.
    pub fn total(&self) -> Traffic {
        let mut t = Traffic::default();
        t.add(&self.inputs);
        t.add(&self.clearing);
        t.add(&self.fills);
        t
    }
}
