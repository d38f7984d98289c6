//! `veilgrid audit ...`: the auditor's tools (fetch through the router, verify
//! offline, export Groth16 proofs for snarkjs).

use std::{path::PathBuf, process::ExitCode, time::Duration};

use indicatif::{ProgressBar, ProgressStyle};
use veilgrid_prover::{audit, client::ProverClient};

use super::RouterArg;
use crate::Error;

#[derive(Debug, clap::Args)]
pub(crate) struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Debug, clap::Subcommand)]
enum AuditCommand {
    /// Collect checkpoints, receipts with inclusion proofs, consistency proofs, verifying keys
    /// and Groth16 proofs into a directory (extends an earlier fetch there).
    Fetch(FetchArgs),
    /// Verify a fetched directory or one bundle file offline; non-zero exit if anything fails.
    Verify(VerifyArgs),
    /// Export Groth16 proofs of a fetched directory for an independent verifier.
    Export(ExportArgs),
}

#[derive(Debug, clap::Args)]
struct FetchArgs {
    #[command(flatten)]
    router: RouterArg,
    /// Where to write.
    #[arg(long)]
    out: PathBuf,
    /// Seconds to wait for the receipts of fetched proofs to reach the log.
    #[arg(long, default_value_t = 5)]
    wait_secs: u64,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct VerifyArgs {
    /// A directory written by `audit fetch`, or one .tlog-proof / consistency bundle / checkpoint.
    path: PathBuf,
    /// The log's verifier key to pin (default: log.vkey next to the files, trusted on first use).
    #[arg(long)]
    log_key: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    /// verification_key.json, proof.json, public.json for `snarkjs groth16 verify`.
    Snarkjs,
}

#[derive(Debug, clap::Args)]
struct ExportArgs {
    /// Output format.
    #[arg(long, value_enum)]
    format: Format,
    /// The fetched directory.
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// One proof (its file stem in proofs/, e.g. 000001); default: every proof, one subdirectory each.
    #[arg(long)]
    proof: Option<String>,
    /// Where to write.
    #[arg(long)]
    out: PathBuf,
}

fn svc(e: impl std::fmt::Display) -> Error {
    Error::Service(e.to_string())
}

pub(crate) async fn run(a: AuditArgs) -> Result<ExitCode, Error> {
    match a.command {
        AuditCommand::Fetch(f) => fetch(f).await.map(|()| ExitCode::SUCCESS),
        AuditCommand::Verify(v) => verify(v).await,
        AuditCommand::Export(e) => export(e).map(|()| ExitCode::SUCCESS),
    }
}

async fn fetch(a: FetchArgs) -> Result<(), Error> {
    let mut client =
        ProverClient::via_router_secure(&a.router.router, &a.router.security()?).map_err(svc)?;
    let bar = if a.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template("fetching receipts {bar:30} {pos}/{len} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let summary = audit::fetch(
        &mut client,
        &a.out,
        Duration::from_secs(a.wait_secs),
        |done, size| {
            bar.set_length(size);
            bar.set_position(done);
        },
    )
    .await
    .map_err(svc)?;
    bar.finish_and_clear();
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&summary).unwrap_or_default()
        );
    } else {
        println!(
            "fetched into {}: log of {} receipts ({} new), {} consistency proofs, {} verifying keys, {} Groth16 proofs, {} matching rounds{}",
            a.out.display(),
            summary.tree_size,
            summary.new_entries,
            summary.consistency_bundles,
            summary.keys,
            summary.proofs,
            summary.matching_rounds,
            if summary.proofs_bound {
                ""
            } else {
                " (some proofs' receipts are not logged yet: fetch again)"
            }
        );
    }
    Ok(())
}

async fn verify(a: VerifyArgs) -> Result<ExitCode, Error> {
    let path = a.path.clone();
    let key = a.log_key.clone();
    let report = tokio::task::spawn_blocking(move || audit::verify_path(&path, key.as_deref()))
        .await
        .map_err(svc)?
        .map_err(svc)?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        for i in &report.items {
            match i.status {
                audit::Status::Verified => println!("verified  {:<14} {}", i.kind, i.item),
                audit::Status::Failed => println!(
                    "FAILED    {:<14} {}: {}{}",
                    i.kind,
                    i.item,
                    i.part
                        .as_ref()
                        .map(|p| format!("[{p}] "))
                        .unwrap_or_default(),
                    i.detail
                ),
            }
        }
        println!(
            "{} verified, {} failed (log key: {})",
            report.verified, report.failed, report.log_key
        );
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn export(a: ExportArgs) -> Result<(), Error> {
    match a.format {
        Format::Snarkjs => {
            let dirs = audit::export_snarkjs(&a.dir, a.proof.as_deref(), &a.out).map_err(svc)?;
            for d in dirs {
                println!("{}", d.display());
            }
        }
    }
    Ok(())
}
