//! `veilgrid match round open | submit | result | fills` and `veilgrid rates`: sealed-bid
//! rounds on the three matching nodes, through the router only.
//!
//! The trader's X25519 key (fills are sealed to it) is kept in
//! `<data-dir>/trader/owner.key`; rounds this trader opened are remembered in
//! `<data-dir>/trader/rounds/<id>` (their number of levels), so `result` closes them.
//! The Ed25519 key that signs the trader's currency registrations is
//! `<data-dir>/trader/issuer.key`.

mod plot;

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Deserialize;
use serde_json::json;
use veilgrid_core::{seal::SealKeyPair, sign::SigningIdentity};
use veilgrid_matcher::{
    MatchError,
    client::{MatchClient, fresh_round_id},
    veilgrid_mpc::{Order, OrderId, Side},
};
use veilgrid_proto::matching::v1 as pb;

use super::RouterArg;
use crate::Error;

fn err(e: MatchError) -> Error {
    match e {
        MatchError::Remote { what, status } => Error::rpc(what, status),
        other => Error::Service(other.to_string()),
    }
}

fn io(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Sealed-bid matching rounds.
#[derive(Debug, clap::Args)]
pub(crate) struct MatchArgs {
    #[command(subcommand)]
    cmd: MatchCmd,
}

#[derive(Debug, clap::Subcommand)]
enum MatchCmd {
    /// Open a round.
    Round {
        #[command(subcommand)]
        cmd: RoundCmd,
    },
    /// Submit orders (each shared and sealed separately to the three nodes).
    Submit(SubmitArgs),
    /// Wait for the signed public outcome (closing the round first if you opened it).
    Result(RoundArgs),
    /// Your fills of a round, opened and checked.
    Fills(RoundArgs),
    /// Personal currencies: register the one you issue, list them.
    Currency {
        #[command(subcommand)]
        cmd: CurrencyCmd,
    },
    /// Make the keys of three matching nodes run as separate processes
    /// (`veilgrid serve matcher-node`): DIR/party-<i>/ (secret: give each operator only
    /// its own) and DIR/nodes.json (public: for every node and the router).
    Keygen(KeygenArgs),
}

#[derive(Debug, clap::Args)]
struct KeygenArgs {
    /// Where to write the keys (must not hold keys yet).
    #[arg(long)]
    out: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Subcommand)]
enum CurrencyCmd {
    /// Register a currency you issue at the three nodes, signed with your issuer key.
    Register(RegisterArgs),
    /// The registered currencies.
    List(ListArgs),
}

#[derive(Debug, clap::Args)]
struct RegisterArgs {
    #[command(flatten)]
    common: Common,
    /// The currency id (1..=64 of A-Z a-z 0-9 _ -), what pairs and asks name.
    #[arg(long)]
    id: String,
    /// Display symbol (default: the id).
    #[arg(long)]
    symbol: Option<String>,
}

#[derive(Debug, clap::Args)]
struct ListArgs {
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Subcommand)]
enum RoundCmd {
    /// Open a round of one pair on a geometric price grid.
    Open(OpenArgs),
}

#[derive(Debug, clap::Args)]
struct Common {
    #[command(flatten)]
    router: RouterArg,
    /// Where the trader's key and rounds are kept.
    #[arg(long, env = "VEILGRID_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct OpenArgs {
    #[command(flatten)]
    common: Common,
    /// BASE/QUOTE currency ids.
    #[arg(long)]
    pair: String,
    /// Number of price levels P.
    #[arg(long, default_value_t = 64)]
    levels: u32,
    /// Price of level 0, QUOTE per BASE.
    #[arg(long, default_value_t = 1.0)]
    pmin: f64,
    /// Ratio between neighbouring levels.
    #[arg(long, default_value_t = 1.05)]
    ratio: f64,
    /// Refuse orders after this many seconds.
    #[arg(long)]
    deadline: Option<u64>,
    /// Malicious-secure-with-abort mode instead of semi-honest.
    #[arg(long)]
    malicious: bool,
}

#[derive(Debug, clap::Args)]
struct SubmitArgs {
    #[command(flatten)]
    common: Common,
    /// The round id (hex).
    #[arg(long)]
    round: String,
    /// buy or sell (BASE).
    #[arg(long, conflicts_with = "orders")]
    side: Option<String>,
    /// Limit level.
    #[arg(long, conflicts_with = "orders")]
    limit: Option<u32>,
    /// Quantity.
    #[arg(long, conflicts_with = "orders")]
    qty: Option<u64>,
    /// Order id (default: random).
    #[arg(long, conflicts_with = "orders")]
    id: Option<String>,
    /// Number of levels of the round (default: remembered if you opened it).
    #[arg(long)]
    levels: Option<u32>,
    /// `{"levels": P, "orders": [{"id", "side", "limit", "qty"}, …]}` in submission order.
    #[arg(long)]
    orders: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct RoundArgs {
    #[command(flatten)]
    common: Common,
    /// The round id (hex).
    #[arg(long)]
    round: String,
    /// How long to wait for the nodes, in seconds.
    #[arg(long, default_value_t = 120)]
    wait: u64,
}

/// The exchange-rate table.
#[derive(Debug, clap::Args)]
pub(crate) struct RatesArgs {
    #[command(flatten)]
    router: RouterArg,
    /// The currency fixed at value 1 (default: the nodes' numeraire).
    #[arg(long, default_value = "")]
    numeraire: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Also draw the rates over the cleared rounds into this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
struct OrdersFile {
    levels: u32,
    orders: Vec<OrderLine>,
}

#[derive(Debug, Deserialize)]
struct OrderLine {
    id: String,
    side: String,
    limit: u32,
    qty: u64,
}

fn trader_dir(c: &Common) -> PathBuf {
    c.data_dir
        .clone()
        .unwrap_or_else(super::default_data_dir)
        .join("trader")
}

fn owner_key(c: &Common) -> Result<SealKeyPair, Error> {
    let dir = trader_dir(c);
    let path = dir.join("owner.key");
    match std::fs::read(&path) {
        Ok(b) => {
            let secret: [u8; 32] = b
                .as_slice()
                .try_into()
                .map_err(|_| Error::Verify(format!("{} must hold 32 bytes", path.display())))?;
            Ok(SealKeyPair::from_secret_bytes(&secret)?)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
            let kp = SealKeyPair::generate();
            write_private(&path, &kp.secret_bytes()[..])?;
            Ok(kp)
        }
        Err(e) => Err(io(&path, e)),
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| io(path, e))?;
    f.write_all(bytes).map_err(|e| io(path, e))
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    std::fs::write(path, bytes).map_err(|e| io(path, e))
}

fn parse_round(s: &str) -> Result<[u8; 16], Error> {
    hex::decode(s)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| Error::Verify(format!("a round id is 32 hex digits, got {s:?}")))
}

fn parse_side(s: &str) -> Result<Side, Error> {
    match s {
        "buy" => Ok(Side::Buy),
        "sell" => Ok(Side::Sell),
        _ => Err(Error::Verify(format!("side is buy or sell, got {s:?}"))),
    }
}

fn owned_round(c: &Common, round: &[u8; 16]) -> Option<u32> {
    let path = trader_dir(c).join("rounds").join(hex::encode(round));
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

async fn connect(r: &RouterArg) -> Result<MatchClient, Error> {
    MatchClient::discover_secure(&r.router, &r.security()?)
        .await
        .map_err(err)
}

pub(crate) async fn run(a: MatchArgs) -> Result<(), Error> {
    match a.cmd {
        MatchCmd::Round {
            cmd: RoundCmd::Open(o),
        } => open(o).await,
        MatchCmd::Submit(s) => submit(s).await,
        MatchCmd::Result(r) => result(r).await,
        MatchCmd::Fills(r) => fills(r).await,
        MatchCmd::Currency {
            cmd: CurrencyCmd::Register(a),
        } => register_currency(a).await,
        MatchCmd::Currency {
            cmd: CurrencyCmd::List(a),
        } => list_currencies(a).await,
        MatchCmd::Keygen(k) => keygen(&k),
    }
}

fn keygen(k: &KeygenArgs) -> Result<(), Error> {
    let public = veilgrid_matcher::keys::generate(&k.out).map_err(err)?;
    let nodes: Vec<_> = public
        .iter()
        .enumerate()
        .map(|(i, n)| {
            json!({
                "party": i,
                "provider_id": hex::encode(n.provider_id),
                "dir": veilgrid_matcher::keys::party_dir(&k.out, i as u8).display().to_string(),
            })
        })
        .collect();
    if k.json {
        println!(
            "{}",
            json!({
                "nodes_file": k.out.join(veilgrid_matcher::keys::NODES_FILE).display().to_string(),
                "nodes": nodes,
            })
        );
    } else {
        for n in &nodes {
            println!("party {}: {} ({})", n["party"], n["provider_id"], n["dir"]);
        }
        println!(
            "public keys: {} (for every node and the router's --matcher-nodes)",
            k.out.join(veilgrid_matcher::keys::NODES_FILE).display()
        );
    }
    Ok(())
}

fn issuer_key(c: &Common) -> Result<SigningIdentity, Error> {
    let dir = trader_dir(c);
    let path = dir.join("issuer.key");
    match std::fs::read(&path) {
        Ok(b) => {
            let secret: [u8; 32] = b
                .as_slice()
                .try_into()
                .map_err(|_| Error::Verify(format!("{} must hold 32 bytes", path.display())))?;
            Ok(SigningIdentity::from_secret_bytes(&secret))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
            let k = SigningIdentity::generate();
            write_private(&path, &k.secret_bytes()[..])?;
            Ok(k)
        }
        Err(e) => Err(io(&path, e)),
    }
}

fn currency_json(c: &pb::Currency) -> serde_json::Value {
    json!({"id": c.id, "symbol": c.symbol, "issuer": hex::encode(&c.issuer_key)})
}

async fn register_currency(a: RegisterArgs) -> Result<(), Error> {
    let issuer = issuer_key(&a.common)?;
    let symbol = a.symbol.clone().unwrap_or_else(|| a.id.clone());
    let cur = veilgrid_matcher::currency::sign_registration(&issuer, &a.id, &symbol)
        .map_err(|e| Error::Verify(e.to_string()))?;
    let c = connect(&a.common.router).await?;
    let created = c.register_currency(&cur).await.map_err(err)?;
    if a.common.json {
        let mut v = currency_json(&cur);
        v["created"] = json!(created);
        println!("{v}");
    } else {
        println!(
            "{} {} ({symbol}), issuer {}",
            if created {
                "registered"
            } else {
                "already registered:"
            },
            a.id,
            hex::encode(&cur.issuer_key[..8])
        );
    }
    Ok(())
}

async fn list_currencies(a: ListArgs) -> Result<(), Error> {
    let c = connect(&a.common.router).await?;
    let all = c.currencies().await.map_err(err)?;
    if a.common.json {
        let v: Vec<_> = all.iter().map(currency_json).collect();
        println!("{}", json!({ "currencies": v }));
    } else {
        for cur in &all {
            let issuer = if cur.issuer_key.is_empty() {
                "(numeraire)".to_owned()
            } else {
                hex::encode(&cur.issuer_key[..8])
            };
            println!("{:<12} {:<8} {issuer}", cur.id, cur.symbol);
        }
    }
    Ok(())
}

async fn open(o: OpenArgs) -> Result<(), Error> {
    let (base, quote) = o
        .pair
        .split_once('/')
        .ok_or_else(|| Error::Verify(format!("--pair is BASE/QUOTE, got {:?}", o.pair)))?;
    let c = connect(&o.common.router).await?;
    let round = fresh_round_id();
    let deadline_unix_ms = o
        .deadline
        .map(|s| veilgrid_kit::clock::now_ms() + s * 1000)
        .unwrap_or(0);
    c.open(&pb::OpenRoundRequest {
        round_id: round.to_vec().into(),
        base: base.into(),
        quote: quote.into(),
        levels: o.levels,
        p_min: o.pmin,
        ratio: o.ratio,
        mode: if o.malicious {
            pb::SecurityMode::Malicious.into()
        } else {
            pb::SecurityMode::SemiHonest.into()
        },
        deadline_unix_ms,
    })
    .await
    .map_err(err)?;
    let dir = trader_dir(&o.common).join("rounds");
    std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
    let path = dir.join(hex::encode(round));
    std::fs::write(&path, o.levels.to_string()).map_err(|e| io(&path, e))?;
    let id = hex::encode(round);
    if o.common.json {
        println!(
            "{}",
            json!({"round": id, "pair": o.pair, "levels": o.levels, "pmin": o.pmin,
                   "ratio": o.ratio, "deadline_unix_ms": deadline_unix_ms,
                   "mode": if o.malicious { "malicious" } else { "semi-honest" }})
        );
    } else {
        println!("opened round {id} ({} on {} levels)", o.pair, o.levels);
    }
    Ok(())
}

async fn submit(s: SubmitArgs) -> Result<(), Error> {
    let round = parse_round(&s.round)?;
    let (levels, orders) = match &s.orders {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| io(path, e))?;
            let f: OrdersFile = serde_json::from_str(&text)
                .map_err(|e| Error::Verify(format!("{}: {e}", path.display())))?;
            let mut v = Vec::with_capacity(f.orders.len());
            for o in f.orders {
                let side = parse_side(&o.side)?;
                v.push((
                    o.id,
                    Order {
                        side,
                        limit: o.limit,
                        qty: o.qty,
                    },
                ));
            }
            (f.levels, v)
        }
        None => {
            let (Some(side), Some(limit), Some(qty)) = (&s.side, s.limit, s.qty) else {
                return Err(Error::Verify(
                    "give --side, --limit and --qty, or --orders FILE".into(),
                ));
            };
            let levels = s
                .levels
                .or_else(|| owned_round(&s.common, &round))
                .ok_or_else(|| {
                    Error::Verify("give --levels for a round you did not open".into())
                })?;
            let id =
                s.id.clone()
                    .unwrap_or_else(|| hex::encode(&fresh_round_id()[..8]));
            (
                levels,
                vec![(
                    id,
                    Order {
                        side: parse_side(side)?,
                        limit,
                        qty,
                    },
                )],
            )
        }
    };
    let owner = owner_key(&s.common)?;
    let c = connect(&s.common.router).await?;
    let mut ids = Vec::with_capacity(orders.len());
    for (id, order) in &orders {
        let oid = OrderId::new(id.as_bytes()).map_err(|e| Error::Verify(e.to_string()))?;
        c.submit(round, levels, &oid, order, &owner.public())
            .await
            .map_err(err)?;
        ids.push(id.clone());
    }
    if s.common.json {
        println!("{}", json!({"round": s.round, "submitted": ids}));
    } else {
        println!("submitted {} order(s) to round {}", ids.len(), s.round);
    }
    Ok(())
}

async fn result(r: RoundArgs) -> Result<(), Error> {
    let round = parse_round(&r.round)?;
    let c = connect(&r.common.router).await?;
    if owned_round(&r.common, &round).is_some() {
        let s = c.status(0, round).await.map_err(err)?;
        if s.status == i32::from(pb::RoundStatus::Open) {
            c.close(round).await.map_err(err)?;
        }
    }
    let out = c
        .result(round, Duration::from_secs(r.wait))
        .await
        .map_err(err)?;
    // every accepted order's range proofs, against the hash the three nodes signed
    out.verify_proofs().map_err(err)?;
    let (cross, level, volume) = match out.outcome.result {
        veilgrid_matcher::veilgrid_mpc::ClearingResult::Trade { level, volume } => {
            (true, Some(level), volume)
        }
        veilgrid_matcher::veilgrid_mpc::ClearingResult::NoTrade => (false, None, 0),
    };
    if r.common.json {
        println!(
            "{}",
            json!({"round": r.round, "pair": format!("{}/{}", out.outcome.base, out.outcome.quote),
                   "cross": cross, "level": level, "rate": if cross { Some(out.rate) } else { None },
                   "volume": volume, "signatures": 3, "dropped": out.dropped.len(),
                   "range_proofs_verified": out.record.len(),
                   "drops": out.dropped.iter().zip(&out.drop_reasons)
                       .map(|(d, r)| json!({"order": String::from_utf8_lossy(d), "reason": r}))
                       .collect::<Vec<_>>()})
        );
    } else if cross {
        println!(
            "round {}: {}/{} crosses at level {} (rate {:.6}), volume {volume}; signed by all three nodes",
            r.round,
            out.outcome.base,
            out.outcome.quote,
            level.unwrap_or(0),
            out.rate
        );
    } else {
        println!("round {}: no trade; signed by all three nodes", r.round);
    }
    if !r.common.json {
        println!(
            "range proofs of {} accepted order(s) verified against the signed order-set hash",
            out.record.len()
        );
        for (d, why) in out.dropped.iter().zip(&out.drop_reasons) {
            println!("dropped {}: {why}", String::from_utf8_lossy(d));
        }
    }
    Ok(())
}

async fn fills(r: RoundArgs) -> Result<(), Error> {
    let round = parse_round(&r.round)?;
    let owner = owner_key(&r.common)?;
    let c = connect(&r.common.router).await?;
    let fills = c.fills(round, &owner).await.map_err(err)?;
    let view = |id: &OrderId| String::from_utf8_lossy(id.as_bytes()).into_owned();
    if r.common.json {
        let v: Vec<_> = fills
            .iter()
            .map(|(id, q)| json!({"id": view(id), "fill": q}))
            .collect();
        println!("{}", json!({"round": r.round, "fills": v}));
    } else {
        for (id, q) in &fills {
            println!("{:<20} {q}", view(id));
        }
    }
    Ok(())
}

pub(crate) async fn rates(a: RatesArgs) -> Result<(), Error> {
    let c = connect(&a.router).await?;
    let t = c.rates(&a.numeraire).await.map_err(err)?;
    let plotted = match &a.plot {
        Some(path) => {
            let s = plot::series(&t.numeraire, &t.history)?;
            Some(plot::draw(path, &t.numeraire, &s)?)
        }
        None => None,
    };
    if a.json {
        let rates: serde_json::Map<String, serde_json::Value> = t
            .rates
            .iter()
            .map(|r| (r.currency.clone(), json!(r.value)))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "numeraire": t.numeraire,
                "rates": rates,
                "cycles": t.cycles.iter().map(|c| json!({
                    "currencies": c.currencies, "log_residual": c.log_residual,
                })).collect::<Vec<_>>(),
                "history": t.history.iter().map(|h| json!({
                    "round": hex::encode(&h.round_id),
                    "pair": format!("{}/{}", h.base, h.quote),
                    "rate": h.rate, "volume": h.volume, "level": h.level,
                    "cleared_at_ms": h.cleared_at_ms,
                })).collect::<Vec<_>>(),
                "plot": a.plot.as_ref().map(|p| p.display().to_string()),
            }))
            .unwrap_or_default()
        );
    } else {
        println!("1 unit in {}:", t.numeraire);
        for r in &t.rates {
            println!("  {:<10} {:.6}", r.currency, r.value);
        }
        for c in &t.cycles {
            println!(
                "  cycle {}: residual {:+.6}",
                c.currencies.join(" → "),
                c.log_residual
            );
        }
        if let (Some(path), Some(n)) = (&a.plot, plotted) {
            println!(
                "  chart of {n} point(s) over {} round(s): {}",
                t.history.len(),
                path.display()
            );
        }
    }
    Ok(())
}
