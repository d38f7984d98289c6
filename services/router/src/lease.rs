//! Checking a provider's signed registration and turning it into a registry entry.

use std::{collections::HashMap, sync::Arc, time::Duration};

use prost::Message;
use tonic::{Status, transport::Endpoint};
use veilgrid_core::{protocol::ProtocolId, seal::SealPublicKey, sign::VerifierKey};
use veilgrid_kit::{registration::REGISTER_TAG, tls::Security};
use veilgrid_proto::grid::v1::ProviderInfo;

use crate::{
    registry::{Entry, Links},
    store::LeaseRecord,
};

/// Limits on what a registration may carry.
pub(crate) const MAX_INFO_BYTES: usize = 64 << 10;
const MAX_ASKS: usize = 256;
const MAX_NAME: usize = 128;
const MAX_ENDPOINT: usize = 512;
/// How far a registration's timestamp may be from the router's clock.
const MAX_SKEW_MS: u64 = 5 * 60 * 1000;

/// A checked registration.
pub(crate) struct Checked {
    pub(crate) id: [u8; 32],
    pub(crate) info: ProviderInfo,
    pub(crate) asks: HashMap<ProtocolId, u64>,
    pub(crate) ttl_ms: u64,
}

fn bad(msg: impl Into<String>) -> Status {
    Status::invalid_argument(msg.into())
}

/// Verify the signature and the contents of a registration.
pub(crate) fn check(
    info_bytes: &[u8],
    signature: &[u8],
    now_ms: u64,
    ttl_bounds: (Duration, Duration),
) -> Result<Checked, Status> {
    if info_bytes.len() > MAX_INFO_BYTES {
        return Err(Status::resource_exhausted(format!(
            "registration of {} bytes exceeds {MAX_INFO_BYTES} bytes",
            info_bytes.len()
        )));
    }
    let info = ProviderInfo::decode(info_bytes)
        .map_err(|e| bad(format!("provider_info is not a ProviderInfo: {e}")))?;
    let key =
        VerifierKey::from_bytes(&info.provider_id).map_err(|e| bad(format!("provider_id: {e}")))?;
    let mut msg = REGISTER_TAG.to_vec();
    msg.extend_from_slice(info_bytes);
    key.verify_named("registration", &msg, signature)
        .map_err(|_| {
            Status::permission_denied(
                "registration signature does not verify for the provider id it names",
            )
        })?;
    if info.signed_at_ms.abs_diff(now_ms) > MAX_SKEW_MS {
        return Err(bad(
            "registration timestamp is more than 5 minutes from the router's clock (replayed, or clocks out of sync)",
        ));
    }
    SealPublicKey::from_bytes(&info.seal_public_key)
        .map_err(|e| bad(format!("seal_public_key: {e}")))?;
    if info.endpoint.len() > MAX_ENDPOINT
        || !(info.endpoint.starts_with("http://") || info.endpoint.starts_with("https://"))
    {
        return Err(bad(format!(
            "endpoint {:?} must be an http:// or https:// URL",
            info.endpoint
        )));
    }
    Endpoint::from_shared(info.endpoint.clone())
        .map_err(|e| bad(format!("endpoint {:?}: {e}", info.endpoint)))?;
    if info.name.len() > MAX_NAME || info.currency.len() > veilgrid_core::receipt::MAX_CURRENCY_LEN
    {
        return Err(bad("name or currency too long"));
    }
    if info.asks.is_empty() || info.asks.len() > MAX_ASKS {
        return Err(bad(format!(
            "a provider advertises 1 to {MAX_ASKS} protocols"
        )));
    }
    let mut asks = HashMap::new();
    for a in &info.asks {
        let p = ProtocolId::from_bytes(&a.protocol_id)
            .map_err(|_| bad("every ask needs a 32-byte protocol id"))?;
        asks.insert(p, a.price);
    }
    let (lo, hi) = ttl_bounds;
    let ttl_ms = info
        .ttl_ms
        .clamp(lo.as_millis() as u64, hi.as_millis() as u64);
    let id = key.to_bytes();
    Ok(Checked {
        id,
        info,
        asks,
        ttl_ms,
    })
}

/// A registry entry for a checked registration (plaintext channel).
#[allow(dead_code)]
pub(crate) fn entry(
    c: Checked,
    lease_id: [u8; 16],
    expires_at_ms: u64,
) -> Result<Arc<Entry>, Status> {
    entry_with(c, lease_id, expires_at_ms, &Security::Plaintext)
}

/// A registry entry for a checked registration, reached with `security`: under
/// mutual TLS the provider must present a certificate issued to its registered
/// name, so a provider cannot point its lease at another provider's endpoint.
pub(crate) fn entry_with(
    c: Checked,
    lease_id: [u8; 16],
    expires_at_ms: u64,
    security: &Security,
) -> Result<Arc<Entry>, Status> {
    let endpoint = security
        .endpoint(&c.info.endpoint, Some(&c.info.name))
        .map_err(|e| bad(format!("endpoint: {e}")))?
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true)
        .initial_stream_window_size(veilgrid_kit::server::STREAM_WINDOW)
        .initial_connection_window_size(veilgrid_kit::server::CONNECTION_WINDOW)
        .max_frame_size(veilgrid_kit::server::MAX_FRAME)
        .http2_keep_alive_interval(veilgrid_kit::h2_unary::KEEPALIVE_INTERVAL)
        .keep_alive_timeout(veilgrid_kit::h2_unary::KEEPALIVE_TIMEOUT);
    let direct = security
        .h2_unary(&c.info.endpoint, Some(&c.info.name))
        .map_err(|e| bad(format!("endpoint: {e}")))?;
    // Decompressed once here, not per receipt on the request path.
    let verifier = VerifierKey::from_bytes(&c.id).map_err(|e| bad(format!("provider id: {e}")))?;
    Ok(Arc::new(Entry::new(
        c.id,
        verifier,
        c.info,
        c.asks,
        lease_id,
        expires_at_ms,
        Links { endpoint, direct },
    )))
}

/// Rebuild an entry from the store (the signature is checked again: a stored
/// lease that does not verify was altered, and is dropped).
#[allow(dead_code)]
pub(crate) fn restore(rec: &LeaseRecord, now_ms: u64) -> Option<Arc<Entry>> {
    restore_with(rec, now_ms, &Security::Plaintext)
}

/// [`restore`], reaching the provider with `security`.
pub(crate) fn restore_with(
    rec: &LeaseRecord,
    now_ms: u64,
    security: &Security,
) -> Option<Arc<Entry>> {
    // Stored registrations may be older than the skew window; check the rest.
    let info = ProviderInfo::decode(&rec.info[..]).ok()?;
    let c = check(
        &rec.info,
        &rec.signature,
        info.signed_at_ms,
        (
            Duration::from_millis(1),
            Duration::from_secs(u64::MAX / 4_000),
        ),
    )
    .ok()?;
    (c.id == rec.provider_id && rec.expires_at_ms > now_ms)
        .then(|| entry_with(c, rec.lease_id, rec.expires_at_ms, security).ok())
        .flatten()
}
