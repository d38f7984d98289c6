//! The `veilgrid` command line.

mod agg;
mod audit;
mod ca;
mod complete;
mod fhe;
mod health;
mod matching;
mod prover;
mod providers;
mod serve;
mod up;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

use crate::Error;

/// Veilgrid: privacy-preserving computation behind one grid router.
#[derive(Debug, Parser)]
#[command(name = "veilgrid", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where a client command finds the router.
#[derive(Debug, Clone, clap::Args)]
pub struct RouterArg {
    /// The router's URL.
    #[arg(long, env = "VEILGRID_ROUTER", default_value = crate::DEFAULT_ROUTER)]
    pub router: String,
    /// Connect with mutual TLS (an https:// router URL) using the CA and the
    /// certificate of --identity from this directory (`veilgrid ca issue --client`).
    /// Default for an https:// router: `<data dir>/tls`, where `veilgrid up` keeps its
    /// CA and the `cli` client certificate.
    #[arg(long, env = "VEILGRID_TLS_DIR")]
    pub tls_dir: Option<PathBuf>,
    /// Which certificate in --tls-dir to present: what this caller creates belongs
    /// to that identity.
    #[arg(long, env = "VEILGRID_IDENTITY", default_value = "cli")]
    pub identity: String,
}

impl RouterArg {
    /// The TLS directory in use: --tls-dir, else `<data dir>/tls` for an https://
    /// router; `None` for a plaintext router.
    pub fn resolved_tls_dir(&self) -> Option<PathBuf> {
        match &self.tls_dir {
            Some(d) => Some(d.clone()),
            None if self.router.starts_with("https://") => Some(default_data_dir().join("tls")),
            None => None,
        }
    }

    /// How to reach the router: plaintext, or mutual TLS with `--identity`'s
    /// certificate from `--tls-dir`.
    pub fn security(&self) -> Result<veilgrid_kit::tls::Security, Error> {
        match &self.tls_dir {
            Some(d) => Ok(veilgrid_kit::tls::Security::mtls_from_dir(
                d,
                &self.identity,
            )?),
            None if self.router.starts_with("https://") => {
                let d = default_data_dir().join("tls");
                if !d.join(veilgrid_kit::tls_ca::CA_CERT).exists() {
                    return Err(Error::Usage(format!(
                        "{} is a mutual-TLS router: give --tls-dir DIR (the CA and your client certificate, `veilgrid ca issue --client NAME`), or run where `veilgrid up` keeps {}",
                        self.router,
                        d.display()
                    )));
                }
                Ok(veilgrid_kit::tls::Security::mtls_from_dir(
                    &d,
                    &self.identity,
                )?)
            }
            None => Ok(veilgrid_kit::tls::Security::Plaintext),
        }
    }

    /// Connect a [`crate::client::GridClient`] to the router.
    pub async fn connect(&self) -> Result<crate::client::GridClient, Error> {
        crate::client::GridClient::connect_secure(&self.router, &self.security()?).await
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the router and every service in one process on loopback (Ctrl-C stops).
    Up(up::UpArgs),
    /// Run one service alone and register it with a router.
    Serve(serve::ServeArgs),
    /// Run the end-to-end story against a grid (starts one in-process without --router).
    Demo(DemoArgs),
    /// List the providers a router knows, with load and reputation.
    Providers(providers::ProvidersArgs),
    /// Send raw bytes for completion under a protocol name (debugging).
    Complete(complete::CompleteArgs),
    /// Sealed-bid order matching by the three MPC nodes.
    Match(matching::MatchArgs),
    /// The exchange-rate table fitted to cleared rounds.
    Rates(matching::RatesArgs),
    /// One-shot secure aggregation: rounds, client submissions, results, committee members.
    Agg(agg::AggArgs),
    /// Encrypted inference on TFHE: keys, key registration, models, encrypted queries, evaluation.
    Fhe(fhe::FheArgs),
    /// Groth16 keys of the prover service (setup) and proving through the router.
    Prover(prover::ProverArgs),
    /// The auditor: fetch the audit log and proofs, verify them offline, export for snarkjs.
    Audit(audit::AuditArgs),
    /// The Veilgrid CA: create it, issue certificates for services and clients (mutual TLS).
    Ca(ca::CaArgs),
    /// Ask a service for its grpc.health.v1 status (over mutual TLS for https://); exit 0 if serving.
    Health(health::HealthArgs),
}

#[derive(Debug, clap::Args)]
struct DemoArgs {
    /// A running router; without it the demo starts its own grid in-process.
    #[arg(long, env = "VEILGRID_ROUTER")]
    router: Option<String>,
    /// Print a JSON summary instead of the story.
    #[arg(long)]
    json: bool,
    /// For an https:// router: the CA and certificates (default `<data dir>/tls`,
    /// where `veilgrid up` keeps them; the CA key there lets the demo issue
    /// certificates for the providers it starts).
    #[arg(long, env = "VEILGRID_TLS_DIR")]
    tls_dir: Option<PathBuf>,
}

/// The data directory used when `--data-dir` is not given.
pub fn default_data_dir() -> PathBuf {
    std::env::var_os("VEILGRID_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("veilgrid-data"))
}

/// Parse the arguments and run; the exit code is non-zero on any failure.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("VEILGRID_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode, Error> {
    match cli.command {
        Command::Up(a) => up::run(a).await.map(|()| ExitCode::SUCCESS),
        Command::Serve(a) => serve::run(a).await.map(|()| ExitCode::SUCCESS),
        Command::Demo(a) => {
            let tls_dir = a.tls_dir.or_else(|| Some(default_data_dir().join("tls")));
            let report = crate::demo::run(a.router.as_deref(), tls_dir.as_deref(), !a.json).await?;
            if a.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
            }
            Ok(if report.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Providers(a) => providers::run(a).await.map(|()| ExitCode::SUCCESS),
        Command::Complete(a) => complete::run(a).await.map(|()| ExitCode::SUCCESS),
        Command::Match(a) => matching::run(a).await.map(|()| ExitCode::SUCCESS),
        Command::Rates(a) => matching::rates(a).await.map(|()| ExitCode::SUCCESS),
        Command::Agg(a) => agg::run(a).await.map(|()| ExitCode::SUCCESS),
        Command::Fhe(a) => fhe::run(a).await.map(|()| ExitCode::SUCCESS),
        Command::Prover(a) => prover::run(a).await.map(|()| ExitCode::SUCCESS),
        Command::Audit(a) => audit::run(a).await,
        Command::Ca(a) => ca::run(a).map(|()| ExitCode::SUCCESS),
        Command::Health(a) => health::run(a).await,
    }
}

/// Resolve when Ctrl-C or SIGTERM arrives.
pub(crate) async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
