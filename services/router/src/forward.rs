//! Sending one request to one provider and judging the answer.
//!
//! A promise is **kept** when a completion arrives before the deadline with a
//! receipt that names this provider, this protocol, this request and this
//! completion, and whose Ed25519 signature verifies. It is **broken** when the
//! provider fails (transport error, `UNAVAILABLE`, `INTERNAL`, ...), misses the
//! deadline, or returns a receipt that does not hold. A provider refusing bad input
//! (`INVALID_ARGUMENT`, `NOT_FOUND`, ...) keeps its promise: the fault is the caller's.

use std::{sync::Arc, time::Instant};

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Request, Status, Streaming};
use veilgrid_core::{
    protocol::ProtocolId,
    receipt::{RequestHasher, SignedReceipt, request_hash, response_hash},
};
use veilgrid_kit::{chunks, provider::receipt_from_proto};
use veilgrid_proto::grid::v1::{
    CompletionChunk, CompletionRequest, CompletionResponse, completion_chunk::Part,
};

use crate::registry::Entry;

/// Payloads (and completions) at least this large are hashed on the blocking
/// pool: the request while the provider works, so a 1 MiB request's SHA-256
/// (about half a millisecond) is off the critical path and off the async workers.
const HASH_AHEAD: usize = 64 << 10;

/// The provider's unary method.
const COMPLETE_PATH: &str = "/veilgrid.grid.v1.Provider/Complete";
/// `CompletionRequest.payload`'s field number.
const PAYLOAD_FIELD: u32 = 2;

/// `req` encoded as two pieces: every field but the payload, with the payload's
/// key and length at the end, and then the payload itself (not copied). Protobuf
/// fields may come in any order, so this decodes as `req`.
fn encode_unary(mut req: CompletionRequest) -> Vec<Bytes> {
    let payload = std::mem::take(&mut req.payload);
    let mut head = BytesMut::with_capacity(req.encoded_len() + 16);
    // Encoding into a BytesMut reserved for it cannot fail.
    let _ = req.encode(&mut head);
    if !payload.is_empty() {
        prost::encoding::encode_key(
            PAYLOAD_FIELD,
            prost::encoding::WireType::LengthDelimited,
            &mut head,
        );
        prost::encoding::encode_varint(payload.len() as u64, &mut head);
    }
    vec![head.freeze(), payload]
}

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
    let result = if stream {
        let mut client = entry.client(max_message);
        let frames = chunks::request_frames(req);
        let mut r = Request::new(futures::stream::iter(frames));
        r.set_timeout(time_left);
        veilgrid_kit::auth::forward(&mut r, caller);
        match client.complete_stream(r).await {
            Ok(resp) => chunks::collect_response(resp.into_inner(), max_completion).await,
            Err(s) => Err(s),
        }
    } else {
        entry
            .direct
            .call::<CompletionResponse>(
                COMPLETE_PATH,
                encode_unary(req),
                time_left,
                caller,
                max_message,
            )
            .await
    };
    let elapsed = started.elapsed();
    let request_digest = match request_digest {
        Some(ahead) => match ahead.await {
            Ok(d) => d,
            Err(_) => request_hash(protocol, &payload),
        },
        None => request_hash(protocol, &payload),
    };
    finish(entry, protocol, result, elapsed, time_left, &request_digest).await
}

/// Judge what a provider answered (or how its call failed) after `elapsed`, for a
/// request whose receipt hash is `request_digest`.
async fn finish(
    entry: &Arc<Entry>,
    protocol: &ProtocolId,
    result: Result<CompletionResponse, Status>,
    elapsed: std::time::Duration,
    time_left: std::time::Duration,
    request_digest: &[u8; 32],
) -> Outcome {
    match result {
        Ok(resp) => {
            entry.observe_latency(elapsed);
            let response_digest = if resp.completion.len() >= HASH_AHEAD {
                let completion = resp.completion.clone();
                match tokio::task::spawn_blocking(move || response_hash(&completion)).await {
                    Ok(d) => d,
                    Err(_) => response_hash(&resp.completion),
                }
            } else {
                response_hash(&resp.completion)
            };
            match judge(entry, protocol, request_digest, &response_digest, &resp) {
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

/// A streamed request's data frames, as they arrive from the caller.
pub(crate) struct Upload {
    /// The frames after the header.
    pub(crate) frames: Streaming<CompletionChunk>,
    /// The payload length the header declares (never 0 here).
    pub(crate) declared: u64,
    /// Largest payload accepted.
    pub(crate) max: usize,
    /// Keep the pieces for a retry on another provider.
    pub(crate) keep: bool,
    /// The test hook that sees the router's view of the bytes.
    pub(crate) observer: Option<crate::Observer>,
}

/// The payload pieces of a streamed request, kept (zero-copy) for a retry.
#[derive(Default)]
pub(crate) struct Kept {
    pieces: Vec<Bytes>,
    len: usize,
}

impl Kept {
    /// The whole payload.
    pub(crate) fn assemble(mut self) -> Bytes {
        if self.pieces.len() == 1 {
            return self.pieces.remove(0);
        }
        let mut buf = BytesMut::with_capacity(self.len);
        for p in &self.pieces {
            buf.extend_from_slice(p);
        }
        buf.freeze()
    }
}

/// How the caller's side of a cut-through stream ended.
enum PumpEnd {
    /// Every frame arrived and was passed on: the request hash and the kept pieces.
    Done([u8; 32], Kept),
    /// The caller's fault (malformed frame, too large, cancelled, too slow).
    Caller(Status),
    /// The provider stopped reading the request until the deadline.
    ProviderStalled,
}

/// Pass the caller's data frames on to `tx` as they arrive, hashing and checking
/// them on the way; once the provider's call has ended, keep reading only if the
/// pieces are kept for a retry.
async fn pump(
    mut up: Upload,
    protocol: &ProtocolId,
    tx: mpsc::Sender<CompletionChunk>,
    time_left: std::time::Duration,
) -> PumpEnd {
    let deadline = tokio::time::Instant::now() + time_left;
    let mut hasher = RequestHasher::new(protocol);
    let mut kept = Kept::default();
    let mut tx = Some(tx);
    let mut total = 0usize;
    // The frame that completes the declared length is passed on only once the
    // caller's stream has ended cleanly: until then the provider holds fewer bytes
    // than declared, so whatever goes wrong (a frame too many, a reset, the
    // deadline) it can never take what it holds for a complete request.
    let mut held: Option<Bytes> = None;
    loop {
        let frame = match tokio::time::timeout_at(deadline, up.frames.next()).await {
            Err(_) => {
                return PumpEnd::Caller(Status::deadline_exceeded(
                    "the deadline passed while the streamed request was still arriving",
                ));
            }
            Ok(None) => {
                if let Err(s) = chunks::check_length(total, up.declared, up.max, true) {
                    return PumpEnd::Caller(s);
                }
                if let Some(last) = held.take()
                    && let Err(end) = pass_on(&mut tx, last, deadline).await
                {
                    return end;
                }
                break;
            }
            Ok(Some(Err(s))) => return PumpEnd::Caller(s),
            Ok(Some(Ok(f))) => f,
        };
        let data = match chunks::request_data(frame) {
            Ok(d) => d,
            Err(s) => return PumpEnd::Caller(s),
        };
        total = total.saturating_add(data.len());
        if let Err(s) = chunks::check_length(total, up.declared, up.max, false) {
            return PumpEnd::Caller(s);
        }
        hasher.update(&data);
        if let Some(obs) = &up.observer {
            obs(protocol, &data);
        }
        if up.keep {
            kept.len += data.len();
            kept.pieces.push(data.clone());
        }
        if total as u64 == up.declared {
            held = Some(data);
        } else if let Err(end) = pass_on(&mut tx, data, deadline).await {
            return end;
        }
        if tx.is_none() && !up.keep {
            break;
        }
    }
    PumpEnd::Done(hasher.finish(), kept)
}

/// Send one data frame to the provider's stream, unless its call has ended (then
/// `tx` becomes `None`: its answer is judged once the request is complete).
async fn pass_on(
    tx: &mut Option<mpsc::Sender<CompletionChunk>>,
    data: Bytes,
    deadline: tokio::time::Instant,
) -> Result<(), PumpEnd> {
    if let Some(t) = tx.as_ref() {
        let frame = CompletionChunk {
            part: Some(Part::Data(data)),
        };
        match tokio::time::timeout_at(deadline, t.send(frame)).await {
            Err(_) => return Err(PumpEnd::ProviderStalled),
            Ok(Err(_)) => *tx = None,
            Ok(Ok(())) => {}
        }
    }
    Ok(())
}

/// Call `entry` with a streamed request while it arrives (cut-through): `header`
/// first, then each data frame of `upload` as the caller sends it. The completion
/// is collected and judged as in [`call`], and the whole payload comes back when
/// `upload.keep` asked for it (for a retry). `Err` is the caller's fault (its stream
/// was malformed, too large, cancelled or too slow); the provider's call is then
/// dropped, which resets its stream, and nothing is counted.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn call_streaming(
    entry: &Arc<Entry>,
    protocol: &ProtocolId,
    header: CompletionRequest,
    upload: Upload,
    time_left: std::time::Duration,
    max_message: usize,
    max_completion: usize,
    caller: Option<&veilgrid_kit::auth::Caller>,
) -> Result<(Outcome, Option<Kept>), Status> {
    let _guard = entry.start();
    let started = Instant::now();
    // Two frames of slack: the header, and one data frame while the provider reads.
    let (tx, rx) = mpsc::channel::<CompletionChunk>(2);
    tx.try_send(CompletionChunk {
        part: Some(Part::Header(header)),
    })
    .map_err(|_| Status::internal("router: the stream to the provider refused its header"))?;
    let mut client = entry.client(max_message);
    let mut r = Request::new(ReceiverStream::new(rx));
    r.set_timeout(time_left);
    veilgrid_kit::auth::forward(&mut r, caller);
    let call = async move {
        match client.complete_stream(r).await {
            Ok(resp) => chunks::collect_response(resp.into_inner(), max_completion).await,
            Err(s) => Err(s),
        }
    };
    let keep = upload.keep;
    let pump = pump(upload, protocol, tx, time_left);
    tokio::pin!(call);
    tokio::pin!(pump);
    let mut answered = None;
    let end = loop {
        tokio::select! {
            end = &mut pump => break end,
            r = &mut call, if answered.is_none() => answered = Some(r),
        }
    };
    let (digest, kept) = match end {
        PumpEnd::Done(digest, kept) => (digest, kept),
        PumpEnd::Caller(s) => return Err(s),
        PumpEnd::ProviderStalled => {
            let s = Status::deadline_exceeded(format!(
                "provider {} stopped reading the request before the deadline",
                hex::encode(&entry.id[..8])
            ));
            // Nothing complete to retry with (and the deadline has passed).
            return Ok((Outcome::Broken(s), None));
        }
    };
    let result = match answered {
        Some(r) => r,
        None => call.await,
    };
    let outcome = finish(
        entry,
        protocol,
        result,
        started.elapsed(),
        time_left,
        &digest,
    )
    .await;
    Ok((outcome, keep.then_some(kept)))
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
    // ahead (see `HASH_AHEAD`), the cheap comparisons first, and the provider's key
    // prepared at registration (`PreparedVerifier`: `verify_strict`'s verdicts with
    // per-key tables).
    if receipt.receipt.protocol_id != *protocol {
        return Err(fail("protocol id does not match the request".into()));
    }
    if receipt.receipt.request_hash != *request_digest {
        return Err(fail("request hash does not match the request".into()));
    }
    if receipt.receipt.response_hash != *response_digest {
        return Err(fail("response hash does not match the completion".into()));
    }
    let signed = receipt
        .receipt
        .canonical_bytes()
        .map_err(|e| fail(e.to_string()))?;
    entry
        .verifier
        .verify_named("receipt", &signed, &receipt.signature)
        .map_err(|e| fail(e.to_string()))?;
    Ok(receipt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use veilgrid_proto::grid::v1::Terms;

    #[test]
    fn the_two_piece_encoding_decodes_as_the_request() {
        for payload in [
            Bytes::new(),
            Bytes::from_static(b"x"),
            Bytes::from(vec![7u8; 300_000]),
        ] {
            let req = CompletionRequest {
                protocol_id: Bytes::from(vec![1u8; 32]),
                payload: payload.clone(),
                terms: Some(Terms {
                    deadline_unix_ms: 123,
                    ..Default::default()
                }),
                idempotency_id: Bytes::from_static(b"idem"),
                ..Default::default()
            };
            let pieces = encode_unary(req.clone());
            assert_eq!(pieces.len(), 2);
            // the payload is the caller's buffer, not a copy
            assert_eq!(pieces[1].as_ptr(), payload.as_ptr());
            let joined: Vec<u8> = pieces.concat();
            assert_eq!(CompletionRequest::decode(&joined[..]).unwrap(), req);
            assert_eq!(joined.len(), req.encoded_len());
        }
    }
}
