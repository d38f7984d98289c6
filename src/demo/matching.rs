//! Chapter of the demo for issue 5: personal currencies and exchange rates. Five agents
//! (alice, bob, carol, dave, erin) each register the currency they issue; they trade in
//! three pairs around the grid's currency VG (ALC/VG, BOB/VG, ALC/BOB) in sealed-bid
//! rounds cleared by the three MPC nodes; the rate table the nodes fit (with the
//! arbitrage residual of the triangle) is printed; alice and bob each run an echo
//! provider asking 10 of their own currency, and the router's choice between them
//! changes when a second set of rounds moves the rates.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use bytes::Bytes;
use veilgrid_core::{protocol::ProtocolId, seal::SealKeyPair, sign::SigningIdentity};
use veilgrid_kit::{
    Shutdown,
    identity::Identity,
    provider::{ProviderConfig, ProviderService},
};
use veilgrid_matcher::{
    client::{MatchClient, PriceGrid},
    currency::sign_registration,
    veilgrid_mpc::{ClearingResult, Order, OrderId, Side, plain::clear_plain},
};

use super::{Story, Target};
use crate::{Error, client::CallOptions, grid};

/// The protocol alice's and bob's providers serve.
const PRICED_ECHO: &str = "veilgrid/demo/priced-echo/v1";
/// The agents and the currencies they issue.
const AGENTS: [(&str, &str, &str); 5] = [
    ("alice", "ALC", "Ⓐ"),
    ("bob", "BOB", "Ⓑ"),
    ("carol", "CRL", "Ⓒ"),
    ("dave", "DVE", "Ⓓ"),
    ("erin", "ERN", "Ⓔ"),
];
/// Every round's grid: `p_k = 2^(k/4 − 4)`, from 1/16 to about 1,448.
const GRID: PriceGrid = PriceGrid {
    levels: 64,
    p_min: 0.0625,
    ratio: 1.189_207_115_002_721,
};
/// Completions sent to compare the two providers.
const CALLS: usize = 20;

fn level_of(rate: f64) -> u32 {
    ((rate / GRID.p_min).ln() / GRID.ratio.ln()).round() as u32
}

/// The book the five agents submit in one pair: agent `i` buys or sells around the
/// level of `rate`, so that `rate` clears with a volume of 60.
fn book(rate: f64) -> Vec<(usize, Order)> {
    let l = level_of(rate);
    vec![
        (0, order(Side::Buy, l, 30)),
        (1, order(Side::Sell, l, 30)),
        (2, order(Side::Buy, l + 1, 20)),
        (3, order(Side::Sell, l - 1, 20)),
        (4, order(Side::Buy, l + 2, 10)),
        (0, order(Side::Sell, l - 2, 10)),
        // out of the money: nothing about it is revealed
        (4, order(Side::Sell, l + 9, 15)),
    ]
}

fn order(side: Side, limit: u32, qty: u64) -> Order {
    Order { side, limit, qty }
}

fn priced_echo(name: &str, currency: &str) -> (ProviderService, [u8; 32]) {
    let id = Arc::new(Identity::generate());
    let pid = id.provider_id();
    let p = ProviderService::builder(
        id,
        ProviderConfig {
            name: format!("{name}-echo"),
            currency: currency.into(),
            ..ProviderConfig::default()
        },
    )
    .protocol(PRICED_ECHO, 10, Arc::new(Echo))
    .build();
    (p, pid)
}

struct Echo;

#[tonic::async_trait]
impl veilgrid_kit::provider::Handler for Echo {
    async fn complete(
        &self,
        _: &veilgrid_kit::provider::Context,
        payload: Bytes,
    ) -> Result<Bytes, tonic::Status> {
        Ok(payload)
    }
}

async fn discover(t: &Target, tries: usize) -> Option<MatchClient> {
    let security = t.client().ok()?;
    for _ in 0..tries {
        if let Ok(c) = MatchClient::discover_secure(&t.addr, &security).await {
            return Some(c);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// The chapter. `local` is the shutdown of the demo's own in-process grid: without
/// matching nodes at the router, the chapter starts three there.
pub(super) async fn chapter(story: &mut Story, t: &Target, local: Option<Shutdown>) {
    story.chapter("personal currencies: five agents, three pairs, rates move the router's choice");
    let mut client = discover(t, 1).await;
    if client.is_none()
        && let Some(sd) = &local
    {
        story
            .step("start the three matching nodes in this process", || async {
                grid::start_matching(&t.addr, None, "VG", sd.clone(), t.tls.as_deref()).await?;
                Ok(
                    "nodes 0, 1, 2 registered with the router; they talk to each other directly"
                        .into(),
                )
            })
            .await;
        client = discover(t, 100).await;
    }
    let Some(c) = client else {
        if story.print {
            println!("  (skipped: no matching nodes are registered with this router)");
        }
        return;
    };
    let sd = Shutdown::new();
    run(story, t, &c, &sd).await;
    sd.cancel();
}

async fn run(story: &mut Story, t: &Target, c: &MatchClient, sd: &Shutdown) {
    let ok = story
        .step("five agents register the currencies they issue", || async {
            let mut out = Vec::new();
            for (name, id, symbol) in AGENTS {
                // each agent's issuer key; a fixed one so that re-running the demo
                // against the same grid finds its registrations again
                let mut seed = [0u8; 32];
                seed[..name.len()].copy_from_slice(name.as_bytes());
                let issuer = SigningIdentity::from_secret_bytes(&seed);
                let reg = sign_registration(&issuer, id, symbol)
                    .map_err(|e| Error::Service(e.to_string()))?;
                c.register_currency(&reg)
                    .await
                    .map_err(|e| Error::Service(e.to_string()))?;
                out.push(format!("{name}: {id} {symbol}"));
            }
            Ok(format!(
                "{} (each signed by its issuer's Ed25519 key)",
                out.join(", ")
            ))
        })
        .await;
    if !ok {
        return;
    }
    let mut ids = [[0u8; 32]; 2];
    let ok = story
        .step(
            "alice and bob each serve an echo asking 10 of their own currency",
            || async {
                for (k, (name, cur)) in [("alice", "ALC"), ("bob", "BOB")].into_iter().enumerate() {
                    let (p, pid) = priced_echo(name, cur);
                    let security = t.service(&format!("{name}-echo"))?;
                    grid::start_provider_secure(
                        p,
                        &t.addr,
                        Duration::from_secs(30),
                        sd.clone(),
                        &security,
                    )
                    .await?;
                    ids[k] = pid;
                }
                // both earn the same record of kept promises (a provider without one
                // starts at reputation 1/2, which the router weighs against price)
                let mut g = t.connect().await?;
                for id in ids {
                    let to = CallOptions {
                        target: Some(id),
                        ..CallOptions::default()
                    };
                    for _ in 0..20 {
                        g.complete(
                            &ProtocolId::from_name(PRICED_ECHO),
                            Bytes::from_static(b"w"),
                            &to,
                        )
                        .await?;
                    }
                }
                Ok(format!(
                    "protocol {PRICED_ECHO}: alice asks 10 ALC, bob asks 10 BOB"
                ))
            },
        )
        .await;
    if !ok {
        return;
    }
    let owners: Vec<SealKeyPair> = AGENTS.iter().map(|_| SealKeyPair::generate()).collect();
    // first rates: 1 ALC = 2 VG, 1 BOB = 4 VG, and ALC/BOB a little off (arbitrage)
    let first = [("ALC", 2.0), ("BOB", 4.0), ("ALC/BOB", 0.595)];
    if !rounds(story, c, &owners, &first, 1).await {
        return;
    }
    table(story, c).await;
    choose(story, t, ids, "with 1 ALC ≈ 2 VG and 1 BOB ≈ 4 VG").await;
    // bob breaks promises: BOB falls to 1 VG
    let second = [("BOB", 1.0), ("ALC/BOB", 2.0)];
    if !rounds(story, c, &owners, &second, 2).await {
        return;
    }
    table(story, c).await;
    choose(story, t, ids, "after BOB fell to about 1 VG").await;
}

/// One round per pair; `pairs` names BASE (QUOTE = VG) or BASE/QUOTE with the rate.
async fn rounds(
    story: &mut Story,
    c: &MatchClient,
    owners: &[SealKeyPair],
    pairs: &[(&str, f64)],
    set: usize,
) -> bool {
    let mut all_ok = true;
    for (pair, rate) in pairs {
        let (base, quote) = pair.split_once('/').unwrap_or((pair, "VG"));
        let ok = story
            .step(
                &format!("round {set}: {base}/{quote}, 7 sealed orders from the five agents"),
                || async {
                    let book = book(*rate);
                    let orders: Vec<(OrderId, Order)> = book
                        .iter()
                        .enumerate()
                        .map(|(k, (agent, o))| {
                            let id = format!("{}-{k}", AGENTS[*agent].0);
                            OrderId::new(id.as_bytes())
                                .map(|id| (id, *o))
                                .map_err(|e| Error::Service(e.to_string()))
                        })
                        .collect::<Result<_, _>>()?;
                    // each agent's orders are sealed to the nodes and filled to its key;
                    // one round per pair, the orders of all five in submission order
                    let round = veilgrid_matcher::client::fresh_round_id();
                    c.open(&veilgrid_proto::matching::v1::OpenRoundRequest {
                        round_id: Bytes::copy_from_slice(&round),
                        base: base.into(),
                        quote: quote.into(),
                        levels: GRID.levels,
                        p_min: GRID.p_min,
                        ratio: GRID.ratio,
                        mode: 0,
                        deadline_unix_ms: 0,
                    })
                    .await
                    .map_err(|e| Error::Service(e.to_string()))?;
                    for ((id, o), (agent, _)) in orders.iter().zip(&book) {
                        c.submit(round, GRID.levels, id, o, &owners[*agent].public())
                            .await
                            .map_err(|e| Error::Service(e.to_string()))?;
                    }
                    c.close(round)
                        .await
                        .map_err(|e| Error::Service(e.to_string()))?;
                    let out = c
                        .result(round, Duration::from_secs(60))
                        .await
                        .map_err(|e| Error::Service(e.to_string()))?;
                    let plain =
                        clear_plain(GRID.levels, &book.iter().map(|b| b.1).collect::<Vec<_>>());
                    if out.outcome.result != plain.clearing {
                        return Err(Error::Verify(format!(
                            "MPC {:?} differs from the plaintext rule {:?}",
                            out.outcome.result, plain.clearing
                        )));
                    }
                    let mut filled = 0;
                    for (a, owner) in owners.iter().enumerate() {
                        for (id, q) in c
                            .fills(round, owner)
                            .await
                            .map_err(|e| Error::Service(e.to_string()))?
                        {
                            let k = orders.iter().position(|o| o.0 == id).unwrap_or(usize::MAX);
                            if plain.fills.get(k) != Some(&q) || book.get(k).map(|b| b.0) != Some(a)
                            {
                                return Err(Error::Verify(format!("fill of {id} is wrong")));
                            }
                            filled += 1;
                        }
                    }
                    match out.outcome.result {
                        ClearingResult::Trade { level, volume } => Ok(format!(
                            "cleared at level {level}: 1 {base} = {:.4} {quote}, volume {volume}; \
                             signed by the three nodes; {filled} fills opened by their owners and \
                             equal to the plaintext rule",
                            out.rate
                        )),
                        ClearingResult::NoTrade => Ok("no trade".into()),
                    }
                },
            )
            .await;
        all_ok &= ok;
    }
    all_ok
}

/// Print the nodes' table (the router installs it at its next poll).
async fn table(story: &mut Story, c: &MatchClient) {
    let print = story.print;
    story
        .step("the rate table (weighted least squares on log-rates, VG fixed)", || async {
            let t = c.rates("VG").await.map_err(|e| Error::Service(e.to_string()))?;
            let mut lines = Vec::new();
            for r in t.rates.iter().filter(|r| r.currency != t.numeraire) {
                lines.push(format!("1 {} = {:.4} VG", r.currency, r.value));
            }
            for cy in &t.cycles {
                lines.push(format!(
                    "cycle {}: residual {:+.4} (going round multiplies money by {:.4})",
                    cy.currencies.join(" → "),
                    cy.log_residual,
                    cy.log_residual.exp()
                ));
            }
            let values: BTreeMap<&str, f64> =
                t.rates.iter().map(|r| (r.currency.as_str(), r.value)).collect();
            if print {
                for l in &lines {
                    println!("        {l}");
                }
            }
            Ok(format!(
                "{} currencies, {} cycle(s), {} rounds in the history; 1 ALC = {:.3} VG, 1 BOB = {:.3} VG",
                values.len(),
                t.cycles.len(),
                t.history.len(),
                values.get("ALC").copied().unwrap_or(f64::NAN),
                values.get("BOB").copied().unwrap_or(f64::NAN),
            ))
        })
        .await;
}

/// Send completions through the router and count which provider took them.
async fn choose(story: &mut Story, t: &Target, ids: [[u8; 32]; 2], when: &str) {
    story
        .step(&format!("{CALLS} requests priced in VG, {when}"), || async {
            let mut g = t.connect().await?;
            let opts = CallOptions {
                currency: "VG".into(),
                ..CallOptions::default()
            };
            let proto = ProtocolId::from_name(PRICED_ECHO);
            // wait (up to 15 s) until the router's table prices both asks as the nodes do
            let table = MatchClient::discover_secure(&t.addr, &t.client()?)
                .await
                .map_err(|e| Error::Service(e.to_string()))?
                .rates("VG")
                .await
                .map_err(|e| Error::Service(e.to_string()))?;
            let want: Vec<f64> = ["ALC", "BOB"]
                .iter()
                .map(|c| {
                    table
                        .rates
                        .iter()
                        .find(|r| r.currency == *c)
                        .map_or(f64::NAN, |r| r.value * 10.0)
                })
                .collect();
            let cheaper = if want[0] <= want[1] { 0 } else { 1 };
            // a price limit between the two asks admits only the cheaper one once the
            // router has the table
            let limit = ((want[0].min(want[1]) + want[0].max(want[1])) / 2.0).floor() as u64;
            let limited = CallOptions {
                max_price: limit,
                ..opts.clone()
            };
            let mut installed = false;
            for _ in 0..150 {
                if let Ok(done) = g.complete(&proto, Bytes::from_static(b"probe"), &limited).await
                    && done.receipt.receipt.provider_id == ids[cheaper]
                {
                    installed = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if !installed {
                return Err(Error::Service("the router did not install the new table".into()));
            }
            let mut count = [0usize; 2];
            for i in 0..CALLS {
                let done = g.complete(&proto, Bytes::from(format!("req {i}")), &opts).await?;
                if let Some(k) = ids.iter().position(|id| *id == done.receipt.receipt.provider_id) {
                    count[k] += 1;
                }
            }
            let names = ["alice", "bob"];
            Ok(format!(
                "alice's ask = {:.1} VG, bob's ask = {:.1} VG: alice served {}, bob served {} — the router prefers {}",
                want[0], want[1], count[0], count[1], names[cheaper]
            ))
        })
        .await;
}
