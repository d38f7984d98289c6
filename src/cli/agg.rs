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
}

fn agg_client(router: &str) -> Result<AggClient, Error> {
    AggClient::via_router(router).map_err(|e| Error::Service(e.to_string()))
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
        AggCommand::Committee {
            command: CommitteeCommand::Serve(a),
        } => committee(a).await,
    }
}

async fn create(a: CreateArgs) -> Result<(), Error> {
    let keys = client::committee_keys(&a.router.router, a.committee)
        .await
        .map_err(|e| Error::Service(e.to_string()))?;
    if keys.len() < a.committee {
        return Err(Error::Service(format!(
            "the router lists {} committee members, the round needs {} (start some with `veilgrid agg committee serve`)",
            keys.len(),
            a.committee
        )));
    }
    let info = agg_client(&a.router.router)?
        .create_round(pb::CreateRoundRequest {
            length: a.length,
            bits: a.bits,
            max_clients: a.clients,
            threshold: a.threshold,
            committee_keys: keys,
            deadline_unix_ms: now_ms() + a.deadline * 1000,
            min_clients: 0,
        })
        .await
        .map_err(|s| Error::rpc("creating the round", s))?;
    let id = hex::encode(&info.round_id);
    if a.json {
        let v = json!({
            "round": id,
            "deadline_unix_ms": info.deadline_unix_ms,
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
    let mut c = agg_client(&a.router.router)?;
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
    let mut c = agg_client(&a.router.router)?;
    let give_up = tokio::time::Instant::now() + Duration::from_secs(a.wait);
    let res = loop {
        match c.result(&id).await {
            Ok(r) => break r,
            Err(s)
                if s.code() == tonic::Code::FailedPrecondition
                    && !s.message().contains("failed")
                    && tokio::time::Instant::now() < give_up =>
            {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(s) => return Err(Error::rpc("fetching the result", s)),
        }
    };
    if a.json {
        println!("{}", json!({ "sum": res.sum, "counted": res.counted }));
    } else {
        println!("sum over {} clients: {:?}", res.counted.len(), res.sum);
    }
    Ok(())
}

async fn committee(a: CommitteeArgs) -> Result<(), Error> {
    let sd = veilgrid_kit::Shutdown::new();
    let tasks = crate::grid::start_committee(
        &a.router.router,
        a.data_dir.as_ref(),
        a.count,
        Duration::from_secs(30),
        sd.clone(),
    )
    .await?;
    println!("{} committee member(s) serving; Ctrl-C to stop.", a.count);
    super::interrupted().await;
    sd.cancel();
    for t in tasks {
        let _ = t.await;
    }
    Ok(())
}
