//! `veilgrid complete`: raw byte completion, for debugging.

use std::{io::Write, path::PathBuf, time::Duration};

use bytes::Bytes;
use serde_json::json;
use sha2::{Digest, Sha256};
use veilgrid_core::protocol::ProtocolId;

use super::RouterArg;
use crate::{Error, client::CallOptions};

#[derive(Debug, clap::Args)]
pub(crate) struct CompleteArgs {
    #[command(flatten)]
    router: RouterArg,
    /// Protocol name, e.g. veilgrid/echo/v1.
    #[arg(long)]
    protocol: String,
    /// File holding the payload ("-" = standard input).
    #[arg(long)]
    payload_file: PathBuf,
    /// Write the completion here (default: standard output, unless --json).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Send as a stream of 1 MiB chunks (for payloads over 4 MiB).
    #[arg(long)]
    stream: bool,
    /// Deadline in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    deadline_ms: u64,
    /// Idempotency id (allows one retry on another provider).
    #[arg(long)]
    idempotency_id: Option<String>,
    /// Print a JSON summary (receipt included) instead of the raw completion.
    #[arg(long)]
    json: bool,
}

fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.display().to_string(),
        source,
    }
}

pub(crate) async fn run(a: CompleteArgs) -> Result<(), Error> {
    let payload = if a.payload_file.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).map_err(io(&a.payload_file))?;
        buf
    } else {
        std::fs::read(&a.payload_file).map_err(io(&a.payload_file))?
    };
    let protocol = ProtocolId::from_name(&a.protocol);
    let opts = CallOptions {
        deadline: Some(Duration::from_millis(a.deadline_ms)),
        idempotency_id: a.idempotency_id.map(String::into_bytes),
        ..CallOptions::default()
    };
    let mut c = a.router.connect().await?;
    let payload = Bytes::from(payload);
    let done = if a.stream {
        c.complete_stream(&protocol, payload, &opts).await?
    } else {
        c.complete(&protocol, payload, &opts).await?
    };
    if let Some(out) = &a.out {
        std::fs::write(out, &done.completion).map_err(io(out))?;
    }
    if a.json {
        let r = &done.receipt.receipt;
        let v = json!({
            "protocol": a.protocol,
            "protocol_id": protocol.to_hex(),
            "completion_len": done.completion.len(),
            "completion_sha256": hex::encode(Sha256::digest(&done.completion)),
            "latency_ms": done.latency.as_secs_f64() * 1000.0,
            "receipt": {
                "provider_id": hex::encode(r.provider_id),
                "request_hash": hex::encode(r.request_hash),
                "response_hash": hex::encode(r.response_hash),
                "price": r.price,
                "currency": r.currency,
                "started_at_ms": r.started_at_ms,
                "finished_at_ms": r.finished_at_ms,
                "signature": hex::encode(done.receipt.signature),
                "verified": true,
            },
        });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else if a.out.is_none() {
        std::io::stdout()
            .write_all(&done.completion)
            .map_err(io(std::path::Path::new("stdout")))?;
    }
    Ok(())
}
