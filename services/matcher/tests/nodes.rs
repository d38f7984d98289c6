//! Three matching nodes and a router over real gRPC on port 0: the issue's test
//! vector through the whole stack, and a node killed mid-round.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{net::SocketAddr, sync::Arc, time::Duration};

use tokio::net::TcpListener;
use veilgrid_core::seal::SealKeyPair;
use veilgrid_kit::{
    Shutdown,
    identity::Identity,
    provider::ProviderConfig,
    registration::{RegistrationConfig, router_channel},
};
use veilgrid_matcher::{
    Fault, FaultAction, MatchError, MatcherConfig, NodeAddress,
    client::{MatchClient, NodeKey},
    rates::{Clearing, fit},
};
use veilgrid_mpc::{
    ClearingResult, NodeKeys, Order, OrderId, Side,
    plain::{clear_plain, test_vector_book},
};
use veilgrid_proto::{
    grid::v1::{ListProvidersRequest, router_client::RouterClient},
    matching::v1 as pb,
};
use veilgrid_router::RouterConfig;

struct Grid {
    router_url: String,
    shutdown: Shutdown,
    identities: [Arc<Identity>; 3],
    keys: [NodeKeys; 3],
    addrs: [SocketAddr; 3],
}

async fn bind() -> TcpListener {
    TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap()
}

impl Grid {
    async fn start() -> (Grid, [TcpListener; 3]) {
        let (g, l, _) = Self::start_with(|_| RouterConfig::default()).await;
        (g, l)
    }

    /// A router with the settings `router` makes from the three node identities (the
    /// test timings are set on top), and a handle on its state.
    async fn start_with(
        router: impl FnOnce(&[Arc<Identity>; 3]) -> RouterConfig,
    ) -> (Grid, [TcpListener; 3], Arc<veilgrid_router::State>) {
        let shutdown = Shutdown::new();
        let identities = [0, 1, 2].map(|_| Arc::new(Identity::generate()));
        let rl = bind().await;
        let router_url = format!("http://{}", rl.local_addr().unwrap());
        let config = RouterConfig {
            health_interval: Duration::from_millis(200),
            min_ttl: Duration::from_millis(100),
            ..router(&identities)
        };
        let state = veilgrid_router::State::open(config).unwrap();
        tokio::spawn(veilgrid_router::serve(rl, shutdown.clone(), state.clone()));
        let listeners = [bind().await, bind().await, bind().await];
        let addrs = [0, 1, 2].map(|i| listeners[i].local_addr().unwrap());
        (
            Grid {
                router_url,
                shutdown,
                identities,
                keys: NodeKeys::generate_all(),
                addrs,
            },
            listeners,
            state,
        )
    }

    fn config(&self, i: usize) -> MatcherConfig {
        MatcherConfig {
            identity: self.identities[i].clone(),
            keys: self.keys[i].clone(),
            nodes: [0, 1, 2].map(|j| NodeAddress {
                url: format!("http://{}", self.addrs[j]),
                provider_id: self.identities[j].provider_id(),
            }),
            peer_timeout: Duration::from_secs(10),
            provider: ProviderConfig {
                name: format!("matcher-{i}"),
                ..ProviderConfig::default()
            },
            register: Some(RegistrationConfig {
                router: self.router_url.clone(),
                endpoint: format!("http://{}", self.addrs[i]),
                ttl: Duration::from_secs(30),
            }),
            numeraire: "BOB".into(),
            data_dir: None,
            fault: None,
            security: veilgrid_kit::tls::Security::Plaintext,
        }
    }

    fn client(&self) -> MatchClient {
        MatchClient::new(
            &self.router_url,
            [0, 1, 2].map(|i| NodeKey {
                provider_id: self.identities[i].provider_id(),
                seal_key: self.identities[i].seal_public(),
            }),
        )
        .unwrap()
    }

    /// Wait until the router lists `n` serving providers.
    async fn wait_registered(&self, n: usize) {
        let mut r = RouterClient::new(router_channel(&self.router_url).unwrap());
        for _ in 0..200 {
            if let Ok(l) = r
                .list_providers(ListProvidersRequest::default())
                .await
                .map(|r| r.into_inner())
                && l.providers.iter().filter(|p| p.serving).count() >= n
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("providers did not register");
    }
}

/// A node on a runtime of its own, so the test can kill it outright.
fn killable(listener: std::net::TcpListener, config: MatcherConfig) -> tokio::runtime::Runtime {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.spawn(async move {
        let l = TcpListener::from_std(listener).unwrap();
        let _ = veilgrid_matcher::run(l, Shutdown::new(), config).await;
    });
    rt
}

/// Register personal currencies, each signed by a fresh issuer.
async fn register(c: &MatchClient, ids: &[&str]) {
    for id in ids {
        let issuer = veilgrid_core::sign::SigningIdentity::generate();
        let cur = veilgrid_matcher::currency::sign_registration(&issuer, id, id).unwrap();
        assert!(c.register_currency(&cur).await.unwrap());
        assert!(!c.register_currency(&cur).await.unwrap(), "idempotent");
    }
}

fn open_req(round: [u8; 16], levels: u32) -> pb::OpenRoundRequest {
    pb::OpenRoundRequest {
        round_id: round.to_vec().into(),
        base: "ALC".into(),
        quote: "BOB".into(),
        levels,
        p_min: 0.5,
        ratio: 1.05,
        mode: pb::SecurityMode::SemiHonest.into(),
        deadline_unix_ms: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_test_vector_through_router_and_three_nodes() {
    let (g, listeners) = Grid::start().await;
    for (i, l) in listeners.into_iter().enumerate() {
        tokio::spawn(veilgrid_matcher::run(l, g.shutdown.clone(), g.config(i)));
    }
    g.wait_registered(3).await;
    // the client finds the three nodes through the router alone
    let c = MatchClient::discover(&g.router_url).await.unwrap();
    for i in 0..3 {
        assert_eq!(c.nodes()[i].provider_id, g.identities[i].provider_id());
    }
    let round = [7u8; 16];
    register(&c, &["ALC"]).await;
    c.open(&open_req(round, 64)).await.unwrap();
    let book = test_vector_book();
    // the first buyer and the first seller are agents of their own; the rest share one
    let first_buyer = SealKeyPair::generate();
    let first_seller = SealKeyPair::generate();
    let others = SealKeyPair::generate();
    let first_sell = book.iter().position(|o| o.side == Side::Sell).unwrap();
    for (i, o) in book.iter().enumerate() {
        let owner = match i {
            0 => &first_buyer,
            i if i == first_sell => &first_seller,
            _ => &others,
        };
        let id = OrderId::new(format!("o{i}").as_bytes()).unwrap();
        c.submit(round, 64, &id, o, &owner.public()).await.unwrap();
    }
    c.close(round).await.unwrap();
    let out = c.result(round, Duration::from_secs(60)).await.unwrap();
    assert_eq!(
        out.outcome.result,
        ClearingResult::Trade {
            level: 33,
            volume: 10937
        }
    );
    assert_eq!(out.outcome.base, "ALC");
    assert!((out.rate - 0.5 * 1.05f64.powi(33)).abs() < 1e-9);
    assert!(out.dropped.is_empty());

    let fb = c.fills(round, &first_buyer).await.unwrap();
    assert_eq!(fb.len(), 1);
    assert_eq!(fb[0], (OrderId::new(b"o0").unwrap(), 0));
    let fs = c.fills(round, &first_seller).await.unwrap();
    assert_eq!(fs.len(), 1);
    assert_eq!(fs[0].1, 4);
    // every fill against the plaintext rule
    let want = clear_plain(64, &book).fills;
    let rest = c.fills(round, &others).await.unwrap();
    assert_eq!(rest.len(), book.len() - 2);
    for (id, q) in &rest {
        let i: usize = std::str::from_utf8(id.as_bytes()).unwrap()[1..]
            .parse()
            .unwrap();
        assert_eq!(*q, want[i], "order {i}");
    }
    // a stranger's key opens nothing
    assert!(
        c.fills(round, &SealKeyPair::generate())
            .await
            .unwrap()
            .is_empty()
    );

    // the cleared round feeds the rate table
    let rates = fit(
        "BOB",
        &[Clearing {
            base: "ALC".into(),
            quote: "BOB".into(),
            rate: out.rate,
            volume: 10937.0,
        }],
    )
    .unwrap();
    assert!((rates.value("ALC").unwrap() - out.rate).abs() < 1e-9);
    // and the nodes publish it with the history
    let published = c.rates("").await.unwrap();
    assert_eq!(published.numeraire, "BOB");
    assert_eq!(published.history.len(), 1);
    assert_eq!(published.history[0].volume, 10937);
    let alc = published
        .rates
        .iter()
        .find(|r| r.currency == "ALC")
        .unwrap();
    assert!((alc.value - out.rate).abs() < 1e-9);
    assert!(published.cycles.is_empty());
    g.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_with_clear_codes() {
    let (g, listeners) = Grid::start().await;
    for (i, l) in listeners.into_iter().enumerate() {
        tokio::spawn(veilgrid_matcher::run(l, g.shutdown.clone(), g.config(i)));
    }
    g.wait_registered(3).await;
    let c = g.client();
    let round = [9u8; 16];
    let code = |e: MatchError| match e {
        MatchError::Remote { status, .. } => status.code(),
        other => panic!("unexpected {other}"),
    };
    // rounds only for registered currencies
    assert_eq!(
        code(c.open(&open_req(round, 8)).await.unwrap_err()),
        tonic::Code::FailedPrecondition
    );
    register(&c, &["ALC"]).await;
    // an id belongs to its first issuer; the numeraire is taken by configuration
    for id in ["ALC", "BOB"] {
        let thief = veilgrid_core::sign::SigningIdentity::generate();
        let cur = veilgrid_matcher::currency::sign_registration(&thief, id, id).unwrap();
        assert_eq!(
            code(c.register_currency(&cur).await.unwrap_err()),
            tonic::Code::AlreadyExists
        );
    }
    let listed: Vec<String> = c
        .currencies()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(listed, ["ALC", "BOB"]);
    // P = 0 and one currency twice
    assert_eq!(
        code(c.open(&open_req(round, 0)).await.unwrap_err()),
        tonic::Code::InvalidArgument
    );
    let mut same = open_req(round, 8);
    same.quote = "ALC".into();
    assert_eq!(
        code(c.open(&same).await.unwrap_err()),
        tonic::Code::InvalidArgument
    );
    c.open(&open_req(round, 8)).await.unwrap();
    assert_eq!(
        code(c.open(&open_req(round, 8)).await.unwrap_err()),
        tonic::Code::AlreadyExists
    );
    let owner = SealKeyPair::generate();
    let id = OrderId::new(b"a").unwrap();
    let buy = Order {
        side: Side::Buy,
        limit: 3,
        qty: 10,
    };
    c.submit(round, 8, &id, &buy, &owner.public())
        .await
        .unwrap();
    // duplicate id
    assert_eq!(
        code(
            c.submit(round, 8, &id, &buy, &owner.public())
                .await
                .unwrap_err()
        ),
        tonic::Code::InvalidArgument
    );
    // a limit outside the grid never leaves the client
    let out_of_grid = Order { limit: 8, ..buy };
    assert!(matches!(
        c.submit(
            round,
            8,
            &OrderId::new(b"b").unwrap(),
            &out_of_grid,
            &owner.public()
        )
        .await,
        Err(MatchError::Mpc(_))
    ));
    // one side empty: no trade, nothing else revealed, the fill is 0
    c.close(round).await.unwrap();
    let out = c.result(round, Duration::from_secs(30)).await.unwrap();
    assert_eq!(out.outcome.result, ClearingResult::NoTrade);
    assert_eq!(c.fills(round, &owner).await.unwrap()[0].1, 0);
    // closed rounds take no more orders
    assert_eq!(
        code(
            c.submit(
                round,
                8,
                &OrderId::new(b"c").unwrap(),
                &buy,
                &owner.public()
            )
            .await
            .unwrap_err()
        ),
        tonic::Code::FailedPrecondition
    );
    // an unknown round
    assert_eq!(
        code(c.status(0, [1; 16]).await.unwrap_err()),
        tonic::Code::NotFound
    );
    g.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_aborts_the_round_which_reruns_after_it_returns() {
    let (g, listeners) = Grid::start().await;
    let [l0, l1, l2] = listeners;
    tokio::spawn(veilgrid_matcher::run(l0, g.shutdown.clone(), g.config(0)));
    tokio::spawn(veilgrid_matcher::run(l1, g.shutdown.clone(), g.config(1)));
    let rt2 = killable(l2.into_std().unwrap(), g.config(2));
    g.wait_registered(3).await;
    let c = g.client();
    let book = [
        Order {
            side: Side::Buy,
            limit: 5,
            qty: 10,
        },
        Order {
            side: Side::Sell,
            limit: 2,
            qty: 7,
        },
    ];
    let owner = SealKeyPair::generate();
    let submit_all = |round: [u8; 16]| {
        let c = c.clone();
        let pk = owner.public();
        async move {
            // idempotent; a restarted node has forgotten its registrations
            let issuer = veilgrid_core::sign::SigningIdentity::from_secret_bytes(&[5; 32]);
            let alc = veilgrid_matcher::currency::sign_registration(&issuer, "ALC", "A").unwrap();
            c.register_currency(&alc).await.unwrap();
            c.open(&open_req(round, 8)).await.unwrap();
            for (i, o) in book.iter().enumerate() {
                let id = OrderId::new(format!("o{i}").as_bytes()).unwrap();
                c.submit(round, 8, &id, o, &pk).await.unwrap();
            }
        }
    };
    let round = [3u8; 16];
    submit_all(round).await;
    // node 2 dies with the book full: connections drop, no deregistration
    rt2.shutdown_background();
    assert!(c.close(round).await.is_err(), "node 2 cannot be closed");
    let err = c.result(round, Duration::from_secs(30)).await.unwrap_err();
    assert!(matches!(err, MatchError::Aborted(_)), "{err}");
    for p in 0..2 {
        let s = c.status(p, round).await.unwrap();
        assert_eq!(s.status, i32::from(pb::RoundStatus::Aborted));
        assert!(s.reason.contains("node 2"), "{}", s.reason);
        assert!(s.outcome.is_empty() && s.signatures.is_empty() && !s.cross);
        assert_eq!(s.volume, 0);
    }
    assert!(c.fills(round, &owner).await.is_err());

    // node 2 returns (same address, identity and seeds; its old rounds are gone)
    let l2 = std::net::TcpListener::bind(g.addrs[2]).unwrap();
    l2.set_nonblocking(true).unwrap();
    let _rt2 = killable(l2, g.config(2));
    tokio::time::sleep(Duration::from_millis(300)).await;
    g.wait_registered(3).await;
    let again = [4u8; 16];
    submit_all(again).await;
    c.close(again).await.unwrap();
    let out = c.result(again, Duration::from_secs(30)).await.unwrap();
    assert_eq!(
        out.outcome.result,
        ClearingResult::Trade {
            level: 2,
            volume: 7
        }
    );
    let mut fills = c.fills(again, &owner).await.unwrap();
    fills.sort();
    assert_eq!(fills.iter().map(|f| f.1).collect::<Vec<_>>(), vec![7, 7]);
    g.shutdown.cancel();
    _rt2.shutdown_background();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inconsistent_sharing_drops_the_order_malicious_mode_and_deadline() {
    let (g, listeners) = Grid::start().await;
    for (i, l) in listeners.into_iter().enumerate() {
        tokio::spawn(veilgrid_matcher::run(l, g.shutdown.clone(), g.config(i)));
    }
    g.wait_registered(3).await;
    let c = g.client();
    register(&c, &["ALC"]).await;
    let round = [11u8; 16];
    let mut req = open_req(round, 16);
    req.mode = pb::SecurityMode::Malicious.into();
    c.open(&req).await.unwrap();
    let owner = SealKeyPair::generate();
    let buy = Order {
        side: Side::Buy,
        limit: 9,
        qty: 50,
    };
    let sell = Order {
        side: Side::Sell,
        limit: 4,
        qty: 20,
    };
    let (b, s) = (
        OrderId::new(b"buy").unwrap(),
        OrderId::new(b"sell").unwrap(),
    );
    c.submit(round, 16, &b, &buy, &owner.public())
        .await
        .unwrap();
    // a client that shares inconsistently: node 0 gets a share of one sharing,
    // nodes 1 and 2 of another, so the two holders of a component disagree
    let x = veilgrid_mpc::share_order(round, &s, &sell, 16).unwrap();
    let y = veilgrid_mpc::share_order(round, &s, &sell, 16).unwrap();
    let mixed = [x[0].clone(), y[1].clone(), y[2].clone()];
    c.submit_shares(round, &s, &mixed, &owner.public())
        .await
        .unwrap();
    let late = OrderId::new(b"sell2").unwrap();
    c.submit(round, 16, &late, &sell, &owner.public())
        .await
        .unwrap();
    // a client whose statement is another order's (its range proofs are bound to that
    // order's id): every node refuses the proofs and drops the order
    let forged = OrderId::new(b"forged").unwrap();
    let other = veilgrid_mpc::share_order(round, &late, &sell, 16).unwrap();
    let mut f = veilgrid_mpc::share_order(round, &forged, &sell, 16).unwrap();
    for p in f.iter_mut() {
        p.statement = other[0].statement.clone();
    }
    c.submit_shares(round, &forged, &f, &owner.public())
        .await
        .unwrap();
    c.close(round).await.unwrap();
    let out = c.result(round, Duration::from_secs(60)).await.unwrap();
    // the inconsistent and the forged orders are dropped, not the round
    assert_eq!(
        out.dropped,
        vec![
            bytes::Bytes::from_static(b"sell"),
            bytes::Bytes::from_static(b"forged")
        ]
    );
    assert_eq!(
        out.drop_reasons,
        vec!["inconsistent sharing", "range proof does not verify"]
    );
    // the public record: the two accepted orders' statements, covered by the signatures
    assert_eq!(out.record.len(), 2);
    out.verify_proofs().unwrap();
    assert_eq!(
        out.outcome.result,
        ClearingResult::Trade {
            level: 4,
            volume: 20
        }
    );
    let fills = c.fills(round, &owner).await.unwrap();
    assert_eq!(fills.len(), 2, "no fill for a dropped order");
    assert!(fills.contains(&(b.clone(), 20)) && fills.contains(&(late, 20)));

    // orders after the deadline are refused
    let r2 = [12u8; 16];
    let mut req = open_req(r2, 16);
    req.deadline_unix_ms = veilgrid_kit::clock::now_ms() + 300;
    c.open(&req).await.unwrap();
    c.submit(r2, 16, &b, &buy, &owner.public()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    match c.submit(r2, 16, &s, &sell, &owner.public()).await {
        Err(MatchError::Remote { status, .. }) => {
            assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status}")
        }
        other => panic!("late order accepted: {other:?}"),
    }
    g.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_three_nodes_keep_identities_in_the_data_dir() {
    let (g, _unused) = Grid::start().await;
    let dir = tempfile::tempdir().unwrap();
    let sd = g.shutdown.child_token();
    veilgrid_matcher::local::start(&g.router_url, Some(dir.path()), "VG", sd.clone())
        .await
        .unwrap();
    g.wait_registered(3).await;
    let c = MatchClient::discover(&g.router_url).await.unwrap();
    for i in 0..3 {
        let kept = Identity::load_or_create(&dir.path().join(format!("matcher-{i}"))).unwrap();
        assert_eq!(kept.provider_id(), c.nodes()[i].provider_id);
    }
    let round = [21u8; 16];
    register(&c, &["ALC", "BOB"]).await;
    c.open(&open_req(round, 4)).await.unwrap();
    let owner = SealKeyPair::generate();
    for (i, o) in [(Side::Buy, 3, 5), (Side::Sell, 1, 9)]
        .into_iter()
        .enumerate()
    {
        let order = Order {
            side: o.0,
            limit: o.1,
            qty: o.2,
        };
        let id = OrderId::new(format!("x{i}").as_bytes()).unwrap();
        c.submit(round, 4, &id, &order, &owner.public())
            .await
            .unwrap();
    }
    c.close(round).await.unwrap();
    let out = c.result(round, Duration::from_secs(30)).await.unwrap();
    assert_eq!(
        out.outcome.result,
        ClearingResult::Trade {
            level: 1,
            volume: 5
        }
    );
    g.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_submitters_get_one_submission_order_at_all_three_nodes() {
    let (g, listeners) = Grid::start().await;
    for (i, l) in listeners.into_iter().enumerate() {
        tokio::spawn(veilgrid_matcher::run(l, g.shutdown.clone(), g.config(i)));
    }
    g.wait_registered(3).await;
    let c = g.client();
    register(&c, &["ALC"]).await;
    let round = [31u8; 16];
    c.open(&open_req(round, 8)).await.unwrap();
    // 16 agents submit 4 orders each at the same time; demand exceeds supply, so the
    // fills depend on submission order
    let owner = SealKeyPair::generate();
    let mut tasks = Vec::new();
    for agent in 0..16u64 {
        let c = c.clone();
        let pk = owner.public();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            for k in 0..4u64 {
                let i = agent * 4 + k;
                let order = if i % 3 == 0 {
                    Order {
                        side: Side::Sell,
                        limit: (i % 4) as u32,
                        qty: 5 + i % 7,
                    }
                } else {
                    Order {
                        side: Side::Buy,
                        limit: 4 + (i % 4) as u32,
                        qty: 3 + i % 11,
                    }
                };
                let id = OrderId::new(format!("a{agent}-{k}").as_bytes()).unwrap();
                let seq = c.submit(round, 8, &id, &order, &pk).await.unwrap();
                mine.push((seq, id, order));
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_by_key(|x| x.0);
    // node 0 handed out 0..64 once each
    assert_eq!(
        all.iter().map(|x| x.0).collect::<Vec<_>>(),
        (0..64).collect::<Vec<_>>()
    );
    c.close(round).await.unwrap();
    let out = c.result(round, Duration::from_secs(60)).await.unwrap();
    let book: Vec<Order> = all.iter().map(|x| x.2).collect();
    let want = clear_plain(8, &book);
    assert_eq!(out.outcome.result, want.clearing);
    let fills = c.fills(round, &owner).await.unwrap();
    let got: Vec<u64> = all
        .iter()
        .map(|(_, id, _)| fills.iter().find(|f| &f.0 == id).unwrap().1)
        .collect();
    assert_eq!(got, want.fills, "fills follow node 0's sequence");
    // the order mattered: the same book in reverse sequence fills differently. (Whether
    // some fill is partial depends on where the sequence puts the marginal order, so
    // that is no test; reversing always changes the oversubscribed side's fills once
    // two of its orders are eligible.)
    let reversed: Vec<Order> = book.iter().rev().copied().collect();
    let mut reversed_fills = clear_plain(8, &reversed).fills;
    reversed_fills.reverse();
    assert_ne!(got, reversed_fills, "fills depend on the submission order");
    g.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_1_and_2_take_orders_only_with_node_0s_signed_number() {
    let (g, _listeners) = Grid::start().await;
    let node1 = veilgrid_matcher::Node::new(g.config(1)).unwrap();
    let issuer = veilgrid_core::sign::SigningIdentity::generate();
    node1
        .register_currency(pb::RegisterCurrencyRequest {
            currency: Some(
                veilgrid_matcher::currency::sign_registration(&issuer, "ALC", "A").unwrap(),
            ),
        })
        .unwrap();
    let round = [41u8; 16];
    node1.open(open_req(round, 8)).unwrap();
    let id = OrderId::new(b"o").unwrap();
    let order = Order {
        side: Side::Buy,
        limit: 3,
        qty: 9,
    };
    let shares = veilgrid_mpc::share_order(round, &id, &order, 8).unwrap();
    let aad = veilgrid_matcher::node::share_aad(&round, id.as_bytes());
    let sealed = g.identities[1]
        .seal_public()
        .seal(
            veilgrid_matcher::node::ORDER_INFO,
            &aad,
            &shares[1].order_bytes(),
        )
        .unwrap();
    let owner = SealKeyPair::generate();
    let req = |seq: u64, ticket: Vec<u8>| pb::SubmitShareRequest {
        round_id: round.to_vec().into(),
        order_id: id.as_bytes().to_vec().into(),
        sealed_share: sealed.clone().into(),
        owner_seal_key: owner.public().to_bytes().to_vec().into(),
        sequence: seq,
        sequence_ticket: ticket.into(),
    };
    let msg = veilgrid_matcher::node::sequence_message(&round, 5, id.as_bytes());
    // no ticket, a ticket by someone else, a ticket for another number: refused
    assert!(node1.submit(req(5, vec![])).is_err());
    let forged = g.identities[2].signing.sign(&msg).to_vec();
    assert!(node1.submit(req(5, forged)).is_err());
    let good = g.identities[0].signing.sign(&msg).to_vec();
    assert!(node1.submit(req(6, good.clone())).is_err());
    let r = node1.submit(req(5, good)).unwrap();
    assert_eq!(r.sequence, 5);
    g.shutdown.cancel();
}

/// A small book that trades (level 2, volume 7 on 8 levels), submitted by one owner
/// after registering ALC (idempotent: a restarted node has forgotten registrations).
async fn submit_small_book(
    c: &MatchClient,
    round: [u8; 16],
    mode: pb::SecurityMode,
    owner: &SealKeyPair,
) {
    let issuer = veilgrid_core::sign::SigningIdentity::from_secret_bytes(&[5; 32]);
    let alc = veilgrid_matcher::currency::sign_registration(&issuer, "ALC", "A").unwrap();
    c.register_currency(&alc).await.unwrap();
    c.open(&pb::OpenRoundRequest {
        mode: mode.into(),
        ..open_req(round, 8)
    })
    .await
    .unwrap();
    let book = [
        Order {
            side: Side::Buy,
            limit: 5,
            qty: 10,
        },
        Order {
            side: Side::Sell,
            limit: 2,
            qty: 7,
        },
        Order {
            side: Side::Sell,
            limit: 6,
            qty: 3,
        },
    ];
    for (i, o) in book.iter().enumerate() {
        let id = OrderId::new(format!("o{i}").as_bytes()).unwrap();
        c.submit(round, 8, &id, o, &owner.public()).await.unwrap();
    }
}

/// Every node reports the round aborted and reveals nothing: no outcome, no
/// signature, no level or volume, no fills. Returns the three reasons.
async fn assert_aborted_revealing_nothing(
    c: &MatchClient,
    round: [u8; 16],
    owner: &SealKeyPair,
) -> Vec<String> {
    let err = c.result(round, Duration::from_secs(30)).await.unwrap_err();
    assert!(matches!(err, MatchError::Aborted(_)), "{err}");
    let mut reasons = Vec::new();
    for p in 0..3 {
        // the others learn of the abort from the detecting node's abort frame or the
        // closed stream; wait until each has left `running`
        let mut s = c.status(p, round).await.unwrap();
        for _ in 0..300 {
            if s.status != i32::from(pb::RoundStatus::Running) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            s = c.status(p, round).await.unwrap();
        }
        assert_eq!(s.status, i32::from(pb::RoundStatus::Aborted), "node {p}");
        assert!(s.outcome.is_empty() && s.signatures.is_empty(), "node {p}");
        assert!(!s.cross && s.volume == 0 && s.level == 0, "node {p}");
        assert!(!s.reason.is_empty());
        reasons.push(s.reason);
    }
    assert!(
        c.fills(round, owner).await.is_err(),
        "no fills after an abort"
    );
    reasons
}

/// A grid whose node 1 misbehaves with `fault`.
async fn grid_with_faulty_node_1(fault: Fault) -> (Grid, MatchClient) {
    let (g, listeners) = Grid::start().await;
    for (i, l) in listeners.into_iter().enumerate() {
        let mut cfg = g.config(i);
        if i == 1 {
            cfg.fault = Some(fault);
        }
        tokio::spawn(veilgrid_matcher::run(l, g.shutdown.clone(), cfg));
    }
    g.wait_registered(3).await;
    let c = g.client();
    (g, c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn semi_honest_a_wrong_share_value_in_an_opening_or_the_input_check_aborts() {
    // node 1 keeps sending wrong values through the clearing: the opening of V carries
    // one, and its two copies (value from one neighbour, digest from the other) differ
    let (g, c) = grid_with_faulty_node_1(Fault {
        phase: veilgrid_mpc::Phase::Clearing,
        step: 0,
        every_later_step: true,
        action: FaultAction::Corrupt,
    })
    .await;
    let owner = SealKeyPair::generate();
    let round = [21u8; 16];
    submit_small_book(&c, round, pb::SecurityMode::SemiHonest, &owner).await;
    c.close(round).await.unwrap();
    let reasons = assert_aborted_revealing_nothing(&c, round, &owner).await;
    assert!(
        reasons.iter().any(|r| r.contains("inconsistent")),
        "{reasons:?}"
    );
    g.shutdown.cancel();

    // node 1 lies about the order list (the hash of the client inputs it holds)
    let (g, c) = grid_with_faulty_node_1(Fault {
        phase: veilgrid_mpc::Phase::Inputs,
        step: 0,
        every_later_step: false,
        action: FaultAction::Corrupt,
    })
    .await;
    let round = [22u8; 16];
    submit_small_book(&c, round, pb::SecurityMode::SemiHonest, &owner).await;
    c.close(round).await.unwrap();
    let reasons = assert_aborted_revealing_nothing(&c, round, &owner).await;
    assert!(
        reasons.iter().any(|r| r.contains("different order list")),
        "{reasons:?}"
    );
    g.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malicious_mode_detects_one_wrong_word_in_any_multiplication_step() {
    // one flipped bit in one message — a multiplication early in the clearing, then
    // one in the fills — is caught by the check of every gate before anything opens
    // (semi-honest mode would miss these: a wrong reshare is an additive error that
    // replication alone cannot see, crypto/mpc/docs/security.md)
    for (phase, step) in [
        (veilgrid_mpc::Phase::Clearing, 0),
        (veilgrid_mpc::Phase::Clearing, 7),
        (veilgrid_mpc::Phase::Fills, 0),
    ] {
        let (g, c) = grid_with_faulty_node_1(Fault {
            phase,
            step,
            every_later_step: false,
            action: FaultAction::Corrupt,
        })
        .await;
        let owner = SealKeyPair::generate();
        let round = [23u8; 16];
        submit_small_book(&c, round, pb::SecurityMode::Malicious, &owner).await;
        c.close(round).await.unwrap();
        let reasons = assert_aborted_revealing_nothing(&c, round, &owner).await;
        // caught by the gate check itself, or by an opening inside it (the corrupted
        // reshare leaves the two copies of one share component different)
        assert!(
            reasons
                .iter()
                .any(|r| r.contains("verification failed") || r.contains("inconsistent")),
            "{phase:?} step {step}: {reasons:?}"
        );
        g.shutdown.cancel();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_during_the_mpc_aborts_the_round_and_it_reruns_after_it_returns() {
    let (g, listeners) = Grid::start().await;
    let [l0, l1, l2] = listeners;
    tokio::spawn(veilgrid_matcher::run(l0, g.shutdown.clone(), g.config(0)));
    tokio::spawn(veilgrid_matcher::run(l1, g.shutdown.clone(), g.config(1)));
    // node 2 hangs at a clearing step (so the kill lands mid-MPC, not by luck)
    let mut hanging = g.config(2);
    hanging.fault = Some(Fault {
        phase: veilgrid_mpc::Phase::Clearing,
        step: 3,
        every_later_step: false,
        action: FaultAction::Stall,
    });
    let rt2 = killable(l2.into_std().unwrap(), hanging);
    g.wait_registered(3).await;
    let c = g.client();
    let owner = SealKeyPair::generate();
    let round = [24u8; 16];
    submit_small_book(&c, round, pb::SecurityMode::SemiHonest, &owner).await;
    c.close(round).await.unwrap();
    for p in 0..3 {
        let s = c.status(p, round).await.unwrap();
        assert_eq!(s.status, i32::from(pb::RoundStatus::Running), "node {p}");
    }
    rt2.shutdown_background();
    let err = c.result(round, Duration::from_secs(30)).await.unwrap_err();
    assert!(matches!(err, MatchError::Aborted(_)), "{err}");
    for p in 0..2 {
        let mut s = c.status(p, round).await.unwrap();
        for _ in 0..300 {
            if s.status != i32::from(pb::RoundStatus::Running) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            s = c.status(p, round).await.unwrap();
        }
        assert_eq!(s.status, i32::from(pb::RoundStatus::Aborted), "node {p}");
        assert!(s.reason.contains("node 2"), "{}", s.reason);
        assert!(s.outcome.is_empty() && s.signatures.is_empty() && !s.cross);
    }
    assert!(c.fills(round, &owner).await.is_err());

    // node 2 returns healthy (same address, identity and seeds); a fresh round clears
    let l2 = std::net::TcpListener::bind(g.addrs[2]).unwrap();
    l2.set_nonblocking(true).unwrap();
    let rt2 = killable(l2, g.config(2));
    tokio::time::sleep(Duration::from_millis(300)).await;
    g.wait_registered(3).await;
    let again = [25u8; 16];
    submit_small_book(&c, again, pb::SecurityMode::SemiHonest, &owner).await;
    c.close(again).await.unwrap();
    let out = c.result(again, Duration::from_secs(30)).await.unwrap();
    assert_eq!(
        out.outcome.result,
        ClearingResult::Trade {
            level: 2,
            volume: 7
        }
    );
    let mut fills: Vec<u64> = c
        .fills(again, &owner)
        .await
        .unwrap()
        .iter()
        .map(|f| f.1)
        .collect();
    fills.sort();
    assert_eq!(fills, vec![0, 7, 7]);
    g.shutdown.cancel();
    rt2.shutdown_background();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_routers_rate_feed_asks_only_the_pinned_nodes() {
    // pinned: nodes 0 and 1 only (node 2 registers and serves the same table)
    let (g, listeners, state) = Grid::start_with(|ids| RouterConfig {
        currency: "BOB".into(),
        rate_sources: Some(vec![ids[0].provider_id(), ids[1].provider_id()]),
        ..RouterConfig::default()
    })
    .await;
    for (i, l) in listeners.into_iter().enumerate() {
        tokio::spawn(veilgrid_matcher::run(l, g.shutdown.clone(), g.config(i)));
    }
    g.wait_registered(3).await;
    let c = g.client();
    let owner = SealKeyPair::generate();
    let round = [26u8; 16];
    submit_small_book(&c, round, pb::SecurityMode::SemiHonest, &owner).await;
    c.close(round).await.unwrap();
    c.result(round, Duration::from_secs(30)).await.unwrap();
    let r = veilgrid_router::rates::refresh(&state, Duration::from_secs(5)).await;
    assert_eq!(
        r,
        veilgrid_router::rates::Refresh::Installed {
            sources: 2,
            currencies: 1
        },
        "only the two pinned nodes were asked"
    );
    let t = veilgrid_router::rates::current(&state);
    let want = (1.05f64.powi(2) * 0.5).ln(); // 1 ALC = p_2 BOB
    assert!(
        (t.log_values()[0].1 - want).abs() < 1e-9,
        "{:?}",
        t.log_values()
    );
    g.shutdown.cancel();

    // pinned to keys no node has: nothing is asked, the table stays empty
    let (g, listeners, state) = Grid::start_with(|_| RouterConfig {
        currency: "BOB".into(),
        rate_sources: Some(vec![[7u8; 32]]),
        ..RouterConfig::default()
    })
    .await;
    for (i, l) in listeners.into_iter().enumerate() {
        tokio::spawn(veilgrid_matcher::run(l, g.shutdown.clone(), g.config(i)));
    }
    g.wait_registered(3).await;
    let c = g.client();
    let round = [27u8; 16];
    submit_small_book(&c, round, pb::SecurityMode::SemiHonest, &owner).await;
    c.close(round).await.unwrap();
    c.result(round, Duration::from_secs(30)).await.unwrap();
    assert_eq!(
        veilgrid_router::rates::refresh(&state, Duration::from_secs(5)).await,
        veilgrid_router::rates::Refresh::NoSources
    );
    assert!(
        veilgrid_router::rates::current(&state)
            .log_values()
            .is_empty()
    );
    g.shutdown.cancel();
}
