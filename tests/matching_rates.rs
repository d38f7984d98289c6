//! The router prices providers with the rate table the matching nodes publish: two
//! echo providers asking in different personal currencies, matching rounds that move
//! the rates, and which provider gets the completions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use veilgrid::{client::CallOptions, grid};
use veilgrid_core::{protocol::ProtocolId, seal::SealKeyPair, sign::SigningIdentity};
use veilgrid_kit::{
    identity::Identity,
    provider::{ProviderConfig, ProviderService},
};
use veilgrid_matcher::{
    client::{MatchClient, PriceGrid},
    currency::sign_registration,
    veilgrid_mpc::{ClearingResult, Order, OrderId, Side},
};

const PRICED_ECHO: &str = "veilgrid/test/priced-echo/v1";

fn priced_echo(name: &str, currency: &str, ask: u64) -> (ProviderService, [u8; 32]) {
    let id = Arc::new(Identity::generate());
    let pid = id.provider_id();
    let p = ProviderService::builder(
        id,
        ProviderConfig {
            name: name.into(),
            currency: currency.into(),
            ..ProviderConfig::default()
        },
    )
    .protocol(PRICED_ECHO, ask, Arc::new(common::Echo))
    .build();
    (p, pid)
}

/// Clear `base/VG` at exactly `rate` (a power of two between 1/4 and 32): one buy and
/// one sell at the level of that rate.
async fn clear_at(c: &MatchClient, base: &str, rate: f64) {
    let grid = PriceGrid {
        levels: 8,
        p_min: 0.25,
        ratio: 2.0,
    };
    let level = (rate / grid.p_min).log2().round() as u32;
    let owner = SealKeyPair::generate();
    let orders = [Side::Buy, Side::Sell].map(|side| {
        (
            OrderId::new(format!("{side:?}-{}", rand::random::<u32>()).as_bytes()).unwrap(),
            Order {
                side,
                limit: level,
                qty: 10,
            },
        )
    });
    let (_, out) = c
        .run_round(
            base,
            "VG",
            grid,
            &orders,
            &owner.public(),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(
        out.outcome.result,
        ClearingResult::Trade { level, volume: 10 }
    );
    assert!((out.rate - rate).abs() < 1e-12);
}

/// Wait until the router's table values one unit of `currency` at `value` VG.
async fn router_values(g: &grid::LocalGrid, currency: &str, value: f64) {
    for _ in 0..200 {
        let t = veilgrid_router::rates::current(&g.state);
        if t.convert(1.0, currency, "VG")
            .is_some_and(|v| (v - value).abs() < 1e-6)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the router never installed 1 {currency} = {value} VG");
}

/// Send `n` completions priced in VG; count the completions per provider.
async fn traffic(g: &grid::LocalGrid, n: usize, max_price: u64, ids: [[u8; 32]; 2]) -> [usize; 2] {
    let mut c = common::client(g).await;
    let mut count = [0; 2];
    let opts = CallOptions {
        max_price,
        currency: "VG".into(),
        ..CallOptions::default()
    };
    for i in 0..n {
        let done = c
            .complete(
                &ProtocolId::from_name(PRICED_ECHO),
                Bytes::from(format!("req {i}")),
                &opts,
            )
            .await
            .unwrap();
        let k = ids
            .iter()
            .position(|id| *id == done.receipt.receipt.provider_id)
            .unwrap();
        count[k] += 1;
    }
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_made_dearer_by_the_rates_loses_traffic_to_a_cheaper_one() {
    let g = common::start(common::fast_router()).await;
    veilgrid_matcher::local::start(&g.router_url, None, "VG", g.shutdown.clone())
        .await
        .unwrap();
    // alice asks 10 ALC, bob asks 10 BOB per completion
    let (alice, alice_id) = priced_echo("alice", "ALC", 10);
    let (bob, bob_id) = priced_echo("bob", "BOB", 10);
    for p in [alice, bob] {
        grid::start_provider(
            p,
            &g.router_url,
            Duration::from_secs(30),
            g.shutdown.clone(),
        )
        .await
        .unwrap();
    }
    let mut c = None;
    for _ in 0..100 {
        if let Ok(found) = MatchClient::discover(&g.router_url).await {
            c = Some(found);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let c = c.expect("the three matching nodes registered");
    for (id, key) in [("ALC", [1u8; 32]), ("BOB", [2u8; 32])] {
        let issuer = SigningIdentity::from_secret_bytes(&key);
        c.register_currency(&sign_registration(&issuer, id, id).unwrap())
            .await
            .unwrap();
    }
    let ids = [alice_id, bob_id];
    // before any round the router cannot convert either ask: a price limit in VG
    // refuses both, no limit takes either
    let mut gc = common::client(&g).await;
    let limited = CallOptions {
        max_price: 100,
        currency: "VG".into(),
        ..CallOptions::default()
    };
    assert!(
        gc.complete(
            &ProtocolId::from_name(PRICED_ECHO),
            Bytes::from_static(b"x"),
            &limited
        )
        .await
        .is_err()
    );

    // both providers earn the same record first (a provider without one starts at
    // reputation 1/2, which weighs more in the cost than a factor 2 in price)
    for id in ids {
        let to = CallOptions {
            target: Some(id),
            ..CallOptions::default()
        };
        for _ in 0..30 {
            gc.complete(
                &ProtocolId::from_name(PRICED_ECHO),
                Bytes::from_static(b"w"),
                &to,
            )
            .await
            .unwrap();
        }
    }

    // rounds: 1 ALC = 1 VG, 1 BOB = 4 VG. Alice costs 10 VG, bob 40 VG.
    clear_at(&c, "ALC", 1.0).await;
    clear_at(&c, "BOB", 4.0).await;
    router_values(&g, "ALC", 1.0).await;
    router_values(&g, "BOB", 4.0).await;
    let before = traffic(&g, 40, 0, ids).await;
    assert!(before[0] > 2 * before[1], "alice is cheaper: {before:?}");
    // with a limit of 20 VG only alice qualifies
    assert_eq!(traffic(&g, 10, 20, ids).await, [10, 0]);

    // BOB falls to 0.5 VG: bob now costs 5 VG and alice, at 10 VG, is the dearer one
    clear_at(&c, "BOB", 0.5).await;
    router_values(&g, "BOB", 0.5).await;
    let after = traffic(&g, 40, 0, ids).await;
    assert!(after[1] > after[0], "bob is cheaper now: {after:?}");
    assert!(
        after[0] < before[0],
        "alice lost traffic: {before:?} → {after:?}"
    );
    // with a limit of 8 VG only bob qualifies
    assert_eq!(traffic(&g, 10, 8, ids).await, [0, 10]);
    // the table the router uses is the one the nodes publish
    let published = c.rates("VG").await.unwrap();
    let bob_value = published
        .rates
        .iter()
        .find(|r| r.currency == "BOB")
        .unwrap()
        .value;
    assert!((bob_value - 0.5).abs() < 1e-9);
    g.stop().await;
}
