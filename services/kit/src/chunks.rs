//! Framing of streamed completions.
//!
//! A request stream is one `header` frame (a `CompletionRequest` whose payload is
//! empty) followed by `data` frames of at most [`CHUNK_SIZE`] bytes. A response
//! stream is `data` frames followed by one `receipt` frame. No single gRPC message
//! ever carries a whole large payload, so the 4 MiB default message limit holds.
//! Reassembly refuses more than a caller-given number of bytes before it buffers them.

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use tonic::Status;
use veilgrid_proto::grid::v1::{
    CompletionChunk, CompletionRequest, CompletionResponse, completion_chunk::Part,
};

/// Size of one data frame.
pub const CHUNK_SIZE: usize = 1 << 20;

fn split(data: Bytes) -> impl Iterator<Item = CompletionChunk> {
    let n = data.len().div_ceil(CHUNK_SIZE);
    (0..n).map(move |i| CompletionChunk {
        part: Some(Part::Data(
            data.slice(i * CHUNK_SIZE..((i + 1) * CHUNK_SIZE).min(data.len())),
        )),
    })
}

/// The frames of a request: its header (declaring the payload's length), then its
/// payload in chunks (zero-copy).
pub fn request_frames(mut request: CompletionRequest) -> Vec<CompletionChunk> {
    let payload = std::mem::take(&mut request.payload);
    request.stream_length = payload.len() as u64;
    std::iter::once(CompletionChunk {
        part: Some(Part::Header(request)),
    })
    .chain(split(payload))
    .collect()
}

/// The frames of a response: its completion in chunks, then the receipt.
pub fn response_frames(response: CompletionResponse) -> Vec<CompletionChunk> {
    split(response.completion)
        .chain(response.receipt.map(|r| CompletionChunk {
            part: Some(Part::Receipt(r)),
        }))
        .collect()
}

fn too_large(what: &str, max: usize) -> Status {
    Status::resource_exhausted(format!(
        "{what} exceeds the limit of {max} bytes; split the work or raise the configured limit"
    ))
}

fn append(buf: &mut BytesMut, data: &[u8], max: usize, what: &str) -> Result<(), Status> {
    if buf.len().saturating_add(data.len()) > max {
        return Err(too_large(what, max));
    }
    buf.extend_from_slice(data);
    Ok(())
}

/// Read the header frame that starts a request stream (the data frames follow).
/// A declared length over `max` is refused here, before any data is read.
pub async fn read_header<S>(frames: &mut S, max: usize) -> Result<CompletionRequest, Status>
where
    S: Stream<Item = Result<CompletionChunk, Status>> + Unpin,
{
    let header = match frames.next().await {
        Some(Ok(CompletionChunk {
            part: Some(Part::Header(h)),
        })) => h,
        Some(Ok(_)) => {
            return Err(Status::invalid_argument(
                "a completion stream must start with a header frame",
            ));
        }
        Some(Err(s)) => return Err(s),
        None => return Err(Status::invalid_argument("empty completion stream")),
    };
    if !header.payload.is_empty() {
        return Err(Status::invalid_argument(
            "the header frame of a stream must not carry payload bytes; send them as data frames",
        ));
    }
    if header.stream_length > max as u64 {
        return Err(payload_too_large(max));
    }
    Ok(header)
}

/// Check the running total of a stream's payload bytes against the limit and the
/// declared length (0 = none); `end` marks the end of the stream.
pub fn check_length(total: usize, declared: u64, max: usize, end: bool) -> Result<(), Status> {
    if total > max {
        return Err(payload_too_large(max));
    }
    if declared != 0 {
        if total as u64 > declared {
            return Err(Status::invalid_argument(format!(
                "the stream carries more than the {declared} payload bytes its header declares"
            )));
        }
        if end && total as u64 != declared {
            return Err(Status::invalid_argument(format!(
                "the stream ended after {total} of the {declared} payload bytes its header declares"
            )));
        }
    }
    Ok(())
}

/// The payload bytes of one frame that follows a request's header; anything but a
/// data frame is refused.
pub fn request_data(frame: CompletionChunk) -> Result<Bytes, Status> {
    match frame.part {
        Some(Part::Data(d)) => Ok(d),
        Some(Part::Header(_)) => Err(Status::invalid_argument(
            "a second header frame in one stream",
        )),
        Some(Part::Receipt(_)) => Err(Status::invalid_argument(
            "a request stream cannot carry a receipt",
        )),
        None => Err(Status::invalid_argument("an empty frame")),
    }
}

/// The error for a streamed payload over `max` bytes.
pub fn payload_too_large(max: usize) -> Status {
    too_large("streamed payload", max)
}

/// Reassemble a request stream, refusing a payload of more than `max` bytes.
pub async fn collect_request<S>(mut frames: S, max: usize) -> Result<CompletionRequest, Status>
where
    S: Stream<Item = Result<CompletionChunk, Status>> + Unpin,
{
    let mut header = read_header(&mut frames, max).await?;
    header.payload = collect_payload(frames, header.stream_length, max).await?;
    Ok(header)
}

/// Reassemble the data frames that follow a request's header, refusing more than
/// `max` bytes or a total other than `declared` (when not 0).
pub async fn collect_payload<S>(mut frames: S, declared: u64, max: usize) -> Result<Bytes, Status>
where
    S: Stream<Item = Result<CompletionChunk, Status>> + Unpin,
{
    let mut buf = BytesMut::with_capacity(declared.min(max as u64) as usize);
    while let Some(frame) = frames.next().await {
        let data = request_data(frame?)?;
        check_length(buf.len().saturating_add(data.len()), declared, max, false)?;
        buf.extend_from_slice(&data);
    }
    check_length(buf.len(), declared, max, true)?;
    Ok(buf.freeze())
}

/// Reassemble a response stream, refusing a completion of more than `max` bytes.
pub async fn collect_response<S>(mut frames: S, max: usize) -> Result<CompletionResponse, Status>
where
    S: Stream<Item = Result<CompletionChunk, Status>> + Unpin,
{
    let mut buf = BytesMut::new();
    while let Some(frame) = frames.next().await {
        match frame?.part {
            Some(Part::Data(d)) => append(&mut buf, &d, max, "streamed completion")?,
            Some(Part::Receipt(r)) => {
                if frames.next().await.is_some() {
                    return Err(Status::internal("frames after the receipt"));
                }
                return Ok(CompletionResponse {
                    completion: buf.freeze(),
                    receipt: Some(r),
                });
            }
            Some(Part::Header(_)) | None => {
                return Err(Status::internal("unexpected frame in a response stream"));
            }
        }
    }
    Err(Status::unavailable(
        "the completion stream ended without a receipt",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use veilgrid_proto::grid::v1::Receipt;

    #[tokio::test]
    async fn request_round_trip_and_limit() {
        let payload = Bytes::from(
            (0..(3 * CHUNK_SIZE + 5))
                .map(|i| i as u8)
                .collect::<Vec<_>>(),
        );
        let req = CompletionRequest {
            protocol_id: Bytes::from_static(&[7; 32]),
            payload: payload.clone(),
            ..Default::default()
        };
        let frames = request_frames(req);
        assert_eq!(frames.len(), 5);
        let s = futures::stream::iter(frames.clone().into_iter().map(Ok));
        let back = collect_request(s, payload.len()).await.unwrap();
        assert_eq!(back.payload, payload);
        let s = futures::stream::iter(frames.into_iter().map(Ok));
        let err = collect_request(s, payload.len() - 1).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::ResourceExhausted);
    }

    #[tokio::test]
    async fn a_stream_cut_short_or_overlong_is_refused() {
        let req = CompletionRequest {
            protocol_id: Bytes::from_static(&[7; 32]),
            payload: Bytes::from(vec![1u8; 2 * CHUNK_SIZE + 3]),
            ..Default::default()
        };
        let frames = request_frames(req);
        assert!(
            matches!(&frames[0].part, Some(Part::Header(h)) if h.stream_length == (2 * CHUNK_SIZE + 3) as u64)
        );
        // The last data frame lost: the declared length tells.
        let short = frames[..frames.len() - 1].to_vec();
        let err = collect_request(futures::stream::iter(short.into_iter().map(Ok)), 1 << 30)
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert!(err.message().contains("ended after"), "{err:?}");
        // One data frame too many.
        let mut long = frames.clone();
        long.push(frames[1].clone());
        let err = collect_request(futures::stream::iter(long.into_iter().map(Ok)), 1 << 30)
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        // A declared length over the limit is refused before any data is read.
        let err = collect_request(
            futures::stream::iter(frames.into_iter().map(Ok)),
            CHUNK_SIZE,
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), tonic::Code::ResourceExhausted);
    }

    #[tokio::test]
    async fn malformed_streams_are_invalid_arguments() {
        let data = CompletionChunk {
            part: Some(Part::Data(Bytes::from_static(b"x"))),
        };
        let err = collect_request(futures::stream::iter(vec![Ok(data)]), 10)
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        let err = collect_request(futures::stream::iter(Vec::new()), 10)
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        let header = CompletionChunk {
            part: Some(Part::Header(CompletionRequest::default())),
        };
        let twice = vec![Ok(header.clone()), Ok(header)];
        let err = collect_request(futures::stream::iter(twice), 10)
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
    }

    #[tokio::test]
    async fn response_round_trip_needs_receipt() {
        let resp = CompletionResponse {
            completion: Bytes::from(vec![1u8; CHUNK_SIZE + 1]),
            receipt: Some(Receipt::default()),
        };
        let frames = response_frames(resp.clone());
        let back = collect_response(
            futures::stream::iter(frames.clone().into_iter().map(Ok)),
            1 << 30,
        )
        .await
        .unwrap();
        assert_eq!(back, resp);
        let no_receipt = frames[..frames.len() - 1].to_vec();
        let err = collect_response(
            futures::stream::iter(no_receipt.into_iter().map(Ok)),
            1 << 30,
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unavailable);
    }
}
