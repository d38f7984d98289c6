//! Mutual TLS between every hop, and callers' identities (issue 7). Every grid here
//! runs in-process on loopback ports chosen by the OS, with a fresh Veilgrid CA in a
//! temporary directory.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{path::Path, sync::Arc, time::Duration};

use bytes::Bytes;
use tonic::{Code, Status};
use veilgrid::{
    client::{CallOptions, GridClient},
    grid::{self, GridOptions, LocalGrid},
};
use veilgrid_core::protocol::ProtocolId;
use veilgrid_kit::{
    auth::{self, Caller, Role},
    auth_owners::Owners,
    echo::ECHO,
    identity::Identity,
    provider::{Context, Handler, ProviderConfig, ProviderService},
    registration,
    tls::Security,
    tls_ca,
};
use veilgrid_proto::grid::v1::{
    CompletionRequest, provider_client::ProviderClient, router_client::RouterClient,
};

async fn tls_grid(dir: &Path) -> LocalGrid {
    grid::start(GridOptions {
        tls: Some(dir.to_path_buf()),
        router: veilgrid_router::RouterConfig {
            health_interval: Duration::from_millis(200),
            min_ttl: Duration::from_millis(100),
            ..veilgrid_router::RouterConfig::default()
        },
        ..GridOptions::default()
    })
    .await
    .expect("a TLS grid starts")
}

async fn client(g: &LocalGrid, name: &str) -> GridClient {
    let sec = grid::security_for(g.tls.as_deref(), name, Role::Client).unwrap();
    GridClient::connect_secure(&g.router_url, &sec)
        .await
        .expect("client connects over mutual TLS")
}

fn provider_named(
    name: &str,
    identity: Arc<Identity>,
    handler: Arc<dyn Handler>,
) -> ProviderService {
    ProviderService::builder(
        identity,
        ProviderConfig {
            name: name.into(),
            ..ProviderConfig::default()
        },
    )
    .protocol(NOTES, 1, handler)
    .build()
}

/// `test/notes/v1`: `put <id> <text>` stores a note owned by the caller, `get <id>` reads
/// it back, only for its owner. The smallest service using the ownership mechanism.
const NOTES: &str = "test/notes/v1";

struct Notes {
    owners: Owners,
    notes: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

#[tonic::async_trait]
impl Handler for Notes {
    async fn complete(&self, ctx: &Context, payload: Bytes) -> Result<Bytes, Status> {
        let text = std::str::from_utf8(&payload).map_err(|_| Status::invalid_argument("utf-8"))?;
        let mut parts = text.splitn(3, ' ');
        let (op, id) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        match op {
            "put" => {
                self.owners
                    .claim("note", id.as_bytes(), ctx.caller.as_ref())?;
                let body = parts.next().unwrap_or("").to_owned();
                self.notes.lock().unwrap().insert(id.to_owned(), body);
                Ok(Bytes::from_static(b"ok"))
            }
            "get" => {
                self.owners
                    .check("note", id.as_bytes(), ctx.caller.as_ref())?;
                let n = self.notes.lock().unwrap().get(id).cloned();
                n.map(Bytes::from)
                    .ok_or_else(|| Status::not_found("no such note"))
            }
            "whoami" => Ok(Bytes::from(
                ctx.caller
                    .as_ref()
                    .map(|c| c.to_string())
                    .unwrap_or_default(),
            )),
            _ => Err(Status::invalid_argument("put, get or whoami")),
        }
    }
}

async fn start_notes(g: &LocalGrid) -> String {
    let handler = Arc::new(Notes {
        owners: Owners::open(None).unwrap(),
        notes: Default::default(),
    });
    let p = provider_named("notes", Arc::new(Identity::generate()), handler);
    let sec = grid::service_security(g.tls.as_deref(), "notes").unwrap();
    let (endpoint, _tasks) = grid::start_provider_secure(
        p,
        &g.router_url,
        Duration::from_secs(5),
        g.shutdown.clone(),
        &sec,
    )
    .await
    .expect("notes provider registers over mutual TLS");
    endpoint
}

fn notes() -> ProtocolId {
    ProtocolId::from_name(NOTES)
}

#[tokio::test]
async fn full_echo_completion_over_mutual_tls() {
    let dir = tempfile::tempdir().unwrap();
    let g = tls_grid(dir.path()).await;
    assert!(g.router_url.starts_with("https://"), "{}", g.router_url);
    let mut c = client(&g, "alice").await;
    let payload = Bytes::from_static(b"hello over mutual TLS");
    let done = c
        .complete(
            &ProtocolId::from_name(ECHO),
            payload.clone(),
            &CallOptions::default(),
        )
        .await
        .expect("echo completes end to end over mTLS");
    assert_eq!(done.completion, payload);
    // The router reached the echo provider over TLS too: its endpoint is https.
    let providers = c.providers(None).await.unwrap();
    let echo = providers
        .iter()
        .filter_map(|p| p.info.as_ref())
        .find(|i| i.name == "echo")
        .expect("echo registered");
    assert!(echo.endpoint.starts_with("https://"), "{}", echo.endpoint);
    // Streamed completions too.
    let big = Bytes::from(vec![7u8; 3 << 20]);
    let done = c
        .complete_stream(
            &ProtocolId::from_name(ECHO),
            big.clone(),
            &CallOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(done.completion, big);
    g.stop().await;
}

#[tokio::test]
async fn plaintext_client_to_a_tls_router_fails_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let g = tls_grid(dir.path()).await;
    let plain_url = g.router_url.replacen("https://", "http://", 1);
    let e = match GridClient::connect(&plain_url).await {
        Err(e) => e.to_string(),
        // Connecting is lazy about HTTP/2: the first call fails.
        Ok(mut c) => c.providers(None).await.unwrap_err().to_string(),
    };
    assert!(e.contains("TLS") && e.contains("--tls-dir"), "{e}");
    // The https URL without any TLS material: refused before dialling, saying why.
    let e = GridClient::connect(&g.router_url)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("no TLS material"), "{e}");
    g.stop().await;
}

#[tokio::test]
async fn provider_with_a_certificate_from_another_ca_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let g = tls_grid(dir.path()).await;
    let other = tempfile::tempdir().unwrap();
    // Another CA, a certificate for a service named like a real one.
    let rogue = grid::service_security(Some(other.path()), "notes").unwrap();
    let handler = Arc::new(Notes {
        owners: Owners::open(None).unwrap(),
        notes: Default::default(),
    });
    let p = provider_named("notes", Arc::new(Identity::generate()), handler);
    let r = tokio::time::timeout(
        Duration::from_secs(30),
        grid::start_provider_secure(
            p,
            &g.router_url,
            Duration::from_secs(5),
            g.shutdown.clone(),
            &rogue,
        ),
    )
    .await
    .expect("refused promptly, not retried for ever");
    assert!(
        r.is_err(),
        "a provider with a foreign CA's certificate registered"
    );
    // And a client with a foreign certificate cannot even list providers.
    let foreign_client = grid::security_for(Some(other.path()), "alice", Role::Client).unwrap();
    let e = match GridClient::connect_secure(&g.router_url, &foreign_client).await {
        Err(e) => e.to_string(),
        Ok(mut c) => c.providers(None).await.unwrap_err().to_string(),
    };
    assert!(!e.is_empty());
    // The rogue provider is not registered; the grid's own providers (echo, and the FHE
    // service and prover, which register in the background) are.
    let mut c = client(&g, "alice").await;
    let names: Vec<String> = c
        .providers(None)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|p| p.info.map(|i| i.name))
        .collect();
    assert!(!names.iter().any(|n| n == "notes"), "{names:?}");
    assert!(names.iter().any(|n| n == "echo"), "{names:?}");
    g.stop().await;
}

#[tokio::test]
async fn provider_impersonating_another_provider_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let g = tls_grid(dir.path()).await;
    let mallory = grid::service_security(Some(dir.path()), "mallory").unwrap();
    let mut router = RouterClient::new(mallory.channel(&g.router_url).unwrap());
    let handler: Arc<dyn Handler> = Arc::new(Notes {
        owners: Owners::open(None).unwrap(),
        notes: Default::default(),
    });

    // 1. Mallory's valid certificate cannot register a provider named "echo".
    let fake_echo = provider_named("echo", Arc::new(Identity::generate()), handler.clone());
    let req = registration::signed_registration(
        &fake_echo,
        "https://127.0.0.1:9",
        Duration::from_secs(5),
    );
    let s = router.register(req).await.unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");

    // 2. Even holding echo's signing key, mallory cannot take over echo's provider id.
    let echo_identity = grid::identity_for(None, "unused").unwrap();
    let echo_sec = grid::service_security(Some(dir.path()), "echo2").unwrap();
    let real = provider_named("echo2", echo_identity.clone(), handler.clone());
    let (_ep, _t) = grid::start_provider_secure(
        real,
        &g.router_url,
        Duration::from_secs(5),
        g.shutdown.clone(),
        &echo_sec,
    )
    .await
    .unwrap();
    let stolen = provider_named("mallory", echo_identity, handler.clone());
    let req =
        registration::signed_registration(&stolen, "https://127.0.0.1:9", Duration::from_secs(5));
    let s = router.register(req).await.unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
    assert!(s.message().contains("echo2"), "{s:?}");

    // 3. Mallory under its own name, pointing its lease at notes' endpoint to take its
    //    traffic: the router dials that endpoint expecting a certificate issued to
    //    "mallory", the notes server presents "notes", and the call fails.
    let notes_endpoint = start_notes(&g).await;
    let own = provider_named("mallory", Arc::new(Identity::generate()), handler);
    let mallory_id = own.identity().provider_id();
    let req = registration::signed_registration(&own, &notes_endpoint, Duration::from_secs(5));
    router.register(req).await.expect("its own name registers");
    let mut c = client(&g, "alice").await;
    let e = c
        .complete(
            &notes(),
            Bytes::from_static(b"whoami"),
            &CallOptions {
                target: Some(mallory_id),
                ..CallOptions::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(Code::Unavailable), "{e}");
    g.stop().await;
}

#[tokio::test]
async fn a_client_reading_another_clients_resource_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let g = tls_grid(dir.path()).await;
    let endpoint = start_notes(&g).await;
    let mut alice = client(&g, "alice").await;
    let mut bob = client(&g, "bob").await;
    let o = CallOptions::default();
    let who = alice
        .complete(&notes(), Bytes::from_static(b"whoami"), &o)
        .await
        .unwrap();
    assert_eq!(
        &who.completion[..],
        b"client:alice",
        "the router vouches for its caller"
    );
    alice
        .complete(&notes(), Bytes::from_static(b"put n1 alice's secret"), &o)
        .await
        .unwrap();
    let mine = alice
        .complete(&notes(), Bytes::from_static(b"get n1"), &o)
        .await
        .unwrap();
    assert_eq!(&mine.completion[..], b"alice's secret");
    let e = bob
        .complete(&notes(), Bytes::from_static(b"get n1"), &o)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(Code::PermissionDenied), "{e}");
    assert!(!e.to_string().contains("secret"));
    // Nor can bob overwrite it.
    let e = bob
        .complete(&notes(), Bytes::from_static(b"put n1 bob was here"), &o)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(Code::PermissionDenied), "{e}");

    // Straight to the provider, bob's own certificate: a forged caller header naming
    // alice is not believed (only the router's certificate may vouch for callers).
    let bob_sec = grid::security_for(Some(dir.path()), "bob", Role::Client).unwrap();
    let mut direct = ProviderClient::new(bob_sec.channel(&endpoint).unwrap());
    let mut req = tonic::Request::new(CompletionRequest {
        protocol_id: Bytes::copy_from_slice(notes().as_bytes()),
        payload: Bytes::from_static(b"get n1"),
        ..Default::default()
    });
    auth::forward(&mut req, Some(&Caller::client("alice")));
    let s = direct.complete(req).await.unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
    g.stop().await;
}

#[test]
fn identity_comes_from_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    tls_ca::init(dir.path()).unwrap();
    tls_ca::ensure_issued(dir.path(), "alice", Role::Client).unwrap();
    let s = Security::mtls_from_dir(dir.path(), "alice").unwrap();
    assert_eq!(s.who(), Some(&Caller::client("alice")));
    // Asking for bob's material with alice's files renamed is caught.
    std::fs::copy(dir.path().join("alice.pem"), dir.path().join("bob.pem")).unwrap();
    std::fs::copy(dir.path().join("alice.key"), dir.path().join("bob.key")).unwrap();
    let e = Security::mtls_from_dir(dir.path(), "bob").unwrap_err();
    assert!(e.to_string().contains("issued to client:alice"), "{e}");
}

#[tokio::test]
async fn a_client_reading_another_clients_round_result_is_refused() {
    use veilgrid_aggregator::client::AggClient;
    use veilgrid_proto::aggregation::v1 as pb;
    let dir = tempfile::tempdir().unwrap();
    let g = tls_grid(dir.path()).await;
    let data = tempfile::tempdir().unwrap();
    let sec = grid::service_security(g.tls.as_deref(), "aggregator").unwrap();
    let data_dir = data.path().to_path_buf();
    let _agg = grid::start_aggregator(
        grid::ServiceContext::new(
            &g.router_url,
            Some(&data_dir),
            Duration::from_secs(5),
            g.shutdown.clone(),
        )
        .secure(sec),
    )
    .await
    .unwrap();
    let as_client = |name: &str| {
        let s = grid::security_for(g.tls.as_deref(), name, Role::Client).unwrap();
        AggClient::via_router_secure(&g.router_url, &s).unwrap()
    };
    let (mut alice, mut bob) = (as_client("alice"), as_client("bob"));
    let keys = (0..3)
        .map(|_| {
            Bytes::copy_from_slice(
                &veilgrid_core::seal::SealKeyPair::generate()
                    .public()
                    .to_bytes(),
            )
        })
        .collect();
    let signing: Vec<Bytes> = (0..3)
        .map(|_| Bytes::copy_from_slice(&Identity::generate().provider_id()))
        .collect();
    let req = pb::CreateRoundRequest {
        committee_signing_keys: signing,
        length: 4,
        bits: 8,
        max_clients: 3,
        threshold: 1,
        committee_keys: keys,
        deadline_unix_ms: veilgrid_kit::clock::now_ms() + 60_000,
        ..Default::default()
    };
    // The aggregator registers in the background: retry until its protocols are known.
    let mut created = None;
    for _ in 0..100 {
        match alice.create_round(req.clone()).await {
            Ok(i) => {
                created = Some(i);
                break;
            }
            Err(s) if s.code() == Code::NotFound || s.code() == Code::Unavailable => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(s) => panic!("{s:?}"),
        }
    }
    let info = created.expect("the aggregator registered");
    let e = bob.result(&info.round_id).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    // The owner is not refused for who she is (the round simply has no result yet).
    match alice.result(&info.round_id).await {
        Ok(_) => {}
        Err(s) => assert_ne!(s.code(), Code::PermissionDenied, "{s:?}"),
    }
    // Ownership is kept on disk with the rounds: it survives a restart of the service.
    let owners = Owners::open(Some(&data.path().join("aggregator"))).unwrap();
    assert!(
        owners
            .check(
                veilgrid_aggregator::handler::ROUND_KIND,
                &info.round_id,
                Some(&Caller::client("bob"))
            )
            .is_err()
    );
    g.stop().await;
}

#[test]
fn ca_commands_write_the_ca_and_owner_only_keys() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_veilgrid"))
            .args(args)
            .env_remove("VEILGRID_TLS_DIR")
            .output()
            .unwrap()
    };
    let ok = |o: std::process::Output| {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    ok(run(&["ca", "init", "--dir", d]));
    let again = run(&["ca", "init", "--dir", d]);
    assert!(!again.status.success(), "an existing CA is never replaced");
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a CA"));
    ok(run(&[
        "ca",
        "issue",
        "--service",
        "router",
        "--san",
        "router.veilgrid.svc",
        "--dir",
        d,
    ]));
    ok(run(&["ca", "issue", "--client", "alice", "--dir", d]));
    assert!(
        !run(&["ca", "issue", "--service", "Bad Name", "--dir", d])
            .status
            .success()
    );
    #[cfg(unix)]
    for k in ["ca.key", "router.key", "alice.key"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(k))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{k}");
    }
    let router = Security::mtls_from_dir(dir.path(), "router").unwrap();
    assert_eq!(router.who(), Some(&Caller::service("router")));
    let alice = Security::mtls_from_dir(dir.path(), "alice").unwrap();
    assert_eq!(alice.who(), Some(&Caller::client("alice")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_fhe_key_belongs_to_the_client_that_registered_it() {
    use veilgrid_fhe::{FheModel, builtin_model, dataset::BreastCancer, generate_keys};
    use veilgrid_fhe_service::client::FheClient;
    use veilgrid_proto::fhe::v1 as pb;
    let dir = tempfile::tempdir().unwrap();
    // The grid runs the FHE service under mutual TLS too (certificate `fhe`).
    let g = tls_grid(dir.path()).await;
    let as_client = |name: &str| {
        let s = grid::security_for(g.tls.as_deref(), name, Role::Client).unwrap();
        FheClient::via_router_secure(&g.router_url, &s).unwrap()
    };
    let (mut alice, mut bob) = (as_client("alice"), as_client("bob"));
    let (client_key, compressed) = tokio::task::spawn_blocking(generate_keys)
        .await
        .unwrap()
        .unwrap();
    let id = compressed.id();
    let bytes = Bytes::from(compressed.to_bytes().unwrap());
    // The FHE service registers with the router in the background: retry until it is known.
    let mut registered = None;
    for _ in 0..150 {
        match alice.register_key(id, bytes.clone(), |_| {}).await {
            Ok(r) => {
                registered = Some(r);
                break;
            }
            Err(e) if matches!(e.code(), Code::NotFound | Code::Unavailable) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    assert!(
        !registered
            .expect("the FHE service registered")
            .already_registered
    );
    // Alice may register her key again (idempotent) and query with it.
    let again = alice.register_key(id, bytes.clone(), |_| {}).await.unwrap();
    assert!(again.already_registered);
    let model = FheModel::compile(builtin_model("breast-cancer-logreg").unwrap()).unwrap();
    let data = BreastCancer::load().unwrap();
    let (_, row, _) = data.test_set().next().unwrap();
    let expected = model.model().predict(row).unwrap();
    let got = alice.predict(&client_key, &model, row).await.unwrap();
    assert_eq!(got.prediction.class, expected.class);
    // Bob may neither query with Alice's key nor register it as his.
    let (query, _pending) = client_key.encrypt(&model, row).unwrap();
    let e = bob
        .infer(pb::InferRequest {
            model: model.name().to_owned(),
            key_id: Bytes::copy_from_slice(&id.0),
            query: query.to_bytes().unwrap().into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let e = bob.register_key(id, bytes, |_| {}).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    g.stop().await;
}
