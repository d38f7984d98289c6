//! `veilgrid providers`.

use serde_json::json;
use veilgrid_core::protocol::ProtocolId;
use veilgrid_proto::grid::v1::ProviderStatus;

use super::RouterArg;
use crate::Error;

#[derive(Debug, clap::Args)]
pub(crate) struct ProvidersArgs {
    #[command(flatten)]
    router: RouterArg,
    /// Only providers of this protocol name (e.g. veilgrid/echo/v1).
    #[arg(long)]
    protocol: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// The JSON shape of one provider (stable; scripts depend on it).
pub(crate) fn provider_json(p: &ProviderStatus) -> serde_json::Value {
    let info = p.info.clone().unwrap_or_default();
    json!({
        "name": info.name,
        "provider_id": hex::encode(&info.provider_id),
        "endpoint": info.endpoint,
        "serving": p.serving,
        "currency": info.currency,
        "capacity": info.capacity,
        "lease_expires_at_ms": p.lease_expires_at_ms,
        "ewma_latency_ms": p.ewma_latency_ms,
        "in_flight": p.in_flight,
        "protocols": p.stats.iter().map(|s| json!({
            "name": s.protocol_name,
            "protocol_id": hex::encode(&s.protocol_id),
            "price": s.price,
            "kept": s.kept,
            "broken": s.broken,
            "reputation": s.reputation,
        })).collect::<Vec<_>>(),
    })
}

pub(crate) async fn run(a: ProvidersArgs) -> Result<(), Error> {
    let mut c = a.router.connect().await?;
    let filter = a.protocol.as_deref().map(ProtocolId::from_name);
    let ps = c.providers(filter.as_ref()).await?;
    if a.json {
        let v: Vec<_> = ps.iter().map(provider_json).collect();
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(());
    }
    if ps.is_empty() {
        println!("no providers registered at {}", c.addr());
    }
    println!(
        "{:<10} {:<18} {:<8} {:<26} {:>6} {:>7} {:>7} {:>6} {:>9}",
        "NAME", "PROVIDER", "SERVING", "PROTOCOL", "PRICE", "KEPT", "BROKEN", "REP", "EWMA ms"
    );
    for p in &ps {
        let info = p.info.clone().unwrap_or_default();
        for s in &p.stats {
            println!(
                "{:<10} {:<18} {:<8} {:<26} {:>6} {:>7} {:>7} {:>6.3} {:>9.2}",
                info.name,
                hex::encode(&info.provider_id[..8.min(info.provider_id.len())]),
                if p.serving { "yes" } else { "no" },
                s.protocol_name,
                format!("{} {}", s.price, info.currency),
                s.kept,
                s.broken,
                s.reputation,
                p.ewma_latency_ms
            );
        }
    }
    Ok(())
}
