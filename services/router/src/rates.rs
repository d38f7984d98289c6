//! Exchange rates between providers' currencies and the requester's.
//!
//! The table holds, for each currency `c`, `log v(c)`: the log of one unit of `c`
//! in the router's own currency (the numeraire, fixed at 0). Converting `x` units
//! of `a` into `b` gives `x · exp(log v(a) − log v(b))`. The matching service
//! publishes such tables from cleared rounds; until one is installed, only equal
//! currencies convert.

use std::collections::HashMap;

/// A consistent table of log-values per currency.
#[derive(Debug, Clone, Default)]
pub struct RateTable {
    numeraire: String,
    log_value: HashMap<String, f64>,
}

impl RateTable {
    /// A table with only the numeraire.
    pub fn new(numeraire: &str) -> Self {
        Self {
            numeraire: numeraire.to_owned(),
            log_value: HashMap::new(),
        }
    }

    /// The router's own currency.
    pub fn numeraire(&self) -> &str {
        &self.numeraire
    }

    /// Set the log-value of `currency` in the numeraire.
    pub fn set_log_value(&mut self, currency: &str, log_value: f64) {
        if currency != self.numeraire && log_value.is_finite() {
            self.log_value.insert(currency.to_owned(), log_value);
        }
    }

    fn log_of(&self, c: &str) -> Option<f64> {
        if c == self.numeraire || c.is_empty() {
            Some(0.0)
        } else {
            self.log_value.get(c).copied()
        }
    }

    /// Convert `amount` of `from` into `to`; `None` if either is unknown.
    /// The empty string means the numeraire.
    pub fn convert(&self, amount: f64, from: &str, to: &str) -> Option<f64> {
        let same = from == to
            || (from.is_empty() && to == self.numeraire)
            || (to.is_empty() && from == self.numeraire);
        if same {
            return Some(amount);
        }
        Some(amount * (self.log_of(from)? - self.log_of(to)?).exp())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversion_through_the_numeraire() {
        let mut t = RateTable::new("VG");
        t.set_log_value("ALC", 2f64.ln()); // 1 ALC = 2 VG
        t.set_log_value("BOB", 0.5f64.ln()); // 1 BOB = 0.5 VG
        assert_eq!(t.convert(3.0, "VG", ""), Some(3.0));
        assert!((t.convert(3.0, "ALC", "VG").unwrap() - 6.0).abs() < 1e-9);
        assert!((t.convert(1.0, "ALC", "BOB").unwrap() - 4.0).abs() < 1e-9);
        assert_eq!(t.convert(1.0, "ALC", "ZED"), None);
        assert_eq!(t.convert(1.0, "ZED", "ZED"), Some(1.0));
    }
}
