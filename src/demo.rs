//! `veilgrid demo`: the end-to-end story, step by step. Each issue adds a chapter.

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
    chapter_aggregation(&mut story, &addr).await;
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

/// Chapter 2: one-shot secure aggregation. 50 clients, 5 of them drop out, a committee of 5
/// (t = 2) of which 2 members stay silent; the sum next to the plaintext sum.
async fn chapter_aggregation(story: &mut Story, addr: &str) {
    use veilgrid_aggregator::{
        client::{self as agg, AggClient},
        member::{Member, Outcome},
    };
    use veilgrid_proto::aggregation::v1 as pb;

    const CLIENTS: usize = 50;
    const DROPOUTS: usize = 5;
    const LENGTH: usize = 64;
    const BITS: u32 = 16;
    story.chapter("one-shot secure aggregation: 50 clients, 5 drop out, 2 members silent");
    let served = match GridClient::connect(addr).await {
        Ok(mut g) => g
            .providers(Some(&ProtocolId::from_name(
                veilgrid_aggregator::protocols::CREATE_ROUND,
            )))
            .await
            .is_ok_and(|p| !p.is_empty()),
        Err(_) => false,
    };
    if !served {
        if story.print {
            println!("  (skipped: no aggregation service is registered with this router)");
        }
        return;
    }
    let sd = veilgrid_kit::Shutdown::new();
    let Ok(client) = AggClient::via_router(addr) else {
        return;
    };
    let mut members = Vec::new();
    let started = story
        .step(
            "start a committee of 5 members (own keys, registered)",
            || async {
                for i in 0..5 {
                    let m = Member::new(
                        std::sync::Arc::new(veilgrid_kit::identity::Identity::generate()),
                        client.clone(),
                    );
                    grid::start_provider(
                        m.provider(&format!("demo-member-{i}")),
                        addr,
                        Duration::from_secs(30),
                        sd.clone(),
                    )
                    .await?;
                    members.push(m);
                }
                Ok("5 members; clients seal each share to its member's X25519 key".into())
            },
        )
        .await;
    if !started {
        sd.cancel();
        return;
    }
    let mut info = None;
    let deadline_ms = veilgrid_kit::clock::now_ms() + 4000;
    story
        .step(
            "create a round: L = 64, 16-bit entries, N = 50, m = 5, t = 2",
            || async {
                let keys = members
                    .iter()
                    .map(|m| Bytes::copy_from_slice(&m.seal_key().to_bytes()))
                    .collect();
                let i = client
                    .clone()
                    .create_round(pb::CreateRoundRequest {
                        length: LENGTH as u32,
                        bits: BITS,
                        max_clients: CLIENTS as u32,
                        threshold: 2,
                        committee_keys: keys,
                        deadline_unix_ms: deadline_ms,
                        min_clients: 0,
                    })
                    .await
                    .map_err(|s| Error::rpc("creating the round", s))?;
                let id = hex::encode(&i.round_id);
                info = Some(i);
                Ok(format!("round {id}, deadline in 4 s"))
            },
        )
        .await;
    let Some(info) = info else {
        sd.cancel();
        return;
    };
    let mut plain = vec![0u64; LENGTH];
    story
        .step(
            "45 clients submit one message each through the router; 5 never do",
            || async {
                use std::hash::BuildHasher;
                let h = std::collections::hash_map::RandomState::new();
                let mut bytes = 0;
                for c in 0..CLIENTS - DROPOUTS {
                    let x: Vec<u64> = (0..LENGTH)
                        .map(|j| h.hash_one((c, j)) % (1 << BITS))
                        .collect();
                    for (p, v) in plain.iter_mut().zip(&x) {
                        *p += v;
                    }
                    let req = agg::build_submission(&info, c as u64 + 1, &x)
                        .map_err(|e| Error::Service(e.to_string()))?;
                    bytes = req.message.len();
                    client
                        .clone()
                        .submit(req)
                        .await
                        .map_err(|s| Error::rpc("submitting", s))?;
                }
                Ok(format!(
                    "{} messages of {bytes} bytes (masked vector + 5 sealed shares)",
                    CLIENTS - DROPOUTS
                ))
            },
        )
        .await;
    story
        .step(
            "deadline passes; 3 members answer, 2 stay silent",
            || async {
                tokio::time::sleep(Duration::from_millis(
                    deadline_ms.saturating_sub(veilgrid_kit::clock::now_ms()) + 100,
                ))
                .await;
                let mut answered = 0;
                for m in members.iter().take(3) {
                    for o in m
                        .work_once()
                        .await
                        .map_err(|e| Error::Service(e.to_string()))?
                    {
                        match o {
                            Outcome::Answered(_) => answered += 1,
                            Outcome::Refused(_, e) => return Err(Error::Service(e.to_string())),
                        }
                    }
                }
                Ok(format!("{answered} member answers (t + 1 = 3 needed)"))
            },
        )
        .await;
    story
        .step(
            "the sum, next to the plaintext sum computed by the demo",
            || async {
                let r = client
                    .clone()
                    .result(&info.round_id)
                    .await
                    .map_err(|s| Error::rpc("fetching the result", s))?;
                let show = |v: &[u64]| format!("{:?} ...", &v[..v.len().min(6)]);
                if r.sum != plain {
                    return Err(Error::Verify(format!(
                        "aggregate {} differs from plaintext {}",
                        show(&r.sum),
                        show(&plain)
                    )));
                }
                Ok(format!(
                    "aggregate {} = plaintext {} over {} counted clients",
                    show(&r.sum),
                    show(&plain),
                    r.counted.len()
                ))
            },
        )
        .await;
    sd.cancel();
}
