//! Keeping a replica's in-memory view in step with a shared (PostgreSQL) store.
//!
//! Each router replica serves requests from its own [`Registry`](crate::registry::Registry).
//! When the store is shared, another replica may have registered, renewed or
//! released a provider, or counted promises, since this one last looked. Every
//! lease sweep (a quarter of the health interval) a replica re-reads the leases and
//! the tallies: leases it lacks are restored (their registration signature checked
//! again), renewals raise its expiry, leases gone from the store are dropped, and
//! the tallies are replaced by the store's sums.
//!
//! A provider registered at one replica is thus served by all of them within one
//! sweep, and renewing at any replica works (the lease id is in the store).

use std::{collections::HashSet, sync::atomic::Ordering};

use crate::{RouterError, State, lease};

/// Bring `state`'s registry and tallies in line with its store at `now_ms`.
pub(crate) fn sync(state: &State, now_ms: u64) -> Result<(), RouterError> {
    let stored = state.store.leases()?;
    let mut present = HashSet::with_capacity(stored.len());
    for rec in &stored {
        present.insert(rec.provider_id);
        match state.registry.get(&rec.provider_id) {
            Some(e) if e.lease_id == rec.lease_id => {
                e.expires_at_ms
                    .fetch_max(rec.expires_at_ms, Ordering::Relaxed);
            }
            _ if rec.expires_at_ms <= now_ms => {}
            _ => match lease::restore_with(rec, now_ms, &state.config.security) {
                Some(e) => {
                    tracing::info!(provider = %hex::encode(&rec.provider_id[..8]), name = %e.info.name, "lease from another replica");
                    state.registry.insert(e);
                }
                None => tracing::warn!(
                    provider = %hex::encode(&rec.provider_id[..8]),
                    "a stored lease does not verify; ignored"
                ),
            },
        }
    }
    for e in state.registry.all() {
        if !present.contains(&e.id) {
            // Released or expired at another replica. (Should a registration here
            // race this pass, the next pass restores it from the store.)
            state.registry.remove(&e.id);
        }
    }
    state.registry.load_tallies(state.store.tallies()?);
    Ok(())
}
