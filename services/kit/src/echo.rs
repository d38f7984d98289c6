//! The echo protocols: plumbing tests and the router-overhead benchmark.
//!
//! * `veilgrid/echo/v1`: the completion is the payload.
//! * `veilgrid/echo/sealed/v1`: the payload is a `SealedEcho` sealed (HPKE) to the
//!   provider's X25519 key; the completion is its message sealed to the caller's
//!   reply key. The router carries both directions and can read neither.

use std::sync::Arc;

use bytes::Bytes;
use prost::Message;
use tonic::Status;
use veilgrid_core::seal::{SealKeyPair, SealPublicKey};
use veilgrid_proto::echo::v1::SealedEcho;

use crate::{
    identity::Identity,
    provider::{Context, Handler},
};

/// Name of the plain echo protocol.
pub const ECHO: &str = "veilgrid/echo/v1";
/// Name of the sealed echo protocol.
pub const ECHO_SEALED: &str = "veilgrid/echo/sealed/v1";
const SEAL_INFO: &[u8] = b"veilgrid/echo/sealed/v1";
const REPLY_INFO: &[u8] = b"veilgrid/echo/sealed/v1/reply";

/// Completes both echo protocols.
pub struct EchoHandler {
    identity: Arc<Identity>,
}

impl EchoHandler {
    /// An echo handler that opens sealed requests with `identity`'s sealing key.
    pub fn new(identity: Arc<Identity>) -> Arc<Self> {
        Arc::new(Self { identity })
    }
}

#[tonic::async_trait]
impl Handler for EchoHandler {
    async fn complete(&self, ctx: &Context, payload: Bytes) -> Result<Bytes, Status> {
        if ctx.protocol == veilgrid_core::protocol::ProtocolId::from_name(ECHO) {
            return Ok(payload);
        }
        let opened = self
            .identity
            .sealing
            .open(SEAL_INFO, b"", &payload)
            .map_err(|e| Status::invalid_argument(format!("sealed echo: {e}")))?;
        let req = SealedEcho::decode(&opened[..]).map_err(|e| {
            Status::invalid_argument(format!("sealed echo is not a SealedEcho: {e}"))
        })?;
        let reply_key = SealPublicKey::from_bytes(&req.reply_key)
            .map_err(|e| Status::invalid_argument(format!("sealed echo reply key: {e}")))?;
        reply_key
            .seal(REPLY_INFO, b"", &req.message)
            .map(Bytes::from)
            .map_err(|e| Status::internal(e.to_string()))
    }
}

/// Client side: seal `message` to the provider's key, asking for the reply to be
/// sealed to `reply`.
pub fn seal_request(
    provider_key: &SealPublicKey,
    reply: &SealKeyPair,
    message: &[u8],
) -> Result<Vec<u8>, veilgrid_core::Error> {
    let inner = SealedEcho {
        reply_key: Bytes::copy_from_slice(&reply.public().to_bytes()),
        message: Bytes::copy_from_slice(message),
    };
    provider_key.seal(SEAL_INFO, b"", &inner.encode_to_vec())
}

/// Client side: open the sealed reply.
pub fn open_reply(
    reply: &SealKeyPair,
    completion: &[u8],
) -> Result<zeroize::Zeroizing<Vec<u8>>, veilgrid_core::Error> {
    reply.open(REPLY_INFO, b"", completion)
}
