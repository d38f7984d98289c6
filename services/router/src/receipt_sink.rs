//! Every completion's receipt ends up in the audit log: a background task pushes
//! the receipts the router recorded (in its store, with increasing sequence
//! numbers) to every registered provider that serves the audit-log protocol
//! [`LOG_PROTOCOL`], over that provider's `veilgrid.prover.v1.Prover.AppendReceipts`.
//!
//! The router knows no prover crate; it speaks the proto. The log keeps, per
//! source, the sequence number of the last receipt it appended and answers every
//! push with it, so pushes are idempotent and resume after a restart of either
//! side. Receipts recorded while no log is registered are pushed once one is.

use std::{collections::HashMap, sync::Arc, time::Duration};

use bytes::Bytes;
use tonic::Status;
use veilgrid_core::protocol::ProtocolId;
use veilgrid_kit::{Shutdown, clock::now_ms, untrusted::StripStatusDetails};
use veilgrid_proto::prover::v1::{
    AppendReceiptsRequest, SourcedReceipt, prover_client::ProverClient,
};

use crate::State;

/// Providers serving this protocol are audit logs and receive the router's receipts.
pub const LOG_PROTOCOL: &str = "veilgrid/audit/checkpoint/v1";
/// The source name this router pushes under.
pub const SOURCE: &str = "router";
/// Receipts per push.
const BATCH: usize = 500;
/// How often the store is polled for new receipts (an indexed range query).
pub const POLL: Duration = Duration::from_millis(100);

/// Push until `shutdown`, polling the store every [`POLL`].
pub(crate) async fn run(state: Arc<State>, shutdown: Shutdown) {
    let protocol = ProtocolId::from_name(LOG_PROTOCOL);
    // Per log provider: the last sequence number it told us it holds.
    let mut cursors: HashMap<[u8; 32], u64> = HashMap::new();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(POLL) => {}
        }
        for log in state.registry.serving(&protocol, now_ms()) {
            // A log is a provider like any other: its answers must not panic this task.
            let mut client = ProverClient::new(StripStatusDetails(log.channel.clone()));
            let cursor = cursors.entry(log.id).or_insert(0);
            if let Err(e) = push_all(&state, &mut client, cursor).await {
                tracing::warn!(log = %log.info.name, error = %e, "pushing receipts to the audit log");
            }
        }
    }
}

/// Push everything after `cursor` (learning the log's cursor on a mismatch).
async fn push_all(
    state: &State,
    client: &mut ProverClient<StripStatusDetails<tonic::transport::Channel>>,
    cursor: &mut u64,
) -> Result<(), Status> {
    for _ in 0..10_000 {
        let batch = state
            .store
            .receipts(*cursor, BATCH)
            .map_err(|e| Status::internal(e.to_string()))?;
        let mut receipts = Vec::with_capacity(batch.len());
        for (seq, r) in &batch {
            let mut entry = r
                .receipt
                .canonical_bytes()
                .map_err(|e| Status::internal(e.to_string()))?;
            entry.extend_from_slice(&r.signature);
            receipts.push(SourcedReceipt {
                seq: *seq,
                entry: Bytes::from(entry),
            });
        }
        let sent_last = receipts.last().map(|r| r.seq);
        let mut req = tonic::Request::new(AppendReceiptsRequest {
            source: SOURCE.into(),
            after_seq: *cursor,
            receipts,
        });
        req.set_timeout(Duration::from_secs(10));
        let last = client.append_receipts(req).await?.into_inner().last_seq;
        let resynced = last != sent_last.unwrap_or(*cursor);
        *cursor = last;
        if batch.len() < BATCH && !resynced {
            return Ok(());
        }
    }
    Ok(())
}
