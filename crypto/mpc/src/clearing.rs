//! The auction circuit: clearing level and volume, then fills. See `docs/auction.md`.

use crate::compare::ltz;
use crate::convert::{BitComps, b2a, chain, select};
use crate::ctx::{Batch, Ctx, SecurityMode};
use crate::error::Error;
use crate::order::{QTY_BITS, limit_bits};
use crate::outcome::ClearingResult;
use crate::share::{AVec, BVec};
use crate::verify::verify_gates;

/// Width of the comparisons for a book of `n` orders: sums of quantities are below
/// `2^(32 + bits(n))` and the circuit compares differences of at most two such sums.
pub fn comparison_width(n: usize) -> u32 {
    let bits = 64 - (n as u64).leading_zeros();
    (QTY_BITS + bits + 2).min(64)
}

/// What the fills need from the clearing computation, per order.
pub(crate) enum FillState {
    /// Semi-honest mode: the two halves of the one-hot encoding.
    Split {
        /// `u[hi + 2^mhi·σ]_i = q_i · [side_i = σ] · [hi bits of ℓ_i = hi]`.
        u: Vec<AVec>,
        /// `l[lo]_i = [lo bits of ℓ_i = lo]`.
        l: Vec<AVec>,
        n: usize,
        mlo: u32,
        mhi: u32,
    },
    /// Malicious mode: `e[j + 2^m·σ]_i = q_i · [side_i = σ] · [ℓ_i = j]`.
    Full { e: Vec<AVec>, n: usize, m: u32 },
}

impl FillState {
    pub(crate) fn empty() -> Self {
        FillState::Full {
            e: Vec::new(),
            n: 0,
            m: 0,
        }
    }
}

/// Local helper: element `k` of a list of one-element vectors, concatenated.
fn concat(parts: &[AVec]) -> AVec {
    let mut v = AVec::zeros(0);
    for p in parts {
        v.extend(p);
    }
    v
}

/// Bit `v` of bit-sliced words as a one-word sharing in bit 0.
fn lane(x: &BVec, v: usize) -> BVec {
    let (w, s) = (v / 64, v % 64);
    BVec {
        a: vec![(x.a[w] >> s) & 1],
        b: vec![(x.b[w] >> s) & 1],
    }
}

/// Clearing. `e`: this party's arithmetic sharings of every order's bits, field-major
/// (side, `m` limit bits, 32 quantity bits, each for the `n` orders in submission order).
pub(crate) async fn clear(
    ctx: &mut Ctx,
    levels: u32,
    e: &AVec,
    n: usize,
) -> Result<(ClearingResult, FillState), Error> {
    let me = ctx.me();
    let p = levels as usize;
    let m = limit_bits(levels)?;
    if n == 0 {
        return Ok((ClearingResult::NoTrade, FillState::empty()));
    }
    if e.len() != n * (1 + m + QTY_BITS) as usize {
        return Err(Error::State("bit sharings of the book"));
    }
    let mlo = m / 2;
    let mhi = m - mlo;
    let w = comparison_width(n);

    // 1. The bits of every order (converted at the input check): side, limit, quantity.
    let field = |f: usize| e.slice(f * n..(f + 1) * n);
    let side = field(0);
    let limit: Vec<AVec> = (0..m as usize).map(|t| field(1 + t)).collect();
    let mut q = AVec::zeros(n);
    for t in 0..QTY_BITS as usize {
        q = q.add(&field(1 + m as usize + t).scale(1u64 << t));
    }

    // 2./3. Demand and supply at each level, z[σ·2^m + j] = Σ_i q_i·[side_i = σ]·[ℓ_i = j].
    let (z, state) = match ctx.mode() {
        SecurityMode::SemiHonest => {
            // u = q ⊗ onehot(hi bits, side) and l = onehot(lo bits), one bit per step,
            // then one dot product (one element of communication) per level and side
            let mut ubits: Vec<AVec> = limit[mlo as usize..].to_vec();
            ubits.push(side);
            let (lstart, lbits) = if mlo == 0 {
                (vec![AVec::public(me, &vec![1; n])], Vec::new())
            } else {
                let b0 = &limit[0];
                (
                    vec![b0.rsub_const(me, 1), b0.clone()],
                    limit[1..mlo as usize].to_vec(),
                )
            };
            let mut groups = chain(ctx, vec![(vec![q], ubits), (lstart, lbits)]).await?;
            let l = groups.pop().ok_or(Error::State("chain"))?;
            let u = groups.pop().ok_or(Error::State("chain"))?;
            let nhi = 1usize << mhi;
            let mut xs = Vec::with_capacity(2 << m);
            let mut ys = Vec::with_capacity(2 << m);
            for sigma in 0..2 {
                for hi in 0..nhi {
                    for lo in l.iter() {
                        xs.push(&u[hi + sigma * nhi]);
                        ys.push(lo);
                    }
                }
            }
            let mut batch = Batch::new(ctx.mode());
            let r = batch.dot(&xs, &ys);
            let z = ctx.run(batch).await?.dot(&r);
            (z, FillState::Split { u, l, n, mlo, mhi })
        }
        SecurityMode::Malicious => {
            // every product is checked, so compute the full one-hot q ⊗ onehot(ℓ, side)
            // (2^(m+1) − 1 products per order, fewer than the dot-product route's terms)
            let mut bits = limit.clone();
            bits.push(side);
            let e = chain(ctx, vec![(vec![q], bits)])
                .await?
                .pop()
                .ok_or(Error::State("chain"))?;
            let z = concat(&e.iter().map(AVec::sum).collect::<Vec<_>>());
            (z, FillState::Full { e, n, m })
        }
    };
    let at = |sigma: usize, j: usize| z.get((sigma << m) + j);
    // Limits in [P, 2^m): a buy there is eligible everywhere (as at P−1), a sell nowhere.
    let mut dprime: Vec<AVec> = (0..p).map(|j| at(1, j)).collect();
    for j in p..(1usize << m) {
        dprime[p - 1] = dprime[p - 1].add(&at(1, j));
    }
    let mut d_lv = vec![AVec::zeros(1); p];
    let mut s_lv = vec![AVec::zeros(1); p];
    let mut acc = AVec::zeros(1);
    for k in (0..p).rev() {
        acc = acc.add(&dprime[k]);
        d_lv[k] = acc.clone();
    }
    let mut acc = AVec::zeros(1);
    for (k, s) in s_lv.iter_mut().enumerate() {
        acc = acc.add(&at(0, k));
        *s = acc.clone();
    }
    let dv = concat(&d_lv);
    let sv = concat(&s_lv);
    let delta = dv.sub(&sv);

    // 4. c(k) = [D(k) ≥ S(k)]: 1…1 0…0 because D − S never increases with k.
    let c_bin = ltz(ctx, &delta, w).await?.not(me);
    let c = b2a(ctx, &BitComps::of_lanes(&c_bin, p)).await?;
    // ι: indicator of k0 = last level with D ≥ S; ι': of k0 + 1.
    let cget = |k: isize| -> AVec {
        if k < 0 {
            AVec::public(me, &[1])
        } else if k as usize >= p {
            AVec::zeros(1)
        } else {
            c.get(k as usize)
        }
    };
    let iota = concat(
        &(0..p as isize)
            .map(|k| cget(k).sub(&cget(k + 1)))
            .collect::<Vec<_>>(),
    );
    let iota_r = concat(
        &(0..p as isize)
            .map(|k| cget(k - 1).sub(&cget(k)))
            .collect::<Vec<_>>(),
    );
    let mut batch = Batch::new(ctx.mode());
    let r = batch.dot(&[&iota, &iota, &iota_r, &iota_r], &[&sv, &dv, &dv, &sv]);
    let sums = ctx.run(batch).await?.dot(&r);
    let v_l = sums.get(0); // S(k0)
    let g_l = sums.get(1).sub(&v_l); // D(k0) − S(k0)
    let v_r = sums.get(2); // D(k0+1)
    let g_r = sums.get(3).sub(&v_r); // S(k0+1) − D(k0+1)

    // 5. z(k) = c(k) ∧ [Δ(k) ≤ G_L] marks the levels tied with k0; pick L or R.
    let mut cmp = AVec::zeros(0);
    for k in 0..p {
        cmp.extend(&g_l.sub(&delta.get(k)));
    }
    cmp.extend(&v_l.sub(&v_r)); // lane p:   [V_L < V_R]
    cmp.extend(&v_r.sub(&v_l)); // lane p+1: [V_R < V_L]
    cmp.extend(&g_r.sub(&g_l)); // lane p+2: [G_R < G_L]
    let lt = ltz(ctx, &cmp, w).await?;
    let nwp = p.div_ceil(64);
    let a_gt = lt.slice(0..nwp); // [Δ(k) > G_L]
    let (x1, x2, x3) = (lane(&lt, p), lane(&lt, p + 1), lane(&lt, p + 2));
    let mut batch = Batch::new(ctx.mode());
    let rz = batch.and(&c_bin.slice(0..nwp), &a_gt.not(me));
    let rt = batch.and(&x2.not(me), &x3);
    let out = ctx.run(batch).await?;
    let zb = out.bin(&rz);
    let t = out.bin(&rt);
    // L wins iff V_L ≥ V_R and (V_L > V_R or G_L ≤ G_R).
    let wl = ctx.and_many(&[(&x1.not(me), &t.not(me))]).await?.remove(0);
    let mut zbits = BitComps::of_lanes(&zb, p);
    zbits.extend(BitComps::of_lanes(&wl, 1));
    let za = b2a(ctx, &zbits).await?;
    let wl_a = za.get(p);
    let zget = |k: isize| {
        if k < 0 {
            AVec::zeros(1)
        } else {
            za.get(k as usize)
        }
    };
    let iota_l = concat(
        &(0..p as isize)
            .map(|k| zget(k).sub(&zget(k - 1)).add(&iota_r.get(k as usize)))
            .collect::<Vec<_>>(),
    );
    let weights: Vec<u64> = (0..p as u64).collect();
    let k_l = iota_l.weighted_sum(&weights);
    let k_r = iota_r.weighted_sum(&weights);
    let diff = concat(&[v_l.sub(&v_r), k_l.sub(&k_r)]);
    let wl2 = concat(&[wl_a.clone(), wl_a]);
    let prod = ctx.mul_many(&[(&wl2, &diff)]).await?.remove(0);
    let v_star = v_r.add(&prod.get(0));
    let k_star = k_r.add(&prod.get(1));

    // 6. Check every multiplication (malicious mode), then open V and, if V > 0, k*.
    verify_gates(ctx).await?;
    let v = ctx.open_arith(&v_star).await?[0];
    if v == 0 {
        return Ok((ClearingResult::NoTrade, FillState::empty()));
    }
    let k = ctx.open_arith(&k_star).await?[0];
    if k >= levels as u64 || v >= 1u64 << (w - 2) {
        return Err(Error::VerificationFailed(
            "opened clearing result out of range",
        ));
    }
    Ok((
        ClearingResult::Trade {
            level: k as u32,
            volume: v,
        },
        state,
    ))
}

/// Fills: this party's components of each order's fill, in submission order.
pub(crate) async fn fills(
    ctx: &mut Ctx,
    st: &FillState,
    result: ClearingResult,
) -> Result<AVec, Error> {
    let me = ctx.me();
    let ClearingResult::Trade { level, volume } = result else {
        return Ok(AVec::zeros(0));
    };
    let (x, y, n) = match st {
        FillState::Split { u, l, n, mlo, mhi } => {
            let n = *n;
            if n == 0 {
                return Ok(AVec::zeros(0));
            }
            let nhi = 1usize << mhi;
            let hi_star = (level >> mlo) as usize;
            let lo_star = (level & ((1 << mlo) - 1)) as usize;
            // eligibility inside the level block hi*: buys need lo ≥ lo*, sells lo ≤ lo*
            let mut lb = AVec::zeros(n);
            let mut ls = AVec::zeros(n);
            for (lo, lv) in l.iter().enumerate() {
                if lo >= lo_star {
                    lb = lb.add(lv);
                }
                if lo <= lo_star {
                    ls = ls.add(lv);
                }
            }
            let mut xfix = AVec::zeros(n);
            let mut yfix = AVec::zeros(n);
            for hi in 0..nhi {
                if hi > hi_star {
                    xfix = xfix.add(&u[hi + nhi]);
                }
                if hi < hi_star {
                    yfix = yfix.add(&u[hi]);
                }
            }
            let pr = ctx
                .mul_many(&[(&u[hi_star + nhi], &lb), (&u[hi_star], &ls)])
                .await?;
            (xfix.add(&pr[0]), yfix.add(&pr[1]), n)
        }
        FillState::Full { e, n, m } => {
            let n = *n;
            if n == 0 {
                return Ok(AVec::zeros(0));
            }
            let half = 1usize << m;
            let k = level as usize;
            let mut x = AVec::zeros(n);
            let mut y = AVec::zeros(n);
            for j in 0..half {
                if j >= k {
                    x = x.add(&e[half + j]);
                }
                if j <= k {
                    y = y.add(&e[j]);
                }
            }
            (x, y, n)
        }
    };
    // X_i, Y_i: the quantity order i offers at k* on the buy / sell side (0 if not eligible)
    // prefix sums C_i (i = 1..n-1) and M_i = min(C_i, V) = C_i + [C_i > V]·(V − C_i)
    let prefix = |v: &AVec| {
        let mut out = AVec::zeros(0);
        let mut acc = AVec::zeros(1);
        for i in 0..n - 1 {
            acc = acc.add(&v.get(i));
            out.extend(&acc);
        }
        out
    };
    let mut c = prefix(&x);
    c.extend(&prefix(&y));
    let rem = c.rsub_const(me, volume);
    let over = ltz(ctx, &rem, comparison_width(n)).await?;
    let adj = select(ctx, &over, &rem).await?;
    let mm = c.add(&adj);
    // M_0 = 0, M_n = V; fill_i = (M_{i+1} − M_i) on the buy side plus the same on the sell side
    let vpub = AVec::public(me, &[volume]);
    let mget = |side: usize, i: usize| -> AVec {
        if i == 0 {
            AVec::zeros(1)
        } else if i == n {
            vpub.clone()
        } else {
            mm.get(side * (n - 1) + i - 1)
        }
    };
    let mut fill = AVec::zeros(0);
    for i in 0..n {
        let fb = mget(0, i + 1).sub(&mget(0, i));
        let fs = mget(1, i + 1).sub(&mget(1, i));
        fill.extend(&fb.add(&fs));
    }
    verify_gates(ctx).await?;
    Ok(fill)
}
