//! `veilgrid agg ...`: one-shot secure aggregation rounds (issue 4) through the router.

use std::{path::PathBuf, time::Duration};

use clap::Subcommand;
use serde_json::json;
use veilgrid_aggregator::client::{self, AggClient};
use veilgrid_kit::clock::now_ms;
use veilgrid_proto::aggregation::v1 as pb;

use super::RouterArg;
use crate::Error;

#[derive(Debug, clap::Args)]
pub(crate) struct AggArgs {
    #[command(subcommand)]
    command: AggCommand,
}

#[derive(Debug, Subcommand)]
enum AggCommand {
    /// Rounds.
    Round {
        #[command(subcommand)]
        command: RoundCommand,
    },
    /// Send one client's vector (a file of one integer per line).
    Submit(SubmitArgs),
    /// Print the sum of a round (waits until it is known).
    Result(ResultArgs),
    /// Re-check a finished verifiable round offline from its transcript (range proofs and the
    /// opening of the product of commitments).
    Audit(AuditArgs),
    /// Committee members.
    Committee {
        #[command(subcommand)]
        command: CommitteeCommand,
    },
}

#[derive(Debug, Subcommand)]
enum RoundCommand {
    /// Create a round over the committee members registered with the router.
    Create(CreateArgs),
}

#[derive(Debug, Subcommand)]
enum CommitteeCommand {
    /// Run committee members in this process until Ctrl-C.
    Serve(CommitteeArgs),
}

#[derive(Debug, clap::Args)]
struct CreateArgs {
    #[command(flatten)]
    router: RouterArg,
    /// Entries per vector.
    #[arg(long)]
    length: u32,
    /// Bits per entry.
    #[arg(long)]
    bits: u32,
    /// Most clients.
    #[arg(long)]
    clients: u32,
    /// Committee size m (members taken from the router's listing).
    #[arg(long, default_value_t = 5)]
    committee: usize,
    /// Threshold t: any t + 1 members reconstruct.
    #[arg(long, default_value_t = 2)]
    threshold: u32,
    /// Seconds until the clients' deadline.
    #[arg(long, default_value_t = 30)]
    deadline: u64,
    /// Seconds after the clients' deadline until the members' deadline.
    #[arg(long, default_value_t = 60)]
    member_deadline: u64,
    /// Milliseconds after collection closes during which members report bad shares.
    #[arg(long, default_value_t = 2000)]
    check_window_ms: u32,
    /// Verifiable mode: Pedersen commitments and a Bulletproofs range proof per client.
    #[arg(long)]
    verifiable: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct AuditArgs {
    #[command(flatten)]
    router: RouterArg,
    /// Round id (hex).
    #[arg(long)]
    round: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct SubmitArgs {
    #[command(flatten)]
    router: RouterArg,
    /// Round id (hex).
    #[arg(long)]
    round: String,
    /// File with one integer per line.
    #[arg(long)]
    vector: PathBuf,
    /// Client id (random by default).
    #[arg(long)]
    client: Option<u64>,
}

#[derive(Debug, clap::Args)]
struct ResultArgs {
    #[command(flatten)]
    router: RouterArg,
    /// Round id (hex).
    #[arg(long)]
    round: String,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 120)]
    wait: u64,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct CommitteeArgs {
    #[command(flatten)]
    router: RouterArg,
    /// Members to run.
    #[arg(long, default_value_t = 1)]
    count: usize,
    /// Where the members' identities are kept (fresh identities without it).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Stop when standard input closes (used by `veilgrid demo` and `veilgrid up --separate`).
    #[arg(long, hide = true)]
    stop_on_stdin_eof: bool,
}

fn agg_client(router: &RouterArg) -> Result<AggClient, Error> {
    AggClient::via_router_secure(&router.router, &router.security()?)
        .map_err(|e| Error::Service(e.to_string()))
}

fn round_id(hex_id: &str) -> Result<Vec<u8>, Error> {
    hex::decode(hex_id.trim())
        .ok()
        .filter(|b| b.len() == 32)
        .ok_or_else(|| Error::Service("--round must be 64 hex digits".into()))
}

pub(crate) async fn run(a: AggArgs) -> Result<(), Error> {
    match a.command {
        AggCommand::Round {
            command: RoundCommand::Create(a),
        } => create(a).await,
        AggCommand::Submit(a) => submit(a).await,
        AggCommand::Result(a) => result(a).await,
        AggCommand::Audit(a) => audit(a).await,
        AggCommand::Committee {
            command: CommitteeCommand::Serve(a),
        } => committee(a).await,
    }
}

async fn create(a: CreateArgs) -> Result<(), Error> {
    let keys = client::committee_keys_secure(&a.router.router, a.committee, &a.router.security()?)
        .await
        .map_err(|e| Error::Service(e.to_string()))?;
    if keys.len() < a.committee {
        return Err(Error::Service(format!(
            "the router lists {} committee members, the round needs {} (start some with `veilgrid agg committee serve`)",
            keys.len(),
            a.committee
        )));
    }
    let deadline = now_ms() + a.deadline * 1000;
    let mut req = pb::CreateRoundRequest {
        length: a.length,
        bits: a.bits,
        max_clients: a.clients,
        threshold: a.threshold,
        deadline_unix_ms: deadline,
        member_deadline_unix_ms: deadline + a.member_deadline * 1000,
        check_window_ms: a.check_window_ms,
        verifiable: a.verifiable,
        ..Default::default()
    };
    client::CommitteeKeys::fill(&keys, &mut req);
    let info = agg_client(&a.router)?
        .create_round(req)
        .await
        .map_err(|s| Error::rpc("creating the round", s))?;
    let id = hex::encode(&info.round_id);
    if a.json {
        let v = json!({
            "round": id,
            "deadline_unix_ms": info.deadline_unix_ms,
            "member_deadline_unix_ms": info.member_deadline_unix_ms,
            "verifiable": info.verifiable,
            "committee": a.committee,
            "threshold": a.threshold,
            "state": info.state,
        });
        println!("{v}");
    } else {
        println!("round {id} (deadline in {} s)", a.deadline);
    }
    Ok(())
}

async fn submit(a: SubmitArgs) -> Result<(), Error> {
    let text = std::fs::read_to_string(&a.vector).map_err(|source| Error::Io {
        path: a.vector.display().to_string(),
        source,
    })?;
    let input = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.parse::<u64>()
                .map_err(|e| Error::Service(format!("{}: {l:?}: {e}", a.vector.display())))
        })
        .collect::<Result<Vec<u64>, Error>>()?;
    let id = round_id(&a.round)?;
    let mut c = agg_client(&a.router)?;
    let info = c
        .get_round(&id)
        .await
        .map_err(|s| Error::rpc("fetching the round", s))?;
    let client_id = a.client.unwrap_or_else(|| {
        use std::hash::BuildHasher;
        std::collections::hash_map::RandomState::new().hash_one(now_ms())
    });
    let req = client::build_submission(&info, client_id, &input)
        .map_err(|e| Error::Service(e.to_string()))?;
    let r = c
        .submit(req)
        .await
        .map_err(|s| Error::rpc("submitting", s))?;
    println!("submitted as client {} ({} so far)", r.client, r.submitted);
    Ok(())
}

async fn result(a: ResultArgs) -> Result<(), Error> {
    let id = round_id(&a.round)?;
    let mut c = agg_client(&a.router)?;
    let give_up = tokio::time::Instant::now() + Duration::from_secs(a.wait);
    let spinner = (!a.json).then(|| {
        let s = indicatif::ProgressBar::new_spinner();
        s.enable_steady_tick(Duration::from_millis(120));
        s
    });
    let res = loop {
        match c.result(&id).await {
            Ok(r) => break r,
            Err(s)
                if s.code() == tonic::Code::FailedPrecondition
                    && !s.message().contains("failed")
                    && tokio::time::Instant::now() < give_up =>
            {
                if let Some(sp) = &spinner {
                    sp.set_message(format!("waiting: {}", s.message()));
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(s) => {
                if let Some(sp) = &spinner {
                    sp.finish_and_clear();
                }
                return Err(Error::rpc("fetching the result", s));
            }
        }
    };
    if let Some(sp) = spinner {
        sp.finish_and_clear();
    }
    if a.json {
        println!("{}", json!({ "sum": res.sum, "counted": res.counted }));
    } else {
        println!("sum over {} clients: {:?}", res.counted.len(), res.sum);
    }
    Ok(())
}

async fn audit(a: AuditArgs) -> Result<(), Error> {
    use veilgrid_aggregator::math::{AuditTranscript, Round};
    let id = round_id(&a.round)?;
    let mut c = agg_client(&a.router)?;
    let info = c
        .get_round(&id)
        .await
        .map_err(|s| Error::rpc("fetching the round", s))?;
    let res = c
        .result(&id)
        .await
        .map_err(|s| Error::rpc("fetching the result", s))?;
    let round = Round::from_bytes(&info.round).map_err(|e| Error::Verify(e.to_string()))?;
    if round.id()[..] != id[..] {
        return Err(Error::Verify(
            "the round description names another round".into(),
        ));
    }
    if !round.params().is_verifiable() {
        return Err(Error::Service(
            "the round is not verifiable (create it with --verifiable)".into(),
        ));
    }
    let t = AuditTranscript::from_bytes(&round, &res.transcript)
        .map_err(|e| Error::Verify(format!("transcript: {e}")))?;
    t.verify(&round)
        .map_err(|e| Error::Verify(format!("the round does not audit: {e}")))?;
    if t.sum != res.sum {
        return Err(Error::Verify(
            "the transcript's sum differs from the released sum".into(),
        ));
    }
    let counted: Vec<u64> = t.clients.iter().map(|(c, _)| *c).collect();
    if a.json {
        println!(
            "{}",
            json!({ "round": hex::encode(id), "verified": true, "sum": t.sum, "counted": counted })
        );
    } else {
        println!(
            "round {} audits: {} range proofs verify and the product of commitments opens to the sum",
            hex::encode(id),
            counted.len()
        );
    }
    Ok(())
}

async fn committee(a: CommitteeArgs) -> Result<(), Error> {
    let sd = veilgrid_kit::Shutdown::new();
    // under mutual TLS member i presents the certificate agg-member-<i> (issued from the
    // CA in the TLS directory if missing)
    let tasks = crate::grid::start_committee_secure(
        &a.router.router,
        a.data_dir.as_ref(),
        a.count,
        Duration::from_secs(30),
        sd.clone(),
        a.router.resolved_tls_dir().as_deref(),
    )
    .await?;
    println!("{} committee member(s) serving; Ctrl-C to stop.", a.count);
    if a.stop_on_stdin_eof {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 64];
        let mut stdin = tokio::io::stdin();
        tokio::select! {
            () = super::interrupted() => {}
            () = async { while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {} } => {}
        }
    } else {
        super::interrupted().await;
    }
    sd.cancel();
    for t in tasks {
        let _ = t.await;
    }
    Ok(())
}
