//! Sending one request to one provider and judging the answer.
//!
//! A promise is **kept** when a completion arrives before the deadline with a
//! receipt that names this provider, this protocol, this request and this
//! completion, and whose Ed25519 signature verifies. It is **broken** when the
//! provider fails (transport error, `UNAVAILABLE`, `INTERNAL`, ...), misses the
//! deadline, or returns a receipt that does not hold. A provider refusing bad input
//! (`INVALID_ARGUMENT`, `NOT_FOUND`, ...) keeps its promise: the fault is the caller's.

use std::{sync::Arc, time::Instant};

use tonic::{Code, Request, Status};
use veilgrid_core::{
    protocol::ProtocolId,
    receipt::{SignedReceipt, request_hash, response_hash},
};
use veilgrid_kit::{chunks, provider::receipt_from_proto};
use veilgrid_proto::grid::v1::{CompletionRequest, CompletionResponse};

use crate::registry::Entry;

/// Payloads (and completions) at least this large are hashed on the blocking
/// pool: the request while the provider works, so a 1 MiB request's SHA-256
/// (about half a millisecond) is off the critical path and off the async workers.
const HASH_AHEAD: usize = 64 << 10;

/// How a call to a provider ended.
pub(crate) enum Outcome {
    /// A valid, signed completion.
    Kept(Box<(CompletionResponse, SignedReceipt)>),
    /// The caller's fault: pass the status on, count nothing.
    Refused(Status),
    /// The provider's fault: count a broken promise; retry if allowed.
    Broken(Status),
}

/// Whether a status from a provider is the provider's fault.
pub(crate) fn provider_fault(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::Internal
            | Code::Unknown
            | Code::DeadlineExceeded
            | Code::DataLoss
            | Code::Unimplemented
            | Code::Cancelled
    )
}

/// Call `entry` with `req` (streamed if `stream`), within `time_left`, on behalf of
/// `caller` (named to the provider in request metadata, see `veilgrid_kit::auth`).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn call(
    entry: &Arc<Entry>,
    protocol: &ProtocolId,
    req: CompletionRequest,
    stream: bool,
    time_left: std::time::Duration,
    max_message: usize,
    max_completion: usize,
    caller: Option<&veilgrid_kit::auth::Caller>,
) -> Outcome {
    let _guard = entry.start();
    let started = Instant::now();
    let payload = req.payload.clone();
    let request_digest = (payload.len() >= HASH_AHEAD).then(|| {
        let (protocol, payload) = (*protocol, payload.clone());
        tokio::task::spawn_blocking(move || request_hash(&protocol, &payload))
    });
    let mut client = entry.client(max_message);
    let result = if stream {
        let frames = chunks::request_frames(req);
        let mut r = Request::new(futures::stream::iter(frames));
        r.set_timeout(time_left);
        veilgrid_kit::auth::forward(&mut r, caller);
        match client.complete_stream(r).await {
            Ok(resp) => chunks::collect_response(resp.into_inner(), max_completion).await,
            Err(s) => Err(s),
        }
    } else {
        let mut r = Request::new(req);
        r.set_timeout(time_left);
        veilgrid_kit::auth::forward(&mut r, caller);
        client.complete(r).await.map(|r| r.into_inner())
    };
    let elapsed = started.elapsed();
    match result {
        Ok(resp) => {
            entry.observe_latency(elapsed);
            let request_digest = match request_digest {
                Some(ahead) => match ahead.await {
                    Ok(d) => d,
                    Err(_) => request_hash(protocol, &payload),
                },
                None => request_hash(protocol, &payload),
            };
            let response_digest = if resp.completion.len() >= HASH_AHEAD {
                let completion = resp.completion.clone();
                match tokio::task::spawn_blocking(move || response_hash(&completion)).await {
                    Ok(d) => d,
                    Err(_) => response_hash(&resp.completion),
                }
            } else {
                response_hash(&resp.completion)
            };
            match judge(entry, protocol, &request_digest, &response_digest, &resp) {
                Ok(receipt) => Outcome::Kept(Box::new((resp, receipt))),
                Err(s) => Outcome::Broken(s),
            }
        }
        Err(s) if elapsed >= time_left => Outcome::Broken(Status::deadline_exceeded(format!(
            "provider {} did not complete before the deadline ({})",
            hex::encode(&entry.id[..8]),
            s.message()
        ))),
        Err(s) if provider_fault(s.code()) => {
            entry.observe_latency(elapsed);
            Outcome::Broken(s)
        }
        Err(s) => Outcome::Refused(s),
    }
}

fn judge(
    entry: &Entry,
    protocol: &ProtocolId,
    request_digest: &[u8; 32],
    response_digest: &[u8; 32],
    resp: &CompletionResponse,
) -> Result<SignedReceipt, Status> {
    let fail = |why: String| {
        Status::unavailable(format!(
            "provider {} returned an invalid receipt: {why}",
            hex::encode(&entry.id[..8])
        ))
    };
    let proto = resp
        .receipt
        .as_ref()
        .ok_or_else(|| fail("no receipt".into()))?;
    let receipt = receipt_from_proto(proto).map_err(|e| fail(e.to_string()))?;
    if receipt.receipt.provider_id != entry.id {
        return Err(fail("signed by another provider id".into()));
    }
    // The same checks as `SignedReceipt::verify_for`, with the hashes computed
    // ahead (see `HASH_AHEAD`) and the provider's key decompressed at registration.
    let signed = receipt
        .receipt
        .canonical_bytes()
        .map_err(|e| fail(e.to_string()))?;
    entry
        .verifier
        .verify_named("receipt", &signed, &receipt.signature)
        .map_err(|e| fail(e.to_string()))?;
    if receipt.receipt.protocol_id != *protocol {
        return Err(fail("protocol id does not match the request".into()));
    }
    if receipt.receipt.request_hash != *request_digest {
        return Err(fail("request hash does not match the request".into()));
    }
    if receipt.receipt.response_hash != *response_digest {
        return Err(fail("response hash does not match the completion".into()));
    }
    Ok(receipt)
}
