//! Two router replicas on one PostgreSQL database serve the same providers and see
//! the same ledger (issue 7).
//!
//! Needs a server: `VEILGRID_TEST_POSTGRES=postgres://user@host:port/db` naming a role
//! allowed to create databases (`.ci/postgres.sh` starts one and sets it). Each test
//! creates its own database and drops it after; without the variable the tests print
//! a notice and pass without checking anything.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write as _;

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use veilgrid::{
    client::{CallOptions, GridClient},
    grid,
};
use veilgrid_core::protocol::ProtocolId;
use veilgrid_kit::{Shutdown, echo::ECHO, identity::Identity};
use veilgrid_proto::grid::v1::{RenewRequest, router_client::RouterClient};
use veilgrid_router::{RouterConfig, State, store::Tally};

/// A database of its own, dropped when this goes out of scope.
struct TestDb {
    admin: String,
    name: String,
    url: String,
}

/// The `postgres` client drives its own runtime: keep it off the test's runtime.
fn admin(url: &str, sql: String) -> Result<(), String> {
    let url = url.to_owned();
    std::thread::spawn(move || {
        let mut c =
            postgres::Client::connect(&url, postgres::NoTls).map_err(|e| format!("{e:?}"))?;
        c.batch_execute(&sql).map_err(|e| format!("{e:?}"))
    })
    .join()
    .map_err(|_| "admin thread panicked".to_string())?
}

impl TestDb {
    fn create(test: &str) -> Option<Self> {
        let Ok(admin_url) = std::env::var("VEILGRID_TEST_POSTGRES") else {
            // Straight to stderr, past the test harness's capture: the skip is visible.
            let _ = writeln!(
                std::io::stderr(),
                "skipping {test}: VEILGRID_TEST_POSTGRES is not set (.ci/postgres.sh starts a server and sets it)"
            );
            return None;
        };
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "vg_it_{}_{}_{test}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        admin(&admin_url, format!("CREATE DATABASE {name}")).unwrap();
        let base = admin_url.split('?').next().unwrap();
        let url = format!("{}/{name}", &base[..base.rfind('/').unwrap()]);
        Some(Self {
            admin: admin_url,
            name,
            url,
        })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = admin(
            &self.admin,
            format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

fn config(db: &TestDb) -> RouterConfig {
    RouterConfig {
        store: Some(db.url.clone()),
        health_interval: Duration::from_millis(200),
        min_ttl: Duration::from_millis(100),
        ..RouterConfig::default()
    }
}

async fn router(db: &TestDb, shutdown: &Shutdown) -> (String, Arc<State>) {
    let (url, state, _task) = grid::start_router(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        config(db),
        shutdown.clone(),
    )
    .await
    .unwrap();
    (url, state)
}

/// Poll `cond` every 20 ms for up to 10 s.
async fn eventually(what: &str, mut cond: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !cond().await {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_routers_on_one_postgres_serve_the_same_providers_and_ledger() {
    let Some(db) = TestDb::create("replicas") else {
        return;
    };
    let routers = Shutdown::new();
    let (url_a, a) = router(&db, &routers).await;
    let (url_b, b) = router(&db, &routers).await;

    // The provider registers with replica A only.
    let identity = Arc::new(Identity::generate());
    let pid = identity.provider_id();
    let provider_sd = Shutdown::new();
    grid::start_provider(
        grid::echo_provider(identity),
        &url_a,
        Duration::from_secs(30),
        provider_sd.clone(),
    )
    .await
    .unwrap();
    let proto = ProtocolId::from_name(ECHO);

    // Replica B learns it from the store and routes to it.
    let mut cb = GridClient::connect(&url_b).await.unwrap();
    eventually("replica B to list the provider", async || {
        cb.providers(Some(&proto)).await.unwrap().len() == 1
    })
    .await;
    let lease_a = a.registry().get(&pid).unwrap().lease_id;
    assert_eq!(b.registry().get(&pid).unwrap().lease_id, lease_a);
    let via_b = cb
        .complete(
            &proto,
            Bytes::from_static(b"via b"),
            &CallOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(via_b.completion, Bytes::from_static(b"via b"));
    assert_eq!(via_b.receipt.receipt.provider_id, pid);
    let mut ca = GridClient::connect(&url_a).await.unwrap();
    ca.complete(
        &proto,
        Bytes::from_static(b"via a"),
        &CallOptions::default(),
    )
    .await
    .unwrap();

    // Both replicas see both promises (one counted by each), and the same receipts.
    let two = Tally { kept: 2, broken: 0 };
    eventually("both replicas to count two kept promises", async || {
        a.registry().tally(&pid, &proto) == two && b.registry().tally(&pid, &proto) == two
    })
    .await;
    let ra = a.store().receipts(0, 10).unwrap();
    let rb = b.store().receipts(0, 10).unwrap();
    assert_eq!(ra.len(), 2);
    assert_eq!(ra, rb);
    for (_, r) in &ra {
        r.verify().unwrap();
        assert_eq!(r.receipt.provider_id, pid);
    }

    // The lease renews at either replica; A sees B's renewal.
    let before = a
        .registry()
        .get(&pid)
        .unwrap()
        .expires_at_ms
        .load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let renewed = RouterClient::connect(url_b.clone())
        .await
        .unwrap()
        .renew(RenewRequest {
            provider_id: Bytes::copy_from_slice(&pid),
            lease_id: Bytes::copy_from_slice(&lease_a),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(renewed.expires_at_ms > before);
    eventually("replica A to see B's renewal", async || {
        a.registry()
            .get(&pid)
            .unwrap()
            .expires_at_ms
            .load(Ordering::Relaxed)
            >= renewed.expires_at_ms
    })
    .await;

    // A replica started later restores the provider and the ledger from the store.
    let (_url_c, c) = router(&db, &routers).await;
    assert_eq!(c.registry().tally(&pid, &proto), two);
    assert_eq!(c.registry().get(&pid).unwrap().lease_id, lease_a);

    // The provider deregisters (at A); every replica stops routing to it.
    provider_sd.cancel();
    eventually("the lease to leave every replica", async || {
        [&a, &b, &c]
            .iter()
            .all(|s| s.registry().get(&pid).is_none())
    })
    .await;
    assert!(a.store().leases().unwrap().is_empty());
    let gone = cb
        .complete(&proto, Bytes::from_static(b"late"), &CallOptions::default())
        .await
        .unwrap_err();
    assert!(gone.to_string().contains("no provider"), "{gone}");
    routers.cancel();
}

#[tokio::test]
async fn a_bad_store_spec_is_refused_with_the_accepted_forms() {
    let err = State::open(RouterConfig {
        store: Some("mysql://root:hunter2@db/x".into()),
        ..RouterConfig::default()
    })
    .err()
    .expect("refused");
    let msg = err.to_string();
    assert!(msg.contains("sqlite:DIR or postgres://"), "{msg}");
    assert!(!msg.contains("hunter2"), "{msg}");
    // `sqlite:DIR` opens the embedded store in DIR.
    let dir = tempfile::tempdir().unwrap();
    State::open(RouterConfig {
        store: Some(format!("sqlite:{}", dir.path().display())),
        ..RouterConfig::default()
    })
    .unwrap();
    assert!(dir.path().join("router.sqlite3").exists());
}
