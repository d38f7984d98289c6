//! Comparisons: the sign bit of arithmetic sharings, by arithmetic-to-binary conversion
//! into bit planes and a log-depth carry tree. See `docs/adder.md`.
//!
//! For `x = x_0 + x_1 + x_2 (mod 2^64)` whose low `w` bits are a two's-complement value,
//! `ltz` returns binary sharings of `[x < 0]`, bit-sliced: lane `v` of the result is
//! bit `v % 64` of word `v / 64`. Every comparison in the batch shares the same steps:
//!
//! 1. each component `x_j` is known to two parties, so bit planes of `x_0`, `x_1`, `x_2`
//!    are binary sharings for free;
//! 2. a carry-save layer: `s = x_0 ⊕ x_1 ⊕ x_2`, `c = maj(x_0, x_1, x_2)` (1 AND per bit);
//! 3. generate/propagate of `s + 2c`: `g_t = s_t ∧ c_{t−1}`, `p_t = s_t ⊕ c_{t−1}`;
//! 4. a Sklansky/Kogge-Stone style tree computes only the carry into bit `w−1`:
//!    `(G, P) ∘ (G', P') = (G ⊕ P∧G', P∧P')`, depth `⌈log2(w−2)⌉`;
//! 5. sign `= s_{w−1} ⊕ c_{w−2} ⊕ carry`.

use crate::ctx::{Batch, Ctx};
use crate::error::Error;
use crate::share::{AVec, BVec};
use crate::transpose::to_planes;

/// AND gates per comparison of width `w` (what the circuit below evaluates).
pub fn and_gates_per_comparison(w: u32) -> u32 {
    let w = w as usize;
    if w <= 1 {
        return 0;
    }
    let mut gates = w - 1; // carry-save majority, bits 0..w-2
    if w >= 3 {
        let leaves = w - 2;
        gates += leaves; // g_t
        // tree: node 0 never needs P
        let mut nodes = leaves;
        while nodes > 1 {
            let pairs = nodes / 2;
            gates += pairs + (pairs - 1); // G for every pair, P for all but the lowest
            nodes -= pairs;
        }
    }
    gates as u32
}

/// Number of sequential communication steps of one batch of comparisons of width `w`.
pub fn steps_per_comparison(w: u32) -> u32 {
    if w <= 1 {
        return 0;
    }
    if w == 2 {
        return 1;
    }
    let mut nodes = w - 2;
    let mut depth = 0;
    while nodes > 1 {
        nodes -= nodes / 2;
        depth += 1;
    }
    2 + depth
}

/// Plane `t` (words `t·nw..(t+1)·nw`) of a plane-major binary vector.
fn plane(v: &BVec, t: usize, nw: usize) -> BVec {
    v.slice(t * nw..(t + 1) * nw)
}

/// `[x_v < 0]` for every element, with `x_v` read as a `w`-bit two's-complement value.
/// `1 ≤ w ≤ 64`. Returns `⌈n/64⌉` bit-sliced words; padding lanes are 0.
pub(crate) async fn ltz(ctx: &mut Ctx, x: &AVec, w: u32) -> Result<BVec, Error> {
    let w = w.clamp(1, 64) as usize;
    let n = x.len();
    let nw = n.div_ceil(64);
    let me = ctx.me().index();
    let pa = to_planes(&x.a, w);
    let pb = to_planes(&x.b, w);
    // This party holds components (i, i+1) of the planes; the free sharing of x_j has
    // component j only, so s = x_0 ⊕ x_1 ⊕ x_2 is just (pa, pb).
    if w == 1 || nw == 0 {
        return Ok(BVec {
            a: pa[..nw].to_vec(),
            b: pb[..nw].to_vec(),
        });
    }
    let lo = (w - 1) * nw;
    let zero = vec![0u64; lo];
    let pick = |holds_a: bool, holds_b: bool| -> (&[u64], &[u64]) {
        (
            if holds_a { &pa[..lo] } else { &zero },
            if holds_b { &pb[..lo] } else { &zero },
        )
    };
    // carry-save: c_t = maj(x0, x1, x2)_t = ((x0 ⊕ x2) ∧ (x1 ⊕ x2)) ⊕ x2, t = 0..w-2;
    // party i's component i comes from x_i, component i+1 from x_{i+1}
    let (la, lb) = pick(me == 0 || me == 2, me == 2 || me == 1); // x0 ⊕ x2
    let (ra, rb) = pick(me == 1 || me == 2, me == 0 || me == 1); // x1 ⊕ x2
    let (x2a, x2b) = pick(me == 2, me == 1);
    let mut batch = Batch::new(ctx.mode());
    batch.and_slices(la, lb, ra, rb);
    let maj = ctx.run(batch).await?.into_bin();
    let c = BVec {
        a: maj.a.iter().zip(x2a).map(|(m, x)| m ^ x).collect(),
        b: maj.b.iter().zip(x2b).map(|(m, x)| m ^ x).collect(),
    };
    drop(maj);
    drop(zero);
    let s = BVec { a: pa, b: pb };
    let top = plane(&s, w - 1, nw).xor(&plane(&c, w - 2, nw));
    if w == 2 {
        return Ok(top);
    }
    // generate / propagate for t = 1..=w-2 (position 0 cannot carry: c'_0 = 0)
    let leaves = w - 2;
    let mid = nw..(w - 1) * nw;
    let clo = 0..(w - 2) * nw;
    let mut batch = Batch::new(ctx.mode());
    batch.and_slices(
        &s.a[mid.clone()],
        &s.b[mid.clone()],
        &c.a[clo.clone()],
        &c.b[clo.clone()],
    );
    let g = ctx.run(batch).await?.into_bin();
    let p = BVec {
        a: s.a[mid.clone()]
            .iter()
            .zip(&c.a[clo.clone()])
            .map(|(x, y)| x ^ y)
            .collect(),
        b: s.b[mid].iter().zip(&c.b[clo]).map(|(x, y)| x ^ y).collect(),
    };
    let mut nodes: Vec<(BVec, Option<BVec>)> = (0..leaves)
        .map(|k| {
            (
                plane(&g, k, nw),
                if k == 0 { None } else { Some(plane(&p, k, nw)) },
            )
        })
        .collect();
    while nodes.len() > 1 {
        let pairs = nodes.len() / 2;
        // left operands: P_hi (for G), P_hi (for P, pairs > 0); right: G_lo, P_lo
        let mut left = BVec::zeros(0);
        let mut right = BVec::zeros(0);
        for k in 0..pairs {
            let (g_lo, _) = &nodes[2 * k];
            let (_, p_hi) = &nodes[2 * k + 1];
            let p_hi = p_hi.as_ref().ok_or(Error::State("carry tree: missing P"))?;
            left.extend(p_hi);
            right.extend(g_lo);
        }
        for k in 1..pairs {
            let (_, p_lo) = &nodes[2 * k];
            let (_, p_hi) = &nodes[2 * k + 1];
            let (Some(p_lo), Some(p_hi)) = (p_lo, p_hi) else {
                return Err(Error::State("carry tree: missing P"));
            };
            left.extend(p_hi);
            right.extend(p_lo);
        }
        let prod = ctx.and_many(&[(&left, &right)]).await?.remove(0);
        let mut next = Vec::with_capacity(nodes.len() - pairs);
        for k in 0..pairs {
            let (g_hi, _) = &nodes[2 * k + 1];
            let gk = g_hi.xor(&plane(&prod, k, nw));
            let pk = if k == 0 {
                None
            } else {
                Some(plane(&prod, pairs + k - 1, nw))
            };
            next.push((gk, pk));
        }
        if nodes.len() % 2 == 1
            && let Some(last) = nodes.pop()
        {
            next.push(last);
        }
        nodes = next;
    }
    let carry = nodes
        .pop()
        .map(|(g, _)| g)
        .ok_or(Error::State("carry tree: empty"))?;
    Ok(top.xor(&carry))
}
