//! The plaintext auction rule of the matching issue, exactly:
//!
//! `D(k)` = eligible buy quantity (`limit >= k`), `S(k)` = eligible sell quantity
//! (`limit <= k`), `V(k) = min(D, S)`. `k*` maximizes `V`; ties go to the smallest
//! `|D - S|`, then the lowest `k`. If the maximum is 0 there is no trade. Fills, per
//! side, in submission order: each order eligible at `k*` gets
//! `min(q, V - already filled on that side)`; all others 0.
//!
//! This is the reference the circuit is tested against; it accepts any number of
//! orders (the circuit takes up to 64).

use super::book::{Order, Side};

/// The outcome of a clearing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Clearing {
    /// `Some(k*)` if there is a trade, `None` otherwise.
    pub level: Option<usize>,
    /// Cleared volume `V(k*)` (0 without trade).
    pub volume: u64,
    /// Each order's fill, in submission order.
    pub fills: Vec<u64>,
    /// The level that maximized `V` under the tie-break rule, also when `V = 0`
    /// (kept for the prover; never revealed when there is no trade).
    pub argmax: usize,
}

/// Clears `orders` on `levels` price levels. Orders must have `limit < levels`.
pub fn clear(levels: usize, orders: &[Order]) -> Clearing {
    let mut best: Option<(u64, u64, usize)> = None; // (V, |D-S|, k)
    for k in 0..levels.max(1) {
        let mut d = 0u64;
        let mut s = 0u64;
        for o in orders {
            let q = u64::from(o.qty);
            match o.side {
                Side::Buy if usize::from(o.limit) >= k => d += q,
                Side::Sell if usize::from(o.limit) <= k => s += q,
                _ => {}
            }
        }
        let cand = (d.min(s), d.abs_diff(s), k);
        best = match best {
            None => Some(cand),
            Some(b) => {
                let better = cand.0 > b.0 || (cand.0 == b.0 && cand.1 < b.1);
                Some(if better { cand } else { b })
            }
        };
    }
    let (v, _, k) = best.unwrap_or((0, 0, 0));
    let mut fills = vec![0u64; orders.len()];
    if v > 0 {
        let (mut filled_b, mut filled_s) = (0u64, 0u64);
        for (o, f) in orders.iter().zip(fills.iter_mut()) {
            let q = u64::from(o.qty);
            let l = usize::from(o.limit);
            match o.side {
                Side::Buy if l >= k => {
                    *f = q.min(v - filled_b);
                    filled_b += *f;
                }
                Side::Sell if l <= k => {
                    *f = q.min(v - filled_s);
                    filled_s += *f;
                }
                _ => {}
            }
        }
    }
    Clearing {
        level: (v > 0).then_some(k),
        volume: v,
        fills,
        argmax: k,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The matching issue's checked-in test vector (1,000 orders, 64 levels).
    #[test]
    fn issue_test_vector() {
        let mut orders = Vec::new();
        for i in 0..500u32 {
            orders.push(Order {
                side: Side::Buy,
                limit: (i % 64) as u8,
                qty: (i + 1) % 97 + 1,
            });
        }
        for i in 0..500u32 {
            orders.push(Order {
                side: Side::Sell,
                limit: ((i + 5) % 64) as u8,
                qty: (i + 3) % 89 + 1,
            });
        }
        let c = clear(64, &orders);
        assert_eq!(c.level, Some(33));
        assert_eq!(c.volume, 10937);
        assert_eq!(c.fills[0], 0);
        assert_eq!(c.fills[500], 4);
        let buys: u64 = c.fills[..500].iter().sum();
        let sells: u64 = c.fills[500..].iter().sum();
        assert_eq!(buys, 10937);
        assert_eq!(sells, 10937);
    }

    #[test]
    fn no_trade_reveals_nothing() {
        let orders = [
            Order {
                side: Side::Buy,
                limit: 2,
                qty: 5,
            },
            Order {
                side: Side::Sell,
                limit: 3,
                qty: 5,
            },
        ];
        let c = clear(8, &orders);
        assert_eq!(c.level, None);
        assert_eq!(c.volume, 0);
        assert_eq!(c.fills, vec![0, 0]);
    }

    #[test]
    fn ties_go_to_smallest_imbalance_then_lowest_level() {
        // buy 10 @ limit 5, sell 10 @ limit 1: V = 10 on levels 1..=5, |D-S| = 0 everywhere
        let orders = [
            Order {
                side: Side::Buy,
                limit: 5,
                qty: 10,
            },
            Order {
                side: Side::Sell,
                limit: 1,
                qty: 10,
            },
        ];
        assert_eq!(clear(8, &orders).level, Some(1));
        // an extra sell at level 4 makes |D-S| larger from level 4 on, still lowest is 1
        let orders = [
            Order {
                side: Side::Buy,
                limit: 5,
                qty: 10,
            },
            Order {
                side: Side::Sell,
                limit: 1,
                qty: 10,
            },
            Order {
                side: Side::Buy,
                limit: 2,
                qty: 3,
            },
        ];
        // D(1)=13, D(2)=13, D(3)=10; S=10 for k>=1: V=10 everywhere on 1..=5; |D-S| is 3,3,0,0,0
        assert_eq!(clear(8, &orders).level, Some(3));
    }
}
