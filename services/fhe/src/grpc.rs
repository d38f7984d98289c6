//! The typed gRPC API (`veilgrid.fhe.v1.Fhe`).

use std::sync::Arc;

use bytes::BytesMut;
use futures::StreamExt;
use tonic::{Request, Response, Status, Streaming};
use veilgrid_fhe::params::MAX_COMPRESSED_SERVER_KEY_BYTES;
use veilgrid_proto::fhe::v1::{self as pb, fhe_server::Fhe};

use crate::{FheServiceError, engine::Engine};

/// The gRPC service over a shared [`Engine`].
#[derive(Debug, Clone)]
pub struct FheService {
    pub(crate) engine: Arc<Engine>,
}

impl FheService {
    /// The service over `engine`.
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }
}

/// Reassemble a key upload: the first frame announces the key id and total length (refused at
/// once when over the limit), data frames follow; more or fewer bytes than announced is an
/// error (a truncated upload stores nothing).
pub(crate) async fn collect_key(
    mut frames: impl futures::Stream<Item = Result<pb::RegisterKeyChunk, Status>> + Unpin,
) -> Result<(bytes::Bytes, bytes::Bytes), Status> {
    let max = MAX_COMPRESSED_SERVER_KEY_BYTES as u64;
    let first = frames
        .next()
        .await
        .ok_or_else(|| Status::invalid_argument("empty key upload"))??;
    if first.key_id.len() != 32 {
        return Err(Status::invalid_argument(
            "the first frame of a key upload must carry the 32-byte key_id",
        ));
    }
    let total = first.total_bytes;
    if total > max {
        return Err(FheServiceError::TooLarge {
            what: "compressed server key",
            len: total,
            max,
        }
        .into());
    }
    let mut buf = BytesMut::with_capacity(total as usize);
    buf.extend_from_slice(&first.data);
    while let Some(frame) = frames.next().await {
        let frame = frame?;
        if !frame.key_id.is_empty() || frame.total_bytes != 0 {
            return Err(Status::invalid_argument(
                "only the first frame of a key upload carries key_id and total_bytes",
            ));
        }
        if buf.len() as u64 + frame.data.len() as u64 > total {
            return Err(Status::invalid_argument(format!(
                "the upload carries more than the announced {total} bytes"
            )));
        }
        buf.extend_from_slice(&frame.data);
    }
    if buf.len() as u64 != total {
        return Err(Status::invalid_argument(format!(
            "truncated key upload: {} of the announced {total} bytes arrived; nothing was stored",
            buf.len()
        )));
    }
    Ok((first.key_id, buf.freeze()))
}

#[tonic::async_trait]
impl Fhe for FheService {
    async fn register_key(
        &self,
        request: Request<Streaming<pb::RegisterKeyChunk>>,
    ) -> Result<Response<pb::RegisterKeyResponse>, Status> {
        let caller = veilgrid_kit::auth::resolve(&request)?;
        let (id, bytes) = collect_key(request.into_inner()).await?;
        self.engine.check_key_owner(&id, caller.as_ref())?;
        let resp = self
            .engine
            .on_pool(move |e| e.register_key(&id, &bytes))
            .await?;
        self.engine.claim_key(&resp.key_id, caller.as_ref())?;
        Ok(Response::new(resp))
    }

    async fn list_models(
        &self,
        _request: Request<pb::ListModelsRequest>,
    ) -> Result<Response<pb::ListModelsResponse>, Status> {
        Ok(Response::new(self.engine.list_models()))
    }

    async fn infer(
        &self,
        request: Request<pb::InferRequest>,
    ) -> Result<Response<pb::InferResponse>, Status> {
        let caller = veilgrid_kit::auth::resolve(&request)?;
        let req = request.into_inner();
        self.engine.check_key_owner(&req.key_id, caller.as_ref())?;
        self.engine
            .on_pool(move |e| e.infer(&req))
            .await
            .map(Response::new)
            .map_err(Status::from)
    }

    async fn infer_batch(
        &self,
        request: Request<pb::InferBatchRequest>,
    ) -> Result<Response<pb::InferBatchResponse>, Status> {
        let caller = veilgrid_kit::auth::resolve(&request)?;
        let req = request.into_inner();
        self.engine.check_key_owner(&req.key_id, caller.as_ref())?;
        self.engine
            .on_pool(move |e| e.infer_batch(&req))
            .await
            .map(Response::new)
            .map_err(Status::from)
    }
}
