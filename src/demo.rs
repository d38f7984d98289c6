//! `veilgrid demo`: the end-to-end story, step by step. Each issue adds a chapter.

mod aggregation;
mod audit;
mod fhe;
mod matching;

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use bytes::Bytes;
use serde::Serialize;
use veilgrid_core::{
    protocol::ProtocolId,
    seal::{SealKeyPair, SealPublicKey},
};
use veilgrid_kit::{
    auth::Role,
    echo::{self, ECHO, ECHO_SEALED},
    tls::Security,
};

use crate::{
    Error,
    client::{CallOptions, GridClient},
    grid::{self, GridOptions},
};

/// One step of the story.
#[derive(Debug, Serialize)]
pub struct Step {
    /// Chapter.
    pub chapter: String,
    /// What was done.
    pub name: String,
    /// Whether it worked.
    pub ok: bool,
    /// What happened.
    pub detail: String,
    /// How long it took.
    pub ms: f64,
}

/// What the demo did.
#[derive(Debug, Serialize)]
pub struct Report {
    /// True when every step worked.
    pub ok: bool,
    /// The router used.
    pub router: String,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

/// The identity the demo's client calls present under mutual TLS (the certificate
/// `veilgrid up` issues for the command line): what the demo creates belongs to it.
const IDENTITY: &str = "cli";

/// The grid the demo runs against: the router's URL and, for a mutual-TLS grid, the
/// TLS directory with the CA (its key too, to issue certificates for the providers the
/// demo starts itself: members, priced echoes, matching nodes).
#[derive(Debug, Clone)]
pub(crate) struct Target {
    addr: String,
    tls: Option<PathBuf>,
}

impl Target {
    /// How the demo's client calls connect.
    fn client(&self) -> Result<Security, Error> {
        grid::security_for(self.tls.as_deref(), IDENTITY, Role::Client)
    }

    /// How a provider named `name` the demo starts serves and registers.
    fn service(&self, name: &str) -> Result<Security, Error> {
        grid::service_security(self.tls.as_deref(), name)
    }

    /// A client of the router.
    async fn connect(&self) -> Result<GridClient, Error> {
        GridClient::connect_secure(&self.addr, &self.client()?).await
    }

    /// The arguments that point a `veilgrid` child process at this grid.
    fn cli_args(&self) -> Vec<String> {
        let mut a = vec!["--router".to_owned(), self.addr.clone()];
        if let Some(d) = &self.tls {
            a.extend(["--tls-dir".to_owned(), d.display().to_string()]);
        }
        a
    }
}

struct Story {
    steps: Vec<Step>,
    print: bool,
    chapter: String,
}

impl Story {
    fn chapter(&mut self, name: &str) {
        self.chapter = name.to_owned();
        if self.print {
            println!("\n== {name} ==");
        }
    }

    async fn step<F, Fut>(&mut self, name: &str, f: F) -> bool
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<String, Error>>,
    {
        let t = Instant::now();
        let r = f().await;
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        let (ok, detail) = match r {
            Ok(d) => (true, d),
            Err(e) => (false, e.to_string()),
        };
        if self.print {
            println!(
                "  [{}] {name} ({ms:.1} ms)\n        {detail}",
                if ok { "ok" } else { "FAILED" }
            );
        }
        self.steps.push(Step {
            chapter: self.chapter.clone(),
            name: name.to_owned(),
            ok,
            detail,
            ms,
        });
        ok
    }
}

/// Run the story against `router`, or against a grid started in-process (under mutual
/// TLS, with a CA in a scratch directory). A mutual-TLS router (`https://`) is reached
/// with the CA and certificates in `tls_dir`.
pub async fn run(
    router: Option<&str>,
    tls_dir: Option<&Path>,
    print: bool,
) -> Result<Report, Error> {
    let mut scratch = None;
    let local = match router {
        Some(_) => None,
        None => {
            if print {
                println!("no --router given: starting a grid in-process on loopback (mutual TLS)");
            }
            let dir = std::env::temp_dir().join(format!(
                "veilgrid-demo-tls-{}-{}",
                std::process::id(),
                veilgrid_kit::clock::now_ms()
            ));
            scratch = Some(dir.clone());
            Some(
                grid::start(GridOptions {
                    committee: 5,
                    tls: Some(dir),
                    ..GridOptions::default()
                })
                .await?,
            )
        }
    };
    if let (Some(r), Some(d)) = (router, tls_dir)
        && r.starts_with("https://")
        && !d.join(veilgrid_kit::tls_ca::CA_CERT).exists()
    {
        // never make a CA here: certificates from it would not be trusted by that grid
        return Err(Error::Usage(format!(
            "{r} is a mutual-TLS router: give --tls-dir DIR holding its CA (and its key, for the providers the demo starts), or run where `veilgrid up` keeps {}",
            d.display()
        )));
    }
    let t = match (router, &local) {
        (Some(r), _) => Target {
            addr: r.to_owned(),
            tls: r
                .starts_with("https://")
                .then(|| tls_dir.map(Path::to_path_buf))
                .flatten(),
        },
        (None, Some(g)) => Target {
            addr: g.router_url.clone(),
            tls: g.tls.clone(),
        },
        (None, None) => return Err(Error::Service("no grid to run against".into())),
    };
    let addr = t.addr.clone();
    let mut story = Story {
        steps: Vec::new(),
        print,
        chapter: String::new(),
    };
    chapter_grid(&mut story, &t).await;
    aggregation::chapter(&mut story, &t).await;
    matching::chapter(&mut story, &t, local.as_ref().map(|g| g.shutdown.clone())).await;
    fhe::chapter_fhe(&mut story, &t).await;
    audit::chapter(&mut story, &t).await;
    if let Some(g) = local {
        g.stop().await;
    }
    if let Some(d) = scratch {
        let _ = std::fs::remove_dir_all(d);
    }
    let ok = story.steps.iter().all(|s| s.ok);
    if print {
        let n_ok = story.steps.iter().filter(|s| s.ok).count();
        println!(
            "\nsummary: {n_ok}/{} steps succeeded against {addr}{}",
            story.steps.len(),
            if ok { "" } else { " — SOME STEPS FAILED" }
        );
    }
    Ok(Report {
        ok,
        router: addr,
        steps: story.steps,
    })
}

/// Chapter 1: the grid itself — providers, plain, sealed and streamed completions.
async fn chapter_grid(story: &mut Story, t: &Target) {
    story.chapter("the grid: byte completion through the router");
    let addr = &t.addr;
    let mut client = None;
    let connected = story
        .step("connect to the router", || async {
            client = Some(t.connect().await?);
            Ok(match &t.tls {
                Some(_) => format!("connected to {addr} over mutual TLS as client:{IDENTITY}"),
                None => format!("connected to {addr} (plaintext)"),
            })
        })
        .await;
    let Some(mut c) = client.filter(|_| connected) else {
        return;
    };
    let mut echo_key = None;
    story
        .step("list providers", || async {
            let ps = c
                .providers(Some(&ProtocolId::from_name(ECHO_SEALED)))
                .await?;
            let p = ps.first().and_then(|p| p.info.clone()).ok_or_else(|| {
                Error::Service("no provider serves veilgrid/echo/sealed/v1".into())
            })?;
            echo_key = Some(SealPublicKey::from_bytes(&p.seal_public_key)?);
            Ok(format!(
                "{} provider(s) for veilgrid/echo/sealed/v1; first: {} ({})",
                ps.len(),
                p.name,
                hex::encode(&p.provider_id[..8])
            ))
        })
        .await;
    let opts = CallOptions {
        deadline: Some(Duration::from_secs(10)),
        ..CallOptions::default()
    };
    story
        .step("plain echo, receipt verified", || async {
            let msg = Bytes::from_static(b"hello, veilgrid");
            let done = c
                .complete(&ProtocolId::from_name(ECHO), msg.clone(), &opts)
                .await?;
            if done.completion != msg {
                return Err(Error::Verify("echo changed the bytes".into()));
            }
            Ok(format!(
                "echoed {} bytes in {:.2} ms; receipt signed by {} verified (price {} {})",
                msg.len(),
                done.latency.as_secs_f64() * 1e3,
                hex::encode(&done.receipt.receipt.provider_id[..8]),
                done.receipt.receipt.price,
                done.receipt.receipt.currency
            ))
        })
        .await;
    if let Some(key) = echo_key {
        story
            .step("sealed echo: the router carries only ciphertext", || async {
                let secret = b"patient 4711: glucose 5.4 mmol/L";
                let reply = SealKeyPair::generate();
                let sealed = echo::seal_request(&key, &reply, secret)?;
                let done = c
                    .complete(&ProtocolId::from_name(ECHO_SEALED), Bytes::from(sealed.clone()), &opts)
                    .await?;
                let opened = echo::open_reply(&reply, &done.completion)?;
                if &opened[..] != secret {
                    return Err(Error::Verify("sealed echo returned other bytes".into()));
                }
                let visible = sealed.windows(8).any(|w| secret.windows(8).any(|s| s == w))
                    || done.completion.windows(8).any(|w| secret.windows(8).any(|s| s == w));
                if visible {
                    return Err(Error::Verify("plaintext visible on the wire".into()));
                }
                Ok(format!(
                    "sent {} sealed bytes, got {} sealed bytes back; opened locally to the original {} bytes",
                    sealed.len(),
                    done.completion.len(),
                    secret.len()
                ))
            })
            .await;
    }
    story
        .step("streamed 16 MiB payload in 1 MiB chunks", || async {
            let big: Vec<u8> = (0..16u32 << 20)
                .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
                .collect();
            let big = Bytes::from(big);
            let done = c
                .complete_stream(&ProtocolId::from_name(ECHO), big.clone(), &opts)
                .await?;
            if done.completion != big {
                return Err(Error::Verify("streamed echo changed the bytes".into()));
            }
            Ok(format!(
                "16 MiB there and back in {:.0} ms ({:.0} MiB/s), receipt verified",
                done.latency.as_secs_f64() * 1e3,
                32.0 / done.latency.as_secs_f64()
            ))
        })
        .await;
    story
        .step("promise ledger", || async {
            let ps = c.providers(None).await?;
            let lines: Vec<String> = ps
                .iter()
                .flat_map(|p| {
                    let name = p.info.as_ref().map(|i| i.name.clone()).unwrap_or_default();
                    p.stats.iter().map(move |s| {
                        format!(
                            "{name} {}: kept {}, broken {}, reputation {:.3}",
                            s.protocol_name, s.kept, s.broken, s.reputation
                        )
                    })
                })
                .collect();
            Ok(lines.join("; "))
        })
        .await;
}
