//! One consistent exchange-rate table from the clearing prices of many pairs.
//!
//! Each cleared round of BASE/QUOTE at rate `r` (QUOTE per BASE) and volume `V` says
//! `log v(BASE) − log v(QUOTE) ≈ ln r`, where `v(c)` is the value of one unit of `c`
//! in the numeraire. The table is the weighted least-squares solution
//!
//! `min Σ_edges V · (x_BASE − x_QUOTE − ln r)²`, with `x_numeraire = 0`,
//!
//! solved through the normal equations `L x = b` (`L` the volume-weighted graph
//! Laplacian without the numeraire's row and column). Only currencies connected to
//! the numeraire through cleared pairs get a value. The arbitrage left in the data is
//! reported per independent cycle (one per edge outside a spanning tree): the sum of
//! `±ln r` around the cycle, 0 when the rates are consistent, `ln(1.2)` when going
//! round the cycle multiplies money by 1.2.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use veilgrid_router::rates::RateTable;

use crate::MatchError;

/// One cleared round as input to the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Clearing {
    /// BASE currency id.
    pub base: String,
    /// QUOTE currency id.
    pub quote: String,
    /// QUOTE per BASE at the clearing level.
    pub rate: f64,
    /// Traded volume (the weight).
    pub volume: f64,
}

/// Arbitrage around one independent cycle of the pair graph.
#[derive(Debug, Clone, PartialEq)]
pub struct CycleResidual {
    /// The currencies around the cycle, starting and ending at the same one.
    pub currencies: Vec<String>,
    /// `Σ ±ln r` around the cycle: 0 when the rates agree.
    pub log_residual: f64,
}

/// The fitted table.
#[derive(Debug, Clone, PartialEq)]
pub struct Rates {
    /// The currency fixed at log-value 0.
    pub numeraire: String,
    /// `log v(c)` for every currency connected to the numeraire (numeraire included).
    pub log_values: BTreeMap<String, f64>,
    /// One entry per independent cycle.
    pub cycles: Vec<CycleResidual>,
}

impl Rates {
    /// The router's form of the table.
    pub fn to_rate_table(&self) -> RateTable {
        let mut t = RateTable::new(&self.numeraire);
        for (c, v) in &self.log_values {
            t.set_log_value(c, *v);
        }
        t
    }

    /// Value of one unit of `c` in the numeraire.
    pub fn value(&self, c: &str) -> Option<f64> {
        self.log_values.get(c).map(|v| v.exp())
    }
}

/// The latest clearing of each pair (either orientation) from a history, oldest first.
pub fn latest_per_pair(history: &[veilgrid_proto::matching::v1::PairClearing]) -> Vec<Clearing> {
    let mut latest: BTreeMap<(String, String), &veilgrid_proto::matching::v1::PairClearing> =
        BTreeMap::new();
    for h in history {
        let key = if h.base <= h.quote {
            (h.base.clone(), h.quote.clone())
        } else {
            (h.quote.clone(), h.base.clone())
        };
        latest.insert(key, h);
    }
    latest
        .values()
        .map(|h| Clearing {
            base: h.base.clone(),
            quote: h.quote.clone(),
            rate: h.rate,
            volume: h.volume as f64,
        })
        .collect()
}

/// Fit the table to `clearings` (later entries of the same pair are separate
/// observations; pass only the latest per pair for "the latest table").
pub fn fit(numeraire: &str, clearings: &[Clearing]) -> Result<Rates, MatchError> {
    for c in clearings {
        if !(c.rate.is_finite() && c.rate > 0.0) {
            return Err(MatchError::BadRequest(format!(
                "rate of {}/{} must be positive and finite, got {}",
                c.base, c.quote, c.rate
            )));
        }
        if !(c.volume.is_finite() && c.volume > 0.0) {
            return Err(MatchError::BadRequest(format!(
                "volume of {}/{} must be positive and finite, got {}",
                c.base, c.quote, c.volume
            )));
        }
        if c.base == c.quote {
            return Err(MatchError::BadRequest(format!(
                "pair {}/{} has the same currency twice",
                c.base, c.quote
            )));
        }
    }
    // currencies reachable from the numeraire
    let mut adj: HashMap<&str, Vec<(usize, &str)>> = HashMap::new();
    for (i, c) in clearings.iter().enumerate() {
        adj.entry(&c.base).or_default().push((i, &c.quote));
        adj.entry(&c.quote).or_default().push((i, &c.base));
    }
    let mut order: Vec<&str> = vec![numeraire];
    let mut parent: HashMap<&str, Option<(usize, &str)>> = HashMap::new();
    parent.insert(numeraire, None);
    let mut tree_edges = BTreeSet::new();
    let mut queue = VecDeque::from([numeraire]);
    while let Some(u) = queue.pop_front() {
        for &(e, v) in adj.get(u).map(Vec::as_slice).unwrap_or(&[]) {
            if !parent.contains_key(v) {
                parent.insert(v, Some((e, u)));
                tree_edges.insert(e);
                order.push(v);
                queue.push_back(v);
            }
        }
    }
    let index: HashMap<&str, usize> = order.iter().enumerate().map(|(i, c)| (*c, i)).collect();
    // normal equations over the unknowns 1..n (index 0 is the numeraire)
    let n = order.len() - 1;
    let mut l = vec![vec![0.0f64; n]; n];
    let mut b = vec![0.0f64; n];
    let mut connected = Vec::new();
    for (e, c) in clearings.iter().enumerate() {
        let (Some(&i), Some(&j)) = (index.get(c.base.as_str()), index.get(c.quote.as_str())) else {
            continue;
        };
        connected.push(e);
        let (w, y) = (c.volume, c.rate.ln());
        // residual x_i − x_j − y
        for (p, q, s) in [(i, j, 1.0), (j, i, -1.0)] {
            if p == 0 {
                continue;
            }
            l[p - 1][p - 1] += w;
            if q != 0 {
                l[p - 1][q - 1] -= w;
            }
            b[p - 1] += s * w * y;
        }
    }
    let x = solve(l, b)?;
    let log_of = |c: &str| -> f64 {
        match index.get(c) {
            Some(0) | None => 0.0,
            Some(&i) => x[i - 1],
        }
    };
    let log_values = order.iter().map(|c| (c.to_string(), log_of(c))).collect();
    // one cycle per connected edge outside the tree: edge base→quote, then the tree
    // path back from quote to base
    let mut cycles = Vec::new();
    for &e in connected.iter().filter(|e| !tree_edges.contains(*e)) {
        let c = &clearings[e];
        // the log-rate of moving one unit from `from` to `to` along edge k
        let step = |k: usize, from: &str| -> f64 {
            let d = &clearings[k];
            if d.base == from {
                d.rate.ln()
            } else {
                -d.rate.ln()
            }
        };
        let pq = path_to_root(&parent, &c.quote);
        let pb = path_to_root(&parent, &c.base);
        // drop the common tail (shared ancestors)
        let common = pq
            .iter()
            .rev()
            .zip(pb.iter().rev())
            .take_while(|(a, b)| a.0 == b.0)
            .count();
        let up = &pq[..pq.len() - common];
        let down = &pb[..pb.len() - common];
        let mut cur: Vec<String> = vec![c.base.clone(), c.quote.clone()];
        let mut sum = step(e, &c.base);
        for &(k, from, to) in up {
            sum += step(k, from);
            cur.push(to.to_string());
        }
        for &(k, child, par) in down.iter().rev() {
            sum += step(k, par);
            cur.push(child.to_string());
        }
        cycles.push(CycleResidual {
            currencies: cur,
            log_residual: sum,
        });
    }
    Ok(Rates {
        numeraire: numeraire.to_owned(),
        log_values,
        cycles,
    })
}

/// The tree edges from `c` up to the numeraire: `(edge, child, parent)`.
fn path_to_root<'a>(
    parent: &HashMap<&'a str, Option<(usize, &'a str)>>,
    mut c: &'a str,
) -> Vec<(usize, &'a str, &'a str)> {
    let mut p = Vec::new();
    while let Some(Some((e, up))) = parent.get(c) {
        p.push((*e, c, *up));
        c = up;
    }
    p
}

/// Gaussian elimination with partial pivoting (the systems have one row per currency).
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Result<Vec<f64>, MatchError> {
    let n = b.len();
    for col in 0..n {
        let piv = (col..n)
            .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
            .ok_or_else(|| MatchError::Rates("empty system".into()))?;
        if a[piv][col].abs() < 1e-300 {
            return Err(MatchError::Rates("singular normal equations".into()));
        }
        a.swap(col, piv);
        b.swap(col, piv);
        let (top, rest) = a.split_at_mut(col + 1);
        let pivot_row = &top[col];
        for (r, row) in rest.iter_mut().enumerate() {
            let f = row[col] / pivot_row[col];
            if f != 0.0 {
                for (x, p) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                    *x -= f * p;
                }
                b[col + 1 + r] -= f * b[col];
            }
        }
    }
    let mut x = vec![0.0; n];
    for r in (0..n).rev() {
        let s: f64 = (r + 1..n).map(|k| a[r][k] * x[k]).sum();
        x[r] = (b[r] - s) / a[r][r];
    }
    Ok(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(base: &str, quote: &str, rate: f64, volume: f64) -> Clearing {
        Clearing {
            base: base.into(),
            quote: quote.into(),
            rate,
            volume,
        }
    }

    #[test]
    fn consistent_triangle_has_zero_residual() {
        // 1 A = 2 VG, 1 B = 0.5 VG, so 1 A = 4 B
        let r = fit(
            "VG",
            &[
                c("A", "VG", 2.0, 10.0),
                c("B", "VG", 0.5, 3.0),
                c("A", "B", 4.0, 7.0),
            ],
        )
        .unwrap();
        assert!((r.value("A").unwrap() - 2.0).abs() < 1e-9);
        assert!((r.value("B").unwrap() - 0.5).abs() < 1e-9);
        assert_eq!(r.log_values["VG"], 0.0);
        assert_eq!(r.cycles.len(), 1);
        assert!(r.cycles[0].log_residual.abs() < 1e-12);
        let t = r.to_rate_table();
        assert!((t.convert(1.0, "A", "B").unwrap() - 4.0).abs() < 1e-9);
    }

    #[test]
    fn arbitrage_triangle_reports_its_residual() {
        // A→B ×2, B→C ×3, C→A ×0.2: once round multiplies by 1.2
        let r = fit(
            "A",
            &[
                c("A", "B", 2.0, 1.0),
                c("B", "C", 3.0, 1.0),
                c("C", "A", 0.2, 1.0),
            ],
        )
        .unwrap();
        assert_eq!(r.cycles.len(), 1);
        let cyc = &r.cycles[0];
        assert!(
            (cyc.log_residual.abs() - 1.2f64.ln()).abs() < 1e-12,
            "{cyc:?}"
        );
        assert_eq!(cyc.currencies.first(), cyc.currencies.last());
        assert_eq!(cyc.currencies.len(), 4);
        // equal weights: each edge absorbs a third of the residual
        let third = 1.2f64.ln() / 3.0;
        let ab = r.log_values["A"] - r.log_values["B"];
        assert!((ab - (2f64.ln() - third)).abs() < 1e-9, "{ab}");
    }

    #[test]
    fn volume_weights_pull_towards_the_heavy_pair() {
        let light = fit("A", &[c("A", "B", 2.0, 1.0), c("A", "B", 4.0, 1.0)]).unwrap();
        let heavy = fit("A", &[c("A", "B", 2.0, 1.0), c("A", "B", 4.0, 99.0)]).unwrap();
        let rate = |r: &Rates| (r.log_values["A"] - r.log_values["B"]).exp();
        assert!((rate(&light) - 8f64.sqrt()).abs() < 1e-9);
        assert!(rate(&heavy) > 3.9 && rate(&heavy) < 4.0);
        // parallel observations of one pair form a cycle with the log-ratio as residual
        assert!((light.cycles[0].log_residual.abs() - 2f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn disconnected_currencies_get_no_value_and_bad_input_is_refused() {
        let r = fit("VG", &[c("A", "VG", 2.0, 1.0), c("X", "Y", 3.0, 1.0)]).unwrap();
        assert!(r.log_values.contains_key("A"));
        assert!(!r.log_values.contains_key("X"));
        assert!(r.to_rate_table().convert(1.0, "X", "VG").is_none());
        assert!(fit("VG", &[c("A", "VG", 0.0, 1.0)]).is_err());
        assert!(fit("VG", &[c("A", "VG", 1.0, f64::NAN)]).is_err());
        assert!(fit("VG", &[c("A", "A", 1.0, 1.0)]).is_err());
        let empty = fit("VG", &[]).unwrap();
        assert_eq!(empty.log_values.len(), 1);
    }

    #[test]
    fn square_with_diagonal_has_two_cycles_summing_its_arbitrage() {
        // consistent values 1, 2, 4, 8 except the diagonal which is off by ×1.5
        let r = fit(
            "A",
            &[
                c("B", "A", 2.0, 1.0),
                c("C", "B", 2.0, 1.0),
                c("D", "C", 2.0, 1.0),
                c("D", "A", 8.0, 1.0),
                c("C", "A", 6.0, 1.0),
            ],
        )
        .unwrap();
        assert_eq!(r.cycles.len(), 2);
        let off: Vec<f64> = r.cycles.iter().map(|c| c.log_residual.abs()).collect();
        assert!(
            off.iter().all(|x| (x - 1.5f64.ln()).abs() < 1e-9),
            "{off:?}"
        );
    }
}
