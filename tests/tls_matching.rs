//! The three matching nodes under mutual TLS (issue 7): their node-to-node links run
//! over TLS and each node must present its own party's certificate from the Veilgrid
//! CA; traders reach them through a TLS router, and a trader's rounds, orders and fills
//! belong to the identity of its certificate. Every grid runs in-process on loopback
//! ports chosen by the OS, with a fresh CA in a temporary directory.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{path::Path, time::Duration};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;
use veilgrid::grid::{self, GridOptions, LocalGrid};
use veilgrid_core::seal::SealKeyPair;
use veilgrid_kit::{auth::Role, tls::Security, tls_ca};
use veilgrid_matcher::{
    MatchError,
    client::{MatchClient, fresh_round_id},
    currency::sign_registration,
    veilgrid_mpc::{ClearingResult, Order, OrderId, Side},
};
use veilgrid_proto::{
    grid::v1::{ListProvidersRequest, router_client::RouterClient},
    matching::v1::{
        self as pb, NodeFrame, NodeHello, node_frame::Part, node_to_node_client::NodeToNodeClient,
    },
};

/// A TLS grid (router, echo, FHE, prover) and the three matching nodes, each with its
/// own `matcher-<i>` certificate.
async fn tls_matching_grid(dir: &Path) -> LocalGrid {
    let g = grid::start(GridOptions {
        tls: Some(dir.to_path_buf()),
        ..GridOptions::default()
    })
    .await
    .expect("a TLS grid starts");
    grid::start_matching(
        &g.router_url,
        None,
        "VG",
        g.shutdown.clone(),
        g.tls.as_deref(),
    )
    .await
    .expect("the matching nodes start under mutual TLS");
    g
}

fn client_security(g: &LocalGrid, name: &str) -> Security {
    grid::security_for(g.tls.as_deref(), name, Role::Client).unwrap()
}

/// The trader `name` (a client certificate), once the router lists the three nodes.
async fn trader(g: &LocalGrid, name: &str) -> MatchClient {
    let sec = client_security(g, name);
    for _ in 0..200 {
        if let Ok(c) = MatchClient::discover_secure(&g.router_url, &sec).await {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the router never listed the three matching nodes");
}

fn denied<T: std::fmt::Debug>(r: Result<T, MatchError>, what: &str) {
    match r {
        Err(MatchError::Remote { status, .. }) if status.code() == Code::PermissionDenied => {}
        other => panic!("{what}: expected PERMISSION_DENIED, got {other:?}"),
    }
}

fn open_req(round: [u8; 16]) -> pb::OpenRoundRequest {
    pb::OpenRoundRequest {
        round_id: Bytes::copy_from_slice(&round),
        base: "ALC".into(),
        quote: "VG".into(),
        levels: 8,
        p_min: 0.25,
        ratio: 2.0,
        mode: pb::SecurityMode::SemiHonest.into(),
        deadline_unix_ms: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_clears_over_mutual_tls_and_orders_belong_to_their_trader() {
    let dir = tempfile::tempdir().unwrap();
    let g = tls_matching_grid(dir.path()).await;
    assert!(g.router_url.starts_with("https://"), "{}", g.router_url);
    let alice = trader(&g, "alice").await;
    let bob = trader(&g, "bob").await;
    let issuer = veilgrid_core::sign::SigningIdentity::generate();
    alice
        .register_currency(&sign_registration(&issuer, "ALC", "ALC").unwrap())
        .await
        .unwrap();

    let round = fresh_round_id();
    alice.open(&open_req(round)).await.unwrap();
    // the round id is alice's: bob cannot open it again
    denied(
        bob.open(&open_req(round)).await,
        "bob re-opening alice's round",
    );
    let alice_key = SealKeyPair::generate();
    let buy = OrderId::new(b"alice-buy").unwrap();
    let sell = OrderId::new(b"alice-sell").unwrap();
    let order = |side| Order {
        side,
        limit: 3,
        qty: 10,
    };
    alice
        .submit(round, 8, &buy, &order(Side::Buy), &alice_key.public())
        .await
        .unwrap();
    alice
        .submit(round, 8, &sell, &order(Side::Sell), &alice_key.public())
        .await
        .unwrap();
    // bob cannot overwrite alice's order, nor submit with the key her fills are sealed to
    let bob_key = SealKeyPair::generate();
    denied(
        bob.submit(round, 8, &buy, &order(Side::Sell), &bob_key.public())
            .await,
        "bob overwriting alice's order",
    );
    denied(
        bob.submit(
            round,
            8,
            &OrderId::new(b"bob-1").unwrap(),
            &order(Side::Sell),
            &alice_key.public(),
        )
        .await,
        "bob submitting with alice's fill key",
    );
    // bob trades in alice's round under his own key: that is allowed
    let bob_sell = OrderId::new(b"bob-sell").unwrap();
    bob.submit(round, 8, &bob_sell, &order(Side::Sell), &bob_key.public())
        .await
        .unwrap();
    // only the round's opener closes (cancels) it
    denied(bob.close(round).await, "bob closing alice's round");
    alice.close(round).await.unwrap();
    // the MPC ran over the nodes' TLS links: all three signed the same outcome
    let out = alice.result(round, Duration::from_secs(60)).await.unwrap();
    assert!(
        matches!(
            out.outcome.result,
            ClearingResult::Trade {
                level: 3,
                volume: 10
            }
        ),
        "{:?}",
        out.outcome.result
    );
    // the outcome is public; the fills are not: bob cannot ask for alice's
    let bob_view = bob.result(round, Duration::from_secs(5)).await.unwrap();
    assert_eq!(bob_view.bytes, out.bytes);
    denied(
        bob.fills(round, &alice_key).await,
        "bob reading alice's fills",
    );
    let mut fills = alice.fills(round, &alice_key).await.unwrap();
    fills.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let total: u64 = fills.iter().map(|(_, q)| q).sum();
    assert_eq!(fills.len(), 2, "{fills:?}");
    assert!(total <= 20 && fills[0].1 == 10, "{fills:?}");
    assert_eq!(bob.fills(round, &bob_key).await.unwrap().len(), 1);
    g.stop().await;
}

/// The URL of the node registered as `matcher-<party>`.
async fn node_url(g: &LocalGrid, party: u8) -> String {
    let sec = client_security(g, "lister");
    let mut r = RouterClient::new(sec.channel(&g.router_url).unwrap());
    let list = r
        .list_providers(ListProvidersRequest::default())
        .await
        .unwrap()
        .into_inner();
    list.providers
        .iter()
        .filter_map(|p| p.info.as_ref())
        .find(|i| i.name == veilgrid_matcher::party_name(party))
        .map(|i| i.endpoint.clone())
        .expect("the node is registered")
}

/// Open a node-to-node stream to `url` as `security`, saying hello as `from_party`
/// (with a signature that is not the party's: the certificate check comes first).
async fn hello_as(url: &str, security: &Security, from_party: u32) -> Result<(), tonic::Status> {
    let channel = security
        .endpoint(url, None)
        .unwrap()
        .connect()
        .await
        .map_err(|e| tonic::Status::unavailable(format!("connect: {e}")))?;
    let (tx, rx) = mpsc::channel(1);
    tx.send(NodeFrame {
        part: Some(Part::Hello(NodeHello {
            round_id: Bytes::copy_from_slice(&[9u8; 16]),
            from_party,
            signature: Bytes::from(vec![0u8; 64]),
        })),
    })
    .await
    .unwrap();
    let r = NodeToNodeClient::new(channel)
        .exchange(ReceiverStream::new(rx))
        .await
        .map(|_| ());
    drop(tx);
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_must_present_its_own_partys_certificate_from_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let g = tls_matching_grid(dir.path()).await;
    let _ = trader(&g, "alice").await;
    let node0 = node_url(&g, 0).await;
    assert!(node0.starts_with("https://"), "{node0}");
    let tls = g.tls.as_deref();

    // node 2's certificate claiming to be party 1: refused before any signature check
    let as2 = grid::service_security(tls, "matcher-2").unwrap();
    let e = hello_as(&node0, &as2, 1).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e}");
    // a client certificate cannot speak for a node either
    let e = hello_as(&node0, &client_security(&g, "alice"), 1)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e}");
    // party 1's certificate passes the certificate check; the hello's signature is
    // still checked against party 1's key
    let as1 = grid::service_security(tls, "matcher-1").unwrap();
    let e = hello_as(&node0, &as1, 1).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e}");
    assert!(e.message().contains("signature"), "{e}");

    // a certificate named matcher-1 from another CA does not get through the handshake
    let other = tempfile::tempdir().unwrap();
    tls_ca::init(other.path()).unwrap();
    tls_ca::ensure_issued(other.path(), "matcher-1", Role::Service).unwrap();
    let foreign = Security::mtls_from_dir(other.path(), "matcher-1").unwrap();
    let e = hello_as(&node0, &foreign, 1).await.unwrap_err();
    assert!(
        !matches!(e.code(), Code::PermissionDenied | Code::Unauthenticated),
        "the handshake fails, the service is never reached: {e}"
    );
    // and plaintext is no way in
    let e = hello_as(
        &node0.replace("https://", "http://"),
        &Security::Plaintext,
        1,
    )
    .await
    .unwrap_err();
    assert!(!matches!(e.code(), Code::Ok), "{e}");
    g.stop().await;
}
