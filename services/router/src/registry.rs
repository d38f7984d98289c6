//! Providers under lease, their load figures and the promise ledger in memory.
//!
//! The store is the source of truth across restarts; this is the fast view the
//! request path reads. tonic's balancer reports zero load for every endpoint, so
//! the router keeps its own: requests in flight and an EWMA of latency.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering},
    },
    time::Duration,
};

use tonic::transport::{Channel, Endpoint};
use veilgrid_core::{prepared_verifier::PreparedVerifier, protocol::ProtocolId, sign::VerifierKey};
use veilgrid_kit::{h2_unary::H2Unary, untrusted::StripStatusDetails};
use veilgrid_proto::grid::v1::{ProviderInfo, provider_client::ProviderClient};

use crate::store::Tally;

/// Weight of a new latency sample in the EWMA.
const EWMA_ALPHA: f64 = 0.2;

/// How the router reaches one provider.
#[derive(Debug)]
pub struct Links {
    /// For tonic's channel: streams, the audit-log push.
    pub endpoint: Endpoint,
    /// Unary `Complete` and health checks.
    pub direct: H2Unary,
}

/// One provider under lease.
#[derive(Debug)]
pub struct Entry {
    /// Provider id (Ed25519 public key).
    pub id: [u8; 32],
    /// The same key with its verification tables, built once, for checking receipts.
    pub verifier: PreparedVerifier,
    /// What it registered.
    pub info: ProviderInfo,
    /// Price per protocol, in `info.currency`.
    pub asks: HashMap<ProtocolId, u64>,
    /// The lease secret.
    pub lease_id: [u8; 16],
    /// Lease expiry, ms since the Unix epoch.
    pub expires_at_ms: AtomicU64,
    /// Health as last observed.
    pub serving: AtomicBool,
    /// Requests in flight through this router.
    pub in_flight: AtomicU32,
    /// EWMA latency in microseconds (f64 bits).
    ewma_us_bits: AtomicU64,
    /// A lazily connecting channel to the provider (streams, the audit-log push).
    pub channel: Channel,
    /// A lazily connecting h2 client to the provider for unary `Complete` calls
    /// (`veilgrid_kit::h2_unary`: no `Channel` buffer task, payload not copied).
    pub direct: H2Unary,
}

impl Entry {
    /// Build an entry; the channel connects on first use.
    pub fn new(
        id: [u8; 32],
        verifier: VerifierKey,
        info: ProviderInfo,
        asks: HashMap<ProtocolId, u64>,
        lease_id: [u8; 16],
        expires_at_ms: u64,
        links: Links,
    ) -> Self {
        Self {
            id,
            verifier: PreparedVerifier::new(verifier),
            info,
            asks,
            lease_id,
            expires_at_ms: AtomicU64::new(expires_at_ms),
            serving: AtomicBool::new(true),
            in_flight: AtomicU32::new(0),
            ewma_us_bits: AtomicU64::new(0f64.to_bits()),
            channel: links.endpoint.connect_lazy(),
            direct: links.direct,
        }
    }

    /// A client for this provider with message limits for `max` bytes.
    /// Its answers cannot panic the caller ([`StripStatusDetails`]).
    pub fn client(&self, max: usize) -> ProviderClient<StripStatusDetails<Channel>> {
        ProviderClient::new(StripStatusDetails(self.channel.clone()))
            .max_decoding_message_size(max)
            .max_encoding_message_size(max)
    }

    /// EWMA latency in milliseconds.
    pub fn ewma_ms(&self) -> f64 {
        f64::from_bits(self.ewma_us_bits.load(Ordering::Relaxed)) / 1000.0
    }

    /// Fold one latency sample into the EWMA.
    pub fn observe_latency(&self, d: Duration) {
        let sample = d.as_secs_f64() * 1e6;
        let _ = self
            .ewma_us_bits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                let old = f64::from_bits(bits);
                let new = if old == 0.0 {
                    sample
                } else {
                    old + EWMA_ALPHA * (sample - old)
                };
                Some(new.to_bits())
            });
    }

    /// Count a request in flight until the guard drops.
    pub fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }
}

/// Decrements a provider's in-flight count when dropped.
#[derive(Debug)]
pub struct InFlight(Arc<Entry>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Every provider under lease, and the promise tallies.
#[derive(Debug, Default)]
pub struct Registry {
    providers: RwLock<HashMap<[u8; 32], Arc<Entry>>>,
    /// Protocols any provider has ever advertised to this router: a request for
    /// one of these with no provider left is `UNAVAILABLE`, not `NOT_FOUND`.
    known: RwLock<HashSet<ProtocolId>>,
    tallies: Mutex<HashMap<([u8; 32], ProtocolId), Tally>>,
}

impl Registry {
    /// Insert or replace a provider.
    pub fn insert(&self, e: Arc<Entry>) {
        if let Ok(mut k) = self.known.write() {
            k.extend(e.asks.keys().copied());
        }
        if let Ok(mut p) = self.providers.write() {
            p.insert(e.id, e);
        }
    }

    /// Remove a provider.
    pub fn remove(&self, id: &[u8; 32]) -> Option<Arc<Entry>> {
        self.providers.write().ok()?.remove(id)
    }

    /// One provider.
    pub fn get(&self, id: &[u8; 32]) -> Option<Arc<Entry>> {
        self.providers.read().ok()?.get(id).cloned()
    }

    /// All providers.
    pub fn all(&self) -> Vec<Arc<Entry>> {
        self.providers
            .read()
            .map(|p| p.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Providers advertising `protocol` whose lease is alive at `now_ms`.
    pub fn serving(&self, protocol: &ProtocolId, now_ms: u64) -> Vec<Arc<Entry>> {
        self.providers
            .read()
            .map(|p| {
                p.values()
                    .filter(|e| {
                        e.asks.contains_key(protocol)
                            && e.expires_at_ms.load(Ordering::Relaxed) > now_ms
                    })
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether any provider ever advertised `protocol` here.
    pub fn is_known(&self, protocol: &ProtocolId) -> bool {
        self.known
            .read()
            .map(|k| k.contains(protocol))
            .unwrap_or(false)
    }

    /// Providers whose lease expired by `now_ms`, removed.
    pub fn expire(&self, now_ms: u64) -> Vec<Arc<Entry>> {
        let Ok(mut p) = self.providers.write() else {
            return Vec::new();
        };
        let dead: Vec<[u8; 32]> = p
            .values()
            .filter(|e| e.expires_at_ms.load(Ordering::Relaxed) <= now_ms)
            .map(|e| e.id)
            .collect();
        dead.iter().filter_map(|id| p.remove(id)).collect()
    }

    /// The tally of one provider for one protocol.
    pub fn tally(&self, id: &[u8; 32], protocol: &ProtocolId) -> Tally {
        self.tallies
            .lock()
            .map(|t| t.get(&(*id, *protocol)).copied().unwrap_or_default())
            .unwrap_or_default()
    }

    /// Count one promise.
    pub fn count(&self, id: &[u8; 32], protocol: &ProtocolId, kept: bool) {
        if let Ok(mut t) = self.tallies.lock() {
            t.entry((*id, *protocol)).or_default().count(kept);
        }
    }

    /// Replace all tallies (on start, from the store).
    pub fn load_tallies(&self, rows: Vec<([u8; 32], ProtocolId, Tally)>) {
        if let Ok(mut t) = self.tallies.lock() {
            t.clear();
            for (p, proto, tally) in rows {
                t.insert((p, proto), tally);
            }
        }
    }
}
