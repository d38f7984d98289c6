//! Three nodes in one process on loopback (for `veilgrid up`, demos and tests): each
//! on its own port with its own identity, registered with the router; plaintext, or
//! mutual TLS with each node's certificate ([`start_secure`]).

use std::{net::SocketAddr, path::Path, sync::Arc, time::Duration};

use tokio::{net::TcpListener, task::JoinHandle};
use veilgrid_kit::{
    Shutdown, identity::Identity, provider::ProviderConfig, registration::RegistrationConfig,
    tls::Security,
};
use veilgrid_mpc::NodeKeys;

use crate::{MatchError, MatcherConfig, NodeAddress, party_name};

/// Start three nodes on free loopback ports, registered with `router_url`; identities
/// are kept under `<data_dir>/matcher-<i>` when a data directory is given. The
/// pairwise PRF seeds are drawn afresh (the three nodes restart together).
pub async fn start(
    router_url: &str,
    data_dir: Option<&Path>,
    numeraire: &str,
    shutdown: Shutdown,
) -> Result<Vec<JoinHandle<Result<(), MatchError>>>, MatchError> {
    let plain = [
        Security::Plaintext,
        Security::Plaintext,
        Security::Plaintext,
    ];
    start_secure(router_url, data_dir, numeraire, shutdown, plain).await
}

/// [`start`] with `security[i]` for node `i` (under mutual TLS: the certificate of
/// `matcher-<i>`, see [`party_name`]; the nodes dial each other and the router at
/// `https://` URLs).
pub async fn start_secure(
    router_url: &str,
    data_dir: Option<&Path>,
    numeraire: &str,
    shutdown: Shutdown,
    security: [Security; 3],
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
            url: security[j].url(addrs[j]),
            provider_id: ids[j].provider_id(),
        })
        .collect();
    let nodes: [NodeAddress; 3] = nodes
        .try_into()
        .map_err(|_| MatchError::Aborted("three nodes".into()))?;
    let mut tasks = Vec::with_capacity(3);
    for ((i, l), security) in listeners.into_iter().enumerate().zip(security) {
        let config = MatcherConfig {
            identity: ids[i].clone(),
            keys: keys[i].clone(),
            nodes: nodes.clone(),
            peer_timeout: Duration::from_secs(30),
            provider: ProviderConfig {
                name: party_name(i as u8),
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
            security,
        };
        tasks.push(tokio::spawn(crate::run(l, shutdown.clone(), config)));
    }
    Ok(tasks)
}
