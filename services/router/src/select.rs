//! Choosing a provider among those that serve a protocol.
//!
//! 1. **Filter**: serving, lease alive, not excluded (already failed this request),
//!    the target provider if one is named, reputation ≥ the floor, and price
//!    converted into the requester's currency ≤ the maximum (an ask that cannot be
//!    converted fails a price limit).
//! 2. **Power of two choices** on a cost: two distinct random candidates, the one
//!    with the lower cost wins. Cost = `load × price_factor / reputation` where
//!    `load = (EWMA latency ms + 1) × (in-flight + 1)` is the router's own load
//!    figure, `price_factor = 1 + price / (cheapest + 1)` (relative to the cheapest
//!    eligible price, so currencies of different magnitude compare fairly) and
//!    reputation is `(kept+1)/(kept+broken+2)`. Two choices keep the herd off the
//!    momentarily best provider while still avoiding the loaded ones.

use rand::Rng;

/// What selection needs to know about one provider.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Serving according to its last health check and transport.
    pub serving: bool,
    /// Excluded for this request (failed already, or not the named target).
    pub excluded: bool,
    /// The ask converted into the requester's currency; `None` if unconvertible.
    pub price: Option<f64>,
    /// Reputation for this protocol.
    pub reputation: f64,
    /// EWMA latency in milliseconds.
    pub ewma_ms: f64,
    /// Requests in flight now.
    pub in_flight: u32,
}

/// Why no candidate was eligible (for an error the caller can act on).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rejections {
    /// Not serving.
    pub not_serving: usize,
    /// Excluded or not the target.
    pub excluded: usize,
    /// Over the price limit or unconvertible.
    pub too_expensive: usize,
    /// Below the reputation floor.
    pub low_reputation: usize,
}

impl std::fmt::Display for Rejections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} not serving, {} excluded or not the named target, {} over the price limit, {} below the reputation floor",
            self.not_serving, self.excluded, self.too_expensive, self.low_reputation
        )
    }
}

/// The caller's limits, already in the requester's currency.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    /// 0 = any price.
    pub max_price: u64,
    /// 0 = any reputation.
    pub min_reputation: f64,
}

/// Indices of the eligible candidates, or why there are none.
pub fn eligible(cands: &[Candidate], limits: Limits) -> Result<Vec<usize>, Rejections> {
    let mut rej = Rejections::default();
    let mut ok = Vec::new();
    for (i, c) in cands.iter().enumerate() {
        if c.excluded {
            rej.excluded += 1;
        } else if !c.serving {
            rej.not_serving += 1;
        } else if limits.max_price > 0 && c.price.is_none_or(|p| p > limits.max_price as f64) {
            rej.too_expensive += 1;
        } else if c.reputation < limits.min_reputation {
            rej.low_reputation += 1;
        } else {
            ok.push(i);
        }
    }
    if ok.is_empty() { Err(rej) } else { Ok(ok) }
}

/// The cost of a candidate given the cheapest eligible price.
pub fn cost(c: &Candidate, cheapest: f64) -> f64 {
    let load = (c.ewma_ms.max(0.0) + 1.0) * (c.in_flight as f64 + 1.0);
    let price_factor = 1.0 + c.price.unwrap_or(cheapest).max(0.0) / (cheapest.max(0.0) + 1.0);
    load * price_factor / c.reputation.max(1e-6)
}

/// Pick one of `eligible` (indices into `cands`) by power of two choices.
pub fn pick<R: Rng>(cands: &[Candidate], eligible: &[usize], rng: &mut R) -> Option<usize> {
    match eligible.len() {
        0 => None,
        1 => Some(eligible[0]),
        n => {
            let cheapest = eligible
                .iter()
                .filter_map(|&i| cands[i].price)
                .fold(f64::INFINITY, f64::min);
            let cheapest = if cheapest.is_finite() { cheapest } else { 0.0 };
            let a = rng.gen_range(0..n);
            let mut b = rng.gen_range(0..n - 1);
            if b >= a {
                b += 1;
            }
            let (a, b) = (eligible[a], eligible[b]);
            Some(if cost(&cands[a], cheapest) <= cost(&cands[b], cheapest) {
                a
            } else {
                b
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{SeedableRng, rngs::StdRng};

    fn cand(price: f64, rep: f64, ewma: f64, inflight: u32) -> Candidate {
        Candidate {
            serving: true,
            excluded: false,
            price: Some(price),
            reputation: rep,
            ewma_ms: ewma,
            in_flight: inflight,
        }
    }

    #[test]
    fn filter_names_each_reason() {
        let mut c = vec![cand(1.0, 0.9, 1.0, 0); 4];
        c[0].serving = false;
        c[1].excluded = true;
        c[2].price = Some(100.0);
        c[3].reputation = 0.1;
        let r = eligible(
            &c,
            Limits {
                max_price: 10,
                min_reputation: 0.5,
            },
        )
        .unwrap_err();
        assert_eq!(
            r,
            Rejections {
                not_serving: 1,
                excluded: 1,
                too_expensive: 1,
                low_reputation: 1
            }
        );
        let mut d = c.clone();
        d[3].reputation = 0.9;
        assert_eq!(
            eligible(
                &d,
                Limits {
                    max_price: 10,
                    min_reputation: 0.5
                }
            )
            .unwrap(),
            vec![3]
        );
    }

    #[test]
    fn unconvertible_price_fails_only_a_price_limit() {
        let mut c = vec![cand(1.0, 0.5, 1.0, 0)];
        c[0].price = None;
        assert!(
            eligible(
                &c,
                Limits {
                    max_price: 5,
                    min_reputation: 0.0
                }
            )
            .is_err()
        );
        assert_eq!(eligible(&c, Limits::default()).unwrap(), vec![0]);
    }

    #[test]
    fn two_choices_prefer_cheap_fast_reputable_providers() {
        let mut rng = StdRng::seed_from_u64(7);
        // Provider 0 is loaded, 1 is expensive, 2 is unreliable, 3 is good.
        let c = vec![
            cand(1.0, 0.9, 50.0, 8),
            cand(50.0, 0.9, 1.0, 0),
            cand(1.0, 0.05, 1.0, 0),
            cand(1.0, 0.9, 1.0, 0),
        ];
        let all = [0, 1, 2, 3];
        let mut wins = [0usize; 4];
        for _ in 0..4000 {
            wins[pick(&c, &all, &mut rng).unwrap()] += 1;
        }
        // The good provider wins every pair it is drawn into: 1/2 of draws.
        assert!(wins[3] > 1800, "{wins:?}");
        assert!(wins[3] > wins[0] && wins[3] > wins[1] && wins[3] > wins[2]);
        // The worst of the four never wins a pair.
        assert_eq!(wins.iter().sum::<usize>(), 4000);
    }
}
