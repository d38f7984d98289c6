//! Three nodes in one process on loopback (for `veilgrid up`, demos and tests): each
//! on its own port with its own identity, registered with the router.

use std::{net::SocketAddr, path::Path, sync::Arc, time::Duration};

use tokio::{net::TcpListener, task::JoinHandle};
use veilgrid_kit::{
    Shutdown, identity::Identity, provider::ProviderConfig, registration::RegistrationConfig,
};
use veilgrid_mpc::NodeKeys;

use crate::{MatchError, MatcherConfig, NodeAddress};

/// Start three nodes on free loopback ports, registered with `router_url`; identities
/// are kept under `<data_dir>/matcher-<i>` when a data directory is given. The
/// pairwise PRF seeds are drawn afresh (the three nodes restart together).
pub async fn start(
    router_url: &str,
    data_dir: Option<&Path>,
    numeraire: &str,
    shutdown: Shutdown,
) -> Result<Vec<JoinHandle<Result<(), MatchError>>>, MatchError> {
    let mut listeners = Vec::with_capacity(3);
    let mut addrs = Vec::with_capacity(3);
    let mut ids = Vec::with_capacity(3);
    for i in 0..3 {
        let l = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .map_err(|e| MatchError::Peer {
                party: i as u8,
                reason: format!("binding a port: {e}"),
            })?;
        addrs.push(l.local_addr().map_err(|e| MatchError::Peer {
            party: i as u8,
            reason: e.to_string(),
        })?);
        listeners.push(l);
        ids.push(Arc::new(match data_dir {
            Some(d) => Identity::load_or_create(&d.join(format!("matcher-{i}")))?,
            None => Identity::generate(),
        }));
    }
    let keys = NodeKeys::generate_all();
    let nodes: Vec<NodeAddress> = (0..3)
        .map(|j| NodeAddress {
            url: format!("http://{}", addrs[j]),
            provider_id: ids[j].provider_id(),
        })
        .collect();
    let nodes: [NodeAddress; 3] = nodes
        .try_into()
        .map_err(|_| MatchError::Aborted("three nodes".into()))?;
    let mut tasks = Vec::with_capacity(3);
    for (i, l) in listeners.into_iter().enumerate() {
        let config = MatcherConfig {
            identity: ids[i].clone(),
            keys: keys[i].clone(),
            nodes: nodes.clone(),
            peer_timeout: Duration::from_secs(30),
            provider: ProviderConfig {
                name: format!("matcher-{i}"),
                ..ProviderConfig::default()
            },
            register: Some(RegistrationConfig {
                router: router_url.to_owned(),
                endpoint: nodes[i].url.clone(),
                ttl: Duration::from_secs(30),
            }),
            numeraire: numeraire.to_owned(),
            data_dir: data_dir.map(|d| d.join(format!("matcher-{i}"))),
            fault: None,
        };
        tasks.push(tokio::spawn(crate::run(l, shutdown.clone(), config)));
    }
    Ok(tasks)
}
