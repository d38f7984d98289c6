//! `veilgrid health`: ask any Veilgrid service for its `grpc.health.v1` status, over
//! mutual TLS for an `https://` URL. This is what the Kubernetes manifests run as
//! exec probes when the grid runs under mutual TLS: the kubelet's own gRPC probe
//! speaks plaintext only, so it cannot pass a server that demands a client
//! certificate. Exit status 0 when the service reports `SERVING`, 1 otherwise.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use serde_json::json;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use veilgrid_kit::tls::Security;

use crate::Error;

#[derive(Debug, clap::Args)]
pub(crate) struct HealthArgs {
    /// The service's URL (any Veilgrid service: router, providers, matching nodes).
    #[arg(long, default_value = crate::DEFAULT_ROUTER)]
    target: String,
    /// For an https:// URL: the directory holding the CA (`ca.pem`) and the
    /// certificate to present (--identity). Default `<data dir>/tls`.
    #[arg(long, env = "VEILGRID_TLS_DIR")]
    tls_dir: Option<PathBuf>,
    /// Which certificate in --tls-dir to present; a service probing itself presents
    /// its own (e.g. `router`). `any`: the first `<name>.pem` with its `<name>.key`
    /// in the directory, by name (for a pod that cannot name its own, such as a
    /// matching party whose name follows from its pod ordinal).
    #[arg(long, env = "VEILGRID_IDENTITY", default_value = "cli")]
    identity: String,
    /// The name the service's certificate must be issued to (default: the URL's host).
    #[arg(long)]
    server_name: Option<String>,
    /// The gRPC service to ask about; empty for the whole server.
    #[arg(long, default_value = "")]
    service: String,
    /// Give up after this many milliseconds (connecting included).
    #[arg(long, default_value_t = 2000)]
    timeout_ms: u64,
    /// Print JSON: `{"target", "status", "serving", "error"}`.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(a: HealthArgs) -> Result<ExitCode, Error> {
    let dir = match (&a.tls_dir, a.target.starts_with("https://")) {
        (Some(d), _) => Some(d.clone()),
        (None, true) => Some(super::default_data_dir().join("tls")),
        (None, false) => None,
    };
    let security = match dir {
        Some(d) => {
            let identity = match a.identity.as_str() {
                ANY => any_identity(&d)?,
                name => name.to_owned(),
            };
            Security::mtls_from_dir(&d, &identity)?
        }
        None => Security::Plaintext,
    };
    let timeout = Duration::from_millis(a.timeout_ms.max(1));
    let endpoint = security
        .endpoint(&a.target, a.server_name.as_deref())?
        .connect_timeout(timeout);
    let asked = async {
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| format!("cannot reach {}: {e}: {}", a.target, source_chain(&e)))?;
        let mut req = tonic::Request::new(HealthCheckRequest {
            service: a.service.clone(),
        });
        req.set_timeout(timeout);
        HealthClient::new(veilgrid_kit::untrusted::StripStatusDetails(channel))
            .check(req)
            .await
            .map(|r| r.into_inner().status)
            .map_err(|s| format!("{}: {} ({:?})", a.target, s.message(), s.code()))
    };
    let result = match tokio::time::timeout(timeout, asked).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "{}: no answer within {} ms",
            a.target, a.timeout_ms
        )),
    };
    let (status, error) = match &result {
        Ok(code) => (
            ServingStatus::try_from(*code)
                .map(|s| s.as_str_name().to_owned())
                .unwrap_or_else(|_| format!("UNKNOWN_STATUS_{code}")),
            None,
        ),
        Err(e) => ("UNREACHABLE".to_owned(), Some(e.clone())),
    };
    let serving = matches!(result, Ok(c) if c == ServingStatus::Serving as i32);
    if a.json {
        println!(
            "{}",
            json!({"target": a.target, "status": status, "serving": serving, "error": error})
        );
    } else {
        match &error {
            Some(e) => eprintln!("{e}"),
            None => println!("{}: {status}", a.target),
        }
    }
    Ok(if serving {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `--identity any`.
const ANY: &str = "any";

/// The first certificate in `dir` (by name) that has its key beside it; not the CA.
fn any_identity(dir: &std::path::Path) -> Result<String, Error> {
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Io {
        path: dir.display().to_string(),
        source,
    })?;
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".pem").map(str::to_owned)
        })
        .filter(|n| n != "ca" && dir.join(format!("{n}.key")).is_file())
        .collect();
    names.sort();
    names.into_iter().next().ok_or_else(|| {
        Error::Usage(format!(
            "--identity any: {} holds no certificate with its key (<name>.pem and <name>.key)",
            dir.display()
        ))
    })
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut out = Vec::new();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push(s.to_string());
        cur = s.source();
    }
    out.join(": ")
}
