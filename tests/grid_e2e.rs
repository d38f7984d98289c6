//! End-to-end tests of the grid over real gRPC on loopback (port 0).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use common::*;
use tonic::Code;
use veilgrid::client::{CallOptions, GridClient};
use veilgrid_core::{protocol::ProtocolId, seal::SealKeyPair, seal::SealPublicKey};
use veilgrid_kit::echo::{self, ECHO, ECHO_SEALED};
use veilgrid_proto::grid::v1::{CompletionRequest, Terms, router_client::RouterClient};

fn echo_id() -> ProtocolId {
    ProtocolId::from_name(ECHO)
}

fn opts() -> CallOptions {
    CallOptions {
        deadline: Some(Duration::from_secs(10)),
        ..CallOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_complete_and_count_the_promise() {
    let g = start(fast_router()).await;
    let mut c = client(&g).await;
    // The grid runs other services too; this test is about the echo provider.
    let ps = c.providers(Some(&echo_id())).await.unwrap();
    assert_eq!(ps.len(), 1, "the echo provider registered");
    let done = c
        .complete(&echo_id(), Bytes::from_static(b"ping"), &opts())
        .await
        .unwrap();
    assert_eq!(&done.completion[..], b"ping");
    // The client verified the receipt; check again by hand, and against the lease.
    done.receipt
        .verify_for(&echo_id(), b"ping", b"ping")
        .unwrap();
    let info = ps[0].info.clone().unwrap();
    assert_eq!(&info.provider_id[..], &done.receipt.receipt.provider_id[..]);
    let ps = c.providers(Some(&echo_id())).await.unwrap();
    let stats = ps[0]
        .stats
        .iter()
        .find(|s| s.protocol_name == ECHO)
        .unwrap();
    assert_eq!((stats.kept, stats.broken), (1, 0));
    assert!((stats.reputation - 2.0 / 3.0).abs() < 1e-9);
    // The receipt is in the router's store for auditors (once the group commit
    // that follows the answer has run).
    g.state.flush_ledger().await.unwrap();
    let stored = g.state.store().receipts(0, 10).unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].1, done.receipt);
    g.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_have_the_right_codes_and_keep_the_registry() {
    let mut cfg = fast_router();
    cfg.max_unary_payload = 1 << 20;
    cfg.max_stream_payload = 4 << 20;
    let g = start(cfg).await;
    let mut c = client(&g).await;

    // Unknown protocol: NOT_FOUND naming the id.
    let unknown = ProtocolId::from_name("veilgrid/nope/v1");
    let e = c
        .complete(&unknown, Bytes::from_static(b"x"), &opts())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(Code::NotFound));
    assert!(e.to_string().contains(&unknown.to_hex()), "{e}");

    // Payload over the limit: RESOURCE_EXHAUSTED, unary and streamed.
    let e = c
        .complete(&echo_id(), Bytes::from(vec![0u8; (1 << 20) + 1]), &opts())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(Code::ResourceExhausted), "{e}");
    let e = c
        .complete_stream(&echo_id(), Bytes::from(vec![0u8; (4 << 20) + 1]), &opts())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(Code::ResourceExhausted), "{e}");

    // Malformed requests: INVALID_ARGUMENT.
    let mut raw = RouterClient::connect(g.router_url.clone()).await.unwrap();
    let good = CompletionRequest {
        protocol_id: Bytes::copy_from_slice(echo_id().as_bytes()),
        payload: Bytes::from_static(b"x"),
        ..Default::default()
    };
    let cases = [
        CompletionRequest {
            protocol_id: Bytes::from_static(&[1; 31]),
            ..good.clone()
        },
        CompletionRequest {
            idempotency_id: Bytes::from(vec![1; 65]),
            ..good.clone()
        },
        CompletionRequest {
            target_provider: Bytes::from_static(&[1; 5]),
            ..good.clone()
        },
        CompletionRequest {
            terms: Some(Terms {
                min_reputation: 2.0,
                ..Default::default()
            }),
            ..good.clone()
        },
    ];
    for bad in cases {
        let s = raw.complete(bad).await.unwrap_err();
        assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    }
    // A target that is no provider: UNAVAILABLE with the reason.
    let s = raw
        .complete(CompletionRequest {
            target_provider: Bytes::from_static(&[9; 32]),
            ..good.clone()
        })
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::Unavailable);
    assert!(
        s.message().contains("not the named target"),
        "{}",
        s.message()
    );

    // After all that, the registry still works.
    assert_eq!(c.providers(Some(&echo_id())).await.unwrap().len(), 1);
    c.complete(&echo_id(), Bytes::from_static(b"still fine"), &opts())
        .await
        .unwrap();
    g.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_a_64_mib_payload() {
    let g = start(fast_router()).await;
    let mut c = client(&g).await;
    let big: Vec<u8> = (0..(64u32 << 20)).map(|i| (i ^ (i >> 11)) as u8).collect();
    let big = Bytes::from(big);
    let done = c
        .complete_stream(&echo_id(), big.clone(), &opts())
        .await
        .unwrap();
    assert_eq!(done.completion.len(), big.len());
    assert!(done.completion == big);
    done.receipt.verify_for(&echo_id(), &big, &big).unwrap();
    g.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_expiry_removes_the_provider() {
    let g = start(fast_router()).await;
    let proto = "test/expiring/v1";
    let p = provider("expiring", proto, 1, Arc::new(Echo));
    // Register by hand with a short lease that nobody renews.
    let mut raw = RouterClient::connect(g.router_url.clone()).await.unwrap();
    // Serve it so the registration is real.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let mut routes = tonic::service::RoutesBuilder::default();
    routes.add_service(p.clone().into_server());
    let sd = g.shutdown.child_token();
    tokio::spawn(veilgrid_kit::server::serve(listener, sd.clone(), routes));
    let lease = raw
        .register(veilgrid_kit::registration::signed_registration(
            &p,
            &endpoint,
            Duration::from_millis(300),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(lease.ttl_ms, 300);
    let mut c = client(&g).await;
    let id = ProtocolId::from_name(proto);
    c.complete(&id, Bytes::from_static(b"x"), &opts())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        c.providers(Some(&id)).await.unwrap().is_empty(),
        "expired lease removed"
    );
    // Known protocol, nobody serving: UNAVAILABLE.
    let e = c
        .complete(&id, Bytes::from_static(b"x"), &opts())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(Code::Unavailable), "{e}");
    // The expired lease cannot be renewed.
    let s = raw
        .renew(veilgrid_proto::grid::v1::RenewRequest {
            provider_id: lease.provider_id.clone(),
            lease_id: lease.lease_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::NotFound);
    sd.cancel();
    g.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_exceeded_is_reported_and_counted_as_broken() {
    let g = start(fast_router()).await;
    let proto = "test/slow/v1";
    add(
        &g,
        provider("slow", proto, 1, Arc::new(Slow(Duration::from_secs(3)))),
        Duration::from_secs(30),
    )
    .await;
    let mut c = client(&g).await;
    let id = ProtocolId::from_name(proto);
    let o = CallOptions {
        deadline: Some(Duration::from_millis(300)),
        ..CallOptions::default()
    };
    let t = std::time::Instant::now();
    let e = c
        .complete(&id, Bytes::from_static(b"x"), &o)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(Code::DeadlineExceeded), "{e}");
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "the router gave up at the deadline"
    );
    let ps = c.providers(Some(&id)).await.unwrap();
    assert_eq!(ps[0].stats[0].broken, 1);
    g.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_killed_mid_request_fails_without_idempotency_id() {
    let g = start(fast_router()).await;
    let proto = "test/die/v1";
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let rt = add_killable(
        &g.router_url,
        provider("doomed", proto, 1, Arc::new(Hang(tx))),
    );
    let mut c = client(&g).await;
    let id = ProtocolId::from_name(proto);
    let call =
        tokio::spawn(async move { c.complete(&id, Bytes::from_static(b"x"), &opts()).await });
    rx.recv().await.unwrap();
    rt.shutdown_background();
    let e = call.await.unwrap().unwrap_err();
    assert!(
        matches!(
            e.code(),
            Some(Code::Unavailable | Code::Unknown | Code::Internal)
        ),
        "{e}"
    );
    let mut c = client(&g).await;
    let ps = c
        .providers(Some(&ProtocolId::from_name(proto)))
        .await
        .unwrap();
    assert_eq!(ps[0].stats[0].broken, 1, "a witnessed break");
    g.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_killed_mid_request_is_retried_with_idempotency_id() {
    let g = start(fast_router()).await;
    let proto = "test/die-retry/v1";
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    // The doomed provider is cheap, so it is chosen first; the backup is dear.
    let rt = add_killable(
        &g.router_url,
        provider("doomed", proto, 1, Arc::new(Hang(tx))),
    );
    add(
        &g,
        provider("backup", proto, 1000, Arc::new(Echo)),
        Duration::from_secs(30),
    )
    .await;
    let mut c = client(&g).await;
    let id = ProtocolId::from_name(proto);
    let o = CallOptions {
        idempotency_id: Some(b"req-1".to_vec()),
        ..opts()
    };
    let call = tokio::spawn(async move { c.complete(&id, Bytes::from_static(b"x"), &o).await });
    rx.recv().await.unwrap();
    rt.shutdown_background();
    let done = call.await.unwrap().unwrap();
    assert_eq!(&done.completion[..], b"x");
    let mut c = client(&g).await;
    let ps = c.providers(Some(&id)).await.unwrap();
    let by_name = |n: &str| {
        ps.iter()
            .find(|p| p.info.as_ref().unwrap().name == n)
            .unwrap()
            .stats[0]
            .clone()
    };
    assert_eq!(by_name("doomed").broken, 1);
    assert_eq!(by_name("backup").kept, 1);
    assert_eq!(
        done.receipt.receipt.provider_id[..],
        ps.iter()
            .find(|p| p.info.as_ref().unwrap().name == "backup")
            .unwrap()
            .info
            .as_ref()
            .unwrap()
            .provider_id[..]
    );
    g.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_request_is_passed_on_while_it_arrives_and_retried_from_the_kept_frames() {
    let g = start(fast_router()).await;
    let proto = "test/die-retry-stream/v1";
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    // The doomed provider is cheap, so it is chosen first; the backup is dear.
    let rt = add_killable(
        &g.router_url,
        provider("doomed", proto, 1, Arc::new(Hang(tx))),
    );
    add(
        &g,
        provider("backup", proto, 1000, Arc::new(Echo)),
        Duration::from_secs(30),
    )
    .await;
    let mut c = client(&g).await;
    let id = ProtocolId::from_name(proto);
    let o = CallOptions {
        idempotency_id: Some(b"req-stream-1".to_vec()),
        ..opts()
    };
    // Three and a bit 1 MiB frames: the doomed provider has all of them (cut
    // through the router) when it signals; the router still holds them for the retry.
    let big = Bytes::from(
        (0..(3u32 << 20) + 77)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<_>>(),
    );
    let sent = big.clone();
    let call = tokio::spawn(async move { c.complete_stream(&id, sent, &o).await });
    rx.recv().await.unwrap();
    rt.shutdown_background();
    let done = call.await.unwrap().unwrap();
    assert!(done.completion == big);
    done.receipt.verify_for(&id, &big, &big).unwrap();
    let mut c = client(&g).await;
    let ps = c.providers(Some(&id)).await.unwrap();
    let by_name = |n: &str| {
        ps.iter()
            .find(|p| p.info.as_ref().unwrap().name == n)
            .unwrap()
            .stats[0]
            .clone()
    };
    assert_eq!(by_name("doomed").broken, 1);
    assert_eq!(by_name("backup").kept, 1);
    g.stop().await;
}

/// Counts the requests it completes.
struct Counting(Arc<std::sync::atomic::AtomicUsize>);

#[tonic::async_trait]
impl veilgrid_kit::provider::Handler for Counting {
    async fn complete(
        &self,
        _: &veilgrid_kit::provider::Context,
        payload: Bytes,
    ) -> Result<Bytes, tonic::Status> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(payload)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_cut_short_or_overlong_never_reaches_the_provider_as_a_request() {
    use veilgrid_proto::grid::v1::{CompletionChunk, completion_chunk::Part};
    let g = start(fast_router()).await;
    let proto = "test/count-stream/v1";
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    add(
        &g,
        provider("counter", proto, 1, Arc::new(Counting(done.clone()))),
        Duration::from_secs(30),
    )
    .await;
    let id = ProtocolId::from_name(proto);
    let header = |declared: u64| CompletionChunk {
        part: Some(Part::Header(CompletionRequest {
            protocol_id: Bytes::copy_from_slice(id.as_bytes()),
            stream_length: declared,
            ..Default::default()
        })),
    };
    let data = |n: usize| CompletionChunk {
        part: Some(Part::Data(Bytes::from(vec![9u8; n]))),
    };
    let mut raw = RouterClient::connect(g.router_url.clone()).await.unwrap();
    // Declares 3 MiB, sends 2 MiB and ends: the router has passed 2 MiB on, but
    // the provider is told the stream is short and never completes it.
    let frames = vec![header(3 << 20), data(1 << 20), data(1 << 20)];
    let e = raw
        .complete_stream(futures::stream::iter(frames))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("ended after"), "{e:?}");
    // Declares 1 MiB, sends more.
    let frames = vec![header(1 << 20), data(1 << 20), data(1)];
    let e = raw
        .complete_stream(futures::stream::iter(frames))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    // A well-formed stream after both still completes, and it is the only one.
    let frames = vec![header(5), data(5)];
    let r = raw
        .complete_stream(futures::stream::iter(frames))
        .await
        .unwrap()
        .into_inner();
    let resp = veilgrid_kit::chunks::collect_response(r, 1 << 20)
        .await
        .unwrap();
    assert_eq!(resp.completion.len(), 5);
    // Give a wrongly completed request time to show up.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(done.load(std::sync::atomic::Ordering::SeqCst), 1);
    // The caller's malformed streams are not the provider's broken promises.
    let mut c = client(&g).await;
    let ps = c.providers(Some(&id)).await.unwrap();
    assert_eq!((ps[0].stats[0].kept, ps[0].stats[0].broken), (1, 0));
    g.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_payload_is_unreadable_to_the_router() {
    let seen: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let mut cfg = fast_router();
    let tap = seen.clone();
    cfg.observer = Some(Arc::new(move |_, bytes: &[u8]| {
        tap.lock().unwrap().push(bytes.to_vec());
    }));
    let g = start(cfg).await;
    let mut c = client(&g).await;
    let secret = b"account 0042, balance 1,337,000 EUR, diagnosis: none";
    let contains_secret =
        |bytes: &[u8]| bytes.windows(8).any(|w| secret.windows(8).any(|s| s == w));

    // Control: the tap does see plaintext of the plain protocol.
    c.complete(&echo_id(), Bytes::from_static(secret), &opts())
        .await
        .unwrap();
    assert!(
        seen.lock().unwrap().iter().any(|b| contains_secret(b)),
        "the tap works"
    );
    seen.lock().unwrap().clear();

    let ps = c
        .providers(Some(&ProtocolId::from_name(ECHO_SEALED)))
        .await
        .unwrap();
    let key = SealPublicKey::from_bytes(&ps[0].info.as_ref().unwrap().seal_public_key).unwrap();
    let reply = SealKeyPair::generate();
    let sealed = echo::seal_request(&key, &reply, secret).unwrap();
    let done = c
        .complete(
            &ProtocolId::from_name(ECHO_SEALED),
            Bytes::from(sealed),
            &opts(),
        )
        .await
        .unwrap();
    assert_eq!(
        &echo::open_reply(&reply, &done.completion).unwrap()[..],
        secret
    );
    let views = seen.lock().unwrap().clone();
    assert_eq!(views.len(), 2, "request and completion passed the tap");
    assert!(
        views.iter().all(|b| !contains_secret(b)),
        "the router saw plaintext"
    );
    // And the router's view does not open with any key but the provider's.
    assert!(
        SealKeyPair::generate()
            .open(b"veilgrid/echo/sealed/v1", b"", &views[0])
            .is_err()
    );
    g.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_restart_loses_no_ledger_entries() {
    let dir = tempfile::tempdir().unwrap();
    let opts_grid = || veilgrid::grid::GridOptions {
        data_dir: Some(dir.path().to_path_buf()),
        router: fast_router(),
        ..Default::default()
    };
    let g = veilgrid::grid::start(opts_grid()).await.unwrap();
    let mut c = client(&g).await;
    for i in 0..5u8 {
        c.complete(&echo_id(), Bytes::from(vec![i]), &opts())
            .await
            .unwrap();
    }
    g.stop().await;
    let g = veilgrid::grid::start(opts_grid()).await.unwrap();
    let mut c = client(&g).await;
    let ps = c.providers(Some(&echo_id())).await.unwrap();
    assert_eq!(
        ps.len(),
        1,
        "same identity re-registered, not a second provider"
    );
    let s = ps[0]
        .stats
        .iter()
        .find(|s| s.protocol_name == ECHO)
        .unwrap();
    assert_eq!(s.kept, 5);
    assert_eq!(g.state.store().receipts(0, 100).unwrap().len(), 5);
    g.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_in_another_providers_name_is_refused() {
    let g = start(fast_router()).await;
    let mut raw = RouterClient::connect(g.router_url.clone()).await.unwrap();
    let victim = provider("victim", "test/x/v1", 1, Arc::new(Echo));
    let mut req = veilgrid_kit::registration::signed_registration(
        &victim,
        "http://127.0.0.1:1",
        Duration::from_secs(5),
    );
    // Mallory re-signs the victim's registration with her own key.
    let mallory = veilgrid_core::sign::SigningIdentity::generate();
    let mut msg = veilgrid_kit::registration::REGISTER_TAG.to_vec();
    msg.extend_from_slice(&req.provider_info);
    req.signature = Bytes::copy_from_slice(&mallory.sign(&msg));
    let s = raw.register(req).await.unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied);
    // Garbage registration bytes: INVALID_ARGUMENT.
    let s = raw
        .register(veilgrid_proto::grid::v1::RegisterRequest {
            provider_info: Bytes::from_static(b"\xff\xff\xff"),
            signature: Bytes::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument);
    g.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_receipt_is_a_broken_promise() {
    use veilgrid_proto::grid::v1::{
        CompletionChunk, CompletionResponse,
        provider_server::{Provider, ProviderServer},
    };
    /// Completes correctly but inflates the price after signing.
    #[derive(Clone)]
    struct Cheat(veilgrid_kit::provider::ProviderService);
    #[tonic::async_trait]
    impl Provider for Cheat {
        async fn complete(
            &self,
            r: tonic::Request<CompletionRequest>,
        ) -> Result<tonic::Response<CompletionResponse>, tonic::Status> {
            let mut resp = self.0.handle(r.into_inner()).await?;
            if let Some(rc) = resp.receipt.as_mut() {
                rc.price += 100;
            }
            Ok(tonic::Response::new(resp))
        }
        type CompleteStreamStream = tokio_stream::Empty<Result<CompletionChunk, tonic::Status>>;
        async fn complete_stream(
            &self,
            _: tonic::Request<tonic::Streaming<CompletionChunk>>,
        ) -> Result<tonic::Response<Self::CompleteStreamStream>, tonic::Status> {
            Err(tonic::Status::unimplemented("no"))
        }
    }
    let g = start(fast_router()).await;
    let proto = "test/cheat/v1";
    let p = provider("cheat", proto, 1, Arc::new(Echo));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let mut routes = tonic::service::RoutesBuilder::default();
    routes.add_service(ProviderServer::new(Cheat(p.clone())));
    tokio::spawn(veilgrid_kit::server::serve(
        listener,
        g.shutdown.child_token(),
        routes,
    ));
    let mut raw = RouterClient::connect(g.router_url.clone()).await.unwrap();
    raw.register(veilgrid_kit::registration::signed_registration(
        &p,
        &endpoint,
        Duration::from_secs(30),
    ))
    .await
    .unwrap();
    let mut c = client(&g).await;
    let id = ProtocolId::from_name(proto);
    let e = c
        .complete(&id, Bytes::from_static(b"x"), &opts())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(Code::Unavailable));
    assert!(e.to_string().contains("invalid receipt"), "{e}");
    let ps = c.providers(Some(&id)).await.unwrap();
    assert_eq!((ps[0].stats[0].kept, ps[0].stats[0].broken), (0, 1));
    g.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_reflection_are_served() {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let g = start(fast_router()).await;
    let mut h = HealthClient::new(
        tonic::transport::Channel::from_shared(g.router_url.clone())
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    let r = h
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        r.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let mut r = ServerReflectionClient::new(
        tonic::transport::Channel::from_shared(g.router_url.clone())
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = r
        .server_reflection_info(futures::stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    let resp = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = resp.message_response else {
        panic!("unexpected reflection answer");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"veilgrid.grid.v1.Router".to_owned()),
        "{names:?}"
    );
    assert!(
        names.contains(&"grpc.health.v1.Health".to_owned()),
        "{names:?}"
    );
    g.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selection_avoids_a_provider_below_the_reputation_floor() {
    let g = start(fast_router()).await;
    let proto = "test/rep/v1";
    add(
        &g,
        provider("flaky", proto, 1, Arc::new(Slow(Duration::from_secs(5)))),
        Duration::from_secs(30),
    )
    .await;
    let mut c = client(&g).await;
    let id = ProtocolId::from_name(proto);
    // Two witnessed breaks: reputation (0+1)/(0+2+2) = 0.25.
    for _ in 0..2 {
        let o = CallOptions {
            deadline: Some(Duration::from_millis(100)),
            ..CallOptions::default()
        };
        c.complete(&id, Bytes::from_static(b"x"), &o)
            .await
            .unwrap_err();
    }
    add(
        &g,
        provider("solid", proto, 1, Arc::new(Echo)),
        Duration::from_secs(30),
    )
    .await;
    let o = CallOptions {
        min_reputation: 0.4,
        ..opts()
    };
    for _ in 0..5 {
        c.complete(&id, Bytes::from_static(b"x"), &o).await.unwrap();
    }
    let ps = c.providers(Some(&id)).await.unwrap();
    let flaky = ps
        .iter()
        .find(|p| p.info.as_ref().unwrap().name == "flaky")
        .unwrap();
    assert_eq!((flaky.stats[0].kept, flaky.stats[0].broken), (0, 2));
    g.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_router_is_a_clear_error() {
    let e = GridClient::connect("http://127.0.0.1:1").await.unwrap_err();
    assert!(e.to_string().contains("cannot reach the router"), "{e}");
}
