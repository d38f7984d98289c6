//! Running single sub-protocols at three in-process parties (unit tests, benchmarks).

use crate::ctx::{Ctx, SecurityMode};
use crate::engine::{Chan, Running, Step};
use crate::error::Error;
use crate::message::Phase;
use crate::node::NodeKeys;
use crate::party::PartyId;
use crate::share::AVec;
use crate::sim::{PartyErrors, Traffic, run_phase};
use rand::RngCore;
use std::future::Future;

/// Run `make(party, ctx)` at the three parties; returns their results and the traffic.
pub(crate) fn run3<T, Fut>(
    mode: SecurityMode,
    tamper: &mut dyn FnMut(&mut crate::message::Message),
    make: impl Fn(PartyId, Ctx) -> Fut,
) -> Result<([T; 3], Traffic), PartyErrors>
where
    T: 'static,
    Fut: Future<Output = Result<T, Error>> + Send + 'static,
{
    let keys = NodeKeys::generate_all();
    let mut round = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut round);
    let mut steps = Vec::with_capacity(3);
    for k in &keys {
        let p = k.party();
        let (chan, slot) = Chan::new();
        let ctx = Ctx::new(k.core(round, mode), chan, Phase::Clearing);
        steps.push(Running::start(
            p,
            round,
            Phase::Clearing,
            slot,
            make(p, ctx),
        )?);
    }
    let steps: [Step<T>; 3] = steps
        .try_into()
        .map_err(|_| Error::State("three parties"))?;
    let mut traffic = Traffic::default();
    let out = run_phase(steps, &mut traffic, tamper)?;
    Ok((out, traffic))
}

/// Fresh arithmetic sharings of `values`: element `i` is party `i`'s view.
pub(crate) fn share_arith(values: &[u64]) -> [AVec; 3] {
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::from_entropy();
    let n = values.len();
    let mut c = [vec![0u64; n], vec![0u64; n], vec![0u64; n]];
    for (k, v) in values.iter().enumerate() {
        c[0][k] = rng.next_u64();
        c[1][k] = rng.next_u64();
        c[2][k] = v.wrapping_sub(c[0][k]).wrapping_sub(c[1][k]);
    }
    [0, 1, 2].map(|i| AVec {
        a: c[i].clone(),
        b: c[(i + 1) % 3].clone(),
    })
}

/// Result of [`run_comparisons`].
#[derive(Debug)]
pub struct ComparisonRun {
    /// `[x < 0]` for each value read as a `w`-bit two's-complement number.
    pub negative: Vec<bool>,
    /// Traffic, including the final opening (and the checks in malicious mode).
    pub traffic: Traffic,
}

/// Shared inputs for [`PreparedComparisons::run`] (the sharing is not part of the
/// protocol and is kept out of the measurements).
pub struct PreparedComparisons {
    shares: [AVec; 3],
    w: u32,
    mode: SecurityMode,
}

/// Secret-share `values` for comparisons of width `w`.
pub fn prepare_comparisons(values: &[u64], w: u32, mode: SecurityMode) -> PreparedComparisons {
    PreparedComparisons {
        shares: share_arith(values),
        w,
        mode,
    }
}

impl PreparedComparisons {
    /// Compare each value with zero at three in-process parties (one batch), check the
    /// gates in malicious mode, open the result bits.
    pub fn run(&self) -> Result<ComparisonRun, PartyErrors> {
        let n = self.shares[0].len();
        let w = self.w;
        let (out, traffic) = run3(self.mode, &mut |_| {}, |p, mut ctx| {
            let x = self.shares[p.index()].clone();
            async move {
                let lt = crate::compare::ltz(&mut ctx, &x, w).await?;
                crate::verify::verify_gates(&mut ctx).await?;
                let (_, words) = ctx.open(&AVec::zeros(0), &lt).await?;
                Ok((0..n)
                    .map(|v| (words[v / 64] >> (v % 64)) & 1 == 1)
                    .collect::<Vec<bool>>())
            }
        })?;
        let [negative, _, _] = out;
        Ok(ComparisonRun { negative, traffic })
    }
}

/// Secret-share `values`, compare each with zero at three in-process parties (one
/// batch), check the gates in malicious mode, open the result bits.
pub fn run_comparisons(
    values: &[u64],
    w: u32,
    mode: SecurityMode,
) -> Result<ComparisonRun, PartyErrors> {
    prepare_comparisons(values, w, mode).run()
}

/// Shared inputs of the commitment check alone (the sharing is kept out of the
/// measurements): `n` orders with random quantities and limits, their commitments
/// and replicated blinding shares.
pub struct PreparedCommitmentCheck {
    q: [AVec; 3],
    l: [AVec; 3],
    blinds: [Vec<crate::binding::BlindingShares>; 3],
    statements: Vec<crate::binding::OrderStatement>,
}

/// Prepare the commitment check of `n` honest orders (no range proofs: the check
/// does not read them).
pub fn prepare_commitment_check(n: usize) -> PreparedCommitmentCheck {
    use crate::binding::{BlindingShares, OrderStatement};
    use curve25519_dalek::scalar::Scalar;
    use veilgrid_zk::range::{Blinding, Commitment};
    let mut rng = rand::rngs::OsRng;
    let qs: Vec<u64> = (0..n).map(|_| 1 + rng.next_u64() % 100_000).collect();
    let ls: Vec<u64> = (0..n).map(|_| rng.next_u64() % 64).collect();
    let mut blinds: [Vec<BlindingShares>; 3] = Default::default();
    let mut statements = Vec::with_capacity(n);
    for k in 0..n {
        let mut split = |v: u64| {
            let r = Scalar::random(&mut rng);
            let (a, b) = (Scalar::random(&mut rng), Scalar::random(&mut rng));
            let c = Commitment::commit(
                v,
                &Blinding::from_bytes(&r.to_bytes()).unwrap_or_else(|_| Blinding::zero()),
            );
            (c, [a, b, r - a - b])
        };
        let (cq, sq) = split(qs[k]);
        let (cl, sl) = split(ls[k]);
        for i in 0..3 {
            blinds[i].push(BlindingShares {
                qty: [sq[i].to_bytes(), sq[(i + 1) % 3].to_bytes()],
                limit: [sl[i].to_bytes(), sl[(i + 1) % 3].to_bytes()],
            });
        }
        statements.push(OrderStatement::commitments_only(cq, cl));
    }
    PreparedCommitmentCheck {
        q: share_arith(&qs),
        l: share_arith(&ls),
        blinds,
        statements,
    }
}

impl PreparedCommitmentCheck {
    /// Run the commitment check at three in-process parties; returns party 0's
    /// verdicts (all `true` for these honest orders) and the traffic.
    pub fn run(&self) -> Result<(Vec<bool>, Traffic), PartyErrors> {
        let (out, traffic) = run3(SecurityMode::SemiHonest, &mut |_| {}, |p, mut ctx| {
            let (q, l) = (self.q[p.index()].clone(), self.l[p.index()].clone());
            let b = self.blinds[p.index()].clone();
            let st = self.statements.clone();
            async move { crate::binding::check_commitments(&mut ctx, &q, &l, &b, &st).await }
        })?;
        let [ok, _, _] = out;
        Ok((ok, traffic))
    }
}
