//! Chapter 2 of the demo: one-shot secure aggregation. 50 clients, 5 of them drop out; a
//! committee of 5 (t = 2) of which 2 members go silent; the sum next to the plaintext sum the
//! demo computes itself. Members and clients are separate processes (`veilgrid agg committee
//! serve`, `veilgrid agg submit`) when the demo runs as the `veilgrid` program; otherwise (the
//! library called from elsewhere) they run in this process.

use std::{path::PathBuf, process::Stdio, time::Duration};

use bytes::Bytes;
use tokio::process::{Child, Command};
use veilgrid_aggregator::{
    client::{self as agg, AggClient, CommitteeKeys},
    member::Member,
};
use veilgrid_core::protocol::ProtocolId;
use veilgrid_kit::{Shutdown, clock::now_ms};
use veilgrid_proto::aggregation::v1 as pb;

use super::{Story, Target};
use crate::{Error, grid};

const CLIENTS: usize = 50;
const DROPOUTS: usize = 5;
const MEMBERS: usize = 5;
const SILENT: usize = 2;
const LENGTH: usize = 64;
const BITS: u32 = 16;

/// A committee member: a child process, or a task of this one.
enum MemberRun {
    Process(Child),
    Task(Shutdown),
}

impl MemberRun {
    /// Stop it (a process stops cleanly, releasing its lease, when its standard input closes).
    async fn stop(self) {
        match self {
            MemberRun::Process(mut c) => {
                drop(c.stdin.take());
                if tokio::time::timeout(Duration::from_secs(5), c.wait())
                    .await
                    .is_err()
                {
                    let _ = c.kill().await;
                }
            }
            MemberRun::Task(sd) => sd.cancel(),
        }
    }
}

/// The `veilgrid` program, when that is what runs (not a test harness or another program).
fn veilgrid_exe() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let name = exe.file_stem()?.to_str()?;
    (name == "veilgrid").then_some(exe)
}

fn scratch_dir() -> Result<PathBuf, Error> {
    let dir = std::env::temp_dir().join(format!(
        "veilgrid-demo-agg-{}-{}",
        std::process::id(),
        now_ms()
    ));
    std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
        path: dir.display().to_string(),
        source,
    })?;
    Ok(dir)
}

async fn start_member(
    exe: Option<&PathBuf>,
    dir: &std::path::Path,
    i: usize,
    t: &Target,
) -> Result<(CommitteeKeys, MemberRun), Error> {
    let data = dir.join(format!("member-{i}"));
    // `agg committee serve --count 1 --data-dir D` keeps its identity in D/agg-member-0.
    let identity = grid::identity_for(Some(&data), "agg-member-0")?;
    let keys = CommitteeKeys {
        seal: Bytes::copy_from_slice(&identity.seal_public().to_bytes()),
        signing: Bytes::copy_from_slice(&identity.provider_id()),
    };
    let run = match exe {
        Some(exe) => MemberRun::Process({
            // `agg committee serve --count 1` presents the certificate agg-member-0:
            // issue it here, once, before the member processes start (they would
            // otherwise race to create it)
            t.service("agg-member-0")?;
            Command::new(exe)
                .args([
                    "agg",
                    "committee",
                    "serve",
                    "--count",
                    "1",
                    "--stop-on-stdin-eof",
                ])
                .args(t.cli_args())
                .arg("--data-dir")
                .arg(&data)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .map_err(|source| Error::Io {
                    path: exe.display().to_string(),
                    source,
                })?
        }),
        None => {
            let sd = Shutdown::new();
            let name = format!("demo-member-{i}");
            let security = t.service(&name)?;
            let client = AggClient::via_router_secure(&t.addr, &security)
                .map_err(|e| Error::Service(e.to_string()))?;
            let m = Member::new(identity, client);
            grid::start_provider_secure(
                m.provider(&name),
                &t.addr,
                Duration::from_secs(30),
                sd.clone(),
                &security,
            )
            .await?;
            tokio::spawn(m.run(Duration::from_millis(300), sd.clone()));
            MemberRun::Task(sd)
        }
    };
    Ok((keys, run))
}

/// Wait until the router lists every member in `keys` as serving.
async fn registered(t: &Target, keys: &[CommitteeKeys]) -> Result<(), Error> {
    let give_up = tokio::time::Instant::now() + Duration::from_secs(20);
    let security = t.client()?;
    loop {
        let listed = agg::committee_keys_secure(&t.addr, usize::MAX, &security)
            .await
            .map_err(|e| Error::Service(e.to_string()))?;
        if keys.iter().all(|k| listed.contains(k)) {
            return Ok(());
        }
        if tokio::time::Instant::now() > give_up {
            return Err(Error::Service(
                "committee members did not register with the router within 20 s".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn submit(
    exe: Option<&PathBuf>,
    t: &Target,
    info: &pb::RoundInfo,
    dir: &std::path::Path,
    client: u64,
    x: &[u64],
) -> Result<usize, Error> {
    let req = agg::build_submission(info, client, x).map_err(|e| Error::Service(e.to_string()))?;
    let bytes = req.message.len();
    match exe {
        Some(exe) => {
            let file = dir.join(format!("client-{client}.txt"));
            let text: String = x.iter().map(|v| format!("{v}\n")).collect();
            std::fs::write(&file, text).map_err(|source| Error::Io {
                path: file.display().to_string(),
                source,
            })?;
            let out = Command::new(exe)
                .args(["agg", "submit"])
                .args(t.cli_args())
                .arg("--round")
                .arg(hex::encode(&info.round_id))
                .arg("--vector")
                .arg(&file)
                .args(["--client", &client.to_string()])
                .stdin(Stdio::null())
                .output()
                .await
                .map_err(|source| Error::Io {
                    path: exe.display().to_string(),
                    source,
                })?;
            if !out.status.success() {
                return Err(Error::Service(format!(
                    "client {client}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
        }
        None => {
            AggClient::via_router_secure(&t.addr, &t.client()?)
                .map_err(|e| Error::Service(e.to_string()))?
                .submit(req)
                .await
                .map_err(|s| Error::rpc("submitting", s))?;
        }
    }
    Ok(bytes)
}

/// The chapter.
pub(super) async fn chapter(story: &mut Story, t: &Target) {
    story.chapter("one-shot secure aggregation: 50 clients, 5 drop out, 2 members silent");
    let served = match t.connect().await {
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
    let Ok(client) = t.client().and_then(|sec| {
        AggClient::via_router_secure(&t.addr, &sec).map_err(|e| Error::Service(e.to_string()))
    }) else {
        return;
    };
    let exe = veilgrid_exe();
    let Ok(dir) = scratch_dir() else {
        return;
    };
    let mut keys = Vec::new();
    let mut runs = Vec::new();
    let how = if exe.is_some() {
        "each its own process (`veilgrid agg committee serve`)"
    } else {
        "in this process"
    };
    let started = story
        .step(
            &format!("start a committee of 5 members, {how}"),
            || async {
                for i in 0..MEMBERS {
                    let (k, r) = start_member(exe.as_ref(), &dir, i, t).await?;
                    keys.push(k);
                    runs.push(r);
                }
                registered(t, &keys).await?;
                Ok("5 members registered; clients seal each share to its member's X25519 key, members sign with their Ed25519 key".into())
            },
        )
        .await;
    if started {
        run_round(story, t, &client, exe.as_ref(), &dir, &keys, &mut runs).await;
    }
    for r in runs {
        r.stop().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}

async fn run_round(
    story: &mut Story,
    t: &Target,
    client: &AggClient,
    exe: Option<&PathBuf>,
    dir: &std::path::Path,
    keys: &[CommitteeKeys],
    runs: &mut Vec<MemberRun>,
) {
    let mut info = None;
    // Processes take longer to start than tasks: give the clients more time.
    let collect_ms = if exe.is_some() { 4_000 } else { 3_000 };
    let deadline_ms = now_ms() + collect_ms;
    story
        .step(
            "create a round: L = 64, 16-bit entries, N = 50, m = 5, t = 2",
            || async {
                let mut req = pb::CreateRoundRequest {
                    length: LENGTH as u32,
                    bits: BITS,
                    max_clients: CLIENTS as u32,
                    threshold: 2,
                    deadline_unix_ms: deadline_ms,
                    member_deadline_unix_ms: deadline_ms + 30_000,
                    check_window_ms: 1_500,
                    ..Default::default()
                };
                CommitteeKeys::fill(keys, &mut req);
                let i = client
                    .clone()
                    .create_round(req)
                    .await
                    .map_err(|s| Error::rpc("creating the round", s))?;
                let id = hex::encode(&i.round_id);
                info = Some(i);
                Ok(format!(
                    "round {id}, clients' deadline in {} s",
                    collect_ms / 1000
                ))
            },
        )
        .await;
    let Some(info) = info else {
        return;
    };
    let mut plain = vec![0u64; LENGTH];
    let how = if exe.is_some() {
        "each its own process (`veilgrid agg submit`)"
    } else {
        "from this process"
    };
    story
        .step(
            &format!("45 clients submit one message each through the router, {how}; 5 never do"),
            || async {
                use std::hash::BuildHasher;
                let h = std::collections::hash_map::RandomState::new();
                let inputs: Vec<Vec<u64>> = (0..CLIENTS - DROPOUTS)
                    .map(|c| {
                        (0..LENGTH)
                            .map(|j| h.hash_one((c, j)) % (1 << BITS))
                            .collect()
                    })
                    .collect();
                for x in &inputs {
                    for (p, v) in plain.iter_mut().zip(x) {
                        *p += v;
                    }
                }
                let mut bytes = 0;
                // A few at a time: every process is a full program start.
                for batch in inputs.chunks(8).enumerate() {
                    let (b, xs) = batch;
                    let sends = xs.iter().enumerate().map(|(k, x)| {
                        let id = (b * 8 + k) as u64 + 1;
                        submit(exe, t, &info, dir, id, x)
                    });
                    for r in futures::future::join_all(sends).await {
                        bytes = r?;
                    }
                }
                Ok(format!(
                    "{} messages of {bytes} bytes (masked vector + 5 sealed shares)",
                    CLIENTS - DROPOUTS
                ))
            },
        )
        .await;
    let mut result = None;
    story
        .step(
            "2 members go silent; at the deadline the other 3 check their shares and answer",
            || async {
                for r in runs.drain(MEMBERS - SILENT..) {
                    r.stop().await;
                }
                let mut c = client.clone();
                let give_up = tokio::time::Instant::now()
                    + Duration::from_millis(deadline_ms.saturating_sub(now_ms()) + 20_000);
                let r = loop {
                    match c.result(&info.round_id).await {
                        Ok(r) => break r,
                        Err(s)
                            if s.code() == tonic::Code::FailedPrecondition
                                && !s.message().contains("failed")
                                && tokio::time::Instant::now() < give_up =>
                        {
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                        Err(s) => return Err(Error::rpc("fetching the result", s)),
                    }
                };
                let detail = format!(
                    "members {:?} answered (t + 1 = 3 needed); {} clients counted",
                    r.members,
                    r.counted.len()
                );
                result = Some(r);
                Ok(detail)
            },
        )
        .await;
    let Some(r) = result else {
        return;
    };
    story
        .step(
            "the sum, next to the plaintext sum computed by the demo",
            || async {
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
}
