//! The auction rule in the clear: the reference the MPC is tested against.
//!
//! On a grid of `P` levels, `D(k)` is the total quantity of buys with `ℓ ≥ k`, `S(k)`
//! of sells with `ℓ ≤ k`, `V(k) = min(D(k), S(k))`. The clearing level maximises `V`;
//! ties go to the smallest `|D − S|`, then to the lowest `k`. If the maximum is 0 there
//! is no trade. Fills, per side in submission order: eligible orders get
//! `min(q, V − already filled)`, all others 0. The rule is applied literally to every
//! order, even one whose limit is not on the grid.

use crate::order::{Order, Side};
use crate::outcome::ClearingResult;

/// Clearing level, volume and every order's fill.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlainResult {
    /// The public part.
    pub clearing: ClearingResult,
    /// `fills[i]` is order `i`'s fill (0 without trade).
    pub fills: Vec<u64>,
}

/// Demand and supply at level `k`.
pub fn demand_supply(orders: &[Order], k: u32) -> (u128, u128) {
    let mut d = 0u128;
    let mut s = 0u128;
    for o in orders {
        match o.side {
            Side::Buy if o.limit >= k => d += u128::from(o.qty),
            Side::Sell if o.limit <= k => s += u128::from(o.qty),
            _ => {}
        }
    }
    (d, s)
}

/// The rule, evaluated level by level.
pub fn clear_plain(levels: u32, orders: &[Order]) -> PlainResult {
    let mut best: Option<(u128, u128, u32)> = None; // (V, |D-S|, k)
    for k in 0..levels {
        let (d, s) = demand_supply(orders, k);
        let v = d.min(s);
        let g = d.abs_diff(s);
        let better = match best {
            None => true,
            Some((bv, bg, _)) => v > bv || (v == bv && g < bg),
        };
        if better {
            best = Some((v, g, k));
        }
    }
    let Some((v, _, k)) = best.filter(|b| b.0 > 0) else {
        return PlainResult {
            clearing: ClearingResult::NoTrade,
            fills: vec![0; orders.len()],
        };
    };
    let mut filled_buy = 0u128;
    let mut filled_sell = 0u128;
    let fills = orders
        .iter()
        .map(|o| {
            let (eligible, filled) = match o.side {
                Side::Buy => (o.limit >= k, &mut filled_buy),
                Side::Sell => (o.limit <= k, &mut filled_sell),
            };
            if !eligible {
                return 0;
            }
            let f = u128::from(o.qty).min(v - *filled);
            *filled += f;
            f as u64
        })
        .collect();
    PlainResult {
        clearing: ClearingResult::Trade {
            level: k,
            volume: v as u64,
        },
        fills,
    }
}

/// The checked-in test vector of the issue: 500 buyers with limit `i mod 64` and
/// quantity `(i+1) mod 97 + 1`, then 500 sellers with limit `(i+5) mod 64` and quantity
/// `(i+3) mod 89 + 1`, on 64 levels. Expected: `k* = 33`, `V = 10937`, first buyer's
/// fill 0, first seller's fill 4.
pub fn test_vector_book() -> Vec<Order> {
    let mut v: Vec<Order> = (0..500u64)
        .map(|i| Order {
            side: Side::Buy,
            limit: (i % 64) as u32,
            qty: (i + 1) % 97 + 1,
        })
        .collect();
    v.extend((0..500u64).map(|i| Order {
        side: Side::Sell,
        limit: ((i + 5) % 64) as u32,
        qty: (i + 3) % 89 + 1,
    }));
    v
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::needless_range_loop
)]
mod tests {
    use super::*;

    #[test]
    fn issue_test_vector() {
        let book = test_vector_book();
        let r = clear_plain(64, &book);
        assert_eq!(
            r.clearing,
            ClearingResult::Trade {
                level: 33,
                volume: 10937
            }
        );
        assert_eq!(r.fills[0], 0);
        assert_eq!(r.fills[500], 4);
        let buys: u64 = r.fills[..500].iter().sum();
        let sells: u64 = r.fills[500..].iter().sum();
        assert_eq!(buys, 10937);
        assert_eq!(sells, 10937);
    }

    #[test]
    fn ties_and_no_trade() {
        let b = |limit, qty| Order {
            side: Side::Buy,
            limit,
            qty,
        };
        let s = |limit, qty| Order {
            side: Side::Sell,
            limit,
            qty,
        };
        // no crossing: buy at 2, sell at 5
        assert_eq!(
            clear_plain(8, &[b(2, 10), s(5, 10)]).clearing,
            ClearingResult::NoTrade
        );
        // one side empty
        assert_eq!(
            clear_plain(8, &[b(2, 10), b(3, 1)]).clearing,
            ClearingResult::NoTrade
        );
        assert_eq!(clear_plain(8, &[]).clearing, ClearingResult::NoTrade);
        // V = 10 at k = 3..=5; |D-S| = 0 throughout: lowest k
        let r = clear_plain(8, &[b(5, 10), s(3, 10)]);
        assert_eq!(
            r.clearing,
            ClearingResult::Trade {
                level: 3,
                volume: 10
            }
        );
        assert_eq!(r.fills, vec![10, 10]);
        // V = 6 at k = 3, 4, 5 with |D-S| = 2, 2, 0: the smaller imbalance wins
        let r = clear_plain(8, &[b(5, 6), b(4, 2), s(3, 6)]);
        assert_eq!(
            r.clearing,
            ClearingResult::Trade {
                level: 5,
                volume: 6
            }
        );
        assert_eq!(r.fills, vec![6, 0, 6]);
        // equal V and equal imbalance at k = 3 and 4: the lower wins
        let r = clear_plain(8, &[b(5, 4), b(4, 6), s(3, 5)]);
        assert_eq!(
            r.clearing,
            ClearingResult::Trade {
                level: 3,
                volume: 5
            }
        );
        assert_eq!(r.fills, vec![4, 1, 5]);
        // P = 1
        let r = clear_plain(1, &[b(0, 3), s(0, 5)]);
        assert_eq!(
            r.clearing,
            ClearingResult::Trade {
                level: 0,
                volume: 3
            }
        );
        assert_eq!(r.fills, vec![3, 3]);
    }
}
