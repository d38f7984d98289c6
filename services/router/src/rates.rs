//! Exchange rates between providers' currencies and the requester's.
//!
//! The table holds, for each currency `c`, `log v(c)`: the log of one unit of `c`
//! in the router's own currency (the numeraire, fixed at 0). Converting `x` units
//! of `a` into `b` gives `x · exp(log v(a) − log v(b))`. The matching service
//! publishes such tables from cleared rounds; until one is installed, only equal
//! currencies convert.
//!
//! ## The feed from the matching nodes
//!
//! The router does not depend on the matching crates: it asks, as any client would,
//! every serving provider of `veilgrid/match/rates/v1` for the table with the router's
//! currency as numeraire (the prost `veilgrid.matching.v1.RatesRequest`), checks each
//! answer's signed receipt, decodes it size-limited, and installs a table only when at
//! least two distinct providers returned the same one ([`refresh`]). With the three
//! matching nodes (honest majority) one deviating node cannot move the router's rates;
//! a table in transit (one node has cleared a round the others have not yet) waits
//! for the next poll. [`follow`] polls until shutdown.
//!
//! With pinned sources (`RouterConfig::rate_sources`, the three nodes' provider ids
//! from `nodes.json`) only those providers are asked, and an answer counts only when
//! its receipt is signed by the pinned key: a provider that registers the rates
//! protocol under any other key — two colluding strangers, say — is never asked.

use std::{collections::HashMap, sync::Arc, time::Duration};

use prost::Message;
use tonic::Request;
use veilgrid_core::{limits::check_len, protocol::ProtocolId};
use veilgrid_kit::{Shutdown, clock::now_ms, provider::receipt_from_proto};
use veilgrid_proto::{
    grid::v1::CompletionRequest,
    matching::v1::{RatesRequest, RatesResponse},
};

use crate::{State, registry::Entry};

/// The protocol the matching nodes publish the table under.
pub const RATES_PROTOCOL: &str = "veilgrid/match/rates/v1";
/// Largest table answer accepted (the history of cleared rounds travels with it).
pub const MAX_RATES_ANSWER: usize = 8 << 20;
/// Most rate sources asked per poll.
pub const MAX_SOURCES: usize = 8;
/// Two tables agree when every log-value differs by less than this.
pub const AGREEMENT: f64 = 1e-9;

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

impl RateTable {
    /// Every currency's log-value (the numeraire excluded), sorted by currency.
    pub fn log_values(&self) -> Vec<(String, f64)> {
        let mut v: Vec<(String, f64)> = self
            .log_value
            .iter()
            .map(|(c, x)| (c.clone(), *x))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Whether two tables have the same numeraire, currencies and log-values (within
    /// [`AGREEMENT`]).
    pub fn agrees_with(&self, other: &RateTable) -> bool {
        let (a, b) = (self.log_values(), other.log_values());
        self.numeraire == other.numeraire
            && a.len() == b.len()
            && a.iter()
                .zip(&b)
                .all(|(x, y)| x.0 == y.0 && (x.1 - y.1).abs() < AGREEMENT)
    }

    /// The table of a `RatesResponse`: its numeraire must be `numeraire`, every
    /// currency id 1..=64 bytes and every log-value finite.
    pub fn from_response(numeraire: &str, r: &RatesResponse) -> Result<RateTable, String> {
        if r.numeraire != numeraire {
            return Err(format!(
                "table is in {:?}, the router asked for {numeraire:?}",
                r.numeraire
            ));
        }
        let mut t = RateTable::new(numeraire);
        for c in &r.rates {
            if c.currency.is_empty() || c.currency.len() > 64 || !c.log_value.is_finite() {
                return Err(format!("malformed rate entry for {:?}", c.currency));
            }
            t.set_log_value(&c.currency, c.log_value);
        }
        Ok(t)
    }
}

/// The table at least two of `tables` agree on (the largest such group), if any.
/// Each element is one distinct source's answer.
pub fn agreed(tables: &[RateTable]) -> Option<&RateTable> {
    let mut best: Option<(usize, &RateTable)> = None;
    for t in tables {
        let n = tables.iter().filter(|u| t.agrees_with(u)).count();
        if n >= 2 && best.is_none_or(|(m, _)| n > m) {
            best = Some((n, t));
        }
    }
    best.map(|(_, t)| t)
}

/// What one poll did.
#[derive(Debug, Clone, PartialEq)]
pub enum Refresh {
    /// No provider serves the rates protocol.
    NoSources,
    /// Fewer than two sources agreed; the table in use is kept. Holds the number of
    /// valid answers and the errors of the others.
    NoAgreement {
        /// Valid answers.
        answers: usize,
        /// Why the other sources' answers were refused.
        errors: Vec<String>,
    },
    /// A table was installed: how many sources agreed on it, how many currencies.
    Installed {
        /// Sources that returned this table.
        sources: usize,
        /// Currencies in it besides the numeraire.
        currencies: usize,
    },
}

async fn ask(entry: &Arc<Entry>, numeraire: &str, timeout: Duration) -> Result<RateTable, String> {
    let protocol = ProtocolId::from_name(RATES_PROTOCOL);
    let payload = RatesRequest {
        numeraire: numeraire.to_owned(),
    }
    .encode_to_vec();
    let mut req = Request::new(CompletionRequest {
        protocol_id: protocol.as_bytes().to_vec().into(),
        payload: payload.clone().into(),
        terms: None,
        idempotency_id: Default::default(),
        target_provider: entry.id.to_vec().into(),
        stream_length: 0,
    });
    req.set_timeout(timeout);
    let resp = tokio::time::timeout(
        timeout,
        entry.client(MAX_RATES_ANSWER + (64 << 10)).complete(req),
    )
    .await
    .map_err(|_| "timed out".to_owned())?
    .map_err(|s| format!("{}: {}", s.code(), s.message()))?
    .into_inner();
    let proto = resp.receipt.as_ref().ok_or("no receipt")?;
    let receipt = receipt_from_proto(proto).map_err(|e| e.to_string())?;
    if receipt.receipt.provider_id != entry.id {
        return Err("receipt signed by another provider".into());
    }
    receipt
        .verify_for(&protocol, &payload, &resp.completion)
        .map_err(|e| e.to_string())?;
    check_len("rates table", resp.completion.len(), MAX_RATES_ANSWER).map_err(|e| e.to_string())?;
    let table = RatesResponse::decode(resp.completion.as_ref()).map_err(|e| e.to_string())?;
    RateTable::from_response(numeraire, &table)
}

/// Ask every serving rates provider (at most [`MAX_SOURCES`]) for the table in the
/// router's currency and install the one at least two of them agree on.
pub async fn refresh(state: &State, timeout: Duration) -> Refresh {
    let protocol = ProtocolId::from_name(RATES_PROTOCOL);
    let mut entries = state.registry.serving(&protocol, now_ms());
    if let Some(pinned) = &state.config.rate_sources {
        entries.retain(|e| pinned.contains(&e.id));
    }
    entries.truncate(MAX_SOURCES);
    if entries.is_empty() {
        return Refresh::NoSources;
    }
    let numeraire = state.config.currency.clone();
    let answers =
        futures::future::join_all(entries.iter().map(|e| ask(e, &numeraire, timeout))).await;
    let mut tables = Vec::new();
    let mut errors = Vec::new();
    for (e, a) in entries.iter().zip(answers) {
        match a {
            Ok(t) => tables.push(t),
            Err(why) => errors.push(format!("{}: {why}", hex::encode(&e.id[..8]))),
        }
    }
    match agreed(&tables) {
        Some(t) => {
            let sources = tables.iter().filter(|u| t.agrees_with(u)).count();
            let currencies = t.log_value.len();
            state.set_rates(t.clone());
            Refresh::Installed {
                sources,
                currencies,
            }
        }
        None => Refresh::NoAgreement {
            answers: tables.len(),
            errors,
        },
    }
}

/// Poll the matching nodes every `every` until `shutdown` (see [`refresh`]).
pub async fn follow(state: Arc<State>, shutdown: Shutdown, every: Duration) {
    let every = every.max(Duration::from_millis(20));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        match refresh(&state, every.max(Duration::from_secs(2))).await {
            Refresh::NoAgreement { answers, errors } if !errors.is_empty() || answers > 0 => {
                tracing::debug!(answers, ?errors, "rate sources do not agree yet");
            }
            r => tracing::trace!(?r, "rates poll"),
        }
    }
}

/// The rate table in use.
pub fn current(state: &State) -> RateTable {
    state.rates.read().map(|r| r.clone()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_agreeing_sources_win_and_one_liar_cannot_move_the_table() {
        let mk = |alc: f64, bob: f64| {
            let mut t = RateTable::new("VG");
            t.set_log_value("ALC", alc);
            t.set_log_value("BOB", bob);
            t
        };
        let honest = mk(0.5, -0.25);
        let liar = mk(5.0, -0.25);
        assert!(agreed(std::slice::from_ref(&honest)).is_none());
        assert!(agreed(&[honest.clone(), liar.clone()]).is_none());
        let three = [liar.clone(), honest.clone(), honest.clone()];
        let got = agreed(&three).unwrap();
        assert!(got.agrees_with(&honest) && !got.agrees_with(&liar));
        // different currency sets or numeraires never agree
        let mut fewer = RateTable::new("VG");
        fewer.set_log_value("ALC", 0.5);
        assert!(!fewer.agrees_with(&honest));
        let mut other = RateTable::new("ALC");
        other.set_log_value("BOB", -0.25);
        other.set_log_value("VG", -0.5);
        assert!(!other.agrees_with(&honest));
        // answers in another numeraire or with junk are refused
        let resp = RatesResponse {
            numeraire: "ALC".into(),
            ..Default::default()
        };
        assert!(RateTable::from_response("VG", &resp).is_err());
        let junk = RatesResponse {
            numeraire: "VG".into(),
            rates: vec![veilgrid_proto::matching::v1::CurrencyRate {
                currency: "ALC".into(),
                log_value: f64::NAN,
                value: 0.0,
            }],
            ..Default::default()
        };
        assert!(RateTable::from_response("VG", &junk).is_err());
    }

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
