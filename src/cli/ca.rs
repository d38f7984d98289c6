//! `veilgrid ca init|issue`: the Veilgrid CA and the certificates of services and clients.

use std::path::PathBuf;

use veilgrid_kit::{
    auth::Role,
    tls_ca::{self, IssueRequest},
};

use crate::Error;

#[derive(Debug, clap::Args)]
pub(crate) struct CaArgs {
    #[command(subcommand)]
    command: CaCommand,
}

#[derive(Debug, clap::Subcommand)]
enum CaCommand {
    /// Create the CA (ca.pem, and ca.key readable by its owner only).
    Init {
        /// The CA directory.
        #[arg(long, env = "VEILGRID_TLS_DIR", default_value_os_t = default_dir())]
        dir: PathBuf,
    },
    /// Issue a certificate and key (<NAME>.pem, <NAME>.key) signed by the CA.
    Issue {
        /// A service's name (its certificate also serves TLS for DNS names NAME and
        /// localhost and for 127.0.0.1). The router is `router`.
        #[arg(long, conflicts_with = "client", required_unless_present = "client")]
        service: Option<String>,
        /// A client's name (a caller of the router: what it creates belongs to it).
        #[arg(long)]
        client: Option<String>,
        /// Extra DNS names or IP addresses of a service (repeatable), e.g. its
        /// Kubernetes Service name.
        #[arg(long = "san")]
        sans: Vec<String>,
        /// The CA directory.
        #[arg(long, env = "VEILGRID_TLS_DIR", default_value_os_t = default_dir())]
        dir: PathBuf,
    },
}

/// `<data dir>/tls`.
pub(crate) fn default_dir() -> PathBuf {
    super::default_data_dir().join("tls")
}

pub(crate) fn run(a: CaArgs) -> Result<(), Error> {
    match a.command {
        CaCommand::Init { dir } => {
            let cert = tls_ca::init(&dir)?;
            println!("CA created: {}", cert.display());
            println!(
                "  key: {} (owner-only; keep it off the machines that run services)",
                dir.join(tls_ca::CA_KEY).display()
            );
            println!(
                "  next: veilgrid ca issue --service router --dir {}",
                dir.display()
            );
        }
        CaCommand::Issue {
            service,
            client,
            sans,
            dir,
        } => {
            let (name, role) = match (service, client) {
                (Some(s), None) => (s, Role::Service),
                (None, Some(c)) => (c, Role::Client),
                _ => {
                    return Err(Error::Service(
                        "give exactly one of --service NAME or --client NAME".into(),
                    ));
                }
            };
            let (cert, key) = tls_ca::issue(
                &dir,
                &IssueRequest {
                    name: name.clone(),
                    role,
                    extra_sans: sans,
                },
            )?;
            println!("issued {}:{name}", role.as_str());
            println!("  certificate: {}", cert.display());
            println!("  key: {} (owner-only)", key.display());
        }
    }
    Ok(())
}
