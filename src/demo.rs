//! `veilgrid demo`: the end-to-end story, step by step. Each issue adds a chapter.

mod aggregation;
mod audit;
mod fhe;
mod matching;

use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use veilgrid_core::{
    protocol::ProtocolId,
    seal::{SealKeyPair, SealPublicKey},
};
use veilgrid_kit::echo::{self, ECHO, ECHO_SEALED};

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

/// Run the story against `router`, or against a grid started in-process.
pub async fn run(router: Option<&str>, print: bool) -> Result<Report, Error> {
    let local = match router {
        Some(_) => None,
        None => {
            if print {
                println!("no --router given: starting a grid in-process on loopback");
            }
            Some(
                grid::start(GridOptions {
                    committee: 5,
                    ..GridOptions::default()
                })
                .await?,
            )
        }
    };
    let addr = router
        .map(str::to_owned)
        .or_else(|| local.as_ref().map(|g| g.router_url.clone()))
        .unwrap_or_default();
    let mut story = Story {
        steps: Vec::new(),
        print,
        chapter: String::new(),
    };
    chapter_grid(&mut story, &addr).await;
    aggregation::chapter(&mut story, &addr).await;
    matching::chapter(
        &mut story,
        &addr,
        local.as_ref().map(|g| g.shutdown.clone()),
    )
    .await;
    fhe::chapter_fhe(&mut story, &addr).await;
    audit::chapter(&mut story, &addr).await;
    if let Some(g) = local {
        g.stop().await;
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
async fn chapter_grid(story: &mut Story, addr: &str) {
    story.chapter("the grid: byte completion through the router");
    let mut client = None;
    let connected = story
        .step("connect to the router", || async {
            client = Some(GridClient::connect(addr).await?);
            Ok(format!("connected to {addr}"))
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
