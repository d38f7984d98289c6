//! Decompressed evaluation keys in a memory-bounded LRU cache.
//!
//! A decompressed key is ~90 MB (`ServerKey::size_bytes()`), its compressed form ~30 MB, and
//! decompressing takes ~0.3 s. The cache holds at most `budget / ServerKey::size_bytes()` keys
//! (at least one); the least recently used key is dropped first. A key evicted while a query
//! still uses it lives until that query finishes (it is shared by `Arc`), so memory is bounded
//! by the cache plus the keys of the queries in flight. Two queries missing the same key at
//! once decompress it once: the second waits for the first.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
};

use veilgrid_fhe::{KeyId, ServerKey};

use crate::FheServiceError;

#[derive(Default)]
struct Lru {
    keys: HashMap<KeyId, Arc<ServerKey>>,
    /// Most recently used at the back.
    order: VecDeque<KeyId>,
}

impl Lru {
    fn touch(&mut self, id: &KeyId) -> Option<Arc<ServerKey>> {
        let key = self.keys.get(id)?.clone();
        if let Some(pos) = self.order.iter().position(|k| k == id) {
            self.order.remove(pos);
        }
        self.order.push_back(*id);
        Some(key)
    }
}

/// The cache. Shared by every evaluation worker.
pub struct KeyCache {
    capacity: usize,
    lru: Mutex<Lru>,
    loading: Mutex<HashMap<KeyId, Arc<Mutex<()>>>>,
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyCache")
            .field("capacity", &self.capacity)
            .field("cached", &self.cached())
            .finish()
    }
}

fn poisoned() -> FheServiceError {
    FheServiceError::Pool("key cache lock poisoned".into())
}

impl KeyCache {
    /// A cache holding as many decompressed keys as fit in `budget_bytes` (at least one).
    pub fn with_budget(budget_bytes: usize) -> Self {
        Self::with_capacity(budget_bytes / ServerKey::size_bytes())
    }

    /// A cache holding at most `keys` decompressed keys (at least one).
    pub fn with_capacity(keys: usize) -> Self {
        Self {
            capacity: keys.max(1),
            lru: Mutex::new(Lru::default()),
            loading: Mutex::new(HashMap::new()),
        }
    }

    /// Most keys held at once.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Keys held now.
    pub fn cached(&self) -> usize {
        self.lru.lock().map(|l| l.keys.len()).unwrap_or(0)
    }

    /// Whether `id` is held now.
    pub fn contains(&self, id: &KeyId) -> bool {
        self.lru
            .lock()
            .map(|l| l.keys.contains_key(id))
            .unwrap_or(false)
    }

    /// The key `id`, from the cache or made by `load` (blocking: call on a worker thread).
    pub fn get_or_load(
        &self,
        id: &KeyId,
        load: impl FnOnce() -> Result<ServerKey, FheServiceError>,
    ) -> Result<Arc<ServerKey>, FheServiceError> {
        let cached = self.lru.lock().map_err(|_| poisoned())?.touch(id);
        if let Some(k) = cached {
            return Ok(k);
        }
        let gate = self
            .loading
            .lock()
            .map_err(|_| poisoned())?
            .entry(*id)
            .or_default()
            .clone();
        let result = {
            let _loading = gate.lock().unwrap_or_else(|e| e.into_inner());
            // Bind first: a guard in the match scrutinee would live through the arms, and the
            // miss arm locks the LRU again.
            let cached = self.lru.lock().map_err(|_| poisoned())?.touch(id);
            match cached {
                Some(k) => Ok(k),
                None => load().and_then(|key| {
                    let key = Arc::new(key);
                    let mut lru = self.lru.lock().map_err(|_| poisoned())?;
                    lru.keys.insert(*id, key.clone());
                    lru.order.push_back(*id);
                    while lru.keys.len() > self.capacity {
                        match lru.order.pop_front() {
                            Some(old) => {
                                lru.keys.remove(&old);
                                tracing::debug!(key = %old, "evicted a decompressed key");
                            }
                            None => break,
                        }
                    }
                    Ok(key)
                }),
            }
        };
        if let Ok(mut loading) = self.loading.lock()
            && Arc::strong_count(&gate) <= 2
        {
            loading.remove(id);
        }
        result
    }
}
