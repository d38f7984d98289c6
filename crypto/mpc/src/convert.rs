//! Moving bits between the binary and the arithmetic world, and the products built
//! on them. See `docs/sharing.md`.
//!
//! * `b2a`: a bit `b = b_0 ⊕ b_1 ⊕ b_2` whose components are each known to two
//!   parties becomes an arithmetic sharing with two multiplications:
//!   `u = b_0 + b_1 − 2·b_0 b_1` (`= b_0 ⊕ b_1`), then `b = u + b_2 − 2·u b_2`.
//!   Two steps, two ring elements per bit per party, for any number of bits at once.
//! * `chain`: the products of a value with the one-hot vector of some bits, one bit at
//!   a time: extending by bit `b` maps each entry `e` to `(e − e·b, e·b)`.

use crate::ctx::{Batch, Ctx};
use crate::error::Error;
use crate::share::{AVec, BVec};

/// This party's components `(b_i, b_{i+1})` of a list of shared bits (each 0 or 1).
pub(crate) struct BitComps {
    pub(crate) a: Vec<u64>,
    pub(crate) b: Vec<u64>,
}

impl BitComps {
    /// Bit `t` of each shared word.
    pub(crate) fn of_words(words_a: &[u64], words_b: &[u64], t: u32) -> Self {
        BitComps {
            a: words_a.iter().map(|w| (w >> t) & 1).collect(),
            b: words_b.iter().map(|w| (w >> t) & 1).collect(),
        }
    }

    /// The first `n` lanes of bit-sliced words.
    pub(crate) fn of_lanes(x: &BVec, n: usize) -> Self {
        BitComps {
            a: (0..n).map(|v| (x.a[v / 64] >> (v % 64)) & 1).collect(),
            b: (0..n).map(|v| (x.b[v / 64] >> (v % 64)) & 1).collect(),
        }
    }

    pub(crate) fn extend(&mut self, other: BitComps) {
        self.a.extend(other.a);
        self.b.extend(other.b);
    }
}

/// Arithmetic sharings of shared bits. Two steps.
pub(crate) async fn b2a(ctx: &mut Ctx, bits: &BitComps) -> Result<AVec, Error> {
    let me = ctx.me();
    let e0 = AVec::component(me, 0, &bits.a, &bits.b);
    let e1 = AVec::component(me, 1, &bits.a, &bits.b);
    let e2 = AVec::component(me, 2, &bits.a, &bits.b);
    let p = ctx.mul_many(&[(&e0, &e1)]).await?.remove(0);
    let u = e0.add(&e1).sub(&p.scale(2));
    let q = ctx.mul_many(&[(&u, &e2)]).await?.remove(0);
    Ok(u.add(&e2).sub(&q.scale(2)))
}

/// `b · y` for bit-sliced binary bits `b` (lanes `0..y.len()`) and arithmetic `y`.
/// Three steps.
pub(crate) async fn select(ctx: &mut Ctx, b: &BVec, y: &AVec) -> Result<AVec, Error> {
    let ba = b2a(ctx, &BitComps::of_lanes(b, y.len())).await?;
    Ok(ctx.mul_many(&[(&ba, y)]).await?.remove(0))
}

/// For several groups `(entries, bits)`: extend each group's list of entries by its bits,
/// one bit per step, all groups in the same steps. Entry `k` of the result is
/// `entries[k mod len] · Π_s [bit_s = k_s]` (bit `s` of the index is extension `s`).
pub(crate) async fn chain(
    ctx: &mut Ctx,
    mut groups: Vec<(Vec<AVec>, Vec<AVec>)>,
) -> Result<Vec<Vec<AVec>>, Error> {
    let rounds = groups.iter().map(|g| g.1.len()).max().unwrap_or(0);
    for r in 0..rounds {
        let mut batch = Batch::new(ctx.mode());
        let mut refs = Vec::new();
        for (gi, (entries, bits)) in groups.iter().enumerate() {
            if r < bits.len() {
                for e in entries {
                    refs.push((gi, batch.mul(e, &bits[r])));
                }
            }
        }
        let out = ctx.run(batch).await?;
        let mut products: Vec<Vec<AVec>> = vec![Vec::new(); groups.len()];
        for (gi, rf) in refs {
            products[gi].push(out.arith(&rf));
        }
        for (gi, (entries, bits)) in groups.iter_mut().enumerate() {
            if r < bits.len() {
                let prods = std::mem::take(&mut products[gi]);
                let mut next: Vec<AVec> =
                    entries.iter().zip(&prods).map(|(e, p)| e.sub(p)).collect();
                next.extend(prods);
                *entries = next;
            }
        }
    }
    Ok(groups.into_iter().map(|g| g.0).collect())
}
