//! `veilgrid prover ...`: Groth16 key setup into the data directory, and proving
//! through the router.

use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};
use veilgrid_circuits::{clearing::BookShape, inference::Model};
use veilgrid_prover::{
    client::ProverClient,
    keys::{KeyRing, KeySpec, RemoteKey},
};

use super::RouterArg;
use crate::Error;

#[derive(Debug, clap::Args)]
pub(crate) struct ProverArgs {
    #[command(subcommand)]
    command: ProverCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ProverCommand {
    /// Circuit-specific Groth16 setup: keys into <data-dir>/prover/keys, verifying keys pinned by
    /// id in keys.json. Single-party: for development; production needs a phase-2 ceremony.
    Setup(SetupArgs),
    /// Prove a statement with one of the prover's keys, through the router.
    Prove(ProveArgs),
}

#[derive(Debug, clap::Args)]
struct SetupArgs {
    /// Where state is kept.
    #[arg(long, env = "VEILGRID_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Clearing circuits to set up, as ORDERSxLEVELS (default: 64x64 and 4x4).
    #[arg(long = "clearing", value_name = "ORDERSxLEVELS")]
    clearing: Vec<String>,
    /// An inference circuit for this model (veilgrid model JSON or the FHE crate's
    /// veilgrid-quantized-model/v1 file); the key is named after the file.
    #[arg(long = "model", value_name = "FILE")]
    models: Vec<PathBuf>,
    /// Skip the built-in demo inference model.
    #[arg(long)]
    no_demo_model: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct ProveArgs {
    #[command(flatten)]
    router: RouterArg,
    /// The key (`veilgrid audit fetch` lists them in keys/keys.json).
    #[arg(long)]
    key: String,
    /// The witness JSON, or @FILE.
    #[arg(long)]
    witness: String,
    /// Prove on this machine with the key's proving key (fetched from the prover) and hand
    /// only the proof to the prover, so the witness (e.g. an institution's input) never leaves.
    #[arg(long)]
    local: bool,
    /// With --local: the verifying key id to pin (from an audited keys/keys.json); default:
    /// the id the prover sends.
    #[arg(long, requires = "local")]
    vk_id: Option<String>,
    /// Fail unless the proven class is this one (inference keys: the class the institution
    /// decrypted from its FHE answer).
    #[arg(long)]
    expect_class: Option<u64>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn shape(s: &str) -> Result<BookShape, Error> {
    let (o, l) = s.split_once('x').ok_or_else(|| {
        Error::Service(format!(
            "--clearing {s}: expected ORDERSxLEVELS, e.g. 64x64"
        ))
    })?;
    let parse = |v: &str| {
        v.parse::<usize>()
            .map_err(|_| Error::Service(format!("--clearing {s}: not a number")))
    };
    Ok(BookShape {
        max_orders: parse(o)?,
        levels: parse(l)?,
    })
}

fn svc(e: impl std::fmt::Display) -> Error {
    Error::Service(e.to_string())
}

pub(crate) async fn run(a: ProverArgs) -> Result<(), Error> {
    match a.command {
        ProverCommand::Setup(s) => setup(s).await,
        ProverCommand::Prove(p) => prove(p).await,
    }
}

async fn setup(a: SetupArgs) -> Result<(), Error> {
    let data_dir = a.data_dir.unwrap_or_else(super::default_data_dir);
    let dir = data_dir.join("prover").join("keys");
    let mut specs = Vec::new();
    let clearing = if a.clearing.is_empty() {
        vec!["64x64".to_owned(), "4x4".to_owned()]
    } else {
        a.clearing
    };
    for c in &clearing {
        specs.push(KeySpec::Clearing(shape(c)?));
    }
    if !a.no_demo_model {
        specs.push(KeySpec::Inference {
            name: "inference-demo-linear".into(),
            model: veilgrid_prover::keys::demo_model(),
        });
    }
    for m in &a.models {
        let bytes = std::fs::read(m).map_err(|source| Error::Io {
            path: m.display().to_string(),
            source,
        })?;
        let model = Model::from_json(&bytes)
            .or_else(|_| Model::from_quantized_v1_json(&bytes))
            .map_err(|e| Error::Service(format!("{}: {e}", m.display())))?;
        let stem = m
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("model")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect::<String>();
        specs.push(KeySpec::Inference {
            name: format!("inference-{stem}"),
            model,
        });
    }
    let bar = ProgressBar::new_spinner();
    if !a.json {
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(format!("Groth16 setup of {} circuits", specs.len()));
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
    }
    let d = dir.clone();
    let rows = tokio::task::spawn_blocking(move || KeyRing::setup(&d, &specs))
        .await
        .map_err(svc)?
        .map_err(svc)?;
    bar.finish_and_clear();
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "keys_dir": dir.display().to_string(),
                "keys": rows,
                "ceremony": "single-party setup (development only): production keys need a multi-party phase-2 ceremony",
            }))
            .unwrap_or_default()
        );
    } else {
        println!("keys in {}", dir.display());
        for r in &rows {
            println!(
                "  {:<24} {:<9} {:>6} constraints  vk id {}",
                r.name, r.circuit, r.constraints, r.vk_id
            );
        }
        println!(
            "single-party setup: fine for development; production keys need a multi-party phase-2 ceremony"
        );
    }
    Ok(())
}

/// With `--expect-class`, the proven class must be the expected one.
fn check_class(
    r: &veilgrid_proto::prover::v1::ProofRecord,
    expect: Option<u64>,
) -> Result<(), Error> {
    let Some(want) = expect else { return Ok(()) };
    let got = serde_json::from_str::<serde_json::Value>(&r.statement_json)
        .ok()
        .and_then(|v| v["class"].as_u64());
    if got == Some(want) {
        Ok(())
    } else {
        Err(Error::Verify(format!(
            "the proven class is {got:?}, expected {want}: the decision is not the model's output on this input"
        )))
    }
}

async fn prove(a: ProveArgs) -> Result<(), Error> {
    let witness = match a.witness.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?,
        None => a.witness.clone(),
    };
    let mut client =
        ProverClient::via_router_secure(&a.router.router, &a.router.security()?).map_err(svc)?;
    let resp = if a.local {
        let pk = client.proving_key(&a.key).await.map_err(svc)?;
        let vk_id = a.vk_id.clone();
        let record = tokio::task::spawn_blocking(move || {
            RemoteKey::from_response(&pk, vk_id.as_deref())?.prove(&witness)
        })
        .await
        .map_err(svc)?
        .map_err(svc)?;
        // Checked before anything is sent: a wrong decision is not logged.
        check_class(&record, a.expect_class)?;
        client.submit_proof(record).await.map_err(svc)?
    } else {
        client.prove(&a.key, &witness).await.map_err(svc)?
    };
    let r = resp
        .record
        .ok_or_else(|| Error::Verify("the prover returned no proof record".into()))?;
    check_class(&r, a.expect_class)?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "key": r.key_name, "circuit": r.circuit, "vk_id": r.vk_id,
                "statement": serde_json::from_str::<serde_json::Value>(&r.statement_json).unwrap_or_default(),
                "proof": hex::encode(&r.proof),
                "public_inputs": hex::encode(&r.public_inputs),
            }))
            .unwrap_or_default()
        );
    } else {
        println!(
            "{} proof under key {} (vk id {}): {}",
            r.circuit, r.key_name, r.vk_id, r.statement_json
        );
    }
    Ok(())
}
